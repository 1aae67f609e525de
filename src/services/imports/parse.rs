//! Reading an import CSV: the header row and which columns hold what, then
//! the rows, in batches, each parsed into domain values or refused with a
//! reason and its line number.
//!
//! Pure: it reads from any [`Read`] and does no database work, so it runs on
//! a thread of its own while the previous batch is being written. Rows are
//! read as bytes, so a row of non-UTF-8 garbage is refused on its own rather
//! than ending the file. Line numbers are the file's own (the header is
//! line 1; a quoted field spanning lines counts each of them), so an
//! organiser can find a refused row in a text editor or spreadsheet.

use crate::domain::{EmailAddress, SubscriberName};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Read;

/// A UTF-8 byte-order mark, as spreadsheet programs write at the start.
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Longest value kept in one attribute.
pub const MAX_VALUE_CHARS: usize = 2000;

/// Which columns hold what: resolved once, from the header row and the
/// organiser's explicit choices, and stored with the import.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Columns {
    /// The header row as written.
    pub headers: Vec<String>,
    /// Index of the address column.
    pub email: usize,
    /// Index of a full-name column.
    pub name: Option<usize>,
    /// First- and last-name columns, joined when there is no full-name column.
    pub first_name: Option<usize>,
    pub last_name: Option<usize>,
    /// Lines end in a lone CR (old Mac spreadsheets), not LF or CRLF.
    #[serde(default)]
    pub cr_only: bool,
}

/// Explicit column choices by header name (case-insensitive); each one
/// overrides detection.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ColumnChoice {
    pub email: Option<String>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// The header row, and where the first data row starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub names: Vec<String>,
    /// Byte offset of the first data row (after the BOM and header).
    pub data_offset: i64,
    /// Its line number.
    pub data_line: i64,
    /// Lines end in a lone CR.
    pub cr_only: bool,
}

/// A csv reader over `source`, `buffer` bytes at a time. Rows end at LF,
/// which covers CRLF (a CR before it is trimmed with the field) and keeps
/// the csv reader's line numbers true to the file: it counts LF bytes. A
/// file whose lines end in a lone CR has them read as LF (see [`Source`]),
/// so its rows end, and are numbered, the same way. (Treating CR as an end
/// of line in the csv reader instead numbered every row of such a file
/// "line 1", and a row after a CRLF with the line of the row before.)
fn csv_reader<R: Read>(cr_only: bool, buffer: usize, source: R) -> ::csv::Reader<Source<R>> {
    ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .terminator(::csv::Terminator::Any(b'\n'))
        .buffer_capacity(buffer)
        .from_reader(Source::new(source, cr_only))
}

/// The line a record starts on, in the numbering of the reader (line 1 is
/// where it started). The csv reader reports where it began looking for the
/// record, before the empty lines it passed over.
fn record_line<R: Read>(reader: &::csv::Reader<Source<R>>, record: &::csv::ByteRecord) -> u64 {
    let (byte, line) = record.position().map_or((0, 1), |p| (p.byte(), p.line()));
    line + reader.get_ref().empty_lines_at(byte)
}

/// The file as the csv reader reads it: byte for byte (so offsets stay the
/// file's), but with a lone CR (one not followed by LF) read as LF when the
/// file's lines end that way; noting runs of LFs, for [`record_line`].
struct Source<R> {
    inner: R,
    cr_only: bool,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    /// Bytes handed to the csv reader so far.
    handed: u64,
    /// The run of LFs handed out last: where it starts and how long it is.
    run: (u64, u64),
    /// Earlier runs that may hold empty lines (two LFs or more, or one at
    /// the very start), as (start, length), oldest first, not yet passed.
    runs: RefCell<VecDeque<(u64, u64)>>,
}

impl<R> Source<R> {
    fn new(inner: R, cr_only: bool) -> Self {
        let buf = vec![0; 64 * 1024].into_boxed_slice();
        Self { inner, cr_only, buf, start: 0, end: 0, eof: false, handed: 0, run: (0, 0), runs: RefCell::default() }
    }

    /// How many LFs follow one another from `offset` on: the empty lines
    /// the csv reader passed over before a record it says began there.
    /// Forgets the runs before `offset`, so call it for every record.
    fn empty_lines_at(&self, offset: u64) -> u64 {
        let mut runs = self.runs.borrow_mut();
        while runs.front().is_some_and(|&(start, len)| start + len <= offset) {
            runs.pop_front();
        }
        let (start, len) = runs.front().copied().filter(|&(start, _)| start <= offset).unwrap_or(self.run);
        if start <= offset && offset < start + len { start + len - offset } else { 0 }
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        // Keep two bytes buffered where the file has them, so the byte after
        // a CR can be seen before the CR is handed out.
        if self.end - self.start < 2 && !self.eof {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            while self.end < 2 && !self.eof {
                match self.inner.read(&mut self.buf[self.end..])? {
                    0 => self.eof = true,
                    got => self.end += got,
                }
            }
        }
        let available = &self.buf[self.start..self.end];
        let mut n = available.len().min(out.len());
        // The first byte alone: csv-core strips a UTF-8 BOM from the start
        // of its input when the three bytes arrive together, so a row
        // starting with one would read differently when a resumed import
        // starts at it. (read_header skips the file's own BOM itself.)
        if self.handed == 0 {
            n = n.min(1);
        }
        // A CR last in the buffer waits until what follows it is known.
        if self.cr_only && n == available.len() && n > 1 && !self.eof && available[n - 1] == b'\r' {
            n -= 1;
        }
        let mut runs = self.runs.borrow_mut();
        for (i, (slot, &byte)) in out.iter_mut().zip(available).take(n).enumerate() {
            let lone_cr = self.cr_only && byte == b'\r' && available.get(i + 1) != Some(&b'\n');
            *slot = if lone_cr { b'\n' } else { byte };
            if *slot != b'\n' {
                continue;
            }
            let at = self.handed + i as u64;
            let (start, len) = self.run;
            if start + len == at && len > 0 {
                self.run.1 += 1;
            } else {
                // Only runs that can hold an empty line are kept: a lone LF
                // ends a row, unless it is the very first byte.
                if len >= 2 || (start == 0 && len == 1) {
                    runs.push_back(self.run);
                }
                self.run = (at, 1);
            }
        }
        drop(runs);
        self.start += n;
        self.handed += n as u64;
        Ok(n)
    }
}

/// Lower-case letters and digits only: "E-mail Address" → "emailaddress".
fn squash(header: &str) -> String {
    header.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Reads the header row from the start of a file. `prefix` is the start of
/// the file; `whole` says whether it is all of it.
pub fn read_header(prefix: &[u8], whole: bool) -> Result<Header, String> {
    let skip = if prefix.starts_with(BOM) { BOM.len() } else { 0 };
    let first_end = prefix[skip..].iter().position(|b| matches!(b, b'\r' | b'\n'));
    let cr_only = first_end.is_some_and(|i| prefix[skip + i] == b'\r' && prefix.get(skip + i + 1) != Some(&b'\n'));
    let mut reader = csv_reader(cr_only, 8 * 1024, &prefix[skip..]);
    let mut record = ::csv::ByteRecord::new();
    let found = reader.read_byte_record(&mut record).map_err(|e| format!("the header row cannot be read: {e}"))?;
    if !found {
        return Err("the file is empty: the first row must name the columns".to_owned());
    }
    let end = reader.position().clone();
    // A header that runs to the end of a partial prefix may go on.
    let ends_line = prefix[skip..skip + end.byte() as usize].last().is_some_and(|b| matches!(b, b'\n' | b'\r'));
    if !whole && (!ends_line || runs_on(&prefix[skip..], cr_only, &record, &end)) {
        return Err("the header row is too long".to_owned());
    }
    let mut names = Vec::with_capacity(record.len());
    for field in record.iter() {
        let text = std::str::from_utf8(field).map_err(|_| "the header row is not valid UTF-8 text".to_owned())?;
        names.push(text.trim().to_owned());
    }
    if names.iter().all(String::is_empty) {
        return Err("the first row must name the columns".to_owned());
    }
    Ok(Header { names, data_offset: (skip as u64 + end.byte()) as i64, data_line: end.line() as i64, cr_only })
}

/// Whether a header row read to the very end of a partial prefix may go on
/// with more bytes: a CR there may be the first half of a CRLF, and a line
/// end inside quotes is part of a field. (Found by the `csv_import` fuzz
/// target.)
fn runs_on(prefix: &[u8], cr_only: bool, header: &::csv::ByteRecord, end: &::csv::Position) -> bool {
    if end.byte() as usize != prefix.len() {
        return false;
    }
    if prefix.last() == Some(&b'\r') {
        return true;
    }
    let mut longer = prefix.to_vec();
    longer.push(b'x');
    let mut reader = csv_reader(cr_only, 8 * 1024, &longer[..]);
    let mut again = ::csv::ByteRecord::new();
    !matches!(reader.read_byte_record(&mut again), Ok(true))
        || again != *header
        || reader.position().byte() != end.byte()
}

fn find(headers: &[String], wanted: &str) -> Option<usize> {
    let wanted = squash(wanted);
    headers.iter().position(|h| squash(h) == wanted)
}

fn find_any(headers: &[String], candidates: &[&str]) -> Option<usize> {
    candidates.iter().find_map(|c| find(headers, c))
}

/// Decides which columns hold the address and the name: the organiser's
/// explicit choices first, then well-known header names.
pub fn resolve_columns(headers: Vec<String>, choice: &ColumnChoice) -> Result<Columns, String> {
    let chosen = |what: &str, name: &Option<String>| -> Result<Option<usize>, String> {
        match name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            None => Ok(None),
            Some(n) => find(&headers, n).map(Some).ok_or_else(|| format!("there is no {what} column \"{n}\"")),
        }
    };
    let email =
        match chosen("email", &choice.email)? {
            Some(i) => i,
            None => find_any(&headers, &["email", "e-mail", "email address", "e-mail address", "mail"]).ok_or_else(
                || "no email column: name one \"email\" (or \"e-mail\", \"email address\"), or choose it".to_owned(),
            )?,
        };
    let explicit_name = chosen("name", &choice.name)?;
    let explicit_first = chosen("first name", &choice.first_name)?;
    let explicit_last = chosen("last name", &choice.last_name)?;
    let name = if explicit_first.is_some() || explicit_last.is_some() {
        explicit_name
    } else {
        explicit_name.or_else(|| find_any(&headers, &["name", "full name"]))
    };
    let (first_name, last_name) = if name.is_some() && explicit_first.is_none() && explicit_last.is_none() {
        (None, None)
    } else {
        (
            explicit_first.or_else(|| find_any(&headers, &["first name", "firstname", "given name", "forename"])),
            explicit_last.or_else(|| find_any(&headers, &["last name", "lastname", "surname", "family name"])),
        )
    };
    let used = [Some(email), name, first_name, last_name];
    if used.iter().flatten().filter(|&&i| i == email).count() > 1 {
        return Err("the email column cannot also be a name column".to_owned());
    }
    Ok(Columns { headers, email, name, first_name, last_name, cr_only: false })
}

/// One data row as an import sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RowData {
    pub email: EmailAddress,
    pub name: Option<SubscriberName>,
    /// Every other non-empty column, by header name.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Why a row was refused as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub code: &'static str,
    pub message: String,
}

impl RowProblem {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// A data row with its line number.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRow {
    pub line: i64,
    pub row: Result<RowData, RowProblem>,
}

/// Consecutive rows, and where the next batch starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub rows: Vec<ParsedRow>,
    /// Byte offset and line number just after the batch's last row.
    pub end_offset: i64,
    pub end_line: i64,
}

impl Columns {
    /// Column indexes that are neither the address nor the name.
    fn is_attribute(&self, i: usize) -> bool {
        i != self.email && Some(i) != self.name && Some(i) != self.first_name && Some(i) != self.last_name
    }

    fn attribute_key(&self, i: usize) -> String {
        match self.headers.get(i).map(String::as_str) {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => format!("column {}", i + 1),
        }
    }

    /// Parses one record (already known to be non-blank).
    pub fn parse_record(&self, record: &::csv::ByteRecord) -> Result<RowData, RowProblem> {
        if record.len() != self.headers.len() {
            return Err(RowProblem::new(
                "wrong_field_count",
                format!("expected {} fields, found {}", self.headers.len(), record.len()),
            ));
        }
        let mut fields = Vec::with_capacity(record.len());
        for (i, raw) in record.iter().enumerate() {
            let text = std::str::from_utf8(raw)
                .map_err(|_| RowProblem::new("not_utf8", format!("field {} is not valid UTF-8 text", i + 1)))?;
            fields.push(text.trim());
        }
        let email = EmailAddress::parse(fields[self.email])
            .map_err(|e| RowProblem::new("invalid_email", format!("email: {e}")))?;
        let name_text = match (self.name, self.first_name, self.last_name) {
            (Some(i), _, _) => fields[i].to_owned(),
            (None, first, last) => [first, last]
                .into_iter()
                .flatten()
                .map(|i| fields[i])
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        };
        let name = SubscriberName::parse_optional(&name_text)
            .map_err(|e| RowProblem::new("invalid_name", format!("name: {e}")))?;
        let mut attributes = serde_json::Map::new();
        for (i, value) in fields.iter().enumerate() {
            if !self.is_attribute(i) || value.is_empty() {
                continue;
            }
            if value.chars().count() > MAX_VALUE_CHARS {
                return Err(RowProblem::new(
                    "value_too_long",
                    format!("field {} is longer than {MAX_VALUE_CHARS} characters", i + 1),
                ));
            }
            attributes.insert(self.attribute_key(i), serde_json::Value::String((*value).to_owned()));
        }
        Ok(RowData { email, name, attributes })
    }
}

/// Reads data rows from `source`, which starts at byte `start_offset` (line
/// `start_line`) of the file, and hands them to `deliver` in batches of
/// `batch_rows`. Blank rows (every field empty) are passed over. Stops when
/// the file ends, or when `deliver` returns `false` (nobody is listening).
pub fn read_batches(
    source: impl Read,
    start_offset: i64,
    start_line: i64,
    columns: &Columns,
    batch_rows: usize,
    mut deliver: impl FnMut(Result<Batch, String>) -> bool,
) {
    let mut reader = csv_reader(columns.cr_only, 256 * 1024, source);
    let mut record = ::csv::ByteRecord::new();
    let mut rows = Vec::with_capacity(batch_rows);
    loop {
        let more = match reader.read_byte_record(&mut record) {
            Ok(more) => more,
            Err(e) => {
                deliver(Err(format!("the file could not be read: {e}")));
                return;
            }
        };
        if more {
            let line = record_line(&reader, &record) as i64 + start_line - 1;
            let blank = record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace));
            if !blank {
                rows.push(ParsedRow { line, row: columns.parse_record(&record) });
            }
        }
        if rows.len() >= batch_rows || (!more && !rows.is_empty()) {
            let pos = reader.position();
            let batch = Batch {
                rows: std::mem::replace(&mut rows, Vec::with_capacity(batch_rows)),
                end_offset: start_offset + pos.byte() as i64,
                end_line: start_line + pos.line() as i64 - 1,
            };
            if !deliver(Ok(batch)) {
                return;
            }
        }
        if !more {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(headers: &[&str]) -> Columns {
        resolve_columns(headers.iter().map(|h| (*h).to_owned()).collect(), &ColumnChoice::default()).unwrap()
    }

    /// The file's header and the columns it names.
    fn header_and_columns(data: &[u8]) -> (Header, Columns) {
        let header = read_header(data, true).unwrap();
        let mut columns = resolve_columns(header.names.clone(), &ColumnChoice::default()).unwrap();
        columns.cr_only = header.cr_only;
        (header, columns)
    }

    /// Every batch of `data` from byte `offset` (line `line`) on.
    fn read_from(data: &[u8], offset: i64, line: i64, columns: &Columns, batch_rows: usize) -> Vec<Batch> {
        let mut out = Vec::new();
        read_batches(&data[offset as usize..], offset, line, columns, batch_rows, |b| {
            out.push(b.unwrap());
            true
        });
        out
    }

    fn batches(data: &[u8], batch_rows: usize) -> Vec<Batch> {
        let (header, columns) = header_and_columns(data);
        read_from(data, header.data_offset, header.data_line, &columns, batch_rows)
    }

    /// The batches after `done`, read again from its checkpoint as a
    /// resumed import does.
    fn resumed_after(data: &[u8], done: &Batch, batch_rows: usize) -> Vec<Batch> {
        let (_, columns) = header_and_columns(data);
        read_from(data, done.end_offset, done.end_line, &columns, batch_rows)
    }

    #[test]
    fn detects_columns_by_common_names_case_insensitively() {
        let c = columns(&["E-Mail", "Name", "Town"]);
        assert_eq!((c.email, c.name, c.first_name, c.last_name), (0, Some(1), None, None));
        let c = columns(&["First Name", "Surname", "Email Address"]);
        assert_eq!((c.email, c.name, c.first_name, c.last_name), (2, None, Some(0), Some(1)));
        assert!(resolve_columns(vec!["phone".into()], &ColumnChoice::default()).unwrap_err().contains("no email"));
        let choice = ColumnChoice { email: Some("Contact".into()), name: Some("who".into()), ..Default::default() };
        let c = resolve_columns(vec!["who".into(), "email".into(), "contact".into()], &choice).unwrap();
        assert_eq!((c.email, c.name), (2, Some(0)));
        let bad = ColumnChoice { email: Some("nope".into()), ..Default::default() };
        assert!(resolve_columns(vec!["email".into()], &bad).unwrap_err().contains("\"nope\""));
    }

    #[test]
    fn reads_a_bom_quotes_crlf_blank_lines_and_reports_true_line_numbers() {
        let data = b"\xEF\xBB\xBFemail,name,note\r\na@example.org,\"Smith, Ann\",\"two\r\nlines\"\r\n\r\n,,\r\nnot-an-address,B,\r\nc@example.org,C\r\nd@example.org,\xFF\xFE,x\r\n";
        let all = batches(data, 100);
        assert_eq!(all.len(), 1);
        let rows = &all[0].rows;
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 6, 7, 8]);
        let first = rows[0].row.as_ref().unwrap();
        assert_eq!(first.email.as_str(), "a@example.org");
        assert_eq!(first.name.as_ref().unwrap().as_str(), "Smith, Ann");
        assert_eq!(first.attributes["note"], "two\r\nlines");
        assert_eq!(first.attributes.len(), 1, "the line's CR is not a value");
        assert_eq!(rows[1].row.as_ref().unwrap_err().code, "invalid_email");
        assert_eq!(rows[2].row.as_ref().unwrap_err().code, "wrong_field_count");
        assert_eq!(rows[3].row.as_ref().unwrap_err().code, "not_utf8");
        assert_eq!(all[0].end_offset as usize, data.len());
    }

    #[test]
    fn batches_resume_exactly_where_the_checkpoint_says() {
        let mut data = b"email,first name,last name\n".to_vec();
        for i in 0..10 {
            data.extend_from_slice(format!("p{i}@example.org,\"P\n{i}\",Q\n").as_bytes());
        }
        let all = batches(&data, 3);
        assert_eq!(all.iter().map(|b| b.rows.len()).collect::<Vec<_>>(), vec![3, 3, 3, 1]);
        // Start again from the end of the second batch, as a resumed worker does.
        assert_eq!(resumed_after(&data, &all[1], 3), all[2..].to_vec());
        let lines: Vec<i64> = all.iter().flat_map(|b| b.rows.iter().map(|r| r.line)).collect();
        assert_eq!(lines, (0..10).map(|i| 2 + 2 * i).collect::<Vec<_>>());
        let name = all[0].rows[1].row.as_ref().unwrap_err();
        assert_eq!(name.code, "invalid_name", "a name must be one line");
    }

    #[test]
    fn lines_ending_in_a_lone_cr_are_rows_too() {
        let all = batches(b"email,name\ra@example.org,A\rb@example.org,B\r", 10);
        let rows: Vec<_> = all[0].rows.iter().map(|r| r.row.as_ref().unwrap().email.as_str().to_owned()).collect();
        assert_eq!(rows, ["a@example.org", "b@example.org"]);
    }

    #[test]
    fn rows_of_a_lone_cr_file_have_their_own_line_numbers() {
        // Found by the `csv_import` fuzz target (fuzz/regressions/csv_import/):
        // the csv reader counts LF bytes, so every row of such a file was
        // reported as line 1; and once that was fixed, a row after a CRLF
        // shared the line number of the row before it.
        let data = b"email,note\ra@example.org,\"A\rB\"\rb@example.org,B\r\n\rc@example.org,C";
        let header = read_header(data, true).unwrap();
        assert!(header.cr_only);
        assert_eq!((header.data_offset, header.data_line), (11, 2));
        let all = batches(data, 1);
        let lines: Vec<i64> = all.iter().flat_map(|b| b.rows.iter().map(|r| r.line)).collect();
        assert_eq!(lines, [2, 4, 6], "a quoted CR starts a line too, and a blank line counts");
        assert_eq!(all[0].rows[0].row.as_ref().unwrap().attributes["note"], "A\nB");
        assert_eq!(resumed_after(data, &all[0], 1), all[1..].to_vec());
    }

    #[test]
    fn a_resumed_import_reads_a_row_starting_with_a_bom_as_before() {
        // Found by the `csv_import` fuzz target: resuming at a row that
        // starts with a BOM (as where two files were joined) lost the BOM,
        // so the row read differently than without the interruption.
        let data = b"email\na@example.org\n\xEF\xBB\xBFb@example.org\n";
        let all = batches(data, 1);
        assert_eq!(all[1].rows[0].row.as_ref().unwrap_err().code, "invalid_email");
        assert_eq!(resumed_after(data, &all[0], 1), all[1..].to_vec());
    }

    #[test]
    fn a_row_after_empty_lines_has_its_own_line_number() {
        // The csv reader passes over empty lines before a row and reported
        // the row on the first of them.
        let all = batches(b"email\na@example.org\n\n\nb@example.org\n\nc@example.org", 2);
        let lines: Vec<i64> = all.iter().flat_map(|b| b.rows.iter().map(|r| r.line)).collect();
        assert_eq!(lines, [2, 5, 7]);
        let all = batches(b"email\n\n\na@example.org\n", 1);
        assert_eq!(all[0].rows[0].line, 4, "empty lines right after the header");
    }

    #[test]
    fn lone_crs_read_as_lf_whatever_the_read_sizes() {
        let data = b"a\rb\r\nc\r\r\n\r";
        for size in 1..=4 {
            let mut reader = Source::new(&data[..], true);
            let mut out = Vec::new();
            let mut piece = vec![0; size];
            loop {
                let n = reader.read(&mut piece).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&piece[..n]);
            }
            assert_eq!(out, b"a\nb\r\nc\n\r\n\n", "reads of {size} bytes");
            assert_eq!((reader.empty_lines_at(8), reader.empty_lines_at(9), reader.empty_lines_at(10)), (2, 1, 0));
            assert_eq!(reader.empty_lines_at(1), 0, "passed runs are forgotten");
        }
    }

    #[test]
    fn empty_or_headerless_files_are_refused() {
        assert!(read_header(b"", true).is_err());
        assert!(read_header(b"\xEF\xBB\xBF", true).is_err());
        assert!(read_header(b"email,name", false).is_err(), "a header that may go on is not complete");
        // Found by the `csv_import` fuzz target: a partial prefix ending in the
        // CR of a CRLF was read as a file whose lines end in a lone CR.
        assert!(read_header(b"email\r", false).is_err(), "the CR may be half of a CRLF");
        assert!(read_header(b"\"a\nb\"\r", false).is_err(), "also when the header spans lines");
        assert!(read_header(b"email\r", true).unwrap().cr_only);
        assert!(!read_header(b"email\r\n", false).unwrap().cr_only);
        // ... and one ending inside a quoted header field that spans lines.
        let quoted = b"email,\"two\r\nlines\"\r\na@example.org\r\n";
        assert!(read_header(&quoted[..13], false).is_err(), "the quoted field goes on");
        assert_eq!(read_header(&quoted[..22], false), read_header(quoted, true));
        assert_eq!(read_header(b"email\n", false).unwrap().data_offset, 6);
    }
}
