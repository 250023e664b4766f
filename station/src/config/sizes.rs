//! Optional `sizes:` of a product manifest: how large the phone's partitions and storage LUNs
//! are, so pre-flight can refuse an image that cannot fit before a phone is touched.
//!
//! ```yaml
//! sizes:
//!   partitions: { system: 4294967296, boot: 100663296 }   # bytes, per slot
//!   luns: { 0: 137438953472 }                             # bytes of each EDL storage LUN
//! ```
//! Both are optional; without them pre-flight cannot know these sizes and skips those checks
//! (the phone still refuses an image that does not fit, but only while flashing).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::yaml::{deserialize_checked_str, UniqueMap};

/// Partition and LUN sizes the manifest declares, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredSizes {
    /// By partition name as the plan writes it (`system`: each slot's `system_a`/`system_b`
    /// has this size) or with its slot suffix when the slots differ.
    pub partitions: BTreeMap<String, u64>,
    /// By LUN number (`physical_partition_number` in rawprogram files).
    pub luns: BTreeMap<u32, u64>,
}

impl DeclaredSizes {
    /// The declared size of `partition` (`system`, or `system_a` falling back to `system`).
    pub fn partition(&self, partition: &str) -> Option<u64> {
        if let Some(&size) = self.partitions.get(partition) {
            return Some(size);
        }
        let base = partition
            .strip_suffix("_a")
            .or_else(|| partition.strip_suffix("_b"))?;
        self.partitions.get(base).copied()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SizesFile {
    #[serde(default)]
    pub partitions: Option<UniqueMap<String, u64>>,
    #[serde(default)]
    pub luns: Option<UniqueMap<LunNumber, u64>>,
}

/// A LUN number written as a mapping key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct LunNumber(pub u32);

impl fmt::Display for LunNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn parse_lun(text: &str) -> Result<LunNumber, String> {
    text.parse().map(LunNumber).map_err(|_| {
        format!("`{text}` is not a LUN number; write the physical_partition_number, e.g. `0`")
    })
}

deserialize_checked_str!(LunNumber, "a LUN number", parse_lun);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_suffixes_fall_back_to_the_base_name() {
        let sizes = DeclaredSizes {
            partitions: [("system".to_string(), 10), ("boot_b".to_string(), 3)]
                .into_iter()
                .collect(),
            luns: BTreeMap::new(),
        };
        assert_eq!(sizes.partition("system"), Some(10));
        assert_eq!(sizes.partition("system_a"), Some(10));
        assert_eq!(sizes.partition("boot_b"), Some(3));
        assert_eq!(sizes.partition("boot_a"), None);
        assert_eq!(sizes.partition("vendor"), None);
    }
}
