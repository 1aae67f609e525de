//! Organiser accounts, API tokens, and the first-run setup link.
//!
//! Passwords are hashed with argon2id (the crate's recommended parameters)
//! on a blocking thread, so a login never stalls other requests. Tokens of
//! every kind (API, setup) are shown once and stored only as SHA-256.
//! Sessions and login throttling live in [`super::sessions`].

use super::{Context, FieldError, Result, ServiceError};
use crate::clock::Clock;
use crate::domain::{EmailAddress, sha256_hex};
use crate::store::{ApiTokenRow, ApiTokenSummary, Store, Tx, UserRow};
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// An organiser's role (defined in `domain`, where the store can hold it).
pub use crate::domain::Role;

/// An organiser account as pages show it (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<UserRow> for Account {
    fn from(u: UserRow) -> Self {
        Self { id: u.id, role: u.role, email: u.email, created_at: u.created_at, last_login_at: u.last_login_at }
    }
}

/// Shortest password we accept: long passphrases beat complexity rules.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest: argon2 accepts anything, but nobody needs a megabyte.
const MAX_PASSWORD_CHARS: usize = 1024;

/// Checks a new account's address and password, reporting every problem.
fn parse_new_account(email: &str, password: &str) -> Result<EmailAddress> {
    let mut errors = Vec::new();
    let email = EmailAddress::parse(email).map_err(|e| errors.push(FieldError::from_parse("email", e))).ok();
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        errors.push(FieldError::new("password", "use at least 12 characters"));
    } else if chars > MAX_PASSWORD_CHARS {
        errors.push(FieldError::new("password", "use at most 1024 characters"));
    }
    match email {
        Some(email) if errors.is_empty() => Ok(email),
        _ => Err(ServiceError::Invalid(errors)),
    }
}

/// Argon2id with the crate's recommended parameters and a random salt, on a
/// blocking thread (it takes tens of milliseconds by design).
async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ServiceError::PasswordHash(e.to_string()))
    })
    .await
    .map_err(|e| ServiceError::PasswordHash(e.to_string()))?
}

/// A hash of a random password, verified against when the account does not
/// exist so that an unknown address takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut bytes = [0u8; 16];
        // If the OS generator fails, a fixed decoy still costs the same time.
        let _ = getrandom::fill(&mut bytes);
        // Hashing 16 bytes with the default parameters cannot fail; were it
        // to, an empty decoy only makes unknown addresses answer sooner.
        argon2::Argon2::default().hash_password(&bytes).map(|h| h.to_string()).unwrap_or_default()
    })
}

/// True if `password` matches `hash` (or, with no hash, after spending the
/// same time on the decoy and answering false).
pub(crate) async fn verify_password(password: &str, hash: Option<&str>) -> Result<bool> {
    let password = password.to_owned();
    let (hash, real) = match hash {
        Some(h) => (h.to_owned(), true),
        None => (decoy_hash().to_owned(), false),
    };
    tokio::task::spawn_blocking(move || {
        let ok = argon2::Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok();
        ok && real
    })
    .await
    .map_err(|e| ServiceError::PasswordHash(e.to_string()))
}

/// Creates an organiser account with an argon2id password hash.
pub async fn add_user(store: &Store, clock: &Clock, email: &str, password: &str, role: Role) -> Result<Uuid> {
    let email = parse_new_account(email, password)?;
    let hash = hash_password(password).await?;
    let id = Uuid::now_v7();
    let mut tx = store.write().await?;
    tx.insert_user(id, email.normalised(), &hash, role, clock.now()).await?;
    tx.commit().await?;
    Ok(id)
}

/// Every organiser account, by address.
pub async fn users(ctx: &Context) -> Result<Vec<Account>> {
    let mut tx = ctx.store.read().await?;
    Ok(tx.users().await?.into_iter().map(Account::from).collect())
}

/// A random password for `tidings user add` when none is given.
pub fn generate_password() -> Result<String> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Creates an API token and returns it in clear, once; only its hash is kept.
pub async fn create_token(store: &Store, clock: &Clock, name: &str) -> Result<String> {
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

/// Every API token, newest first, for the token page.
pub async fn tokens(ctx: &Context) -> Result<Vec<ApiTokenSummary>> {
    let mut tx = ctx.store.read().await?;
    Ok(tx.api_tokens().await?)
}

/// Revokes a token at once: its next request is refused.
pub async fn revoke_token(ctx: &Context, id: Uuid) -> Result<()> {
    let mut tx = ctx.store.write().await?;
    if !tx.revoke_api_token(id, ctx.clock.now()).await? {
        return Err(ServiceError::NotFound("live API token"));
    }
    tx.commit().await?;
    Ok(())
}

/// How long a first-run setup link works.
pub const SETUP_LINK_TTL: chrono::Duration = chrono::Duration::hours(24);

/// While no organiser account exists, issues a one-time setup token (shown
/// once; only its hash is kept) and returns it. `None` once any account
/// exists. Each call issues a new token; every one dies with the first
/// account.
pub async fn issue_setup_token(store: &Store, clock: &Clock) -> Result<Option<String>> {
    let mut tx = store.write().await?;
    if tx.user_count().await? > 0 {
        return Ok(None);
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let now = clock.now();
    tx.insert_setup_token(&sha256_hex(&token), now, now + SETUP_LINK_TTL).await?;
    tx.commit().await?;
    Ok(Some(token))
}

/// Accepts only the shape [`issue_setup_token`] hands out, so garbage never
/// reaches SQL.
fn setup_token_hash(raw: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    (bytes.len() == 32).then(|| sha256_hex(raw))
}

/// True while `token` can still create the first account.
pub async fn setup_token_is_live(ctx: &Context, token: &str) -> Result<bool> {
    let Some(hash) = setup_token_hash(token) else { return Ok(false) };
    let mut tx = ctx.store.read().await?;
    Ok(tx.user_count().await? == 0 && tx.setup_token_is_live(&hash, ctx.clock.now()).await?)
}

/// Creates the first admin account with a live setup token; every setup
/// token dies with it. [`ServiceError::Gone`] if the token is unknown,
/// expired, or an account already exists.
pub async fn complete_setup(ctx: &Context, token: &str, email: &str, password: &str) -> Result<Account> {
    let hash = setup_token_hash(token).ok_or(ServiceError::Gone)?;
    let email = parse_new_account(email, password)?;
    let password_hash = hash_password(password).await?;
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let live = tx.take_setup_tokens(now).await?;
    if !live.contains(&hash) || tx.user_count().await? > 0 {
        // Dropping `tx` rolls the deletion back: a refused attempt must not
        // spend the other links.
        return Err(ServiceError::Gone);
    }
    let id = Uuid::now_v7();
    tx.insert_user(id, email.normalised(), &password_hash, Role::Admin, now).await?;
    let account = account_in(&mut tx, email.normalised()).await?;
    tx.commit().await?;
    Ok(account)
}

async fn account_in(tx: &mut Tx, email_norm: &str) -> Result<Account> {
    Ok(tx.user_by_email(email_norm).await?.ok_or(ServiceError::NotFound("organiser"))?.into())
}
