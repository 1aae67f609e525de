//! First run: with no organiser account, a one-time setup link (valid 24
//! hours) creates the first admin; once any account exists every link is
//! dead. Also through the real `tidings serve`, which prints the link.

use super::AdminClient;
use crate::both_backends;
use crate::support::app::{Db, TestApp};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tidings::services::accounts::{self, Role};

both_backends!(
    the_setup_link_creates_the_first_admin_once,
    setup_links_die_after_24_hours_or_when_any_account_exists,
    tidings_serve_prints_a_setup_link_until_an_organiser_exists,
);

async fn setup_token(app: &TestApp) -> String {
    accounts::issue_setup_token(&app.ctx.store, &app.ctx.clock).await.unwrap().expect("no account yet: a token")
}

async fn user_count(app: &TestApp) -> i64 {
    app.ctx.store.read().await.unwrap().user_count().await.unwrap()
}

async fn the_setup_link_creates_the_first_admin_once(db: Db) {
    let app = TestApp::spawn(db).await;
    let token = setup_token(&app).await;
    let second = setup_token(&app).await;
    assert_ne!(token, second);
    let path = format!("/admin/setup/{token}");
    let client = AdminClient::new(&app);

    assert_eq!(client.get("/admin/setup/not-a-token").await.status, 410);
    let form = client.get(&path).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Create the admin account"));

    // Mistakes leave the link working.
    for (pw, confirm, problem) in [
        ("a long passphrase here", "a different passphrase", "the two passwords differ"),
        ("short", "short", "use at least 12 characters"),
    ] {
        let res = client
            .submit(&path, &path, &[("email", "first@hospital.test"), ("password", pw), ("password_confirm", confirm)])
            .await;
        assert_eq!(res.status, 422, "{problem}");
        assert!(res.body.contains(problem), "{}", res.body);
        assert!(res.body.contains("value=\"first@hospital.test\""));
    }
    assert_eq!(user_count(&app).await, 0);

    let pw = "correct horse battery staple";
    let res = client
        .submit(&path, &path, &[("email", "First@Hospital.test"), ("password", pw), ("password_confirm", pw)])
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), Some("/admin"));
    let dashboard = client.get("/admin").await;
    assert_eq!(dashboard.status, 200, "logged in at once");
    assert!(dashboard.body.contains("first@hospital.test") && dashboard.body.contains("admin"));
    let users = accounts::users(&app.ctx).await.unwrap();
    assert_eq!((users.len(), users[0].role), (1, Role::Admin));

    // Every link is now dead, used or not, and no new one is issued.
    for t in [&token, &second] {
        let path = format!("/admin/setup/{t}");
        let visitor = AdminClient::new(&app);
        assert_eq!(visitor.get(&path).await.status, 410);
        let csrf = visitor.get("/admin/login").await.csrf();
        let res = visitor
            .post(
                &path,
                &[("csrf", &csrf), ("email", "second@hospital.test"), ("password", pw), ("password_confirm", pw)],
            )
            .await;
        assert_eq!(res.status, 410);
        assert!(res.body.contains("no longer works"));
    }
    assert_eq!(user_count(&app).await, 1);
    assert_eq!(accounts::issue_setup_token(&app.ctx.store, &app.ctx.clock).await.unwrap(), None);
    // The new admin logs in with the password they chose.
    let again = AdminClient::new(&app);
    assert_eq!(again.log_in("first@hospital.test", pw).await.status, 303);
}

async fn setup_links_die_after_24_hours_or_when_any_account_exists(db: Db) {
    let app = TestApp::spawn(db).await;
    let token = setup_token(&app).await;
    let path = format!("/admin/setup/{token}");
    let client = AdminClient::new(&app);
    app.ctx.clock.advance(Duration::from_secs(23 * 3600 + 59 * 60));
    let csrf = client.get(&path).await.csrf();
    app.ctx.clock.advance(Duration::from_secs(61));
    assert_eq!(client.get(&path).await.status, 410, "24 h and a second");
    let pw = "correct horse battery staple";
    let res = client
        .post(&path, &[("csrf", &csrf), ("email", "late@hospital.test"), ("password", pw), ("password_confirm", pw)])
        .await;
    assert_eq!(res.status, 410);
    assert_eq!(user_count(&app).await, 0);

    // An account added another way (the CLI) kills a live link too.
    let fresh = setup_token(&app).await;
    assert_eq!(client.get(&format!("/admin/setup/{fresh}")).await.status, 200);
    app.add_organiser("cli@hospital.test", Role::Editor).await;
    assert_eq!(client.get(&format!("/admin/setup/{fresh}")).await.status, 410);
}

/// `tidings serve` on `port`, its stdout readable line by line.
fn serve(env: &[(String, String)], dir: &std::path::Path) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["serve", "--no-workers", "--config"])
        .arg(dir.join("none.toml"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tidings");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// The first stdout line containing `needle`.
fn line_with(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with {needle:?} on stdout: {e}"),
        }
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
}

async fn tidings_serve_prints_a_setup_link_until_an_organiser_exists(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = db.fresh_url(dir.path()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let env = vec![
        ("TIDINGS_DATABASE_URL".to_owned(), url),
        ("TIDINGS_BIND".to_owned(), format!("127.0.0.1:{port}")),
        ("TIDINGS_BASE_URL".to_owned(), base.clone()),
        ("TIDINGS_LOG".to_owned(), "warn".to_owned()),
    ];

    let (child, stdout) = serve(&env, dir.path());
    let line = line_with(&stdout, "/admin/setup/");
    let link = line.split_whitespace().find(|w| w.contains("/admin/setup/")).expect("a link").to_owned();
    assert!(link.starts_with(&format!("{base}/admin/setup/")), "{line}");
    assert!(line.contains("24 hours"), "{line}");
    let path = link.trim_start_matches(&base).to_owned();
    let client = AdminClient::at(&base);
    let pw = "correct horse battery staple";
    let res = client
        .submit(&path, &path, &[("email", "first@hospital.test"), ("password", pw), ("password_confirm", pw)])
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(client.get("/admin").await.status, 200);
    stop(child);

    // Restarted with an account in place: no link, just where to log in.
    let (child, stdout) = serve(&env, dir.path());
    let line = line_with(&stdout, "/admin");
    assert!(line.contains("log in at") && !line.contains("/admin/setup/"), "{line}");
    assert_eq!(client.get(&path).await.status, 410);
    stop(child);
}
