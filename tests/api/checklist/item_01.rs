//! Checklist item 01 — consent is an affirmative act: the form's boxes are
//! unticked, nothing is pre-selected, and a request without consent is
//! refused with 422 and records nothing (UK GDPR Art 4(11), 7; ICO consent
//! guidance).

use crate::both_backends;
use crate::support::app::{Db, TestApp, urlencode};
use reqwest::Method;
use serde_json::json;

both_backends!(consent_needs_a_box_the_person_ticked_and_nothing_is_pre_selected);

async fn consent_needs_a_box_the_person_ticked_and_nothing_is_pre_selected(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("hearings", "Hearing dates").await;

    // The form: one box per list, none ticked.
    let page = app.http.get(app.url("/subscribe")).send().await.unwrap().text().await.unwrap();
    let boxes: Vec<&str> = page.split("<input").filter(|i| i.contains("type=\"checkbox\"")).collect();
    assert_eq!(boxes.len(), 2, "a box for each list: {page}");
    for b in &boxes {
        let tag = &b[..b.find('>').unwrap()];
        assert!(!tag.contains("checked"), "a pre-ticked box: {tag}");
    }

    // No consent, or consent withheld: 422, naming the consent field.
    for body in [
        json!({"email": "jo@example.org", "lists": ["updates"]}),
        json!({"email": "jo@example.org", "lists": ["updates"], "consent": false}),
    ] {
        let res = app.post_json("/subscribe", &body).await;
        assert_eq!(res.status(), 422, "{body}");
        let answer: serde_json::Value = res.json().await.unwrap();
        assert!(answer["error"]["fields"]["consent"].is_string(), "{answer}");
    }
    let res = app.post_form("/subscribe", &[("email", "jo@example.org"), ("lists", "updates")]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("tick the box"));

    // Nothing was recorded or mailed.
    let found =
        app.api(Method::GET, &format!("/subscribers?email={}", urlencode("jo@example.org"))).send().await.unwrap();
    assert_eq!(found.status(), 404, "no subscriber was created");
    assert_eq!(app.drain_outbox().await.sent, 0);
    assert!(app.smtp.messages().is_empty());

    // The same request with the box ticked is accepted.
    assert_eq!(app.subscribe("jo@example.org", "updates").await.status(), 200);
    assert_eq!(app.status("jo@example.org", "updates").await, "pending");
}
