//! The flows Tidings offers, independent of HTTP: subscribe, confirm,
//! unsubscribe, preferences, and the organiser's list/subscriber/consent
//! operations. Each flow runs in one database transaction; mail it causes is
//! written to the outbox in that same transaction (never sent inline).
//!
//! Layout: [`Context`] (what every flow needs), [`ServiceError`], and one
//! module per area.

pub mod accounts;
pub mod archive;
pub mod audit;
pub mod bounces;
pub mod consent;
pub mod data_copy;
pub mod directory;
pub mod exports;
pub mod fingerprints;
pub mod imports;
pub mod lists;
pub mod notice_change;
pub mod privacy_ops;
pub mod retention;
pub mod rights;
pub mod schedules;
pub mod send_guard;
pub mod sender_auth;
pub mod sessions;
pub mod setup;
pub mod standing;
pub mod subscribe_queue;
pub mod subscribers;
pub mod supporter;
pub mod updates;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::ParseError;
use crate::mail::{Composer, MailError};
use crate::store::{Store, StoreError};
use std::sync::Arc;
use tokio::sync::Notify;

/// Everything a flow needs. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub clock: Clock,
    pub config: Arc<Config>,
    /// Behind an `Arc` like the rest: the context is cloned for every request.
    pub composer: Arc<Composer>,
    /// Key for signed links (unsubscribe, preferences).
    pub secret_key: Arc<Vec<u8>>,
    /// Key of address fingerprints (suppressions), derived from `secret_key`.
    pub address_key: Arc<crate::domain::AddressKey>,
    /// Wakes the outbox worker when mail is queued.
    pub outbox_wakeup: Arc<Notify>,
    /// This process's Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The sender authentication checks run before a bulk send.
    pub sender_auth: Arc<sender_auth::SenderAuth>,
}

/// One field's problem, safe to show to the person who filled the form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }

    pub fn from_parse(field: &'static str, e: ParseError) -> Self {
        Self::new(field, e.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A link that was valid once but is used up or expired.
    #[error("that link has expired or has already been used")]
    Gone,
    #[error("{0}")]
    Conflict(String),
    /// The person withdrew (from a list or from everything), bounced or
    /// complained: only their own new double opt-in may change that
    /// (`services::standing`). The API answers 409 `withdrawn`.
    #[error("{0}")]
    Withdrawn(String),
    /// The address is suppressed (erased, complained, hard-bounced). The
    /// API answers 409 `suppressed`.
    #[error("{0}")]
    Suppressed(String),
    /// Consent wording that needs the organiser's acknowledgement before it
    /// is published (each string says why).
    #[error("the wording needs acknowledging: {}", .0.join("; "))]
    WordingWarning(Vec<String>),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("the system random number generator failed: {0}")]
    Random(#[from] getrandom::Error),
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    /// Could not be done now (the database failed mid-way); nothing was
    /// changed and the same request may be sent again.
    #[error("temporarily unavailable")]
    Unavailable,
    /// A bulk send refused because sender authentication fails
    /// (`sender_auth`); the report names the failed checks.
    #[error("sender authentication fails: {}", .0.summary())]
    SenderAuthentication(sender_auth::Report),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ServiceError::Conflict(format!("{what} already exists")),
            other => ServiceError::Store(other),
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Facts about the HTTP request behind a consent event.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Who asked, for the ledger's `actor`.
pub use crate::domain::Actor;

fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

/// Writes a composed message to the outbox in the caller's transaction; the
/// outbox worker sends it once the transaction has committed.
pub(crate) async fn queue_mail(
    tx: &mut crate::store::Tx,
    kind: crate::domain::MailKind,
    mail: crate::mail::Composed,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let m = crate::store::NewOutboxMessage {
        kind,
        recipient: mail.recipient,
        message_id: mail.message_id,
        body: crate::store::OutboxBody::Message(mail.bytes),
    };
    tx.enqueue_mail(&m, now).await?;
    Ok(())
}

/// Fails with one 422-style error if any field was refused.
pub(crate) fn ensure_valid(errors: Vec<FieldError>) -> Result<()> {
    if errors.is_empty() { Ok(()) } else { Err(ServiceError::Invalid(errors)) }
}
