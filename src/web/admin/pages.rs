//! askama templates of the organiser UI (in `templates/admin/`). Every
//! value is HTML-escaped by askama; no template marks anything safe.

use super::auth::{CsrfToken, Organiser};
use crate::services::FieldError;
use crate::services::accounts::{Account, Role};
use crate::services::consent::ConsentEventView;
use crate::services::lists::ListView;
use crate::services::subscribers::SubscriberView;
use crate::store::ApiTokenSummary;
use askama::Template;
use askama_web::WebTemplate;
use chrono::{DateTime, Utc};

/// What the layout around every page needs.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub group: String,
    /// The organiser logged in, if anyone is.
    pub me: Option<Organiser>,
    /// For the logout form in the header.
    pub csrf: String,
    /// Which navigation entry is current: "dashboard", "lists", …
    pub section: &'static str,
}

impl Chrome {
    pub fn new(group: &str, me: &Organiser, csrf: &CsrfToken, section: &'static str) -> Self {
        Self { group: group.to_owned(), me: Some(me.clone()), csrf: csrf.0.clone(), section }
    }

    /// For pages shown before login.
    pub fn anonymous(group: String) -> Self {
        Self { group, me: None, csrf: String::new(), section: "" }
    }

    pub fn is_admin(&self) -> bool {
        self.me.as_ref().is_some_and(Organiser::is_admin)
    }

    /// `aria-current` for the navigation entry `section`.
    pub fn current(&self, section: &str) -> &'static str {
        if self.section == section { "page" } else { "false" }
    }
}

/// How every page shows a time.
pub fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn when_opt(t: &Option<DateTime<Utc>>) -> String {
    t.as_ref().map(when).unwrap_or_else(|| "—".to_owned())
}

fn error_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub title: String,
    pub message: String,
    pub fields: Vec<FieldError>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    /// The token for this form (the layout's is empty before login).
    pub csrf: String,
    pub email: String,
    /// Where to go after logging in.
    pub next: String,
    pub error: Option<String>,
    pub notice: Option<&'static str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/setup.html")]
pub struct SetupPage {
    pub chrome: Chrome,
    pub csrf: String,
    pub token: String,
    pub email: String,
    pub errors: Vec<FieldError>,
}

impl SetupPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/setup_gone.html")]
pub struct SetupGonePage {
    pub chrome: Chrome,
}

/// A list with its confirmed subscriber count.
#[derive(Debug, Clone)]
pub struct ListSummary {
    pub list: ListView,
    pub confirmed: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/dashboard.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    pub lists: Vec<ListSummary>,
    /// Recent and scheduled updates with their delivery progress.
    pub updates: Vec<super::updates::UpdateRow>,
    /// Operator alerts not yet dismissed (policy blocks, SNS confirmations).
    pub alerts: Vec<crate::store::AlertRow>,
    /// "Before you send": the sender authentication checks that fail (empty
    /// when all pass or the gate is off).
    pub before_send: Vec<crate::services::sender_auth::Check>,
    /// `require`, `warn` or `off`.
    pub sender_auth_mode: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/lists.html")]
pub struct ListsPage {
    pub chrome: Chrome,
    pub lists: Vec<ListSummary>,
    pub notice: Option<&'static str>,
    /// The copy-paste subscribe form of each public list.
    pub embeds: Vec<Embed>,
    /// `TIDINGS_CORS_ORIGINS`, to say where the form may send people back to.
    pub sites: Vec<String>,
    /// How far back outdated forms are looked for.
    pub outdated_days: i64,
}

/// One public list's form for the campaign's own site.
pub struct Embed {
    pub slug: String,
    pub name: String,
    /// The list's own sign-up page (`/subscribe?list=…`), to share as a link.
    pub link: String,
    pub snippet: String,
    /// The consent wording version the snippet shows (the current one).
    pub version: i64,
    /// Pages whose pasted form still shows an older version.
    pub outdated: Vec<OutdatedFormView>,
}

/// A page still showing an older form, as the lists page words it.
pub struct OutdatedFormView {
    /// The page, or "a page we do not know" when the form sent no source.
    pub source: String,
    pub version: i64,
    pub requests: i64,
    /// The date of its latest subscribe (YYYY-MM-DD).
    pub last_seen: String,
}

/// The create and edit forms.
#[derive(Template, WebTemplate)]
#[template(path = "admin/list_form.html")]
pub struct ListFormPage {
    pub chrome: Chrome,
    /// `None` when creating.
    pub id: Option<String>,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub frequency: String,
    pub public: bool,
    pub archive: bool,
    pub errors: Vec<FieldError>,
}

impl ListFormPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

/// A list's consent wording: the version in force and the form publishing
/// the next, with the warnings the organiser must acknowledge.
#[derive(Template, WebTemplate)]
#[template(path = "admin/wording.html")]
pub struct WordingPage {
    pub chrome: Chrome,
    pub list: ListView,
    pub current: Option<crate::services::consent::StatementView>,
    /// What is in the form (the current wording, or what was typed).
    pub text: String,
    /// Why the wording needs acknowledging before it is published.
    pub warnings: Vec<String>,
    pub errors: Vec<FieldError>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/list_delete.html")]
pub struct ListDeletePage {
    pub chrome: Chrome,
    pub list: ListView,
    pub confirmed: i64,
}

/// A status filter choice.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/subscribers.html")]
pub struct SubscribersPage {
    pub chrome: Chrome,
    pub q: String,
    pub lists: Vec<Choice>,
    pub statuses: Vec<Choice>,
    pub created_from: String,
    pub created_to: String,
    pub subscribers: Vec<SubscriberView>,
    /// The same search, one page on.
    pub next_url: Option<String>,
    /// The same search from its first page (when not on it).
    pub first_url: Option<String>,
    pub errors: Vec<FieldError>,
    /// A fixed message a redirect asked for ("erased").
    pub notice: Option<&'static str>,
}

impl SubscribersPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/subscriber.html")]
pub struct SubscriberPage {
    pub chrome: Chrome,
    pub subscriber: SubscriberView,
    pub ledger: Vec<ConsentEventView>,
}

/// A token shown once, just after it was created.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub token: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/tokens.html")]
pub struct TokensPage {
    pub chrome: Chrome,
    pub tokens: Vec<ApiTokenSummary>,
    pub created: Option<NewToken>,
    pub name: String,
    pub errors: Vec<FieldError>,
    pub notice: Option<&'static str>,
}

impl TokensPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

/// An account just added, with its password when Tidings generated it.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: String,
    pub role: Role,
    pub generated_password: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/users.html")]
pub struct UsersPage {
    pub chrome: Chrome,
    pub users: Vec<Account>,
    pub created: Option<NewAccount>,
    pub email: String,
    pub role: Role,
    pub errors: Vec<FieldError>,
}

impl UsersPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }

    pub fn roles(&self) -> &'static [Role] {
        Role::ALL
    }

    pub fn is_chosen(&self, role: &Role) -> bool {
        *role == self.role
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    pub chrome: Chrome,
    pub input: crate::services::audit::FilterInput,
    pub entries: Vec<crate::store::AuditRow>,
    pub errors: Vec<FieldError>,
    pub csv_link: String,
    pub older_link: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/rights.html")]
pub struct RightsPage {
    pub chrome: Chrome,
    pub requests: Vec<crate::services::rights::RightsRequest>,
    pub kinds: &'static [crate::domain::RightsKind],
    pub form: crate::services::rights::NewRightsRequest,
    pub received: String,
    pub errors: Vec<FieldError>,
    pub notice: Option<&'static str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/rights_request.html")]
pub struct RightsRequestPage {
    pub chrome: Chrome,
    pub r: crate::services::rights::RightsRequest,
    pub errors: Vec<FieldError>,
    pub notice: Option<&'static str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/privacy.html")]
pub struct PrivacyNoticePage {
    pub chrome: Chrome,
    pub current: Option<crate::services::consent::NoticeView>,
    pub diff: Option<Vec<crate::services::notice_change::DiffLine>>,
    pub text: String,
    pub url: String,
    pub published: Option<i64>,
    pub errors: Vec<FieldError>,
}
