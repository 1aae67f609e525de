//! `POST /subscribe` up to the database: a URL-encoded or JSON body →
//! `Submitted` → `SubscribeInput` → `SubscribeRequest::parse`. Never
//! panics; a request that passes is safe to store and mail; and the form
//! and JSON spellings of one submission mean the same.
//!
//! Input: one control byte (bit 0: JSON or form), then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tidings::domain::{EmailAddress, ListSlug, SubscriberName};
use tidings::services::supporter::{ConsentGiven, SubscribeInput, SubscribeRequest};
use tidings::web::{Submitted, subscribe_input};

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else { return };
    let json = control & 1 == 1;
    let Ok(submitted) = Submitted::decode(body, json) else {
        assert!(json, "a URL-encoded body always decodes");
        return;
    };
    let input = subscribe_input(&submitted);
    check_request(&input);
    if let Submitted::Form(_) = submitted {
        // The same fields sent as JSON give the same input.
        let again = subscribe_input(&Submitted::Json(as_json(&input)));
        assert_eq!(format!("{again:?}"), format!("{input:?}"), "form and JSON disagree");
    }
});

fn check_request(input: &SubscribeInput) {
    let Ok(req) = SubscribeRequest::parse(input) else { return };
    assert_eq!(EmailAddress::parse(&input.email).as_ref(), Ok(&req.email));
    assert_eq!(SubscriberName::parse_optional(&input.name), Ok(req.name.clone()));
    assert!(!req.lists.is_empty() && req.lists.len() <= 50);
    for (i, slug) in req.lists.iter().enumerate() {
        assert!(!req.lists[..i].contains(slug), "lists are de-duplicated");
        assert!(input.lists.iter().any(|l| ListSlug::parse(l).as_ref() == Ok(slug)), "only lists asked for");
        let consented = match &input.consent {
            Some(ConsentGiven::All) => true,
            Some(ConsentGiven::Lists(given)) => given.iter().any(|g| g == slug.as_str()),
            None => false,
        };
        assert!(consented, "a list without consent: {slug}");
    }
    if let Some(source) = &req.source {
        assert!(!source.is_empty() && source.len() <= 2048 && !source.chars().any(char::is_control));
    }
    assert_eq!(req.is_bot, !input.honeypot.trim().is_empty());
    for (i, (slug, version)) in req.statements.iter().enumerate() {
        assert!(req.lists.contains(slug), "a wording version only for a list asked for: {slug}");
        assert!(*version > 0, "a wording version is positive");
        assert!(!req.statements[..i].iter().any(|(s, _)| s == slug), "one version per list");
    }
}

/// The JSON body a client would send for the form's fields.
fn as_json(input: &SubscribeInput) -> Value {
    let mut v = json!({
        "email": input.email,
        "name": input.name,
        "lists": input.lists,
        "website": input.honeypot,
    });
    if let Some(source) = &input.source {
        v["source"] = json!(source);
    }
    if !input.statements.is_empty() {
        let shown: Vec<String> = input.statements.iter().map(|(slug, version)| format!("{slug}:{version}")).collect();
        v["statements"] = json!(shown);
    }
    match &input.consent {
        Some(ConsentGiven::All) => v["consent"] = json!(true),
        Some(ConsentGiven::Lists(slugs)) => v["consent"] = json!(slugs),
        None => {}
    }
    v
}
