//! Checklist item 02 — consent is granular: each list is asked for on its
//! own, with its own wording, and a tick for one list records consent to
//! that list only, with that list's wording (UK GDPR Recital 43; ICO).

use crate::both_backends;
use crate::support::app::{Db, TestApp, html_escaped, text_body};
use reqwest::Method;
use serde_json::json;

both_backends!(each_list_has_its_own_box_and_wording_and_a_tick_consents_to_that_list_alone);

const HEARINGS: &str = "Save Our Hospital may email me the dates of court hearings, and nothing else.";

async fn each_list_has_its_own_box_and_wording_and_a_tick_consents_to_that_list_alone(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("hearings", "Hearing dates").await;
    let res = app
        .api(Method::POST, "/consent-statements")
        .json(&json!({"list": "hearings", "text": HEARINGS}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let updates_wording = app.api_get("/consent-statements").await;
    let updates_wording = updates_wording
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["list"] == "updates")
        .and_then(|s| s["text"].as_str())
        .expect("the updates list's wording")
        .to_owned();
    assert_ne!(updates_wording, HEARINGS);

    // The form: a box per list, each beside its own wording.
    let page = app.http.get(app.url("/subscribe")).send().await.unwrap().text().await.unwrap();
    let hearings_box = page.find("id=\"consent-hearings\"").expect("a box for hearings");
    let updates_box = page.find("id=\"consent-updates\"").expect("a box for updates");
    let next_choice = |from: usize| page[from..].find("class=\"choice\"").map_or(page.len(), |i| from + i);
    assert!(page[hearings_box..next_choice(hearings_box)].contains(&html_escaped(HEARINGS)));
    assert!(page[updates_box..next_choice(updates_box)].contains(&html_escaped(&updates_wording)));

    // Both lists offered, only hearings ticked.
    let res = app
        .post_form(
            "/subscribe",
            &[("email", "ivy@example.org"), ("lists", "updates"), ("lists", "hearings"), ("consent", "hearings")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.status("ivy@example.org", "hearings").await, "pending");
    assert_eq!(app.status("ivy@example.org", "updates").await, "none");
    let ledger = app.ledger("ivy@example.org").await;
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["list"], "hearings");
    assert_eq!(ledger[0]["statement"]["text"], HEARINGS, "the wording of that list, not another's");

    // The confirmation mail asks about that list only.
    app.drain_outbox().await;
    let text = text_body(&app.smtp.messages_to("ivy@example.org")[0]);
    assert!(text.contains("Hearing dates"), "{text}");
    assert!(!text.contains("Save Our Hospital updates"), "{text}");
}
