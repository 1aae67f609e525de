//! Builds RFC 5322 messages from askama templates in `templates/emails/`.
//!
//! Transactional mail (this module so far) carries
//! `Auto-Submitted: auto-generated` and no list headers, a text part and an
//! HTML alternative, a stable `Message-ID`, and nothing promotional. Each
//! body is encoded by [`super::encoding`], as every body Tidings sends is.

use super::MailError;
use super::encoding;
use crate::domain::{EmailAddress, MailKind};
use askama::Template;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

/// A message ready for the outbox.
#[derive(Debug, Clone)]
pub struct Composed {
    pub message_id: String,
    pub recipient: String,
    pub bytes: Vec<u8>,
}

/// What every message needs to know about the sender.
#[derive(Debug)]
pub struct Composer {
    pub from: Mailbox,
    /// Right-hand side of Message-IDs (the base URL's host).
    pub host: String,
    pub group_name: String,
    pub contact_address: String,
    /// Signs every message when a DKIM key is configured.
    pub dkim: Option<lettre::message::dkim::DkimConfig>,
}

/// A message queued as what it says rather than as bytes: composed (and
/// signed) by the outbox worker when it sends. Stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum Recipe {
    Confirmation(ConfirmationMail),
}

impl Recipe {
    pub fn to_json(&self) -> Result<String, MailError> {
        Ok(serde_json::to_string(self)?)
    }

    pub fn from_json(json: &str) -> Result<Self, MailError> {
        Ok(serde_json::from_str(json)?)
    }
}

/// The Subject of each kind of transactional mail (the outbox's `kind`),
/// as sent: the data copy lists them once the message itself is gone.
pub fn transactional_subject(group: &str, kind: MailKind) -> Option<String> {
    match kind {
        MailKind::Confirmation => Some(format!("Please confirm your subscription to {group}")),
        MailKind::DataCopyLink => Some(format!("Confirm your request for a copy of your data held by {group}")),
        MailKind::DataCopy => Some(format!("Your data held by {group}")),
        MailKind::Test => None,
    }
}

/// The double opt-in mail's facts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfirmationMail {
    pub to: String,
    /// The greeting name ('' for none).
    pub name: String,
    /// The names of the lists the link confirms.
    pub lists: Vec<String>,
    /// How often each of those lists mails, in the same order ('' when not
    /// said; absent in mail queued before lists said it).
    #[serde(default)]
    pub frequencies: Vec<String>,
    pub link: String,
    pub expires_hours: u64,
    /// The privacy notice's address, linked from the mail (UK GDPR Art 13:
    /// the notice at the point of collection). Empty in recipes queued
    /// before it was added; the mail then has no link.
    #[serde(default)]
    pub privacy_url: String,
}

/// What the confirmation mail says; rendered as text and as HTML.
struct Confirm<'a> {
    group: &'a str,
    greeting_name: &'a str,
    /// Each list's name, with how often it mails when that is said.
    lists: Vec<String>,
    link: &'a str,
    expires_hours: u64,
    contact: &'a str,
    privacy_url: &'a str,
}

#[derive(Template)]
#[template(path = "emails/confirm.txt")]
struct ConfirmText<'a> {
    m: &'a Confirm<'a>,
}

#[derive(Template)]
#[template(path = "emails/confirm.html")]
struct ConfirmHtml<'a> {
    m: &'a Confirm<'a>,
}

/// A short transactional message: paragraphs and an optional button link.
struct Notice<'a> {
    subject: &'a str,
    group: &'a str,
    greeting_name: &'a str,
    paragraphs: &'a [String],
    link: Option<&'a str>,
    button: &'a str,
    contact: &'a str,
}

#[derive(Template)]
#[template(path = "emails/notice.txt")]
struct NoticeText<'a> {
    m: &'a Notice<'a>,
}

#[derive(Template)]
#[template(path = "emails/notice.html")]
struct NoticeHtml<'a> {
    m: &'a Notice<'a>,
}

impl Composer {
    /// A fresh `<uuid@host>` Message-ID.
    pub fn new_message_id(&self) -> String {
        format!("<{}@{}>", uuid::Uuid::now_v7(), self.host)
    }

    /// Composes a message queued as a [`Recipe`], under the Message-ID it
    /// was queued with.
    pub fn compose(&self, recipe: &Recipe, message_id: &str) -> Result<Vec<u8>, MailError> {
        match recipe {
            Recipe::Confirmation(c) => self.confirmation(c, message_id),
        }
    }

    /// The double opt-in mail: one link that confirms `c.lists`.
    fn confirmation(&self, c: &ConfirmationMail, message_id: &str) -> Result<Vec<u8>, MailError> {
        let m = Confirm {
            group: &self.group_name,
            greeting_name: &c.name,
            lists: c
                .lists
                .iter()
                .enumerate()
                .map(|(i, name)| match c.frequencies.get(i).map(|f| f.trim()).filter(|f| !f.is_empty()) {
                    Some(f) => format!("{name} (how often: {f})"),
                    None => name.clone(),
                })
                .collect(),
            link: &c.link,
            expires_hours: c.expires_hours,
            contact: &self.contact_address,
            privacy_url: &c.privacy_url,
        };
        let text = ConfirmText { m: &m }.render().map_err(|e| MailError::Template("confirmation text", e))?;
        let html = ConfirmHtml { m: &m }.render().map_err(|e| MailError::Template("confirmation html", e))?;
        let subject = transactional_subject(&self.group_name, MailKind::Confirmation).unwrap_or_default();
        let to: lettre::Address = c.to.parse()?;
        let body = alternative(&text, &html);
        Ok(self.message(Mailbox::new(display_name(&c.name), to), &subject, message_id, body)?.formatted())
    }

    /// Asks the supporter to confirm, with one click, that they want a copy
    /// of their data mailed to this address.
    pub fn data_copy_link(&self, to: &EmailAddress, name: &str, link: &str, hours: u64) -> Result<Composed, MailError> {
        let subject = transactional_subject(&self.group_name, MailKind::DataCopyLink).unwrap_or_default();
        let paragraphs = [
            format!(
                "Someone (we hope you) asked {} for a copy of the data it holds about this address.",
                self.group_name
            ),
            "To receive it at this address, open this link and press the button:".to_owned(),
            format!("The link works for {hours} hours, once. If you did not ask for this, ignore this message."),
        ];
        let (text, html) = self.notice(&subject, name, &paragraphs, Some(link), "Send me my data")?;
        self.transactional(to, name, &subject, text, html)
    }

    /// The supporter's data, as the JSON file attached.
    pub fn data_copy(&self, to: &EmailAddress, name: &str, json: Vec<u8>) -> Result<Composed, MailError> {
        let subject = transactional_subject(&self.group_name, MailKind::DataCopy).unwrap_or_default();
        let paragraphs = [
            format!(
                "Attached is a copy of everything {} holds about you: your details, your subscriptions, every consent record with the wording you agreed to, and the updates sent to you.",
                self.group_name
            ),
            "It is a JSON file, which any text editor can open. Reply to this message if you have any questions."
                .to_owned(),
        ];
        let (text, html) = self.notice(&subject, name, &paragraphs, None, "")?;
        let attachment = lettre::message::Attachment::new("my-data.json".to_owned()).body(
            encoding::attachment(&json),
            lettre::message::header::ContentType::parse("application/json").map_err(|_| MailError::Attachment)?,
        );
        let body = MultiPart::mixed().multipart(alternative(&text, &html)).singlepart(attachment);
        self.transactional_body(to, name, &subject, body)
    }

    fn notice(
        &self,
        subject: &str,
        name: &str,
        paragraphs: &[String],
        link: Option<&str>,
        button: &str,
    ) -> Result<(String, String), MailError> {
        let m = Notice {
            subject,
            group: &self.group_name,
            greeting_name: name,
            paragraphs,
            link,
            button,
            contact: &self.contact_address,
        };
        let text = NoticeText { m: &m }.render().map_err(|e| MailError::Template("notice text", e))?;
        let html = NoticeHtml { m: &m }.render().map_err(|e| MailError::Template("notice html", e))?;
        Ok((text, html))
    }

    fn transactional(
        &self,
        to: &EmailAddress,
        name: &str,
        subject: &str,
        text: String,
        html: String,
    ) -> Result<Composed, MailError> {
        self.transactional_body(to, name, subject, alternative(&text, &html))
    }

    fn transactional_body(
        &self,
        to: &EmailAddress,
        name: &str,
        subject: &str,
        body: MultiPart,
    ) -> Result<Composed, MailError> {
        let message_id = self.new_message_id();
        let to_mailbox = Mailbox::new(display_name(name), to.as_str().parse()?);
        let message = self.message(to_mailbox, subject, &message_id, body)?;
        Ok(Composed { message_id, recipient: to.as_str().to_owned(), bytes: message.formatted() })
    }

    /// A transactional message, signed when DKIM is configured.
    fn message(&self, to: Mailbox, subject: &str, message_id: &str, body: MultiPart) -> Result<Message, MailError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.to_owned()))
            .date_now()
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-generated".to_owned()))
            .multipart(body)?;
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        Ok(message)
    }
}

/// A text part and its HTML alternative, each encoded by [`encoding::text`].
fn alternative(text: &str, html: &str) -> MultiPart {
    MultiPart::alternative_plain_html(encoding::text(text), encoding::text(html))
}

/// The decoded text and HTML parts of a message we composed (for previews).
#[derive(Debug, Clone, Default)]
pub struct Parts {
    pub text: String,
    pub html: String,
}

/// The recipient's name as a `To` display name, or `None` if there is
/// nothing to show. Names are checked when they come in, but a row written
/// some other way (an old import, a manual fix in the database) must still
/// never reach the header with a line break or other control character:
/// lettre panics on those while rendering the header, which would stop
/// the worker at that recipient.
pub(crate) fn display_name(name: &str) -> Option<String> {
    let cleaned: String = name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_owned())
}

pub fn parts(raw: &[u8]) -> Parts {
    match mail_parser::MessageParser::default().parse(raw) {
        Some(m) => Parts {
            text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            html: m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        },
        None => Parts::default(),
    }
}
