//! Short single-line text that may end up in a mail header or a log line.

use super::ParseError;
use sha2::{Digest, Sha256};

/// A single line of text with no control characters: safe to place in a mail
/// header, since CR and LF (the header-injection vector) are refused at parse
/// time rather than stripped later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSafeText(String);

impl HeaderSafeText {
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, ParseError> {
        let trimmed = raw.trim();
        if trimmed.chars().any(char::is_control) {
            return Err(ParseError("must be a single line without control characters"));
        }
        if trimmed.chars().count() > max_chars {
            return Err(ParseError("is too long"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Lower-case hex SHA-256, used to fingerprint published texts and tokens.
/// Addresses are fingerprinted with a key instead (`AddressKey`); a bare
/// SHA-256 of one is only ever compared, with suppressions stored before
/// issue 16.
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    hex_lower(&Sha256::digest(data.as_ref()))
}

/// Lower-case hex of `bytes`.
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_injection_is_refused() {
        assert!(HeaderSafeText::parse("Hello\r\nBcc: victim@example.com", 100).is_err());
        assert!(HeaderSafeText::parse("Hello\nX", 100).is_err());
        assert!(HeaderSafeText::parse("tab\there", 100).is_err());
        assert_eq!(HeaderSafeText::parse("  ok  ", 100).unwrap().as_str(), "ok");
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(HeaderSafeText::parse("ééé", 3).is_ok());
        assert!(HeaderSafeText::parse("éééé", 3).is_err());
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
