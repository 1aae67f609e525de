//! The organiser JSON API: authentication, lists, subscribers, consent.

use crate::both_backends;
use crate::support::app::{Db, TestApp};
use reqwest::Method;
use serde_json::json;

both_backends!(
    every_api_route_refuses_anonymous_and_bad_tokens,
    lists_can_be_created_read_updated_and_deleted,
    subscribers_are_added_with_a_basis_or_a_confirmation,
    subscribers_are_found_by_address_case_insensitively,
    new_statement_and_notice_versions_are_what_later_consents_point_to,
);

async fn every_api_route_refuses_anonymous_and_bad_tokens(db: Db) {
    let app = TestApp::spawn(db).await;
    // Enumerated from the table the API router is built from, so a new
    // route is covered the moment it exists; plus a path that matches none.
    let mut paths: Vec<String> = tidings::web::api_paths().iter().map(|p| p.replace("{id}", "updates")).collect();
    assert!(paths.len() >= 19, "{paths:?}");
    paths.push("/no-such-route".to_owned());
    let methods = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    for path in &paths {
        for method in &methods {
            let url = app.url(&format!("/api/v1{path}"));
            let anonymous = app
                .http
                .request(method.clone(), &url)
                .json(&json!({"slug": "intruder", "name": "x"}))
                .send()
                .await
                .unwrap();
            assert_eq!(anonymous.status(), 401, "{method} {path}");
            assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
            let body: serde_json::Value = anonymous.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized");
            for bad in ["tdg_forged", "Bearer", &format!("{}x", app.api_token)] {
                let res = app.http.request(method.clone(), &url).bearer_auth(bad).send().await.unwrap();
                assert_eq!(res.status(), 401, "{method} {path} with {bad}");
            }
        }
    }
    // The list still exists: nothing above reached a handler.
    assert_eq!(app.api_get("/lists/updates").await["slug"], "updates");
}

async fn lists_can_be_created_read_updated_and_deleted(db: Db) {
    let app = TestApp::spawn(db).await;
    let created = app.create_list("court-case", "Court case").await;
    for key in ["id", "slug", "name", "description", "public", "archive"] {
        assert!(created.get(key).is_some(), "list has {key}: {created}");
    }
    assert_eq!((created["public"].as_bool(), created["archive"].as_bool()), (Some(true), Some(false)));
    let dup =
        app.api(Method::POST, "/lists").json(&json!({"slug": "court-case", "name": "Again"})).send().await.unwrap();
    assert_eq!(dup.status(), 409);
    let bad = app.api(Method::POST, "/lists").json(&json!({"slug": "Bad Slug!", "name": ""})).send().await.unwrap();
    assert_eq!(bad.status(), 422);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert!(body["error"]["fields"]["slug"].is_string() && body["error"]["fields"]["name"].is_string());

    let id = created["id"].as_str().unwrap();
    assert_eq!(app.api_get(&format!("/lists/{id}")).await["name"], "Court case");
    let patched = app
        .api(Method::PATCH, &format!("/lists/{id}"))
        .json(&json!({"name": "The court case", "archive": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let patched: serde_json::Value = patched.json().await.unwrap();
    assert_eq!((patched["name"].as_str(), patched["archive"].as_bool()), (Some("The court case"), Some(true)));
    let all = app.api_get("/lists").await;
    assert_eq!(all.as_array().unwrap().len(), 2);

    assert_eq!(app.api(Method::DELETE, "/lists/court-case").send().await.unwrap().status(), 204);
    assert_eq!(app.api(Method::GET, "/lists/court-case").send().await.unwrap().status(), 404);
    let res =
        app.post_json("/subscribe", &json!({"email": "a@example.org", "lists": ["court-case"], "consent": true})).await;
    assert_eq!(res.status(), 422, "a deleted list takes no subscriptions");
}

async fn subscribers_are_added_with_a_basis_or_a_confirmation(db: Db) {
    let app = TestApp::spawn(db).await;
    let res = app
        .api(Method::POST, "/subscribers")
        .json(&json!({"email": "max@example.org", "lists": ["updates"], "status": "confirmed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422, "confirmed needs a basis");

    let res = app
        .api(Method::POST, "/subscribers")
        .json(&json!({"email": "max@example.org", "name": "Max", "lists": ["updates"], "status": "confirmed", "basis": "paper form at the 2026-11-01 rally"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let s: serde_json::Value = res.json().await.unwrap();
    for key in ["id", "email", "name", "created_at", "subscriptions"] {
        assert!(s.get(key).is_some(), "subscriber has {key}");
    }
    assert_eq!(s["subscriptions"][0]["list"], "updates");
    assert_eq!(s["subscriptions"][0]["status"], "confirmed");
    assert!(s["subscriptions"][0]["updated_at"].is_string());
    let ledger = app.ledger("max@example.org").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["kind"], "imported");
    assert_eq!(ledger[0]["detail"], "paper form at the 2026-11-01 rally");
    assert!(ledger[0]["actor"].as_str().unwrap().starts_with("api-token:"));
    app.drain_outbox().await;
    assert!(app.smtp.messages_to("max@example.org").is_empty(), "no confirmation for a confirmed add");

    // pending (the default) sends a confirmation.
    let res = app
        .api(Method::POST, "/subscribers")
        .json(&json!({"email": "nia@example.org", "lists": ["updates"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to("nia@example.org").len(), 1);
    assert_eq!(app.status("nia@example.org", "updates").await, "pending");

    // A suppressed address is refused, with the reason.
    {
        let mut tx = app.ctx.store.write().await.unwrap();
        let hash =
            tidings::domain::EmailAddress::parse("erased@example.org").unwrap().suppression_hash(&app.ctx.address_key);
        tx.suppress(&hash, "erased", app.ctx.clock.now()).await.unwrap();
        tx.commit().await.unwrap();
    }
    let res = app
        .api(Method::POST, "/subscribers")
        .json(&json!({"email": "Erased@Example.org", "lists": ["updates"], "status": "confirmed", "basis": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409, "issue 24: a suppressed address is a conflict, code `suppressed`");
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"]["code"], "suppressed");
    let unknown = app
        .api(Method::POST, "/subscribers")
        .json(&json!({"email": "o@example.org", "lists": ["nope"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 422);
    let wrong_type = app.api(Method::POST, "/subscribers").body("{}").send().await.unwrap();
    assert_eq!(wrong_type.status(), 415);
}

async fn subscribers_are_found_by_address_case_insensitively(db: Db) {
    let app = TestApp::spawn(db).await;
    app.subscribe("Pat.Doe@Example.org", "updates").await;
    let s = app.subscriber("pat.doe@EXAMPLE.org").await;
    // Kept as typed but for the domain, which is stored in its normal
    // (lower-case ASCII) form (issue 16 §4).
    assert_eq!(s["email"], "Pat.Doe@example.org");
    let id = s["id"].as_str().unwrap();
    assert_eq!(app.api_get(&format!("/subscribers/{id}")).await["email"], "Pat.Doe@example.org");
    assert_eq!(app.api(Method::GET, "/subscribers?email=nobody@example.org").send().await.unwrap().status(), 404);
    assert_eq!(app.api(Method::GET, "/subscribers?email=not-an-address").send().await.unwrap().status(), 422);
    assert_eq!(app.api(Method::GET, "/subscribers/not-a-uuid").send().await.unwrap().status(), 404);
    let missing = uuid::Uuid::now_v7();
    assert_eq!(app.api(Method::GET, &format!("/subscribers/{missing}/consent")).send().await.unwrap().status(), 404);
}

async fn new_statement_and_notice_versions_are_what_later_consents_point_to(db: Db) {
    let app = TestApp::spawn(db).await;
    let notice = app
        .api(Method::POST, "/privacy-notices")
        .json(&json!({"text": "Save Our Hospital keeps your address to send you updates.\n\nContact us to leave.", "url": "https://hospital.test/privacy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(notice.status(), 201);
    let notice: serde_json::Value = notice.json().await.unwrap();
    assert_eq!(notice["version"], 2);
    let statement = app
        .api(Method::POST, "/consent-statements")
        .json(&json!({"list": "updates", "text": "Email me news of the campaign.", "acknowledge_warnings": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(statement.status(), 201);
    let statement: serde_json::Value = statement.json().await.unwrap();
    assert_eq!((statement["version"].as_i64(), statement["privacy_notice_version"].as_i64()), (Some(2), Some(2)));

    let form = app.http.get(app.url("/subscribe")).send().await.unwrap().text().await.unwrap();
    assert!(form.contains("Email me news of the campaign."), "the form shows the wording in force");
    let privacy = app.http.get(app.url("/privacy")).send().await.unwrap().text().await.unwrap();
    assert!(privacy.contains("Version 2") && privacy.contains("Contact us to leave."));

    app.subscribe("quin@example.org", "updates").await;
    let ledger = app.ledger("quin@example.org").await;
    assert_eq!(ledger[0]["statement"]["version"], 2);
    assert_eq!(ledger[0]["statement"]["text"], "Email me news of the campaign.");
    assert_eq!(ledger[0]["privacy_notice"]["version"], 2);
    assert_eq!(ledger[0]["privacy_notice"]["url"], "https://hospital.test/privacy");
    let empty = app.api(Method::POST, "/privacy-notices").json(&json!({"text": "  "})).send().await.unwrap();
    assert_eq!(empty.status(), 422);
}
