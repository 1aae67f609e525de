//! Bearer tokens: [`require_token`] wraps every API route (and the
//! fallback), answers 401 to a missing or unknown token, names the caller
//! ([`Caller`]) for the handlers, and audits every state-changing call once
//! it is answered.

use super::error::ApiError;
use crate::domain::Actor;
use crate::services::accounts;
use crate::services::audit::{self, Action, Who};
use crate::web::AppState;
use crate::web::input::client_ip;
use axum::extract::{MatchedPath, OriginalUri, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The organiser behind the request, set by [`require_token`].
#[derive(Debug, Clone)]
pub(super) struct Caller(pub(super) Actor);

/// The name of the caller's token, set beside [`Caller`] (for records that
/// say who acted, such as a rights request's history).
#[derive(Debug, Clone)]
pub(super) struct CallerName(pub(super) String);

pub(super) async fn require_token(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
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
            req.extensions_mut().insert(CallerName(row.name.clone()));
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
            let mut res = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "A valid API token is required (Authorization: Bearer TOKEN).",
            )
            .into_response();
            res.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            res
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
