//! Polls a bounce mailbox over POP3 or IMAP (`TIDINGS_BOUNCE_MAILBOX_URL`, every
//! `TIDINGS_BOUNCE_MAILBOX_INTERVAL_SECONDS`) and applies each DSN or ARF
//! message in it, as `tidings bounces ingest` would.
//!
//! Nothing is lost: a message is marked for deletion only after the
//! transaction that applied it has committed, and marked messages go only
//! when the session finishes (POP3 QUIT, IMAP EXPUNGE). A crash or a broken connection anywhere before
//! that leaves the message in the mailbox for the next poll, where the
//! repeat is recognised (bounce events are recorded once) and has no second
//! effect. If applying fails (the database is down), the poll stops and
//! nothing more is deleted. Messages that are not reports (auto-replies,
//! junk) are logged and deleted too, so they are not read on every poll;
//! messages above [`mailbox::MAX_MESSAGE_BYTES`] are left alone and logged.
//!
//! Only one worker process should poll a given mailbox (POP3 has no
//! locking between clients; most servers refuse a second session anyway;
//! with IMAP a second poller would at worst apply a message twice, which
//! has no second effect).

use super::{Shutdown, sleep_or_shutdown};
use crate::mail::mailbox::{self, MailboxError, MailboxSettings, Session};
use crate::services::bounces::{self, Outcome, dsn};
use crate::services::{Context, ServiceError};

/// At most this many messages are handled per poll, so a flood cannot hold
/// one session (and its transaction-per-message) open indefinitely.
const PER_POLL: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    #[error("applying a bounce report failed: {0}")]
    Service(#[from] ServiceError),
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Messages in the mailbox when listed.
    pub listed: usize,
    /// Reports applied (or recorded as unmatched).
    pub applied: usize,
    /// Reports that had been applied before (a message seen again).
    pub duplicates: usize,
    /// Messages that were not reports, or unreadable ones.
    pub ignored: usize,
    /// Messages marked for deletion.
    pub deleted: usize,
    /// Messages too large to read.
    pub skipped: usize,
}

#[derive(Clone)]
pub struct BounceMailboxWorker {
    ctx: Context,
    settings: MailboxSettings,
}

impl BounceMailboxWorker {
    /// `None` when no bounce mailbox is configured.
    pub fn new(ctx: Context) -> Result<Option<Self>, MailboxError> {
        let Some(url) = ctx.config.bounce_mailbox_url.clone() else { return Ok(None) };
        let settings = MailboxSettings::from_url(&url)?;
        Ok(Some(Self { ctx, settings }))
    }

    /// One poll: fetch, apply, delete what was applied, quit.
    pub async fn run_once(&self, shutdown: &Shutdown) -> Result<Step, PollError> {
        let mut session = Session::connect(&self.settings).await?;
        let mut step = Step::default();
        let listed = session.list().await?;
        step.listed = listed.len();
        for (n, size) in listed.into_iter().take(PER_POLL) {
            if *shutdown.borrow() {
                break;
            }
            if size > mailbox::MAX_MESSAGE_BYTES {
                tracing::warn!(message = n, size, "bounce mailbox: message too large to read; left in the mailbox");
                step.skipped += 1;
                continue;
            }
            let raw = session.retrieve(n).await?;
            match dsn::parse(&raw) {
                Ok(parsed) => {
                    // An error here (database down) ends the poll before
                    // this message is marked: it is read again next time.
                    let outcomes = bounces::ingest(&self.ctx, &parsed).await?;
                    for o in &outcomes {
                        match o {
                            Outcome::Duplicate => step.duplicates += 1,
                            Outcome::Ignored { .. } => step.ignored += 1,
                            Outcome::Applied { .. } | Outcome::Unmatched { .. } => step.applied += 1,
                        }
                    }
                    if outcomes.is_empty() {
                        step.ignored += 1;
                        tracing::info!(message = n, reasons = ?parsed.ignored, "bounce mailbox: not a bounce report");
                    }
                }
                Err(e) => {
                    step.ignored += 1;
                    tracing::warn!(message = n, error = %e, "bounce mailbox: unreadable message deleted");
                }
            }
            session.delete(n).await?;
            step.deleted += 1;
        }
        session.finish().await?;
        Ok(step)
    }

    /// Polls until shutdown.
    pub async fn run(self, mut shutdown: Shutdown) {
        let interval = self.ctx.config.bounce_mailbox_interval;
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_once(&shutdown).await {
                Ok(step) if step.listed > 0 => tracing::info!(?step, "bounce mailbox polled"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "bounce mailbox poll failed; will retry"),
            }
            if sleep_or_shutdown(interval, &mut shutdown).await {
                return;
            }
        }
    }
}
