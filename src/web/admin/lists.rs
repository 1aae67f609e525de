//! The dashboard and list management (create, edit, delete), on top of
//! [`crate::services::lists`].

use super::auth::{CsrfToken, Organiser, RequireAdmin};
use super::error::AdminError;
use super::pages::{
    Chrome, DashboardPage, Embed, ListDeletePage, ListFormPage, ListSummary, ListsPage, OutdatedFormView, WordingPage,
};
use crate::domain::Actor;
use crate::services::audit::Who;
use crate::services::lists::{self, ListInput};
use crate::services::{FieldError, ServiceError, consent, directory};
use crate::web::AppState;
use crate::web::input::Submitted;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

type Result<T, E = AdminError> = std::result::Result<T, E>;

async fn summaries(state: &AppState) -> Result<Vec<ListSummary>> {
    let lists = directory::lists_with_counts(&state.ctx).await?;
    Ok(lists.into_iter().map(|(list, confirmed)| ListSummary { list, confirmed }).collect())
}

pub async fn dashboard(State(state): State<AppState>, me: Organiser, csrf: CsrfToken) -> Result<Response> {
    let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "dashboard");
    let updates = super::updates::recent_rows(&state, 10).await?;
    let alerts = crate::services::bounces::open_alerts(&state.ctx).await?;
    let auth = &state.ctx.sender_auth;
    let mode = auth.mode();
    let before_send = match mode {
        crate::config::SenderAuthMode::Off => Vec::new(),
        _ => auth.report().await.failures().into_iter().cloned().collect(),
    };
    Ok(DashboardPage {
        chrome,
        lists: summaries(&state).await?,
        updates,
        alerts,
        before_send,
        sender_auth_mode: mode.as_str(),
    }
    .into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// Fixed messages a redirect may ask the lists page to show.
fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "created" => Some("The list has been created."),
        "saved" => Some("Your changes have been saved."),
        "deleted" => Some("The list has been deleted."),
        "wording" => {
            Some("The new consent wording is published. Copy the list's form below again wherever it is embedded.")
        }
        _ => None,
    }
}

pub async fn index(
    State(state): State<AppState>,
    me: Organiser,
    csrf: CsrfToken,
    Query(q): Query<NoticeQuery>,
) -> Result<Response> {
    let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "lists");
    let lists = summaries(&state).await?;
    let statements = consent::current_statements(&state.ctx).await?;
    let mut embeds = Vec::new();
    for l in lists.iter().filter(|l| l.list.public) {
        let current = statements.iter().find(|s| s.list == l.list.slug);
        let (statement, version) = current.map(|s| (s.text.as_str(), s.version)).unwrap_or(("", 0));
        let outdated = consent::outdated_forms(&state.ctx, l.list.id, version)
            .await?
            .into_iter()
            .map(|f| OutdatedFormView {
                source: if f.source.is_empty() { "a page we do not know".to_owned() } else { f.source },
                version: f.version,
                requests: f.requests,
                last_seen: f.last_seen.format("%Y-%m-%d").to_string(),
            })
            .collect();
        embeds.push(Embed {
            slug: l.list.slug.clone(),
            name: l.list.name.clone(),
            link: state.ctx.config.link(&format!("/subscribe?list={}", l.list.slug)),
            snippet: crate::web::subscribe_snippet(&state.ctx.config, &l.list.slug, &l.list.name, statement, version),
            version,
            outdated,
        });
    }
    let sites = state.ctx.config.cors_origins.clone();
    Ok(ListsPage {
        chrome,
        lists,
        notice: notice(q.notice.as_deref()),
        embeds,
        sites,
        outdated_days: consent::OUTDATED_FORM_DAYS,
    }
    .into_response())
}

pub async fn new_form(State(state): State<AppState>, RequireAdmin(me): RequireAdmin, csrf: CsrfToken) -> Response {
    ListFormPage {
        chrome: Chrome::new(&state.ctx.config.group_name, &me, &csrf, "lists"),
        id: None,
        slug: String::new(),
        name: String::new(),
        description: String::new(),
        frequency: String::new(),
        public: true,
        archive: false,
        errors: Vec::new(),
    }
    .into_response()
}

/// The form's fields as the service's input. A checkbox that is not ticked
/// is simply absent from the form, so absence means false.
fn list_input(body: &Submitted, with_slug: bool) -> ListInput {
    ListInput {
        slug: if with_slug { Some(body.first("slug").unwrap_or_default()) } else { None },
        name: Some(body.first("name").unwrap_or_default()),
        description: Some(body.first("description").unwrap_or_default()),
        frequency: Some(body.first("frequency").unwrap_or_default()),
        public: Some(body.first("public").is_some()),
        archive: Some(body.first("archive").is_some()),
    }
}

/// The form again, with what was typed and what is wrong with it.
fn form_again(chrome: Chrome, id: Option<String>, slug: String, input: ListInput, errors: Vec<FieldError>) -> Response {
    let page = ListFormPage {
        chrome,
        id,
        slug,
        name: input.name.unwrap_or_default(),
        description: input.description.unwrap_or_default(),
        frequency: input.frequency.unwrap_or_default(),
        public: input.public.unwrap_or(true),
        archive: input.archive.unwrap_or(false),
        errors,
    };
    (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
}

pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    body: Submitted,
) -> Result<Response> {
    let input = list_input(&body, true);
    let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "lists");
    let slug = input.slug.clone().unwrap_or_default();
    match lists::create(&state.ctx, &input).await {
        Ok(list) => {
            tracing::info!(organiser = %me.id, list = %list.slug, "list created");
            Ok(Redirect::to("/admin/lists?notice=created").into_response())
        }
        Err(ServiceError::Invalid(errors)) => Ok(form_again(chrome, None, slug, input, errors)),
        Err(ServiceError::Conflict(_)) => {
            let errors = vec![FieldError::new("slug", "a list with that slug already exists (perhaps deleted)")];
            Ok(form_again(chrome, None, slug, input, errors))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn edit_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Path(id): Path<String>,
) -> Result<Response> {
    let list = lists::get(&state.ctx, &id).await?;
    Ok(ListFormPage {
        chrome: Chrome::new(&state.ctx.config.group_name, &me, &csrf, "lists"),
        id: Some(list.id.to_string()),
        slug: list.slug,
        name: list.name,
        description: list.description,
        frequency: list.frequency,
        public: list.public,
        archive: list.archive,
        errors: Vec::new(),
    }
    .into_response())
}

pub async fn update(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Path(id): Path<String>,
    body: Submitted,
) -> Result<Response> {
    let input = list_input(&body, false);
    match lists::update(&state.ctx, &id, &input).await {
        Ok(list) => {
            tracing::info!(organiser = %me.id, list = %list.slug, "list changed");
            Ok(Redirect::to("/admin/lists?notice=saved").into_response())
        }
        Err(ServiceError::Invalid(errors)) => {
            let list = lists::get(&state.ctx, &id).await?;
            let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "lists");
            Ok(form_again(chrome, Some(list.id.to_string()), list.slug, input, errors))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Path(id): Path<String>,
) -> Result<Response> {
    let list = lists::get(&state.ctx, &id).await?;
    let confirmed = summaries(&state).await?.into_iter().find(|s| s.list.id == list.id).map_or(0, |s| s.confirmed);
    let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "lists");
    Ok(ListDeletePage { chrome, list, confirmed }.into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    Path(id): Path<String>,
) -> Result<Response> {
    lists::delete(&state.ctx, &id).await?;
    tracing::info!(organiser = %me.id, list = %id, "list deleted");
    Ok(Redirect::to("/admin/lists?notice=deleted").into_response())
}

/// The wording page for `list`, with `text` in the form.
async fn wording_page(state: &AppState, chrome: Chrome, id: &str) -> Result<WordingPage> {
    let list = lists::get(&state.ctx, id).await?;
    let current = consent::current_statements(&state.ctx).await?.into_iter().find(|s| s.list == list.slug);
    let text = current.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    Ok(WordingPage { chrome, list, current, text, warnings: Vec::new(), errors: Vec::new() })
}

pub async fn wording_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Path(id): Path<String>,
) -> Result<Response> {
    let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "lists");
    Ok(wording_page(&state, chrome, &id).await?.into_response())
}

/// Publishes the list's next consent wording. Wording that does not name
/// the group, or that mentions partners or third parties, comes back with
/// the warnings and a box to tick: only with it ticked is it published
/// (and the acknowledgement written to the audit log).
pub async fn publish_wording(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Path(id): Path<String>,
    body: Submitted,
) -> Result<Response> {
    let text = body.first("text").unwrap_or_default();
    let list = lists::get(&state.ctx, &id).await?;
    let input = consent::StatementInput {
        list: Some(list.id.to_string()),
        text: Some(text.clone()),
        acknowledge_warnings: body.first("acknowledge").is_some(),
    };
    let who = Who { actor: Actor::Organiser(me.id).to_db(), label: me.email.clone(), ip: None };
    let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "lists");
    let (warnings, errors) = match consent::publish_statement(&state.ctx, &input, &who).await {
        Ok(view) => {
            tracing::info!(organiser = %me.id, list = %list.slug, version = view.version, "consent wording published");
            return Ok(Redirect::to("/admin/lists?notice=wording").into_response());
        }
        Err(ServiceError::WordingWarning(warnings)) => (warnings, Vec::new()),
        Err(ServiceError::Invalid(errors)) => (Vec::new(), errors),
        Err(e) => return Err(e.into()),
    };
    let mut page = wording_page(&state, chrome, &id).await?;
    page.text = text;
    page.warnings = warnings;
    page.errors = errors;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}
