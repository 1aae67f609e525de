//! Addresses that must never be mailed again, kept only as keyed fingerprints
//! (`domain::AddressKey`; bare SHA-256 rows from before issue 16 are marked
//! `legacy`, see `services::fingerprints`).

use super::batch::{Rows, Statement};
use super::{OBJECTED, Result, Tx, execute, on_backend};
use chrono::{DateTime, Utc};

impl Tx {
    pub async fn is_suppressed(&mut self, email_hash: &str) -> Result<bool> {
        // COUNT(*) is BIGINT on both backends (a bare `SELECT 1` is INT4 on
        // PostgreSQL but INTEGER on SQLite).
        let found: i64 = on_backend!(self, c => sqlx::query_scalar("SELECT COUNT(*) FROM suppressions WHERE email_hash = $1")
            .bind(email_hash)
            .fetch_one(c)
            .await?);
        Ok(found > 0)
    }

    /// Suppresses an address for `reason`. An address already suppressed
    /// keeps its first reason, except an objection: every other reason
    /// (erasure, complaint, bounce) is stronger, and only an objection lets
    /// the person start a new double opt-in of their own
    /// (`services::standing`), so it must not outlive one of them.
    pub async fn suppress(&mut self, email_hash: &str, reason: &str, now: DateTime<Utc>) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "INSERT INTO suppressions (email_hash, reason, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (email_hash) DO UPDATE SET reason = excluded.reason
             WHERE suppressions.reason = $4",
            )
            .bind(email_hash)
            .bind(reason)
            .bind(now)
            .bind(OBJECTED)
        );
        Ok(())
    }
}

impl Tx {
    /// Notes that someone tried to subscribe these suppressed addresses.
    pub async fn note_suppressed_attempts(&mut self, hashes: &[String], now: DateTime<Utc>) -> Result<()> {
        self.write_rows(
            Statement::new("UPDATE suppressions SET last_attempt_at = $1 WHERE email_hash {in_set}")
                .bind(now)
                .rows(Rows::new().text("email_hash", hashes.iter().map(String::as_str))),
        )
        .await
    }
}
