//! Consent evidence: privacy notices, per-list consent statements (both
//! versioned and immutable once published) and the append-only ledger.

use super::batch::{Rows, Statement};
use super::{Result, Tx, on_backend};
use crate::domain::{BasisKind, ConsentKind, LedgerEntryKind};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PrivacyNoticeRow {
    pub version: i64,
    pub url: Option<String>,
    pub body: String,
    pub sha256: String,
    pub effective_from: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsentStatementRow {
    pub id: Uuid,
    pub list_id: Uuid,
    pub version: i64,
    pub body: String,
    pub sha256: String,
    pub notice_version: i64,
    pub created_at: DateTime<Utc>,
}

/// Subscribe requests from one source that showed one statement version
/// (see [`Tx::requests_by_source_and_statement`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatementUse {
    /// The page the form was on (its `source` field or Referer); empty when unknown.
    pub source: String,
    pub version: i64,
    pub requests: i64,
    pub last_seen: DateTime<Utc>,
}

/// A ledger entry about to be appended.
#[derive(Debug, Clone)]
pub struct NewConsentEvent {
    pub subscriber_id: Uuid,
    pub list_id: Uuid,
    pub kind: ConsentKind,
    pub statement_id: Option<Uuid>,
    pub notice_version: Option<i64>,
    pub occurred_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub source: Option<String>,
    pub actor: String,
    /// How a withdrawal happened, or the basis of an import.
    pub detail: Option<String>,
    /// The controller's (the group's) name as it was when written.
    pub controller_name: Option<String>,
    /// The controller's contact address as it was when written.
    pub controller_contact: Option<String>,
    /// The kind of basis of an import or organiser's add
    /// (`consented_elsewhere`, `backer_opted_in`, `soft_opt_in`, `unspecified`).
    pub basis_kind: Option<BasisKind>,
}

/// A ledger entry with the texts it points at, as the data controller needs
/// to show it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsentEventRow {
    pub id: Uuid,
    pub subscriber_id: Uuid,
    pub kind: LedgerEntryKind,
    pub list_slug: String,
    pub occurred_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub source: Option<String>,
    pub actor: String,
    pub detail: Option<String>,
    pub controller_name: Option<String>,
    pub controller_contact: Option<String>,
    pub basis_kind: Option<BasisKind>,
    pub statement_version: Option<i64>,
    pub statement_text: Option<String>,
    pub statement_sha256: Option<String>,
    pub notice_version: Option<i64>,
    pub notice_url: Option<String>,
    pub notice_sha256: Option<String>,
}

impl Tx {
    /// The notice in force at `at`: the newest whose `effective_from` has passed.
    pub async fn current_privacy_notice(&mut self, at: DateTime<Utc>) -> Result<Option<PrivacyNoticeRow>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT version, url, body, sha256, effective_from, created_at FROM privacy_notices
             WHERE effective_from <= $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(at)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    /// Publishes a new notice version (the next number) and returns it.
    pub async fn publish_privacy_notice(
        &mut self,
        url: Option<&str>,
        body: &str,
        sha256: &str,
        effective_from: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<PrivacyNoticeRow> {
        let row = on_backend!(self, c => sqlx::query_as(
            "INSERT INTO privacy_notices (version, url, body, sha256, effective_from, created_at)
             VALUES ((SELECT COALESCE(MAX(version), 0) + 1 FROM privacy_notices), $1, $2, $3, $4, $5)
             RETURNING version, url, body, sha256, effective_from, created_at",
        )
        .bind(url)
        .bind(body)
        .bind(sha256)
        .bind(effective_from)
        .bind(now)
        .fetch_one(c)
        .await?);
        Ok(row)
    }

    /// The newest statement for a list.
    pub async fn current_statement(&mut self, list_id: Uuid) -> Result<Option<ConsentStatementRow>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT id, list_id, version, body, sha256, notice_version, created_at FROM consent_statements
             WHERE list_id = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(list_id)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    /// Every published version of a list's statement, newest first, as
    /// (version, id): what a subscribe form may have shown.
    pub async fn statement_versions(&mut self, list_id: Uuid) -> Result<Vec<(i64, Uuid)>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT version, id FROM consent_statements WHERE list_id = $1 ORDER BY version DESC",
        )
        .bind(list_id)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Subscribe requests for a list received since `since`, grouped by the
    /// form's source and the statement version it showed, most recently
    /// seen first. Reads the ledger entries of that period (no index serves
    /// it: the ledger keeps only the indexes subscribes need), so callers
    /// ask only when a list's wording has changed.
    pub async fn requests_by_source_and_statement(
        &mut self,
        list_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<StatementUse>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT COALESCE(e.source, '') AS source, s.version AS version, COUNT(*) AS requests,
                    MAX(e.occurred_at) AS last_seen
             FROM consent_events e
             JOIN consent_statements s ON s.id = e.statement_id
             WHERE e.list_id = $1 AND e.kind = 'requested' AND e.occurred_at >= $2
             GROUP BY COALESCE(e.source, ''), s.version
             ORDER BY MAX(e.occurred_at) DESC",
        )
        .bind(list_id)
        .bind(since)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Publishes the next statement version for a list, tied to a notice.
    pub async fn publish_statement(
        &mut self,
        list_id: Uuid,
        body: &str,
        sha256: &str,
        notice_version: i64,
        now: DateTime<Utc>,
    ) -> Result<ConsentStatementRow> {
        let row = on_backend!(self, c => sqlx::query_as(
            "INSERT INTO consent_statements (id, list_id, version, body, sha256, notice_version, created_at)
             VALUES ($1, $2, (SELECT COALESCE(MAX(version), 0) + 1 FROM consent_statements WHERE list_id = $2), $3, $4, $5, $6)
             RETURNING id, list_id, version, body, sha256, notice_version, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(list_id)
        .bind(body)
        .bind(sha256)
        .bind(notice_version)
        .bind(now)
        .fetch_one(c)
        .await?);
        Ok(row)
    }

    /// Appends to the ledger. There is deliberately no way to change an entry.
    pub async fn append_consent_event(&mut self, e: &NewConsentEvent) -> Result<Uuid> {
        let id = Uuid::now_v7();
        self.write_rows(consent_events(std::slice::from_ref(e), std::iter::once(id))).await?;
        Ok(id)
    }

    /// The newest privacy-notice version any ledger entry of this person
    /// and list names.
    pub async fn latest_notice_version(&mut self, subscriber_id: Uuid, list_id: Uuid) -> Result<Option<i64>> {
        let v = on_backend!(self, c => sqlx::query_scalar(
            "SELECT MAX(notice_version) FROM consent_events WHERE subscriber_id = $1 AND list_id = $2",
        )
        .bind(subscriber_id)
        .bind(list_id)
        .fetch_one(c)
        .await?);
        Ok(v)
    }

    /// One subscriber's whole ledger, oldest first, with each objection to
    /// all of the group's mail as an `objected` entry whose list is `*`.
    pub async fn consent_events(&mut self, subscriber_id: Uuid) -> Result<Vec<ConsentEventRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT e.id, e.subscriber_id, e.kind, l.slug AS list_slug, e.occurred_at, e.ip, e.user_agent,
                    e.source, e.actor, e.detail, e.controller_name, e.controller_contact, e.basis_kind,
                    s.version AS statement_version, s.body AS statement_text, s.sha256 AS statement_sha256,
                    n.version AS notice_version, n.url AS notice_url, n.sha256 AS notice_sha256
             FROM consent_events e
             JOIN lists l ON l.id = e.list_id
             LEFT JOIN consent_statements s ON s.id = e.statement_id
             LEFT JOIN privacy_notices n ON n.version = e.notice_version
             WHERE e.subscriber_id = $1
             UNION ALL
             SELECT o.id, o.subscriber_id, 'objected' AS kind, '*' AS list_slug, o.occurred_at, o.ip, o.user_agent,
                    CAST(NULL AS TEXT), o.actor, o.method AS detail,
                    o.controller_name, o.controller_contact, CAST(NULL AS TEXT),
                    CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
                    n.version, n.url, n.sha256
             FROM objections o
             LEFT JOIN privacy_notices n ON n.version = o.notice_version
             WHERE o.subscriber_id = $1
             ORDER BY occurred_at, id",
        )
        .bind(subscriber_id)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }
}

impl Tx {
    /// The set form of [`Tx::append_consent_event`], in one statement of
    /// fixed text.
    pub async fn append_consent_events(&mut self, events: &[NewConsentEvent]) -> Result<()> {
        self.write_rows(consent_events(events, events.iter().map(|_| Uuid::now_v7()))).await
    }
}

/// The statement of [`Tx::append_consent_event`] and
/// [`Tx::append_consent_events`]: `events`, with their ids in `ids`.
pub(super) fn consent_events(events: &[NewConsentEvent], ids: impl Iterator<Item = Uuid>) -> Statement<'_> {
    Statement::new(
        "INSERT INTO consent_events (id, subscriber_id, list_id, kind, statement_id, notice_version,
             occurred_at, ip, user_agent, source, actor, detail, controller_name, controller_contact, basis_kind)
         SELECT u.id, u.subscriber_id, u.list_id, u.kind, u.statement_id, u.notice_version, u.occurred_at, u.ip,
                u.user_agent, u.source, u.actor, u.detail, u.controller_name, u.controller_contact, u.basis_kind
         FROM {rows}",
    )
    .rows(
        Rows::new()
            .uuid("id", ids)
            .uuid("subscriber_id", events.iter().map(|e| e.subscriber_id))
            .uuid("list_id", events.iter().map(|e| e.list_id))
            .text("kind", events.iter().map(|e| e.kind.as_str()))
            .uuid("statement_id", events.iter().map(|e| e.statement_id))
            .int("notice_version", events.iter().map(|e| e.notice_version))
            .time("occurred_at", events.iter().map(|e| e.occurred_at))
            .text("ip", events.iter().map(|e| e.ip.as_deref()))
            .text("user_agent", events.iter().map(|e| e.user_agent.as_deref()))
            .text("source", events.iter().map(|e| e.source.as_deref()))
            .text("actor", events.iter().map(|e| e.actor.as_str()))
            .text("detail", events.iter().map(|e| e.detail.as_deref()))
            .text("controller_name", events.iter().map(|e| e.controller_name.as_deref()))
            .text("controller_contact", events.iter().map(|e| e.controller_contact.as_deref()))
            .text("basis_kind", events.iter().map(|e| e.basis_kind.map(BasisKind::as_str))),
    )
}
