//! Issue 16 §2: the consent evidence is exactly what the person saw. The
//! form and every embedded copy post the wording version they show, the
//! ledger records that version, the lists page flags copies showing old
//! wording, and repeated anonymous requests neither fill a person's record
//! nor postpone the purge of never-confirmed subscriptions.

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token, html_escaped};
use crate::support::browser::Browser;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

both_backends!(
    the_ledger_records_the_wording_version_the_form_showed_not_the_one_in_force,
    a_wording_version_never_published_is_refused_and_the_form_shows_the_current_wording,
    the_lists_page_flags_an_embedded_form_still_showing_old_wording,
    repeated_requests_add_one_ledger_entry_per_resend_window_and_never_postpone_the_purge,
);

const SITE: &str = "https://campaign.example";

async fn publish_wording(app: &TestApp, list: &str, text: &str) -> i64 {
    let res = app
        .api(Method::POST, "/consent-statements")
        .json(&json!({ "list": list, "text": text, "acknowledge_warnings": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["version"].as_i64().unwrap()
}

/// The value of the first `<input … name="NAME" value="…">` in `html`.
fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker)? + marker.len();
    Some(html[at..].split('"').next()?.to_owned())
}

fn requested(ledger: &[Value]) -> Vec<&Value> {
    ledger.iter().filter(|e| e["kind"] == "requested").collect()
}

async fn the_ledger_records_the_wording_version_the_form_showed_not_the_one_in_force(db: Db) {
    let app = TestApp::spawn(db).await;
    let first_wording = app.api_get("/consent-statements").await[0]["text"].as_str().unwrap().to_owned();

    // A supporter opens the form; it shows (and will post) version 1.
    let form = app.http.get(app.url("/subscribe")).send().await.unwrap().text().await.unwrap();
    assert_eq!(hidden_value(&form, "statements").as_deref(), Some("updates:1"), "{form}");
    let again = app.http.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert_eq!(hidden_value(&again, "statements").as_deref(), Some("updates:1"));

    // While they read it, an organiser changes the wording.
    let second = publish_wording(&app, "updates", "Yes, email me news and requests for money.").await;
    assert_eq!(second, 2);

    // They post the form they saw.
    let res = app
        .post_form(
            "/subscribe",
            &[("email", "seen@example.org"), ("lists", "updates"), ("consent", "updates"), ("statements", "updates:1")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let ledger = app.ledger("seen@example.org").await;
    assert_eq!(ledger[0]["kind"], "requested");
    assert_eq!(ledger[0]["statement"]["version"], 1, "the version the form showed: {ledger:?}");
    assert_eq!(ledger[0]["statement"]["text"], first_wording.as_str());

    // A JSON client may say so too, as an object or as the form's strings.
    let res = app
        .post_json(
            "/subscribe",
            &json!({ "email": "script@example.org", "lists": ["updates"], "consent": true, "statements": { "updates": 1 } }),
        )
        .await;
    assert_eq!(res.status(), 202);
    assert_eq!(app.ledger("script@example.org").await[0]["statement"]["version"], 1);
    let res = app
        .post_json(
            "/subscribe",
            &json!({ "email": "strings@example.org", "lists": ["updates"], "consent": true, "statements": ["updates:1"] }),
        )
        .await;
    assert_eq!(res.status(), 202);
    assert_eq!(app.ledger("strings@example.org").await[0]["statement"]["version"], 1);

    // Forms and clients that do not say (older embeds) keep working, and
    // get the version in force, as before.
    assert_eq!(app.subscribe("old-embed@example.org", "updates").await.status(), 200);
    assert_eq!(app.ledger("old-embed@example.org").await[0]["statement"]["version"], 2);
    let res = app
        .post_json("/subscribe", &json!({ "email": "old-script@example.org", "lists": ["updates"], "consent": true }))
        .await;
    assert_eq!(res.status(), 202);
    assert_eq!(app.ledger("old-script@example.org").await[0]["statement"]["version"], 2);

    // A fresh form now shows, and posts, version 2.
    let form = app.http.get(app.url("/subscribe")).send().await.unwrap().text().await.unwrap();
    assert_eq!(hidden_value(&form, "statements").as_deref(), Some("updates:2"));
}

async fn a_wording_version_never_published_is_refused_and_the_form_shows_the_current_wording(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "100000")]).await;
    let wording = "Yes, email me the hearing dates.";
    publish_wording(&app, "updates", wording).await;
    // One address already known, one new: the answer must not differ.
    assert_eq!(app.subscribe("known@example.org", "updates").await.status(), 200);

    let mut pages = Vec::new();
    for email in ["known@example.org", "new@example.org"] {
        for version in ["updates:3", "updates:0", "updates:two", "updates"] {
            let res = app
                .post_form(
                    "/subscribe",
                    &[("email", email), ("lists", "updates"), ("consent", "updates"), ("statements", version)],
                )
                .await;
            assert_eq!(res.status(), 422, "{email} {version}");
            let page = res.text().await.unwrap();
            assert!(page.contains("id=\"statements\""), "the reason is shown at the wording: {page}");
            assert!(page.contains(&html_escaped(wording)), "the current wording is shown again: {page}");
            assert_eq!(hidden_value(&page, "statements").as_deref(), Some("updates:2"), "{page}");
            assert!(!page.contains(" checked"), "the box is to be ticked again, for the wording now shown");
            pages.push(page.replace(email, "EMAIL"));
        }
        let res = app
            .post_json(
                "/subscribe",
                &json!({ "email": email, "lists": ["updates"], "consent": true, "statements": { "updates": 9 } }),
            )
            .await;
        assert_eq!(res.status(), 422);
        let body: Value = res.json().await.unwrap();
        assert!(body.to_string().contains("statements"), "{body}");
    }
    assert_eq!(pages[0], pages[4], "known or not, the same answer");

    // Nothing was recorded or mailed for the refused requests.
    let find = app.api(Method::GET, "/subscribers?email=new@example.org").send().await.unwrap();
    assert_eq!(find.status(), 404);
    assert_eq!(requested(&app.ledger("known@example.org").await).len(), 1);
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to("known@example.org").len(), 1);
    assert!(app.smtp.messages_to("new@example.org").is_empty());

    // A version for a list not asked for is ignored, like the list.
    let res = app
        .post_form(
            "/subscribe",
            &[
                ("email", "other@example.org"),
                ("lists", "updates"),
                ("consent", "updates"),
                ("statements", "elsewhere:7"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
}

/// The HTML of the list's snippet on the lists page, unescaped.
fn snippet(page: &str, slug: &str) -> String {
    let start = page.find(&format!("<textarea id=\"embed-{slug}\"")).expect("a snippet for the list");
    let textarea = &page[start..];
    let raw = &textarea[textarea.find('>').unwrap() + 1..textarea.find("</textarea>").unwrap()];
    raw.replace("&#34;", "\"").replace("&#39;", "'").replace("&#60;", "<").replace("&#62;", ">").replace("&#38;", "&")
}

async fn post_snippet(app: &TestApp, snippet: &str, email: &str, source: &str) -> reqwest::StatusCode {
    let mut fields: Vec<(String, String)> = Vec::new();
    for input in snippet.split("<input").skip(1) {
        let tag = input.split('>').next().unwrap();
        let attr = |name: &str| {
            let marker = format!("{name}=\"");
            tag.find(&marker).map(|i| tag[i + marker.len()..].split('"').next().unwrap().to_owned())
        };
        if let (Some(name), Some(value)) = (attr("name"), attr("value")) {
            fields.push((name, value));
        }
    }
    fields.push(("email".into(), email.into()));
    // Browsers send the embedding page as the Referer; the form records it.
    app.http.post(app.url("/subscribe")).header("Referer", source).form(&fields).send().await.unwrap().status()
}

async fn the_lists_page_flags_an_embedded_form_still_showing_old_wording(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_CORS_ORIGINS", SITE)]).await;
    let admin = app.login_as_admin().await;
    let page = admin.get("/admin/lists").await.body;
    let old = snippet(&page, "updates");
    assert!(old.contains(r#"name="statements" value="updates:1""#), "{old}");
    assert!(page.contains("wording version 1"), "the page says which version the snippet shows");
    assert!(!page.contains("still shows wording"), "nothing is out of date yet");

    // The organiser pastes it on two pages; the wording then changes.
    let join = format!("{SITE}/join");
    let petition = format!("{SITE}/petition");
    assert_eq!(post_snippet(&app, &old, "a@example.org", &join).await, 200);
    publish_wording(&app, "updates", "Yes, email me news, events and appeals.").await;
    // The pasted copies still post version 1, and that is what is recorded.
    assert_eq!(post_snippet(&app, &old, "b@example.org", &join).await, 200);
    assert_eq!(post_snippet(&app, &old, "c@example.org", &petition).await, 200);
    assert_eq!(app.ledger("b@example.org").await[0]["statement"]["version"], 1);

    let page = admin.get("/admin/lists").await.body;
    let new = snippet(&page, "updates");
    assert!(new.contains(r#"name="statements" value="updates:2""#), "{new}");
    assert!(page.contains("wording version 2"), "{page}");
    for source in [&join, &petition] {
        let warning = format!(
            "your embedded form on <span class=\"source\">{}</span> still shows wording version 1",
            html_escaped(source)
        );
        assert!(page.contains(&warning), "{source} is flagged: {page}");
    }
    assert!(page.contains("Copy the new form"), "{page}");

    // Once the join page has the new form, only the petition is flagged.
    assert_eq!(post_snippet(&app, &new, "d@example.org", &join).await, 200);
    assert_eq!(app.ledger("d@example.org").await[0]["statement"]["version"], 2);
    let page = admin.get("/admin/lists").await.body;
    assert!(!page.contains(&format!("on <span class=\"source\">{}</span>", html_escaped(&join))), "{page}");
    assert!(page.contains(&format!("on <span class=\"source\">{}</span>", html_escaped(&petition))), "{page}");

    // A month on, an old copy nobody uses any more is no longer flagged.
    app.ctx.clock.advance(Duration::from_secs(31 * 86400));
    let page = admin.get("/admin/lists").await.body;
    assert!(!page.contains("still shows wording"), "{page}");
}

async fn repeated_requests_add_one_ledger_entry_per_resend_window_and_never_postpone_the_purge(db: Db) {
    let settings = [
        ("TIDINGS_CONFIRM_RESEND_HOURS", "24"),
        ("TIDINGS_RETENTION_PENDING_DAYS", "30"),
        ("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "100000"),
    ];
    let app = TestApp::spawn_with(db, &settings).await;
    app.ctx.clock.freeze();
    let victim = "victim@example.org";
    let first = app.subscribe(victim, "updates").await;
    assert_eq!(first.status(), 200);
    let first_page = first.text().await.unwrap();
    // Someone keeps typing the address in: the same answer as for anyone.
    for _ in 0..5 {
        let res = app.subscribe(victim, "updates").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), first_page);
    }
    let res = app.subscribe("stranger@example.org", "updates").await;
    assert_eq!(res.text().await.unwrap(), first_page, "a new address gets the same answer");
    assert_eq!(requested(&app.ledger(victim).await).len(), 1, "one entry per resend window");
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to(victim).len(), 1);

    // Every day for a month the requests go on; one entry a window at most.
    for _ in 0..29 {
        app.ctx.clock.advance(Duration::from_secs(86400 + 60));
        for _ in 0..3 {
            assert_eq!(app.subscribe(victim, "updates").await.status(), 200);
        }
    }
    let entries = requested(&app.ledger(victim).await).len();
    assert_eq!(entries, 30, "one a day for 30 days, not 3 a day");
    assert_eq!(app.status(victim, "updates").await, "pending");

    // 30 days after the first request (and hours after the last), the
    // never-confirmed subscription is purged: repeats did not postpone it.
    app.ctx.clock.advance(Duration::from_secs(86400));
    let worker = tidings::workers::maintenance::MaintenanceWorker::new(app.ctx.clone());
    let counts = worker.run_once().await.unwrap().expect("due");
    assert!(counts.unconfirmed_subscriptions >= 1, "{counts:?}");
    let find = app.api(Method::GET, &format!("/subscribers?email={victim}")).send().await.unwrap();
    assert_eq!(find.status(), 404, "never confirmed in 30 days: gone");

    // A person who really wants it asks again and confirms: all works.
    assert_eq!(app.subscribe(victim, "updates").await.status(), 200);
    app.drain_outbox().await;
    let token = confirm_token(app.smtp.messages_to(victim).last().unwrap());
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    assert_eq!(app.status(victim, "updates").await, "confirmed");
}

/// The lists page with an out-of-date form, in a real browser at a desktop
/// and a phone width: the warning is shown in full, and nothing makes the
/// page scroll sideways (a long page address wraps).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_out_of_date_form_warning_reads_well_at_desktop_and_phone_widths() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(Db::Sqlite, &[("TIDINGS_BASE_URL", "self"), ("TIDINGS_CORS_ORIGINS", SITE)]).await;
    let admin = app.login_as_admin().await;
    let old = snippet(&admin.get("/admin/lists").await.body, "updates");
    publish_wording(&app, "updates", "Yes, email me news, events and appeals.").await;
    let long =
        format!("{SITE}/campaigns/2026/save-the-maternity-unit/sign-the-petition-and-stay-in-touch?utm_source=x");
    assert_eq!(post_snippet(&app, &old, "a@example.org", &long).await, 200);

    let password = app.add_organiser("looker@hospital.test", tidings::services::accounts::Role::Admin).await;
    browser.goto(&app.url("/admin/login")).await;
    browser.type_into("#email", "looker@hospital.test").await;
    browser.type_into("#password", &password).await;
    browser.click("main button[type=submit]").await;
    browser.attribute("#lists-heading", "class").await;
    for width in [1280, 390] {
        browser.resize(width).await;
        browser.goto(&app.url("/admin/lists")).await;
        assert!(browser.shows("still shows wording version 1").await);
        assert!(browser.shows("Copy the new form").await);
        let page = browser.number("html", "scrollWidth").await.unwrap();
        let view = browser.number("html", "clientWidth").await.unwrap();
        assert!(page <= view, "at {width} px the page scrolls sideways: {page} > {view}");
    }
    browser.screenshot("lists-outdated-form").await;
}
