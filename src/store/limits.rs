//! Limits on what organisers and callers may do, kept in the database so
//! they hold across restarts and instances: test sends counted per
//! organiser (for the hourly cap), and the Mailgun webhook signatures
//! already accepted (so a captured request cannot be replayed), and the
//! sign-up challenges already used (so one solution counts once).

use super::{Result, Tx, execute, on_backend};
use chrono::{DateTime, Utc};
use uuid::Uuid;

impl Tx {
    /// On PostgreSQL, holds a lock on `organiser`'s test sends until the
    /// transaction ends, so two requests cannot both read the count and
    /// pass the cap. SQLite's write transaction is already exclusive.
    pub async fn lock_test_sends(&mut self, organiser: &str) -> Result<()> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tidings.test_sends:' || $1))")
                .bind(organiser)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// Test copies `organiser` has sent at or after `since`.
    pub async fn test_sends_since(&mut self, organiser: &str, since: DateTime<Utc>) -> Result<i64> {
        let n: Option<i64> = on_backend!(self, c => sqlx::query_scalar(
            "SELECT CAST(SUM(recipients) AS BIGINT) FROM test_sends WHERE organiser = $1 AND sent_at >= $2",
        )
        .bind(organiser)
        .bind(since)
        .fetch_one(c)
        .await?);
        Ok(n.unwrap_or(0))
    }

    /// Records `recipients` test copies sent by `organiser` (and forgets
    /// records too old to count against any cap).
    pub async fn insert_test_send(
        &mut self,
        id: Uuid,
        organiser: &str,
        recipients: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let old = now - chrono::Duration::days(1);
        execute!(self, sqlx::query("DELETE FROM test_sends WHERE sent_at < $1").bind(old));
        execute!(
            self,
            sqlx::query("INSERT INTO test_sends (id, organiser, recipients, sent_at) VALUES ($1, $2, $3, $4)",)
                .bind(id)
                .bind(organiser)
                .bind(recipients)
                .bind(now)
        );
        Ok(())
    }

    /// Notes a webhook signature token as used. `false` if it was already
    /// seen (a replay). Tokens seen before `forget_before` are forgotten
    /// first: their signatures are too old to be accepted anyway.
    pub async fn note_webhook_signature(
        &mut self,
        token: &str,
        now: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<bool> {
        execute!(self, sqlx::query("DELETE FROM webhook_signatures WHERE seen_at < $1").bind(forget_before));
        let inserted = execute!(
            self,
            sqlx::query(
                "INSERT INTO webhook_signatures (token, seen_at) VALUES ($1, $2) ON CONFLICT (token) DO NOTHING",
            )
            .bind(token)
            .bind(now)
        );
        Ok(inserted == 1)
    }

    /// Forgets a webhook signature token (its request was not applied, so a
    /// retry must get through).
    pub async fn forget_webhook_signature(&mut self, token: &str) -> Result<()> {
        execute!(self, sqlx::query("DELETE FROM webhook_signatures WHERE token = $1").bind(token));
        Ok(())
    }

    /// Notes a sign-up challenge as used until `expires_at`. `false` if it
    /// was already used (a replay). Challenges expired at `now` are
    /// forgotten first: they would be refused anyway.
    pub async fn note_used_challenge(
        &mut self,
        challenge: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        execute!(self, sqlx::query("DELETE FROM used_challenges WHERE expires_at <= $1").bind(now));
        let inserted = execute!(self, sqlx::query(
            "INSERT INTO used_challenges (challenge, expires_at) VALUES ($1, $2) ON CONFLICT (challenge) DO NOTHING",
        )
        .bind(challenge)
        .bind(expires_at));
        Ok(inserted == 1)
    }
}
