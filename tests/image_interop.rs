//! `flashgate image` against the real tools: Debian's `mkfs.erofs` (lz4hc and uncompressed)
//! and `mke2fs -d` make the filesystems, our LP writer packs them into a `super.img`,
//! `img2simg` makes it sparse, and every file `flashgate image sha256` / `cat` finds inside
//! must have the SHA-256 of what `fsck.erofs --extract` and `debugfs -R "cat …"` give.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flashgate_scenarios::{flashgate_bin, pseudo_random};
use protocols::external_tool;
use protocols::lp::{self, attr, DeviceSpec, MetadataBuilder, PartitionImage};
use sha2::{Digest, Sha256};

const MIB: u64 = 1 << 20;
const CLIENT: &str = "/system/priv-app/ActivationClient/ActivationClient.apk";

fn tool(program: &str, args: &[&str]) -> Output {
    let out = external_tool::command(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running `{program}`: {e}"));
    assert!(
        out.status.success(),
        "`{program} {args:?}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Text that compresses, between runs of noise that does not (an APK's stored entries).
fn apk_like(seed: u64, len: usize) -> Vec<u8> {
    const TEXT: &[u8] = b"classes.dex resources.arsc AndroidManifest.xml\n";
    let noise = pseudo_random(seed, len);
    (0..len)
        .map(|i| {
            if (i / 5000) % 2 == 0 {
                noise[i]
            } else {
                TEXT[i % TEXT.len()]
            }
        })
        .collect()
}

/// The tree every filesystem is made from: files the finder must find byte-exact, with the
/// shapes that matter (empty, inline-sized, one block, tails, large, deep, a big directory).
fn make_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut put = |path: &str, bytes: Vec<u8>| {
        let host = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(host.parent().unwrap()).unwrap();
        fs::write(&host, &bytes).unwrap();
        files.insert(path.to_string(), bytes);
    };
    put(CLIENT, apk_like(1, 1_500_001));
    put("/system/build.prop", b"ro.product.region=00WW\n".to_vec());
    put("/system/empty", Vec::new());
    put("/system/one_block.bin", pseudo_random(2, 4096));
    put("/system/tail.bin", apk_like(3, 3 * 4096 + 777));
    put("/system/a/b/c/d/e/deep.txt", b"deep\n".to_vec());
    put("/system/big.bin", apk_like(4, 5 << 20));
    for app in 0..12u64 {
        put(
            &format!("/system/app/App{app}/App{app}.apk"),
            apk_like(10 + app, 1000 + app as usize * 7919),
        );
    }
    for entry in 0..200 {
        put(
            &format!("/system/etc/permissions/privapp-permissions-{entry:04}.xml"),
            format!("<permissions><privapp package=\"com.example.{entry}\"/></permissions>\n")
                .into_bytes(),
        );
    }
    std::os::unix::fs::symlink("build.prop", root.join("system/link")).unwrap();
    files
}

struct Build {
    dir: tempfile::TempDir,
    files: BTreeMap<String, Vec<u8>>,
}

impl Build {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// `system` erofs lz4hc, `product` erofs uncompressed, `vendor` ext4, all of the same tree,
/// packed into `super.img` (slot a filled, slot b empty, as a factory image) and
/// `super.sparse.img`.
fn build() -> Build {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let files = make_tree(&tree);
    let b = Build { dir, files };
    let tree = tree.display().to_string();
    tool(
        "mkfs.erofs",
        &["--quiet", "-T0", "-zlz4hc", &b.arg("system.img"), &tree],
    );
    tool(
        "mkfs.erofs",
        &["--quiet", "-T0", &b.arg("product.img"), &tree],
    );
    tool(
        "mke2fs",
        &[
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-d",
            &tree,
            &b.arg("vendor.img"),
            "24M",
        ],
    );
    let names = ["system", "product", "vendor"];
    let lens: Vec<u64> = names
        .iter()
        .map(|n| fs::metadata(b.path(&format!("{n}.img"))).unwrap().len())
        .collect();
    let mut builder =
        MetadataBuilder::new(DeviceSpec::super_partition(128 * MIB), 65536, 3).unwrap();
    for slot in ["a", "b"] {
        let group = format!("qti_dynamic_partitions_{slot}");
        builder.add_group(&group, 60 * MIB).unwrap();
        for name in names {
            builder
                .add_partition(&format!("{name}_{slot}"), &group, attr::READONLY)
                .unwrap();
        }
    }
    for (name, len) in names.iter().zip(&lens) {
        builder
            .resize_partition(&format!("{name}_a"), *len)
            .unwrap();
    }
    let metadata = builder.export().unwrap();
    let mut readers: Vec<File> = names
        .iter()
        .map(|n| File::open(b.path(&format!("{n}.img"))).unwrap())
        .collect();
    let partitions: Vec<String> = names.iter().map(|n| format!("{n}_a")).collect();
    let mut images: Vec<PartitionImage<'_>> = readers
        .iter_mut()
        .zip(&partitions)
        .zip(&lens)
        .map(|((reader, partition), len)| PartitionImage {
            partition,
            len: *len,
            reader,
        })
        .collect();
    let mut out = File::create(b.path("super.img")).unwrap();
    lp::write_super_image(&metadata, &mut images, &mut out).unwrap();
    tool(
        "img2simg",
        &[&b.arg("super.img"), &b.arg("super.sparse.img")],
    );
    b
}

fn flashgate(args: &[&str]) -> Output {
    Command::new(flashgate_bin())
        .arg("image")
        .args(args)
        .output()
        .expect("running flashgate")
}

fn ok(args: &[&str]) -> Vec<u8> {
    let out = flashgate(args);
    assert!(
        out.status.success(),
        "flashgate image {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Exits non-zero with one sentence on stderr that contains `words`.
fn refused(args: &[&str], words: &str) -> String {
    let out = flashgate(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "flashgate image {args:?} succeeded");
    assert!(out.stdout.is_empty(), "{args:?}: {:?}", out.stdout);
    assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains(words),
        "{args:?}: {words:?} not in {stderr}"
    );
    stderr
}

#[test]
fn flashgate_image_finds_what_the_debian_tools_extract_in_every_layout() {
    let b = build();
    // What the Debian tools say each file holds.
    let extracted = b.path("extracted");
    tool(
        "fsck.erofs",
        &[
            &format!("--extract={}", extracted.display()),
            &b.arg("system.img"),
        ],
    );
    let extracted_product = b.path("extracted-product");
    tool(
        "fsck.erofs",
        &[
            &format!("--extract={}", extracted_product.display()),
            &b.arg("product.img"),
        ],
    );
    let mut checked = 0;
    // Every file but most of the 200 small permission files (one in twenty stands for them).
    let chosen = b.files.iter().filter(|(path, _)| {
        !path.contains("privapp-permissions-") || path.ends_with("0.xml") && path.contains("-00")
    });
    for (path, bytes) in chosen {
        let from_erofs = fs::read(extracted.join(path.trim_start_matches('/'))).unwrap();
        let from_plain_erofs =
            fs::read(extracted_product.join(path.trim_start_matches('/'))).unwrap();
        let from_ext4 = tool(
            "debugfs",
            &["-R", &format!("cat {path}"), &b.arg("vendor.img")],
        )
        .stdout;
        let expected = hex_sha256(bytes);
        assert_eq!(hex_sha256(&from_erofs), expected, "fsck.erofs {path}");
        assert_eq!(hex_sha256(&from_plain_erofs), expected, "fsck.erofs {path}");
        assert_eq!(hex_sha256(&from_ext4), expected, "debugfs {path}");

        // Every file in each filesystem of both super images; a sample in the filesystem
        // images themselves (the same reader, one layer fewer).
        let sample = path == CLIENT || path.ends_with("tail.bin") || path.ends_with("empty");
        for image in ["super.img", "super.sparse.img"] {
            for partition in ["system", "product_a", "vendor"] {
                let line = ok(&["sha256", &b.arg(image), path, "--partition", partition]);
                assert_eq!(
                    String::from_utf8(line).unwrap(),
                    format!("{expected}  {path}\n"),
                    "{image} {partition} {path}"
                );
                checked += 1;
            }
        }
        if sample {
            for image in ["system.img", "product.img", "vendor.img"] {
                let line = ok(&["sha256", &b.arg(image), path]);
                assert!(String::from_utf8(line).unwrap().starts_with(&expected));
            }
        }
    }
    assert!(checked >= 6 * 25, "{checked}");

    // `cat` writes the bytes themselves.
    for partition in ["system", "vendor"] {
        let bytes = ok(&["cat", &b.arg("super.sparse.img"), CLIENT, "-p", partition]);
        assert!(bytes == b.files[CLIENT], "cat {CLIENT} from {partition}");
    }
}

#[test]
fn flashgate_image_ls_lists_partitions_and_directories() {
    let b = build();
    for image in ["super.img", "super.sparse.img"] {
        let text = String::from_utf8(ok(&["ls", &b.arg(image)])).unwrap();
        let storage = if image == "super.img" {
            "raw"
        } else {
            "sparse"
        };
        assert!(
            text.lines().next().unwrap().ends_with(&format!(
                "{image}: {storage} super image, metadata slot 0 of 3 (slot a)"
            )),
            "{text}"
        );
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(2)
            .map(|line| line.split_whitespace().collect())
            .collect();
        let row = |name: &str| {
            rows.iter()
                .find(|r| r[0] == name)
                .unwrap_or_else(|| panic!("{name} not listed: {text}"))
        };
        for (name, fs) in [
            ("system_a", "erofs"),
            ("product_a", "erofs"),
            ("vendor_a", "ext4"),
        ] {
            let r = row(name);
            let len = fs::metadata(b.path(&format!("{}.img", &name[..name.len() - 2])))
                .unwrap()
                .len();
            let size: u64 = r[1].parse().unwrap();
            assert!(size >= len && size < len + MIB, "{name}: {size} for {len}");
            assert_eq!(r[4], "qti_dynamic_partitions_a");
            assert_eq!(r[5], fs, "{text}");
        }
        assert_eq!(
            row("system_b")[1..],
            ["0", "0", "B", "qti_dynamic_partitions_b", "empty"]
        );
    }

    let listing = String::from_utf8(ok(&[
        "ls",
        &b.arg("super.img"),
        "/system",
        "--partition",
        "system",
    ]))
    .unwrap();
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.rsplit("  ").next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "a",
            "app",
            "big.bin",
            "build.prop",
            "empty",
            "etc",
            "link",
            "one_block.bin",
            "priv-app",
            "tail.bin"
        ],
        "{listing}"
    );
    assert!(
        listing.contains(&format!("- {:>12}  big.bin", 5 << 20)),
        "{listing}"
    );
    assert!(listing
        .lines()
        .any(|l| l.starts_with('l') && l.ends_with("link")));
    assert!(listing
        .lines()
        .any(|l| l.starts_with('d') && l.ends_with("app")));
    // A plain filesystem image lists its root by default.
    let root = String::from_utf8(ok(&["ls", &b.arg("vendor.img")])).unwrap();
    assert!(root.lines().any(|l| l.ends_with("lost+found")), "{root}");
    let root = String::from_utf8(ok(&["ls", &b.arg("system.img")])).unwrap();
    assert_eq!(
        root.trim_end(),
        format!("d {:>12}  system", root.split_whitespace().nth(1).unwrap())
    );
}

#[test]
fn flashgate_image_says_which_layer_is_missing_what() {
    let b = build();
    let super_img = b.arg("super.img");
    refused(
        &[
            "sha256",
            &super_img,
            "/system/priv-app/Other.apk",
            "-p",
            "system",
        ],
        "/system/priv-app/Other.apk is not in the erofs filesystem in logical partition system_a",
    );
    refused(
        &["sha256", &super_img, CLIENT, "-p", "odm"],
        "super has no logical partition `odm` in metadata slot 0 (it has system_a, product_a, vendor_a, system_b, product_b, vendor_b)",
    );
    refused(
        &["sha256", &super_img, CLIENT, "-p", "system", "--slot", "b"],
        "logical partition system_b holds no filesystem flashgate reads (ext4, erofs): it is empty (0 bytes)",
    );
    refused(
        &["sha256", &super_img, CLIENT],
        "this is a super image: name the logical partition",
    );
    refused(
        &["ls", &super_img, "/system"],
        "this is a super image: name the logical partition",
    );
    refused(
        &["sha256", &b.arg("vendor.img"), CLIENT, "-p", "system"],
        "not a super image",
    );
    refused(
        &["cat", &super_img, "/system/app", "-p", "vendor"],
        "/system/app is not a regular file in the ext4 filesystem in logical partition vendor_a",
    );
    refused(
        &["ls", &super_img, "/system/build.prop", "-p", "vendor"],
        "is not a directory",
    );
    refused(
        &["sha256", &b.arg("vendor.img"), "/system/link"],
        "is a symbolic link",
    );
    fs::write(b.path("noise.img"), pseudo_random(5, 64 << 10)).unwrap();
    refused(
        &["ls", &b.arg("noise.img")],
        "holds no filesystem flashgate reads (ext4, erofs): no ext4 or erofs superblock at byte 1024, and it is no super image either",
    );
    refused(&["ls", &b.arg("missing.img")], "missing.img: no such file");
    refused(
        &["sha256", &b.arg("system.img"), "relative/path"],
        "it must start with /",
    );
}
