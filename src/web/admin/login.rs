//! Logging in and out, and the first-run setup link.

use super::auth::{self, CsrfToken, CurrentSession, Organiser};
use super::error::AdminError;
use super::pages::{Chrome, LoginPage, SetupGonePage, SetupPage};
use crate::domain::{AddressKey, EmailAddress};
use crate::services::sessions::{self, LoginOutcome, SessionAccount};
use crate::services::{FieldError, ServiceError, accounts};
use crate::web::AppState;
use crate::web::input::{Client, Submitted};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

type Result<T, E = AdminError> = std::result::Result<T, E>;

/// Where to go after logging in: only a path inside `/admin`, so the login
/// form cannot be used to bounce people to another site.
fn safe_next(raw: Option<&str>) -> &str {
    match raw {
        Some(p)
            if (p == "/admin" || p.starts_with("/admin/") || p.starts_with("/admin?"))
                && !p.contains("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control) =>
        {
            p
        }
        _ => "/admin",
    }
}

/// Fixed messages a redirect may ask the login page to show.
fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "logged-out" => Some("You have logged out."),
        _ => None,
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    notice: Option<String>,
}

pub async fn form(
    State(state): State<AppState>,
    me: Option<Organiser>,
    csrf: CsrfToken,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref()).to_owned();
    if me.is_some() {
        return Redirect::to(&next).into_response();
    }
    LoginPage {
        chrome: Chrome::anonymous(state.ctx.config.group_name.clone()),
        csrf: csrf.0,
        email: String::new(),
        next,
        error: None,
        notice: notice(q.notice.as_deref()),
    }
    .into_response()
}

pub async fn submit(
    State(state): State<AppState>,
    client: Client,
    csrf: CsrfToken,
    body: Submitted,
) -> Result<Response> {
    let email = body.first("email").unwrap_or_default();
    let password = body.first("password").unwrap_or_default();
    let next = safe_next(body.first("next").as_deref()).to_owned();
    let refused = |status: StatusCode, message: &str| {
        let page = LoginPage {
            chrome: Chrome::anonymous(state.ctx.config.group_name.clone()),
            csrf: csrf.0.clone(),
            email: email.trim().to_owned(),
            next: next.clone(),
            error: Some(message.to_owned()),
            notice: None,
        };
        (status, page).into_response()
    };
    // What was typed is not stored as typed: it may be a supporter's
    // address, or a password typed into the wrong box (issue 16 §5).
    let mut audited_as = auth::AuditedAs(typed_fingerprint(&state.ctx.address_key, &email));
    let mut res = match sessions::log_in(&state.ctx, &email, &password, &client.meta()).await? {
        LoginOutcome::LoggedIn(session) => {
            audited_as = auth::AuditedAs(session.account.email.clone());
            let cookie = auth::session_cookie(&state.ctx.config, &session, state.ctx.clock.now());
            ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
        }
        LoginOutcome::Refused => {
            refused(StatusCode::UNAUTHORIZED, "That email address and password do not match an organiser account.")
        }
        LoginOutcome::Throttled { retry_after } => {
            let minutes = retry_after.as_secs().div_ceil(60);
            let mut res = refused(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many failed attempts. Wait {minutes} minutes, then try again."),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
    };
    res.extensions_mut().insert(audited_as);
    Ok(res)
}

/// How the audit log names a failed login: a keyed fingerprint of what was
/// typed (normalised when it is an address), so repeated attempts at one
/// name can be told apart without the log holding what was typed.
fn typed_fingerprint(key: &AddressKey, typed: &str) -> String {
    let norm = EmailAddress::parse(typed).map_or_else(|_| typed.trim().to_lowercase(), |e| e.normalised().to_owned());
    let fingerprint = key.fingerprint(&norm);
    format!("login attempt {}", &fingerprint[..16])
}

pub async fn log_out(State(state): State<AppState>, CurrentSession(session): CurrentSession) -> Result<Response> {
    sessions::log_out(&state.ctx, &session).await?;
    let cookie = auth::clear_session_cookie(&state.ctx.config);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/admin/login?notice=logged-out")).into_response())
}

fn gone(state: &AppState) -> Response {
    (StatusCode::GONE, SetupGonePage { chrome: Chrome::anonymous(state.ctx.config.group_name.clone()) }).into_response()
}

pub async fn setup_form(State(state): State<AppState>, csrf: CsrfToken, Path(token): Path<String>) -> Result<Response> {
    if !accounts::setup_token_is_live(&state.ctx, &token).await? {
        return Ok(gone(&state));
    }
    Ok(SetupPage {
        chrome: Chrome::anonymous(state.ctx.config.group_name.clone()),
        csrf: csrf.0,
        token,
        email: String::new(),
        errors: Vec::new(),
    }
    .into_response())
}

/// Creates the first admin and logs them in.
pub async fn setup(
    State(state): State<AppState>,
    client: Client,
    csrf: CsrfToken,
    Path(token): Path<String>,
    body: Submitted,
) -> Result<Response> {
    // A dead link gets the same answer whatever was typed into its form.
    if !accounts::setup_token_is_live(&state.ctx, &token).await? {
        return Ok(gone(&state));
    }
    let email = body.first("email").unwrap_or_default();
    let password = body.first("password").unwrap_or_default();
    let outcome = if body.first("password_confirm").as_deref() != Some(password.as_str()) {
        Err(ServiceError::Invalid(vec![FieldError::new("password_confirm", "the two passwords differ")]))
    } else {
        accounts::complete_setup(&state.ctx, &token, &email, &password).await
    };
    match outcome {
        Ok(account) => {
            tracing::info!(organiser = %account.id, "first admin account created through the setup link");
            let session = SessionAccount { id: account.id, email: account.email, role: account.role };
            let session = sessions::start(&state.ctx, session, &client.meta()).await?;
            let cookie = auth::session_cookie(&state.ctx.config, &session, state.ctx.clock.now());
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/admin")).into_response())
        }
        Err(ServiceError::Gone) => Ok(gone(&state)),
        Err(ServiceError::Invalid(errors)) => {
            let page = SetupPage {
                chrome: Chrome::anonymous(state.ctx.config.group_name.clone()),
                csrf: csrf.0,
                token,
                email: email.trim().to_owned(),
                errors,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/admin/subscribers?q=a")), "/admin/subscribers?q=a");
        assert_eq!(safe_next(Some("/admin")), "/admin");
        assert_eq!(safe_next(Some("/admin?x=1")), "/admin?x=1");
        for bad in ["https://evil.test/admin", "//evil.test", "/admin//evil.test", "/administrator", "/", "/admin\\x"] {
            assert_eq!(safe_next(Some(bad)), "/admin", "{bad}");
        }
        assert_eq!(safe_next(None), "/admin");
    }
}
