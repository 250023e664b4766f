//! One rawprogram or patch file from its bytes to checked lines, without opening any other
//! file: what can be known from the XML alone (attributes, expressions, filenames that stay in
//! the package directory, patches inside one sector).

use std::path::{Component, Path, PathBuf};

use super::super::xml::{self, Element, XmlError};
use super::super::PATCH_TARGET_DISK;
use super::expr::{PatchValue, SectorExpr};
use super::{parse_number, EraseEntry, Origin, PackageError, PatchEntry};

/// Largest rawprogram or patch file accepted (real ones are tens of KiB).
pub const MAX_PACKAGE_FILE_BYTES: u64 = 16 << 20;

/// A parsed rawprogram or patch file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    pub path: PathBuf,
    pub lines: Vec<PackageLine>,
    /// Patch lines for host files (`gpt_main0.bin` …), which only matter to tools that rebuild
    /// GPT images.
    pub host_patches: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageLine {
    Program(ProgramLine),
    /// A `<program>` with an empty filename: the partition is left as it is.
    Skipped {
        origin: Origin,
        label: String,
    },
    Erase(EraseEntry),
    Patch(PatchEntry),
}

/// A `<program>` line with a file, before the file is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramLine {
    pub origin: Origin,
    pub label: String,
    pub lun: u32,
    pub sector_size: usize,
    pub start_sector: String,
    pub num_partition_sectors: u64,
    pub file_sector_offset: u64,
    /// As written in the XML; relative, without `..`.
    pub filename: String,
    /// What the line declares (`sparse="true"`).
    pub sparse: bool,
    pub part_of_single_image: bool,
}

impl ProgramLine {
    /// The file's path joined to the directory of the XML file that names it.
    pub fn joined_path(&self) -> PathBuf {
        self.origin
            .file
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.filename)
    }
}

/// Parses one package file from its bytes; `path` names it in errors and locates the files its
/// lines name (relative to its directory).
pub fn parse_file(path: &Path, bytes: &[u8]) -> Result<PackageFile, PackageError> {
    if bytes.len() as u64 > MAX_PACKAGE_FILE_BYTES {
        return Err(PackageError::FileTooLarge {
            file: path.to_owned(),
            len: bytes.len() as u64,
            max: MAX_PACKAGE_FILE_BYTES,
        });
    }
    let xml_error = |source| PackageError::Xml {
        file: path.to_owned(),
        source,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
        xml_error(XmlError {
            line: 1 + valid.iter().filter(|&&b| b == b'\n').count(),
            message: "the file is not UTF-8 text".into(),
        })
    })?;
    let root = xml::parse_document(text).map_err(xml_error)?;
    let mut file = PackageFile {
        path: path.to_owned(),
        lines: Vec::new(),
        host_patches: 0,
    };
    let kind = match root.name.as_str() {
        "data" => "rawprogram",
        "patches" => "patch",
        other => {
            return Err(PackageError::UnknownRoot {
                file: path.to_owned(),
                root: other.to_owned(),
            })
        }
    };
    for element in &root.children {
        let line = Line {
            element,
            origin: Origin {
                file: path.to_owned(),
                line: element.line,
            },
        };
        let parsed = match (kind, element.name.as_str()) {
            ("rawprogram", "program") => program_line(&line)?,
            ("rawprogram", "erase") => PackageLine::Erase(EraseEntry {
                lun: line.lun()?,
                sector_size: line.sector_size()?,
                start_sector: line.expression("start_sector")?,
                num_partition_sectors: line.number("num_partition_sectors")?,
                origin: line.origin,
            }),
            ("patch", "patch") => match patch_line(&line)? {
                Some(patch) => PackageLine::Patch(patch),
                None => {
                    file.host_patches += 1;
                    continue;
                }
            },
            (kind, tag) => {
                return Err(PackageError::UnknownTag {
                    origin: line.origin,
                    tag: tag.to_owned(),
                    kind,
                })
            }
        };
        file.lines.push(parsed);
    }
    Ok(file)
}

fn program_line(line: &Line<'_>) -> Result<PackageLine, PackageError> {
    let label = line.element.attr("label").unwrap_or_default().to_owned();
    let filename = line.element.attr("filename").unwrap_or_default().to_owned();
    let sector_size = line.sector_size()?;
    let lun = line.lun()?;
    let start_sector = line.expression("start_sector")?;
    let num_partition_sectors = line.number("num_partition_sectors")?;
    let file_sector_offset = line.number_or("file_sector_offset", 0)?;
    let sparse = line.flag("sparse")?;
    let part_of_single_image = line.flag("partofsingleimage")?;
    if filename.trim().is_empty() {
        return Ok(PackageLine::Skipped {
            origin: line.origin.clone(),
            label,
        });
    }
    if !stays_inside(&filename) {
        return Err(PackageError::Escapes {
            origin: line.origin.clone(),
            filename,
        });
    }
    Ok(PackageLine::Program(ProgramLine {
        origin: line.origin.clone(),
        label,
        lun,
        sector_size,
        start_sector,
        num_partition_sectors,
        file_sector_offset,
        filename,
        sparse,
        part_of_single_image,
    }))
}

/// A `<patch>` for the device (`filename="DISK"`), or `None` for a host-file patch.
fn patch_line(line: &Line<'_>) -> Result<Option<PatchEntry>, PackageError> {
    let filename = line.string("filename")?;
    if filename != PATCH_TARGET_DISK {
        return Ok(None);
    }
    let sector_size = line.sector_size()?;
    let byte_offset = line.number("byte_offset")?;
    let size_in_bytes = line.number("size_in_bytes")?;
    let inside = byte_offset
        .checked_add(size_in_bytes)
        .is_some_and(|end| end <= sector_size as u64);
    if !(1..=8).contains(&size_in_bytes) || !inside {
        return Err(PackageError::PatchOutsideSector {
            origin: line.origin.clone(),
            byte_offset,
            size_in_bytes,
            sector_size,
        });
    }
    let value = line.string("value")?;
    PatchValue::parse(&value).map_err(|detail| PackageError::BadExpression {
        origin: line.origin.clone(),
        attribute: "value",
        value: value.clone(),
        detail,
    })?;
    Ok(Some(PatchEntry {
        lun: line.lun()?,
        sector_size,
        start_sector: line.expression("start_sector")?,
        byte_offset,
        size_in_bytes,
        value,
        what: line.element.attr("what").unwrap_or_default().to_owned(),
        origin: line.origin.clone(),
    }))
}

/// Relative, no `..`, not empty: the lexical half of staying in the package directory (the
/// caller checks symlinks once the file is known).
fn stays_inside(filename: &str) -> bool {
    let path = Path::new(filename);
    !path.as_os_str().is_empty()
        && !filename.contains('\0')
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && path.components().any(|c| matches!(c, Component::Normal(_)))
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

    /// A sector expression, checked and kept verbatim (the programmer evaluates it).
    fn expression(&self, attribute: &'static str) -> Result<String, PackageError> {
        let value = self.string(attribute)?;
        SectorExpr::parse(&value).map_err(|detail| PackageError::BadExpression {
            origin: self.origin.clone(),
            attribute,
            value: value.clone(),
            detail,
        })?;
        Ok(value)
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
