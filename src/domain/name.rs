//! A supporter's display name.

use super::{HeaderSafeText, ParseError};

/// An optional display name. It is stored exactly as typed (HTML included:
/// escaping is the renderer's job, done everywhere it is shown) but it must
/// be one line, because it may be placed in a `To:` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberName(HeaderSafeText);

impl SubscriberName {
    pub const MAX_CHARS: usize = 200;

    /// `Ok(None)` for an empty or blank name: a name is optional.
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, ParseError> {
        if raw.trim().is_empty() {
            return Ok(None);
        }
        HeaderSafeText::parse(raw, Self::MAX_CHARS).map(|t| Some(Self(t))).map_err(|e| match e.0 {
            "is too long" => ParseError("that name is too long (200 characters at most)"),
            _ => ParseError("a name must be one line without control characters"),
        })
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_none_and_html_is_kept_verbatim() {
        assert_eq!(SubscriberName::parse_optional("  ").unwrap(), None);
        let n = SubscriberName::parse_optional("<b>Ana</b>").unwrap().unwrap();
        assert_eq!(n.as_str(), "<b>Ana</b>");
    }

    #[test]
    fn newlines_and_overlong_names_are_refused() {
        assert!(SubscriberName::parse_optional("Ana\r\nBcc: x@y.z").is_err());
        assert!(SubscriberName::parse_optional(&"x".repeat(201)).is_err());
    }
}
