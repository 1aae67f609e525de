//! Single-use links that release a supporter's data copy.

use super::{Result, Tx, execute, on_backend};
use chrono::{DateTime, Utc};
use uuid::Uuid;

impl Tx {
    pub async fn insert_data_copy_token(
        &mut self,
        token_hash: &str,
        subscriber_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        execute!(self, sqlx::query(
            "INSERT INTO data_copy_tokens (token_hash, subscriber_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(subscriber_id)
        .bind(now)
        .bind(expires_at));
        Ok(())
    }

    /// How many links were issued to this person since `since` (a limit
    /// against mail bombing through the preferences page).
    pub async fn data_copy_tokens_since(&mut self, subscriber_id: Uuid, since: DateTime<Utc>) -> Result<i64> {
        let n = on_backend!(self, c => sqlx::query_scalar(
            "SELECT COUNT(*) FROM data_copy_tokens WHERE subscriber_id = $1 AND created_at >= $2",
        )
        .bind(subscriber_id)
        .bind(since)
        .fetch_one(c)
        .await?);
        Ok(n)
    }

    /// The person a live link belongs to, without using it.
    pub async fn peek_data_copy_token(&mut self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Uuid>> {
        let id = on_backend!(self, c => sqlx::query_scalar(
            "SELECT subscriber_id FROM data_copy_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(c)
        .await?);
        Ok(id)
    }

    /// Uses a live link once; `None` if unknown, used or expired.
    pub async fn use_data_copy_token(&mut self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Uuid>> {
        let id = on_backend!(self, c => sqlx::query_scalar(
            "UPDATE data_copy_tokens SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
             RETURNING subscriber_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(c)
        .await?);
        Ok(id)
    }
}
