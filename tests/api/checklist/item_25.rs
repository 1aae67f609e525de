//! Checklist item 25 — RFC 8058 one-click unsubscribe: bulk mail carries
//! `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, a POST of that body
//! to the header's URI unsubscribes at once with no cookie, login or
//! redirect, and the DKIM signature covers both headers (RFC 8058; the
//! Gmail and Yahoo 2024 bulk-sender rules). The signature is checked by an
//! independent verifier (Python's dkimpy), as in `dkim.rs`; without dkimpy
//! that one check is skipped and counted.

use super::common::{copies, send_update};
use crate::both_backends;
use crate::dkim::{dkim_verifies, verifier_available};
use crate::support::app::{Db, TestApp, header};
use std::process::Command;

both_backends!(one_click_unsubscribe_works_without_a_cookie_and_is_covered_by_the_dkim_signature);

/// A 2048-bit RSA key in `dir`; returns its path and the DNS TXT record.
fn dkim_key(dir: &std::path::Path) -> (String, String) {
    let key = dir.join("dkim.pem");
    let status = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let public =
        Command::new("openssl").args(["pkey", "-pubout", "-outform", "DER", "-in"]).arg(&key).output().unwrap();
    use base64::Engine;
    let txt = format!("v=DKIM1; k=rsa; p={}", base64::engine::general_purpose::STANDARD.encode(&public.stdout));
    (key.to_str().unwrap().to_owned(), txt)
}

async fn one_click_unsubscribe_works_without_a_cookie_and_is_covered_by_the_dkim_signature(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (key, txt) = dkim_key(dir.path());
    let app = TestApp::spawn_with(
        db,
        &[
            ("TIDINGS_DKIM_SELECTOR", "c2026"),
            ("TIDINGS_DKIM_KEY_FILE", &key),
            ("TIDINGS_DKIM_DOMAIN", "hospital.test"),
        ],
    )
    .await;
    app.confirmed_subscribers("click", 2, "updates").await;
    send_update(&app, "One click", &["updates"]).await;
    let mail = copies(&app, "click0@example.org", "One click").pop().expect("a copy");

    assert_eq!(header(&mail, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    let value = header(&mail, "List-Unsubscribe").unwrap();
    let uri = value.split(',').map(str::trim).find(|u| u.starts_with("<http")).unwrap();
    let path = uri.trim_matches(['<', '>']).strip_prefix("http://tidings.test").unwrap().to_owned();

    // The signature covers both headers, and verifies.
    let signature = header(&mail, "DKIM-Signature").expect("signed");
    let h = signature.split(';').map(str::trim).find(|p| p.starts_with("h=")).unwrap().to_ascii_lowercase();
    for name in ["list-unsubscribe", "list-unsubscribe-post"] {
        assert!(h.trim_start_matches("h=").split(':').any(|x| x.trim() == name), "h= covers {name}: {h}");
    }
    if verifier_available() {
        assert!(dkim_verifies(&mail.data, &txt), "dkimpy verifies the copy");
        let mut tampered = mail.data.clone();
        let line = b"\r\nList-Unsubscribe-Post:";
        let pos = tampered.windows(line.len()).position(|w| w == line).expect("the header line") + 2;
        let end = pos + tampered[pos..].windows(2).position(|w| w == b"\r\n").unwrap();
        tampered[end - 1] = b'x';
        assert!(!dkim_verifies(&tampered, &txt), "a changed List-Unsubscribe-Post breaks the signature");
    } else {
        crate::support::skip::check("DKIM verification (checklist item 25)", "dkimpy not installed");
    }

    // The one-click POST, as a mailbox provider sends it: no cookie, no login.
    let res = app
        .http
        .post(app.url(&path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("location").is_none() && res.headers().get("set-cookie").is_none());
    assert_eq!(app.status("click0@example.org", "updates").await, "unsubscribed");
    assert_eq!(app.status("click1@example.org", "updates").await, "confirmed");
}
