//! The one withdrawal rule (issue 24 §2): a person who withdrew (from a
//! list, or from everything), whose mail bounced, who complained or who was
//! erased is never confirmed, re-permissioned (sent a confirmation mail by
//! an organiser) or mailed again, except through their own new double
//! opt-in. Every route asks this module: an organiser adding someone (API),
//! imports (CLI, API, admin upload), test sends, and the supporter's own
//! routes (the subscribe form and the preferences page, which may start the
//! person's own double opt-in and nothing more; see [`own_opt_in_blocked`]).
//!
//! It also owns the objection itself: "Unsubscribe from everything" is one
//! objection to all of the group's mail ([`object`]): one record in
//! `objections`, every subscription set to unsubscribed, and a suppression
//! of the address (reason `objected`) that only the person's own
//! confirmation of a new double opt-in lifts ([`own_confirmation`]).

use super::supporter::Origin;
use super::{Result, ServiceError};
use crate::domain::{AddressKey, ConsentKind, EmailAddress, SubscriptionStatus, WithdrawalMethod};
use crate::store::{ListRow, NewObjection, OBJECTED, SubscriberRow, Tx};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;

/// Why a person may not be confirmed, re-permissioned or mailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bar {
    /// On the suppression list: erased, complained or hard-bounced.
    Suppressed,
    /// Objected to all of the group's mail ("Unsubscribe from everything")
    /// and has not confirmed a new double opt-in since.
    Objected,
    /// Unsubscribed from, bounced on or complained about `list` (a
    /// complaint about any list counts for all of them) and has not
    /// confirmed since.
    Withdrawn { list: String, status: SubscriptionStatus },
    /// Left every list they were on (for mail that is not to a list: test
    /// sends).
    LeftEverything,
}

impl Bar {
    /// The API's error code: `suppressed` or `withdrawn`.
    pub fn code(&self) -> &'static str {
        match self {
            Bar::Suppressed => "suppressed",
            Bar::Objected | Bar::Withdrawn { .. } | Bar::LeftEverything => "withdrawn",
        }
    }

    /// In words for the organiser (never shown to the public).
    pub fn reason(&self) -> String {
        let tail = "; only they can subscribe again, by confirming from the email the subscribe form sends";
        match self {
            Bar::Suppressed => {
                "this address is on the suppression list (erased, complained or hard-bounced) and may not be mailed"
                    .to_owned()
            }
            Bar::Objected => format!("this person unsubscribed from everything (all of the group's mail){tail}"),
            Bar::Withdrawn { list, status } => {
                let why = match status {
                    SubscriptionStatus::Unsubscribed => "unsubscribed from",
                    SubscriptionStatus::Bounced => "had mail bounce on",
                    _ => "complained about mail from",
                };
                format!("this person {why} the list {list}{tail}")
            }
            Bar::LeftEverything => format!("this person has left every list they were on{tail}"),
        }
    }

    /// The service error an organiser's single add answers with (409).
    pub fn into_error(self) -> ServiceError {
        match self {
            Bar::Suppressed => ServiceError::Suppressed(self.reason()),
            _ => ServiceError::Withdrawn(self.reason()),
        }
    }
}

/// What the rule is asked about.
#[derive(Debug, Clone, Copy)]
pub enum Purpose<'a> {
    /// Confirming or re-permissioning on these lists (organiser add, import).
    Lists(&'a [ListRow]),
    /// Any mail at all, not to a list (a test send).
    AnyMail,
}

/// One person the rule is asked about: the address, and the subscriber it
/// belongs to when known.
#[derive(Debug, Clone, Copy)]
pub struct Person<'a> {
    pub email: &'a EmailAddress,
    pub subscriber: Option<Uuid>,
}

/// The rule's answer for a batch of people, with where each known person
/// stands on each list (see [`standing_for_basis`]), for callers that go on
/// to confirm the rest.
#[derive(Debug, Default)]
pub struct Standings {
    /// One per person, in order: `None` when nothing bars them.
    pub bars: Vec<Option<Bar>>,
    /// (subscriber, list) → status, a withdrawal not taken back counting
    /// as that withdrawal.
    pub statuses: HashMap<(Uuid, Uuid), SubscriptionStatus>,
}

/// THE rule: for each person, what (if anything) bars an organiser or a
/// test send from confirming, re-permissioning or mailing them for
/// `purpose`. A few queries for the whole batch.
pub(crate) async fn bars(
    tx: &mut Tx,
    key: &AddressKey,
    people: &[Person<'_>],
    purpose: Purpose<'_>,
) -> Result<Standings> {
    let emails: Vec<&EmailAddress> = people.iter().map(|p| p.email).collect();
    let found = super::fingerprints::suppressed(tx, key, &emails).await?;
    let hashes: Vec<String> = found.iter().flatten().cloned().collect();
    let reasons = tx.suppression_reasons_among(&hashes).await?;
    let ids: Vec<Uuid> = people.iter().filter_map(|p| p.subscriber).collect();
    let statuses = standing_for_basis(tx, &ids).await?;
    let mut by_person: HashMap<Uuid, Vec<(Uuid, SubscriptionStatus)>> = HashMap::new();
    for ((subscriber, list), status) in &statuses {
        by_person.entry(*subscriber).or_default().push((*list, *status));
    }
    let mut out = Vec::with_capacity(people.len());
    for (person, hash) in people.iter().zip(found) {
        let bar = if let Some(hash) = hash {
            Some(if reasons.get(&hash).is_some_and(|r| r == OBJECTED) { Bar::Objected } else { Bar::Suppressed })
        } else {
            let theirs = person.subscriber.and_then(|id| by_person.get(&id)).map(Vec::as_slice).unwrap_or(&[]);
            person_bar(theirs, purpose)
        };
        out.push(bar);
    }
    Ok(Standings { bars: out, statuses })
}

/// The rule for one known, unsuppressed person from their standing on
/// each list (list id, status).
fn person_bar(theirs: &[(Uuid, SubscriptionStatus)], purpose: Purpose<'_>) -> Option<Bar> {
    let withdrawn = |s: SubscriptionStatus| {
        matches!(s, SubscriptionStatus::Unsubscribed | SubscriptionStatus::Bounced | SubscriptionStatus::Complained)
    };
    // A complaint is about the group's mail, whichever list carried it.
    let complained = theirs.iter().find(|(_, s)| *s == SubscriptionStatus::Complained);
    match purpose {
        Purpose::Lists(lists) => {
            let name = |id: Uuid| lists.iter().find(|l| l.id == id).map(|l| l.slug.clone());
            if let Some((list, status)) = complained {
                let list = name(*list).unwrap_or_else(|| "of this group".to_owned());
                return Some(Bar::Withdrawn { list, status: *status });
            }
            lists.iter().find_map(|l| {
                theirs
                    .iter()
                    .find(|(id, s)| *id == l.id && withdrawn(*s))
                    .map(|(_, s)| Bar::Withdrawn { list: l.slug.clone(), status: *s })
            })
        }
        Purpose::AnyMail => {
            if let Some((_, status)) = complained {
                return Some(Bar::Withdrawn { list: "of this group".to_owned(), status: *status });
            }
            (!theirs.is_empty() && theirs.iter().all(|(_, s)| withdrawn(*s))).then_some(Bar::LeftEverything)
        }
    }
}

/// Where these people stand on each list: their subscription statuses,
/// except that a pending subscription whose person withdrew (or whose mail
/// bounced or drew a complaint) and has not confirmed since counts as that
/// withdrawal. An anonymous subscribe form puts such a subscription back to
/// pending, and anyone can type anyone's address: only the person's own
/// click on the confirmation link may undo a withdrawal.
pub(crate) async fn standing_for_basis(
    tx: &mut Tx,
    subscriber_ids: &[Uuid],
) -> Result<HashMap<(Uuid, Uuid), SubscriptionStatus>> {
    let mut standing: HashMap<(Uuid, Uuid), SubscriptionStatus> = tx
        .subscriptions_among(subscriber_ids)
        .await?
        .into_iter()
        .map(|s| ((s.subscriber_id, s.list_id), s.status))
        .collect();
    let pending: Vec<Uuid> = {
        let mut ids: Vec<Uuid> = standing
            .iter()
            .filter(|(_, st)| **st == SubscriptionStatus::Pending)
            .map(|((subscriber, _), _)| *subscriber)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    for decision in tx.latest_decisions_among(&pending).await? {
        let withdrawal = match decision.kind {
            ConsentKind::Withdrawn => SubscriptionStatus::Unsubscribed,
            ConsentKind::Bounced => SubscriptionStatus::Bounced,
            ConsentKind::Complained => SubscriptionStatus::Complained,
            _ => continue,
        };
        if let Some(st) = standing.get_mut(&(decision.subscriber_id, decision.list_id))
            && *st == SubscriptionStatus::Pending
        {
            *st = withdrawal;
        }
    }
    Ok(standing)
}

/// The supporter's own routes (subscribe form, preferences page): for each
/// address, its fingerprint when even the person's own double opt-in may
/// not start (erased, complained, hard-bounced), else `None`. An objection
/// does not block it: the confirmation mail goes to the address, and only
/// its owner's click confirms (see [`own_confirmation`]).
pub(crate) async fn own_opt_in_blocked(
    tx: &mut Tx,
    key: &AddressKey,
    emails: &[&EmailAddress],
) -> Result<Vec<Option<String>>> {
    let found = super::fingerprints::suppressed(tx, key, emails).await?;
    let hashes: Vec<String> = found.iter().flatten().cloned().collect();
    let reasons = tx.suppression_reasons_among(&hashes).await?;
    Ok(found.into_iter().map(|h| h.filter(|h| reasons.get(h).is_none_or(|r| r != OBJECTED))).collect())
}

/// The person confirmed a new double opt-in from their own mailbox: an
/// objection they made before no longer bars their mail (its record stays).
pub(crate) async fn own_confirmation(tx: &mut Tx, key: &AddressKey, subscriber: &SubscriberRow) -> Result<()> {
    tx.lift_objection(&key.fingerprint(&subscriber.email_norm)).await?;
    Ok(())
}

/// Records "Unsubscribe from everything": one objection to all of the
/// group's mail (one `objections` record: when, how, and the request's
/// facts), every active subscription set to unsubscribed (without a ledger
/// entry per list: the objection is the evidence), and a suppression of the
/// address. Returns the lists left.
pub(crate) async fn object(
    tx: &mut Tx,
    key: &AddressKey,
    subscriber: &SubscriberRow,
    method: WithdrawalMethod,
    origin: &Origin<'_>,
    notice_version: i64,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let mut left = Vec::new();
    for sub in tx.subscriptions(subscriber.id).await? {
        if sub.status.is_active() {
            tx.set_subscription_status(subscriber.id, sub.list_id, SubscriptionStatus::Unsubscribed, now).await?;
            left.push(sub.list_name);
        }
    }
    tx.insert_objection(&NewObjection {
        subscriber_id: subscriber.id,
        occurred_at: now,
        method: method.as_str().to_owned(),
        notice_version: Some(notice_version),
        ip: origin.meta.ip.clone(),
        user_agent: origin.meta.user_agent.clone(),
        actor: origin.actor.to_db(),
        controller_name: origin.controller.group_name.clone(),
        controller_contact: origin.controller.contact_address.clone(),
    })
    .await?;
    tx.suppress_objection(&key.fingerprint(&subscriber.email_norm), now).await?;
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(slug: &str) -> ListRow {
        ListRow {
            id: Uuid::now_v7(),
            slug: slug.to_owned(),
            name: slug.to_owned(),
            description: String::new(),
            public: true,
            archive: false,
            frequency: String::new(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_complaint_on_any_list_bars_every_list_and_any_mail() {
        let (a, b) = (list("a"), list("b"));
        let lists = [b.clone()];
        let theirs = [(a.id, SubscriptionStatus::Complained), (b.id, SubscriptionStatus::Confirmed)];
        assert!(matches!(person_bar(&theirs, Purpose::Lists(&lists)), Some(Bar::Withdrawn { .. })));
        assert!(matches!(person_bar(&theirs, Purpose::AnyMail), Some(Bar::Withdrawn { .. })));
    }

    #[test]
    fn a_withdrawal_bars_its_list_only_and_leaving_everything_bars_any_mail() {
        let (a, b) = (list("a"), list("b"));
        let theirs = [(a.id, SubscriptionStatus::Unsubscribed)];
        assert_eq!(
            person_bar(&theirs, Purpose::Lists(std::slice::from_ref(&a))),
            Some(Bar::Withdrawn { list: "a".into(), status: SubscriptionStatus::Unsubscribed })
        );
        assert_eq!(person_bar(&theirs, Purpose::Lists(std::slice::from_ref(&b))), None);
        assert_eq!(person_bar(&theirs, Purpose::AnyMail), Some(Bar::LeftEverything));
        assert_eq!(person_bar(&[], Purpose::AnyMail), None);
        assert_eq!(Bar::Objected.code(), "withdrawn");
        assert_eq!(Bar::Suppressed.code(), "suppressed");
    }
}
