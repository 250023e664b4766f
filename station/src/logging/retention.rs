//! Log retention: a station's logs grow by a daily JSON file and a folder of unit logs a day;
//! `log_retention` in station.yaml bounds them by age and by total size. Logs are grouped by
//! day (the daily file's date, the unit folder's name; anything else by its modification
//! date), and whole days go, oldest first. The two most recent days are never removed: a unit
//! started before midnight still writes into yesterday's folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::LogRetention;

/// The daily JSON files: `flashgate.<YYYY-MM-DD>.jsonl`.
const DAILY_PREFIX: &str = "flashgate.";
const DAILY_SUFFIX: &str = ".jsonl";

/// Days never removed, today included.
const KEPT_RECENT_DAYS: usize = 2;

/// What one pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub days: Vec<String>,
    pub files: u64,
    pub bytes: u64,
    /// Paths that could not be removed, with why.
    pub errors: Vec<String>,
}

/// A day's logs.
#[derive(Debug, Default)]
struct Day {
    paths: Vec<PathBuf>,
    files: u64,
    bytes: u64,
}

/// The UTC date `YYYY-MM-DD` of `at`.
pub fn utc_day(at: SystemTime) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_else(|_| "1970-01-01".into())
}

fn is_day(name: &str) -> bool {
    name.len() == 10
        && name.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// Size and file count of `path` (a file, or a folder walked without following links).
fn measure(path: &Path) -> (u64, u64) {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return (0, 0);
    };
    if !metadata.is_dir() {
        return (1, metadata.len());
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return (0, 0);
    };
    entries
        .filter_map(Result::ok)
        .map(|e| measure(&e.path()))
        .fold((0, 0), |(f, b), (ef, eb)| (f + ef, b + eb))
}

fn modified_day(path: &Path) -> Option<String> {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .map(utc_day)
}

/// Every log of `log_dir` by day.
fn days_in(log_dir: &Path) -> BTreeMap<String, Day> {
    let mut days: BTreeMap<String, Day> = BTreeMap::new();
    let mut add = |day: String, path: PathBuf| {
        let (files, bytes) = measure(&path);
        let entry = days.entry(day).or_default();
        entry.paths.push(path);
        entry.files += files;
        entry.bytes += bytes;
    };
    if let Ok(entries) = std::fs::read_dir(log_dir) {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(day) = name
                .strip_prefix(DAILY_PREFIX)
                .and_then(|rest| rest.strip_suffix(DAILY_SUFFIX))
                .filter(|day| is_day(day))
            else {
                continue;
            };
            add(day.to_string(), entry.path());
        }
    }
    if let Ok(entries) = std::fs::read_dir(log_dir.join("units")) {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let is_folder = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_folder && is_day(&name) {
                add(name, path);
            } else if !is_folder && name.ends_with(".log") {
                // A unit log from before per-day folders: its day is when it was last written.
                if let Some(day) = modified_day(&path) {
                    add(day, path);
                }
            }
        }
    }
    days
}

/// Removes whole days of logs, oldest first, until `retention` holds. `now` decides ages.
pub fn prune(log_dir: &Path, retention: &LogRetention, now: SystemTime) -> Pruned {
    let mut pruned = Pruned::default();
    let mut days = days_in(log_dir);
    let today = utc_day(now);
    // Days after today (a clock set back) are recent too.
    let recent: Vec<String> = days
        .keys()
        .rev()
        .take(KEPT_RECENT_DAYS)
        .cloned()
        .chain(std::iter::once(today.clone()))
        .collect();
    let oldest_kept = retention.max_age_days.map(|days| {
        let back = u64::from(days.saturating_sub(1)) * 86_400;
        utc_day(
            now.checked_sub(Duration::from_secs(back))
                .unwrap_or(UNIX_EPOCH),
        )
    });
    let mut total: u64 = days.values().map(|d| d.bytes).sum();
    let candidates: Vec<String> = days
        .keys()
        .filter(|day| !recent.contains(day) && **day < today)
        .cloned()
        .collect();
    for day in candidates {
        let too_old = oldest_kept.as_ref().is_some_and(|oldest| day < *oldest);
        let too_big = retention.max_total_bytes.is_some_and(|max| total > max);
        if !too_old && !too_big {
            break;
        }
        let Some(entry) = days.remove(&day) else {
            continue;
        };
        for path in &entry.paths {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            if let Err(e) = removed {
                pruned.errors.push(format!("{}: {e}", path.display()));
            }
        }
        total = total.saturating_sub(entry.bytes);
        pruned.files += entry.files;
        pruned.bytes += entry.bytes;
        pruned.days.push(day);
    }
    pruned
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn at(day_number: u64) -> SystemTime {
        // 2026-11-01 00:00 UTC + n days, at noon.
        UNIX_EPOCH + Duration::from_secs(1_793_491_200 + day_number * DAY + DAY / 2)
    }

    /// A log dir with one daily file and one unit folder (`bytes` in one unit log) per day.
    fn logs(days: &[u64], bytes: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for &n in days {
            let day = utc_day(at(n));
            std::fs::write(
                dir.path().join(format!("flashgate.{day}.jsonl")),
                vec![b'{'; bytes],
            )
            .unwrap();
            let folder = dir.path().join("units").join(&day);
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("FG1-1.log"), vec![b'x'; bytes]).unwrap();
        }
        dir
    }

    fn days_left(dir: &Path) -> Vec<String> {
        days_in(dir).into_keys().collect()
    }

    #[test]
    fn days_are_dated_in_utc() {
        assert_eq!(utc_day(at(0)), "2026-11-01");
        assert_eq!(utc_day(at(30)), "2026-12-01");
        assert!(is_day("2026-12-01") && !is_day("2026-12-1") && !is_day("units"));
    }

    #[test]
    fn old_days_go_by_age() {
        let dir = logs(&[0, 1, 2, 8, 9], 10);
        let retention = LogRetention {
            max_age_days: Some(3),
            max_total_bytes: None,
        };
        let pruned = prune(dir.path(), &retention, at(9));
        assert_eq!(pruned.days, ["2026-11-01", "2026-11-02", "2026-11-03"]);
        assert_eq!((pruned.files, pruned.bytes), (6, 60));
        assert!(pruned.errors.is_empty());
        assert_eq!(days_left(dir.path()), ["2026-11-09", "2026-11-10"]);
        assert!(!dir.path().join("units/2026-11-01").exists());
        assert!(!dir.path().join("flashgate.2026-11-01.jsonl").exists());
        // Nothing more to do on a second pass.
        assert_eq!(prune(dir.path(), &retention, at(9)), Pruned::default());
    }

    #[test]
    fn the_oldest_days_go_until_the_size_fits_and_the_last_two_stay() {
        let dir = logs(&[0, 1, 2, 3, 4], 1000);
        let retention = LogRetention {
            max_age_days: None,
            max_total_bytes: Some(5000),
        };
        // 10 000 bytes in 5 days of 2 000: three days go.
        let pruned = prune(dir.path(), &retention, at(4));
        assert_eq!(pruned.days.len(), 3, "{pruned:?}");
        assert_eq!(days_left(dir.path()), ["2026-11-04", "2026-11-05"]);
        // A bound the last two days alone exceed removes no more.
        let tight = LogRetention {
            max_age_days: Some(1),
            max_total_bytes: Some(1),
        };
        assert!(prune(dir.path(), &tight, at(4)).days.is_empty());
        assert_eq!(days_left(dir.path()).len(), 2);
    }

    #[test]
    fn unbounded_retention_removes_nothing_and_other_files_are_left_alone() {
        let dir = logs(&[0, 1, 2], 10);
        std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
        let none = LogRetention {
            max_age_days: None,
            max_total_bytes: None,
        };
        assert_eq!(prune(dir.path(), &none, at(40)), Pruned::default());
        let strict = LogRetention {
            max_age_days: Some(1),
            max_total_bytes: None,
        };
        prune(dir.path(), &strict, at(40));
        assert!(dir.path().join("notes.txt").exists());
    }
}
