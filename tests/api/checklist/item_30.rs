//! Item 30: no bulk send without a DKIM key of at least 1024 bits whose `d=`
//! aligns with the From domain; a refused send names the check, and an
//! admin's override sends and is audited. Source: the Gmail, Yahoo and
//! Microsoft bulk-sender rules (2024-25).

use crate::both_backends;
use crate::support::app::{Db, TestApp};
use crate::support::dns::{AuthRig, FROM_DOMAIN, SELECTOR, as_pairs, failed_checks, try_send};
use serde_json::json;

both_backends!(
    a_send_without_a_dkim_key_is_refused_naming_the_check,
    a_send_signed_with_a_512_bit_key_is_refused,
    a_send_whose_dkim_domain_does_not_align_with_from_is_refused,
    an_admin_may_override_the_refusal_for_one_send_and_it_is_audited,
);

async fn draft(app: &TestApp) -> String {
    app.confirmed_subscribers("s", 2, "updates").await;
    app.create_update("News", "Hello {{name}}", &["updates"]).await
}

async fn a_send_without_a_dkim_key_is_refused_naming_the_check(db: Db) {
    let rig = AuthRig::new(1024);
    rig.publish_all();
    let app = TestApp::spawn_with(db, &as_pairs(&rig.settings(false))).await;
    let id = draft(&app).await;
    let (status, answer) = try_send(&app, &id, json!({})).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "sender_authentication");
    assert!(failed_checks(&answer).contains(&"dkim_key".to_owned()), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("dkim_key"), "{answer}");
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft", "nothing started");
    app.drive_delivery(&id, 3).await;
    assert_eq!(app.smtp.message_count(), 0, "nothing was sent");
}

async fn a_send_signed_with_a_512_bit_key_is_refused(db: Db) {
    let rig = AuthRig::new(512);
    rig.publish_all();
    let app = TestApp::spawn_with(db, &as_pairs(&rig.settings(true))).await;
    let id = draft(&app).await;
    let (status, answer) = try_send(&app, &id, json!({})).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(failed_checks(&answer), vec!["dkim_key".to_owned()], "only the key size fails: {answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("512 bits"), "{answer}");
}

async fn a_send_whose_dkim_domain_does_not_align_with_from_is_refused(db: Db) {
    let rig = AuthRig::new(1024);
    rig.publish_all();
    // The key is published where d= points, so only alignment fails.
    rig.dns.txt(&format!("{SELECTOR}._domainkey.elsewhere.test"), &format!("v=DKIM1; k=rsa; p={}", rig.public));
    let mut settings = rig.settings(true);
    settings.push(("TIDINGS_DKIM_DOMAIN", "elsewhere.test".to_owned()));
    let app = TestApp::spawn_with(db, &as_pairs(&settings)).await;
    let id = draft(&app).await;
    let (status, answer) = try_send(&app, &id, json!({})).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(failed_checks(&answer), vec!["dkim_alignment".to_owned()], "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains(FROM_DOMAIN), "{answer}");
}

async fn an_admin_may_override_the_refusal_for_one_send_and_it_is_audited(db: Db) {
    let rig = AuthRig::new(1024);
    rig.publish_all();
    let app = TestApp::spawn_with(db, &as_pairs(&rig.settings(false))).await;
    let id = draft(&app).await;
    let (status, answer) = try_send(&app, &id, json!({"override_authentication": true})).await;
    assert_eq!(status, 202, "{answer}");
    app.drive_delivery(&id, 5).await;
    assert_eq!(app.smtp.message_count(), 2, "the overridden send went");
    let audit = app.api_get("/audit-log?action=sender_authentication.override").await;
    let entries = audit["entries"].as_array().unwrap();
    let entry = entries.iter().find(|e| e["action"] == "sender_authentication.override").expect("audited");
    assert_eq!(entry["target"], format!("update:{id}"));
    assert!(entry["detail"].as_str().unwrap().contains("dkim_key"), "{entry}");
    assert!(entry["actor"].as_str().unwrap().starts_with("api-token:"), "{entry}");

    // The override was for that send only: the next one is refused again.
    let next = app.create_update("More news", "Hello again", &["updates"]).await;
    assert_eq!(try_send(&app, &next, json!({})).await.0, 409);
}
