//! Checklist item 03: consent wording names the controller (the group);
//! publishing wording that does not is warned about and must be
//! acknowledged, and the acknowledgement is audited. UK GDPR Art 7(2),
//! Recital 42.

use crate::both_backends;
use crate::support::app::{Db, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

both_backends!(wording_that_does_not_name_the_group_is_refused_until_acknowledged_and_the_acknowledgement_is_audited);

pub(crate) async fn publish(app: &TestApp, body: Value) -> (u16, Value) {
    let res = app.api(Method::POST, "/consent-statements").json(&body).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

pub(crate) async fn audit_details(app: &TestApp, action: &str) -> Vec<String> {
    let log = app.api_get("/audit-log?limit=500").await;
    let entries = log["entries"].as_array().or_else(|| log.as_array()).cloned().unwrap_or_default();
    entries.iter().filter(|e| e["action"] == action).map(|e| e["detail"].as_str().unwrap_or("").to_owned()).collect()
}

async fn wording_that_does_not_name_the_group_is_refused_until_acknowledged_and_the_acknowledgement_is_audited(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_GROUP_NAME", "Save Our Hospital")]).await;
    let before = app.api_get("/consent-statements").await;

    // No group named: refused with the reason, nothing published.
    let (status, body) = publish(&app, json!({"list": "updates", "text": "Yes, email me campaign news."})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "wording_warning");
    let warnings = body["error"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{body}");
    assert!(warnings[0].as_str().unwrap().contains("does not name Save Our Hospital"), "{body}");
    assert_eq!(app.api_get("/consent-statements").await, before, "nothing was published");
    assert!(audit_details(&app, "consent.wording_warning_acknowledged").await.is_empty());

    // Wording that names the group is published without a warning.
    let (status, body) =
        publish(&app, json!({"list": "updates", "text": "Yes, email me news from Save Our Hospital."})).await;
    assert_eq!((status, body["version"].as_i64()), (201, Some(2)), "{body}");

    // Acknowledged: published, and the acknowledgement is in the audit log.
    let (status, body) =
        publish(&app, json!({"list": "updates", "text": "Yes, email me campaign news.", "acknowledge_warnings": true}))
            .await;
    assert_eq!((status, body["version"].as_i64()), (201, Some(3)), "{body}");
    let acknowledged = audit_details(&app, "consent.wording_warning_acknowledged").await;
    assert_eq!(acknowledged.len(), 1, "{acknowledged:?}");
    assert!(acknowledged[0].contains("does not name Save Our Hospital"), "{acknowledged:?}");
}
