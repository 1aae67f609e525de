//! A send that stops itself when recipients complain (issue 16 §7).
//!
//! Gmail and Yahoo stop accepting mail from a sender whose spam-complaint
//! rate passes 0.3%, and a high hard-bounce rate means a list that has gone
//! stale. Each update counts the copies it attempted and the complaints and
//! hard bounces tied to them (by VERP or Message-ID, from webhooks, ARF,
//! DSNs and the relay's own refusals). Once at least
//! `TIDINGS_PAUSE_MIN_ATTEMPTS` copies went out, a send whose complaints
//! pass `TIDINGS_PAUSE_COMPLAINT_RATE` or whose hard bounces pass
//! `TIDINGS_PAUSE_HARD_BOUNCE_RATE` is paused (the ordinary `paused`
//! status), with the reason on the update's page and an operator alert on
//! the dashboard.
//!
//! Where it is checked: when a complaint or hard bounce is recorded (one
//! row of `updates` by primary key, in the same transaction), and by the
//! delivery worker before each batch (so a send that reaches the minimum
//! with the rate already past it stops there). Never per message.
//!
//! Resuming: an organiser may resume. The thresholds then apply to what
//! happens from the resume on (attempts, complaints and hard bounces since
//! then, again only after the minimum number of attempts), so a resume is
//! not undone at once by the complaints that caused the pause, but a send
//! that keeps drawing complaints stops again. The alert is dismissed by the
//! resume and stays in the update's history.

use crate::config::Config;
use crate::domain::{AlertKind, UpdateStatus};
use crate::store::{NewAlert, SendCounts, StoreError, Tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The alert kind of an automatic pause; its subject is the update id.
pub const ALERT_KIND: AlertKind = AlertKind::SendPaused;

/// When a send pauses itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Complaints per million attempts that may not be passed (0 = no check).
    pub complaint_ppm: u32,
    /// Hard bounces per million attempts that may not be passed (0 = no check).
    pub hard_bounce_ppm: u32,
    /// Attempts (since the last resume) before either is checked.
    pub min_attempts: u32,
}

impl Thresholds {
    pub fn from_config(c: &Config) -> Self {
        Self {
            complaint_ppm: c.pause_complaint_ppm,
            hard_bounce_ppm: c.pause_hard_bounce_ppm,
            min_attempts: c.pause_min_attempts,
        }
    }

    /// Whether these figures must stop the send, and why.
    pub fn check(&self, c: &SendCounts) -> Option<Trip> {
        let attempts = (c.attempted - c.guard_attempted).max(0);
        if attempts == 0 || attempts < i64::from(self.min_attempts) {
            return None;
        }
        let complaints = (c.complaints - c.guard_complaints).max(0);
        let hard = (c.hard_bounces - c.guard_hard_bounces).max(0);
        let passes = |n: i64, ppm: u32| ppm > 0 && i128::from(n) * 1_000_000 > i128::from(ppm) * i128::from(attempts);
        if passes(complaints, self.complaint_ppm) {
            return Some(Trip {
                what: Measure::Complaints,
                n: complaints,
                of: attempts,
                limit_ppm: self.complaint_ppm,
            });
        }
        if passes(hard, self.hard_bounce_ppm) {
            return Some(Trip { what: Measure::HardBounces, n: hard, of: attempts, limit_ppm: self.hard_bounce_ppm });
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Complaints,
    HardBounces,
}

/// A threshold passed: `n` of `of` attempts, against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trip {
    pub what: Measure,
    pub n: i64,
    pub of: i64,
    pub limit_ppm: u32,
}

impl Trip {
    /// "Sending paused: complaints reached 0.4% (4 of 1,000)".
    pub fn title(&self) -> String {
        let what = match self.what {
            Measure::Complaints => "complaints",
            Measure::HardBounces => "hard bounces",
        };
        format!(
            "Sending paused: {what} reached {}% ({} of {})",
            percent(self.n as f64 * 100.0 / self.of as f64),
            thousands(self.n),
            thousands(self.of)
        )
    }

    fn detail(&self, subject: &str) -> String {
        let limit = percent(f64::from(self.limit_ppm) / 10_000.0);
        match self.what {
            Measure::Complaints => format!(
                "\u{201c}{subject}\u{201d} paused itself: {} of the {} copies sent drew a spam complaint, past the \
                 limit of {limit}% (TIDINGS_PAUSE_COMPLAINT_RATE). Gmail and Yahoo stop accepting mail from a \
                 sender whose complaint rate passes 0.3%. Check who this update went to and whether they expected \
                 it before resuming; after a resume the limit applies to what is sent from then on.",
                thousands(self.n),
                thousands(self.of)
            ),
            Measure::HardBounces => format!(
                "\u{201c}{subject}\u{201d} paused itself: {} of the {} copies sent bounced as undeliverable, past the \
                 limit of {limit}% (TIDINGS_PAUSE_HARD_BOUNCE_RATE). So many bad addresses usually means an old or \
                 bought list, which mailbox providers punish. Check where these addresses came from before \
                 resuming; after a resume the limit applies to what is sent from then on.",
                thousands(self.n),
                thousands(self.of)
            ),
        }
    }
}

/// `0.4`, `0.35`, `5`: at most two decimals, no trailing zeros.
pub fn percent(p: f64) -> String {
    let s = format!("{p:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `1,000`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// What a report added to an update's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Complaint,
    HardBounce,
}

/// Counts a complaint or hard bounce tied to a copy of `update_id`, and
/// pauses the send if that takes it past a threshold. In the caller's
/// transaction.
pub async fn record(
    tx: &mut Tx,
    thresholds: &Thresholds,
    update_id: Uuid,
    event: Event,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (complaints, hard) = match event {
        Event::Complaint => (1, 0),
        Event::HardBounce => (0, 1),
    };
    let Some(counts) = tx.count_guard_event(update_id, complaints, hard).await? else { return Ok(()) };
    if counts.status == UpdateStatus::Sending
        && let Some(trip) = thresholds.check(&counts)
    {
        pause(tx, update_id, &counts, trip, now).await?;
    }
    Ok(())
}

/// Before a batch: `false` when the send must stop (it is then paused).
pub async fn may_continue(
    tx: &mut Tx,
    thresholds: &Thresholds,
    update_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(counts) = tx.send_counts(update_id).await? else { return Ok(false) };
    match thresholds.check(&counts) {
        Some(trip) if counts.status == UpdateStatus::Sending => {
            pause(tx, update_id, &counts, trip, now).await?;
            Ok(false)
        }
        _ => Ok(true),
    }
}

async fn pause(
    tx: &mut Tx,
    update_id: Uuid,
    counts: &SendCounts,
    trip: Trip,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let title = trip.title();
    if !tx.auto_pause(update_id, &title, now).await? {
        return Ok(());
    }
    let link = format!("/admin/updates/{update_id}");
    tx.raise_alert(
        &NewAlert {
            kind: ALERT_KIND,
            subject: &update_id.to_string(),
            title: &title,
            detail: &trip.detail(&counts.subject),
            link: Some(&link),
        },
        now,
    )
    .await?;
    tracing::warn!(update = %update_id, n = trip.n, of = trip.of, "{title}");
    Ok(())
}

/// An organiser resumes a send: if it had paused itself, the thresholds
/// count from now and its alert is dismissed (it stays in the update's
/// history). In the caller's transaction, with the status change.
pub async fn resumed(tx: &mut Tx, update_id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
    if tx.rebase_send_guard(update_id).await? {
        tx.dismiss_alerts_about(ALERT_KIND, &update_id.to_string(), "resumed", now).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(attempted: i64, complaints: i64, hard_bounces: i64) -> SendCounts {
        SendCounts {
            status: UpdateStatus::Sending,
            subject: String::new(),
            attempted,
            complaints,
            hard_bounces,
            guard_attempted: 0,
            guard_complaints: 0,
            guard_hard_bounces: 0,
            auto_paused_reason: None,
        }
    }

    const DEFAULTS: Thresholds = Thresholds { complaint_ppm: 3_000, hard_bounce_ppm: 50_000, min_attempts: 1000 };

    #[test]
    fn the_default_limits_are_0_3_percent_complaints_and_5_percent_hard_bounces_after_1000() {
        let config = Config::from_map(&Default::default()).unwrap();
        assert_eq!(Thresholds::from_config(&config), DEFAULTS);
        // Not before 1,000 attempts, however bad.
        assert_eq!(DEFAULTS.check(&counts(999, 500, 500)), None);
        // 0.3% is the limit; passing it trips.
        assert_eq!(DEFAULTS.check(&counts(1000, 3, 0)), None);
        let trip = DEFAULTS.check(&counts(1000, 4, 0)).unwrap();
        assert_eq!(trip, Trip { what: Measure::Complaints, n: 4, of: 1000, limit_ppm: 3_000 });
        assert_eq!(trip.title(), "Sending paused: complaints reached 0.4% (4 of 1,000)");
        assert_eq!(DEFAULTS.check(&counts(1000, 0, 50)), None);
        let trip = DEFAULTS.check(&counts(1000, 0, 51)).unwrap();
        assert_eq!(trip.what, Measure::HardBounces);
        assert_eq!(trip.title(), "Sending paused: hard bounces reached 5.1% (51 of 1,000)");
        assert_eq!(
            DEFAULTS.check(&counts(2_000_000, 6_001, 0)).unwrap().title(),
            "Sending paused: complaints reached 0.3% (6,001 of 2,000,000)"
        );
    }

    #[test]
    fn after_a_resume_only_what_came_since_counts() {
        let mut c = counts(1000, 4, 0);
        assert!(DEFAULTS.check(&c).is_some());
        // Resumed: the four complaints are behind the baseline.
        (c.guard_attempted, c.guard_complaints, c.guard_hard_bounces) = (1000, 4, 0);
        c.complaints = 5; // a late one about a copy sent before the pause
        assert_eq!(DEFAULTS.check(&c), None, "not before another 1,000 attempts");
        c.attempted = 2000;
        assert_eq!(DEFAULTS.check(&c), None, "1 of 1,000 since the resume is within the limit");
        c.complaints = 8;
        assert_eq!(DEFAULTS.check(&c).unwrap().title(), "Sending paused: complaints reached 0.4% (4 of 1,000)");
    }

    #[test]
    fn a_zero_limit_turns_its_check_off() {
        let off = Thresholds { complaint_ppm: 0, hard_bounce_ppm: 0, min_attempts: 1 };
        assert_eq!(off.check(&counts(10, 10, 10)), None);
    }

    #[test]
    fn figures_read_naturally() {
        assert_eq!(percent(0.4), "0.4");
        assert_eq!(percent(5.0), "5");
        assert_eq!(percent(0.35), "0.35");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
