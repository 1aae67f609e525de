//! askama page templates (in `templates/`). Every value is HTML-escaped by
//! askama unless a template says otherwise, and none do.

use crate::services::FieldError;
use crate::services::supporter::{PreferenceRow, PublicList};
use askama::Template;
use askama_web::WebTemplate;

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub message: String,
    pub fields: Vec<FieldError>,
}

/// The subscribe form, as `/` and `/subscribe` show it.
#[derive(Template, WebTemplate)]
#[template(path = "subscribe.html")]
pub struct SubscribePage {
    pub group: String,
    pub heading: String,
    pub lists: Vec<PublicList>,
    pub email: String,
    pub name: String,
    pub source: String,
    /// Slugs whose consent box was ticked (kept when the form comes back
    /// with errors).
    pub ticked: Vec<String>,
    pub errors: Vec<FieldError>,
}

impl SubscribePage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }

    pub fn is_ticked(&self, slug: &str) -> bool {
        self.ticked.iter().any(|t| t == slug)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "check_inbox.html")]
pub struct CheckInboxPage {
    pub group: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub group: String,
    pub token: String,
    pub list_names: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "confirmed.html")]
pub struct ConfirmedPage {
    pub group: String,
    pub list_names: Vec<String>,
    pub preferences_url: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "link_gone.html")]
pub struct LinkGonePage {
    pub group: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "unsubscribe.html")]
pub struct UnsubscribePage {
    pub group: String,
    pub token: String,
    pub list_name: String,
    pub active: bool,
    pub done: bool,
    pub preferences_url: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "preferences.html")]
pub struct PreferencesPage {
    pub group: String,
    pub token: String,
    pub email: String,
    pub name: String,
    pub lists: Vec<PreferenceRow>,
    pub saved: bool,
    pub errors: Vec<FieldError>,
}

#[derive(Template, WebTemplate)]
#[template(path = "privacy.html")]
pub struct PrivacyPage {
    pub group: String,
    pub version: i64,
    pub effective_from: String,
    pub paragraphs: Vec<String>,
}
