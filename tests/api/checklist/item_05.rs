//! Checklist item 05 — the privacy notice is linked at the point of
//! collection: on the subscribe form, in the embed snippet organisers put
//! on their site, and in the confirmation mail (UK GDPR Art 13).

use crate::both_backends;
use crate::support::app::{Db, TestApp, html_body, text_body};

both_backends!(the_privacy_notice_is_linked_from_the_form_the_snippet_and_the_confirmation_mail);

async fn the_privacy_notice_is_linked_from_the_form_the_snippet_and_the_confirmation_mail(db: Db) {
    let app = TestApp::spawn(db).await;
    let notice = app.http.get(app.url("/privacy")).send().await.unwrap();
    assert_eq!(notice.status(), 200, "the notice itself is served");

    let form = app.http.get(app.url("/subscribe")).send().await.unwrap().text().await.unwrap();
    let at = form.find("<form").expect("a form");
    assert!(form[at..].contains("href=\"/privacy\""), "the form links the notice: {form}");

    let admin = app.login_as_admin().await;
    let lists = admin.get("/admin/lists").await;
    let start = lists.body.find("<textarea id=\"embed-updates\"").expect("the list's snippet");
    let snippet = &lists.body[start..start + lists.body[start..].find("</textarea>").unwrap()];
    assert!(snippet.contains("http://tidings.test/privacy"), "the snippet links the notice: {snippet}");

    assert_eq!(app.subscribe("pia@example.org", "updates").await.status(), 200);
    app.drain_outbox().await;
    let mail = &app.smtp.messages_to("pia@example.org")[0];
    assert!(text_body(mail).contains("http://tidings.test/privacy"), "{}", text_body(mail));
    assert!(html_body(mail).contains("href=\"http://tidings.test/privacy\""), "{}", html_body(mail));
}
