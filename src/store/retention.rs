//! Retention: what the daily purge deletes. Suppressions are never touched,
//! nor the record of an objection to all mail (`objections`), nor a person
//! who has one.

use super::{Result, Tx, execute};
use chrono::{DateTime, Utc};

/// What one purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeCounts {
    /// Subscriptions never confirmed, first requested before the cutoff.
    pub unconfirmed_subscriptions: u64,
    /// Ledger entries of those subscriptions.
    pub unconfirmed_events: u64,
    /// People left with nothing once those were gone.
    pub subscribers: u64,
    /// Ledger entries of subscriptions withdrawn before the cutoff.
    pub withdrawn_events: u64,
    /// Consent evidence of subscriptions that complained or bounced before
    /// the cutoff (the complaint or bounce entry itself is kept).
    pub complained_bounced_events: u64,
    /// Transactional mail (confirmations, data copies) settled before the cutoff.
    pub outbox_messages: u64,
}

impl Tx {
    /// Deletes subscriptions that were never confirmed and first requested
    /// (since they last became pending) before `cutoff`, with their ledger entries, then anyone left with no
    /// subscription and no ledger at all (their confirmation tokens go with
    /// them), and transactional mail settled before `cutoff`.
    pub async fn purge_unconfirmed(&mut self, cutoff: DateTime<Utc>, counts: &mut PurgeCounts) -> Result<()> {
        counts.unconfirmed_events = execute!(
            self,
            sqlx::query(
                "DELETE FROM consent_events WHERE EXISTS (
                 SELECT 1 FROM subscriptions s
                 WHERE s.subscriber_id = consent_events.subscriber_id AND s.list_id = consent_events.list_id
                   AND s.status = 'pending' AND s.confirmed_at IS NULL
                   AND COALESCE(s.pending_since, s.created_at) < $1)",
            )
            .bind(cutoff)
        );
        counts.unconfirmed_subscriptions = execute!(
            self,
            sqlx::query(
                "DELETE FROM subscriptions
             WHERE status = 'pending' AND confirmed_at IS NULL AND COALESCE(pending_since, created_at) < $1",
            )
            .bind(cutoff)
        );
        counts.subscribers = execute!(
            self,
            sqlx::query(
                "DELETE FROM subscribers
             WHERE created_at < $1
               AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.subscriber_id = subscribers.id)
               AND NOT EXISTS (SELECT 1 FROM consent_events e WHERE e.subscriber_id = subscribers.id)
               AND NOT EXISTS (SELECT 1 FROM objections o WHERE o.subscriber_id = subscribers.id)",
            )
            .bind(cutoff)
        );
        counts.outbox_messages = execute!(
            self,
            sqlx::query("DELETE FROM outbox WHERE status IN ('sent', 'failed') AND created_at < $1",).bind(cutoff)
        );
        Ok(())
    }

    /// Deletes the ledger entries of subscriptions withdrawn (unsubscribed)
    /// before `cutoff`, and the consent evidence of those that complained or
    /// bounced before it. The subscription row stays, marked unsubscribed, so
    /// the person is still known not to want that list's mail.
    pub async fn purge_withdrawn_evidence(&mut self, cutoff: DateTime<Utc>, counts: &mut PurgeCounts) -> Result<()> {
        counts.withdrawn_events = execute!(
            self,
            sqlx::query(
                "DELETE FROM consent_events WHERE EXISTS (
                 SELECT 1 FROM subscriptions s
                 WHERE s.subscriber_id = consent_events.subscriber_id AND s.list_id = consent_events.list_id
                   AND s.status = 'unsubscribed' AND s.updated_at < $1)",
            )
            .bind(cutoff)
        );
        // Complained and bounced subscriptions: the consent evidence goes
        // the same way; the entry recording the complaint or bounce stays
        // beside the suppression it explains.
        counts.complained_bounced_events = execute!(
            self,
            sqlx::query(
                "DELETE FROM consent_events WHERE kind NOT IN ('complained', 'bounced') AND EXISTS (
                 SELECT 1 FROM subscriptions s
                 WHERE s.subscriber_id = consent_events.subscriber_id AND s.list_id = consent_events.list_id
                   AND s.status IN ('complained', 'bounced') AND s.updated_at < $1)",
            )
            .bind(cutoff)
        );
        Ok(())
    }
}
