//! The organiser JSON API under `/api/v1` (DESIGN §4). Every route needs
//! `Authorization: Bearer TOKEN`; errors are always JSON.

use super::imports_api;
use super::input::Client;
use super::schedules_api;
use super::{AppState, WebError};
use crate::domain::Actor;
use crate::services::lists::ListInput;
use crate::services::subscribers::AddSubscriberInput;
use crate::services::{ServiceError, accounts, consent, lists, privacy_ops, subscribers, updates};
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Json, Router};
use uuid::Uuid;

/// Every API route, once. The router is built from this table alone, so
/// tests can enumerate it and prove each route refuses anonymous callers.
fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/lists", get(all_lists).post(create_list)),
        ("/lists/{id}", get(get_list).patch(update_list).put(update_list).delete(delete_list)),
        ("/subscribers", get(find_subscriber).post(add_subscriber)),
        ("/subscribers/{id}", get(get_subscriber)),
        ("/subscribers/{id}/consent", get(consent_ledger)),
        ("/subscribers/{id}/export", get(export_subscriber)),
        ("/subscribers/{id}/erase", post(erase_subscriber)),
        ("/updates", get(recent_updates).post(create_update)),
        ("/updates/{id}", get(get_update).patch(edit_update).put(edit_update).delete(delete_update)),
        ("/updates/{id}/preview", get(preview_update)),
        ("/updates/{id}/test", post(test_update)),
        ("/updates/{id}/send", post(send_update)),
        ("/updates/{id}/pause", post(pause_update)),
        ("/updates/{id}/resume", post(resume_update)),
        ("/updates/{id}/cancel", post(cancel_update)),
        ("/updates/{id}/stats", get(update_stats)),
        ("/updates/{id}/deliveries", get(update_deliveries)),
        ("/privacy-notices", get(current_notice).post(publish_notice)),
        ("/consent-statements", get(current_statements).post(publish_statement)),
        ("/schedules", get(schedules_api::all).post(schedules_api::create)),
        ("/schedules/{id}", get(schedules_api::get).patch(schedules_api::edit).delete(schedules_api::delete)),
        // Uploads are streamed with their own limit (TIDINGS_IMPORT_MAX_BYTES).
        ("/imports", get(imports_api::all).post(imports_api::create).layer(DefaultBodyLimit::disable())),
        ("/imports/{id}", get(imports_api::get)),
        ("/lists/{id}/export", get(imports_api::export_list)),
    ]
}

/// The path of every API route (under `/api/v1`).
pub fn paths() -> Vec<&'static str> {
    routes().into_iter().map(|(path, _)| path).collect()
}

pub fn router(state: AppState) -> Router<AppState> {
    let mut router = Router::new();
    for (path, handler) in routes() {
        router = router.route(path, handler);
    }
    router
        .fallback(not_found)
        // Authentication wraps every route above, and the fallback too, so
        // an anonymous caller learns nothing about which routes exist.
        .layer(axum::middleware::from_fn_with_state(state, require_token))
}

type Result<T, E = WebError> = std::result::Result<T, E>;

pub(super) fn service(e: ServiceError) -> WebError {
    WebError::from_service(e, true)
}

/// The organiser behind the request, set by [`require_token`].
#[derive(Debug, Clone)]
pub(super) struct Caller(pub(super) Actor);

async fn require_token(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let token = match bearer {
        Some(b) => accounts::authenticate_token(&state.ctx, b).await,
        None => Ok(None),
    };
    match token {
        Ok(Some(row)) => {
            req.extensions_mut().insert(Caller(Actor::ApiToken(row.id)));
            next.run(req).await
        }
        Ok(None) => {
            let mut res = WebError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "A valid API token is required (Authorization: Bearer TOKEN).",
            )
            .into_response();
            res.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            res
        }
        Err(e) => service(e).into_response(),
    }
}

async fn not_found() -> WebError {
    WebError::new(StatusCode::NOT_FOUND, "not_found", "No such API route.")
}

/// `Json<T>` whose rejections are our JSON errors.
pub(super) struct ApiJson<T>(pub(super) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(WebError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.body_text()))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(WebError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send Content-Type: application/json.",
            )),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(WebError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "The request is too large."))
            }
            Err(_) => Err(WebError::new(StatusCode::BAD_REQUEST, "bad_request", "The request body is not valid JSON.")),
        }
    }
}

async fn all_lists(State(s): State<AppState>) -> Result<Response> {
    Ok(Json(lists::all(&s.ctx).await.map_err(service)?).into_response())
}

async fn create_list(State(s): State<AppState>, ApiJson(input): ApiJson<ListInput>) -> Result<Response> {
    let list = lists::create(&s.ctx, &input).await.map_err(service)?;
    Ok((StatusCode::CREATED, Json(list)).into_response())
}

async fn get_list(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(lists::get(&s.ctx, &id).await.map_err(service)?).into_response())
}

async fn update_list(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ListInput>,
) -> Result<Response> {
    Ok(Json(lists::update(&s.ctx, &id, &input).await.map_err(service)?).into_response())
}

async fn delete_list(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    lists::delete(&s.ctx, &id).await.map_err(service)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(serde::Deserialize)]
struct SubscriberQuery {
    email: Option<String>,
}

/// `?email=E` finds one subscriber by address (404 if none). Without it, a
/// page of subscribers, newest first: `{"subscribers": […], "next": cursor
/// or null}`, filtered by `list`, `status`, `q`, `created_from`,
/// `created_to`, continued with `cursor`, at most `limit` (≤ 500) long.
async fn find_subscriber(
    State(s): State<AppState>,
    Query(q): Query<SubscriberQuery>,
    Query(search): Query<crate::services::directory::SearchInput>,
) -> Result<Response> {
    match q.email {
        Some(email) => Ok(Json(subscribers::find_by_email(&s.ctx, &email).await.map_err(service)?).into_response()),
        None => Ok(Json(crate::services::directory::search(&s.ctx, &search).await.map_err(service)?).into_response()),
    }
}

async fn add_subscriber(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    client: Client,
    ApiJson(input): ApiJson<AddSubscriberInput>,
) -> Result<Response> {
    let (view, created) = subscribers::add(&s.ctx, &input, actor, &client.meta()).await.map_err(service)?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view)).into_response())
}

fn parse_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| WebError::new(StatusCode::NOT_FOUND, "not_found", "No such subscriber."))
}

async fn get_subscriber(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(subscribers::get(&s.ctx, parse_id(&id)?).await.map_err(service)?).into_response())
}

async fn consent_ledger(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(consent::ledger(&s.ctx, parse_id(&id)?).await.map_err(service)?).into_response())
}

#[derive(serde::Deserialize)]
struct ExportQuery {
    format: Option<String>,
}

/// A copy of everything held about one subscriber: JSON, or CSV with
/// `?format=csv` or `Accept: text/csv`.
async fn export_subscriber(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let wants_csv = match q.format.as_deref() {
        Some(f) => f.eq_ignore_ascii_case("csv"),
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/csv")),
    };
    let export = privacy_ops::export(&s.ctx.store, &s.ctx.clock, id).await.map_err(service)?;
    if !wants_csv {
        return Ok(Json(export).into_response());
    }
    let csv = privacy_ops::export_csv(&export).map_err(|e| {
        tracing::error!(error = %e, "writing a data copy as CSV failed");
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side. Please try again.",
        )
    })?;
    let disposition = format!("attachment; filename=\"subscriber-{id}.csv\"");
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        csv,
    )
        .into_response())
}

/// Erases a subscriber, keeping only a suppression entry; `404` if unknown
/// (so a second call is a 404).
async fn erase_subscriber(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response> {
    let erased = privacy_ops::erase(&s.ctx.store, &s.ctx.clock, parse_id(&id)?, &actor).await.map_err(service)?;
    Ok(Json(serde_json::json!({ "id": erased.id, "erased": true, "suppressed": erased.suppressed, "removed": erased.removed }))
        .into_response())
}

async fn current_notice(State(s): State<AppState>) -> Result<Response> {
    Ok(Json(consent::current_notice(&s.ctx).await.map_err(service)?).into_response())
}

async fn publish_notice(State(s): State<AppState>, ApiJson(input): ApiJson<consent::NoticeInput>) -> Result<Response> {
    Ok((StatusCode::CREATED, Json(consent::publish_notice(&s.ctx, &input).await.map_err(service)?)).into_response())
}

async fn current_statements(State(s): State<AppState>) -> Result<Response> {
    Ok(Json(consent::current_statements(&s.ctx).await.map_err(service)?).into_response())
}

async fn publish_statement(
    State(s): State<AppState>,
    ApiJson(input): ApiJson<consent::StatementInput>,
) -> Result<Response> {
    Ok((StatusCode::CREATED, Json(consent::publish_statement(&s.ctx, &input).await.map_err(service)?)).into_response())
}

fn update_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| WebError::new(StatusCode::NOT_FOUND, "not_found", "No such update."))
}

async fn recent_updates(State(s): State<AppState>) -> Result<Response> {
    Ok(Json(updates::recent(&s.ctx, 100).await.map_err(service)?).into_response())
}

async fn create_update(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    ApiJson(input): ApiJson<updates::UpdateInput>,
) -> Result<Response> {
    Ok((StatusCode::CREATED, Json(updates::create(&s.ctx, &input, &actor).await.map_err(service)?)).into_response())
}

async fn get_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::get(&s.ctx, update_id(&id)?).await.map_err(service)?).into_response())
}

async fn edit_update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<updates::UpdateInput>,
) -> Result<Response> {
    Ok(Json(updates::edit(&s.ctx, update_id(&id)?, &input).await.map_err(service)?).into_response())
}

async fn delete_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    updates::delete(&s.ctx, update_id(&id)?).await.map_err(service)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn preview_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::preview(&s.ctx, update_id(&id)?).await.map_err(service)?).into_response())
}

#[derive(serde::Deserialize)]
struct TestInput {
    #[serde(default)]
    emails: Vec<String>,
}

async fn test_update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<TestInput>,
) -> Result<Response> {
    let queued = updates::test_send(&s.ctx, update_id(&id)?, &input.emails).await.map_err(service)?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "queued": queued }))).into_response())
}

#[derive(serde::Deserialize, Default)]
struct SendInput {
    at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `{"at": RFC3339}` schedules; an empty body or no `at` sends now.
async fn send_update(State(s): State<AppState>, Path(id): Path<String>, body: axum::body::Bytes) -> Result<Response> {
    let input: SendInput = if body.iter().all(u8::is_ascii_whitespace) {
        SendInput::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            WebError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("expected {{\"at\": RFC 3339 time}}: {e}"),
            )
        })?
    };
    let view = updates::send(&s.ctx, update_id(&id)?, input.at).await.map_err(service)?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

async fn pause_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::pause(&s.ctx, update_id(&id)?).await.map_err(service)?).into_response())
}

async fn resume_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::resume(&s.ctx, update_id(&id)?).await.map_err(service)?).into_response())
}

async fn cancel_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::cancel(&s.ctx, update_id(&id)?).await.map_err(service)?).into_response())
}

async fn update_stats(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::stats(&s.ctx, update_id(&id)?).await.map_err(service)?).into_response())
}

#[derive(serde::Deserialize)]
struct PageQuery {
    cursor: Option<Uuid>,
    limit: Option<i64>,
}

async fn update_deliveries(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response> {
    let (deliveries, next) =
        updates::deliveries(&s.ctx, update_id(&id)?, q.cursor, q.limit.unwrap_or(100)).await.map_err(service)?;
    Ok(Json(serde_json::json!({ "deliveries": deliveries, "next": next })).into_response())
}
