//! Fixtures shared by the LP unit tests: a small super image with two slots, groups, A/B
//! partitions, and helpers to re-seal checksums after a test damaged a structure.

use std::io::Cursor;

use super::*;

/// 1 MiB super, 4 KiB alignment, 4 KiB slots × 2: small enough to mutate thousands of times.
pub(crate) fn small_builder() -> MetadataBuilder {
    let device = DeviceSpec {
        alignment: 4096,
        ..DeviceSpec::super_partition(1 << 20)
    };
    let mut b = MetadataBuilder::new(device, 4096, 2).unwrap();
    b.add_group("main", 256 << 10).unwrap();
    b.add_partition("system_a", "main", attr::READONLY).unwrap();
    b.resize_partition("system_a", 64 << 10).unwrap();
    b.add_partition("system_b", "main", attr::READONLY).unwrap();
    b.resize_partition("system_b", 32 << 10).unwrap();
    b.add_partition("vendor_a", DEFAULT_GROUP, 0).unwrap();
    b.resize_partition("vendor_a", 10_000).unwrap();
    b
}

pub(crate) fn small_metadata() -> Metadata {
    small_builder().export().unwrap()
}

/// Recognisable bytes for a partition image.
pub(crate) fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// [`small_metadata`] as a `super.img`, `system_a` and `vendor_a` filled with [`pattern`]s.
pub(crate) fn small_super_image() -> Vec<u8> {
    let metadata = small_metadata();
    let system = pattern(1, 60_000);
    let vendor = pattern(2, 10_000);
    let mut out = Cursor::new(Vec::new());
    write_super_image(
        &metadata,
        &mut [
            PartitionImage {
                partition: "system_a",
                len: system.len() as u64,
                reader: &mut &system[..],
            },
            PartitionImage {
                partition: "vendor_a",
                len: vendor.len() as u64,
                reader: &mut &vendor[..],
            },
        ],
        &mut out,
    )
    .unwrap();
    out.into_inner()
}

/// A reader over bytes, as [`ReadAt`] wants it.
pub(crate) fn reader(bytes: &[u8]) -> impl FnMut(u64, &mut [u8]) -> std::io::Result<()> + '_ {
    move |offset, buf| {
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "past end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Recompute the geometry checksum of the copy at `at`.
pub(crate) fn reseal_geometry(image: &mut [u8], at: usize) {
    let mut g = image[at..at + 52].to_vec();
    g[8..40].fill(0);
    let sum = sha256(&[&g]);
    image[at + 8..at + 40].copy_from_slice(&sum);
}

/// Recompute the tables and header checksums of the metadata copy at `at` (as far as its
/// fields can be read; a test that broke them gets whatever falls out).
pub(crate) fn reseal_metadata(image: &mut [u8], at: usize) {
    let header_size = (le_u32(image, at + 8) as usize).min(256);
    let tables_size = le_u32(image, at + 44) as usize;
    let tables_at = at + header_size;
    if let Some(tables) = image.get(tables_at..tables_at.saturating_add(tables_size)) {
        let sum = sha256(&[tables]);
        image[at + 48..at + 80].copy_from_slice(&sum);
    }
    if header_size >= 44 {
        let mut h = image[at..at + header_size].to_vec();
        h[12..44].fill(0);
        let sum = sha256(&[&h]);
        image[at + 12..at + 44].copy_from_slice(&sum);
    }
}
