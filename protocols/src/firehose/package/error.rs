//! Why a rawprogram/patch package was refused; each error names the XML file and line.

use std::path::PathBuf;

use super::super::xml;
use super::Origin;

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is {kind}, not a regular file", file.display())]
    NotRegularFile { file: PathBuf, kind: &'static str },
    #[error("{} has {len} bytes; a rawprogram or patch file is at most {max} bytes", file.display())]
    FileTooLarge { file: PathBuf, len: u64, max: u64 },
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
    #[error(
        "{origin}: `{attribute}=\"{value}\"` is not an expression a programmer evaluates: {detail}"
    )]
    BadExpression {
        origin: Origin,
        attribute: &'static str,
        value: String,
        detail: String,
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
    #[error("{origin}: `{filename}` (for {label}) at {} is {kind}, not a regular file", path.display())]
    ImageNotRegular {
        origin: Origin,
        label: String,
        filename: String,
        path: PathBuf,
        kind: &'static str,
    },
    #[error("{origin}: cannot examine `{filename}` (for {label}): {detail}")]
    ImageUnreadable {
        origin: Origin,
        label: String,
        filename: String,
        detail: String,
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
    #[error("{origin}: `{filename}` is an Android sparse image but the line says sparse=\"false\": the programmer would write the sparse container's bytes as the partition; set sparse=\"true\"")]
    SparseNotDeclared { origin: Origin, filename: String },
    #[error("{origin}: sparse image `{filename}` needs a numeric start_sector, not `{start}`")]
    SparseStart {
        origin: Origin,
        filename: String,
        start: String,
    },
    #[error("{origin}: the patch writes {size_in_bytes} bytes at byte {byte_offset} of a {sector_size}-byte sector; a patch is 1 to 8 bytes inside one sector")]
    PatchOutsideSector {
        origin: Origin,
        byte_offset: u64,
        size_in_bytes: u64,
        sector_size: usize,
    },
    #[error("{origin}: the line is laid out for {found}-byte sectors, but the storage has {expected}-byte sectors; use the package built for this storage")]
    SectorSizeMismatch {
        origin: Origin,
        found: usize,
        expected: usize,
    },
    #[error("{origin}: the patch targets LUN {lun}, which no program line writes and the product does not declare (LUNs known: {}); correct physical_partition_number", list(known))]
    PatchLunUnknown {
        origin: Origin,
        lun: u32,
        known: Vec<u32>,
    },
    #[error("{origin}: LUN {lun} is not among the LUNs the product declares ({}); declare its size or correct physical_partition_number", list(declared))]
    UndeclaredLun {
        origin: Origin,
        lun: u32,
        declared: Vec<u32>,
    },
    #[error("{origin}: `{attribute}=\"{value}\"` cannot be evaluated on LUN {lun} of {disk_sectors} sectors: {detail}")]
    Unevaluable {
        origin: Origin,
        attribute: &'static str,
        value: String,
        lun: u32,
        disk_sectors: u64,
        detail: String,
    },
    #[error("{origin}: {what} covers sectors {start}..{end} of LUN {lun}, which has {disk_sectors} sectors; the package does not fit this disk")]
    PastDisk {
        origin: Origin,
        /// `partition system_a`, `erase`, `patch`, `CRC32 range`.
        what: String,
        lun: u32,
        start: u64,
        end: u64,
        disk_sectors: u64,
    },
}

fn list(luns: &[u32]) -> String {
    if luns.is_empty() {
        return "none".into();
    }
    luns.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
