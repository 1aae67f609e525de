//! Checklist item 23 — nothing reveals whether an address is on a list:
//! the subscribe answer is byte for byte the same for a new, pending,
//! confirmed, unsubscribed or suppressed address, on the form and as JSON,
//! and the metrics (whose counters move with each sign-up) are not served
//! on the public listener (UK GDPR Art 5(1)(f), 32).

use crate::both_backends;
use crate::support::app::{Db, TestApp};
use reqwest::Method;
use serde_json::json;

both_backends!(the_subscribe_answer_is_identical_for_every_address_and_metrics_are_not_public);

async fn the_subscribe_answer_is_identical_for_every_address_and_metrics_are_not_public(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "0")]).await;
    app.subscribe("pending@example.org", "updates").await;
    app.confirmed_subscribers("confirmed", 1, "updates").await;
    app.confirmed_subscribers("gone", 1, "updates").await;
    let token = app.unsubscribe_token("gone0@example.org", "updates").await;
    app.post_form(&format!("/unsubscribe/{token}"), &[]).await;
    assert_eq!(app.status("gone0@example.org", "updates").await, "unsubscribed");
    app.confirmed_subscribers("erased", 1, "updates").await;
    let id = app.subscriber("erased0@example.org").await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.api(Method::POST, &format!("/subscribers/{id}/erase")).send().await.unwrap().status(), 200);

    let mut form = Vec::new();
    let mut api = Vec::new();
    for email in
        ["new@example.org", "pending@example.org", "confirmed0@example.org", "gone0@example.org", "erased0@example.org"]
    {
        let res = app.subscribe(email, "updates").await;
        form.push((res.status(), res.text().await.unwrap()));
        let res = app.post_json("/subscribe", &json!({"email": email, "lists": ["updates"], "consent": true})).await;
        api.push((res.status(), res.text().await.unwrap()));
    }
    assert!(form.iter().all(|a| a == &form[0]), "{form:#?}");
    assert!(api.iter().all(|a| a == &api[0]), "{api:#?}");
    assert_eq!((form[0].0.as_u16(), api[0].0.as_u16()), (200, 202));

    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 404, "no counters on the public listener");
}
