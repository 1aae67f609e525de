//! Checklist item 04: no bundled "partners" / third-party consent: wording
//! mentioning partners or third parties warns and needs acknowledgement.
//! ICO direct marketing guidance.

use super::item_03::{audit_details, publish};
use crate::both_backends;
use crate::support::app::{Db, TestApp};
use serde_json::json;

both_backends!(wording_offering_partners_or_third_parties_consent_is_refused_until_acknowledged);

async fn wording_offering_partners_or_third_parties_consent_is_refused_until_acknowledged(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_GROUP_NAME", "Save Our Hospital")]).await;
    for text in [
        "Yes, email me news from Save Our Hospital and its partners.",
        "Save Our Hospital may share my address with selected organisations.",
        "Yes to news from Save Our Hospital and THIRD PARTIES we trust.",
        "Save Our Hospital and affiliates may email me.",
    ] {
        let (status, body) = publish(&app, json!({"list": "updates", "text": text})).await;
        assert_eq!(status, 422, "{text}: {body}");
        assert_eq!(body["error"]["code"], "wording_warning");
        let warnings = body["error"]["warnings"].as_array().unwrap();
        assert_eq!(warnings.len(), 1, "names the group, so only the partners warning: {body}");
        assert!(warnings[0].as_str().unwrap().contains("partners or third parties"), "{body}");
    }
    assert_eq!(app.api_get("/consent-statements").await[0]["version"], 1, "nothing published");

    // Both problems at once: two warnings.
    let (status, body) = publish(&app, json!({"list": "updates", "text": "Email me offers from our partners."})).await;
    assert_eq!((status, body["error"]["warnings"].as_array().map(Vec::len)), (422, Some(2)), "{body}");

    let (status, body) = publish(
        &app,
        json!({"list": "updates", "text": "Save Our Hospital and its partners may email me.", "acknowledge_warnings": true}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let acknowledged = audit_details(&app, "consent.wording_warning_acknowledged").await;
    assert_eq!(acknowledged.len(), 1);
    assert!(acknowledged[0].contains("\"partner\""), "{acknowledged:?}");
}
