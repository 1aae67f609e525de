//! Confirmation tokens (stored as SHA-256 hashes) and the lists each confirms.

use super::batch::{Rows, Statement};
use super::script::Script;
use super::{Result, Tx, on_backend};
use chrono::{DateTime, Utc};
use uuid::Uuid;

impl Tx {
    pub async fn insert_confirmation_token(
        &mut self,
        token_hash: &str,
        subscriber_id: Uuid,
        list_ids: &[Uuid],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let token =
            NewConfirmationToken { token_hash: token_hash.to_owned(), subscriber_id, list_ids: list_ids.to_vec() };
        self.insert_confirmation_tokens(&[token], now, expires_at).await
    }

    /// The subscriber and lists of a token that is unused and unexpired at
    /// `now`, without using it (the GET page shows what will be confirmed).
    pub async fn live_confirmation_token(
        &mut self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Uuid, Vec<Uuid>)>> {
        let subscriber: Option<Uuid> = on_backend!(self, c => sqlx::query_scalar(
            "SELECT subscriber_id FROM confirmation_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(c)
        .await?);
        match subscriber {
            Some(s) => Ok(Some((s, self.confirmation_token_lists(token_hash).await?))),
            None => Ok(None),
        }
    }

    /// Marks a live token used, atomically: of two concurrent clicks only one
    /// gets `Some`.
    pub async fn use_confirmation_token(
        &mut self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Uuid, Vec<Uuid>)>> {
        let subscriber: Option<Uuid> = on_backend!(self, c => sqlx::query_scalar(
            "UPDATE confirmation_tokens SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
             RETURNING subscriber_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(c)
        .await?);
        match subscriber {
            Some(s) => Ok(Some((s, self.confirmation_token_lists(token_hash).await?))),
            None => Ok(None),
        }
    }

    async fn confirmation_token_lists(&mut self, token_hash: &str) -> Result<Vec<Uuid>> {
        let lists = on_backend!(self, c => sqlx::query_scalar("SELECT list_id FROM confirmation_token_lists WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_all(c)
            .await?);
        Ok(lists)
    }
}

/// A confirmation token to store: the hash of the secret mailed, whose it
/// is, and the lists it confirms.
#[derive(Debug, Clone)]
pub struct NewConfirmationToken {
    pub token_hash: String,
    pub subscriber_id: Uuid,
    pub list_ids: Vec<Uuid>,
}

impl Tx {
    /// Stores confirmation tokens and the lists each confirms (two
    /// statements of fixed text whatever the number of tokens).
    pub async fn insert_confirmation_tokens(
        &mut self,
        tokens: &[NewConfirmationToken],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut script = Script::default();
        push_confirmation_tokens(&mut script, tokens, now, expires_at);
        self.run_script(script).await
    }
}

/// The statements of [`Tx::insert_confirmation_tokens`], for a script.
/// On PostgreSQL the token rows and their lists are two clauses of one
/// statement: the lists' foreign key is checked at its end.
pub(super) fn push_confirmation_tokens<'a>(
    script: &mut Script<'a>,
    tokens: &'a [NewConfirmationToken],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) {
    script.push(
        Statement::new(
            "INSERT INTO confirmation_tokens (token_hash, subscriber_id, created_at, expires_at)
             SELECT u.h, u.s, $1, $2 FROM {rows}",
        )
        .bind(now)
        .bind(expires_at)
        .rows(
            Rows::new()
                .text("h", tokens.iter().map(|t| t.token_hash.as_str()))
                .uuid("s", tokens.iter().map(|t| t.subscriber_id)),
        ),
    );
    let lists = || tokens.iter().flat_map(|t| t.list_ids.iter().map(move |l| (t.token_hash.as_str(), *l)));
    script.push(
        Statement::new("INSERT INTO confirmation_token_lists (token_hash, list_id) SELECT u.h, u.l FROM {rows}")
            .rows(Rows::new().text("h", lists().map(|(h, _)| h)).uuid("l", lists().map(|(_, l)| l))),
    );
}
