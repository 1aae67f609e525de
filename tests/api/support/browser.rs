//! A headless Chromium for browser tests, driven through chromedriver's W3C
//! WebDriver HTTP API (plain JSON over HTTP, so no extra client crate).
//!
//! [`Browser::start`] returns `None` (test skipped) when Chromium or
//! chromedriver is not installed, except under CI, where it fails.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser at a time: two Chromiums on two cores beside the rest of the
/// suite make page loads slow enough to flake.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct Browser {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    http: reqwest::Client,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Option<Browser> {
        if !std::path::Path::new(CHROMIUM).exists() || !std::path::Path::new(CHROMEDRIVER).exists() {
            assert!(std::env::var("CI").is_err(), "CI must install chromium and chromium-driver");
            eprintln!("chromium/chromedriver not installed: browser test not run");
            super::skip::case("browser tests", "chromium/chromedriver not installed");
            return None;
        }
        let turn = ONE_AT_A_TIME.lock().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{base}/status")).send().await.ok();
            if let Some(res) = ready {
                let v: Value = res.json().await.unwrap_or_default();
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        // Flags as this machine needs them: no sandbox as root, and no
        // background networking (the network is closed).
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=430,1000".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        }}});
        let res: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = res["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {res}")).to_owned();
        Some(Browser { _turn: turn, http, session: format!("{base}/session/{session}"), driver, _profile: profile })
    }

    /// One WebDriver command; `Err` carries the driver's error object.
    async fn try_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() { Err(v["value"].clone()) } else { Ok(v["value"].clone()) }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body).await.unwrap_or_else(|e| panic!("webdriver {path}: {e}"))
    }

    /// Finds `css` and runs one command on it, retrying for up to 5 s when
    /// the page changes under us (a click started a navigation).
    async fn on_element(&self, css: &str, method: reqwest::Method, action: &str, body: Option<Value>) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let e = self.find(css).await;
            match self.try_call(method.clone(), &format!("/element/{e}{action}"), body.clone()).await {
                Ok(v) => return v,
                Err(err) if Instant::now() < deadline && page_changed(&err) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("webdriver {action} on {css}: {err}"),
            }
        }
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    /// Finds an element, waiting up to 5 s for it (a click may have started
    /// a navigation that is still loading).
    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let res = self
                .http
                .post(format!("{}/element", self.session))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .unwrap();
            let v: Value = res.json().await.unwrap();
            if let Some(id) = v["value"][ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}: {}", v["value"]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        self.on_element(css, reqwest::Method::POST, "/click", Some(json!({}))).await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, reqwest::Method::POST, "/value", Some(json!({ "text": text }))).await;
    }

    /// The visible text of the whole page.
    pub async fn text(&self) -> String {
        self.on_element("body", reqwest::Method::GET, "/text", None).await.as_str().unwrap_or("").to_owned()
    }

    /// Whether the page shows `needle` within 10 s. A click that submits a
    /// form can return before the next page has loaded on a busy machine, so
    /// reading the text once right after it may still see the old page.
    pub async fn shows(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.text().await.contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sets a form control's value as a person picking it would: for
    /// controls whose typed input depends on the browser's locale (a
    /// `datetime-local` field). WebDriver runs the script outside the page's
    /// CSP, which allows no script at all.
    pub async fn set_value(&self, css: &str, value: &str) {
        let element = self.find(css).await;
        let script =
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input', {bubbles: true}));";
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [{ ELEMENT: element }, value] })),
        )
        .await;
    }

    /// A DOM property (e.g. a textarea's `value`), as a string.
    pub async fn property(&self, css: &str, name: &str) -> Option<String> {
        self.on_element(css, reqwest::Method::GET, &format!("/property/{name}"), None).await.as_str().map(str::to_owned)
    }

    /// A numeric DOM property (`scrollWidth`, …).
    pub async fn number(&self, css: &str, name: &str) -> Option<f64> {
        self.on_element(css, reqwest::Method::GET, &format!("/property/{name}"), None).await.as_f64()
    }

    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        self.on_element(css, reqwest::Method::GET, &format!("/attribute/{name}"), None)
            .await
            .as_str()
            .map(str::to_owned)
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or("").to_owned()
    }

    /// Looks at the page as people will: a whole-page PNG at a desktop
    /// width (1280 px) and a phone width (390 px) under
    /// `target/tmp/screenshots/` (kept as CI artifacts), then an axe-core run
    /// over the page, which must find no WCAG 2.2 A/AA violation.
    pub async fn screenshot(&self, name: &str) {
        self.screenshots_only(name).await;
        let violations = self.axe_violations().await;
        assert!(violations.as_array().is_none_or(Vec::is_empty), "axe-core found violations on {name}: {violations:#}");
    }

    /// The two screenshots alone, for a page whose Content-Security-Policy
    /// `sandbox` forbids every script (the raw mail preview), where axe-core
    /// cannot run.
    pub async fn screenshots_only(&self, name: &str) {
        for width in [1280, 390] {
            self.resize(width).await;
            self.save_png(&format!("{name}-{width}")).await;
        }
        self.reset_size().await;
    }

    /// Sets the viewport to `width` (a phone's when narrow) and tall enough
    /// for the whole page, so a screenshot shows all of it (at most 6,000 px),
    /// through Chromium's device emulation: a window cannot grow past the
    /// headless screen. It holds across navigations until the next
    /// screenshot.
    pub async fn resize(&self, width: u32) {
        let mut height = 900;
        for _ in 0..2 {
            let params = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600});
            self.call(
                reqwest::Method::POST,
                "/goog/cdp/execute",
                Some(json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": params})),
            )
            .await;
            height = self
                .call(
                    reqwest::Method::POST,
                    "/execute/sync",
                    Some(json!({"script": "return document.documentElement.scrollHeight;", "args": []})),
                )
                .await
                .as_u64()
                .unwrap_or(900)
                .clamp(600, 6000);
        }
    }

    /// Back to the window's own viewport.
    async fn reset_size(&self) {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.clearDeviceMetricsOverride", "params": {}})),
        )
        .await;
    }

    async fn save_png(&self, name: &str) {
        use base64::Engine;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    /// Runs axe-core (installed by `npm ci` in `tests/browser-tools/`) in the
    /// page with the WCAG 2.0–2.2 A and AA rules, and returns its violations
    /// (rule, impact, help text and up to five offending elements each).
    /// Under CI a missing axe-core fails; elsewhere the check is skipped with
    /// a message, as the browser itself is.
    pub async fn axe_violations(&self) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/browser-tools/node_modules/axe-core/axe.min.js");
        let Ok(axe) = std::fs::read_to_string(&path) else {
            assert!(std::env::var("CI").is_err(), "CI must install axe-core (npm ci in tests/browser-tools)");
            eprintln!("axe-core not installed ({}): accessibility check not run", path.display());
            super::skip::check("accessibility checks", "axe-core not installed: npm ci in tests/browser-tools");
            return json!([]);
        };
        let script = format!(
            "const done = arguments[arguments.length - 1];\n{axe}\n\
             axe.run(document, {{iframes: false, resultTypes: ['violations'], runOnly: {{type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}}}})\n\
               .then(r => done(r.violations.map(v => ({{rule: v.id, impact: v.impact, help: v.help,\n\
                 nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': ' + n.failureSummary)}}))))\n\
               .catch(e => done([{{rule: 'axe-error', help: String(e)}}]));"
        );
        self.call(reqwest::Method::POST, "/timeouts", Some(json!({"script": 60_000}))).await;
        self.call(reqwest::Method::POST, "/execute/async", Some(json!({"script": script, "args": []}))).await
    }
}

/// Whether a WebDriver error only says the page changed under the command
/// (a navigation replaced the element, or the document it belonged to).
fn page_changed(err: &Value) -> bool {
    matches!(err["error"].as_str(), Some("stale element reference" | "no such element"))
        || err["message"].as_str().is_some_and(|m| m.contains("does not belong to the document"))
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Best effort: end the session, then the driver (and its browser).
        let _ = std::process::Command::new("curl").args(["-s", "-X", "DELETE", &self.session]).output();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
