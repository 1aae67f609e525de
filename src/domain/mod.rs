//! Pure domain types. Every value that arrives from outside (a form, JSON, a
//! CSV row, a URL) is parsed into one of these exactly once, at the edge, so
//! the rest of the code never has to ask "is this valid?" again.
//!
//! Nothing in here performs I/O.

mod email;
mod lifecycle;
mod list;
mod name;
mod rights;
mod status;
mod text;
mod token;

pub use email::{AddressKey, EmailAddress};
pub use lifecycle::{DeliveryStatus, ImportState, OutboxStatus, UpdateEvent, UpdateMove, UpdateStatus};
pub use list::{ListName, ListSlug};
pub use name::SubscriberName;
pub use rights::{RightsAction, RightsKind, RightsStatus};
pub use status::{
    Actor, AlertKind, BasisKind, ConsentKind, LedgerEntryKind, MailKind, Role, ScheduleKind, SubscriptionStatus,
    WithdrawalMethod,
};
pub use text::{HeaderSafeText, hex_lower, sha256_hex};
pub use token::{ConfirmToken, MAX_TOKEN_LISTS, SignedToken, TokenPurpose};

/// Why a piece of input was refused. The message is safe to show the person
/// who typed it: it never echoes the input back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub &'static str);
