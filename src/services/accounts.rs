//! Organiser accounts and API tokens.

use super::{Context, FieldError, Result, ServiceError};
use crate::domain::{EmailAddress, sha256_hex};
use crate::store::{ApiTokenRow, Store};
use argon2::password_hash::PasswordHasher;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Editor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
        }
    }
}

/// Creates an organiser account with an argon2id password hash.
pub async fn add_user(
    store: &Store,
    clock: &crate::clock::Clock,
    email: &str,
    password: &str,
    role: Role,
) -> Result<Uuid> {
    let email =
        EmailAddress::parse(email).map_err(|e| ServiceError::Invalid(vec![FieldError::from_parse("email", e)]))?;
    if password.chars().count() < 12 {
        return Err(ServiceError::Invalid(vec![FieldError::new("password", "use at least 12 characters")]));
    }
    // Argon2id with the crate's recommended parameters and a random salt.
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| ServiceError::PasswordHash(e.to_string()))?
        .to_string();
    let id = Uuid::now_v7();
    let mut tx = store.write().await?;
    tx.insert_user(id, email.normalised(), &hash, role.as_str(), clock.now()).await?;
    tx.commit().await?;
    Ok(id)
}

/// A random password for `tidings user add` when none is given.
pub fn generate_password() -> Result<String> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Creates an API token and returns it in clear, once; only its hash is kept.
pub async fn create_token(store: &Store, clock: &crate::clock::Clock, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ServiceError::Invalid(vec![FieldError::new(
            "name",
            "a token name is one line of 1–100 characters",
        )]));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let token = format!("tdg_{}", URL_SAFE_NO_PAD.encode(bytes));
    let mut tx = store.write().await?;
    tx.insert_api_token(Uuid::now_v7(), name, &sha256_hex(&token), clock.now()).await?;
    tx.commit().await?;
    Ok(token)
}

/// The token's row if the bearer string is a live token.
pub async fn authenticate_token(ctx: &Context, bearer: &str) -> Result<Option<ApiTokenRow>> {
    if !bearer.starts_with("tdg_") || bearer.len() > 100 {
        return Ok(None);
    }
    let mut tx = ctx.store.write().await?;
    let row = tx.use_api_token(&sha256_hex(bearer), ctx.clock.now()).await?;
    tx.commit().await?;
    Ok(row)
}
