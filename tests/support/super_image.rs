//! Dynamic-partition fixtures the super scenarios share: erofs trees made by Debian's
//! `mkfs.erofs`, and a sparse `super.img` as a factory build makes it (our LP writer, then
//! `img2simg`).

use std::fs::{self, File};
use std::path::Path;
use std::process::Command;

use protocols::lp::{self, attr, DeviceSpec, MetadataBuilder, PartitionImage};
use sha2::{Digest, Sha256};

const MIB: u64 = 1 << 20;

/// Runs an outside tool and insists it succeeds, with its stderr in the panic.
pub fn tool(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    assert!(
        out.status.success(),
        "`{program} {args:?}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes `files` (absolute paths inside the filesystem) under `tree` and makes an erofs lz4hc
/// image of it at `image`, timestamps zeroed.
pub fn erofs_lz4hc(tree: &Path, files: &[(String, Vec<u8>)], image: &Path) {
    for (path, bytes) in files {
        let host = tree.join(path.trim_start_matches('/'));
        fs::create_dir_all(host.parent().unwrap()).unwrap();
        fs::write(host, bytes).unwrap();
    }
    tool(
        "mkfs.erofs",
        &[
            "--quiet",
            "-T0",
            "-zlz4hc",
            &image.display().to_string(),
            &tree.display().to_string(),
        ],
    );
}

/// A sparse `super.img` of `super_size` bytes at `out`: groups `qti_dynamic_partitions_a`/`_b`,
/// each holding `names` with that slot's suffix (read-only), three metadata slots; the
/// partitions in `images` are sized to and filled with their image, the others left empty.
pub fn sparse_super(out: &Path, super_size: u64, names: &[&str], images: &[(&str, &Path)]) {
    let mut builder =
        MetadataBuilder::new(DeviceSpec::super_partition(super_size), 65536, 3).unwrap();
    for slot in ["a", "b"] {
        let group = format!("qti_dynamic_partitions_{slot}");
        builder.add_group(&group, super_size / 2 - MIB).unwrap();
        for name in names {
            builder
                .add_partition(&format!("{name}_{slot}"), &group, attr::READONLY)
                .unwrap();
        }
    }
    let lens: Vec<u64> = images
        .iter()
        .map(|(_, p)| fs::metadata(p).unwrap().len())
        .collect();
    for ((name, _), len) in images.iter().zip(&lens) {
        builder.resize_partition(name, *len).unwrap();
    }
    let metadata = builder.export().unwrap();
    let mut files: Vec<File> = images.iter().map(|(_, p)| File::open(p).unwrap()).collect();
    let mut parts: Vec<PartitionImage<'_>> = images
        .iter()
        .zip(&lens)
        .zip(files.iter_mut())
        .map(|(((name, _), len), reader)| PartitionImage {
            partition: name,
            len: *len,
            reader,
        })
        .collect();
    let raw = out.with_extension("raw");
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    lp::write_super_image(&metadata, &mut parts, &mut File::create(&raw).unwrap()).unwrap();
    tool(
        "img2simg",
        &[&raw.display().to_string(), &out.display().to_string()],
    );
    fs::remove_file(raw).unwrap();
}
