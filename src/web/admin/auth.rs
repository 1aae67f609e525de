//! Who is asking, and whether their form came from us.
//!
//! **Sessions.** The session id travels in the `tidings_session` cookie:
//! `HttpOnly` (no script can read it), `SameSite=Lax` (other sites' forms
//! do not carry it), `Secure` when `TIDINGS_BASE_URL` is https, and
//! `Path=/admin`, so public pages never see it.
//!
//! **CSRF.** Every admin form carries a `csrf` field (or an `X-CSRF-Token`
//! header) holding HMAC-SHA256(secret key, binding), where the binding is
//! the session id for an organiser, or, before login, a random value in
//! the `tidings_csrf` cookie (a signed double-submit cookie). Another site
//! can neither read the token nor compute it, and a cookie planted by a
//! sibling domain is useless without the secret key. Tokens are checked in
//! constant time.
//!
//! **The layers.** Each admin route is wrapped, outermost first, in
//! [`no_store`] (no cache keeps any answer), [`require_access`] (strangers
//! and editors on admin-only routes are refused), [`check_csrf`] (unsafe
//! methods need the token) and [`audit`] (state-changing requests are
//! recorded once answered). Who is signed in comes from the [`SignedIn`]
//! extractor, which resumes the session once per request; handlers take
//! [`Organiser`], [`RequireAdmin`] or [`CurrentSession`], built from it.

use super::{Access, AdminError};
use crate::config::Config;
use crate::domain::Actor;
use crate::services::accounts::Role;
use crate::services::audit::{self, Action, Who};
use crate::services::sessions::{self, Session};
use crate::web::AppState;
use crate::web::input::client_ip;
use axum::body::Body;
use axum::extract::{FromRef, FromRequestParts, MatchedPath, OptionalFromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// The session cookie.
pub const SESSION_COOKIE: &str = "tidings_session";
/// The pre-login CSRF cookie (the login and setup forms).
pub const CSRF_COOKIE: &str = "tidings_csrf";
/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// The header that may carry it instead (for scripts).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name`, if the request sent one.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn attributes(config: &Config) -> &'static str {
    if config.base_url.scheme() == "https" {
        "Path=/admin; HttpOnly; SameSite=Lax; Secure"
    } else {
        "Path=/admin; HttpOnly; SameSite=Lax"
    }
}

/// `Set-Cookie` for a new session; it lasts no longer than the session.
pub fn session_cookie(config: &Config, session: &Session, now: DateTime<Utc>) -> HeaderValue {
    let max_age = (session.expires_at - now).num_seconds().max(0);
    let value = format!("{SESSION_COOKIE}={}; Max-Age={max_age}; {}", session.key.as_str(), attributes(config));
    // Base64url and fixed attributes: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("tidings_session=; Max-Age=0"))
}

/// `Set-Cookie` that makes the browser forget its session cookie.
pub fn clear_session_cookie(config: &Config) -> HeaderValue {
    let value = format!("{SESSION_COOKIE}=; Max-Age=0; {}", attributes(config));
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("tidings_session=; Max-Age=0"))
}

fn anonymous_cookie(config: &Config, value: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("{CSRF_COOKIE}={value}; {}", attributes(config))).ok()
}

/// What a CSRF token is bound to.
#[derive(Debug, Clone, Copy)]
enum Binding<'a> {
    Session(&'a str),
    Anonymous(&'a str),
}

fn csrf_mac(key: &[u8], binding: Binding<'_>) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"tidings-admin-csrf\0");
    match binding {
        Binding::Session(id) => {
            mac.update(b"session\0");
            mac.update(id.as_bytes());
        }
        Binding::Anonymous(nonce) => {
            mac.update(b"anonymous\0");
            mac.update(nonce.as_bytes());
        }
    }
    mac
}

fn csrf_token(key: &[u8], binding: Binding<'_>) -> String {
    URL_SAFE_NO_PAD.encode(csrf_mac(key, binding).finalize().into_bytes())
}

fn csrf_matches(key: &[u8], binding: Binding<'_>, presented: &str) -> bool {
    match URL_SAFE_NO_PAD.decode(presented.trim()) {
        Ok(bytes) => csrf_mac(key, binding).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

/// A fresh pre-login nonce: 256 random bits.
fn new_nonce() -> Result<String, AdminError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AdminError::Service(e.into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn is_nonce(raw: &str) -> bool {
    URL_SAFE_NO_PAD.decode(raw).is_ok_and(|b| b.len() == 32)
}

/// Set by a public handler (login, setup) on its response to name who the
/// audit log should show, e.g. the address someone tried to log in as.
#[derive(Debug, Clone)]
pub struct AuditedAs(pub String);

/// The token a page must put in each of its forms (set by [`check_csrf`]).
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<CsrfToken>().cloned().ok_or(AdminError::Unguarded)
    }
}

/// The organiser behind a request. Extracting it fails with a redirect to
/// the login form when nobody is logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organiser {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
}

impl Organiser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Refuses (403) unless this organiser has `role` (admins have every role).
    pub fn require(&self, role: Role) -> Result<(), AdminError> {
        if self.role == role || self.is_admin() { Ok(()) } else { Err(AdminError::Forbidden) }
    }

    /// Who the consent ledger names when this organiser acts.
    pub fn actor(&self) -> Actor {
        Actor::Organiser(self.id)
    }
}

impl From<&Session> for Organiser {
    fn from(s: &Session) -> Self {
        Self { id: s.account.id, email: s.account.email.clone(), role: s.account.role }
    }
}

/// Who is signed in, if anyone: the session resumed from its cookie (and
/// touched, see `sessions::resume`). Resumed once per request: the layers
/// and extractors that ask later share that answer.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Option<Session>);

impl SignedIn {
    /// The session the layers resumed; `None` when nobody is signed in, or
    /// when the route was mounted without them.
    fn of(parts: &Parts) -> Option<&Session> {
        parts.extensions.get::<SignedIn>().and_then(|s| s.0.as_ref())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn
where
    AppState: FromRef<S>,
{
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(signed_in) = parts.extensions.get::<SignedIn>() {
            return Ok(signed_in.clone());
        }
        let state = AppState::from_ref(state);
        let session = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(raw) => sessions::resume(&state.ctx, raw).await?,
            None => None,
        };
        let signed_in = SignedIn(session);
        parts.extensions.insert(signed_in.clone());
        Ok(signed_in)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Organiser {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match SignedIn::of(parts) {
            Some(s) => Ok(Organiser::from(s)),
            None => Err(AdminError::LoginRequired { next: None }),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Organiser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(SignedIn::of(parts).map(Organiser::from))
    }
}

/// An organiser with the admin role; anyone else is refused with 403.
#[derive(Debug, Clone)]
pub struct RequireAdmin(pub Organiser);

impl<S: Send + Sync> FromRequestParts<S> for RequireAdmin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let organiser = <Organiser as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        organiser.require(Role::Admin)?;
        Ok(RequireAdmin(organiser))
    }
}

/// The session itself (for logging out).
#[derive(Debug, Clone)]
pub struct CurrentSession(pub Session);

impl<S: Send + Sync> FromRequestParts<S> for CurrentSession {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        SignedIn::of(parts).cloned().map(CurrentSession).ok_or(AdminError::LoginRequired { next: None })
    }
}

/// The CSRF token a form sent: the header, or the `csrf` field of a
/// URL-encoded body.
fn presented_token(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if let Some(v) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(v.to_owned());
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return None;
    }
    form_urlencoded::parse(body).find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v.into_owned())
}

/// Admin routes whose POST streams a large `multipart/form-data` upload
/// (a CSV import). [`check_csrf`] cannot buffer such a body to find the
/// CSRF token in it; it leaves an [`UploadCsrf`] instead, and the handler reads
/// the form through [`CsrfMultipart`], which refuses the request unless
/// the form's first field is a valid `csrf` token.
const STREAMED_UPLOADS: &[&str] = &["/admin/imports"];

/// What [`check_csrf`] leaves for a streamed upload's CSRF check.
#[derive(Clone)]
pub struct UploadCsrf {
    key: std::sync::Arc<Vec<u8>>,
    session_key: String,
}

/// A multipart form whose first field, `csrf`, has been checked.
pub struct CsrfMultipart(pub axum::extract::Multipart);

impl<S: Send + Sync> axum::extract::FromRequest<S> for CsrfMultipart {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let check = req.extensions().get::<UploadCsrf>().cloned().ok_or(AdminError::BadBody)?;
        let mut multipart =
            axum::extract::Multipart::from_request(req, state).await.map_err(|_| AdminError::BadBody)?;
        let mut token = None;
        if let Ok(Some(mut field)) = multipart.next_field().await
            && field.name() == Some(CSRF_FIELD)
        {
            let mut value = Vec::new();
            // A token is 43 characters: read no more than a little over that.
            while let Ok(Some(piece)) = field.chunk().await {
                value.extend_from_slice(&piece);
                if value.len() > 256 {
                    break;
                }
            }
            token = String::from_utf8(value).ok();
        }
        if token.is_some_and(|t| csrf_matches(&check.key, Binding::Session(&check.session_key), &t)) {
            Ok(CsrfMultipart(multipart))
        } else {
            tracing::warn!("admin upload refused: CSRF token missing, wrong, or not the first field");
            Err(AdminError::Csrf)
        }
    }
}

/// Whether a method only reads (so needs no CSRF token and is not audited).
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// What the access layer of one admin route knows: the application, and
/// who may use the route.
#[derive(Clone)]
pub(super) struct RouteAccess {
    pub app: AppState,
    pub access: Access,
}

impl FromRef<RouteAccess> for AppState {
    fn from_ref(route: &RouteAccess) -> AppState {
        route.app.clone()
    }
}

/// Layer 1, around everything: admin pages show personal data, so no
/// browser or proxy may keep a copy of any answer, refusals included.
pub(super) async fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Layer 2: refuses strangers. Nobody signed in on an organiser's route:
/// a GET goes to the login form (to come back after), other methods get
/// 401; an editor on an admin-only route gets 403.
pub(super) async fn require_access(
    State(route): State<RouteAccess>,
    SignedIn(session): SignedIn,
    req: Request,
    next: Next,
) -> Result<Response, AdminError> {
    match (&session, route.access) {
        (_, Access::Public) => {}
        (None, _) => {
            let next =
                is_safe(req.method()).then(|| req.uri().path_and_query().map_or("/admin", |p| p.as_str()).to_owned());
            return Err(AdminError::LoginRequired { next });
        }
        (Some(s), Access::Admin) if s.account.role != Role::Admin => return Err(AdminError::Forbidden),
        (Some(_), _) => {}
    }
    Ok(next.run(req).await)
}

/// Layer 3: the CSRF check. Every request that is not GET or HEAD (the
/// login and setup forms included) must present the token bound to its
/// session, or before login to the nonce cookie, before any handler runs;
/// every request leaves the [`CsrfToken`] its page's forms carry.
pub(super) async fn check_csrf(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    mut req: Request,
    next: Next,
) -> Result<Response, AdminError> {
    let ctx = &state.ctx;
    let safe = is_safe(req.method());
    // Bind the CSRF token to the session, or before login to a nonce cookie
    // (issued here when the browser has none yet).
    let existing_nonce = cookie(req.headers(), CSRF_COOKIE).filter(|n| is_nonce(n)).map(str::to_owned);
    let mut issued_nonce = None;
    let nonce = match (&session, existing_nonce) {
        (Some(_), _) => String::new(),
        (None, Some(n)) => n,
        (None, None) => {
            let n = new_nonce()?;
            issued_nonce = Some(n.clone());
            n
        }
    };
    let binding = match &session {
        Some(s) => Binding::Session(s.key.as_str()),
        None => Binding::Anonymous(&nonce),
    };
    let key = ctx.secret_key.as_slice();

    let streamed = !safe
        && session.is_some()
        && STREAMED_UPLOADS.contains(&req.uri().path())
        && req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
    if streamed {
        // Too big to buffer: the handler's extractor checks the token, the
        // form's first field, before it reads anything else.
        let session_key = session.as_ref().map(|s| s.key.as_str().to_owned()).unwrap_or_default();
        req.extensions_mut().insert(UploadCsrf { key: ctx.secret_key.clone(), session_key });
    } else if !safe {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, ctx.config.max_body_bytes).await.map_err(|_| AdminError::BadBody)?;
        // A nonce issued just now was never in a form: the request had no
        // cookie, so it cannot be genuine.
        let genuine = issued_nonce.is_none()
            && presented_token(&parts.headers, &bytes).is_some_and(|t| csrf_matches(key, binding, &t));
        if !genuine {
            tracing::warn!(path = parts.uri.path(), "admin request refused: CSRF token missing or wrong");
            return Err(AdminError::Csrf);
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }

    req.extensions_mut().insert(CsrfToken(csrf_token(key, binding)));
    let mut res = next.run(req).await;
    if let Some(value) = issued_nonce.as_deref().and_then(|n| anonymous_cookie(&ctx.config, n)) {
        res.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(res)
}

/// Marks an answer to a POST that changed nothing (the editor's preview,
/// asked for as the organiser types): the audit log does not record it.
#[derive(Debug, Clone, Copy)]
pub struct ChangesNothing;

/// Layer 4, around the handler: every state-changing request that got
/// this far is audited once answered: who, which route, on what, from
/// where, and how it ended (a public handler may name who with
/// [`AuditedAs`]).
pub(super) async fn audit(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    req: Request,
    next: Next,
) -> Response {
    if is_safe(req.method()) {
        return next.run(req).await;
    }
    let ctx = &state.ctx;
    let mut who = match &session {
        Some(s) => Who { actor: Actor::Organiser(s.account.id).to_db(), label: s.account.email.clone(), ip: None },
        None => Who { actor: "anonymous".into(), label: String::new(), ip: None },
    };
    who.ip = client_ip(req.headers(), req.extensions(), &ctx.config).map(|ip| ip.to_string());
    let route = req.extensions().get::<MatchedPath>().map_or(req.uri().path(), MatchedPath::as_str);
    let what = format!("{} {route}", req.method());
    let target = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    if res.extensions_mut().remove::<ChangesNothing>().is_some() {
        return res;
    }
    if let Some(AuditedAs(label)) = res.extensions_mut().remove::<AuditedAs>() {
        who.label = label;
    }
    let action = Action { what: &what, target: &target, status: res.status().as_u16(), detail: String::new() };
    audit::record_or_log(&ctx.store, &ctx.clock, &who, action).await;
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn csrf_tokens_are_bound_to_their_session_or_nonce() {
        let t = csrf_token(KEY, Binding::Session("abc"));
        assert!(csrf_matches(KEY, Binding::Session("abc"), &t));
        assert!(!csrf_matches(KEY, Binding::Session("abd"), &t));
        assert!(!csrf_matches(KEY, Binding::Anonymous("abc"), &t), "kinds are separated");
        assert!(!csrf_matches(b"another key", Binding::Session("abc"), &t));
        assert!(!csrf_matches(KEY, Binding::Session("abc"), ""));
        assert!(!csrf_matches(KEY, Binding::Session("abc"), &t[..t.len() - 2]));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; tidings_session_x=2; tidings_session=3"));
        h.append(header::COOKIE, HeaderValue::from_static("tidings_csrf=4"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("3"));
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("4"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn the_token_may_come_in_a_header_or_a_form_field() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        assert_eq!(presented_token(&h, b"name=x&csrf=t%2B1").as_deref(), Some("t+1"));
        assert_eq!(presented_token(&h, b"name=x"), None);
        h.insert(CSRF_HEADER, HeaderValue::from_static("from-header"));
        assert_eq!(presented_token(&h, b"csrf=field").as_deref(), Some("from-header"));
        let mut json = HeaderMap::new();
        json.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert_eq!(presented_token(&json, b"csrf=field"), None);
    }
}
