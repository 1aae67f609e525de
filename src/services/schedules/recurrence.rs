//! When a schedule fires: a cron expression evaluated on the wall clock of
//! an IANA time zone, turned into UTC instants.
//!
//! **Cron forms.** Organisers type the familiar five fields
//! (`minute hour day-of-month month day-of-week`, e.g. `0 9 1 * *`). The
//! `cron` crate (0.17) wants a seconds field first and numbers the days of
//! the week 1=Sunday … 7=Saturday, where five-field cron uses 0=Sunday …
//! 6=Saturday (and 7=Sunday again). [`translate`] therefore prefixes `0`
//! seconds and rewrites the day-of-week field as a list of day *names*, so
//! no numbering can leak through. The crate's own six/seven-field form
//! (seconds first, optional year, its 1=Sunday numbering) and the
//! `@daily`-style shorthands are passed through unchanged.
//!
//! Classic cron fires when *either* day field matches if both are restricted
//! (`0 9 1 * 1` = the 1st of the month and every Monday); the crate requires
//! both. A five-field expression restricting both days is therefore held as
//! two crate schedules, and the earlier of their next ticks wins.
//!
//! **Time zones.** The crate walks wall-clock times with `Utc` as its zone
//! (UTC has no gaps or repeats, so it never skips or doubles a time); each
//! wall-clock time is then placed in the real zone:
//! - a time the clocks pass twice (autumn, clocks go back) fires once, at its
//!   first occurrence;
//! - a time that does not exist (spring, clocks go forward) fires once, at
//!   the moment the clocks change (as Vixie cron does).
//!
//! Pure: no I/O. It would sit in `domain/`, but it lives beside its only
//! user so the `cron` and `chrono-tz` crates stay in one place.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use cron::Schedule;
use std::str::FromStr;

/// Why an expression or zone was refused; safe to show the organiser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecurrenceError(pub String);

fn refuse(message: impl Into<String>) -> RecurrenceError {
    RecurrenceError(message.into())
}

/// Day names as the crate reads them, indexed by five-field number.
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Upper bound on wall-clock candidates examined for one answer. Only a
/// repeated hour makes candidates fall behind the starting instant, so even
/// a once-a-second schedule needs a few thousand at most.
const MAX_CANDIDATES: usize = 100_000;

/// Upper bound on the length of a clock change, in minutes (the longest on
/// record skipped a whole day: Samoa, December 2011).
const MAX_GAP_MINUTES: i64 = 48 * 60;

/// A parsed cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct Recurrence {
    /// One crate schedule, or two for classic cron's "either day" rule.
    schedules: Vec<Schedule>,
    zone: Tz,
}

impl Recurrence {
    /// Parses what the organiser typed, in `zone`.
    pub fn new(expression: &str, zone: Tz) -> Result<Self, RecurrenceError> {
        let schedules = translate(expression)?
            .iter()
            .map(|e| Schedule::from_str(e).map_err(|_| refuse(explain(e))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { schedules, zone })
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first tick strictly after `t`, or `None` if there is none (an
    /// expression whose years have all passed, or one like 30 February).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Start from the wall-clock time at `t`. Placing wall-clock times is
        // monotonic (never decreasing), and the wall-clock time at `t` places
        // at or before `t`, so the first candidate that places after `t` is
        // the answer.
        let wall_now = Utc.from_utc_datetime(&t.with_timezone(&self.zone).naive_local());
        self.schedules
            .iter()
            .filter_map(|s| {
                s.after(&wall_now)
                    .take(MAX_CANDIDATES)
                    .filter_map(|wall| self.place(wall.naive_utc()))
                    .find(|at| *at > t)
            })
            .min()
    }

    /// The instant a wall-clock time stands for in this zone (see the module
    /// documentation for the two kinds of clock change).
    fn place(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.zone.from_local_datetime(&wall) {
            LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
            LocalResult::None => {
                // Skipped: the first whole minute that exists again is the
                // moment the clocks changed (every change in the tz database
                // since 1970 falls on a whole minute).
                let mut minute = wall.with_second(0)?.with_nanosecond(0)?;
                for _ in 0..MAX_GAP_MINUTES {
                    minute += Duration::minutes(1);
                    if let Some(at) = self.zone.from_local_datetime(&minute).earliest() {
                        return Some(at.with_timezone(&Utc));
                    }
                }
                None
            }
        }
    }
}

/// Parses an IANA zone name (`Europe/London`, `UTC`).
pub fn parse_zone(name: &str) -> Result<Tz, RecurrenceError> {
    Tz::from_str(name.trim())
        .map_err(|_| refuse("not a known IANA time zone (e.g. Europe/London, America/New_York, UTC)"))
}

/// The crate expressions equivalent to what the organiser typed: one, or
/// two when a five-field expression restricts both day fields.
pub fn translate(expression: &str) -> Result<Vec<String>, RecurrenceError> {
    let expression = expression.trim();
    if let Some(name) = expression.strip_prefix('@') {
        // The crate knows @yearly, @monthly, @weekly (Sunday), @daily and
        // @hourly; two common aliases are mapped onto them.
        let known = match name {
            "annually" => "yearly",
            "midnight" => "daily",
            other => other,
        };
        return Ok(vec![format!("@{known}")]);
    }
    let fields: Vec<&str> = expression.split_whitespace().collect();
    match fields.as_slice() {
        [minute, hour, day, month, weekday] => {
            let days = weekday_names(weekday)?;
            if restricted(day) && restricted(weekday) {
                Ok(vec![format!("0 {minute} {hour} {day} {month} *"), format!("0 {minute} {hour} * {month} {days}")])
            } else {
                Ok(vec![format!("0 {minute} {hour} {day} {month} {days}")])
            }
        }
        [_, _, _, _, _, _] | [_, _, _, _, _, _, _] => Ok(vec![fields.join(" ")]),
        _ => Err(refuse(
            "expected five fields (minute hour day-of-month month day-of-week, e.g. `0 9 1 * *`), \
             or six or seven with seconds first",
        )),
    }
}

/// Classic cron's test for "this day field restricts the day": it does not
/// start with `*` (so `*/2` does not count).
fn restricted(field: &str) -> bool {
    !field.starts_with('*') && field != "?"
}

/// A five-field day-of-week field as a comma-separated list of day names
/// (`*` stays `*`). Accepts numbers 0–7 (0 and 7 are Sunday), names
/// (`mon`, `Monday`), ranges (`1-5`, `Mon-Fri`, `5-7`, `Fri-Sun`), steps
/// over ranges (`*/2`, `1-5/2`) and lists of those.
fn weekday_names(field: &str) -> Result<String, RecurrenceError> {
    if field == "*" || field == "?" {
        return Ok("*".to_owned());
    }
    let mut on = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step = step
                    .parse::<usize>()
                    .ok()
                    .filter(|s| (1..=7).contains(s))
                    .ok_or_else(|| refuse("day of week: a step is a number from 1 to 7, e.g. `*/2`"))?;
                (range, step)
            }
            None => (item, 1),
        };
        let (first, last) = match range.split_once('-') {
            _ if range == "*" => (0, 6),
            Some((a, b)) => {
                let (first, last) = (weekday(a)?, weekday(b)?);
                // Sunday closing a range is day 7: `Fri-Sun`, `5-0`.
                let last = if last == 0 && first > 0 { 7 } else { last };
                if first > last {
                    return Err(refuse("day of week: a range runs forwards, e.g. `1-5` or `Fri-Sun`"));
                }
                (first, last)
            }
            None if step > 1 || item.contains('/') => {
                return Err(refuse("day of week: a step needs a range or `*`, e.g. `1-5/2`"));
            }
            None => {
                let day = weekday(range)?;
                (day, day)
            }
        };
        for day in (first..=last).step_by(step) {
            on[day % 7] = true;
        }
    }
    Ok(WEEKDAYS.iter().zip(on).filter(|(_, on)| *on).map(|(name, _)| *name).collect::<Vec<_>>().join(","))
}

/// One day of the week as five-field cron numbers it: 0–7, or a name.
fn weekday(token: &str) -> Result<usize, RecurrenceError> {
    if let Ok(n) = token.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(refuse("day of week: numbers run from 0 (Sunday) to 6 (Saturday); 7 is Sunday too"))
        };
    }
    let lower = token.to_ascii_lowercase();
    let names = [
        ["sun", "sunday"],
        ["mon", "monday"],
        ["tue", "tuesday"],
        ["wed", "wednesday"],
        ["thu", "thursday"],
        ["fri", "friday"],
        ["sat", "saturday"],
    ];
    names
        .iter()
        .position(|n| n.contains(&lower.as_str()))
        .ok_or_else(|| refuse("day of week: use 0–7 or a day name (Sun, Mon, …)"))
}

/// Which part of a refused crate expression is wrong, said plainly (the
/// crate's own message is a parser trace of the translated expression). Each
/// field is tried alone, with every other field `*`.
fn explain(expression: &str) -> String {
    const FIELDS: [(&str, &str); 7] = [
        ("second", "0–59"),
        ("minute", "0–59"),
        ("hour", "0–23"),
        ("day of month", "1–31"),
        ("month", "1–12 or Jan–Dec"),
        ("day of week", "Sun–Sat (in the six-field form also 1–7, where 1 is Sunday)"),
        ("year", "1970–2100"),
    ];
    if expression.starts_with('@') {
        return "unknown shorthand: use @yearly, @monthly, @weekly, @daily or @hourly".to_owned();
    }
    let fields: Vec<&str> = expression.split_whitespace().collect();
    for (i, field) in fields.iter().enumerate() {
        let mut probe = vec!["*"; fields.len()];
        probe[i] = field;
        if Schedule::from_str(&probe.join(" ")).is_err() {
            let (name, range) = FIELDS.get(i).copied().unwrap_or(("field", "a cron field"));
            return format!(
                "{name}: `{field}` is not valid; use {range}, `*`, a list (1,15), a range (1-5) or a step (*/15)"
            );
        }
    }
    "not a valid cron expression".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn london(expr: &str) -> Recurrence {
        Recurrence::new(expr, chrono_tz::Europe::London).unwrap()
    }

    /// The next `n` ticks after `from`.
    fn ticks(r: &Recurrence, from: &str, n: usize) -> Vec<String> {
        let mut at = utc(from);
        let mut out = Vec::new();
        for _ in 0..n {
            at = r.next_after(at).unwrap();
            out.push(at.to_rfc3339());
        }
        out
    }

    #[test]
    fn five_fields_gain_a_seconds_field() {
        assert_eq!(translate("0 9 1 * *").unwrap(), ["0 0 9 1 * *"]);
        assert_eq!(translate("  */15  8-18 * Jan-Mar *  ").unwrap(), ["0 */15 8-18 * Jan-Mar *"]);
    }

    #[test]
    fn weekday_numbers_become_names_with_sunday_zero() {
        assert_eq!(translate("0 9 * * 0").unwrap(), ["0 0 9 * * Sun"]);
        assert_eq!(translate("0 9 * * 7").unwrap(), ["0 0 9 * * Sun"]);
        assert_eq!(translate("0 9 * * 1").unwrap(), ["0 0 9 * * Mon"]);
        assert_eq!(translate("0 9 * * 6").unwrap(), ["0 0 9 * * Sat"]);
        assert_eq!(translate("0 9 * * 1-5").unwrap(), ["0 0 9 * * Mon,Tue,Wed,Thu,Fri"]);
        assert_eq!(translate("0 9 * * 5-7").unwrap(), ["0 0 9 * * Sun,Fri,Sat"]);
        assert_eq!(translate("0 9 * * 0,3,6").unwrap(), ["0 0 9 * * Sun,Wed,Sat"]);
        assert_eq!(translate("0 9 * * */2").unwrap(), ["0 0 9 * * Sun,Tue,Thu,Sat"]);
        assert_eq!(translate("0 9 * * 1-5/2").unwrap(), ["0 0 9 * * Mon,Wed,Fri"]);
        assert_eq!(translate("0 9 * * mon-FRI").unwrap(), ["0 0 9 * * Mon,Tue,Wed,Thu,Fri"]);
        assert_eq!(translate("0 9 * * Fri-Sun").unwrap(), ["0 0 9 * * Sun,Fri,Sat"]);
        assert_eq!(translate("0 9 * * 5-0").unwrap(), ["0 0 9 * * Sun,Fri,Sat"]);
        assert_eq!(translate("0 9 * * Tuesday,thu").unwrap(), ["0 0 9 * * Tue,Thu"]);
        assert_eq!(translate("0 9 * * *").unwrap(), ["0 0 9 * * *"]);
    }

    #[test]
    fn translated_weekdays_fire_on_the_right_days() {
        // 2026-11-23 is a Monday.
        let r = Recurrence::new("0 9 * * 1", chrono_tz::UTC).unwrap();
        assert_eq!(r.next_after(utc("2026-11-20T00:00:00Z")).unwrap(), utc("2026-11-23T09:00:00Z"));
        let r = Recurrence::new("0 9 * * 0", chrono_tz::UTC).unwrap();
        assert_eq!(r.next_after(utc("2026-11-20T00:00:00Z")).unwrap(), utc("2026-11-22T09:00:00Z"));
        let r = Recurrence::new("0 9 * * 1-5", chrono_tz::UTC).unwrap();
        assert_eq!(
            ticks(&r, "2026-11-20T10:00:00Z", 2),
            ["2026-11-23T09:00:00+00:00", "2026-11-24T09:00:00+00:00"],
            "Friday after nine: next is Monday, not Saturday"
        );
    }

    #[test]
    fn both_day_fields_restricted_means_either() {
        assert_eq!(translate("0 9 1 * 1").unwrap(), ["0 0 9 1 * *", "0 0 9 * * Mon"]);
        // December 2026: Tuesday the 1st, then Mondays the 7th and 14th.
        let r = Recurrence::new("0 9 1 * 1", chrono_tz::UTC).unwrap();
        assert_eq!(
            ticks(&r, "2026-11-30T10:00:00Z", 3),
            ["2026-12-01T09:00:00+00:00", "2026-12-07T09:00:00+00:00", "2026-12-14T09:00:00+00:00"]
        );
        // A starred day field keeps "both" (classic cron does the same).
        assert_eq!(translate("0 9 1 * */2").unwrap(), ["0 0 9 1 * Sun,Tue,Thu,Sat"]);
    }

    #[test]
    fn six_and_seven_fields_and_shorthands_pass_through() {
        assert_eq!(translate("30 0 9 * * Mon").unwrap(), ["30 0 9 * * Mon"]);
        assert_eq!(translate("0 0 9 1 * * 2027").unwrap(), ["0 0 9 1 * * 2027"]);
        assert_eq!(translate("@midnight").unwrap(), ["@daily"]);
        assert!(Recurrence::new("@weekly", chrono_tz::UTC).is_ok());
        // The crate's own form keeps the crate's numbering: 2 is Monday.
        let r = Recurrence::new("0 0 9 * * 2", chrono_tz::UTC).unwrap();
        assert_eq!(r.next_after(utc("2026-11-20T00:00:00Z")).unwrap(), utc("2026-11-23T09:00:00Z"));
    }

    #[test]
    fn garbage_is_refused_naming_what_is_wrong() {
        for (bad, says) in [
            ("", "expected five fields"),
            ("every day", "expected five fields"),
            ("0 9 * *", "expected five fields"),
            ("0 9 * * * * * *", "expected five fields"),
            ("61 9 * * *", "minute: `61`"),
            ("x 9 * * *", "minute: `x`"),
            ("0 25 * * *", "hour: `25`"),
            ("0 9 32 * *", "day of month: `32`"),
            ("0 9 * 13 *", "month: `13`"),
            ("0 9 * * 8", "day of week: numbers run from 0"),
            ("0 9 * * Funday", "day of week: use 0–7"),
            ("0 9 * * 5-1", "day of week: a range runs forwards"),
            ("0 9 * * 1/2", "day of week: a step needs a range"),
            ("0 9 * * */0", "day of week: a step is a number"),
            ("60 0 9 * * *", "second: `60`"),
            ("0 0 9 * * 8", "day of week: `8`"),
            ("0 0 9 * * * 1900", "year: `1900`"),
            ("@reboot", "unknown shorthand"),
        ] {
            let err = Recurrence::new(bad, chrono_tz::UTC).unwrap_err();
            assert!(err.0.starts_with(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn zones_are_iana_names() {
        assert_eq!(parse_zone("Europe/London").unwrap(), chrono_tz::Europe::London);
        assert_eq!(parse_zone("UTC").unwrap(), chrono_tz::UTC);
        assert!(parse_zone("Mars/Olympus_Mons").is_err());
        assert!(parse_zone("BST").is_err());
    }

    #[test]
    fn nine_in_london_stays_nine_across_both_clock_changes() {
        // Clocks go forward on 29 March 2026 and back on 25 October 2026.
        let r = london("0 9 * * *");
        assert_eq!(
            ticks(&r, "2026-03-27T12:00:00Z", 4),
            [
                "2026-03-28T09:00:00+00:00",
                "2026-03-29T08:00:00+00:00",
                "2026-03-30T08:00:00+00:00",
                "2026-03-31T08:00:00+00:00"
            ]
        );
        assert_eq!(
            ticks(&r, "2026-10-23T12:00:00Z", 4),
            [
                "2026-10-24T08:00:00+00:00",
                "2026-10-25T09:00:00+00:00",
                "2026-10-26T09:00:00+00:00",
                "2026-10-27T09:00:00+00:00"
            ]
        );
        for t in ticks(&r, "2026-03-01T00:00:00Z", 300) {
            let local = utc(&t).with_timezone(&chrono_tz::Europe::London);
            assert_eq!((local.hour(), local.minute()), (9, 0), "{t}");
        }
    }

    #[test]
    fn a_time_skipped_in_spring_runs_once_when_the_clocks_change() {
        // 01:30 does not exist in London on 29 March 2026 (01:00 GMT → 02:00 BST).
        let r = london("30 1 * * *");
        assert_eq!(
            ticks(&r, "2026-03-27T12:00:00Z", 3),
            ["2026-03-28T01:30:00+00:00", "2026-03-29T01:00:00+00:00", "2026-03-30T00:30:00+00:00"]
        );
    }

    #[test]
    fn a_time_repeated_in_autumn_runs_once() {
        // 01:30 happens twice in London on 25 October 2026 (00:30 and 01:30 UTC).
        let r = london("30 1 * * *");
        assert_eq!(
            ticks(&r, "2026-10-23T12:00:00Z", 3),
            ["2026-10-24T00:30:00+00:00", "2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]
        );
        // Asked from inside the repeated hour (after the first 01:30), the
        // second 01:30 is not offered.
        assert_eq!(r.next_after(utc("2026-10-25T01:00:00Z")).unwrap(), utc("2026-10-26T01:30:00Z"));
    }

    #[test]
    fn every_quarter_hour_never_goes_backwards_across_clock_changes() {
        let r = london("*/15 * * * *");
        for from in ["2026-03-28T23:00:00Z", "2026-10-24T23:00:00Z"] {
            let all = ticks(&r, from, 12);
            let instants: Vec<_> = all.iter().map(|t| utc(t)).collect();
            assert!(instants.windows(2).all(|w| w[0] < w[1]), "{all:?}");
        }
    }

    #[test]
    fn an_expression_with_no_future_has_no_next_tick() {
        let r = Recurrence::new("0 0 9 1 1 * 2020", chrono_tz::UTC).unwrap();
        assert_eq!(r.next_after(utc("2026-01-01T00:00:00Z")), None);
        let r = Recurrence::new("0 9 30 2 *", chrono_tz::UTC).unwrap();
        assert_eq!(r.next_after(utc("2026-01-01T00:00:00Z")), None);
    }
}
