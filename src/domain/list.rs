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
            Err(ParseError("a list's web address is 1–64 lower-case letters, digits and hyphens"))
        }
    }

    /// The web address an organiser would pick for a list called `name`:
    /// lower-case letters and digits, accents dropped (é → e), every other
    /// run of characters one hyphen, at most 64 long. `None` when nothing
    /// usable is left (a name of only symbols or non-Latin letters).
    pub fn from_name(name: &str) -> Option<Self> {
        let mut out = String::new();
        let mut gap = false;
        for c in name.chars().flat_map(char::to_lowercase) {
            let plain = match c {
                'a'..='z' | '0'..='9' => Some(c),
                'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => Some('a'),
                'ç' | 'ć' | 'č' => Some('c'),
                'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' => Some('e'),
                'ì' | 'í' | 'î' | 'ï' | 'ī' => Some('i'),
                'ñ' | 'ń' => Some('n'),
                'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => Some('o'),
                'ù' | 'ú' | 'û' | 'ü' | 'ū' => Some('u'),
                'ý' | 'ÿ' => Some('y'),
                'ß' => Some('s'),
                'ł' => Some('l'),
                'ś' | 'š' => Some('s'),
                'ź' | 'ż' | 'ž' => Some('z'),
                '\'' | '’' => None,
                _ => {
                    gap = true;
                    None
                }
            };
            if let Some(p) = plain {
                if gap && !out.is_empty() {
                    out.push('-');
                }
                gap = false;
                out.push(p);
            }
        }
        let mut cut: String = out.chars().take(64).collect();
        while cut.ends_with('-') {
            cut.pop();
        }
        Self::parse(&cut).ok()
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
    fn a_web_address_is_made_from_a_name() {
        let slug = |n: &str| ListSlug::from_name(n).map(|s| s.as_str().to_owned());
        assert_eq!(slug("Case updates").as_deref(), Some("case-updates"));
        assert_eq!(slug("  Hearing dates — 2027!  ").as_deref(), Some("hearing-dates-2027"));
        assert_eq!(slug("Zoë's café").as_deref(), Some("zoes-cafe"));
        assert_eq!(slug("!!!"), None);
        assert_eq!(slug("日本"), None);
        assert_eq!(slug(&"a ".repeat(50)).map(|s| s.len()), Some(63), "cut at 64, no trailing hyphen");
    }

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
