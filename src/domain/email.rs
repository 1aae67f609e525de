//! E-mail addresses as supporters type them.

use super::{ParseError, sha256_hex};

/// A syntactically valid mailbox address (`local@domain`), as typed, with a
/// normalised form used for uniqueness and suppression.
///
/// We accept what real sign-up forms meet: dot-atom local parts (no quoted
/// strings, no comments), and a domain of LDH labels or IDN U-labels with at
/// least one dot. Anything that could smuggle a second address or a header
/// (spaces, angle brackets, commas, CR/LF, control characters) is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    original: String,
    normalised: String,
}

const LOCAL_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let candidate = raw.trim();
        if candidate.is_empty() {
            return Err(ParseError("enter your email address"));
        }
        // RFC 5321 limit on a forward path.
        if candidate.len() > 254 {
            return Err(ParseError("that email address is too long"));
        }
        let invalid = ParseError("that does not look like an email address");
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
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid);
        }
        for label in &labels {
            let label_ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric()));
            if !label_ok {
                return Err(invalid);
            }
        }
        let tld = labels[labels.len() - 1];
        if tld.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid);
        }
        // The mailer has the last word: an address it cannot put in a
        // header (a combining mark or a symbol in the local part, a domain
        // that IDNA refuses) would be accepted and then never mailed.
        if candidate.parse::<lettre::Address>().is_err() {
            return Err(invalid);
        }
        Ok(Self {
            original: candidate.to_owned(),
            // Mailbox providers treat local parts case-insensitively in
            // practice; treating them so too is what stops the same person
            // appearing twice.
            normalised: candidate.to_lowercase(),
        })
    }

    /// The address as the supporter typed it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// Lower-cased form: the key for uniqueness and suppression.
    pub fn normalised(&self) -> &str {
        &self.normalised
    }

    /// SHA-256 of the normalised address, kept in the suppression list after
    /// the address itself has been erased.
    pub fn suppression_hash(&self) -> String {
        sha256_hex(&self.normalised)
    }

    pub fn domain(&self) -> &str {
        self.original.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
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

    #[test]
    fn normalises_case_for_uniqueness() {
        let a = EmailAddress::parse(" Ana@Example.ORG ").unwrap();
        let b = EmailAddress::parse("ana@example.org").unwrap();
        assert_eq!(a.as_str(), "Ana@Example.ORG");
        assert_eq!(a.normalised(), b.normalised());
        assert_eq!(a.suppression_hash(), b.suppression_hash());
        assert_eq!(a.domain(), "Example.ORG");
    }
}
