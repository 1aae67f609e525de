//! Finding subscribers: filtered pages for the organiser UI and for
//! `GET /api/v1/subscribers`.
//!
//! Pages use keyset pagination, newest first: the cursor is the id of the
//! last subscriber shown (ids are uuid v7, so they sort by creation time),
//! and the next page is "ids below the cursor". Unlike OFFSET, fetching
//! page 1,000 costs the same as page 1, and rows added meanwhile neither
//! repeat nor go missing.

use super::lists::ListView;
use super::subscribers::{SubscriberView, SubscriptionView};
use super::{Context, FieldError, Result, ServiceError, lists};
use crate::domain::SubscriptionStatus;
use crate::store::{SubscriberSearch, SubscriptionRow};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use uuid::Uuid;

/// Page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page anyone may ask for.
pub const MAX_PAGE_SIZE: i64 = 500;
const MAX_QUERY_CHARS: usize = 254;

/// Search parameters as they arrive (query string); every one optional.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SearchInput {
    /// A list's slug or id.
    pub list: Option<String>,
    /// A subscription status (with `list`: on that list; else on any list).
    pub status: Option<String>,
    /// A substring of the address.
    pub q: Option<String>,
    /// `YYYY-MM-DD` (start of that day, UTC) or an RFC 3339 time; inclusive.
    pub created_from: Option<String>,
    /// `YYYY-MM-DD` (the whole of that day, UTC) or an RFC 3339 time; inclusive.
    pub created_to: Option<String>,
    /// The `next` value of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

/// One page of subscribers, and the cursor of the next page if there may
/// be one.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SubscriberPage {
    pub subscribers: Vec<SubscriberView>,
    pub next: Option<String>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// When `raw` is a date, its first instant; else the time it names.
fn parse_instant(raw: &str) -> Option<(DateTime<Utc>, bool)> {
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Some((day.and_hms_opt(0, 0, 0)?.and_utc(), true));
    }
    DateTime::parse_from_rfc3339(raw).ok().map(|t| (t.with_timezone(&Utc), false))
}

/// Escapes `%`, `_` and `\` so the text matches itself inside `LIKE … ESCAPE '\'`.
fn like_substring(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The parsed filters, except the list (which needs the database).
fn parse(input: &SearchInput) -> Result<SubscriberSearch> {
    let mut errors = Vec::new();
    let mut search = SubscriberSearch { limit: DEFAULT_PAGE_SIZE, ..SubscriberSearch::default() };
    if let Some(raw) = present(&input.status) {
        match SubscriptionStatus::parse(raw) {
            Ok(s) => search.status = Some(s),
            Err(_) => errors.push(FieldError::new(
                "status",
                "status is one of pending, confirmed, unsubscribed, bounced, complained",
            )),
        }
    }
    if let Some(q) = present(&input.q) {
        if q.chars().count() > MAX_QUERY_CHARS || q.chars().any(char::is_control) {
            errors.push(FieldError::new("q", "search for at most 254 characters of an address"));
        } else {
            search.email_like = Some(like_substring(&q.to_lowercase()));
        }
    }
    let bad_date = "use a date (YYYY-MM-DD) or an RFC 3339 time";
    if let Some(raw) = present(&input.created_from) {
        match parse_instant(raw) {
            Some((t, _)) => search.created_from = Some(t),
            None => errors.push(FieldError::new("created_from", bad_date)),
        }
    }
    if let Some(raw) = present(&input.created_to) {
        // Inclusive: a date means up to the end of that day; a time means
        // up to and including it (both databases keep microseconds).
        match parse_instant(raw) {
            Some((t, true)) => search.created_before = Some(t + chrono::Duration::days(1)),
            Some((t, false)) => search.created_before = Some(t + chrono::Duration::microseconds(1)),
            None => errors.push(FieldError::new("created_to", bad_date)),
        }
    }
    if let Some(raw) = present(&input.cursor) {
        match Uuid::parse_str(raw) {
            Ok(id) => search.before_id = Some(id),
            Err(_) => errors.push(FieldError::new("cursor", "pass the `next` value of the previous page")),
        }
    }
    if let Some(raw) = present(&input.limit) {
        match raw.parse::<i64>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => search.limit = n,
            _ => errors.push(FieldError::new("limit", "limit is a whole number from 1 to 500")),
        }
    }
    super::ensure_valid(errors)?;
    Ok(search)
}

/// One page of subscribers matching `input`, newest first.
pub async fn search(ctx: &Context, input: &SearchInput) -> Result<SubscriberPage> {
    let mut search = parse(input)?;
    let page_size = search.limit;
    // One more than asked for says whether another page exists.
    search.limit = page_size + 1;
    let mut tx = ctx.store.read().await?;
    if let Some(raw) = present(&input.list) {
        search.list_id = match lists::find(&mut tx, raw).await {
            Ok(list) => Some(list.id),
            Err(ServiceError::NotFound(_)) => {
                return Err(ServiceError::Invalid(vec![FieldError::new("list", "there is no such list")]));
            }
            Err(e) => return Err(e),
        };
    }
    let mut rows = tx.search_subscribers(&search).await?;
    let next = if rows.len() as i64 > page_size {
        rows.truncate(page_size as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut subscriptions: HashMap<Uuid, Vec<SubscriptionRow>> = HashMap::new();
    for sub in tx.subscriptions_of(&ids).await? {
        subscriptions.entry(sub.subscriber_id).or_default().push(sub);
    }
    let subscribers = rows
        .into_iter()
        .map(|s| SubscriberView {
            subscriptions: subscriptions
                .remove(&s.id)
                .unwrap_or_default()
                .into_iter()
                .map(|sub| SubscriptionView {
                    list: sub.list_slug,
                    status: sub.status.to_string(),
                    updated_at: sub.updated_at,
                })
                .collect(),
            // The same reading of attributes as a single subscriber's view.
            attributes: serde_json::from_str(&s.attributes).unwrap_or_else(|_| serde_json::json!({})),
            id: s.id,
            email: s.email,
            name: s.name,
            created_at: s.created_at,
        })
        .collect();
    Ok(SubscriberPage { subscribers, next })
}

/// Every list (not deleted), by name, with its confirmed subscriber count.
pub async fn lists_with_counts(ctx: &Context) -> Result<Vec<(ListView, i64)>> {
    let mut tx = ctx.store.read().await?;
    let counts: HashMap<Uuid, i64> = tx.confirmed_counts().await?.into_iter().collect();
    let lists = tx.lists().await?;
    Ok(lists
        .into_iter()
        .map(|l| {
            let confirmed = counts.get(&l.id).copied().unwrap_or(0);
            (ListView::from(l), confirmed)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(pairs: &[(&str, &str)]) -> SearchInput {
        let get = |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| (*v).to_owned());
        SearchInput {
            list: get("list"),
            status: get("status"),
            q: get("q"),
            created_from: get("created_from"),
            created_to: get("created_to"),
            cursor: get("cursor"),
            limit: get("limit"),
        }
    }

    #[test]
    fn like_patterns_match_the_text_literally() {
        assert_eq!(like_substring("a_b%c\\d"), "%a\\_b\\%c\\\\d%");
        assert_eq!(like_substring("zoe@"), "%zoe@%");
    }

    #[test]
    fn dates_are_inclusive_days_and_times_are_inclusive_instants() {
        let s = parse(&input(&[("created_from", "2026-03-01"), ("created_to", "2026-03-02")])).unwrap();
        assert_eq!(s.created_from.unwrap().to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(s.created_before.unwrap().to_rfc3339(), "2026-03-03T00:00:00+00:00");
        let s = parse(&input(&[("created_to", "2026-03-02T10:00:00+01:00")])).unwrap();
        assert_eq!(s.created_before.unwrap().to_rfc3339(), "2026-03-02T09:00:00.000001+00:00");
    }

    #[test]
    fn every_bad_parameter_is_named() {
        let err = parse(&input(&[
            ("status", "nope"),
            ("created_from", "yesterday"),
            ("created_to", "2026-13-01"),
            ("cursor", "x"),
            ("limit", "501"),
            ("q", "a\nb"),
        ]))
        .unwrap_err();
        let ServiceError::Invalid(fields) = err else { panic!("expected Invalid, got {err:?}") };
        let named: Vec<&str> = fields.iter().map(|f| f.field).collect();
        assert_eq!(named, ["status", "q", "created_from", "created_to", "cursor", "limit"]);
        assert!(parse(&input(&[("limit", "0")])).is_err());
        assert_eq!(parse(&input(&[("limit", "500")])).unwrap().limit, 500);
        assert_eq!(parse(&input(&[])).unwrap().limit, DEFAULT_PAGE_SIZE);
    }
}
