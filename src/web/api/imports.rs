//! `/api/v1/imports`: CSV imports run as background jobs.
//!
//! `POST /imports` takes `multipart/form-data`: `file` (the CSV), `list`
//! (repeatable slugs), `basis`, `status`, and optionally `email_column`,
//! `name_column`, `first_name_column`, `last_name_column`. The file is
//! streamed into the database as it arrives (up to
//! `TIDINGS_IMPORT_MAX_BYTES`; this route alone lifts the API's small body
//! limit and its 30-second request timeout, see `web::request_timeout`), and
//! the answer is `202` with the queued import; a worker runs it.

use super::auth::Caller;
use super::{ApiError, Result, Routes, uuid_of};
use crate::services::imports::{self, UploadError};
use crate::web::AppState;
use crate::web::input::Client;
use crate::web::upload::{FormError, read_import_form};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Extension, Json};

pub(super) fn router() -> Routes {
    Routes::new()
        // Uploads are streamed with their own limit (TIDINGS_IMPORT_MAX_BYTES).
        .route("/imports", routing::get(all).post(create).layer(DefaultBodyLimit::disable()))
        .route("/imports/{id}", routing::get(get))
}

impl From<FormError> for ApiError {
    fn from(e: FormError) -> Self {
        match e {
            FormError::Bad(status, message) => ApiError::new(status, "bad_request", message),
            FormError::Upload(UploadError::TooLarge(limit)) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("The file is larger than the limit of {limit} bytes (TIDINGS_IMPORT_MAX_BYTES)."),
            ),
            FormError::Upload(UploadError::Service(e)) => e.into(),
        }
    }
}

/// A multipart upload (`file`, `list` (repeatable), `basis`, `status`,
/// optional column mapping) that becomes a background import job.
#[utoipa::path(
    post,
    path = "/api/v1/imports",
    tag = "imports",
    operation_id = "create_import",
    request_body(content = String, content_type = "multipart/form-data", description = "Fields `file` (the CSV), `list` (one or more slugs), `basis`, `status` (`confirmed` or `pending`), and optional column names"),
    responses(
        (status = 202, description = "The import job, queued (see its Location)", body = serde_json::Value),
        (status = 422, description = "Invalid fields", body = crate::web::error::ErrorBody),
    )
)]
pub(super) async fn create(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    client: Client,
    req: Request,
) -> Result<Response> {
    let mut multipart = Multipart::from_request(req, &s).await.map_err(|_| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send multipart/form-data with a `file` field.",
        )
    })?;
    let (request, upload) = read_import_form(&s.ctx, &mut multipart, &actor, &client.meta()).await?;
    let Some(upload) = upload else {
        let field = crate::services::FieldError::new("file", "send the CSV file in a `file` field");
        return Err(crate::services::ServiceError::Invalid(vec![field]).into());
    };
    let view = upload.finish(&s.ctx, &request).await.map_err(FormError::Upload)?;
    let location = format!("/api/v1/imports/{}", view.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(view)).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct ListQuery {
    limit: Option<i64>,
}

/// The newest imports first (at most `limit`, default 50).
#[utoipa::path(
    get,
    path = "/api/v1/imports",
    tag = "imports",
    operation_id = "list_imports",
    params(("limit" = Option<i64>, Query, description = "How many, newest first (default 50)")),
    responses((status = 200, description = "`{\"imports\": [...]}`: recent import jobs with progress and counts", body = serde_json::Value))
)]
pub(super) async fn all(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Result<Response> {
    let imports = imports::recent(&s.ctx, q.limit.unwrap_or(50)).await?;
    Ok(Json(serde_json::json!({ "imports": imports })).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct ErrorsQuery {
    errors_after: Option<i64>,
    errors_limit: Option<i64>,
}

/// One import: state, progress, summary, and a page of row errors by line
/// (`errors_after`, `errors_limit` ≤ 1000, default 100; `errors_next` is the
/// next page's `errors_after`).
#[utoipa::path(
    get,
    path = "/api/v1/imports/{id}",
    tag = "imports",
    operation_id = "get_import",
    params(
        ("id" = String, Path, description = "The import's id (uuid)"),
        ("errors_after" = Option<i64>, Query, description = "Row errors after this line number"),
        ("errors_limit" = Option<i64>, Query, description = "At most this many row errors"),
    ),
    responses((status = 200, description = "The job: status, progress, summary counts and a page of row errors", body = serde_json::Value))
)]
pub(super) async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ErrorsQuery>,
) -> Result<Response> {
    let detail = imports::get(
        &s.ctx,
        uuid_of(&id, "import")?,
        q.errors_after.unwrap_or(0),
        q.errors_limit.unwrap_or(imports::ERRORS_PAGE),
    )
    .await?;
    Ok(Json(detail).into_response())
}
