//! Putting the subscribe form on the campaign's own site.
//!
//! Two ways, both limited to the sites the operator lists in
//! `TIDINGS_CORS_ORIGINS`:
//! - a plain HTML form (the snippet the admin lists page shows per list),
//!   posting to `TIDINGS_BASE_URL/subscribe`; its hidden `return` field
//!   lets the "check your inbox" page link back to the campaign's site;
//! - a script on that site calling `POST /subscribe` with JSON: CORS allows
//!   exactly those origins, on that one route, and only `POST` (with the
//!   `Content-Type` and `Accept` headers). No credentials are allowed: the
//!   endpoint needs none.
//!
//! When the sign-up challenge is on, the same origins may also fetch
//! `GET /subscribe/challenge`, and the pasted form carries our script
//! (`/assets/challenge.js`), which solves it before the form is sent.

use crate::config::{ChallengeMode, Config};
use askama::Template;
use axum::http::{HeaderValue, Method, header};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// CORS for `/subscribe` (POST) and `GET /subscribe/challenge` (so a
/// pasted form can fetch its challenge), or `None` when no origin is
/// configured (then the route sends no CORS headers and a preflight gets 405
/// like any `OPTIONS`).
pub(super) fn cors_layer(config: &Config, method: Method) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = config.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    if origins.is_empty() {
        return None;
    }
    let headers: &[header::HeaderName] =
        if method == Method::POST { &[header::CONTENT_TYPE, header::ACCEPT] } else { &[header::ACCEPT] };
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([method])
            .allow_headers(headers.to_vec())
            .max_age(Duration::from_secs(3600)),
    )
}

#[derive(Template)]
#[template(path = "embed/subscribe_form.html")]
struct SubscribeForm<'a> {
    action: String,
    /// The challenge's address and our script's, when the challenge is on.
    challenge_url: Option<String>,
    script_url: String,
    challenge_required: bool,
    privacy_url: String,
    slug: &'a str,
    list_name: &'a str,
    statement: &'a str,
    statement_version: i64,
    return_to: Option<String>,
}

/// The HTML form to paste into the campaign's site for one list: the same
/// fields as our own form (email, name, the list, consent with the list's
/// exact wording and that wording's version, the honeypot), a link to the
/// privacy notice, and a `return` field pointing at the first configured
/// site (to be edited to the page the supporter should go back to).
///
/// The version travels with every subscribe, so the ledger records the
/// wording the pasted form shows even after the list's wording changes
/// (the lists page then says which sites still show the old one).
pub fn subscribe_snippet(
    config: &Config,
    slug: &str,
    list_name: &str,
    statement: &str,
    statement_version: i64,
) -> String {
    let form = SubscribeForm {
        action: config.link("/subscribe"),
        challenge_url: (config.subscribe_challenge != ChallengeMode::Off).then(|| config.link("/subscribe/challenge")),
        script_url: config.link("/assets/challenge.js"),
        challenge_required: config.subscribe_challenge == ChallengeMode::Require,
        privacy_url: config.link("/privacy"),
        slug,
        list_name,
        statement,
        statement_version,
        return_to: config.cors_origins.first().map(|o| format!("{o}/")),
    };
    // Rendering a template of plain fields cannot fail; if it ever did, an
    // empty snippet is shown rather than a broken page.
    form.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "rendering the subscribe snippet failed");
        String::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_map(&map).unwrap()
    }

    #[test]
    fn the_snippet_posts_to_the_base_url_with_the_consent_wording_escaped() {
        let c = config(&[
            ("TIDINGS_BASE_URL", "https://news.hospital.example"),
            ("TIDINGS_CORS_ORIGINS", "https://savethehospital.example"),
        ]);
        let html = subscribe_snippet(&c, "hearings", "Hearing <dates>", "Email me \"hearing\" dates & news", 3);
        assert!(html.contains(r#"action="https://news.hospital.example/subscribe""#), "{html}");
        assert!(html.contains(r#"<input type="hidden" name="lists" value="hearings">"#), "{html}");
        assert!(html.contains(r#"<input type="hidden" name="statements" value="hearings:3">"#), "{html}");
        assert!(html.contains(r#"name="consent" value="hearings" required"#), "{html}");
        assert!(html.contains("Email me &#34;hearing&#34; dates &#38; news"), "{html}");
        assert!(html.contains("Subscribe to Hearing &#60;dates&#62;"), "{html}");
        assert!(html.contains(r#"href="https://news.hospital.example/privacy""#), "{html}");
        assert!(html.contains(r#"name="website""#), "the honeypot is there: {html}");
        assert!(html.contains(r#"name="return" value="https://savethehospital.example/""#), "{html}");
        assert!(!html.contains("<script"), "{html}");
    }

    #[test]
    fn with_the_challenge_on_the_snippet_carries_our_script_and_the_challenge_address() {
        let c = config(&[
            ("TIDINGS_BASE_URL", "https://news.hospital.example"),
            ("TIDINGS_SUBSCRIBE_CHALLENGE", "require"),
        ]);
        let html = subscribe_snippet(&c, "updates", "Updates", "Yes", 1);
        assert!(html.contains(r#"data-challenge="https://news.hospital.example/subscribe/challenge""#), "{html}");
        assert!(html.contains(r#"<input type="hidden" name="altcha" value="">"#), "{html}");
        assert!(html.contains(r#"<script src="https://news.hospital.example/assets/challenge.js" defer>"#), "{html}");
        assert!(html.contains("<noscript>"), "{html}");
    }

    #[test]
    fn without_configured_sites_there_is_no_return_field_and_no_cors() {
        let c = config(&[]);
        assert!(!subscribe_snippet(&c, "updates", "Updates", "Yes", 1).contains("name=\"return\""));
        assert!(cors_layer(&c, Method::POST).is_none());
    }
}
