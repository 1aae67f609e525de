//! The retention purge (run daily by `workers::maintenance`): subscriptions
//! never confirmed are deleted `TIDINGS_RETENTION_PENDING_DAYS` after the
//! first request (repeated requests do not postpone it), and the consent evidence of a withdrawn subscription
//! `TIDINGS_RETENTION_WITHDRAWN_DAYS` after the withdrawal; so is that of a
//! complained or bounced subscription, that long after the complaint or
//! bounce (the complaint or bounce entry itself, and the suppression, stay). Suppressions are
//! never purged. What each run deleted goes to the audit log, in the same
//! transaction as the deletions.

use super::audit::{self, Action, Who};
use super::{Context, Result};
use crate::store::PurgeCounts;
use chrono::Duration;

pub async fn purge(ctx: &Context) -> Result<PurgeCounts> {
    let now = ctx.clock.now();
    let config = &ctx.config;
    let mut counts = PurgeCounts::default();
    let mut tx = ctx.store.write().await?;
    if config.retention_pending_days > 0 {
        let cutoff = now - Duration::days(i64::from(config.retention_pending_days));
        tx.purge_unconfirmed(cutoff, &mut counts).await?;
    }
    if config.retention_withdrawn_days > 0 {
        let cutoff = now - Duration::days(i64::from(config.retention_withdrawn_days));
        tx.purge_withdrawn_evidence(cutoff, &mut counts).await?;
    }
    let detail = serde_json::json!({
        "counts": counts,
        "pending_days": config.retention_pending_days,
        "withdrawn_days": config.retention_withdrawn_days,
    });
    let action = Action { what: "retention.purge", target: "", status: 0, detail: detail.to_string() };
    tx.insert_audit(&audit::entry(&Who::system(), action, now)).await?;
    tx.commit().await?;
    tracing::info!(?counts, "retention purge done");
    Ok(counts)
}
