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
//! nothing more is deleted.
//!
//! Only mail that was acted on is deleted: a report applied, recorded as
//! unmatched, or seen before. Anything else (a supporter's reply, an
//! auto-reply, a success notice, something unreadable, a message above
//! [`mailbox::MAX_MESSAGE_BYTES`]) is left in the mailbox for a person to
//! read, since administrators often make the From address the bounce
//! mailbox. It is logged once, and the worker remembers what it left by
//! the message's unique id (POP3 UIDL; IMAP UIDVALIDITY and UID), so later
//! polls pass over it without fetching it again, and it never counts
//! against a poll's [`PER_POLL`]. Without UIDL (optional in POP3) it
//! remembers the message's digest instead: fetched again, not logged again.
//! A restart forgets, and each such message is logged once more.
//!
//! Only one worker process should poll a given mailbox (POP3 has no
//! locking between clients; most servers refuse a second session anyway;
//! with IMAP a second poller would at worst apply a message twice, which
//! has no second effect).

use super::{Shutdown, sleep_or_shutdown};
use crate::mail::mailbox::{self, MailboxError, MailboxSettings, Session};
use crate::services::bounces::{self, Outcome};
use crate::services::{Context, ServiceError};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

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
    /// Messages that were not reports (or unreadable, or reports needing
    /// nothing done), found this poll and left in the mailbox.
    pub ignored: usize,
    /// Messages marked for deletion (reports acted on).
    pub deleted: usize,
    /// Messages too large to read, left in the mailbox.
    pub skipped: usize,
    /// Messages left in the mailbox by an earlier poll, passed over.
    pub left_before: usize,
}

#[derive(Clone)]
pub struct BounceMailboxWorker {
    ctx: Context,
    settings: MailboxSettings,
    /// What earlier polls left in the mailbox: unique ids, or
    /// `sha256:DIGEST` when the server gives none. Only what is still in
    /// the mailbox is kept, so it never outgrows the mailbox.
    left: Arc<Mutex<HashSet<String>>>,
}

impl BounceMailboxWorker {
    /// `None` when no bounce mailbox is configured.
    pub fn new(ctx: Context) -> Result<Option<Self>, MailboxError> {
        let Some(url) = ctx.config.bounce_mailbox_url.clone() else { return Ok(None) };
        let settings = MailboxSettings::from_url(&url)?;
        Ok(Some(Self { ctx, settings, left: Arc::default() }))
    }

    /// One poll: fetch, apply, delete what was acted on, quit.
    pub async fn run_once(&self, shutdown: &Shutdown) -> Result<Step, PollError> {
        let mut session = Session::connect(&self.settings).await?;
        let mut step = Step::default();
        let listed = session.list().await?;
        step.listed = listed.len();
        let keys = session.unique_ids(&listed).await?;
        let before = self.left.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // What this poll leaves: what was left before and is still listed,
        // and what it finds and leaves itself.
        let mut left: HashSet<String> =
            listed.iter().filter_map(|(n, _)| keys.get(n)).filter(|k| before.contains(*k)).cloned().collect();
        let mut handled = 0;
        for (n, size) in listed {
            if *shutdown.borrow() || handled >= PER_POLL {
                break;
            }
            let key = keys.get(&n);
            if key.is_some_and(|k| before.contains(k)) {
                tracing::debug!(message = n, "bounce mailbox: passing over a message left earlier");
                step.left_before += 1;
                continue;
            }
            handled += 1;
            if size > mailbox::MAX_MESSAGE_BYTES {
                tracing::warn!(message = n, size, "bounce mailbox: message too large to read; left in the mailbox");
                step.skipped += 1;
                left.extend(key.cloned());
                continue;
            }
            let raw = session.retrieve(n).await?;
            let key = match key {
                Some(k) => k.clone(),
                None => format!("sha256:{}", crate::domain::sha256_hex(&raw)),
            };
            let seen_before = before.contains(&key);
            let acted_on = match bounces::read_message(&self.ctx.config, &raw).await {
                Ok(parsed) => {
                    // An error here (database down) ends the poll before
                    // this message is marked: it is read again next time.
                    let outcomes = bounces::ingest(&self.ctx, &parsed).await?;
                    let mut acted_on = false;
                    for o in &outcomes {
                        match o {
                            Outcome::Duplicate => step.duplicates += 1,
                            Outcome::Ignored { .. } => {}
                            Outcome::Applied { .. } | Outcome::Unmatched { .. } | Outcome::Review { .. } => {
                                step.applied += 1
                            }
                        }
                        acted_on |= !matches!(o, Outcome::Ignored { .. });
                    }
                    if !acted_on && !seen_before {
                        tracing::info!(message = n, reasons = ?parsed.ignored, "bounce mailbox: not a bounce report needing action; left in the mailbox");
                    }
                    acted_on
                }
                Err(e) => {
                    if !seen_before {
                        tracing::info!(message = n, error = %e, "bounce mailbox: not a bounce report; left in the mailbox");
                    }
                    false
                }
            };
            if acted_on {
                session.delete(n).await?;
                step.deleted += 1;
            } else if seen_before {
                step.left_before += 1;
                left.insert(key);
            } else {
                step.ignored += 1;
                left.insert(key);
            }
        }
        session.finish().await?;
        *self.left.lock().unwrap_or_else(|p| p.into_inner()) = left;
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
                // Mail left earlier is passed over quietly: no line per poll.
                Ok(step) if step.listed > step.left_before => tracing::info!(?step, "bounce mailbox polled"),
                Ok(step) => tracing::debug!(?step, "bounce mailbox polled"),
                Err(e) => tracing::error!(error = %e, "bounce mailbox poll failed; will retry"),
            }
            if sleep_or_shutdown(interval, &mut shutdown).await {
                return;
            }
        }
    }
}
