//! `GET /api/v1/openapi.json`: every route of the API router is described,
//! with exactly the methods it answers (asked of the running router, not
//! listed by hand), every reference resolves, and the error schema is the
//! shape errors really have.

use crate::both_backends;
use crate::support::app::{Db, TestApp};
use std::collections::BTreeSet;

both_backends!(
    the_document_describes_every_api_route_with_the_methods_it_answers,
    the_document_needs_a_token_like_every_api_route,
    errors_axum_raises_itself_are_json_too,
);

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> serde_json::Value {
    let res = app.api(reqwest::Method::GET, "/openapi.json").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    res.json().await.unwrap()
}

/// The methods the running router answers on `path` (from the `Allow`
/// header of its 405 answer to a method no route takes).
async fn methods_answered(app: &TestApp, path: &str) -> BTreeSet<String> {
    let concrete = crate::admin::concrete(path);
    let res = app.api(reqwest::Method::from_bytes(b"TRACE").unwrap(), &concrete).send().await.unwrap();
    assert_eq!(res.status(), 405, "TRACE {path}");
    let allow = res.headers()["allow"].to_str().unwrap().to_owned();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    allow.split(',').map(|m| m.trim().to_ascii_lowercase()).filter(|m| m != "head").collect()
}

async fn the_document_describes_every_api_route_with_the_methods_it_answers(db: Db) {
    let app = TestApp::spawn(db).await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();

    let routes = tidings::web::api_paths();
    assert!(routes.len() >= 20, "{routes:?}");
    for route in &routes {
        let full = format!("/api/v1{route}");
        let item = paths.get(&full).unwrap_or_else(|| panic!("{full} is not described"));
        let described: BTreeSet<String> =
            METHODS.iter().filter(|m| item.get(**m).is_some()).map(|m| m.to_string()).collect();
        let answered = methods_answered(&app, route).await;
        assert_eq!(described, answered, "{full}: described vs answered");
    }
    let routed: BTreeSet<String> = routes.iter().map(|r| format!("/api/v1{r}")).collect();
    let described: BTreeSet<String> = paths.keys().cloned().collect();
    assert_eq!(described, routed, "nothing described that is not routed");

    // Bearer auth, everywhere.
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["type"], "http");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(doc["security"], serde_json::json!([{ "bearer": [] }]));

    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(operation_ids.insert(id.to_owned()), "duplicate operationId {id}");
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path}: a success response");
            assert_eq!(
                responses["401"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody"
            );
            if op.get("requestBody").is_some() {
                assert!(responses.contains_key("422"), "{method} {path}: 422 for bad fields");
            }
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["in"] == "path" {
                    assert!(path.contains(&format!("{{{}}}", param["name"].as_str().unwrap())), "{path}: {param}");
                    assert!(responses.contains_key("404"), "{method} {path}: 404 for an unknown id");
                }
            }
        }
    }

    // Every reference points at a schema that exists.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling reference to {name}");
    }
    // Types that the API returns are generated from the Rust structs.
    for name in ["ListView", "SubscriberView", "ConsentEventView", "UpdateView", "ScheduleView", "DeliveryStats"] {
        assert!(schemas.contains_key(name), "{name} missing");
    }
    let list_props = schemas["ListView"]["properties"].as_object().unwrap();
    for field in ["id", "slug", "name", "description", "public", "archive"] {
        assert!(list_props.contains_key(field), "ListView.{field}");
    }

    // The error schema is {"error": {"code", "message", "fields"?}}, and a
    // real error has that shape.
    let error = &schemas["ErrorDetail"];
    let required: BTreeSet<&str> = error["required"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(required, BTreeSet::from(["code", "message"]));
    assert!(error["properties"]["fields"].is_object());
    assert_eq!(schemas["ErrorBody"]["properties"]["error"]["$ref"], "#/components/schemas/ErrorDetail");
    let res = app
        .api(reqwest::Method::POST, "/lists")
        .json(&serde_json::json!({ "slug": "Bad Slug!" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    let keys: BTreeSet<&str> = body["error"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["code", "message", "fields"]));
    assert!(body["error"]["fields"]["slug"].is_string(), "{body}");
}

async fn the_document_needs_a_token_like_every_api_route(db: Db) {
    let app = TestApp::spawn(db).await;
    let res = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = app.http.get(app.url("/api/v1/openapi.json")).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(res.status(), 401);
}

async fn errors_axum_raises_itself_are_json_too(db: Db) {
    let app = TestApp::spawn(db).await;
    let update = app.create_update("Hi", "Body", &["updates"]).await;
    for (path, status, code) in [
        (format!("/updates/{update}/deliveries?limit=abc"), 400, "bad_request"),
        (format!("/updates/{update}/deliveries?cursor=not-a-uuid"), 400, "bad_request"),
        ("/lists/%FF%FE".to_owned(), 400, "bad_request"),
        ("/no/such/route".to_owned(), 404, "not_found"),
    ] {
        let res = app.api(reqwest::Method::GET, &path).send().await.unwrap();
        assert_eq!(res.status(), status, "{path}");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"), "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}: {body}");
    }
    let res = app.api(reqwest::Method::DELETE, "/subscribers").send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert!(res.headers()["allow"].to_str().unwrap().contains("POST"), "Allow is kept");
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"]["code"], "method_not_allowed");
}
