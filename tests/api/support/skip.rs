//! Skipped cases, counted and reported when the test binary exits.
//!
//! A case whose backend or tool is missing (PostgreSQL without
//! `TEST_DATABASE_URL`, a browser, dkimpy, libfaketime, a tmpfs) returns
//! early, and libtest reports it as "ok" like a case that ran. Each such
//! place calls [`case`] (or [`check`], when only one check inside a case
//! that ran is left out), and the binary's last line of output says how many
//! and why, e.g. `api: 163 of the cases reported ok did not run: 151
//! PostgreSQL variants (TEST_DATABASE_URL unset), …`.
//!
//! libtest has no hook at the end of a run and runs cases in any order on
//! several threads, so the counts are kept in a process-wide table and
//! printed from a C `atexit` handler, registered when the first skip is
//! noted: it runs after libtest's own summary, whether the run passed or
//! failed. Under CI a missing tool already fails its case instead.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, Once};

/// (whole cases or single checks, what, why) → how many.
type Table = BTreeMap<(Part, String, String), usize>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Case,
    Check,
}

static SKIPPED: Mutex<Table> = Mutex::new(BTreeMap::new());
static REPORT_AT_EXIT: Once = Once::new();

/// One test case did not run: `what` names the kind of case ("PostgreSQL
/// variants"), `why` the missing part.
pub fn case(what: &str, why: &str) {
    note(Part::Case, what, why);
}

/// One check inside a case that otherwise ran was left out.
pub fn check(what: &str, why: &str) {
    note(Part::Check, what, why);
}

fn note(part: Part, what: &str, why: &str) {
    if let Ok(mut table) = SKIPPED.lock() {
        *table.entry((part, what.to_owned(), why.to_owned())).or_insert(0) += 1;
    }
    REPORT_AT_EXIT.call_once(|| {
        // SAFETY: `atexit` only stores the function pointer; `report` is a
        // plain `extern "C" fn` that cannot unwind (it neither panics nor
        // blocks: a table still locked at exit is left unreported).
        unsafe {
            libc::atexit(report);
        }
    });
}

/// The summary, for `what` was skipped; `None` when nothing was.
fn summary(table: &Table) -> Option<String> {
    let part = |p: Part| {
        let entries: Vec<String> = table
            .iter()
            .filter(|((q, ..), _)| *q == p)
            .map(|((_, what, why), n)| format!("{n} {what} ({why})"))
            .collect();
        let total: usize = table.iter().filter(|((q, ..), _)| *q == p).map(|(_, n)| n).sum();
        (total, entries.join(", "))
    };
    let name = env!("CARGO_CRATE_NAME");
    let mut lines = Vec::new();
    let (cases, why) = part(Part::Case);
    if cases > 0 {
        lines.push(format!("{name}: {cases} of the cases reported ok did not run: {why}"));
    }
    let (checks, why) = part(Part::Check);
    if checks > 0 {
        lines.push(format!("{name}: {checks} checks inside cases that ran were left out: {why}"));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

extern "C" fn report() {
    let Ok(table) = SKIPPED.try_lock() else { return };
    if let Some(text) = summary(&table) {
        let _ = writeln!(std::io::stderr(), "\n{text}\n");
    }
}

#[test]
fn the_summary_counts_and_names_each_reason() {
    let mut table = Table::new();
    table.insert((Part::Case, "PostgreSQL variants".into(), "TEST_DATABASE_URL unset".into()), 3);
    table.insert((Part::Case, "browser tests".into(), "chromium not installed".into()), 2);
    table.insert((Part::Check, "accessibility checks".into(), "axe-core not installed".into()), 4);
    let text = summary(&table).unwrap();
    assert!(text.contains("api: 5 of the cases reported ok did not run: 3 PostgreSQL variants (TEST_DATABASE_URL unset), 2 browser tests (chromium not installed)"), "{text}");
    assert!(
        text.contains(
            "api: 4 checks inside cases that ran were left out: 4 accessibility checks (axe-core not installed)"
        ),
        "{text}"
    );
    assert_eq!(summary(&Table::new()), None);
}
