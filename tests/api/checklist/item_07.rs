//! Checklist item 07 — the record of consent holds who consented, when, how
//! (the act, the client and address), from which page, and the exact
//! wording and privacy-notice versions they were shown (UK GDPR Art 7(1);
//! ICO).

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token};

both_backends!(the_consent_record_holds_who_when_how_where_and_the_exact_wording_and_notice);

async fn the_consent_record_holds_who_when_how_where_and_the_exact_wording_and_notice(db: Db) {
    let app = TestApp::spawn(db).await;
    let statement = app.api_get("/consent-statements").await;
    let statement = statement.as_array().unwrap().iter().find(|s| s["list"] == "updates").unwrap().clone();
    let before = app.ctx.clock.now();
    let res = app
        .http
        .post(app.url("/subscribe"))
        .header("User-Agent", "ChecklistBrowser/7.0")
        .form(&[
            ("email", "rec@example.org"),
            ("name", "Rec"),
            ("lists", "updates"),
            ("consent", "updates"),
            ("statements", &format!("updates:{}", statement["version"])),
            ("source", "https://campaign.test/petition"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.drain_outbox().await;
    let token = confirm_token(&app.smtp.messages_to("rec@example.org")[0]);
    let res = app
        .http
        .post(app.url(&format!("/confirm/{token}")))
        .header("User-Agent", "MailClient/2.0")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let who = app.subscriber("rec@example.org").await;
    let ledger = app.ledger("rec@example.org").await;
    assert_eq!(ledger.len(), 2, "{ledger:?}");
    let (requested, confirmed) = (&ledger[0], &ledger[1]);
    // Who: the entries belong to this person (the ledger is read by their id).
    assert_eq!(who["email"], "rec@example.org");
    // When.
    let at = |e: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(e["occurred_at"].as_str().unwrap()).unwrap().with_timezone(&chrono::Utc)
    };
    assert!(at(requested) >= before - chrono::Duration::seconds(1) && at(confirmed) >= at(requested));
    // How: the act, by whom, from which client and address.
    assert_eq!((requested["kind"].as_str(), confirmed["kind"].as_str()), (Some("requested"), Some("confirmed")));
    assert_eq!(requested["actor"], "supporter");
    assert_eq!(requested["ip"], "127.0.0.1");
    assert_eq!(requested["user_agent"], "ChecklistBrowser/7.0");
    assert_eq!(confirmed["user_agent"], "MailClient/2.0");
    // From which page.
    assert_eq!(requested["source"], "https://campaign.test/petition");
    // The exact wording and notice versions.
    assert_eq!(requested["statement"]["version"], statement["version"]);
    assert_eq!(requested["statement"]["text"], statement["text"]);
    assert_eq!(requested["statement"]["sha256"], statement["sha256"]);
    assert_eq!(requested["privacy_notice"]["version"], statement["privacy_notice_version"]);
    assert_eq!(requested["privacy_notice"]["url"], "http://tidings.test/privacy");
}
