//! RFC 3463 enhanced status codes and what each kind of report means for a
//! subscriber. Pure functions, no I/O.
//!
//! The rules (README, "Bounces and complaints"):
//! - 5.1.x (bad address or domain) → **hard**: bounced everywhere and
//!   suppressed after one.
//! - 4.x.x, and 5.2.2 (mailbox full) → **soft**: counted; suspended after N
//!   in a row.
//! - 5.7.x (security or policy: blocked as spam, DMARC…) → **policy**: an
//!   operator alert, nothing happens to the subscriber.
//! - Other 5.x.x codes (5.0.0 "undefined", 5.2.1, 5.4.x …) say nothing
//!   definite about the address, so the provider's own verdict decides
//!   (Postmark's HardBounce, SES's Permanent, Mailgun's permanent severity);
//!   without one they count as soft.
//! - No code at all: the provider's verdict, else soft.
//! - 2.x.x (delivered) is not a failure and is ignored.

/// An RFC 3463 `class.subject.detail` code, e.g. 5.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedStatus {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedStatus {
    /// Parses exactly `2|4|5 . 1-3 digits . 1-3 digits`.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.trim().split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let number = |s: &str| {
            (!s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u16>().ok())?
        };
        let class = match class {
            "2" => 2,
            "4" => 4,
            "5" => 5,
            _ => return None,
        };
        Some(Self { class, subject: number(subject)?, detail: number(detail)? })
    }

    /// The first enhanced status code in free text such as an SMTP reply
    /// (`550 5.1.1 <x@example.org>: Recipient address rejected`).
    pub fn find_in(text: &str) -> Option<Self> {
        text.split(|c: char| !(c.is_ascii_digit() || c == '.')).map(|w| w.trim_matches('.')).find_map(Self::parse)
    }
}

impl std::fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// What the provider itself concluded, where it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Permanent,
    Transient,
    Policy,
    Unknown,
}

/// What a report means for the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Hard,
    Soft,
    Policy,
    Complaint,
    /// A delay notice (the message is still being retried): recorded only.
    Delayed,
}

impl Class {
    pub const ALL: &'static [Class] = &[Class::Hard, Class::Soft, Class::Policy, Class::Complaint, Class::Delayed];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Hard => "hard",
            Class::Soft => "soft",
            Class::Policy => "policy",
            Class::Complaint => "complaint",
            Class::Delayed => "delayed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == raw)
    }
}

/// Classifies a bounce by its status code and the provider's verdict.
/// `None` for a 2.x.x code: that is a success, not a bounce.
pub fn classify(status: Option<EnhancedStatus>, verdict: Verdict) -> Option<Class> {
    let by_verdict = match verdict {
        Verdict::Permanent => Class::Hard,
        Verdict::Policy => Class::Policy,
        Verdict::Transient | Verdict::Unknown => Class::Soft,
    };
    let Some(s) = status else { return Some(by_verdict) };
    Some(match (s.class, s.subject, s.detail) {
        (2, _, _) => return None,
        (4, _, _) => Class::Soft,
        (5, 1, _) => Class::Hard,
        (5, 7, _) => Class::Policy,
        (5, 2, 2) => Class::Soft,
        _ => by_verdict,
    })
}

/// True for an SMTP reply carrying an RFC 3463 5.1.x code (bad mailbox or
/// domain): the delivery worker's synchronous hard bounce.
pub fn is_hard_bounce(reply: &str) -> bool {
    EnhancedStatus::find_in(reply).is_some_and(|s| s.class == 5 && s.subject == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &str) -> Option<EnhancedStatus> {
        Some(EnhancedStatus::parse(raw).unwrap())
    }

    #[test]
    fn parses_only_well_formed_codes() {
        assert_eq!(code("5.1.1"), Some(EnhancedStatus { class: 5, subject: 1, detail: 1 }));
        assert_eq!(EnhancedStatus::parse(" 4.2.2 ").map(|s| s.to_string()).as_deref(), Some("4.2.2"));
        assert_eq!(EnhancedStatus::parse("5.1.10").map(|s| s.detail), Some(10));
        for bad in ["", "5", "5.1", "3.1.1", "5.1.1.1", "5.x.1", "5..1", "5.1.1234", "550"] {
            assert_eq!(EnhancedStatus::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            EnhancedStatus::find_in("smtp; 550 5.1.1 <jane@example.com>... User").map(|s| s.to_string()),
            Some("5.1.1".into())
        );
        assert_eq!(
            EnhancedStatus::find_in("mx 10.4.2.1 said 452 4.2.2 full.").map(|s| s.to_string()),
            Some("4.2.2".into())
        );
        assert_eq!(EnhancedStatus::find_in("550 Mailbox unavailable"), None);
    }

    #[test]
    fn rfc_3463_rules() {
        let v = Verdict::Unknown;
        assert_eq!(classify(code("5.1.1"), v), Some(Class::Hard));
        assert_eq!(classify(code("5.1.10"), Verdict::Transient), Some(Class::Hard), "the code wins");
        assert_eq!(classify(code("4.2.2"), v), Some(Class::Soft));
        assert_eq!(classify(code("4.4.7"), Verdict::Permanent), Some(Class::Soft), "4.x.x is always soft");
        assert_eq!(classify(code("5.2.2"), Verdict::Permanent), Some(Class::Soft), "mailbox full is soft");
        assert_eq!(classify(code("5.7.1"), Verdict::Permanent), Some(Class::Policy));
        assert_eq!(classify(code("5.7.26"), v), Some(Class::Policy));
        assert_eq!(classify(code("2.0.0"), Verdict::Permanent), None, "a success is no bounce");
    }

    #[test]
    fn unspecific_codes_and_missing_codes_follow_the_providers_verdict() {
        assert_eq!(classify(code("5.0.0"), Verdict::Permanent), Some(Class::Hard));
        assert_eq!(classify(code("5.0.0"), Verdict::Transient), Some(Class::Soft));
        assert_eq!(classify(code("5.0.0"), Verdict::Unknown), Some(Class::Soft));
        assert_eq!(classify(code("5.4.4"), Verdict::Policy), Some(Class::Policy));
        assert_eq!(classify(None, Verdict::Permanent), Some(Class::Hard));
        assert_eq!(classify(None, Verdict::Transient), Some(Class::Soft));
        assert_eq!(classify(None, Verdict::Policy), Some(Class::Policy));
        assert_eq!(classify(None, Verdict::Unknown), Some(Class::Soft));
    }

    #[test]
    fn hard_bounces_are_5_1_x() {
        assert!(is_hard_bounce("permanent error (550): 5.1.1 <x@example.org>: Recipient address rejected"));
        assert!(is_hard_bounce("550 5.1.10 RESOLVER.ADR.RecipientNotFound"));
        assert!(!is_hard_bounce("550 5.7.1 Message rejected as spam"));
        assert!(!is_hard_bounce("550 Mailbox unavailable"));
        assert!(!is_hard_bounce("552 5.2.2 Mailbox full"));
    }

    #[test]
    fn class_names_round_trip() {
        for c in Class::ALL {
            assert_eq!(Class::parse(c.as_str()), Some(*c));
        }
        assert_eq!(Class::parse("nonsense"), None);
    }
}
