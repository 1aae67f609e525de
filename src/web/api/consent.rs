//! `/api/v1/privacy-notices` and `/api/v1/consent-statements`: the wording
//! supporters agree to, published as new versions (never changed).

use super::auth::Caller;
use super::{ApiJson, Result, Routes};
use crate::services::ServiceError;
use crate::services::audit::Who;
use crate::services::consent;
use crate::web::AppState;
use crate::web::input::Client;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json};

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/privacy-notices", get(current_notice).post(publish_notice))
        .route("/consent-statements", get(current_statements).post(publish_statement))
}

#[utoipa::path(
    get,
    path = "/api/v1/privacy-notices",
    tag = "consent",
    operation_id = "current_privacy_notice",
    responses((status = 200, description = "The privacy notice in force", body = consent::NoticeView), (status = 404, description = "No notice is in force", body = crate::web::error::ErrorBody))
)]
pub(super) async fn current_notice(State(s): State<AppState>) -> Result<Response> {
    Ok(Json(consent::current_notice(&s.ctx).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/privacy-notices",
    tag = "consent",
    operation_id = "publish_privacy_notice",
    request_body = consent::NoticeInput,
    responses((status = 201, description = "The new version", body = consent::NoticeView))
)]
pub(super) async fn publish_notice(
    State(s): State<AppState>,
    ApiJson(input): ApiJson<consent::NoticeInput>,
) -> Result<Response> {
    Ok((StatusCode::CREATED, Json(consent::publish_notice(&s.ctx, &input).await?)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/consent-statements",
    tag = "consent",
    operation_id = "current_consent_statements",
    responses((status = 200, description = "Each list's consent statement in force", body = Vec<consent::StatementView>))
)]
pub(super) async fn current_statements(State(s): State<AppState>) -> Result<Response> {
    Ok(Json(consent::current_statements(&s.ctx).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/consent-statements",
    tag = "consent",
    operation_id = "publish_consent_statement",
    request_body = consent::StatementInput,
    responses((status = 201, description = "The new version", body = consent::StatementView), (status = 404, description = "No such list", body = crate::web::error::ErrorBody), (status = 422, description = "`wording_warning`: the wording does not name the group or mentions partners/third parties; `error.warnings` says why. Send `\"acknowledge_warnings\": true` to publish anyway (recorded in the audit log)", body = serde_json::Value))
)]
pub(super) async fn publish_statement(
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
        Err(e) => Err(e.into()),
    }
}
