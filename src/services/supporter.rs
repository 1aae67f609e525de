//! What a supporter does: subscribe (double opt-in), confirm, unsubscribe,
//! and manage preferences.
//!
//! The subscribe answer must not reveal whether an address is known, so
//! [`subscribe`] returns `()` whatever it did, and every path through it runs
//! one short write transaction.

use super::{Context, FieldError, RequestMeta, Result, ServiceError, ensure_valid};
use crate::domain::{
    Actor, AddressKey, BasisKind, ConfirmToken, ConsentKind, EmailAddress, ListSlug, MailKind, SignedToken,
    SubscriberName, SubscriptionStatus, TokenPurpose, WithdrawalMethod,
};
use crate::mail::{ConfirmationMail, Recipe};
use crate::store::{
    ListRow, NewConfirmationToken, NewConsentEvent, NewImportedSubscriber, NewOutboxMessage, OutboxBody,
    RequestedSubscription, SignupWrites, SubscriberRow, SubscriptionRow, Tx,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// Which lists the person ticked a consent box for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentGiven {
    /// A plain "yes" (`consent=true` / `on`): every requested list.
    All,
    /// One box per list: the slugs whose boxes were ticked.
    Lists(Vec<String>),
}

/// The subscribe form or JSON body, before parsing.
#[derive(Debug, Clone, Default)]
pub struct SubscribeInput {
    pub email: String,
    pub name: String,
    pub lists: Vec<String>,
    pub consent: Option<ConsentGiven>,
    pub source: Option<String>,
    /// A field hidden from people; bots fill it in.
    pub honeypot: String,
    /// The consent statement version the form showed, per list, as
    /// (slug, version) exactly as posted. Empty from forms that do not say
    /// (older embeds, JSON callers): then the version in force is recorded.
    pub statements: Vec<(String, String)>,
}

/// A subscribe request that has passed every check that needs no database.
#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    pub email: EmailAddress,
    pub name: Option<SubscriberName>,
    /// Requested lists that the person consented to, de-duplicated.
    pub lists: Vec<ListSlug>,
    pub source: Option<String>,
    pub is_bot: bool,
    /// The statement version the form showed, for requested lists that
    /// said (see [`SubscribeInput::statements`]).
    pub statements: Vec<(ListSlug, i64)>,
}

const MAX_LISTS: usize = 50;
const MAX_SOURCE: usize = 2048;

impl SubscribeRequest {
    pub fn parse(input: &SubscribeInput) -> Result<Self> {
        let mut errors = Vec::new();
        let email = EmailAddress::parse(&input.email).map_err(|e| errors.push(FieldError::from_parse("email", e))).ok();
        let name = SubscriberName::parse_optional(&input.name)
            .map_err(|e| errors.push(FieldError::from_parse("name", e)))
            .ok()
            .flatten();
        let mut lists: Vec<ListSlug> = Vec::new();
        if input.lists.is_empty() {
            errors.push(FieldError::new("lists", "choose at least one list"));
        } else if input.lists.len() > MAX_LISTS {
            errors.push(FieldError::new("lists", "too many lists"));
        }
        for raw in input.lists.iter().take(MAX_LISTS) {
            match ListSlug::parse(raw) {
                Ok(slug) if !lists.contains(&slug) => lists.push(slug),
                Ok(_) => {}
                Err(_) => errors.push(FieldError::new("lists", "unknown list")),
            }
        }
        // No box, no subscription: keep only lists with consent.
        lists.retain(|slug| match &input.consent {
            Some(ConsentGiven::All) => true,
            Some(ConsentGiven::Lists(given)) => given.iter().any(|g| g == slug.as_str()),
            None => false,
        });
        if lists.is_empty() && !input.lists.is_empty() {
            errors.push(FieldError::new("consent", "tick the box to agree to receive these emails"));
        }
        let source = match input.source.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) if s.len() <= MAX_SOURCE && !s.chars().any(char::is_control) => Some(s.to_owned()),
            Some(_) => {
                errors.push(FieldError::new("source", "the source must be one line of at most 2048 characters"));
                None
            }
        };
        let statements = shown_statements(&input.statements, &lists, &mut errors);
        ensure_valid(errors)?;
        let Some(email) = email else { unreachable!("errors were checked") };
        Ok(Self { email, name, lists, source, is_bot: !input.honeypot.trim().is_empty(), statements })
    }
}

/// What a form says it showed: a positive version per requested list (for
/// lists not requested it is ignored, as the list itself is). One list
/// named twice with different versions is an error.
fn shown_statements(
    raw: &[(String, String)],
    lists: &[ListSlug],
    errors: &mut Vec<FieldError>,
) -> Vec<(ListSlug, i64)> {
    let mut shown: Vec<(ListSlug, i64)> = Vec::new();
    for (slug, version) in raw.iter().take(MAX_LISTS) {
        let Some(list) = lists.iter().find(|l| l.as_str() == slug.trim()) else { continue };
        let version = match version.trim().parse::<i64>() {
            Ok(v) if v > 0 => v,
            _ => {
                errors.push(FieldError::new("statements", "the form's wording version is not a version number"));
                return Vec::new();
            }
        };
        match shown.iter().find(|(l, _)| l == list) {
            Some((_, v)) if *v != version => {
                errors.push(FieldError::new("statements", "the form names two wording versions for one list"));
                return Vec::new();
            }
            Some(_) => {}
            None => shown.push((list.clone(), version)),
        }
    }
    shown
}

/// The answer to a request whose form showed wording that was never
/// published for that list: the page is shown again with today's wording.
fn unknown_statement() -> ServiceError {
    ServiceError::Invalid(vec![FieldError::new(
        "statements",
        "the wording on this form is not one we published; please read the wording below and subscribe again",
    )])
}

/// Takes a subscribe request. Returns `Ok(())` in every case the supporter
/// may not learn about (known, pending, confirmed, suppressed, honeypot);
/// errors only for input problems that do not depend on who the address is
/// (an unknown list).
#[tracing::instrument(skip_all, fields(lists = req.lists.len()))]
pub async fn subscribe(ctx: &Context, req: &SubscribeRequest, meta: &RequestMeta) -> Result<()> {
    let mut results = subscribe_batch(ctx, &[(req, meta)]).await?;
    results.pop().unwrap_or(Ok(()))
}

/// Takes many subscribe requests in one write transaction and one commit
/// (see [`super::subscribe_queue`]), with a fixed number of set statements
/// however many requests there are: each statement is a round trip to the
/// database (on SQLite, to its thread), and those, not the work, are what
/// a request costs. Requests are applied in order, so the second of two
/// for one address sees the first (and mails nothing new). A request for
/// an unknown list fails alone and writes nothing; the outer error is the
/// database's, and then none of the requests was taken.
pub async fn subscribe_batch(ctx: &Context, requests: &[(&SubscribeRequest, &RequestMeta)]) -> Result<Vec<Result<()>>> {
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let mut results: Vec<Result<()>> = requests.iter().map(|_| Ok(())).collect();

    // Each list once per batch, with every published version of its
    // statement; an unknown or private list fails its request.
    let mut lists: HashMap<&str, Option<ListRow>> = HashMap::new();
    let mut statements = ListStatements::default();
    for (req, _) in requests {
        for slug in &req.lists {
            if !lists.contains_key(slug.as_str()) {
                let list = tx.list_by_slug(slug.as_str()).await?.filter(|l| l.public);
                if let Some(list) = &list {
                    statements.load(&mut tx, list.id).await?;
                }
                lists.insert(slug.as_str(), list);
            }
        }
    }
    // A version the form says it showed must be one published for that
    // list (checked in memory); it is what the ledger records.
    let mut live: Vec<(usize, Vec<&ListRow>, HashMap<Uuid, Uuid>)> = Vec::with_capacity(requests.len());
    for (i, (req, _)) in requests.iter().enumerate() {
        let wanted: Option<Vec<&ListRow>> =
            req.lists.iter().map(|s| lists.get(s.as_str()).and_then(Option::as_ref)).collect();
        let Some(wanted) = wanted else {
            results[i] = Err(ServiceError::Invalid(vec![FieldError::new("lists", "unknown list")]));
            continue;
        };
        let mut shown = HashMap::new();
        for (slug, version) in &req.statements {
            let Some(list) = wanted.iter().find(|l| l.slug == slug.as_str()) else { continue };
            match statements.version(list.id, *version) {
                Some(statement) => shown.insert(list.id, statement),
                None => {
                    results[i] = Err(unknown_statement());
                    break;
                }
            };
        }
        if results[i].is_err() || req.is_bot {
            continue;
        }
        live.push((i, wanted, shown));
    }

    // Suppressed addresses: noted, and nothing else. A person who objected
    // to all mail may start their own new double opt-in (the one exception
    // to the withdrawal rule, `services::standing`).
    let emails: Vec<&EmailAddress> = live.iter().map(|(i, _, _)| &requests[*i].0.email).collect();
    let suppressed = super::standing::own_opt_in_blocked(&mut tx, &ctx.address_key, &emails).await?;
    let mut attempts = Vec::new();
    let mut people = Vec::with_capacity(live.len());
    for (entry, hash) in live.into_iter().zip(suppressed) {
        match hash {
            Some(hash) => attempts.push(hash),
            None => people.push(entry),
        }
    }
    tx.note_suppressed_attempts(&attempts, now).await?;

    // Find or create each person. An existing subscriber's name is never
    // changed from an unauthenticated form: anyone can type anyone's address.
    let norms: Vec<String> = people.iter().map(|(i, _, _)| requests[*i].0.email.normalised().to_owned()).collect();
    let mut known: HashMap<String, (Uuid, String)> =
        tx.subscribers_among(&norms).await?.into_iter().map(|s| (s.email_norm, (s.id, s.name))).collect();
    // Only people already known can have subscriptions to look up.
    let existing: Vec<Uuid> = known.values().map(|(id, _)| *id).collect();
    let mut new_rows = Vec::new();
    for (i, _, _) in &people {
        let req = requests[*i].0;
        if !known.contains_key(req.email.normalised()) {
            let row = new_subscriber(&ctx.address_key, &req.email, req.name.as_ref());
            known.insert(row.email_norm.clone(), (row.id, row.name.clone()));
            new_rows.push(row);
        }
    }
    if !people.is_empty() {
        let involved: Vec<&ListRow> = lists.values().flatten().collect();
        let notice_version = current_notice_version(&mut tx, now).await?;
        let mut confirmations =
            ConfirmationRequests::load_with(ctx, &mut tx, &existing, &involved, statements, notice_version, now)
                .await?;
        for (i, wanted, shown) in &people {
            let (req, meta) = requests[*i];
            let Some((id, name)) = known.get(req.email.normalised()) else { continue };
            let origin = Origin {
                meta,
                source: req.source.as_deref(),
                actor: Actor::Supporter,
                controller: &ctx.config,
                basis_kind: None,
            };
            confirmations.request_shown(*id, name, &req.email, wanted, &origin, shown)?;
        }
        // The new subscribers are written with the rest, in one go.
        confirmations.write(&mut tx, &new_rows).await?;
    }
    tx.commit().await?;
    ctx.outbox_wakeup.notify_one();
    Ok(results)
}

/// A subscriber row for a new address (no attributes yet).
fn new_subscriber(key: &AddressKey, email: &EmailAddress, name: Option<&SubscriberName>) -> NewImportedSubscriber {
    NewImportedSubscriber {
        id: Uuid::now_v7(),
        email: email.as_str().to_owned(),
        email_norm: email.normalised().to_owned(),
        email_hash: email.suppression_hash(key),
        name: name.map(|n| n.as_str().to_owned()).unwrap_or_default(),
        attributes: "{}".to_owned(),
    }
}

/// Where a request came from, for the ledger.
pub(crate) struct Origin<'a> {
    pub meta: &'a RequestMeta,
    pub source: Option<&'a str>,
    pub actor: Actor,
    /// The controller named in the entry: the group as configured now.
    pub controller: &'a crate::config::Config,
    /// The kind of basis of an import or organiser's add; `None` for a
    /// supporter's own action.
    pub basis_kind: Option<BasisKind>,
}

/// Moves each list (unless confirmed or complained) to `pending` with a
/// `requested` ledger entry, and queues one confirmation mail for the lists
/// not mailed within the resend interval. Runs inside the caller's
/// transaction. Returns the lists mailed now.
#[expect(clippy::too_many_arguments, reason = "the caller's transaction plus the facts of one request")]
pub(crate) async fn request_confirmation(
    ctx: &Context,
    tx: &mut Tx,
    subscriber: &SubscriberRow,
    email: &EmailAddress,
    lists: &[ListRow],
    origin: &Origin<'_>,
    notice_version: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    let lists: Vec<&ListRow> = lists.iter().collect();
    let mut confirmations = ConfirmationRequests::load(ctx, tx, &[subscriber.id], &lists, notice_version, now).await?;
    confirmations.request(subscriber.id, &subscriber.name, email, &lists, origin)?;
    let mailed = confirmations.requested.iter().filter(|(_, mailed)| **mailed).map(|(&(_, list), _)| list).collect();
    confirmations.write(tx, &[]).await?;
    Ok(mailed)
}

/// Every published statement version of some lists, read once per batch so
/// that the version a form showed is checked in memory.
#[derive(Debug, Default)]
pub(crate) struct ListStatements {
    /// list id → (version, statement id), newest first.
    by_list: HashMap<Uuid, Vec<(i64, Uuid)>>,
}

impl ListStatements {
    /// Reads a list's versions, unless already read.
    pub(crate) async fn load(&mut self, tx: &mut Tx, list_id: Uuid) -> Result<()> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.by_list.entry(list_id) {
            slot.insert(tx.statement_versions(list_id).await?);
        }
        Ok(())
    }

    /// The statement in force for a list (its newest version).
    pub(crate) fn current(&self, list_id: Uuid) -> Option<Uuid> {
        self.by_list.get(&list_id)?.first().map(|(_, id)| *id)
    }

    /// The statement published for a list as `version`, if there is one.
    pub(crate) fn version(&self, list_id: Uuid, version: i64) -> Option<Uuid> {
        self.by_list.get(&list_id)?.iter().find(|(v, _)| *v == version).map(|(_, id)| *id)
    }
}

/// A subscription's status, and when a confirmation was last mailed.
type Standing = (Option<SubscriptionStatus>, Option<DateTime<Utc>>);

/// What subscribe requests do, gathered in memory and then written with a
/// few set statements ([`request_confirmation`] for one person, or a whole
/// batch of requests or import rows at once). Requests are applied in
/// order: each sees where the earlier ones left a subscription.
pub(crate) struct ConfirmationRequests<'c> {
    ctx: &'c Context,
    now: DateTime<Utc>,
    notice_version: i64,
    /// The newest consent statement of each list involved.
    statements: HashMap<Uuid, Uuid>,
    /// (subscriber, list) → status and when a confirmation was last mailed.
    standing: HashMap<(Uuid, Uuid), Standing>,
    /// Subscriptions moved to pending → whether mailed now.
    requested: BTreeMap<(Uuid, Uuid), bool>,
    /// Confirmed or complained subscriptions asked for again: only noted.
    noted: BTreeSet<(Uuid, Uuid)>,
    events: Vec<NewConsentEvent>,
    tokens: Vec<NewConfirmationToken>,
    mails: Vec<NewOutboxMessage>,
}

impl<'c> ConfirmationRequests<'c> {
    /// Reads where these people stand on every list, and the current
    /// consent statement of each of `lists`.
    pub(crate) async fn load(
        ctx: &'c Context,
        tx: &mut Tx,
        subscriber_ids: &[Uuid],
        lists: &[&ListRow],
        notice_version: i64,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let mut statements = ListStatements::default();
        for list in lists {
            statements.load(tx, list.id).await?;
        }
        Self::load_with(ctx, tx, subscriber_ids, lists, statements, notice_version, now).await
    }

    /// [`Self::load`] with the lists' statements already read.
    pub(crate) async fn load_with(
        ctx: &'c Context,
        tx: &mut Tx,
        subscriber_ids: &[Uuid],
        lists: &[&ListRow],
        loaded: ListStatements,
        notice_version: i64,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let standing = tx
            .subscriptions_of(subscriber_ids)
            .await?
            .into_iter()
            .map(|s| ((s.subscriber_id, s.list_id), (Some(s.status), s.last_confirmation_sent_at)))
            .collect();
        let mut statements = HashMap::with_capacity(lists.len());
        for list in lists {
            statements.insert(list.id, loaded.current(list.id).ok_or(ServiceError::NotFound("consent statement"))?);
        }
        Ok(Self {
            ctx,
            now,
            notice_version,
            statements,
            standing,
            requested: BTreeMap::new(),
            noted: BTreeSet::new(),
            events: Vec::new(),
            tokens: Vec::new(),
            mails: Vec::new(),
        })
    }

    /// One person asks for `lists` (each loaded by [`Self::load`]); the
    /// ledger records the statement in force.
    pub(crate) fn request(
        &mut self,
        subscriber_id: Uuid,
        name: &str,
        email: &EmailAddress,
        lists: &[&ListRow],
        origin: &Origin<'_>,
    ) -> Result<()> {
        self.request_shown(subscriber_id, name, email, lists, origin, &HashMap::new())
    }

    /// One person asks for `lists` on a form that showed the statements
    /// `shown` (list id → statement id; lists it does not name get the
    /// statement in force), which the ledger records.
    ///
    /// A subscription already pending and mailed within the resend
    /// interval gets no second `requested` entry: anyone can type anyone's
    /// address, and repeats would otherwise fill a person's record. The
    /// subscription row is still upserted, and the answer (and, on a quiet
    /// server, its time: see [`super::subscribe_queue`]) is the same
    /// either way.
    pub(crate) fn request_shown(
        &mut self,
        subscriber_id: Uuid,
        name: &str,
        email: &EmailAddress,
        lists: &[&ListRow],
        origin: &Origin<'_>,
        shown: &HashMap<Uuid, Uuid>,
    ) -> Result<()> {
        let resend_after = self.now - self.ctx.config.confirm_resend_interval;
        let mut to_mail: Vec<&ListRow> = Vec::new();
        for list in lists {
            let key = (subscriber_id, list.id);
            let (status, last_mailed) = self.standing.get(&key).copied().unwrap_or_default();
            // Already confirmed: nothing to do. Complained: never again.
            if matches!(status, Some(SubscriptionStatus::Confirmed | SubscriptionStatus::Complained)) {
                self.noted.insert(key);
                continue;
            }
            let recently_requested =
                status == Some(SubscriptionStatus::Pending) && last_mailed.is_some_and(|at| at > resend_after);
            if !recently_requested {
                let statement = shown.get(&list.id).or_else(|| self.statements.get(&list.id)).copied();
                self.events.push(ledger_entry(
                    subscriber_id,
                    list.id,
                    ConsentKind::Requested,
                    statement,
                    origin,
                    self.notice_version,
                    None,
                    self.now,
                ));
            }
            self.requested.entry(key).or_insert(false);
            self.standing.insert(key, (Some(SubscriptionStatus::Pending), last_mailed));
            if last_mailed.is_none_or(|at| at <= resend_after) {
                to_mail.push(list);
            }
        }
        if to_mail.is_empty() {
            return Ok(());
        }
        let token = ConfirmToken::generate(self.now)?;
        // Queued as what it says; the outbox worker composes it (see
        // `mail::Recipe`), so the transaction writes a few hundred bytes.
        let recipe = Recipe::Confirmation(ConfirmationMail {
            to: email.as_str().to_owned(),
            name: name.to_owned(),
            lists: to_mail.iter().map(|l| l.name.clone()).collect(),
            frequencies: to_mail.iter().map(|l| l.frequency.clone()).collect(),
            link: self.ctx.config.link(&format!("/confirm/{}", token.as_str())),
            expires_hours: self.ctx.config.confirm_token_ttl.as_secs() / 3600,
            privacy_url: self.ctx.config.link("/privacy"),
        });
        self.mails.push(NewOutboxMessage {
            kind: MailKind::Confirmation,
            recipient: email.as_str().to_owned(),
            message_id: self.ctx.composer.new_message_id(),
            body: OutboxBody::Recipe(recipe.to_json()?),
        });
        for list in &to_mail {
            self.requested.insert((subscriber_id, list.id), true);
            self.standing.insert((subscriber_id, list.id), (Some(SubscriptionStatus::Pending), Some(self.now)));
        }
        self.tokens.push(NewConfirmationToken {
            token_hash: token.hash(),
            subscriber_id,
            list_ids: to_mail.iter().map(|l| l.id).collect(),
        });
        Ok(())
    }

    /// Writes everything gathered (after `new_subscribers`, the people
    /// first seen by these requests), in the caller's transaction.
    pub(crate) async fn write(self, tx: &mut Tx, new_subscribers: &[NewImportedSubscriber]) -> Result<()> {
        let requested: Vec<RequestedSubscription> = self
            .requested
            .iter()
            .map(|(&(subscriber_id, list_id), &mailed)| RequestedSubscription { subscriber_id, list_id, mailed })
            .collect();
        let noted: Vec<(Uuid, Uuid)> = self.noted.into_iter().collect();
        tx.write_signups(&SignupWrites {
            new_subscribers,
            requested: &requested,
            noted: &noted,
            events: &self.events,
            tokens: &self.tokens,
            mails: &self.mails,
            now: self.now,
            tokens_expire_at: self.now + self.ctx.config.confirm_token_ttl,
        })
        .await?;
        Ok(())
    }
}

/// The subscriber with this address, created (with `name`) if new.
pub(crate) async fn find_or_create_subscriber(
    tx: &mut Tx,
    key: &AddressKey,
    email: &EmailAddress,
    name: Option<&SubscriberName>,
    now: DateTime<Utc>,
) -> Result<SubscriberRow> {
    if let Some(existing) = tx.subscriber_by_email(email.normalised()).await? {
        return Ok(existing);
    }
    let row = SubscriberRow {
        id: Uuid::now_v7(),
        email: email.as_str().to_owned(),
        email_norm: email.normalised().to_owned(),
        name: name.map(|n| n.as_str().to_owned()).unwrap_or_default(),
        attributes: "{}".to_owned(),
        created_at: now,
        updated_at: now,
    };
    tx.insert_subscriber(&row, &email.suppression_hash(key)).await?;
    Ok(row)
}

pub(crate) async fn current_notice_version(tx: &mut Tx, now: DateTime<Utc>) -> Result<i64> {
    Ok(tx.current_privacy_notice(now).await?.ok_or(ServiceError::NotFound("privacy notice"))?.version)
}

async fn subscriptions_by_list(tx: &mut Tx, subscriber: Uuid) -> Result<HashMap<Uuid, SubscriptionRow>> {
    Ok(tx.subscriptions(subscriber).await?.into_iter().map(|s| (s.list_id, s)).collect())
}

/// What a confirmation link would confirm (for the GET page).
#[derive(Debug, Clone)]
pub struct PendingConfirmation {
    pub list_names: Vec<String>,
}

/// Looks at a confirmation token without using it: GET must change nothing,
/// because mail scanners fetch links.
pub async fn peek_confirmation(ctx: &Context, raw_token: &str) -> Result<PendingConfirmation> {
    let token = ConfirmToken::parse(raw_token).map_err(|_| ServiceError::Gone)?;
    let mut tx = ctx.store.read().await?;
    let (_, list_ids) = tx.live_confirmation_token(&token.hash(), ctx.clock.now()).await?.ok_or(ServiceError::Gone)?;
    Ok(PendingConfirmation { list_names: list_names(&mut tx, &list_ids).await? })
}

async fn list_names(tx: &mut Tx, ids: &[Uuid]) -> Result<Vec<String>> {
    let mut names = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(list) = tx.list_by_id(*id).await? {
            names.push(list.name);
        }
    }
    names.sort();
    Ok(names)
}

/// The outcome of a confirmation, for the thank-you page.
#[derive(Debug, Clone)]
pub struct Confirmed {
    pub list_names: Vec<String>,
    /// A preferences token for the page's "manage your subscription" link.
    pub preferences_token: String,
}

/// Uses a confirmation token: pending subscriptions it covers become
/// confirmed, each with a ledger entry carrying this request's IP, user
/// agent and time.
pub async fn confirm(ctx: &Context, raw_token: &str, meta: &RequestMeta) -> Result<Confirmed> {
    let token = ConfirmToken::parse(raw_token).map_err(|_| ServiceError::Gone)?;
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let (subscriber_id, list_ids) = tx.use_confirmation_token(&token.hash(), now).await?.ok_or(ServiceError::Gone)?;
    let notice_version = current_notice_version(&mut tx, now).await?;
    let existing = subscriptions_by_list(&mut tx, subscriber_id).await?;
    let mut confirmed_any = false;
    for list_id in &list_ids {
        let Some(sub) = existing.get(list_id) else { continue };
        if sub.status != SubscriptionStatus::Pending {
            continue;
        }
        // Someone who was subscribed before and comes back "resubscribes".
        let kind = if sub.confirmed_at.is_some() { ConsentKind::Resubscribed } else { ConsentKind::Confirmed };
        let t = Transition { to: SubscriptionStatus::Confirmed, kind, detail: None };
        change_status(&mut tx, subscriber_id, *list_id, t, &supporter(ctx, meta), notice_version, now).await?;
        confirmed_any = true;
    }
    if confirmed_any && let Some(subscriber) = tx.subscriber_by_id(subscriber_id).await? {
        // Their own new double opt-in: an earlier objection no longer bars them.
        super::standing::own_confirmation(&mut tx, &ctx.address_key, &subscriber).await?;
    }
    let list_names = list_names(&mut tx, &list_ids).await?;
    tx.commit().await?;
    Ok(Confirmed { list_names, preferences_token: SignedToken::preferences(subscriber_id).encode(&ctx.secret_key) })
}

fn supporter<'a>(ctx: &'a Context, meta: &'a RequestMeta) -> Origin<'a> {
    Origin { meta, source: None, actor: Actor::Supporter, controller: &ctx.config, basis_kind: None }
}

/// A change of one subscription's status and the ledger entry recording it.
pub(crate) struct Transition<'a> {
    pub to: SubscriptionStatus,
    pub kind: ConsentKind,
    /// How a withdrawal happened, or the basis of an import.
    pub detail: Option<&'a str>,
}

/// Moves one subscription and appends the matching ledger entry.
pub(crate) async fn change_status(
    tx: &mut Tx,
    subscriber_id: Uuid,
    list_id: Uuid,
    t: Transition<'_>,
    origin: &Origin<'_>,
    notice_version: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    let statement = tx.current_statement(list_id).await?;
    tx.set_subscription_status(subscriber_id, list_id, t.to, now).await?;
    let entry =
        ledger_entry(subscriber_id, list_id, t.kind, statement.map(|s| s.id), origin, notice_version, t.detail, now);
    tx.append_consent_event(&entry).await?;
    Ok(())
}

/// The ledger entry recording `kind` for one subscription, with the facts
/// of the request behind it. Every entry an organiser's or supporter's
/// action writes is built here (imports included, which write them in sets).
#[expect(clippy::too_many_arguments, reason = "every fact a ledger entry records")]
pub(crate) fn ledger_entry(
    subscriber_id: Uuid,
    list_id: Uuid,
    kind: ConsentKind,
    statement_id: Option<Uuid>,
    origin: &Origin<'_>,
    notice_version: i64,
    detail: Option<&str>,
    now: DateTime<Utc>,
) -> NewConsentEvent {
    NewConsentEvent {
        subscriber_id,
        list_id,
        kind,
        statement_id,
        notice_version: Some(notice_version),
        occurred_at: now,
        ip: origin.meta.ip.clone(),
        user_agent: origin.meta.user_agent.clone(),
        source: origin.source.map(str::to_owned),
        actor: origin.actor.to_db(),
        detail: detail.map(str::to_owned),
        controller_name: Some(origin.controller.group_name.clone()),
        controller_contact: Some(origin.controller.contact_address.clone()),
        basis_kind: origin.basis_kind,
    }
}

/// What an unsubscribe link points at.
#[derive(Debug, Clone)]
pub struct UnsubscribeTarget {
    /// Every list the link is for that still exists, in the link's order
    /// (a copy sent for several lists carries one link for them all).
    pub list_names: Vec<String>,
    /// The lists this request took the person off (empty for the GET page,
    /// and for a second click).
    pub left: Vec<String>,
    pub preferences_token: String,
    /// Whether any of the subscriptions is still active (pending or confirmed).
    pub active: bool,
}

fn verify(ctx: &Context, raw: &str, purpose: TokenPurpose) -> Result<SignedToken> {
    SignedToken::verify(raw, &ctx.secret_key, purpose).map_err(|_| ServiceError::NotFound("link"))
}

/// The lists an unsubscribe token names that still exist; `Gone` if none do.
async fn token_lists(tx: &mut Tx, token: &SignedToken) -> Result<Vec<ListRow>> {
    let mut lists = Vec::new();
    for id in token.lists() {
        if let Some(list) = tx.list_by_id(id).await? {
            lists.push(list);
        }
    }
    if lists.is_empty() {
        return Err(ServiceError::Gone);
    }
    Ok(lists)
}

/// For the GET page: which lists, and is there anything to do.
pub async fn unsubscribe_target(ctx: &Context, raw_token: &str) -> Result<UnsubscribeTarget> {
    let token = verify(ctx, raw_token, TokenPurpose::Unsubscribe)?;
    let mut tx = ctx.store.read().await?;
    let lists = token_lists(&mut tx, &token).await?;
    let subs = subscriptions_by_list(&mut tx, token.subscriber).await?;
    let active = lists.iter().any(|l| subs.get(&l.id).is_some_and(|s| s.status.is_active()));
    Ok(UnsubscribeTarget {
        list_names: lists.into_iter().map(|l| l.name).collect(),
        left: Vec::new(),
        preferences_token: SignedToken::preferences(token.subscriber).encode(&ctx.secret_key),
        active,
    })
}

/// Unsubscribes at once from every list the link is for. Idempotent: a
/// second click changes nothing and writes no second ledger entry. An
/// erased subscriber's old link succeeds quietly (there is nothing left to
/// unsubscribe).
pub async fn unsubscribe(
    ctx: &Context,
    raw_token: &str,
    method: WithdrawalMethod,
    meta: &RequestMeta,
) -> Result<UnsubscribeTarget> {
    let token = verify(ctx, raw_token, TokenPurpose::Unsubscribe)?;
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let lists = token_lists(&mut tx, &token).await?;
    let existing = subscriptions_by_list(&mut tx, token.subscriber).await?;
    let mut left = Vec::new();
    for list in &lists {
        if !existing.get(&list.id).is_some_and(|s| s.status.is_active()) {
            continue;
        }
        let notice_version = current_notice_version(&mut tx, now).await?;
        let t = Transition {
            to: SubscriptionStatus::Unsubscribed,
            kind: ConsentKind::Withdrawn,
            detail: Some(method.as_str()),
        };
        change_status(&mut tx, token.subscriber, list.id, t, &supporter(ctx, meta), notice_version, now).await?;
        left.push(list.name.clone());
    }
    tx.commit().await?;
    for _ in &left {
        ctx.metrics.unsubscribed(method.as_str());
    }
    Ok(UnsubscribeTarget {
        list_names: lists.into_iter().map(|l| l.name).collect(),
        left,
        preferences_token: SignedToken::preferences(token.subscriber).encode(&ctx.secret_key),
        active: false,
    })
}

/// One row of the preferences page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PreferenceRow {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub subscribed: bool,
    /// Asked for but not yet confirmed from the mail sent for it.
    pub pending: bool,
    /// The consent wording shown beside the box.
    pub statement: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Preferences {
    pub email: String,
    pub name: String,
    pub lists: Vec<PreferenceRow>,
}

/// Public lists plus any list the person is on, with their state.
pub async fn preferences(ctx: &Context, raw_token: &str) -> Result<Preferences> {
    let token = verify(ctx, raw_token, TokenPurpose::Preferences)?;
    let mut tx = ctx.store.read().await?;
    load_preferences(&mut tx, token.subscriber).await
}

async fn load_preferences(tx: &mut Tx, subscriber_id: Uuid) -> Result<Preferences> {
    let subscriber = tx.subscriber_by_id(subscriber_id).await?.ok_or(ServiceError::Gone)?;
    let subs = subscriptions_by_list(tx, subscriber_id).await?;
    let mut rows = Vec::new();
    for list in tx.lists().await? {
        let sub = subs.get(&list.id);
        if !list.public && sub.is_none() {
            continue;
        }
        let statement = tx.current_statement(list.id).await?.map(|s| s.body).unwrap_or_default();
        rows.push(PreferenceRow {
            subscribed: sub.is_some_and(|s| s.status.is_active()),
            pending: sub.is_some_and(|s| s.status == SubscriptionStatus::Pending),
            slug: list.slug,
            name: list.name,
            description: list.description,
            statement,
        });
    }
    Ok(Preferences { email: subscriber.email, name: subscriber.name, lists: rows })
}

/// A submitted preferences form.
#[derive(Debug, Clone, Default)]
pub struct PreferencesInput {
    pub name: String,
    /// Slugs ticked.
    pub lists: Vec<String>,
    /// "Unsubscribe from everything" was pressed.
    pub unsubscribe_all: bool,
}

/// What saving the preferences form did, beside the page's new state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SavedPreferences {
    #[serde(flatten)]
    pub preferences: Preferences,
    /// Newly ticked lists: a confirmation mail was sent for them, and they
    /// start once the person confirms from it.
    pub confirmation_sent: Vec<String>,
    /// Newly ticked lists whose confirmation mail went out shortly before
    /// (within the resend interval), so none was sent again now.
    pub confirmation_recent: Vec<String>,
    /// Lists the person left with this save.
    pub left: Vec<String>,
    /// "Unsubscribe from everything" was pressed.
    pub unsubscribed_all: bool,
}

/// Applies the form. Removed ticks withdraw at once. New ticks do not
/// subscribe at once: the preferences link travels in every copy, so
/// whoever a mail was forwarded to holds it too. They ask for the list as
/// the subscribe form does (pending, a `requested` ledger entry, a
/// confirmation mail to the address), and only the click in that mail
/// confirms.
pub async fn update_preferences(
    ctx: &Context,
    raw_token: &str,
    input: &PreferencesInput,
    meta: &RequestMeta,
) -> Result<SavedPreferences> {
    let token = verify(ctx, raw_token, TokenPurpose::Preferences)?;
    let name = SubscriberName::parse_optional(&input.name)
        .map_err(|e| ServiceError::Invalid(vec![FieldError::from_parse("name", e)]))?;
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let subscriber = tx.subscriber_by_id(token.subscriber).await?.ok_or(ServiceError::Gone)?;
    let new_name = name.as_ref().map(|n| n.as_str()).unwrap_or("");
    if new_name != subscriber.name {
        tx.set_subscriber_name(subscriber.id, new_name, now).await?;
    }
    let notice_version = current_notice_version(&mut tx, now).await?;
    if input.unsubscribe_all {
        // One objection to all of the group's mail (`services::standing`),
        // not one withdrawal per list.
        let left = super::standing::object(
            &mut tx,
            &ctx.address_key,
            &subscriber,
            WithdrawalMethod::Preferences,
            &supporter(ctx, meta),
            notice_version,
            now,
        )
        .await?;
        let preferences = load_preferences(&mut tx, subscriber.id).await?;
        tx.commit().await?;
        for _ in &left {
            ctx.metrics.unsubscribed(WithdrawalMethod::Preferences.as_str());
        }
        return Ok(SavedPreferences {
            preferences,
            confirmation_sent: Vec::new(),
            confirmation_recent: Vec::new(),
            left,
            unsubscribed_all: true,
        });
    }
    let subs = subscriptions_by_list(&mut tx, subscriber.id).await?;
    let method = Some(WithdrawalMethod::Preferences.as_str());
    let mut left = Vec::new();
    let mut asked = Vec::new();
    for list in tx.lists().await? {
        let sub = subs.get(&list.id);
        let status = sub.map(|s| s.status);
        let wanted = !input.unsubscribe_all && input.lists.iter().any(|s| s == &list.slug);
        let active = matches!(status, Some(SubscriptionStatus::Confirmed | SubscriptionStatus::Pending));
        if wanted && !active && (list.public || sub.is_some()) && status != Some(SubscriptionStatus::Complained) {
            asked.push(list);
        } else if wanted
            && status == Some(SubscriptionStatus::Confirmed)
            && tx.latest_notice_version(subscriber.id, list.id).await?.is_none_or(|v| v < notice_version)
        {
            // Saved again under a newer privacy notice (a re-permission
            // campaign): the ledger records agreement to this version.
            let detail = Some("re-confirmed from the preferences page under a new privacy notice");
            let t = Transition { to: SubscriptionStatus::Confirmed, kind: ConsentKind::Confirmed, detail };
            change_status(&mut tx, subscriber.id, list.id, t, &supporter(ctx, meta), notice_version, now).await?;
        } else if !wanted && active {
            let t = Transition { to: SubscriptionStatus::Unsubscribed, kind: ConsentKind::Withdrawn, detail: method };
            change_status(&mut tx, subscriber.id, list.id, t, &supporter(ctx, meta), notice_version, now).await?;
            left.push(list.name);
        }
    }
    let mut mailed = Vec::new();
    if !asked.is_empty() {
        // The stored address was parsed when it was taken; a row that no
        // longer parses gets no mail rather than an error page.
        match EmailAddress::parse(&subscriber.email) {
            // A suppressed address is never mailed, a confirmation included
            // (but one who objected may start their own new double opt-in).
            Ok(email)
                if super::standing::own_opt_in_blocked(&mut tx, &ctx.address_key, &[&email])
                    .await?
                    .iter()
                    .any(Option::is_some) =>
            {
                asked.clear()
            }
            Ok(email) => {
                let origin = Origin {
                    meta,
                    source: Some("preferences page"),
                    actor: Actor::Supporter,
                    controller: &ctx.config,
                    basis_kind: None,
                };
                mailed = request_confirmation(ctx, &mut tx, &subscriber, &email, &asked, &origin, notice_version, now)
                    .await?;
            }
            Err(_) => {
                tracing::warn!(subscriber = %subscriber.id, "stored address does not parse; no confirmation mailed");
                asked.clear();
            }
        }
    }
    let preferences = load_preferences(&mut tx, subscriber.id).await?;
    tx.commit().await?;
    if !asked.is_empty() {
        ctx.outbox_wakeup.notify_one();
    }
    for _ in &left {
        ctx.metrics.unsubscribed(WithdrawalMethod::Preferences.as_str());
    }
    let (sent, recent): (Vec<ListRow>, Vec<ListRow>) = asked.into_iter().partition(|l| mailed.contains(&l.id));
    Ok(SavedPreferences {
        preferences,
        confirmation_sent: sent.into_iter().map(|l| l.name).collect(),
        confirmation_recent: recent.into_iter().map(|l| l.name).collect(),
        left,
        unsubscribed_all: input.unsubscribe_all,
    })
}

/// A public list as the subscribe form shows it, with its consent wording.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublicList {
    pub slug: String,
    pub name: String,
    pub description: String,
    /// How often the list mails; empty when not said.
    pub frequency: String,
    pub statement: String,
    pub statement_version: i64,
}

/// Public lists (optionally just one) with the consent statement in force.
pub async fn public_lists(ctx: &Context, only: Option<&str>) -> Result<Vec<PublicList>> {
    let mut tx = ctx.store.read().await?;
    let mut out = Vec::new();
    for list in tx.lists().await? {
        if !list.public || only.is_some_and(|slug| slug != list.slug) {
            continue;
        }
        let Some(statement) = tx.current_statement(list.id).await? else { continue };
        out.push(PublicList {
            slug: list.slug,
            name: list.name,
            description: list.description,
            frequency: list.frequency,
            statement: statement.body,
            statement_version: statement.version,
        });
    }
    Ok(out)
}
