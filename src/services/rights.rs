//! The rights-request log: requests from people exercising their UK GDPR
//! rights (access, erasure, rectification, portability, objection,
//! restriction), each due one calendar month after it was received and
//! extendable once by two further months with a reason (ICO guidance); and
//! complaints about how their data is used, which must be acknowledged
//! within 30 days (Data (Use and Access) Act 2025).
//!
//! The clock of a request can be stopped while the group waits for what it
//! needs from the person (proof of identity, which records they mean), as
//! the Data (Use and Access) Act 2025 allows: the due date moves by the time
//! paused, and a paused request is shown as paused, never overdue. Every
//! change (logged, paused, resumed, extended, acknowledged, noted,
//! completed, refused) is kept in the request's history with who made it,
//! when and why.

use super::audit::Who;
use super::{Context, FieldError, Result, ServiceError, ensure_valid};
use crate::domain::{RightsAction, RightsKind, RightsStatus};
use crate::store::{RightsEventRow, RightsRequestRow, Tx};
use chrono::{DateTime, Duration, Months, Utc};
use uuid::Uuid;

pub const KINDS: &[RightsKind] = RightsKind::ALL;

/// Days within which a complaint must be acknowledged.
pub const ACKNOWLEDGE_DAYS: i64 = 30;

/// One calendar month on; a day the next month lacks becomes its last day
/// (received 31 January → due 28 or 29 February), as the ICO counts.
pub fn one_month_after(t: DateTime<Utc>) -> DateTime<Utc> {
    t.checked_add_months(Months::new(1)).unwrap_or(t)
}

/// A request as shown: its row plus what follows from it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RightsRequest {
    #[serde(flatten)]
    pub row: RightsRequestRow,
    /// The due date in force: the extended one, if extended, moved on by
    /// every pause (while paused, as if the clock restarted now). For a
    /// complaint, the date its acknowledgement is due.
    pub effective_due_at: DateTime<Utc>,
    /// The clock is stopped now (`paused_at`, `pause_reason` say since when
    /// and why).
    pub paused: bool,
    /// Open, not paused and past its due date; a complaint: not yet
    /// acknowledged and past its acknowledgement date.
    pub overdue: bool,
    /// Every change, oldest first (in the answers about one request; absent
    /// from the list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<RightsEventRow>>,
}

impl RightsRequest {
    fn new(row: RightsRequestRow, now: DateTime<Utc>) -> Self {
        let paused = row.paused_at.is_some();
        let overdue;
        let effective_due_at;
        // A complaint's only date is its acknowledgement, 30 days after receipt.
        if row.kind == RightsKind::Complaint {
            effective_due_at = row.acknowledge_due_at.unwrap_or(row.due_at);
            overdue = row.status.is_open() && row.acknowledged_at.is_none() && now > effective_due_at;
        } else {
            let current = row.paused_at.map_or(0, |since| (now - since).num_seconds().max(0));
            let base = row.extended_due_at.unwrap_or(row.due_at);
            effective_due_at = base + Duration::seconds(row.paused_seconds + current);
            overdue = row.status.is_open() && !paused && now > effective_due_at;
        }
        Self { row, effective_due_at, paused, overdue, history: None }
    }

    /// For templates: a complaint shows its acknowledgement, not a clock.
    pub fn is_complaint(&self) -> bool {
        self.row.kind == RightsKind::Complaint
    }

    /// For templates: still to be answered.
    pub fn is_open(&self) -> bool {
        self.row.status.is_open()
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct NewRightsRequest {
    /// access, erasure, rectification, portability, objection, restriction
    /// or complaint.
    pub kind: String,
    /// Who asked (an address, a name, how they can be reached).
    pub subject: String,
    /// When it was received; now when omitted.
    pub received_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub notes: String,
}

fn text(field: &'static str, raw: &str, max: usize, required: bool, errors: &mut Vec<FieldError>) -> String {
    let t = raw.trim();
    if required && t.is_empty() {
        errors.push(FieldError::new(field, "required"));
    } else if t.chars().count() > max {
        errors.push(FieldError::new(field, format!("at most {max} characters")));
    }
    t.to_owned()
}

/// The history entry for one change.
fn event(request_id: Uuid, action: RightsAction, reason: &str, who: &Who, now: DateTime<Utc>) -> RightsEventRow {
    RightsEventRow {
        id: Uuid::now_v7(),
        request_id,
        occurred_at: now,
        action,
        reason: reason.to_owned(),
        actor: who.actor.clone(),
        actor_label: who.label.clone(),
    }
}

/// A request's row as first written: open, due a month after receipt (a
/// complaint: its acknowledgement due 30 days after).
pub fn new_row(
    kind: RightsKind,
    subject: String,
    received_at: DateTime<Utc>,
    who: &Who,
    now: DateTime<Utc>,
) -> RightsRequestRow {
    let complaint = kind == RightsKind::Complaint;
    let acknowledge_due_at = complaint.then(|| received_at + Duration::days(ACKNOWLEDGE_DAYS));
    RightsRequestRow {
        id: Uuid::now_v7(),
        kind,
        subject,
        subscriber_id: None,
        received_at,
        due_at: acknowledge_due_at.unwrap_or_else(|| one_month_after(received_at)),
        extended_due_at: None,
        extension_reason: None,
        status: RightsStatus::Open,
        outcome: String::new(),
        notes: String::new(),
        closed_at: None,
        created_by: who.actor.clone(),
        created_at: now,
        updated_at: now,
        paused_at: None,
        pause_reason: None,
        paused_seconds: 0,
        acknowledge_due_at,
        acknowledged_at: None,
    }
}

/// Writes a new request and the first entry of its history, inside `tx`.
pub(crate) async fn insert(tx: &mut Tx, row: &RightsRequestRow, who: &Who) -> Result<()> {
    tx.insert_rights_request(row).await?;
    tx.insert_rights_event(&event(row.id, RightsAction::Logged, "", who, row.created_at)).await?;
    if let Some(action) = row.status.entered_by() {
        tx.insert_rights_event(&event(row.id, action, &row.outcome, who, row.created_at)).await?;
    }
    Ok(())
}

pub async fn create(ctx: &Context, input: &NewRightsRequest, who: &Who) -> Result<RightsRequest> {
    let now = ctx.clock.now();
    let mut errors = Vec::new();
    let kind = RightsKind::parse(&input.kind).map_err(|_| {
        let words: Vec<&str> = KINDS.iter().map(|k| k.as_str()).collect();
        FieldError::new("kind", format!("one of {}", words.join(", ")))
    });
    if let Err(e) = &kind {
        errors.push(e.clone());
    }
    let subject = text("subject", &input.subject, 300, true, &mut errors);
    let notes = text("notes", &input.notes, 5000, false, &mut errors);
    let received_at = input.received_at.unwrap_or(now);
    if received_at > now {
        errors.push(FieldError::new("received_at", "cannot be in the future"));
    }
    ensure_valid(errors)?;
    let kind = kind.map_err(|e| ServiceError::Invalid(vec![e]))?;
    let mut tx = ctx.store.write().await?;
    let mut row = new_row(kind, subject, received_at, who, now);
    row.notes = notes;
    // Linked to the person when the subject is a known address, so an
    // erasure can find the request later.
    row.subscriber_id = match crate::domain::EmailAddress::parse(&row.subject) {
        Ok(email) => tx.subscriber_by_email(email.normalised()).await?.map(|s| s.id),
        Err(_) => None,
    };
    insert(&mut tx, &row, who).await?;
    let history = tx.rights_events(row.id).await?;
    tx.commit().await?;
    Ok(RightsRequest { history: Some(history), ..RightsRequest::new(row, now) })
}

pub async fn list(ctx: &Context, status: Option<&str>) -> Result<Vec<RightsRequest>> {
    let status = match status.map(RightsStatus::parse) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => {
            let s = status.unwrap_or_default();
            return Err(ServiceError::Invalid(vec![FieldError::new("status", format!("unknown status {s:?}"))]));
        }
    };
    let now = ctx.clock.now();
    let mut tx = ctx.store.read().await?;
    let mut all: Vec<RightsRequest> =
        tx.rights_requests(status, 500).await?.into_iter().map(|r| RightsRequest::new(r, now)).collect();
    // Open requests soonest due first, by the due date pauses have moved;
    // closed ones keep the store's order (newest first).
    all.sort_by_key(|r| (!r.is_open(), r.is_open().then_some(r.effective_due_at)));
    Ok(all)
}

pub async fn get(ctx: &Context, id: Uuid) -> Result<RightsRequest> {
    let mut tx = ctx.store.read().await?;
    let row = tx.rights_request(id).await?.ok_or(ServiceError::NotFound("rights request"))?;
    let history = tx.rights_events(id).await?;
    Ok(RightsRequest { history: Some(history), ..RightsRequest::new(row, ctx.clock.now()) })
}

/// What an organiser does to a request.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// Two further months, once, with the reason (e.g. complex or numerous).
    /// Not for a complaint.
    Extend {
        reason: String,
    },
    /// Stops the clock, with the reason (e.g. waiting for proof of identity
    /// or for the person to say which records they mean). Not for a
    /// complaint.
    Pause {
        reason: String,
    },
    /// Restarts the clock, with the reason (e.g. the proof arrived); the
    /// due date moves on by the time paused.
    Resume {
        reason: String,
    },
    /// A complaint: records that its receipt was acknowledged, now.
    Acknowledge {
        #[serde(default)]
        note: String,
    },
    Complete {
        outcome: String,
    },
    /// Refused as manifestly unfounded or excessive, with the reason.
    Refuse {
        outcome: String,
    },
    Note {
        notes: String,
    },
}

/// Ends a pause: its length joins the time paused before.
fn end_pause(row: &mut RightsRequestRow, now: DateTime<Utc>) {
    if let Some(since) = row.paused_at.take() {
        row.paused_seconds += (now - since).num_seconds().max(0);
        row.pause_reason = None;
    }
}

pub async fn change(ctx: &Context, id: Uuid, change: &Change, who: &Who) -> Result<RightsRequest> {
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let mut row = tx.rights_request(id).await?.ok_or(ServiceError::NotFound("rights request"))?;
    let mut errors = Vec::new();
    let closed = !row.status.is_open();
    let complaint = row.kind == RightsKind::Complaint;
    let conflict = |why: &str| Err(ServiceError::Conflict(why.to_owned()));
    let (action, reason) = match change {
        Change::Extend { reason } => {
            let reason = text("reason", reason, 1000, true, &mut errors);
            if closed {
                return conflict("the request is already closed");
            }
            if complaint {
                return conflict("a complaint has no deadline to extend: acknowledge it within 30 days");
            }
            if row.extended_due_at.is_some() {
                return conflict("the request has already been extended");
            }
            row.extended_due_at = row.due_at.checked_add_months(Months::new(2));
            row.extension_reason = Some(reason.clone());
            (RightsAction::Extended, reason)
        }
        Change::Pause { reason } => {
            let reason = text("reason", reason, 1000, true, &mut errors);
            if closed {
                return conflict("the request is already closed");
            }
            if complaint {
                return conflict("a complaint's acknowledgement date cannot be paused");
            }
            if row.paused_at.is_some() {
                return conflict("the clock is already stopped");
            }
            row.paused_at = Some(now);
            row.pause_reason = Some(reason.clone());
            (RightsAction::Paused, reason)
        }
        Change::Resume { reason } => {
            let reason = text("reason", reason, 1000, true, &mut errors);
            if closed {
                return conflict("the request is already closed");
            }
            if row.paused_at.is_none() {
                return conflict("the clock is not stopped");
            }
            end_pause(&mut row, now);
            (RightsAction::Resumed, reason)
        }
        Change::Acknowledge { note } => {
            let note = text("note", note, 1000, false, &mut errors);
            if !complaint {
                return conflict("only a complaint is acknowledged");
            }
            if row.acknowledged_at.is_some() {
                return conflict("the complaint has already been acknowledged");
            }
            if closed {
                return conflict("the request is already closed");
            }
            row.acknowledged_at = Some(now);
            (RightsAction::Acknowledged, note)
        }
        Change::Complete { outcome } | Change::Refuse { outcome } => {
            let refuse = matches!(change, Change::Refuse { .. });
            let outcome = text("outcome", outcome, 2000, refuse, &mut errors);
            let to = if refuse { RightsStatus::Refused } else { RightsStatus::Completed };
            let Some(action) = to.entered_by().filter(|_| row.status.can_become(to)) else {
                return conflict("the request is already closed");
            };
            // Closing a paused request ends its pause; closing a complaint
            // answers it, so it no longer waits for an acknowledgement.
            end_pause(&mut row, now);
            row.status = to;
            row.outcome.clone_from(&outcome);
            row.closed_at = Some(now);
            (action, outcome)
        }
        Change::Note { notes } => {
            row.notes = text("notes", notes, 5000, false, &mut errors);
            (RightsAction::Noted, row.notes.clone())
        }
    };
    ensure_valid(errors)?;
    row.updated_at = now;
    tx.save_rights_request(&row).await?;
    tx.insert_rights_event(&event(row.id, action, &reason, who, now)).await?;
    let history = tx.rights_events(row.id).await?;
    tx.commit().await?;
    Ok(RightsRequest { history: Some(history), ..RightsRequest::new(row, now) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_month_after_the_31st_is_the_end_of_the_next_month() {
        let t = Utc.with_ymd_and_hms(2026, 1, 31, 10, 0, 0).unwrap();
        assert_eq!(one_month_after(t), Utc.with_ymd_and_hms(2026, 2, 28, 10, 0, 0).unwrap());
        let t = Utc.with_ymd_and_hms(2026, 3, 15, 10, 0, 0).unwrap();
        assert_eq!(one_month_after(t), Utc.with_ymd_and_hms(2026, 4, 15, 10, 0, 0).unwrap());
    }

    #[test]
    fn pauses_move_the_due_date_and_a_paused_request_is_never_overdue() {
        let received = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let mut row = new_row(RightsKind::Access, "x".into(), received, &Who::system(), received);
        row.paused_at = Some(received + Duration::days(10));
        row.paused_seconds = 86400 * 2;
        let now = received + Duration::days(60);
        let r = RightsRequest::new(row.clone(), now);
        assert!(r.paused && !r.overdue);
        // Due 1 April, plus two days paused before, plus 50 days paused now.
        assert_eq!(r.effective_due_at, Utc.with_ymd_and_hms(2026, 4, 1, 9, 0, 0).unwrap() + Duration::days(52));
        end_pause(&mut row, now);
        let r = RightsRequest::new(row, now);
        assert!(!r.paused && !r.overdue);
        assert_eq!(r.row.paused_seconds, 86400 * 52);
    }

    #[test]
    fn a_complaint_is_due_for_acknowledgement_in_30_days() {
        let received = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let row = new_row(RightsKind::Complaint, "x".into(), received, &Who::system(), received);
        assert_eq!(row.acknowledge_due_at, Some(Utc.with_ymd_and_hms(2026, 3, 31, 9, 0, 0).unwrap()));
        let late = received + Duration::days(31);
        assert!(RightsRequest::new(row.clone(), late).overdue);
        let acknowledged = RightsRequestRow { acknowledged_at: Some(received + Duration::days(3)), ..row };
        assert!(!RightsRequest::new(acknowledged, late).overdue);
    }
}
