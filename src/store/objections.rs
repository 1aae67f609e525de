//! Objections to all of the group's mail ("Unsubscribe from everything",
//! issue 24 §2): the one append-only record of each, and the suppression
//! reasons the withdrawal rule (`services::standing`) reads.

use super::batch::{Rows, Statement};
use super::{Result, Tx, execute};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;

/// The reason a suppression row carries when the person objected to all
/// of the group's mail (the others: `erased`, `complaint`, `hard-bounce`).
pub const OBJECTED: &str = "objected";

/// One objection, as recorded.
#[derive(Debug, Clone)]
pub struct NewObjection {
    pub subscriber_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// How: the page or link used (a `WithdrawalMethod`).
    pub method: String,
    pub notice_version: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub actor: String,
    /// The controller (the group's name and contact address) at the time.
    pub controller_name: String,
    pub controller_contact: String,
}

impl Tx {
    /// Appends one objection record.
    pub async fn insert_objection(&mut self, o: &NewObjection) -> Result<Uuid> {
        let id = Uuid::now_v7();
        execute!(
            self,
            sqlx::query(
                "INSERT INTO objections (id, subscriber_id, occurred_at, method, notice_version, ip, user_agent, actor,
                                     controller_name, controller_contact)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(id)
            .bind(o.subscriber_id)
            .bind(o.occurred_at)
            .bind(&o.method)
            .bind(o.notice_version)
            .bind(&o.ip)
            .bind(&o.user_agent)
            .bind(&o.actor)
            .bind(&o.controller_name)
            .bind(&o.controller_contact)
        );
        Ok(id)
    }

    /// The reason of each of these fingerprints that is suppressed.
    pub async fn suppression_reasons_among(&mut self, hashes: &[String]) -> Result<HashMap<String, String>> {
        let found: Vec<(String, String)> = self
            .fetch_rows(
                Statement::new("SELECT email_hash, reason FROM suppressions WHERE email_hash {in_set}")
                    .rows(Rows::new().text("email_hash", hashes.iter().map(String::as_str))),
            )
            .await?;
        Ok(found.into_iter().collect())
    }

    /// Puts an address on the suppression list because its owner objected;
    /// an existing suppression (erased, complaint, hard bounce) is kept as
    /// it is, being the stronger one.
    pub async fn suppress_objection(&mut self, email_hash: &str, now: DateTime<Utc>) -> Result<()> {
        self.suppress(email_hash, OBJECTED, now).await
    }

    /// Lifts an objection's suppression: only the person's own confirmation
    /// of a new double opt-in calls this. Other suppressions stay.
    pub async fn lift_objection(&mut self, email_hash: &str) -> Result<bool> {
        let n = execute!(
            self,
            sqlx::query("DELETE FROM suppressions WHERE email_hash = $1 AND reason = $2")
                .bind(email_hash)
                .bind(OBJECTED)
        );
        Ok(n > 0)
    }
}
