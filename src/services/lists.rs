//! Organiser operations on lists. Creating a list publishes its first
//! consent statement, so no list can ever take a subscription without one.

use super::{Context, FieldError, Result, ServiceError, ensure_valid, setup};
use crate::config::Config;
use crate::domain::{ListName, ListSlug, sha256_hex};
use crate::store::{ListChanges, ListRow, Tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A list as the API describes it (README, "Organiser API"; plus counts).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ListView {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// How often the list mails, shown on the form and in the
    /// confirmation mail ("About twice a month"); empty when not said.
    pub frequency: String,
    pub public: bool,
    pub archive: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ListRow> for ListView {
    fn from(l: ListRow) -> Self {
        Self {
            id: l.id,
            slug: l.slug,
            name: l.name,
            description: l.description,
            frequency: l.frequency,
            public: l.public,
            archive: l.archive,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

/// Input for a new list, already parsed.
#[derive(Debug, Clone)]
pub struct NewList {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub frequency: String,
    pub public: bool,
    pub archive: bool,
}

/// Unparsed input from the API.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct ListInput {
    /// The list's web address: 1–64 lower-case letters, digits and hyphens,
    /// fixed after creation. Absent or empty on create: made from the name
    /// ("Zoë's hearing dates" → `zoes-hearing-dates`).
    #[schema(example = "hearings", pattern = "^[a-z0-9][a-z0-9-]{0,63}$")]
    pub slug: Option<String>,
    /// One line, at most 120 characters; required to create.
    #[schema(example = "Hearing dates")]
    pub name: Option<String>,
    #[schema(example = "When the court sits")]
    pub description: Option<String>,
    /// How often it mails, one line of at most 200 characters (empty: not said).
    #[schema(example = "About twice a month")]
    pub frequency: Option<String>,
    pub public: Option<bool>,
    pub archive: Option<bool>,
}

const MAX_DESCRIPTION: usize = 2000;

fn parse_description(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    let d = raw?;
    if d.chars().count() > MAX_DESCRIPTION {
        errors.push(FieldError::new("description", "a description is at most 2000 characters"));
    }
    Some(d.trim().to_owned())
}

const MAX_FREQUENCY: usize = 200;

fn parse_frequency(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    let f = raw?.trim();
    if f.chars().count() > MAX_FREQUENCY || f.chars().any(char::is_control) {
        errors.push(FieldError::new("frequency", "how often is one line of at most 200 characters"));
    }
    Some(f.to_owned())
}

pub async fn create(ctx: &Context, input: &ListInput) -> Result<ListView> {
    let mut errors = Vec::new();
    // No web address given: one made from the name, as an organiser
    // would (the admin form leaves it blank unless they change it).
    let slug = match input.slug.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => ListSlug::parse(raw).map_err(|e| errors.push(FieldError::from_parse("slug", e))).ok(),
        None => {
            let name = input.name.as_deref().unwrap_or("");
            let made = ListSlug::from_name(name);
            if made.is_none() && !name.trim().is_empty() {
                errors.push(FieldError::new(
                    "slug",
                    "choose a web address: the name has no letters or digits to make one from",
                ));
            }
            made
        }
    };
    let name = ListName::parse(input.name.as_deref().unwrap_or(""))
        .map_err(|e| errors.push(FieldError::from_parse("name", e)))
        .ok();
    let description = parse_description(input.description.as_deref(), &mut errors).unwrap_or_default();
    let frequency = parse_frequency(input.frequency.as_deref(), &mut errors).unwrap_or_default();
    ensure_valid(errors)?;
    let (Some(slug), Some(name)) = (slug, name) else { unreachable!("errors were checked") };
    let new = NewList {
        slug: slug.as_str().to_owned(),
        name: name.as_str().to_owned(),
        description,
        frequency,
        public: input.public.unwrap_or(true),
        archive: input.archive.unwrap_or(false),
    };
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let list = create_in(&mut tx, &ctx.config, &new, now).await?;
    tx.commit().await?;
    Ok(list.into())
}

/// Inserts the list and its first consent statement inside `tx`.
pub(crate) async fn create_in(tx: &mut Tx, config: &Config, new: &NewList, now: DateTime<Utc>) -> Result<ListRow> {
    let row = ListRow {
        id: Uuid::now_v7(),
        slug: new.slug.clone(),
        name: new.name.clone(),
        description: new.description.clone(),
        frequency: new.frequency.clone(),
        public: new.public,
        archive: new.archive,
        created_at: now,
        updated_at: now,
    };
    tx.insert_list(&row).await?;
    let notice = tx.current_privacy_notice(now).await?.ok_or(ServiceError::NotFound("privacy notice"))?;
    let text = setup::default_statement(&config.group_name, &row.name);
    tx.publish_statement(row.id, &text, &sha256_hex(&text), notice.version, now).await?;
    Ok(row)
}

/// Finds a list by id or by slug (the API accepts either).
pub async fn find(tx: &mut Tx, id_or_slug: &str) -> Result<ListRow> {
    let found = match Uuid::parse_str(id_or_slug) {
        Ok(id) => tx.list_by_id(id).await?,
        Err(_) => tx.list_by_slug(id_or_slug).await?,
    };
    found.ok_or(ServiceError::NotFound("list"))
}

pub async fn all(ctx: &Context) -> Result<Vec<ListView>> {
    let mut tx = ctx.store.read().await?;
    Ok(tx.lists().await?.into_iter().map(ListView::from).collect())
}

pub async fn get(ctx: &Context, id_or_slug: &str) -> Result<ListView> {
    let mut tx = ctx.store.read().await?;
    Ok(find(&mut tx, id_or_slug).await?.into())
}

pub async fn update(ctx: &Context, id_or_slug: &str, input: &ListInput) -> Result<ListView> {
    let mut errors = Vec::new();
    if input.slug.is_some() {
        errors.push(FieldError::new("slug", "a list's slug cannot change (it is part of every List-Id)"));
    }
    let name = input
        .name
        .as_deref()
        .map(|n| ListName::parse(n).map_err(|e| errors.push(FieldError::from_parse("name", e))).ok())
        .unwrap_or(None);
    let description = parse_description(input.description.as_deref(), &mut errors);
    let frequency = parse_frequency(input.frequency.as_deref(), &mut errors);
    ensure_valid(errors)?;
    let changes = ListChanges {
        name: name.map(|n| n.as_str().to_owned()),
        description,
        frequency,
        public: input.public,
        archive: input.archive,
    };
    let mut tx = ctx.store.write().await?;
    let list = find(&mut tx, id_or_slug).await?;
    let updated = tx.update_list(list.id, &changes, ctx.clock.now()).await?.ok_or(ServiceError::NotFound("list"))?;
    tx.commit().await?;
    Ok(updated.into())
}

pub async fn delete(ctx: &Context, id_or_slug: &str) -> Result<()> {
    let mut tx = ctx.store.write().await?;
    let list = find(&mut tx, id_or_slug).await?;
    tx.delete_list(list.id, ctx.clock.now()).await?;
    tx.commit().await?;
    Ok(())
}
