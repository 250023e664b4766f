//! Flat-build packages: `rawprogram*.xml` (root `<data>`, `<program>`/`<erase>` lines) and
//! `patch*.xml` (root `<patches>`, `<patch>` lines), with the attributes qdl reads.
//!
//! Loading checks everything that can be checked on the host before a phone is touched: every
//! referenced file exists inside the package directory, fits its partition, and (when
//! `sparse="true"`) is a valid sparse image. Errors name the XML file and line.

use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};

use super::xml::{self, Element};
use super::PATCH_TARGET_DISK;

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

/// One `<program>` line with a file to write.
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

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", file.display())]
    Xml {
        file: PathBuf,
        #[source]
        source: xml::XmlError,
    },
    #[error("{}: root element <{root}> is neither <data> (rawprogram) nor <patches> (patch)", file.display())]
    UnknownRoot { file: PathBuf, root: String },
    #[error("{origin}: <{tag}> is not allowed in a {kind} file")]
    UnknownTag {
        origin: Origin,
        tag: String,
        kind: &'static str,
    },
    #[error("{origin}: <{tag}> lacks the `{attribute}` attribute")]
    MissingAttribute {
        origin: Origin,
        tag: String,
        attribute: &'static str,
    },
    #[error("{origin}: `{attribute}=\"{value}\"` is not {expected}")]
    BadAttribute {
        origin: Origin,
        attribute: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{origin}: filename `{filename}` leaves the package directory; refusing it")]
    Escapes { origin: Origin, filename: String },
    #[error("{origin}: `{filename}` (for {label}) does not exist at {}", path.display())]
    MissingImage {
        origin: Origin,
        label: String,
        filename: String,
        path: PathBuf,
    },
    #[error("{origin}: `{filename}` holds {bytes} bytes but partition {label} has room for {capacity} ({sectors} sectors of {sector_size}); refusing to truncate it")]
    TooLarge {
        origin: Origin,
        label: String,
        filename: String,
        bytes: u64,
        capacity: u64,
        sectors: u64,
        sector_size: usize,
    },
    #[error("{origin}: `{filename}` is marked sparse=\"true\" but is not a valid sparse image: {detail}")]
    BadSparse {
        origin: Origin,
        filename: String,
        detail: String,
    },
    #[error("{origin}: sparse image `{filename}` needs a numeric start_sector, not `{start}`")]
    SparseStart {
        origin: Origin,
        filename: String,
        start: String,
    },
}

/// How `sparse="true"` files are sized: the expanded length of a valid sparse image, or why
/// it is not one (`None` when the file has no sparse magic at all).
pub type SparseProbe = dyn Fn(&Path) -> Result<Option<u64>, String>;

/// Load rawprogram and patch files, in the given order; programs (and erases) of every file
/// come before the patches of every file, as qdl runs them.
pub fn load(files: &[PathBuf], probe_sparse: &SparseProbe) -> Result<Package, PackageError> {
    let mut package = Package::default();
    let mut patches = Vec::new();
    for file in files {
        let text = fs::read_to_string(file).map_err(|source| PackageError::Io {
            file: file.clone(),
            source,
        })?;
        let root = xml::parse_document(&text).map_err(|source| PackageError::Xml {
            file: file.clone(),
            source,
        })?;
        let dir = file.parent().unwrap_or(Path::new(".")).to_owned();
        match root.name.as_str() {
            "data" => load_program_file(file, &dir, &root, probe_sparse, &mut package)?,
            "patches" => load_patch_file(file, &root, &mut patches, &mut package)?,
            other => {
                return Err(PackageError::UnknownRoot {
                    file: file.clone(),
                    root: other.to_owned(),
                })
            }
        }
    }
    package.steps.extend(patches.into_iter().map(Step::Patch));
    Ok(package)
}

struct Line<'a> {
    element: &'a Element,
    origin: Origin,
}

impl Line<'_> {
    fn string(&self, attribute: &'static str) -> Result<String, PackageError> {
        self.element
            .attr(attribute)
            .map(str::to_owned)
            .ok_or_else(|| PackageError::MissingAttribute {
                origin: self.origin.clone(),
                tag: self.element.name.clone(),
                attribute,
            })
    }

    fn number(&self, attribute: &'static str) -> Result<u64, PackageError> {
        let value = self.string(attribute)?;
        parse_number(&value).ok_or(PackageError::BadAttribute {
            origin: self.origin.clone(),
            attribute,
            value,
            expected: "a number",
        })
    }

    fn number_or(&self, attribute: &'static str, default: u64) -> Result<u64, PackageError> {
        match self.element.attr(attribute) {
            None | Some("") => Ok(default),
            Some(_) => self.number(attribute),
        }
    }

    fn lun(&self) -> Result<u32, PackageError> {
        let n = self.number("physical_partition_number")?;
        u32::try_from(n).map_err(|_| self.bad("physical_partition_number", "a LUN number"))
    }

    fn sector_size(&self) -> Result<usize, PackageError> {
        match self.number("SECTOR_SIZE_IN_BYTES")? {
            n @ (512 | 1024 | 2048 | 4096 | 8192 | 16384) => Ok(n as usize),
            _ => Err(self.bad("SECTOR_SIZE_IN_BYTES", "a sector size (512 … 16384)")),
        }
    }

    fn flag(&self, attribute: &'static str) -> Result<bool, PackageError> {
        match self.element.attr(attribute) {
            None | Some("") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
            Some(_) => Err(self.bad(attribute, "true or false")),
        }
    }

    fn bad(&self, attribute: &'static str, expected: &'static str) -> PackageError {
        PackageError::BadAttribute {
            origin: self.origin.clone(),
            attribute,
            value: self.element.attr(attribute).unwrap_or_default().to_owned(),
            expected,
        }
    }
}

fn lines<'a>(file: &Path, root: &'a Element) -> impl Iterator<Item = Line<'a>> + 'a {
    let file = file.to_owned();
    root.children.iter().map(move |element| Line {
        element,
        origin: Origin {
            file: file.clone(),
            line: element.line,
        },
    })
}

fn load_program_file(
    file: &Path,
    dir: &Path,
    root: &Element,
    probe_sparse: &SparseProbe,
    package: &mut Package,
) -> Result<(), PackageError> {
    for line in lines(file, root) {
        match line.element.name.as_str() {
            "program" => {
                if let Some(entry) = program_entry(&line, dir, probe_sparse, package)? {
                    package.steps.push(Step::Program(entry));
                }
            }
            "erase" => package.steps.push(Step::Erase(EraseEntry {
                lun: line.lun()?,
                sector_size: line.sector_size()?,
                start_sector: line.string("start_sector")?,
                num_partition_sectors: line.number("num_partition_sectors")?,
                origin: line.origin,
            })),
            other => {
                return Err(PackageError::UnknownTag {
                    origin: line.origin.clone(),
                    tag: other.to_owned(),
                    kind: "rawprogram",
                })
            }
        }
    }
    Ok(())
}

fn program_entry(
    line: &Line<'_>,
    dir: &Path,
    probe_sparse: &SparseProbe,
    package: &mut Package,
) -> Result<Option<ProgramEntry>, PackageError> {
    let label = line.element.attr("label").unwrap_or_default().to_owned();
    let filename = line.element.attr("filename").unwrap_or_default().to_owned();
    let sector_size = line.sector_size()?;
    let lun = line.lun()?;
    let start_sector = line.string("start_sector")?;
    let num_partition_sectors = line.number("num_partition_sectors")?;
    let file_sector_offset = line.number_or("file_sector_offset", 0)?;
    let mut sparse = line.flag("sparse")?;
    let part_of_single_image = line.flag("partofsingleimage")?;
    if filename.trim().is_empty() {
        package.skipped.push((line.origin.clone(), label));
        return Ok(None);
    }
    let path = resolve_inside(dir, &filename).ok_or_else(|| PackageError::Escapes {
        origin: line.origin.clone(),
        filename: filename.clone(),
    })?;
    let meta = fs::metadata(&path).map_err(|_| PackageError::MissingImage {
        origin: line.origin.clone(),
        label: label.clone(),
        filename: filename.clone(),
        path: path.clone(),
    })?;
    let capacity = num_partition_sectors.saturating_mul(sector_size as u64);
    let mut data_bytes = meta
        .len()
        .saturating_sub(file_sector_offset.saturating_mul(sector_size as u64));
    if sparse {
        match probe_sparse(&path) {
            Ok(Some(expanded)) => {
                data_bytes = expanded;
                if parse_number(&start_sector).is_none() {
                    return Err(PackageError::SparseStart {
                        origin: line.origin.clone(),
                        filename,
                        start: start_sector,
                    });
                }
            }
            // qdl's rule: a raw file marked sparse by mistake is accepted when it is exactly
            // the partition's size.
            Ok(None) if meta.len() == capacity => sparse = false,
            Ok(None) => {
                return Err(PackageError::BadSparse {
                    origin: line.origin.clone(),
                    filename,
                    detail: "no sparse header".to_owned(),
                })
            }
            Err(detail) => {
                return Err(PackageError::BadSparse {
                    origin: line.origin.clone(),
                    filename,
                    detail,
                })
            }
        }
    }
    if num_partition_sectors > 0 && data_bytes > capacity && !part_of_single_image {
        return Err(PackageError::TooLarge {
            origin: line.origin.clone(),
            label,
            filename,
            bytes: data_bytes,
            capacity,
            sectors: num_partition_sectors,
            sector_size,
        });
    }
    if part_of_single_image && num_partition_sectors > 0 {
        data_bytes = data_bytes.min(capacity);
    }
    Ok(Some(ProgramEntry {
        origin: line.origin.clone(),
        label,
        lun,
        sector_size,
        start_sector,
        num_partition_sectors,
        file_sector_offset,
        filename,
        path,
        sparse,
        data_bytes,
        part_of_single_image,
    }))
}

fn load_patch_file(
    file: &Path,
    root: &Element,
    patches: &mut Vec<PatchEntry>,
    package: &mut Package,
) -> Result<(), PackageError> {
    for line in lines(file, root) {
        if line.element.name != "patch" {
            return Err(PackageError::UnknownTag {
                origin: line.origin.clone(),
                tag: line.element.name.clone(),
                kind: "patch",
            });
        }
        let filename = line.string("filename")?;
        if filename != PATCH_TARGET_DISK {
            package.host_patches += 1;
            continue;
        }
        patches.push(PatchEntry {
            lun: line.lun()?,
            sector_size: line.sector_size()?,
            start_sector: line.string("start_sector")?,
            byte_offset: line.number("byte_offset")?,
            size_in_bytes: line.number("size_in_bytes")?,
            value: line.string("value")?,
            what: line.element.attr("what").unwrap_or_default().to_owned(),
            origin: line.origin,
        });
    }
    Ok(())
}

/// `dir/filename` if it stays inside `dir`: no absolute path, no `..`, and no symlink that
/// leads out.
fn resolve_inside(dir: &Path, filename: &str) -> Option<PathBuf> {
    let relative = Path::new(filename);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !plain || relative.as_os_str().is_empty() {
        return None;
    }
    let joined = dir.join(relative);
    // A missing file is reported by the caller; only an existing one can be a symlink escape.
    if let (Ok(real_dir), Ok(real_file)) = (dir.canonicalize(), joined.canonicalize()) {
        if !real_file.starts_with(&real_dir) {
            return None;
        }
    }
    Some(joined)
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
#[path = "package_tests.rs"]
mod tests;
