//! A look at a journal that changes nothing and disturbs no running station: opened read-only
//! (a WAL reader never blocks the station's commits), and the station lock is found in the
//! kernel's lock table rather than by trying to take it (even a brief try would make a station
//! starting at that moment refuse its journal).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{schema::SCHEMA_VERSION, Journal, JournalError, StationLock};

/// What a read-only look at a journal found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalInspection {
    pub path: PathBuf,
    /// `PRAGMA user_version`.
    pub schema_version: i64,
    /// Distinct units passed under the work order asked about.
    pub units_passed: u32,
    /// The station holding the journal now, if one does.
    pub holder: Option<LockHolder>,
}

/// The process holding a journal's station lock, from the lock file's stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub pid: String,
    /// When it took the lock, as it wrote it.
    pub since: Option<String>,
}

impl Journal {
    /// Reads what [`JournalInspection`] holds from an existing journal, read-only; never
    /// migrates, creates or locks anything.
    pub fn inspect(path: &Path, work_order: &str) -> Result<JournalInspection, JournalError> {
        let open_error = |source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let schema_version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if schema_version > SCHEMA_VERSION {
            return Err(JournalError::NewerSchema {
                found: schema_version,
                supported: SCHEMA_VERSION,
            });
        }
        let journal = Journal {
            conn,
            path: path.to_path_buf(),
            signer: None,
        };
        // An empty file (or a journal the station never set up) has no table yet.
        let units_passed = if schema_version == 0 {
            0
        } else {
            journal.units_passed(work_order)?
        };
        Ok(JournalInspection {
            path: path.to_path_buf(),
            schema_version,
            units_passed,
            holder: lock_holder(path),
        })
    }
}

impl Journal {
    /// Opens an existing journal read-only, as it is: never migrates, creates or locks
    /// anything, and never blocks the station writing it (for `journal verify`, which an
    /// auditor may run on a copy that must not change).
    pub fn open_read_only(path: &Path) -> Result<Self, JournalError> {
        if !path.exists() {
            return Err(JournalError::Setup(format!(
                "{} does not exist; check the station's `journal` path",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_timeout(super::schema::BUSY_TIMEOUT)?;
        let schema_version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if schema_version > SCHEMA_VERSION {
            return Err(JournalError::NewerSchema {
                found: schema_version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(Journal {
            conn,
            path: path.to_path_buf(),
            signer: None,
        })
    }

    /// `PRAGMA user_version` of the journal as opened.
    pub fn schema_version(&self) -> Result<i64, JournalError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))?)
    }
}

/// The station holding `journal`'s lock, found without taking it: the lock file's inode among
/// the kernel's `flock` locks (`/proc/locks`). `None` when no process holds it (or the lock
/// table cannot be read).
pub fn lock_holder(journal: &Path) -> Option<LockHolder> {
    let lock = StationLock::path_for(journal);
    let metadata = std::fs::metadata(&lock).ok()?;
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = flock_holder(&table, &metadata)?;
    let stamp = std::fs::read_to_string(&lock).unwrap_or_default();
    let mut fields = stamp.split_whitespace();
    let stamped_pid = fields.next();
    Some(LockHolder {
        // The kernel's pid is the truth; the stamp only adds when.
        since: fields
            .next()
            .filter(|_| stamped_pid == Some(pid.as_str()))
            .map(str::to_string),
        pid,
    })
}

#[cfg(unix)]
fn flock_holder(table: &str, metadata: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = metadata.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let wanted = format!("{major:02x}:{minor:02x}:{}", metadata.ino());
    flock_holder_in(table, &wanted)
}

#[cfg(not(unix))]
fn flock_holder(_table: &str, _metadata: &std::fs::Metadata) -> Option<String> {
    None
}

/// The pid of the `FLOCK` entry on `device_inode` (`fe:00:7266784`) in a `/proc/locks` table;
/// waiting entries (`->`) are not holders.
fn flock_holder_in(table: &str, device_inode: &str) -> Option<String> {
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, inode, ..] if *inode == device_inode => Some(pid.to_string()),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_read_from_the_lock_table() {
        let table = "1: POSIX  ADVISORY  READ 18020 fe:00:10186014 128 128\n\
                     2: FLOCK  ADVISORY  WRITE 26534 fe:00:7266784 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 26999 fe:00:7266784 0 EOF\n";
        assert_eq!(
            flock_holder_in(table, "fe:00:7266784").as_deref(),
            Some("26534")
        );
        assert_eq!(flock_holder_in(table, "fe:00:10186014"), None);
        assert_eq!(flock_holder_in(table, "fe:00:1"), None);
    }

    #[test]
    fn a_held_journal_is_seen_without_taking_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let (_journal, lock, _) =
            Journal::open_for_station(&path, std::time::SystemTime::now()).unwrap();
        let seen = Journal::inspect(&path, "WO-1").unwrap();
        assert_eq!(seen.schema_version, SCHEMA_VERSION);
        assert_eq!(seen.units_passed, 0);
        let holder = seen
            .holder
            .expect("the station holding the journal is seen");
        assert_eq!(holder.pid, std::process::id().to_string());
        assert!(holder.since.is_some());
        // The look took nothing: the station still holds its lock, and a second station is
        // still refused.
        assert!(matches!(
            StationLock::take(&path),
            Err(JournalError::InUse { .. })
        ));
        drop(lock);
        assert_eq!(Journal::inspect(&path, "WO-1").unwrap().holder, None);
    }
}
