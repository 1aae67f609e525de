//! Small steps the checklist tests share: subscribing and confirming through
//! the real form and mail, sending an update and picking out one copy, and
//! running a statement straight against the test's database.

use crate::support::app::{TestApp, confirm_token, header};
use crate::support::smtp::CapturedMail;
use reqwest::Method;

/// Subscribes `email` to `list` through the public form and confirms it
/// with the link from the confirmation mail, as a supporter would.
pub async fn subscribe_and_confirm(app: &TestApp, email: &str, list: &str) {
    let res = app.subscribe(email, list).await;
    assert_eq!(res.status(), 200);
    app.drain_outbox().await;
    let mail = app.smtp.messages_to(email).pop().expect("a confirmation mail");
    let token = confirm_token(&mail);
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    assert_eq!(app.status(email, list).await, "confirmed");
}

/// Creates an update to `lists`, starts it and runs delivery to the end;
/// returns its id.
pub async fn send_update(app: &TestApp, subject: &str, lists: &[&str]) -> String {
    let id = app.create_update(subject, "Hello {{name}}, here is the news.", lists).await;
    let res = app.api(Method::POST, &format!("/updates/{id}/send")).send().await.expect("request");
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap_or_default());
    app.drive_delivery(&id, 20).await;
    id
}

/// The copies of the mail with `subject` that reached `email`.
pub fn copies(app: &TestApp, email: &str, subject: &str) -> Vec<CapturedMail> {
    app.smtp.messages_to(email).into_iter().filter(|m| header(m, "Subject").as_deref() == Some(subject)).collect()
}

/// Runs one statement on the test's database: rows changed, or the error.
pub async fn exec(app: &TestApp, sql: &'static str) -> Result<u64, String> {
    let outcome = match &app.ctx.store {
        tidings::store::Store::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()),
        tidings::store::Store::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()),
    };
    outcome.map_err(|e| e.to_string())
}
