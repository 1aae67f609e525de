//! Checklist item 21: each list states how often it mails, on the form and
//! in the confirmation mail. ICO (clear expectations).

use crate::both_backends;
use crate::support::app::{Db, TestApp, html_body, text_body};
use reqwest::Method;
use serde_json::json;

both_backends!(a_lists_how_often_line_is_on_the_subscribe_form_and_in_the_confirmation_mail);

async fn a_lists_how_often_line_is_on_the_subscribe_form_and_in_the_confirmation_mail(db: Db) {
    let app = TestApp::spawn(db).await;
    // Through the API: set, read back, refused when not one line.
    let res = app
        .api(Method::PATCH, "/lists/updates")
        .json(&json!({"frequency": "About twice a month"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.api_get("/lists/updates").await["frequency"], "About twice a month");
    let res = app.api(Method::PATCH, "/lists/updates").json(&json!({"frequency": "one\ntwo"})).send().await.unwrap();
    assert_eq!(res.status(), 422);
    // Through the admin list form.
    let admin = app.login_as_admin().await;
    let fields =
        [("slug", "hearings"), ("name", "Hearing dates"), ("frequency", "Only before a hearing"), ("public", "on")];
    let res = admin.submit("/admin/lists/new", "/admin/lists", &fields).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(app.api_get("/lists/hearings").await["frequency"], "Only before a hearing");
    let id = app.api_get("/lists/hearings").await["id"].as_str().unwrap().to_owned();
    assert!(admin.get(&format!("/admin/lists/{id}")).await.body.contains("value=\"Only before a hearing\""));

    let form = app.http.get(app.url("/subscribe")).send().await.unwrap().text().await.unwrap();
    assert!(form.contains("How often: About twice a month"), "{form}");
    assert!(form.contains("How often: Only before a hearing"), "{form}");

    let res = app
        .post_form(
            "/subscribe",
            &[
                ("email", "ann@example.org"),
                ("lists", "updates"),
                ("consent", "updates"),
                ("lists", "hearings"),
                ("consent", "hearings"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    app.drain_outbox().await;
    let mail = &app.smtp.messages_to("ann@example.org")[0];
    let text = text_body(mail);
    assert!(text.contains("updates (how often: About twice a month)"), "{text}");
    assert!(text.contains("Hearing dates (how often: Only before a hearing)"), "{text}");
    assert!(html_body(mail).contains("Hearing dates (how often: Only before a hearing)"));
}
