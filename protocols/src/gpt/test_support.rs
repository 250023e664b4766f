//! Fixtures shared by the GPT unit tests.

use super::{types, Gpt, Guid};

pub(crate) fn small_table(sector_size: u32) -> Gpt {
    let disk_sectors = 64 * 1024 * 1024 / u64::from(sector_size);
    let mut gpt = Gpt::new(sector_size, disk_sectors, Guid::derived("disk")).unwrap();
    for (name, size) in [
        ("boot_a", 4 << 20),
        ("boot_b", 4 << 20),
        ("system_a", 16 << 20),
        ("userdata", 3 << 20),
    ] {
        gpt.add_partition(
            name,
            types::for_name(name),
            Guid::derived(name),
            size,
            1 << 20,
        )
        .unwrap();
    }
    gpt
}

/// The primary header sector of [`small_table`] at 512-byte sectors.
pub(crate) fn header_sector() -> Vec<u8> {
    let gpt = small_table(512);
    gpt.encode().unwrap().primary[512..1024].to_vec()
}

/// Recompute a header sector's CRC32 after a test changed it.
pub(crate) fn recrc(sector: &mut [u8]) {
    sector[16..20].fill(0);
    let size = u32::from_le_bytes(sector[12..16].try_into().unwrap()) as usize;
    let crc = crc32fast::hash(&sector[..size.min(sector.len())]);
    sector[16..20].copy_from_slice(&crc.to_le_bytes());
}
