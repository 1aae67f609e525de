//! The vocabularies of the consent ledger, of subscriptions, of
//! schedules, of transactional mail and of operator alerts, and the `string_enum!` macro that spells each one (the
//! lifecycles of updates and imports are in `lifecycle.rs`).

use super::ParseError;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(raw: &str) -> Result<Self, $crate::domain::ParseError> {
                match raw {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::domain::ParseError(concat!("unknown ", stringify!($name)))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Written as its word, as the database keeps it.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        /// A string, one of its words.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(super) use string_enum;

string_enum!(
    /// Where one supporter stands with one list.
    SubscriptionStatus {
        Pending => "pending",
        Confirmed => "confirmed",
        Unsubscribed => "unsubscribed",
        Bounced => "bounced",
        Complained => "complained",
    }
);

impl SubscriptionStatus {
    /// Confirmed or pending: mail is (or will be, once confirmed) going to
    /// them, so there is something to withdraw.
    pub fn is_active(self) -> bool {
        matches!(self, SubscriptionStatus::Confirmed | SubscriptionStatus::Pending)
    }
}

string_enum!(
    /// What a consent-ledger entry records.
    ConsentKind {
        Requested => "requested",
        Confirmed => "confirmed",
        Withdrawn => "withdrawn",
        Imported => "imported",
        Erased => "erased",
        Resubscribed => "resubscribed",
        Bounced => "bounced",
        Complained => "complained",
    }
);

/// What one line of a person's ledger shows: a consent-ledger entry, or an
/// objection to all of the group's mail (kept in its own table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerEntryKind {
    Consent(ConsentKind),
    Objected,
}

impl LedgerEntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerEntryKind::Consent(kind) => kind.as_str(),
            LedgerEntryKind::Objected => "objected",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw {
            "objected" => Ok(LedgerEntryKind::Objected),
            _ => ConsentKind::parse(raw).map(LedgerEntryKind::Consent),
        }
    }
}

impl std::fmt::Display for LedgerEntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

string_enum!(
    /// The kind of basis an organiser records beside the free text when
    /// adding people as confirmed (imports and single adds).
    BasisKind {
        ConsentedElsewhere => "consented_elsewhere",
        BackerOptedIn => "backer_opted_in",
        SoftOptIn => "soft_opt_in",
        Unspecified => "unspecified",
    }
);

impl BasisKind {
    /// What the admin pages call it.
    pub fn label(self) -> &'static str {
        match self {
            BasisKind::ConsentedElsewhere => "They consented elsewhere (say where and when)",
            BasisKind::BackerOptedIn => "Backers who opted in to updates",
            BasisKind::SoftOptIn => "Existing supporters of a charity (soft opt-in)",
            BasisKind::Unspecified => "Not specified",
        }
    }
}

string_enum!(
    /// What a recurring schedule sends at each tick: the same update again,
    /// or a digest of the updates sent since the last one.
    ScheduleKind {
        Repeat => "repeat",
        Digest => "digest",
    }
);

string_enum!(
    /// What a transactional message in the outbox is.
    MailKind {
        Confirmation => "confirmation",
        DataCopyLink => "data-copy-link",
        DataCopy => "data-copy",
        Test => "test",
    }
);

impl MailKind {
    /// What a bounce report's ledger entry calls it.
    pub fn description(self) -> &'static str {
        match self {
            MailKind::Confirmation => "a confirmation mail",
            MailKind::DataCopyLink => "a data-copy link",
            MailKind::DataCopy => "a data copy",
            MailKind::Test => "a test copy",
        }
    }
}

string_enum!(
    /// What an operator alert is about (an open alert of the same kind and
    /// subject is counted up instead of raised again).
    AlertKind {
        PolicyBlock => "policy-block",
        SnsSubscription => "sns-subscription",
        SendPaused => "send-paused",
    }
);

string_enum!(
    /// How a supporter withdrew: kept in the ledger as evidence.
    WithdrawalMethod {
        OneClick => "one-click",
        Page => "page",
        Preferences => "preferences",
        Organiser => "organiser",
    }
);

/// What an organiser account may do: an admin everything, an editor
/// everything but accounts, tokens and the other admin-only pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Editor,
}

impl Role {
    pub const ALL: &'static [Role] = &[Role::Admin, Role::Editor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw {
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            _ => Err(ParseError("a role is \"admin\" or \"editor\"")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who caused a ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The supporter, acting through a public page or a mail link.
    Supporter,
    /// An organiser's API token (its id).
    ApiToken(uuid::Uuid),
    /// An organiser account (its id).
    Organiser(uuid::Uuid),
    /// Tidings itself (e.g. a bounce handler).
    System,
}

impl Actor {
    pub fn to_db(&self) -> String {
        match self {
            Actor::Supporter => "supporter".to_owned(),
            Actor::ApiToken(id) => format!("api-token:{id}"),
            Actor::Organiser(id) => format!("organiser:{id}"),
            Actor::System => "system".to_owned(),
        }
    }

    /// The inverse of [`Actor::to_db`] (for work recorded now and carried
    /// out later, such as an import run by a worker).
    pub fn from_db(raw: &str) -> Option<Actor> {
        let id = |rest: &str| uuid::Uuid::parse_str(rest).ok();
        match raw.split_once(':') {
            None if raw == "supporter" => Some(Actor::Supporter),
            None if raw == "system" => Some(Actor::System),
            Some(("api-token", rest)) => id(rest).map(Actor::ApiToken),
            Some(("organiser", rest)) => id(rest).map(Actor::Organiser),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_variant() {
        for s in SubscriptionStatus::ALL {
            assert_eq!(SubscriptionStatus::parse(s.as_str()).unwrap(), *s);
        }
        for k in ConsentKind::ALL {
            assert_eq!(ConsentKind::parse(k.as_str()).unwrap(), *k);
        }
        assert!(ConsentKind::parse("nonsense").is_err());
        for k in BasisKind::ALL {
            assert_eq!(BasisKind::parse(k.as_str()).unwrap(), *k);
        }
        assert_eq!(LedgerEntryKind::parse("objected").unwrap(), LedgerEntryKind::Objected);
        assert_eq!(LedgerEntryKind::parse("withdrawn").unwrap(), LedgerEntryKind::Consent(ConsentKind::Withdrawn));
        assert!(LedgerEntryKind::parse("nonsense").is_err());
        for k in ScheduleKind::ALL {
            assert_eq!(ScheduleKind::parse(k.as_str()).unwrap(), *k);
        }
        for k in MailKind::ALL {
            assert_eq!(MailKind::parse(k.as_str()).unwrap(), *k);
        }
        for k in AlertKind::ALL {
            assert_eq!(AlertKind::parse(k.as_str()).unwrap(), *k);
        }
        assert!(MailKind::parse("newsletter").is_err());
        let id = uuid::Uuid::now_v7();
        for a in [Actor::Supporter, Actor::System, Actor::ApiToken(id), Actor::Organiser(id)] {
            assert_eq!(Actor::from_db(&a.to_db()), Some(a));
        }
        assert_eq!(Actor::from_db("organiser:nonsense"), None);
    }
}
