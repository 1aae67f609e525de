//! CSV imports: the header row, the column mapping and the rows, read in
//! batches. Never panics; line numbers and checkpoints stay true, so a
//! resumed import reads exactly the rows it had not read yet.
//!
//! Input: one control byte (batch size, where a partial prefix ends, which
//! column choice), then the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::domain::EmailAddress;
use tidings::services::imports::parse::{
    Batch, ColumnChoice, Columns, MAX_VALUE_CHARS, read_batches, read_header, resolve_columns,
};

fuzz_target!(|data: &[u8]| {
    let Some((&control, file)) = data.split_first() else { return };
    let batch_rows = usize::from(control & 0x07) + 1;
    let Ok(header) = read_header(file, true) else { return };
    assert!(header.data_offset >= 0 && header.data_offset as usize <= file.len());
    assert!(header.data_line >= 1);
    assert!(!header.names.is_empty());

    // A header read from the start of the file alone (as an upload's first
    // chunk is) is the header of the whole file, or refused.
    let cut = (usize::from(control) * 7 + file.len() / 2) % (file.len() + 1);
    if let Ok(partial) = read_header(&file[..cut], false) {
        assert_eq!(partial, header, "a prefix of {cut} bytes read another header");
    }

    let choice = choice(control, &header.names);
    let Ok(columns) = resolve_columns(header.names.clone(), &choice) else { return };
    let columns = Columns { cr_only: header.cr_only, ..columns };
    let width = columns.headers.len();
    assert!(columns.email < width);
    for i in [columns.name, columns.first_name, columns.last_name].into_iter().flatten() {
        assert!(i < width && i != columns.email, "a name column is a real column and not the address");
    }

    let start = header.data_offset as usize;
    let all = batches(&file[start..], header.data_offset, header.data_line, &columns, batch_rows);
    let mut last_line = header.data_line - 1;
    let mut last_offset = header.data_offset;
    for batch in &all {
        assert!(!batch.rows.is_empty() && batch.rows.len() <= batch_rows);
        assert!(batch.end_offset > last_offset && batch.end_offset as usize <= file.len());
        last_offset = batch.end_offset;
        for row in &batch.rows {
            assert!(row.line > last_line, "line {} after line {last_line}: two rows cannot share a line", row.line);
            last_line = row.line;
            let Ok(r) = &row.row else { continue };
            assert_eq!(EmailAddress::parse(r.email.as_str()).as_ref(), Ok(&r.email));
            if let Some(name) = &r.name {
                assert!(!name.as_str().is_empty() && !name.as_str().chars().any(char::is_control));
            }
            for value in r.attributes.values() {
                let text = value.as_str().unwrap_or_default();
                assert!(!text.is_empty() && text.chars().count() <= MAX_VALUE_CHARS);
            }
            assert!(r.attributes.len() < width);
        }
        assert!(batch.end_line >= last_line, "a batch ends on or after its last row's line");
    }
    // Without quotes, each line is a record: the rows are exactly the lines
    // that are not blank, numbered as in the file.
    let data = &file[start..];
    if !data.contains(&b'"') {
        let got: Vec<i64> = all.iter().flat_map(|b| b.rows.iter().map(|r| r.line)).collect();
        assert_eq!(got, expected_lines(data, header.cr_only, header.data_line), "line numbers");
    }

    // Resuming from any checkpoint (the end of a batch) reads exactly the
    // batches that followed it; after the last one, no row is left (blank
    // lines may be: they are not part of any batch).
    for (i, checkpoint) in all.iter().enumerate() {
        let offset = checkpoint.end_offset;
        let rest = batches(&file[offset as usize..], offset, checkpoint.end_line, &columns, batch_rows);
        assert_eq!(rest, all[i + 1..], "resumed at byte {offset}, line {}", checkpoint.end_line);
    }
});

/// The line of each row of quote-free data: every line (ended by LF, CRLF
/// or, in a file whose lines end in a lone CR, a lone CR) that holds more
/// than blanks and commas.
fn expected_lines(data: &[u8], cr_only: bool, first_line: i64) -> Vec<i64> {
    let mut text = data.to_vec();
    if cr_only {
        for i in 0..text.len() {
            if text[i] == b'\r' && text.get(i + 1) != Some(&b'\n') {
                text[i] = b'\n';
            }
        }
    }
    text.split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(|b| b.is_ascii_whitespace() || *b == b','))
        .map(|(i, _)| first_line + i as i64)
        .collect()
}

/// Explicit column choices, by header name, picked by the control byte.
fn choice(control: u8, names: &[String]) -> ColumnChoice {
    let pick = |shift: u8| -> Option<String> {
        let n = usize::from((control >> shift) & 0x03);
        (n > 0).then(|| names.get(n - 1).cloned()).flatten()
    };
    if control & 0x08 == 0 {
        return ColumnChoice::default();
    }
    ColumnChoice { email: pick(4), name: pick(6), first_name: None, last_name: None }
}

fn batches(source: &[u8], offset: i64, line: i64, columns: &Columns, batch_rows: usize) -> Vec<Batch> {
    let mut out = Vec::new();
    read_batches(source, offset, line, columns, batch_rows, |b| {
        // Reading from memory cannot fail.
        out.push(b.unwrap_or_else(|e| panic!("read error from a byte slice: {e}")));
        true
    });
    out
}
