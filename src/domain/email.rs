//! E-mail addresses as supporters type them, and the one normal form in
//! which Tidings compares, limits and suppresses them.
//!
//! Normalisation (issue 16 §4): the whole input goes through Unicode NFKC
//! (fullwidth `ａｎｎ＠ｅｘａｍｐｌｅ．ｏｒｇ` becomes `ann@example.org`);
//! the domain goes through IDNA/UTS-46 to its ASCII form (`bücher.example`,
//! `BÜCHER.example` and `xn--bcher-kva.example` are one domain), lower-cased,
//! with a trailing root dot removed; the local part is kept NFKC with its
//! case for mailing, and lower-cased for comparison, as Tidings always did.
//! What cannot be normalised is refused.

use super::{ParseError, sha256_hex};
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use unicode_normalization::UnicodeNormalization;

/// A syntactically valid mailbox address (`local@domain`), in the form it is
/// mailed to, with a normalised form used for uniqueness and suppression.
///
/// We accept what real sign-up forms meet: dot-atom local parts (no quoted
/// strings, no comments), and a domain of LDH labels or IDN U-labels with at
/// least one dot. Anything that could smuggle a second address or a header
/// (spaces, angle brackets, commas, CR/LF, control characters) is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    /// NFKC local part (case kept) `@` the ASCII (A-label) domain.
    original: String,
    /// `original` with the local part lower-cased.
    normalised: String,
}

const LOCAL_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";

/// Longest input looked at (bytes): a forward path is at most 254 octets
/// once normalised, and fullwidth or U-label spellings take up to four
/// bytes a character, so anything longer is refused before any work.
const MAX_RAW_BYTES: usize = 1024;

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ParseError("enter your email address"));
        }
        if trimmed.len() > MAX_RAW_BYTES {
            return Err(ParseError("that email address is too long"));
        }
        let invalid = ParseError("that does not look like an email address");
        // NFKC first, so a fullwidth `＠` or `．` is the ordinary one.
        let candidate: String = trimmed.nfkc().collect();
        let (local, domain) = candidate.rsplit_once('@').ok_or(invalid.clone())?;
        if local.is_empty() || local.len() > 64 || domain.is_empty() {
            return Err(invalid);
        }
        let local_ok = local.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || LOCAL_SPECIALS.contains(c)
                || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
        });
        if !local_ok || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(invalid);
        }
        let domain = ascii_domain(domain).ok_or(invalid.clone())?;
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid);
        }
        for label in &labels {
            let label_ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !label_ok {
                return Err(invalid);
            }
        }
        let tld = labels[labels.len() - 1];
        if tld.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid);
        }
        let original = format!("{local}@{domain}");
        // RFC 5321 limit on a forward path, on the form we mail to.
        if original.len() > 254 {
            return Err(ParseError("that email address is too long"));
        }
        // The mailer has the last word: an address it cannot put in a
        // header (a combining mark or a symbol in the local part) would be
        // accepted and then never mailed.
        if original.parse::<lettre::Address>().is_err() {
            return Err(invalid);
        }
        // Mailbox providers treat local parts case-insensitively in
        // practice; treating them so too is what stops the same person
        // appearing twice. Lower-casing can leave NFKC (rarely), so the
        // result is composed again.
        let local_norm: String = local.to_lowercase().nfkc().collect();
        let normalised = format!("{local_norm}@{domain}");
        Ok(Self { original, normalised })
    }

    /// The address as it is mailed: the typed local part in NFKC, `@`, the
    /// domain in ASCII (A-label) form without a trailing dot.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The key for uniqueness, limits and suppression: [`Self::as_str`]
    /// with the local part lower-cased.
    pub fn normalised(&self) -> &str {
        &self.normalised
    }

    /// Keyed fingerprint of the normalised address, kept in the
    /// suppression list after the address itself has been erased.
    pub fn suppression_hash(&self, key: &AddressKey) -> String {
        key.fingerprint(&self.normalised)
    }

    /// The bare SHA-256 fingerprints an older Tidings would have stored for
    /// this address (before issue 16): of the lower-cased address with an
    /// ASCII domain, and with the domain in Unicode (U-label) form, which
    /// is how an internationalised domain used to be kept. Suppressions
    /// made then cannot be re-keyed without the address, so they are
    /// checked with these until the address is seen again.
    pub fn legacy_suppression_hashes(&self) -> Vec<String> {
        let mut hashes = vec![sha256_hex(&self.normalised)];
        if let Some((local, domain)) = self.normalised.rsplit_once('@') {
            let (unicode, result) = idna::domain_to_unicode(domain);
            if result.is_ok() && unicode != domain {
                hashes.push(sha256_hex(format!("{local}@{unicode}")));
            }
        }
        hashes
    }

    /// The ASCII (A-label) domain, lower-case.
    pub fn domain(&self) -> &str {
        self.original.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

/// `domain` (already NFKC) in lower-case ASCII through UTS-46 (the mapping
/// browsers and mail programs use), without its trailing root dot; `None`
/// when UTS-46 refuses it (disallowed characters, bad hyphens, a label or
/// name too long, a bidi rule broken).
fn ascii_domain(domain: &str) -> Option<String> {
    // One root dot (or its ideographic spelling, which UTS-46 maps to a
    // dot) may end a domain; two may not.
    let domain = domain.strip_suffix('.').or_else(|| domain.strip_suffix('\u{3002}')).unwrap_or(domain);
    let ascii = Uts46::new()
        .to_ascii(domain.as_bytes(), AsciiDenyList::STD3, Hyphens::CheckFirstLast, DnsLength::Verify)
        .ok()?;
    Some(ascii.into_owned())
}

/// The key of address fingerprints (suppressions, the subscriber's join key
/// to them, bounce records): HMAC-SHA256 under a key derived from the
/// server's secret key, so someone holding a copy of the database cannot
/// test guesses against the fingerprints of erased addresses.
#[derive(Clone)]
pub struct AddressKey([u8; 32]);

impl std::fmt::Debug for AddressKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddressKey(..)")
    }
}

impl AddressKey {
    /// Derived from the server's secret key (`TIDINGS_SECRET_KEY`, or the
    /// generated one), under a label of its own so it is never the key of
    /// signed links.
    pub fn derive(secret_key: &[u8]) -> Self {
        Self(hmac_sha256(secret_key, b"tidings address fingerprint v1"))
    }

    /// HMAC-SHA256 of a normalised address, lower-case hex.
    pub fn fingerprint(&self, normalised: &str) -> String {
        super::hex_lower(&hmac_sha256(&self.0, normalised.as_bytes()))
    }

    /// A value that identifies the key without revealing it, stored so a
    /// start with a different secret key is noticed.
    pub fn check_value(&self) -> String {
        super::hex_lower(&hmac_sha256(&self.0, b"tidings address key check"))
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, KeyInit, Mac};
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.original
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "ana@example.org",
            "Ana.Lopez+news@Example.co.uk",
            "o'brien@example.ie",
            "x@sub-domain.example.com",
            "δοκιμή@παράδειγμα.δοκιμή",
        ] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok} should parse");
        }
    }

    #[test]
    fn refuses_malformed_and_dangerous_input() {
        for bad in [
            "",
            "   ",
            "plainaddress",
            "@example.org",
            "ana@",
            "ana@localhost",
            "ana@example..org",
            "ana..b@example.org",
            ".ana@example.org",
            "ana@-example.org",
            "ana@example.123",
            "ana lopez@example.org",
            "ana@example.org\r\nBcc: x@y.z",
            "ana@example.org,other@example.org",
            "<ana@example.org>",
            "\"quoted\"@example.org",
            "ana@exa mple.org",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let long_local = format!("{}@example.org", "a".repeat(65));
        assert!(EmailAddress::parse(&long_local).is_err());
    }

    #[test]
    fn refuses_addresses_the_mailer_cannot_address() {
        // Found by the `email_name` fuzz target: a local part starting with
        // a combining mark passed our character rules but not lettre's.
        for bad in ["\u{334}οκιμή@ϼα.δοκιμή", "€@example.org"] {
            assert!(bad.parse::<lettre::Address>().is_err(), "{bad:?} is not mailable");
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    fn key() -> AddressKey {
        AddressKey::derive(b"a test secret key of at least 32 bytes")
    }

    #[test]
    fn normalises_case_for_uniqueness() {
        let a = EmailAddress::parse(" Ana@Example.ORG ").unwrap();
        let b = EmailAddress::parse("ana@example.org").unwrap();
        assert_eq!(a.as_str(), "Ana@example.org", "the local part keeps its case for mailing");
        assert_eq!(a.normalised(), b.normalised());
        assert_eq!(a.suppression_hash(&key()), b.suppression_hash(&key()));
        assert_eq!(a.domain(), "example.org");
    }

    /// The twelve spellings of issue 16 §4.
    pub(crate) const SPELLINGS_OF_ANN: [&str; 12] = [
        "ann@bücher.example",
        "Ann@bücher.example",
        "ANN@BÜCHER.EXAMPLE",
        "ann@BÜCHER.example",
        "ann@xn--bcher-kva.example",
        "ann@XN--BCHER-KVA.example",
        "ann@bücher.example.",
        "ann@xn--bcher-kva.example.",
        "ａｎｎ@bücher.example",
        "ann@ｂüｃｈｅｒ.example",
        "ａｎｎ＠ｂüｃｈｅｒ．ｅｘａｍｐｌｅ",
        "ann@bu\u{308}cher.example",
    ];

    #[test]
    fn twelve_spellings_are_one_address() {
        let forms: Vec<EmailAddress> = SPELLINGS_OF_ANN.iter().map(|s| EmailAddress::parse(s).unwrap()).collect();
        for (raw, form) in SPELLINGS_OF_ANN.iter().zip(&forms) {
            assert_eq!(form.normalised(), "ann@xn--bcher-kva.example", "{raw:?}");
            assert_eq!(form.domain(), "xn--bcher-kva.example", "{raw:?}");
            assert_eq!(form.suppression_hash(&key()), forms[0].suppression_hash(&key()), "{raw:?}");
        }
        let plain = ["Ann@Example.ORG", "ann@example.org.", "ａｎｎ@example.org", "ann@ｅｘａｍｐｌｅ.org"];
        for raw in plain {
            assert_eq!(EmailAddress::parse(raw).unwrap().normalised(), "ann@example.org", "{raw:?}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_normalised() {
        for bad in [
            "ann@example.org..",
            "ann@ex_ample.org",
            "ann@xn--a.example",
            "ann@example-.org",
            "ann@\u{200b}.example",
            "ann@exa\u{fffd}mple.org",
            "ann@example.org\u{3002}.",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let too_long = format!("ann@{}.example", "ü".repeat(600));
        assert!(EmailAddress::parse(&too_long).is_err());
    }

    #[test]
    fn legacy_hashes_cover_the_old_forms() {
        let a = EmailAddress::parse("Ann@BÜCHER.example").unwrap();
        let legacy = a.legacy_suppression_hashes();
        assert!(legacy.contains(&sha256_hex("ann@xn--bcher-kva.example")));
        assert!(legacy.contains(&sha256_hex("ann@bücher.example")));
        let b = EmailAddress::parse("Ann@Example.org").unwrap();
        assert_eq!(b.legacy_suppression_hashes(), vec![sha256_hex("ann@example.org")]);
    }

    #[test]
    fn the_fingerprint_is_keyed() {
        let a = EmailAddress::parse("ann@example.org").unwrap();
        let other = AddressKey::derive(b"another secret key, also 32 bytes long");
        assert_ne!(a.suppression_hash(&key()), a.suppression_hash(&other));
        assert_ne!(a.suppression_hash(&key()), sha256_hex(a.normalised()), "not a bare SHA-256");
        assert_eq!(a.suppression_hash(&key()).len(), 64);
    }

    proptest::proptest! {
        /// Normalising is idempotent, and the mailed form parses to itself.
        #[test]
        fn normalising_is_idempotent(raw in "[a-zA-Z0-9.+_ａ-ｚＡ-Ｚü]{1,20}@[a-zA-Zａ-ｚüÜé-]{1,20}\\.(org|ORG|example|ｏｒｇ)\\.?") {
            if let Ok(a) = EmailAddress::parse(&raw) {
                let again = EmailAddress::parse(a.as_str()).unwrap();
                proptest::prop_assert_eq!(&again, &a);
                let from_norm = EmailAddress::parse(a.normalised()).unwrap();
                proptest::prop_assert_eq!(from_norm.normalised(), a.normalised());
                proptest::prop_assert!(a.domain().is_ascii());
            }
        }

        /// Case and fullwidth spellings of an ASCII address are that address.
        #[test]
        fn case_and_width_do_not_matter(local in "[a-z][a-z0-9]{0,10}", host in "[a-z][a-z0-9]{0,10}", flips in proptest::collection::vec(0u8..3, 30)) {
            let base = format!("{local}@{host}.org");
            let spelt: String = base.chars().zip(flips.iter().chain(std::iter::repeat(&0))).map(|(c, f)| match f {
                1 => c.to_ascii_uppercase(),
                2 if c.is_ascii_alphanumeric() => char::from_u32(u32::from(c) - 0x21 + 0xFF01).unwrap_or(c),
                _ => c,
            }).collect();
            let a = EmailAddress::parse(&spelt).unwrap();
            proptest::prop_assert_eq!(a.normalised(), base.as_str());
        }
    }
}
