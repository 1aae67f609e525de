//! Runs uploaded CSV imports (`POST /api/v1/imports`, the admin upload
//! form) in the background.
//!
//! Each step claims one import under a lease (queued, or running with a
//! lease that expired because its worker died) and works through it from
//! its checkpoint, batch by batch; each batch commits with the checkpoint
//! and renews the lease (see `services::imports`). On shutdown the import
//! is handed back at its checkpoint. Any instance can run any import: the
//! file is read from the database.
//!
//! Also here: uploads that stopped arriving an hour ago are failed and
//! their stored pieces deleted, and an import left running by a
//! `tidings import` command that died is marked failed (its file was never
//! stored, so nobody else can finish it).

use super::{Shutdown, sleep_or_shutdown};
use crate::services::Context;
use crate::services::imports::source::StoredUpload;
use crate::services::imports::{self, ImportError, ProgressFn, RunEnd, RunOptions};
use crate::store::StoreError;
use std::time::Duration;
use uuid::Uuid;

/// An import whose worker has died this many times is given up on.
pub const MAX_ATTEMPTS: i64 = 5;
const IDLE_POLL: Duration = Duration::from_secs(2);
/// An upload with no new piece for this long is abandoned.
const STALLED_UPLOAD: chrono::Duration = chrono::Duration::hours(1);

#[derive(Debug, thiserror::Error)]
pub enum ImportWorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// An import was claimed (and how its run ended).
    pub ran: Option<RunEnd>,
    /// Stalled uploads failed.
    pub abandoned: u64,
}

#[derive(Clone)]
pub struct ImportWorker {
    ctx: Context,
    /// This worker's name on leases.
    owner: String,
    on_batch: Option<ProgressFn>,
}

impl ImportWorker {
    pub fn new(ctx: Context) -> Self {
        Self { ctx, owner: format!("worker:{}", Uuid::now_v7()), on_batch: None }
    }

    /// Calls `f` after every batch this worker commits.
    pub fn on_batch(mut self, f: ProgressFn) -> Self {
        self.on_batch = Some(f);
        self
    }

    /// Claims one import, if any is waiting, and runs it to its end (or
    /// until shutdown).
    pub async fn run_once(&self, shutdown: &Shutdown) -> Result<Step, ImportWorkerError> {
        let now = self.ctx.clock.now();
        let lease = chrono::Duration::from_std(self.ctx.config.worker_lease).unwrap_or(chrono::Duration::minutes(2));
        let mut tx = self.ctx.store.write().await?;
        let abandoned = tx.fail_stalled_uploads(now - STALLED_UPLOAD, now).await?;
        let claimed = tx.claim_import(now, &self.owner, now + lease).await?;
        tx.commit().await?;
        let mut step = Step { ran: None, abandoned };
        let Some(job) = claimed else { return Ok(step) };

        let gave_up = if job.source != "upload" {
            Some("the `tidings import` command running this import stopped before the end; run it again")
        } else if job.attempts > MAX_ATTEMPTS {
            Some("this import stopped its worker too many times and was given up")
        } else {
            None
        };
        if let Some(why) = gave_up {
            let mut tx = self.ctx.store.write().await?;
            tx.finish_import(
                job.id,
                Some(&self.owner),
                crate::store::ImportEnd::Failed,
                Some(why),
                self.ctx.clock.now(),
            )
            .await?;
            tx.commit().await?;
            tracing::warn!(import = %job.id, reason = why, "import failed");
            step.ran = Some(RunEnd::Ended);
            return Ok(step);
        }
        tracing::info!(import = %job.id, from_line = job.next_line, "running import");
        let source = StoredUpload::new(self.ctx.store.clone(), job.id, job.bytes_done);
        let opts =
            RunOptions { owner: self.owner.clone(), shutdown: Some(shutdown.clone()), on_batch: self.on_batch.clone() };
        step.ran = Some(imports::run(&self.ctx, &job, source, &opts).await?);
        Ok(step)
    }

    /// Runs until shutdown, looking for work every two seconds when idle.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut pause = IDLE_POLL;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.run_once(&shutdown).await {
                Ok(step) if step.ran.is_some() => {
                    pause = IDLE_POLL;
                    continue;
                }
                Ok(_) => IDLE_POLL,
                Err(e) => {
                    // The lease runs out and the import is picked up again.
                    tracing::error!(error = %e, "import step failed; will retry");
                    pause = (pause * 2).min(Duration::from_secs(60));
                    pause
                }
            };
            if sleep_or_shutdown(wait, &mut shutdown).await {
                return;
            }
        }
    }
}
