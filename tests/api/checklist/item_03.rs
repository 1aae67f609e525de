//! Checklist item 03: consent wording names the controller (the group);
//! publishing wording that does not is warned about and must be
//! acknowledged, and the acknowledgement is audited: through the API and
//! through the admin form (`/admin/lists/{id}/wording`). UK GDPR Art 7(2),
//! Recital 42; the ICO's guidance on "partners" consent (item 04).

use crate::both_backends;
use crate::support::app::{Db, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

both_backends!(
    wording_that_does_not_name_the_group_is_refused_until_acknowledged_and_the_acknowledgement_is_audited,
    the_admin_form_warns_about_the_wording_and_publishes_only_once_acknowledged,
);

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

async fn the_admin_form_warns_about_the_wording_and_publishes_only_once_acknowledged(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_GROUP_NAME", "Save Our Hospital")]).await;
    let admin = app.login_as_admin().await;
    let list = app.api_get("/lists/updates").await;
    let page = format!("/admin/lists/{}/wording", list["id"].as_str().unwrap());
    let form = admin.get(&page).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("In force now: version 1"), "{}", form.body);
    let lists = admin.get("/admin/lists").await;
    assert!(lists.body.contains(&format!("href=\"{page}\"")), "linked from the lists page");
    let before = app.api_get("/consent-statements").await;

    // Wording that names no group and offers partners' mail: the form comes
    // back with both warnings and the box to tick; nothing is published.
    let bad = "Yes, email me news and offers from our partners.";
    let res = admin.submit(&page, &page, &[("text", bad)]).await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert!(res.body.contains("does not name Save Our Hospital"), "{}", res.body);
    assert!(res.body.contains("partners or third parties"), "{}", res.body);
    assert!(res.body.contains("name=\"acknowledge\""), "the box to tick: {}", res.body);
    assert!(res.body.contains(bad), "what was typed is kept");
    assert_eq!(app.api_get("/consent-statements").await, before, "nothing was published");
    assert!(audit_details(&app, "consent.wording_warning_acknowledged").await.is_empty());

    // Wording that names the group and no one else is published at once.
    let good = "Yes, email me news from Save Our Hospital.";
    let res = admin.submit(&page, &page, &[("text", good)]).await;
    assert_eq!((res.status, res.location()), (303, Some("/admin/lists?notice=wording")), "{}", res.body);
    let current = app.api_get("/consent-statements").await;
    let updates = current.as_array().unwrap().iter().find(|s| s["list"] == "updates").cloned().unwrap();
    assert_eq!((updates["version"].as_i64(), updates["text"].as_str()), (Some(2), Some(good)));

    // The warned wording, acknowledged: published, and audited as the
    // organiser's acknowledgement.
    let res = admin.submit(&page, &page, &[("text", bad), ("acknowledge", "on")]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let current = app.api_get("/consent-statements").await;
    let updates = current.as_array().unwrap().iter().find(|s| s["list"] == "updates").cloned().unwrap();
    assert_eq!((updates["version"].as_i64(), updates["text"].as_str()), (Some(3), Some(bad)));
    let acknowledged = audit_details(&app, "consent.wording_warning_acknowledged").await;
    assert_eq!(acknowledged.len(), 1, "{acknowledged:?}");
    assert!(acknowledged[0].contains("partners"), "{acknowledged:?}");
    let log = app.api_get("/audit-log?action=wording_warning").await;
    assert_eq!(log["entries"][0]["actor_label"], "admin@hospital.test", "{log}");

    // Empty wording is an error on the form; an editor cannot publish.
    let res = admin.submit(&page, &page, &[("text", "  ")]).await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("the text is required"), "{}", res.body);
    assert_eq!(app.login_as_editor().await.get(&page).await.status, 403);
}
