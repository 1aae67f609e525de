//! Everything an admin request can fail with, and the page each failure
//! shows. Internal errors are logged with their cause and shown only as
//! "something went wrong".

use super::pages::{Chrome, ErrorPage};
use crate::services::{FieldError, ServiceError};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Nobody is logged in. `next` is where a GET was going (to return
    /// there after login); other methods are refused outright.
    #[error("login required")]
    LoginRequired { next: Option<String> },
    #[error("this needs the admin role")]
    Forbidden,
    #[error("the form's CSRF token is missing or wrong")]
    Csrf,
    #[error("the request body could not be read")]
    BadBody,
    /// A handler that needs the layers' work was mounted without them.
    #[error("admin route mounted outside the admin layers")]
    Unguarded,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// `/admin/login?next=…` for a page the visitor was refused.
pub fn login_url(next: &str) -> String {
    let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    format!("/admin/login?next={next}")
}

fn page(status: StatusCode, title: &str, message: &str, fields: Vec<FieldError>) -> Response {
    let body = ErrorPage {
        chrome: Chrome::anonymous(String::new()),
        title: title.to_owned(),
        message: message.to_owned(),
        fields,
    };
    (status, body).into_response()
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        match self {
            AdminError::LoginRequired { next: Some(next) } => Redirect::to(&login_url(&next)).into_response(),
            AdminError::LoginRequired { next: None } => {
                let mut res = page(
                    StatusCode::UNAUTHORIZED,
                    "Please log in",
                    "You are not logged in, or your session has ended. Log in and try again.",
                    Vec::new(),
                );
                // Not HTTP authentication: the form at /admin/login is the way in.
                res.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Cookie"));
                res
            }
            AdminError::Forbidden => page(
                StatusCode::FORBIDDEN,
                "Admins only",
                "Your account is an editor account; this needs an admin. Ask an admin to do it for you.",
                Vec::new(),
            ),
            AdminError::Csrf => page(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was too old, or it did not come from this site. Go back, reload the page and try again.",
                Vec::new(),
            ),
            AdminError::BadBody => {
                page(StatusCode::BAD_REQUEST, "Bad request", "The form could not be read.", Vec::new())
            }
            AdminError::Service(ServiceError::NotFound(what)) => {
                page(StatusCode::NOT_FOUND, "Not found", &format!("There is no such {what}."), Vec::new())
            }
            AdminError::Service(ServiceError::Invalid(fields)) => {
                page(StatusCode::UNPROCESSABLE_ENTITY, "Please check the form", "Some fields need correcting.", fields)
            }
            AdminError::Service(ServiceError::Conflict(message)) => {
                page(StatusCode::CONFLICT, "Already exists", &message, Vec::new())
            }
            AdminError::Service(ServiceError::Withdrawn(message)) => {
                page(StatusCode::CONFLICT, "This person withdrew", &message, Vec::new())
            }
            AdminError::Service(ServiceError::Suppressed(message)) => {
                page(StatusCode::CONFLICT, "This address may not be mailed", &message, Vec::new())
            }
            AdminError::Service(ServiceError::SenderAuthentication(report)) => page(
                StatusCode::CONFLICT,
                "Not sent: sender authentication fails",
                &format!(
                    "{}. Fix the records (`tidings check` shows what to publish), or tick \"Send even if sender \
                     authentication fails\" to send this once (recorded in the audit log).",
                    report.summary()
                ),
                Vec::new(),
            ),
            AdminError::Service(ServiceError::Gone) => page(
                StatusCode::GONE,
                "This link has expired",
                "That link has expired or has already been used.",
                Vec::new(),
            ),
            other => {
                tracing::error!(error = %other, source = ?std::error::Error::source(&other), "admin request failed");
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side. Please try again.",
                    Vec::new(),
                )
            }
        }
    }
}
