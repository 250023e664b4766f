//! Flat-build packages: `rawprogram*.xml` (root `<data>`, `<program>`/`<erase>` lines) and
//! `patch*.xml` (root `<patches>`, `<patch>` lines), with the attributes qdl reads.
//!
//! Loading checks everything that can be checked on the host before a phone is touched, in
//! three stages a caller can also run separately:
//! - [`parse_file`]: one file's bytes to checked lines, opening nothing else (attributes,
//!   `start_sector`/`value` expressions, filenames that stay in the package directory, patches
//!   of 1 to 8 bytes inside one sector);
//! - [`assemble`]: each named file examined through a probe (a regular file inside the package
//!   directory, fits its partition, `sparse="true"` exactly when it is a valid sparse image);
//! - [`check_layout`]: against the storage the product declares (sector size, LUNs and their
//!   sizes: every sector range inside its LUN, every patch aimed at a known LUN).
//!
//! Errors name the XML file and line.

mod error;
pub mod expr;
mod layout;
mod parse;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use error::PackageError;
pub use layout::{check_layout, DiskLayout};
pub use parse::{parse_file, PackageFile, PackageLine, ProgramLine, MAX_PACKAGE_FILE_BYTES};

/// Where an entry came from, for messages: `rawprogram0.xml:12`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One `<program>` line with a file to write, after its file was examined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramEntry {
    pub origin: Origin,
    pub label: String,
    pub lun: u32,
    pub sector_size: usize,
    /// Verbatim; numeric or a `NUM_DISK_SECTORS-…` expression the programmer evaluates.
    pub start_sector: String,
    /// 0 means "as large as the file" (the last partition, grown to fill the disk).
    pub num_partition_sectors: u64,
    pub file_sector_offset: u64,
    /// As written in the XML.
    pub filename: String,
    /// Resolved inside the package directory.
    pub path: PathBuf,
    pub sparse: bool,
    /// Bytes that will be written: the file from its offset (expanded size when sparse).
    pub data_bytes: u64,
    pub part_of_single_image: bool,
}

impl ProgramEntry {
    /// The start sector as a number, when it is one.
    pub fn numeric_start(&self) -> Option<u64> {
        parse_number(&self.start_sector)
    }
}

/// One `<patch filename="DISK">` line, applied by the programmer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchEntry {
    pub origin: Origin,
    pub lun: u32,
    pub sector_size: usize,
    pub start_sector: String,
    pub byte_offset: u64,
    pub size_in_bytes: u64,
    /// Verbatim; `NUM_DISK_SECTORS-6.`, `CRC32(2,4096)`, or a number.
    pub value: String,
    pub what: String,
}

/// One `<erase>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraseEntry {
    pub origin: Origin,
    pub lun: u32,
    pub sector_size: usize,
    pub start_sector: String,
    pub num_partition_sectors: u64,
}

/// A step of a package in the order it runs: erases and programs in file order, then patches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Erase(EraseEntry),
    Program(ProgramEntry),
    Patch(PatchEntry),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    pub steps: Vec<Step>,
    /// `<program>` lines with an empty filename (partitions left as they are), as `(origin,
    /// label)`.
    pub skipped: Vec<(Origin, String)>,
    /// Patch lines for host files (`gpt_main0.bin` …), which only matter to tools that
    /// rebuild GPT images; counted, not sent.
    pub host_patches: usize,
}

impl Package {
    pub fn programs(&self) -> impl Iterator<Item = &ProgramEntry> {
        self.steps.iter().filter_map(|s| match s {
            Step::Program(p) => Some(p),
            _ => None,
        })
    }

    pub fn patches(&self) -> impl Iterator<Item = &PatchEntry> {
        self.steps.iter().filter_map(|s| match s {
            Step::Patch(p) => Some(p),
            _ => None,
        })
    }

    /// Total bytes the programs send. Saturates: a sparse image may declare an expanded size
    /// near 2^64 bytes for a partition of unstated size, which only the device can refuse.
    pub fn program_bytes(&self) -> u64 {
        self.programs()
            .fold(0u64, |total, p| total.saturating_add(p.data_bytes))
    }

    /// The LUN holding the primary boot loader (`xbl`, `xbl_a` or `sbl1`), which qdl marks
    /// bootable with `<setbootablestoragedrive>` after flashing.
    pub fn bootable_lun(&self) -> Option<u32> {
        ["xbl", "xbl_a", "sbl1"]
            .iter()
            .find_map(|l| self.programs().find(|p| p.label == *l).map(|p| p.lun))
    }
}

/// What a probe found out about a file a `<program>` line names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    /// Bytes in the file.
    pub len: u64,
    /// `None` when the file does not start with the sparse magic; otherwise its expanded size,
    /// or why it is not a valid sparse image.
    pub sparse: Option<Result<u64, String>>,
}

/// Why a probe could not examine a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    Missing,
    NotRegular(&'static str),
    Other(String),
}

/// How `sparse="true"` files are sized: the expanded length of a valid sparse image, or why
/// it is not one (`None` when the file has no sparse magic at all).
pub type SparseProbe = dyn Fn(&Path) -> Result<Option<u64>, String>;

/// Load rawprogram and patch files from disk, in the given order; programs (and erases) of
/// every file come before the patches of every file, as qdl runs them. Named files are
/// examined on disk, sparse ones through `probe_sparse`.
pub fn load(files: &[PathBuf], probe_sparse: &SparseProbe) -> Result<Package, PackageError> {
    let mut parsed = Vec::with_capacity(files.len());
    for file in files {
        parsed.push(parse_file(file, &read_package_file(file)?)?);
    }
    assemble(&parsed, &mut |path: &Path| {
        probe_on_disk(path, probe_sparse)
    })
}

/// [`parse_file`] then [`assemble`] on in-memory files: the whole loader on arbitrary bytes,
/// with no file system access beyond what `probe` does (what the package fuzzer drives).
pub fn load_bytes(
    files: &[(PathBuf, Vec<u8>)],
    probe: &mut dyn FnMut(&Path) -> Result<ImageFacts, ProbeError>,
) -> Result<Package, PackageError> {
    let parsed = files
        .iter()
        .map(|(path, bytes)| parse_file(path, bytes))
        .collect::<Result<Vec<_>, _>>()?;
    assemble(&parsed, probe)
}

/// Examines the file of every program line through `probe` (called with the path inside the
/// package directory) and orders the steps: erases and programs in file order, then patches.
pub fn assemble(
    files: &[PackageFile],
    probe: &mut dyn FnMut(&Path) -> Result<ImageFacts, ProbeError>,
) -> Result<Package, PackageError> {
    let mut package = Package::default();
    let mut patches = Vec::new();
    for file in files {
        package.host_patches += file.host_patches;
        for line in &file.lines {
            match line {
                PackageLine::Program(program) => {
                    let path = resolve_program_path(program)?;
                    let facts = probe(&path).map_err(|e| probe_error(program, &path, e))?;
                    package
                        .steps
                        .push(Step::Program(program_entry(program, path, &facts)?));
                }
                PackageLine::Skipped { origin, label } => {
                    package.skipped.push((origin.clone(), label.clone()));
                }
                PackageLine::Erase(erase) => package.steps.push(Step::Erase(erase.clone())),
                PackageLine::Patch(patch) => patches.push(patch.clone()),
            }
        }
    }
    package.steps.extend(patches.into_iter().map(Step::Patch));
    Ok(package)
}

fn probe_error(program: &ProgramLine, path: &Path, error: ProbeError) -> PackageError {
    let (origin, label, filename) = (
        program.origin.clone(),
        program.label.clone(),
        program.filename.clone(),
    );
    match error {
        ProbeError::Missing => PackageError::MissingImage {
            origin,
            label,
            filename,
            path: path.to_owned(),
        },
        ProbeError::NotRegular(kind) => PackageError::ImageNotRegular {
            origin,
            label,
            filename,
            path: path.to_owned(),
            kind,
        },
        ProbeError::Other(detail) => PackageError::ImageUnreadable {
            origin,
            label,
            filename,
            detail,
        },
    }
}

/// The program line's file inside the directory of its XML file: the joined path, refused when
/// the file exists and its real path (symlinks followed) lies outside that directory.
pub fn resolve_program_path(program: &ProgramLine) -> Result<PathBuf, PackageError> {
    let joined = program.joined_path();
    let dir = program.origin.file.parent().unwrap_or(Path::new("."));
    // A missing file is reported by the probe; only an existing one can be a symlink escape.
    if let (Ok(real_dir), Ok(real_file)) = (dir.canonicalize(), joined.canonicalize()) {
        if !real_file.starts_with(&real_dir) {
            return Err(PackageError::Escapes {
                origin: program.origin.clone(),
                filename: program.filename.clone(),
            });
        }
    }
    Ok(joined)
}

fn program_entry(
    line: &ProgramLine,
    path: PathBuf,
    facts: &ImageFacts,
) -> Result<ProgramEntry, PackageError> {
    let sector_size = line.sector_size as u64;
    let capacity = line.num_partition_sectors.saturating_mul(sector_size);
    let mut data_bytes = facts
        .len
        .saturating_sub(line.file_sector_offset.saturating_mul(sector_size));
    // The flag must say what the file is. qdl writes a raw file marked sparse as raw when it
    // is exactly the partition's size; such a package is still wrong about its own file, so
    // it is refused here like every other mismatch.
    match (&facts.sparse, line.sparse) {
        (Some(Ok(expanded)), true) => {
            data_bytes = *expanded;
            if parse_number(&line.start_sector).is_none() {
                return Err(PackageError::SparseStart {
                    origin: line.origin.clone(),
                    filename: line.filename.clone(),
                    start: line.start_sector.clone(),
                });
            }
        }
        (Some(Err(detail)), true) => {
            return Err(PackageError::BadSparse {
                origin: line.origin.clone(),
                filename: line.filename.clone(),
                detail: detail.clone(),
            })
        }
        (None, true) => {
            return Err(PackageError::BadSparse {
                origin: line.origin.clone(),
                filename: line.filename.clone(),
                detail: "it has no sparse header (a raw image: set sparse=\"false\")".to_owned(),
            })
        }
        (Some(_), false) => {
            return Err(PackageError::SparseNotDeclared {
                origin: line.origin.clone(),
                filename: line.filename.clone(),
            })
        }
        (None, false) => {}
    }
    if line.num_partition_sectors > 0 && data_bytes > capacity && !line.part_of_single_image {
        return Err(PackageError::TooLarge {
            origin: line.origin.clone(),
            label: line.label.clone(),
            filename: line.filename.clone(),
            bytes: data_bytes,
            capacity,
            sectors: line.num_partition_sectors,
            sector_size: line.sector_size,
        });
    }
    if line.part_of_single_image && line.num_partition_sectors > 0 {
        data_bytes = data_bytes.min(capacity);
    }
    Ok(ProgramEntry {
        origin: line.origin.clone(),
        label: line.label.clone(),
        lun: line.lun,
        sector_size: line.sector_size,
        start_sector: line.start_sector.clone(),
        num_partition_sectors: line.num_partition_sectors,
        file_sector_offset: line.file_sector_offset,
        filename: line.filename.clone(),
        path,
        sparse: line.sparse,
        data_bytes,
        part_of_single_image: line.part_of_single_image,
    })
}

/// Reads a rawprogram/patch file: a regular file (a FIFO would block the read) of at most
/// [`MAX_PACKAGE_FILE_BYTES`].
fn read_package_file(file: &Path) -> Result<Vec<u8>, PackageError> {
    let io_error = |source| PackageError::Io {
        file: file.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(file).map_err(io_error)?;
    if !metadata.is_file() {
        return Err(PackageError::NotRegularFile {
            file: file.to_owned(),
            kind: describe(&metadata),
        });
    }
    if metadata.len() > MAX_PACKAGE_FILE_BYTES {
        return Err(PackageError::FileTooLarge {
            file: file.to_owned(),
            len: metadata.len(),
            max: MAX_PACKAGE_FILE_BYTES,
        });
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO swapped in since the check must not block either.
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let handle = options.open(file).map_err(io_error)?;
    let metadata = handle.metadata().map_err(io_error)?;
    if !metadata.is_file() {
        return Err(PackageError::NotRegularFile {
            file: file.to_owned(),
            kind: describe(&metadata),
        });
    }
    let mut bytes = Vec::new();
    handle
        .take(MAX_PACKAGE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    Ok(bytes)
}

/// Examines a named image on disk: a regular file, sniffed for the sparse magic.
fn probe_on_disk(path: &Path, probe_sparse: &SparseProbe) -> Result<ImageFacts, ProbeError> {
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ProbeError::Missing,
        _ => ProbeError::Other(e.to_string()),
    })?;
    if !metadata.is_file() {
        return Err(ProbeError::NotRegular(describe(&metadata)));
    }
    let sparse = match probe_sparse(path) {
        Ok(None) => None,
        Ok(Some(expanded)) => Some(Ok(expanded)),
        Err(detail) => Some(Err(detail)),
    };
    Ok(ImageFacts {
        len: metadata.len(),
        sparse,
    })
}

fn describe(metadata: &std::fs::Metadata) -> &'static str {
    let file_type = metadata.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_block_device() || file_type.is_char_device() {
            return "a device";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a plain file"
    }
}

/// Numbers as package generators write them: decimal, Trace32-style decimal with a trailing
/// `.` (`6.`), or `0x` hex.
pub fn parse_number(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    let t = t.strip_suffix('.').unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

#[cfg(test)]
mod tests;
