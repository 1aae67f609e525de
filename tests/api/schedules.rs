//! Recurring schedules: the API, repeats and digests sent through the real
//! delivery engine, clock changes in London, runs missed while down, and
//! workers racing for the same tick (or crashing mid-run).

use crate::both_backends;
use crate::support::app::{Db, TestApp, header, text_body};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Europe::London;
use reqwest::Method;
use serde_json::{Value, json};
use tidings::workers::scheduler::SchedulerWorker;

both_backends!(
    schedules_are_created_read_changed_and_deleted,
    a_schedule_with_bad_fields_is_refused_with_422_naming_each,
    a_weekly_repeat_sends_its_update_once_per_tick,
    a_monthly_digest_collects_what_was_sent_since_the_last_run,
    a_run_missed_while_down_happens_once_on_restart,
    racing_workers_run_each_tick_exactly_once,
    a_crash_mid_run_neither_loses_nor_repeats_the_tick,
    nine_in_london_stays_nine_across_both_clock_changes,
    half_past_one_runs_once_on_both_clock_change_nights,
);

fn at(raw: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw.as_str().unwrap_or_else(|| panic!("a time, got {raw}")))
        .unwrap()
        .with_timezone(&Utc)
}

async fn schedule(app: &TestApp, id: &str) -> Value {
    app.api_get(&format!("/schedules/{id}")).await
}

/// The schedule's next tick.
async fn next_run(app: &TestApp, id: &str) -> DateTime<Utc> {
    at(&schedule(app, id).await["next_run_at"])
}

/// Every update whose subject starts with `prefix`, newest first.
async fn updates_titled(app: &TestApp, prefix: &str) -> Vec<Value> {
    let all = app.api_get("/updates").await;
    all.as_array().unwrap().iter().filter(|u| u["subject"].as_str().unwrap().starts_with(prefix)).cloned().collect()
}

async fn send_now(app: &TestApp, id: &str) {
    let res = app.api(Method::POST, &format!("/updates/{id}/send")).send().await.unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    app.drive_delivery(id, 10).await;
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "sent");
}

/// The last Sunday of `month` (when Europe's clocks change) in the first
/// year where it is still more than two days ahead of `now`.
fn clock_change_after(now: DateTime<Utc>, month: u32) -> NaiveDate {
    (now.year()..)
        .map(|year| {
            let last = NaiveDate::from_ymd_opt(year, month + 1, 1).unwrap().pred_opt().unwrap();
            let back = last.weekday().num_days_from_sunday();
            last - Duration::days(i64::from(back))
        })
        .find(|day| day.and_hms_opt(0, 0, 0).unwrap().and_utc() > now + Duration::days(3))
        .unwrap()
}

fn utc_on(day: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(h, m, 0).unwrap())
}

async fn schedules_are_created_read_changed_and_deleted(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("hearings", "Hearing dates").await;
    let created = app
        .create_schedule(&json!({
            "name": "Weekly reminder",
            "cron": "0 9 * * 1",
            "lists": ["updates", "hearings"],
            "subject": "Meeting this week",
            "body_markdown": "Tuesday, 7pm, the library.",
        }))
        .await;
    for key in [
        "id",
        "name",
        "cron",
        "timezone",
        "kind",
        "lists",
        "subject",
        "body_markdown",
        "enabled",
        "next_run_at",
        "last_run_at",
    ] {
        assert!(created.get(key).is_some(), "schedule has {key}: {created}");
    }
    assert_eq!(created["cron"], "0 9 * * 1", "kept as typed");
    assert_eq!(created["timezone"], "Europe/London", "TIDINGS_TIMEZONE is the default");
    assert_eq!(created["kind"], "repeat");
    assert_eq!(created["lists"], json!(["hearings", "updates"]));
    assert_eq!(created["enabled"], true);
    assert!(created["last_run_at"].is_null());
    let next = at(&created["next_run_at"]).with_timezone(&London);
    assert_eq!((next.weekday(), next.hour(), next.minute()), (Weekday::Mon, 9, 0));
    assert!(next > app.ctx.clock.now() && next <= app.ctx.clock.now() + Duration::days(7));

    let id = created["id"].as_str().unwrap();
    assert_eq!(schedule(&app, id).await["name"], "Weekly reminder");
    let all = app.api_get("/schedules").await;
    assert_eq!(all.as_array().unwrap().len(), 1);

    let patch =
        async |body: Value| app.api(Method::PATCH, &format!("/schedules/{id}")).json(&body).send().await.unwrap();
    let res = patch(json!({"cron": "30 8 * * 1-5", "timezone": "America/New_York", "lists": ["hearings"]})).await;
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!((changed["cron"].as_str(), changed["lists"].clone()), (Some("30 8 * * 1-5"), json!(["hearings"])));
    assert_eq!(changed["name"], "Weekly reminder", "fields not sent stay as they were");
    let next = at(&changed["next_run_at"]).with_timezone(&chrono_tz::America::New_York);
    assert_eq!((next.hour(), next.minute()), (8, 30));
    assert!(!matches!(next.weekday(), Weekday::Sat | Weekday::Sun));
    assert!(changed["next_run_local"].as_str().unwrap().starts_with(&next.format("%Y-%m-%dT08:30:00-0").to_string()));

    let disabled: Value = patch(json!({"enabled": false})).await.json().await.unwrap();
    assert_eq!((disabled["enabled"].as_bool(), disabled["next_run_at"].is_null()), (Some(false), true));
    let enabled: Value = patch(json!({"enabled": true})).await.json().await.unwrap();
    assert_eq!(at(&enabled["next_run_at"]), at(&changed["next_run_at"]));

    let bad = patch(json!({"lists": ["no-such-list"], "cron": "0 9 * * 9"})).await;
    assert_eq!(bad.status(), 422);
    let body: Value = bad.json().await.unwrap();
    assert!(body["error"]["fields"]["lists"].is_string() && body["error"]["fields"]["cron"].is_string(), "{body}");
    assert_eq!(schedule(&app, id).await["cron"], "30 8 * * 1-5", "a refused edit changes nothing");

    let res = app.api(Method::DELETE, &format!("/schedules/{id}")).send().await.unwrap();
    assert_eq!(res.status(), 204);
    for method in [Method::GET, Method::DELETE] {
        let res = app.api(method.clone(), &format!("/schedules/{id}")).send().await.unwrap();
        assert_eq!(res.status(), 404, "{method} after delete");
    }
    let res = app.api(Method::GET, "/schedules/not-an-id").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(app.api_get("/schedules").await, json!([]));
}

async fn a_schedule_with_bad_fields_is_refused_with_422_naming_each(db: Db) {
    let app = TestApp::spawn(db).await;
    let post = async |body: Value| app.api(Method::POST, "/schedules").json(&body).send().await.unwrap();
    let fields = |body: Value| body["error"]["fields"].as_object().cloned().unwrap_or_default();

    let res = post(json!({
        "name": "Digest",
        "cron": "0 9 * * 8",
        "timezone": "Europe/Londres",
        "kind": "fortnightly",
        "lists": ["updates", "no-such-list"],
        "subject": "Line one\r\nBcc: everyone@example.org",
    }))
    .await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid");
    let f = fields(body);
    for key in ["cron", "timezone", "kind", "lists", "subject"] {
        assert!(f.get(key).is_some_and(Value::is_string), "{key} named: {f:?}");
    }
    assert!(f["cron"].as_str().unwrap().contains("day of week"), "{f:?}");
    assert!(f["lists"].as_str().unwrap().contains("no-such-list"), "{f:?}");

    let res = post(json!({})).await;
    assert_eq!(res.status(), 422);
    let f = fields(res.json().await.unwrap());
    for key in ["name", "cron", "lists", "subject"] {
        assert!(f.contains_key(key), "{key} is required: {f:?}");
    }

    for cron in ["", "every monday", "61 9 * * *", "0 9 * *", "@reboot"] {
        let res = post(json!({"name": "n", "cron": cron, "lists": ["updates"], "subject": "s"})).await;
        assert_eq!(res.status(), 422, "{cron:?}");
        assert!(fields(res.json().await.unwrap()).contains_key("cron"), "{cron:?}");
    }
    // Valid syntax, but 30 February never comes.
    let res = post(json!({"name": "n", "cron": "0 9 30 2 *", "lists": ["updates"], "subject": "s"})).await;
    assert_eq!(res.status(), 422);
    assert!(fields(res.json().await.unwrap())["cron"].as_str().unwrap().contains("never"));

    let res = app.api(Method::POST, "/schedules").header("content-type", "application/json").body("{").send().await;
    assert_eq!(res.unwrap().status(), 400);
    assert_eq!(app.api_get("/schedules").await, json!([]), "nothing refused was stored");
}

async fn a_weekly_repeat_sends_its_update_once_per_tick(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("r", 3, "updates").await;
    let s = app
        .create_schedule(&json!({
            "name": "Weekly reminder",
            "cron": "0 9 * * Mon",
            "timezone": "Europe/London",
            "kind": "repeat",
            "lists": ["updates"],
            "subject": "Meeting reminder for {{date}}",
            "body_markdown": "Dear {{name}}, we meet on **Tuesday**.",
        }))
        .await;
    let id = s["id"].as_str().unwrap();
    assert_eq!(app.run_scheduler().await.sent, 0, "not due yet");

    let tick = at(&s["next_run_at"]);
    app.advance_clock_to(tick + Duration::seconds(1));
    let step = app.run_scheduler().await;
    assert_eq!((step.sent, step.skipped, step.lost, step.failed), (1, 0, 0, 0));
    assert_eq!(app.run_scheduler().await, Default::default(), "the tick is spent");

    let made = updates_titled(&app, "Meeting reminder").await;
    assert_eq!(made.len(), 1);
    let date = tick.with_timezone(&London).format("%-d %B %Y").to_string();
    assert_eq!(made[0]["subject"], format!("Meeting reminder for {date}"));
    assert_eq!(made[0]["status"], "sending", "started in the same transaction");
    assert_eq!(made[0]["lists"], json!(["updates"]));
    let update_id = made[0]["id"].as_str().unwrap();
    assert_eq!(app.stats(update_id).await["total"], 3);
    app.drive_delivery(update_id, 10).await;
    for i in 0..3 {
        let mails = app.smtp.messages_to(&format!("r{i}@example.org"));
        assert_eq!(mails.len(), 1);
        assert_eq!(header(&mails[0], "Subject").unwrap(), format!("Meeting reminder for {date}"));
        assert!(text_body(&mails[0]).contains(&format!("Dear Backer {i}, we meet on")));
    }

    let after = schedule(&app, id).await;
    assert!(at(&after["last_run_at"]) >= tick);
    let next = at(&after["next_run_at"]);
    assert_eq!(next.with_timezone(&London).date_naive(), tick.with_timezone(&London).date_naive() + Duration::days(7));
    assert_eq!(next.with_timezone(&London).hour(), 9);

    app.advance_clock_to(next + Duration::seconds(1));
    assert_eq!(app.run_scheduler().await.sent, 1);
    assert_eq!(updates_titled(&app, "Meeting reminder").await.len(), 2, "one update per tick");
}

async fn a_monthly_digest_collects_what_was_sent_since_the_last_run(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("hearings", "Hearing dates").await;
    app.confirmed_subscribers("d", 2, "updates").await;
    let s = app
        .create_schedule(&json!({
            "name": "Monthly digest",
            "cron": "0 9 1 * *",
            "timezone": "Europe/London",
            "kind": "digest",
            "lists": ["updates"],
            "subject": "This month at the hospital: {{date}}",
            "body_markdown": "Here is what happened this month.",
        }))
        .await;
    let id = s["id"].as_str().unwrap();

    let first =
        app.create_update("We filed at the High Court", "The papers went in on **Monday**.", &["updates"]).await;
    send_now(&app, &first).await;
    let both = app.create_update("Hearing date set", "The hearing is on 3 March.", &["hearings", "updates"]).await;
    send_now(&app, &both).await;
    let elsewhere = app.create_update("Only for hearings", "Not for the digest.", &["hearings"]).await;
    send_now(&app, &elsewhere).await;
    let draft = app.create_update("Still a draft", "Not sent, not collected.", &["updates"]).await;

    let tick = at(&s["next_run_at"]);
    app.advance_clock_to(tick + Duration::seconds(1));
    let step = app.run_scheduler().await;
    assert_eq!((step.sent, step.skipped), (1, 0));
    let digests = updates_titled(&app, "This month at the hospital").await;
    assert_eq!(digests.len(), 1);
    let digest = &digests[0];
    let date = tick.with_timezone(&London).format("%-d %B %Y").to_string();
    assert!(date.starts_with("1 "), "the 1st of the month: {date}");
    assert_eq!(digest["subject"], format!("This month at the hospital: {date}"));
    let body = digest["body_markdown"].as_str().unwrap();
    assert_eq!(
        body,
        "Here is what happened this month.\n\n\
         ## We filed at the High Court\n\nThe papers went in on **Monday**.\n\n\
         ## Hearing date set\n\nThe hearing is on 3 March.\n"
    );
    assert!(!body.contains("Only for hearings") && !body.contains("Still a draft"));
    let digest_id = digest["id"].as_str().unwrap().to_owned();
    app.drive_delivery(&digest_id, 10).await;
    for i in 0..2 {
        let mails: Vec<_> = app
            .smtp
            .messages_to(&format!("d{i}@example.org"))
            .into_iter()
            .filter(|m| header(m, "Subject").is_some_and(|s| s.starts_with("This month")))
            .collect();
        assert_eq!(mails.len(), 1);
        assert!(text_body(&mails[0]).contains("The papers went in on"));
    }

    // Nothing new by the next tick: no empty digest, but the schedule moves on.
    let second_tick = next_run(&app, id).await;
    assert_eq!(second_tick.with_timezone(&London).day(), 1);
    app.advance_clock_to(second_tick + Duration::seconds(1));
    let step = app.run_scheduler().await;
    assert_eq!((step.sent, step.skipped), (0, 1));
    assert_eq!(updates_titled(&app, "This month").await.len(), 1);
    let third_tick = next_run(&app, id).await;
    assert!(third_tick > second_tick + Duration::days(27));

    // Only what is new since the last run, and never the digest itself.
    let later = app.create_update("We won", "The judge ruled **for us**.", &["updates"]).await;
    send_now(&app, &later).await;
    app.advance_clock_to(third_tick + Duration::seconds(1));
    assert_eq!(app.run_scheduler().await.sent, 1);
    let digests = updates_titled(&app, "This month at the hospital").await;
    assert_eq!(digests.len(), 2);
    let newest = digests.iter().find(|d| d["id"] != digest_id.as_str()).unwrap();
    let body = newest["body_markdown"].as_str().unwrap();
    assert!(body.contains("## We won\n\nThe judge ruled **for us**."), "{body}");
    for old in ["We filed", "Hearing date set", "This month at the hospital"] {
        assert!(!body.contains(old), "{old} is not collected twice: {body}");
    }
    assert_eq!(app.api_get(&format!("/updates/{draft}")).await["status"], "draft");

    // An update the delivery worker stamped as finished just before that
    // digest ran, but committed just after it: it goes into the next
    // digest rather than falling between the two.
    let last_run = at(&schedule(&app, id).await["last_run_at"]);
    let late_id = uuid::Uuid::now_v7();
    {
        let mut tx = app.ctx.store.write().await.unwrap();
        let list = tx.list_by_slug("updates").await.unwrap().unwrap();
        let stamped = last_run - Duration::seconds(1);
        let late = tidings::store::UpdateRow {
            id: late_id,
            subject: "Late news".into(),
            body_markdown: "Finished as the digest was made.".into(),
            status: tidings::domain::UpdateStatus::Draft,
            send_at: None,
            created_by: "system".into(),
            created_at: stamped,
            updated_at: stamped,
            started_at: None,
            finished_at: None,
        };
        tx.insert_update(&late).await.unwrap();
        tx.set_update_lists(late_id, &[list.id]).await.unwrap();
        for event in [tidings::domain::UpdateEvent::Send, tidings::domain::UpdateEvent::Finish] {
            assert!(tx.transition_update(late_id, event, None, stamped).await.unwrap());
        }
        tx.commit().await.unwrap();
    }
    app.advance_clock_to(next_run(&app, id).await + Duration::seconds(1));
    assert_eq!(app.run_scheduler().await.sent, 1);
    let digests = updates_titled(&app, "This month at the hospital").await;
    assert_eq!(digests.len(), 3);
    let body = digests[0]["body_markdown"].as_str().unwrap();
    assert!(body.contains("## Late news") && !body.contains("We won"), "{body}");
}

async fn a_run_missed_while_down_happens_once_on_restart(db: Db) {
    let app = TestApp::spawn(db).await;
    let s = app
        .create_schedule(&json!({
            "name": "Daily", "cron": "0 9 * * *", "lists": ["updates"], "subject": "Daily note"
        }))
        .await;
    let id = s["id"].as_str().unwrap();
    // Down for ten days: ten ticks pass unseen.
    app.advance_clock_to(at(&s["next_run_at"]) + Duration::days(10) - Duration::hours(1));

    let restarted = SchedulerWorker::new(app.ctx.clone());
    let no_stop = tokio::sync::watch::channel(false).1;
    let step = restarted.run_once(&no_stop).await.unwrap();
    assert_eq!(step.sent, 1, "the missed ticks run once, not ten times");
    assert_eq!(restarted.run_once(&no_stop).await.unwrap(), Default::default());
    assert_eq!(app.run_scheduler().await, Default::default());
    assert_eq!(updates_titled(&app, "Daily note").await.len(), 1);

    let now = app.ctx.clock.now();
    let next = next_run(&app, id).await;
    assert!(next > now && next <= now + Duration::days(1), "next is the first tick after now: {next}");
    assert_eq!(next.with_timezone(&London).hour(), 9);
}

async fn racing_workers_run_each_tick_exactly_once(db: Db) {
    let app = TestApp::spawn(db).await;
    let mut latest = app.ctx.clock.now();
    for i in 0..12 {
        let s = app
            .create_schedule(&json!({
                "name": format!("Race {i}"), "cron": "*/5 * * * *", "lists": ["updates"], "subject": format!("Race {i}")
            }))
            .await;
        latest = latest.max(at(&s["next_run_at"]));
    }
    app.advance_clock_to(latest + Duration::seconds(1));

    let no_stop = tokio::sync::watch::channel(false).1;
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let worker = SchedulerWorker::new(app.ctx.clone());
        let stop = no_stop.clone();
        racers.spawn(async move { worker.run_once(&stop).await.unwrap() });
    }
    let (mut sent, mut lost) = (0, 0);
    while let Some(step) = racers.join_next().await {
        let step = step.unwrap();
        assert_eq!((step.skipped, step.failed), (0, 0));
        sent += step.sent;
        lost += step.lost;
    }
    assert_eq!(sent, 12, "every tick ran once (and {lost} attempts found it taken)");
    let made = updates_titled(&app, "Race ").await;
    assert_eq!(made.len(), 12);
    let mut subjects: Vec<_> = made.iter().map(|u| u["subject"].as_str().unwrap().to_owned()).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 12, "no schedule ran twice");
    assert_eq!(app.run_scheduler().await, Default::default());
}

async fn a_crash_mid_run_neither_loses_nor_repeats_the_tick(db: Db) {
    let app = TestApp::spawn(db).await;
    let s = app
        .create_schedule(&json!({
            "name": "Daily", "cron": "0 9 * * *", "lists": ["updates"], "subject": "Crash test"
        }))
        .await;
    let id = uuid::Uuid::parse_str(s["id"].as_str().unwrap()).unwrap();
    let tick = at(&s["next_run_at"]);
    app.advance_clock_to(tick + Duration::seconds(1));

    // A worker claims the tick and dies before committing.
    {
        let mut tx = app.ctx.store.write().await.unwrap();
        assert!(tx.claim_schedule_tick(id, tick, None, app.ctx.clock.now()).await.unwrap());
        drop(tx);
    }
    assert!(updates_titled(&app, "Crash test").await.is_empty());
    assert_eq!(next_run(&app, &id.to_string()).await, tick, "the claim died with its transaction");

    // The restarted worker runs it, once.
    let restarted = SchedulerWorker::new(app.ctx.clone());
    let no_stop = tokio::sync::watch::channel(false).1;
    assert_eq!(restarted.run_once(&no_stop).await.unwrap().sent, 1);
    assert_eq!(restarted.run_once(&no_stop).await.unwrap(), Default::default());
    assert_eq!(updates_titled(&app, "Crash test").await.len(), 1);

    // The tick is spent for good: a stale claim fails, and the run record
    // refuses a second run of it even without the compare-and-set.
    let mut tx = app.ctx.store.write().await.unwrap();
    assert!(!tx.claim_schedule_tick(id, tick, None, app.ctx.clock.now()).await.unwrap());
    let again =
        tidings::store::ScheduleRun { schedule_id: id, due_at: tick, ran_at: app.ctx.clock.now(), update_id: None };
    assert!(tx.record_schedule_run(&again).await.is_err());
}

/// Runs the schedule at each of its next `n` ticks and returns them.
async fn run_ticks(app: &TestApp, id: &str, n: usize) -> Vec<DateTime<Utc>> {
    let mut ran = Vec::new();
    for _ in 0..n {
        let tick = next_run(app, id).await;
        app.advance_clock_to(tick + Duration::seconds(1));
        assert_eq!(app.run_scheduler().await.sent, 1, "tick {tick}");
        ran.push(tick);
    }
    ran
}

async fn nine_in_london_stays_nine_across_both_clock_changes(db: Db) {
    let app = TestApp::spawn(db).await;
    let s = app
        .create_schedule(&json!({
            "name": "Morning", "cron": "0 9 * * *", "timezone": "Europe/London", "lists": ["updates"],
            "subject": "Morning {{date}}"
        }))
        .await;
    let id = s["id"].as_str().unwrap();

    for (month, utc_hours) in [(3, [9, 8, 8]), (10, [8, 9, 9])] {
        let change = clock_change_after(app.ctx.clock.now(), month);
        // Arrive two days before (one catch-up run for everything missed).
        app.advance_clock_to(utc_on(change - Duration::days(2), 12, 0));
        assert_eq!(app.run_scheduler().await.sent, 1);
        let ticks = run_ticks(&app, id, 3).await;
        let days: Vec<_> = (-1..=1).map(|d| change + Duration::days(d)).collect();
        for (tick, (day, hour)) in ticks.iter().zip(days.iter().zip(utc_hours)) {
            let local = tick.with_timezone(&London);
            assert_eq!((local.date_naive(), local.hour(), local.minute()), (*day, 9, 0), "{tick}");
            assert_eq!(tick.hour(), hour, "{tick}: the UTC instant moves by an hour");
        }
        let view = schedule(&app, id).await;
        assert!(view["next_run_local"].as_str().unwrap().contains("T09:00:00+0"), "{view}");
    }
}

async fn half_past_one_runs_once_on_both_clock_change_nights(db: Db) {
    let app = TestApp::spawn(db).await;
    let s = app
        .create_schedule(&json!({
            "name": "Night", "cron": "30 1 * * *", "timezone": "Europe/London", "lists": ["updates"],
            "subject": "Night run"
        }))
        .await;
    let id = s["id"].as_str().unwrap();

    // Spring: 01:00 GMT becomes 02:00 BST, so there is no 01:30. It runs
    // once, when the clocks change, and at 01:30 BST the night after.
    let spring = clock_change_after(app.ctx.clock.now(), 3);
    app.advance_clock_to(utc_on(spring - Duration::days(1), 12, 0));
    assert_eq!(app.run_scheduler().await.sent, 1, "catch-up");
    assert_eq!(next_run(&app, id).await, utc_on(spring, 1, 0));
    assert_eq!(run_ticks(&app, id, 1).await, [utc_on(spring, 1, 0)]);
    assert_eq!(next_run(&app, id).await, utc_on(spring + Duration::days(1), 0, 30));
    app.advance_clock_to(utc_on(spring, 23, 0));
    assert_eq!(app.run_scheduler().await, Default::default(), "once that night");

    // Autumn: 02:00 BST becomes 01:00 GMT, so 01:30 happens twice. It runs
    // at the first, not at the second.
    let autumn = clock_change_after(app.ctx.clock.now(), 10);
    app.advance_clock_to(utc_on(autumn - Duration::days(1), 12, 0));
    assert_eq!(app.run_scheduler().await.sent, 1, "catch-up");
    assert_eq!(run_ticks(&app, id, 1).await, [utc_on(autumn, 0, 30)]);
    app.advance_clock_to(utc_on(autumn, 1, 30) + Duration::seconds(1));
    assert_eq!(app.run_scheduler().await, Default::default(), "the second 01:30 does not run");
    assert_eq!(next_run(&app, id).await, utc_on(autumn + Duration::days(1), 1, 30));
    let before = updates_titled(&app, "Night run").await.len();
    app.advance_clock_to(utc_on(autumn + Duration::days(1), 1, 30) + Duration::seconds(1));
    assert_eq!(app.run_scheduler().await.sent, 1);
    assert_eq!(updates_titled(&app, "Night run").await.len(), before + 1);
}
