//! Finding subscribers (filters and keyset pages), one subscriber's page
//! with their subscriptions and consent ledger, their data copy (access and
//! portability, JSON or CSV; admins only), and erasing a subscriber (admins
//! only, confirmed by typing the address).

use super::auth::{CsrfToken, Organiser, RequireAdmin};
use super::error::AdminError;
use super::pages::{Choice, Chrome, SubscriberPage, SubscribersPage};
use crate::domain::SubscriptionStatus;
use crate::services::directory::{self, SearchInput};
use crate::services::{FieldError, ServiceError, consent, lists, privacy_ops, subscribers};
use crate::web::AppState;
use crate::web::input::Submitted;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use uuid::Uuid;

type Result<T, E = AdminError> = std::result::Result<T, E>;

/// `/admin/subscribers` with these filters (and cursor, if any).
fn search_url(input: &SearchInput, cursor: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let fields = [
        ("q", &input.q),
        ("list", &input.list),
        ("status", &input.status),
        ("created_from", &input.created_from),
        ("created_to", &input.created_to),
    ];
    for (key, value) in fields {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            query.append_pair(key, v);
        }
    }
    if let Some(c) = cursor {
        query.append_pair("cursor", c);
    }
    format!("/admin/subscribers?{}", query.finish())
}

pub async fn index(
    State(state): State<AppState>,
    me: Organiser,
    csrf: CsrfToken,
    Query(mut input): Query<SearchInput>,
    Query(notice): Query<NoticeQuery>,
) -> Result<Response> {
    // The page size is ours to choose here; the API lets callers pick.
    input.limit = None;
    let (subscribers, next, errors) = match directory::search(&state.ctx, &input).await {
        Ok(page) => (page.subscribers, page.next, Vec::new()),
        Err(ServiceError::Invalid(errors)) => (Vec::new(), None, errors),
        Err(e) => return Err(e.into()),
    };
    let chosen = |v: &Option<String>| v.as_deref().unwrap_or("").to_owned();
    let lists = lists::all(&state.ctx)
        .await?
        .into_iter()
        .map(|l| Choice { selected: input.list.as_deref() == Some(l.slug.as_str()), value: l.slug, label: l.name })
        .collect();
    let statuses = SubscriptionStatus::ALL
        .iter()
        .map(|s| Choice {
            value: s.as_str().to_owned(),
            label: s.as_str().to_owned(),
            selected: input.status.as_deref() == Some(s.as_str()),
        })
        .collect();
    let on_first_page = input.cursor.as_deref().is_none_or(str::is_empty);
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = SubscribersPage {
        chrome: Chrome::new(&state.ctx.config.group_name, &me, &csrf, "subscribers"),
        notice: (notice.notice.as_deref() == Some("erased")).then_some(
            "The person has been erased; only a fingerprint of the address is kept, so it is never mailed again.",
        ),
        q: chosen(&input.q),
        lists,
        statuses,
        created_from: chosen(&input.created_from),
        created_to: chosen(&input.created_to),
        subscribers,
        next_url: next.as_deref().map(|c| search_url(&input, Some(c))),
        first_url: (!on_first_page).then(|| search_url(&input, None)),
        errors,
    };
    Ok((status, page).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    me: Organiser,
    csrf: CsrfToken,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| ServiceError::NotFound("subscriber"))?;
    let subscriber = subscribers::get(&state.ctx, id).await?;
    let ledger = consent::ledger(&state.ctx, id).await?;
    let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "subscribers");
    Ok(SubscriberPage { chrome, subscriber, ledger }.into_response())
}

/// Erases a subscriber for good (see [`privacy_ops`]). The form on the
/// subscriber's page asks for the address to be typed again: erasure cannot
/// be undone, so a stray click must not do it.
#[derive(Debug, serde::Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
}

/// Everything held about the person, as a download: the same JSON (or,
/// with `format=csv`, CSV) as `GET /api/v1/subscribers/{id}/export`.
pub async fn export(
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| ServiceError::NotFound("subscriber"))?;
    let export = privacy_ops::export(&state.ctx.store, &state.ctx.clock, &state.ctx.config.group_name, id).await?;
    let (body, kind, extension) = if q.format.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("csv")) {
        let csv = privacy_ops::export_csv(&export)
            .map_err(|e| ServiceError::Conflict(format!("the CSV could not be written: {e}")))?;
        (csv, "text/csv; charset=utf-8", "csv")
    } else {
        let json = serde_json::to_vec_pretty(&export)
            .map_err(|e| ServiceError::Conflict(format!("the JSON could not be written: {e}")))?;
        (json, "application/json", "json")
    };
    let disposition = format!("attachment; filename=\"subscriber-{id}.{extension}\"");
    Ok(([(header::CONTENT_TYPE, kind.to_owned()), (header::CONTENT_DISPOSITION, disposition)], body).into_response())
}

pub async fn erase(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    Path(id): Path<String>,
    body: Submitted,
) -> Result<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| ServiceError::NotFound("subscriber"))?;
    let subscriber = subscribers::get(&state.ctx, id).await?;
    let typed = body.first("confirm_email").unwrap_or_default();
    if !typed.trim().eq_ignore_ascii_case(subscriber.email.trim()) {
        return Err(ServiceError::Invalid(vec![FieldError::new(
            "confirm_email",
            "type the subscriber's address exactly to confirm the erasure",
        )])
        .into());
    }
    let erased =
        privacy_ops::erase(&state.ctx.store, &state.ctx.clock, &state.ctx.address_key, id, &me.actor()).await?;
    tracing::info!(organiser = %me.id, subscriber = %erased.id, "subscriber erased from the admin UI");
    Ok(Redirect::to("/admin/subscribers?notice=erased").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_urls_keep_the_filters_and_encode_them() {
        let input = SearchInput {
            q: Some("a&b".into()),
            status: Some("confirmed".into()),
            list: Some(String::new()),
            ..SearchInput::default()
        };
        assert_eq!(search_url(&input, None), "/admin/subscribers?q=a%26b&status=confirmed");
        assert_eq!(search_url(&input, Some("c1")), "/admin/subscribers?q=a%26b&status=confirmed&cursor=c1");
    }
}

/// A fixed message a redirect may ask the search page to show.
#[derive(Debug, serde::Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}
