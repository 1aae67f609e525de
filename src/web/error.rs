//! One error type for every handler, rendered as JSON
//! (`{"error": {"code", "message", "fields"?}}`) or as an HTML page,
//! whichever the client asked for. Internal errors are logged with their
//! cause and shown to the client only as "something went wrong".

use super::pages::ErrorPage;
use crate::services::{FieldError, ServiceError};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<FieldError>,
    pub json: bool,
}

impl WebError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), fields: Vec::new(), json: true }
    }

    /// Render as HTML instead of JSON.
    pub fn html(mut self) -> Self {
        self.json = false;
        self
    }

    pub fn as_json(mut self, json: bool) -> Self {
        self.json = json;
        self
    }

    pub fn from_service(e: ServiceError, json: bool) -> Self {
        let err = match e {
            ServiceError::Invalid(fields) => Self {
                fields,
                ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Some fields need correcting.")
            },
            ServiceError::NotFound(what) => Self::new(StatusCode::NOT_FOUND, "not_found", format!("No such {what}.")),
            ServiceError::Gone => {
                Self::new(StatusCode::GONE, "gone", "That link has expired or has already been used.")
            }
            ServiceError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            ServiceError::Withdrawn(m) => Self::new(StatusCode::CONFLICT, "withdrawn", m),
            ServiceError::Suppressed(m) => Self::new(StatusCode::CONFLICT, "suppressed", m),
            ServiceError::SenderAuthentication(report) => Self::new(
                StatusCode::CONFLICT,
                "sender_authentication",
                format!("Not sent: sender authentication fails ({}).", report.summary()),
            ),
            ServiceError::WordingWarning(warnings) => Self {
                fields: warnings.into_iter().map(|w| FieldError::new("text", w)).collect(),
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "wording_warning",
                    "The wording needs your acknowledgement before it is published.",
                )
            },
            ServiceError::Unavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "We could not take that just now; nothing was saved. Please try again in a moment.",
            ),
            other => {
                tracing::error!(error = %other, source = ?std::error::Error::source(&other), "request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Something went wrong on our side. Please try again.",
                )
            }
        };
        err.as_json(json)
    }
}

/// Every JSON error, as sent (and as the API description shows it).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code: `invalid`, `not_found`, `unauthorized`, …
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// With `invalid`: what is wrong with each field, by field name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<std::collections::BTreeMap<String, String>>,
}

impl ErrorBody {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { code: code.to_owned(), message: message.into(), fields: None } }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if self.json {
            let fields = (!self.fields.is_empty())
                .then(|| self.fields.iter().map(|f| (f.field.to_owned(), f.message.clone())).collect());
            let body = ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message, fields } };
            (self.status, Json(body)).into_response()
        } else {
            // The page is rendered by `error_pages`, which knows the
            // group's name for the site's header; the parts go along.
            let mut res = self.status.into_response();
            res.extensions_mut().insert(ErrorPageParts {
                status: self.status,
                message: self.message,
                fields: self.fields,
            });
            res
        }
    }
}

/// What an HTML error page says, carried on its response so that
/// [`error_pages`] can render it in the site's layout.
#[derive(Debug, Clone)]
struct ErrorPageParts {
    status: StatusCode,
    message: String,
    fields: Vec<FieldError>,
}

/// Renders every HTML error page (once, here) with the group's name in
/// the site's header, its footer, and what to do next.
pub async fn error_pages(State(state): State<super::AppState>, mut res: Response) -> Response {
    let Some(parts) = res.extensions_mut().remove::<ErrorPageParts>() else { return res };
    let page = ErrorPage {
        group: state.ctx.config.group_name.clone(),
        status: parts.status.as_u16(),
        message: parts.message,
        fields: parts.fields,
    };
    let (mut head, _) = res.into_parts();
    let (rendered, body) = page.into_response().into_parts();
    head.headers.extend(rendered.headers);
    Response::from_parts(head, body)
}
