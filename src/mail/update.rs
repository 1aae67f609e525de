//! Updates as email: markdown rendered once per update into safe HTML with
//! inlined CSS, then one personalised copy per recipient with the list
//! headers README's "Sending updates" lists (List-Id, List-Unsubscribe,
//! one-click POST, Precedence: bulk) and a stable Message-ID.
//!
//! Markdown is the organiser's, but it ends up in thousands of inboxes and
//! in the public archive, so raw HTML in it is shown as text and links may
//! only be http(s), mailto or relative.

use super::{Composed, Composer, MailError};
use askama::Template;
use base64::Engine;
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};

/// Styles for the markdown body, inlined into each element once per update
/// (many mail clients ignore `<style>` blocks).
const BODY_CSS: &str = "
p, li { font-size: 16px; line-height: 1.55; color: #1b1b1b; }
h1, h2, h3 { color: #111111; line-height: 1.25; }
a { color: #1d4ed8; }
blockquote { margin: 0 0 0 4px; padding: 0 0 0 12px; border-left: 4px solid #d4d4d4; color: #404040; }
img { max-width: 100%; height: auto; }
code { font-family: monospace; background: #f3f3f3; }
";

/// Renders organiser markdown to HTML that is safe to mail and publish.
pub fn markdown_to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        // A new line the organiser typed stays one (as in the plain-text
        // part), so a two-line sign-off does not run into one line.
        Event::SoftBreak => Event::HardBreak,
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Link { link_type, dest_url: safe_url(dest_url), title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Image { link_type, dest_url: safe_url(dest_url), title, id })
        }
        other => other,
    });
    let mut html = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim().to_ascii_lowercase();
    let allowed = lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:")
        || lower.starts_with('/')
        || lower.starts_with('#')
        || !lower.contains(':');
    if allowed { url } else { CowStr::Borrowed("#") }
}

/// An update rendered once, ready to be personalised.
#[derive(Debug, Clone)]
pub struct PreparedUpdate {
    pub update_id: uuid::Uuid,
    pub subject: String,
    /// Body HTML with CSS inlined; may contain `{{name}}`.
    pub body_html: String,
    /// The plain-text part's body ([`super::plain::markdown_to_text`]);
    /// may contain `{{name}}`.
    pub body_text: String,
}

impl PreparedUpdate {
    pub fn new(update_id: uuid::Uuid, subject: &str, markdown: &str) -> Result<Self, MailError> {
        let html = markdown_to_html(markdown);
        let body_html = css_inline::CSSInliner::options()
            .load_remote_stylesheets(false)
            .build()
            .inline_fragment(&html, BODY_CSS)
            .map_err(|e| MailError::Inline(e.to_string()))?;
        let body_text = super::plain::markdown_to_text(markdown);
        Ok(Self { update_id, subject: subject.to_owned(), body_html, body_text })
    }
}

/// One person's copy.
#[derive(Debug, Clone)]
pub struct Recipient<'a> {
    pub subscriber_id: uuid::Uuid,
    pub email: &'a str,
    pub name: &'a str,
    /// The list the copy is identified by (`List-Id`): the first it is for.
    pub list_slug: &'a str,
    pub list_name: &'a str,
    /// The other lists this one copy is sent for (usually none); the footer
    /// names them all, and `unsubscribe_url` leaves them all.
    pub other_list_names: Vec<&'a str>,
    pub unsubscribe_url: String,
    pub preferences_url: String,
    /// Test sends are marked as such in the subject.
    pub test: bool,
}

#[derive(Template)]
#[template(path = "emails/update.html")]
struct UpdateHtml<'a> {
    subject: &'a str,
    body: &'a str,
    group: &'a str,
    contact: &'a str,
    list_name: &'a str,
    unsubscribe_url: &'a str,
    preferences_url: &'a str,
}

#[derive(Template)]
#[template(path = "emails/update.txt")]
struct UpdateText<'a> {
    body: &'a str,
    group: &'a str,
    contact: &'a str,
    list_name: &'a str,
    unsubscribe_url: &'a str,
    preferences_url: &'a str,
}

fn html_escape(s: &str) -> String {
    askama::filters::escape(s, askama::filters::Html).map(|e| e.to_string()).unwrap_or_default()
}

/// The lists a copy is for, as its footer names them: “A”, “B” and “C”.
fn lists_phrase(first: &str, others: &[&str]) -> String {
    let quoted: Vec<String> = std::iter::once(first).chain(others.iter().copied()).map(|n| format!("“{n}”")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// `List-Id: phrase <slug.host>` (RFC 2919). The id comes from the slug
/// alone (lowercase letters, digits and hyphens, so nothing in it can
/// close the brackets). The name becomes the phrase: a quoted string, with
/// `"` and `\` escaped, when it is printable ASCII without `<` or `>`;
/// otherwise RFC 2047
/// encoded words, which a parser decodes back to the name and which
/// cannot contain `<`, `>` or quotes. The value is handed to lettre
/// already encoded, so it is not encoded a second time as a whole.
fn list_id_header(name: &str, slug: &str, host: &str) -> HeaderValue {
    let value = list_id(name, slug, host);
    HeaderValue::dangerous_new_pre_encoded(HeaderName::new_from_ascii_str("List-Id"), value.clone(), value)
}

fn list_id(name: &str, slug: &str, host: &str) -> String {
    let clean: String = name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let clean = clean.trim();
    // Angle brackets are legal in a quoted phrase, but a careless parser
    // could still take one for the id: such names are encoded too.
    let plain = clean.chars().all(|c| (c.is_ascii_graphic() && c != '<' && c != '>') || c == ' ');
    let phrase = if plain {
        let mut quoted = String::with_capacity(clean.len() + 2);
        quoted.push('"');
        for c in clean.chars() {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push('"');
        quoted
    } else {
        encoded_words(clean)
    };
    format!("{phrase} <{slug}.{host}>")
}

/// RFC 2047 `B` encoded words for `text`, each at most 75 characters and
/// split only between characters, separated by folding white space.
fn encoded_words(text: &str) -> String {
    // 75 - len("=?utf-8?b??=") = 63 base64 characters: 45 bytes of text.
    const MAX_BYTES: usize = 45;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > MAX_BYTES {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?utf-8?b?{}?=", base64::engine::general_purpose::STANDARD.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

impl Composer {
    /// The stable Message-ID of one person's copy of one update: a retry
    /// after a crash carries the same id, so receivers can de-duplicate.
    pub fn update_message_id(&self, update_id: uuid::Uuid, subscriber_id: uuid::Uuid) -> String {
        format!("<{update_id}.{subscriber_id}@{}>", self.host)
    }

    /// One recipient's copy of an update.
    pub fn update(&self, u: &PreparedUpdate, r: &Recipient<'_>) -> Result<Composed, MailError> {
        self.update_with(u, None, r)
    }

    /// One recipient's copy, from the update's [`UpdateBodies`] when it has
    /// them (the bulk path: no template rendering or body encoding per copy).
    pub fn update_with(
        &self,
        u: &PreparedUpdate,
        bodies: Option<&UpdateBodies>,
        r: &Recipient<'_>,
    ) -> Result<Composed, MailError> {
        let greeting_name = if r.name.is_empty() { "friend" } else { r.name };
        let lists = lists_phrase(r.list_name, &r.other_list_names);
        let parts = match bodies {
            Some(b) => {
                let text = b.text.fill(&Fields {
                    name: greeting_name,
                    list_name: &lists,
                    unsubscribe_url: &r.unsubscribe_url,
                    preferences_url: &r.preferences_url,
                });
                let html = b.html.fill(&Fields {
                    name: &html_escape(greeting_name),
                    list_name: &html_escape(&lists),
                    unsubscribe_url: &html_escape(&r.unsubscribe_url),
                    preferences_url: &html_escape(&r.preferences_url),
                });
                MultiPart::alternative_plain_html(
                    Body::dangerous_pre_encoded(text, ContentTransferEncoding::QuotedPrintable),
                    Body::dangerous_pre_encoded(html, ContentTransferEncoding::QuotedPrintable),
                )
            }
            None => {
                let body_html = u.body_html.replace(NAME_TAG, &html_escape(greeting_name));
                let body_text = u.body_text.replace(NAME_TAG, greeting_name);
                let (text, html) = self.render_bodies(
                    u,
                    &body_text,
                    &body_html,
                    &Fields {
                        name: greeting_name,
                        list_name: &lists,
                        unsubscribe_url: &r.unsubscribe_url,
                        preferences_url: &r.preferences_url,
                    },
                )?;
                MultiPart::alternative_plain_html(text, html)
            }
        };
        let message_id =
            if r.test { self.new_message_id() } else { self.update_message_id(u.update_id, r.subscriber_id) };
        let subject = if r.test { format!("[TEST] {}", u.subject) } else { u.subject.clone() };
        let to = Mailbox::new(super::compose::display_name(r.name), r.email.parse()?);
        let mut message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .date_now()
            .raw_header(list_id_header(r.list_name, r.list_slug, &self.host))
            // Only the https link: no mailbox reads unsubscribe mail, so a
            // mailto here would promise what nothing keeps.
            .raw_header(header("List-Unsubscribe", format!("<{}>", r.unsubscribe_url)))
            .raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_owned()))
            .raw_header(header("Precedence", "bulk".to_owned()))
            .multipart(parts)?;
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        Ok(Composed { message_id, recipient: r.email.to_owned(), bytes: message.formatted() })
    }

    /// The plain-text and HTML bodies (the text already personalised).
    fn render_bodies(
        &self,
        u: &PreparedUpdate,
        body_text: &str,
        body_html: &str,
        f: &Fields<'_>,
    ) -> Result<(String, String), MailError> {
        let html = UpdateHtml {
            subject: &u.subject,
            body: body_html,
            group: &self.group_name,
            contact: &self.contact_address,
            list_name: f.list_name,
            unsubscribe_url: f.unsubscribe_url,
            preferences_url: f.preferences_url,
        }
        .render()
        .map_err(|e| MailError::Template("update html", e))?;
        let text = UpdateText {
            body: body_text,
            group: &self.group_name,
            contact: &self.contact_address,
            list_name: f.list_name,
            unsubscribe_url: f.unsubscribe_url,
            preferences_url: f.preferences_url,
        }
        .render()
        .map_err(|e| MailError::Template("update text", e))?;
        Ok((text, html))
    }

    /// Renders an update's bodies once, with a marker where each person's
    /// own values go, and encodes everything around the markers as
    /// quoted-printable up front. `None` when lettre would not choose
    /// quoted-printable for this update (pure short-lined ASCII, or mostly
    /// non-Latin text, where base64 is smaller): those take the ordinary path.
    pub fn update_bodies(&self, u: &PreparedUpdate) -> Option<UpdateBodies> {
        let texts = [u.subject.as_str(), &u.body_html, &u.body_text, &self.group_name, &self.contact_address];
        if texts.iter().any(|t| t.contains(MARK_OPEN) || t.contains(MARK_CLOSE)) {
            return None;
        }
        let markers = Fields {
            name: &Field::Name.marker(),
            list_name: &Field::ListName.marker(),
            unsubscribe_url: &Field::UnsubscribeUrl.marker(),
            preferences_url: &Field::PreferencesUrl.marker(),
        };
        let body_html = u.body_html.replace(NAME_TAG, markers.name);
        let body_text = u.body_text.replace(NAME_TAG, markers.name);
        let (text, html) = self.render_bodies(u, &body_text, &body_html, &markers).ok()?;
        // Decide as lettre would for a typical copy.
        let typical = |s: &str| {
            let s = s
                .replace(markers.name, "friend")
                .replace(markers.list_name, "Updates")
                .replace(markers.unsubscribe_url, "https://example.org/unsubscribe/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
                .replace(markers.preferences_url, "https://example.org/preferences/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
            Body::new(s).encoding() == ContentTransferEncoding::QuotedPrintable
        };
        if !typical(&text) || !typical(&html) {
            return None;
        }
        Some(UpdateBodies { text: Encoded::new(&text), html: Encoded::new(&html) })
    }
}

/// Where the supporter's name goes in an update's markdown.
const NAME_TAG: &str = "{{name}}";
/// Markers around a field in a body rendered once (private-use characters).
const MARK_OPEN: char = '\u{E000}';
const MARK_CLOSE: char = '\u{E001}';

/// The values that differ between copies of an update.
struct Fields<'a> {
    name: &'a str,
    list_name: &'a str,
    unsubscribe_url: &'a str,
    preferences_url: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    ListName,
    UnsubscribeUrl,
    PreferencesUrl,
}

impl Field {
    const ALL: [Field; 4] = [Field::Name, Field::ListName, Field::UnsubscribeUrl, Field::PreferencesUrl];

    fn marker(self) -> String {
        format!("{MARK_OPEN}{}{MARK_CLOSE}", self as u8)
    }

    fn value<'a>(self, f: &Fields<'a>) -> &'a str {
        match self {
            Field::Name => f.name,
            Field::ListName => f.list_name,
            Field::UnsubscribeUrl => f.unsubscribe_url,
            Field::PreferencesUrl => f.preferences_url,
        }
    }
}

/// An update's two bodies, rendered and encoded once (see
/// [`Composer::update_bodies`]).
#[derive(Debug, Clone)]
pub struct UpdateBodies {
    text: Encoded,
    html: Encoded,
}

/// A body as quoted-printable pieces with the fields between them. Every
/// piece and every field value is encoded on its own, starting a fresh line,
/// and they are joined with soft line breaks (`=` CRLF), which decoding
/// removes: so the decoded body is exactly the rendered one, and no line
/// exceeds 76 characters however long a value is.
#[derive(Debug, Clone)]
struct Encoded {
    /// Encoded static text, then the field that follows it (none after the last).
    pieces: Vec<(Vec<u8>, Option<Field>)>,
    /// Bytes of encoded static text, to size each copy's buffer.
    static_len: usize,
}

impl Encoded {
    fn new(rendered: &str) -> Self {
        let crlf = to_crlf(rendered);
        let mut pieces = Vec::new();
        let mut rest = crlf.as_str();
        loop {
            let found = Field::ALL.iter().filter_map(|f| rest.find(&f.marker()).map(|at| (at, *f))).min_by_key(|x| x.0);
            match found {
                Some((at, field)) => {
                    pieces.push((quoted_printable(&rest[..at]), Some(field)));
                    rest = &rest[at + field.marker().len()..];
                }
                None => {
                    pieces.push((quoted_printable(rest), None));
                    break;
                }
            }
        }
        let static_len = pieces.iter().map(|(p, _)| p.len() + 6).sum();
        Self { pieces, static_len }
    }

    fn fill(&self, fields: &Fields<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.static_len + 512);
        for (piece, field) in &self.pieces {
            soft_break(&mut out);
            out.extend_from_slice(piece);
            if let Some(field) = field {
                soft_break(&mut out);
                out.extend_from_slice(&quoted_printable(field.value(fields)));
            }
        }
        out
    }
}

/// Ends the current encoded line invisibly, unless it is already ended.
fn soft_break(out: &mut Vec<u8>) {
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"=\r\n");
    }
}

/// Lone LF (and lone CR) become CRLF, as lettre does before encoding a body.
fn to_crlf(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 16);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {
                chars.next();
                out.push_str("\r\n");
            }
            '\r' | '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    out
}

/// Quoted-printable (RFC 2045 §6.7) of text whose line breaks are CRLF:
/// hard breaks kept, lines soft-broken at 76 characters, trailing
/// whitespace and everything outside printable ASCII escaped.
fn quoted_printable(s: &str) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8 + 8);
    let mut column = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            out.extend_from_slice(b"\r\n");
            column = 0;
            i += 2;
            continue;
        }
        let line_ends_here = i + 1 == bytes.len() || bytes[i + 1..].starts_with(b"\r\n");
        let literal = matches!(b, b'!'..=b'<' | b'>'..=b'~') || (matches!(b, b' ' | b'\t') && !line_ends_here);
        let width = if literal { 1 } else { 3 };
        if column + width > 75 {
            out.extend_from_slice(b"=\r\n");
            column = 0;
        }
        if literal {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        column += width;
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_and_script_links_are_neutralised() {
        let html = markdown_to_html("Hi <script>alert(1)</script> [x](javascript:alert(1)) [ok](https://a.test/)");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("javascript:"));
        assert!(html.contains("href=\"https://a.test/\""));
    }

    #[test]
    fn a_single_newline_stays_a_line_break_in_html() {
        assert_eq!(markdown_to_html("Thanks,\nSam"), "<p>Thanks,<br />\nSam</p>\n");
    }

    #[test]
    fn markdown_becomes_html_with_inlined_styles() {
        let p = PreparedUpdate::new(uuid::Uuid::nil(), "S", "# Filed\n\nWe have **filed** at the High Court.").unwrap();
        assert!(p.body_html.contains("<strong>filed</strong>"));
        assert!(p.body_html.contains("style="), "{}", p.body_html);
    }

    fn composer() -> Composer {
        Composer {
            from: "Save Our Hospital <news@hospital.test>".parse().unwrap(),
            host: "hospital.test".into(),
            group_name: "Save Our Hospital".into(),
            contact_address: "1 High Street, Leeds".into(),
            dkim: None,
        }
    }

    /// The decoded bodies and every header but the date and the (random)
    /// multipart boundary, of the message and of each part.
    fn parts(bytes: &[u8]) -> (String, String, Vec<String>) {
        let m = mail_parser::MessageParser::default().parse(bytes).unwrap();
        let raw = |h: &mail_parser::Header<'_>| {
            String::from_utf8_lossy(&bytes[h.offset_start() as usize..h.offset_end() as usize]).into_owned()
        };
        let headers = m
            .parts
            .iter()
            .flat_map(|p| p.headers.iter())
            .filter(|h| h.name() != "Date")
            .map(
                |h| if raw(h).contains("boundary=") { h.name().to_owned() } else { format!("{}:{}", h.name(), raw(h)) },
            )
            .collect();
        (m.body_text(0).unwrap().into_owned(), m.body_html(0).unwrap().into_owned(), headers)
    }

    #[test]
    fn bodies_encoded_once_decode_exactly_as_rendering_each_copy_does() {
        let markdown = "{{name}}, we **filed** today — £38,420 raised.\n\n\
            A line with trailing spaces   \n.A line starting with a dot\n\n\
            A very long paragraph that goes on and on well past the seventy-six characters a quoted-printable line \
            may hold, so that it must be broken softly, more than once, and still read the same. Thanks, {{name}}!";
        let u = PreparedUpdate::new(uuid::Uuid::now_v7(), "Filed — at last", markdown).unwrap();
        let c = composer();
        let bodies = c.update_bodies(&u).expect("this update takes the encoded-once path");
        let url = format!("https://hospital.test/unsubscribe/{}", "Ab-_9".repeat(30));
        for (name, list_name) in [("", "Updates"), ("Zoë & <Bob> \"Q\" O'Neil", "Hearings & \"dates\" — Ünïcode")]
        {
            let r = Recipient {
                subscriber_id: uuid::Uuid::now_v7(),
                email: "zoe@example.org",
                name,
                list_slug: "updates",
                list_name,
                other_list_names: Vec::new(),
                unsubscribe_url: url.clone(),
                preferences_url: "https://hospital.test/preferences/x?a=1&b=2".into(),
                test: false,
            };
            let slow = c.update(&u, &r).unwrap();
            let fast = c.update_with(&u, Some(&bodies), &r).unwrap();
            let (fast_parts, slow_parts) = (parts(&fast.bytes), parts(&slow.bytes));
            assert_eq!(fast_parts.0, slow_parts.0, "text for {name:?}");
            assert_eq!(fast_parts.1, slow_parts.1, "html for {name:?}");
            assert_eq!(fast_parts.2, slow_parts.2, "headers for {name:?}");
            let raw = String::from_utf8(fast.bytes).unwrap();
            assert!(raw.contains("Content-Transfer-Encoding: quoted-printable"));
            assert!(raw.split("\r\n").all(|line| line.len() <= 998), "SMTP line limit");
            let body = &raw[raw.find("\r\n\r\n").unwrap()..];
            assert!(body.split("\r\n").filter(|l| !l.starts_with("--")).all(|l| l.len() <= 76), "{body}");
        }
    }

    #[test]
    fn quoted_printable_escapes_what_it_must_and_wraps_at_76() {
        assert_eq!(quoted_printable("a=b £ \r\nend \t"), b"a=3Db =C2=A3=20\r\nend =09".to_vec());
        let long = quoted_printable(&"x".repeat(200));
        assert!(String::from_utf8(long).unwrap().split("\r\n").all(|l| l.len() <= 76));
        assert_eq!(to_crlf("a\nb\r\nc\rd"), "a\r\nb\r\nc\r\nd");
    }

    #[test]
    fn list_id_quotes_or_encodes_the_name_and_takes_the_id_from_the_slug() {
        assert_eq!(list_id("Save \"Our\" Hospital", "news", "x.test"), "\"Save \\\"Our\\\" Hospital\" <news.x.test>");
        let planted = list_id("News\" <evil.example> \"", "news", "x.test");
        assert!(planted.ends_with(" <news.x.test>") && planted.starts_with("=?utf-8?b?"), "{planted}");
        assert_eq!(planted.matches('<').count(), 1, "no bracket but the id's: {planted}");
        let cafe = list_id("Café news – Cymru", "cafe", "x.test");
        assert!(cafe.is_ascii() && cafe.starts_with("=?utf-8?b?") && cafe.ends_with("?= <cafe.x.test>"), "{cafe}");
        let long = list_id(&"Ünïcode ".repeat(20), "u", "x.test");
        assert!(long.split("\r\n").all(|line| line.len() <= 78), "{long}");
        assert_eq!(lists_phrase("A", &[]), "“A”");
        assert_eq!(lists_phrase("A", &["B", "C"]), "“A”, “B” and “C”");
    }
}
