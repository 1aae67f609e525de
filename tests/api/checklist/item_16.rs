//! Checklist item 16: rights requests are logged with a one-month due
//! date, an extension, a stop-the-clock pause and resume with a reason
//! (the due date moves by the time paused; a paused request is shown as
//! paused, not overdue; each pause and resume is kept with who, when and
//! why), and a complaint kind with a 30-day acknowledgement date. UK GDPR
//! Art 12(3); Data (Use and Access) Act 2025. Through the API, the admin
//! pages, and erasure (the reasons given are scrubbed of the person).

use crate::both_backends;
use crate::support::app::{Db, TestApp};
use chrono::{DateTime, Duration, Months, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Value, json};

both_backends!(
    the_clock_stops_and_restarts_with_reasons_and_the_due_date_moves_by_the_time_paused,
    a_complaint_is_acknowledged_within_30_days_and_has_no_clock_to_stop_or_extend,
    the_admin_pages_pause_resume_and_acknowledge_on_a_laptop_or_a_phone,
    erasure_scrubs_the_person_from_the_reasons_in_a_requests_history,
);

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc)).expect("a time")
}

/// `t` as sent in `received_at` (whole seconds).
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).expect("a time")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn log(app: &TestApp, body: Value) -> Value {
    let res = app.api(Method::POST, "/rights-requests").json(&body).send().await.unwrap();
    assert_eq!(res.status(), 201, "{body}");
    res.json().await.unwrap()
}

async fn change(app: &TestApp, id: &str, body: Value) -> (u16, Value) {
    let res = app.api(Method::PATCH, &format!("/rights-requests/{id}")).json(&body).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn the_clock_stops_and_restarts_with_reasons_and_the_due_date_moves_by_the_time_paused(db: Db) {
    let app = TestApp::spawn(db).await;
    app.ctx.clock.freeze();
    let now = app.ctx.clock.now();
    // Received 40 days ago: due one calendar month after, so overdue now.
    let received = whole_seconds(now - Duration::days(40));
    let r = log(&app, json!({"kind": "access", "subject": "ann@example.org", "received_at": rfc3339(received)})).await;
    let id = r["id"].as_str().unwrap().to_owned();
    let due = time(&r["due_at"]);
    assert_eq!(due, received.checked_add_months(Months::new(1)).unwrap(), "one calendar month");
    assert_eq!((r["overdue"].as_bool(), r["paused"].as_bool()), (Some(true), Some(false)), "{r}");
    assert_eq!(r["history"][0]["action"], "logged", "{r}");

    // A pause needs its reason.
    let (status, body) = change(&app, &id, json!({"action": "pause", "reason": "  "})).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = change(&app, &id, json!({"action": "resume", "reason": "nothing to resume"})).await;
    assert_eq!(status, 409, "the clock is not stopped: {body}");

    let (status, r) = change(&app, &id, json!({"action": "pause", "reason": "waiting for proof of identity"})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!((r["paused"].as_bool(), r["overdue"].as_bool()), (Some(true), Some(false)), "paused, not overdue: {r}");
    assert_eq!(r["pause_reason"], "waiting for proof of identity");
    assert_eq!(time(&r["paused_at"]), now);
    let (status, _) = change(&app, &id, json!({"action": "pause", "reason": "again"})).await;
    assert_eq!(status, 409, "already stopped");

    // Five days pass with the clock stopped: still paused, not overdue, in
    // the list too.
    app.ctx.clock.advance(std::time::Duration::from_secs(5 * 86400));
    let all = app.api_get("/rights-requests?status=open").await;
    let listed = all.as_array().unwrap().iter().find(|x| x["id"] == id.as_str()).cloned().unwrap();
    assert_eq!((listed["paused"].as_bool(), listed["overdue"].as_bool()), (Some(true), Some(false)), "{listed}");

    let (status, r) = change(&app, &id, json!({"action": "resume", "reason": "passport copy received"})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["paused"], false);
    assert!(r["paused_at"].is_null() && r["pause_reason"].is_null(), "{r}");
    assert_eq!(r["paused_seconds"], 5 * 86400);
    assert_eq!(time(&r["effective_due_at"]), due + Duration::days(5), "moved by the five days paused");
    assert_eq!(r["overdue"], true, "45 days after receipt it is late again");

    // The extension adds two months to the original due date; the pause
    // still counts.
    let (status, r) = change(&app, &id, json!({"action": "extend", "reason": "several requests at once"})).await;
    assert_eq!(status, 200, "{r}");
    let extended = due.checked_add_months(Months::new(2)).unwrap();
    assert_eq!(time(&r["extended_due_at"]), extended);
    assert_eq!(time(&r["effective_due_at"]), extended + Duration::days(5));
    assert_eq!(r["overdue"], false);

    // Every change is kept: who (the token's name), when, what and why.
    let r = app.api_get(&format!("/rights-requests/{id}")).await;
    let history = r["history"].as_array().unwrap();
    let actions: Vec<&str> = history.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["logged", "paused", "resumed", "extended"], "{r}");
    assert_eq!(history[1]["reason"], "waiting for proof of identity");
    assert_eq!(time(&history[1]["occurred_at"]), now);
    assert_eq!(history[2]["reason"], "passport copy received");
    assert_eq!(time(&history[2]["occurred_at"]), now + Duration::days(5));
    assert!(history.iter().all(|e| e["actor"].as_str().unwrap().starts_with("api-token:")), "{r}");
    assert!(history.iter().all(|e| e["actor_label"] == "tests"), "{r}");

    // Closing a paused request ends the pause.
    let (_, r) = change(&app, &id, json!({"action": "pause", "reason": "which records?"})).await;
    assert_eq!(r["paused"], true);
    app.ctx.clock.advance(std::time::Duration::from_secs(86400));
    let (status, r) = change(&app, &id, json!({"action": "complete", "outcome": "copy sent"})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (r["status"].as_str(), r["paused"].as_bool(), r["overdue"].as_bool()),
        (Some("completed"), Some(false), Some(false))
    );
    assert_eq!(r["paused_seconds"], 6 * 86400);
    let (status, _) = change(&app, &id, json!({"action": "resume", "reason": "late"})).await;
    assert_eq!(status, 409, "closed");
}

async fn a_complaint_is_acknowledged_within_30_days_and_has_no_clock_to_stop_or_extend(db: Db) {
    let app = TestApp::spawn(db).await;
    app.ctx.clock.freeze();
    let now = app.ctx.clock.now();
    let received = whole_seconds(now - Duration::days(31));
    let c = log(&app, json!({"kind": "complaint", "subject": "bob@example.org", "received_at": rfc3339(received), "notes": "says we mailed him after he left"})).await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(time(&c["acknowledge_due_at"]), received + Duration::days(30), "{c}");
    assert_eq!(time(&c["effective_due_at"]), received + Duration::days(30));
    assert!(c["acknowledged_at"].is_null());
    assert_eq!(c["overdue"], true, "31 days without an acknowledgement");
    // A fresh complaint is not overdue.
    let fresh = log(&app, json!({"kind": "complaint", "subject": "cat@example.org"})).await;
    assert_eq!(
        (fresh["overdue"].as_bool(), time(&fresh["acknowledge_due_at"])),
        (Some(false), now + Duration::days(30))
    );
    // Requests of the other kinds have no acknowledgement date.
    let access = log(&app, json!({"kind": "access", "subject": "dan@example.org"})).await;
    assert!(access["acknowledge_due_at"].is_null(), "{access}");
    let (status, _) = change(&app, access["id"].as_str().unwrap(), json!({"action": "acknowledge"})).await;
    assert_eq!(status, 409, "only a complaint is acknowledged");

    for (body, why) in [
        (json!({"action": "extend", "reason": "busy"}), "no deadline to extend"),
        (json!({"action": "pause", "reason": "waiting"}), "no clock to stop"),
    ] {
        let (status, answer) = change(&app, &id, body).await;
        assert_eq!(status, 409, "{why}: {answer}");
    }
    let (status, c) = change(&app, &id, json!({"action": "acknowledge", "note": "replied by email"})).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(time(&c["acknowledged_at"]), now);
    assert_eq!((c["overdue"].as_bool(), c["status"].as_str()), (Some(false), Some("open")), "acknowledged, still open");
    let last = c["history"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!((last["action"].as_str(), last["reason"].as_str()), (Some("acknowledged"), Some("replied by email")));
    let (status, _) = change(&app, &id, json!({"action": "acknowledge"})).await;
    assert_eq!(status, 409, "once");
    let (status, c) =
        change(&app, &id, json!({"action": "complete", "outcome": "apologised; removed from every list"})).await;
    assert_eq!((status, c["status"].as_str()), (200, Some("completed")));
}

async fn the_admin_pages_pause_resume_and_acknowledge_on_a_laptop_or_a_phone(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as_admin().await;
    let old = rfc3339(app.ctx.clock.now() - Duration::days(40));
    let access = log(&app, json!({"kind": "access", "subject": "eve@example.org", "received_at": old})).await;
    let path = format!("/admin/rights/{}", access["id"].as_str().unwrap());
    let page = admin.get(&path).await;
    assert!(page.body.contains("Stop the clock") && page.body.contains("overdue"), "{}", page.body);

    let res = admin.submit(&path, &path, &[("action", "pause"), ("pause_reason", "")]).await;
    assert_eq!(res.status, 422, "a pause needs its reason");
    let res =
        admin.submit(&path, &path, &[("action", "pause"), ("pause_reason", "asked which records she means")]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let page = admin.get(&path).await;
    assert!(page.body.contains("The clock is stopped"), "{}", page.body);
    assert!(page.body.contains("asked which records she means"));
    assert!(page.body.contains("Restart the clock") && !page.body.contains(">overdue<"), "{}", page.body);
    let list = admin.get("/admin/rights").await;
    assert!(list.body.contains(">paused<") && list.body.contains("asked which records she means"), "{}", list.body);

    let res = admin.submit(&path, &path, &[("action", "resume"), ("resume_reason", "she replied")]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let page = admin.get(&path).await;
    assert!(page.body.contains("resumed") && page.body.contains("she replied"), "the history: {}", page.body);
    assert!(page.body.contains("by admin@hospital.test: she replied"), "who: {}", page.body);

    // A complaint logged from the form: acknowledge by 30 days on.
    let res = admin
        .submit(
            "/admin/rights",
            "/admin/rights",
            &[("kind", "complaint"), ("subject", "fay@example.org"), ("received_at", ""), ("notes", "")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let complaint = res.location().unwrap().split('?').next().unwrap().to_owned();
    let due = (app.ctx.clock.now() + Duration::days(30)).format("%Y-%m-%d").to_string();
    let list = admin.get("/admin/rights").await;
    assert!(list.body.contains(&format!("acknowledge by {due}")), "{}", list.body);
    let page = admin.get(&complaint).await;
    assert!(page.body.contains("Acknowledge by") && !page.body.contains("Stop the clock"), "{}", page.body);
    let res = admin.submit(&complaint, &complaint, &[("action", "acknowledge"), ("note", "phoned her")]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let page = admin.get(&complaint).await;
    assert!(page.body.contains("acknowledged") && page.body.contains("phoned her"), "{}", page.body);
    assert!(!page.body.contains("Record acknowledgement"), "done once");
}

async fn erasure_scrubs_the_person_from_the_reasons_in_a_requests_history(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("gus", 1, "updates").await;
    let email = "gus0@example.org";
    let id = app.subscriber(email).await["id"].as_str().unwrap().to_owned();
    let r = log(&app, json!({"kind": "erasure", "subject": "a neighbour"})).await;
    let rid = r["id"].as_str().unwrap().to_owned();
    let (status, _) = change(&app, &rid, json!({"action": "pause", "reason": format!("is it {email}? asked")})).await;
    assert_eq!(status, 200);
    let (status, _) = change(&app, &rid, json!({"action": "resume", "reason": format!("yes, {email}")})).await;
    assert_eq!(status, 200);
    let (status, _) =
        change(&app, &rid, json!({"action": "pause", "reason": format!("{email} to confirm by post")})).await;
    assert_eq!(status, 200);
    assert_eq!(app.api(Method::POST, &format!("/subscribers/{id}/erase")).send().await.unwrap().status(), 200);
    let r = app.api_get(&format!("/rights-requests/{rid}")).await;
    assert!(!r.to_string().contains(email), "{r}");
    assert_eq!(r["pause_reason"], "[erased address] to confirm by post");
    assert_eq!(r["history"][2]["reason"], "yes, [erased address]", "{r}");
}
