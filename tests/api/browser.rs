//! The supporter journey in a real headless Chromium: the subscribe form,
//! the confirmation page, preferences, and unsubscribing, with a screenshot
//! of each page at desktop and phone widths and an axe-core check of each.

use crate::support::app::{Db, TestApp, confirm_token};
use crate::support::browser::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supporter_completes_the_journey_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let app =
        TestApp::spawn_with(Db::Sqlite, &[("TIDINGS_BASE_URL", "self"), ("TIDINGS_CONTACT_ADDRESS", "1 High St")])
            .await;
    app.create_list("hearings", "Hearing dates").await;

    browser.goto(&app.url("/")).await;
    browser.screenshot("01-subscribe-form").await;
    // Submitting without ticking a box explains what is missing.
    browser.type_into("#email", "zoe@example.org").await;
    browser.click("button[type=submit]").await;
    let text = browser.text().await;
    assert!(text.contains("tick the box"), "{text}");
    browser.screenshot("02-subscribe-form-errors").await;
    assert_eq!(browser.attribute("#email", "value").await.as_deref(), Some("zoe@example.org"));

    browser.type_into("#name", "Zoë <b>Z</b>").await;
    browser.click("#consent-hearings").await;
    browser.click("button[type=submit]").await;
    assert!(browser.shows("Check your inbox").await);
    browser.screenshot("03-check-inbox").await;

    app.drain_outbox().await;
    let token = confirm_token(&app.smtp.messages_to("zoe@example.org")[0]);
    browser.goto(&app.url(&format!("/confirm/{token}"))).await;
    assert!(browser.shows("Hearing dates").await);
    browser.screenshot("04-confirm").await;
    assert_eq!(app.status("zoe@example.org", "hearings").await, "pending");
    browser.click("button[type=submit]").await;
    assert!(browser.shows("you're subscribed").await);
    browser.screenshot("05-confirmed").await;
    assert_eq!(app.status("zoe@example.org", "hearings").await, "confirmed");

    browser.click("a[href*='/preferences/']").await;
    let text = browser.text().await;
    assert!(text.contains("zoe@example.org") && text.contains("Hearing dates"));
    assert_eq!(
        browser.attribute("#name", "value").await.as_deref(),
        Some("Zoë <b>Z</b>"),
        "shown as typed, not as markup"
    );
    browser.screenshot("06-preferences").await;
    browser.click("#list-updates").await;
    browser.click("button[value=save]").await;
    assert!(browser.shows("Your choices have been saved").await);
    // A new list from the preferences page is asked for by mail first.
    assert!(browser.shows("we have sent a confirmation email").await);
    assert_eq!(app.status("zoe@example.org", "updates").await, "pending");
    app.drain_outbox().await;
    let token = confirm_token(app.smtp.messages_to("zoe@example.org").last().unwrap());
    app.post_form(&format!("/confirm/{token}"), &[]).await;
    assert_eq!(app.status("zoe@example.org", "updates").await, "confirmed");

    let unsub = app.unsubscribe_token("zoe@example.org", "hearings").await;
    browser.goto(&app.url(&format!("/unsubscribe/{unsub}"))).await;
    browser.screenshot("07-unsubscribe").await;
    browser.click("button[type=submit]").await;
    assert!(browser.shows("You have been unsubscribed").await);
    assert!(browser.url().await.contains("/unsubscribe/"), "no redirect");
    browser.screenshot("08-unsubscribed").await;
    assert_eq!(app.status("zoe@example.org", "hearings").await, "unsubscribed");

    browser.goto(&app.url("/privacy")).await;
    assert!(browser.shows("Privacy notice").await);
    browser.screenshot("09-privacy").await;

    // The page a test copy's unsubscribe and preferences links lead to.
    browser.goto(&app.url("/test-copy")).await;
    assert!(browser.shows("test copy").await);
    browser.screenshot("10-test-copy").await;
}

/// The pages a supporter meets when something is wrong — a missing page,
/// a used link, too many sign-ups — in the site's layout, with what to do
/// next, at both widths and free of axe-core violations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_pages_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[("TIDINGS_GROUP_NAME", "Save Our Maternity Unit"), ("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "1")],
    )
    .await;
    browser.goto(&app.url("/no-such-page")).await;
    assert!(browser.shows("Page not found").await);
    browser.screenshot("11-not-found").await;

    assert_eq!(app.subscribe("una@example.org", "updates").await.status(), 200);
    app.drain_outbox().await;
    let token = confirm_token(app.smtp.messages_to("una@example.org").last().unwrap());
    app.post_form(&format!("/confirm/{token}"), &[]).await;
    browser.goto(&app.url(&format!("/confirm/{token}"))).await;
    assert!(browser.shows("expired or was already used").await);
    browser.screenshot("12-link-used").await;

    // The test's own sign-up above used the one allowed from this address.
    browser.goto(&app.url("/")).await;
    browser.type_into("#email", "wyn@example.org").await;
    browser.type_into("#name", "Wyn").await;
    browser.click("#consent-updates").await;
    browser.click("button[type=submit]").await;
    assert!(browser.shows("Too many requests").await);
    assert_eq!(browser.attribute("#email", "value").await.as_deref(), Some("wyn@example.org"));
    browser.screenshot("13-too-many").await;
}

/// The accessibility check every screenshot runs can fail: on a page made
/// with an image without text and a field without a label, axe-core reports
/// both rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accessibility_check_reports_a_page_made_to_fail_it() {
    let Some(browser) = Browser::start().await else { return };
    browser
        .goto("data:text/html,<!doctype html><html lang=en><title>t</title><main><img src=x.png><input></main></html>")
        .await;
    let violations = browser.axe_violations().await;
    if std::fs::metadata(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser-tools/node_modules/axe-core")).is_err() {
        return; // axe-core not installed outside CI (axe_violations said so)
    }
    let rules: Vec<&str> = violations.as_array().unwrap().iter().filter_map(|v| v["rule"].as_str()).collect();
    assert!(rules.contains(&"image-alt") && rules.contains(&"label"), "{violations:#}");
}
