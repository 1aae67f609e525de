//! The one-time conversion of stored address fingerprints to keyed ones
//! (issue 16 §5; the flow is `services::fingerprints`): reading the held
//! addresses page by page, and re-keying subscribers, suppressions and
//! bounce records.

use super::{Result, Tx, execute, on_backend};
use uuid::Uuid;

/// A subscriber's address as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredAddress {
    pub id: Uuid,
    pub email: String,
    pub email_norm: String,
}

impl Tx {
    /// Up to `limit` subscribers' addresses, by id, after `after`.
    pub async fn stored_addresses_after(&mut self, after: Option<Uuid>, limit: i64) -> Result<Vec<StoredAddress>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, email, email_norm FROM subscribers WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Rewrites a subscriber's address and fingerprint, unless another
    /// subscriber already has that normalised address (then only the
    /// fingerprint of the address it has is written, and `false` returned).
    pub async fn rewrite_stored_address(
        &mut self,
        id: Uuid,
        email: &str,
        email_norm: &str,
        email_hash: &str,
        kept_hash: &str,
    ) -> Result<bool> {
        let n = execute!(
            self,
            sqlx::query(
                "UPDATE subscribers SET email = $2, email_norm = $3, email_hash = $4
             WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM subscribers o WHERE o.email_norm = $3 AND o.id <> $1)",
            )
            .bind(id)
            .bind(email)
            .bind(email_norm)
            .bind(email_hash)
        );
        if n > 0 {
            return Ok(true);
        }
        execute!(self, sqlx::query("UPDATE subscribers SET email_hash = $2 WHERE id = $1").bind(id).bind(kept_hash));
        Ok(false)
    }

    /// Replaces the suppression `old` (a legacy bare hash) by `new` (keyed),
    /// keeping its reason and dates; if `new` is already suppressed, the
    /// legacy row just goes.
    pub async fn rekey_suppression(&mut self, old: &str, new: &str) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "INSERT INTO suppressions (email_hash, reason, created_at, last_attempt_at, legacy)
             SELECT $2, reason, created_at, last_attempt_at, FALSE FROM suppressions WHERE email_hash = $1
             ON CONFLICT (email_hash) DO NOTHING",
            )
            .bind(old)
            .bind(new)
        );
        execute!(self, sqlx::query("DELETE FROM suppressions WHERE email_hash = $1 AND legacy").bind(old));
        Ok(())
    }

    /// Bounce records tied to a subscriber still held, with that
    /// subscriber's normalised address.
    pub async fn bounce_events_of_subscribers(&mut self) -> Result<Vec<(Uuid, String)>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT b.id, s.email_norm FROM bounce_events b JOIN subscribers s ON s.id = b.subscriber_id
             WHERE b.email_hash IS NOT NULL",
        )
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    pub async fn set_bounce_fingerprint(&mut self, id: Uuid, email_hash: &str) -> Result<()> {
        execute!(self, sqlx::query("UPDATE bounce_events SET email_hash = $2 WHERE id = $1").bind(id).bind(email_hash));
        Ok(())
    }

    /// Drops the bare fingerprints of bounce records no held subscriber is
    /// tied to (they cannot be keyed; nothing reads them).
    pub async fn forget_unkeyed_bounce_fingerprints(&mut self) -> Result<u64> {
        let n = execute!(
            self,
            sqlx::query(
                "UPDATE bounce_events SET email_hash = NULL WHERE subscriber_id IS NULL AND email_hash IS NOT NULL",
            )
        );
        Ok(n)
    }
}
