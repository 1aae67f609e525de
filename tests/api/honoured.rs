//! Issue 16 §1 and the header items of §3: every unsubscribe is honoured in
//! full (one copy for several lists leaves them all, old single-list links
//! still work, "unsubscribe from everything" says so, a new tick on the
//! preferences page asks for confirmation by mail), token pages are never
//! cached and pass no referrer. That `List-Id` is well-formed whatever the
//! list is called is checklist item 26 (`checklist/item_26.rs`). Driven
//! over HTTP against real SMTP.

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token, header, html_body, html_escaped, text_body};
use crate::support::smtp::CapturedMail;
use reqwest::Method;

both_backends!(
    one_copy_for_two_lists_carries_one_link_that_leaves_both_and_says_which,
    an_old_single_list_link_still_leaves_only_its_list,
    unsubscribe_from_everything_says_no_more_email_will_come,
    ticking_a_new_list_on_the_preferences_page_sends_a_confirmation_instead_of_subscribing,
    pages_reached_by_a_token_link_are_not_cached_and_pass_no_referrer,
);

async fn send_now(app: &TestApp, id: &str) {
    let res = app.api(Method::POST, &format!("/updates/{id}/send")).send().await.unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
}

/// Confirms `email` on each of `lists` through the store (set-up only).
pub(crate) async fn confirmed_on(app: &TestApp, email: &str, lists: &[&str]) {
    let mut tx = app.ctx.store.write().await.unwrap();
    let now = app.ctx.clock.now();
    let id = match tx.subscriber_by_email(email).await.unwrap() {
        Some(s) => s.id,
        None => {
            let row = tidings::store::SubscriberRow {
                id: uuid::Uuid::now_v7(),
                email: email.to_owned(),
                email_norm: email.to_owned(),
                name: "Pat".into(),
                attributes: "{}".into(),
                created_at: now,
                updated_at: now,
            };
            tx.insert_subscriber(&row, &app.ctx.address_key.fingerprint(&row.email_norm)).await.unwrap();
            row.id
        }
    };
    for slug in lists {
        let list = tx.list_by_slug(slug).await.unwrap().unwrap();
        tx.set_subscription_status(id, list.id, tidings::domain::SubscriptionStatus::Confirmed, now).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// Sends one update to `lists` and returns the one copy `email` received.
pub(crate) async fn the_copy(app: &TestApp, email: &str, subject: &str, lists: &[&str]) -> CapturedMail {
    let id = app.create_update(subject, "Hello {{name}}, news.", lists).await;
    send_now(app, &id).await;
    app.drive_delivery(&id, 10).await;
    let mut mails: Vec<CapturedMail> =
        app.smtp.messages_to(email).into_iter().filter(|m| header(m, "Subject").as_deref() == Some(subject)).collect();
    assert_eq!(mails.len(), 1, "one copy however many lists");
    mails.remove(0)
}

/// The path of the https link in `List-Unsubscribe`; the header has no other.
fn one_click_path(mail: &CapturedMail) -> String {
    let value = header(mail, "List-Unsubscribe").expect("List-Unsubscribe");
    assert!(!value.contains("mailto:"), "no mailto: nothing reads such mail: {value}");
    assert_eq!(value.matches('<').count(), 1, "{value}");
    let link = value.trim().trim_start_matches('<').trim_end_matches('>');
    link.strip_prefix("http://tidings.test").expect("our link").to_owned()
}

async fn statuses(app: &TestApp, email: &str) -> Vec<String> {
    let mut out: Vec<String> = app.subscriber(email).await["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}={}", s["list"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    out.sort();
    out
}

async fn one_copy_for_two_lists_carries_one_link_that_leaves_both_and_says_which(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("hearings", "Hearing dates").await;
    app.create_list("events", "Events").await;
    confirmed_on(&app, "pat@example.org", &["updates", "hearings", "events"]).await;
    let mail = the_copy(&app, "pat@example.org", "Hearing moved", &["hearings", "updates"]).await;
    assert_eq!(header(&mail, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    let text = text_body(&mail);
    assert!(
        text.contains("subscribed to “Hearing dates” and “Save Our Hospital updates” from"),
        "the footer names both: {text}"
    );
    let html = html_body(&mail);
    assert!(html.contains("Hearing dates") && html.contains("Save Our Hospital updates"), "{html}");

    // RFC 8058: the mail client posts the one-click body to the header's link.
    let path = one_click_path(&mail);
    let res = app
        .http
        .post(app.url(&path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("You have left “Hearing dates” and “Save Our Hospital updates”"), "{page}");
    assert_eq!(
        statuses(&app, "pat@example.org").await,
        ["events=confirmed", "hearings=unsubscribed", "updates=unsubscribed"],
        "both lists the copy was sent for, and no other"
    );
    let ledger = app.ledger("pat@example.org").await;
    let withdrawn: Vec<_> = ledger.iter().filter(|e| e["kind"] == "withdrawn").collect();
    assert_eq!(withdrawn.len(), 2);
    assert!(withdrawn.iter().all(|e| e["detail"] == "one-click"));
    // A second click changes nothing and writes nothing.
    app.post_form(&path, &[("List-Unsubscribe", "One-Click")]).await;
    assert_eq!(app.ledger("pat@example.org").await.len(), ledger.len());
    // Nothing more comes on either list.
    let id = app.create_update("Next hearing", "Body", &["hearings", "updates"]).await;
    send_now(&app, &id).await;
    app.drive_delivery(&id, 10).await;
    assert!(
        !app.smtp
            .messages_to("pat@example.org")
            .iter()
            .any(|m| header(m, "Subject").as_deref() == Some("Next hearing"))
    );

    // The page behind the body's link: it names both lists before, and
    // says which were left after.
    confirmed_on(&app, "sam@example.org", &["updates", "hearings"]).await;
    let mail = the_copy(&app, "sam@example.org", "Hearing moved again", &["hearings", "updates"]).await;
    let path = one_click_path(&mail);
    assert!(
        text_body(&mail).contains(&format!("Unsubscribe: http://tidings.test{path}")),
        "the body's link is the same"
    );
    let page = app.http.get(app.url(&path)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Unsubscribe from “Hearing dates” and “Save Our Hospital updates”?"), "{page}");
    let json: serde_json::Value =
        app.http.get(app.url(&path)).header("accept", "application/json").send().await.unwrap().json().await.unwrap();
    assert_eq!(json["lists"], serde_json::json!(["Hearing dates", "Save Our Hospital updates"]));
    let res = app.post_form(&path, &[]).await;
    let page = res.text().await.unwrap();
    assert!(page.contains("You have left “Hearing dates” and “Save Our Hospital updates”."), "{page}");
    assert_eq!(statuses(&app, "sam@example.org").await, ["hearings=unsubscribed", "updates=unsubscribed"]);
}

async fn an_old_single_list_link_still_leaves_only_its_list(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("hearings", "Hearing dates").await;
    confirmed_on(&app, "old@example.org", &["updates", "hearings"]).await;
    // The link as every mail sent before this change carries it.
    let token = app.unsubscribe_token("old@example.org", "hearings").await;
    let page = app.http.get(app.url(&format!("/unsubscribe/{token}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Unsubscribe from “Hearing dates”?"), "{page}");
    let res = app.post_form(&format!("/unsubscribe/{token}"), &[("List-Unsubscribe", "One-Click")]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("You have left “Hearing dates”."));
    assert_eq!(statuses(&app, "old@example.org").await, ["hearings=unsubscribed", "updates=confirmed"]);
}

async fn unsubscribe_from_everything_says_no_more_email_will_come(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("hearings", "Hearing dates").await;
    confirmed_on(&app, "all@example.org", &["updates", "hearings"]).await;
    let mail = the_copy(&app, "all@example.org", "News", &["updates"]).await;
    let text = text_body(&mail);
    let start = text.find("/preferences/").unwrap();
    let prefs: String = text[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    let res = app.post_form(&prefs, &[("lists", "updates"), ("action", "unsubscribe-all")]).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    let group = html_escaped(&app.ctx.config.group_name);
    assert!(page.contains(&format!("You will get no more email from {group}.")), "{page}");
    assert!(page.contains("You have left “Hearing dates” and “Save Our Hospital updates”."), "{page}");
    assert!(!page.contains("Your choices have been saved"), "{page}");
    assert_eq!(statuses(&app, "all@example.org").await, ["hearings=unsubscribed", "updates=unsubscribed"]);
}

async fn ticking_a_new_list_on_the_preferences_page_sends_a_confirmation_instead_of_subscribing(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("hearings", "Hearing dates").await;
    confirmed_on(&app, "fwd@example.org", &["updates"]).await;
    let mail = the_copy(&app, "fwd@example.org", "News", &["updates"]).await;
    let text = text_body(&mail);
    let start = text.find("/preferences/").unwrap();
    let prefs: String = text[start..].chars().take_while(|c| !c.is_whitespace()).collect();

    // Whoever holds the link (it travels with every forwarded copy) ticks a list.
    let res = app.post_form(&prefs, &[("lists", "updates"), ("lists", "hearings"), ("action", "save")]).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("we have sent a confirmation email to fwd@example.org for “Hearing dates”"),
        "the page says a confirmation was sent: {page}"
    );
    assert_eq!(app.status("fwd@example.org", "hearings").await, "pending", "not confirmed at once");
    assert_eq!(app.status("fwd@example.org", "updates").await, "confirmed");
    let ledger = app.ledger("fwd@example.org").await;
    let last = ledger.last().unwrap();
    assert_eq!((last["kind"].as_str(), last["list"].as_str()), (Some("requested"), Some("hearings")));
    assert!(!ledger.iter().any(|e| e["list"] == "hearings" && e["kind"] != "requested"));
    // The preferences page shows it as waiting.
    let page = app.http.get(app.url(&prefs)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("waiting for you to confirm"), "{page}");

    // The confirmation goes through the outbox to the address itself, and
    // only its link confirms.
    app.drain_outbox().await;
    let confirmation = app.smtp.messages_to("fwd@example.org").into_iter().last().unwrap();
    assert!(text_body(&confirmation).contains("Hearing dates"));
    let token = confirm_token(&confirmation);
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    assert_eq!(app.status("fwd@example.org", "hearings").await, "confirmed");
}

/// A request to make: method, path and form fields.
type Request = (Method, String, Vec<(&'static str, &'static str)>);

async fn pages_reached_by_a_token_link_are_not_cached_and_pass_no_referrer(db: Db) {
    let app = TestApp::spawn(db).await;
    app.subscribe("tok@example.org", "updates").await;
    app.drain_outbox().await;
    let confirm = confirm_token(app.smtp.messages_to("tok@example.org").last().unwrap());
    let confirm_path = format!("/confirm/{confirm}");
    let mut checks: Vec<Request> = vec![
        (Method::GET, confirm_path.clone(), vec![]),
        (Method::POST, confirm_path.clone(), vec![]),
        // Used up now: 410.
        (Method::POST, confirm_path.clone(), vec![]),
        (Method::GET, "/confirm/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(), vec![]),
    ];
    let unsubscribe = format!("/unsubscribe/{}", app.unsubscribe_token("tok@example.org", "updates").await);
    let subscriber = uuid::Uuid::parse_str(app.subscriber("tok@example.org").await["id"].as_str().unwrap()).unwrap();
    let prefs =
        format!("/preferences/{}", tidings::domain::SignedToken::preferences(subscriber).encode(&app.ctx.secret_key));
    checks.extend([
        (Method::GET, unsubscribe.clone(), vec![]),
        (Method::POST, unsubscribe.clone(), vec![("List-Unsubscribe", "One-Click")]),
        (Method::GET, "/unsubscribe/not-a-token".into(), vec![]),
        (Method::GET, prefs.clone(), vec![]),
        (Method::POST, prefs.clone(), vec![("lists", "updates"), ("action", "save")]),
        (Method::POST, "/preferences/not-a-token".into(), vec![("action", "save")]),
        (Method::POST, prefs.clone(), vec![("action", "data-copy")]),
        (Method::GET, "/data-copy/not-a-token".into(), vec![]),
        (Method::POST, "/data-copy/not-a-token".into(), vec![]),
    ]);
    let mut statuses = Vec::new();
    for (method, path, form) in &checks {
        let res = app.http.request(method.clone(), app.url(path)).form(form).send().await.unwrap();
        statuses.push(res.status().as_u16());
        let h = res.headers();
        assert_eq!(h.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"), "{method} {path}");
        assert_eq!(h.get("referrer-policy").and_then(|v| v.to_str().ok()), Some("no-referrer"), "{method} {path}");
    }
    assert!(statuses.contains(&410) && statuses.contains(&404) && statuses.contains(&200), "{statuses:?}");

    // The data-copy link mailed from the preferences page, and its page.
    app.drain_outbox().await;
    let mail = app.smtp.messages_to("tok@example.org").into_iter().last().unwrap();
    let text = text_body(&mail);
    let start = text.find("/data-copy/").expect("a data-copy link");
    let path: String = text[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    for method in [Method::GET, Method::POST] {
        let res = app.http.request(method.clone(), app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{method} {path}");
        assert_eq!(res.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
        assert_eq!(res.headers().get("referrer-policy").and_then(|v| v.to_str().ok()), Some("no-referrer"));
    }
}
