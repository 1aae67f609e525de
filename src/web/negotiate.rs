//! One answer, two forms. A supporter route answers JSON to a client that
//! sent or asked for JSON (`Content-Type` or `Accept`, see
//! `input::wants_json`) and an HTML page to everyone else; its errors
//! follow the same choice. [`Negotiated`] is that answer, made by
//! [`Client::answer`] (or [`Client::answer_async`] when the page needs more
//! reading first): only the form the client gets is built.

use super::WebError;
use super::input::Client;
use crate::services::ServiceError;
use axum::response::{IntoResponse, Response};

/// An answer as JSON or as a page, whichever the client wanted.
pub enum Negotiated<J, P> {
    Json(J),
    Page(P),
}

impl<J: IntoResponse, P: IntoResponse> IntoResponse for Negotiated<J, P> {
    fn into_response(self) -> Response {
        match self {
            Negotiated::Json(j) => j.into_response(),
            Negotiated::Page(p) => p.into_response(),
        }
    }
}

impl Client {
    /// `value` shown as `json(value)` or as `page(value)`, whichever this
    /// client wants.
    pub fn answer<T, J, P>(&self, value: T, json: impl FnOnce(T) -> J, page: impl FnOnce(T) -> P) -> Negotiated<J, P> {
        if self.json { Negotiated::Json(json(value)) } else { Negotiated::Page(page(value)) }
    }

    /// As [`Client::answer`], for a page that needs reading first and may
    /// fail (the JSON client's answer reads nothing more).
    pub async fn answer_async<T, J, P, F>(
        &self,
        value: T,
        json: impl FnOnce(T) -> J,
        page: impl FnOnce(T) -> F,
    ) -> Result<Negotiated<J, P>, WebError>
    where
        F: Future<Output = Result<P, WebError>>,
    {
        if self.json { Ok(Negotiated::Json(json(value))) } else { Ok(Negotiated::Page(page(value).await?)) }
    }

    /// `e` as this client reads errors: JSON or an error page.
    pub fn error(&self, e: WebError) -> WebError {
        e.as_json(self.json)
    }

    /// A service's refusal, as this client reads errors.
    pub fn service_error(&self, e: ServiceError) -> WebError {
        WebError::from_service(e, self.json)
    }
}
