//! The station's private, read-only copy of a checked image set: pre-flight writes each file
//! into it while hashing the source (one read, one hash), and phones are sent the copy's bytes
//! without hashing them again.
//!
//! Why the bytes sent are still the bytes checked:
//! - the copy holds exactly the bytes that went through the hash (they are written from the
//!   same buffer), in a file created with `O_EXCL` in a folder that only the station's user
//!   can enter (0700), then made read-only (0400): no other user can open it at all, and the
//!   station itself never opens it for writing again;
//! - the copy stays open for the whole batch, and every read from it is followed by an
//!   `fstat` of that open file compared with the stamp taken when it was sealed: inode, size,
//!   modification time and change time. A write, truncation, `chmod` or new hard link by
//!   anyone (root included) sets the change time, which no user can set back, so the read that
//!   could have seen changed bytes is refused before its bytes are handed out. The residual
//!   gap: timestamps tick coarsely (a few ms), so root writing within that tick of sealing is
//!   not seen; nobody else can write at all.
//!
//! Not chosen: a sealed memfd (`F_SEAL_WRITE`) is enforced by the kernel, but it lives in RAM
//! (or swap), and a line's image set is several GiB per build; fs-verity would also be kernel
//! enforced, but needs a filesystem made with the `verity` feature, which a stock Debian ext4
//! is not. Hashing each phone's stream again (the old way, kept behind `in_place`) costs about
//! 0.55 s of CPU per GiB per phone, a third of the station's CPU at line scale.
//!
//! The copies are named by content (`<sha256>.img`, with a `<sha256>.sealed` note of the stamp
//! they were sealed with), so the next batch of the same build reuses them after hashing the
//! source again, and the files another build left are removed — unless a batch still holds
//! them (each holder keeps a shared `flock` on its open copy; removal takes an exclusive one
//! without waiting), so a simulated run beside a production run never takes its files away.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::digest::Sha256Digest;

/// Bytes kept free beside the copies (journal, logs).
const SPARE_BYTES: u64 = 64 << 20;
/// Blocks of zeros this large are left as holes in the copy, as the source's holes are.
const HOLE_BLOCK: usize = 4096;

/// The folder of private copies: `images/` beside the station's journal by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateStore {
    dir: PathBuf,
}

/// Why a private copy could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum PrivateCopyError {
    #[error("the station's image copies in {}: {source}; the station's user must own that folder", dir.display())]
    Folder {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the station's image copies in {}: {needed} bytes are needed for a private copy of the image, {free} are free (keeping {spare} spare); free disk space there, or point the journal elsewhere", dir.display(), spare = SPARE_BYTES)]
    NoRoom {
        dir: PathBuf,
        needed: u64,
        free: u64,
    },
    #[error("writing the private copy {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl PrivateStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `images/` in the folder of `journal`.
    pub fn beside_journal(journal: &Path) -> Self {
        let parent = journal
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::new(parent.join("images"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn folder_error(&self, source: io::Error) -> PrivateCopyError {
        PrivateCopyError::Folder {
            dir: self.dir.clone(),
            source,
        }
    }

    fn ensure_folder(&self) -> Result<(), PrivateCopyError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.folder_error(e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| self.folder_error(e))?;
        }
        Ok(())
    }

    /// An exclusive lock on the store, held while a copy gets its name (released on drop).
    fn lock_for_naming(&self) -> io::Result<File> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(".naming-lock"))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(io::Error::from)?;
        Ok(file)
    }

    fn copy_path(&self, sha256: &Sha256Digest) -> PathBuf {
        self.dir.join(format!("{sha256}.img"))
    }

    fn note_path(&self, sha256: &Sha256Digest) -> PathBuf {
        self.dir.join(format!("{sha256}.sealed"))
    }

    /// The sealed copy of `sha256` a previous batch left, if it is still exactly as sealed.
    pub fn reuse(&self, sha256: &Sha256Digest, len: u64) -> Option<Arc<PrivateCopy>> {
        let path = self.copy_path(sha256);
        let note = std::fs::read_to_string(self.note_path(sha256)).ok()?;
        let sealed = SealStamp::parse(&note)?;
        let file = File::open(&path).ok()?;
        hold(&file).ok()?;
        let now = SealStamp::of(&file.metadata().ok()?);
        // Removed by another station's clean-up between the open and the lock: not reusable.
        let at_path = SealStamp::of(&std::fs::metadata(&path).ok()?);
        (now == sealed && at_path == sealed && sealed.len == len).then(|| {
            Arc::new(PrivateCopy {
                path,
                file,
                sealed,
                sha256: *sha256,
            })
        })
    }

    /// Starts a copy of a `len`-byte file of which `allocated` bytes take disk space, refused
    /// before a byte is written when the disk lacks the room.
    pub fn start(&self, len: u64, allocated: u64) -> Result<CopyWriter, PrivateCopyError> {
        self.ensure_folder()?;
        let needed = len.min(allocated);
        let free = free_bytes(&self.dir).map_err(|e| self.folder_error(e))?;
        if free < needed.saturating_add(SPARE_BYTES) {
            return Err(PrivateCopyError::NoRoom {
                dir: self.dir.clone(),
                needed,
                free,
            });
        }
        let partial = self
            .dir
            .join(format!("partial-{}-{}", std::process::id(), unique()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&partial)
            .map_err(|source| PrivateCopyError::Write {
                path: partial.clone(),
                source,
            })?;
        Ok(CopyWriter {
            partial,
            file,
            position: 0,
            failed: None,
        })
    }

    /// Removes the copies and partial files not named in `keep` (another build's, or a copy
    /// interrupted by a crash). A batch still reading a removed copy keeps its open file.
    pub fn retain_only(&self, keep: &[Sha256Digest]) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let kept: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name
                .strip_suffix(".img")
                .or_else(|| name.strip_suffix(".sealed"));
            let remove = match stem {
                Some(sha) => !kept.iter().any(|k| k == sha),
                None => name
                    .strip_prefix("partial-")
                    .and_then(|rest| rest.split('-').next())
                    .is_some_and(|pid| !Path::new("/proc").join(pid).exists()),
            };
            if remove && !held_elsewhere(&entry.path()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A unique suffix for partial files within this process.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A shared lock on an open copy for as long as it is open: its file stays while a batch uses it.
fn hold(file: &File) -> io::Result<()> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::LockShared).map_err(io::Error::from)
}

/// Whether a batch holds the copy at `path` (its `.sealed` note goes with its `.img`).
fn held_elsewhere(path: &Path) -> bool {
    let image = match path.extension().and_then(|e| e.to_str()) {
        Some("sealed") => path.with_extension("img"),
        _ => path.to_path_buf(),
    };
    let Ok(file) = File::open(&image) else {
        return false;
    };
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err()
}

fn free_bytes(dir: &Path) -> io::Result<u64> {
    let stat = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Bytes a file takes on disk (its holes take none).
pub fn allocated_bytes(metadata: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        metadata.blocks().saturating_mul(512)
    }
    #[cfg(not(unix))]
    {
        metadata.len()
    }
}

/// What a sealed copy looked like when it was sealed; any write, truncation, permission change
/// or new link changes the change time, which no user can set back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SealStamp {
    dev: u64,
    inode: u64,
    len: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl SealStamp {
    #[cfg(unix)]
    fn of(metadata: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: metadata.dev(),
            inode: metadata.ino(),
            len: metadata.len(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    fn render(&self) -> String {
        format!(
            "{} {} {} {} {} {} {}\n",
            self.dev,
            self.inode,
            self.len,
            self.modified.0,
            self.modified.1,
            self.changed.0,
            self.changed.1
        )
    }

    fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let mut next = || words.next()?.parse::<i64>().ok();
        let stamp = Self {
            dev: u64::try_from(next()?).ok()?,
            inode: u64::try_from(next()?).ok()?,
            len: u64::try_from(next()?).ok()?,
            modified: (next()?, next()?),
            changed: (next()?, next()?),
        };
        Some(stamp)
    }
}

/// A stretch of an append: written as it is, or left as a hole.
struct Run {
    len: usize,
    zeros: bool,
}

/// A copy being written: every byte the pre-flight hash reads from the source goes here, in
/// order. Blocks of zeros become holes, as in the source.
#[derive(Debug)]
pub struct CopyWriter {
    partial: PathBuf,
    file: File,
    position: u64,
    /// The first write error; reported when the copy is sealed (the hash goes on reading).
    failed: Option<io::Error>,
}

impl CopyWriter {
    /// Appends `data` (the next bytes of the source).
    pub fn append(&mut self, data: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.write_sparsely(data) {
            self.failed = Some(e);
        }
    }

    /// Writes `data` at the copy's end: runs of data blocks in one write each, whole blocks of
    /// zeros skipped (holes). One write per run, not per block, matters later: the page cache
    /// keeps what one write brought in as large folios, and every phone's `pread` of the copy
    /// costs per folio as well as per byte (a copy written in 4 KiB writes costs about three
    /// times as much CPU to read back).
    fn write_sparsely(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let run = self.next_run(data);
            let (piece, rest) = data.split_at(run.len);
            if run.zeros {
                self.file.seek(SeekFrom::Current(run.len as i64))?;
            } else {
                self.file.write_all(piece)?;
            }
            self.position += run.len as u64;
            data = rest;
        }
        Ok(())
    }

    /// The run `data` starts with, at the copy's position: whole blocks of zeros (a hole), or
    /// else bytes up to the next whole block of zeros. A block only partly in `data` is data
    /// (its rest, in the next append, may not be zeros).
    fn next_run(&self, data: &[u8]) -> Run {
        let into_block = (self.position % HOLE_BLOCK as u64) as usize;
        let zero_block = |at: usize| {
            data.get(at..at + HOLE_BLOCK)
                .is_some_and(|block| block.iter().all(|&b| b == 0))
        };
        if into_block == 0 && zero_block(0) {
            let mut len = HOLE_BLOCK;
            while zero_block(len) {
                len += HOLE_BLOCK;
            }
            return Run { len, zeros: true };
        }
        // After the first piece, `len` is on a block boundary of the copy.
        let mut len = (HOLE_BLOCK - into_block).min(data.len());
        while len < data.len() && !zero_block(len) {
            len = (len + HOLE_BLOCK).min(data.len());
        }
        Run { len, zeros: false }
    }

    /// Drops the partial copy (the source did not match the manifest).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.partial);
    }

    /// Makes the copy read-only under its content name, notes its stamp, and opens it for
    /// the batch.
    pub fn seal(
        mut self,
        store: &PrivateStore,
        sha256: &Sha256Digest,
    ) -> Result<Arc<PrivateCopy>, PrivateCopyError> {
        let partial = self.partial.clone();
        let write_error = |source| PrivateCopyError::Write {
            path: partial.clone(),
            source,
        };
        let result = (|| {
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
            self.file.set_len(self.position)?;
            self.file.sync_all()?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&self.partial);
            return Err(write_error(e));
        }
        drop(self.file);
        // Held before it gets its name, so no clean-up can take it between the two.
        let file = File::open(&partial).map_err(write_error)?;
        hold(&file).map_err(write_error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o400))
                .map_err(write_error)?;
        }
        // Stations sharing a journal folder share the store: one names a copy at a time, and a
        // sound copy another station sealed meanwhile is taken rather than replaced (replacing
        // it would unlink the file that station is reading from).
        let _naming = store.lock_for_naming().map_err(write_error)?;
        if let Some(sealed_elsewhere) = store.reuse(sha256, self.position) {
            drop(file);
            let _ = std::fs::remove_file(&partial);
            return Ok(sealed_elsewhere);
        }
        let path = store.copy_path(sha256);
        // A stale copy of the same content (its note no longer matching) is replaced.
        let _ = std::fs::remove_file(store.note_path(sha256));
        std::fs::rename(&partial, &path).map_err(write_error)?;
        let sealed = SealStamp::of(&file.metadata().map_err(write_error)?);
        std::fs::write(store.note_path(sha256), sealed.render()).map_err(write_error)?;
        Ok(Arc::new(PrivateCopy {
            path,
            file,
            sealed,
            sha256: *sha256,
        }))
    }
}

/// A sealed copy, open for the batch; see the module's comment for what it guarantees.
#[derive(Debug)]
pub struct PrivateCopy {
    path: PathBuf,
    file: File,
    sealed: SealStamp,
    sha256: Sha256Digest,
}

impl PrivateCopy {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.sealed.len
    }

    pub fn is_empty(&self) -> bool {
        self.sealed.len == 0
    }

    /// `Err` with what changed when the open copy is no longer as sealed.
    pub fn check_unchanged(&self) -> Result<(), String> {
        let now = SealStamp::of(&self.file.metadata().map_err(|e| e.to_string())?);
        self.differences(&now)
    }

    fn differences(&self, now: &SealStamp) -> Result<(), String> {
        if *now == self.sealed {
            return Ok(());
        }
        Err(
            if now.inode != self.sealed.inode || now.dev != self.sealed.dev {
                format!("the private copy {} was replaced", self.path.display())
            } else {
                format!(
                "the private copy {} (SHA-256 {}) was written to, truncated or had its permissions changed after pre-flight sealed it",
                self.path.display(),
                self.sha256.short()
            )
            },
        )
    }

    /// Reads at `offset` from the open copy, then checks the copy was not changed: bytes that
    /// may differ from the sealed ones are never handed out.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)?;
        if let Err(what) = self.check_unchanged() {
            buf.fill(0);
            return Err(io::Error::new(io::ErrorKind::InvalidData, what));
        }
        Ok(n)
    }

    /// Another handle on the open copy, once it is checked unchanged.
    pub fn open_handle(&self) -> io::Result<File> {
        self.check_unchanged()
            .map_err(|what| io::Error::new(io::ErrorKind::InvalidData, what))?;
        self.file.try_clone()
    }

    /// Opens the copy again by its path (a reader of its own, e.g. to look inside the image),
    /// refused when the file at the path is no longer the sealed one.
    pub fn reopen(&self) -> io::Result<File> {
        let file = File::open(&self.path)?;
        let now = SealStamp::of(&file.metadata()?);
        self.differences(&now)
            .map_err(|what| io::Error::new(io::ErrorKind::InvalidData, what))?;
        Ok(file)
    }
}

/// A reader that copies what it reads into a [`CopyWriter`].
pub struct Tee<'a, R> {
    pub inner: R,
    pub copy: &'a mut CopyWriter,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.append(buf.get(..n).unwrap_or(&[]));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: u8) -> Sha256Digest {
        Sha256Digest([byte; 32])
    }

    fn write_copy(store: &PrivateStore, data: &[u8], sha: &Sha256Digest) -> Arc<PrivateCopy> {
        let mut writer = store.start(data.len() as u64, data.len() as u64).unwrap();
        for piece in data.chunks(1000) {
            writer.append(piece);
        }
        writer.seal(store, sha).unwrap()
    }

    #[test]
    fn a_sealed_copy_holds_the_bytes_with_zeros_as_holes_and_is_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = PrivateStore::new(dir.path().join("images"));
        let mut data = vec![7u8; 5000];
        data.extend(vec![0u8; 3 * HOLE_BLOCK]);
        data.extend(b"tail");
        let copy = write_copy(&store, &data, &digest(1));
        assert_eq!(std::fs::read(copy.path()).unwrap(), data);
        assert_eq!(copy.len(), data.len() as u64);
        let mut buf = vec![0u8; 4];
        assert_eq!(copy.read_at(data.len() as u64 - 4, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"tail");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(copy.path()), 0o400);
            assert_eq!(mode(store.dir()), 0o700);
        }
    }

    #[test]
    fn appends_of_any_size_keep_the_bytes_and_leave_whole_zero_blocks_as_holes() {
        let mut data = Vec::new();
        data.extend((0..3 * HOLE_BLOCK + 100).map(|i| (i % 251) as u8 | 1));
        data.extend(vec![0u8; 5 * HOLE_BLOCK]);
        data.extend(b"0123456789");
        data.extend(vec![0u8; 2 * HOLE_BLOCK + 7]);
        data.extend(vec![9u8; 64 * HOLE_BLOCK]);
        for (n, piece) in [1000, HOLE_BLOCK, 5000, data.len()].into_iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let store = PrivateStore::new(dir.path().join("images"));
            let mut writer = store.start(data.len() as u64, data.len() as u64).unwrap();
            for part in data.chunks(piece) {
                writer.append(part);
            }
            let copy = writer.seal(&store, &digest(10 + n as u8)).unwrap();
            assert!(
                std::fs::read(copy.path()).unwrap() == data,
                "pieces of {piece}"
            );
            // Holes: 4 of the 5 blocks of zeros (they start 100 bytes into a block) and the
            // one whole block in the second run. A block of zeros split between two appends
            // is written as data.
            #[cfg(unix)]
            if piece == data.len() {
                let on_disk = allocated_bytes(&std::fs::metadata(copy.path()).unwrap());
                assert!(
                    on_disk <= ((data.len().div_ceil(HOLE_BLOCK) - 5) * HOLE_BLOCK) as u64,
                    "{on_disk} bytes allocated"
                );
            }
        }
    }

    #[test]
    fn a_change_to_the_copy_after_sealing_is_refused_on_the_next_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = PrivateStore::new(dir.path().join("images"));
        let copy = write_copy(&store, &[5u8; 10_000], &digest(2));
        // Root (or the station's user after a chmod) writing into the copy: the change time
        // moves; wait past the timestamp tick so the test does not depend on its size.
        std::thread::sleep(std::time::Duration::from_millis(20));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(copy.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut writer = OpenOptions::new().write(true).open(copy.path()).unwrap();
        writer.write_all(b"evil").unwrap();
        let mut buf = vec![1u8; 16];
        let error = copy.read_at(0, &mut buf).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("written to"), "{error}");
        assert!(
            buf.iter().all(|&b| b == 0),
            "no byte of the read is handed out"
        );
        assert!(copy.reopen().is_err());
        assert!(
            store.reuse(&digest(2), 10_000).is_none(),
            "not reused either"
        );
    }

    #[test]
    fn a_copy_is_reused_by_content_and_other_builds_copies_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = PrivateStore::new(dir.path().join("images"));
        let first = write_copy(&store, &[1u8; 100], &digest(3));
        let other = write_copy(&store, &[2u8; 100], &digest(4));
        store.retain_only(&[digest(3)]);
        assert!(other.reopen().is_ok(), "held by a batch: kept");
        drop(other);
        let again = store.reuse(&digest(3), 100).expect("reused");
        assert_eq!(again.path(), first.path());
        assert!(store.reuse(&digest(3), 101).is_none(), "another length");
        store.retain_only(&[digest(3)]);
        assert!(store.reuse(&digest(4), 100).is_none());
        assert!(store.reuse(&digest(3), 100).is_some());
        let left = std::fs::read_dir(store.dir()).unwrap().count();
        assert_eq!(left, 3, "the kept copy, its note and the naming lock");
    }

    #[test]
    fn two_stations_copying_the_same_image_at_once_share_the_first_sealed_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = PrivateStore::new(dir.path().join("images"));
        let data = [7u8; 4096];
        // Both missed the copy at pre-flight and copied; the first to seal names it.
        let mut first = store.start(4096, 4096).unwrap();
        let mut second = store.start(4096, 4096).unwrap();
        first.append(&data);
        second.append(&data);
        let first = first.seal(&store, &digest(5)).unwrap();
        let second = second.seal(&store, &digest(5)).unwrap();
        assert_eq!(first.path(), second.path());
        first
            .check_unchanged()
            .expect("the first station's copy is not replaced");
        second.check_unchanged().unwrap();
        let partials = std::fs::read_dir(store.dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("partial-"))
            .count();
        assert_eq!(partials, 0, "the second copy is discarded");
    }

    #[test]
    fn a_disk_without_room_is_refused_before_copying() {
        let dir = tempfile::tempdir().unwrap();
        let store = PrivateStore::new(dir.path().join("images"));
        let error = store.start(u64::MAX / 2, u64::MAX / 2).unwrap_err();
        assert!(matches!(error, PrivateCopyError::NoRoom { .. }), "{error}");
        assert!(error.to_string().contains("free disk space"), "{error}");
        assert_eq!(std::fs::read_dir(store.dir()).unwrap().count(), 0);
    }
}
