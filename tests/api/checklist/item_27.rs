//! Item 27: a DSN changes a subscriber only when it is tied to a copy
//! Tidings sent (a valid VERP tag, or the Message-ID of a copy sent to that
//! subscriber); a DSN that matches only by address goes to review and
//! changes nothing. Source: RFC 3464 (and its security considerations).

use crate::both_backends;
use crate::forged_reports::{assert_unchanged, cli_ingest, event_about, fixture, report, send_update, suppressed};
use crate::support::app::{Db, TestApp, html_escaped};

both_backends!(a_dsn_changes_a_subscriber_only_when_tied_to_a_copy_tidings_sent);

async fn a_dsn_changes_a_subscriber_only_when_tied_to_a_copy_tidings_sent(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[("TIDINGS_VERP_DOMAIN", "bounces.hospital.test"), ("TIDINGS_FROM", "Save Our Hospital <news@hospital.test>")],
    )
    .await;
    app.confirmed_subscribers("r", 4, "updates").await;
    let (_, copies) = send_update(&app, "DSN ties").await;
    let (by_verp, by_message_id, by_address, by_unsent_id) =
        ("r0@example.org", "r1@example.org", "r2@example.org", "r3@example.org");

    // Genuine: delivered to the copy's VERP return path (the DSN quotes
    // nothing else of ours), through the real `tidings bounces ingest`.
    let raw =
        fixture("dsn/verp-5.1.1.eml").replace("{{verp}}", &copies[by_verp].return_path).replace("{{dsn_id}}", "tie-1");
    assert!(cli_ingest(&app, &raw, &[]).contains("applied: hard"));
    assert_eq!(app.status(by_verp, "updates").await, "bounced");
    assert!(suppressed(&app, by_verp).await);

    // Genuine: quotes the Message-ID of the copy sent to them.
    let raw = report("hard-5.1.1.eml", by_message_id, &copies[by_message_id].message_id, "tie-2");
    assert!(cli_ingest(&app, &raw, &[]).contains("applied: hard"));
    assert_eq!(app.status(by_message_id, "updates").await, "bounced");
    assert!(suppressed(&app, by_message_id).await);

    // Only the address ties it to a subscriber: held, nothing changed.
    let raw = report("hard-5.1.1.eml", by_address, "<4711@mail.example.net>", "tie-3");
    assert!(cli_ingest(&app, &raw, &[]).contains("held for review"));
    assert_unchanged(&app, by_address).await;

    // A Message-ID in our form naming a copy that was never sent (a draft
    // update): not ours to act on.
    let draft = app.create_update("Never sent", "Draft {{name}}", &["updates"]).await;
    let subscriber = app.subscriber(by_unsent_id).await["id"].as_str().unwrap().to_owned();
    let host = app.ctx.composer.host.clone();
    let raw = report("hard-5.1.1.eml", by_unsent_id, &format!("<{draft}.{subscriber}@{host}>"), "tie-4");
    assert!(cli_ingest(&app, &raw, &[]).contains("held for review"));
    assert_unchanged(&app, by_unsent_id).await;

    for who in [by_address, by_unsent_id] {
        let e = event_about(&app, who).await;
        assert_eq!((e.outcome.as_str(), e.class.as_str(), e.update_id), ("review", "hard", None));
    }
    let admin = app.login_as_admin().await;
    let page = admin.get("/admin/bounces?kind=review").await;
    assert_eq!(page.status, 200);
    for who in [by_address, by_unsent_id] {
        assert!(page.body.contains(&html_escaped(who)), "{who} listed for review: {}", page.body);
    }
    assert!(!page.body.contains(&html_escaped(by_verp)) && !page.body.contains(&html_escaped(by_message_id)));
}
