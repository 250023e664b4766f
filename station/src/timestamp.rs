//! Wall-clock stamps, formatted one way for machines and one way for people.
//!
//! Machines (the journal, JSON output, log files) get RFC 3339 in UTC with a `Z` and fixed
//! millisecond digits, so stamps sort as text and never depend on where the station stands.
//! People (plain output lines, `history`, `report`) get local time with its UTC offset, so an
//! operator in Shenzhen reads 18:04 for what a UTC stamp calls 10:04 and can still tell which.
//!
//! Where the local offset comes from: the `time` crate asks the C library (`localtime_r`, which
//! reads `TZ` and `/etc/localtime`), but only while the process has a single thread, because
//! another thread's `setenv` during that call is undefined behaviour; with threads it returns an
//! error. `flashgate` therefore calls [`resolve_local_offset`] first thing in `main`, before
//! tokio, the log writer or any other thread starts, and keeps that offset for the whole run.
//! Single-threaded commands (`history`, `report`) also ask per stamp, so a stamp from the other
//! side of a daylight-saving change shows the offset it had then. When neither is possible (a
//! test harness, a library caller that never resolved it) stamps show UTC as `+00:00`: still a
//! correct instant, since the offset is always printed. Reading TZ and zoneinfo ourselves was
//! the alternative; it would duplicate the C library's rules for no gain here.

use std::fmt;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// `2026-11-28T10:04:21.123Z`
const RFC3339_UTC_MILLIS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
/// `2026-11-28 18:04:21 +08:00`
const LOCAL_DATE_TIME: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory]:[offset_minute]"
);
/// `18:04:21.123 +08:00`
const LOCAL_CLOCK: &[BorrowedFormatItem<'static>] = format_description!(
    "[hour]:[minute]:[second].[subsecond digits:3] [offset_hour sign:mandatory]:[offset_minute]"
);

static LOCAL_OFFSET: OnceLock<UtcOffset> = OnceLock::new();

/// Settles the local UTC offset used for people's stamps. Call it before any thread starts
/// (see the module comment); later calls return the offset settled by the first.
pub fn resolve_local_offset() -> UtcOffset {
    *LOCAL_OFFSET.get_or_init(|| UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC))
}

/// The local offset at `instant`: asked of the system while that is sound (one thread), else the
/// offset settled at start-up.
fn local_offset_at(instant: OffsetDateTime) -> UtcOffset {
    UtcOffset::local_offset_at(instant).unwrap_or_else(|_| resolve_local_offset())
}

/// Milliseconds since the Unix epoch, now.
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// An instant with millisecond resolution. `Display` and `Serialize` give the machines' form
/// (RFC 3339 UTC); [`Timestamp::local`] and [`Timestamp::local_clock`] give the people's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_ms: i64,
}

impl Timestamp {
    pub fn from_unix_ms(unix_ms: i64) -> Self {
        Self { unix_ms }
    }

    /// For the `u64` milliseconds events carry.
    pub fn from_unix_ms_u64(unix_ms: u64) -> Self {
        Self::from_unix_ms(i64::try_from(unix_ms).unwrap_or(i64::MAX))
    }

    pub fn now() -> Self {
        Self::from_unix_ms_u64(now_unix_ms())
    }

    pub fn unix_ms(self) -> i64 {
        self.unix_ms
    }

    /// `2026-11-28 18:04:21 +08:00` in the station's local time.
    pub fn local(self) -> String {
        self.format_local(LOCAL_DATE_TIME)
    }

    /// `18:04:21.123 +08:00` in the station's local time, for lines whose date is evident.
    pub fn local_clock(self) -> String {
        self.format_local(LOCAL_CLOCK)
    }

    /// [`Timestamp::local`] at a given offset.
    pub fn date_time_at(self, offset: UtcOffset) -> String {
        self.format_at(offset, LOCAL_DATE_TIME)
    }

    /// [`Timestamp::local_clock`] at a given offset.
    pub fn clock_at(self, offset: UtcOffset) -> String {
        self.format_at(offset, LOCAL_CLOCK)
    }

    /// `None` past the years `time` represents (±9999): only a corrupt row or a wild clock.
    fn instant(self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.unix_ms) * 1_000_000).ok()
    }

    fn format_local(self, format: &[BorrowedFormatItem<'_>]) -> String {
        match self.instant() {
            Some(instant) => self.format_at(local_offset_at(instant), format),
            None => self.out_of_range(),
        }
    }

    fn format_at(self, offset: UtcOffset, format: &[BorrowedFormatItem<'_>]) -> String {
        self.instant()
            .and_then(|instant| instant.checked_to_offset(offset))
            .and_then(|at| at.format(format).ok())
            .unwrap_or_else(|| self.out_of_range())
    }

    fn out_of_range(self) -> String {
        format!("(unix ms {})", self.unix_ms)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format_at(UtcOffset::UTC, RFC3339_UTC_MILLIS))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix_ms: i64) -> Timestamp {
        Timestamp::from_unix_ms(unix_ms)
    }

    #[test]
    fn machines_read_rfc3339_utc_with_fixed_millis() {
        assert_eq!(at(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(-1).to_string(), "1969-12-31T23:59:59.999Z");
        // A leap day.
        assert_eq!(at(951_827_696_789).to_string(), "2000-02-29T12:34:56.789Z");
        assert_eq!(
            at(1_795_860_261_123).to_string(),
            "2026-11-28T10:04:21.123Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms_u64(1_796_379_302_120).to_string(),
            "2026-12-04T10:15:02.120Z"
        );
        assert_eq!(
            serde_json::to_string(&at(1_795_860_261_123)).unwrap(),
            "\"2026-11-28T10:04:21.123Z\""
        );
    }

    #[test]
    fn people_read_local_time_with_its_offset() {
        let shanghai = UtcOffset::from_hms(8, 0, 0).unwrap();
        let stamp = at(1_795_860_261_123);
        assert_eq!(stamp.date_time_at(shanghai), "2026-11-28 18:04:21 +08:00");
        assert_eq!(stamp.clock_at(shanghai), "18:04:21.123 +08:00");
        // Crossing midnight backwards, at a half-hour offset.
        let newfoundland = UtcOffset::from_hms(-3, -30, 0).unwrap();
        assert_eq!(
            at(1_795_831_200_000).date_time_at(newfoundland),
            "2026-11-27 22:30:00 -03:30"
        );
        assert_eq!(
            stamp.date_time_at(UtcOffset::UTC),
            "2026-11-28 10:04:21 +00:00"
        );
        assert_eq!(stamp.clock_at(UtcOffset::UTC), "10:04:21.123 +00:00");
    }

    #[test]
    fn instants_past_the_calendar_never_panic() {
        assert_eq!(at(i64::MAX).to_string(), format!("(unix ms {})", i64::MAX));
        assert_eq!(at(i64::MIN).local(), format!("(unix ms {})", i64::MIN));
        assert_eq!(
            Timestamp::from_unix_ms_u64(u64::MAX).to_string(),
            format!("(unix ms {})", i64::MAX)
        );
    }

    #[test]
    fn local_form_always_names_its_offset() {
        let text = at(1_795_860_261_123).local();
        let (_, offset) = text.rsplit_once(' ').unwrap();
        assert!(
            offset.len() == 6 && offset.starts_with(['+', '-']) && &offset[3..4] == ":",
            "{text}"
        );
    }
}
