//! Finding subscribers (filters and keyset pages) and one subscriber's
//! page with their subscriptions and consent ledger.

use super::auth::{CsrfToken, Organiser};
use super::error::AdminError;
use super::pages::{Choice, Chrome, SubscriberPage, SubscribersPage};
use crate::domain::SubscriptionStatus;
use crate::services::directory::{self, SearchInput};
use crate::services::{ServiceError, consent, lists, subscribers};
use crate::web::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
