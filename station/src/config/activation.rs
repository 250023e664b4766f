//! The activation client of a region: where it is installed and the only SHA-256 allowed.

use serde::Deserialize;

use super::files::Sha256Text;
use crate::digest::Sha256Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationClient {
    /// Base partition name holding it (`system`; the booting slot's suffix is added on A/B).
    pub partition: String,
    /// Key of the image file (in the region's `files`) that is written to that partition.
    pub file: String,
    pub location: ClientLocation,
    /// The allow-listed digest of the client for this region.
    pub sha256: Sha256Digest,
    pub verify: VerifyMethod,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientLocation {
    /// A file inside an ext4 filesystem, e.g. `/priv-app/ActivationClient/ActivationClient.apk`.
    Ext4File { path: String },
    /// A byte range of the partition.
    RawRange { offset: u64, length: u64 },
}

impl std::fmt::Display for ClientLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ext4File { path } => f.write_str(path),
            Self::RawRange { offset, length } => write!(f, "bytes {offset}+{length}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMethod {
    /// Read the client back from the phone (fastboot `fetch:`, Firehose `<read>`) and hash it on
    /// the host.
    HostReadback,
    /// Ask the phone for a digest of the byte range (`oem sha256`, `<getsha256digest>`).
    DeviceDigest,
}

impl VerifyMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HostReadback => "host_readback",
            Self::DeviceDigest => "device_digest",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ActivationClientFile {
    pub partition: String,
    pub image: String,
    #[serde(default)]
    pub ext4_path: Option<Ext4PathText>,
    #[serde(default)]
    pub raw: Option<RawRangeFile>,
    pub sha256: Sha256Text,
    pub verify: VerifyMethod,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRangeFile {
    pub offset: u64,
    pub length: u64,
}

pub(super) struct Ext4PathText(pub String);

fn parse_ext4_path(text: &str) -> Result<Ext4PathText, String> {
    let fix = "write the absolute path inside the filesystem, e.g. /priv-app/ActivationClient/ActivationClient.apk";
    if !text.starts_with('/') {
        return Err(format!("`{text}` does not start with `/`; {fix}"));
    }
    let parts: Vec<&str> = text.split('/').skip(1).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
        || text.contains('\0')
    {
        return Err(format!(
            "`{text}` has an empty, `.` or `..` component; {fix}"
        ));
    }
    Ok(Ext4PathText(text.to_string()))
}

super::yaml::deserialize_checked_str!(Ext4PathText, "a path inside ext4", parse_ext4_path);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext4_paths() {
        assert!(parse_ext4_path("/priv-app/A/A.apk").is_ok());
        for bad in ["priv-app/A.apk", "/a//b", "/a/../b", "/", "/a/"] {
            assert!(parse_ext4_path(bad).is_err(), "{bad}");
        }
    }
}
