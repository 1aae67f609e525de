//! `GET /api/v1/openapi.json`: the organiser API described as OpenAPI 3.1,
//! built at compile time by utoipa from the `#[utoipa::path]` on each
//! handler and the `ToSchema` derives on the request and response types.
//! Served from the binary: nothing is downloaded, at build time or after.
//!
//! The document is under `/api/v1`, so like every route there it needs a
//! bearer token (README, "Organiser API"): it describes an organiser's
//! tools, not a public surface, and tools that read it (schemathesis, code
//! generators) send the token anyway.
//!
//! Responses every operation shares are added here rather than repeated on
//! each handler, because the layers that produce them wrap every route:
//! 401 (the token layer), 400 (a path, query or body that cannot be read),
//! 404 for a path naming something that does not exist, and, for operations
//! with a body, 413 (too large), 415 (not JSON) and 422 (invalid fields).

use super::{consent, imports, lists, records, schedules, subscribers, updates};
use crate::web::AppState;
use crate::web::error::{ErrorBody, ErrorDetail};
use axum::Json;
use axum::extract::State;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tidings organiser API",
        description = "Lists, subscribers, consent records, updates and schedules. Every operation needs `Authorization: Bearer TOKEN` (create one with `tidings token create --name NAME` or in /admin/tokens). Errors are `{\"error\": {\"code\", \"message\", \"fields\"?}}`."
    ),
    paths(
        lists::all_lists,
        lists::create_list,
        lists::get_list,
        lists::update_list,
        lists::delete_list,
        subscribers::find_subscriber,
        subscribers::add_subscriber,
        subscribers::get_subscriber,
        subscribers::rectify_subscriber,
        subscribers::delete_subscriber,
        subscribers::consent_ledger,
        subscribers::export_subscriber,
        subscribers::erase_subscriber,
        consent::current_notice,
        consent::publish_notice,
        consent::current_statements,
        consent::publish_statement,
        updates::recent_updates,
        updates::create_update,
        updates::get_update,
        updates::edit_update,
        updates::delete_update,
        updates::preview_update,
        updates::test_update,
        updates::send_update,
        updates::pause_update,
        updates::resume_update,
        updates::cancel_update,
        updates::update_stats,
        updates::update_deliveries,
        schedules::all,
        schedules::create,
        schedules::get,
        schedules::edit,
        schedules::delete,
        imports::create,
        imports::all,
        imports::get,
        lists::export_list,
        records::audit_log,
        records::rights_requests,
        records::create_rights_request,
        records::rights_request,
        records::change_rights_request,
        document,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&SharedResponses),
    security(("bearer" = [])),
    tags(
        (name = "lists", description = "Mailing lists"),
        (name = "subscribers", description = "Subscribers, their consent ledger, data copies and erasure"),
        (name = "consent", description = "Privacy notices and consent statements (versioned, never changed)"),
        (name = "updates", description = "Updates: drafts, previews, test sends, sending and its record"),
        (name = "schedules", description = "Recurring sends (cron)"),
        (name = "imports", description = "CSV imports as background jobs"),
        (name = "records", description = "The audit log and the rights-request log"),
        (name = "meta", description = "This description"),
    )
)]
struct ApiDoc;

/// The API description.
pub fn api_doc() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The OpenAPI document (this one).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi_document",
    responses((status = 200, description = "The OpenAPI 3.1 description of this API", content_type = "application/json", body = serde_json::Value))
)]
pub(super) async fn document(State(_): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(api_doc())
}

struct SharedResponses;

impl utoipa::Modify for SharedResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.components.get_or_insert_with(Default::default).add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token from `tidings token create` or /admin/tokens"))
                    .build(),
            ),
        );
        let mut seen_ids = std::collections::BTreeSet::new();
        for item in doc.paths.paths.values_mut() {
            for (method, op) in [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("put", &mut item.put),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
            ] {
                let Some(op) = op.as_mut() else { continue };
                add_shared_responses(op);
                // One handler mounted on two methods (PATCH and PUT) gets
                // one id from utoipa; ids must be unique.
                if let Some(id) = op.operation_id.clone()
                    && !seen_ids.insert(id.clone())
                {
                    let renamed = format!("{id}_{method}");
                    seen_ids.insert(renamed.clone());
                    op.operation_id = Some(renamed);
                }
            }
        }
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build().into()
}

fn add_shared_responses(op: &mut Operation) {
    let has_path_params =
        op.parameters.iter().flatten().any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Path)));
    let has_body = op.request_body.is_some();
    let mut shared = vec![
        ("400", "The path, query or body could not be read"),
        ("401", "No valid API token (`Authorization: Bearer TOKEN`)"),
    ];
    if has_path_params {
        shared.push(("404", "Nothing exists at this path"));
    }
    if has_body {
        shared.push(("413", "The body is too large"));
        shared.push(("415", "The body is not `application/json`"));
        shared.push(("422", "Some fields are invalid (`fields` says which and why)"));
    }
    for (status, description) in shared {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| error_response(description));
    }
}
