//! The activation client of a region: where it is installed and the only SHA-256 allowed.
//!
//! ```yaml
//! activation_client:                 # a phone with dynamic partitions, flashed a super.img
//!   partition: super                 # the physical partition read back on the phone
//!   image: super                     # the file written to it
//!   logical_partition: system        # the booting slot's suffix is added (system_a)
//!   path: /system/priv-app/ActivationClient/ActivationClient.apk   # in ext4 or erofs
//!   sha256: "…"
//!   verify: host_readback            # or edl_readback, device_digest (see VerifyMethod)
//! ```
//! Without `logical_partition`, `path` is in the filesystem of `image` itself, written to
//! `partition` (`system`, slot suffix added on A/B). `ext4_path:` is the older spelling of
//! `path:` and still read. `raw: { offset, length }` names a byte range of the partition
//! instead.

use serde::Deserialize;

use super::error::KeyPath;
use super::files::Sha256Text;
use super::names::check_identifier;
use crate::digest::Sha256Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationClient {
    /// Partition read back on the phone: a base name (`system`; the booting slot's suffix is
    /// added on A/B), or the physical `super` when the client is in a logical partition.
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
    /// A file inside a filesystem (ext4 or erofs, told apart by their magic), e.g.
    /// `/priv-app/ActivationClient/ActivationClient.apk`: the image's own filesystem, or that
    /// of a logical partition inside a `super` image.
    File {
        /// Base name (`system`) or full name (`system_a`) of the logical partition.
        logical_partition: Option<String>,
        path: String,
    },
    /// A byte range of the partition.
    RawRange { offset: u64, length: u64 },
}

impl ClientLocation {
    /// The logical partition inside `super` that holds the client, if it is in one.
    pub fn logical_partition(&self) -> Option<&str> {
        match self {
            Self::File {
                logical_partition, ..
            } => logical_partition.as_deref(),
            Self::RawRange { .. } => None,
        }
    }
}

impl std::fmt::Display for ClientLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File {
                logical_partition: None,
                path,
            } => f.write_str(path),
            Self::File {
                logical_partition: Some(logical),
                path,
            } => write!(f, "{path} in logical partition {logical}"),
            Self::RawRange { offset, length } => write!(f, "bytes {offset}+{length}"),
        }
    }
}

/// The route by which a unit's client is verified (`verify:`), recorded in its journal row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMethod {
    /// Read the client back through the bootloader's fastboot `fetch:` and hash it on the host;
    /// an EDL unit is read after its power reset brings it back in fastboot. Needs a
    /// bootloader that implements `fetch` and lets it read the partition.
    HostReadback,
    /// Read the client back through Firehose `<read>` while the unit is still in EDL, right
    /// after its package is written, on the slot the GPT's A/B bits say the bootloader boots;
    /// then reset the unit and let it go (it may boot Android). Works on every Qualcomm phone,
    /// whatever its bootloader; needs an EDL plan and no fastboot plan.
    EdlReadback,
    /// Ask the bootloader for a digest of a byte range (`oem sha256`) after flashing.
    DeviceDigest,
}

impl VerifyMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HostReadback => "host_readback",
            Self::EdlReadback => "edl_readback",
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
    pub logical_partition: Option<String>,
    #[serde(default)]
    pub path: Option<FsPathText>,
    /// The older spelling of `path`.
    #[serde(default)]
    pub ext4_path: Option<FsPathText>,
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

/// Why the location keys were refused: the key, the problem, what to do.
pub(super) struct Refusal {
    pub key: KeyPath,
    pub problem: String,
    pub fix: String,
}

fn refuse(key: KeyPath, problem: impl Into<String>, fix: impl Into<String>) -> Refusal {
    Refusal {
        key,
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// The largest activation-client byte range accepted (an APK is a few MiB; a range this large
/// is a typo).
const MAX_RAW_CLIENT: u64 = 1 << 30;

impl ActivationClientFile {
    /// Where the client is, from `path`/`ext4_path`, `logical_partition` and `raw`
    /// (`key` is the `activation_client` key; `image_size` bounds a raw range).
    pub(super) fn location(
        &self,
        key: &KeyPath,
        image_size: u64,
    ) -> Result<ClientLocation, Refusal> {
        let file_key = if self.path.is_some() {
            "path"
        } else {
            "ext4_path"
        };
        let path = match (&self.path, &self.ext4_path) {
            (Some(_), Some(_)) => {
                return Err(refuse(
                    key.clone(),
                    "both `path` and `ext4_path` are given",
                    "keep `path` (`ext4_path` is its older spelling)",
                ))
            }
            (Some(path), None) | (None, Some(path)) => Some(path.0.clone()),
            (None, None) => None,
        };
        if let Some(logical) = &self.logical_partition {
            check_identifier(logical).map_err(|p| {
                refuse(
                    key.clone().key("logical_partition"),
                    p,
                    "write the logical partition inside super that holds the client (`system`)",
                )
            })?;
        }
        match (path, &self.raw) {
            (Some(path), None) => Ok(ClientLocation::File {
                logical_partition: self.logical_partition.clone(),
                path,
            }),
            (None, Some(range)) => {
                if self.logical_partition.is_some() {
                    return Err(refuse(
                        key.clone().key("logical_partition"),
                        "a `raw` range is a range of the partition image, not of a logical partition",
                        "give `path:` for a file in the logical partition's filesystem, or drop `logical_partition`",
                    ));
                }
                let range_key = key.clone().key("raw");
                if range.length == 0 || range.length > MAX_RAW_CLIENT {
                    return Err(refuse(
                        range_key.key("length"),
                        format!("length {} is out of range", range.length),
                        format!("give the client's length in bytes, 1 to {MAX_RAW_CLIENT}"),
                    ));
                }
                match range.offset.checked_add(range.length) {
                    Some(end) if end <= image_size => Ok(ClientLocation::RawRange {
                        offset: range.offset,
                        length: range.length,
                    }),
                    _ => Err(refuse(
                        range_key,
                        format!(
                            "bytes {}+{} run past the end of `{}` ({image_size} bytes)",
                            range.offset, range.length, self.image
                        ),
                        "correct offset/length",
                    )),
                }
            }
            (Some(_), Some(_)) => Err(refuse(
                key.clone(),
                format!("both `{file_key}` and `raw` are given"),
                format!(
                    "keep `{file_key}` for a file inside the filesystem, or `raw` for a byte range"
                ),
            )),
            (None, None) => Err(refuse(
                key.clone(),
                "neither `path` (or `ext4_path`) nor `raw` says where the client is",
                "add `path: /priv-app/…/….apk` or `raw: { offset: …, length: … }`",
            )),
        }
    }
}

pub(super) struct FsPathText(pub String);

fn parse_fs_path(text: &str) -> Result<FsPathText, String> {
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
    Ok(FsPathText(text.to_string()))
}

super::yaml::deserialize_checked_str!(FsPathText, "a path inside a filesystem", parse_fs_path);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_paths() {
        assert!(parse_fs_path("/priv-app/A/A.apk").is_ok());
        for bad in ["priv-app/A.apk", "/a//b", "/a/../b", "/", "/a/"] {
            assert!(parse_fs_path(bad).is_err(), "{bad}");
        }
    }
}
