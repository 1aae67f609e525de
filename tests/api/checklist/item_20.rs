//! Checklist item 20 — every mail identifies the sender and carries a
//! contact (postal) address: the confirmation request, each bulk update and
//! the other transactional notices (PECR reg 23; ICO).

use super::common::{copies, send_update, subscribe_and_confirm};
use crate::both_backends;
use crate::support::app::{Db, TestApp, header, html_body, text_body};

both_backends!(every_kind_of_mail_names_the_group_and_carries_its_contact_address);

const CONTACT: &str = "Save Our Hospital, 12 High Street, Leeds LS1 1AA";

async fn every_kind_of_mail_names_the_group_and_carries_its_contact_address(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_CONTACT_ADDRESS", CONTACT)]).await;
    subscribe_and_confirm(&app, "eve@example.org", "updates").await;
    send_update(&app, "Hospital news", &["updates"]).await;
    let id = app.subscriber("eve@example.org").await["id"].as_str().unwrap().parse().unwrap();
    let prefs = tidings::domain::SignedToken::preferences(id).encode(&app.ctx.secret_key);
    let res = app.post_form(&format!("/preferences/{prefs}"), &[("action", "data-copy")]).await;
    assert_eq!(res.status(), 200);
    app.drain_outbox().await;

    let mails = app.smtp.messages_to("eve@example.org");
    assert_eq!(mails.len(), 3, "confirmation, update, data-copy link");
    assert_eq!(copies(&app, "eve@example.org", "Hospital news").len(), 1);
    for mail in &mails {
        let subject = header(mail, "Subject").unwrap_or_default();
        let from = header(mail, "From").unwrap_or_default();
        assert!(from.contains("Save Our Hospital") && from.contains("news@hospital.test"), "{subject}: {from}");
        assert!(text_body(mail).contains(CONTACT), "{subject}: text part: {}", text_body(mail));
        assert!(html_body(mail).contains(CONTACT), "{subject}: HTML part");
    }
}
