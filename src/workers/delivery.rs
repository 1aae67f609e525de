//! Bulk delivery of updates (README, "Sending updates", and ARCHITECTURE.md,
//! "The send loop").
//!
//! Each step: start scheduled updates that are due; then, for every update
//! that is sending, claim a batch of deliveries under a lease (as many as
//! the shared rate bucket and the hourly/daily caps allow), send them
//! concurrently over the SMTP pool, and record the outcomes as they come
//! (a quarter of a batch per transaction, the accepted ones with one
//! statement). So a crash can re-send at most one batch: the messages in
//! flight. The long-running worker claims the next batch while the current
//! one is being sent, so the database work overlaps the sending (measured
//! in BENCHMARKS.md); a batch claimed ahead is never sent after a pause,
//! a cancel or shutdown: it is released.
//!
//! Outcomes: accepted → `sent`; 4xx → retried with backoff; 5xx → `failed`
//! with the reply, and a 5.1.x hard bounce also marks the person `bounced`
//! everywhere and suppresses the address; relay unreachable (or answering
//! 421) → that message and the rest of the batch are released untouched,
//! and the worker pauses.

use super::{Shutdown, sleep_or_shutdown};
use crate::domain::{DeliveryStatus, SignedToken, UpdateEvent, UpdateStatus};
use crate::mail::update::{PreparedUpdate, Recipient, UpdateBodies};
use crate::mail::{SendError, Transport};
use crate::services::{Context, bounces, send_guard};
use crate::store::{AcceptedDelivery, DeliveryClaim, StoreError, UpdateListRow};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Transactions recording one batch's outcomes that may run at once: on
/// PostgreSQL each row costs several index insertions and a commit waits for
/// the WAL, and one transaction at a time could not keep up with the sending
/// (27% more messages/s with three; see BENCHMARKS.md).
const RECORDERS: usize = 3;

/// Transactions recording outcomes, each answering what it recorded.
type Recording = tokio::task::JoinSet<Result<Step, DeliveryError>>;

/// Adds what one recording transaction did to the step.
fn merge_recorded(
    joined: Option<Result<Result<Step, DeliveryError>, tokio::task::JoinError>>,
    step: &mut Step,
) -> Result<(), DeliveryError> {
    match joined {
        Some(Ok(recorded)) => {
            let recorded = recorded?;
            step.sent += recorded.sent;
            step.retried += recorded.retried;
            step.failed += recorded.failed;
            step.bounced += recorded.bounced;
            step.relay_down |= recorded.relay_down;
        }
        // The outcomes stay unrecorded and their leases expire: as after a crash.
        Some(Err(e)) => tracing::error!(error = %e, "recording delivery outcomes failed"),
        None => {}
    }
    Ok(())
}

/// How long the long-running worker keeps to one update, batch after batch,
/// before it looks at the others and at due schedules again.
const TURN: Duration = Duration::from_secs(5);

/// Deliveries claimed per SMTP session in one batch.
const CLAIMS_PER_SESSION: u32 = 50;

/// How many deliveries one claim takes with `send_concurrency` sessions.
/// It is also the most a crash can re-send: what is sent but not yet
/// recorded never exceeds one batch (see `send_claimed`).
pub fn batch_size(send_concurrency: u32) -> usize {
    (send_concurrency.saturating_mul(CLAIMS_PER_SESSION) as usize).clamp(50, 1000)
}

/// After this many temporary failures a delivery is given up on.
pub const MAX_ATTEMPTS: i64 = 8;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("update {0} could not be rendered: {1}")]
    Render(Uuid, String),
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub started: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub bounced: usize,
    pub finished: usize,
    pub relay_down: bool,
    /// The rate bucket or a cap held sending back.
    pub throttled: bool,
}

impl Step {
    pub fn did_work(&self) -> bool {
        self.started + self.sent + self.retried + self.failed + self.bounced + self.finished > 0
    }
}

/// An update rendered once, with the lists its copies can name.
struct Prepared {
    update: PreparedUpdate,
    /// Its bodies rendered once.
    bodies: UpdateBodies,
    lists: HashMap<Uuid, UpdateListRow>,
}

/// Messages counted against the hourly and daily caps before they are
/// sent; what goes unsent is given back.
#[derive(Debug, Clone, Copy)]
struct Reservation {
    /// The minute of `send_counts` they were counted in.
    minute: DateTime<Utc>,
    n: i64,
}

/// Deliveries claimed under one lease, for one update.
struct Batch {
    update_id: Uuid,
    claims: Vec<DeliveryClaim>,
    /// Under a cap: the room reserved for these claims.
    reserved: Option<Reservation>,
    /// No message is started after this (see [`DeliveryWorker::claim`]).
    window_closes: std::time::Instant,
}

#[derive(Clone)]
pub struct DeliveryWorker {
    ctx: Context,
    transport: Transport,
    batch: i64,
    /// Rendered updates by id (an update's content cannot change once it
    /// is sending).
    prepared: Arc<Mutex<HashMap<Uuid, Arc<Prepared>>>>,
}

enum Outcome {
    Sent(String),
    Failed(SendError),
    /// The batch's send window closed, or the relay was found unavailable,
    /// before this message was started.
    NotStarted,
}

fn backoff(attempt: i64) -> chrono::Duration {
    chrono::Duration::seconds(30i64.saturating_mul(1 << attempt.clamp(0, 12)).min(3600))
}

impl DeliveryWorker {
    pub fn new(ctx: Context, transport: Transport) -> Self {
        let batch = batch_size(ctx.config.send_concurrency) as i64;
        Self { ctx, transport, batch, prepared: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// One pass over everything that is due: at most one batch for each
    /// update that is sending.
    pub async fn run_once(&self, shutdown: &Shutdown) -> Result<Step, DeliveryError> {
        self.pass(shutdown, false).await
    }

    /// One pass. With `pipelined` (the long-running worker), each update
    /// that is sending is worked through batch after batch, the next batch
    /// being claimed while the current one is on the wire, until nothing is
    /// due, the relay is down or shutdown is asked for: the database work
    /// then overlaps the sending instead of stalling it.
    async fn pass(&self, shutdown: &Shutdown, pipelined: bool) -> Result<Step, DeliveryError> {
        let mut step = Step::default();
        let now = self.ctx.clock.now();
        let due = self.ctx.store.read().await?.due_updates(now).await?;
        // A scheduled send that fails sender authentication when it is due
        // does not go: it is held (back to draft), with an audit entry and
        // an error in the log, until someone fixes the records and sends it
        // (or an admin sends it with an override).
        let held = match due.is_empty() {
            true => None,
            false => match self.ctx.sender_auth.gate().await {
                crate::services::sender_auth::Verdict::Refused(report) => Some(report),
                crate::services::sender_auth::Verdict::Go(_) => None,
            },
        };
        for id in due {
            if let Some(report) = &held {
                let mut tx = self.ctx.store.write().await?;
                if tx.transition_update(id, UpdateEvent::Unschedule, None, now).await? {
                    let action = crate::services::audit::Action {
                        what: "sender_authentication.held",
                        target: &format!("update:{id}"),
                        status: 0,
                        detail: format!("scheduled send held: {}", report.summary()),
                    };
                    tx.insert_audit(&crate::services::audit::entry(
                        &crate::services::audit::Who::system(),
                        action,
                        now,
                    ))
                    .await?;
                    tracing::error!(update = %id, failures = %report.summary(), "scheduled send held: sender authentication fails");
                }
                tx.commit().await?;
                continue;
            }
            let mut tx = self.ctx.store.write().await?;
            if crate::services::updates::start_sending(&mut tx, id, UpdateEvent::Due, now)
                .await
                .map_err(|e| DeliveryError::Render(id, e.to_string()))?
            {
                step.started += 1;
            }
            tx.commit().await?;
        }
        // Under an hourly or daily cap, no batch is claimed ahead: the cap,
        // not the database, sets the pace then, and a batch claimed ahead
        // would hold room under the cap that another worker could be using.
        let c = &self.ctx.config;
        let pipelined = pipelined && c.send_hourly_cap == 0 && c.send_daily_cap == 0;
        let sending = self.ctx.store.read().await?.updates_with_status(UpdateStatus::Sending).await?;
        for id in sending {
            if *shutdown.borrow() || step.relay_down {
                break;
            }
            let started = std::time::Instant::now();
            // Outcomes still being recorded; they may run into the next
            // batch's sending (see `send_claimed`), never past this update.
            let mut recording = Recording::new();
            let mut next = self.claim(id, &mut step).await?;
            while let Some(batch) = next.take() {
                // Past its turn, an update gives way (with its last batch
                // sent plainly), so other sends and due schedules are not
                // held up by a long one.
                if !pipelined || started.elapsed() > TURN {
                    self.send_claimed(batch, &mut step, &mut recording).await?;
                    break;
                }
                let mut ahead = Step::default();
                let (sent, claimed) =
                    tokio::join!(self.send_claimed(batch, &mut step, &mut recording), self.claim(id, &mut ahead));
                step.finished += ahead.finished;
                step.throttled |= ahead.throttled;
                next = match (sent, claimed) {
                    (Ok(()), claimed) => claimed?,
                    (Err(e), claimed) => {
                        if let Ok(Some(batch)) = claimed {
                            self.release(batch).await?;
                        }
                        return Err(e);
                    }
                };
                if let Some(batch) = next.take_if(|_| *shutdown.borrow() || step.relay_down) {
                    self.release(batch).await?;
                } else if next.is_some() && !self.still_sending(id).await? {
                    // Paused or cancelled meanwhile: send nothing more.
                    if let Some(batch) = next.take() {
                        self.release(batch).await?;
                    }
                }
            }
            while !recording.is_empty() {
                merge_recorded(recording.join_next().await, &mut step)?;
            }
        }
        Ok(step)
    }

    async fn still_sending(&self, id: Uuid) -> Result<bool, DeliveryError> {
        let row = self.ctx.store.read().await?.update_by_id(id).await?;
        Ok(row.is_some_and(|u| u.status == UpdateStatus::Sending))
    }

    /// Gives back a batch that was claimed but will not be sent, and the
    /// room it had reserved under the caps.
    async fn release(&self, batch: Batch) -> Result<(), DeliveryError> {
        let mut tx = self.ctx.store.write().await?;
        for c in &batch.claims {
            tx.delivery_release(c.update_id, c.subscriber_id).await?;
        }
        if let Some(r) = batch.reserved {
            tx.uncount_sent(r.minute, r.n).await?;
        }
        tx.add_attempts(batch.update_id, -(batch.claims.len() as i64)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn prepared(&self, id: Uuid) -> Result<Arc<Prepared>, DeliveryError> {
        if let Some(p) = self.prepared.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(p.clone());
        }
        let mut tx = self.ctx.store.read().await?;
        let row = tx.update_by_id(id).await?.ok_or_else(|| DeliveryError::Render(id, "update vanished".into()))?;
        let lists = tx.update_lists(id).await?.into_iter().map(|l| (l.list_id, l)).collect();
        let update = PreparedUpdate::new(id, &row.subject, &row.body_markdown)
            .map_err(|e| DeliveryError::Render(id, e.to_string()))?;
        let bodies = self.ctx.composer.update_bodies(&update).map_err(|e| DeliveryError::Render(id, e.to_string()))?;
        let p = Arc::new(Prepared { update, bodies, lists });
        self.prepared.lock().unwrap_or_else(|p| p.into_inner()).insert(id, p.clone());
        Ok(p)
    }

    /// How many messages the rate bucket and caps allow now. Under an
    /// hourly or daily cap they are reserved at once, under a lock every
    /// worker takes (see [`crate::store::Tx::lock_send_caps`]): counted as
    /// sent before they are, so workers sending at the same time can never
    /// together pass a cap. What a batch does not send is given back.
    async fn allowance(&self, now: DateTime<Utc>) -> Result<(i64, Option<Reservation>), DeliveryError> {
        let c = &self.ctx.config;
        if c.send_hourly_cap == 0 && c.send_daily_cap == 0 && c.send_rate == 0 {
            // Nothing to check: spare the database a write transaction per batch.
            return Ok((self.batch, None));
        }
        let capped = c.send_hourly_cap > 0 || c.send_daily_cap > 0;
        let mut tx = self.ctx.store.write().await?;
        if capped {
            tx.lock_send_caps().await?;
        }
        let mut allowed = self.batch;
        for (cap, window) in
            [(c.send_hourly_cap, chrono::Duration::hours(1)), (c.send_daily_cap, chrono::Duration::days(1))]
        {
            if cap > 0 {
                allowed = allowed.min((i64::from(cap) - tx.sent_since(now - window).await?).max(0));
            }
        }
        if c.send_rate > 0 && allowed > 0 {
            allowed = tx.take_send_tokens(f64::from(c.send_rate), allowed, now).await?;
        }
        let reserved = if capped && allowed > 0 {
            Some(Reservation { minute: tx.count_sent(allowed, now).await?, n: allowed })
        } else {
            None
        };
        tx.commit().await?;
        Ok((allowed, reserved))
    }

    /// Claims the next batch of an update, as far as the rate bucket and
    /// caps allow. `None` when throttled or when nothing is due; in the
    /// latter case it also drops whoever left since the snapshot and
    /// finishes the update once nothing is pending.
    async fn claim(&self, update_id: Uuid, step: &mut Step) -> Result<Option<Batch>, DeliveryError> {
        let now = self.ctx.clock.now();
        let (allowed, mut reserved) = self.allowance(now).await?;
        if allowed == 0 {
            step.throttled = true;
            return Ok(None);
        }
        let lease_until =
            now + chrono::Duration::from_std(self.ctx.config.worker_lease).unwrap_or(chrono::Duration::minutes(2));
        // Start no message after 3/8 of the lease: one started then still
        // ends (at the SMTP timeouts) before the lease does.
        let window_closes = std::time::Instant::now() + self.ctx.config.worker_lease * 3 / 8;
        let mut tx = self.ctx.store.write().await?;
        let thresholds = send_guard::Thresholds::from_config(&self.ctx.config);
        if !send_guard::may_continue(&mut tx, &thresholds, update_id, now).await? {
            // Paused now (complaints or hard bounces past their limit).
            if let Some(r) = reserved {
                tx.uncount_sent(r.minute, r.n).await?;
            }
            tx.commit().await?;
            return Ok(None);
        }
        let claims = tx.claim_deliveries(update_id, now, lease_until, allowed).await?;
        tx.add_attempts(update_id, claims.len() as i64).await?;
        if let Some(r) = reserved.as_mut() {
            // Fewer due than reserved: give the rest back at once.
            let claimed = claims.len() as i64;
            tx.uncount_sent(r.minute, r.n - claimed).await?;
            r.n = claimed;
        }
        if claims.is_empty() {
            tx.skip_ineligible(update_id).await?;
            let stats = tx.delivery_stats(update_id).await?;
            if stats.pending == 0 && tx.transition_update(update_id, UpdateEvent::Finish, None, now).await? {
                step.finished += 1;
                self.prepared.lock().unwrap_or_else(|p| p.into_inner()).remove(&update_id);
                tracing::info!(update = %update_id, sent = stats.sent, failed = stats.failed, bounced = stats.bounced, "update sent");
            }
            tx.commit().await?;
            return Ok(None);
        }
        tx.commit().await?;
        if self.ctx.config.send_rate > 0 && (claims.len() as i64) < allowed {
            // Unused tokens are not returned: the bucket refills quickly and
            // giving back would need another write per batch.
            step.throttled = true;
        }
        Ok(Some(Batch { update_id, claims, reserved: reserved.filter(|r| r.n > 0), window_closes }))
    }

    /// Sends a claimed batch and records the outcomes.
    ///
    /// One sender per SMTP session, each taking the next claim from a shared
    /// queue: a session never waits while work is left, and only as many
    /// messages as there are sessions are rendered at once (so memory does
    /// not grow with the batch). Outcomes are recorded while the rest of the
    /// batch is still being sent, a quarter of a batch per transaction and up
    /// to [`RECORDERS`] transactions at once, so what was sent but not yet
    /// recorded never exceeds the batch; a panicking sender loses only the
    /// claim it was on (its lease expires and it is retried).
    ///
    /// It returns once every message is sent, leaving the last recordings
    /// in `recording` to finish while the next batch is sent: waiting for
    /// them stalled every session at each batch's end. The bound holds
    /// across batches, as `recording` never holds more than [`RECORDERS`].
    async fn send_claimed(
        &self,
        batch: Batch,
        step: &mut Step,
        recording: &mut Recording,
    ) -> Result<(), DeliveryError> {
        let Batch { update_id, claims, reserved, window_closes } = batch;
        let prepared = self.prepared(update_id).await?;
        let senders = (self.ctx.config.send_concurrency as usize).clamp(1, claims.len().max(1));
        let queue = Arc::new(Mutex::new(claims.into_iter()));
        // Once one sender finds the relay unavailable, the others start
        // nothing more: the rest of the batch is released, and the relay is
        // not tried once per message.
        let relay_down = Arc::new(AtomicBool::new(false));
        let (outcomes, mut results) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..senders {
            let (worker, prepared, queue, outcomes, relay_down) =
                (self.clone(), prepared.clone(), queue.clone(), outcomes.clone(), relay_down.clone());
            tasks.spawn(async move {
                loop {
                    let Some(claim) = queue.lock().unwrap_or_else(|p| p.into_inner()).next() else { break };
                    let message_id = worker.ctx.composer.update_message_id(claim.update_id, claim.subscriber_id);
                    let outcome = if std::time::Instant::now() < window_closes && !relay_down.load(Ordering::Relaxed) {
                        worker.deliver(&prepared, &claim).await
                    } else {
                        Outcome::NotStarted
                    };
                    if matches!(outcome, Outcome::Failed(SendError::Unavailable(_))) {
                        relay_down.store(true, Ordering::Relaxed);
                    }
                    if outcomes.send((claim, message_id, outcome)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(outcomes);
        let chunk = (self.batch as usize / 4).max(1);
        let mut done = Vec::with_capacity(chunk);
        let mut accepted = 0;
        loop {
            let result = results.recv().await;
            let finished = result.is_none();
            accepted += usize::from(matches!(result, Some((_, _, Outcome::Sent(_)))));
            done.extend(result);
            if done.len() >= chunk || (finished && !done.is_empty()) {
                if recording.len() >= RECORDERS {
                    merge_recorded(recording.join_next().await, step)?;
                }
                let (worker, outcomes) = (self.clone(), std::mem::take(&mut done));
                recording.spawn(async move {
                    let mut recorded = Step::default();
                    worker.record(update_id, outcomes, &mut recorded).await.map(|()| recorded)
                });
            }
            if finished {
                break;
            }
        }
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                // Its claim stays leased; the lease expires and it is retried.
                tracing::error!(error = %e, "a delivery task failed");
            }
        }
        // Known now, not only once the last recording is joined: the next
        // batch must not be started against a relay that is down.
        step.relay_down |= relay_down.load(Ordering::Relaxed);
        if let Some(r) = reserved
            && (accepted as i64) < r.n
        {
            // Refused, retried or not started: it does not count against the caps.
            let mut tx = self.ctx.store.write().await?;
            tx.uncount_sent(r.minute, r.n - accepted as i64).await?;
            tx.commit().await?;
        }
        tracing::debug!(update = %update_id, accepted, "batch sent");
        Ok(())
    }

    async fn deliver(&self, p: &Prepared, claim: &DeliveryClaim) -> Outcome {
        let key = &self.ctx.secret_key;
        // One copy for every list of the update the person is on: its
        // unsubscribe link leaves them all, and its footer names them all.
        let mut lists: Vec<&UpdateListRow> = claim.lists().iter().filter_map(|id| p.lists.get(id)).collect();
        // Named in the footer and on the unsubscribe page in this order.
        lists.sort_by(|a, b| a.name.cmp(&b.name).then(a.list_id.cmp(&b.list_id)));
        let (slug, name) = lists.first().map(|l| (l.slug.as_str(), l.name.as_str())).unwrap_or_default();
        let ids: Vec<Uuid> = lists.iter().map(|l| l.list_id).collect();
        let Some(unsubscribe) = SignedToken::unsubscribe_lists(claim.subscriber_id, &ids) else {
            return Outcome::Failed(SendError::Permanent(format!(
                "could not build the message: {} lists for one unsubscribe link",
                ids.len()
            )));
        };
        let recipient = Recipient {
            subscriber_id: claim.subscriber_id,
            email: &claim.email,
            name: &claim.name,
            list_slug: slug,
            list_name: name,
            other_list_names: lists.iter().skip(1).map(|l| l.name.as_str()).collect(),
            unsubscribe_url: self.ctx.config.link(&format!("/unsubscribe/{}", unsubscribe.encode(key))),
            preferences_url: self
                .ctx
                .config
                .link(&format!("/preferences/{}", SignedToken::preferences(claim.subscriber_id).encode(key))),
            test: false,
        };
        let composed = match self.ctx.composer.update_with(&p.update, &p.bodies, &recipient) {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(SendError::Permanent(format!("could not build the message: {e}"))),
        };
        let from = match &self.ctx.config.verp_domain {
            Some(domain) => crate::mail::verp::encode(key, domain, claim.update_id, claim.subscriber_id),
            None => self.ctx.config.from.email.to_string(),
        };
        let name = format!("{}-{}", claim.update_id, claim.subscriber_id);
        match self.transport.send(&name, &from, &composed.recipient, &composed.bytes).await {
            Ok(reply) => Outcome::Sent(reply),
            Err(e) => Outcome::Failed(e),
        }
    }

    /// Writes a batch's outcomes in one transaction: the accepted ones (all
    /// but a few) with one statement, the rest one by one.
    async fn record(
        &self,
        update_id: Uuid,
        results: Vec<(DeliveryClaim, String, Outcome)>,
        step: &mut Step,
    ) -> Result<(), DeliveryError> {
        let now = self.ctx.clock.now();
        let thresholds = send_guard::Thresholds::from_config(&self.ctx.config);
        let mut tx = self.ctx.store.write().await?;
        let mut accepted = Vec::with_capacity(results.len());
        // Copies given back or to be retried: not attempts (yet).
        let mut given_back = 0i64;
        for (claim, message_id, outcome) in results {
            let (u, s) = (claim.update_id, claim.subscriber_id);
            match outcome {
                Outcome::Sent(reply) => {
                    accepted.push(AcceptedDelivery { subscriber_id: s, message_id, reply });
                    step.sent += 1;
                }
                Outcome::NotStarted => {
                    tx.delivery_release(u, s).await?;
                    given_back += 1;
                }
                Outcome::Failed(SendError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "mail relay unavailable; pausing delivery");
                    tx.delivery_release(u, s).await?;
                    given_back += 1;
                    step.relay_down = true;
                }
                Outcome::Failed(SendError::Transient(reply)) if claim.attempts < MAX_ATTEMPTS => {
                    tx.delivery_retry(u, s, now + backoff(claim.attempts), &reply).await?;
                    given_back += 1;
                    step.retried += 1;
                }
                Outcome::Failed(SendError::Permanent(reply)) if bounces::is_hard_bounce(&reply) => {
                    tx.delivery_final(u, s, DeliveryStatus::Bounced, &message_id, &reply).await?;
                    bounces::smtp_hard_bounce(&mut tx, &self.ctx, &thresholds, u, s, &reply, now).await?;
                    step.bounced += 1;
                }
                Outcome::Failed(SendError::Transient(reply) | SendError::Permanent(reply)) => {
                    tx.delivery_final(u, s, DeliveryStatus::Failed, &message_id, &reply).await?;
                    step.failed += 1;
                }
            }
        }
        tx.deliveries_sent(update_id, &accepted, now).await?;
        // Last, so the update's row is locked only briefly (and only on this rare path).
        tx.add_attempts(update_id, -given_back).await?;
        tx.commit().await?;
        self.ctx.metrics.deliveries(step.sent, step.retried, step.failed, step.bounced);
        Ok(())
    }

    /// Runs until shutdown, pausing while the relay or database is down and
    /// sleeping briefly when there is nothing to send.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut pause = Duration::from_secs(1);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.pass(&shutdown, true).await {
                Ok(step) if step.relay_down => {
                    pause = (pause * 2).min(Duration::from_secs(60));
                    pause
                }
                Ok(step) if step.did_work() => {
                    pause = Duration::from_secs(1);
                    continue;
                }
                Ok(step) if step.throttled => Duration::from_millis(100),
                Ok(_) => Duration::from_secs(1),
                Err(e) => {
                    tracing::error!(error = %e, "delivery step failed; will retry");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_at_an_hour() {
        assert_eq!(backoff(0).num_seconds(), 30);
        assert_eq!(backoff(1).num_seconds(), 60);
        assert_eq!(backoff(20).num_seconds(), 3600);
    }
}
