//! DKIM: with a key configured, bulk and transactional mail is signed, the
//! signature covers the list headers, and an independent verifier (Python's
//! dkimpy) accepts it.

use crate::both_backends;
use crate::support::app::{Db, TestApp, header};
use std::process::Command;

both_backends!(updates_and_confirmations_carry_a_valid_dkim_signature);

/// dkimpy is installed by .ci/run; elsewhere the test is skipped if absent.
pub(crate) fn verifier_available() -> bool {
    let ok = Command::new("python3").args(["-c", "import dkim"]).status().is_ok_and(|s| s.success());
    assert!(ok || std::env::var("CI").is_err(), "CI must install dkimpy (pip install dkimpy)");
    ok
}

/// Verifies `message` with dkimpy, answering the DNS query with `txt`.
pub(crate) fn dkim_verifies(message: &[u8], txt: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.eml");
    std::fs::write(&path, message).unwrap();
    let script = format!(
        "import dkim,sys\nmsg=open(sys.argv[1],'rb').read()\nprint(dkim.verify(msg, dnsfunc=lambda name, timeout=5: b'{txt}'))"
    );
    let out = Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "True"
}

async fn updates_and_confirmations_carry_a_valid_dkim_signature(db: Db) {
    if !verifier_available() {
        eprintln!("dkimpy not installed: DKIM test not run");
        crate::support::skip::case("DKIM tests", "dkimpy not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    // OpenSSL 3 writes PKCS#8, which Tidings must accept.
    let status = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    let public =
        Command::new("openssl").args(["pkey", "-pubout", "-outform", "DER", "-in"]).arg(&key).output().unwrap();
    use base64::Engine;
    let txt = format!("v=DKIM1; k=rsa; p={}", base64::engine::general_purpose::STANDARD.encode(&public.stdout));

    let key_path = key.to_str().unwrap().to_owned();
    let app = TestApp::spawn_with(
        db,
        &[
            ("TIDINGS_DKIM_SELECTOR", "t2026"),
            ("TIDINGS_DKIM_KEY_FILE", key_path.as_str()),
            ("TIDINGS_DKIM_DOMAIN", "hospital.test"),
        ],
    )
    .await;
    app.confirmed_subscribers("d", 1, "updates").await;
    let id = app.create_update("Signed news", "Hello {{name}}", &["updates"]).await;
    app.api(reqwest::Method::POST, &format!("/updates/{id}/send")).send().await.unwrap();
    app.drive_delivery(&id, 5).await;
    let mail = app.smtp.messages_to("d0@example.org").pop().unwrap();
    let signature = header(&mail, "DKIM-Signature").expect("signed");
    let h = signature.split(';').map(str::trim).find(|p| p.starts_with("h=")).unwrap().to_ascii_lowercase();
    for name in ["from", "subject", "date", "message-id", "list-id", "list-unsubscribe", "list-unsubscribe-post"] {
        assert!(h.split([':', '=']).any(|x| x.trim() == name), "h= covers {name}: {h}");
    }
    assert!(signature.contains("d=hospital.test") && signature.contains("s=t2026"));
    assert!(dkim_verifies(&mail.data, &txt), "dkimpy verifies the update");
    let mut tampered = mail.data.clone();
    let at = tampered.windows(11).position(|w| w == b"Signed news").unwrap();
    tampered[at] = b'X';
    assert!(!dkim_verifies(&tampered, &txt), "a changed subject breaks the signature");

    app.subscribe("c@example.org", "updates").await;
    app.drain_outbox().await;
    let confirmation = app.smtp.messages_to("c@example.org").pop().unwrap();
    assert!(dkim_verifies(&confirmation.data, &txt), "dkimpy verifies the confirmation");
}
