//! Drains the transactional-mail outbox (confirmations and other mail a
//! supporter's action causes).
//!
//! With a bounce domain set (`TIDINGS_VERP_DOMAIN`), each message goes out
//! with a VERP envelope sender naming its outbox row (`mail::verp`), so a
//! bounce of it can be tied to it; otherwise the From address.
//!
//! - 2xx: recorded as sent; the stored body is dropped.
//! - 4xx: retried with exponential backoff, up to [`MAX_ATTEMPTS`].
//! - 5xx: failed at once, with the server's reply kept.
//! - relay unreachable: the claimed messages are released untouched and the
//!   worker pauses (new mail does not cut the pause short), so an outage
//!   never burns through attempts.

use super::{Shutdown, sleep_or_shutdown};
use crate::mail::{Recipe, SendError, Transport};
use crate::services::Context;
use crate::store::{OutboxRow, StoreError};
use std::time::Duration;

/// After this many 4xx answers a message is given up on (with backoff
/// capped at an hour, that is about a day of trying).
pub const MAX_ATTEMPTS: i64 = 30;
const BATCH: i64 = 20;
const IDLE_POLL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// The relay was unreachable; the rest of the batch was released.
    pub relay_down: bool,
}

impl Step {
    pub fn claimed_any(&self) -> bool {
        self.sent + self.retried + self.failed > 0
    }
}

#[derive(Clone)]
pub struct OutboxWorker {
    ctx: Context,
    transport: Transport,
}

fn backoff(attempt: i64) -> chrono::Duration {
    let secs = 10i64.saturating_mul(1i64 << attempt.clamp(0, 20)).min(3600);
    chrono::Duration::seconds(secs)
}

impl OutboxWorker {
    pub fn new(ctx: Context, transport: Transport) -> Self {
        Self { ctx, transport }
    }

    /// Claims one batch of due messages and tries each once.
    pub async fn run_once(&self, shutdown: &Shutdown) -> Result<Step, OutboxError> {
        let now = self.ctx.clock.now();
        let lease_until =
            now + chrono::Duration::from_std(self.ctx.config.worker_lease).unwrap_or(chrono::Duration::minutes(2));
        // Start no message after 3/8 of the lease: one started then still
        // ends (at the SMTP timeouts) before the lease does.
        let window_closes = std::time::Instant::now() + self.ctx.config.worker_lease * 3 / 8;
        let mut tx = self.ctx.store.write().await?;
        let batch = tx.claim_outbox(now, lease_until, BATCH).await?;
        tx.commit().await?;

        let mut step = Step::default();
        let mut rest = batch.into_iter();
        for row in rest.by_ref() {
            if *shutdown.borrow() || std::time::Instant::now() >= window_closes {
                self.release(std::iter::once(row)).await?;
                break;
            }
            match self.deliver(&row).await {
                Ok(()) => step.sent += 1,
                Err(SendError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "mail relay unavailable; pausing the outbox");
                    self.release(std::iter::once(row)).await?;
                    step.relay_down = true;
                    break;
                }
                Err(SendError::Transient(e)) if row.attempts < MAX_ATTEMPTS => {
                    let at = self.ctx.clock.now() + backoff(row.attempts);
                    let mut tx = self.ctx.store.write().await?;
                    tx.outbox_retry(row.id, at, &e).await?;
                    tx.commit().await?;
                    step.retried += 1;
                }
                Err(SendError::Transient(e) | SendError::Permanent(e)) => {
                    tracing::warn!(kind = %row.kind, error = %e, "transactional mail failed permanently");
                    let mut tx = self.ctx.store.write().await?;
                    tx.outbox_failed(row.id, &e).await?;
                    tx.commit().await?;
                    step.failed += 1;
                }
            }
        }
        self.release(rest).await?;
        self.ctx.metrics.transactional_mail(step.sent, step.retried, step.failed);
        Ok(step)
    }

    async fn deliver(&self, row: &OutboxRow) -> Result<(), SendError> {
        let composed;
        let message = match (&row.message, &row.recipe) {
            (Some(message), _) => message,
            (None, Some(recipe)) => {
                let recipe = Recipe::from_json(recipe).map_err(|e| SendError::Permanent(e.to_string()))?;
                composed = self
                    .ctx
                    .composer
                    .compose(&recipe, &row.message_id)
                    .map_err(|e| SendError::Permanent(e.to_string()))?;
                &composed
            }
            (None, None) => return Err(SendError::Permanent("the stored message is missing".into())),
        };
        let from = match &self.ctx.config.verp_domain {
            Some(domain) => crate::mail::verp::encode_mail(&self.ctx.secret_key, domain, row.id),
            None => self.ctx.config.from.email.to_string(),
        };
        self.transport.send(&row.id.to_string(), &from, &row.recipient, message).await?;
        // Record at once: the window in which a crash could cause a second
        // send is just this one write.
        let mut tx = self.ctx.store.write().await.map_err(|e| SendError::Unavailable(e.to_string()))?;
        tx.outbox_sent(row.id, self.ctx.clock.now()).await.map_err(|e| SendError::Unavailable(e.to_string()))?;
        tx.commit().await.map_err(|e| SendError::Unavailable(e.to_string()))?;
        Ok(())
    }

    async fn release(&self, rows: impl Iterator<Item = OutboxRow>) -> Result<(), OutboxError> {
        let rows: Vec<OutboxRow> = rows.collect();
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.ctx.store.write().await?;
        for row in rows {
            tx.outbox_release(row.id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Runs until shutdown: drains what is due, pauses with growing delays
    /// while the relay or the database is unavailable, otherwise sleeps
    /// until woken by new mail or the next retry falls due.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut pause = Duration::from_secs(1);
        loop {
            if *shutdown.borrow() {
                return;
            }
            // While the relay is down, new mail does not cut the pause short:
            // each subscribe would otherwise knock on the relay again.
            let (wait, wake_on_mail) = match self.run_once(&shutdown).await {
                Ok(step) if step.relay_down => {
                    pause = (pause * 2).min(Duration::from_secs(60));
                    (pause, false)
                }
                Ok(step) if step.claimed_any() => {
                    pause = Duration::from_secs(1);
                    continue;
                }
                Ok(_) => {
                    pause = Duration::from_secs(1);
                    (self.idle_wait().await, true)
                }
                Err(e) => {
                    tracing::error!(error = %e, "outbox step failed; will retry");
                    pause = (pause * 2).min(Duration::from_secs(60));
                    (pause, true)
                }
            };
            if !wake_on_mail {
                if sleep_or_shutdown(wait, &mut shutdown).await {
                    return;
                }
                continue;
            }
            let woken = self.ctx.outbox_wakeup.clone();
            tokio::select! {
                stop = sleep_or_shutdown(wait, &mut shutdown) => if stop { return },
                _ = woken.notified() => {}
            }
        }
    }

    /// How long to sleep when nothing is due.
    async fn idle_wait(&self) -> Duration {
        let next = match self.ctx.store.read().await {
            Ok(mut tx) => tx.outbox_next_due().await.ok().flatten(),
            Err(_) => None,
        };
        match next {
            Some(at) => (at - self.ctx.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(100), IDLE_POLL),
            None => IDLE_POLL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1).num_seconds(), 20);
        assert_eq!(backoff(2).num_seconds(), 40);
        assert_eq!(backoff(30).num_seconds(), 3600);
    }
}
