//! One station process per journal. SQLite's own locking only serialises statements: two
//! stations on one journal would each count the work order's passes and close each other's open
//! attempts as interrupted. The lock is an `flock` on a file beside the journal, so the kernel
//! releases it when the process ends, however it ends (no stale lock after a crash).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::JournalError;

/// Held for as long as the station runs; dropping it releases the journal.
#[derive(Debug)]
pub struct StationLock {
    // The open file descriptor is the lock.
    _file: File,
    path: PathBuf,
}

impl StationLock {
    /// The lock file for `journal`: `journal.sqlite` → `journal.sqlite.station-lock`.
    pub fn path_for(journal: &Path) -> PathBuf {
        let mut name = journal.as_os_str().to_os_string();
        name.push(".station-lock");
        PathBuf::from(name)
    }

    pub fn take(journal: &Path) -> Result<Self, JournalError> {
        let path = Self::path_for(journal);
        let lock_error = |source| JournalError::Lock {
            path: journal.to_path_buf(),
            lock: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(lock_error)?;
        if !try_lock_exclusive(&file).map_err(lock_error)? {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let mut fields = holder.split_whitespace();
            let pid = fields.next().unwrap_or("unknown").to_string();
            let since = fields
                .next()
                .map(|t| format!(", since {t}"))
                .unwrap_or_default();
            return Err(JournalError::InUse {
                path: journal.to_path_buf(),
                pid,
                since,
            });
        }
        let stamp = format!(
            "{} {}\n",
            std::process::id(),
            crate::timestamp::Timestamp::now()
        );
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| file.write_all(stamp.as_bytes()))
            .map_err(lock_error)?;
        Ok(Self { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(unix)]
fn try_lock_exclusive(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor this function's caller owns; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error)
    }
}

#[cfg(not(unix))]
fn try_lock_exclusive(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_station_is_refused_naming_the_first_and_the_lock_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal.sqlite");
        let first = StationLock::take(&journal).unwrap();
        match StationLock::take(&journal) {
            Err(JournalError::InUse { pid, .. }) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        StationLock::take(&journal).expect("the lock is free once its holder is gone");
    }
}
