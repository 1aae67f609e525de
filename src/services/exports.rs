//! CSV exports of subscribers (`tidings export`, `GET /api/v1/lists/{id}/export`),
//! produced a keyset page at a time so memory stays bounded whatever the
//! list's size.
//!
//! Columns: `email, name, list, status, subscribed_at, confirmed_at,
//! updated_at, attributes` — one line per subscription (a whole-database
//! export also has one line, without list, for each person subscribed to
//! nothing); times are RFC 3339 UTC; `attributes` is one JSON object, so
//! every subscriber's line has the same columns whatever attributes they
//! hold. Erased people are deleted, so they never appear.
//!
//! Cells are defused against formula injection as OWASP recommends: a cell
//! starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
//! leading `'`, so a spreadsheet shows it as text instead of running it.

use super::{Context, Result, lists};
use crate::store::{ExportRow, Store, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use std::borrow::Cow;
use uuid::Uuid;

/// Subscribers per page (one query, one piece of output).
pub const PAGE: i64 = 1000;

pub const HEADER: [&str; 8] =
    ["email", "name", "list", "status", "subscribed_at", "confirmed_at", "updated_at", "attributes"];

/// A cell as it is safe to hand to a spreadsheet.
pub fn defuse(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everyone subscribed to this list (in any status).
    List(Uuid),
    /// Every subscriber, with every subscription.
    All,
}

/// Where an export has got to.
#[derive(Debug, Clone)]
pub struct Cursor {
    scope: Scope,
    after: Uuid,
    started: bool,
    done: bool,
}

impl Cursor {
    pub fn new(scope: Scope) -> Self {
        Self { scope, after: Uuid::nil(), started: false, done: false }
    }
}

/// The list an export names, by id or slug.
pub async fn list_scope(ctx: &Context, id_or_slug: &str) -> Result<(Scope, String)> {
    let mut tx = ctx.store.read().await?;
    let list = lists::find(&mut tx, id_or_slug).await?;
    Ok((Scope::List(list.id), list.slug))
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)).unwrap_or_default()
}

fn write_row(out: &mut csv::Writer<Vec<u8>>, row: &ExportRow) -> std::result::Result<(), csv::Error> {
    let cells = [
        row.email.clone(),
        row.name.clone(),
        row.list_slug.clone().unwrap_or_default(),
        row.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        time(row.subscribed_at),
        time(row.confirmed_at),
        time(row.updated_at),
        row.attributes.clone(),
    ];
    out.write_record(cells.iter().map(|c| defuse(c).into_owned()))
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the export could not be written: {0}")]
    Csv(#[from] csv::Error),
}

/// The next piece of the CSV (the header row first), or `None` at the end.
/// Each page is read in its own short transaction.
pub async fn next_page(store: &Store, cursor: &mut Cursor) -> std::result::Result<Option<Vec<u8>>, ExportError> {
    if cursor.done {
        return Ok(None);
    }
    let rows = {
        let mut tx = store.read().await?;
        match cursor.scope {
            Scope::List(list_id) => tx.export_list_page(list_id, cursor.after, PAGE).await?,
            Scope::All => tx.export_all_page(cursor.after, PAGE).await?,
        }
    };
    let mut out = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 120 + 100));
    if !cursor.started {
        out.write_record(HEADER)?;
        cursor.started = true;
    }
    let people = {
        let mut ids: Vec<Uuid> = rows.iter().map(|r| r.subscriber_id).collect();
        ids.dedup();
        ids.len() as i64
    };
    for row in &rows {
        write_row(&mut out, row)?;
    }
    match (cursor.scope, rows.last()) {
        (_, None) => cursor.done = true,
        // A list page holds PAGE subscriptions; a whole-database page PAGE people.
        (Scope::List(_), Some(last)) => {
            cursor.after = last.subscriber_id;
            cursor.done = (rows.len() as i64) < PAGE;
        }
        (Scope::All, Some(last)) => {
            cursor.after = last.subscriber_id;
            cursor.done = people < PAGE;
        }
    }
    let bytes = out.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_and_others_left_alone() {
        for bad in ["=1+1", "+44 20", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(defuse(bad), format!("'{bad}"));
        }
        for ok in ["ann@example.org", "Ann", "", "1 = 1", "{\"a\":\"=x\"}"] {
            assert_eq!(defuse(ok), ok);
        }
    }
}
