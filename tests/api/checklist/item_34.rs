//! Checklist item 34 — an unsubscribe takes effect at once, well within the
//! two days the Gmail and Yahoo rules allow: the very next send, and the
//! rest of a send already under way, exclude the person (Gmail/Yahoo
//! bulk-sender rules; PECR).

use super::common::{copies, send_update};
use crate::both_backends;
use crate::support::app::{Db, TestApp};
use reqwest::Method;

both_backends!(an_unsubscribe_takes_effect_before_the_next_copy_goes_out);

async fn an_unsubscribe_takes_effect_before_the_next_copy_goes_out(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_SEND_CONCURRENCY", "1")]).await;
    app.confirmed_subscribers("s", 3, "updates").await;
    send_update(&app, "Monday", &["updates"]).await;
    let token = app.unsubscribe_token("s1@example.org", "updates").await;
    assert_eq!(
        app.post_form(&format!("/unsubscribe/{token}"), &[("List-Unsubscribe", "One-Click")]).await.status(),
        200
    );

    // The next send, straight after: not to them, to everyone else.
    send_update(&app, "Tuesday", &["updates"]).await;
    assert!(copies(&app, "s1@example.org", "Tuesday").is_empty(), "the unsubscribe held at once");
    assert_eq!(copies(&app, "s0@example.org", "Tuesday").len(), 1);
    assert_eq!(copies(&app, "s2@example.org", "Tuesday").len(), 1);

    // Mid-send: queued for a recipient, then they leave before their batch.
    app.confirmed_subscribers("m", 120, "updates").await;
    let id = app.create_update("Wednesday", "Hello {{name}}.", &["updates"]).await;
    assert_eq!(app.api(Method::POST, &format!("/updates/{id}/send")).send().await.unwrap().status(), 202);
    assert_eq!(app.delivery_step().await.sent, 50);
    let unsent = (0..120)
        .map(|i| format!("m{i}@example.org"))
        .find(|e| copies(&app, e, "Wednesday").is_empty())
        .expect("someone not yet sent to");
    let token = app.unsubscribe_token(&unsent, "updates").await;
    assert_eq!(app.post_form(&format!("/unsubscribe/{token}"), &[]).await.status(), 200);
    app.drive_delivery(&id, 20).await;
    assert!(copies(&app, &unsent, "Wednesday").is_empty(), "{unsent} left mid-send and got nothing");
    assert_eq!(app.stats(&id).await["sent"], 121, "everyone else (2 + 120 - 1) got it");
}
