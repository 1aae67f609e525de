//! Confirmation tokens (stored as SHA-256 hashes) and the lists each confirms.

use super::script::{PgScript, SqliteScript};
use super::{Result, Tx, json_text, on_backend};
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
        self.run_script(
            |s| push_confirmation_tokens(s, tokens, now, expires_at),
            |s| push_confirmation_tokens_pg(s, tokens, now, expires_at),
        )
        .await
    }
}

/// (token hash, list) for every list of every token.
fn token_lists(tokens: &[NewConfirmationToken]) -> Vec<(&str, Uuid)> {
    tokens.iter().flat_map(|t| t.list_ids.iter().map(|l| (t.token_hash.as_str(), *l))).collect()
}

/// The PostgreSQL form of [`Tx::insert_confirmation_tokens`], for a
/// script. The token rows and their lists are two clauses of one
/// statement: the lists' foreign key is checked at its end.
pub(super) fn push_confirmation_tokens_pg(
    script: &mut PgScript,
    tokens: &[NewConfirmationToken],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    script.push(
        tokens,
        "INSERT INTO confirmation_tokens (token_hash, subscriber_id, created_at, expires_at)
         SELECT u.h, u.s, $3, $4 FROM UNNEST($1::text[], $2::uuid[]) AS u(h, s)",
        |b| {
            b.bind(tokens.iter().map(|t| t.token_hash.as_str()).collect::<Vec<_>>())
                .bind(tokens.iter().map(|t| t.subscriber_id).collect::<Vec<_>>())
                .bind(now)
                .bind(expires_at);
        },
    )?;
    let lists = token_lists(tokens);
    script.push(
        &lists,
        "INSERT INTO confirmation_token_lists (token_hash, list_id) SELECT * FROM UNNEST($1::text[], $2::uuid[])",
        |b| {
            b.bind(lists.iter().map(|(hash, _)| *hash).collect::<Vec<_>>())
                .bind(lists.iter().map(|(_, list)| *list).collect::<Vec<_>>());
        },
    )
}

/// The SQLite form of [`Tx::insert_confirmation_tokens`], for a script.
pub(super) fn push_confirmation_tokens(
    script: &mut SqliteScript,
    tokens: &[NewConfirmationToken],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    script.push(
        tokens,
        "INSERT INTO confirmation_tokens (token_hash, subscriber_id, created_at, expires_at)
         SELECT j.value ->> 0, unhex(j.value ->> 1), $2, $3 FROM json_each($1) j",
        |b| {
            b.bind(json_text(tokens.iter().map(|t| (&t.token_hash, t.subscriber_id.simple()))))
                .bind(now)
                .bind(expires_at);
        },
    )?;
    let lists = token_lists(tokens);
    script.push(
        &lists,
        "INSERT INTO confirmation_token_lists (token_hash, list_id)
         SELECT j.value ->> 0, unhex(j.value ->> 1) FROM json_each($1) j",
        |b| {
            b.bind(json_text(lists.iter().map(|(hash, list)| (hash, list.simple()))));
        },
    )
}
