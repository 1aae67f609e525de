//! The Content-Transfer-Encoding of every body Tidings composes (updates,
//! confirmations, other transactional mail, attachments): decided here and
//! applied here, and handed to lettre already encoded, so lettre never
//! chooses one itself.
//!
//! A text body is a [`Template`]: text rendered once with markers where
//! each copy's own values go (an update's greeting name, list names and
//! links), filled per copy. A body without markers (a confirmation) is a
//! template with none. Each copy's encoding follows from its whole text
//! (see [`Transfer`]), worked out from what was measured once for the
//! template plus its own values, and the template's fixed text is
//! quoted-printable encoded once, so a copy costs little more than its
//! values. Attachments are always base64: their bytes come back exactly.
//!
//! Every body line Tidings sends is at most [`MAX_LINE`] characters.

use base64::Engine;
use lettre::message::Body;
use lettre::message::header::ContentTransferEncoding;
use std::borrow::Cow;

/// The longest body line Tidings sends, CRLF aside: what RFC 2045 allows a
/// quoted-printable line, kept by 7bit and base64 bodies too.
pub const MAX_LINE: usize = 76;

/// How one body is carried.
///
/// - `7bit`, the text as it is: when every byte is printable ASCII, space
///   or tab and no line is longer than [`MAX_LINE`].
/// - `quoted-printable`: any other text where at most a third of the bytes
///   are outside printable ASCII, line breaks aside on both sides (CRLF is
///   neither counted nor escaped), such as English or Welsh with accents
///   and typographic quotes; it stays readable. (The third is lettre's
///   threshold, which it applies counting line breaks.)
/// - `base64`: text that is mostly outside ASCII (Greek, Cyrillic, CJK…),
///   where every character would be two or three escaped bytes in
///   quoted-printable and base64 is far smaller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    SevenBit,
    QuotedPrintable,
    Base64,
}

impl Transfer {
    /// The encoding a text (any line endings) is sent in.
    pub fn of(text: &str) -> Self {
        Shape::of(&to_crlf(text)).transfer()
    }

    fn header(self) -> ContentTransferEncoding {
        match self {
            Transfer::SevenBit => ContentTransferEncoding::SevenBit,
            Transfer::QuotedPrintable => ContentTransferEncoding::QuotedPrintable,
            Transfer::Base64 => ContentTransferEncoding::Base64,
        }
    }
}

/// A text body as a whole (no values to fill in), line breaks made CRLF.
pub fn text(text: &str) -> Body {
    Template::new(text, [] as [&str; 0]).fill([])
}

/// An attachment's bytes: always base64, so they come back exactly, line
/// endings and all.
pub fn attachment(bytes: &[u8]) -> Body {
    Body::dangerous_pre_encoded(base64_lines(bytes), ContentTransferEncoding::Base64)
}

/// A text body rendered once with `N` markers in it, filled with each
/// copy's values by [`Template::fill`].
#[derive(Debug, Clone)]
pub struct Template<const N: usize> {
    pieces: Vec<Piece>,
    /// Bytes of fixed text, to size each copy's buffer.
    fixed_len: usize,
}

/// A stretch of fixed text, and the value that follows it (none after the last).
#[derive(Debug, Clone)]
struct Piece {
    /// CRLF line breaks.
    raw: String,
    /// `raw` as quoted-printable, starting on a fresh line.
    quoted: Vec<u8>,
    shape: Shape,
    slot: Option<usize>,
}

impl<const N: usize> Template<N> {
    /// `rendered` with each occurrence of `markers[i]` a place for the
    /// copy's `values[i]`. Line breaks become CRLF. A marker must not occur
    /// in the text by accident, nor contain a line break.
    pub fn new(rendered: &str, markers: [&str; N]) -> Self {
        let text = to_crlf(rendered);
        let mut pieces = Vec::new();
        let mut rest: &str = &text;
        loop {
            let next = markers
                .iter()
                .enumerate()
                .filter(|(_, m)| !m.is_empty())
                .filter_map(|(slot, m)| rest.find(m).map(|at| (at, slot, m.len())))
                .min();
            let (fixed, slot) = match next {
                Some((at, slot, len)) => {
                    let fixed = &rest[..at];
                    rest = &rest[at + len..];
                    (fixed, Some(slot))
                }
                None => (rest, None),
            };
            pieces.push(Piece {
                raw: fixed.to_owned(),
                quoted: quoted_printable(fixed),
                shape: Shape::of(fixed),
                slot,
            });
            if slot.is_none() {
                break;
            }
        }
        let fixed_len = pieces.iter().map(|p| p.quoted.len() + 3).sum();
        Self { pieces, fixed_len }
    }

    /// One copy's body: the template with `values[i]` at each `markers[i]`
    /// (line breaks in a value become CRLF), in the encoding its whole text
    /// calls for.
    pub fn fill(&self, values: [&str; N]) -> Body {
        let values = values.map(to_crlf);
        let shapes = values.each_ref().map(|v| Shape::of(v));
        let shape = self.pieces.iter().fold(Shape::default(), |acc, piece| {
            let acc = acc.then(piece.shape);
            match piece.slot {
                Some(slot) => acc.then(shapes[slot]),
                None => acc,
            }
        });
        let transfer = shape.transfer();
        let bytes = match transfer {
            Transfer::SevenBit => self.raw(&values, shape.len).into_bytes(),
            Transfer::Base64 => base64_lines(self.raw(&values, shape.len).as_bytes()),
            Transfer::QuotedPrintable => self.quoted(&values),
        };
        Body::dangerous_pre_encoded(bytes, transfer.header())
    }

    /// The copy's text as it reads.
    fn raw(&self, values: &[Cow<'_, str>; N], len: usize) -> String {
        let mut out = String::with_capacity(len);
        for piece in &self.pieces {
            out.push_str(&piece.raw);
            if let Some(slot) = piece.slot {
                out.push_str(&values[slot]);
            }
        }
        out
    }

    /// The copy as quoted-printable: the fixed pieces as encoded once, each
    /// value encoded on its own (once, however often it occurs), joined
    /// with soft line breaks (`=` CRLF), which decoding removes: the decoded
    /// text is exactly the copy's, and no line is longer than [`MAX_LINE`].
    fn quoted(&self, values: &[Cow<'_, str>; N]) -> Vec<u8> {
        let mut encoded: [Option<Vec<u8>>; N] = std::array::from_fn(|_| None);
        let mut out = Vec::with_capacity(self.fixed_len + 512);
        for piece in &self.pieces {
            push_quoted(&mut out, &piece.quoted);
            if let Some(slot) = piece.slot {
                let value = encoded[slot].get_or_insert_with(|| quoted_printable(&values[slot]));
                push_quoted(&mut out, value);
            }
        }
        out
    }
}

/// Appends encoded text that starts a fresh line, ending the current line
/// with a soft break unless it is already ended.
fn push_quoted(out: &mut Vec<u8>, encoded: &[u8]) {
    if encoded.is_empty() {
        return;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"=\r\n");
    }
    out.extend_from_slice(encoded);
}

/// What decides a text's encoding, measured in pieces and combined with
/// [`Shape::then`], so a copy's is its template's pieces' and its values'.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Shape {
    /// Bytes, line breaks included.
    len: usize,
    /// CRLF line breaks.
    breaks: usize,
    /// Bytes outside printable ASCII, space and tab, CRLF line breaks aside.
    unprintable: usize,
    /// Bytes in the first line (all of them when there is no line break).
    first: usize,
    /// Bytes in the last line.
    last: usize,
    /// Bytes in the longest line.
    longest: usize,
}

impl Shape {
    /// Measures text whose line breaks are CRLF (a lone CR or LF counts as
    /// unprintable, as quoted-printable escapes it).
    fn of(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut shape = Shape { len: bytes.len(), ..Shape::default() };
        let mut line = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                if shape.breaks == 0 {
                    shape.first = line;
                }
                shape.longest = shape.longest.max(line);
                shape.breaks += 1;
                line = 0;
                i += 2;
                continue;
            }
            if !matches!(bytes[i], b' '..=b'~' | b'\t') {
                shape.unprintable += 1;
            }
            line += 1;
            i += 1;
        }
        if shape.breaks == 0 {
            shape.first = line;
        }
        shape.last = line;
        shape.longest = shape.longest.max(line);
        shape
    }

    /// The shape of this text followed by `next`. Exact when the join
    /// does not make a line break of a CR and an LF (no text made CRLF by
    /// [`to_crlf`] ends or starts with half of one).
    fn then(self, next: Shape) -> Shape {
        Shape {
            len: self.len + next.len,
            breaks: self.breaks + next.breaks,
            unprintable: self.unprintable + next.unprintable,
            first: if self.breaks > 0 { self.first } else { self.first + next.first },
            last: if next.breaks > 0 { next.last } else { self.last + next.last },
            longest: self.longest.max(next.longest).max(self.last + next.first),
        }
    }

    /// The one rule (see [`Transfer`]).
    fn transfer(self) -> Transfer {
        if self.unprintable == 0 && self.longest <= MAX_LINE {
            Transfer::SevenBit
        } else if self.unprintable * 3 <= self.len - 2 * self.breaks {
            Transfer::QuotedPrintable
        } else {
            Transfer::Base64
        }
    }
}

/// Lone LF and lone CR become CRLF (borrowed when there are none).
fn to_crlf(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let lone = bytes.iter().enumerate().any(|(i, &b)| match b {
        b'\r' => bytes.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || bytes[i - 1] != b'\r',
        _ => false,
    });
    if !lone {
        return Cow::Borrowed(s);
    }
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
    Cow::Owned(out)
}

/// Quoted-printable (RFC 2045 §6.7) of text whose line breaks are CRLF:
/// hard breaks kept, lines soft-broken before [`MAX_LINE`], trailing
/// whitespace and everything outside printable ASCII (and `=`) escaped.
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
        // Room is left for the `=` of a soft break.
        if column + width > MAX_LINE - 1 {
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

/// Base64 in lines of [`MAX_LINE`] characters, separated by CRLF.
fn base64_lines(bytes: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / MAX_LINE * 2 + 2);
    for (i, line) in encoded.as_bytes().chunks(MAX_LINE).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::Message;
    use lettre::message::{MultiPart, SinglePart};
    use proptest::prelude::*;

    fn encoded(body: &Body) -> &str {
        std::str::from_utf8(body.as_ref()).unwrap()
    }

    /// A message whose text part is `body`, decoded by mail-parser: the
    /// text as a receiver reads it. The part is in a multipart, as every
    /// message Tidings sends is: there the line break lettre writes after a
    /// part's body belongs to the boundary that follows, while in a
    /// single-part message it would be read as the body's last line break.
    fn decoded(body: Body) -> String {
        let (text, _) = decoded_alternative(body, text("<p>html</p>"));
        text
    }

    /// The text and HTML parts of a `multipart/alternative` message (the
    /// shape of all Tidings' mail), composed by lettre and decoded by
    /// mail-parser.
    fn decoded_alternative(text: Body, html: Body) -> (String, String) {
        let message = Message::builder()
            .from("a@x.test".parse().unwrap())
            .to("b@x.test".parse().unwrap())
            .subject("s")
            .multipart(MultiPart::alternative_plain_html(text, html))
            .unwrap()
            .formatted();
        let parsed = mail_parser::MessageParser::default().parse(&message).unwrap();
        (parsed.body_text(0).unwrap().into_owned(), parsed.body_html(0).unwrap().into_owned())
    }

    /// The bytes of the attachment of a `multipart/mixed` message with a
    /// text part and `attachment`, as mail-parser decodes them.
    fn decoded_attachment(attachment: Body) -> Vec<u8> {
        let message = Message::builder()
            .from("a@x.test".parse().unwrap())
            .to("b@x.test".parse().unwrap())
            .subject("s")
            .multipart(
                MultiPart::mixed().singlepart(SinglePart::plain(text("see attached"))).singlepart(
                    lettre::message::Attachment::new("my-data.json".to_owned())
                        .body(attachment, "application/json".parse().unwrap()),
                ),
            )
            .unwrap()
            .formatted();
        let parsed = mail_parser::MessageParser::default().parse(&message).unwrap();
        parsed.attachment(0).unwrap().contents().to_vec()
    }

    fn lines_within_limit(body: &Body) -> bool {
        encoded(body).split("\r\n").all(|l| l.len() <= MAX_LINE)
    }

    #[test]
    fn short_printable_ascii_goes_as_it_is() {
        assert_eq!(Transfer::of("Hello, world!\nSecond line\twith a tab."), Transfer::SevenBit);
        assert_eq!(Transfer::of(""), Transfer::SevenBit);
        let body = text("Hello\nthere\r\n");
        assert_eq!(body.encoding(), ContentTransferEncoding::SevenBit);
        assert_eq!(encoded(&body), "Hello\r\nthere\r\n", "line breaks become CRLF");
    }

    #[test]
    fn a_line_of_76_is_7bit_and_of_77_is_not() {
        let at_limit = "x".repeat(MAX_LINE);
        let over = "x".repeat(MAX_LINE + 1);
        assert_eq!(Transfer::of(&at_limit), Transfer::SevenBit);
        assert_eq!(Transfer::of(&over), Transfer::QuotedPrintable);
        assert_eq!(Transfer::of(&format!("short\n{at_limit}\nshort")), Transfer::SevenBit);
        assert_eq!(Transfer::of(&format!("short\n{over}\nshort")), Transfer::QuotedPrintable);
        // CRLF does not count towards the line.
        assert_eq!(Transfer::of(&format!("{at_limit}\r\n{at_limit}\r\n")), Transfer::SevenBit);
        let body = text(&"Hello, world! ".repeat(40));
        assert_eq!(body.encoding(), ContentTransferEncoding::QuotedPrintable);
        assert!(lines_within_limit(&body), "{}", encoded(&body));
    }

    #[test]
    fn control_characters_are_not_7bit() {
        assert_eq!(Transfer::of("bell\u{7} here and more text"), Transfer::QuotedPrintable);
        assert_eq!(Transfer::of("nul\0 here and more text"), Transfer::QuotedPrintable);
    }

    #[test]
    fn mostly_latin_is_quoted_printable_and_mostly_not_is_base64() {
        assert_eq!(Transfer::of("We raised £38,420 — thank you, Zoë."), Transfer::QuotedPrintable);
        assert_eq!(Transfer::of("Спасибо за поддержку"), Transfer::Base64);
        assert_eq!(Transfer::of("署名ありがとうございます"), Transfer::Base64);
        // The boundary: a third of the bytes outside ASCII ("é" is two bytes).
        assert_eq!(Transfer::of("éa"), Transfer::Base64, "2 of 3 bytes");
        assert_eq!(Transfer::of("éaaa"), Transfer::Base64, "2 of 5 bytes");
        assert_eq!(Transfer::of("éaaaa"), Transfer::QuotedPrintable, "2 of 6 bytes: exactly a third");
        assert_eq!(Transfer::of("éaaaaa"), Transfer::QuotedPrintable, "2 of 7 bytes");
        // Line breaks are not counted either way (they are neither escaped
        // nor outside printable ASCII), whatever their form.
        assert_eq!(Transfer::of("é\r\na\r\na\r\na\r\n"), Transfer::Base64, "2 of 5 bytes, breaks aside");
        assert_eq!(Transfer::of("é\na\na\na\na\n"), Transfer::QuotedPrintable, "2 of 6 bytes, breaks aside");
        assert_eq!(Transfer::of("é\r\na\r\na\r\na\r\na"), Transfer::QuotedPrintable, "2 of 6 bytes, breaks aside");
        let body = text("Спасибо за поддержку\n".repeat(10).as_str());
        assert_eq!(body.encoding(), ContentTransferEncoding::Base64);
        assert!(lines_within_limit(&body));
    }

    #[test]
    fn quoted_printable_escapes_what_it_must_and_wraps_before_76() {
        assert_eq!(quoted_printable("a=b £ \r\nend \t"), b"a=3Db =C2=A3=20\r\nend =09".to_vec());
        let long = String::from_utf8(quoted_printable(&"x".repeat(200))).unwrap();
        assert!(long.split("\r\n").all(|l| l.len() <= MAX_LINE), "{long}");
        let escapes = String::from_utf8(quoted_printable(&"é".repeat(100))).unwrap();
        assert!(escapes.split("\r\n").all(|l| l.len() <= MAX_LINE && !l.ends_with("=C")), "{escapes}");
        assert_eq!(to_crlf("a\nb\r\nc\rd\n"), "a\r\nb\r\nc\r\nd\r\n");
        assert!(matches!(to_crlf("a\r\nb"), Cow::Borrowed(_)));
    }

    #[test]
    fn attachments_are_base64_and_keep_their_bytes() {
        let bytes = b"{\"a\":\"b\"}\n\r\x00\xff".repeat(20);
        let body = attachment(&bytes);
        assert_eq!(body.encoding(), ContentTransferEncoding::Base64);
        assert!(lines_within_limit(&body));
        let joined: String = encoded(&body).split("\r\n").collect();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(joined).unwrap(), bytes);
    }

    #[test]
    fn shapes_combine_as_the_joined_text_measures() {
        let parts = ["ab", "c\r\nde", "", "\r\n", "fgh\r\n\r\nij", "k"];
        let whole: String = parts.concat();
        let combined = parts.iter().fold(Shape::default(), |acc, p| acc.then(Shape::of(p)));
        assert_eq!(combined, Shape::of(&whole));
        assert_eq!((combined.first, combined.last, combined.longest), (3, 3, 3), "abc, de, fgh, (empty), ijk");
    }

    #[test]
    fn a_copy_is_encoded_as_its_whole_text_calls_for() {
        let t = Template::new("Dear @N@,\nsee @U@ or @U@.\n", ["@N@", "@U@"]);
        let plain = t.fill(["Bob", "https://x.test/u/1"]);
        assert_eq!(plain.encoding(), ContentTransferEncoding::SevenBit);
        assert_eq!(encoded(&plain), "Dear Bob,\r\nsee https://x.test/u/1 or https://x.test/u/1.\r\n");
        let accented = t.fill(["Zoë", "https://x.test/u/1"]);
        assert_eq!(accented.encoding(), ContentTransferEncoding::QuotedPrintable);
        assert_eq!(decoded(accented), "Dear Zoë,\r\nsee https://x.test/u/1 or https://x.test/u/1.\r\n");
        let long = format!("https://x.test/u/{}", "a".repeat(80));
        let wrapped = t.fill(["Bob", &long]);
        assert_eq!(wrapped.encoding(), ContentTransferEncoding::QuotedPrintable);
        assert!(lines_within_limit(&wrapped));
        let cyrillic = t.fill(["Владимир Владимирович Иванов-Петров", "u"]);
        assert_eq!(cyrillic.encoding(), ContentTransferEncoding::Base64);
        assert_eq!(decoded(cyrillic), "Dear Владимир Владимирович Иванов-Петров,\r\nsee u or u.\r\n");
        let broken = t.fill(["Line\nbreak", "u"]);
        assert_eq!(decoded(broken), "Dear Line\r\nbreak,\r\nsee u or u.\r\n", "a value's line breaks become CRLF");
    }

    #[test]
    fn multipart_bodies_keep_the_encoding_decided_here() {
        let message = Message::builder()
            .from("a@x.test".parse().unwrap())
            .to("b@x.test".parse().unwrap())
            .subject("s")
            .multipart(MultiPart::alternative_plain_html(text("plain"), text("<p>Zoë</p>")))
            .unwrap()
            .formatted();
        let raw = String::from_utf8(message).unwrap();
        assert!(raw.contains("Content-Transfer-Encoding: 7bit\r\n\r\nplain"), "{raw}");
        assert!(raw.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>Zo=C3=AB</p>"), "{raw}");
    }

    fn any_text() -> impl Strategy<Value = String> {
        // Mostly ASCII with line breaks of every kind, some Latin, some
        // Cyrillic and CJK, and characters quoted-printable must escape.
        let piece = prop_oneof![
            6 => "[ -~]{0,90}",
            2 => Just("\n".to_owned()),
            1 => Just("\r\n".to_owned()),
            1 => Just("\r".to_owned()),
            1 => Just(" \t".to_owned()),
            1 => "[éüß£—“”]{1,5}",
            1 => "[а-яА-Я]{1,40}",
            1 => "[\u{4e00}-\u{4e50}]{1,30}",
            1 => Just("=\u{7}.".to_owned()),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_copy_decodes_to_its_text_with_lines_within_limit(
            fixed in prop::collection::vec(any_text(), 3),
            name in any_text(),
            link in any_text(),
        ) {
            let rendered = format!("{}\u{E000}0\u{E000}{}\u{E000}1\u{E000}{}\u{E000}0\u{E000}", fixed[0], fixed[1], fixed[2]);
            let template = Template::new(&rendered, ["\u{E000}0\u{E000}", "\u{E000}1\u{E000}"]);
            let body = template.fill([&name, &link]);
            // Each piece and value has its line breaks made CRLF on its own.
            let expected = [&fixed[0], &name, &fixed[1], &link, &fixed[2], &name].map(|t| to_crlf(t)).concat();
            let transfer = Transfer::of(&expected);
            prop_assert_eq!(body.encoding(), transfer.header(), "decided on the whole copy");
            prop_assert!(lines_within_limit(&body), "{}", encoded(&body));
            prop_assert_eq!(decoded(body), expected);
        }

        #[test]
        fn a_whole_text_decodes_to_itself(t in any_text()) {
            let body = text(&t);
            prop_assert!(lines_within_limit(&body));
            prop_assert_eq!(decoded(body), to_crlf(&t).into_owned());
        }

        /// What a receiver reads is what it read when lettre chose and
        /// applied the encoding (`Body::new`, how transactional mail and
        /// some updates were encoded before this module), for text with
        /// CRLF or LF line breaks. (A lone CR is a line break here, as it
        /// was on the bulk update path; lettre left it bare, which RFC 5322
        /// does not allow in a message.)
        #[test]
        fn every_text_decodes_as_when_lettre_encoded_it(t in any_text(), h in any_text()) {
            for (text_part, html_part) in [(to_crlf(&t).into_owned(), to_crlf(&h).into_owned()), (t.replace('\r', ""), h.replace('\r', ""))] {
                let ours = decoded_alternative(text(&text_part), text(&html_part));
                let lettres = decoded_alternative(Body::new(text_part.clone()), Body::new(html_part.clone()));
                prop_assert_eq!(ours, lettres);
            }
        }

        /// An attachment's bytes come back exactly, as they did when lettre
        /// encoded them (`Body::new` of the bytes).
        #[test]
        fn every_attachment_decodes_to_its_bytes_as_before(t in any_text(), binary in prop::collection::vec(any::<u8>(), 0..300)) {
            for bytes in [t.into_bytes(), binary] {
                let ours = decoded_attachment(attachment(&bytes));
                prop_assert_eq!(&ours, &bytes);
                prop_assert_eq!(ours, decoded_attachment(Body::new(bytes.clone())));
            }
        }
    }
}
