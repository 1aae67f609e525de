//! How much work is waiting, for `/metrics`. Each count is served by a
//! partial or leading-column index (`deliveries_due`, `deliveries_leased`,
//! `outbox_due`), so a scrape costs in proportion to the queue, not to the
//! history of every delivery ever made.

use super::{Result, Tx, on_backend};

/// Rows waiting in the shared queues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Bulk messages not yet sent (due now or backing off).
    pub deliveries_pending: i64,
    /// Bulk messages claimed by a worker and in flight.
    pub deliveries_sending: i64,
    /// Transactional messages not yet sent.
    pub outbox_pending: i64,
}

impl Tx {
    pub async fn queue_depth(&mut self) -> Result<QueueDepth> {
        let (deliveries_pending, deliveries_sending, outbox_pending) = on_backend!(self, c => sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE status = 'pending'),
                    (SELECT COUNT(*) FROM deliveries WHERE status = 'sending'),
                    (SELECT COUNT(*) FROM outbox WHERE status = 'pending')",
        )
        .fetch_one(c)
        .await?);
        Ok(QueueDepth { deliveries_pending, deliveries_sending, outbox_pending })
    }
}
