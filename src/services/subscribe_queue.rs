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
//! Timing: a new address costs more writes than a known one, so a lone
//! request's answer time could tell whether an address is on a list. In a
//! busy batch that difference drowns in everyone else's work; a request
//! that was committed in a small batch (a quiet server, where one request
//! can be timed alone) is answered no sooner than [`QUIET_ANSWER_FLOOR`]
//! after it arrived, which is longer than either path takes. Under load
//! no request waits for the floor, so throughput is not capped by it.
//!
//! Lanes: on PostgreSQL a batch's time is mostly round trips and the commit's
//! wait for the WAL flush, and the server can run several transactions at
//! once, so requests are spread over [`POSTGRES_LANES`] queues, each with its
//! own committing task. A request's lane follows from its address, so two
//! batches never write the same person's rows at once (no conflicts, no
//! deadlocks). SQLite has one writer at a time: one lane, on a thread of its
//! own (see [`spawn_committer_thread`]).

use super::supporter::{self, SubscribeRequest};
use super::{Context, RequestMeta, Result, ServiceError};
use crate::store::{Backend, Store};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

/// The most requests one transaction takes. Large enough to share a flush
/// among every connection a busy server has open; small enough that one
/// batch stays a few milliseconds long.
const MAX_BATCH: usize = 256;

/// Batches smaller than this are "quiet": their answers wait for the floor.
const QUIET_BATCH: usize = 4;

/// How soon after arrival a request committed in a quiet batch is answered.
pub const QUIET_ANSWER_FLOOR: Duration = Duration::from_millis(25);

/// Committing tasks on PostgreSQL (see the module docs).
const POSTGRES_LANES: usize = 2;

struct Job {
    request: SubscribeRequest,
    meta: RequestMeta,
    answer: oneshot::Sender<Answer>,
}

struct Answer {
    result: Result<()>,
    /// Whether the batch was quiet (see the module docs).
    quiet: bool,
}

/// A handle to the task that commits subscribes in batches. Cheap to
/// clone; the task ends when the last handle is dropped, after finishing
/// what was queued.
#[derive(Clone)]
pub struct SubscribeQueue {
    lanes: Arc<[mpsc::Sender<Job>]>,
}

impl SubscribeQueue {
    /// Starts the committing tasks. Must be called inside a tokio runtime.
    pub fn start(ctx: Context) -> Self {
        match ctx.store.backend() {
            Backend::Sqlite => {
                let (jobs, queued) = mpsc::channel(4 * MAX_BATCH);
                if let Err(e) = spawn_committer_thread(ctx.clone(), queued) {
                    // No thread: commit on the shared runtime instead.
                    tracing::warn!(error = %e, "could not start the subscribe committer thread");
                    let (retry_jobs, queued) = mpsc::channel(4 * MAX_BATCH);
                    tokio::spawn(commit_batches(ctx, queued, Arc::default()));
                    return Self { lanes: Arc::new([retry_jobs]) };
                }
                Self { lanes: Arc::new([jobs]) }
            }
            Backend::Postgres => {
                let mut ctx = ctx;
                ctx.store = ctx.store.dedicated_writer(POSTGRES_LANES);
                let lanes = (0..POSTGRES_LANES)
                    .map(|_| {
                        let (jobs, queued) = mpsc::channel(4 * MAX_BATCH);
                        tokio::spawn(commit_batches(ctx.clone(), queued, Arc::default()));
                        jobs
                    })
                    .collect();
                Self { lanes }
            }
        }
    }

    /// The lane for this request: the same for every request for one address.
    fn lane(&self, request: &SubscribeRequest) -> &mpsc::Sender<Job> {
        let mut hasher = std::hash::DefaultHasher::new();
        request.email.normalised().hash(&mut hasher);
        &self.lanes[(hasher.finish() % self.lanes.len() as u64) as usize]
    }

    /// Takes one subscribe request; returns once it is committed (or
    /// refused), exactly as [`supporter::subscribe`] does.
    pub async fn subscribe(&self, request: SubscribeRequest, meta: RequestMeta) -> Result<()> {
        let arrived = Instant::now();
        let (answer, answered) = oneshot::channel();
        let lane = self.lane(&request);
        lane.send(Job { request, meta, answer }).await.map_err(|_| ServiceError::Unavailable)?;
        let answer = answered.await.map_err(|_| ServiceError::Unavailable)?;
        if answer.quiet {
            tokio::time::sleep_until(arrived + QUIET_ANSWER_FLOOR).await;
        }
        answer.result
    }
}

/// SQLite's one lane commits on a thread of its own, with its own
/// connection. On the shared runtime the committing task queued behind every
/// HTTP request for each of its dozen statements: under load most of a
/// batch's time was spent waiting to be scheduled, not working. An OS thread
/// that sleeps while SQLite works is woken at once.
fn spawn_committer_thread(mut ctx: Context, queued: mpsc::Receiver<Job>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("subscribe-commit".to_owned()).spawn(move || {
        runtime.block_on(async move {
            let shared = ctx.store.clone();
            ctx.store = shared.dedicated_writer(1);
            let committed = Arc::new(Notify::new());
            let checkpoints = tokio::spawn(checkpoint_after_commits(shared, committed.clone()));
            commit_batches(ctx.clone(), queued, committed).await;
            checkpoints.abort();
            ctx.store.close().await;
        });
    })?;
    Ok(())
}

/// How long after a commit the write-ahead log is checkpointed: often
/// enough to keep the log small, rarely enough that one checkpoint copies
/// many batches' pages at once.
const CHECKPOINT_DELAY: Duration = Duration::from_millis(50);

/// Checkpoints the shared SQLite database a little after commits, on a
/// connection (and so a thread) other than the committer's.
async fn checkpoint_after_commits(store: Store, committed: Arc<Notify>) {
    loop {
        committed.notified().await;
        tokio::time::sleep(CHECKPOINT_DELAY).await;
        if let Err(e) = store.checkpoint().await {
            tracing::warn!(error = %e, "a write-ahead log checkpoint failed");
        }
    }
}

async fn commit_batches(ctx: Context, mut queued: mpsc::Receiver<Job>, committed: Arc<Notify>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let requests: Vec<(&SubscribeRequest, &RequestMeta)> = batch.iter().map(|j| (&j.request, &j.meta)).collect();
        let outcome = supporter::subscribe_batch(&ctx, &requests).await;
        ctx.metrics.subscribe_batch(batch.len());
        committed.notify_one();
        let quiet = batch.len() < QUIET_BATCH;
        match outcome {
            Ok(results) => {
                for (job, result) in batch.drain(..).zip(results) {
                    // The requester may have gone (client disconnected);
                    // its subscribe is committed all the same.
                    let _ = job.answer.send(Answer { result, quiet });
                }
            }
            Err(e) => {
                // Nothing of this batch was committed: every requester is
                // told to try again, none is told "done".
                tracing::error!(error = %e, requests = batch.len(), "a subscribe batch failed");
                for job in batch.drain(..) {
                    let _ = job.answer.send(Answer { result: Err(ServiceError::Unavailable), quiet });
                }
            }
        }
    }
}
