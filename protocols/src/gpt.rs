//! GUID Partition Table codec (UEFI spec 2.x, chapter 5), shared by hosts resolving labels and
//! simulated phones.
//!
//! Sans-io: [`GptHeader::parse`] decodes one header sector and [`GptHeader::parse_entries`] the
//! entry array it points to, so a Firehose host can read LBA 1, learn how many bytes the array
//! takes (bounded before anything is allocated) and read only those. [`Gpt::read`] does both
//! over any positioned reader, falling back to the backup header like firmware does.
//! [`Gpt::encode`] builds the protective MBR, primary and backup structures for a disk.

use std::fmt;

mod guid;
pub use guid::{types, Guid};

/// "EFI PART".
pub const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Revision 1.0, the only one the spec defines.
pub const REVISION_1_0: u32 = 0x0001_0000;
/// The header's defined fields; a larger `header_size` is allowed (zero padding) up to a sector.
pub const HEADER_SIZE: u32 = 92;
/// Entry size every tool writes; the spec allows 128 × 2^n.
pub const ENTRY_SIZE: u32 = 128;
/// Entries in the array every tool writes (16 KiB, the spec's minimum array size).
pub const DEFAULT_ENTRY_COUNT: u32 = 128;
/// UTF-16 code units in a partition name.
pub const NAME_UNITS: usize = 36;
/// Largest entry array we accept from a device or file. Real tables are 16 KiB; this bound stops
/// a hostile header from making us allocate or read gigabytes.
pub const MAX_ENTRY_ARRAY_BYTES: u64 = 1 << 20;
/// Largest entry we accept (the spec allows 128 × 2^n; nobody uses more than 128).
pub const MAX_ENTRY_SIZE: u32 = 4096;

/// Why a GPT was refused. Every variant says which structure and what to check.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GptError {
    #[error("sector size {0} is not supported (need 512 or 4096)")]
    SectorSize(u32),
    #[error("{which} GPT header: short sector ({len} bytes, need {need})")]
    Short {
        which: Which,
        len: usize,
        need: usize,
    },
    #[error(
        "{which} GPT header: no \"EFI PART\" signature (not a GPT disk, or wrong sector size)"
    )]
    Signature { which: Which },
    #[error("{which} GPT header: revision {0:#010x} is not 1.0", .revision)]
    Revision { which: Which, revision: u32 },
    #[error("{which} GPT header: header size {size} out of range (92..={max})")]
    HeaderSize { which: Which, size: u32, max: u32 },
    #[error("{which} GPT header: CRC32 {found:#010x} does not match computed {computed:#010x}")]
    HeaderCrc {
        which: Which,
        found: u32,
        computed: u32,
    },
    #[error("{which} GPT header: entry size {size} is not 128 × 2^n (≤ {max})", max = MAX_ENTRY_SIZE)]
    EntrySize { which: Which, size: u32 },
    #[error("{which} GPT header: {count} entries of {size} bytes exceed the {max}-byte limit", max = MAX_ENTRY_ARRAY_BYTES)]
    EntryArrayTooLarge { which: Which, count: u32, size: u32 },
    #[error("{which} GPT header: inconsistent layout: {reason}")]
    Layout { which: Which, reason: String },
    #[error("{which} GPT entry array: {len} bytes given, header needs {need}")]
    EntriesShort {
        which: Which,
        len: usize,
        need: usize,
    },
    #[error(
        "{which} GPT entry array: CRC32 {found:#010x} does not match computed {computed:#010x}"
    )]
    EntriesCrc {
        which: Which,
        found: u32,
        computed: u32,
    },
    #[error("GPT entry {index} ({name:?}): {reason}")]
    Entry {
        index: u32,
        name: String,
        reason: String,
    },
    #[error("partition name {name:?}: {reason}")]
    Name { name: String, reason: String },
    #[error("partition {name:?}: {reason}")]
    Build { name: String, reason: String },
    #[error("reading GPT at byte {offset}: {message}")]
    Io { offset: u64, message: String },
    #[error("no valid GPT: primary: {primary}; backup: {backup}")]
    BothInvalid { primary: String, backup: String },
}

/// Which copy of the table an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Primary,
    Backup,
}

impl fmt::Display for Which {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Which::Primary => "primary",
            Which::Backup => "backup",
        })
    }
}

fn check_sector_size(sector_size: u32) -> Result<(), GptError> {
    match sector_size {
        512 | 4096 => Ok(()),
        other => Err(GptError::SectorSize(other)),
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        v.copy_from_slice(s);
    }
    u32::from_le_bytes(v)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

/// A decoded GPT header (primary or backup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptHeader {
    pub header_size: u32,
    pub header_crc32: u32,
    /// LBA of this header.
    pub my_lba: u64,
    /// LBA of the other copy's header.
    pub alternate_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub disk_guid: Guid,
    /// First LBA of this copy's entry array.
    pub entries_lba: u64,
    pub entry_count: u32,
    pub entry_size: u32,
    pub entries_crc32: u32,
}

impl GptHeader {
    /// Decode and validate one header sector (`sector` must hold at least one sector of
    /// `sector_size` bytes; only the header's own bytes are checked by its CRC).
    pub fn parse(sector: &[u8], sector_size: u32, which: Which) -> Result<Self, GptError> {
        check_sector_size(sector_size)?;
        let need = sector_size as usize;
        if sector.len() < need {
            return Err(GptError::Short {
                which,
                len: sector.len(),
                need,
            });
        }
        if sector.get(..8) != Some(&SIGNATURE[..]) {
            return Err(GptError::Signature { which });
        }
        let revision = le_u32(sector, 8);
        if revision != REVISION_1_0 {
            return Err(GptError::Revision { which, revision });
        }
        let header_size = le_u32(sector, 12);
        if header_size < HEADER_SIZE || header_size > sector_size {
            return Err(GptError::HeaderSize {
                which,
                size: header_size,
                max: sector_size,
            });
        }
        let found = le_u32(sector, 16);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&sector[..16]);
        hasher.update(&[0; 4]);
        hasher.update(&sector[20..header_size as usize]);
        let computed = hasher.finalize();
        if found != computed {
            return Err(GptError::HeaderCrc {
                which,
                found,
                computed,
            });
        }
        let header = GptHeader {
            header_size,
            header_crc32: found,
            my_lba: le_u64(sector, 24),
            alternate_lba: le_u64(sector, 32),
            first_usable_lba: le_u64(sector, 40),
            last_usable_lba: le_u64(sector, 48),
            disk_guid: Guid::from_bytes(sector[56..72].try_into().unwrap_or([0; 16])),
            entries_lba: le_u64(sector, 72),
            entry_count: le_u32(sector, 80),
            entry_size: le_u32(sector, 84),
            entries_crc32: le_u32(sector, 88),
        };
        header.check_bounds(sector_size, which)?;
        Ok(header)
    }

    fn check_bounds(&self, sector_size: u32, which: Which) -> Result<(), GptError> {
        let size = self.entry_size;
        if !(ENTRY_SIZE..=MAX_ENTRY_SIZE).contains(&size) || !size.is_power_of_two() {
            return Err(GptError::EntrySize { which, size });
        }
        if u64::from(self.entry_count) * u64::from(size) > MAX_ENTRY_ARRAY_BYTES {
            return Err(GptError::EntryArrayTooLarge {
                which,
                count: self.entry_count,
                size,
            });
        }
        let layout = |reason: String| GptError::Layout { which, reason };
        if self.first_usable_lba > self.last_usable_lba.saturating_add(1) {
            return Err(layout(format!(
                "first usable LBA {} is past last usable LBA {}",
                self.first_usable_lba, self.last_usable_lba
            )));
        }
        let array_end = self.entries_lba + self.entry_array_sectors(sector_size);
        let array_inside_usable =
            self.entries_lba <= self.last_usable_lba && array_end > self.first_usable_lba;
        if self.entries_lba < 2 && which == Which::Primary || array_inside_usable {
            return Err(layout(format!(
                "entry array at LBA {} overlaps the header or the usable area",
                self.entries_lba
            )));
        }
        Ok(())
    }

    /// Bytes of the entry array (bounded by [`MAX_ENTRY_ARRAY_BYTES`] once parsed).
    pub fn entry_array_bytes(&self) -> u64 {
        u64::from(self.entry_count) * u64::from(self.entry_size)
    }

    /// Whole sectors the entry array occupies.
    pub fn entry_array_sectors(&self, sector_size: u32) -> u64 {
        self.entry_array_bytes()
            .div_ceil(u64::from(sector_size.max(1)))
    }

    /// Decode the entry array this header points to (`bytes` = at least
    /// [`Self::entry_array_bytes`] bytes read from [`Self::entries_lba`]). Empty entries (zero
    /// type GUID) are skipped; the rest come back in table order with their index.
    pub fn parse_entries(&self, bytes: &[u8], which: Which) -> Result<Vec<Partition>, GptError> {
        let need = self.entry_array_bytes() as usize;
        let Some(array) = bytes.get(..need) else {
            return Err(GptError::EntriesShort {
                which,
                len: bytes.len(),
                need,
            });
        };
        let computed = crc32fast::hash(array);
        if computed != self.entries_crc32 {
            return Err(GptError::EntriesCrc {
                which,
                found: self.entries_crc32,
                computed,
            });
        }
        let mut partitions = Vec::new();
        for (index, raw) in array.chunks_exact(self.entry_size as usize).enumerate() {
            let index = index as u32;
            if let Some(p) = Partition::decode(raw, index)? {
                if p.first_lba < self.first_usable_lba || p.last_lba > self.last_usable_lba {
                    return Err(GptError::Entry {
                        index,
                        name: p.name,
                        reason: format!(
                            "LBAs {}..={} lie outside the usable area {}..={}",
                            p.first_lba, p.last_lba, self.first_usable_lba, self.last_usable_lba
                        ),
                    });
                }
                partitions.push(p);
            }
        }
        Ok(partitions)
    }

    /// Encode into one sector of `sector_size` bytes, computing the header CRC.
    pub fn encode(&self, sector_size: u32) -> Vec<u8> {
        let mut s = vec![0u8; sector_size as usize];
        s[..8].copy_from_slice(SIGNATURE);
        s[8..12].copy_from_slice(&REVISION_1_0.to_le_bytes());
        s[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        s[24..32].copy_from_slice(&self.my_lba.to_le_bytes());
        s[32..40].copy_from_slice(&self.alternate_lba.to_le_bytes());
        s[40..48].copy_from_slice(&self.first_usable_lba.to_le_bytes());
        s[48..56].copy_from_slice(&self.last_usable_lba.to_le_bytes());
        s[56..72].copy_from_slice(self.disk_guid.as_bytes());
        s[72..80].copy_from_slice(&self.entries_lba.to_le_bytes());
        s[80..84].copy_from_slice(&self.entry_count.to_le_bytes());
        s[84..88].copy_from_slice(&self.entry_size.to_le_bytes());
        s[88..92].copy_from_slice(&self.entries_crc32.to_le_bytes());
        let crc = crc32fast::hash(&s[..HEADER_SIZE as usize]);
        s[16..20].copy_from_slice(&crc.to_le_bytes());
        s
    }
}

/// One used partition entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Position in the entry array.
    pub index: u32,
    pub type_guid: Guid,
    pub unique_guid: Guid,
    pub first_lba: u64,
    /// Inclusive, as in the spec.
    pub last_lba: u64,
    /// Bits 0–2 are UEFI-defined; 48–63 belong to the type (Qualcomm keeps A/B slot state here).
    pub attributes: u64,
    pub name: String,
}

impl Partition {
    pub fn sectors(&self) -> u64 {
        self.last_lba - self.first_lba + 1
    }

    pub fn size_bytes(&self, sector_size: u32) -> u64 {
        self.sectors() * u64::from(sector_size)
    }

    /// Byte offset of the first sector on the disk.
    pub fn start_byte(&self, sector_size: u32) -> u64 {
        self.first_lba * u64::from(sector_size)
    }

    fn decode(raw: &[u8], index: u32) -> Result<Option<Partition>, GptError> {
        let guid_at = |at: usize| {
            let mut g = [0u8; 16];
            if let Some(s) = raw.get(at..at + 16) {
                g.copy_from_slice(s);
            }
            Guid::from_bytes(g)
        };
        let type_guid = guid_at(0);
        if type_guid.is_nil() {
            return Ok(None);
        }
        let units: Vec<u16> = raw
            .get(56..56 + 2 * NAME_UNITS)
            .unwrap_or(&[])
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let name = String::from_utf16_lossy(&units);
        let p = Partition {
            index,
            type_guid,
            unique_guid: guid_at(16),
            first_lba: le_u64(raw, 32),
            last_lba: le_u64(raw, 40),
            attributes: le_u64(raw, 48),
            name,
        };
        if p.last_lba < p.first_lba {
            return Err(GptError::Entry {
                index,
                name: p.name,
                reason: format!(
                    "last LBA {} is before first LBA {}",
                    p.last_lba, p.first_lba
                ),
            });
        }
        Ok(Some(p))
    }

    fn encode_into(&self, raw: &mut [u8]) -> Result<(), GptError> {
        let units = encode_name(&self.name)?;
        raw[..16].copy_from_slice(self.type_guid.as_bytes());
        raw[16..32].copy_from_slice(self.unique_guid.as_bytes());
        raw[32..40].copy_from_slice(&self.first_lba.to_le_bytes());
        raw[40..48].copy_from_slice(&self.last_lba.to_le_bytes());
        raw[48..56].copy_from_slice(&self.attributes.to_le_bytes());
        for (i, u) in units.iter().enumerate() {
            raw[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
        Ok(())
    }
}

fn encode_name(name: &str) -> Result<Vec<u16>, GptError> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let bad = |reason: &str| GptError::Name {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if units.is_empty() {
        return Err(bad("empty"));
    }
    if units.len() > NAME_UNITS {
        return Err(bad("longer than 36 UTF-16 code units"));
    }
    if units.contains(&0) {
        return Err(bad("contains a NUL character"));
    }
    Ok(units)
}

/// A whole partition table: what both copies describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    pub sector_size: u32,
    /// Sectors on the disk (LUN); the backup header sits in the last one.
    pub disk_sectors: u64,
    pub disk_guid: Guid,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    /// Size of the entry array (slots, used or not).
    pub entry_count: u32,
    /// Used entries, by index.
    pub partitions: Vec<Partition>,
}

/// Where each piece of an encoded table goes on the disk.
#[derive(Debug, Clone)]
pub struct EncodedGpt {
    /// Protective MBR (LBA 0), primary header (LBA 1) and primary entry array, contiguous from
    /// byte 0 ("gpt_main" in Qualcomm packages).
    pub primary: Vec<u8>,
    /// Backup entry array followed by the backup header (last LBA), starting at `backup_lba`
    /// ("gpt_backup").
    pub backup: Vec<u8>,
    pub backup_lba: u64,
}

impl Gpt {
    /// An empty table for a disk of `disk_sectors` sectors with the standard 128-entry array.
    pub fn new(sector_size: u32, disk_sectors: u64, disk_guid: Guid) -> Result<Self, GptError> {
        check_sector_size(sector_size)?;
        let array_sectors =
            (u64::from(DEFAULT_ENTRY_COUNT) * u64::from(ENTRY_SIZE)).div_ceil(sector_size.into());
        let first_usable_lba = 2 + array_sectors;
        // Backup: array then header in the last sector.
        let reserved_tail = array_sectors + 1;
        if disk_sectors < first_usable_lba + reserved_tail + 1 {
            return Err(GptError::Build {
                name: String::from("(disk)"),
                reason: format!("{disk_sectors} sectors is too small for a GPT"),
            });
        }
        Ok(Gpt {
            sector_size,
            disk_sectors,
            disk_guid,
            first_usable_lba,
            last_usable_lba: disk_sectors - reserved_tail - 1,
            entry_count: DEFAULT_ENTRY_COUNT,
            partitions: Vec::new(),
        })
    }

    /// Partition by exact label (GPT names are case-sensitive, as Firehose and fastboot use them).
    pub fn find(&self, label: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.name == label)
    }

    pub fn find_mut(&mut self, label: &str) -> Option<&mut Partition> {
        self.partitions.iter_mut().find(|p| p.name == label)
    }

    /// First LBA after the last partition, aligned up to `align_bytes`.
    pub fn next_free_lba(&self, align_bytes: u64) -> u64 {
        let end = self
            .partitions
            .iter()
            .map(|p| p.last_lba + 1)
            .max()
            .unwrap_or(self.first_usable_lba)
            .max(self.first_usable_lba);
        let align = (align_bytes / u64::from(self.sector_size)).max(1);
        end.div_ceil(align) * align
    }

    /// Append a partition of `size_bytes` (rounded up to whole sectors) after the last one,
    /// aligned to `align_bytes` (1 MiB is what sgdisk and most tools use).
    pub fn add_partition(
        &mut self,
        name: &str,
        type_guid: Guid,
        unique_guid: Guid,
        size_bytes: u64,
        align_bytes: u64,
    ) -> Result<&Partition, GptError> {
        let build = |reason: String| GptError::Build {
            name: name.to_string(),
            reason,
        };
        encode_name(name)?;
        if self.find(name).is_some() {
            return Err(build("a partition with this name already exists".into()));
        }
        let index = (0..self.entry_count)
            .find(|i| !self.partitions.iter().any(|p| p.index == *i))
            .ok_or_else(|| build(format!("all {} entries are used", self.entry_count)))?;
        let sectors = size_bytes.div_ceil(self.sector_size.into());
        if sectors == 0 {
            return Err(build("size is zero".into()));
        }
        let first_lba = self.next_free_lba(align_bytes);
        let last_lba = first_lba + sectors - 1;
        if last_lba > self.last_usable_lba {
            return Err(build(format!(
                "{size_bytes} bytes at LBA {first_lba} do not fit (last usable LBA {})",
                self.last_usable_lba
            )));
        }
        self.partitions.push(Partition {
            index,
            type_guid,
            unique_guid,
            first_lba,
            last_lba,
            attributes: 0,
            name: name.to_string(),
        });
        self.partitions.sort_by_key(|p| p.index);
        Ok(self.find(name).expect("just inserted"))
    }

    fn array_sectors(&self) -> u64 {
        (u64::from(self.entry_count) * u64::from(ENTRY_SIZE)).div_ceil(self.sector_size.into())
    }

    fn entry_array(&self) -> Result<Vec<u8>, GptError> {
        let sectors = self.array_sectors();
        let mut array = vec![0u8; (sectors * u64::from(self.sector_size)) as usize];
        for p in &self.partitions {
            let at = p.index as usize * ENTRY_SIZE as usize;
            let raw =
                array
                    .get_mut(at..at + ENTRY_SIZE as usize)
                    .ok_or_else(|| GptError::Entry {
                        index: p.index,
                        name: p.name.clone(),
                        reason: format!("index beyond the {}-entry array", self.entry_count),
                    })?;
            p.encode_into(raw)?;
        }
        Ok(array)
    }

    /// The protective MBR sector (one 0xEE partition covering the disk, capped at 2^32-1 sectors).
    pub fn protective_mbr(&self) -> Vec<u8> {
        let mut mbr = vec![0u8; self.sector_size as usize];
        let entry = &mut mbr[446..462];
        entry[0] = 0x00; // not bootable
        entry[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
        entry[4] = 0xEE; // GPT protective
        entry[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
        entry[8..12].copy_from_slice(&1u32.to_le_bytes());
        let size = u32::try_from(self.disk_sectors - 1).unwrap_or(u32::MAX);
        entry[12..16].copy_from_slice(&size.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        mbr
    }

    /// Headers for both copies (entries CRC filled in).
    pub fn headers(&self) -> Result<(GptHeader, GptHeader), GptError> {
        let array = self.entry_array()?;
        let crc = crc32fast::hash(&array[..(self.entry_count * ENTRY_SIZE) as usize]);
        let last = self.disk_sectors - 1;
        let primary = GptHeader {
            header_size: HEADER_SIZE,
            header_crc32: 0,
            my_lba: 1,
            alternate_lba: last,
            first_usable_lba: self.first_usable_lba,
            last_usable_lba: self.last_usable_lba,
            disk_guid: self.disk_guid,
            entries_lba: 2,
            entry_count: self.entry_count,
            entry_size: ENTRY_SIZE,
            entries_crc32: crc,
        };
        let backup = GptHeader {
            my_lba: last,
            alternate_lba: 1,
            entries_lba: last - self.array_sectors(),
            ..primary.clone()
        };
        Ok((primary, backup))
    }

    /// Encode every on-disk structure.
    pub fn encode(&self) -> Result<EncodedGpt, GptError> {
        check_sector_size(self.sector_size)?;
        for p in &self.partitions {
            if p.first_lba < self.first_usable_lba || p.last_lba > self.last_usable_lba {
                return Err(GptError::Build {
                    name: p.name.clone(),
                    reason: format!(
                        "LBAs {}..={} lie outside the usable area {}..={}",
                        p.first_lba, p.last_lba, self.first_usable_lba, self.last_usable_lba
                    ),
                });
            }
        }
        let array = self.entry_array()?;
        let (primary_header, backup_header) = self.headers()?;
        let mut primary = self.protective_mbr();
        primary.extend_from_slice(&primary_header.encode(self.sector_size));
        primary.extend_from_slice(&array);
        let mut backup = array;
        backup.extend_from_slice(&backup_header.encode(self.sector_size));
        Ok(EncodedGpt {
            primary,
            backup,
            backup_lba: backup_header.entries_lba,
        })
    }

    fn from_parts(
        header: &GptHeader,
        partitions: Vec<Partition>,
        sector_size: u32,
        disk_sectors: u64,
    ) -> Gpt {
        Gpt {
            sector_size,
            disk_sectors,
            disk_guid: header.disk_guid,
            first_usable_lba: header.first_usable_lba,
            last_usable_lba: header.last_usable_lba,
            entry_count: header.entry_count,
            partitions,
        }
    }

    /// Read a table through `read_at(byte_offset, buf)` (a file, a LUN, a device): the primary
    /// copy, or the backup in the disk's last sector when the primary is damaged, like UEFI
    /// firmware does. `disk_sectors` is the disk size in sectors.
    pub fn read<F>(mut read_at: F, sector_size: u32, disk_sectors: u64) -> Result<Gpt, GptError>
    where
        F: FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    {
        check_sector_size(sector_size)?;
        let primary = Self::read_copy(&mut read_at, sector_size, 1, Which::Primary);
        match primary {
            Ok((header, parts)) => Ok(Self::from_parts(&header, parts, sector_size, disk_sectors)),
            Err(primary_err) => {
                let last = disk_sectors.saturating_sub(1);
                match Self::read_copy(&mut read_at, sector_size, last, Which::Backup) {
                    Ok((header, parts)) => {
                        Ok(Self::from_parts(&header, parts, sector_size, disk_sectors))
                    }
                    Err(backup_err) => Err(GptError::BothInvalid {
                        primary: primary_err.to_string(),
                        backup: backup_err.to_string(),
                    }),
                }
            }
        }
    }

    /// Read and check one copy whose header is at `lba`.
    pub fn read_copy<F>(
        read_at: &mut F,
        sector_size: u32,
        lba: u64,
        which: Which,
    ) -> Result<(GptHeader, Vec<Partition>), GptError>
    where
        F: FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    {
        let ss = u64::from(sector_size);
        let mut sector = vec![0u8; sector_size as usize];
        let offset = lba * ss;
        read_at(offset, &mut sector).map_err(|e| GptError::Io {
            offset,
            message: e.to_string(),
        })?;
        let header = GptHeader::parse(&sector, sector_size, which)?;
        if header.my_lba != lba {
            return Err(GptError::Layout {
                which,
                reason: format!("header at LBA {lba} says it is at LBA {}", header.my_lba),
            });
        }
        // Bounded by MAX_ENTRY_ARRAY_BYTES in GptHeader::parse.
        let mut array = vec![0u8; header.entry_array_bytes() as usize];
        let offset = header.entries_lba * ss;
        read_at(offset, &mut array).map_err(|e| GptError::Io {
            offset,
            message: e.to_string(),
        })?;
        let parts = header.parse_entries(&array, which)?;
        Ok((header, parts))
    }
}

#[cfg(test)]
mod tests;
