//! Daily housekeeping: the retention purge. The job's next run time and
//! lease live in the database, so however many workers run, the purge runs
//! once a day; after a crash its lease expires and another worker runs it.

use super::{Shutdown, sleep_or_shutdown};
use crate::services::{Context, ServiceError, retention};
use crate::store::{PurgeCounts, StoreError};
use std::time::Duration;

const RETENTION_JOB: &str = "retention-purge";
const PERIOD: chrono::Duration = chrono::Duration::days(1);
const LEASE: chrono::Duration = chrono::Duration::minutes(30);
/// How often a worker looks whether the job is due.
const POLL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct MaintenanceWorker {
    ctx: Context,
}

impl MaintenanceWorker {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Runs the purge if it is due and no other worker is running it;
    /// `None` when it was not this worker's to run.
    pub async fn run_once(&self) -> Result<Option<PurgeCounts>, MaintenanceError> {
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.write().await?;
        let mine = tx.claim_maintenance_job(RETENTION_JOB, now, now + LEASE).await?;
        tx.commit().await?;
        if !mine {
            return Ok(None);
        }
        let counts = retention::purge(&self.ctx).await?;
        let mut tx = self.ctx.store.write().await?;
        tx.finish_maintenance_job(RETENTION_JOB, now + PERIOD).await?;
        tx.commit().await?;
        Ok(Some(counts))
    }

    pub async fn run(self, mut shutdown: Shutdown) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::error!(error = %e, "retention purge failed; will retry");
            }
            if sleep_or_shutdown(POLL, &mut shutdown).await {
                return;
            }
        }
    }
}
