//! Group commit for the public subscribe endpoint.
//!
//! Every subscribe must be on disk before its answer (a lost acknowledged
//! subscribe is a lost supporter and a lost consent record), and a durable
//! commit costs a disk flush. One flush per request caps the endpoint at
//! the disk's flush rate, and on SQLite every request would also queue for
//! the single write lock. So requests that arrive while a commit is under
//! way wait in a queue; one task takes everything queued, runs it in one
//! transaction (a few set statements for the whole batch) and commits once; then every
//! request in the batch gets its answer. Under light load a batch is one
//! request and nothing waits; under heavy load batches grow and the flush
//! is shared.
//!
//! Side effect, wanted: an answer's timing depends on the batch, not on
//! whether the address was already known.

use super::supporter::{self, SubscribeRequest};
use super::{Context, RequestMeta, Result, ServiceError};
use tokio::sync::{mpsc, oneshot};

/// The most requests one transaction takes. Large enough to share a flush
/// among every connection a busy server has open; small enough that one
/// batch stays a few milliseconds long.
const MAX_BATCH: usize = 256;

struct Job {
    request: SubscribeRequest,
    meta: RequestMeta,
    answer: oneshot::Sender<Result<()>>,
}

/// A handle to the task that commits subscribes in batches. Cheap to
/// clone; the task ends when the last handle is dropped, after finishing
/// what was queued.
#[derive(Clone)]
pub struct SubscribeQueue {
    jobs: mpsc::Sender<Job>,
}

impl SubscribeQueue {
    /// Starts the committing task. Must be called inside a tokio runtime.
    pub fn start(ctx: Context) -> Self {
        let (jobs, queued) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(commit_batches(ctx, queued));
        Self { jobs }
    }

    /// Takes one subscribe request; returns once it is committed (or
    /// refused), exactly as [`supporter::subscribe`] does.
    pub async fn subscribe(&self, request: SubscribeRequest, meta: RequestMeta) -> Result<()> {
        let (answer, answered) = oneshot::channel();
        self.jobs.send(Job { request, meta, answer }).await.map_err(|_| ServiceError::Unavailable)?;
        answered.await.map_err(|_| ServiceError::Unavailable)?
    }
}

async fn commit_batches(ctx: Context, mut queued: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let requests: Vec<(&SubscribeRequest, &RequestMeta)> = batch.iter().map(|j| (&j.request, &j.meta)).collect();
        let outcome = supporter::subscribe_batch(&ctx, &requests).await;
        ctx.metrics.subscribe_batch(batch.len());
        match outcome {
            Ok(results) => {
                for (job, result) in batch.drain(..).zip(results) {
                    // The requester may have gone (client disconnected);
                    // its subscribe is committed all the same.
                    let _ = job.answer.send(result);
                }
            }
            Err(e) => {
                // Nothing of this batch was committed: every requester is
                // told to try again, none is told "done".
                tracing::error!(error = %e, requests = batch.len(), "a subscribe batch failed");
                for job in batch.drain(..) {
                    let _ = job.answer.send(Err(ServiceError::Unavailable));
                }
            }
        }
    }
}
