//! The subscribe form on the campaign's own site: the admin's copy-paste
//! snippet (and that it really subscribes), CORS for the JSON subscribe
//! endpoint limited to the configured origins, and the link back from the
//! "check your inbox" page that can never be an open redirect.

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token};

both_backends!(
    cors_answers_only_the_configured_origins_and_only_on_subscribe,
    without_configured_origins_no_route_sends_cors_headers,
    the_check_inbox_page_links_back_only_to_configured_sites,
    the_admin_snippet_is_a_working_form_with_the_consent_wording,
);

const SITE: &str = "https://campaign.example";

fn acao(res: &reqwest::Response) -> Option<String> {
    res.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
}

async fn preflight(app: &TestApp, path: &str, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap()
}

async fn json_subscribe(app: &TestApp, email: &str, origin: &str) -> reqwest::Response {
    app.http
        .post(app.url("/subscribe"))
        .header("Origin", origin)
        .json(&serde_json::json!({ "email": email, "lists": ["updates"], "consent": true }))
        .send()
        .await
        .unwrap()
}

async fn cors_answers_only_the_configured_origins_and_only_on_subscribe(db: Db) {
    let app =
        TestApp::spawn_with(db, &[("TIDINGS_CORS_ORIGINS", "https://campaign.example, http://localhost:3000")]).await;

    let res = preflight(&app, "/subscribe", SITE).await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(acao(&res).as_deref(), Some(SITE));
    let h = res.headers();
    assert_eq!(h["access-control-allow-methods"], "POST");
    let allowed_headers = h["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed_headers.contains("content-type"), "{allowed_headers}");
    assert!(h.get("access-control-allow-credentials").is_none(), "no credentials");
    assert!(h["vary"].to_str().unwrap().to_ascii_lowercase().contains("origin"));
    assert_eq!(
        acao(&preflight(&app, "/subscribe", "http://localhost:3000").await).as_deref(),
        Some("http://localhost:3000")
    );

    // Other origins get no permission, however close their name.
    for other in ["https://evil.example", "https://campaign.example.evil.example", "http://campaign.example", "null"] {
        assert_eq!(acao(&preflight(&app, "/subscribe", other).await), None, "{other}");
    }

    // The real request: answered with the origin, and it did subscribe.
    let res = json_subscribe(&app, "web@example.org", SITE).await;
    assert_eq!(res.status(), 202);
    assert_eq!(acao(&res).as_deref(), Some(SITE));
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["status"], "pending");
    assert_eq!(app.status("web@example.org", "updates").await, "pending");
    let res = json_subscribe(&app, "other@example.org", "https://evil.example").await;
    assert_eq!(acao(&res), None, "the browser will not let another site read the answer");

    // No other route opens up, whatever the origin.
    let token = app.unsubscribe_token("web@example.org", "updates").await;
    for path in ["/", "/privacy", &format!("/unsubscribe/{token}"), "/confirm/abc", "/api/v1/lists", "/admin/login"] {
        let res = app.http.get(app.url(path)).header("Origin", SITE).send().await.unwrap();
        assert_eq!(acao(&res), None, "GET {path}");
        let res = preflight(&app, path, SITE).await;
        assert_eq!(acao(&res), None, "OPTIONS {path}");
        assert!(res.headers().get("access-control-allow-methods").is_none(), "OPTIONS {path}");
    }
    let res = app.http.post(app.url(&format!("/unsubscribe/{token}"))).header("Origin", SITE).send().await.unwrap();
    assert_eq!(acao(&res), None);
}

async fn without_configured_origins_no_route_sends_cors_headers(db: Db) {
    let app = TestApp::spawn(db).await;
    let res = preflight(&app, "/subscribe", SITE).await;
    assert_eq!(res.status(), 405, "no preflight is answered");
    assert_eq!(acao(&res), None);
    let res = json_subscribe(&app, "plain@example.org", SITE).await;
    assert_eq!(res.status(), 202, "the endpoint works; only browsers on other sites cannot read it");
    assert_eq!(acao(&res), None);
    assert!(res.headers().get("access-control-allow-methods").is_none());
}

/// The subscribe answer page for a form carrying `return`.
async fn answer_with_return(app: &TestApp, email: &str, back: &str) -> String {
    let res = app
        .post_form("/subscribe", &[("email", email), ("lists", "updates"), ("consent", "updates"), ("return", back)])
        .await;
    assert_eq!(res.status(), 200, "{back}");
    res.text().await.unwrap()
}

async fn the_check_inbox_page_links_back_only_to_configured_sites(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_CORS_ORIGINS", SITE), ("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "0")]).await;
    let page = answer_with_return(&app, "back@example.org", "https://campaign.example/thanks?from=form").await;
    assert!(page.contains("Check your inbox"), "{page}");
    assert!(
        page.contains(
            r#"<a class="back" href="https://campaign.example/thanks?from=form">Back to campaign.example</a>"#
        ),
        "{page}"
    );

    for (i, refused) in [
        "https://evil.example/",
        "//evil.example/",
        "/admin",
        "https://campaign.example.evil.example/",
        "https://campaign.example@evil.example/",
        "http://campaign.example/",
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "https://campaign.example:444/",
    ]
    .into_iter()
    .enumerate()
    {
        let page = answer_with_return(&app, &format!("r{i}@example.org"), refused).await;
        assert!(page.contains("Check your inbox"), "{refused}");
        assert!(!page.contains("class=\"back\"") && !page.contains("evil.example"), "{refused}: {page}");
        assert!(!page.contains("javascript:") && !page.contains("data:text"), "{refused}: {page}");
    }
    // Same answer, and same status, with or without a link: nothing reveals
    // whether the address was known.
    let known = answer_with_return(&app, "back@example.org", "https://campaign.example/thanks?from=form").await;
    assert!(known.contains("Back to campaign.example"));

    // The hosted form carries a checked `return` through, and through errors.
    let form = app.http.get(app.url("/subscribe?return=https%3A%2F%2Fcampaign.example%2Fdone")).send().await.unwrap();
    let form = form.text().await.unwrap();
    assert!(form.contains(r#"<input type="hidden" name="return" value="https://campaign.example/done">"#), "{form}");
    let form = app.http.get(app.url("/subscribe?return=https%3A%2F%2Fevil.example%2F")).send().await.unwrap();
    assert!(!form.text().await.unwrap().contains("name=\"return\""));
    let again = app
        .post_form(
            "/subscribe",
            &[("email", "no-consent@example.org"), ("lists", "updates"), ("return", "https://campaign.example/x")],
        )
        .await;
    assert_eq!(again.status(), 422);
    assert!(again.text().await.unwrap().contains(r#"name="return" value="https://campaign.example/x""#));

    // Without configured sites, no link at all.
    let plain = TestApp::spawn(Db::Sqlite).await;
    let page = answer_with_return(&plain, "plain@example.org", "https://campaign.example/").await;
    assert!(!page.contains("class=\"back\""), "{page}");
}

/// `raw` with askama's HTML escapes undone.
fn unescape(raw: &str) -> String {
    raw.replace("&#34;", "\"").replace("&#39;", "'").replace("&#60;", "<").replace("&#62;", ">").replace("&#38;", "&")
}

/// Every `name="…" value="…"` pair of the snippet's hidden inputs and its checkbox.
fn snippet_fields(snippet: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for input in snippet.split("<input").skip(1) {
        let tag = input.split('>').next().unwrap();
        let attr = |name: &str| {
            let marker = format!("{name}=\"");
            tag.find(&marker).map(|i| tag[i + marker.len()..].split('"').next().unwrap().to_owned())
        };
        let kind = attr("type").unwrap_or_default();
        if matches!(kind.as_str(), "hidden" | "checkbox")
            && let (Some(name), Some(value)) = (attr("name"), attr("value"))
        {
            fields.push((name, value));
        }
    }
    fields
}

async fn the_admin_snippet_is_a_working_form_with_the_consent_wording(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_BASE_URL", "self"), ("TIDINGS_CORS_ORIGINS", SITE)]).await;
    app.create_list("hearings", "Hearing <dates>").await;
    let wording = "Email me \"hearing\" dates & nothing else.";
    let res = app
        .api(reqwest::Method::POST, "/consent-statements")
        .json(&serde_json::json!({ "list": "hearings", "text": wording, "acknowledge_warnings": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = app
        .api(reqwest::Method::POST, "/lists")
        .json(&serde_json::json!({ "slug": "internal", "name": "Internal", "public": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let admin = app.login_as_admin().await;
    let page = admin.get("/admin/lists").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Put the subscribe form on your site"), "{}", page.body);
    assert!(!page.body.contains("id=\"embed-internal\""), "private lists have no public form");
    let start = page.body.find("<textarea id=\"embed-hearings\"").expect("a snippet for the list");
    let textarea = &page.body[start..];
    let raw = &textarea[textarea.find('>').unwrap() + 1..textarea.find("</textarea>").unwrap()];
    assert!(!raw.contains('<'), "the snippet is shown as text, not as markup");
    let snippet = unescape(raw);
    assert!(snippet.starts_with(&format!(r#"<form method="post" action="{}/subscribe""#, app.base)), "{snippet}");
    assert!(snippet.contains(&format!("{}/privacy", app.base)), "{snippet}");
    assert!(snippet.contains("Email me &#34;hearing&#34; dates &#38; nothing else."), "escaped inside: {snippet}");
    assert!(snippet.contains("Subscribe to Hearing &#60;dates&#62;"), "{snippet}");
    assert!(snippet.contains(r#"name="website""#), "the honeypot: {snippet}");
    assert!(!snippet.contains("<script"), "{snippet}");

    // Submit it as a browser on the campaign's site would.
    let mut fields = snippet_fields(&snippet);
    assert!(fields.contains(&("lists".into(), "hearings".into())), "{fields:?}");
    assert!(fields.contains(&("consent".into(), "hearings".into())), "{fields:?}");
    assert!(fields.contains(&("return".into(), format!("{SITE}/"))), "{fields:?}");
    fields.push(("email".into(), "embedded@example.org".into()));
    fields.push(("website".into(), String::new()));
    let res = app.http.post(app.url("/subscribe")).header("Origin", SITE).form(&fields).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains("Back to campaign.example"), "{body}");
    app.drain_outbox().await;
    let mail = &app.smtp.messages_to("embedded@example.org")[0];
    assert!(!confirm_token(mail).is_empty());
    let ledger = app.ledger("embedded@example.org").await;
    assert_eq!(ledger[0]["kind"], "requested");
    assert_eq!(ledger[0]["statement"]["text"], wording, "consent recorded with the wording the snippet showed");
}
