//! Checklist item 06 — double opt-in: until the person confirms, the only
//! mail they get is the confirmation request; bulk mail starts after the
//! confirmation (PECR reg 22; ICO).

use super::common::{copies, send_update};
use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token, header};

both_backends!(nothing_but_the_confirmation_mail_is_sent_before_the_person_confirms);

async fn nothing_but_the_confirmation_mail_is_sent_before_the_person_confirms(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("already", 2, "updates").await;
    assert_eq!(app.subscribe("new@example.org", "updates").await.status(), 200);
    app.drain_outbox().await;

    // An update goes out while the request is pending: not to them.
    send_update(&app, "While pending", &["updates"]).await;
    assert_eq!(copies(&app, "already0@example.org", "While pending").len(), 1, "the send did run");
    let mails = app.smtp.messages_to("new@example.org");
    assert_eq!(mails.len(), 1, "only the confirmation request");
    assert_eq!(header(&mails[0], "Auto-Submitted").as_deref(), Some("auto-generated"));
    assert!(header(&mails[0], "List-Unsubscribe").is_none(), "it is not bulk mail");

    // Once they confirm, the next update reaches them.
    let token = confirm_token(&mails[0]);
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    send_update(&app, "After confirming", &["updates"]).await;
    assert_eq!(copies(&app, "new@example.org", "After confirming").len(), 1);
}
