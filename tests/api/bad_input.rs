//! Bad input gets a clear error: never a panic, a 500, or a leak.

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token, html_escaped};
use serde_json::json;

both_backends!(
    invalid_addresses_are_refused_with_a_field_error,
    line_breaks_in_any_field_are_refused_and_nothing_is_queued,
    no_consent_box_no_subscription,
    unknown_and_private_lists_are_refused_alike,
    oversized_and_malformed_bodies_get_clear_errors,
    html_in_names_and_addresses_is_escaped_everywhere,
    a_filled_honeypot_answers_normally_but_does_nothing,
    too_many_subscribes_from_one_address_are_throttled,
    unknown_routes_and_methods_are_404_and_405,
);

async fn field_errors(res: reqwest::Response) -> serde_json::Value {
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid");
    body["error"]["fields"].clone()
}

async fn invalid_addresses_are_refused_with_a_field_error(db: Db) {
    let app = TestApp::spawn(db).await;
    for bad in [
        "",
        "not-an-address",
        "a@b",
        "a b@example.org",
        "<x@example.org>",
        "x@example.org,y@example.org",
        "x@@example.org",
    ] {
        let res = app.post_json("/subscribe", &json!({"email": bad, "lists": ["updates"], "consent": true})).await;
        let fields = field_errors(res).await;
        assert!(fields["email"].is_string(), "{bad:?}: {fields}");
    }
    let res = app.post_form("/subscribe", &[("email", "nope"), ("lists", "updates"), ("consent", "updates")]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("that does not look like an email address"));
}

async fn line_breaks_in_any_field_are_refused_and_nothing_is_queued(db: Db) {
    let app = TestApp::spawn(db).await;
    let cases = [
        json!({"email": "a@example.org\r\nBcc: victim@example.org", "lists": ["updates"], "consent": true}),
        json!({"email": "a@example.org", "name": "Ann\r\nBcc: victim@example.org", "lists": ["updates"], "consent": true}),
        json!({"email": "a@example.org", "lists": ["updates\r\nX: y"], "consent": true}),
        json!({"email": "a@example.org", "lists": ["updates"], "consent": true, "source": "https://x.test/\r\nX-Evil: 1"}),
    ];
    for body in cases {
        let res = app.post_json("/subscribe", &body).await;
        assert_eq!(res.status(), 422, "{body}");
    }
    assert_eq!(app.drain_outbox().await.sent, 0);
    assert!(app.smtp.messages().is_empty());
}

async fn no_consent_box_no_subscription(db: Db) {
    let app = TestApp::spawn(db).await;
    let fields =
        field_errors(app.post_json("/subscribe", &json!({"email": "jo@example.org", "lists": ["updates"]})).await)
            .await;
    assert!(fields["consent"].is_string());
    let fields = field_errors(
        app.post_json("/subscribe", &json!({"email": "jo@example.org", "lists": ["updates"], "consent": false})).await,
    )
    .await;
    assert!(fields["consent"].is_string());
    let res = app.post_form("/subscribe", &[("email", "jo@example.org"), ("lists", "updates")]).await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert!(page.contains("tick the box"), "the form explains what is missing");
    assert!(page.contains("value=\"jo@example.org\""), "and keeps what was typed");
    // Two lists offered, one ticked: only that one is requested.
    app.create_list("hearings", "Hearing dates").await;
    let res = app
        .post_form(
            "/subscribe",
            &[("email", "jo@example.org"), ("lists", "updates"), ("lists", "hearings"), ("consent", "hearings")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.status("jo@example.org", "hearings").await, "pending");
    assert_eq!(app.status("jo@example.org", "updates").await, "none");
}

async fn unknown_and_private_lists_are_refused_alike(db: Db) {
    let app = TestApp::spawn(db).await;
    let res = app
        .api(reqwest::Method::POST, "/lists")
        .json(&json!({"slug": "donors", "name": "Donors", "public": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let unknown =
        app.post_json("/subscribe", &json!({"email": "kit@example.org", "lists": ["nope"], "consent": true})).await;
    let unknown = (unknown.status(), unknown.text().await.unwrap());
    let private =
        app.post_json("/subscribe", &json!({"email": "kit@example.org", "lists": ["donors"], "consent": true})).await;
    let private = (private.status(), private.text().await.unwrap());
    assert_eq!(unknown.0, 422);
    assert_eq!(unknown, private, "a private list looks exactly like a missing one");
    let fields = field_errors(
        app.post_json("/subscribe", &json!({"email": "kit@example.org", "lists": [], "consent": true})).await,
    )
    .await;
    assert!(fields["lists"].is_string());
}

async fn oversized_and_malformed_bodies_get_clear_errors(db: Db) {
    let app = TestApp::spawn(db).await;
    // Over the 64 KiB limit, yet small enough to sit in the loopback socket
    // buffer: the server may answer 413 before reading it all, and a larger
    // body would then race the client's write (broken pipe).
    let huge = "x".repeat(80 * 1024);
    // Its own client: the server closes a connection whose body it refused
    // unread, and a pooled client would try to reuse it for the next request.
    let res = reqwest::Client::new()
        .post(app.url("/subscribe"))
        .form(&[("email", "a@example.org"), ("name", huge.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let res = app
        .http
        .post(app.url("/subscribe"))
        .header("Content-Type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    let res = app.post_json("/subscribe", &json!(["not", "an", "object"])).await;
    assert_eq!(res.status(), 422);
    let res = app.post_json("/subscribe", &json!({"email": 5, "lists": {"a": 1}, "consent": "maybe"})).await;
    assert_eq!(res.status(), 422);
    let res = app
        .http
        .post(app.url("/subscribe"))
        .header("Content-Type", "multipart/form-data; boundary=zz")
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert!(res.status() == 400 || res.status() == 422, "{}", res.status());
    let res = app.post_form("/subscribe", &[("name", &"é".repeat(201))]).await;
    assert_eq!(res.status(), 422);
}

async fn html_in_names_and_addresses_is_escaped_everywhere(db: Db) {
    let app = TestApp::spawn(db).await;
    let evil = "\"><script>alert(1)</script>";
    let res = app
        .post_form(
            "/subscribe",
            &[("email", &format!("{evil}@example.org")), ("lists", "updates"), ("consent", "updates")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert!(!page.contains("<script>alert(1)"), "typed address is escaped in the form");
    assert!(page.contains(&html_escaped(evil)));

    let name = "<img src=x onerror=alert(1)>";
    let res = app
        .post_form(
            "/subscribe",
            &[("email", "lee@example.org"), ("name", name), ("lists", "updates"), ("consent", "updates")],
        )
        .await;
    assert_eq!(res.status(), 200);
    app.drain_outbox().await;
    let mail = app.smtp.messages_to("lee@example.org").pop().unwrap();
    let html = crate::support::app::html_body(&mail);
    assert!(!html.contains("<img src=x"), "escaped in the HTML mail");
    assert!(html.contains(&html_escaped(name)));
    let token = confirm_token(&mail);
    let page = app.post_form(&format!("/confirm/{token}"), &[]).await.text().await.unwrap();
    let start = page.find("/preferences/").unwrap();
    let end = start + page[start..].find('"').unwrap();
    let prefs = app.http.get(app.url(&page[start..end])).send().await.unwrap().text().await.unwrap();
    assert!(!prefs.contains("<img src=x"));
    assert!(prefs.contains(&html_escaped(name)));
}

async fn a_filled_honeypot_answers_normally_but_does_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    let human = app.subscribe("human@example.org", "updates").await.text().await.unwrap();
    let res = app
        .post_form(
            "/subscribe",
            &[
                ("email", "bot@example.org"),
                ("lists", "updates"),
                ("consent", "updates"),
                ("website", "http://spam.test"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), human);
    app.drain_outbox().await;
    assert!(app.smtp.messages_to("bot@example.org").is_empty());
    let res = app.api(reqwest::Method::GET, "/subscribers?email=bot@example.org").send().await.unwrap();
    assert_eq!(res.status(), 404);
}

async fn too_many_subscribes_from_one_address_are_throttled(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "3")]).await;
    for i in 0..3 {
        assert_eq!(app.subscribe(&format!("p{i}@example.org"), "updates").await.status(), 200);
    }
    let res = app.subscribe("p9@example.org", "updates").await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    app.drain_outbox().await;
    assert!(app.smtp.messages_to("p9@example.org").is_empty());
}

async fn unknown_routes_and_methods_are_404_and_405(db: Db) {
    let app = TestApp::spawn(db).await;
    assert_eq!(app.http.get(app.url("/nope")).send().await.unwrap().status(), 404);
    assert_eq!(app.http.delete(app.url("/subscribe")).send().await.unwrap().status(), 405);
    assert_eq!(app.http.get(app.url("/subscribe?list=nope")).send().await.unwrap().status(), 404);
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(app.http.get(app.url("/readyz")).send().await.unwrap().status(), 200);
}
