//! Mail: composing messages ([`compose`], [`update`]; every body's transfer
//! encoding decided and applied by [`encoding`]) and handing them to a
//! [`transport::Transport`] (pooled SMTP, or `.eml` files in a folder).
//!
//! Nothing here touches the database: the outbox worker reads queued
//! messages from the store and calls [`transport::Transport::send`].

pub mod compose;
pub mod encoding;
pub mod imap;
pub mod mailbox;
pub mod plain;
pub mod pop3;
pub mod smtp;
pub mod transport;
pub mod update;
pub mod verp;

pub use compose::{Composed, Composer, ConfirmationMail, Recipe};
pub use transport::{SendError, Transport};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("could not render the {0} template: {1}")]
    Template(&'static str, askama::Error),
    #[error("could not build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("could not inline the update's CSS: {0}")]
    Inline(String),
    #[error("invalid address: {0}")]
    Address(#[from] lettre::address::AddressError),
    #[error("invalid attachment content type")]
    Attachment,
    #[error("unreadable queued recipe: {0}")]
    Recipe(#[from] serde_json::Error),
    #[error("the update's text uses every private-use character, so its copies cannot be personalised")]
    NoMarker,
}
