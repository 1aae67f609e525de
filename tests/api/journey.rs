//! The whole supporter journey, end to end, through the real HTTP server
//! and a real SMTP server.

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token, header, html_body, html_escaped, text_body};
use std::time::Duration;
use tidings::domain::EmailAddress;

both_backends!(
    a_supporter_subscribes_confirms_and_unsubscribes_with_one_click,
    the_subscribe_answer_is_the_same_for_every_kind_of_address,
    confirmation_mails_are_limited_per_address_and_list,
    one_click_unsubscribe_accepts_a_multipart_body,
    preferences_change_name_and_lists_and_can_unsubscribe_from_everything,
    coming_back_after_unsubscribing_is_recorded_as_resubscribed,
    a_confirmation_link_from_before_the_time_prefix_still_confirms,
);

async fn a_supporter_subscribes_confirms_and_unsubscribes_with_one_click(db: Db) {
    let app = TestApp::spawn(db).await;
    let res = app
        .http
        .post(app.url("/subscribe"))
        .header("User-Agent", "JourneyTest/1.0")
        .form(&[
            ("email", "Ana@Example.org"),
            ("name", "Ana"),
            ("lists", "updates"),
            ("consent", "updates"),
            ("source", "https://campaign.test/join"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let first_answer = res.text().await.unwrap();
    assert!(first_answer.contains("Check your inbox"));
    assert!(app.smtp.messages().is_empty(), "the answer never waits on SMTP");

    assert_eq!(app.drain_outbox().await.sent, 1);
    let mails = app.smtp.messages_to("ana@example.org");
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(header(mail, "Auto-Submitted").as_deref(), Some("auto-generated"));
    assert!(header(mail, "List-Unsubscribe").is_none(), "transactional mail carries no list headers");
    assert!(header(mail, "Message-ID").is_some_and(|m| m.ends_with("@tidings.test>")));
    let text = text_body(mail);
    assert!(text.contains("Hello Ana,"));
    assert!(text.contains("Save Our Hospital updates"), "names the list: {text}");
    assert!(text.contains("http://tidings.test/confirm/"));
    let token = confirm_token(mail);
    assert!(html_body(mail).contains(&format!("http://tidings.test/confirm/{token}")));

    // GET shows a button and changes nothing (link scanners prefetch).
    let page = app.http.get(app.url(&format!("/confirm/{token}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<button type=\"submit\">Confirm</button>"));
    assert_eq!(app.status("ana@example.org", "updates").await, "pending");

    let res = app
        .http
        .post(app.url(&format!("/confirm/{token}")))
        .header("User-Agent", "ConfirmBrowser/2.0")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("you're subscribed"));
    assert_eq!(app.status("ana@example.org", "updates").await, "confirmed");

    let ledger = app.ledger("ana@example.org").await;
    let kinds: Vec<&str> = ledger.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["requested", "confirmed"]);
    let (requested, confirmed) = (&ledger[0], &ledger[1]);
    assert_eq!(requested["list"], "updates");
    assert_eq!(requested["ip"], "127.0.0.1");
    assert_eq!(requested["user_agent"], "JourneyTest/1.0");
    assert_eq!(requested["source"], "https://campaign.test/join");
    assert_eq!(requested["actor"], "supporter");
    assert_eq!(requested["statement"]["version"], 1);
    assert!(requested["statement"]["text"].as_str().unwrap().contains("Save Our Hospital updates"));
    assert_eq!(requested["statement"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(requested["privacy_notice"]["version"], 1);
    assert_eq!(requested["privacy_notice"]["url"], "http://tidings.test/privacy");
    assert_eq!(confirmed["user_agent"], "ConfirmBrowser/2.0");
    assert_eq!(confirmed["ip"], "127.0.0.1");
    assert!(confirmed["occurred_at"].as_str().unwrap() >= requested["occurred_at"].as_str().unwrap());

    // Subscribing again answers exactly the same and sends nothing.
    let again = app.subscribe("ana@example.org", "updates").await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.text().await.unwrap(), first_answer);
    assert_eq!(app.drain_outbox().await.sent, 0);
    assert_eq!(app.smtp.messages().len(), 1);

    // RFC 8058 one-click: no cookie, no redirect, done at once.
    let unsub = app.unsubscribe_token("ana@example.org", "updates").await;
    let res = app
        .http
        .post(app.url(&format!("/unsubscribe/{unsub}")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("location").is_none() && res.headers().get("set-cookie").is_none());
    assert_eq!(app.status("ana@example.org", "updates").await, "unsubscribed");
    let ledger = app.ledger("ana@example.org").await;
    assert_eq!(ledger.len(), 3);
    assert_eq!(ledger[2]["kind"], "withdrawn");
    assert_eq!(ledger[2]["detail"], "one-click");

    // A second click is harmless and records nothing new.
    let res = app
        .http
        .post(app.url(&format!("/unsubscribe/{unsub}")))
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.ledger("ana@example.org").await.len(), 3);
}

async fn the_subscribe_answer_is_the_same_for_every_kind_of_address(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "0")]).await;
    // pending
    app.subscribe("pending@example.org", "updates").await;
    // confirmed
    let res = app
        .api(reqwest::Method::POST, "/subscribers")
        .json(&serde_json::json!({"email": "confirmed@example.org", "lists": ["updates"], "status": "confirmed", "basis": "signed the paper petition, 2026-10-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // unsubscribed
    app.api(reqwest::Method::POST, "/subscribers")
        .json(&serde_json::json!({"email": "gone@example.org", "lists": ["updates"], "status": "confirmed", "basis": "petition"}))
        .send()
        .await
        .unwrap();
    let t = app.unsubscribe_token("gone@example.org", "updates").await;
    app.post_form(&format!("/unsubscribe/{t}"), &[]).await;
    assert_eq!(app.status("gone@example.org", "updates").await, "unsubscribed");
    // suppressed
    {
        let mut tx = app.ctx.store.write().await.unwrap();
        let hash = EmailAddress::parse("suppressed@example.org").unwrap().suppression_hash(&app.ctx.address_key);
        tx.suppress(&hash, "complaint", app.ctx.clock.now()).await.unwrap();
        tx.commit().await.unwrap();
    }
    app.drain_outbox().await;
    let before = app.smtp.messages().len();

    let mut form_answers = Vec::new();
    let mut json_answers = Vec::new();
    for email in [
        "new@example.org",
        "pending@example.org",
        "confirmed@example.org",
        "gone@example.org",
        "suppressed@example.org",
    ] {
        let res = app.subscribe(email, "updates").await;
        form_answers.push((res.status(), res.text().await.unwrap()));
        let res = app
            .post_json("/subscribe", &serde_json::json!({"email": email, "lists": ["updates"], "consent": true}))
            .await;
        json_answers.push((res.status(), res.text().await.unwrap()));
    }
    assert!(form_answers.iter().all(|a| a == &form_answers[0]), "{form_answers:?}");
    assert_eq!(form_answers[0].0, 200);
    assert!(json_answers.iter().all(|a| a == &json_answers[0]), "{json_answers:?}");
    assert_eq!(json_answers[0].0, 202);
    assert_eq!(json_answers[0].1, r#"{"status":"pending"}"#);

    app.drain_outbox().await;
    assert!(app.smtp.messages_to("suppressed@example.org").is_empty(), "a suppressed address is never mailed");
    assert!(app.smtp.messages_to("confirmed@example.org").is_empty());
    // new@ gets one; gone@ gets one (re-subscribing needs a fresh confirmation).
    assert_eq!(app.smtp.messages_to("new@example.org").len(), 1);
    assert_eq!(app.smtp.messages_to("gone@example.org").len(), 1);
    assert_eq!(app.smtp.messages().len(), before + 2);
}

async fn confirmation_mails_are_limited_per_address_and_list(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("hearings", "Hearing dates").await;
    for _ in 0..3 {
        assert_eq!(app.subscribe("ben@example.org", "updates").await.status(), 200);
    }
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to("ben@example.org").len(), 1);

    // Another list is another consent: it gets its own mail, naming only it.
    app.subscribe("ben@example.org", "hearings").await;
    app.drain_outbox().await;
    let mails = app.smtp.messages_to("ben@example.org");
    assert_eq!(mails.len(), 2);
    let text = text_body(&mails[1]);
    assert!(text.contains("Hearing dates") && !text.contains("Save Our Hospital updates"), "{text}");

    // After the window, one more.
    app.ctx.clock.advance(Duration::from_secs(25 * 3600));
    app.subscribe("ben@example.org", "updates").await;
    app.subscribe("ben@example.org", "updates").await;
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to("ben@example.org").len(), 3);
}

async fn one_click_unsubscribe_accepts_a_multipart_body(db: Db) {
    let app = TestApp::spawn(db).await;
    app.api(reqwest::Method::POST, "/subscribers")
        .json(&serde_json::json!({"email": "cy@example.org", "lists": ["updates"], "status": "confirmed", "basis": "event sign-up sheet"}))
        .send()
        .await
        .unwrap();
    let token = app.unsubscribe_token("cy@example.org", "updates").await;
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
    let res = app
        .http
        .post(app.url(&format!("/unsubscribe/{token}")))
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.status("cy@example.org", "updates").await, "unsubscribed");
    let ledger = app.ledger("cy@example.org").await;
    assert_eq!(ledger.last().unwrap()["detail"], "one-click");
}

async fn confirmed_with_preferences_link(app: &TestApp, email: &str, lists: &[&str]) -> String {
    let mut form: Vec<(&str, &str)> = vec![("email", email)];
    for l in lists {
        form.push(("lists", l));
        form.push(("consent", l));
    }
    assert_eq!(app.post_form("/subscribe", &form).await.status(), 200);
    app.drain_outbox().await;
    let token = confirm_token(app.smtp.messages_to(email).last().unwrap());
    let page = app.post_form(&format!("/confirm/{token}"), &[]).await.text().await.unwrap();
    let start = page.find("http://tidings.test/preferences/").unwrap() + "http://tidings.test".len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].to_owned()
}

async fn preferences_change_name_and_lists_and_can_unsubscribe_from_everything(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("hearings", "Hearing dates").await;
    let prefs = confirmed_with_preferences_link(&app, "dee@example.org", &["updates", "hearings"]).await;
    let page = app.http.get(app.url(&prefs)).send().await.unwrap().text().await.unwrap();
    assert_eq!(page.matches(" checked").count(), 2, "both lists ticked");

    let res =
        app.post_form(&prefs, &[("name", "<script>alert(1)</script>"), ("lists", "updates"), ("action", "save")]).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains(&html_escaped("<script>alert(1)</script>")) && !page.contains("<script>alert(1)"));
    assert_eq!(app.status("dee@example.org", "hearings").await, "unsubscribed");
    assert_eq!(app.status("dee@example.org", "updates").await, "confirmed");
    assert_eq!(app.subscriber("dee@example.org").await["name"], "<script>alert(1)</script>");

    app.post_form(&prefs, &[("lists", "updates"), ("action", "unsubscribe-all")]).await;
    assert_eq!(app.status("dee@example.org", "updates").await, "unsubscribed");
    let ledger = app.ledger("dee@example.org").await;
    let withdrawn: Vec<_> = ledger.iter().filter(|e| e["kind"] == "withdrawn").collect();
    assert_eq!(withdrawn.len(), 1, "hearings, unticked on the save before");
    // Issue 24: "Unsubscribe from everything" is one objection, not one withdrawal per list.
    let objected: Vec<_> = ledger.iter().filter(|e| e["kind"] == "objected").collect();
    assert_eq!(objected.len(), 1);
    assert!(withdrawn.iter().chain(&objected).all(|e| e["detail"] == "preferences"));

    // Ticking a list again from preferences asks for confirmation by mail
    // (the link may be in a forwarded copy); the click re-subscribes.
    app.ctx.clock.advance(Duration::from_secs(25 * 3600));
    app.post_form(&prefs, &[("lists", "hearings"), ("action", "save")]).await;
    assert_eq!(app.status("dee@example.org", "hearings").await, "pending");
    assert_eq!(app.ledger("dee@example.org").await.last().unwrap()["kind"], "requested");
    app.drain_outbox().await;
    let token = confirm_token(app.smtp.messages_to("dee@example.org").last().unwrap());
    app.post_form(&format!("/confirm/{token}"), &[]).await;
    assert_eq!(app.status("dee@example.org", "hearings").await, "confirmed");
    assert_eq!(app.ledger("dee@example.org").await.last().unwrap()["kind"], "resubscribed");
}

async fn coming_back_after_unsubscribing_is_recorded_as_resubscribed(db: Db) {
    let app = TestApp::spawn(db).await;
    confirmed_with_preferences_link(&app, "eve@example.org", &["updates"]).await;
    let t = app.unsubscribe_token("eve@example.org", "updates").await;
    app.post_form(&format!("/unsubscribe/{t}"), &[]).await;
    app.ctx.clock.advance(Duration::from_secs(25 * 3600));
    app.subscribe("eve@example.org", "updates").await;
    assert_eq!(app.status("eve@example.org", "updates").await, "pending");
    app.drain_outbox().await;
    let token = confirm_token(app.smtp.messages_to("eve@example.org").last().unwrap());
    app.post_form(&format!("/confirm/{token}"), &[]).await;
    let kinds: Vec<String> =
        app.ledger("eve@example.org").await.iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["requested", "confirmed", "withdrawn", "requested", "resubscribed"]);
    assert_eq!(app.ledger("eve@example.org").await[2]["detail"], "page");
}

/// Links mailed before confirmation tokens carried their issue time are a
/// bare 32-byte secret, stored under its plain SHA-256: they must still
/// confirm (a supporter may click one days after an upgrade), once.
async fn a_confirmation_link_from_before_the_time_prefix_still_confirms(db: Db) {
    use base64::Engine;
    let app = TestApp::spawn(db).await;
    assert_eq!(app.subscribe("early@example.org", "updates").await.status(), 200);
    let subscriber = uuid::Uuid::parse_str(app.subscriber("early@example.org").await["id"].as_str().unwrap()).unwrap();
    let list = uuid::Uuid::parse_str(app.api_get("/lists/updates").await["id"].as_str().unwrap()).unwrap();

    let bare = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0x5a_u8; 32]);
    let now = app.ctx.clock.now();
    let mut tx = app.ctx.store.write().await.unwrap();
    let stored_key = tidings::domain::sha256_hex(bare.as_bytes());
    tx.insert_confirmation_token(&stored_key, subscriber, &[list], now, now + chrono::Duration::hours(72))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let page = app.http.get(app.url(&format!("/confirm/{bare}"))).send().await.unwrap();
    assert_eq!(page.status(), 200, "the old link is recognised");
    let confirmed = app.http.post(app.url(&format!("/confirm/{bare}"))).send().await.unwrap();
    assert_eq!(confirmed.status(), 200);
    assert_eq!(app.status("early@example.org", "updates").await, "confirmed");
    let again = app.http.post(app.url(&format!("/confirm/{bare}"))).send().await.unwrap();
    assert_eq!(again.status(), 410, "single use, like any token");
}
