//! Organiser accounts and API tokens (both stored hashed).

use super::{Result, Tx, conflict_on_unique, on_backend};
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
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_backend!(self, c => sqlx::query(
            "INSERT INTO users (id, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(email_norm)
        .bind(password_hash)
        .bind(role)
        .bind(now)
        .execute(c)
        .await
        .map_err(conflict_on_unique("an organiser with that address"))?.rows_affected());
        Ok(())
    }

    pub async fn user_count(&mut self) -> Result<i64> {
        let n = on_backend!(self, c => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(c).await?);
        Ok(n)
    }

    pub async fn insert_api_token(&mut self, id: Uuid, name: &str, token_hash: &str, now: DateTime<Utc>) -> Result<()> {
        on_backend!(self, c => sqlx::query("INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(name)
            .bind(token_hash)
            .bind(now)
            .execute(c)
            .await?.rows_affected());
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
