//! The vocabularies of the rights-request log: what was asked for
//! (`RightsKind`), where a request stands (`RightsStatus`, with the table of
//! the moves it may make) and what each entry of its history records
//! (`RightsAction`). The service decides which change is allowed when (a
//! complaint is acknowledged, not extended; a paused clock is resumed); the
//! store only keeps what it decided.

use super::status::string_enum;

string_enum!(
    /// The right a person exercises, or a complaint about how their data is
    /// used.
    RightsKind {
        Access => "access",
        Erasure => "erasure",
        Rectification => "rectification",
        Portability => "portability",
        Objection => "objection",
        Restriction => "restriction",
        Complaint => "complaint",
    }
);

string_enum!(
    /// Where a rights request stands: open until it is completed or refused.
    RightsStatus {
        Open => "open",
        Completed => "completed",
        Refused => "refused",
    }
);

use RightsStatus as R;

/// Every move a request's status may make, one line each: the statuses it
/// may leave and the status it enters. A closed request stays closed.
const RIGHTS_MOVES: &[(&[RightsStatus], RightsStatus)] = &[(&[R::Open], R::Completed), (&[R::Open], R::Refused)];

impl RightsStatus {
    pub fn can_become(self, to: RightsStatus) -> bool {
        RIGHTS_MOVES.iter().any(|(from, target)| *target == to && from.contains(&self))
    }

    /// Still to be answered.
    pub fn is_open(self) -> bool {
        self == R::Open
    }

    /// The history entry that records a request entering this status
    /// (`None` for open: a request is `logged` open, never moved back).
    pub fn entered_by(self) -> Option<RightsAction> {
        match self {
            R::Open => None,
            R::Completed => Some(RightsAction::Completed),
            R::Refused => Some(RightsAction::Refused),
        }
    }
}

string_enum!(
    /// What one entry of a request's history records.
    RightsAction {
        Logged => "logged",
        Paused => "paused",
        Resumed => "resumed",
        Extended => "extended",
        Acknowledged => "acknowledged",
        Noted => "noted",
        Completed => "completed",
        Refused => "refused",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_open_request_closes_and_a_closed_one_stays_closed() {
        let allowed = [(R::Open, R::Completed), (R::Open, R::Refused)];
        for from in RightsStatus::ALL {
            for to in RightsStatus::ALL {
                assert_eq!(from.can_become(*to), allowed.contains(&(*from, *to)), "{from} -> {to}");
            }
        }
        assert!(R::Open.is_open() && !R::Completed.is_open() && !R::Refused.is_open());
    }

    #[test]
    fn entering_a_closed_status_is_recorded_under_its_own_name() {
        assert_eq!(R::Open.entered_by(), None);
        for s in [R::Completed, R::Refused] {
            assert_eq!(s.entered_by().map(RightsAction::as_str), Some(s.as_str()));
        }
    }

    #[test]
    fn vocabularies_round_trip_and_refuse_unknown_words() {
        for k in RightsKind::ALL {
            assert_eq!(RightsKind::parse(k.as_str()).unwrap(), *k);
        }
        for s in RightsStatus::ALL {
            assert_eq!(RightsStatus::parse(s.as_str()).unwrap(), *s);
        }
        for a in RightsAction::ALL {
            assert_eq!(RightsAction::parse(a.as_str()).unwrap(), *a);
        }
        assert!(RightsKind::parse("Access").is_err());
        assert!(RightsStatus::parse("paused").is_err());
        assert!(RightsAction::parse("reopened").is_err());
    }
}
