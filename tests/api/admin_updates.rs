//! The organiser writes, previews, tests and sends an update in the admin
//! UI; an editor may do all but send. A send takes two steps: the send
//! form answers a review of the audience, and only the review's own form
//! sends.

use crate::admin::{AdminClient, Answer};
use crate::both_backends;
use crate::support::app::{Db, TestApp, header};
use reqwest::Method;

both_backends!(
    an_admin_writes_previews_tests_sends_and_watches_an_update,
    a_send_time_is_read_in_the_groups_time_zone,
    an_editor_drafts_and_tests_but_cannot_send,
    the_first_send_post_only_reviews_the_audience_the_snapshot_takes,
    a_review_is_refused_once_the_update_changed,
    a_send_form_with_problems_keeps_every_choice_and_nothing_is_chosen_for_you,
    the_editor_previews_unsaved_text_and_the_preview_is_not_audited,
);

/// Step one: the update page's send form with `pairs`; the review page.
async fn review(client: &AdminClient, id: &str, pairs: &[(&str, &str)]) -> Answer {
    client.submit(&format!("/admin/updates/{id}"), &format!("/admin/updates/{id}/send"), pairs).await
}

/// The hidden fields of the review page's form (CSRF token included).
fn reviewed_fields(page: &Answer) -> Vec<(String, String)> {
    let start = page.body.find("/send/confirm").unwrap_or_else(|| panic!("no confirm form: {}", page.body));
    let form = &page.body[start..page.body[start..].find("</form>").map_or(page.body.len(), |e| start + e)];
    let mut fields = Vec::new();
    for input in form.split("<input type=\"hidden\" ").skip(1) {
        let attr = |name: &str| {
            let marker = format!("{name}=\"");
            let at = input.find(&marker).expect("attribute") + marker.len();
            input[at..].chars().take_while(|c| *c != '"').collect::<String>()
        };
        fields.push((attr("name"), attr("value")));
    }
    fields
}

/// Step two: posts the review page's own form, as reviewed.
async fn confirm(client: &AdminClient, id: &str, page: &Answer) -> Answer {
    let fields = reviewed_fields(page);
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    client.post(&format!("/admin/updates/{id}/send/confirm"), &pairs).await
}

/// The text of the element with `id` (its first text run).
fn text_of<'a>(body: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\"");
    let at = body.find(&marker).unwrap_or_else(|| panic!("no #{id} in {body}")) + marker.len();
    let open = at + body[at..].find('>').expect("the tag ends") + 1;
    body[open..].split('<').next().unwrap_or("")
}

/// Drafts an update through the form; returns its id.
async fn draft(client: &crate::admin::AdminClient, subject: &str) -> String {
    let res = client
        .submit(
            "/admin/updates/new",
            "/admin/updates",
            &[
                ("subject", subject),
                ("body_markdown", "Dear {{name}},\n\nThe hearing **moved**."),
                ("lists", "updates"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let location = res.location().unwrap().to_owned();
    location.trim_start_matches("/admin/updates/").split('?').next().unwrap().to_owned()
}

async fn an_admin_writes_previews_tests_sends_and_watches_an_update(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("a", 12, "updates").await;
    let admin = app.login_as_admin().await;
    // A bad form comes back with the problems and what was typed.
    let bad = admin.submit("/admin/updates/new", "/admin/updates", &[("subject", ""), ("body_markdown", "kept")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("a subject is required") && bad.body.contains("kept"));

    let id = draft(&admin, "The hearing <moved>").await;
    let page = admin.get(&format!("/admin/updates/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("draft") && page.body.contains("The hearing &#60;moved&#62;"));
    assert!(page.body.contains("Dear Sam Supporter,"), "the plain-text preview: {}", page.body);

    let preview = admin.get(&format!("/admin/updates/{id}/preview")).await;
    assert_eq!(preview.status, 200);
    assert!(preview.body.contains("<strong") && preview.body.contains("Sam Supporter"));
    let csp = preview.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("sandbox") && !csp.contains("script"), "{csp}");

    let tested = admin
        .submit(
            &format!("/admin/updates/{id}"),
            &format!("/admin/updates/{id}/test"),
            &[("emails", "me@example.org, you@example.org")],
        )
        .await;
    assert_eq!(tested.status, 303);
    app.drain_outbox().await;
    assert_eq!(
        header(&app.smtp.messages_to("me@example.org")[0], "Subject").as_deref(),
        Some("[TEST] The hearing <moved>")
    );
    assert_eq!(app.smtp.messages_to("you@example.org").len(), 1);

    let checked = review(&admin, &id, &[("when", "now")]).await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    assert_eq!(text_of(&checked.body, "audience-total"), "12");
    let sent = confirm(&admin, &id, &checked).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let page = admin.get(&format!("/admin/updates/{id}")).await;
    assert!(!page.body.contains("http-equiv=\"refresh\""), "no whole-page refresh");
    assert!(page.body.contains(&format!("data-live=\"/admin/updates/{id}/progress\"")), "live progress while sending");
    assert!(page.body.contains("reload to see the latest figures"), "a fallback without script");
    assert!(page.body.contains("<td class=\"num\" id=\"stat-total\">12</td>"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"), "{csp}");
    let progress = admin.get(&format!("/admin/updates/{id}/progress")).await;
    assert_eq!(progress.status, 200);
    let figures: serde_json::Value = serde_json::from_str(&progress.body).unwrap();
    assert_eq!((figures["status"].as_str(), figures["total"].as_i64()), (Some("sending"), Some(12)), "{figures}");
    app.drive_delivery(&id, 10).await;
    let page = admin.get(&format!("/admin/updates/{id}")).await;
    assert!(page.body.contains("<strong id=\"status\">sent</strong>"));
    assert!(page.body.contains("<td class=\"num\" id=\"stat-sent\">12</td>"));
    assert!(!page.body.contains("data-live="), "nothing to follow once sent");
    let progress: serde_json::Value =
        serde_json::from_str(&admin.get(&format!("/admin/updates/{id}/progress")).await.body).unwrap();
    assert_eq!((progress["sent"].as_i64(), progress["percent"].as_i64()), (Some(12), Some(100)), "{progress}");
    let dashboard = admin.get("/admin").await;
    assert!(dashboard.body.contains("12 of 12 sent"), "{}", dashboard.body);

    // Pause/resume/cancel only make sense while sending: a sent update refuses.
    let late = admin.submit(&format!("/admin/updates/{id}"), &format!("/admin/updates/{id}/cancel"), &[]).await;
    assert_eq!(late.status, 409);
}

async fn a_send_time_is_read_in_the_groups_time_zone(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_TIMEZONE", "America/New_York")]).await;
    app.confirmed_subscribers("w", 2, "updates").await;
    let admin = app.login_as_admin().await;
    let id = draft(&admin, "Winter hearing").await;
    // Typed as a person types it into the date and time fields.
    let checked = review(&admin, &id, &[("when", "later"), ("date", "2030-01-15"), ("time", "09:00")]).await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    assert_eq!(text_of(&checked.body, "review-when").trim(), "Tuesday 15 January 2030 at 09:00 EST");
    assert!(checked.body.contains("Schedule for Tuesday 15 January 2030 at 09:00 EST"), "{}", checked.body);
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft", "a review schedules nothing");
    let res = confirm(&admin, &id, &checked).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let u = app.api_get(&format!("/updates/{id}")).await;
    assert_eq!(u["status"], "scheduled");
    assert_eq!(u["send_at"], "2030-01-15T14:00:00Z", "09:00 in New York is 14:00 UTC in January");
    let page = admin.get(&format!("/admin/updates/{id}")).await;
    assert_eq!(text_of(&page.body, "scheduled-for"), "2030-01-15 09:00 EST", "shown in the group's zone");
    // The form holds the time, to be changed; and a way out of the schedule.
    assert!(page.body.contains("value=\"2030-01-15\"") && page.body.contains("value=\"09:00\""), "{}", page.body);
    assert!(page.body.contains(&format!("action=\"/admin/updates/{id}/unschedule\"")));

    // Moved to a later time: reviewed and confirmed again.
    let moved = review(&admin, &id, &[("when", "later"), ("date", "2030-07-01"), ("time", "18:30")]).await;
    assert_eq!(text_of(&moved.body, "review-when").trim(), "Monday 1 July 2030 at 18:30 EDT");
    assert_eq!(confirm(&admin, &id, &moved).await.status, 303);
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["send_at"], "2030-07-01T22:30:00Z");

    // A time gone by is refused with a clear message, the typed values kept.
    let past = review(&admin, &id, &[("when", "later"), ("date", "2001-01-01"), ("time", "09:00")]).await;
    assert_eq!(past.status, 422);
    assert!(past.body.contains("that time has passed"), "{}", past.body);
    assert!(past.body.contains("value=\"2001-01-01\"") && past.body.contains("value=\"09:00\""));
    assert!(past.body.contains("id=\"when-later\" name=\"when\" value=\"later\" checked"), "{}", past.body);
    // A review that has gone stale in time is refused at confirmation too.
    let soon = (app.ctx.clock.now() + chrono::Duration::minutes(5)).with_timezone(&chrono_tz::America::New_York);
    let (date, time) = (soon.format("%Y-%m-%d").to_string(), soon.format("%H:%M").to_string());
    let checked = review(&admin, &id, &[("when", "later"), ("date", &date), ("time", &time)]).await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    app.ctx.clock.advance(std::time::Duration::from_secs(10 * 60));
    let late = confirm(&admin, &id, &checked).await;
    assert_eq!(late.status, 422, "{}", late.body);
    assert!(late.body.contains("that time has passed"));
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["send_at"], "2030-07-01T22:30:00Z", "unchanged");

    // Unscheduled: a draft again, with no time.
    let res = admin.submit(&format!("/admin/updates/{id}"), &format!("/admin/updates/{id}/unschedule"), &[]).await;
    assert_eq!(res.status, 303);
    let u = app.api_get(&format!("/updates/{id}")).await;
    assert_eq!((u["status"].as_str(), u["send_at"].is_null()), (Some("draft"), true), "{u}");
}

async fn an_editor_drafts_and_tests_but_cannot_send(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("e", 3, "updates").await;
    let editor = app.login_as_editor().await;
    let id = draft(&editor, "Editor's draft").await;
    let page = editor.get(&format!("/admin/updates/{id}")).await;
    assert!(!page.body.contains("Send to the lists"), "no send button for editors");
    let tested = editor
        .submit(&format!("/admin/updates/{id}"), &format!("/admin/updates/{id}/test"), &[("emails", "ed@example.org")])
        .await;
    assert_eq!(tested.status, 303);
    let refused =
        editor.submit(&format!("/admin/updates/{id}"), &format!("/admin/updates/{id}/send"), &[("when", "now")]).await;
    assert_eq!(refused.status, 403);
    let page = editor.get(&format!("/admin/updates/{id}")).await;
    let refused = editor
        .post(&format!("/admin/updates/{id}/send/confirm"), &[("csrf", &page.csrf()), ("when", "now"), ("review", "x")])
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft");
    app.drive_delivery(&id, 3).await;
    assert!(app.smtp.messages_to("e0@example.org").is_empty());
}

async fn the_first_send_post_only_reviews_the_audience_the_snapshot_takes(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_FROM", "Save Our Hospital <news@hospital.test>")]).await;
    app.create_list("hearings", "Hearing dates").await;
    app.confirmed_subscribers("a", 12, "updates").await;
    app.confirmed_subscribers("h", 2, "hearings").await;
    // a0..a2 are on both lists: one copy each.
    let mut both = Vec::new();
    for i in 0..3 {
        let id: uuid::Uuid =
            app.subscriber(&format!("a{i}@example.org")).await["id"].as_str().unwrap().parse().unwrap();
        both.push(id);
    }
    let mut tx = app.ctx.store.write().await.unwrap();
    let hearings = tx.list_by_slug("hearings").await.unwrap().unwrap();
    for id in both {
        tx.set_subscription_status(
            id,
            hearings.id,
            tidings::domain::SubscriptionStatus::Confirmed,
            app.ctx.clock.now(),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    // a1 leaves "updates" (still on "hearings"); a4 is erased (suppressed);
    // someone who has not confirmed is not counted.
    let token = app.unsubscribe_token("a1@example.org", "updates").await;
    app.post_form(&format!("/unsubscribe/{token}"), &[("List-Unsubscribe", "One-Click")]).await;
    let a4 = app.subscriber("a4@example.org").await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.api(Method::POST, &format!("/subscribers/{a4}/erase")).send().await.unwrap().status(), 200);
    app.subscribe("pending@example.org", "updates").await;

    let admin = app.login_as_admin().await;
    let id = app.create_update("Hearing moved", "Dear {{name}},\n\nIt moved.", &["updates", "hearings"]).await;
    let checked = review(&admin, &id, &[("when", "now")]).await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    // updates: 12 - a1 - a4 = 10; hearings: a0, a1, a2, h0, h1 = 5; once
    // each: the 10, plus a1, h0 and h1.
    assert_eq!(text_of(&checked.body, "audience-updates"), "10");
    assert_eq!(text_of(&checked.body, "audience-hearings"), "5");
    assert_eq!(text_of(&checked.body, "audience-total"), "13");
    assert_eq!(text_of(&checked.body, "review-subject"), "Hearing moved");
    assert_eq!(text_of(&checked.body, "review-from"), "Save Our Hospital &#60;news@hospital.test&#62;");
    assert!(text_of(&checked.body, "review-when").starts_with("Now"), "{}", checked.body);
    assert!(checked.body.contains("Send now to 13 people"));
    // The review wrote nothing: still a draft, with no deliveries.
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft");
    assert_eq!(app.stats(&id).await["total"], 0);
    app.drive_delivery(&id, 3).await;
    assert_eq!(app.smtp.message_count(), 0, "nothing sent by the review");

    let sent = confirm(&admin, &id, &checked).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(sent.location(), Some(format!("/admin/updates/{id}?notice=sending").as_str()));
    assert_eq!(app.stats(&id).await["total"], 13, "the snapshot took what the review counted");
    app.drive_delivery(&id, 10).await;
    assert_eq!(app.smtp.messages_to("a1@example.org").len(), 1);
    assert_eq!(app.smtp.messages_to("a0@example.org").len(), 1, "one copy for two lists");
    assert!(
        app.smtp.messages_to("a4@example.org").is_empty() && app.smtp.messages_to("pending@example.org").is_empty()
    );
    // A sent update has nothing to review.
    let again = review(&admin, &id, &[("when", "now")]).await;
    assert_eq!(again.status, 409, "{}", again.body);
}

async fn a_review_is_refused_once_the_update_changed(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("c", 3, "updates").await;
    let admin = app.login_as_admin().await;
    let id = draft(&admin, "First words").await;
    let checked = review(&admin, &id, &[("when", "now")]).await;
    assert_eq!(checked.status, 200);
    // Someone changes the subject in another tab after the review.
    let saved = admin
        .submit(
            &format!("/admin/updates/{id}/edit"),
            &format!("/admin/updates/{id}"),
            &[("subject", "Second thoughts"), ("body_markdown", "Changed."), ("lists", "updates")],
        )
        .await;
    assert_eq!(saved.status, 303);
    let stale = confirm(&admin, &id, &checked).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.body.contains("the update changed since you checked it"), "{}", stale.body);
    assert_eq!(text_of(&stale.body, "review-subject"), "Second thoughts", "the review shows it as it stands");
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft", "nothing sent");
    // A forged or missing review is refused the same way.
    let page = admin.get(&format!("/admin/updates/{id}")).await;
    let forged = admin
        .post(&format!("/admin/updates/{id}/send/confirm"), &[("csrf", &page.csrf()), ("when", "now"), ("review", "")])
        .await;
    assert_eq!(forged.status, 409);
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft");
    // The review shown again is current: confirming it sends.
    let sent = confirm(&admin, &id, &stale).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "sending");
}

async fn a_send_form_with_problems_keeps_every_choice_and_nothing_is_chosen_for_you(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_TIMEZONE", "Europe/London")]).await;
    let admin = app.login_as_admin().await;
    let id = draft(&admin, "Choices").await;
    let page = admin.get(&format!("/admin/updates/{id}")).await;
    assert!(page.body.contains("type=\"date\" id=\"date\"") && page.body.contains("type=\"time\" id=\"time\""));
    assert!(!page.body.contains("value=\"now\" checked") && !page.body.contains("value=\"later\" checked"));
    // No choice made: refused, never taken as "now".
    let none = review(&admin, &id, &[]).await;
    assert_eq!(none.status, 422);
    assert!(none.body.contains("choose when to send"), "{}", none.body);
    // "At" with half a time: every choice kept, the missing one named.
    let half =
        review(&admin, &id, &[("when", "later"), ("date", "2031-03-02"), ("override_authentication", "on")]).await;
    assert_eq!(half.status, 422);
    assert!(half.body.contains("give the time to send at"), "{}", half.body);
    assert!(half.body.contains("value=\"later\" checked") && half.body.contains("value=\"2031-03-02\""));
    assert!(half.body.contains("value=\"on\" checked"), "the override box stays ticked");
    assert!(!half.body.contains("value=\"now\" checked"));
    // An hour the clocks skip (01:30 on 30 March 2031 in London).
    let gap = review(&admin, &id, &[("when", "later"), ("date", "2031-03-30"), ("time", "01:30")]).await;
    assert_eq!(gap.status, 422);
    assert!(gap.body.contains("the clocks go forward"), "{}", gap.body);
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft");
}

async fn the_editor_previews_unsaved_text_and_the_preview_is_not_audited(db: Db) {
    let app = TestApp::spawn(db).await;
    let editor = app.login_as_editor().await;
    let form = admin_form(&editor).await;
    let pairs = [
        ("csrf", form.as_str()),
        ("subject", "Not saved"),
        ("body_markdown", "## Monday\n\nSee **you**,\nSam\n\n[The order](https://court.test/order)"),
        ("lists", "updates"),
    ];
    // Without script: the form again, as typed, with the email beside it.
    let page = editor.post("/admin/updates/render", &pairs).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("value=\"Not saved\"")
            && page.body.contains("id=\"list-updates\" name=\"lists\" value=\"updates\" checked")
    );
    assert!(page.body.contains("srcdoc=\""), "the HTML part in a frame");
    let text = text_of(&page.body, "preview-text").to_owned();
    assert!(
        text.contains("Monday\n------\n") && text.contains("See you,\nSam") && text.contains("The order [1]"),
        "{text}"
    );
    assert!(text.contains("[1] https://court.test/order") && !text.contains("**") && !text.contains("##"), "{text}");
    // With script: the same as JSON.
    let json = editor.post_with_header("/admin/updates/render", ("accept", "application/json"), &pairs).await;
    assert_eq!(json.status, 200, "{}", json.body);
    let preview: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert!(preview["html"].as_str().unwrap().contains("<strong"), "{preview}");
    assert!(preview["text"].as_str().unwrap().contains("See you,\nSam"), "{preview}");
    // Nothing saved, and nothing for the audit log.
    assert_eq!(app.api_get("/updates").await.as_array().map(Vec::len), Some(0));
    let audit = app.api_get("/audit-log").await;
    assert!(!audit.to_string().contains("/admin/updates/render"), "{audit}");
}

/// The CSRF token of the editor's new-update form.
async fn admin_form(client: &AdminClient) -> String {
    client.get("/admin/updates/new").await.csrf()
}
