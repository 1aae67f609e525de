//! Checklist item 24 — RFC 2369 `List-Unsubscribe` with an https URI on
//! every bulk mail; transactional mail (the confirmation request, notices)
//! carries `Auto-Submitted: auto-generated` instead and no list headers
//! (RFC 2369, RFC 3834).

use super::common::{copies, send_update, subscribe_and_confirm};
use crate::both_backends;
use crate::support::app::{Db, TestApp, header};

both_backends!(every_bulk_mail_has_an_https_list_unsubscribe_and_transactional_mail_is_auto_submitted);

async fn every_bulk_mail_has_an_https_list_unsubscribe_and_transactional_mail_is_auto_submitted(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_BASE_URL", "https://tidings.test")]).await;
    app.create_list("hearings", "Hearing dates").await;
    subscribe_and_confirm(&app, "una@example.org", "updates").await;
    app.confirmed_subscribers("up", 2, "updates").await;
    app.confirmed_subscribers("hear", 2, "hearings").await;
    send_update(&app, "To updates", &["updates"]).await;
    send_update(&app, "To both", &["updates", "hearings"]).await;

    let bulk: Vec<_> =
        ["una@example.org", "up0@example.org", "up1@example.org", "hear0@example.org", "hear1@example.org"]
            .iter()
            .flat_map(|e| [copies(&app, e, "To updates"), copies(&app, e, "To both")].concat())
            .collect();
    assert_eq!(bulk.len(), 8, "every copy counted");
    for mail in &bulk {
        let value = header(mail, "List-Unsubscribe").expect("List-Unsubscribe on bulk mail");
        let uris: Vec<&str> = value.split(',').map(str::trim).collect();
        assert!(
            uris.iter().any(|u| u.starts_with("<https://tidings.test/unsubscribe/") && u.ends_with('>')),
            "an https URI in angle brackets: {value}"
        );
        assert!(header(mail, "Auto-Submitted").is_none(), "bulk mail is not auto-submitted: {value}");
    }

    let confirmation = &app.smtp.messages_to("una@example.org")[0];
    assert!(header(confirmation, "Subject").unwrap().starts_with("Please confirm"));
    assert_eq!(header(confirmation, "Auto-Submitted").as_deref(), Some("auto-generated"));
    for name in ["List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"] {
        assert!(header(confirmation, name).is_none(), "no {name} on transactional mail");
    }
}
