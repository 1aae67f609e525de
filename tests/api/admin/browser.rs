//! The organiser's first visit in a real headless Chromium: the first-run
//! setup link, the dashboard, creating a list, finding subscribers, and
//! logging out and in again, with a screenshot of each page.

use crate::support::app::{Db, TestApp};
use crate::support::browser::Browser;

/// Waits (up to 5 s) until the page has an element only the next page has,
/// so that reading the page never races the navigation a click started.
async fn arrived(browser: &Browser, css: &str) {
    browser.attribute(css, "class").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organiser_sets_up_tidings_and_creates_a_list_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(Db::Sqlite, &[("TIDINGS_BASE_URL", "self")]).await;
    app.subscribe("zoe@example.org", "updates").await;
    let token = tidings::services::accounts::issue_setup_token(&app.ctx.store, &app.ctx.clock)
        .await
        .unwrap()
        .expect("no organiser yet");

    // Straight to a protected page: the login form.
    browser.goto(&app.url("/admin/lists")).await;
    assert!(browser.url().await.contains("/admin/login?next="));
    browser.screenshot("admin-01-login").await;

    browser.goto(&app.url(&format!("/admin/setup/{token}"))).await;
    assert!(browser.shows("Set up Tidings").await);
    browser.type_into("#email", "organiser@hospital.test").await;
    browser.type_into("#password", "correct horse battery staple").await;
    browser.type_into("#password_confirm", "correct horse battery stable").await;
    browser.click("main button[type=submit]").await;
    arrived(&browser, ".errors").await;
    assert!(browser.shows("the two passwords differ").await);
    browser.screenshot("admin-02-setup-errors").await;
    browser.type_into("#password", "correct horse battery staple").await;
    browser.type_into("#password_confirm", "correct horse battery staple").await;
    browser.click("main button[type=submit]").await;
    arrived(&browser, "#lists-heading").await;
    let text = browser.text().await;
    assert!(text.contains("Dashboard") && text.contains("Save Our Hospital updates"), "{text}");
    browser.screenshot("admin-03-dashboard").await;

    browser.click("a[href='/admin/lists']").await;
    browser.click("a[href='/admin/lists/new']").await;
    arrived(&browser, "#slug").await;
    // The web address is left empty: it is made from the name.
    browser.type_into("#name", "Hearing <dates>").await;
    browser.type_into("#description", "When the court sits").await;
    browser.screenshot("admin-04-new-list").await;
    browser.click("main button[type=submit]").await;
    arrived(&browser, ".notice").await;
    let text = browser.text().await;
    assert!(text.contains("The list has been created.") && text.contains("Hearing <dates>"), "{text}");
    browser.screenshot("admin-05-lists").await;
    assert_eq!(app.api_get("/lists/hearing-dates").await["name"], "Hearing <dates>");
    // The copy-paste form for the campaign's own site.
    browser.click("details.embed summary").await;
    assert!(browser.shows("/subscribe?list=hearing-dates").await, "the link to share");
    let snippet = browser.property("#embed-hearing-dates", "value").await.unwrap_or_default();
    assert!(snippet.contains("Subscribe to Hearing &#60;dates&#62;"), "{snippet}");
    browser.screenshot("admin-05b-embed-form").await;

    browser.click("a[href='/admin/subscribers']").await;
    browser.type_into("#q", "zoe").await;
    browser.click("form[role=search] button[type=submit]").await;
    arrived(&browser, "td a[href^='/admin/subscribers/']").await;
    assert!(browser.shows("zoe@example.org").await);
    browser.screenshot("admin-06-subscribers").await;
    browser.click("td a[href^='/admin/subscribers/']").await;
    arrived(&browser, "#ledger-heading").await;
    assert!(browser.shows("Consent ledger").await);
    browser.screenshot("admin-07-subscriber").await;

    browser.click("form.logout button").await;
    arrived(&browser, ".notice").await;
    assert!(browser.shows("You have logged out.").await);
    browser.goto(&app.url("/admin")).await;
    assert!(browser.url().await.contains("/admin/login"));
    browser.type_into("#email", "organiser@hospital.test").await;
    browser.type_into("#password", "correct horse battery staple").await;
    browser.click("main button[type=submit]").await;
    arrived(&browser, "#lists-heading").await;
    assert!(browser.shows("Dashboard").await);
    browser.screenshot("admin-08-logged-in-again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organiser_writes_previews_tests_and_schedules_an_update_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(Db::Sqlite, &[("TIDINGS_BASE_URL", "self"), ("TIDINGS_TIMEZONE", "UTC")]).await;
    let password = app.add_organiser("writer@hospital.test", tidings::services::accounts::Role::Admin).await;
    app.confirmed_subscribers("backer", 2, "updates").await;

    browser.goto(&app.url("/admin/login")).await;
    browser.type_into("#email", "writer@hospital.test").await;
    browser.type_into("#password", &password).await;
    browser.screenshot("admin-update-01-login").await;
    browser.click("main button[type=submit]").await;
    arrived(&browser, "#lists-heading").await;

    browser.goto(&app.url("/admin/updates/new")).await;
    arrived(&browser, "#subject").await;
    browser.type_into("#subject", "Hearing on <Monday>").await;
    browser.click("#list-updates").await;
    browser.type_into(
        "#body_markdown",
        "Dear {{name}},\n\n## Where\n\nThe hearing is on **Monday** at 10:00, at [the High Court](https://court.test/).\n\nThanks,\nSam",
    )
    .await;
    // The preview beside the editor follows the typing, both parts.
    let text = until_property(&browser, "#preview-text", "textContent", "Thanks,\nSam").await;
    assert!(text.contains("Where\n-----") && text.contains("the High Court [1]") && !text.contains("**"), "{text}");
    assert!(text.contains("[1] https://court.test/"), "{text}");
    let html = until_property(&browser, "#preview-html", "srcdoc", "<strong").await;
    assert!(html.contains("Sam Supporter"), "{html}");
    browser.screenshot("admin-update-02-new").await;
    browser.click("main button[type=submit]").await;
    arrived(&browser, ".notice").await;
    assert!(browser.shows("The draft has been saved.").await);
    browser.screenshot("admin-update-03-draft").await;
    let page = browser.url().await;
    let id = page.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft");

    // The preview opens in its own tab; visit it directly.
    let preview = browser.attribute("a[href$='/preview']", "href").await.expect("a preview link");
    browser.goto(&app.url(&preview)).await;
    let text = browser.text().await;
    assert!(
        text.contains("The hearing is on Monday at 10:00, at the High Court.") && text.contains("Sam Supporter"),
        "{text}"
    );
    assert!(text.contains("Thanks,\nSam"), "a line break kept in the HTML part too: {text}");
    // The raw mail, sandboxed with no script: axe-core cannot run in it.
    browser.screenshots_only("admin-update-04-preview").await;

    browser.goto(&page).await;
    browser.type_into("#emails", "writer@hospital.test").await;
    browser.click("form[action$='/test'] button").await;
    arrived(&browser, ".notice").await;
    assert!(browser.shows("Test copies are on their way.").await);
    browser.screenshot("admin-update-05-test-sent").await;
    app.drain_outbox().await;
    let test_copies = app.smtp.messages_to("writer@hospital.test");
    assert_eq!(test_copies.len(), 1);
    assert!(crate::support::app::header(&test_copies[0], "Subject").unwrap().contains("Hearing on <Monday>"));

    // Schedule it for a time to come, typed into the date and time fields
    // as a person types them (the browser's en-US order), read in the
    // group's zone (UTC here).
    let day = (app.ctx.clock.now() + chrono::Duration::days(2)).date_naive();
    browser.click("#when-later").await;
    browser.type_into("#date", &day.format("%m%d%Y").to_string()).await;
    browser.type_into("#time", "0930AM").await;
    assert_eq!(browser.property("#date", "value").await, Some(day.format("%Y-%m-%d").to_string()));
    assert_eq!(browser.property("#time", "value").await.as_deref(), Some("09:30"));
    let width = browser.number("#date", "offsetWidth").await.unwrap_or(0.0);
    assert!(width > 120.0, "the date field is wide enough to read: {width} px");
    browser.screenshot("admin-update-06-schedule-form").await;
    browser.click("#send-form button[type=submit]").await;
    // The review: who receives it, counted now, and when.
    arrived(&browser, "#audience-total").await;
    assert_eq!(browser.property("#audience-total", "textContent").await.as_deref(), Some("2"));
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft", "the review sends nothing");
    browser.screenshot("admin-update-07-review").await;
    browser.click("#confirm-send").await;
    arrived(&browser, ".notice").await;
    let text = browser.text().await;
    assert!(text.contains("The update is scheduled."), "{text}");
    let at = day.and_hms_opt(9, 30, 0).unwrap();
    assert!(text.contains(&format!("Status: scheduled for {} UTC", at.format("%Y-%m-%d %H:%M"))), "{text}");
    browser.screenshot("admin-update-08-scheduled").await;
    let update = app.api_get(&format!("/updates/{id}")).await;
    assert_eq!(update["status"], "scheduled");
    assert_eq!(update["send_at"].as_str(), Some(format!("{}Z", at.format("%Y-%m-%dT%H:%M:%S")).as_str()), "{update}");
    assert_eq!(app.smtp.messages_to("backer0@example.org").len(), 0, "nothing sent before its time");
    // At that time it goes out.
    app.advance_clock_to(at.and_utc() + chrono::Duration::minutes(1));
    app.drive_delivery(&id, 10).await;
    assert_eq!(app.smtp.messages_to("backer0@example.org").len(), 1, "sent at its time");
}

/// Waits (up to 5 s) until a DOM property contains `needle`; returns it.
async fn until_property(browser: &Browser, css: &str, name: &str, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let value = browser.property(css, name).await.unwrap_or_default();
        if value.contains(needle) || std::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_keeps_the_rights_log_and_publishes_consent_wording_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let app =
        TestApp::spawn_with(Db::Sqlite, &[("TIDINGS_BASE_URL", "self"), ("TIDINGS_GROUP_NAME", "Save Our Hospital")])
            .await;
    let password = app.add_organiser("keeper@hospital.test", tidings::services::accounts::Role::Admin).await;
    browser.goto(&app.url("/admin/login")).await;
    browser.type_into("#email", "keeper@hospital.test").await;
    browser.type_into("#password", &password).await;
    browser.click("main button[type=submit]").await;
    arrived(&browser, "#lists-heading").await;

    // Three requests: one overdue, one to pause, and a complaint.
    let old = (app.ctx.clock.now() - chrono::Duration::days(40)).to_rfc3339();
    for (kind, subject, received) in [
        ("access", "ann.longname-example@example.org", Some(old.as_str())),
        ("erasure", "Bob Smith (phoned the office)", None),
        ("complaint", "carol@example.org", None),
    ] {
        let mut body = serde_json::json!({"kind": kind, "subject": subject});
        if let Some(r) = received {
            body["received_at"] = serde_json::json!(r);
        }
        let res = app.api(reqwest::Method::POST, "/rights-requests").json(&body).send().await.unwrap();
        assert_eq!(res.status(), 201);
    }
    let all = app.api_get("/rights-requests").await;
    let erasure_id =
        all.as_array().unwrap().iter().find(|r| r["kind"] == "erasure").unwrap()["id"].as_str().unwrap().to_owned();
    browser.goto(&app.url(&format!("/admin/rights/{erasure_id}"))).await;
    arrived(&browser, "#pause_reason").await;
    browser.type_into("#pause_reason", "waiting for proof of identity").await;
    browser.click("button[value=pause]").await;
    arrived(&browser, ".notice").await;
    assert!(browser.shows("The clock is stopped").await);
    browser.screenshot("admin-rights-01-paused-request").await;

    browser.goto(&app.url("/admin/rights")).await;
    arrived(&browser, "table.stack").await;
    let text = browser.text().await;
    assert!(text.contains("paused") && text.contains("acknowledge by") && text.contains("overdue"), "{text}");
    browser.screenshot("admin-rights-02-list").await;

    let complaint =
        all.as_array().unwrap().iter().find(|r| r["kind"] == "complaint").unwrap()["id"].as_str().unwrap().to_owned();
    browser.goto(&app.url(&format!("/admin/rights/{complaint}"))).await;
    arrived(&browser, "#note").await;
    browser.screenshot("admin-rights-03-complaint").await;

    // Wording that names no group and offers partners' mail: warned, and
    // published only once acknowledged.
    let list = app.api_get("/lists/updates").await;
    browser.goto(&app.url(&format!("/admin/lists/{}/wording", list["id"].as_str().unwrap()))).await;
    arrived(&browser, "#text").await;
    browser.screenshot("admin-wording-01-form").await;
    browser.set_value("#text", "Yes, send me news and offers from our carefully selected partners.").await;
    browser.click("main button[type=submit]").await;
    arrived(&browser, "#warnings").await;
    assert!(browser.shows("does not name Save Our Hospital").await);
    browser.screenshot("admin-wording-02-warning").await;
    browser.click("#acknowledge").await;
    browser.click("main button[type=submit]").await;
    arrived(&browser, ".notice").await;
    assert!(browser.shows("The new consent wording is published").await);
    let statements = app.api_get("/consent-statements").await;
    assert!(statements.to_string().contains("carefully selected partners"), "{statements}");
}
