//! Item 31: an SPF record for the From domain is checked before a bulk send
//! (looked up in DNS; here a fixture zone on loopback). Source: the Gmail,
//! Yahoo and Microsoft bulk-sender rules.

use crate::both_backends;
use crate::support::app::{Db, TestApp};
use crate::support::dns::{AuthRig, as_pairs, failed_checks, try_send};
use serde_json::json;

both_backends!(a_send_is_refused_without_spf_and_goes_once_it_is_published);

async fn a_send_is_refused_without_spf_and_goes_once_it_is_published(db: Db) {
    let rig = AuthRig::new(1024);
    rig.publish_all();
    rig.dns.remove(&rig.spf_name());
    let app = TestApp::spawn_with(db, &as_pairs(&rig.settings(true))).await;
    app.confirmed_subscribers("s", 1, "updates").await;
    let id = app.create_update("News", "Hello", &["updates"]).await;
    let (status, answer) = try_send(&app, &id, json!({})).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(failed_checks(&answer), vec!["spf".to_owned()], "{answer}");

    // A TXT record that is not SPF does not count.
    rig.dns.txt(&rig.spf_name(), "google-site-verification=abc");
    assert_eq!(failed_checks(&try_send(&app, &id, json!({})).await.1), vec!["spf".to_owned()]);

    rig.dns.txt(&rig.spf_name(), "v=spf1 ip4:127.0.0.1 -all");
    let (status, answer) = try_send(&app, &id, json!({})).await;
    assert_eq!(status, 202, "SPF published, every check passes: {answer}");
    app.drive_delivery(&id, 5).await;
    assert_eq!(app.smtp.message_count(), 1);
}
