//! The organiser UI under `/admin`, through the real HTTP server: logging
//! in and out, sessions, CSRF, roles, first-run setup, the pages, and
//! keyset pagination of subscribers (also through the API).
//!
//! [`AdminClient`] is a small browser stand-in: it keeps cookies, reads the
//! CSRF token out of a page's form, and posts forms with it.

mod access;
mod auth;
mod browser;
mod pages;
mod search;
mod setup;

use crate::support::app::TestApp;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One HTTP answer, read in full.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    /// Every `Set-Cookie` header, as sent.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    }

    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).unwrap_or_else(|| panic!("no CSRF field in: {}", self.body)) + marker.len();
        self.body[start..].chars().take_while(|c| *c != '"').collect()
    }
}

/// A cookie-keeping client for `/admin`; never follows redirects.
pub struct AdminClient {
    base: String,
    http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
    /// Sent as `X-Forwarded-For`, for apps that trust that header.
    address: Option<String>,
}

impl AdminClient {
    pub fn new(app: &TestApp) -> Self {
        Self::at(&app.base)
    }

    /// A client for a server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn at(base: &str) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self { base: base.to_owned(), http, cookies: Mutex::new(BTreeMap::new()), address: None }
    }

    /// A client that claims to come from `ip` (through a trusted proxy).
    pub fn from_address(app: &TestApp, ip: &str) -> Self {
        Self { address: Some(ip.to_owned()), ..Self::new(app) }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies.lock().unwrap().insert(name.to_owned(), value.to_owned());
    }

    fn cookie_header(&self) -> String {
        self.cookies.lock().unwrap().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let mut req = req.header("cookie", self.cookie_header());
        if let Some(ip) = &self.address {
            req = req.header("x-forwarded-for", ip);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.text().await.expect("body");
        let answer = Answer { status, headers, body };
        let mut jar = self.cookies.lock().unwrap();
        for c in answer.set_cookies() {
            let pair = c.split(';').next().unwrap_or("");
            let (name, value) = pair.split_once('=').expect("cookie pair");
            if c.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
        drop(jar);
        answer
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    /// Posts exactly `pairs` (no CSRF token is added).
    pub async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Answer {
        self.send(self.http.post(format!("{}{path}", self.base)).form(pairs)).await
    }

    /// Posts exactly `pairs`, with one extra request header.
    pub async fn post_with_header(&self, path: &str, header: (&str, &str), pairs: &[(&str, &str)]) -> Answer {
        self.send(self.http.post(format!("{}{path}", self.base)).header(header.0, header.1).form(pairs)).await
    }

    /// Posts `pairs` to `action` with the CSRF token of the form on `page`.
    pub async fn submit(&self, page: &str, action: &str, pairs: &[(&str, &str)]) -> Answer {
        let form = self.get(page).await;
        assert_eq!(form.status, 200, "GET {page}: {}", form.body);
        let csrf = form.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(pairs);
        self.post(action, &all).await
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Answer {
        self.submit("/admin/login", "/admin/login", &[("email", email), ("password", password)]).await
    }
}

/// A path from the route table with its parameters filled in.
pub fn concrete(path: &str) -> String {
    path.replace("{id}", &uuid::Uuid::now_v7().to_string())
        .replace("{token}", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
}
