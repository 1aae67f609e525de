//! Key/value settings kept in the database (e.g. the generated secret key).

use super::{Result, Tx, execute, on_backend};

impl Tx {
    pub async fn setting(&mut self, key: &str) -> Result<Option<String>> {
        let value = on_backend!(self, c => sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(c)
            .await?);
        Ok(value)
    }

    /// Stores `value` unless the key already has one; returns the value in
    /// force afterwards (so two instances starting at once agree).
    pub async fn setting_or_insert(&mut self, key: &str, value: &str) -> Result<String> {
        execute!(
            self,
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(value)
        );
        Ok(self.setting(key).await?.unwrap_or_else(|| value.to_owned()))
    }
}
