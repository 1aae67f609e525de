//! Rights requests: a subscriber's data copy (JSON and CSV) and erasure
//! through the API, the admin UI and the CLI, and that an erased address
//! is never mailed again.

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token};
use reqwest::Method;
use serde_json::{Value, json};

both_backends!(
    the_export_holds_profile_subscriptions_ledger_texts_and_deliveries,
    the_csv_export_has_one_quoted_row_per_record,
    erasure_removes_everything_and_the_address_is_never_mailed_again,
    erasure_after_an_objection_still_bars_a_new_sign_up,
    erasure_in_the_admin_ui_is_for_admins_and_needs_the_address_typed,
    the_cli_erases_by_address,
    a_supporter_gets_their_copy_by_mail_after_a_fresh_click,
    rectification_keeps_the_ledger_linked,
);

const ANN: &str = "ann@example.org";

/// Subscribes `email` (named `name`) to `updates` through the public form
/// and confirms through the link in the mail.
async fn subscribed_and_confirmed(app: &TestApp, email: &str, name: &str) -> String {
    let res = app
        .post_form("/subscribe", &[("email", email), ("name", name), ("lists", "updates"), ("consent", "updates")])
        .await;
    assert_eq!(res.status(), 200);
    app.drain_outbox().await;
    let mails = app.smtp.messages_to(email);
    let token = confirm_token(mails.last().expect("a confirmation mail"));
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    app.subscriber(email).await["id"].as_str().expect("id").to_owned()
}

/// Creates an update to `updates`, sends it and runs delivery to the end.
async fn send_update(app: &TestApp, subject: &str) -> String {
    let id = app.create_update(subject, "Hello {{name}}", &["updates"]).await;
    let res = app.api(Method::POST, &format!("/updates/{id}/send")).send().await.unwrap();
    assert_eq!(res.status(), 202);
    app.drive_delivery(&id, 50).await;
    id
}

async fn export(app: &TestApp, id: &str) -> Value {
    app.api_get(&format!("/subscribers/{id}/export")).await
}

async fn the_export_holds_profile_subscriptions_ledger_texts_and_deliveries(db: Db) {
    let app = TestApp::spawn(db).await;
    let id = subscribed_and_confirmed(&app, ANN, "Ann").await;
    let update = send_update(&app, "The ward stays open").await;
    assert_eq!(app.smtp.messages_to(ANN).len(), 2, "the confirmation and the update");

    let e = export(&app, &id).await;
    let profile = &e["profile"];
    assert_eq!(
        (profile["id"].as_str(), profile["email"].as_str(), profile["name"].as_str()),
        (Some(id.as_str()), Some(ANN), Some("Ann"))
    );
    assert!(profile["attributes"].is_object() && profile["created_at"].is_string(), "{profile}");

    let subs = e["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "{e}");
    assert_eq!((subs[0]["list"].as_str(), subs[0]["status"].as_str()), (Some("updates"), Some("confirmed")));
    assert!(subs[0]["list_name"].as_str().is_some_and(|n| n.contains("updates")));
    for key in ["created_at", "updated_at", "confirmed_at"] {
        assert!(subs[0][key].is_string(), "subscription has {key}: {}", subs[0]);
    }

    // The ledger, with the full wording and notice text, not just versions.
    let statement = &app.api_get("/consent-statements").await[0];
    let notice = app.api_get("/privacy-notices").await;
    let events = e["consent_events"].as_array().unwrap();
    let kinds: Vec<_> = events.iter().map(|ev| ev["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["requested", "confirmed"]);
    for ev in events {
        assert_eq!(ev["statement"]["text"], statement["text"], "{ev}");
        assert_eq!(ev["statement"]["version"], statement["version"]);
        assert_eq!(ev["privacy_notice"]["text"], notice["text"], "{ev}");
        assert_eq!(ev["privacy_notice"]["version"], notice["version"]);
        assert!(ev["privacy_notice"]["text"].as_str().is_some_and(|t| !t.is_empty()));
    }

    let deliveries = e["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{e}");
    let d = &deliveries[0];
    assert_eq!(
        (d["update_id"].as_str(), d["subject"].as_str(), d["status"].as_str()),
        (Some(update.as_str()), Some("The ward stays open"), Some("sent"))
    );
    assert!(d["sent_at"].is_string());
    let message_id = d["message_id"].as_str().expect("a message id");
    let mail = app.smtp.messages_to(ANN).into_iter().find(|m| m.text().contains("The ward stays open")).unwrap();
    assert!(
        crate::support::app::header(&mail, "Message-ID")
            .is_some_and(|h| h.contains(message_id.trim_matches(['<', '>'])))
    );

    let unknown = app.api(Method::GET, &format!("/subscribers/{}/export", uuid::Uuid::now_v7())).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}

fn parse_csv(body: &str) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let headers = reader.headers().expect("a header row").clone();
    let rows = reader.records().collect::<Result<Vec<_>, _>>().expect("well-formed CSV");
    (headers, rows)
}

async fn the_csv_export_has_one_quoted_row_per_record(db: Db) {
    let app = TestApp::spawn(db).await;
    let name = "Ann \"Nan\" Smith, Jr";
    let id = subscribed_and_confirmed(&app, ANN, name).await;
    send_update(&app, "Rally, Saturday: \"bring a friend\"").await;

    let res = app.api(Method::GET, &format!("/subscribers/{id}/export?format=csv")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(res.headers()["content-disposition"].to_str().unwrap().contains(".csv"));
    let body = res.text().await.unwrap();
    let (headers, rows) = parse_csv(&body);
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    assert_eq!(&headers[0], "record");
    let records: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(
        records,
        ["profile", "subscription", "consent", "consent", "delivery", "transactional_mail"],
        "the confirmation mail is a record too: {body}"
    );
    for row in &rows {
        assert_eq!(row.len(), headers.len());
    }
    assert_eq!((&rows[0][col("email")], &rows[0][col("name")]), (ANN, name), "quoting round-trips");
    assert_eq!(&rows[1][col("list")], "updates");
    assert_eq!(&rows[1][col("status")], "confirmed");
    let statement = app.api_get("/consent-statements").await[0]["text"].as_str().unwrap().to_owned();
    let notice = app.api_get("/privacy-notices").await["text"].as_str().unwrap().to_owned();
    assert_eq!(&rows[2][col("kind")], "requested");
    assert_eq!(&rows[2][col("statement_text")], statement);
    assert_eq!(&rows[3][col("notice_text")], notice, "multi-line texts survive");
    assert_eq!(&rows[4][col("subject")], "Rally, Saturday: \"bring a friend\"");
    assert_eq!(&rows[4][col("status")], "sent");
    assert!(!rows[4][col("message_id")].is_empty());
    assert_eq!(&rows[5][col("kind")], "confirmation");
    assert_eq!(&rows[5][col("subject")], "Please confirm your subscription to Save Our Hospital");

    // `Accept: text/csv` asks for the same thing.
    let res =
        app.api(Method::GET, &format!("/subscribers/{id}/export")).header("accept", "text/csv").send().await.unwrap();
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert_eq!(parse_csv(&res.text().await.unwrap()).1.len(), rows.len());
}

async fn erasure_removes_everything_and_the_address_is_never_mailed_again(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("court-case", "Court case").await;
    let id = subscribed_and_confirmed(&app, ANN, "Ann").await;
    subscribed_and_confirmed(&app, "bob@example.org", "Bob").await;
    send_update(&app, "Before").await;
    // A confirmation mail still queued when the erasure comes.
    let res = app.post_form("/subscribe", &[("email", ANN), ("lists", "court-case"), ("consent", "court-case")]).await;
    assert_eq!(res.status(), 200);
    let mails_before = app.smtp.messages_to(ANN).len();

    let res = app.api(Method::POST, &format!("/subscribers/{id}/erase")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["erased"], true);
    let removed = &body["removed"];
    assert_eq!(removed["subscriptions"], 2, "{body}");
    assert_eq!(removed["consent_events"], 3, "{body}");
    assert_eq!(removed["deliveries"], 1, "{body}");
    assert_eq!(removed["outbox_cancelled"], 1, "{body}");
    assert!(removed["confirmation_tokens"].as_u64().unwrap() >= 2, "{body}");

    // Gone, everywhere; a second erasure finds nobody.
    for path in
        [format!("/subscribers/{id}"), format!("/subscribers/{id}/consent"), format!("/subscribers/{id}/export")]
    {
        assert_eq!(app.api(Method::GET, &path).send().await.unwrap().status(), 404, "GET {path}");
    }
    let by_email = app.api(Method::GET, &format!("/subscribers?email={ANN}")).send().await.unwrap();
    assert_eq!(by_email.status(), 404);
    assert_eq!(app.api(Method::POST, &format!("/subscribers/{id}/erase")).send().await.unwrap().status(), 404);
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let mut tx = app.ctx.store.read().await.unwrap();
    assert!(tx.consent_events(uuid).await.unwrap().is_empty(), "the ledger is gone");
    assert!(tx.export_deliveries(uuid).await.unwrap().is_empty());
    assert!(tx.is_suppressed(&app.ctx.address_key.fingerprint(ANN)).await.unwrap(), "only the fingerprint is kept");
    drop(tx);

    // The queued confirmation never goes out.
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to(ANN).len(), mails_before);

    // Subscribing again answers exactly as for a new address, and sends nothing.
    let again =
        app.post_json("/subscribe", &json!({"email": "ANN@example.org", "lists": ["updates"], "consent": true})).await;
    let fresh =
        app.post_json("/subscribe", &json!({"email": "cat@example.org", "lists": ["updates"], "consent": true})).await;
    assert_eq!(again.status(), fresh.status());
    assert_eq!(again.text().await.unwrap(), fresh.text().await.unwrap());
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to(ANN).len(), mails_before);
    assert_eq!(app.smtp.messages_to("cat@example.org").len(), 1);

    // An organiser cannot add it back.
    let add = app
        .api(Method::POST, "/subscribers")
        .json(&json!({"email": ANN, "lists": ["updates"], "status": "confirmed", "basis": "met at the stall"}))
        .send()
        .await
        .unwrap();
    assert_eq!(add.status(), 409);
    let add: Value = add.json().await.unwrap();
    assert_eq!(add["error"]["code"], "suppressed", "{add}");

    // An update sent afterwards reaches Bob only.
    let after = send_update(&app, "After").await;
    assert_eq!(app.smtp.messages_to(ANN).len(), mails_before);
    assert!(app.smtp.messages_to("bob@example.org").iter().any(|m| m.text().contains("After")));
    assert_eq!(app.stats(&after).await["total"], 1);
}

/// An objection to all mail lets the person start a new double opt-in of
/// their own; an erasure after it must not: the erasure's suppression wins
/// over the objection's (found by the property test: the objection's reason
/// stayed on the suppression, so a sign-up after the erasure was taken).
async fn erasure_after_an_objection_still_bars_a_new_sign_up(db: Db) {
    let app = TestApp::spawn(db).await;
    let id = subscribed_and_confirmed(&app, ANN, "Ann").await;
    let subscriber = uuid::Uuid::parse_str(&id).unwrap();
    let token = tidings::domain::SignedToken::preferences(subscriber).encode(&app.ctx.secret_key);
    let input =
        tidings::services::supporter::PreferencesInput { name: "Ann".into(), lists: vec![], unsubscribe_all: true };
    let meta = tidings::services::RequestMeta { ip: None, user_agent: None };
    tidings::services::supporter::update_preferences(&app.ctx, &token, &input, &meta).await.unwrap();
    let res = app.api(Method::POST, &format!("/subscribers/{id}/erase")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mails_before = app.smtp.messages_to(ANN).len();

    let again = app.post_json("/subscribe", &json!({"email": ANN, "lists": ["updates"], "consent": true})).await;
    assert!(again.status().is_success(), "the answer is the same as for anyone");
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to(ANN).len(), mails_before, "no confirmation mail to an erased address");
    let mut tx = app.ctx.store.read().await.unwrap();
    assert!(tx.subscriber_by_email(ANN).await.unwrap().is_none(), "no subscriber row after the erasure");
}

async fn erasure_in_the_admin_ui_is_for_admins_and_needs_the_address_typed(db: Db) {
    let app = TestApp::spawn(db).await;
    let id = subscribed_and_confirmed(&app, ANN, "Ann").await;
    let page = format!("/admin/subscribers/{id}");
    let action = format!("/admin/subscribers/{id}/erase");

    let editor = app.login_as_editor().await;
    let seen = editor.get(&page).await;
    assert_eq!(seen.status, 200);
    assert!(!seen.body.contains(&action), "editors are not offered the form");
    let res = editor.post(&action, &[("csrf", &seen.csrf()), ("confirm_email", ANN)]).await;
    assert_eq!(res.status, 403, "{}", res.body);

    let admin = app.login_as_admin().await;
    let seen = admin.get(&page).await;
    assert!(seen.body.contains(&action) && seen.body.contains("Erase this person"));
    assert_eq!(admin.post(&action, &[("confirm_email", ANN)]).await.status, 403, "no CSRF token");
    let wrong = admin.submit(&page, &action, &[("confirm_email", "someone@example.org")]).await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert_eq!(app.subscriber(ANN).await["id"], id.as_str(), "still there");

    let res = admin.submit(&page, &action, &[("confirm_email", "Ann@Example.org")]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), Some("/admin/subscribers?notice=erased"));
    assert_eq!(admin.get("/admin/subscribers?notice=erased").await.status, 200);
    assert_eq!(admin.get(&page).await.status, 404);
    let mut tx = app.ctx.store.read().await.unwrap();
    assert!(tx.is_suppressed(&app.ctx.address_key.fingerprint(ANN)).await.unwrap());
}

fn run_erase(app: &TestApp, dir: &std::path::Path, email: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["erase", "--email", email, "--config"])
        .arg(dir.join("none.toml"))
        .env("TIDINGS_DATABASE_URL", &app.ctx.config.database_url)
        .env("TIDINGS_LOG", "error")
        .current_dir(dir)
        .output()
        .expect("run tidings")
}

async fn the_cli_erases_by_address(db: Db) {
    let app = TestApp::spawn(db).await;
    let id = subscribed_and_confirmed(&app, ANN, "Ann").await;
    let dir = tempfile::tempdir().unwrap();

    let out = run_erase(&app, dir.path(), "Ann@Example.org");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("erased {ANN} (subscriber {id})")), "{stdout}");
    assert!(stdout.contains("1 subscriptions, 2 consent events"), "{stdout}");
    assert_eq!(app.api(Method::GET, &format!("/subscribers/{id}")).send().await.unwrap().status(), 404);
    let mut tx = app.ctx.store.read().await.unwrap();
    assert!(tx.is_suppressed(&app.ctx.address_key.fingerprint(ANN)).await.unwrap());
    drop(tx);

    let again = run_erase(&app, dir.path(), ANN);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no subscriber with the address"), "{again:?}");
}

async fn a_supporter_gets_their_copy_by_mail_after_a_fresh_click(db: Db) {
    let app = TestApp::spawn(db).await;
    let id = subscribed_and_confirmed(&app, ANN, "Ann").await;
    let prefs = tidings::domain::SignedToken::preferences(id.parse().unwrap()).encode(&app.ctx.secret_key);
    let page = app.http.get(app.url(&format!("/preferences/{prefs}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Email me a copy of my data"));

    let before = app.smtp.messages_to(ANN).len();
    let res = app.post_form(&format!("/preferences/{prefs}"), &[("action", "data-copy")]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("We have sent an email"));
    app.drain_outbox().await;
    let mails = app.smtp.messages_to(ANN);
    assert_eq!(mails.len(), before + 1, "a link first, not the data");
    let text = crate::support::app::text_body(mails.last().unwrap());
    assert!(!text.contains("consent"), "the link mail holds no data");
    let link = text.split_whitespace().find(|w| w.contains("/data-copy/")).expect("a link").to_owned();
    let path = &link[link.find("/data-copy/").unwrap()..];

    let page = app.http.get(app.url(path)).send().await.unwrap();
    assert_eq!(page.status(), 200, "GET only shows the button");
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to(ANN).len(), before + 1);
    assert_eq!(app.post_form(path, &[]).await.status(), 200);
    assert_eq!(app.post_form(path, &[]).await.status(), 410, "single use");
    app.drain_outbox().await;
    let mails = app.smtp.messages_to(ANN);
    assert_eq!(mails.len(), before + 2, "exactly one copy");
    let raw = String::from_utf8_lossy(&mails.last().unwrap().data).into_owned();
    let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
    let attachment = parsed.attachments().next().expect("the data attached");
    use mail_parser::MimeHeaders;
    assert_eq!(attachment.attachment_name(), Some("my-data.json"));
    let data: Value = serde_json::from_slice(attachment.contents()).unwrap();
    assert_eq!(data["profile"]["email"], ANN);
    assert!(!data["consent_events"].as_array().unwrap().is_empty(), "{data}");

    let logged = app.api_get("/rights-requests").await;
    assert_eq!(logged[0]["kind"], "access");
    assert_eq!(logged[0]["status"], "completed");

    // Forged and repeated requests.
    assert_eq!(
        app.http.get(app.url("/data-copy/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).send().await.unwrap().status(),
        410
    );
    assert_eq!(app.post_form("/data-copy/garbage", &[]).await.status(), 410);
    for _ in 0..4 {
        app.post_form(&format!("/preferences/{prefs}"), &[("action", "data-copy")]).await;
    }
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to(ANN).len(), before + 2 + 2, "at most three links a day");
}

async fn rectification_keeps_the_ledger_linked(db: Db) {
    let app = TestApp::spawn(db).await;
    let id = subscribed_and_confirmed(&app, ANN, "Ann").await;
    let ledger_before = app.ledger(ANN).await;
    let patch = |body: Value| app.api(Method::PATCH, &format!("/subscribers/{id}")).json(&body).send();
    let res =
        patch(json!({"email": "Ann.New@Example.org", "name": "Ann <New>", "attributes": {"ward": "B"}})).await.unwrap();
    assert_eq!(res.status(), 200);
    let s: Value = res.json().await.unwrap();
    assert_eq!((s["id"].as_str(), s["email"].as_str()), (Some(id.as_str()), Some("Ann.New@example.org")));
    assert_eq!(s["attributes"]["ward"], "B");
    assert_eq!(s["subscriptions"][0]["status"], "confirmed");
    assert_eq!(app.ledger("ann.new@example.org").await, ledger_before, "the same ledger, linked by id");
    assert_eq!(app.api(Method::GET, &format!("/subscribers?email={ANN}")).send().await.unwrap().status(), 404);

    // The next update goes to the corrected address.
    send_update(&app, "Corrected").await;
    assert_eq!(app.smtp.messages_to("Ann.New@Example.org").len(), 1);

    // Refused: another subscriber's address, a suppressed one, bad fields.
    subscribed_and_confirmed(&app, "bob@example.org", "Bob").await;
    assert_eq!(patch(json!({"email": "BOB@example.org"})).await.unwrap().status(), 409);
    let erased = app.subscriber("bob@example.org").await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.api(Method::DELETE, &format!("/subscribers/{erased}")).send().await.unwrap().status(), 200);
    assert_eq!(patch(json!({"email": "bob@example.org"})).await.unwrap().status(), 422, "suppressed");
    assert_eq!(patch(json!({"email": "not an address"})).await.unwrap().status(), 422);
    assert_eq!(patch(json!({"attributes": [1, 2]})).await.unwrap().status(), 422);
    assert_eq!(patch(json!({"name": "x\r\nBcc: evil@example.org"})).await.unwrap().status(), 422);
}
