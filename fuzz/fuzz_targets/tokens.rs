//! Confirmation and signed link tokens: only the exact shapes we hand out
//! parse, and no input verifies unless it is the token we would mint
//! ourselves (no forgery, no second spelling of a valid token).
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use tidings::domain::{ConfirmToken, SignedToken, TokenPurpose, sha256_hex};
use uuid::Uuid;

const KEY: &[u8] = b"fuzzing key: 0123456789abcdef0123456789abcdef";
const PURPOSES: [TokenPurpose; 2] = [TokenPurpose::Unsubscribe, TokenPurpose::Preferences];

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = std::str::from_utf8(data) {
        arbitrary_text(raw);
    }
    tampered_token(data);
});

/// Any text: a confirmation token only in its canonical forms (a 256-bit
/// secret, with or without the 6-byte issue time in front), and a signed
/// token never (the fuzzer does not know the key), unless it is byte for
/// byte the token we mint for what it claims.
fn arbitrary_text(raw: &str) {
    if let Ok(t) = ConfirmToken::parse(raw) {
        assert_eq!(t.as_str(), raw);
        let bytes = URL_SAFE_NO_PAD.decode(raw).unwrap_or_default();
        assert!(bytes.len() == 32 || bytes.len() == 38, "only the two layouts parse");
        assert_eq!(URL_SAFE_NO_PAD.encode(&bytes), raw, "one spelling per token, so one hash per token");
        let digest = sha256_hex(raw.as_bytes());
        let key = t.hash();
        assert!(key.ends_with(&digest), "the key holds the hash of the whole token");
        assert_eq!(key.len(), if bytes.len() == 38 { 12 + 64 } else { 64 });
    }
    for purpose in PURPOSES {
        if let Ok(t) = SignedToken::verify(raw, KEY, purpose) {
            assert_eq!(t.purpose, purpose);
            assert_eq!(t.encode(KEY), raw, "a verified token is the one we would mint");
        }
    }
}

/// A real token, then changed by the input: it verifies only if the change
/// left it exactly as it was.
fn tampered_token(data: &[u8]) {
    if data.len() < 33 {
        return;
    }
    let (ids, edits) = data.split_at(33);
    let subscriber = Uuid::from_slice(&ids[1..17]).unwrap_or_default();
    let list = Uuid::from_slice(&ids[17..33]).unwrap_or_default();
    let token =
        if ids[0] & 1 == 0 { SignedToken::unsubscribe(subscriber, list) } else { SignedToken::preferences(subscriber) };
    let good = token.encode(KEY);
    assert_eq!(SignedToken::verify(&good, KEY, token.purpose), Ok(token.clone()), "round trip");
    let other =
        if token.purpose == TokenPurpose::Unsubscribe { TokenPurpose::Preferences } else { TokenPurpose::Unsubscribe };
    assert!(SignedToken::verify(&good, KEY, other).is_err(), "a token is good for one purpose only");
    assert!(SignedToken::verify(&good, b"another key", token.purpose).is_err(), "a token is good for one key only");

    // Each edit is (position, byte): overwrite one byte of the decoded token
    // (or, past its end, append it).
    let mut bytes = URL_SAFE_NO_PAD.decode(&good).unwrap_or_default();
    for edit in edits.chunks_exact(2) {
        let at = edit[0] as usize;
        match bytes.get_mut(at) {
            Some(b) => *b = edit[1],
            None if at % 2 == 0 => bytes.push(edit[1]),
            None => {
                bytes.pop();
            }
        }
    }
    let tampered = URL_SAFE_NO_PAD.encode(&bytes);
    for purpose in PURPOSES {
        if let Ok(t) = SignedToken::verify(&tampered, KEY, purpose) {
            assert_eq!(tampered, good, "a changed token verified");
            assert_eq!(t, token);
        }
    }
}
