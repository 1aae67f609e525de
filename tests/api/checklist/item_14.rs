//! Checklist item 14: the access/portability export is complete: ledger,
//! subscriptions, attributes, bounce and complaint records, transactional
//! mail (subject, date), rights requests, organiser actions on the record,
//! in each form the export is offered in (JSON, CSV). UK GDPR Art 15, 20.

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token, header};
use reqwest::Method;
use serde_json::json;

both_backends!(the_export_holds_bounces_transactional_mail_rights_requests_and_organiser_actions);

const SECRET: &str = "a-long-webhook-secret-for-tests";

async fn the_export_holds_bounces_transactional_mail_rights_requests_and_organiser_actions(db: Db) {
    let app =
        TestApp::spawn_with(db, &[("TIDINGS_WEBHOOK_SECRET", SECRET), ("TIDINGS_GROUP_NAME", "Save Our Hospital")])
            .await;
    let who = "ann@example.org";
    assert_eq!(app.subscribe(who, "updates").await.status(), 200);
    app.drain_outbox().await;
    let token = confirm_token(app.smtp.messages_to(who).last().unwrap());
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    let id = app.subscriber(who).await["id"].as_str().unwrap().to_owned();

    // An organiser corrects her name; she asks for access.
    let res = app.api(Method::PATCH, &format!("/subscribers/{id}")).json(&json!({"name": "Ann Smith"})).send().await;
    assert!(res.unwrap().status().is_success());
    let res = app.api(Method::POST, "/rights-requests").json(&json!({"kind": "access", "subject": who})).send().await;
    assert_eq!(res.unwrap().status(), 201);
    // A copy of an update bounces softly.
    let update = app.create_update("Spring news", "Dear {{name}}, news.", &["updates"]).await;
    assert_eq!(app.api(Method::POST, &format!("/updates/{update}/send")).send().await.unwrap().status(), 202);
    app.drive_delivery(&update, 50).await;
    let copy = app.smtp.messages_to(who).into_iter().find(|m| header(m, "Subject").as_deref() == Some("Spring news"));
    let message_id = header(&copy.unwrap(), "Message-ID").unwrap();
    let report = json!([{"type": "bounce", "email": who, "message_id": message_id, "status": "4.2.2", "diagnostic": "mailbox full", "event_id": "r-9"}]);
    let res =
        app.http.post(app.url("/webhooks/generic")).basic_auth("tidings", Some(SECRET)).json(&report).send().await;
    assert_eq!(res.unwrap().status(), 200);
    // Then she reports it as spam.
    let report = json!([{"type": "complaint", "email": who, "message_id": message_id, "feedback_type": "abuse", "event_id": "r-10"}]);
    let res =
        app.http.post(app.url("/webhooks/generic")).basic_auth("tidings", Some(SECRET)).json(&report).send().await;
    assert_eq!(res.unwrap().status(), 200);

    let e = app.api_get(&format!("/subscribers/{id}/export")).await;
    let bounces = e["bounces"].as_array().unwrap();
    assert_eq!(bounces.len(), 2, "{e}");
    assert_eq!(bounces[0]["class"], "soft");
    assert_eq!(bounces[1]["class"], "complaint");
    let mail = e["transactional_mail"].as_array().unwrap();
    assert_eq!(mail.len(), 1, "{e}");
    assert_eq!(mail[0]["kind"], "confirmation");
    assert_eq!(mail[0]["subject"], "Please confirm your subscription to Save Our Hospital");
    assert!(mail[0]["sent_at"].is_string());
    let requests = e["rights_requests"].as_array().unwrap();
    assert_eq!((requests.len(), requests[0]["kind"].as_str()), (1, Some("access")), "{e}");
    let actions = e["organiser_actions"].as_array().unwrap();
    assert!(
        actions.iter().any(|a| a["action"] == "PATCH /api/v1/subscribers/{id}" && a["status"] == 200),
        "the name correction: {e}"
    );
    // Another person's record is not in it.
    assert!(!e.to_string().contains("bob@example.org"));

    // The CSV form holds the same records, one row each.
    let res = app.api(Method::GET, &format!("/subscribers/{id}/export?format=csv")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let columns: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let rows: Vec<std::collections::HashMap<String, String>> =
        reader.records().map(|r| columns.iter().cloned().zip(r.unwrap().iter().map(str::to_owned)).collect()).collect();
    let of = |record: &str| rows.iter().filter(|r| r["record"] == record).collect::<Vec<_>>();
    let bounce_rows = of("bounce");
    let classes: Vec<&str> = bounce_rows.iter().map(|r| r["kind"].as_str()).collect();
    assert_eq!(classes, ["soft", "complaint"], "{body}");
    assert_eq!(bounce_rows[0]["status_code"], "4.2.2");
    assert!(!bounce_rows[1]["received_at"].is_empty());
    let mail_rows = of("transactional_mail");
    assert_eq!(mail_rows.len(), 1, "{body}");
    assert_eq!(mail_rows[0]["subject"], "Please confirm your subscription to Save Our Hospital");
    let instant = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    assert_eq!(instant(&mail_rows[0]["sent_at"]), instant(mail[0]["sent_at"].as_str().unwrap()));
    let request_rows = of("rights_request");
    assert_eq!(request_rows.len(), 1, "{body}");
    assert_eq!((request_rows[0]["kind"].as_str(), request_rows[0]["status"].as_str()), ("access", "open"));
    assert_eq!(instant(&request_rows[0]["due_at"]), instant(requests[0]["due_at"].as_str().unwrap()));
    let action_rows = of("organiser_action");
    assert!(
        action_rows.iter().any(|a| a["action"] == "PATCH /api/v1/subscribers/{id}" && a["status"] == "200"),
        "{body}"
    );
    assert!(!body.contains("bob@example.org"));

    // The admin UI offers the same two downloads on the person's page.
    let admin = app.login_as_admin().await;
    let page = admin.get(&format!("/admin/subscribers/{id}")).await;
    assert!(page.body.contains(&format!("/admin/subscribers/{id}/export?format=csv")), "{}", page.body);
    let json_copy = admin.get(&format!("/admin/subscribers/{id}/export")).await;
    assert_eq!(json_copy.status, 200);
    assert!(json_copy.headers["content-disposition"].to_str().unwrap().contains(".json"));
    let copy: serde_json::Value = serde_json::from_str(&json_copy.body).unwrap();
    for part in ["bounces", "transactional_mail", "rights_requests", "organiser_actions"] {
        assert_eq!(copy[part].as_array().map(Vec::len), e[part].as_array().map(Vec::len), "{part}");
    }
    let csv_copy = admin.get(&format!("/admin/subscribers/{id}/export?format=csv")).await;
    assert_eq!(csv_copy.status, 200);
    for record in ["\nbounce,", "\ntransactional_mail,", "\nrights_request,", "\norganiser_action,"] {
        assert!(csv_copy.body.contains(record), "{record}: {}", csv_copy.body);
    }
    assert_eq!(app.login_as_editor().await.get(&format!("/admin/subscribers/{id}/export")).await.status, 403);
}
