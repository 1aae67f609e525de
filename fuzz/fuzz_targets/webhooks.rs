//! Provider webhook payloads (`POST /webhooks/{provider}`) for every
//! provider, and Mailgun's signature check.
//!
//! Input: one control byte (provider, whether a Mailgun signing key is set),
//! then the body.
#![no_main]

use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tidings::services::bounces::providers::{PayloadError, Provider, mailgun_signature_ok, parse};
use tidings::services::bounces::{EnhancedStatus, ReportKind, Source};

const PROVIDERS: [(Provider, &str, Source); 5] = [
    (Provider::Ses, "ses", Source::Ses),
    (Provider::Postmark, "postmark", Source::Postmark),
    (Provider::Sendgrid, "sendgrid", Source::Sendgrid),
    (Provider::Mailgun, "mailgun", Source::Mailgun),
    (Provider::Generic, "generic", Source::Generic),
];
const KEY: &str = "fuzzing-signing-key";

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else { return };
    let (provider, name, source) = PROVIDERS[usize::from(control) % PROVIDERS.len()];
    assert_eq!(Provider::from_name(name), Some(provider));
    let key = (control & 0x80 != 0).then_some(KEY);
    match parse(provider, body, key) {
        Ok(parsed) => {
            for report in &parsed.reports {
                assert_eq!(report.source, source);
                if let ReportKind::Bounce { status: Some(s), .. } | ReportKind::Delayed { status: Some(s), .. } =
                    &report.kind
                {
                    assert_eq!(EnhancedStatus::parse(&s.to_string()), Some(*s));
                }
                if provider != Provider::Ses {
                    assert!(report.recipient.as_deref().is_some_and(|r| !r.trim().is_empty()));
                }
            }
            if provider != Provider::Ses {
                assert!(parsed.sns_confirmations.is_empty());
            }
            if provider == Provider::Mailgun && key.is_some() {
                assert!(signed(body), "a Mailgun payload was accepted without a good signature");
            }
        }
        Err(PayloadError::BadSignature) => assert!(provider == Provider::Mailgun && key.is_some()),
        Err(PayloadError::Malformed(_)) => {}
    }
    signature_check(body);
});

/// The independent check: HMAC-SHA256(key, timestamp ‖ token) in hex.
fn expected_signature(key: &str, timestamp: &str, token: &str) -> String {
    let Ok(mut mac) = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()) else { return String::new() };
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn signed(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return false };
    let field = |k: &str| value.get("signature")?.get(k)?.as_str().map(str::trim);
    let (Some(timestamp), Some(token), Some(signature)) = (field("timestamp"), field("token"), field("signature"))
    else {
        return false;
    };
    expected_signature(KEY, timestamp, token) == signature.to_ascii_lowercase()
}

/// `mailgun_signature_ok` agrees with the independent check on fuzzed
/// strings, accepts the right signature in either case, and refuses it
/// with any one character changed.
fn signature_check(body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    let mut parts = text.splitn(4, '\n');
    let (key, timestamp, token) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let given = parts.next().unwrap_or("");
    let good = expected_signature(key, timestamp, token);
    assert_eq!(
        mailgun_signature_ok(key, timestamp, token, given),
        good == given.trim().to_ascii_lowercase(),
        "disagrees with HMAC-SHA256 for {given:?}"
    );
    assert!(mailgun_signature_ok(key, timestamp, token, &good));
    assert!(mailgun_signature_ok(key, timestamp, token, &good.to_ascii_uppercase()));
    let at = body.len() % good.len();
    let mut wrong = good.clone().into_bytes();
    wrong[at] = if wrong[at] == b'0' { b'1' } else { b'0' };
    assert!(!mailgun_signature_ok(key, timestamp, token, &String::from_utf8_lossy(&wrong)));
}
