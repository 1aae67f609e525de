//! Supporter routes (README, "What supporters see"): HTML by default, JSON
//! when the request sends or asks for JSON. GET never changes state: mail
//! scanners prefetch links, so every state change is a POST.

use super::challenge::{ChallengeError, Solved};
use super::input::{Client, Submitted};
use super::pages::*;
use super::{AppState, WebError};
use crate::config::ChallengeMode;
use crate::domain::WithdrawalMethod;
use crate::services::FieldError;
use crate::services::supporter::{self, ConsentGiven, PreferencesInput, SubscribeInput, SubscribeRequest};
use crate::services::{ServiceError, archive, consent, data_copy};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{map_response, map_response_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn router(state: &AppState) -> Router<AppState> {
    let mut subscribe_route = get(subscribe_form).post(subscribe);
    let mut challenge_route = get(challenge);
    // Only these routes answer other sites' browsers, and only the origins
    // the operator listed (see `embed`).
    if let Some(cors) = super::embed::cors_layer(&state.ctx.config, axum::http::Method::POST) {
        subscribe_route = subscribe_route.layer(cors);
    }
    if let Some(cors) = super::embed::cors_layer(&state.ctx.config, axum::http::Method::GET) {
        challenge_route = challenge_route.layer(cors);
    }
    // The form pages run the challenge script when the challenge is on.
    let csp = map_response_with_state(state.clone(), challenge_csp);
    Router::new()
        .route("/", get(index).layer(csp.clone()))
        .route("/subscribe", subscribe_route.layer(csp))
        .route("/subscribe/challenge", challenge_route)
        .route("/assets/challenge.js", get(challenge_script))
        .route("/confirm/{token}", get(confirm_page).post(confirm).layer(map_response(token_page)))
        .route("/unsubscribe/{token}", get(unsubscribe_page).post(unsubscribe).layer(map_response(token_page)))
        .route("/preferences/{token}", get(preferences_page).post(update_preferences).layer(map_response(token_page)))
        .route("/data-copy/{token}", get(data_copy_page).post(data_copy).layer(map_response(token_page)))
        .route("/test-copy", get(test_copy).post(test_copy))
        .route("/privacy", get(privacy))
        .route("/archive", get(archive_index))
        .route("/archive/feed.atom", get(archive_feed))
        .route("/archive/{id}", get(archive_update))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/assets/style.css", get(stylesheet))
        .fallback(page_not_found)
}

/// Pages reached by a token link hold a credential in their address and
/// show a person's data: no cache (shared or the browser's) may keep them,
/// and no link on them may pass the address on. Every answer, errors too.
async fn token_page(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

/// The security headers' default policy allows no script at all; the
/// subscribe form, when the challenge is on, runs one script of ours
/// (`/assets/challenge.js`, never inline) that fetches a challenge from
/// this origin.
async fn challenge_csp(State(state): State<AppState>, mut res: Response) -> Response {
    if state.ctx.config.subscribe_challenge != ChallengeMode::Off {
        res.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    res
}

/// `GET /subscribe/challenge`: a fresh proof-of-work challenge (JSON), or
/// 404 when the challenge is off.
async fn challenge(State(state): State<AppState>) -> Result<Response> {
    if state.ctx.config.subscribe_challenge == ChallengeMode::Off {
        return Err(WebError::new(StatusCode::NOT_FOUND, "not_found", "There is no such page.").as_json(true));
    }
    let c = state.challenges.issue(now_unix(&state)).map_err(|e| {
        tracing::error!(error = %e, "no randomness for a challenge");
        WebError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Please try again in a moment.").as_json(true)
    })?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(c)).into_response())
}

async fn challenge_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../templates/challenge.js"),
    )
        .into_response()
}

async fn page_not_found(client: Client) -> WebError {
    client.error(WebError::new(StatusCode::NOT_FOUND, "not_found", "There is no such page."))
}

type Result<T, E = WebError> = std::result::Result<T, E>;

fn group(state: &AppState) -> String {
    state.ctx.config.group_name.clone()
}

async fn index(State(state): State<AppState>, client: Client) -> Result<Response> {
    subscribe_form_for(&state, &client, None, None).await
}

#[derive(serde::Deserialize)]
struct ListQuery {
    list: Option<String>,
    /// A page of the campaign's site to offer a link back to afterwards.
    #[serde(rename = "return")]
    return_to: Option<String>,
}

async fn subscribe_form(State(state): State<AppState>, client: Client, Query(q): Query<ListQuery>) -> Result<Response> {
    subscribe_form_for(&state, &client, q.list.as_deref(), q.return_to.as_deref()).await
}

/// The checked form of a `return` value, or empty.
fn return_to(state: &AppState, raw: Option<&str>) -> String {
    raw.and_then(|r| state.ctx.config.return_link(r)).map(String::from).unwrap_or_default()
}

async fn subscribe_form_for(
    state: &AppState,
    client: &Client,
    only: Option<&str>,
    return_raw: Option<&str>,
) -> Result<Response> {
    let lists = supporter::public_lists(&state.ctx, only).await.map_err(|e| client.service_error(e))?;
    if only.is_some() && lists.is_empty() {
        return Err(client.error(WebError::new(StatusCode::NOT_FOUND, "not_found", "There is no such list.")));
    }
    let answer = client.answer(
        lists,
        |lists| Json(json!({ "lists": lists, "privacy_notice": state.ctx.config.link("/privacy") })),
        |lists| SubscribePage {
            group: group(state),
            heading: match lists.as_slice() {
                [one] => format!("Get {} by email", one.name),
                _ => format!("Get updates from {}", state.ctx.config.group_name),
            },
            lists,
            email: String::new(),
            name: String::new(),
            source: client.referer.clone().unwrap_or_default(),
            ticked: Vec::new(),
            errors: Vec::new(),
            return_to: return_to(state, return_raw),
            challenge: state.ctx.config.subscribe_challenge,
        },
    );
    Ok(answer.into_response())
}

/// Turns a form or JSON body into the service's input. Public for the
/// fuzz targets (fuzz/), which check that the two body formats agree.
pub fn subscribe_input(body: &Submitted) -> SubscribeInput {
    match body {
        Submitted::Form(_) => {
            let consent_values = body.all("consent");
            let consent = match consent_values.as_slice() {
                [] => None,
                [one] if matches!(one.as_str(), "true" | "on" | "yes" | "1") => Some(ConsentGiven::All),
                many => Some(ConsentGiven::Lists(many.to_vec())),
            };
            SubscribeInput {
                email: body.first("email").unwrap_or_default(),
                name: body.first("name").unwrap_or_default(),
                lists: body.all("lists"),
                consent,
                source: body.first("source"),
                honeypot: body.first("website").unwrap_or_default(),
                statements: body.all("statements").iter().map(|v| slug_and_version(v)).collect(),
            }
        }
        Submitted::Json(v) => {
            let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
            let strings = |x: &serde_json::Value| -> Vec<String> {
                match x {
                    serde_json::Value::String(s) => vec![s.clone()],
                    serde_json::Value::Array(a) => a.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
                    _ => Vec::new(),
                }
            };
            let consent = match v.get("consent") {
                Some(serde_json::Value::Bool(true)) => Some(ConsentGiven::All),
                Some(serde_json::Value::String(s)) if matches!(s.as_str(), "true" | "on" | "yes" | "1") => {
                    Some(ConsentGiven::All)
                }
                Some(x @ serde_json::Value::Array(_)) => Some(ConsentGiven::Lists(strings(x))),
                _ => None,
            };
            SubscribeInput {
                email: text("email"),
                name: text("name"),
                lists: v.get("lists").map(strings).unwrap_or_default(),
                consent,
                source: v.get("source").and_then(|x| x.as_str()).map(str::to_owned),
                honeypot: text("website"),
                statements: match v.get("statements") {
                    // {"updates": 3}: the version as a number or a string.
                    Some(serde_json::Value::Object(m)) => m
                        .iter()
                        .map(|(slug, version)| {
                            let version = match version {
                                serde_json::Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            (slug.clone(), version)
                        })
                        .collect(),
                    // ["updates:3"], as the form posts them.
                    Some(x) => strings(x).iter().map(|v| slug_and_version(v)).collect(),
                    None => Vec::new(),
                },
            }
        }
    }
}

/// A posted `statements` value, `SLUG:VERSION`, split at its last colon
/// (no colon: a version nobody published, refused later).
fn slug_and_version(value: &str) -> (String, String) {
    match value.rsplit_once(':') {
        Some((slug, version)) => (slug.to_owned(), version.to_owned()),
        None => (value.to_owned(), String::new()),
    }
}

/// The message of a sign-up refused for want of a valid challenge solution.
const CHALLENGE_MESSAGE: &str = "This form checks that a browser filled it in, using JavaScript. Please turn JavaScript on, reload the page and try again.";

fn now_unix(state: &AppState) -> i64 {
    state.ctx.clock.now().timestamp()
}

/// Notes a solved challenge as used (in the database, so on every
/// instance); `false` when it was used before.
async fn note_used(state: &AppState, solved: &Solved) -> Result<bool, ServiceError> {
    let now = state.ctx.clock.now();
    let expires = chrono::DateTime::from_timestamp(solved.expires, 0).unwrap_or(now);
    let mut tx = state.ctx.store.write().await?;
    let fresh = tx.note_used_challenge(&solved.challenge, expires, now).await?;
    tx.commit().await?;
    Ok(fresh)
}

/// The `altcha` field of a form or JSON body.
fn challenge_payload(body: &Submitted) -> Option<String> {
    match body {
        Submitted::Form(_) => body.first("altcha"),
        Submitted::Json(v) => v.get("altcha").and_then(|x| x.as_str()).map(str::to_owned),
    }
}

async fn subscribe(State(state): State<AppState>, client: Client, body: Submitted) -> Result<Response> {
    let mut input = subscribe_input(&body);
    if input.source.as_deref().is_none_or(str::is_empty) {
        input.source = client.referer.clone();
    }
    let return_raw = body.first("return");
    if let Some(ip) = client.ip
        && let Err(retry) = state.subscribe_limits.check(ip)
    {
        state.ctx.metrics.subscribe_request("rate_limited");
        // The same answer whatever the address, its network, or the list.
        let message = "Too many requests. Please wait a minute and try again.";
        let refusal = WebError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        let errors = vec![FieldError::new("subscribe-form", message)];
        let mut res = refused(&state, &client, &body, input, return_raw.as_deref(), refusal, errors).await?;
        if let Ok(v) = HeaderValue::from_str(&retry.as_secs().max(1).to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(res);
    }
    let mode = state.ctx.config.subscribe_challenge;
    if mode != ChallengeMode::Off {
        let verdict = match state.challenges.verify(challenge_payload(&body).as_deref(), now_unix(&state)) {
            Ok(solved) => match note_used(&state, &solved).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(ChallengeError::Reused),
                Err(e) => return Err(client.service_error(e)),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = verdict {
            tracing::debug!(reason = %e, "sign-up without a valid challenge solution");
            // `on` only offers the challenge: without a solution the
            // ordinary limits are all there is.
            if mode == ChallengeMode::Require {
                state.ctx.metrics.subscribe_request("challenge_failed");
                let refusal = WebError::new(StatusCode::UNPROCESSABLE_ENTITY, "challenge_failed", CHALLENGE_MESSAGE);
                let errors = vec![FieldError::new("subscribe-form", CHALLENGE_MESSAGE)];
                return refused(&state, &client, &body, input, return_raw.as_deref(), refusal, errors).await;
            }
        }
    }
    let outcome = match SubscribeRequest::parse(&input) {
        Ok(req) => state.subscribe_queue.subscribe(req, client.meta()).await,
        Err(e) => Err(e),
    };
    state.ctx.metrics.subscribe_request(match &outcome {
        Ok(()) => "accepted",
        Err(ServiceError::Invalid(_)) => "invalid",
        Err(_) => "error",
    });
    match outcome {
        // The same answer whoever the address belongs to.
        Ok(()) => {
            let answer = client.answer(
                return_raw,
                |_| (StatusCode::ACCEPTED, Json(json!({ "status": "pending" }))),
                |return_raw| {
                    let back = return_raw
                        .and_then(|r| state.ctx.config.return_link(&r))
                        .map(|url| BackLink { host: url.host_str().unwrap_or_default().to_owned(), url: url.into() });
                    CheckInboxPage { group: group(&state), back }
                },
            );
            Ok(answer.into_response())
        }
        Err(ServiceError::Invalid(errors)) => {
            let refusal = WebError::from_service(ServiceError::Invalid(errors.clone()), true);
            refused(&state, &client, &body, input, return_raw.as_deref(), refusal, errors).await
        }
        Err(e) => Err(client.service_error(e)),
    }
}

/// A sign-up refused before anything was saved: `refusal` for a JSON
/// client; for a person, the form again, with what they typed, `errors`
/// beside the fields, and the refusal's status.
async fn refused(
    state: &AppState,
    client: &Client,
    body: &Submitted,
    input: SubscribeInput,
    return_raw: Option<&str>,
    refusal: WebError,
    errors: Vec<FieldError>,
) -> Result<Response> {
    let answer = client
        .answer_async(
            refusal,
            |refusal| refusal,
            |refusal| async move {
                let page = form_again(state, body, input, errors, return_raw).await?;
                Ok((refusal.status, page))
            },
        )
        .await?;
    Ok(answer.into_response())
}

/// The form again, with what was typed and what to correct.
async fn form_again(
    state: &AppState,
    body: &Submitted,
    input: SubscribeInput,
    errors: Vec<FieldError>,
    return_raw: Option<&str>,
) -> Result<SubscribePage> {
    let lists = supporter::public_lists(&state.ctx, None).await.map_err(|e| WebError::from_service(e, false))?;
    Ok(SubscribePage {
        group: group(state),
        heading: format!("Get updates from {}", state.ctx.config.group_name),
        lists,
        email: input.email,
        name: input.name,
        source: input.source.unwrap_or_default(),
        // Wording they did not see: they tick the boxes again.
        ticked: if errors.iter().any(|e| e.field == "statements") { Vec::new() } else { body.all("consent") },
        errors,
        return_to: return_to(state, return_raw),
        challenge: state.ctx.config.subscribe_challenge,
    })
}

async fn confirm_page(State(state): State<AppState>, client: Client, Path(token): Path<String>) -> Result<Response> {
    match supporter::peek_confirmation(&state.ctx, &token).await {
        Ok(p) => Ok(client
            .answer(
                p,
                |p| Json(json!({ "status": "pending", "lists": p.list_names })),
                |p| ConfirmPage { group: group(&state), token, list_names: p.list_names },
            )
            .into_response()),
        Err(ServiceError::Gone) => Err(client.service_error(ServiceError::Gone)),
        Err(e) => Err(client.service_error(e)),
    }
}

async fn confirm(State(state): State<AppState>, client: Client, Path(token): Path<String>) -> Result<Response> {
    let outcome = supporter::confirm(&state.ctx, &token, &client.meta()).await;
    match &outcome {
        Ok(_) => state.ctx.metrics.confirmation("confirmed"),
        Err(ServiceError::Gone) => state.ctx.metrics.confirmation("gone"),
        Err(_) => {}
    }
    match outcome {
        Ok(c) => Ok(client
            .answer(
                c,
                |c| Json(json!({ "status": "confirmed", "lists": c.list_names })),
                |c| ConfirmedPage {
                    group: group(&state),
                    list_names: c.list_names,
                    preferences_url: state.ctx.config.link(&format!("/preferences/{}", c.preferences_token)),
                },
            )
            .into_response()),
        Err(ServiceError::Gone) => Err(client.service_error(ServiceError::Gone)),
        Err(e) => Err(client.service_error(e)),
    }
}

fn invalid_link(client: &Client) -> WebError {
    client.error(WebError::new(
        StatusCode::NOT_FOUND,
        "invalid_link",
        "That link is not valid. Please use the link from your most recent email.",
    ))
}

fn link_error(e: ServiceError, client: &Client) -> WebError {
    match e {
        ServiceError::NotFound("link") => invalid_link(client),
        // The subscriber or list no longer exists (erased/deleted).
        ServiceError::Gone => client.error(WebError::new(
            StatusCode::GONE,
            "gone",
            "There is nothing left to change: this subscription no longer exists.",
        )),
        other => client.service_error(other),
    }
}

async fn unsubscribe_page(
    State(state): State<AppState>,
    client: Client,
    Path(token): Path<String>,
) -> Result<Response> {
    let t = supporter::unsubscribe_target(&state.ctx, &token).await.map_err(|e| link_error(e, &client))?;
    Ok(client
        .answer(
            t,
            |t| Json(json!({ "list": t.list_names.first(), "lists": t.list_names, "subscribed": t.active })),
            |t| unsubscribe_view(&state, token, t, false),
        )
        .into_response())
}

fn unsubscribe_view(state: &AppState, token: String, t: supporter::UnsubscribeTarget, done: bool) -> UnsubscribePage {
    UnsubscribePage {
        group: group(state),
        token,
        lists: quoted_names(&t.list_names),
        several: t.list_names.len() > 1,
        left: quoted_names(&t.left),
        left_several: t.left.len() > 1,
        active: t.active,
        done,
        preferences_url: state.ctx.config.link(&format!("/preferences/{}", t.preferences_token)),
    }
}

/// RFC 8058 one-click: mail clients POST `List-Unsubscribe=One-Click` with
/// no cookie and follow no redirect, so we act at once and answer 200. A
/// link from a copy sent for several lists leaves them all.
async fn unsubscribe(
    State(state): State<AppState>,
    client: Client,
    Path(token): Path<String>,
    body: Submitted,
) -> Result<Response> {
    let one_click = body.first("List-Unsubscribe").is_some_and(|v| v == "One-Click");
    let method = if one_click { WithdrawalMethod::OneClick } else { WithdrawalMethod::Page };
    let t =
        supporter::unsubscribe(&state.ctx, &token, method, &client.meta()).await.map_err(|e| link_error(e, &client))?;
    Ok(client
        .answer(
            t,
            |t| {
                Json(json!({
                    "status": "unsubscribed",
                    "list": t.list_names.first(),
                    "lists": t.list_names,
                    "left": t.left,
                }))
            },
            |t| unsubscribe_view(&state, token, t, true),
        )
        .into_response())
}

async fn preferences_page(
    State(state): State<AppState>,
    client: Client,
    Path(token): Path<String>,
) -> Result<Response> {
    let p = supporter::preferences(&state.ctx, &token).await.map_err(|e| link_error(e, &client))?;
    Ok(client
        .answer(p, Json, |p| PreferencesPage {
            group: group(&state),
            token,
            email: p.email,
            name: p.name,
            lists: p.lists,
            saved: false,
            confirmation_sent: String::new(),
            confirmation_recent: String::new(),
            left: String::new(),
            unsubscribed_all: false,
            errors: Vec::new(),
        })
        .into_response())
}

async fn update_preferences(
    State(state): State<AppState>,
    client: Client,
    Path(token): Path<String>,
    body: Submitted,
) -> Result<Response> {
    let wants_copy = match &body {
        Submitted::Form(_) => body.first("action").is_some_and(|a| a == "data-copy"),
        Submitted::Json(v) => v.get("action").and_then(|a| a.as_str()) == Some("data-copy"),
    };
    if wants_copy {
        data_copy::request(&state.ctx, &token, &client.meta()).await.map_err(|e| link_error(e, &client))?;
        let answer = client.answer(
            (),
            |()| (StatusCode::ACCEPTED, Json(json!({ "status": "link-sent" }))),
            |()| DataCopyPage { group: group(&state), step: "requested", token: String::new() },
        );
        return Ok(answer.into_response());
    }
    let input = match &body {
        Submitted::Form(_) => PreferencesInput {
            name: body.first("name").unwrap_or_default(),
            lists: body.all("lists"),
            unsubscribe_all: body.first("action").is_some_and(|a| a == "unsubscribe-all"),
        },
        Submitted::Json(v) => PreferencesInput {
            name: v.get("name").and_then(|x| x.as_str()).unwrap_or("").to_owned(),
            lists: v
                .get("lists")
                .and_then(|x| x.as_array())
                .map(|a| a.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            unsubscribe_all: v.get("unsubscribe_all").and_then(|x| x.as_bool()).unwrap_or(false),
        },
    };
    match supporter::update_preferences(&state.ctx, &token, &input, &client.meta()).await {
        Ok(saved) => Ok(client
            .answer(saved, Json, |saved| PreferencesPage {
                group: group(&state),
                token,
                email: saved.preferences.email,
                name: saved.preferences.name,
                lists: saved.preferences.lists,
                saved: true,
                confirmation_sent: quoted_names(&saved.confirmation_sent),
                confirmation_recent: quoted_names(&saved.confirmation_recent),
                left: quoted_names(&saved.left),
                unsubscribed_all: saved.unsubscribed_all,
                errors: Vec::new(),
            })
            .into_response()),
        // A person sees the form again, with what to correct.
        Err(ServiceError::Invalid(errors)) => {
            let (state, client, name) = (&state, &client, input.name);
            let answer = client
                .answer_async(
                    errors,
                    |errors| link_error(ServiceError::Invalid(errors), client),
                    |errors| async move {
                        let p = supporter::preferences(&state.ctx, &token).await.map_err(|e| link_error(e, client))?;
                        let page = PreferencesPage {
                            group: group(state),
                            token,
                            email: p.email,
                            name,
                            lists: p.lists,
                            saved: false,
                            confirmation_sent: String::new(),
                            confirmation_recent: String::new(),
                            left: String::new(),
                            unsubscribed_all: false,
                            errors,
                        };
                        Ok((StatusCode::UNPROCESSABLE_ENTITY, page))
                    },
                )
                .await?;
            Ok(answer.into_response())
        }
        Err(e) => Err(link_error(e, &client)),
    }
}

/// The page behind the link in the data-copy mail: one button (GET never
/// acts: link scanners prefetch).
async fn data_copy_page(State(state): State<AppState>, client: Client, Path(token): Path<String>) -> Result<Response> {
    if !data_copy::link_is_live(&state.ctx, &token).await.map_err(|e| client.service_error(e))? {
        return Err(client.service_error(ServiceError::Gone));
    }
    Ok(DataCopyPage { group: group(&state), step: "confirm", token }.into_response())
}

async fn data_copy(State(state): State<AppState>, client: Client, Path(token): Path<String>) -> Result<Response> {
    match data_copy::release(&state.ctx, &token).await {
        Ok(()) => Ok(client
            .answer(
                (),
                |()| Json(json!({ "status": "sent" })),
                |()| DataCopyPage { group: group(&state), step: "sent", token: String::new() },
            )
            .into_response()),
        Err(ServiceError::Gone) => Err(client.service_error(ServiceError::Gone)),
        Err(e) => Err(client.service_error(e)),
    }
}

/// Where a test copy's unsubscribe and preferences links lead (and what
/// its one-click unsubscribe posts to): it was sent to no list, so there is
/// nothing to undo, and nobody's subscription is touched.
async fn test_copy(State(state): State<AppState>) -> Response {
    TestCopyPage { group: group(&state) }.into_response()
}

async fn privacy(State(state): State<AppState>, client: Client) -> Result<Response> {
    let n = consent::current_notice(&state.ctx).await.map_err(|e| client.service_error(e))?;
    Ok(client
        .answer(n, Json, |n| PrivacyPage {
            group: group(&state),
            version: n.version,
            effective_from: n.effective_from.format("%-d %B %Y").to_string(),
            paragraphs: n.text.split("\n\n").map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect(),
        })
        .into_response())
}

#[derive(serde::Deserialize)]
struct ArchiveQuery {
    before: Option<String>,
}

/// How the archive shows a date ("3 March 2026").
fn archive_date(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%-d %B %Y").to_string()
}

async fn archive_index(
    State(state): State<AppState>,
    client: Client,
    Query(q): Query<ArchiveQuery>,
) -> Result<Response> {
    let page = archive::page(&state.ctx, q.before.as_deref()).await.map_err(|e| client.service_error(e))?;
    let next_url = page.next_before.map(|id| format!("/archive?before={id}"));
    Ok(client
        .answer(
            (page, next_url),
            |(page, next_url)| {
                Json(json!({ "updates": page.updates, "next": next_url.map(|n| state.ctx.config.link(&n)) }))
            },
            |(page, next_url)| ArchivePage {
                group: group(&state),
                updates: page
                    .updates
                    .into_iter()
                    .map(|u| ArchiveItem {
                        id: u.id.to_string(),
                        subject: u.subject,
                        date: archive_date(u.sent_at),
                        lists: u.lists,
                    })
                    .collect(),
                next_url,
                feed_url: "/archive/feed.atom".to_owned(),
            },
        )
        .into_response())
}

async fn archive_update(State(state): State<AppState>, client: Client, Path(id): Path<String>) -> Result<Response> {
    let u = archive::get(&state.ctx, &id).await.map_err(|e| client.service_error(e))?;
    Ok(client
        .answer(u, Json, |u| ArchiveUpdatePage {
            group: group(&state),
            subject: u.subject,
            date: archive_date(u.sent_at),
            lists: u.lists,
            body_html: u.body_html,
        })
        .into_response())
}

async fn archive_feed(State(state): State<AppState>) -> Result<Response> {
    let entries = archive::feed(&state.ctx).await.map_err(|e| WebError::from_service(e, false))?;
    let config = &state.ctx.config;
    let rfc3339 = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let feed = AtomFeed {
        id: config.link("/archive"),
        title: config.group_name.clone(),
        self_url: config.link("/archive/feed.atom"),
        // An empty feed has not changed since the epoch.
        updated: rfc3339(entries.first().map(|e| e.sent_at).unwrap_or_default()),
        entries: entries
            .into_iter()
            .map(|e| AtomEntry {
                id: format!("urn:uuid:{}", e.id),
                title: e.subject,
                link: config.link(&format!("/archive/{}", e.id)),
                updated: rfc3339(e.sent_at),
                content: e.body_html,
            })
            .collect(),
    };
    let xml = askama::Template::render(&feed).map_err(|e| {
        tracing::error!(error = %e, "rendering the archive feed failed");
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side. Please try again.",
        )
        .html()
    })?;
    Ok(([(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")], xml).into_response())
}

pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// 200 when the database answers a query within 3 seconds, else 503, so a
/// load balancer stops sending requests an instance cannot serve.
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let unavailable = || (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response();
    match tokio::time::timeout(std::time::Duration::from_secs(3), state.ctx.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            unavailable()
        }
        Err(_) => {
            tracing::warn!("readiness check failed: the database did not answer within 3 s");
            unavailable()
        }
    }
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../templates/style.css"),
    )
        .into_response()
}
