//! The real SMTP pool (`tidings::mail::smtp`) against the capture server with TLS and AUTH: STARTTLS, implicit
//! TLS, a private CA given as `ca_file`, credentials from the URL, and how each failure is classified. Anything that
//! goes wrong while opening a session must be `Unavailable` (pause and retry), never `Permanent`, which would fail
//! the message for good over what is a configuration problem.

use crate::support::smtp::{TestSmtp, TlsTestMode};
use std::time::Duration;
use tempfile::TempDir;
use tidings::mail::smtp::{SmtpPool, SmtpSettings};
use tidings::mail::transport::SendError;

const FROM: &str = "news@campaign.example";
const TO: &str = "supporter@example.org";

/// The CA of `server`, written to a file the way a self-hoster would keep it.
struct CaFile {
    /// Keeps the file alive for the test.
    _dir: TempDir,
    /// The path, percent-encoded for a URL query.
    encoded: String,
}

impl CaFile {
    fn of(server: &TestSmtp) -> CaFile {
        let dir = tempfile::tempdir().expect("make a temporary directory");
        // A space in the path checks that the query value is percent-decoded.
        let path = dir.path().join("relay ca.pem");
        std::fs::write(&path, server.ca_pem().expect("a TLS test server has a certificate")).expect("write ca.pem");
        let path = path.to_str().expect("temporary paths are UTF-8 here");
        let encoded = percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC).to_string();
        CaFile { _dir: dir, encoded }
    }
}

fn pool(url: &str) -> SmtpPool {
    let mut settings = SmtpSettings::from_url(&url.parse().expect("a valid URL")).expect("valid SMTP settings");
    // Fail fast rather than hang a test if a handshake stalls.
    settings.timeout = Duration::from_secs(10);
    SmtpPool::new(settings, 2)
}

fn message(subject: &str) -> Vec<u8> {
    format!("From: <{FROM}>\r\nTo: <{TO}>\r\nSubject: {subject}\r\n\r\nHello from the TLS tests.\r\n").into_bytes()
}

async fn send(pool: &SmtpPool, subject: &str) -> Result<String, SendError> {
    pool.send(FROM, TO, &message(subject)).await
}

/// Asserts that `outcome` failed as `Unavailable` and returns its reason.
fn unavailable(outcome: Result<String, SendError>) -> String {
    match outcome {
        Err(SendError::Unavailable(reason)) => reason,
        other => panic!("expected SendError::Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn starttls_is_used_when_required() {
    let server = TestSmtp::start_tls(TlsTestMode::StartTls);
    let ca = CaFile::of(&server);
    let pool = pool(&format!("smtp://localhost:{}?tls=starttls&ca_file={}", server.port(), ca.encoded));

    send(&pool, "starttls").await.expect("delivered over STARTTLS");

    let messages = server.messages_to(TO);
    assert_eq!(messages.len(), 1);
    assert!(messages[0].tls, "the session was upgraded before MAIL FROM");
    assert_eq!(messages[0].auth_user, None);
    assert!(messages[0].text().contains("Subject: starttls"));
}

#[tokio::test]
async fn implicit_tls_encrypts_from_the_first_byte() {
    let server = TestSmtp::start_tls(TlsTestMode::Implicit);
    let ca = CaFile::of(&server);
    let pool = pool(&format!("smtps://localhost:{}?ca_file={}", server.port(), ca.encoded));

    send(&pool, "smtps").await.expect("delivered over implicit TLS");

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].tls);
    assert_eq!(messages[0].to, vec![TO.to_owned()]);
}

#[tokio::test]
async fn opportunistic_tls_upgrades_when_starttls_is_offered() {
    let server = TestSmtp::start_tls(TlsTestMode::StartTls);
    let ca = CaFile::of(&server);
    let pool = pool(&format!("smtp://localhost:{}?tls=opportunistic&ca_file={}", server.port(), ca.encoded));

    send(&pool, "opportunistic").await.expect("delivered");

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].tls, "STARTTLS was offered, so it was used");
}

#[tokio::test]
async fn opportunistic_tls_sends_in_clear_text_when_starttls_is_not_offered() {
    let server = TestSmtp::start();
    let pool = pool(&format!("{}?tls=opportunistic", server.url()));

    send(&pool, "plain").await.expect("delivered without TLS");

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(!messages[0].tls);
}

#[tokio::test]
async fn required_starttls_against_a_server_without_it_pauses_sending_instead_of_failing_the_message() {
    let server = TestSmtp::start();
    let pool = pool(&format!("{}?tls=starttls", server.url()));

    let reason = unavailable(send(&pool, "must not go out in clear text").await);

    assert!(reason.contains("STARTTLS"), "{reason}");
    assert!(server.messages().is_empty(), "nothing was sent in clear text");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_without_failing_the_message() {
    // No ca_file: the self-signed certificate is not among the trusted roots.
    let starttls = TestSmtp::start_tls(TlsTestMode::StartTls);
    let pool_starttls = pool(&format!("smtp://localhost:{}?tls=starttls", starttls.port()));
    unavailable(send(&pool_starttls, "untrusted starttls").await);
    assert!(starttls.messages().is_empty());

    let implicit = TestSmtp::start_tls(TlsTestMode::Implicit);
    let pool_implicit = pool(&format!("smtps://localhost:{}", implicit.port()));
    unavailable(send(&pool_implicit, "untrusted smtps").await);
    assert!(implicit.messages().is_empty());

    // Opportunistic TLS does not fall back to clear text once STARTTLS has failed.
    let pool_opportunistic = pool(&format!("smtp://localhost:{}?tls=opportunistic", starttls.port()));
    unavailable(send(&pool_opportunistic, "untrusted opportunistic").await);
    assert!(starttls.messages().is_empty());
}

#[tokio::test]
async fn credentials_from_the_url_authenticate_the_session() {
    let server = TestSmtp::start_tls(TlsTestMode::StartTls);
    server.require_auth("campaign", "p@ss:w/rd");
    let ca = CaFile::of(&server);
    let pool = pool(&format!(
        "smtp://campaign:p%40ss%3Aw%2Frd@localhost:{}?tls=starttls&ca_file={}",
        server.port(),
        ca.encoded
    ));

    send(&pool, "authenticated").await.expect("delivered after AUTH");

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].tls);
    assert_eq!(messages[0].auth_user.as_deref(), Some("campaign"));
}

#[tokio::test]
async fn a_wrong_password_pauses_sending_instead_of_failing_the_message() {
    let server = TestSmtp::start_tls(TlsTestMode::StartTls);
    server.require_auth("campaign", "right");
    let ca = CaFile::of(&server);
    let pool = pool(&format!("smtp://campaign:wrong@localhost:{}?tls=starttls&ca_file={}", server.port(), ca.encoded));

    // The server answers 535, which lettre calls permanent; for us it is a configuration problem.
    let reason = unavailable(send(&pool, "wrong password").await);

    assert!(reason.contains("535"), "{reason}");
    assert!(!reason.contains("wrong"), "the password stays out of the error: {reason}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn missing_credentials_pause_sending_instead_of_failing_the_message() {
    let server = TestSmtp::start_tls(TlsTestMode::Implicit);
    server.require_auth("campaign", "secret");
    let ca = CaFile::of(&server);
    let pool = pool(&format!("smtps://localhost:{}?ca_file={}", server.port(), ca.encoded));

    // MAIL FROM gets 530 "authentication required": not the message's fault either.
    let reason = unavailable(send(&pool, "no credentials").await);

    assert!(reason.contains("530"), "{reason}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn the_pool_reuses_one_encrypted_connection_for_sequential_messages() {
    let server = TestSmtp::start_tls(TlsTestMode::StartTls);
    server.require_auth("campaign", "secret");
    let ca = CaFile::of(&server);
    let pool = pool(&format!("smtp://campaign:secret@localhost:{}?tls=starttls&ca_file={}", server.port(), ca.encoded));

    for n in 0..3 {
        send(&pool, &format!("message {n}")).await.expect("delivered");
    }

    let messages = server.messages();
    assert_eq!(messages.len(), 3);
    assert!(messages.iter().all(|m| m.tls && m.auth_user.as_deref() == Some("campaign")));
    assert_eq!(server.connections(), 1, "one connection, one handshake, one AUTH for all three messages");
}
