//! The audience an update would reach, counted from the snapshot itself.
//!
//! The review page of a send shows how many people would receive it. The
//! count must be the snapshot's, not a look-alike: so the service takes the
//! real snapshot ([`Tx::snapshot_audience`]) inside a transaction it then
//! drops, and this module reads what that snapshot wrote. There is no second
//! rule for who is in the audience to drift from the first.

use super::{Result, Tx, on_backend};
use uuid::Uuid;

/// One of an update's lists, with how many people of the snapshot are
/// confirmed on it (someone on two lists counts under both, and once in
/// the snapshot's total).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AudienceListRow {
    pub list_id: Uuid,
    pub slug: String,
    pub name: String,
    pub people: i64,
}

impl Tx {
    /// Per list of the update, the people among its deliveries who are
    /// confirmed on that list; read after [`Tx::snapshot_audience`].
    pub async fn audience_by_list(&mut self, update_id: Uuid) -> Result<Vec<AudienceListRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT l.id AS list_id, l.slug, l.name, COUNT(d.subscriber_id) AS people
             FROM update_lists ul
             JOIN lists l ON l.id = ul.list_id
             LEFT JOIN subscriptions sub ON sub.list_id = ul.list_id AND sub.status = 'confirmed'
             LEFT JOIN deliveries d ON d.update_id = ul.update_id AND d.subscriber_id = sub.subscriber_id
             WHERE ul.update_id = $1
             GROUP BY l.id, l.slug, l.name
             ORDER BY l.slug",
        )
        .bind(update_id)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }
}

impl Tx {
    /// Ends the transaction without keeping anything it wrote.
    pub async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}
