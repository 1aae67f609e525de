//! Bounce and complaint messages (RFC 3464 DSN, RFC 5965 ARF), as
//! `tidings bounces ingest` and the bounce mailbox read them: never panic,
//! and what is reported is consistent with the kind of report it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::services::bounces::dsn::parse;
use tidings::services::bounces::{EnhancedStatus, ReportKind, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = parse(data) else { return };
    assert!(parsed.sns_confirmations.is_empty());
    for report in &parsed.reports {
        assert!(report.event_id.as_deref().is_some_and(|id| !id.is_empty()), "every report can be recognised again");
        match (&report.kind, report.source) {
            (ReportKind::Bounce { status, .. } | ReportKind::Delayed { status, .. }, Source::Dsn) => {
                if let Some(s) = status {
                    assert_eq!(EnhancedStatus::parse(&s.to_string()), Some(*s), "a status prints as it parses");
                }
            }
            (ReportKind::Complaint { .. }, Source::Arf) => {}
            (kind, source) => panic!("a {source:?} report of kind {kind:?}"),
        }
        for path in &report.return_paths {
            assert!(path.contains('@') && !path.contains(char::is_whitespace), "return path {path:?}");
        }
    }
    // An mbox "From " line in front changes nothing.
    if !data.starts_with(b"From ") {
        let mut mbox = b"From MAILER-DAEMON Thu Nov 12 10:00:00 2026\n".to_vec();
        mbox.extend_from_slice(data);
        assert_eq!(parse(&mbox), Ok(parsed), "the mbox separator line changed the result");
    }
});
