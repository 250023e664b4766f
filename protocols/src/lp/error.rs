//! Everything that can go wrong reading, building or writing LP metadata. The caller adds the
//! file or device name (it knows it; this module does not).

use super::Which;

/// An LP metadata failure. Content errors name the copy, table and entry index, so a person
/// can find them in a hex dump.
#[derive(Debug, thiserror::Error)]
pub enum LpError {
    #[error("reading {what} at byte {offset}: {source}")]
    Io {
        what: &'static str,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {what}: {source}")]
    Write {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{which} LP geometry: {len} bytes, need 52")]
    GeometryShort { which: Which, len: usize },
    #[error("{which} LP geometry: magic {found:#010x} is not 0x616c4467 (not a super partition, or a super_empty.img read as a super.img)")]
    GeometryMagic { which: Which, found: u32 },
    #[error("{which} LP geometry: struct size {size} is not 52 (unknown liblp version)")]
    GeometryStructSize { which: Which, size: u32 },
    #[error("{which} LP geometry: SHA-256 checksum does not match its contents")]
    GeometryChecksum { which: Which },
    #[error("{which} LP geometry: metadata slot count is 0")]
    GeometrySlotCount { which: Which },
    #[error("{which} LP geometry: metadata_max_size {size} {reason}")]
    GeometryMetadataSize {
        which: Which,
        size: u32,
        reason: &'static str,
    },
    #[error("{which} LP geometry: logical block size {size} is not a non-zero multiple of 512")]
    GeometryBlockSize { which: Which, size: u32 },
    #[error("no valid LP geometry: primary: {primary}; backup: {backup}")]
    GeometryBothInvalid {
        primary: Box<LpError>,
        backup: Box<LpError>,
    },

    #[error("{which} LP metadata header: {len} bytes, need {need}")]
    HeaderShort {
        which: Which,
        len: usize,
        need: usize,
    },
    #[error("{which} LP metadata header: magic {found:#010x} is not 0x414c5030")]
    HeaderMagic { which: Which, found: u32 },
    #[error(
        "{which} LP metadata header: version {major}.{minor} is not readable (need 10.0 to 10.2)"
    )]
    HeaderVersion {
        which: Which,
        major: u16,
        minor: u16,
    },
    #[error("{which} LP metadata header: header size {size} is wrong for version 10.{minor} (need {expected})")]
    HeaderSize {
        which: Which,
        size: u32,
        minor: u16,
        expected: u32,
    },
    #[error("{which} LP metadata header: SHA-256 checksum does not match its contents")]
    HeaderChecksum { which: Which },
    #[error(
        "{which} LP metadata: header flags {flags:#x} need version 10.2, header says 10.{minor}"
    )]
    HeaderFlags {
        which: Which,
        flags: u32,
        minor: u16,
    },
    #[error("{which} LP metadata: header and tables take {size} bytes, more than the {max}-byte metadata slot")]
    TablesTooLarge { which: Which, size: u64, max: u64 },
    #[error("{which} LP metadata: {table} table ({count} entries of {entry_size} bytes at offset {offset}) does not fit in the {tables_size}-byte tables")]
    TableBounds {
        which: Which,
        table: &'static str,
        offset: u32,
        count: u32,
        entry_size: u32,
        tables_size: u32,
    },
    #[error("{which} LP metadata: {table} entries are {size} bytes, liblp's are {expected}")]
    TableEntrySize {
        which: Which,
        table: &'static str,
        size: u32,
        expected: u32,
    },
    #[error("{which} LP metadata tables: {len} bytes, header needs {need}")]
    TablesShort {
        which: Which,
        len: usize,
        need: usize,
    },
    #[error("{which} LP metadata tables: SHA-256 checksum does not match their contents")]
    TablesChecksum { which: Which },

    #[error("LP {table} entry {index}: bad name: {reason}")]
    Name {
        table: &'static str,
        index: usize,
        reason: &'static str,
    },
    #[error("LP {table} name {name:?} is used twice (entries {first} and {second})")]
    DuplicateName {
        table: &'static str,
        name: String,
        first: usize,
        second: usize,
    },
    #[error("LP partition {name:?}: attributes {attributes:#x} include bits not valid at version 10.{minor} (valid: {allowed:#x})")]
    PartitionAttributes {
        name: String,
        attributes: u32,
        minor: u16,
        allowed: u32,
    },
    #[error("LP partition {name:?}: extents {first}..{first}+{count} lie outside the {table_len}-entry extent table")]
    PartitionExtents {
        name: String,
        first: u32,
        count: u32,
        table_len: usize,
    },
    #[error("LP partition {name:?}: its extents add up to more than 2^64 bytes")]
    PartitionTooLarge { name: String },
    #[error("LP partition {name:?}: group index {group_index} is not among the {groups} groups")]
    PartitionGroup {
        name: String,
        group_index: u32,
        groups: usize,
    },
    #[error("LP extent {index}: target type {target_type} is neither LINEAR (0) nor ZERO (1)")]
    ExtentTargetType { index: usize, target_type: u32 },
    #[error("LP extent {index}: has no sectors")]
    ExtentEmpty { index: usize },
    #[error(
        "LP extent {index}: ZERO extent with non-zero target data {data} or source {source_index}"
    )]
    ExtentZeroFields {
        index: usize,
        data: u64,
        source_index: u32,
    },
    #[error("LP extent {index}: block device {device} is not among the {devices} block devices")]
    ExtentBlockDevice {
        index: usize,
        device: u32,
        devices: usize,
    },
    #[error("LP extent {index}: sectors {start}..{start}+{sectors} lie outside block device {device}'s logical area {first}..{end}")]
    ExtentOutsideDevice {
        index: usize,
        device: u32,
        start: u64,
        sectors: u64,
        first: u64,
        end: u64,
    },
    #[error("LP metadata has no block device (the first must be the super partition)")]
    NoSuperDevice,
    #[error("LP block device {index} ({name:?}): {reason}")]
    BlockDeviceLayout {
        index: usize,
        name: String,
        reason: String,
    },

    #[error("LP metadata slot {slot} does not exist: the geometry has {slot_count} slot(s)")]
    SlotOutOfRange { slot: u32, slot_count: u32 },
    #[error("LP metadata slot {slot}: no valid copy: primary: {primary}; backup: {backup}")]
    MetadataBothInvalid {
        slot: u32,
        primary: Box<LpError>,
        backup: Box<LpError>,
    },
    #[error("no logical partition {name:?} in the LP metadata")]
    PartitionNotFound { name: String },
    #[error("logical partition {name:?}: {len} bytes at offset {offset} lie past its end ({size} bytes)")]
    RangeOutsidePartition {
        name: String,
        offset: u64,
        len: u64,
        size: u64,
    },
    #[error("logical partition {name:?} lies on block device {device} ({device_name:?}); only the super device (0) can be read here")]
    OtherBlockDevice {
        name: String,
        device: u32,
        device_name: String,
    },

    #[error("LP builder: {0}")]
    Build(String),
    #[error("LP group {group:?} has {free} bytes free, partition {partition:?} needs {needed} more (maximum {maximum})")]
    GroupFull {
        group: String,
        partition: String,
        needed: u64,
        free: u64,
        maximum: u64,
    },
    #[error("not enough free space in super for partition {partition:?}: {needed} more bytes needed, {free} free")]
    NoSpace {
        partition: String,
        needed: u64,
        free: u64,
    },
    #[error("image for logical partition {partition:?} is {len} bytes, larger than the partition ({size} bytes)")]
    ImageTooLarge {
        partition: String,
        len: u64,
        size: u64,
    },
    #[error("image given for {partition:?}, which is not a logical partition in the metadata")]
    ImageWithoutPartition { partition: String },
    #[error("image for {partition:?} ended after {read} bytes, {len} were announced")]
    ImageShort {
        partition: String,
        read: u64,
        len: u64,
    },
}
