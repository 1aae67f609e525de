//! The audit log: every organiser action (who, what, when, from where),
//! readable with filters and exportable as CSV.
//!
//! The web layer records each state-changing request to `/admin` and
//! `/api/v1` once it has been answered (see `web::admin::auth::audit` and
//! `web::api::auth::require_token`), so a new route is audited without anyone
//! remembering to; the CLI and the daily jobs record their own actions.

use super::exports::defuse;
use super::{Context, Result};
use crate::clock::Clock;
use crate::store::{AuditFilter, AuditRow, Store};
use uuid::Uuid;

/// The largest page a caller may ask for.
pub const MAX_PAGE: i64 = 500;

/// Who did something, as the log shows it.
#[derive(Debug, Clone)]
pub struct Who {
    /// `organiser:ID`, `api-token:ID`, `cli`, `system` or `anonymous`.
    pub actor: String,
    /// The organiser's address or the token's name at the time.
    pub label: String,
    pub ip: Option<String>,
}

impl Who {
    pub fn system() -> Self {
        Self { actor: "system".into(), label: "Tidings".into(), ip: None }
    }

    pub fn cli() -> Self {
        let user = std::env::var("USER").unwrap_or_default();
        Self { actor: "cli".into(), label: format!("command line {user}").trim_end().to_owned(), ip: None }
    }
}

/// One action to record.
#[derive(Debug, Clone)]
pub struct Action<'a> {
    /// e.g. `POST /api/v1/updates/{id}/send` or `retention.purge`.
    pub what: &'a str,
    /// The concrete path or object.
    pub target: &'a str,
    /// The HTTP status of the answer, 0 outside HTTP.
    pub status: u16,
    pub detail: String,
}

/// The row for one action at `now`.
pub fn entry(who: &Who, action: Action<'_>, now: chrono::DateTime<chrono::Utc>) -> AuditRow {
    AuditRow {
        id: Uuid::now_v7(),
        occurred_at: now,
        actor: who.actor.clone(),
        actor_label: truncate(&who.label, 200),
        action: truncate(action.what, 200),
        target: truncate(action.target, 500),
        status: i32::from(action.status),
        ip: who.ip.clone(),
        detail: truncate(&action.detail, 2000),
    }
}

/// Writes one entry in its own transaction.
pub async fn record(store: &Store, clock: &Clock, who: &Who, action: Action<'_>) -> Result<()> {
    let row = entry(who, action, clock.now());
    let mut tx = store.write().await?;
    tx.insert_audit(&row).await?;
    tx.commit().await?;
    Ok(())
}

/// Like [`record`], but a failure is logged rather than returned: the
/// action it describes has already happened.
pub async fn record_or_log(store: &Store, clock: &Clock, who: &Who, action: Action<'_>) {
    let what = action.what.to_owned();
    if let Err(e) = record(store, clock, who, action).await {
        tracing::error!(error = %e, action = %what, "could not write the audit log");
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// One page of entries matching `filter`, newest first.
pub async fn page(ctx: &Context, filter: &AuditFilter, limit: i64) -> Result<Vec<AuditRow>> {
    let mut tx = ctx.store.read().await?;
    Ok(tx.audit_page(filter, limit.clamp(1, MAX_PAGE)).await?)
}

pub const CSV_HEADER: [&str; 9] =
    ["id", "occurred_at", "actor", "actor_label", "action", "target", "status", "ip", "detail"];

/// The CSV lines of some entries (no header).
pub fn csv_rows(rows: &[AuditRow]) -> std::result::Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record([
            r.id.to_string().as_str(),
            &r.occurred_at.to_rfc3339(),
            &defuse(&r.actor),
            &defuse(&r.actor_label),
            &defuse(&r.action),
            &defuse(&r.target),
            &r.status.to_string(),
            &defuse(r.ip.as_deref().unwrap_or("")),
            &defuse(&r.detail),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The CSV header line.
pub fn csv_header() -> std::result::Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused() {
        assert_eq!(defuse("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(defuse("@SUM"), "'@SUM");
        assert_eq!(defuse("ann@example.org"), "ann@example.org");
        assert_eq!(defuse(""), "");
    }
}

/// The audit-log filters as typed into a form or query string.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct FilterInput {
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    /// A date (`2026-11-01`) or an RFC 3339 time; entries from then on.
    #[serde(default)]
    pub from: String,
    /// A date (up to the end of that day) or an RFC 3339 time (before it).
    #[serde(default)]
    pub until: String,
    /// Keyset: entries older than this id.
    #[serde(default)]
    pub before: String,
    pub limit: Option<i64>,
}

impl FilterInput {
    pub fn parse(&self) -> Result<AuditFilter> {
        let mut errors = Vec::new();
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let from = parse_time("from", &self.from, false, &mut errors);
        let until = parse_time("until", &self.until, true, &mut errors);
        let before = match self.before.trim() {
            "" => None,
            raw => {
                Uuid::parse_str(raw).map_err(|_| errors.push(super::FieldError::new("before", "not an entry id"))).ok()
            }
        };
        super::ensure_valid(errors)?;
        Ok(AuditFilter { actor: text(&self.actor), action: text(&self.action), from, until, before })
    }
}

fn parse_time(
    field: &'static str,
    raw: &str,
    end_of_day: bool,
    errors: &mut Vec<super::FieldError>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Some(t.to_utc());
    }
    match chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) => {
            let d = if end_of_day { d.succ_opt().unwrap_or(d) } else { d };
            Some(d.and_time(chrono::NaiveTime::MIN).and_utc())
        }
        Err(_) => {
            errors.push(super::FieldError::new(field, "a date (YYYY-MM-DD) or an RFC 3339 time"));
            None
        }
    }
}
