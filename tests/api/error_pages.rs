//! The supporter-facing error pages (issue 18 §4): a missing page (404), a
//! used or expired link (410) and too many sign-ups (429) are pages in the
//! site's layout — the group's name in the header, the footer — that say
//! what to do next; the 429 answer to the sign-up form is the form again
//! with what was typed. JSON clients still get the JSON error.

use crate::both_backends;
use crate::support::app::{Db, TestApp};

both_backends!(
    a_missing_page_is_in_the_sites_layout_and_says_what_to_do,
    a_used_link_is_in_the_sites_layout_and_says_what_to_do,
    too_many_sign_ups_give_the_form_back_with_what_was_typed,
);

const GROUP: &str = "Save Our Maternity Unit";

async fn app(db: Db) -> TestApp {
    TestApp::spawn_with(db, &[("TIDINGS_GROUP_NAME", GROUP), ("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "1")]).await
}

async fn page(app: &TestApp, path: &str) -> (u16, String, String) {
    let res = app.http.get(app.url(path)).header("accept", "text/html").send().await.unwrap();
    let status = res.status().as_u16();
    let kind = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, kind, res.text().await.unwrap())
}

/// The site's header (the group's name, linking home) and footer.
fn assert_in_layout(html: &str) {
    assert!(html.contains(&format!(r#"<a href="/" class="brand">{GROUP}</a>"#)), "{html}");
    assert!(html.contains(r#"<footer class="site"><a href="/privacy">"#), "{html}");
    assert!(html.contains("What you can do"), "{html}");
}

async fn a_missing_page_is_in_the_sites_layout_and_says_what_to_do(db: Db) {
    let app = app(db).await;
    let (status, kind, html) = page(&app, "/no-such-page").await;
    assert_eq!(status, 404);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert_in_layout(&html);
    assert!(html.contains("Page not found") && html.contains("Manage your preferences"), "{html}");
    // The JSON answer is unchanged.
    let res = app.http.get(app.url("/no-such-page")).header("accept", "application/json").send().await.unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

async fn a_used_link_is_in_the_sites_layout_and_says_what_to_do(db: Db) {
    let app = app(db).await;
    assert_eq!(app.subscribe("una@example.org", "updates").await.status(), 200);
    app.drain_outbox().await;
    let token = crate::support::app::confirm_token(app.smtp.messages_to("una@example.org").last().unwrap());
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    let (status, _, html) = page(&app, &format!("/confirm/{token}")).await;
    assert_eq!(status, 410);
    assert_in_layout(&html);
    assert!(html.contains("expired or was already used") && html.contains(r#"href="/subscribe""#), "{html}");
}

async fn too_many_sign_ups_give_the_form_back_with_what_was_typed(db: Db) {
    let app = app(db).await;
    assert_eq!(app.subscribe("vic@example.org", "updates").await.status(), 200);
    let res = app
        .post_form(
            "/subscribe",
            &[("email", "wyn@example.org"), ("name", "Wyn Typed"), ("lists", "updates"), ("consent", "updates")],
        )
        .await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!(r#"<a href="/" class="brand">{GROUP}</a>"#)), "{html}");
    assert!(html.contains("Too many requests. Please wait a minute and try again."), "{html}");
    assert!(html.contains(r#"value="wyn@example.org""#) && html.contains(r#"value="Wyn Typed""#), "{html}");
}
