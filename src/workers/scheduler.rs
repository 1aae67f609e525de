//! Runs recurring schedules when their tick comes.
//!
//! Each step asks for the schedules that are due and runs each through
//! [`schedules::run`], which claims the tick by compare-and-set in the same
//! transaction that creates the update and starts sending it. So any number
//! of workers (or one restarted after a crash) can step at once: a tick is
//! run by exactly one of them, and the delivery worker then sends it.
//!
//! Between steps the worker sleeps until the earliest tick, but never more
//! than [`MAX_SLEEP`], so a schedule created or changed meanwhile is picked
//! up promptly without any signal between web and worker processes.

use super::{Shutdown, sleep_or_shutdown};
use crate::services::schedules::{self, RunOutcome};
use crate::services::{Context, ServiceError};
use std::time::Duration;

/// The longest sleep between steps.
pub const MAX_SLEEP: Duration = Duration::from_secs(15);
const MIN_SLEEP: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Ticks run that started an update.
    pub sent: usize,
    /// Ticks run with nothing to send (a digest with nothing new).
    pub skipped: usize,
    /// Due when listed, but another worker ran them first.
    pub lost: usize,
    /// Runs that failed (logged; their tick stays due and is retried).
    pub failed: usize,
}

#[derive(Clone)]
pub struct SchedulerWorker {
    ctx: Context,
}

impl SchedulerWorker {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Runs every schedule that is due now, once. A schedule whose run
    /// fails is logged and left due, and the others still run.
    pub async fn run_once(&self, shutdown: &Shutdown) -> Result<Step, SchedulerError> {
        let mut step = Step::default();
        let due = schedules::due(&self.ctx).await?;
        // Sender authentication is checked once per step with work to do; a
        // failing check holds the runs (see `schedules::run`).
        let held = match due.is_empty() {
            true => None,
            false => match self.ctx.sender_auth.gate().await {
                crate::services::sender_auth::Verdict::Refused(report) => Some(report),
                crate::services::sender_auth::Verdict::Go(_) => None,
            },
        };
        for id in due {
            if *shutdown.borrow() {
                break;
            }
            match schedules::run(&self.ctx, id, held.as_ref()).await {
                Ok(RunOutcome::Sent(_)) => step.sent += 1,
                Ok(RunOutcome::Skipped) => step.skipped += 1,
                Ok(RunOutcome::NotDue) => step.lost += 1,
                Err(e) => {
                    tracing::error!(schedule = %id, error = %e, "schedule run failed; will retry");
                    step.failed += 1;
                }
            }
        }
        Ok(step)
    }

    /// How long to sleep: until the earliest tick, within bounds.
    async fn idle_for(&self) -> Result<Duration, SchedulerError> {
        let now = self.ctx.clock.now();
        let wait = match schedules::earliest_tick(&self.ctx).await? {
            Some(at) => (at - now).to_std().unwrap_or(Duration::ZERO),
            None => MAX_SLEEP,
        };
        Ok(wait.clamp(MIN_SLEEP, MAX_SLEEP))
    }

    /// Runs until shutdown; a failing step (database down, one schedule
    /// that cannot run) is logged and retried with backoff.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut backoff = Duration::from_secs(1);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.run_once(&shutdown).await {
                Ok(step) if step.failed == 0 => {
                    backoff = Duration::from_secs(1);
                    self.idle_for().await.unwrap_or(MAX_SLEEP)
                }
                // A run failed (and stays due): back off rather than retry
                // it at once.
                Ok(_) => {
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    backoff
                }
                Err(e) => {
                    tracing::error!(error = %e, "scheduler step failed; will retry");
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    backoff
                }
            };
            if sleep_or_shutdown(wait, &mut shutdown).await {
                return;
            }
        }
    }
}
