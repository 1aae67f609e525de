//! Mailing lists.

use super::{Result, Tx, conflict_on_unique, execute, on_backend};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// How often the list mails ("About twice a month"); empty when not said.
    pub frequency: String,
    pub public: bool,
    pub archive: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct ListChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub frequency: Option<String>,
    pub public: Option<bool>,
    pub archive: Option<bool>,
}

impl Tx {
    pub async fn insert_list(&mut self, list: &ListRow) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "INSERT INTO lists (id, slug, name, description, public, archive, created_at, updated_at, frequency)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(list.id)
            .bind(&list.slug)
            .bind(&list.name)
            .bind(&list.description)
            .bind(list.public)
            .bind(list.archive)
            .bind(list.created_at)
            .bind(list.updated_at)
            .bind(&list.frequency),
            conflict_on_unique("a list with that slug")
        );
        Ok(())
    }

    /// Every list that has not been deleted, by name.
    pub async fn lists(&mut self) -> Result<Vec<ListRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, slug, name, description, frequency, public, archive, created_at, updated_at
             FROM lists WHERE deleted_at IS NULL ORDER BY name, slug",
        )
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    pub async fn list_by_slug(&mut self, slug: &str) -> Result<Option<ListRow>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT id, slug, name, description, frequency, public, archive, created_at, updated_at
             FROM lists WHERE slug = $1 AND deleted_at IS NULL",
        )
        .bind(slug)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    pub async fn list_by_id(&mut self, id: Uuid) -> Result<Option<ListRow>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT id, slug, name, description, frequency, public, archive, created_at, updated_at
             FROM lists WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    /// Applies `changes`; returns the updated list, or `None` if it is gone.
    pub async fn update_list(
        &mut self,
        id: Uuid,
        changes: &ListChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<ListRow>> {
        execute!(
            self,
            sqlx::query(
                "UPDATE lists SET name = COALESCE($2, name), description = COALESCE($3, description),
                 public = COALESCE($4, public), archive = COALESCE($5, archive), updated_at = $6,
                 frequency = COALESCE($7, frequency)
             WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(id)
            .bind(&changes.name)
            .bind(&changes.description)
            .bind(changes.public)
            .bind(changes.archive)
            .bind(now)
            .bind(&changes.frequency)
        );
        self.list_by_id(id).await
    }

    /// Deleting a list hides it and stops all mail to it, but keeps the row:
    /// the consent ledger refers to it as evidence. Its slug stays taken.
    pub async fn delete_list(&mut self, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
        let done = execute!(
            self,
            sqlx::query("UPDATE lists SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL").bind(id).bind(now)
        );
        Ok(done == 1)
    }
}
