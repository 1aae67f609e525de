//! Checklist item 15 — erasure leaves nothing behind: the database files,
//! the outbox's rows of mail already sent, the audit log (an address typed
//! at the login form) and rights-request notes (UK GDPR Art 17). The
//! address, name and a phone attribute are searched for in the raw SQLite
//! file and WAL, and in a `pg_dump` of the PostgreSQL schema, before and
//! after erasure. (Moved here from `identity.rs`.)

use crate::admin::AdminClient;
use crate::both_backends;
use crate::identity::{erase, subscribed_and_confirmed};
use crate::support::app::{Db, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

both_backends!(erasure_leaves_nothing_behind_in_the_database);

async fn app(db: Db) -> TestApp {
    TestApp::spawn_with(db, &[("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "0")]).await
}

const EMAIL: &str = "Zelda.Quist@Example.org";
const NAME: &str = "Zelda Quistorp";
const PHONE: &str = "+44 7700 900461";

/// What must not be found after erasure, lower case: the address (local
/// part alone covers every spelling), the name, the phone number.
fn needles() -> Vec<String> {
    vec!["zelda.quist".to_owned(), NAME.to_lowercase(), PHONE.to_owned()]
}

/// Which needles occur in `bytes` (ASCII case-insensitive), raw or as the
/// hex a dump uses for binary columns.
fn found_in(bytes: &[u8], what: &str) -> Vec<String> {
    let hay = bytes.to_ascii_lowercase();
    let mut found = Vec::new();
    for needle in needles() {
        let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
        for form in [needle.as_bytes(), hex.as_bytes()] {
            if hay.windows(form.len()).any(|w| w == form) {
                found.push(format!("{needle:?} in {what}"));
            }
        }
    }
    found
}

/// Everything the database holds, as bytes: the SQLite file and its WAL, or
/// a `pg_dump` of the test's schema.
async fn database_bytes(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    let url = &app.ctx.config.database_url;
    match &app.ctx.store {
        tidings::store::Store::Sqlite(_) => {
            let path = url.trim_start_matches("sqlite://").to_owned();
            let mut files = vec![(path.clone(), std::fs::read(&path).expect("the database file"))];
            let wal = format!("{path}-wal");
            if let Ok(bytes) = std::fs::read(&wal) {
                files.push((wal, bytes));
            }
            files
        }
        tidings::store::Store::Postgres(_) => {
            let (base, schema) = url.split_once("?options[search_path]=").expect("a test schema");
            let out = std::process::Command::new("/usr/bin/pg_dump")
                .args(["--dbname", base, "--schema", schema, "--no-owner"])
                .output()
                .expect("pg_dump runs");
            assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
            vec![(format!("pg_dump --schema {schema}"), out.stdout)]
        }
    }
}

async fn erasure_leaves_nothing_behind_in_the_database(db: Db) {
    let app = app(db).await;
    let id = subscribed_and_confirmed(&app, EMAIL, "Zelda.Quist@example.org", NAME).await;
    let res = app
        .api(Method::PATCH, &format!("/subscribers/{id}"))
        .json(&json!({"attributes": {"phone": PHONE}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A mailing delivered to her.
    let update = app.create_update("The ward stays open", "Hello {{name}}", &["updates"]).await;
    assert_eq!(app.api(Method::POST, &format!("/updates/{update}/send")).send().await.unwrap().status(), 202);
    app.drive_delivery(&update, 50).await;
    // Her own rights request, and another person's whose notes name her.
    for (kind, subject, notes) in [
        ("access", EMAIL, format!("{NAME} phoned from {PHONE}; reply to {EMAIL}")),
        ("objection", "someone@else.example", format!("Says {} told her; call {PHONE}", NAME.to_uppercase())),
    ] {
        let res = app
            .api(Method::POST, "/rights-requests")
            .json(&json!({"kind": kind, "subject": subject, "notes": notes}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    }
    // Her address typed into the organisers' login form.
    let admin = AdminClient::new(&app);
    assert_eq!(admin.log_in(EMAIL, "not a password").await.status, 401);

    // The search can find them: before erasure they are all there.
    let mut before = Vec::new();
    for (what, bytes) in database_bytes(&app).await {
        before.extend(found_in(&bytes, &what));
    }
    for needle in needles() {
        assert!(before.iter().any(|f| f.starts_with(&format!("{needle:?}"))), "{needle:?} is stored before erasure");
    }

    erase(&app, &id).await;
    let mut after = Vec::new();
    for (what, bytes) in database_bytes(&app).await {
        after.extend(found_in(&bytes, &what));
    }
    assert!(after.is_empty(), "left behind after erasure: {after:?}");

    // The records themselves are kept, without her.
    let requests = app.api_get("/rights-requests").await;
    let requests = requests.as_array().or_else(|| requests["items"].as_array()).cloned().unwrap_or_default();
    assert_eq!(requests.len(), 2, "both rights requests are kept: {requests:?}");
    let audit: Value = app.api_get("/audit-log").await;
    assert!(audit.to_string().contains("login attempt "), "the failed login is still recorded: {audit}");
}
