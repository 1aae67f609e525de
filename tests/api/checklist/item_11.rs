//! Item 11: a withdrawal wins on every route (subscribe, organiser add,
//! import, preferences, test sends): a person who withdrew (from a list or
//! from everything), bounced, complained or was erased is never confirmed,
//! re-permissioned or mailed again except through their own new double
//! opt-in; `POST /api/v1/subscribers` answers 409 `withdrawn` or
//! `suppressed`. Source: UK GDPR Art 7(3) (withdrawal as easy as giving
//! consent), Art 21(3) (no further processing for direct marketing).

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token};
use reqwest::Method;
use serde_json::{Value, json};
use tidings::workers::imports::ImportWorker;

both_backends!(
    an_api_add_of_someone_who_withdrew_is_refused_as_withdrawn_or_suppressed_whatever_the_status,
    an_import_skips_someone_who_unsubscribed_from_everything_even_for_a_list_they_were_never_on,
    a_test_send_skips_withdrawn_and_suppressed_addresses_and_says_which,
    the_form_and_the_preferences_page_only_start_the_persons_own_new_double_opt_in,
);

const BASIS: &str = "signed the paper petition at the 2026 fair";

/// Adds `email` to `lists` as confirmed, through the API.
pub(super) async fn add_confirmed(app: &TestApp, email: &str, lists: &[&str]) {
    let res = app
        .api(Method::POST, "/subscribers")
        .json(&json!({"email": email, "lists": lists, "status": "confirmed", "basis": BASIS}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
}

/// `POST /api/v1/subscribers`: the status and the body.
async fn add(app: &TestApp, email: &str, list: &str, status: &str) -> (u16, Value) {
    let res = app
        .api(Method::POST, "/subscribers")
        .json(&json!({"email": email, "lists": [list], "status": status, "basis": BASIS}))
        .send()
        .await
        .unwrap();
    let code = res.status().as_u16();
    (code, res.json().await.unwrap_or(Value::Null))
}

/// The person's preferences page path (as every mail links it).
pub(super) async fn preferences_path(app: &TestApp, email: &str) -> String {
    let id = uuid::Uuid::parse_str(app.subscriber(email).await["id"].as_str().unwrap()).unwrap();
    format!("/preferences/{}", tidings::domain::SignedToken::preferences(id).encode(&app.ctx.secret_key))
}

/// Presses "Unsubscribe from everything" on the preferences page.
pub(super) async fn unsubscribe_from_everything(app: &TestApp, email: &str) {
    let path = preferences_path(app, email).await;
    let res = app.post_form(&path, &[("action", "unsubscribe-all")]).await;
    assert_eq!(res.status(), 200);
}

async fn an_api_add_of_someone_who_withdrew_is_refused_as_withdrawn_or_suppressed_whatever_the_status(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("events", "Events").await;
    add_confirmed(&app, "all@example.org", &["updates"]).await;
    add_confirmed(&app, "one@example.org", &["updates"]).await;
    add_confirmed(&app, "gone@example.org", &["updates"]).await;
    app.drain_outbox().await;
    unsubscribe_from_everything(&app, "all@example.org").await;
    let token = app.unsubscribe_token("one@example.org", "updates").await;
    assert_eq!(app.post_form(&format!("/unsubscribe/{token}"), &[]).await.status(), 200);
    let gone = app.subscriber("gone@example.org").await["id"].as_str().unwrap().to_owned();
    let res = app.api(Method::POST, &format!("/subscribers/{gone}/erase")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let before = app.smtp.message_count();

    for status in ["confirmed", "pending"] {
        // Unsubscribed from everything: refused on every list, also one they were never on.
        for list in ["updates", "events"] {
            let (code, body) = add(&app, "all@example.org", list, status).await;
            assert_eq!((code, body["error"]["code"].as_str()), (409, Some("withdrawn")), "{status} {list}: {body}");
        }
        // Unsubscribed from one list: refused on that list.
        let (code, body) = add(&app, "one@example.org", "updates", status).await;
        assert_eq!((code, body["error"]["code"].as_str()), (409, Some("withdrawn")), "{status}: {body}");
        // Erased (however the address is written): suppressed.
        let (code, body) = add(&app, "Gone@Example.org", "updates", status).await;
        assert_eq!((code, body["error"]["code"].as_str()), (409, Some("suppressed")), "{status}: {body}");
    }
    app.drain_outbox().await;
    assert_eq!(app.smtp.message_count(), before, "no re-permission mail to anyone who withdrew");
    assert_eq!(app.status("all@example.org", "updates").await, "unsubscribed");
    assert_eq!(app.status("all@example.org", "events").await, "none");
    assert_eq!(app.status("one@example.org", "updates").await, "unsubscribed");
}

/// `POST /api/v1/imports` with `fields` and the file `csv` (multipart).
async fn upload(app: &TestApp, fields: &[(&str, &str)], csv: &str) -> Value {
    let boundary = "----tidings-item-11";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    ));
    let res = app
        .api(Method::POST, "/imports")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let queued: Value = res.json().await.unwrap();
    let (_keep, never) = tokio::sync::watch::channel(false);
    let worker = ImportWorker::new(app.ctx.clone());
    while worker.run_once(&never).await.expect("import step").ran.is_some() {}
    app.api_get(&format!("/imports/{}?errors_limit=100", queued["id"].as_str().unwrap())).await
}

async fn an_import_skips_someone_who_unsubscribed_from_everything_even_for_a_list_they_were_never_on(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("events", "Events").await;
    add_confirmed(&app, "all@example.org", &["updates"]).await;
    unsubscribe_from_everything(&app, "all@example.org").await;
    app.drain_outbox().await;
    let csv = "email\r\nall@example.org\r\nnew@example.org\r\n";
    for fields in [vec![("list", "events"), ("basis", BASIS)], vec![("list", "events"), ("status", "pending")]] {
        let job = upload(&app, &fields, csv).await;
        let errors = job["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{job}");
        assert_eq!(errors[0]["line"], 2, "{job}");
        assert_eq!(
            (errors[0]["outcome"].as_str(), errors[0]["code"].as_str()),
            (Some("skipped"), Some("withdrawn")),
            "{job}"
        );
        assert!(errors[0]["message"].as_str().unwrap().contains("unsubscribed from everything"), "{job}");
    }
    assert_eq!(app.status("all@example.org", "events").await, "none");
    assert_eq!(app.status("new@example.org", "events").await, "confirmed");
    app.drain_outbox().await;
    assert!(app.smtp.messages_to("all@example.org").is_empty(), "no re-permission mail to someone who objected");
}

async fn a_test_send_skips_withdrawn_and_suppressed_addresses_and_says_which(db: Db) {
    let app = TestApp::spawn(db).await;
    add_confirmed(&app, "all@example.org", &["updates"]).await;
    add_confirmed(&app, "gone@example.org", &["updates"]).await;
    unsubscribe_from_everything(&app, "all@example.org").await;
    let gone = app.subscriber("gone@example.org").await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.api(Method::POST, &format!("/subscribers/{gone}/erase")).send().await.unwrap().status(), 200);
    app.drain_outbox().await;
    let update = app.create_update("Hello", "Body", &["updates"]).await;
    let res = app
        .api(Method::POST, &format!("/updates/{update}/test"))
        .json(&json!({"emails": ["organiser@example.org", "ALL@example.org", "gone@example.org"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["queued"], 1, "{body}");
    assert_eq!(body["withdrawn"], json!(["ALL@example.org"]), "{body}");
    assert_eq!(body["suppressed"], json!(["gone@example.org"]), "{body}");
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to("organiser@example.org").len(), 1);
    assert!(app.smtp.messages_to("all@example.org").is_empty());
    assert!(app.smtp.messages_to("gone@example.org").is_empty());
}

async fn the_form_and_the_preferences_page_only_start_the_persons_own_new_double_opt_in(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("events", "Events").await;
    add_confirmed(&app, "all@example.org", &["updates"]).await;
    unsubscribe_from_everything(&app, "all@example.org").await;
    app.drain_outbox().await;

    // The preferences page: re-ticking starts a confirmation, no more.
    let prefs = preferences_path(&app, "all@example.org").await;
    assert_eq!(app.post_form(&prefs, &[("lists", "events"), ("action", "save")]).await.status(), 200);
    assert_eq!(app.status("all@example.org", "events").await, "pending");
    // Pending from the person's own request is still not an organiser's to confirm.
    let (code, body) = add(&app, "all@example.org", "events", "confirmed").await;
    assert_eq!((code, body["error"]["code"].as_str()), (409, Some("withdrawn")), "{body}");

    // The public form: a new double opt-in, and nothing confirmed.
    assert_eq!(app.subscribe("all@example.org", "updates").await.status(), 200);
    assert_eq!(app.status("all@example.org", "updates").await, "pending");
    app.drain_outbox().await;
    let mails = app.smtp.messages_to("all@example.org");
    assert_eq!(mails.len(), 2, "one confirmation mail for each request, nothing else");
    // A bulk send now does not reach them.
    let update = app.create_update("News", "Body", &["updates", "events"]).await;
    let res = app.api(Method::POST, &format!("/updates/{update}/send")).json(&json!({})).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    app.drive_delivery(&update, 20).await;
    assert_eq!(app.smtp.messages_to("all@example.org").len(), 2, "no bulk mail before they confirm");

    // Their own click brings them back, and lifts the objection's bar.
    let token = confirm_token(mails.last().unwrap());
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    assert_eq!(app.status("all@example.org", "updates").await, "confirmed");
    add_confirmed(&app, "all@example.org", &["events"]).await;
    assert_eq!(app.status("all@example.org", "events").await, "confirmed");
}
