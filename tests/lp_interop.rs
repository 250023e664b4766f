//! The LP metadata codec against readings of the format that are not ours:
//! - Debian's `fastboot` 29.0.6 carries AOSP's liblp: `fastboot wipe-super super_empty.img`
//!   parses our `super_empty.img` with `ReadFromImageFile`, then *writes* a whole super image
//!   from it with liblp's `ImageBuilder` and flashes it; our reader must read what liblp wrote.
//! - PyPI `liblp` 1.0.2 (a Python port of liblp's reader and `lpunpack`; it cannot write)
//!   lists the tables of our `super.img` and `super_empty.img` and extracts our partitions.
//! - A Python writer made here from `metadata_format.h` alone (`struct` + `hashlib`), laying
//!   the tables out in another order than liblp does, with a damaged primary slot: our
//!   reader must list what it says it wrote.

use std::fs::File;
use std::io::BufWriter;
use std::net::TcpListener;
use std::ops::ControlFlow;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flashgate_scenarios::pseudo_random;
use protocols::external_tool;
use protocols::lp::{
    self, attr, header_flag, read_geometry, read_metadata, DeviceSpec, ExtentTarget, Metadata,
    MetadataBuilder, PartitionImage, DEFAULT_GROUP,
};
use protocols::sim::{FastbootConfig, FastbootDevice, Phone};
use protocols::transport::tcp::TcpLink;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PYTHON_LIBLP: &str = "liblp==1.0.2";

/// Fails the test unless `python3` can import PyPI's liblp 1.0.2 (`.ci/run` installs it).
pub(crate) fn require_python_liblp() {
    let found = external_tool::command("python3")
        .args(["-c", "import liblp; assert liblp.__version__ == '1.0.2'"])
        .output()
        .expect("running python3");
    if !found.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&found.stderr).trim());
        external_tool::missing(
            "the Python module `liblp` 1.0.2 for python3",
            &format!("PyPI `{PYTHON_LIBLP}`: `python3 -m pip install --user {PYTHON_LIBLP}`"),
        );
    }
}

fn run(command: &mut Command) -> Output {
    let out = command.output().expect("running a tool");
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Our metadata in the shape the Python script prints (raw table fields).
pub(crate) fn tables_json(m: &Metadata) -> Value {
    let extents: Vec<Value> = m
        .extents
        .iter()
        .map(|e| match e.target {
            ExtentTarget::Linear {
                block_device,
                sector,
            } => json!([e.num_sectors, 0, sector, block_device]),
            ExtentTarget::Zero => json!([e.num_sectors, 1, 0, 0]),
        })
        .collect();
    json!({
        "geometry": [m.geometry.metadata_max_size, m.geometry.metadata_slot_count,
                     m.geometry.logical_block_size],
        "version": [10, m.minor_version, if m.minor_version >= 2 { 256 } else { 128 },
                    m.header_flags],
        "partitions": m.partitions.iter().map(|p| json!([p.name, p.attributes,
            p.first_extent_index, p.num_extents, p.group_index])).collect::<Vec<_>>(),
        "extents": extents,
        "groups": m.groups.iter().map(|g| json!([g.name, g.flags, g.maximum_size]))
            .collect::<Vec<_>>(),
        "block_devices": m.block_devices.iter().map(|d| json!([d.first_logical_sector,
            d.alignment, d.alignment_offset, d.size, d.partition_name, d.flags]))
            .collect::<Vec<_>>(),
    })
}

/// Lists a super image's slot (or a `super_empty.img`) with the Python port's reader.
const LIST_WITH_PYTHON_LIBLP: &str = r#"
import json, sys
from liblp.reader import ReadMetadata, ParseGeometry, ParseMetadata
path, layout, slot = sys.argv[1], sys.argv[2], int(sys.argv[3])
if layout == "super":
    m = ReadMetadata(path, slot)
else:
    with open(path, "rb") as f:
        m = ParseMetadata(ParseGeometry(f.read(4096)), f)
name = lambda b: b.decode("ascii")
h = m.header
print(json.dumps({
    "geometry": [m.geometry.metadata_max_size, m.geometry.metadata_slot_count,
                 m.geometry.logical_block_size],
    "version": [h.major_version, h.minor_version, h.header_size, h.flags],
    "partitions": [[name(p.name), p.attributes, p.first_extent_index, p.num_extents,
                    p.group_index] for p in m.partitions],
    "extents": [[e.num_sectors, e.target_type, e.target_data, e.target_source]
                for e in m.extents],
    "groups": [[name(g.name), g.flags, g.maximum_size] for g in m.groups],
    "block_devices": [[d.first_logical_sector, d.alignment, d.alignment_offset, d.size,
                       name(d.partition_name), d.flags] for d in m.block_devices],
}))
"#;

pub(crate) fn python_listing(path: &Path, layout: &str, slot: u32) -> Value {
    let out = run(external_tool::command("python3")
        .args(["-c", LIST_WITH_PYTHON_LIBLP])
        .arg(path)
        .args([layout, &slot.to_string()]));
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// A 10.2 header with flags, groups with maxima, a readonly partition, an empty one, an
/// UPDATED one and a fragmented one.
fn rich_metadata() -> Metadata {
    let mut b = MetadataBuilder::new(DeviceSpec::super_partition(32 << 20), 65536, 2).unwrap();
    b.set_header_flags(header_flag::VIRTUAL_AB_DEVICE);
    b.add_group("main_a", 24 << 20).unwrap();
    b.add_group("main_b", 24 << 20).unwrap();
    for (name, group, attributes) in [
        ("system_a", "main_a", attr::READONLY),
        ("system_b", "main_b", attr::READONLY),
        ("vendor_a", "main_a", attr::READONLY),
        ("product_a", DEFAULT_GROUP, attr::UPDATED),
    ] {
        b.add_partition(name, group, attributes).unwrap();
    }
    b.resize_partition("system_a", (6 << 20) + 12345).unwrap();
    for round in 1..=3 {
        b.resize_partition("vendor_a", round << 20).unwrap();
        b.resize_partition("product_a", (round * 512) << 10)
            .unwrap();
    }
    let m = b.export().unwrap();
    assert!(m.find("vendor_a").unwrap().num_extents > 1, "fragmented");
    m
}

#[test]
fn python_liblp_lists_and_unpacks_our_super_images() {
    require_python_liblp();
    let dir = tempfile::tempdir().unwrap();
    let m = rich_metadata();
    let system = pseudo_random(1, (6 << 20) + 1000);
    let vendor = pseudo_random(2, (3 << 20) - 4096);
    let path = dir.path().join("super.img");
    let mut out = BufWriter::new(File::create(&path).unwrap());
    lp::write_super_image(
        &m,
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
    out.into_inner().unwrap().sync_all().unwrap();
    for slot in [0, 1] {
        assert_eq!(python_listing(&path, "super", slot), tables_json(&m));
    }
    let empty = dir.path().join("super_empty.img");
    std::fs::write(&empty, lp::super_empty_image(&m).unwrap()).unwrap();
    assert_eq!(python_listing(&empty, "empty", 0), tables_json(&m));

    // Its lpunpack extracts each partition whole: our image, then zeros to the partition size.
    let unpacked = dir.path().join("out");
    std::fs::create_dir(&unpacked).unwrap();
    run(external_tool::command("python3")
        .args(["-m", "liblp.partition_tools.lpunpack", "-S", "1", "-o"])
        .arg(&unpacked)
        .arg(&path));
    for (name, data) in [
        ("system_a", &system[..]),
        ("vendor_a", &vendor[..]),
        ("product_a", &[]),
    ] {
        let got = std::fs::read(unpacked.join(format!("{name}.img"))).unwrap();
        let size = m.partition_size(m.find(name).unwrap()) as usize;
        assert_eq!(got.len(), size, "{name}");
        assert!(got[..data.len()] == *data, "{name} data differs");
        assert!(got[data.len()..].iter().all(|&b| b == 0), "{name} tail");
    }
    assert!(std::fs::read(unpacked.join("system_b.img"))
        .unwrap()
        .is_empty());
}

/// Writes a super image from `metadata_format.h` alone and prints what it wrote.
const SPEC_WRITER: &str = r#"
import hashlib, json, struct, sys
SECTOR, MAX, SLOTS, SIZE = 512, 8192, 2, 4 << 20
def name(s): return s.encode().ljust(36, b"\0")
def extent(n, kind, data, src): return struct.pack("<QIQI", n, kind, data, src)
groups = name("default") + struct.pack("<IQ", 0, 0) + name("main") + struct.pack("<IQ", 0, 2 << 20)
devices = struct.pack("<QIIQ", 2048, 1 << 20, 0, SIZE) + name("super") + struct.pack("<I", 0)
# (name, attributes, first extent, extent count, group); extents in 512-byte sectors.
parts = [("system_a", 1, 0, 2, 1), ("system_b", 4, 2, 1, 1), ("zeroes", 0, 3, 1, 0),
         ("empty", 0, 4, 0, 0)]
extents = [(256, 0, 2048, 0), (128, 0, 4096, 0), (64, 0, 3072, 0), (16, 1, 0, 0)]
def metadata(parts):
    p = b"".join(name(n) + struct.pack("<IIII", a, f, c, g) for n, a, f, c, g in parts)
    e = b"".join(extent(*x) for x in extents)
    # Tables in another order than liblp writes them: groups, devices, extents, partitions.
    tables = groups + devices + e + p
    desc = [(len(groups) + len(devices) + len(e), len(parts), 52),
            (len(groups) + len(devices), len(extents), 24), (0, 2, 48), (len(groups), 1, 64)]
    h = struct.pack("<IHHI32sI32s", 0x414C5030, 10, 2, 256, b"\0" * 32, len(tables),
                    hashlib.sha256(tables).digest())
    h += b"".join(struct.pack("<III", *d) for d in desc) + struct.pack("<I", 1) + b"\0" * 124
    h = h[:12] + hashlib.sha256(h).digest() + h[44:]
    return h + tables
geometry = struct.pack("<II32sIII", 0x616C4467, 52, b"\0" * 32, MAX, SLOTS, 4096)
geometry = geometry[:8] + hashlib.sha256(geometry).digest() + geometry[40:]
image = bytearray(SIZE)
for at in (4096, 8192):
    image[at:at + 52] = geometry
slot0, slot1 = metadata(parts), metadata(parts[:3])
base = 4096 + 2 * 4096
for at, blob in ((base, slot0), (base + MAX, slot1), (base + 2 * MAX, slot0),
                 (base + 3 * MAX, slot1)):
    image[at:at + len(blob)] = blob
image[base + MAX + 300] ^= 0xFF  # slot 1's primary copy is damaged: its backup must be read
system = bytes((i * 7 + 3) % 256 for i in range(384 * SECTOR))
image[2048 * SECTOR:2304 * SECTOR] = system[:256 * SECTOR]
image[4096 * SECTOR:4224 * SECTOR] = system[256 * SECTOR:]
open(sys.argv[1], "wb").write(image)
def listing(parts):
    return [[n, SECTOR * sum(extents[i][0] for i in range(f, f + c)), ["default", "main"][g], a,
             [list(extents[i]) for i in range(f, f + c)]] for n, a, f, c, g in parts]
print(json.dumps({"slot0": listing(parts), "slot1": listing(parts[:3]),
                  "system_a_sha256": hashlib.sha256(system).hexdigest()}))
"#;

fn our_listing(m: &Metadata) -> Value {
    m.summaries()
        .iter()
        .map(|s| {
            let p = m.find(&s.name).unwrap();
            let extents: Vec<Value> = m
                .partition_extents(p)
                .iter()
                .map(|e| match e.target {
                    ExtentTarget::Linear {
                        block_device,
                        sector,
                    } => json!([e.num_sectors, 0, sector, block_device]),
                    ExtentTarget::Zero => json!([e.num_sectors, 1, 0, 0]),
                })
                .collect();
            json!([s.name, s.size, s.group, s.attributes, extents])
        })
        .collect()
}

#[test]
fn our_reader_lists_an_image_written_from_the_spec_in_python() {
    external_tool::require("python3");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("super.img");
    let out = run(external_tool::command("python3")
        .args(["-c", SPEC_WRITER])
        .arg(&path));
    let said: Value = serde_json::from_slice(&out.stdout).unwrap();
    let image = std::fs::read(&path).unwrap();
    let mut read_at = |offset: u64, buf: &mut [u8]| -> std::io::Result<()> {
        let start = offset as usize;
        buf.copy_from_slice(&image[start..start + buf.len()]);
        Ok(())
    };
    let g = read_geometry(&mut read_at).unwrap();
    let slot0 = read_metadata(&mut read_at, &g, 0).unwrap();
    let slot1 = read_metadata(&mut read_at, &g, 1).unwrap();
    assert_eq!(our_listing(&slot0), said["slot0"]);
    assert_eq!(our_listing(&slot1), said["slot1"]);
    assert_eq!((slot0.minor_version, slot0.header_flags), (2, 1));
    let system = slot0.find("system_a").unwrap();
    let mut data = vec![0u8; 384 * 512];
    slot0
        .read_partition_at(system, &mut read_at, 0, &mut data)
        .unwrap();
    assert_eq!(hex::encode(Sha256::digest(&data)), said["system_a_sha256"]);
}

/// A simulated phone with a physical `super`, served over fastboot TCP until stopped.
struct PhoneOnTcp {
    phone: Phone,
    addr: String,
    stop: Arc<AtomicBool>,
    served: Option<std::thread::JoinHandle<()>>,
}

impl PhoneOnTcp {
    fn start(super_size: u64) -> PhoneOnTcp {
        let phone = Phone::builder()
            .slotted_partition("boot", 1 << 20)
            .partition("super", super_size)
            .build()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let mut device = FastbootDevice::new(phone.clone(), FastbootConfig::default());
        let stopping = stop.clone();
        let served = std::thread::spawn(move || {
            device.serve_tcp(&listener, |_| {
                if stopping.load(Ordering::SeqCst) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
        });
        PhoneOnTcp {
            phone,
            addr,
            stop,
            served: Some(served),
        }
    }
}

impl Drop for PhoneOnTcp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // One last session lets the serving loop see the flag.
        drop(TcpLink::connect(&self.addr, Duration::from_secs(5)));
        if let Some(served) = self.served.take() {
            let _ = served.join();
        }
    }
}

#[test]
fn fastboot_liblp_parses_our_super_empty_and_writes_a_super_we_read() {
    let super_size = 24 << 20;
    let sim = PhoneOnTcp::start(super_size);
    let mut b = MetadataBuilder::new(DeviceSpec::super_partition(super_size), 65536, 2).unwrap();
    b.add_group("main", 16 << 20).unwrap();
    b.add_partition("system_a", "main", attr::READONLY).unwrap();
    b.resize_partition("system_a", 5 << 20).unwrap();
    b.add_partition("vendor_a", "main", attr::READONLY).unwrap();
    b.resize_partition("vendor_a", (2 << 20) + 4096).unwrap();
    b.add_partition("system_b", "main", attr::READONLY).unwrap();
    let m = b.export().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("super_empty.img");
    std::fs::write(&empty, lp::super_empty_image(&m).unwrap()).unwrap();
    let out = external_tool::command("fastboot")
        .arg("-s")
        .arg(format!("tcp:{}", sim.addr))
        .arg("wipe-super")
        .arg(&empty)
        .output()
        .expect("running fastboot");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "fastboot wipe-super: {said}");
    // The client flashed the image its liblp made (sparse, as `WriteToImageFile` exports it).
    assert!(said.contains("Writing 'super'"), "{said}");
    let mut read_at = |offset: u64, buf: &mut [u8]| -> std::io::Result<()> {
        sim.phone
            .read_partition("super", offset, buf)
            .map_err(std::io::Error::other)
    };
    let g = read_geometry(&mut read_at).unwrap();
    assert_eq!(g, m.geometry);
    for slot in [0, 1] {
        assert_eq!(
            read_metadata(&mut read_at, &g, slot).unwrap(),
            m,
            "slot {slot}"
        );
    }
    // liblp wrote nothing else: the partitions' areas read as zeros.
    let system = m.find("system_a").unwrap();
    let mut data = vec![0xffu8; 4096];
    m.read_partition_at(system, &mut read_at, 0, &mut data)
        .unwrap();
    assert!(data.iter().all(|&b| b == 0));
}
