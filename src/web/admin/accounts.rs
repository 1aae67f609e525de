//! API tokens (list, create — shown once — and revoke) and organiser
//! accounts (list and add). Admins only.

use super::auth::{CsrfToken, RequireAdmin};
use super::error::AdminError;
use super::pages::{Chrome, NewAccount, NewToken, TokensPage, UsersPage};
use crate::services::accounts::{self, Role};
use crate::services::{FieldError, ServiceError};
use crate::web::AppState;
use crate::web::input::Submitted;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use uuid::Uuid;

type Result<T, E = AdminError> = std::result::Result<T, E>;

#[derive(Debug, serde::Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

async fn tokens_page(state: &AppState, chrome: Chrome) -> Result<TokensPage> {
    Ok(TokensPage {
        chrome,
        tokens: accounts::tokens(&state.ctx).await?,
        created: None,
        name: String::new(),
        errors: Vec::new(),
        notice: None,
    })
}

pub async fn tokens(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Query(q): Query<NoticeQuery>,
) -> Result<Response> {
    let mut page = tokens_page(&state, Chrome::new(&state.ctx.config.group_name, &me, &csrf, "tokens")).await?;
    page.notice = (q.notice.as_deref() == Some("revoked")).then_some("The token has been revoked.");
    Ok(page.into_response())
}

/// Creates a token and shows it in this response only: it is never stored
/// in clear, so no later page could show it again.
pub async fn create_token(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    body: Submitted,
) -> Result<Response> {
    let name = body.first("name").unwrap_or_default();
    let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "tokens");
    match accounts::create_token(&state.ctx.store, &state.ctx.clock, &name).await {
        Ok(token) => {
            tracing::info!(organiser = %me.id, "API token created");
            let mut page = tokens_page(&state, chrome).await?;
            page.created = Some(NewToken { name: name.trim().to_owned(), token });
            Ok((StatusCode::CREATED, page).into_response())
        }
        Err(ServiceError::Invalid(errors)) => {
            let mut page = tokens_page(&state, chrome).await?;
            page.name = name;
            page.errors = errors;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_token(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| ServiceError::NotFound("live API token"))?;
    accounts::revoke_token(&state.ctx, id).await?;
    tracing::info!(organiser = %me.id, token = %id, "API token revoked");
    Ok(Redirect::to("/admin/tokens?notice=revoked").into_response())
}

async fn users_page(state: &AppState, chrome: Chrome) -> Result<UsersPage> {
    Ok(UsersPage {
        chrome,
        users: accounts::users(&state.ctx).await?,
        created: None,
        email: String::new(),
        role: Role::Editor,
        errors: Vec::new(),
    })
}

pub async fn users(State(state): State<AppState>, RequireAdmin(me): RequireAdmin, csrf: CsrfToken) -> Result<Response> {
    Ok(users_page(&state, Chrome::new(&state.ctx.config.group_name, &me, &csrf, "users")).await?.into_response())
}

/// Adds an organiser. With no password typed, one is generated and shown
/// once, for the admin to pass on.
pub async fn add_user(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    body: Submitted,
) -> Result<Response> {
    let email = body.first("email").unwrap_or_default();
    let typed_password = body.first("password").filter(|p| !p.is_empty());
    let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "users");
    let role = Role::parse(body.first("role").as_deref().unwrap_or(""));
    let outcome = match (&role, &typed_password) {
        (Err(e), _) => Err(ServiceError::Invalid(vec![FieldError::from_parse("role", e.clone())])),
        (Ok(role), Some(password)) => {
            accounts::add_user(&state.ctx.store, &state.ctx.clock, &email, password, *role).await.map(|_| None)
        }
        (Ok(role), None) => match accounts::generate_password() {
            Ok(password) => accounts::add_user(&state.ctx.store, &state.ctx.clock, &email, &password, *role)
                .await
                .map(|_| Some(password)),
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok(generated_password) => {
            let role = role.unwrap_or(Role::Editor);
            tracing::info!(organiser = %me.id, role = %role, "organiser account added");
            let mut page = users_page(&state, chrome).await?;
            page.created = Some(NewAccount { email: email.trim().to_owned(), role, generated_password });
            Ok((StatusCode::CREATED, page).into_response())
        }
        Err(ServiceError::Invalid(errors)) => {
            let mut page = users_page(&state, chrome).await?;
            page.email = email;
            page.role = role.unwrap_or(Role::Editor);
            page.errors = errors;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(ServiceError::Conflict(_)) => {
            let mut page = users_page(&state, chrome).await?;
            page.email = email;
            page.role = role.unwrap_or(Role::Editor);
            page.errors = vec![FieldError::new("email", "an organiser with that address already exists")];
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
