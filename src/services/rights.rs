//! The rights-request log: requests from people exercising their UK GDPR
//! rights (access, erasure, rectification, portability, objection,
//! restriction), each due one calendar month after it was received and
//! extendable once by two further months with a reason (ICO guidance).

use super::{Context, FieldError, Result, ServiceError, ensure_valid};
use crate::domain::Actor;
use crate::store::RightsRequestRow;
use chrono::{DateTime, Months, Utc};
use uuid::Uuid;

pub const KINDS: &[&str] = &["access", "erasure", "rectification", "portability", "objection", "restriction"];

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
    /// The due date in force (the extended one, if extended).
    pub effective_due_at: DateTime<Utc>,
    /// Open and past its due date.
    pub overdue: bool,
}

impl RightsRequest {
    fn new(row: RightsRequestRow, now: DateTime<Utc>) -> Self {
        let effective_due_at = row.extended_due_at.unwrap_or(row.due_at);
        let overdue = row.status == "open" && now > effective_due_at;
        Self { row, effective_due_at, overdue }
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct NewRightsRequest {
    /// access, erasure, rectification, portability, objection or restriction.
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

pub async fn create(ctx: &Context, input: &NewRightsRequest, actor: &Actor) -> Result<RightsRequest> {
    let now = ctx.clock.now();
    let mut errors = Vec::new();
    if !KINDS.contains(&input.kind.as_str()) {
        errors.push(FieldError::new("kind", format!("one of {}", KINDS.join(", "))));
    }
    let subject = text("subject", &input.subject, 300, true, &mut errors);
    let notes = text("notes", &input.notes, 5000, false, &mut errors);
    let received_at = input.received_at.unwrap_or(now);
    if received_at > now {
        errors.push(FieldError::new("received_at", "cannot be in the future"));
    }
    ensure_valid(errors)?;
    let mut tx = ctx.store.write().await?;
    // Linked to the person when the subject is a known address, so an
    // erasure can find the request later.
    let subscriber_id = match crate::domain::EmailAddress::parse(&subject) {
        Ok(email) => tx.subscriber_by_email(email.normalised()).await?.map(|s| s.id),
        Err(_) => None,
    };
    let row = RightsRequestRow {
        id: Uuid::now_v7(),
        kind: input.kind.clone(),
        subject,
        subscriber_id,
        received_at,
        due_at: one_month_after(received_at),
        extended_due_at: None,
        extension_reason: None,
        status: "open".into(),
        outcome: String::new(),
        notes,
        closed_at: None,
        created_by: actor.to_db(),
        created_at: now,
        updated_at: now,
    };
    tx.insert_rights_request(&row).await?;
    tx.commit().await?;
    Ok(RightsRequest::new(row, now))
}

pub async fn list(ctx: &Context, status: Option<&str>) -> Result<Vec<RightsRequest>> {
    if let Some(s) = status.filter(|s| !["open", "completed", "refused"].contains(s)) {
        return Err(ServiceError::Invalid(vec![FieldError::new("status", format!("unknown status {s:?}"))]));
    }
    let now = ctx.clock.now();
    let mut tx = ctx.store.read().await?;
    Ok(tx.rights_requests(status, 500).await?.into_iter().map(|r| RightsRequest::new(r, now)).collect())
}

pub async fn get(ctx: &Context, id: Uuid) -> Result<RightsRequest> {
    let mut tx = ctx.store.read().await?;
    let row = tx.rights_request(id).await?.ok_or(ServiceError::NotFound("rights request"))?;
    Ok(RightsRequest::new(row, ctx.clock.now()))
}

/// What an organiser does to an open request.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// Two further months, once, with the reason (e.g. complex or numerous).
    Extend {
        reason: String,
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

pub async fn change(ctx: &Context, id: Uuid, change: &Change) -> Result<RightsRequest> {
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let mut row = tx.rights_request(id).await?.ok_or(ServiceError::NotFound("rights request"))?;
    let mut errors = Vec::new();
    let closed = row.status != "open";
    match change {
        Change::Extend { reason } => {
            let reason = text("reason", reason, 1000, true, &mut errors);
            if closed {
                return Err(ServiceError::Conflict("the request is already closed".into()));
            }
            if row.extended_due_at.is_some() {
                return Err(ServiceError::Conflict("the request has already been extended".into()));
            }
            row.extended_due_at = row.due_at.checked_add_months(Months::new(2));
            row.extension_reason = Some(reason);
        }
        Change::Complete { outcome } | Change::Refuse { outcome } => {
            let outcome = text("outcome", outcome, 2000, matches!(change, Change::Refuse { .. }), &mut errors);
            if closed {
                return Err(ServiceError::Conflict("the request is already closed".into()));
            }
            row.status = if matches!(change, Change::Refuse { .. }) { "refused" } else { "completed" }.into();
            row.outcome = outcome;
            row.closed_at = Some(now);
        }
        Change::Note { notes } => row.notes = text("notes", notes, 5000, false, &mut errors),
    }
    ensure_valid(errors)?;
    row.updated_at = now;
    tx.save_rights_request(&row).await?;
    tx.commit().await?;
    Ok(RightsRequest::new(row, now))
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
}
