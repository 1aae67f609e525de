//! Reading requests: who is asking (client address, user agent, whether
//! they want JSON) and what they submitted (URL-encoded form, multipart
//! form, or JSON), with clear errors for bodies we cannot read.

use super::{AppState, WebError};
use crate::config::Config;
use crate::services::RequestMeta;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Multipart, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use std::net::{IpAddr, SocketAddr};

/// Facts about the client, taken from the connection and headers.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub referer: Option<String>,
    /// The client sent JSON or asked for it.
    pub json: bool,
}

impl Client {
    pub fn meta(&self) -> RequestMeta {
        RequestMeta { ip: self.ip.map(|ip| ip.to_string()), user_agent: self.user_agent.clone() }
    }
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName, max: usize) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?;
    // Keep evidence readable and bounded; control characters never pass.
    let cleaned: String = v.chars().filter(|c| !c.is_control()).take(max).collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// JSON when the body is JSON, or when `Accept` prefers JSON over HTML.
pub fn wants_json(headers: &HeaderMap) -> bool {
    if headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(is_json_type) {
        return true;
    }
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(is_json_type)
}

fn is_json_type(v: &str) -> bool {
    v.trim_start().starts_with("application/json") || v.contains("+json")
}

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Client {
            ip: client_ip(&parts.headers, &parts.extensions, &state.ctx.config),
            user_agent: header_text(&parts.headers, header::USER_AGENT, 512),
            referer: header_text(&parts.headers, header::REFERER, 2048),
            json: wants_json(&parts.headers),
        })
    }
}

/// The client's address. Behind a reverse proxy the socket is the proxy;
/// only a header the operator named is believed, and only its last
/// (proxy-added) entry.
pub fn client_ip(headers: &HeaderMap, extensions: &axum::http::Extensions, config: &Config) -> Option<IpAddr> {
    let socket_ip = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let proxied_ip = config
        .trusted_proxy_header
        .as_deref()
        .and_then(|name| headers.get(name)?.to_str().ok()?.rsplit(',').next()?.trim().parse::<IpAddr>().ok());
    proxied_ip.or(socket_ip)
}

/// A submitted body.
#[derive(Debug, Clone)]
pub enum Submitted {
    /// URL-encoded or multipart form fields, in order, repeats kept.
    Form(Vec<(String, String)>),
    Json(serde_json::Value),
}

impl Submitted {
    /// Every value of a form field (empty for JSON).
    pub fn all(&self, key: &str) -> Vec<String> {
        match self {
            Submitted::Form(pairs) => pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect(),
            Submitted::Json(_) => Vec::new(),
        }
    }

    /// The first value of a form field.
    pub fn first(&self, key: &str) -> Option<String> {
        match self {
            Submitted::Form(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
            Submitted::Json(_) => None,
        }
    }
}

fn bad_body(status: StatusCode, message: &str, json: bool) -> WebError {
    WebError::new(status, "bad_request", message).as_json(json)
}

impl FromRequest<AppState> for Submitted {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let json = wants_json(req.headers());
        let content_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let too_large = |e: &axum::extract::rejection::BytesRejection| e.status() == StatusCode::PAYLOAD_TOO_LARGE;
        if content_type.starts_with("multipart/form-data") {
            let mut multipart = Multipart::from_request(req, state)
                .await
                .map_err(|_| bad_body(StatusCode::BAD_REQUEST, "The form could not be read.", json))?;
            let mut pairs = Vec::new();
            loop {
                match multipart.next_field().await {
                    Ok(Some(field)) => {
                        let name = field.name().unwrap_or("").to_owned();
                        let value = field.text().await.map_err(|e| {
                            let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                                e.status()
                            } else {
                                StatusCode::BAD_REQUEST
                            };
                            bad_body(status, "The form could not be read.", json)
                        })?;
                        pairs.push((name, value));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                            e.status()
                        } else {
                            StatusCode::BAD_REQUEST
                        };
                        return Err(bad_body(status, "The form could not be read.", json));
                    }
                }
            }
            return Ok(Submitted::Form(pairs));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if too_large(&e) {
                bad_body(StatusCode::PAYLOAD_TOO_LARGE, "The request is too large.", json)
            } else {
                bad_body(StatusCode::BAD_REQUEST, "The request body could not be read.", json)
            }
        })?;
        // The body's own type decides how to read it; `Accept` only says
        // how to answer (a form post may well want a JSON answer).
        let body_is_json = if content_type.is_empty() { json } else { is_json_type(&content_type) };
        Submitted::decode(&bytes, body_is_json)
            .map_err(|_| bad_body(StatusCode::BAD_REQUEST, "The request body is not valid JSON.", true))
    }
}

impl Submitted {
    /// Decodes a whole URL-encoded (`json` false) or JSON body. Multipart
    /// forms are streamed by the extractor instead. Pure, so the fuzz
    /// targets can drive it without a server.
    pub fn decode(bytes: &[u8], json: bool) -> Result<Self, serde_json::Error> {
        if json {
            return serde_json::from_slice(bytes).map(Submitted::Json);
        }
        Ok(Submitted::Form(form_urlencoded::parse(bytes).into_owned().collect()))
    }
}
