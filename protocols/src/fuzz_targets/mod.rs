//! The bodies of the cargo-fuzz targets in `protocols/fuzz/`, one function per target.
//!
//! Each fuzz target (`protocols/fuzz/fuzz_targets/NAME.rs`) is one line that hands the fuzzer's
//! bytes to the function of the same name here. The bodies live in the library, compiled only
//! for tests and fuzzing builds (`cfg(fuzzing)` is what cargo-fuzz sets), so that the normal
//! `cargo test` on stable replays every checked-in seed and crash through exactly the code the
//! fuzzer ran (see the tests at the bottom), and a change to a parser's API breaks the build
//! here rather than in a nightly-only package nobody builds.
//!
//! A body feeds its bytes to the public entry points a device or an image file reaches, and
//! asserts what must hold for any input: no panic (the fuzzer's own oracle), reads inside a
//! parsed structure succeed, encoders and decoders agree. A failed assertion is a crash like any
//! other.

use std::io::Cursor;
use std::time::Duration;

use crate::fastboot::{self, Response};
use crate::firehose::reader::{MessageReader, ReadError};
use crate::firehose::{self, package, StorageInfo};
use crate::gpt::Gpt;
use crate::sahara::identity;
use crate::sahara::memory_table::{self, TableFormat};
use crate::sahara::packet::{Header, Packet};
use crate::sparse::{self, ChunkKind, ChunkPlan, SparseIndex, SparseReader};
use crate::transport::{Framing, Transport, TransportError};

/// A target's body: the fuzzer's bytes in, a panic on anything that must not happen.
pub type Body = fn(&[u8]);

/// Every target: its name (the file under `protocols/fuzz/fuzz_targets/`) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("gpt", gpt),
    ("sparse", sparse),
    ("sahara_packet", sahara_packet),
    ("sahara_memory_table", sahara_memory_table),
    ("firehose_reader", firehose_reader),
    ("firehose_package", firehose_package),
    ("fastboot_response", fastboot_response),
    ("fastboot_command", fastboot_command),
    ("lp_metadata", lp_metadata),
];

/// A disk as a phone or an image file presents it: the first 8 bytes are the disk's size in
/// sectors (little-endian), the rest its first bytes; sectors past them read as zeros (erased
/// flash), so a small input can describe a large disk. Both sector sizes are tried.
///
/// With the size's top bit set, the primary header's two CRC32s are first made to match what
/// they cover: a fuzzer cannot forge a CRC by mutation, and the checks behind it (the header's
/// bounds, the entries) are where hostile tables do their harm.
pub fn gpt(data: &[u8]) {
    let Some((size, disk)) = data.split_first_chunk::<8>() else {
        return;
    };
    let size = u64::from_le_bytes(*size);
    let fix_crcs = size >> 63 == 1;
    let disk_sectors = size & !(1 << 63);
    for sector_size in [512u32, 4096] {
        let fixed;
        let disk = if fix_crcs {
            fixed = with_primary_crcs(disk, sector_size);
            &fixed[..]
        } else {
            disk
        };
        let read_at = |offset: u64, buf: &mut [u8]| {
            fill_from(disk, offset, buf);
            Ok(())
        };
        let Ok(table) = Gpt::read(read_at, sector_size, disk_sectors) else {
            continue;
        };
        // What callers do with a table read from a device: size and place partitions by label.
        for p in &table.partitions {
            assert!(p.first_lba >= table.first_usable_lba && p.last_lba <= table.last_usable_lba);
            let _ = (
                p.sectors(),
                p.size_bytes(sector_size),
                p.start_byte(sector_size),
            );
            assert_eq!(
                table.find(&p.name).map(|found| found.name.as_str()),
                Some(&*p.name)
            );
        }
    }
}

/// `buf` from `disk` at `offset`, zeros past its end.
fn fill_from(disk: &[u8], offset: u64, buf: &mut [u8]) {
    buf.fill(0);
    if let Some(have) = usize::try_from(offset).ok().and_then(|at| disk.get(at..)) {
        let n = have.len().min(buf.len());
        buf[..n].copy_from_slice(&have[..n]);
    }
}

/// `disk` with the header at LBA 1 carrying the CRC32 of its entry array (as read, zeros past
/// the input) and of itself.
fn with_primary_crcs(disk: &[u8], sector_size: u32) -> Vec<u8> {
    let ss = sector_size as usize;
    let mut disk = disk.to_vec();
    if disk.len() < 2 * ss {
        disk.resize(2 * ss, 0);
    }
    let field = |disk: &[u8], at: usize, len: usize| {
        let mut v = [0u8; 8];
        v[..len].copy_from_slice(&disk[ss + at..ss + at + len]);
        u64::from_le_bytes(v)
    };
    let header_size = (field(&disk, 12, 4) as usize).clamp(92, ss);
    let array_len = field(&disk, 80, 4) * field(&disk, 84, 4);
    if array_len <= crate::gpt::MAX_ENTRY_ARRAY_BYTES {
        let mut array = vec![0u8; array_len as usize];
        if let Some(offset) = field(&disk, 72, 8).checked_mul(u64::from(sector_size)) {
            fill_from(&disk, offset, &mut array);
        }
        let crc = crc32fast::hash(&array);
        disk[ss + 88..ss + 92].copy_from_slice(&crc.to_le_bytes());
    }
    disk[ss + 16..ss + 20].fill(0);
    let crc = crc32fast::hash(&disk[ss..ss + header_size]);
    disk[ss + 16..ss + 20].copy_from_slice(&crc.to_le_bytes());
    disk
}

/// A sparse image file: streamed chunk by chunk (CRC32 chunks checked), indexed for random
/// access and read at offsets spread over the expanded image, planned and split for fastboot
/// downloads. The streamed and indexed views of the same file must agree.
pub fn sparse(data: &[u8]) {
    let streamed = stream_sparse(data);
    let index = SparseIndex::build(Cursor::new(data));
    if streamed.is_ok() {
        assert!(
            index.is_ok(),
            "the streaming reader accepts a file the index refuses: {:?}",
            index.err()
        );
    }
    if let Ok(mut index) = index {
        let len = index.expanded_len();
        let mut rng = XorShift::new(data);
        let mut buf = vec![0u8; 4096];
        for _ in 0..16 {
            let offset = if len == 0 { 0 } else { rng.next() % len };
            let n = (rng.next() % 4097).min(len - offset) as usize;
            let got = index.read_at(offset, &mut buf[..n]);
            assert!(got.is_ok(), "in-range read {offset}+{n} of {len}: {got:?}");
            if let Ok(Some(image)) = &streamed {
                let at = offset as usize;
                assert_eq!(
                    &buf[..n],
                    &image[at..at + n],
                    "index and stream differ at {at}"
                );
            }
        }
        assert!(index.read_at(len, &mut [0u8; 1]).is_err());
    }
    if let Ok(plan) = ChunkPlan::from_sparse(&mut Cursor::new(data)) {
        split_and_reread(&plan, data);
    }
}

/// Expanded images up to this size are kept in memory to compare with the index.
const MAX_COMPARED_IMAGE: u64 = 1 << 20;

/// The whole expanded image when small enough (`Ok(None)` when valid but larger).
fn stream_sparse(data: &[u8]) -> Result<Option<Vec<u8>>, sparse::SparseError> {
    let mut reader = SparseReader::new(data)?;
    let mut image = (reader.expanded_len() <= MAX_COMPARED_IMAGE).then(Vec::new);
    let block_size = reader.header().blk_sz as usize;
    let mut buf = [0u8; 4096];
    while let Some(chunk) = reader.next_chunk()? {
        let covered = chunk.kind.blocks() as usize * block_size;
        match chunk.kind {
            ChunkKind::Raw { .. } => loop {
                let n = reader.read_raw(&mut buf)?;
                if n == 0 {
                    break;
                }
                if let Some(image) = image.as_mut() {
                    image.extend_from_slice(&buf[..n]);
                }
            },
            ChunkKind::Fill { value, .. } => {
                if let Some(image) = image.as_mut() {
                    image.extend(value.to_le_bytes().iter().cycle().take(covered));
                }
            }
            ChunkKind::DontCare { .. } => {
                if let Some(image) = image.as_mut() {
                    image.resize(image.len() + covered, 0);
                }
            }
            ChunkKind::Crc32 { .. } => {}
        }
    }
    Ok(image)
}

/// Pieces cut for a download limit must each be a valid sparse image on their own.
fn split_and_reread(plan: &ChunkPlan, source: &[u8]) {
    let min = sparse::min_piece_bytes(plan.block_size());
    if min > MAX_COMPARED_IMAGE {
        return;
    }
    let limit = min + (source.len() as u64 * 13) % (64 * 1024);
    let Ok(pieces) = sparse::split(plan, limit) else {
        return;
    };
    for piece in pieces {
        assert!(piece.encoded_len() <= limit, "piece over the limit");
        let mut out = Vec::new();
        if piece.write_to(&mut Cursor::new(source), &mut out).is_ok() {
            assert_eq!(out.len() as u64, piece.encoded_len());
            let reread = stream_sparse(&out);
            assert!(
                reread.is_ok(),
                "a written piece does not read back: {reread:?}"
            );
        }
    }
}

/// Bytes a boot ROM sends: one Sahara packet, and the same bytes as each command-mode answer.
/// A decoded packet must encode back to a packet that decodes to itself.
pub fn sahara_packet(data: &[u8]) {
    let _ = Header::parse(data);
    if let Ok(packet) = Packet::decode(data) {
        let bytes = packet.encode();
        assert_eq!(bytes.len(), data.len(), "{} changed length", packet.name());
        assert_eq!(Packet::decode(&bytes), Ok(packet));
    }
    let _ = identity::decode_serial(data);
    let _ = identity::decode_hw_id(data);
    let _ = identity::decode_chip_id_v3(data);
    let _ = identity::decode_sbl_version(data);
    let digest = identity::normalize_pk_hash(data);
    assert!(digest.len() <= data.len());
}

/// A memory-debug table; the first byte picks the 32- or 64-bit layout. Filenames a device
/// offers are checked before they could name a host file.
pub fn sahara_memory_table(data: &[u8]) {
    let Some((&layout, table)) = data.split_first() else {
        return;
    };
    let format = if layout & 1 == 0 {
        TableFormat::Bits32
    } else {
        TableFormat::Bits64
    };
    if let Ok(regions) = memory_table::parse_table(table, format) {
        for region in &regions {
            if let Ok(name) = region.safe_filename() {
                assert!(!name.contains('/') && !name.starts_with('.') && !name.is_empty());
            }
        }
    }
}

/// A programmer's output over a stream link: the first byte is the size of each read the link
/// returns (0: everything in one read), the rest the bytes. Messages are framed and parsed
/// until the link runs dry or framing fails; raw data after a `rawmode` ACK is read; log lines
/// are searched for digests and storage geometry as the client does.
pub fn firehose_reader(data: &[u8]) {
    let Some((&read_len, stream)) = data.split_first() else {
        return;
    };
    let mut link = ScriptedLink {
        rest: stream,
        read_len: usize::from(read_len),
    };
    let mut reader = MessageReader::new(1024);
    let mut logs = Vec::new();
    for _ in 0..=stream.len() {
        match reader.next_message(&mut link, Duration::from_secs(1)) {
            Ok(message) => {
                for element in &message {
                    if let Some(value) = element.attr("value") {
                        if element.name == "log" {
                            let _ = firehose::find_sha256_hex(value);
                            logs.push(value.to_owned());
                        }
                    }
                    if element.attr("rawmode") == Some("true") {
                        let mut raw = [0u8; 16];
                        let _ = reader.read_raw_exact(&mut link, &mut raw, Duration::from_secs(1));
                    }
                }
            }
            // A malformed message is consumed; the next one can still be read.
            Err(ReadError::Xml(_)) => {}
            Err(_) => break,
        }
    }
    let info = StorageInfo::from_logs(&logs);
    let _ = info.size_bytes();
}

/// Link that hands out a fixed byte string in reads of a fixed size, then reports the device
/// gone (never a timeout, so a run takes no wall-clock time).
struct ScriptedLink<'a> {
    rest: &'a [u8],
    read_len: usize,
}

impl Transport for ScriptedLink<'_> {
    fn write(&mut self, _data: &[u8], _timeout: Duration) -> Result<(), TransportError> {
        Ok(())
    }

    fn read_packet(&mut self, buf: &mut [u8], _timeout: Duration) -> Result<usize, TransportError> {
        if self.rest.is_empty() {
            return Err(TransportError::Disconnected);
        }
        let want = if self.read_len == 0 {
            self.rest.len()
        } else {
            self.read_len
        };
        let n = want.min(buf.len()).min(self.rest.len());
        let (now, later) = self.rest.split_at(n);
        buf[..n].copy_from_slice(now);
        self.rest = later;
        Ok(n)
    }

    fn framing(&self) -> Framing {
        Framing::Stream
    }

    fn describe(&self) -> String {
        "scripted".to_owned()
    }
}

/// A rawprogram or patch XML file (which one follows from its root element) in a package
/// directory that holds a few images: raw ones, a valid sparse image and one whose header
/// declares an expanded size near 2^64 bytes. Loaded with the sparse probe the flasher uses.
pub fn firehose_package(data: &[u8]) {
    let dir = package_fixture();
    let file = dir.join(format!("{:?}.xml", std::thread::current().id()));
    if std::fs::write(&file, data).is_err() {
        return;
    }
    let loaded = package::load(std::slice::from_ref(&file), &firehose::flash::probe_sparse);
    let _ = std::fs::remove_file(&file);
    if let Ok(package) = loaded {
        let _ = (package.program_bytes(), package.bootable_lun());
        for program in package.programs() {
            assert!(
                program.path.starts_with(dir),
                "{} escapes",
                program.path.display()
            );
            let _ = program.numeric_start();
        }
    }
}

/// Files every package target run can reference (created once per process).
fn package_fixture() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("flashgate-fuzz-package")
            .tempdir()
            .expect("a temporary directory for the package fixture");
        let mut sparse_image = sparse::SparseHeader::new(4096, 2, 1).encode().to_vec();
        sparse_image.extend_from_slice(&[0xc2, 0xca, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 1, 2, 3, 4]);
        let mut huge = sparse::SparseHeader::new(0xffff_fffc, u32::MAX, 1)
            .encode()
            .to_vec();
        huge.extend_from_slice(&[0xc3, 0xca, 0, 0, 0xff, 0xff, 0xff, 0xff, 12, 0, 0, 0]);
        for (name, bytes) in [
            ("boot.img", vec![1u8; 12288]),
            ("vbmeta.img", vec![2u8; 256]),
            ("gpt_both0.bin", vec![3u8; 11 * 4096]),
            ("system.img", sparse_image),
            ("huge.img", huge),
        ] {
            std::fs::write(dir.path().join(name), bytes).expect("writing the package fixture");
        }
        dir
    })
    .path()
}

/// One fastboot response packet, and the text helpers that read `getvar` answers. A DATA size
/// must survive its own encoding.
pub fn fastboot_response(data: &[u8]) {
    let parsed = Response::parse(data);
    if let Ok(Response::Data(size)) = parsed {
        let again = Response::parse(format!("DATA{size:08x}").as_bytes());
        assert_eq!(again, Ok(Response::Data(size)));
    }
    if let Ok(Response::Okay(text) | Response::Info(text) | Response::Text(text)) = parsed {
        let _ = fastboot::parse_size(&text);
        let _ = fastboot::vars::parse_slot(&text);
        let (name, value) = fastboot::client::split_variable_line(&text);
        assert!(name.len() + value.len() <= text.len());
    }
}

/// A command packet as the simulated phone reads it from a host. What it accepts must encode
/// back to a packet it reads as the same command: the host and the simulator share this codec,
/// so a command that does not survive the trip would be read differently from what was meant.
pub fn fastboot_command(data: &[u8]) {
    let Ok(command) = fastboot::Command::parse(data) else {
        return;
    };
    if let Ok(packet) = command.encode(fastboot::DEFAULT_MAX_COMMAND_LEN) {
        assert_eq!(fastboot::Command::parse(&packet).as_ref(), Ok(&command));
    }
}

/// A super partition or a `super_empty.img` as a phone reads it back or an image file holds it:
/// every LP metadata read path (geometry, each slot's copies, lookups, extent mapping,
/// re-encoding) through [`crate::lp::exercise_image`].
pub fn lp_metadata(data: &[u8]) {
    crate::lp::exercise_image(data);
}

/// Deterministic offsets from the input itself, so a crash replays exactly.
struct XorShift(u64);

impl XorShift {
    fn new(seed: &[u8]) -> Self {
        XorShift(u64::from(crc32fast::hash(seed)) | 1 << 32)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[cfg(test)]
mod tests;
