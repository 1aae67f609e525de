//! CSV imports in the admin UI (admins only, like every change to who is on
//! a list): `/admin/imports` lists recent imports with an upload form, and
//! `/admin/imports/{id}` shows one import's progress, summary and refused
//! rows, refreshing itself every few seconds while it runs (a meta refresh:
//! no JavaScript).
//!
//! The upload is streamed to the database as it arrives (see
//! `web::upload`); its CSRF token must be the form's first field, checked by
//! [`CsrfMultipart`] before anything else is read.

use super::auth::{CsrfMultipart, CsrfToken, RequireAdmin};
use super::error::AdminError;
use super::pages::{Chrome, when, when_opt};
use crate::domain::BasisKind;
use crate::services::imports::{self, ImportView, UploadError};
use crate::services::lists::{self, ListView};
use crate::services::{FieldError, ServiceError};
use crate::store::ImportErrorRow;
use crate::web::AppState;
use crate::web::input::Client;
use crate::web::upload::{FormError, read_import_form};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use uuid::Uuid;

type Result<T, E = AdminError> = std::result::Result<T, E>;

#[derive(Template, WebTemplate)]
#[template(path = "admin/imports.html")]
pub struct ImportsPage {
    pub chrome: Chrome,
    pub imports: Vec<ImportView>,
    pub lists: Vec<ListView>,
    /// What was chosen, to show the form again after a refusal.
    pub chosen_lists: Vec<String>,
    pub basis: String,
    pub status: String,
    /// The kind of basis chosen (empty: none yet).
    pub basis_kind: String,
    /// (value, label) of each kind the form offers.
    pub basis_kinds: Vec<(&'static str, &'static str)>,
    pub repermission_warning: &'static str,
    pub errors: Vec<FieldError>,
    pub max_bytes: u64,
}

impl ImportsPage {
    fn chosen(&self, slug: &str) -> bool {
        self.chosen_lists.iter().any(|l| l == slug)
    }

    fn when(&self, t: &chrono::DateTime<chrono::Utc>) -> String {
        when(t)
    }

    /// The largest file taken, in megabytes as a volunteer reads sizes.
    fn max_size(&self) -> String {
        megabytes(self.max_bytes)
    }
}

/// `bytes` in MB (10⁶ bytes, as file managers show them), one decimal
/// below 10 MB.
fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / 1_000_000.0;
    if mb < 10.0 { format!("{mb:.1} MB") } else { format!("{mb:.0} MB") }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/import.html")]
pub struct ImportPage {
    pub chrome: Chrome,
    pub import: ImportView,
    pub errors: Vec<ImportErrorRow>,
    /// The next page of refused rows starts after this line.
    pub errors_next: Option<i64>,
    /// Still running: the page refreshes itself.
    pub live: bool,
    /// When it was uploaded, started and finished, as shown.
    pub times: [String; 3],
}

async fn form_page(
    state: &AppState,
    chrome: Chrome,
    chosen_lists: Vec<String>,
    (basis, basis_kind): (String, String),
    status: String,
    errors: Vec<FieldError>,
) -> Result<ImportsPage> {
    Ok(ImportsPage {
        chrome,
        imports: imports::recent(&state.ctx, 50).await?,
        lists: lists::all(&state.ctx).await?,
        chosen_lists,
        basis,
        status,
        basis_kind,
        // "Not specified" is for scripts only: the form asks for a real kind.
        basis_kinds: BasisKind::ALL
            .iter()
            .filter(|k| **k != BasisKind::Unspecified)
            .map(|k| (k.as_str(), k.label()))
            .collect(),
        repermission_warning: imports::REPERMISSION_WARNING,
        errors,
        max_bytes: state.ctx.config.import_max_bytes,
    })
}

pub async fn index(State(state): State<AppState>, RequireAdmin(me): RequireAdmin, csrf: CsrfToken) -> Result<Response> {
    let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "imports");
    let page = form_page(&state, chrome, Vec::new(), Default::default(), "confirmed".to_owned(), Vec::new()).await?;
    Ok(page.into_response())
}

pub async fn upload(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    client: Client,
    CsrfMultipart(mut multipart): CsrfMultipart,
) -> Result<Response> {
    let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "imports");
    let (request, upload) = match read_import_form(&state.ctx, &mut multipart, &me.actor(), &client.meta()).await {
        Ok(read) => read,
        Err(FormError::Bad(status, message)) => {
            let errors = vec![FieldError::new("file", message)];
            let page =
                form_page(&state, chrome, Vec::new(), Default::default(), "confirmed".to_owned(), errors).await?;
            return Ok((status, page).into_response());
        }
        Err(FormError::Upload(e)) => return refused(&state, chrome, Default::default(), e).await,
    };
    let Some(upload) = upload else {
        let errors = vec![FieldError::new("file", "choose a CSV file")];
        let page = form_page(
            &state,
            chrome,
            request.lists,
            (request.basis.unwrap_or_default(), request.basis_kind.unwrap_or_default()),
            request.status.unwrap_or_default(),
            errors,
        )
        .await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    // The form asks for what scripts may leave out: the kind of basis of a
    // confirmed import, and an explicit confirmation of a pending one.
    let mut problems = Vec::new();
    if request.is_pending() {
        if !request.confirm_repermission {
            problems.push(FieldError::new("confirm_repermission", imports::REPERMISSION_WARNING));
        }
    } else if request
        .basis_kind
        .as_deref()
        .and_then(|k| BasisKind::parse(k.trim()).ok())
        .is_none_or(|k| k == BasisKind::Unspecified)
    {
        problems.push(FieldError::new("basis_kind", "choose the kind of basis you have for mailing these people"));
    }
    if !problems.is_empty() {
        imports::Upload::discard(&state.ctx, upload.id).await;
        return refused(&state, chrome, request, UploadError::Service(ServiceError::Invalid(problems))).await;
    }
    match upload.finish(&state.ctx, &request).await {
        Ok(view) => {
            tracing::info!(organiser = %me.id, import = %view.id, "import uploaded");
            Ok(Redirect::to(&format!("/admin/imports/{}", view.id)).into_response())
        }
        Err(e) => refused(&state, chrome, request, e).await,
    }
}

/// The form again, with what is wrong.
async fn refused(
    state: &AppState,
    chrome: Chrome,
    request: imports::ImportRequest,
    e: UploadError,
) -> Result<Response> {
    let (status, errors) = match e {
        UploadError::TooLarge(limit) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            vec![FieldError::new("file", format!("the file is larger than the limit of {limit} bytes"))],
        ),
        UploadError::Service(ServiceError::Invalid(errors)) => (StatusCode::UNPROCESSABLE_ENTITY, errors),
        UploadError::Service(other) => return Err(other.into()),
    };
    let page = form_page(
        state,
        chrome,
        request.lists,
        (request.basis.unwrap_or_default(), request.basis_kind.unwrap_or_default()),
        request.status.unwrap_or_else(|| "confirmed".to_owned()),
        errors,
    )
    .await?;
    Ok((status, page).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct ShowQuery {
    errors_after: Option<i64>,
}

pub async fn show(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| AdminError::Service(ServiceError::NotFound("import")))?;
    let detail = imports::get(&state.ctx, id, q.errors_after.unwrap_or(0), imports::ERRORS_PAGE).await?;
    let live = !detail.import.finished();
    let i = &detail.import;
    let times = [when(&i.created_at), when_opt(&i.started_at), when_opt(&i.finished_at)];
    Ok(ImportPage {
        times,
        chrome: Chrome::new(&state.ctx.config.group_name, &me, &csrf, "imports"),
        import: detail.import,
        errors: detail.errors,
        errors_next: detail.errors_next,
        live,
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_are_in_megabytes() {
        assert_eq!(super::megabytes(104_857_600), "105 MB");
        assert_eq!(super::megabytes(5_000_000), "5.0 MB");
        assert_eq!(super::megabytes(1_500_000), "1.5 MB");
    }
}
