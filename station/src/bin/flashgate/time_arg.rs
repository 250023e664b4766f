//! `--since` / `--until`: a date or a date and time, in the station's local time unless an
//! offset is given.
//!
//! Accepted: `2026-11-28` (local midnight), `2026-11-28 18:04`, `2026-11-28T18:04:21` (local),
//! and any of those times followed by `Z`, `+08:00` or ` +08:00` (that offset). A date alone
//! given to `--until` means the end of that day, so `--since D --until D` is the whole of D.

use station::timestamp::Timestamp;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Which end of a window a bare date stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayEdge {
    Start,
    /// The next day's midnight (an exclusive end).
    End,
}

pub fn parse_instant(text: &str, edge: DayEdge) -> Result<Timestamp, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "`{text}` is not a date or time; use `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` \
             (local time) or add an offset (`Z`, `+08:00`)"
        )
    };
    let date_only = format_description!("[year]-[month]-[day]");
    if let Ok(date) = Date::parse(text, date_only) {
        let date = match edge {
            DayEdge::Start => date,
            DayEdge::End => date.next_day().ok_or_else(bad)?,
        };
        return local(PrimitiveDateTime::new(date, Time::MIDNIGHT)).ok_or_else(bad);
    }
    let (clock, offset) = split_offset(text);
    let normalized = clock.replacen('T', " ", 1);
    let with_seconds = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let without_seconds = format_description!("[year]-[month]-[day] [hour]:[minute]");
    let at = PrimitiveDateTime::parse(&normalized, with_seconds)
        .or_else(|_| PrimitiveDateTime::parse(&normalized, without_seconds))
        .map_err(|_| bad())?;
    match offset {
        None => local(at).ok_or_else(bad),
        Some(offset) => {
            let offset = parse_offset(offset).ok_or_else(bad)?;
            Ok(stamp(at.assume_offset(offset)))
        }
    }
}

/// `(clock, offset)`: a trailing `Z` or `±HH:MM`, if any.
fn split_offset(text: &str) -> (&str, Option<&str>) {
    if let Some(clock) = text.strip_suffix('Z') {
        return (clock.trim_end(), Some("Z"));
    }
    if text.len() > 6 {
        let (clock, tail) = text.split_at(text.len() - 6);
        if (tail.starts_with('+') || tail.starts_with('-')) && tail.as_bytes()[3] == b':' {
            return (clock.trim_end(), Some(tail));
        }
    }
    (text, None)
}

fn parse_offset(text: &str) -> Option<UtcOffset> {
    if text == "Z" {
        return Some(UtcOffset::UTC);
    }
    UtcOffset::parse(
        text,
        format_description!("[offset_hour sign:mandatory]:[offset_minute]"),
    )
    .ok()
}

/// A local wall-clock time as an instant: the offset the system gives for that moment (asked
/// while `report` is single-threaded), else the one settled at start-up.
fn local(at: PrimitiveDateTime) -> Option<Timestamp> {
    let guess = at.assume_utc();
    let offset = UtcOffset::local_offset_at(guess)
        .unwrap_or_else(|_| station::timestamp::resolve_local_offset());
    Some(stamp(at.assume_offset(offset)))
}

fn stamp(at: OffsetDateTime) -> Timestamp {
    Timestamp::from_unix_ms(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> String {
        parse_instant(text, DayEdge::Start).unwrap().to_string()
    }

    #[test]
    fn explicit_offsets() {
        assert_eq!(
            utc("2026-11-28 18:04:21 +08:00"),
            "2026-11-28T10:04:21.000Z"
        );
        assert_eq!(utc("2026-11-28T18:04+08:00"), "2026-11-28T10:04:00.000Z");
        assert_eq!(utc("2026-11-28T10:04:21Z"), "2026-11-28T10:04:21.000Z");
        assert_eq!(utc("2026-11-28 10:04 -05:00"), "2026-11-28T15:04:00.000Z");
    }

    #[test]
    fn local_dates_and_day_ends() {
        let start = parse_instant("2026-11-28", DayEdge::Start).unwrap();
        let end = parse_instant("2026-11-28", DayEdge::End).unwrap();
        // A day, give or take a daylight-saving change.
        let hours = (end.unix_ms() - start.unix_ms()) / 3_600_000;
        assert!((23..=25).contains(&hours), "{hours}");
        let local = parse_instant("2026-11-28 00:00", DayEdge::Start).unwrap();
        assert_eq!(local, start);
    }

    #[test]
    fn nonsense_is_refused_with_the_formats() {
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-11-28 25:00",
            "28.11.2026",
            "",
        ] {
            let error = parse_instant(bad, DayEdge::Start).unwrap_err();
            assert!(error.contains("YYYY-MM-DD"), "{error}");
        }
    }
}
