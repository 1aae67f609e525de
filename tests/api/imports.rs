//! CSV imports (API jobs run by the import worker, the admin upload form,
//! `tidings import`) and CSV exports (`GET /api/v1/lists/{id}/export`,
//! `tidings export`).

use crate::both_backends;
use crate::support::app::{Db, TestApp, html_escaped};
use reqwest::Method;
use serde_json::{Value, json};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use tidings::workers::imports::ImportWorker;

both_backends!(
    a_withdrawal_stands_against_imports_and_organiser_adds_even_after_an_anonymous_resubscribe,
    a_confirmed_import_reports_exact_counts_and_records_one_event_per_person_and_list,
    a_pending_import_sends_one_confirmation_each_and_confirms_nobody,
    an_import_resumes_after_a_crash_without_losing_or_doubling_a_row,
    bad_import_requests_are_refused_and_leave_nothing_behind,
    the_admin_uploads_and_watches_an_import_and_editors_cannot,
    a_list_export_streams_every_row_and_defuses_formulas,
    the_cli_imports_with_a_summary_and_exports_csv,
);

const BASIS: &str = "paper sign-up sheets, stall at the 2026 summer fair";

/// A `multipart/form-data` body of `parts` (name, file name, bytes), in
/// order; returns the content type and the body.
pub(crate) fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----tidings-test-boundary-7d1e";
    let mut body = Vec::new();
    for (name, filename, value) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n")
                    .as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `POST /api/v1/imports` with `fields` and the file `csv`.
pub(crate) async fn upload(app: &TestApp, fields: &[(&str, &str)], csv: &[u8]) -> (u16, Value) {
    let mut parts: Vec<(&str, Option<&str>, &[u8])> = fields.iter().map(|(k, v)| (*k, None, v.as_bytes())).collect();
    parts.push(("file", Some("supporters.csv"), csv));
    let (content_type, body) = multipart(&parts);
    let res = app.api(Method::POST, "/imports").header("content-type", content_type).body(body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Runs the import worker until nothing is waiting.
pub(crate) async fn run_imports(app: &TestApp) {
    let (_keep, never) = tokio::sync::watch::channel(false);
    let worker = ImportWorker::new(app.ctx.clone());
    for _ in 0..20 {
        if worker.run_once(&never).await.expect("import step").ran.is_none() {
            return;
        }
    }
    panic!("the import worker kept finding work");
}

async fn import(app: &TestApp, id: &str) -> Value {
    app.api_get(&format!("/imports/{id}?errors_limit=1000")).await
}

fn errors(job: &Value) -> Vec<(i64, String, String)> {
    job["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["line"].as_i64().unwrap(), e["outcome"].as_str().unwrap().into(), e["code"].as_str().unwrap().into())
        })
        .collect()
}

fn summary(job: &Value) -> [i64; 5] {
    let s = &job["summary"];
    ["added", "updated", "skipped", "suppressed", "invalid"].map(|k| s[k].as_i64().unwrap())
}

async fn add_confirmed(app: &TestApp, email: &str, name: &str, list: &str) -> Value {
    let res = app
        .api(Method::POST, "/subscribers")
        .json(
            &json!({"email": email, "name": name, "lists": [list], "status": "confirmed", "basis": "an earlier form"}),
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    res.json().await.unwrap()
}

/// The imported entries of a ledger, as (list, basis).
fn imported(ledger: &[Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = ledger
        .iter()
        .filter(|e| e["kind"] == "imported")
        .map(|e| (e["list"].as_str().unwrap().into(), e["detail"].as_str().unwrap_or("").into()))
        .collect();
    out.sort();
    out
}

async fn a_confirmed_import_reports_exact_counts_and_records_one_event_per_person_and_list(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("events", "Events").await;
    // Already confirmed on `updates` (so only `events` is new for them).
    add_confirmed(&app, "kept@example.org", "Old Name", "updates").await;
    // Unsubscribed from `updates`: an import must not bring them back.
    add_confirmed(&app, "gone@example.org", "Gone", "updates").await;
    let token = app.unsubscribe_token("gone@example.org", "updates").await;
    assert_eq!(app.post_form(&format!("/unsubscribe/{token}"), &[]).await.status(), 200);
    // Erased: on the suppression list.
    let erased = add_confirmed(&app, "erased@example.org", "Eve", "updates").await;
    let res = app.api(Method::POST, &format!("/subscribers/{}/erase", erased["id"].as_str().unwrap())).send().await;
    assert_eq!(res.unwrap().status(), 200);

    let csv = "\u{feff}Email,Name,Town,Ward\r\n\
               ann@example.org,\"Smith, Ann\",Leeds,3\r\n\
               not-an-address,Bad,X,1\r\n\
               ANN@Example.org,Ann Again,York,4\r\n\
               Erased@Example.org,Eve,Hull,5\r\n\
               ben@example.org,<b>Ben</b>,\"Hull, East\",6\r\n\
               kept@example.org,Kept Confirmed,Leeds,7\r\n\
               gone@example.org,Gone Again,Leeds,8\r\n\
               cy@example.org,Cy\r\n\
               \r\n\
               dee@example.org,,,\r\n\
               BEN@EXAMPLE.ORG,Ben,,\r\n";
    let (status, queued) =
        upload(&app, &[("list", "updates"), ("list", "events"), ("basis", BASIS)], csv.as_bytes()).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["status"], "confirmed", "confirmed is the default with a basis");
    assert_eq!(queued["lists"], json!(["updates", "events"]));
    let id = queued["id"].as_str().unwrap().to_owned();

    run_imports(&app).await;
    let job = import(&app, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["progress"]["rows_done"], 10);
    assert_eq!(job["progress"]["percent"], 100.0);
    assert_eq!(summary(&job), [3, 1, 3, 1, 2], "added, updated, skipped, suppressed, invalid: {job}");
    let expected = [
        (3, "invalid", "invalid_email"),
        (4, "skipped", "duplicate"),
        (5, "suppressed", "suppressed"),
        (8, "skipped", "unsubscribed"),
        (9, "invalid", "wrong_field_count"),
        (12, "skipped", "duplicate"),
    ]
    .map(|(l, o, c)| (l, o.to_owned(), c.to_owned()));
    assert_eq!(errors(&job), expected);
    assert_eq!(job["errors"][1]["message"], "the same address as line 2");
    assert_eq!(job["errors"][5]["message"], "the same address as line 6");
    assert!(job["errors_next"].is_null());
    // Paged by line.
    let page = app.api_get(&format!("/imports/{id}?errors_after=4&errors_limit=2")).await;
    assert_eq!(errors(&page).iter().map(|e| e.0).collect::<Vec<_>>(), [5, 8]);
    assert_eq!(page["errors_next"], 8);

    // One imported entry per person and list, with the basis.
    let both = vec![("events".to_owned(), BASIS.to_owned()), ("updates".to_owned(), BASIS.to_owned())];
    for email in ["ann@example.org", "ben@example.org", "dee@example.org"] {
        assert_eq!(imported(&app.ledger(email).await), both, "{email}");
        assert_eq!(app.status(email, "updates").await, "confirmed");
        assert_eq!(app.status(email, "events").await, "confirmed");
    }
    let ann = app.subscriber("ann@example.org").await;
    assert_eq!((ann["email"].as_str(), ann["name"].as_str()), (Some("ann@example.org"), Some("Smith, Ann")));
    assert_eq!(ann["attributes"], json!({"Town": "Leeds", "Ward": "3"}));
    assert_eq!(app.subscriber("dee@example.org").await["attributes"], json!({}));
    // Known and confirmed: updated, and only the new list recorded.
    let kept = app.subscriber("kept@example.org").await;
    assert_eq!(kept["name"], "Kept Confirmed");
    assert_eq!(kept["attributes"], json!({"Town": "Leeds", "Ward": "7"}));
    assert_eq!(
        imported(&app.ledger("kept@example.org").await),
        [("events".to_owned(), BASIS.to_owned()), ("updates".to_owned(), "an earlier form".to_owned())]
    );
    // Unsubscribed: untouched.
    assert_eq!(app.status("gone@example.org", "updates").await, "unsubscribed");
    assert_eq!(app.status("gone@example.org", "events").await, "none");
    assert_eq!(app.subscriber("gone@example.org").await["name"], "Gone");
    // Erased: still nobody.
    let res = app.api(Method::GET, "/subscribers?email=erased%40example.org").send().await.unwrap();
    assert_eq!(res.status(), 404);

    // HTML in a name is kept as text and escaped where it is shown.
    let ben = app.subscriber("ben@example.org").await;
    assert_eq!(ben["name"], "<b>Ben</b>");
    let admin = app.login_as_admin().await;
    let page = admin.get(&format!("/admin/subscribers/{}", ben["id"].as_str().unwrap())).await;
    assert!(page.body.contains(&html_escaped("<b>Ben</b>")) && !page.body.contains("<b>Ben</b>"));

    // The imported people receive the next update; the others do not.
    let update = app.create_update("The hearing", "Dear {{name}}, the hearing is on Tuesday.", &["updates"]).await;
    let res = app.api(Method::POST, &format!("/updates/{update}/send")).send().await.unwrap();
    assert_eq!(res.status(), 202);
    app.drive_delivery(&update, 50).await;
    for email in ["ann@example.org", "ben@example.org", "dee@example.org", "kept@example.org"] {
        let got = app.smtp.messages_to(email);
        assert_eq!(got.len(), 1, "{email} gets the update once");
        assert!(got[0].text().contains("The hearing"));
    }
    for email in ["gone@example.org", "erased@example.org", "Erased@Example.org"] {
        assert!(app.smtp.messages_to(email).is_empty(), "{email} gets nothing");
    }
    let list = app.api_get("/imports").await;
    assert_eq!(list["imports"][0]["id"], id.as_str());
}

async fn a_pending_import_sends_one_confirmation_each_and_confirms_nobody(db: Db) {
    let app = TestApp::spawn(db).await;
    add_confirmed(&app, "kept@example.org", "Kept", "updates").await;
    app.drain_outbox().await;
    let csv = b"email,first name,last name\nnew1@example.org,Ann,Ng\nnew2@example.org,Bo,\nNEW1@example.org,Ann,Ng\nnew3@example.org,,Cole\nkept@example.org,Kept,\n";
    let (status, queued) = upload(&app, &[("list", "updates"), ("status", "pending")], csv).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["status"], "pending");
    run_imports(&app).await;
    let job = import(&app, queued["id"].as_str().unwrap()).await;
    assert_eq!(summary(&job), [3, 1, 1, 0, 0], "{job}");
    assert_eq!(app.subscriber("new1@example.org").await["name"], "Ann Ng");
    assert_eq!(app.subscriber("new3@example.org").await["name"], "Cole");

    let step = app.drain_outbox().await;
    assert_eq!(step.sent, 3, "one confirmation per new person, none for the confirmed one");
    for email in ["new1@example.org", "new2@example.org", "new3@example.org"] {
        assert_eq!(app.smtp.messages_to(email).len(), 1, "{email}");
        assert_eq!(app.status(email, "updates").await, "pending");
        let kinds: Vec<_> = app.ledger(email).await.iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
        assert_eq!(kinds, ["requested"], "{email}");
    }
    assert!(app.smtp.messages_to("kept@example.org").is_empty());
    assert_eq!(app.status("kept@example.org", "updates").await, "confirmed");
    // Nobody new is confirmed: an update reaches only the one confirmed before.
    let update = app.create_update("News", "Hello", &["updates"]).await;
    app.api(Method::POST, &format!("/updates/{update}/send")).send().await.unwrap();
    assert_eq!(app.stats(&update).await["total"], 1);
}

pub(crate) async fn count(app: &TestApp, sql: &'static str) -> i64 {
    match &app.ctx.store {
        tidings::store::Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        tidings::store::Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn an_import_resumes_after_a_crash_without_losing_or_doubling_a_row(db: Db) {
    let app = TestApp::spawn(db).await;
    // Three batches (full, full, 500 rows). Line 102 is invalid, and a row
    // in the last batch repeats line 7's address.
    let batch = tidings::services::imports::BATCH_ROWS;
    let (total, repeat) = (2 * batch + 500, 2 * batch + 400);
    let mut csv = String::from("email,name\n");
    for i in 0..total {
        match i {
            100 => csv.push_str("not an address,X\n"),
            _ if i == repeat => csv.push_str("P5@EXAMPLE.ORG,again\n"),
            _ => csv.push_str(&format!("p{i}@example.org,Person {i}\n")),
        }
    }
    let (status, queued) = upload(&app, &[("list", "updates"), ("basis", BASIS)], csv.as_bytes()).await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap().to_owned();

    // A worker that dies right after committing its first batch.
    let (_keep, never) = tokio::sync::watch::channel(false);
    let doomed = ImportWorker::new(app.ctx.clone()).on_batch(Arc::new(|_| panic!("simulated crash")));
    let crashed = tokio::spawn(async move { doomed.run_once(&never).await }).await;
    assert!(crashed.is_err_and(|e| e.is_panic()));
    let job = import(&app, &id).await;
    let batch = batch as i64;
    assert_eq!((job["state"].as_str(), job["progress"]["rows_done"].as_i64()), (Some("running"), Some(batch)));
    assert_eq!(summary(&job), [batch - 1, 0, 0, 0, 1]);

    // Its lease still holds: nobody else may take the import yet.
    let (_keep, never) = tokio::sync::watch::channel(false);
    let successor = ImportWorker::new(app.ctx.clone());
    assert!(successor.run_once(&never).await.unwrap().ran.is_none());
    // Once it has expired, another worker carries on from the checkpoint.
    app.ctx.clock.advance(app.ctx.config.worker_lease + std::time::Duration::from_secs(1));
    assert!(successor.run_once(&never).await.unwrap().ran.is_some());

    let job = import(&app, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    let (total, added) = (total as i64, total as i64 - 2);
    assert_eq!(job["progress"]["rows_done"], total);
    assert_eq!(summary(&job), [added, 0, 1, 0, 1]);
    let repeat_line = repeat as i64 + 2;
    assert_eq!(
        errors(&job),
        [(102, "invalid".into(), "invalid_email".into()), (repeat_line, "skipped".into(), "duplicate".into())]
    );
    assert_eq!(job["errors"][1]["message"], "the same address as an earlier row");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM consent_events WHERE kind = 'imported'").await, added);
    assert_eq!(
        count(&app, "SELECT COUNT(DISTINCT subscriber_id) FROM consent_events WHERE kind = 'imported'").await,
        added
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM subscriptions WHERE status = 'confirmed'").await, added);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM import_chunks").await, 0, "the stored file is deleted at the end");
}

async fn bad_import_requests_are_refused_and_leave_nothing_behind(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_IMPORT_MAX_BYTES", "2000")]).await;
    let good = b"email,name\nann@example.org,Ann\n";
    /// Form fields, file, and the field the answer names.
    type Refusal<'a> = (&'a [(&'a str, &'a str)], &'a [u8], &'a str);
    let refusals: [Refusal<'_>; 5] = [
        (&[("list", "nope"), ("basis", BASIS)], good, "lists"),
        (&[("list", "updates"), ("status", "confirmed")], good, "basis"),
        (&[("basis", BASIS)], good, "lists"),
        (&[("list", "updates"), ("basis", BASIS)], b"name,phone\nAnn,1\n", "file"),
        (&[("list", "updates"), ("basis", BASIS), ("status", "maybe")], good, "status"),
    ];
    for (fields, csv, field) in refusals {
        let (status, body) = upload(&app, fields, csv).await;
        assert_eq!(status, 422, "{fields:?}: {body}");
        assert!(body["error"]["fields"][field].is_string(), "{fields:?}: {body}");
    }
    let (status, body) = upload(&app, &[("list", "updates"), ("basis", BASIS)], b"").await;
    assert_eq!((status, body["error"]["fields"]["file"].as_str().is_some()), (422, true), "{body}");
    let (status, body) = upload(&app, &[("list", "updates"), ("basis", BASIS)], &vec![b'a'; 5000]).await;
    assert_eq!(status, 413, "{body}");
    // No file at all, and not a form at all.
    let (content_type, body) = multipart(&[("list", None, b"updates"), ("basis", None, BASIS.as_bytes())]);
    let res = app.api(Method::POST, "/imports").header("content-type", content_type).body(body).send().await;
    assert_eq!(res.unwrap().status(), 422);
    let res = app.api(Method::POST, "/imports").json(&json!({"list": "updates"})).send().await.unwrap();
    assert_eq!(res.status(), 415);
    assert_eq!(app.api(Method::GET, "/imports/not-a-uuid").send().await.unwrap().status(), 404);

    assert_eq!(app.api_get("/imports").await["imports"], json!([]), "refused uploads are deleted");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM import_chunks").await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM subscribers").await, 0);
}

async fn the_admin_uploads_and_watches_an_import_and_editors_cannot(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as_admin().await;
    let page = admin.get("/admin/imports").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("enctype=\"multipart/form-data\""));
    assert!(admin.get("/admin").await.body.contains("href=\"/admin/imports\""), "in the navigation");
    let csrf = page.csrf();
    let csv = b"email,name\nann@example.org,Ann\nbad,B\n";
    let post = |parts: Vec<(&'static str, Option<&'static str>, Vec<u8>)>| {
        let borrowed: Vec<(&str, Option<&str>, &[u8])> = parts.iter().map(|(n, f, v)| (*n, *f, v.as_slice())).collect();
        let (content_type, body) = multipart(&borrowed);
        let cookie = format!("tidings_session={}", admin.cookie("tidings_session").unwrap());
        app.http
            .post(app.url("/admin/imports"))
            .header("content-type", content_type)
            .header("cookie", cookie)
            .body(body)
    };
    let fields = |csrf: &str| {
        vec![
            ("csrf", None, csrf.as_bytes().to_vec()),
            ("list", None, b"updates".to_vec()),
            ("status", None, b"confirmed".to_vec()),
            ("basis", None, BASIS.as_bytes().to_vec()),
            ("basis_kind", None, b"consented_elsewhere".to_vec()),
            ("file", Some("people.csv"), csv.to_vec()),
        ]
    };
    // The token must be right, and come first.
    let res = post(fields("wrong")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let mut late = fields(&csrf);
    late.rotate_left(1);
    assert_eq!(post(late).send().await.unwrap().status(), 403);
    assert!(app.api_get("/imports").await["imports"].as_array().unwrap().is_empty());
    // A refused form is shown again with what is wrong.
    let mut no_basis = fields(&csrf);
    no_basis.remove(3);
    let res = post(no_basis).send().await.unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("basis on which you may mail them"));

    let res = post(fields(&csrf)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/admin/imports/"));
    let waiting = admin.get(&location).await;
    assert_eq!(waiting.status, 200);
    assert!(waiting.body.contains("http-equiv=\"refresh\""), "refreshes while queued");
    assert!(waiting.body.contains("people.csv"));
    run_imports(&app).await;
    let done = admin.get(&location).await;
    assert!(!done.body.contains("http-equiv=\"refresh\""));
    assert!(done.body.contains("<td class=\"num\" id=\"added\">1</td>"), "{}", done.body);
    assert!(done.body.contains("<td class=\"num\" id=\"invalid\">1</td>"));
    assert!(done.body.contains("<td class=\"num\">3</td><td>invalid</td>"), "line 3 is listed");
    assert!(admin.get("/admin/imports").await.body.contains(&location));
    assert_eq!(app.status("ann@example.org", "updates").await, "confirmed");

    let editor = app.login_as_editor().await;
    assert_eq!(editor.get("/admin/imports").await.status, 403);
    assert_eq!(editor.get(&location).await.status, 403);
    assert!(!editor.get("/admin").await.body.contains("/admin/imports"));
}

fn parse_csv(body: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let headers = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
    (headers, rows)
}

async fn a_list_export_streams_every_row_and_defuses_formulas(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("backer", 2100, "updates").await;
    let csv = "email,name,phone\nformula@example.org,\"=HYPERLINK(\"\"http://x\"\")\",+44 7700 900000\nat@example.org,@SUM(A1),-1\n";
    let (status, queued) = upload(&app, &[("list", "updates"), ("basis", BASIS)], csv.as_bytes()).await;
    assert_eq!(status, 202, "{queued}");
    run_imports(&app).await;
    let gone = app.subscriber("backer7@example.org").await;
    app.api(Method::POST, &format!("/subscribers/{}/erase", gone["id"].as_str().unwrap())).send().await.unwrap();

    let list = app.api_get("/lists/updates").await;
    for key in ["updates", list["id"].as_str().unwrap()] {
        let res = app.api(Method::GET, &format!("/lists/{key}/export")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        assert_eq!(res.headers()["content-disposition"], "attachment; filename=\"updates.csv\"");
        let (headers, rows) = parse_csv(&res.text().await.unwrap());
        assert_eq!(
            headers,
            ["email", "name", "list", "status", "subscribed_at", "confirmed_at", "updated_at", "attributes"]
        );
        assert_eq!(rows.len(), 2100 - 1 + 2, "every row once, the erased one gone");
        let emails: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(emails.len(), rows.len());
        assert!(!emails.contains("backer7@example.org"));
        let formula = rows.iter().find(|r| r[0] == "formula@example.org").unwrap();
        assert_eq!(formula[1], "'=HYPERLINK(\"http://x\")");
        assert_eq!(formula[3], "confirmed");
        assert_eq!(serde_json::from_str::<Value>(&formula[7]).unwrap(), json!({"phone": "+44 7700 900000"}));
        let at = rows.iter().find(|r| r[0] == "at@example.org").unwrap();
        assert_eq!(at[1], "'@SUM(A1)");
        assert!(rows.iter().all(|r| r[2] == "updates" && !r[4].is_empty()));
    }
    let res = app.api(Method::GET, "/lists/nope/export").send().await.unwrap();
    assert_eq!(res.status(), 404);
}

pub(crate) struct Cli {
    vars: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Cli {
    pub(crate) async fn new(db: &Db) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let url = db.fresh_url(dir.path()).await;
        let vars = vec![("TIDINGS_DATABASE_URL".to_owned(), url), ("TIDINGS_LOG".to_owned(), "error".to_owned())];
        Cli { vars, dir }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tidings"))
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("none.toml"))
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run tidings")
    }

    /// (address, basis kind) of every `imported` ledger entry, by address,
    /// read straight from the database the CLI wrote.
    pub(crate) async fn basis_kinds(&self) -> Vec<(String, String)> {
        let store = tidings::store::Store::connect(&self.vars[0].1).await.unwrap();
        let sql = "SELECT s.email, COALESCE(e.basis_kind, '') FROM consent_events e
                   JOIN subscribers s ON s.id = e.subscriber_id WHERE e.kind = 'imported' ORDER BY s.email";
        let rows = match &store {
            tidings::store::Store::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            tidings::store::Store::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        };
        store.close().await;
        rows
    }

    pub(crate) fn file(&self, name: &str, contents: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn the_cli_imports_with_a_summary_and_exports_csv(db: Db) {
    let cli = Cli::new(&db).await;
    let people = cli.file(
        "people.csv",
        b"\xEF\xBB\xBFE-mail Address,Name,Town\r\nann@example.org,\"Smith, Ann\",Leeds\r\nnope,X,Y\r\nANN@example.org,A,B\r\nbo@example.org,Bo,\"=cmd\"\r\n",
    );
    let errors = cli.dir.path().join("errors.csv");
    let out =
        cli.run(&["import", &people, "--list", "updates", "--basis", BASIS, "--errors", errors.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("4 rows read: 2 added, 0 updated, 1 skipped, 0 suppressed, 1 invalid"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("line 3: invalid (invalid_email)"), "{stderr}");
    assert!(stderr.contains("line 4: skipped (duplicate): the same address as line 2"), "{stderr}");
    let (headers, rows) = parse_csv(&std::fs::read_to_string(&errors).unwrap());
    assert_eq!(headers, ["line", "outcome", "code", "message"]);
    assert_eq!(rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["3", "4"]);

    let out = cli.run(&["export", "--list", "updates"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, rows) = parse_csv(&text(&out.stdout));
    let got: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[0].as_str(), r[1].as_str(), r[3].as_str())).collect();
    assert_eq!(got, [("ann@example.org", "Smith, Ann", "confirmed"), ("bo@example.org", "Bo", "confirmed")]);
    assert_eq!(rows[1][7], "{\"Town\":\"=cmd\"}", "a JSON cell starts with {{, so it needs no defusing");
    let out = cli.run(&["export"]);
    assert!(out.status.success());
    assert_eq!(parse_csv(&text(&out.stdout)).1.len(), 2);

    // Fatal problems: a non-zero exit and a clear message.
    let no_email = cli.file("no-email.csv", b"name,phone\nAnn,1\n");
    for (args, says) in [
        (vec!["import", &people, "--list", "nope", "--basis", "x"], "there is no list nope"),
        (vec!["import", "missing.csv", "--list", "updates", "--basis", "x"], "cannot read missing.csv"),
        (vec!["import", &no_email, "--list", "updates", "--basis", "x"], "no email column"),
        (vec!["import", &people, "--list", "updates", "--status", "confirmed"], "basis"),
        (vec!["export", "--list", "nope"], "there is no list nope"),
    ] {
        let out = cli.run(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out.stderr).contains(says), "{args:?}: {}", text(&out.stderr));
    }
}

async fn a_withdrawal_stands_against_imports_and_organiser_adds_even_after_an_anonymous_resubscribe(db: Db) {
    let app = TestApp::spawn(db).await;
    add_confirmed(&app, "left@example.org", "Left", "updates").await;
    add_confirmed(&app, "back@example.org", "Back", "updates").await;
    for who in ["left@example.org", "back@example.org"] {
        let token = app.unsubscribe_token(who, "updates").await;
        assert_eq!(app.post_form(&format!("/unsubscribe/{token}"), &[]).await.status(), 200);
    }
    // Anyone can type anyone's address into the public form: it puts the
    // subscription back to pending and mails the person.
    assert_eq!(app.subscribe("back@example.org", "updates").await.status(), 200);
    assert_eq!(app.status("back@example.org", "updates").await, "pending");

    let csv = "email,name\r\nleft@example.org,Left\r\nback@example.org,Back\r\nnew@example.org,New\r\n";
    let (status, queued) = upload(&app, &[("list", "updates"), ("basis", BASIS)], csv.as_bytes()).await;
    assert_eq!(status, 202, "{queued}");
    run_imports(&app).await;
    let job = import(&app, queued["id"].as_str().unwrap()).await;
    assert_eq!(summary(&job), [1, 0, 2, 0, 0], "{job}");
    assert_eq!(
        errors(&job),
        [(2, "skipped".into(), "unsubscribed".into()), (3, "skipped".into(), "unsubscribed".into())]
    );
    let reasons: Vec<&str> = job["errors"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(reasons.iter().all(|r| r.contains("unsubscribed from the list updates")), "{reasons:?}");
    assert_eq!(app.status("left@example.org", "updates").await, "unsubscribed");
    assert_eq!(app.status("back@example.org", "updates").await, "pending", "not confirmed by the import");
    assert_eq!(app.status("new@example.org", "updates").await, "confirmed");

    // An organiser adding either of them by hand with a basis is refused.
    for who in ["left@example.org", "back@example.org"] {
        let res = app
            .api(Method::POST, "/subscribers")
            .json(&json!({"email": who, "lists": ["updates"], "status": "confirmed", "basis": BASIS}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 409, "{who}");
        let body: Value = res.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("only they can subscribe again"), "{body}");
    }
    assert_eq!(app.status("left@example.org", "updates").await, "unsubscribed");
    assert_eq!(app.status("back@example.org", "updates").await, "pending");
    assert!(imported(&app.ledger("back@example.org").await).len() == 1, "only the first, before the withdrawal");

    // The person's own click is what brings them back.
    app.drain_outbox().await;
    let token = crate::support::app::confirm_token(app.smtp.messages_to("back@example.org").last().unwrap());
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    assert_eq!(app.status("back@example.org", "updates").await, "confirmed");
    // Confirmed again by the person: a later import no longer skips them.
    let (_, queued) = upload(&app, &[("list", "updates"), ("basis", BASIS)], b"email\r\nback@example.org\r\n").await;
    run_imports(&app).await;
    let job = import(&app, queued["id"].as_str().unwrap()).await;
    assert_eq!(summary(&job), [0, 1, 0, 0, 0], "{job}");
}
