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
    assert!(browser.text().await.contains("Set up Tidings"));
    browser.type_into("#email", "organiser@hospital.test").await;
    browser.type_into("#password", "correct horse battery staple").await;
    browser.type_into("#password_confirm", "correct horse battery stable").await;
    browser.click("main button[type=submit]").await;
    arrived(&browser, ".errors").await;
    assert!(browser.text().await.contains("the two passwords differ"));
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
    browser.type_into("#slug", "hearings").await;
    browser.type_into("#name", "Hearing <dates>").await;
    browser.type_into("#description", "When the court sits").await;
    browser.screenshot("admin-04-new-list").await;
    browser.click("main button[type=submit]").await;
    arrived(&browser, ".notice").await;
    let text = browser.text().await;
    assert!(text.contains("The list has been created.") && text.contains("Hearing <dates>"), "{text}");
    browser.screenshot("admin-05-lists").await;
    assert_eq!(app.api_get("/lists/hearings").await["name"], "Hearing <dates>");

    browser.click("a[href='/admin/subscribers']").await;
    browser.type_into("#q", "zoe").await;
    browser.click("form[role=search] button[type=submit]").await;
    arrived(&browser, "td a[href^='/admin/subscribers/']").await;
    assert!(browser.text().await.contains("zoe@example.org"));
    browser.screenshot("admin-06-subscribers").await;
    browser.click("td a[href^='/admin/subscribers/']").await;
    arrived(&browser, "#ledger-heading").await;
    assert!(browser.text().await.contains("Consent ledger"));
    browser.screenshot("admin-07-subscriber").await;

    browser.click("form.logout button").await;
    arrived(&browser, ".notice").await;
    assert!(browser.text().await.contains("You have logged out."));
    browser.goto(&app.url("/admin")).await;
    assert!(browser.url().await.contains("/admin/login"));
    browser.type_into("#email", "organiser@hospital.test").await;
    browser.type_into("#password", "correct horse battery staple").await;
    browser.click("main button[type=submit]").await;
    arrived(&browser, "#lists-heading").await;
    assert!(browser.text().await.contains("Dashboard"));
    browser.screenshot("admin-08-logged-in-again").await;
}
