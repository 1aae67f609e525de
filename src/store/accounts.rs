//! Organiser accounts and API tokens (both stored hashed).

use super::{Result, Tx, conflict_on_unique, execute, on_backend};
use crate::domain::Role;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiTokenRow {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl Tx {
    pub async fn insert_user(
        &mut self,
        id: Uuid,
        email_norm: &str,
        password_hash: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<()> {
        execute!(
            self,
            sqlx::query("INSERT INTO users (id, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)",)
                .bind(id)
                .bind(email_norm)
                .bind(password_hash)
                .bind(role)
                .bind(now),
            conflict_on_unique("an organiser with that address")
        );
        Ok(())
    }

    pub async fn user_count(&mut self) -> Result<i64> {
        let n = on_backend!(self, c => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(c).await?);
        Ok(n)
    }

    pub async fn insert_api_token(&mut self, id: Uuid, name: &str, token_hash: &str, now: DateTime<Utc>) -> Result<()> {
        execute!(
            self,
            sqlx::query("INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(name)
                .bind(token_hash)
                .bind(now)
        );
        Ok(())
    }

    /// The live (unrevoked) token with this hash, noting its use.
    pub async fn use_api_token(&mut self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<ApiTokenRow>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL
             RETURNING id, name, created_at, last_used_at",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }
}

/// An organiser account, with its password hash (for logging in).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    /// Normalised (lower-case) address.
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A live session and the organiser it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An API token as the token list shows it (never its hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiTokenSummary {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new session, before it is stored.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub user_id: Uuid,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl Tx {
    pub async fn user_by_email(&mut self, email_norm: &str) -> Result<Option<UserRow>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT id, email, password_hash, role, created_at, last_login_at FROM users WHERE email = $1",
        )
        .bind(email_norm)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    /// Every organiser account, by address.
    pub async fn users(&mut self) -> Result<Vec<UserRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, email, password_hash, role, created_at, last_login_at FROM users ORDER BY email",
        )
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    pub async fn note_login(&mut self, user_id: Uuid, now: DateTime<Utc>) -> Result<()> {
        execute!(self, sqlx::query("UPDATE users SET last_login_at = $2 WHERE id = $1").bind(user_id).bind(now));
        Ok(())
    }

    pub async fn insert_session(&mut self, s: &NewSession<'_>) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at, ip, user_agent)
             VALUES ($1, $2, $3, $3, $4, $5, $6)",
            )
            .bind(s.id_hash)
            .bind(s.user_id)
            .bind(s.now)
            .bind(s.expires_at)
            .bind(s.ip)
            .bind(s.user_agent)
        );
        Ok(())
    }

    /// The session with this hash if it has neither reached its absolute
    /// expiry (`now`) nor been idle since `idle_cutoff`.
    pub async fn live_session(
        &mut self,
        id_hash: &str,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Option<SessionRow>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT s.user_id, u.email, u.role, s.created_at, s.last_seen_at, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3",
        )
        .bind(id_hash)
        .bind(now)
        .bind(idle_cutoff)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    pub async fn touch_session(&mut self, id_hash: &str, now: DateTime<Utc>) -> Result<()> {
        execute!(self, sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1").bind(id_hash).bind(now));
        Ok(())
    }

    pub async fn delete_session(&mut self, id_hash: &str) -> Result<()> {
        execute!(self, sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash));
        Ok(())
    }

    /// Forgets sessions past their absolute expiry or idle since `idle_cutoff`.
    pub async fn delete_dead_sessions(&mut self, now: DateTime<Utc>, idle_cutoff: DateTime<Utc>) -> Result<u64> {
        let n = execute!(
            self,
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
                .bind(now)
                .bind(idle_cutoff)
        );
        Ok(n)
    }

    /// Login failures recorded for `key_hash` at or after `since`.
    pub async fn login_failures_since(&mut self, key_hash: &str, since: DateTime<Utc>) -> Result<i64> {
        let n = on_backend!(self, c => sqlx::query_scalar(
            "SELECT COUNT(*) FROM login_failures WHERE key_hash = $1 AND failed_at >= $2",
        )
        .bind(key_hash)
        .bind(since)
        .fetch_one(c)
        .await?);
        Ok(n)
    }

    /// Records a failure under `key_hash`, naming the account tried
    /// (`account_hash`) so the account can be unlocked.
    pub async fn insert_login_failure(
        &mut self,
        id: Uuid,
        key_hash: &str,
        account_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        execute!(
            self,
            sqlx::query("INSERT INTO login_failures (id, key_hash, account_hash, failed_at) VALUES ($1, $2, $3, $4)",)
                .bind(id)
                .bind(key_hash)
                .bind(account_hash)
                .bind(at)
        );
        Ok(())
    }

    pub async fn delete_login_failure(&mut self, id: Uuid) -> Result<()> {
        execute!(self, sqlx::query("DELETE FROM login_failures WHERE id = $1").bind(id));
        Ok(())
    }

    /// Forgets every failure for one key (an account after a good login).
    pub async fn clear_login_failures(&mut self, key_hash: &str) -> Result<()> {
        execute!(self, sqlx::query("DELETE FROM login_failures WHERE key_hash = $1").bind(key_hash));
        Ok(())
    }

    /// Forgets every failure recorded against one account, from any
    /// address (`tidings user unlock`).
    pub async fn clear_account_login_failures(&mut self, account_hash: &str) -> Result<u64> {
        let n = execute!(self, sqlx::query("DELETE FROM login_failures WHERE account_hash = $1").bind(account_hash));
        Ok(n)
    }

    /// Forgets failures older than `before`: they no longer count.
    pub async fn prune_login_failures(&mut self, before: DateTime<Utc>) -> Result<()> {
        execute!(self, sqlx::query("DELETE FROM login_failures WHERE failed_at < $1").bind(before));
        Ok(())
    }

    pub async fn insert_setup_token(
        &mut self,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        execute!(
            self,
            sqlx::query("INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)")
                .bind(token_hash)
                .bind(now)
                .bind(expires_at)
        );
        Ok(())
    }

    /// True if a setup token with this hash exists and has not expired.
    pub async fn setup_token_is_live(&mut self, token_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        let n: i64 = on_backend!(self, c => sqlx::query_scalar(
            "SELECT COUNT(*) FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_one(c)
        .await?);
        Ok(n > 0)
    }

    /// Deletes every setup token and returns the hashes of those still live
    /// at `now`. Deleting them all in the transaction that creates the
    /// first account means two concurrent setups cannot both succeed: the
    /// second waits on the first's row locks and then finds nothing.
    pub async fn take_setup_tokens(&mut self, now: DateTime<Utc>) -> Result<Vec<String>> {
        let rows: Vec<(String, DateTime<Utc>)> = on_backend!(self, c => sqlx::query_as(
            "DELETE FROM setup_tokens RETURNING token_hash, expires_at",
        )
        .fetch_all(c)
        .await?);
        Ok(rows.into_iter().filter(|(_, expires_at)| *expires_at > now).map(|(hash, _)| hash).collect())
    }

    /// Every API token, newest first.
    pub async fn api_tokens(&mut self) -> Result<Vec<ApiTokenSummary>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY created_at DESC, id DESC",
        )
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Revokes a live token; false if there is no such live token.
    pub async fn revoke_api_token(&mut self, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
        let n = execute!(
            self,
            sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now)
        );
        Ok(n == 1)
    }
}
