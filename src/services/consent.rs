//! The consent ledger as the data controller sees it, and publishing new
//! privacy-notice and consent-statement versions.

use super::audit::{self, Action, Who};
use super::{Context, FieldError, Result, ServiceError, lists};
use crate::domain::sha256_hex;
use crate::store::{ConsentEventRow, ConsentStatementRow, PrivacyNoticeRow, StatementUse};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StatementRef {
    pub version: Option<i64>,
    pub text: Option<String>,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NoticeRef {
    pub version: Option<i64>,
    pub url: Option<String>,
    pub sha256: Option<String>,
}

/// The controller (the group) an entry names, as it was when written.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ControllerRef {
    pub name: String,
    pub contact: String,
}

impl ControllerRef {
    /// `None` for entries written before entries named the controller.
    pub fn of(name: Option<String>, contact: Option<String>) -> Option<Self> {
        name.map(|name| Self { name, contact: contact.unwrap_or_default() })
    }
}

/// One ledger entry, in the API's shape (README, "Organiser API").
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ConsentEventView {
    pub id: Uuid,
    pub kind: String,
    pub list: String,
    pub occurred_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub source: Option<String>,
    pub statement: StatementRef,
    pub privacy_notice: NoticeRef,
    pub actor: String,
    /// How a withdrawal happened, or the basis of an import.
    pub detail: Option<String>,
    /// The group's name and contact address when the entry was written.
    pub controller: Option<ControllerRef>,
    /// For an import or organiser's confirmed add: `consented_elsewhere`,
    /// `backer_opted_in`, `soft_opt_in` or `unspecified`.
    pub basis_kind: Option<String>,
}

impl From<ConsentEventRow> for ConsentEventView {
    fn from(e: ConsentEventRow) -> Self {
        Self {
            id: e.id,
            kind: e.kind.to_string(),
            list: e.list_slug,
            occurred_at: e.occurred_at,
            ip: e.ip,
            user_agent: e.user_agent,
            source: e.source,
            statement: StatementRef {
                version: e.statement_version,
                text: e.statement_text,
                sha256: e.statement_sha256,
            },
            privacy_notice: NoticeRef { version: e.notice_version, url: e.notice_url, sha256: e.notice_sha256 },
            actor: e.actor,
            detail: e.detail,
            controller: ControllerRef::of(e.controller_name, e.controller_contact),
            basis_kind: e.basis_kind.map(|k| k.as_str().to_owned()),
        }
    }
}

pub async fn ledger(ctx: &Context, subscriber_id: Uuid) -> Result<Vec<ConsentEventView>> {
    let mut tx = ctx.store.read().await?;
    tx.subscriber_by_id(subscriber_id).await?.ok_or(ServiceError::NotFound("subscriber"))?;
    Ok(tx.consent_events(subscriber_id).await?.into_iter().map(ConsentEventView::from).collect())
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NoticeView {
    pub version: i64,
    pub url: Option<String>,
    pub text: String,
    pub sha256: String,
    pub effective_from: DateTime<Utc>,
}

impl From<PrivacyNoticeRow> for NoticeView {
    fn from(n: PrivacyNoticeRow) -> Self {
        Self { version: n.version, url: n.url, text: n.body, sha256: n.sha256, effective_from: n.effective_from }
    }
}

pub async fn current_notice(ctx: &Context) -> Result<NoticeView> {
    let mut tx = ctx.store.read().await?;
    Ok(tx.current_privacy_notice(ctx.clock.now()).await?.ok_or(ServiceError::NotFound("privacy notice"))?.into())
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct NoticeInput {
    #[schema(example = "We keep your address to send you our updates, and nothing else.")]
    pub text: Option<String>,
    #[schema(example = "https://campaign.example/privacy")]
    pub url: Option<String>,
    pub effective_from: Option<DateTime<Utc>>,
}

const MAX_TEXT: usize = 100_000;

fn required_text(raw: Option<&str>, max: usize) -> Result<String> {
    match raw.map(str::trim) {
        Some(t) if !t.is_empty() && t.len() <= max => Ok(t.to_owned()),
        _ => Err(ServiceError::Invalid(vec![FieldError::new(
            "text",
            "the text is required (and at most 100,000 bytes)",
        )])),
    }
}

/// Publishes a new notice version; earlier versions stay, unchanged.
pub async fn publish_notice(ctx: &Context, input: &NoticeInput) -> Result<NoticeView> {
    let text = required_text(input.text.as_deref(), MAX_TEXT)?;
    let url = input.url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    if let Some(u) = url
        && (url::Url::parse(u).is_err() || u.chars().any(char::is_control))
    {
        return Err(ServiceError::Invalid(vec![FieldError::new("url", "the URL is not valid")]));
    }
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let url = url.map(str::to_owned).unwrap_or_else(|| ctx.config.link("/privacy"));
    let notice = tx
        .publish_privacy_notice(Some(&url), &text, &sha256_hex(&text), input.effective_from.unwrap_or(now), now)
        .await?;
    tx.commit().await?;
    Ok(notice.into())
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StatementView {
    pub id: Uuid,
    pub list: String,
    pub version: i64,
    pub text: String,
    pub sha256: String,
    pub privacy_notice_version: i64,
    pub created_at: DateTime<Utc>,
}

fn statement_view(s: ConsentStatementRow, list: String) -> StatementView {
    StatementView {
        id: s.id,
        list,
        version: s.version,
        text: s.body,
        sha256: s.sha256,
        privacy_notice_version: s.notice_version,
        created_at: s.created_at,
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct StatementInput {
    /// The list's slug or id.
    #[schema(example = "updates")]
    pub list: Option<String>,
    #[schema(example = "Yes, email me updates about the campaign.")]
    pub text: Option<String>,
    /// Publish even though the wording was warned about (the
    /// acknowledgement is recorded in the audit log).
    #[serde(default)]
    pub acknowledge_warnings: bool,
}

/// Words that offer consent on behalf of others: consent to unnamed
/// "partners" or "third parties" is not valid consent (ICO direct marketing
/// guidance).
const THIRD_PARTY_TERMS: &[&str] = &[
    "partner",
    "third part",
    "3rd part",
    "selected organisation",
    "selected organization",
    "carefully selected",
    "other organisations",
    "other organizations",
    "affiliate",
    "sponsor",
];

/// What is wrong with consent wording before it is published: it must name
/// the controller (the group), and must not ask for consent on behalf of
/// partners or third parties. Empty when nothing is.
pub fn wording_warnings(text: &str, group_name: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut warnings = Vec::new();
    let group = group_name.trim().to_lowercase();
    if !group.is_empty() && !lower.contains(&group) {
        warnings.push(format!(
            "the wording does not name {group_name}: people must be told who they are giving consent to (UK GDPR Art 7(2), Recital 42)"
        ));
    }
    let found: Vec<&str> = THIRD_PARTY_TERMS.iter().copied().filter(|t| lower.contains(t)).collect();
    if !found.is_empty() {
        warnings.push(format!(
            "the wording mentions {}: consent to mail from partners or third parties is not valid consent (ICO); name \
             only {group_name}",
            found.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ")
        ));
    }
    warnings
}

/// Publishes a list's next consent-statement version, tied to the notice in
/// force now.
/// Wording that does not name the group, or that mentions partners or third
/// parties, is refused with [`ServiceError::WordingWarning`] unless the
/// input acknowledges it; an acknowledgement is recorded in the audit log
/// as `who`'s.
pub async fn publish_statement(ctx: &Context, input: &StatementInput, who: &Who) -> Result<StatementView> {
    let text = required_text(input.text.as_deref(), 10_000)?;
    let warnings = wording_warnings(&text, &ctx.config.group_name);
    if !warnings.is_empty() && !input.acknowledge_warnings {
        return Err(ServiceError::WordingWarning(warnings));
    }
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let list = lists::find(&mut tx, input.list.as_deref().unwrap_or("")).await?;
    let notice = tx.current_privacy_notice(now).await?.ok_or(ServiceError::NotFound("privacy notice"))?;
    let statement = tx.publish_statement(list.id, &text, &sha256_hex(&text), notice.version, now).await?;
    tx.commit().await?;
    if !warnings.is_empty() {
        let target = format!("list:{} statement:{}", list.slug, statement.version);
        let action = Action {
            what: "consent.wording_warning_acknowledged",
            target: &target,
            status: 0,
            detail: warnings.join("; "),
        };
        audit::record(&ctx.store, &ctx.clock, who, action).await?;
    }
    Ok(statement_view(statement, list.slug))
}

/// The statement in force for each list.
pub async fn current_statements(ctx: &Context) -> Result<Vec<StatementView>> {
    let mut tx = ctx.store.read().await?;
    let mut out = Vec::new();
    for list in tx.lists().await? {
        if let Some(s) = tx.current_statement(list.id).await? {
            out.push(statement_view(s, list.slug));
        }
    }
    Ok(out)
}

/// How far back the lists page looks for forms showing older wording.
pub const OUTDATED_FORM_DAYS: i64 = 30;

/// A page whose subscribe form still shows an older statement of a list:
/// its most recent subscribe (within [`OUTDATED_FORM_DAYS`]) posted that
/// older version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutdatedForm {
    /// The page the form is on, as its `source` field or Referer said;
    /// empty when unknown.
    pub source: String,
    /// The version that form shows.
    pub version: i64,
    /// Subscribes with that version in the period.
    pub requests: i64,
    pub last_seen: DateTime<Utc>,
}

/// The forms of one list that still show wording older than
/// `current_version`: for each source, what its latest subscribe showed.
/// Nothing to look for (and no ledger read) while the list has only ever
/// had one wording.
pub async fn outdated_forms(ctx: &Context, list_id: Uuid, current_version: i64) -> Result<Vec<OutdatedForm>> {
    if current_version <= 1 {
        return Ok(Vec::new());
    }
    let since = ctx.clock.now() - chrono::Duration::days(OUTDATED_FORM_DAYS);
    let mut tx = ctx.store.read().await?;
    let uses = tx.requests_by_source_and_statement(list_id, since).await?;
    Ok(latest_per_source(uses, current_version))
}

/// For each source, its most recently seen version, kept when older than
/// `current_version`. `uses` is most recently seen first.
fn latest_per_source(uses: Vec<StatementUse>, current_version: i64) -> Vec<OutdatedForm> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for u in uses {
        if !seen.insert(u.source.clone()) {
            continue;
        }
        if u.version < current_version {
            out.push(OutdatedForm {
                source: u.source,
                version: u.version,
                requests: u.requests,
                last_seen: u.last_seen,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn used(source: &str, version: i64, day: u32) -> StatementUse {
        StatementUse {
            source: source.to_owned(),
            version,
            requests: 1,
            last_seen: Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).single().unwrap(),
        }
    }

    #[test]
    fn a_source_is_out_of_date_only_while_its_latest_subscribe_showed_older_wording() {
        // Most recently seen first, as the store returns them.
        let uses = vec![
            used("https://a.example/join", 3, 20),
            used("https://b.example/", 2, 19),
            used("https://a.example/join", 2, 18),
            used("https://b.example/", 3, 10),
        ];
        let out = latest_per_source(uses, 3);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].source, "https://b.example/");
        assert_eq!(out[0].version, 2);
    }
}
