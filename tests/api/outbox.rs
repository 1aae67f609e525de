//! The transactional outbox against a real SMTP server that misbehaves:
//! temporary and permanent refusals, and an outage.

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token, header, text_body};
use crate::support::smtp::TestSmtp;
use std::time::Duration;

both_backends!(
    a_confirmation_is_queued_as_a_recipe_and_composed_when_sent,
    a_temporary_refusal_is_retried_with_backoff_until_accepted,
    a_permanent_refusal_fails_once_and_keeps_the_reply,
    an_smtp_outage_pauses_delivery_and_loses_nothing,
);

/// The outbox row of the one message to `recipient`: (message, recipe, message_id).
async fn outbox_row(app: &TestApp, recipient: &str) -> (Option<Vec<u8>>, Option<String>, String) {
    const SQL: &str = "SELECT message, recipe, message_id FROM outbox WHERE recipient = $1";
    match &app.ctx.store {
        tidings::store::Store::Sqlite(pool) => sqlx::query_as(SQL).bind(recipient).fetch_one(pool).await.unwrap(),
        tidings::store::Store::Postgres(pool) => sqlx::query_as(SQL).bind(recipient).fetch_one(pool).await.unwrap(),
    }
}

async fn a_confirmation_is_queued_as_a_recipe_and_composed_when_sent(db: Db) {
    let app = TestApp::spawn(db).await;
    let name = "Ann <b>\"O'Neil\"</b>";
    let res = app
        .post_form(
            "/subscribe",
            &[("email", "ann@example.org"), ("name", name), ("lists", "updates"), ("consent", "on")],
        )
        .await;
    assert_eq!(res.status(), 200);
    // Queued as a few hundred bytes of facts, not as a composed message.
    let (message, recipe, message_id) = outbox_row(&app, "ann@example.org").await;
    assert!(message.is_none());
    let recipe = recipe.expect("a recipe");
    assert!(recipe.len() < 1024, "{recipe}");
    let facts: serde_json::Value = serde_json::from_str(&recipe).unwrap();
    assert_eq!(facts["template"], "confirmation");
    assert_eq!(facts["to"], "ann@example.org");
    assert_eq!(facts["name"], name);

    assert_eq!(app.drain_outbox().await.sent, 1);
    let mails = app.smtp.messages_to("ann@example.org");
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(header(mail, "Message-ID").as_deref(), Some(message_id.as_str()), "the Message-ID it was queued with");
    assert!(text_body(mail).contains("O'Neil"), "the greeting uses the name as typed");
    // The link works, and once sent the live token is no longer stored.
    let res = app.post_form(&format!("/confirm/{}", confirm_token(mail)), &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.status("ann@example.org", "updates").await, "confirmed");
    assert_eq!(outbox_row(&app, "ann@example.org").await, (None, None, message_id));
}

async fn a_temporary_refusal_is_retried_with_backoff_until_accepted(db: Db) {
    let app = TestApp::spawn(db).await;
    app.smtp.script_rcpt("rae@example.org", &[451, 451]);
    app.subscribe("rae@example.org", "updates").await;
    assert_eq!(app.drain_outbox().await.retried, 1);
    // Not due yet: backoff holds it back.
    assert_eq!(app.drain_outbox().await, Default::default());
    app.ctx.clock.advance(Duration::from_secs(60));
    assert_eq!(app.drain_outbox().await.retried, 1);
    app.ctx.clock.advance(Duration::from_secs(120));
    assert_eq!(app.drain_outbox().await.sent, 1);
    assert_eq!(app.smtp.messages_to("rae@example.org").len(), 1);
    let mut tx = app.ctx.store.read().await.unwrap();
    assert_eq!(tx.outbox_count(tidings::domain::OutboxStatus::Sent).await.unwrap(), 1);
    assert_eq!(tx.outbox_count(tidings::domain::OutboxStatus::Pending).await.unwrap(), 0);
}

async fn a_permanent_refusal_fails_once_and_keeps_the_reply(db: Db) {
    let app = TestApp::spawn(db).await;
    app.smtp.script_rcpt("sal@example.org", &[550]);
    app.subscribe("sal@example.org", "updates").await;
    let step = app.drain_outbox().await;
    assert_eq!((step.sent, step.failed), (0, 1));
    app.ctx.clock.advance(Duration::from_secs(3600));
    assert_eq!(app.drain_outbox().await, Default::default(), "a failed message is not retried");
    let mut tx = app.ctx.store.read().await.unwrap();
    assert_eq!(tx.outbox_count(tidings::domain::OutboxStatus::Failed).await.unwrap(), 1);
}

async fn an_smtp_outage_pauses_delivery_and_loses_nothing(db: Db) {
    let relay = TestSmtp::start();
    let port = relay.port();
    let url = relay.url();
    let app = TestApp::spawn_with(db, &[("TIDINGS_SMTP_URL", url.as_str())]).await;
    relay.stop();
    for i in 0..5 {
        app.subscribe(&format!("out{i}@example.org"), "updates").await;
    }
    for _ in 0..3 {
        let step = app.drain_outbox().await;
        assert!(step.relay_down);
        assert_eq!((step.sent, step.failed), (0, 0), "an outage marks nothing failed");
    }
    {
        let mut tx = app.ctx.store.read().await.unwrap();
        assert_eq!(tx.outbox_count(tidings::domain::OutboxStatus::Pending).await.unwrap(), 5);
    }
    let relay = TestSmtp::start_on(port);
    assert_eq!(app.drain_outbox().await.sent, 5);
    assert_eq!(relay.messages().len(), 5);
    for i in 0..5 {
        assert_eq!(relay.messages_to(&format!("out{i}@example.org")).len(), 1);
    }
}
