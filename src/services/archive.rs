//! The public archive (README, "Public archive"): sent updates on lists
//! with the archive on, as a paginated index, one page per update, and an
//! Atom feed.
//!
//! The archive is public, so it is built from the update alone, never from a
//! delivery: no recipient's name (`{{name}}` reads "friend"), address,
//! unsubscribe or preferences link ever reaches it. Bodies go through the
//! same safe markdown renderer as mail, so raw HTML shows as text.

use super::{Context, FieldError, Result, ServiceError};
use crate::mail::update::markdown_to_html;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Updates on one page of the archive index.
pub const PAGE_SIZE: i64 = 50;
/// Entries in the Atom feed.
pub const FEED_SIZE: i64 = 20;

/// What stands in for the recipient's name in public.
const PUBLIC_NAME: &str = "friend";
const NAME_TAG: &str = "{{name}}";

/// One update in the archive index.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchiveEntry {
    pub id: Uuid,
    pub subject: String,
    pub sent_at: DateTime<Utc>,
    /// Names of the archived lists it went to.
    pub lists: Vec<String>,
}

/// One page of the index, newest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchivePage {
    pub updates: Vec<ArchiveEntry>,
    /// The `before` cursor of the next (older) page, if there is one.
    pub next_before: Option<Uuid>,
}

/// One archived update, rendered.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchivedUpdate {
    pub id: Uuid,
    pub subject: String,
    pub sent_at: DateTime<Utc>,
    pub lists: Vec<String>,
    /// Safe HTML from [`markdown_to_html`], with no personal data.
    pub body_html: String,
}

/// The body as the public may see it.
fn public_body(markdown: &str) -> String {
    markdown_to_html(markdown).replace(NAME_TAG, PUBLIC_NAME)
}

/// One page of the index; `before` is the id of the last update of the
/// previous page (an id that is not in the archive is refused).
pub async fn page(ctx: &Context, before: Option<&str>) -> Result<ArchivePage> {
    let before = match before {
        Some(raw) => Some(Uuid::parse_str(raw.trim()).map_err(|_| {
            ServiceError::Invalid(vec![FieldError::new("before", "the cursor is the id of an archived update")])
        })?),
        None => None,
    };
    let mut tx = ctx.store.read().await?;
    let cursor = match before {
        Some(id) => {
            let row = tx.archived_update(id).await?.ok_or(ServiceError::NotFound("archived update"))?;
            Some((row.finished_at, row.id))
        }
        None => None,
    };
    let mut rows = tx.archived_updates(cursor, PAGE_SIZE + 1).await?;
    let more = rows.len() > PAGE_SIZE as usize;
    rows.truncate(PAGE_SIZE as usize);
    let mut updates = Vec::with_capacity(rows.len());
    for row in rows {
        let lists = tx.archived_list_names(row.id).await?;
        updates.push(ArchiveEntry { id: row.id, subject: row.subject, sent_at: row.finished_at, lists });
    }
    let next_before = if more { updates.last().map(|u| u.id) } else { None };
    Ok(ArchivePage { updates, next_before })
}

/// One archived update; `NotFound` for anything not in the archive
/// (unknown, not sent, or on no archived list).
pub async fn get(ctx: &Context, id: &str) -> Result<ArchivedUpdate> {
    let id = Uuid::parse_str(id).map_err(|_| ServiceError::NotFound("archived update"))?;
    let mut tx = ctx.store.read().await?;
    let row = tx.archived_update(id).await?.ok_or(ServiceError::NotFound("archived update"))?;
    let lists = tx.archived_list_names(row.id).await?;
    Ok(ArchivedUpdate {
        id: row.id,
        subject: row.subject,
        sent_at: row.finished_at,
        lists,
        body_html: public_body(&row.body_markdown),
    })
}

/// The newest archived updates, rendered, for the Atom feed.
pub async fn feed(ctx: &Context) -> Result<Vec<ArchivedUpdate>> {
    let mut tx = ctx.store.read().await?;
    let rows = tx.archived_updates(None, FEED_SIZE).await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        // Left the archive since the listing (a list's archive turned off).
        let Some(full) = tx.archived_update(row.id).await? else { continue };
        let lists = tx.archived_list_names(row.id).await?;
        entries.push(ArchivedUpdate {
            id: full.id,
            subject: full.subject,
            sent_at: full.finished_at,
            lists,
            body_html: public_body(&full.body_markdown),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::public_body;

    #[test]
    fn the_public_body_greets_a_friend_and_shows_html_as_text() {
        let html = public_body("Dear {{name}},\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))");
        assert!(html.contains("Dear friend,"), "{html}");
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }
}
