//! The finder over images made by the real tools (`mke2fs -d`, `mkfs.erofs`) packed into a
//! `super.img` by our LP writer, as a factory build makes them: each layer's answer and each
//! layer's refusal.

use std::fs::{self, File};
use std::path::PathBuf;

use protocols::external_tool;
use protocols::lp::{self, attr, DeviceSpec, MetadataBuilder, PartitionImage};

use super::*;
use crate::read_at::CountingReader;

const CLIENT: &str = "/system/priv-app/ActivationClient/ActivationClient.apk";
const MIB: u64 = 1 << 20;

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn run(tool: &str, args: &[&str]) {
    let out = external_tool::command(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running `{tool}`: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Fixture {
    dir: tempfile::TempDir,
    client: Vec<u8>,
}

impl Fixture {
    /// A `system` tree with the client and some neighbours; an erofs (lz4hc) and an ext4
    /// image of it; a `super.img` with `system_a` (erofs), `vendor_a` (ext4) and an empty
    /// `system_b`, `vendor_b`.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        let client = noise(1, 300_001);
        let put = |path: &str, bytes: &[u8]| {
            let host = tree.join(path.trim_start_matches('/'));
            fs::create_dir_all(host.parent().unwrap()).unwrap();
            fs::write(host, bytes).unwrap();
        };
        put(CLIENT, &client);
        for app in 0..20u64 {
            put(
                &format!("/system/app/App{app}/App{app}.apk"),
                &noise(10 + app, 3000 + app as usize * 1000),
            );
        }
        put("/system/build.prop", b"ro.product.region=00WW\n");
        put("/system/filler.bin", &noise(99, 2 << 20));
        std::os::unix::fs::symlink("build.prop", tree.join("system/link")).unwrap();
        let p = |name: &str| dir.path().join(name).display().to_string();
        let tree_arg = tree.display().to_string();
        run(
            "mkfs.erofs",
            &["--quiet", "-T0", "-zlz4hc", &p("system.erofs"), &tree_arg],
        );
        run(
            "mke2fs",
            &[
                "-q",
                "-F",
                "-t",
                "ext4",
                "-b",
                "4096",
                "-d",
                &tree_arg,
                &p("vendor.ext4"),
                "16M",
            ],
        );
        let fixture = Fixture { dir, client };
        fixture.pack_super("super.img", "system.erofs");
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn pack_super(&self, name: &str, system_image: &str) {
        let system = self.path(system_image);
        let vendor = self.path("vendor.ext4");
        let system_len = fs::metadata(&system).unwrap().len();
        let vendor_len = fs::metadata(&vendor).unwrap().len();
        let mut b = MetadataBuilder::new(DeviceSpec::super_partition(64 * MIB), 65536, 3).unwrap();
        for slot in ["a", "b"] {
            let group = format!("main_{slot}");
            b.add_group(&group, 30 * MIB).unwrap();
            for part in ["system", "vendor"] {
                b.add_partition(&format!("{part}_{slot}"), &group, attr::READONLY)
                    .unwrap();
            }
        }
        b.resize_partition("system_a", system_len).unwrap();
        b.resize_partition("vendor_a", vendor_len).unwrap();
        let metadata = b.export().unwrap();
        let mut out = File::create(self.path(name)).unwrap();
        lp::write_super_image(
            &metadata,
            &mut [
                PartitionImage {
                    partition: "system_a",
                    len: system_len,
                    reader: &mut File::open(&system).unwrap(),
                },
                PartitionImage {
                    partition: "vendor_a",
                    len: vendor_len,
                    reader: &mut File::open(&vendor).unwrap(),
                },
            ],
            &mut out,
        )
        .unwrap();
    }

    fn open(&self, name: &str) -> ImageFileSource {
        ImageFileSource::open(&self.path(name)).unwrap()
    }

    fn client_sha256(&self) -> Sha256Digest {
        Sha256Digest::of_bytes(&self.client)
    }
}

#[test]
fn the_client_is_found_in_a_plain_filesystem_of_either_kind() {
    let f = Fixture::new();
    for (image, kind) in [
        ("system.erofs", FsKind::Erofs),
        ("vendor.ext4", FsKind::Ext4),
    ] {
        let (_, found) = Finder::whole_image().hash_file(f.open(image), CLIENT, 64 * MIB);
        let found = found.unwrap();
        assert_eq!(found.sha256, f.client_sha256(), "{image}");
        assert_eq!(found.fs, kind);
        assert_eq!(found.size, f.client.len() as u64);
        assert_eq!(found.logical_partition, None);
        let (_, kind_found) = identify(f.open(image), None);
        assert_eq!(kind_found.unwrap(), ImageKind::Filesystem(kind));
    }
}

#[test]
fn the_client_is_found_in_a_logical_partition_by_name_with_or_without_suffix() {
    let f = Fixture::new();
    for (name, fs_kind, found_name) in [
        ("system", FsKind::Erofs, "system_a"),
        ("system_a", FsKind::Erofs, "system_a"),
        ("vendor", FsKind::Ext4, "vendor_a"),
    ] {
        let finder = Finder::in_logical_partition(name, 0);
        let mut streamed = Vec::new();
        let (_, found) = finder.read_file(f.open("super.img"), CLIENT, 64 * MIB, &mut streamed);
        let found = found.unwrap();
        assert_eq!(found.sha256, f.client_sha256());
        assert_eq!(streamed, f.client);
        assert_eq!(found.fs, fs_kind);
        assert_eq!(found.logical_partition.as_deref(), Some(found_name));
        let (_, listing) = finder.list_dir(f.open("super.img"), "/system");
        let listing = listing.unwrap();
        assert_eq!(listing.fs, fs_kind);
        let names: Vec<_> = listing.entries.iter().map(|e| e.name_lossy()).collect();
        for expected in ["app", "priv-app", "build.prop", "filler.bin", "link"] {
            assert!(names.iter().any(|n| n == expected), "{names:?}");
        }
        let link = listing.entries.iter().find(|e| e.name == b"link").unwrap();
        assert_eq!(link.kind, EntryKind::Symlink);
    }
    // Slot b's system is empty: nothing to read, and said so.
    let (_, empty) =
        Finder::in_logical_partition("system", 1).hash_file(f.open("super.img"), CLIENT, MIB);
    match empty {
        Err(e @ FindError::NotAFilesystem { .. }) => {
            assert_eq!(e.layer(), Layer::Filesystem);
            let text = e.to_string();
            assert!(text.contains("logical partition system_b"), "{text}");
            assert!(text.contains("empty (0 bytes)"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_layer_refuses_in_its_own_words() {
    let f = Fixture::new();
    let hash = |finder: Finder, image: &str, path: &str| {
        let (_, result) = finder.hash_file(f.open(image), path, 64 * MIB);
        result.unwrap_err()
    };

    let e = hash(
        Finder::in_logical_partition("system", 0),
        "vendor.ext4",
        CLIENT,
    );
    assert!(matches!(e, FindError::NotSuper { .. }), "{e:?}");
    assert_eq!(e.layer(), Layer::Super);

    let e = hash(Finder::in_logical_partition("odm", 0), "super.img", CLIENT);
    match &e {
        FindError::NoSuchPartition {
            name, available, ..
        } => {
            assert_eq!(name, "odm");
            assert_eq!(available, &["system_a", "vendor_a", "system_b", "vendor_b"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("system_a, vendor_a"), "{e}");

    let e = hash(Finder::whole_image(), "super.img", CLIENT);
    assert!(matches!(e, FindError::PartitionNeeded { .. }), "{e:?}");
    assert!(e.to_string().contains("this is a super image"), "{e}");

    let e = hash(Finder::whole_image(), "tree/system/build.prop", "/x");
    assert!(matches!(e, FindError::NotAFilesystem { .. }), "{e:?}");
    assert!(e.to_string().contains("shorter than the 2048 bytes"), "{e}");

    let in_system = || Finder::in_logical_partition("system", 0);
    let e = hash(in_system(), "super.img", "/system/priv-app/Other.apk");
    assert!(matches!(e, FindError::NotFound { .. }) && e.is_absent_file());
    assert_eq!(e.layer(), Layer::Path);
    assert_eq!(
        e.to_string(),
        "/system/priv-app/Other.apk is not in the erofs filesystem in logical partition system_a"
    );
    let e = hash(in_system(), "super.img", "/system/app");
    assert!(matches!(e, FindError::NotAFile { .. }) && e.is_absent_file());
    let e = hash(in_system(), "super.img", "system/build.prop");
    assert!(matches!(e, FindError::InvalidPath { .. }), "{e:?}");
    let e = hash(Finder::whole_image(), "vendor.ext4", "/system/link");
    assert!(matches!(e, FindError::Symlink { .. }) && e.is_absent_file());
    let (_, too_large) = in_system().hash_file(f.open("super.img"), CLIENT, 1000);
    assert!(matches!(
        too_large,
        Err(FindError::TooLarge { limit: 1000, .. })
    ));

    let e = ImageFileSource::open(&f.path("missing.img")).err().unwrap();
    assert_eq!(e.layer(), Layer::Source);
}

#[test]
fn corrupt_metadata_in_both_copies_is_the_super_layers_refusal() {
    let f = Fixture::new();
    let mut image = fs::read(f.path("super.img")).unwrap();
    // Slot 0's primary and backup copies: a byte of each header's tables checksum region.
    let geometry = {
        let mut read = |offset: u64, buf: &mut [u8]| image.read_exact_at(offset, buf);
        lp::read_geometry(&mut read).unwrap()
    };
    for offset in [
        lp::primary_metadata_offset(&geometry, 0),
        lp::backup_metadata_offset(&geometry, 0),
    ] {
        image[offset as usize + 300] ^= 0xFF;
    }
    let (_, result) = Finder::in_logical_partition("system", 0).hash_file(image, CLIENT, MIB);
    let e = result.unwrap_err();
    assert!(matches!(e, FindError::Super(_)), "{e:?}");
    assert!(e
        .to_string()
        .starts_with("the super image's LP metadata is refused"));
}

#[test]
fn a_filesystem_larger_than_its_partition_never_reads_past_it() {
    let f = Fixture::new();
    // An ext4 filesystem of 16 MiB cut to its first 4 MiB inside super: the client's blocks
    // lie beyond the cut.
    let cut = f.path("vendor.cut");
    let vendor = fs::read(f.path("vendor.ext4")).unwrap();
    fs::write(&cut, &vendor[..4 << 20]).unwrap();
    let cut_len = 4 * MIB;
    let mut b = MetadataBuilder::new(DeviceSpec::super_partition(32 * MIB), 65536, 2).unwrap();
    b.add_partition("vendor_a", lp::DEFAULT_GROUP, 0).unwrap();
    b.add_partition("odm_a", lp::DEFAULT_GROUP, 0).unwrap();
    b.resize_partition("vendor_a", cut_len).unwrap();
    b.resize_partition("odm_a", 8 * MIB).unwrap();
    let metadata = b.export().unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    lp::write_super_image(
        &metadata,
        &mut [PartitionImage {
            partition: "vendor_a",
            len: cut_len,
            reader: &mut File::open(&cut).unwrap(),
        }],
        &mut out,
    )
    .unwrap();
    let image = out.into_inner();
    let vendor_end = {
        let p = metadata.partition("vendor_a").unwrap();
        match metadata.partition_extents(p).last().unwrap().target {
            lp::ExtentTarget::Linear { sector, .. } => sector * 512 + cut_len,
            lp::ExtentTarget::Zero => unreachable!(),
        }
    };

    /// Remembers the furthest byte read.
    struct Furthest(Vec<u8>, u64);
    impl ReadAt for Furthest {
        fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
            self.1 = self.1.max(offset + buf.len() as u64);
            self.0.read_exact_at(offset, buf)
        }
    }
    for cache in [CacheConfig::OFF, CacheConfig::PHONE] {
        let finder = Finder::in_logical_partition("vendor", 0).with_cache(cache);
        let (source, result) = finder.hash_file(Furthest(image.clone(), 0), CLIENT, 64 * MIB);
        match result {
            Err(e @ FindError::Corrupt { .. }) => {
                assert!(e.to_string().contains("reaches past its partition"), "{e}");
                assert_eq!(e.layer(), Layer::Filesystem);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            source.1 <= vendor_end,
            "read up to {} > {vendor_end}",
            source.1
        );
    }
}

#[test]
fn the_cache_cuts_requests_and_finds_the_same_bytes() {
    let f = Fixture::new();
    let mut figures = Vec::new();
    for cache in [CacheConfig::OFF, CacheConfig::PHONE] {
        let finder = Finder::in_logical_partition("system", 0).with_cache(cache);
        let (_, found) = finder.hash_file(f.open("super.img"), CLIENT, 64 * MIB);
        let found = found.unwrap();
        assert_eq!(found.sha256, f.client_sha256());
        figures.push((found.reads, found.bytes_read));
    }
    let ((plain_reads, plain_bytes), (cached_reads, cached_bytes)) = (figures[0], figures[1]);
    println!(
        "client in erofs system_a: {plain_reads} reads / {plain_bytes} bytes uncached, \
         {cached_reads} reads / {cached_bytes} bytes cached"
    );
    assert!(cached_reads * 4 < plain_reads, "{figures:?}");
    // Read-ahead costs little: the file, its metadata, at most a window per gap.
    assert!(
        cached_bytes < f.client.len() as u64 + 2 * MIB,
        "{figures:?}"
    );
    assert!(
        plain_bytes < f.client.len() as u64 + 256 * 1024,
        "{figures:?}"
    );
}

#[test]
fn logical_partitions_are_listed_with_what_they_hold() {
    let f = Fixture::new();
    let (_, kind) = identify(f.open("super.img"), None);
    assert_eq!(kind.unwrap(), ImageKind::Super);
    for slot in [0, 1] {
        let (_, listing) = list_logical_partitions(f.open("super.img"), slot);
        let listing = listing.unwrap();
        assert_eq!(listing.layout, lp::ImageLayout::Super);
        assert_eq!(listing.slot_count, 3);
        let rows: Vec<(&str, &str, Content)> = listing
            .partitions
            .iter()
            .map(|p| (p.name.as_str(), p.group.as_str(), p.content))
            .collect();
        assert_eq!(
            rows,
            [
                ("system_a", "main_a", Content::Filesystem(FsKind::Erofs)),
                ("vendor_a", "main_a", Content::Filesystem(FsKind::Ext4)),
                ("system_b", "main_b", Content::Empty),
                ("vendor_b", "main_b", Content::Empty),
            ]
        );
        assert!(listing.partitions[0].size >= fs::metadata(f.path("system.erofs")).unwrap().len());
    }

    // super_empty.img: the same metadata, no data.
    let metadata = {
        let mut source = f.open("super.img");
        let mut read = |offset: u64, buf: &mut [u8]| source.read_exact_at(offset, buf);
        let geometry = lp::read_geometry(&mut read).unwrap();
        lp::read_metadata(&mut read, &geometry, 0).unwrap()
    };
    let empty = lp::super_empty_image(&metadata).unwrap();
    let (_, kind) = identify(empty.clone(), Some(empty.len() as u64));
    assert_eq!(kind.unwrap(), ImageKind::SuperEmpty);
    let (_, listing) = list_logical_partitions(empty.clone(), 0);
    let listing = listing.unwrap();
    assert_eq!(listing.layout, lp::ImageLayout::SuperEmpty);
    assert!(listing
        .partitions
        .iter()
        .all(|p| p.content == Content::NotInSource));
    let (_, e) = Finder::in_logical_partition("system", 0).hash_file(empty, CLIENT, MIB);
    assert!(matches!(e, Err(FindError::SuperEmpty { .. })), "{e:?}");

    let (_, kind) = identify(vec![7u8; 20_000], Some(20_000));
    assert_eq!(kind.unwrap(), ImageKind::Unrecognised);
}

#[test]
fn a_sparse_super_image_reads_the_same_as_the_raw_one() {
    let f = Fixture::new();
    let raw = f.path("super.img").display().to_string();
    let sparse = f.path("super.sparse.img").display().to_string();
    run("img2simg", &[&raw, &sparse]);
    let source = f.open("super.sparse.img");
    assert_eq!(source.storage(), Storage::Sparse);
    assert_eq!(source.len(), 64 * MIB);
    let counted = CountingReader::new(source);
    let (counted, found) =
        Finder::in_logical_partition("system", 0).hash_file(counted, CLIENT, 64 * MIB);
    assert_eq!(found.unwrap().sha256, f.client_sha256());
    assert!(counted.bytes_read() < 2 * MIB, "{}", counted.bytes_read());
}

#[test]
fn a_failing_source_is_the_sources_failure_at_every_layer() {
    let f = Fixture::new();
    let image = fs::read(f.path("super.img")).unwrap();
    /// Fails every read after the first `left`.
    struct Failing(Vec<u8>, u32);
    impl ReadAt for Failing {
        fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
            if self.1 == 0 {
                return Err(std::io::Error::other("link cut"));
            }
            self.1 -= 1;
            self.0.read_exact_at(offset, buf)
        }
    }
    // 0: the geometry; 3: the probe; 6: inside erofs; 40: the file's data.
    for left in [0, 3, 6, 40] {
        let finder = Finder::in_logical_partition("system", 0);
        let (_, result) = finder.hash_file(Failing(image.clone(), left), CLIENT, 64 * MIB);
        match result {
            Err(e @ FindError::Source(_)) => {
                assert_eq!(e.layer(), Layer::Source);
                assert!(e.to_string().contains("link cut"), "{e}");
            }
            other => panic!("after {left} reads: {other:?}"),
        }
    }
}

#[test]
fn the_demo_client_costs_verification_a_few_requests() {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/demo/images");
    const DEMO_CLIENT: &str = "/priv-app/ActivationClient/ActivationClient.apk";
    for region in ["00WW", "00EEA", "00CN"] {
        let image = demo.join(region).join("system.img");
        let mut figures = Vec::new();
        for cache in [CacheConfig::OFF, CacheConfig::PHONE] {
            let source = ImageFileSource::open(&image).unwrap();
            let (_, found) =
                Finder::whole_image()
                    .with_cache(cache)
                    .hash_file(source, DEMO_CLIENT, 64 * MIB);
            let found = found.unwrap();
            assert_eq!(found.fs, FsKind::Ext4);
            figures.push((found.reads, found.bytes_read, found.size));
        }
        println!(
            "demo {region} client (reads, bytes, size) without / with read-ahead: {figures:?}"
        );
        let ((plain_reads, _, size), (reads, bytes, _)) = (figures[0], figures[1]);
        assert!(reads < plain_reads, "{figures:?}");
        assert!(bytes < size + 64 * 1024, "{figures:?}");
    }
}

/// Deterministic mutations of the LP metadata and of the filesystem's first blocks: every run
/// ends with an answer or an error, never a panic, and reads a bounded amount from the source.
#[test]
fn mutated_super_images_are_refused_or_read_within_bounds() {
    let f = Fixture::new();
    let mut image = fs::read(f.path("super.img")).unwrap();
    let system_start = {
        let (_, metadata) = read_super_metadata(&mut image, 0, "").unwrap();
        let system = metadata.partition("system_a").unwrap();
        match metadata.partition_extents(system)[0].target {
            lp::ExtentTarget::Linear { sector, .. } => sector * 512,
            lp::ExtentTarget::Zero => unreachable!(),
        }
    };
    let regions = [
        (4096u64, 12288 + 65536),
        (system_start, system_start + 16384),
    ];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    for run in 0..400u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (start, end) = regions[(run % 2) as usize];
        let at = (start + x % (end - start)) as usize;
        let saved = image[at];
        image[at] ^= 1 << (x >> 60 & 7);
        for cache in [CacheConfig::OFF, CacheConfig::PHONE] {
            let finder = Finder::in_logical_partition("system", 0).with_cache(cache);
            let counted = CountingReader::new(&mut image);
            let (counted, result) = finder.hash_file(counted, CLIENT, 64 * MIB);
            assert!(
                counted.bytes_read() < 8 * MIB,
                "mutation at {at}: {} bytes read",
                counted.bytes_read()
            );
            let outcome = match result {
                Ok(found) if found.sha256 == f.client_sha256() => "found".to_string(),
                Ok(_) => "other bytes".to_string(),
                Err(e) => format!("{:?}", e.layer()),
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
        image[at] = saved;
    }
    println!("outcomes of 800 mutated reads: {outcomes:?}");
    assert!(outcomes.contains_key("found"), "{outcomes:?}");
    assert!(outcomes.keys().any(|k| k != "found"), "{outcomes:?}");
}
