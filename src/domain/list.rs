//! Mailing-list identifiers.

use super::{HeaderSafeText, ParseError};

/// A list's URL- and header-safe identifier: 1–64 of `a-z 0-9 -`, starting
/// with a letter or digit. It appears in `List-Id`, so it must stay tame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListSlug(String);

impl ListSlug {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim();
        let ok = !s.is_empty()
            && s.len() <= 64
            && !s.starts_with('-')
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError("a list slug is 1–64 lower-case letters, digits and hyphens"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ListSlug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A list's human name (shown on pages and in `List-Id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListName(HeaderSafeText);

impl ListName {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.trim().is_empty() {
            return Err(ParseError("a list needs a name"));
        }
        HeaderSafeText::parse(raw, 120)
            .map(Self)
            .map_err(|_| ParseError("a list name is one line of at most 120 characters"))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(ListSlug::parse("case-updates-2026").is_ok());
        for bad in ["", "Caps", "-lead", "sp ace", "semi;colon", "a\nb", &"a".repeat(65)] {
            assert!(ListSlug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        assert!(ListName::parse("Save Our Hospital").is_ok());
        assert!(ListName::parse(" ").is_err());
        assert!(ListName::parse("a\r\nb").is_err());
    }
}
