//! `EmailAddress::parse` and `SubscriberName::parse_optional`: never panic,
//! and what they accept is safe to put in a mail header, in its one normal
//! form (issue 16 §4), and stable when parsed again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::domain::{AddressKey, EmailAddress, SubscriberName, sha256_hex};

/// Characters that would let an address smuggle a second address, a
/// comment or a header into a mail.
const NEVER_IN_AN_ADDRESS: &[char] = &['<', '>', ',', ';', ':', '"', '(', ')', '[', ']', '\\', ' '];

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    check_email(raw);
    check_name(raw);
});

fn check_email(raw: &str) {
    let Ok(addr) = EmailAddress::parse(raw) else { return };
    let s = addr.as_str();
    assert!(!s.is_empty() && s.len() <= 254);
    assert!(!s.chars().any(|c| c.is_control() || c.is_whitespace()), "no CR/LF, controls or spaces: {s:?}");
    assert!(!s.contains(NEVER_IN_AN_ADDRESS), "no address or header syntax: {s:?}");
    assert_eq!(s.matches('@').count(), 1, "exactly one @: {s:?}");
    let (local, domain) = s.split_once('@').unwrap_or_default();
    assert!(!local.is_empty() && local.len() <= 64);
    assert_eq!(addr.domain(), domain);
    // The domain is in its ASCII (A-label) form, lower case, without a root dot.
    assert!(domain.is_ascii() && domain == domain.to_lowercase() && !domain.ends_with('.'), "{domain:?}");
    assert!(domain.contains('.'));
    // The normal form differs from the mailed one only in the local part's case.
    let (norm_local, norm_domain) = addr.normalised().rsplit_once('@').unwrap_or_default();
    assert_eq!(norm_domain, domain);
    assert_eq!(norm_local, norm_local.to_lowercase(), "the normal form is lower case: {s:?}");
    let key = AddressKey::derive(b"fuzzing key of thirty-two bytes!");
    assert_ne!(addr.suppression_hash(&key), sha256_hex(addr.normalised()), "the fingerprint is keyed");
    // Normalising is idempotent: the mailed form and the normal form parse
    // to themselves, with or without surrounding blanks.
    assert_eq!(EmailAddress::parse(s).as_ref(), Ok(&addr));
    assert_eq!(EmailAddress::parse(&format!(" \t{s}\r\n")).as_ref(), Ok(&addr));
    assert_eq!(EmailAddress::parse(addr.normalised()).map(|a| a.normalised().to_owned()), Ok(addr.normalised().to_owned()));
    // Every address a supporter can subscribe with is one the mailer can
    // address: otherwise the confirmation mail could never be sent.
    assert!(s.parse::<lettre::Address>().is_ok(), "accepted but not mailable: {s:?}");
}

fn check_name(raw: &str) {
    let trimmed = raw.trim();
    let expected_ok = trimmed.is_empty()
        || (!trimmed.chars().any(char::is_control) && trimmed.chars().count() <= SubscriberName::MAX_CHARS);
    match SubscriberName::parse_optional(raw) {
        Ok(None) => assert!(trimmed.is_empty(), "only a blank name is no name"),
        Ok(Some(name)) => {
            assert!(expected_ok);
            let s = name.as_str();
            assert_eq!(s, trimmed);
            assert!(!s.is_empty());
            assert!(!s.chars().any(char::is_control), "one line, no controls: {s:?}");
            assert!(s.chars().count() <= SubscriberName::MAX_CHARS);
            assert_eq!(SubscriberName::parse_optional(s), Ok(Some(name.clone())));
        }
        Err(_) => assert!(!expected_ok, "refused a name that is one line and short: {raw:?}"),
    }
}
