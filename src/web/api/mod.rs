//! The organiser JSON API under `/api/v1` (README, "Organiser API"). Every route needs
//! `Authorization: Bearer TOKEN`; errors are always JSON.
//!
//! Each handler carries a `#[utoipa::path]` describing it; `openapi` builds
//! `GET /api/v1/openapi.json` from them, and a test proves every route in
//! [`routes`] is described with exactly the methods it answers.

use super::imports_api;
use super::input::{Client, client_ip};
use super::{AppState, WebError};
use super::{records_api, schedules_api};
use crate::domain::Actor;
use crate::services::audit::{self, Action, Who};
use crate::services::consent::ConsentEventView;
use crate::services::directory::SubscriberPage;
use crate::services::lists::{ListInput, ListView};
use crate::services::privacy_ops::SubscriberExport;
use crate::services::subscribers::{AddSubscriberInput, SubscriberView};
use crate::services::{ServiceError, accounts, consent, lists, privacy_ops, subscribers, updates};
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, MatchedPath, OriginalUri, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
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
        ("/subscribers/{id}", get(get_subscriber).patch(rectify_subscriber).delete(delete_subscriber)),
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
        ("/audit-log", get(records_api::audit_log)),
        ("/rights-requests", get(records_api::rights_requests).post(records_api::create_rights_request)),
        ("/rights-requests/{id}", get(records_api::rights_request).patch(records_api::change_rights_request)),
        ("/openapi.json", get(super::openapi::document)),
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
        .layer(axum::middleware::from_fn(json_errors))
}

/// Errors axum answers itself (a path or query it cannot decode, a method a
/// route does not take) come as plain text: give them the API's JSON error
/// shape too, keeping their status and headers (`Allow` on a 405).
async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        s if s.is_server_error() => "internal",
        _ => "error",
    };
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("error").to_owned(),
        t => t.to_owned(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut res = (parts.status, Json(super::error::ErrorBody::new(code, message))).into_response();
    for (name, value) in parts.headers.iter().filter(|(n, _)| *n != header::CONTENT_TYPE) {
        res.headers_mut().insert(name, value.clone());
    }
    res
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
            let actor = Actor::ApiToken(row.id);
            req.extensions_mut().insert(Caller(actor.clone()));
            if matches!(*req.method(), Method::GET | Method::HEAD) {
                return next.run(req).await;
            }
            // Every state-changing call is audited once answered.
            let ip = client_ip(req.headers(), req.extensions(), &state.ctx.config).map(|ip| ip.to_string());
            let route = req.extensions().get::<MatchedPath>().map_or(req.uri().path(), MatchedPath::as_str);
            let what = format!("{} {route}", req.method());
            let target = req.extensions().get::<OriginalUri>().map_or(req.uri().path(), |u| u.0.path()).to_owned();
            let res = next.run(req).await;
            let who = Who { actor: actor.to_db(), label: row.name, ip };
            let action = Action { what: &what, target: &target, status: res.status().as_u16(), detail: String::new() };
            audit::record_or_log(&state.ctx.store, &state.ctx.clock, &who, action).await;
            res
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

#[utoipa::path(
    get,
    path = "/api/v1/lists",
    tag = "lists",
    operation_id = "list_lists",
    responses((status = 200, description = "Every list", body = Vec<ListView>))
)]
async fn all_lists(State(s): State<AppState>) -> Result<Response> {
    Ok(Json(lists::all(&s.ctx).await.map_err(service)?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/lists",
    tag = "lists",
    operation_id = "create_list",
    request_body = ListInput,
    responses((status = 201, description = "The new list", body = ListView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
async fn create_list(State(s): State<AppState>, ApiJson(input): ApiJson<ListInput>) -> Result<Response> {
    let list = lists::create(&s.ctx, &input).await.map_err(service)?;
    Ok((StatusCode::CREATED, Json(list)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/lists/{id}",
    tag = "lists",
    operation_id = "get_list",
    params(("id" = String, Path, description = "The list's id or slug")),
    responses((status = 200, description = "The list", body = ListView))
)]
async fn get_list(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(lists::get(&s.ctx, &id).await.map_err(service)?).into_response())
}

#[utoipa::path(
    method(patch, put),
    path = "/api/v1/lists/{id}",
    tag = "lists",
    operation_id = "update_list",
    request_body = ListInput,
    params(("id" = String, Path, description = "The list's id or slug")),
    responses((status = 200, description = "The changed list", body = ListView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
async fn update_list(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ListInput>,
) -> Result<Response> {
    Ok(Json(lists::update(&s.ctx, &id, &input).await.map_err(service)?).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/lists/{id}",
    tag = "lists",
    operation_id = "delete_list",
    params(("id" = String, Path, description = "The list's id or slug")),
    responses((status = 204, description = "Deleted"))
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/subscribers",
    tag = "subscribers",
    operation_id = "find_subscribers",
    params(("email" = Option<String>, Query, description = "Find one subscriber by address"), ("list" = Option<String>, Query, description = "Only subscribers of this list (slug or id)"), ("status" = Option<String>, Query, description = "Only this subscription status"), ("q" = Option<String>, Query, description = "A substring of the address"), ("created_from" = Option<String>, Query, description = "YYYY-MM-DD or RFC 3339, inclusive"), ("created_to" = Option<String>, Query, description = "YYYY-MM-DD or RFC 3339, inclusive"), ("cursor" = Option<String>, Query, description = "The `next` value of the previous page"), ("limit" = Option<String>, Query, description = "Page size, 1 to 500 (default 50)")),
    responses((status = 200, description = "With `email`: that subscriber (a SubscriberView); otherwise a page of subscribers (a SubscriberPage)", body = SubscriberLookup), (status = 404, description = "No subscriber has that address", body = crate::web::error::ErrorBody), (status = 422, description = "Invalid fields", body = crate::web::error::ErrorBody))
)]
async fn find_subscriber(
    State(s): State<AppState>,
    Query(q): Query<SubscriberQuery>,
    Query(search): Query<crate::services::directory::SearchInput>,
) -> Result<Response> {
    let found = match q.email {
        Some(email) => SubscriberLookup::One(subscribers::find_by_email(&s.ctx, &email).await.map_err(service)?),
        None => SubscriberLookup::Page(crate::services::directory::search(&s.ctx, &search).await.map_err(service)?),
    };
    Ok(Json(found).into_response())
}

/// `GET /subscribers` answers one subscriber (`?email=`) or a page.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum SubscriberLookup {
    One(SubscriberView),
    Page(SubscriberPage),
}

#[utoipa::path(
    post,
    path = "/api/v1/subscribers",
    tag = "subscribers",
    operation_id = "add_subscriber",
    request_body = AddSubscriberInput,
    responses(
        (status = 201, description = "Created", body = SubscriberView),
        (status = 200, description = "The address was already known; its subscriptions were extended", body = SubscriberView),
        (status = 409, description = "The person withdrew, bounced or complained (code `withdrawn`) or the address is suppressed (code `suppressed`): nothing changed, nothing mailed", body = crate::web::error::ErrorBody)
    )
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{id}",
    tag = "subscribers",
    operation_id = "get_subscriber",
    params(("id" = String, Path, description = "The subscriber's id (uuid)")),
    responses((status = 200, description = "The subscriber", body = SubscriberView))
)]
async fn get_subscriber(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(subscribers::get(&s.ctx, parse_id(&id)?).await.map_err(service)?).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{id}/consent",
    tag = "subscribers",
    operation_id = "consent_ledger",
    params(("id" = String, Path, description = "The subscriber's id (uuid)")),
    responses((status = 200, description = "The consent ledger, oldest first", body = Vec<ConsentEventView>))
)]
async fn consent_ledger(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(consent::ledger(&s.ctx, parse_id(&id)?).await.map_err(service)?).into_response())
}

#[derive(serde::Deserialize)]
struct ExportQuery {
    format: Option<String>,
}

/// A copy of everything held about one subscriber: JSON, or CSV with
/// `?format=csv` or `Accept: text/csv`.
#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{id}/export",
    tag = "subscribers",
    operation_id = "export_subscriber",
    params(("id" = String, Path, description = "The subscriber's id (uuid)"), ("format" = Option<String>, Query, description = "`csv` for CSV")),
    responses((status = 200, description = "Everything held about the subscriber (CSV with ?format=csv or Accept: text/csv)", body = SubscriberExport))
)]
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
    let export =
        privacy_ops::export(&s.ctx.store, &s.ctx.clock, &s.ctx.config.group_name, id).await.map_err(service)?;
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

/// Corrects a subscriber's address, name or attributes (rectification):
/// the ledger, subscriptions and deliveries stay linked.
#[utoipa::path(
    patch,
    path = "/api/v1/subscribers/{id}",
    tag = "subscribers",
    operation_id = "rectify_subscriber",
    request_body = subscribers::RectifyInput,
    params(("id" = String, Path, description = "The subscriber's id (uuid)")),
    responses(
        (status = 200, description = "The corrected subscriber", body = SubscriberView),
        (status = 409, description = "Another subscriber has that address", body = crate::web::error::ErrorBody),
    )
)]
async fn rectify_subscriber(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<subscribers::RectifyInput>,
) -> Result<Response> {
    Ok(Json(subscribers::rectify(&s.ctx, parse_id(&id)?, &input).await.map_err(service)?).into_response())
}

/// `DELETE` is erasure, as `POST …/erase`.
#[utoipa::path(
    delete,
    path = "/api/v1/subscribers/{id}",
    tag = "subscribers",
    operation_id = "delete_subscriber",
    params(("id" = String, Path, description = "The subscriber's id (uuid)")),
    responses((status = 200, description = "Erased; only a suppression entry remains", body = Erased))
)]
async fn delete_subscriber(state: State<AppState>, caller: Extension<Caller>, id: Path<String>) -> Result<Response> {
    erase_subscriber(state, caller, id).await
}

/// Erases a subscriber, keeping only a suppression entry; `404` if unknown
/// (so a second call is a 404).
#[utoipa::path(
    post,
    path = "/api/v1/subscribers/{id}/erase",
    tag = "subscribers",
    operation_id = "erase_subscriber",
    params(("id" = String, Path, description = "The subscriber's id (uuid)")),
    responses((status = 200, description = "Erased; only a suppression entry remains", body = Erased))
)]
async fn erase_subscriber(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response> {
    let erased = privacy_ops::erase(&s.ctx.store, &s.ctx.clock, &s.ctx.address_key, parse_id(&id)?, &actor)
        .await
        .map_err(service)?;
    Ok(Json(Erased { id: erased.id, erased: true, suppressed: erased.suppressed, removed: erased.removed })
        .into_response())
}

/// What `POST /subscribers/{id}/erase` did.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Erased {
    id: Uuid,
    /// Always true.
    erased: bool,
    /// The address is on the suppression list (always true afterwards).
    suppressed: bool,
    removed: crate::store::ErasureCounts,
}

#[utoipa::path(
    get,
    path = "/api/v1/privacy-notices",
    tag = "consent",
    operation_id = "current_privacy_notice",
    responses((status = 200, description = "The privacy notice in force", body = consent::NoticeView), (status = 404, description = "No notice is in force", body = crate::web::error::ErrorBody))
)]
async fn current_notice(State(s): State<AppState>) -> Result<Response> {
    Ok(Json(consent::current_notice(&s.ctx).await.map_err(service)?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/privacy-notices",
    tag = "consent",
    operation_id = "publish_privacy_notice",
    request_body = consent::NoticeInput,
    responses((status = 201, description = "The new version", body = consent::NoticeView))
)]
async fn publish_notice(State(s): State<AppState>, ApiJson(input): ApiJson<consent::NoticeInput>) -> Result<Response> {
    Ok((StatusCode::CREATED, Json(consent::publish_notice(&s.ctx, &input).await.map_err(service)?)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/consent-statements",
    tag = "consent",
    operation_id = "current_consent_statements",
    responses((status = 200, description = "Each list's consent statement in force", body = Vec<consent::StatementView>))
)]
async fn current_statements(State(s): State<AppState>) -> Result<Response> {
    Ok(Json(consent::current_statements(&s.ctx).await.map_err(service)?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/consent-statements",
    tag = "consent",
    operation_id = "publish_consent_statement",
    request_body = consent::StatementInput,
    responses((status = 201, description = "The new version", body = consent::StatementView), (status = 404, description = "No such list", body = crate::web::error::ErrorBody), (status = 422, description = "`wording_warning`: the wording does not name the group or mentions partners/third parties; `error.warnings` says why. Send `\"acknowledge_warnings\": true` to publish anyway (recorded in the audit log)", body = serde_json::Value))
)]
async fn publish_statement(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    client: Client,
    ApiJson(input): ApiJson<consent::StatementInput>,
) -> Result<Response> {
    let who = Who { actor: actor.to_db(), label: actor.to_db(), ip: client.meta().ip };
    match consent::publish_statement(&s.ctx, &input, &who).await {
        Ok(view) => Ok((StatusCode::CREATED, Json(view)).into_response()),
        // The warnings as a list, beside the usual error shape.
        Err(ServiceError::WordingWarning(warnings)) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({ "error": {
                "code": "wording_warning",
                "message": "The wording needs your acknowledgement: send it again with \"acknowledge_warnings\": true to publish it.",
                "warnings": warnings,
            }})),
        )
            .into_response()),
        Err(e) => Err(service(e)),
    }
}

fn update_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| WebError::new(StatusCode::NOT_FOUND, "not_found", "No such update."))
}

#[utoipa::path(
    get,
    path = "/api/v1/updates",
    tag = "updates",
    operation_id = "list_updates",
    responses((status = 200, description = "The 100 most recent updates", body = Vec<updates::UpdateView>))
)]
async fn recent_updates(State(s): State<AppState>) -> Result<Response> {
    Ok(Json(updates::recent(&s.ctx, 100).await.map_err(service)?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/updates",
    tag = "updates",
    operation_id = "create_update",
    request_body = updates::UpdateInput,
    responses((status = 201, description = "The new draft", body = updates::UpdateView), (status = 404, description = "A list does not exist", body = crate::web::error::ErrorBody))
)]
async fn create_update(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    ApiJson(input): ApiJson<updates::UpdateInput>,
) -> Result<Response> {
    Ok((StatusCode::CREATED, Json(updates::create(&s.ctx, &input, &actor).await.map_err(service)?)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/updates/{id}",
    tag = "updates",
    operation_id = "get_update",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "The update", body = updates::UpdateView))
)]
async fn get_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::get(&s.ctx, update_id(&id)?).await.map_err(service)?).into_response())
}

#[utoipa::path(
    method(patch, put),
    path = "/api/v1/updates/{id}",
    tag = "updates",
    operation_id = "edit_update",
    request_body = updates::UpdateInput,
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "The changed update", body = updates::UpdateView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
async fn edit_update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<updates::UpdateInput>,
) -> Result<Response> {
    // An API token has full power, sending included, so an edit through
    // the API leaves a scheduled update scheduled.
    let edited = updates::edit(&s.ctx, update_id(&id)?, &input, true).await.map_err(service)?;
    Ok(Json(edited.update).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/updates/{id}",
    tag = "updates",
    operation_id = "delete_update",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 204, description = "Deleted"), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
async fn delete_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    updates::delete(&s.ctx, update_id(&id)?).await.map_err(service)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/updates/{id}/preview",
    tag = "updates",
    operation_id = "preview_update",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "The email as a sample supporter gets it", body = updates::Preview))
)]
async fn preview_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::preview(&s.ctx, update_id(&id)?).await.map_err(service)?).into_response())
}

/// Where to send test copies.
#[derive(serde::Deserialize, utoipa::ToSchema)]
struct TestInput {
    #[serde(default)]
    #[schema(example = json!(["organiser@example.org"]))]
    emails: Vec<String>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct TestQueued {
    /// How many test copies were queued.
    queued: usize,
    /// Addresses given that got no copy: suppressed (erased, complained,
    /// hard-bounced) or withdrawn (unsubscribed from everything, complained,
    /// or left every list), as typed.
    skipped: Vec<String>,
    /// Of `skipped`, those on the suppression list.
    suppressed: Vec<String>,
    /// Of `skipped`, those who withdrew.
    withdrawn: Vec<String>,
}

/// The 429 answer when an organiser's hourly test-send cap is reached.
pub(super) fn test_cap_message(cap: u32, left: u32) -> String {
    format!(
        "The test-send limit is {cap} copies an hour for each organiser, and {left} are left this hour: \
         nothing was sent. Try again later with fewer addresses."
    )
}

#[utoipa::path(
    post,
    path = "/api/v1/updates/{id}/test",
    tag = "updates",
    operation_id = "test_update",
    request_body = TestInput,
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses(
        (status = 202, description = "Test copies queued; suppressed and withdrawn addresses skipped", body = TestQueued),
        (status = 422, description = "No address, more than 10, or one that is not an address", body = crate::web::error::ErrorBody),
        (status = 429, description = "The hourly test-send cap (TIDINGS_TEST_SEND_HOURLY_CAP) is reached", body = crate::web::error::ErrorBody)
    )
)]
async fn test_update(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<TestInput>,
) -> Result<Response> {
    match updates::test_send(&s.ctx, update_id(&id)?, &input.emails, &actor).await.map_err(service)? {
        updates::TestSend::Queued { queued, skipped } => {
            let which = |reason: &str| -> Vec<String> {
                skipped.iter().filter(|s| s.reason == reason).map(|s| s.email.clone()).collect()
            };
            let answer = TestQueued {
                queued,
                suppressed: which("suppressed"),
                withdrawn: which("withdrawn"),
                skipped: skipped.iter().map(|s| s.email.clone()).collect(),
            };
            Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
        }
        updates::TestSend::CapReached { cap, left } => {
            let mut res = WebError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", test_cap_message(cap, left))
                .into_response();
            res.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("3600"));
            Ok(res)
        }
    }
}

/// When to send; no body, or no `at`, sends now.
#[derive(serde::Deserialize, Default, utoipa::ToSchema)]
struct SendInput {
    #[schema(example = "2030-01-07T09:00:00Z")]
    at: Option<chrono::DateTime<chrono::Utc>>,
    /// Send although sender authentication fails (admins only; API tokens
    /// are admins). Recorded in the audit log.
    #[serde(default)]
    override_authentication: bool,
}

/// The 409 answer of a send refused by sender authentication: the usual
/// error, plus every failed check.
#[derive(serde::Serialize)]
struct SenderAuthBody {
    error: SenderAuthDetail,
}

#[derive(serde::Serialize)]
struct SenderAuthDetail {
    code: &'static str,
    message: String,
    checks: Vec<crate::services::sender_auth::Check>,
}

/// `{"at": RFC3339}` schedules; an empty body or no `at` sends now.
#[utoipa::path(
    post,
    path = "/api/v1/updates/{id}/send",
    tag = "updates",
    operation_id = "send_update",
    request_body = Option<SendInput>,
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 202, description = "Sending, or scheduled for `at`", body = updates::UpdateView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
async fn send_update(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
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
    // API tokens are full power today, so a token may override.
    let request =
        updates::SendRequest { at: input.at, override_authentication: input.override_authentication, actor: &actor };
    match updates::send(&s.ctx, update_id(&id)?, &request).await {
        Ok(view) => Ok((StatusCode::ACCEPTED, Json(view)).into_response()),
        Err(ServiceError::SenderAuthentication(report)) => {
            let message = format!(
                "Not sent: sender authentication fails ({}). Fix the records (see `tidings check`), or send with \
                 \"override_authentication\": true.",
                report.summary()
            );
            let checks = report.failures().into_iter().cloned().collect();
            let body = SenderAuthBody { error: SenderAuthDetail { code: "sender_authentication", message, checks } };
            Ok((StatusCode::CONFLICT, Json(body)).into_response())
        }
        Err(e) => Err(service(e)),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/updates/{id}/pause",
    tag = "updates",
    operation_id = "pause_update",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "Paused", body = updates::UpdateView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
async fn pause_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::pause(&s.ctx, update_id(&id)?).await.map_err(service)?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/updates/{id}/resume",
    tag = "updates",
    operation_id = "resume_update",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "Sending again", body = updates::UpdateView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
async fn resume_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::resume(&s.ctx, update_id(&id)?).await.map_err(service)?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/updates/{id}/cancel",
    tag = "updates",
    operation_id = "cancel_update",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "Cancelled", body = updates::UpdateView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
async fn cancel_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::cancel(&s.ctx, update_id(&id)?).await.map_err(service)?).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/updates/{id}/stats",
    tag = "updates",
    operation_id = "update_stats",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "Deliveries by status, with complaint and hard-bounce figures", body = crate::services::updates::UpdateStats))
)]
async fn update_stats(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::stats(&s.ctx, update_id(&id)?).await.map_err(service)?).into_response())
}

#[derive(serde::Deserialize)]
struct PageQuery {
    cursor: Option<Uuid>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/updates/{id}/deliveries",
    tag = "updates",
    operation_id = "update_deliveries",
    params(("id" = String, Path, description = "The update's id (uuid)"), ("cursor" = Option<uuid::Uuid>, Query, description = "The `next` value of the previous page"), ("limit" = Option<i64>, Query, description = "Page size, 1 to 1000 (default 100)")),
    responses((status = 200, description = "A page of the per-recipient record", body = DeliveriesPage))
)]
async fn update_deliveries(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response> {
    let (deliveries, next) =
        updates::deliveries(&s.ctx, update_id(&id)?, q.cursor, q.limit.unwrap_or(100)).await.map_err(service)?;
    Ok(Json(DeliveriesPage { deliveries, next }).into_response())
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct DeliveriesPage {
    deliveries: Vec<updates::DeliveryView>,
    /// The cursor of the next page, if there may be one.
    next: Option<Uuid>,
}
