//! The organiser UI under `/admin`: server-rendered askama pages that work
//! without JavaScript.
//!
//! Every route is declared once, in [`ROUTES`], with the access it needs;
//! [`router`] is built from that table alone and wraps each route in the
//! layers of `auth`, outermost first:
//! 1. `no_store`: no browser or proxy keeps any answer;
//! 2. `require_access`: with the session the [`SignedIn`] extractor
//!    resumes from its cookie, refuses anonymous requests (GET pages
//!    redirect to the login form, other methods get 401) and editors on
//!    admin-only routes (403);
//! 3. `check_csrf`: verifies the CSRF token of every request that is not
//!    GET or HEAD — the login and setup forms included — before any
//!    handler runs;
//! 4. `audit`: records every state-changing request once answered.
//!
//! Because the table is the router, a new route cannot skip the layers,
//! and tests enumerate the table to prove every route refuses strangers.
//! Handlers also take an [`Organiser`] or [`RequireAdmin`] extractor, so
//! the role check holds even if a table entry were wrong.
//!
//! Layout: `auth` (cookies, the session extractor, the layers, the
//! organiser extractors), `error`
//! ([`AdminError`] and its pages), `pages` (template structs), and one
//! module of handlers per area: `login` (login, logout, first-run setup),
//! `lists` (dashboard and lists), `updates` (writing and sending),
//! `subscribers`, `accounts` (API tokens and organiser accounts),
//! `privacy` (the privacy notice), `records` (the audit log and rights
//! requests), `bounces` (bounces, complaints and alerts) and `imports`
//! (CSV imports).

mod accounts;
mod auth;
mod bounces;
mod error;
mod imports;
mod lists;
mod login;
mod pages;
mod privacy;
mod records;
mod subscribers;
mod updates;

pub use auth::{CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, CsrfToken, Organiser, RequireAdmin, SESSION_COOKIE, SignedIn};
pub use error::AdminError;

use super::AppState;
use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get, on};

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the login and first-run setup forms.
    Public,
    /// Any organiser (admin or editor).
    Organiser,
    /// Organisers with the admin role.
    Admin,
}

/// The HTTP methods the admin UI uses. Forms only know GET and POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
        }
    }
}

/// One admin route: the table entry is the only way a handler is mounted.
pub struct Route {
    pub verb: Verb,
    /// The full path; `{id}` and `{token}` are path parameters.
    pub path: &'static str,
    pub access: Access,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

impl Route {
    const fn new(
        verb: Verb,
        path: &'static str,
        access: Access,
        handler: fn(MethodFilter) -> MethodRouter<AppState>,
    ) -> Self {
        Self { verb, path, access, handler }
    }
}

/// Every admin route.
pub const ROUTES: &[Route] = &[
    Route::new(Verb::Get, "/admin/login", Access::Public, |m| on(m, login::form)),
    Route::new(Verb::Post, "/admin/login", Access::Public, |m| on(m, login::submit)),
    Route::new(Verb::Get, "/admin/setup/{token}", Access::Public, |m| on(m, login::setup_form)),
    Route::new(Verb::Post, "/admin/setup/{token}", Access::Public, |m| on(m, login::setup)),
    Route::new(Verb::Post, "/admin/logout", Access::Organiser, |m| on(m, login::log_out)),
    Route::new(Verb::Get, "/admin", Access::Organiser, |m| on(m, lists::dashboard)),
    Route::new(Verb::Get, "/admin/lists", Access::Organiser, |m| on(m, lists::index)),
    Route::new(Verb::Get, "/admin/lists/new", Access::Admin, |m| on(m, lists::new_form)),
    Route::new(Verb::Post, "/admin/lists", Access::Admin, |m| on(m, lists::create)),
    Route::new(Verb::Get, "/admin/lists/{id}", Access::Admin, |m| on(m, lists::edit_form)),
    Route::new(Verb::Post, "/admin/lists/{id}", Access::Admin, |m| on(m, lists::update)),
    Route::new(Verb::Get, "/admin/lists/{id}/wording", Access::Admin, |m| on(m, lists::wording_form)),
    Route::new(Verb::Post, "/admin/lists/{id}/wording", Access::Admin, |m| on(m, lists::publish_wording)),
    Route::new(Verb::Get, "/admin/lists/{id}/delete", Access::Admin, |m| on(m, lists::delete_form)),
    Route::new(Verb::Post, "/admin/lists/{id}/delete", Access::Admin, |m| on(m, lists::delete)),
    Route::new(Verb::Get, "/admin/updates", Access::Organiser, |m| on(m, updates::index)),
    Route::new(Verb::Get, "/admin/updates/new", Access::Organiser, |m| on(m, updates::new_form)),
    Route::new(Verb::Post, "/admin/updates", Access::Organiser, |m| on(m, updates::create)),
    Route::new(Verb::Post, "/admin/updates/render", Access::Organiser, |m| on(m, updates::render)),
    Route::new(Verb::Get, "/admin/updates/{id}", Access::Organiser, |m| on(m, updates::show)),
    Route::new(Verb::Get, "/admin/updates/{id}/edit", Access::Organiser, |m| on(m, updates::edit_form)),
    Route::new(Verb::Post, "/admin/updates/{id}", Access::Organiser, |m| on(m, updates::save)),
    Route::new(Verb::Get, "/admin/updates/{id}/preview", Access::Organiser, |m| on(m, updates::preview)),
    Route::new(Verb::Post, "/admin/updates/{id}/test", Access::Organiser, |m| on(m, updates::test)),
    Route::new(Verb::Get, "/admin/updates/{id}/progress", Access::Organiser, |m| on(m, updates::progress)),
    Route::new(Verb::Post, "/admin/updates/{id}/send", Access::Admin, |m| on(m, updates::send)),
    Route::new(Verb::Post, "/admin/updates/{id}/send/confirm", Access::Admin, |m| on(m, updates::confirm)),
    Route::new(Verb::Post, "/admin/updates/{id}/unschedule", Access::Admin, |m| on(m, updates::unschedule)),
    Route::new(Verb::Post, "/admin/updates/{id}/pause", Access::Admin, |m| on(m, updates::pause)),
    Route::new(Verb::Post, "/admin/updates/{id}/resume", Access::Admin, |m| on(m, updates::resume)),
    Route::new(Verb::Post, "/admin/updates/{id}/cancel", Access::Admin, |m| on(m, updates::cancel)),
    Route::new(Verb::Get, "/admin/subscribers", Access::Organiser, |m| on(m, subscribers::index)),
    Route::new(Verb::Get, "/admin/subscribers/{id}", Access::Organiser, |m| on(m, subscribers::show)),
    Route::new(Verb::Get, "/admin/subscribers/{id}/export", Access::Admin, |m| on(m, subscribers::export)),
    Route::new(Verb::Post, "/admin/subscribers/{id}/erase", Access::Admin, |m| on(m, subscribers::erase)),
    Route::new(Verb::Get, "/admin/tokens", Access::Admin, |m| on(m, accounts::tokens)),
    Route::new(Verb::Post, "/admin/tokens", Access::Admin, |m| on(m, accounts::create_token)),
    Route::new(Verb::Post, "/admin/tokens/{id}/revoke", Access::Admin, |m| on(m, accounts::revoke_token)),
    Route::new(Verb::Get, "/admin/users", Access::Admin, |m| on(m, accounts::users)),
    Route::new(Verb::Post, "/admin/users", Access::Admin, |m| on(m, accounts::add_user)),
    Route::new(Verb::Get, "/admin/privacy", Access::Admin, |m| on(m, privacy::show)),
    Route::new(Verb::Post, "/admin/privacy/preview", Access::Admin, |m| on(m, privacy::preview)),
    Route::new(Verb::Post, "/admin/privacy", Access::Admin, |m| on(m, privacy::publish)),
    Route::new(Verb::Post, "/admin/privacy/announce", Access::Admin, |m| on(m, privacy::announce)),
    Route::new(Verb::Get, "/admin/audit", Access::Admin, |m| on(m, records::audit_log)),
    Route::new(Verb::Get, "/admin/audit.csv", Access::Admin, |m| on(m, records::audit_log_csv)),
    Route::new(Verb::Get, "/admin/rights", Access::Admin, |m| on(m, records::rights_requests)),
    Route::new(Verb::Post, "/admin/rights", Access::Admin, |m| on(m, records::log_rights_request)),
    Route::new(Verb::Get, "/admin/rights/{id}", Access::Admin, |m| on(m, records::rights_request)),
    Route::new(Verb::Post, "/admin/rights/{id}", Access::Admin, |m| on(m, records::change_rights_request)),
    Route::new(Verb::Get, "/admin/bounces", Access::Organiser, |m| on(m, bounces::index)),
    Route::new(Verb::Post, "/admin/alerts/{id}/dismiss", Access::Admin, |m| on(m, bounces::dismiss)),
    Route::new(Verb::Post, "/admin/bounces/{id}/apply", Access::Admin, |m| on(m, bounces::apply_held)),
    Route::new(Verb::Post, "/admin/bounces/{id}/dismiss", Access::Admin, |m| on(m, bounces::dismiss_held)),
    Route::new(Verb::Get, "/admin/imports", Access::Admin, |m| on(m, imports::index)),
    // Streamed: its own size limit (TIDINGS_IMPORT_MAX_BYTES), see `auth::CsrfMultipart`.
    Route::new(Verb::Post, "/admin/imports", Access::Admin, |m| {
        on(m, imports::upload).layer(axum::extract::DefaultBodyLimit::disable())
    }),
    Route::new(Verb::Get, "/admin/imports/{id}", Access::Admin, |m| on(m, imports::show)),
];

/// The admin UI's router (merged into the application's at its full paths),
/// plus its stylesheet and script, which need no layers.
pub fn router(state: AppState) -> Router<AppState> {
    use axum::middleware::{from_fn_with_state, map_response};
    let mut router = Router::new().route("/assets/admin.css", get(stylesheet)).route("/assets/admin.js", get(script));
    for r in ROUTES {
        let access = auth::RouteAccess { app: state.clone(), access: r.access };
        // The last layer added is the outermost.
        let route = (r.handler)(r.verb.filter())
            .route_layer(from_fn_with_state(state.clone(), auth::audit))
            .route_layer(from_fn_with_state(state.clone(), auth::check_csrf))
            .route_layer(from_fn_with_state(access, auth::require_access))
            .route_layer(map_response(auth::no_store));
        router = router.route(r.path, route);
    }
    router
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../../templates/admin/admin.css"),
    )
        .into_response()
}

/// The organiser pages' one script (the live preview and live progress);
/// every page works without it.
async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../../templates/admin/admin.js"),
    )
        .into_response()
}
