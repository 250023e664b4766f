//! The memory table a boot ROM in memory-debug mode offers (Sahara MEMORY_DEBUG / _64): one
//! entry per RAM region it can hand out after a crash. Sans-io; shared with the simulated ROM.
//!
//! Entry layout (little-endian), as qdl, qdlrs and bkerler/edl read it:
//! - 32-bit ROMs (MEMORY_DEBUG, 0x09): `u32 save_pref, u32 base, u32 length,
//!   char description[20], char filename[20]` = 52 bytes;
//! - 64-bit ROMs (MEMORY_DEBUG_64, 0x10): the three numbers as `u64` = 64 bytes.
//!
//! `save_pref` non-zero marks regions the ROM recommends saving (qdlrs dumps only those by
//! default). The names are NUL-padded and need not be NUL-terminated; the filename comes from
//! the device, so it is checked before it names a file on the host.

/// Which entry layout a table uses (follows the MEMORY_DEBUG packet that announced it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Bits32,
    Bits64,
}

impl TableFormat {
    pub fn entry_len(self) -> usize {
        match self {
            TableFormat::Bits32 => 52,
            TableFormat::Bits64 => 64,
        }
    }

    fn number_len(self) -> usize {
        match self {
            TableFormat::Bits32 => 4,
            TableFormat::Bits64 => 8,
        }
    }
}

/// Bytes of each name field.
pub const NAME_LEN: usize = 20;

/// One region of device memory the ROM offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRegion {
    pub save_preferred: bool,
    pub address: u64,
    pub length: u64,
    pub description: String,
    /// As the device named it; see [`MemoryRegion::safe_filename`] before using it as a path.
    pub filename: String,
}

impl MemoryRegion {
    /// The filename, if it is safe to create inside an output directory: 1–20 characters of
    /// `A-Z a-z 0-9 . _ -`, not starting with a dot (so no `..`, no separators, no hidden
    /// files). `Err` says what is wrong with it.
    pub fn safe_filename(&self) -> Result<&str, String> {
        let name = self.filename.as_str();
        if name.is_empty() {
            return Err("the device gave no filename".to_owned());
        }
        if name.starts_with('.') {
            return Err(format!("filename {name:?} starts with a dot"));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(format!("filename {name:?} contains {bad:?}"));
        }
        Ok(name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("memory table of {len} bytes is not a whole number of {entry}-byte entries")]
    Length { len: usize, entry: usize },
    #[error("memory table entry {index} ({filename:?}): {reason}")]
    Entry {
        index: usize,
        filename: String,
        reason: String,
    },
}

/// Decode a table. Every entry is checked: its range must not wrap around the address space
/// of its format.
pub fn parse_table(bytes: &[u8], format: TableFormat) -> Result<Vec<MemoryRegion>, TableError> {
    let entry = format.entry_len();
    if !bytes.len().is_multiple_of(entry) {
        return Err(TableError::Length {
            len: bytes.len(),
            entry,
        });
    }
    let width = format.number_len();
    let limit = match format {
        TableFormat::Bits32 => u64::from(u32::MAX) + 1,
        TableFormat::Bits64 => u64::MAX,
    };
    bytes
        .chunks_exact(entry)
        .enumerate()
        .map(|(index, raw)| {
            let number = |i: usize| le(&raw[i * width..(i + 1) * width]);
            let names = &raw[3 * width..];
            let region = MemoryRegion {
                save_preferred: number(0) != 0,
                address: number(1),
                length: number(2),
                description: name(&names[..NAME_LEN]),
                filename: name(&names[NAME_LEN..2 * NAME_LEN]),
            };
            let fits = match format {
                TableFormat::Bits32 => region.address + region.length <= limit,
                TableFormat::Bits64 => region.address.checked_add(region.length).is_some(),
            };
            if !fits {
                return Err(TableError::Entry {
                    index,
                    filename: region.filename,
                    reason: format!(
                        "{} bytes at {:#x} run past the end of the address space",
                        region.length, region.address
                    ),
                });
            }
            Ok(region)
        })
        .collect()
}

/// Encode a table (the simulated ROM's side). Names longer than 19 bytes are cut so the field
/// keeps a terminating NUL; numbers wider than a 32-bit table's fields are truncated, which is
/// the caller's concern (it chose the format).
pub fn encode_table(regions: &[MemoryRegion], format: TableFormat) -> Vec<u8> {
    let mut out = Vec::with_capacity(regions.len() * format.entry_len());
    for r in regions {
        for value in [u64::from(r.save_preferred), r.address, r.length] {
            out.extend_from_slice(&value.to_le_bytes()[..format.number_len()]);
        }
        for text in [&r.description, &r.filename] {
            let mut field = [0u8; NAME_LEN];
            let bytes = text.as_bytes();
            let n = bytes.len().min(NAME_LEN - 1);
            field[..n].copy_from_slice(&bytes[..n]);
            out.extend_from_slice(&field);
        }
    }
    out
}

fn le(bytes: &[u8]) -> u64 {
    let mut v = [0u8; 8];
    v[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(v)
}

/// Text up to the first NUL (or the whole field); bytes that are not UTF-8 are replaced, and the
/// filename check then refuses them.
fn name(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One 64-bit entry, byte by byte: save_pref 1, base 0x8000_0000, length 0x2000,
    /// description "DDR CS0", filename "DDRCS0.BIN".
    const ENTRY64: [u8; 64] = [
        0x01, 0, 0, 0, 0, 0, 0, 0, //
        0x00, 0x00, 0x00, 0x80, 0, 0, 0, 0, //
        0x00, 0x20, 0, 0, 0, 0, 0, 0, //
        b'D', b'D', b'R', b' ', b'C', b'S', b'0', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
        b'D', b'D', b'R', b'C', b'S', b'0', b'.', b'B', b'I', b'N', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    /// One 32-bit entry: save_pref 0, base 0x0800_0000, length 0x100, "OCIMEM" / "OCIMEM.BIN".
    const ENTRY32: [u8; 52] = [
        0, 0, 0, 0, //
        0x00, 0x00, 0x00, 0x08, //
        0x00, 0x01, 0x00, 0x00, //
        b'O', b'C', b'I', b'M', b'E', b'M', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
        b'O', b'C', b'I', b'M', b'E', b'M', b'.', b'B', b'I', b'N', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn decodes_literal_entries_of_both_widths() {
        let regions = parse_table(&ENTRY64, TableFormat::Bits64).unwrap();
        assert_eq!(
            regions,
            vec![MemoryRegion {
                save_preferred: true,
                address: 0x8000_0000,
                length: 0x2000,
                description: "DDR CS0".into(),
                filename: "DDRCS0.BIN".into(),
            }]
        );
        let regions = parse_table(&ENTRY32, TableFormat::Bits32).unwrap();
        assert_eq!(regions[0].address, 0x0800_0000);
        assert_eq!(regions[0].length, 0x100);
        assert!(!regions[0].save_preferred);
        assert_eq!(regions[0].safe_filename(), Ok("OCIMEM.BIN"));
    }

    #[test]
    fn encoding_gives_the_same_bytes() {
        let regions = parse_table(&ENTRY64, TableFormat::Bits64).unwrap();
        assert_eq!(
            encode_table(&regions, TableFormat::Bits64),
            ENTRY64.to_vec()
        );
        let regions = parse_table(&ENTRY32, TableFormat::Bits32).unwrap();
        assert_eq!(
            encode_table(&regions, TableFormat::Bits32),
            ENTRY32.to_vec()
        );
    }

    #[test]
    fn a_partial_entry_or_a_wrapping_range_is_refused() {
        assert_eq!(
            parse_table(&ENTRY64[..63], TableFormat::Bits64),
            Err(TableError::Length { len: 63, entry: 64 })
        );
        assert!(parse_table(&ENTRY64, TableFormat::Bits32).is_err());
        let mut wrap = ENTRY32;
        wrap[8..12].copy_from_slice(&0xF900_0000u32.to_le_bytes());
        let err = parse_table(&wrap, TableFormat::Bits32).unwrap_err();
        assert!(err.to_string().contains("OCIMEM.BIN"), "{err}");
        let mut wrap = ENTRY64;
        wrap[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse_table(&wrap, TableFormat::Bits64).is_err());
        assert_eq!(parse_table(&[], TableFormat::Bits64), Ok(vec![]));
    }

    #[test]
    fn unterminated_and_hostile_names() {
        let mut e = ENTRY64;
        // A filename that fills all 20 bytes (no NUL) is kept whole.
        e[44..64].copy_from_slice(b"ABCDEFGHIJKLMNOPQRST");
        let r = &parse_table(&e, TableFormat::Bits64).unwrap()[0];
        assert_eq!(r.filename, "ABCDEFGHIJKLMNOPQRST");
        for bad in [
            &b"../../etc/passwd"[..],
            b"a/b",
            b"..",
            b".hidden",
            b"C:\\x",
            b"",
            b"a\xffb",
        ] {
            let mut e = ENTRY64;
            e[44..64].fill(0);
            e[44..44 + bad.len()].copy_from_slice(bad);
            let r = &parse_table(&e, TableFormat::Bits64).unwrap()[0];
            assert!(r.safe_filename().is_err(), "{:?} accepted", r.filename);
        }
    }
}
