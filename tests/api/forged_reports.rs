//! Issue 24 §1, "Forged reports change nothing": helpers the checklist items
//! 27–29 share (a DNS server on loopback answering from a fixture zone, DKIM
//! signing of a report with a fixture key, the real `tidings bounces ingest`
//! binary, what "unchanged" means), and the admin's decision on a held
//! report.

use crate::both_backends;
use crate::support::app::{Db, TestApp, header, html_escaped};
use reqwest::Method;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use tidings::services::bounces;

both_backends!(an_admin_applies_or_dismisses_a_held_report_and_the_audit_log_records_it);

pub fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A DSN or ARF fixture with its placeholders filled.
pub fn report(template: &str, recipient: &str, message_id: &str, report_id: &str) -> String {
    fixture(&format!("dsn/{template}"))
        .replace("{{recipient}}", recipient)
        .replace("{{message_id}}", message_id)
        .replace("{{dsn_id}}", report_id)
}

/// One copy of an update as the SMTP server received it.
pub struct Copy {
    pub message_id: String,
    /// The envelope sender (the VERP return path when VERP is on).
    pub return_path: String,
}

/// Sends an update to the `updates` list; each recipient's copy.
pub async fn send_update(app: &TestApp, subject: &str) -> (String, HashMap<String, Copy>) {
    let id = app.create_update(subject, "Dear {{name}}, news.", &["updates"]).await;
    let res = app.api(Method::POST, &format!("/updates/{id}/send")).send().await.unwrap();
    assert_eq!(res.status(), 202);
    app.drive_delivery(&id, 50).await;
    let mut copies = HashMap::new();
    for mail in app.smtp.messages() {
        if header(&mail, "Subject").as_deref() == Some(subject) {
            copies.insert(
                mail.to[0].to_lowercase(),
                Copy { message_id: header(&mail, "Message-ID").expect("a Message-ID"), return_path: mail.from.clone() },
            );
        }
    }
    (id, copies)
}

/// Runs the real `tidings bounces ingest` on `raw`; its stdout.
pub fn cli_ingest(app: &TestApp, raw: &str, extra_env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command
        .args(["bounces", "ingest", "--config"])
        .arg(dir.path().join("none.toml"))
        .env("TIDINGS_DATABASE_URL", &app.ctx.config.database_url)
        .env("TIDINGS_BASE_URL", app.ctx.config.base_url.as_str())
        .env("TIDINGS_SMTP_URL", app.smtp.url())
        .env("TIDINGS_LOG", "error")
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(verp) = &app.ctx.config.verp_domain {
        // The VERP domain must sit under the From domain: both as the app has them.
        command.env("TIDINGS_VERP_DOMAIN", verp).env("TIDINGS_FROM", app.ctx.config.from.to_string());
    }
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn tidings");
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(raw.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Reads and applies a message in process, with the function the CLI and
/// the mailbox worker use.
pub async fn ingest(app: &TestApp, raw: &str) -> Vec<bounces::Outcome> {
    let parsed = bounces::read_message(&app.ctx.config, raw.as_bytes()).await.expect("a readable report");
    bounces::ingest(&app.ctx, &parsed).await.expect("applied")
}

pub async fn suppressed(app: &TestApp, email: &str) -> bool {
    let hash = tidings::domain::EmailAddress::parse(email).unwrap().suppression_hash(&app.ctx.address_key);
    app.ctx.store.read().await.unwrap().is_suppressed(&hash).await.unwrap()
}

/// Still confirmed, not suppressed, and no bounce or complaint in the
/// ledger.
pub async fn assert_unchanged(app: &TestApp, email: &str) {
    assert_eq!(app.status(email, "updates").await, "confirmed", "{email}: status unchanged");
    assert!(!suppressed(app, email).await, "{email}: not suppressed");
    let ledger = app.ledger(email).await;
    assert!(
        !ledger.iter().any(|e| e["kind"] == "bounced" || e["kind"] == "complained"),
        "{email}: no ledger entry: {ledger:?}"
    );
}

pub async fn events(app: &TestApp) -> Vec<tidings::store::BounceEventRow> {
    bounces::events(&app.ctx, None, None, 1000).await.unwrap()
}

/// The recorded event about `email` (newest).
pub async fn event_about(app: &TestApp, email: &str) -> tidings::store::BounceEventRow {
    events(app).await.into_iter().find(|e| e.email.as_deref() == Some(email)).unwrap_or_else(|| panic!("{email}"))
}

/// A VERP address with its tag changed: the form is right, the HMAC is not.
pub fn forge_tag(verp: &str) -> String {
    let (local, domain) = verp.split_once('@').unwrap();
    let mut bytes = local.as_bytes().to_vec();
    // The first character of the encoded tag (after `tb-`): every bit of it
    // counts, where the last character's low bits may be padding that
    // decodes the same, and the "forgery" then verified by chance.
    let first = "tb-".len();
    bytes[first] = if bytes[first] == b'a' { b'b' } else { b'a' };
    format!("{}@{domain}", String::from_utf8(bytes).unwrap())
}

/// A mailbox provider's DKIM key: the private key (PKCS#8 PEM, made by
/// OpenSSL) and the TXT record publishing it.
pub struct ProviderKey {
    pub pem: String,
    pub txt: String,
}

impl ProviderKey {
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("fbl.pem");
        let status = Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
            .arg(&key)
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success());
        let public =
            Command::new("openssl").args(["pkey", "-pubout", "-outform", "DER", "-in"]).arg(&key).output().unwrap();
        use base64::Engine;
        let txt = format!("v=DKIM1; k=rsa; p={}", base64::engine::general_purpose::STANDARD.encode(&public.stdout));
        Self { pem: std::fs::read_to_string(&key).unwrap(), txt }
    }

    /// `raw` with a DKIM-Signature of `domain`, selector `fbl`, prepended.
    pub fn sign(&self, raw: &str, domain: &str) -> String {
        use mail_auth::common::crypto::{RsaKey, Sha256};
        use mail_auth::common::headers::HeaderWriter;
        use mail_auth::dkim::DkimSigner;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        // Mail on the wire has CRLF line ends.
        let raw = raw.replace("\r\n", "\n").replace('\n', "\r\n");
        let der = PrivatePkcs8KeyDer::from_pem_slice(self.pem.as_bytes()).expect("a PKCS#8 key");
        let key = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(der)).expect("the key");
        let signature = DkimSigner::from_key(key)
            .domain(domain)
            .selector("fbl")
            .headers(["From", "To", "Subject", "Date", "Message-ID", "Content-Type"])
            .sign(raw.as_bytes())
            .expect("signed");
        format!("{}{raw}", signature.to_header())
    }
}

async fn an_admin_applies_or_dismisses_a_held_report_and_the_audit_log_records_it(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[("TIDINGS_VERP_DOMAIN", "bounces.hospital.test"), ("TIDINGS_FROM", "Save Our Hospital <news@hospital.test>")],
    )
    .await;
    app.confirmed_subscribers("h", 2, "updates").await;
    send_update(&app, "Review test").await;
    let (applied, dismissed) = ("h0@example.org", "h1@example.org");
    for (who, id) in [(applied, "held-1"), (dismissed, "held-2")] {
        let raw = report("hard-5.1.1.eml", who, "<not-ours@elsewhere.example>", id);
        let out = ingest(&app, &raw).await;
        assert!(matches!(out[..], [bounces::Outcome::Review { class: bounces::Class::Hard }]), "{out:?}");
        assert_unchanged(&app, who).await;
    }
    let held = event_about(&app, applied).await;
    let other = event_about(&app, dismissed).await;

    // An editor sees the held reports but cannot decide.
    let editor = app.login_as_editor().await;
    let page = editor.get("/admin/bounces?kind=review").await;
    assert!(page.body.contains("held for review") && page.body.contains(&html_escaped(applied)), "{}", page.body);
    assert!(!page.body.contains(&format!("/admin/bounces/{}/apply", held.id)));
    let refused = editor.post(&format!("/admin/bounces/{}/apply", held.id), &[("csrf", &page.csrf())]).await;
    assert_eq!(refused.status, 403);

    let admin = app.login_as_admin().await;
    let done = admin.submit("/admin/bounces?kind=review", &format!("/admin/bounces/{}/apply", held.id), &[]).await;
    assert_eq!(done.status, 303);
    assert_eq!(app.status(applied, "updates").await, "bounced");
    assert!(suppressed(&app, applied).await);
    let last = app.ledger(applied).await.pop().unwrap();
    assert_eq!(last["kind"], "bounced");
    assert!(last.to_string().contains("applied by an admin after review"), "{last}");

    let done = admin.submit("/admin/bounces?kind=review", &format!("/admin/bounces/{}/dismiss", other.id), &[]).await;
    assert_eq!(done.status, 303);
    assert_unchanged(&app, dismissed).await;
    let again = admin.submit("/admin/bounces", &format!("/admin/bounces/{}/apply", other.id), &[]).await;
    assert_eq!(again.status, 404, "a decided report cannot be decided again");

    let rows = events(&app).await;
    let outcome = |id| rows.iter().find(|e| e.id == id).unwrap();
    assert_eq!(outcome(held.id).outcome, "applied-by-admin");
    assert_eq!(outcome(other.id).outcome, "dismissed");
    assert!(outcome(other.id).reviewed_by.as_deref().is_some_and(|b| b.starts_with("organiser:")));
    let audit = admin.get("/admin/audit").await;
    assert!(audit.body.contains(&format!("/admin/bounces/{}/apply", held.id)), "{}", audit.body);
    assert!(audit.body.contains(&format!("/admin/bounces/{}/dismiss", other.id)));
}

/// The bounces page with held reports and DKIM results, in headless
/// Chromium at 1280 and 390 px (the shared screenshot runs the axe-core
/// check), and an admin dismissing a held report with the page's own form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bounces_page_with_held_reports_reads_well_at_desktop_and_phone_widths() {
    let Some(browser) = crate::support::browser::Browser::start().await else { return };
    let app = TestApp::spawn_with(Db::Sqlite, &[("TIDINGS_BASE_URL", "self")]).await;
    let password = app.add_organiser("admin@hospital.test", tidings::services::accounts::Role::Admin).await;
    app.confirmed_subscribers("b", 3, "updates").await;
    let (_, copies) = send_update(&app, "Browser review").await;
    let tied = report("arf-complaint.eml", "b0@example.org", &copies["b0@example.org"].message_id, "br-1")
        .replace("{{to}}", "news@hospital.test");
    ingest(&app, &tied).await;
    let held = report("arf-complaint.eml", "b1@example.org", "<x@mailbox.example>", "br-2")
        .replace("{{to}}", "postmaster@hospital.test");
    ingest(&app, &held).await;
    ingest(&app, &report("hard-5.1.1.eml", "b2@example.org", "<y@mx.example.net>", "br-3")).await;

    browser.goto(&app.url("/admin/login")).await;
    browser.type_into("#email", "admin@hospital.test").await;
    browser.type_into("#password", &password).await;
    browser.click("main button[type=submit]").await;
    browser.attribute("#lists-heading", "class").await;
    browser.goto(&app.url("/admin/bounces")).await;
    assert!(browser.shows("held for review").await);
    assert!(browser.shows("not signed").await);
    browser.screenshot("bounces-held-for-review").await;

    let e = event_about(&app, "b2@example.org").await;
    browser.click(&format!("form[action='/admin/bounces/{}/dismiss'] button", e.id)).await;
    browser.attribute("#kind", "class").await;
    assert!(browser.url().await.contains("kind=review"));
    assert_eq!(event_about(&app, "b2@example.org").await.outcome, "dismissed");
    assert_unchanged(&app, "b2@example.org").await;
}
