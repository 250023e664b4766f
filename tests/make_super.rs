//! `flashgate image make-super` (lpmake's flags) against readings that are not its own: the
//! sparse image expanded by Debian's `simg2img` is byte-identical to the raw one and to what
//! the LP writer's `write_super_image` makes from the same metadata; PyPI's liblp lists the same
//! partitions and extents and its lpunpack extracts each partition's image; `flashgate image`
//! finds the client inside. Refusals name the partition, the sizes and what to do.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flashgate_scenarios::{flashgate_bin, pseudo_random};
use protocols::lp::{self, attr, PartitionImage};
use sha2::{Digest, Sha256};

use protocols::external_tool;

use crate::lp_interop::{python_listing, require_python_liblp, tables_json};

const CLIENT: &str = "/system/priv-app/ActivationClient/ActivationClient.apk";

fn tool(program: &str, args: &[&str]) -> Output {
    let out = external_tool::command(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    assert!(
        out.status.success(),
        "`{program} {args:?}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn flashgate(args: &[&str]) -> Output {
    Command::new(flashgate_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("running flashgate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An erofs `system` (lz4hc, raw) holding a client, and an ext4 `vendor` (raw and sparse).
struct Inputs {
    dir: tempfile::TempDir,
    client: Vec<u8>,
}

impl Inputs {
    fn new() -> Inputs {
        let dir = tempfile::tempdir().unwrap();
        let client = pseudo_random(13, 200_000);
        let tree = dir.path().join("system-tree");
        let put = |path: &str, bytes: &[u8]| {
            let host = tree.join(path.trim_start_matches('/'));
            fs::create_dir_all(host.parent().unwrap()).unwrap();
            fs::write(host, bytes).unwrap();
        };
        put(CLIENT, &client);
        put("/system/build.prop", b"ro.product.name=fgtest\n");
        put("/system/etc/zeros.bin", &[0u8; 64 << 10]);
        let inputs = Inputs { dir, client };
        tool(
            "mkfs.erofs",
            &[
                "--quiet",
                "-T0",
                "-zlz4hc",
                &inputs.path("system.erofs"),
                &tree.display().to_string(),
            ],
        );
        let vendor = inputs.dir.path().join("vendor-tree/etc");
        fs::create_dir_all(&vendor).unwrap();
        fs::write(vendor.join("fstab.qcom"), b"system /system erofs ro\n").unwrap();
        tool(
            "mke2fs",
            &[
                "-q",
                "-F",
                "-t",
                "ext4",
                "-d",
                &inputs.path("vendor-tree"),
                &inputs.path("vendor.ext4"),
                "2M",
            ],
        );
        tool(
            "img2simg",
            &[&inputs.path("vendor.ext4"), &inputs.path("vendor.simg")],
        );
        inputs
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The layout of an A/B phone's factory super image, written by make-super with `extra`.
    fn make_super(&self, vendor_image: &str, extra: &[&str]) -> Output {
        // The system image by lpmake's own spelling (`--image NAME=FILE`), sized `auto`; the
        // vendor image after its partition's spec, in a partition larger than it.
        let system_image = format!("system_a={}", self.path("system.erofs"));
        let vendor = format!(
            "vendor_a:readonly:3M:qti_dynamic_partitions_a={}",
            self.path(vendor_image)
        );
        let mut args = vec![
            "image",
            "make-super",
            "--device-size",
            "64M",
            "--metadata-size",
            "65536",
            "--metadata-slots",
            "3",
            "--group",
            "qti_dynamic_partitions_a:31M",
            "--group",
            "qti_dynamic_partitions_b:31M",
            "--partition",
            "system_a:readonly:auto:qti_dynamic_partitions_a",
            "--image",
            &system_image,
            "--partition",
            &vendor,
            "--partition",
            "system_b:readonly:0:qti_dynamic_partitions_b",
            "--partition",
            "vendor_b:readonly:0:qti_dynamic_partitions_b",
        ];
        args.extend_from_slice(extra);
        flashgate(&args)
    }
}

fn read_metadata(path: &Path, slot: u32) -> lp::Metadata {
    let file = File::open(path).unwrap();
    let mut read_at =
        |offset: u64, buf: &mut [u8]| std::os::unix::fs::FileExt::read_exact_at(&file, buf, offset);
    lp::read_image(&mut read_at, slot).unwrap().1
}

#[test]
fn make_super_images_read_back_the_same_through_simg2img_liblp_and_flashgate_image() {
    let inputs = Inputs::new();
    let sparse = inputs.path("super.img");
    let raw = inputs.path("super.raw");
    let empty = inputs.path("super_empty.img");
    // Sparse output from a sparse vendor image, raw output from the raw one: same content.
    let made = inputs.make_super(
        "vendor.simg",
        &["--sparse", "--output", &sparse, "--super-empty", &empty],
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    let said = text(&made.stdout);
    assert!(
        said.contains("sparse super image of 67108864 bytes"),
        "{said}"
    );
    assert!(said.contains("vendor_a"), "{said}");
    let made = inputs.make_super("vendor.ext4", &["--output", &raw]);
    assert!(made.status.success(), "{}", text(&made.stderr));

    let expanded = inputs.path("super.expanded");
    tool("simg2img", &[&sparse, &expanded]);
    let raw_bytes = fs::read(&raw).unwrap();
    assert_eq!(raw_bytes.len(), 64 << 20);
    assert!(
        fs::read(&expanded).unwrap() == raw_bytes,
        "simg2img differs"
    );
    // Small: the filesystems and the metadata, not 64 MiB.
    let sparse_len = fs::metadata(&sparse).unwrap().len();
    assert!(sparse_len < 1 << 20, "{sparse_len}");

    // The LP writer, given the same metadata and the raw images, writes the same bytes.
    let metadata = read_metadata(Path::new(&raw), 0);
    let system = fs::read(inputs.path("system.erofs")).unwrap();
    let vendor = fs::read(inputs.path("vendor.ext4")).unwrap();
    let mut ours = std::io::Cursor::new(Vec::new());
    lp::write_super_image(
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
        &mut ours,
    )
    .unwrap();
    assert!(ours.into_inner() == raw_bytes, "write_super_image differs");
    // Sizes as asked: `auto` is the image's size, and every slot holds the same metadata.
    let size = |name: &str| metadata.partition_size(metadata.find(name).unwrap());
    assert_eq!(size("system_a"), system.len() as u64);
    assert_eq!(size("vendor_a"), 3 << 20);
    assert_eq!(size("system_b"), 0);
    assert!(metadata.find("system_a").unwrap().attributes & attr::READONLY != 0);
    for slot in [1, 2] {
        assert_eq!(read_metadata(Path::new(&raw), slot), metadata);
    }
    assert_eq!(read_metadata(Path::new(&empty), 0), metadata);

    // `flashgate image ls` lists the partitions of the sparse image with their filesystems.
    let listed = flashgate(&["image", "ls", &sparse]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listing = text(&listed.stdout);
    let rows: Vec<Vec<&str>> = listing
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let row = |name: &str| rows.iter().find(|r| r[0] == name).unwrap().clone();
    assert_eq!(row("system_a")[1], system.len().to_string(), "{listing}");
    assert_eq!(*row("system_a").last().unwrap(), "erofs", "{listing}");
    assert_eq!(row("vendor_a")[1], (3u64 << 20).to_string(), "{listing}");
    assert_eq!(*row("vendor_a").last().unwrap(), "ext4", "{listing}");
    assert_eq!(*row("system_b").last().unwrap(), "empty", "{listing}");
    let hashed = flashgate(&["image", "sha256", &sparse, CLIENT, "-p", "system"]);
    assert!(hashed.status.success(), "{}", text(&hashed.stderr));
    assert_eq!(
        text(&hashed.stdout),
        format!(
            "{}  {CLIENT}\n",
            hex::encode(Sha256::digest(&inputs.client))
        )
    );

    // PyPI's liblp reads the same tables (partitions, extents, groups, device) in the slots it
    // knows (a and b) of the raw image and in the super_empty.img, and its lpunpack extracts
    // the images.
    require_python_liblp();
    for slot in 0..2 {
        assert_eq!(
            python_listing(Path::new(&raw), "super", slot),
            tables_json(&metadata)
        );
    }
    assert_eq!(
        python_listing(Path::new(&empty), "empty", 0),
        tables_json(&metadata)
    );
    let unpacked = PathBuf::from(inputs.path("unpacked"));
    fs::create_dir(&unpacked).unwrap();
    tool(
        "python3",
        &[
            "-m",
            "liblp.partition_tools.lpunpack",
            "-S",
            "0",
            "-o",
            &unpacked.display().to_string(),
            &raw,
        ],
    );
    for (name, data) in [("system_a", &system), ("vendor_a", &vendor)] {
        let got = fs::read(unpacked.join(format!("{name}.img"))).unwrap();
        assert_eq!(got.len() as u64, size(name), "{name}");
        assert!(got[..data.len()] == data[..], "{name} differs");
        assert!(got[data.len()..].iter().all(|&b| b == 0), "{name} tail");
    }
}

#[test]
fn make_super_refuses_what_cannot_fit_in_sentences_naming_it() {
    let inputs = Inputs::new();
    let out = inputs.path("super.img");
    let refused = |extra: &[&str], vendor_size: &str| {
        let vendor = format!(
            "vendor_a:readonly:{vendor_size}:qti_dynamic_partitions_a={}",
            inputs.path("vendor.simg")
        );
        let system = format!(
            "system_a:readonly:auto:qti_dynamic_partitions_a={}",
            inputs.path("system.erofs")
        );
        let mut args = vec![
            "image",
            "make-super",
            "--device-size",
            "64M",
            "--metadata-slots",
            "2",
            "--partition",
            &system,
            "--partition",
            &vendor,
            "--sparse",
            "--output",
            &out,
        ];
        args.extend_from_slice(extra);
        let result = flashgate(&args);
        assert!(!result.status.success(), "{}", text(&result.stdout));
        assert!(!Path::new(&out).exists(), "a refused command left an image");
        text(&result.stderr)
    };
    // An image larger than the partition it is given for (a sparse one: its expanded size).
    let said = refused(&["--group", "qti_dynamic_partitions_a:31M"], "1M");
    assert!(said.contains("vendor_a:readonly:1M"), "{said}");
    assert!(
        said.contains("expands to 2097152 bytes, more than the partition's 1048576"),
        "{said}"
    );
    assert!(
        said.contains("give the partition at least 2097152 bytes"),
        "{said}"
    );
    // A group whose maximum the partitions exceed.
    let said = refused(&["--group", "qti_dynamic_partitions_a:2M"], "auto");
    assert!(said.contains("does not fit its group"), "{said}");
    assert!(said.contains("qti_dynamic_partitions_a"), "{said}");
    assert!(said.contains("--group NAME:SIZE"), "{said}");
    // More than super holds.
    let said = refused(&["--group", "qti_dynamic_partitions_a:0"], "80M");
    assert!(said.contains("does not fit in super"), "{said}");
    // An image for a partition nobody declared.
    let said = refused(
        &[
            "--group",
            "qti_dynamic_partitions_a:0",
            "--image",
            "odm_a=x.img",
        ],
        "auto",
    );
    assert!(said.contains("no --partition odm_a is declared"), "{said}");
    // `auto` with no image to take the size from.
    let said = refused(
        &[
            "--group",
            "qti_dynamic_partitions_a:0",
            "--partition",
            "odm_a:readonly:auto",
        ],
        "auto",
    );
    assert!(
        said.contains("odm_a:readonly:auto`: size `auto` is its image's size, and no image"),
        "{said}"
    );
    // The output over an input.
    let system = inputs.path("system.erofs");
    let before = fs::read(&system).unwrap();
    let result = flashgate(&[
        "image",
        "make-super",
        "--device-size",
        "64M",
        "--metadata-slots",
        "2",
        "--partition",
        &format!("system_a:readonly:auto={system}"),
        "--output",
        &system,
    ]);
    assert!(!result.status.success());
    assert!(
        text(&result.stderr).contains("is also an input image"),
        "{}",
        text(&result.stderr)
    );
    assert!(fs::read(&system).unwrap() == before);
}
