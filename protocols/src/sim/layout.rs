//! The physical partitions of a simulated phone's first LUN: a 2018-style phone with `system`
//! and `vendor` as GPT partitions, or a dynamic-partition phone with `super`, or what the test
//! or engineer listed.

use super::dynamic::{DynamicLayout, SUPER};
use super::storage::PartitionSpec;

/// Partition names and sizes.
pub type Layout = Vec<(&'static str, u64)>;

const K: u64 = 1024;
const M: u64 = 1024 * K;
const G: u64 = 1024 * M;

/// The partitions of a typical Qualcomm A/B phone without `super` (logical partitions are
/// modelled as physical ones), sizes as on shipping devices: (slotted — they get `_a`/`_b` —,
/// shared).
pub fn default_layout() -> (Layout, Layout) {
    let slotted = vec![
        ("boot", 96 * M),
        ("vendor_boot", 96 * M),
        ("dtbo", 24 * M),
        ("vbmeta", 64 * K),
        ("vbmeta_system", 64 * K),
        ("system", 4 * G),
        ("vendor", G),
    ];
    let shared = vec![
        ("misc", M),
        ("metadata", 16 * M),
        ("persist", 32 * M),
        ("userdata", 8 * G),
    ];
    (slotted, shared)
}

/// The physical partitions of a dynamic-partition phone with a `super` of `super_size` bytes:
/// the boot chain's per slot, then the shared ones.
pub fn dynamic_layout(super_size: u64) -> (Layout, Layout) {
    let slotted = vec![
        ("boot", 96 * M),
        ("init_boot", 8 * M),
        ("vendor_boot", 96 * M),
        ("dtbo", 24 * M),
        ("vbmeta", 64 * K),
        ("vbmeta_system", 64 * K),
    ];
    let shared = vec![
        ("misc", M),
        ("metadata", 16 * M),
        ("persist", 32 * M),
        (SUPER, super_size),
        ("userdata", 8 * G),
    ];
    (slotted, shared)
}

/// The partitions to create: `explicit` (name, size, slotted) when given — plus `super` on a
/// dynamic phone that did not list it — else the default layout of the phone's kind. Slotted
/// names get one copy per slot, listed slot by slot within each name (boot_a, boot_b, …), as
/// Qualcomm partition tables order them.
pub fn partition_specs(
    explicit: &[(String, u64, bool)],
    slots: &[String],
    dynamic: Option<&DynamicLayout>,
) -> Vec<PartitionSpec> {
    let mut list: Vec<(String, u64, bool)> = explicit.to_vec();
    if list.is_empty() {
        let (slotted, shared) = match dynamic {
            Some(d) => dynamic_layout(d.super_size),
            None => default_layout(),
        };
        list = slotted
            .into_iter()
            .map(|(n, s)| (n.to_string(), s, true))
            .chain(shared.into_iter().map(|(n, s)| (n.to_string(), s, false)))
            .collect();
    } else if let Some(d) = dynamic.filter(|_| !list.iter().any(|(n, _, _)| n == SUPER)) {
        list.push((SUPER.to_string(), d.super_size, false));
    }
    let mut specs = Vec::new();
    for (name, size, slotted) in list {
        let names = if slotted && !slots.is_empty() {
            slots.iter().map(|s| format!("{name}_{s}")).collect()
        } else {
            vec![name]
        };
        specs.extend(names.into_iter().map(|name| PartitionSpec {
            name,
            size_bytes: size,
            type_guid: None,
        }));
    }
    specs
}
