//! The public archive: only sent updates on archived lists, newest first in
//! pages of 50, one page per update and an Atom feed of the 20 newest, with
//! no recipient's name, address or personal link anywhere.

use crate::both_backends;
use crate::support::app::{Db, TestApp, header, text_body};
use reqwest::Method;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use tidings::domain::UpdateEvent;

both_backends!(
    the_archive_shows_only_sent_updates_on_archived_lists,
    the_archive_shows_no_token_or_address,
    markdown_html_is_escaped_on_the_page_and_in_the_feed,
    anything_not_archived_is_a_404_in_html_and_json,
    the_index_pages_with_a_before_cursor_and_the_feed_holds_the_20_newest,
);

/// Turns the archive on for `list`.
async fn archive_on(app: &TestApp, list: &str) {
    let res = app.api(Method::PATCH, &format!("/lists/{list}")).json(&json!({"archive": true})).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// Sends an update through the real delivery engine until it is `sent`.
async fn send_and_finish(app: &TestApp, id: &str) {
    let res = app.api(Method::POST, &format!("/updates/{id}/send")).send().await.unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    app.drive_delivery(id, 50).await;
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "sent");
}

/// Marks a draft `sent` through the store's lifecycle moves, with no
/// deliveries (fast set-up for many archived updates; `finished_at` is the
/// clock's now).
async fn mark_sent(app: &TestApp, id: &str) {
    let id = uuid::Uuid::parse_str(id).unwrap();
    let mut tx = app.ctx.store.write().await.unwrap();
    for event in [UpdateEvent::Send, UpdateEvent::Finish] {
        assert!(tx.transition_update(id, event, None, app.ctx.clock.now()).await.unwrap());
    }
    tx.commit().await.unwrap();
}

async fn get_html(app: &TestApp, path: &str) -> (u16, String) {
    let res = app.http.get(app.url(path)).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn get_json(app: &TestApp, path: &str) -> (u16, serde_json::Value) {
    let res = app.http.get(app.url(path)).header("Accept", "application/json").send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// The entry ids of the Atom feed, in order, after checking its outline.
fn feed_entry_ids(xml: &str) -> Vec<String> {
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.contains(r#"<feed xmlns="http://www.w3.org/2005/Atom">"#), "{xml}");
    assert!(xml.trim_end().ends_with("</feed>"), "{xml}");
    assert_eq!(xml.matches("<entry>").count(), xml.matches("</entry>").count());
    xml.split("<entry>")
        .skip(1)
        .map(|e| {
            let start = e.find("<id>").expect("an entry id") + "<id>".len();
            e[start..e.find("</id>").expect("a closed id")].to_owned()
        })
        .collect()
}

async fn the_archive_shows_only_sent_updates_on_archived_lists(db: Db) {
    let app = TestApp::spawn(db).await;
    archive_on(&app, "updates").await;
    let archived_name = app.api_get("/lists/updates").await["name"].as_str().unwrap().to_owned();
    app.create_list("members", "Members only").await;
    app.create_list("old", "Old campaign").await;
    archive_on(&app, "old").await;

    let on_archive = app.create_update("Public: we filed", "Filed.", &["updates"]).await;
    send_and_finish(&app, &on_archive).await;
    let on_both = app.create_update("Public: hearing date", "Soon.", &["updates", "members"]).await;
    send_and_finish(&app, &on_both).await;
    let members_only = app.create_update("Hidden: members meeting", "Private.", &["members"]).await;
    send_and_finish(&app, &members_only).await;
    let on_deleted = app.create_update("Hidden: old campaign", "Over.", &["old"]).await;
    send_and_finish(&app, &on_deleted).await;
    let res = app.api(Method::DELETE, "/lists/old").send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let _draft = app.create_update("Hidden: a draft", "Not yet.", &["updates"]).await;
    let scheduled = app.create_update("Hidden: scheduled", "Later.", &["updates"]).await;
    let at = (app.ctx.clock.now() + chrono::Duration::hours(2)).to_rfc3339();
    let res = app.api(Method::POST, &format!("/updates/{scheduled}/send")).json(&json!({ "at": at })).send().await;
    assert_eq!(res.unwrap().status(), 202);
    let cancelled = app.create_update("Hidden: cancelled", "Never.", &["updates"]).await;
    let res = app.api(Method::POST, &format!("/updates/{cancelled}/send")).json(&json!({ "at": at })).send().await;
    assert_eq!(res.unwrap().status(), 202);
    let res = app.api(Method::POST, &format!("/updates/{cancelled}/cancel")).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());

    let (status, page) = get_json(&app, "/archive").await;
    assert_eq!(status, 200);
    let updates = page["updates"].as_array().unwrap();
    let ids: Vec<&str> = updates.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [on_both.as_str(), on_archive.as_str()], "newest first, nothing else");
    assert_eq!(updates[0]["subject"], "Public: hearing date");
    assert_eq!(updates[0]["lists"], json!([archived_name]), "a list without the archive is not named");
    assert!(updates[0]["sent_at"].is_string());
    assert!(page["next"].is_null());

    let (status, html) = get_html(&app, "/archive").await;
    assert_eq!(status, 200);
    assert!(html.contains("Public: we filed") && html.contains("Public: hearing date"), "{html}");
    assert!(html.contains(&format!("/archive/{on_archive}")));
    assert!(!html.contains("Hidden:") && !html.contains("Members only"), "{html}");
    let (_, feed) = get_html(&app, "/archive/feed.atom").await;
    assert_eq!(feed_entry_ids(&feed), [format!("urn:uuid:{on_both}"), format!("urn:uuid:{on_archive}")]);
    assert!(!feed.contains("Hidden:"));

    let (status, one) = get_json(&app, &format!("/archive/{on_both}")).await;
    assert_eq!(status, 200);
    assert_eq!((one["subject"].as_str(), one["lists"].clone()), (Some("Public: hearing date"), json!([archived_name])));
    assert_eq!(one["body_html"], "<p>Soon.</p>\n");
}

async fn the_archive_shows_no_token_or_address(db: Db) {
    let app = TestApp::spawn(db).await;
    archive_on(&app, "updates").await;
    let people = [("zelda.quintessence@example.org", "Zelda Quintessence"), ("xavier.ombudsman@example.net", "")];
    {
        let now = app.ctx.clock.now();
        let mut tx = app.ctx.store.write().await.unwrap();
        let list = tx.list_by_slug("updates").await.unwrap().unwrap();
        for (email, name) in people {
            let row = tidings::store::SubscriberRow {
                id: uuid::Uuid::now_v7(),
                email: email.to_owned(),
                email_norm: email.to_owned(),
                name: name.to_owned(),
                attributes: "{}".into(),
                created_at: now,
                updated_at: now,
            };
            tx.insert_subscriber(&row, &app.ctx.address_key.fingerprint(&row.email_norm)).await.unwrap();
            tx.set_subscription_status(row.id, list.id, tidings::domain::SubscriptionStatus::Confirmed, now)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let id = app
        .create_update(
            "News for everyone",
            "Dear {{name}},\n\nThank you. [Change what you get](https://example.org/more)",
            &["updates"],
        )
        .await;
    send_and_finish(&app, &id).await;

    // What the copies carried: each person's name and personal links.
    let mails = app.smtp.messages();
    assert_eq!(mails.len(), 2);
    let mut secrets: Vec<String> = vec!["Zelda".into(), "Quintessence".into(), "zelda".into(), "xavier".into()];
    for mail in &mails {
        let unsubscribe = header(mail, "List-Unsubscribe").expect("a List-Unsubscribe header");
        let start = unsubscribe.find("/unsubscribe/").expect("an unsubscribe link") + "/unsubscribe/".len();
        let token: String =
            unsubscribe[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
        assert!(token.len() > 16, "{unsubscribe}");
        secrets.push(token);
        secrets.push(mail.to[0].clone());
    }
    assert!(mails.iter().any(|m| text_body(m).contains("Dear Zelda Quintessence,")), "the mail itself was personal");

    let pages = [
        get_html(&app, "/archive").await.1,
        get_html(&app, &format!("/archive/{id}")).await.1,
        get_html(&app, "/archive/feed.atom").await.1,
        get_json(&app, "/archive").await.1.to_string(),
        get_json(&app, &format!("/archive/{id}")).await.1.to_string(),
    ];
    for page in &pages {
        for secret in &secrets {
            assert!(!page.contains(secret.as_str()), "{secret:?} leaked into {page}");
        }
        for link in ["/unsubscribe/", "/preferences/", "@example."] {
            assert!(!page.contains(link), "{link} in {page}");
        }
    }
    let (_, one) = get_json(&app, &format!("/archive/{id}")).await;
    assert!(one["body_html"].as_str().unwrap().contains("Dear friend,"), "{one}");
    assert!(pages[1].contains("Dear friend,"));
    assert!(pages[1].contains(r#"href="https://example.org/more""#), "the organiser's own links stay");
}

async fn markdown_html_is_escaped_on_the_page_and_in_the_feed(db: Db) {
    let app = TestApp::spawn(db).await;
    archive_on(&app, "updates").await;
    let id = app
        .create_update(
            "Tom & Jerry <b>win</b>",
            "<script>alert('x')</script>\n\n**bold** and <img src=x onerror=alert(1)> [bad](javascript:alert(1))",
            &["updates"],
        )
        .await;
    send_and_finish(&app, &id).await;

    let (status, page) = get_html(&app, &format!("/archive/{id}")).await;
    assert_eq!(status, 200);
    assert!(!page.contains("<script>") && !page.contains("<img") && !page.contains("javascript:"), "{page}");
    assert!(page.contains("&lt;script&gt;alert"), "raw HTML shows as text: {page}");
    assert!(page.contains("<strong>bold</strong>"), "markdown still renders");
    assert!(!page.contains("<b>win</b>") && page.contains("Tom &#38; Jerry &#60;b&#62;win"), "{page}");

    let res = app.http.get(app.url("/archive/feed.atom")).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/atom+xml; charset=utf-8");
    let feed = res.text().await.unwrap();
    assert_eq!(feed_entry_ids(&feed), [format!("urn:uuid:{id}")]);
    assert!(!feed.contains("<script") && !feed.contains("<b>") && !feed.contains("<strong>"), "{feed}");
    assert!(!feed.contains("<img") && !feed.contains("javascript:"), "{feed}");
    assert!(feed.contains("Tom &#38; Jerry &#60;b&#62;win"), "{feed}");
    assert!(feed.contains(r#"<content type="html">&#38;lt;script&#38;gt;"#), "content is escaped HTML: {feed}");
    assert!(feed.contains("&#60;p&#62;&#60;strong&#62;bold&#60;/strong&#62;"), "{feed}");
    assert!(feed.contains(&format!(r#"href="http://tidings.test/archive/{id}""#)), "absolute links: {feed}");
    assert!(feed.contains("<id>http://tidings.test/archive</id>"), "{feed}");
    let updated = feed.split("<updated>").nth(1).and_then(|s| s.split("</updated>").next()).unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(updated).is_ok(), "{updated}");
}

async fn anything_not_archived_is_a_404_in_html_and_json(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("members", "Members only").await;
    archive_on(&app, "updates").await;
    let draft = app.create_update("A draft", "Not yet.", &["updates"]).await;
    let members_only = app.create_update("Members only news", "Private.", &["members"]).await;
    send_and_finish(&app, &members_only).await;
    let unknown = uuid::Uuid::now_v7().to_string();

    for id in [draft.as_str(), members_only.as_str(), unknown.as_str(), "not-a-uuid", "updates"] {
        let (status, html) = get_html(&app, &format!("/archive/{id}")).await;
        assert_eq!(status, 404, "/archive/{id}");
        assert!(html.contains("<html"), "an HTML error page for a browser");
        assert!(!html.contains("Not yet.") && !html.contains("Private."));
        let (status, body) = get_json(&app, &format!("/archive/{id}")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "/archive/{id}");
    }
    let (status, _) = get_json(&app, &format!("/archive?before={unknown}")).await;
    assert_eq!(status, 404, "a cursor that is not in the archive");
    let (status, body) = get_json(&app, "/archive?before=yesterday").await;
    assert_eq!(status, 422);
    assert!(body["error"]["fields"]["before"].is_string(), "{body}");
}

async fn the_index_pages_with_a_before_cursor_and_the_feed_holds_the_20_newest(db: Db) {
    let app = TestApp::spawn(db).await;
    archive_on(&app, "updates").await;
    app.ctx.clock.freeze();
    // 53 archived updates; pairs share a finish time, so ties need the id.
    let mut sent = Vec::new();
    for i in 0..53 {
        if i % 2 == 0 {
            app.ctx.clock.advance(Duration::from_secs(60));
        }
        let id = app.create_update(&format!("Update number {i}"), "Body.", &["updates"]).await;
        mark_sent(&app, &id).await;
        sent.push(id);
    }

    let (status, first) = get_json(&app, "/archive").await;
    assert_eq!(status, 200);
    let first_ids: Vec<String> =
        first["updates"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(first_ids.len(), 50);
    assert_eq!(first_ids[0], sent[52], "the newest first");
    let next = first["next"].as_str().expect("a next page");
    let last = first_ids.last().unwrap();
    assert_eq!(next, format!("http://tidings.test/archive?before={last}"));

    let (status, second) = get_json(&app, &format!("/archive?before={last}")).await;
    assert_eq!(status, 200);
    let second_ids: Vec<String> =
        second["updates"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(second_ids.len(), 3);
    assert!(second["next"].is_null());
    let all: Vec<&String> = first_ids.iter().chain(&second_ids).collect();
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 53, "every update once, across pages");
    assert!(second_ids.contains(&sent[0]) && second_ids.contains(&sent[1]), "the oldest come last");
    let times: Vec<chrono::DateTime<chrono::Utc>> = first["updates"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["updates"].as_array().unwrap())
        .map(|u| u["sent_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first across pages");

    let (_, html) = get_html(&app, "/archive").await;
    assert!(html.contains(&format!(r#"href="/archive?before={last}""#)), "an older-updates link");
    assert_eq!(html.matches("Update number").count(), 50);
    let (_, html) = get_html(&app, &format!("/archive?before={last}")).await;
    assert_eq!(html.matches("Update number").count(), 3);
    assert!(!html.contains("Older updates"));

    let (_, feed) = get_html(&app, "/archive/feed.atom").await;
    let entries = feed_entry_ids(&feed);
    assert_eq!(entries.len(), 20);
    assert_eq!(entries, first_ids[..20].iter().map(|id| format!("urn:uuid:{id}")).collect::<Vec<_>>());
}
