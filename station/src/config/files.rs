//! The files of an image set: where they are, their size and SHA-256.

use std::path::PathBuf;

use serde::Deserialize;

use super::image_path::ImagePath;
use crate::digest::Sha256Digest;

/// One file named by a manifest, placed inside the image root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// The manifest's name for the file (`system`, `boot`, `prog_firehose`…).
    pub key: String,
    pub relative: ImagePath,
    /// Real path inside the image root.
    pub path: PathBuf,
    pub size: u64,
    pub sha256: Sha256Digest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileEntryFile {
    pub path: ImagePath,
    pub size: u64,
    pub sha256: Sha256Text,
}

pub(super) struct Sha256Text(pub Sha256Digest);

fn parse_sha256(text: &str) -> Result<Sha256Text, String> {
    Sha256Digest::parse(text).map(Sha256Text).map_err(|e| {
        format!("`{text}` is not a SHA-256 ({e}); write the 64 hex digits `sha256sum` prints")
    })
}

super::yaml::deserialize_checked_str!(Sha256Text, "a SHA-256 in hex", parse_sha256);
