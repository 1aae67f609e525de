//! The lifecycles of updates, deliveries, outbox messages and imports: each one's states, the
//! table of every move an update or an import may make, and what each of an
//! update's moves stamps. The store only carries out a move this table allows (a
//! compare-and-set on the status it read); adding a state is adding its
//! variant and its lines in `UpdateEvent::rule`.

use super::status::string_enum;
use chrono::{DateTime, Utc};

string_enum!(
    /// Where an update (a campaign) is in its life.
    UpdateStatus {
        Draft => "draft",
        Scheduled => "scheduled",
        Sending => "sending",
        Paused => "paused",
        Sent => "sent",
        Cancelled => "cancelled",
    }
);

/// What happens to an update: each moves it from some statuses to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateEvent {
    /// An organiser sets (or moves) the time it goes out.
    Schedule,
    /// It goes back to being a draft: edited by someone who may not send,
    /// or held at its time because sender authentication fails.
    Unschedule,
    /// An organiser sends it now (a scheduled one too, before its time).
    Send,
    /// Its scheduled time came.
    Due,
    Pause,
    Resume,
    /// The last recipient's outcome is recorded.
    Finish,
    Cancel,
}

use UpdateEvent as E;
use UpdateStatus as S;

impl UpdateEvent {
    /// The lifecycle, one line per event: the statuses it may happen in and
    /// the status it leads to. Nothing else moves an update.
    fn rule(self) -> (&'static [UpdateStatus], UpdateStatus) {
        match self {
            E::Schedule => (&[S::Draft, S::Scheduled], S::Scheduled),
            E::Unschedule => (&[S::Scheduled], S::Draft),
            E::Send => (&[S::Draft, S::Scheduled], S::Sending),
            E::Due => (&[S::Scheduled], S::Sending),
            E::Pause => (&[S::Sending], S::Paused),
            E::Resume => (&[S::Paused], S::Sending),
            E::Finish => (&[S::Sending], S::Sent),
            E::Cancel => (&[S::Draft, S::Scheduled, S::Sending, S::Paused], S::Cancelled),
        }
    }

    const ALL: [UpdateEvent; 8] =
        [E::Schedule, E::Unschedule, E::Send, E::Due, E::Pause, E::Resume, E::Finish, E::Cancel];

    /// The status this event leads to.
    pub fn target(self) -> UpdateStatus {
        self.rule().1
    }
}

impl UpdateStatus {
    /// Where `event` takes an update in this status; `None` if it may not
    /// happen now.
    pub fn on(self, event: UpdateEvent) -> Option<UpdateStatus> {
        let (from, to) = event.rule();
        from.contains(&self).then_some(to)
    }

    /// Whether some event moves an update from this status to `to`.
    pub fn can_become(self, to: UpdateStatus) -> bool {
        UpdateEvent::ALL.iter().any(|e| self.on(*e) == Some(to))
    }

    /// Its subject, body and lists may still change.
    pub fn is_editable(self) -> bool {
        matches!(self, S::Draft | S::Scheduled)
    }
}

/// One allowed move, with the times it leaves on the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateMove {
    pub from: UpdateStatus,
    pub to: UpdateStatus,
    /// When sending first started: set on the first move to `sending`,
    /// kept after (a resume does not restart it).
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended (sent or cancelled); `None` in any other status.
    pub finished_at: Option<DateTime<Utc>>,
}

impl UpdateMove {
    /// The move `event` makes from `from` at `now`, for an update that
    /// started sending at `started_at` (if it has); `None` if the lifecycle
    /// does not allow it.
    pub fn plan(
        from: UpdateStatus,
        started_at: Option<DateTime<Utc>>,
        event: UpdateEvent,
        now: DateTime<Utc>,
    ) -> Option<UpdateMove> {
        let to = from.on(event)?;
        let started_at = if to == S::Sending { started_at.or(Some(now)) } else { started_at };
        let finished_at = matches!(to, S::Sent | S::Cancelled).then_some(now);
        Some(UpdateMove { from, to, started_at, finished_at })
    }
}

string_enum!(
    /// One recipient's copy of an update.
    DeliveryStatus {
        Pending => "pending",
        Sending => "sending",
        Sent => "sent",
        Failed => "failed",
        Bounced => "bounced",
        Skipped => "skipped",
    }
);

string_enum!(
    /// One transactional message in the outbox.
    OutboxStatus {
        Pending => "pending",
        Sent => "sent",
        Failed => "failed",
    }
);

string_enum!(
    /// Where an import job is.
    ImportState {
        Uploading => "uploading",
        Queued => "queued",
        Running => "running",
        Done => "done",
        Failed => "failed",
    }
);

use ImportState as I;

/// Every move an import may make, one line each: the states it may leave
/// and the state it enters. The store's statements make these moves as
/// compare-and-sets on the state (queueing an upload, claiming under a
/// lease, finishing, failing a stalled upload).
const IMPORT_MOVES: &[(&[ImportState], ImportState)] = &[
    // The upload arrived whole and its terms were given.
    (&[I::Uploading], I::Queued),
    // A worker claims it (again, once another's lease ran out).
    (&[I::Queued, I::Running], I::Running),
    (&[I::Uploading, I::Queued, I::Running], I::Done),
    (&[I::Uploading, I::Queued, I::Running], I::Failed),
];

impl ImportState {
    pub fn can_become(self, to: ImportState) -> bool {
        IMPORT_MOVES.iter().any(|(from, target)| *target == to && from.contains(&self))
    }

    /// Done or failed: nothing moves it again.
    pub fn is_finished(self) -> bool {
        matches!(self, I::Done | I::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every allowed move, written out by hand (not read from the table):
    /// each (event, status) pair not listed here must be refused.
    const ALLOWED: &[(UpdateEvent, UpdateStatus, UpdateStatus)] = &[
        (E::Schedule, S::Draft, S::Scheduled),
        (E::Schedule, S::Scheduled, S::Scheduled),
        (E::Unschedule, S::Scheduled, S::Draft),
        (E::Send, S::Draft, S::Sending),
        (E::Send, S::Scheduled, S::Sending),
        (E::Due, S::Scheduled, S::Sending),
        (E::Pause, S::Sending, S::Paused),
        (E::Resume, S::Paused, S::Sending),
        (E::Finish, S::Sending, S::Sent),
        (E::Cancel, S::Draft, S::Cancelled),
        (E::Cancel, S::Scheduled, S::Cancelled),
        (E::Cancel, S::Sending, S::Cancelled),
        (E::Cancel, S::Paused, S::Cancelled),
    ];

    #[test]
    fn every_event_in_every_status_is_allowed_or_refused_as_listed() {
        let mut checked = 0;
        for event in UpdateEvent::ALL {
            for from in UpdateStatus::ALL {
                let expected = ALLOWED.iter().find(|(e, f, _)| *e == event && f == from).map(|(_, _, to)| *to);
                assert_eq!(from.on(event), expected, "{event:?} from {from}");
                checked += 1;
            }
        }
        assert_eq!(checked, 8 * 6);
    }

    #[test]
    fn can_become_is_exactly_the_listed_moves() {
        for from in UpdateStatus::ALL {
            for to in UpdateStatus::ALL {
                let expected = ALLOWED.iter().any(|(_, f, t)| f == from && t == to);
                assert_eq!(from.can_become(*to), expected, "{from} -> {to}");
            }
        }
        // Nothing leaves the end states.
        for end in [S::Sent, S::Cancelled] {
            assert!(UpdateStatus::ALL.iter().all(|to| !end.can_become(*to)), "{end}");
        }
    }

    #[test]
    fn each_event_has_one_target() {
        for event in UpdateEvent::ALL {
            let targets: Vec<_> = ALLOWED.iter().filter(|(e, _, _)| *e == event).map(|(_, _, t)| *t).collect();
            assert!(targets.iter().all(|t| *t == event.target()), "{event:?}");
        }
    }

    #[test]
    fn moves_stamp_start_once_and_finish_at_the_end() {
        let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let t1 = t0 + chrono::Duration::hours(1);
        let start = UpdateMove::plan(S::Draft, None, E::Send, t0).unwrap();
        assert_eq!((start.from, start.to, start.started_at, start.finished_at), (S::Draft, S::Sending, Some(t0), None));
        let pause = UpdateMove::plan(S::Sending, Some(t0), E::Pause, t1).unwrap();
        assert_eq!((pause.started_at, pause.finished_at), (Some(t0), None));
        let resume = UpdateMove::plan(S::Paused, Some(t0), E::Resume, t1).unwrap();
        assert_eq!(resume.started_at, Some(t0), "a resume keeps the first start");
        let done = UpdateMove::plan(S::Sending, Some(t0), E::Finish, t1).unwrap();
        assert_eq!((done.to, done.started_at, done.finished_at), (S::Sent, Some(t0), Some(t1)));
        let cancelled = UpdateMove::plan(S::Scheduled, None, E::Cancel, t1).unwrap();
        assert_eq!((cancelled.started_at, cancelled.finished_at), (None, Some(t1)));
        let scheduled = UpdateMove::plan(S::Draft, None, E::Schedule, t1).unwrap();
        assert_eq!((scheduled.started_at, scheduled.finished_at), (None, None));
        assert_eq!(UpdateMove::plan(S::Sent, Some(t0), E::Resume, t1), None);
    }

    #[test]
    fn import_moves_are_exactly_the_listed_ones() {
        // Written out by hand: every other pair must be refused.
        let allowed = [
            (I::Uploading, I::Queued),
            (I::Queued, I::Running),
            (I::Running, I::Running),
            (I::Uploading, I::Done),
            (I::Queued, I::Done),
            (I::Running, I::Done),
            (I::Uploading, I::Failed),
            (I::Queued, I::Failed),
            (I::Running, I::Failed),
        ];
        for from in ImportState::ALL {
            for to in ImportState::ALL {
                assert_eq!(from.can_become(*to), allowed.contains(&(*from, *to)), "{from} -> {to}");
            }
            assert_eq!(from.is_finished(), !ImportState::ALL.iter().any(|to| from.can_become(*to)), "{from}");
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in UpdateStatus::ALL {
            assert_eq!(UpdateStatus::parse(s.as_str()).unwrap(), *s);
        }
        for s in ImportState::ALL {
            assert_eq!(ImportState::parse(s.as_str()).unwrap(), *s);
        }
        for s in OutboxStatus::ALL {
            assert_eq!(OutboxStatus::parse(s.as_str()).unwrap(), *s);
        }
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()).unwrap(), *s);
        }
        assert!(UpdateStatus::parse("recalled").is_err());
    }
}
