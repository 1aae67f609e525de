//! Organiser operations on subscribers: find by address, fetch, and add
//! with a recorded basis (`confirmed`) or by sending a confirmation
//! (`pending`, the default).

use super::standing;
use super::supporter::{self, Origin, Transition};
use super::{Actor, Context, FieldError, RequestMeta, Result, ServiceError, ensure_valid};
use crate::domain::{BasisKind, ConsentKind, EmailAddress, ListSlug, SubscriberName, SubscriptionStatus};
use crate::store::{ListRow, SubscriberRow, Tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    pub list: String,
    pub status: String,
    pub updated_at: DateTime<Utc>,
}

/// A subscriber in the API's shape (README, "Organiser API").
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SubscriberView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub attributes: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub subscriptions: Vec<SubscriptionView>,
}

async fn view(tx: &mut Tx, s: SubscriberRow) -> Result<SubscriberView> {
    let subscriptions = tx
        .subscriptions(s.id)
        .await?
        .into_iter()
        .map(|sub| SubscriptionView { list: sub.list_slug, status: sub.status.to_string(), updated_at: sub.updated_at })
        .collect();
    Ok(SubscriberView {
        id: s.id,
        email: s.email,
        name: s.name,
        attributes: serde_json::from_str(&s.attributes).unwrap_or_else(|_| serde_json::json!({})),
        created_at: s.created_at,
        subscriptions,
    })
}

pub async fn find_by_email(ctx: &Context, raw: &str) -> Result<SubscriberView> {
    let email =
        EmailAddress::parse(raw).map_err(|e| ServiceError::Invalid(vec![FieldError::from_parse("email", e)]))?;
    let mut tx = ctx.store.read().await?;
    let row = tx.subscriber_by_email(email.normalised()).await?.ok_or(ServiceError::NotFound("subscriber"))?;
    view(&mut tx, row).await
}

pub async fn get(ctx: &Context, id: Uuid) -> Result<SubscriberView> {
    let mut tx = ctx.store.read().await?;
    let row = tx.subscriber_by_id(id).await?.ok_or(ServiceError::NotFound("subscriber"))?;
    view(&mut tx, row).await
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct AddSubscriberInput {
    #[schema(example = "sam@example.org")]
    pub email: Option<String>,
    #[schema(example = "Sam Supporter")]
    pub name: Option<String>,
    /// List slugs.
    #[serde(default)]
    #[schema(example = json!(["updates"]))]
    pub lists: Vec<String>,
    /// Why we may mail them; required with `"status": "confirmed"`.
    #[schema(example = "Signed up on paper at the town meeting, 3 March")]
    pub basis: Option<String>,
    /// `pending` (the default: a confirmation mail is sent) or `confirmed`.
    #[schema(example = "pending")]
    pub status: Option<String>,
    /// The kind of basis: `consented_elsewhere`, `backer_opted_in`,
    /// `soft_opt_in` or `unspecified` (recorded when absent).
    #[schema(example = "consented_elsewhere")]
    pub basis_kind: Option<String>,
}

/// The terms on which an organiser adds people: `pending` (a confirmation
/// mail asks them) or `confirmed` on a recorded basis. Shared by adding one
/// subscriber and by imports, so both apply the same rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddTerms {
    pub status: SubscriptionStatus,
    /// Why the organiser may mail them (required for `confirmed`).
    pub basis: Option<String>,
    /// The kind of that basis (`unspecified` when not given).
    pub basis_kind: BasisKind,
}

/// The basis kind a ledger entry records: only a confirmed add has one.
pub(crate) fn confirmed_basis_kind(terms: &AddTerms) -> Option<BasisKind> {
    (terms.status == SubscriptionStatus::Confirmed).then_some(terms.basis_kind)
}

/// Parses `status` (default `pending`) and `basis`, pushing any problem onto
/// `errors`: `confirmed` needs a basis, and a basis is one line of at most
/// 2000 characters.
pub(crate) fn parse_terms(
    status: Option<&str>,
    basis: Option<&str>,
    basis_kind: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<AddTerms> {
    let kind = match basis_kind.map(str::trim).filter(|k| !k.is_empty()) {
        None => Some(BasisKind::Unspecified),
        Some(raw) => {
            let kind = BasisKind::parse(raw).ok();
            if kind.is_none() {
                errors.push(FieldError::new(
                    "basis_kind",
                    "basis_kind is consented_elsewhere, backer_opted_in, soft_opt_in or unspecified",
                ));
            }
            kind
        }
    };
    let status = match status.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("pending") {
        "pending" => Some(SubscriptionStatus::Pending),
        "confirmed" => Some(SubscriptionStatus::Confirmed),
        _ => {
            errors.push(FieldError::new("status", "status is \"pending\" or \"confirmed\""));
            None
        }
    };
    let basis = basis.map(str::trim).filter(|b| !b.is_empty());
    if status == Some(SubscriptionStatus::Confirmed) && basis.is_none() {
        errors
            .push(FieldError::new("basis", "adding a confirmed subscriber needs the basis on which you may mail them"));
    }
    if basis.is_some_and(|b| b.len() > 2000 || b.chars().any(char::is_control)) {
        errors.push(FieldError::new("basis", "the basis is one line of at most 2000 characters"));
        return None;
    }
    let (status, basis_kind) = (status?, kind?);
    Some(AddTerms { status, basis: basis.map(str::to_owned), basis_kind })
}

/// Parses the list slugs an organiser named (at least one), pushing any
/// problem onto `errors`.
pub(crate) fn parse_list_slugs(raw: &[String], errors: &mut Vec<FieldError>) -> Vec<ListSlug> {
    if raw.is_empty() {
        errors.push(FieldError::new("lists", "name at least one list"));
    }
    let mut slugs: Vec<ListSlug> = Vec::new();
    for l in raw {
        match ListSlug::parse(l.trim()) {
            Ok(slug) if !slugs.contains(&slug) => slugs.push(slug),
            Ok(_) => {}
            Err(e) => errors.push(FieldError::from_parse("lists", e)),
        }
    }
    slugs
}

/// The lists behind `slugs` (public or private: organisers may add people
/// to either); an unknown one is an input error.
pub(crate) async fn resolve_lists(tx: &mut Tx, slugs: &[ListSlug]) -> Result<Vec<ListRow>> {
    let mut lists = Vec::with_capacity(slugs.len());
    for slug in slugs {
        lists.push(tx.list_by_slug(slug.as_str()).await?.ok_or_else(|| {
            ServiceError::Invalid(vec![FieldError::new("lists", format!("there is no list {slug}"))])
        })?);
    }
    Ok(lists)
}

/// What adding someone to one list on a recorded basis does, given where
/// they stand on it now (after [`super::standing::bars`] has let them
/// through: a withdrawal is never overridden).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BasisOutcome {
    /// Confirmed already: nothing to record.
    AlreadyConfirmed,
    /// New, or pending: confirm, with one `imported` ledger entry.
    Confirm,
}

pub(crate) fn basis_outcome(current: Option<SubscriptionStatus>) -> BasisOutcome {
    match current {
        Some(SubscriptionStatus::Confirmed) => BasisOutcome::AlreadyConfirmed,
        _ => BasisOutcome::Confirm,
    }
}

/// Adds (or extends) a subscriber. Returns the subscriber and whether it
/// was created.
pub async fn add(
    ctx: &Context,
    input: &AddSubscriberInput,
    actor: Actor,
    meta: &RequestMeta,
) -> Result<(SubscriberView, bool)> {
    let mut errors = Vec::new();
    let email = EmailAddress::parse(input.email.as_deref().unwrap_or(""))
        .map_err(|e| errors.push(FieldError::from_parse("email", e)))
        .ok();
    let name = SubscriberName::parse_optional(input.name.as_deref().unwrap_or(""))
        .map_err(|e| errors.push(FieldError::from_parse("name", e)))
        .ok()
        .flatten();
    let terms = parse_terms(input.status.as_deref(), input.basis.as_deref(), input.basis_kind.as_deref(), &mut errors);
    let slugs = parse_list_slugs(&input.lists, &mut errors);
    ensure_valid(errors)?;
    let (Some(email), Some(terms)) = (email, terms) else { unreachable!("errors were checked") };

    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let lists = resolve_lists(&mut tx, &slugs).await?;
    // The one withdrawal rule, whatever the requested status: a person who
    // withdrew, bounced, complained or was erased is neither confirmed nor
    // sent a re-permission mail by an organiser (409 `withdrawn` /
    // `suppressed`); nothing is changed.
    let known = tx.subscriber_by_email(email.normalised()).await?;
    let person = standing::Person { email: &email, subscriber: known.as_ref().map(|s| s.id) };
    let mut standings = standing::bars(&mut tx, &ctx.address_key, &[person], standing::Purpose::Lists(&lists)).await?;
    if let Some(bar) = standings.bars.pop().flatten() {
        return Err(bar.into_error());
    }
    let created = tx.subscriber_by_email(email.normalised()).await?.is_none();
    let subscriber =
        supporter::find_or_create_subscriber(&mut tx, &ctx.address_key, &email, name.as_ref(), now).await?;
    if let (false, Some(n)) = (created, &name) {
        tx.set_subscriber_name(subscriber.id, n.as_str(), now).await?;
    }
    let notice_version = supporter::current_notice_version(&mut tx, now).await?;
    let origin =
        Origin { meta, source: None, actor, controller: &ctx.config, basis_kind: confirmed_basis_kind(&terms) };
    match terms.status {
        SubscriptionStatus::Confirmed => {
            let outcomes: Vec<(&ListRow, BasisOutcome)> = lists
                .iter()
                .map(|l| (l, basis_outcome(standings.statuses.get(&(subscriber.id, l.id)).copied())))
                .collect();
            for (list, outcome) in outcomes {
                if outcome != BasisOutcome::AlreadyConfirmed {
                    let t = Transition {
                        to: SubscriptionStatus::Confirmed,
                        kind: ConsentKind::Imported,
                        detail: terms.basis.as_deref(),
                    };
                    supporter::change_status(&mut tx, subscriber.id, list.id, t, &origin, notice_version, now).await?;
                }
            }
        }
        _ => {
            supporter::request_confirmation(ctx, &mut tx, &subscriber, &email, &lists, &origin, notice_version, now)
                .await?;
        }
    }
    let row = tx.subscriber_by_id(subscriber.id).await?.ok_or(ServiceError::NotFound("subscriber"))?;
    let out = view(&mut tx, row).await?;
    tx.commit().await?;
    ctx.outbox_wakeup.notify_one();
    Ok((out, created))
}

/// Corrections to a subscriber (right to rectification); absent fields stay.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct RectifyInput {
    #[schema(example = "sam.supporter@example.org")]
    pub email: Option<String>,
    #[schema(example = "Sam Supporter")]
    pub name: Option<String>,
    /// Replaces the attributes (a JSON object).
    pub attributes: Option<serde_json::Value>,
}

/// The largest attributes object accepted, serialised.
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

/// Corrects a subscriber's address, name or attributes. They keep their id,
/// so the ledger, subscriptions and deliveries stay linked. A new address
/// that is suppressed (erased, bounced, complained) is refused, as is one
/// another subscriber has.
pub async fn rectify(ctx: &Context, id: Uuid, input: &RectifyInput) -> Result<SubscriberView> {
    let mut errors = Vec::new();
    let email = match input.email.as_deref() {
        Some(raw) => EmailAddress::parse(raw).map_err(|e| errors.push(FieldError::from_parse("email", e))).ok(),
        None => None,
    };
    let name = match input.name.as_deref() {
        Some(raw) => SubscriberName::parse_optional(raw)
            .map_err(|e| errors.push(FieldError::from_parse("name", e)))
            .ok()
            .map(|n| n.map(|n| n.as_str().to_owned()).unwrap_or_default()),
        None => None,
    };
    let attributes = match &input.attributes {
        Some(v @ serde_json::Value::Object(_)) if v.to_string().len() <= MAX_ATTRIBUTES_BYTES => Some(v.to_string()),
        Some(serde_json::Value::Object(_)) => {
            errors.push(FieldError::new("attributes", format!("at most {MAX_ATTRIBUTES_BYTES} bytes")));
            None
        }
        Some(_) => {
            errors.push(FieldError::new("attributes", "a JSON object"));
            None
        }
        None => None,
    };
    ensure_valid(errors)?;
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let mut row = tx.subscriber_by_id(id).await?.ok_or(ServiceError::NotFound("subscriber"))?;
    if let Some(email) = email
        && email.normalised() != row.email_norm
    {
        if super::fingerprints::is_suppressed(&mut tx, &ctx.address_key, &email).await? {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "email",
                "that address is on the suppression list and may not be mailed",
            )]));
        }
        row.email = email.as_str().to_owned();
        row.email_norm = email.normalised().to_owned();
    }
    if let Some(name) = name {
        row.name = name;
    }
    if let Some(attributes) = attributes {
        row.attributes = attributes;
    }
    row.updated_at = now;
    tx.rectify_subscriber(&row, &ctx.address_key.fingerprint(&row.email_norm)).await?;
    let view = view(&mut tx, row).await?;
    tx.commit().await?;
    Ok(view)
}
