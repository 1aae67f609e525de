//! Item 32: a DMARC record for the From domain, and the DKIM public key
//! published under the selector (TXT at SELECTOR._domainkey.DOMAIN, `p=`
//! the configured key's), are checked before a bulk send. Source: the
//! Gmail, Yahoo and Microsoft bulk-sender rules; RFC 7489; RFC 6376.

use crate::both_backends;
use crate::support::app::{Db, TestApp};
use crate::support::dns::{AuthRig, as_pairs, failed_checks, try_send};
use serde_json::json;

both_backends!(
    a_send_is_refused_without_dmarc,
    a_send_is_refused_when_the_dkim_key_is_not_published_or_differs,
    a_send_with_every_record_published_goes_signed
);

async fn a_send_is_refused_without_dmarc(db: Db) {
    let rig = AuthRig::new(1024);
    rig.publish_all();
    rig.dns.remove(&rig.dmarc_name());
    let app = TestApp::spawn_with(db, &as_pairs(&rig.settings(true))).await;
    app.confirmed_subscribers("s", 1, "updates").await;
    let id = app.create_update("News", "Hello", &["updates"]).await;
    let (status, answer) = try_send(&app, &id, json!({})).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(failed_checks(&answer), vec!["dmarc".to_owned()], "{answer}");
}

async fn a_send_is_refused_when_the_dkim_key_is_not_published_or_differs(db: Db) {
    let rig = AuthRig::new(1024);
    rig.publish_all();
    rig.dns.remove(&rig.dkim_name());
    let app = TestApp::spawn_with(db, &as_pairs(&rig.settings(true))).await;
    app.confirmed_subscribers("s", 1, "updates").await;
    let id = app.create_update("News", "Hello", &["updates"]).await;
    let (status, answer) = try_send(&app, &id, json!({})).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(failed_checks(&answer), vec!["dkim_dns".to_owned()], "not published: {answer}");

    // Another key under the selector (an old one, say) is no better.
    let other = AuthRig::new(1024);
    rig.dns.txt(&rig.dkim_name(), &format!("v=DKIM1; k=rsa; p={}", other.public));
    let (status, answer) = try_send(&app, &id, json!({})).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(failed_checks(&answer), vec!["dkim_dns".to_owned()], "a different key: {answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("different key"), "{answer}");
    assert_eq!(app.smtp.message_count(), 0);
}

async fn a_send_with_every_record_published_goes_signed(db: Db) {
    let rig = AuthRig::new(2048);
    rig.publish_all();
    let app = TestApp::spawn_with(db, &as_pairs(&rig.settings(true))).await;
    app.confirmed_subscribers("s", 1, "updates").await;
    let id = app.create_update("News", "Hello", &["updates"]).await;
    let (status, answer) = try_send(&app, &id, json!({})).await;
    assert_eq!(status, 202, "{answer}");
    app.drive_delivery(&id, 5).await;
    let mail = app.smtp.messages_to("s0@example.org").pop().expect("sent");
    let signature = crate::support::app::header(&mail, "DKIM-Signature").expect("signed");
    assert!(signature.contains("d=hospital.test") && signature.contains("s=t2026"), "{signature}");
}
