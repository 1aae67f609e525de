//! Subscriber search with keyset pagination, through the API
//! (`GET /api/v1/subscribers`) and the admin page: every filter, pages
//! walked to the end with nothing repeated or missed.

use crate::both_backends;
use crate::support::app::{Db, TestApp, urlencode};
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tidings::services::subscribers::{self, AddSubscriberInput};
use tidings::services::{Actor, RequestMeta};

both_backends!(
    api_pages_through_subscribers_by_keyset_with_every_filter,
    the_admin_search_pages_through_results_and_keeps_its_filters,
);

/// What the test knows about each subscriber it made.
struct Known {
    id: String,
    email: String,
    /// list slug → status
    subscriptions: BTreeMap<&'static str, &'static str>,
    created_at: DateTime<Utc>,
}

async fn add(app: &TestApp, email: &str, list: &'static str, status: &'static str) -> String {
    let input = AddSubscriberInput {
        email: Some(email.to_owned()),
        name: Some(format!("Person {email}")),
        lists: vec![list.to_owned()],
        basis: Some("signed the paper petition".to_owned()),
        status: Some(status.to_owned()),
        basis_kind: None,
    };
    let (view, _) = subscribers::add(&app.ctx, &input, Actor::System, &RequestMeta::default()).await.unwrap();
    view.id.to_string()
}

/// `n` subscribers in two batches three days apart, on lists `a` and/or
/// `b` with different statuses per list, plus two addresses that tell a
/// literal `_` from LIKE's wildcard. Returns them and the instant between
/// the batches.
async fn seed(app: &TestApp, n: usize) -> (Vec<Known>, DateTime<Utc>) {
    app.create_list("a", "List A").await;
    app.create_list("b", "List B").await;
    let mut known = Vec::new();
    let mut boundary = app.ctx.clock.now();
    for i in 0..n {
        if i == n / 2 {
            app.ctx.clock.advance(Duration::from_secs(3 * 24 * 3600));
            boundary = app.ctx.clock.now() - chrono::Duration::days(1);
        }
        let email = format!("person{i:03}@example.org");
        let (first, other) = if i % 4 == 0 { ("pending", "confirmed") } else { ("confirmed", "pending") };
        let created_at = app.ctx.clock.now();
        let mut subscriptions = BTreeMap::new();
        let id = match i % 3 {
            0 => add(app, &email, "a", first).await,
            1 => add(app, &email, "b", first).await,
            _ => {
                let id = add(app, &email, "a", first).await;
                add(app, &email, "b", other).await;
                subscriptions.insert("b", other);
                id
            }
        };
        subscriptions.insert(if i % 3 == 1 { "b" } else { "a" }, first);
        known.push(Known { id, email, subscriptions, created_at });
    }
    for email in ["under_score@x.test", "underXscore@x.test"] {
        let created_at = app.ctx.clock.now();
        let id = add(app, email, "a", "confirmed").await;
        known.push(Known {
            id,
            email: email.to_lowercase(),
            subscriptions: BTreeMap::from([("a", "confirmed")]),
            created_at,
        });
    }
    (known, boundary)
}

/// Every id the API returns for `query`, walking pages of `limit`.
async fn walk(app: &TestApp, query: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/subscribers?limit={limit}&{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let page = app.api_get(&path).await;
        let rows = page["subscribers"].as_array().unwrap_or_else(|| panic!("{page}"));
        assert!(rows.len() <= limit);
        for row in rows {
            for key in ["id", "email", "name", "created_at", "subscriptions"] {
                assert!(row.get(key).is_some(), "{key} in {row}");
            }
            ids.push(row["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => {
                assert_eq!(rows.len(), limit, "only full pages have a next");
                cursor = Some(next.to_owned());
            }
            None => {
                assert!(page["next"].is_null());
                return ids;
            }
        }
    }
}

/// The ids of `known` that `keep` accepts, newest first.
fn expected(known: &[Known], keep: impl Fn(&Known) -> bool) -> Vec<String> {
    let mut ids: Vec<String> = known.iter().filter(|k| keep(k)).map(|k| k.id.clone()).collect();
    // uuid v7 in canonical text form sorts like its bytes.
    ids.sort_by(|a, b| b.cmp(a));
    ids
}

fn assert_unique(ids: &[String]) {
    let set: HashSet<&String> = ids.iter().collect();
    assert_eq!(set.len(), ids.len(), "no subscriber appears twice");
}

fn rfc3339(t: DateTime<Utc>) -> String {
    urlencode(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
}

async fn api_pages_through_subscribers_by_keyset_with_every_filter(db: Db) {
    let app = TestApp::spawn(db).await;
    let (known, boundary) = seed(&app, 250).await;
    assert_eq!(known.len(), 252);

    let all = walk(&app, "", 37).await;
    assert_unique(&all);
    assert_eq!(all, expected(&known, |_| true));

    let on = |list: &'static str, status: Option<&'static str>| {
        move |k: &Known| k.subscriptions.get(list).is_some_and(|s| status.is_none_or(|want| *s == want))
    };
    let cases: Vec<(String, Vec<String>)> = vec![
        ("list=a".into(), expected(&known, on("a", None))),
        ("list=b&status=pending".into(), expected(&known, on("b", Some("pending")))),
        ("status=pending".into(), expected(&known, |k| k.subscriptions.values().any(|s| *s == "pending"))),
        ("q=person1".into(), expected(&known, |k| k.email.contains("person1"))),
        ("q=UNDER_score".into(), expected(&known, |k| k.email.contains("under_score"))),
        ("q=%25".into(), Vec::new()),
        (format!("created_from={}", rfc3339(boundary)), expected(&known, |k| k.created_at >= boundary)),
        (format!("created_to={}", rfc3339(boundary)), expected(&known, |k| k.created_at <= boundary)),
        (
            format!("list=a&status=confirmed&q=person&created_from={}", rfc3339(boundary)),
            expected(&known, |k| {
                on("a", Some("confirmed"))(k) && k.email.contains("person") && k.created_at >= boundary
            }),
        ),
    ];
    for (query, want) in cases {
        let got = walk(&app, &query, 17).await;
        assert_unique(&got);
        assert_eq!(got.len(), want.len(), "{query}");
        assert_eq!(got, want, "{query}");
    }
    assert_eq!(walk(&app, "q=under_score", 500).await.len(), 1, "`_` is literal");

    // Subscribers who join mid-walk do not disturb it: pages continue
    // below the cursor, so nothing repeats and nothing is skipped.
    let first = app.api_get("/subscribers?limit=100").await;
    for i in 0..5 {
        add(&app, &format!("latecomer{i}@example.org"), "a", "confirmed").await;
    }
    let next = first["next"].as_str().unwrap();
    let rest = app.api_get(&format!("/subscribers?limit=500&cursor={next}")).await;
    let mut walked: Vec<String> =
        first["subscribers"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    walked.extend(rest["subscribers"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()));
    assert_eq!(walked, all);

    // `?email=` keeps its old meaning, and bad parameters are named.
    let one = app.api_get("/subscribers?email=PERSON007@example.org").await;
    assert_eq!(one["email"], "person007@example.org");
    assert!(one.get("subscribers").is_none());
    let missing = app.api(Method::GET, "/subscribers?email=nobody@example.org").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let bad = app
        .api(Method::GET, "/subscribers?limit=501&status=gone&cursor=zzz&created_from=soon&list=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let body: serde_json::Value = bad.json().await.unwrap();
    for field in ["limit", "status", "cursor", "created_from"] {
        assert!(body["error"]["fields"].get(field).is_some(), "{field} in {body}");
    }
    let unknown_list = app.api(Method::GET, "/subscribers?list=nope").send().await.unwrap();
    assert_eq!(unknown_list.status(), 422);
}

/// The subscriber ids linked from an admin results page, in order.
fn ids_on(page: &str) -> Vec<String> {
    let marker = "<td><a href=\"/admin/subscribers/";
    page.match_indices(marker)
        .map(|(i, _)| page[i + marker.len()..].chars().take_while(|c| *c != '"').collect())
        .collect()
}

/// The `href` of the link with `rel`/text `label`, unescaped.
fn link(page: &str, label: &str) -> Option<String> {
    let end = page.find(&format!(">{label}</a>"))?;
    let start = page[..end].rfind("href=\"")? + "href=\"".len();
    let href: String = page[start..].chars().take_while(|c| *c != '"').collect();
    Some(href.replace("&amp;", "&").replace("&#38;", "&"))
}

async fn the_admin_search_pages_through_results_and_keeps_its_filters(db: Db) {
    let app = TestApp::spawn(db).await;
    let (known, _) = seed(&app, 120).await;
    let editor = app.login_as_editor().await;
    let want = expected(&known, |k| k.subscriptions.get("a") == Some(&"confirmed"));
    assert!(want.len() > 50, "more than one page");

    let mut got = Vec::new();
    let mut path = "/admin/subscribers?list=a&status=confirmed".to_owned();
    let mut pages = 0;
    loop {
        let page = editor.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.body.contains("<option value=\"a\" selected>"), "the filter stays chosen");
        got.extend(ids_on(&page.body));
        pages += 1;
        if pages > 1 {
            assert_eq!(link(&page.body, "First page").as_deref(), Some("/admin/subscribers?list=a&status=confirmed"));
        }
        match link(&page.body, "Next page") {
            Some(next) => {
                assert!(next.contains("list=a") && next.contains("status=confirmed") && next.contains("cursor="));
                path = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, want.len().div_ceil(50));
    assert_eq!(got, want);

    let res = editor.get("/admin/subscribers?created_from=31%2F12%2F2025").await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("use a date (YYYY-MM-DD)"));
    let found = editor.get("/admin/subscribers?q=person007").await;
    assert_eq!(ids_on(&found.body).len(), 1);
    assert!(found.body.contains("person007@example.org"));
}
