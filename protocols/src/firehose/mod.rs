//! Qualcomm Firehose: the XML protocol spoken by a running programmer.
//!
//! - [`xml`]: the XML subset (parse, escape, command documents), sans-io.
//! - [`response`]: a programmer's `<response>`/`<log>` documents, both ways, sans-io.
//! - [`reader`]: framing documents out of a USB or serial link, with pushback.
//! - [`client`]: the host session (program, patch, read, erase, digest, power…);
//!   [`configure`]: payload-size negotiation.
//! - [`package`]: rawprogram*.xml / patch*.xml packages.
//! - [`gpt_lookup`]: partitions by GPT label; [`partition_reader`]: one partition read at
//!   byte offsets.
//!
//! Wire constants shared with the simulated programmer live here.

pub mod client;
mod commands;
pub mod configure;
pub mod edl;
mod error;
pub mod flash;
pub mod gpt_lookup;
pub mod package;
pub mod partition_reader;
mod program;
mod readback;
pub mod reader;
pub mod response;
pub mod storage_info;
pub mod xml;

pub use client::{Firehose, FirehoseConfig, Timeouts};
pub use commands::{PatchRequest, PowerMode};
pub use configure::{ConfigureInfo, MAX_PAYLOAD_CAP};
pub use error::FirehoseError;
pub use flash::FlashSummary;
pub use gpt_lookup::{FoundPartitions, PartitionLocation};
pub use partition_reader::PartitionReader;
pub use program::ProgramTarget;
pub use storage_info::StorageInfo;

/// The last line of a programmer's start-up logs; hosts (qdlrs) stop draining on it.
pub const END_OF_SUPPORTED_FUNCTIONS: &str = "INFO: End of supported functions";

/// What qdl asks for by default; real programmers offer 1 MiB and NAK larger requests.
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// The `filename` of a patch that applies to the device rather than to a host file.
pub const PATCH_TARGET_DISK: &str = "DISK";

/// Storage types a programmer can be configured for (`MemoryName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    Ufs,
    Emmc,
    Nand,
    Nvme,
    Spinor,
}

impl StorageKind {
    /// The `MemoryName` attribute value, spelled as qdl sends it.
    pub fn memory_name(self) -> &'static str {
        match self {
            StorageKind::Ufs => "ufs",
            StorageKind::Emmc => "emmc",
            StorageKind::Nand => "nand",
            StorageKind::Nvme => "nvme",
            StorageKind::Spinor => "spinor",
        }
    }

    /// Logical sector size of the storage type (UFS 4 KiB, eMMC 512 B).
    pub fn default_sector_size(self) -> usize {
        match self {
            StorageKind::Ufs | StorageKind::Nand | StorageKind::Spinor => 4096,
            StorageKind::Emmc | StorageKind::Nvme => 512,
        }
    }

    /// Parse a `MemoryName` value (case-insensitive: programmers answer `UFS`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "ufs" => Some(StorageKind::Ufs),
            "emmc" => Some(StorageKind::Emmc),
            "nand" => Some(StorageKind::Nand),
            "nvme" => Some(StorageKind::Nvme),
            "spinor" => Some(StorageKind::Spinor),
            _ => None,
        }
    }
}

impl std::fmt::Display for StorageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.memory_name())
    }
}

/// Find a SHA-256 digest in a programmer's text: a run of exactly 64 hex digits bounded by
/// non-hex characters (programmers print it in a `<log>` line, some with a `0x` prefix).
pub fn find_sha256_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_hexdigit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
            i += 1;
        }
        if i - start == 64 {
            let mut out = [0u8; 32];
            hex::decode_to_slice(&text[start..i], &mut out).ok()?;
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_digest_in_log_text() {
        let hex64 = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let d = find_sha256_hex(&format!("INFO: Digest 0x{hex64} done")).unwrap();
        assert_eq!(d[0], 0x00);
        assert_eq!(d[31], 0xff);
        assert!(find_sha256_hex("INFO: Digest 0x1234").is_none());
        // 65 digits is not a SHA-256.
        assert!(find_sha256_hex(&format!("{hex64}0")).is_none());
    }

    #[test]
    fn storage_names_round_trip() {
        for k in [StorageKind::Ufs, StorageKind::Emmc, StorageKind::Nand] {
            assert_eq!(StorageKind::parse(k.memory_name()), Some(k));
        }
        assert_eq!(StorageKind::parse("UFS"), Some(StorageKind::Ufs));
        assert_eq!(StorageKind::Emmc.default_sector_size(), 512);
    }
}

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod gpt_lookup_tests;
#[cfg(test)]
mod response_tests;
#[cfg(test)]
mod scripted_device;
