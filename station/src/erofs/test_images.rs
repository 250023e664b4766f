//! Test fixtures: directory trees shaped like Android's `system`, made into erofs images by
//! Debian's erofs-utils (`mkfs.erofs`), and what `fsck.erofs` and `dump.erofs` say about them.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::digest::Sha256Digest;

pub const CLIENT: &str = "/system/priv-app/ActivationClient/ActivationClient.apk";
/// A directory whose entries fill several 4 KiB blocks.
pub const BIG_DIR: &str = "/system/etc/permissions";
pub const BIG_DIR_ENTRIES: usize = 300;

/// Deterministic noise (xorshift), so images are the same on every run.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
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

/// Like an APK: runs of incompressible bytes (stored, already-deflated entries) between runs
/// of text, at lengths that do not line up with blocks, so a compressed image holds both
/// compressed and plain logical clusters for it.
pub fn apk_like(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut run = 0u64;
    while out.len() < len {
        let random = noise(seed ^ run, 1);
        let run_len = 1500 + usize::from(random[0]) * 37;
        if run.is_multiple_of(2) {
            out.extend(noise(seed.wrapping_add(run), run_len));
        } else {
            let line = format!("classes{run}.dex resources.arsc AndroidManifest.xml\n");
            out.extend(line.as_bytes().iter().cycle().take(run_len));
        }
        run += 1;
    }
    out.truncate(len);
    out
}

fn write(root: &Path, path: &str, contents: &[u8]) {
    let path = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

/// The tree most tests read: the client where Android keeps it, many apps, a directory of
/// several blocks, links, an empty file, a file of exactly one block, a file with a tail, a deep
/// path, and 3 MiB that do and do not compress. Returns the tree's root.
pub fn android_tree(dir: &Path) -> PathBuf {
    let root = dir.join("tree");
    write(&root, CLIENT, &apk_like(1, 300_123));
    for app in 0..40u64 {
        let size = (app as usize * 997) % 20_000;
        write(
            &root,
            &format!("/system/app/App{app:02}/App{app:02}.apk"),
            &apk_like(100 + app, size),
        );
    }
    for entry in 0..BIG_DIR_ENTRIES {
        let text =
            format!("<permissions><privapp package=\"com.example.{entry}\"/></permissions>\n");
        write(
            &root,
            &format!("{BIG_DIR}/privapp-permissions-com.example.vendor.package{entry:04}.xml"),
            text.as_bytes(),
        );
    }
    write(&root, "/system/bin/toybox", &noise(7, 9000));
    symlink("toybox", root.join("system/bin/sh")).unwrap();
    symlink("/vendor", root.join("system/vendor")).unwrap();
    write(
        &root,
        "/system/build.prop",
        b"ro.product.region=00WW\nro.build.id=TEST\n",
    );
    write(&root, "/system/empty", b"");
    fs::create_dir_all(root.join("system/empty_dir")).unwrap();
    write(&root, "/system/one_block.bin", &noise(3, 4096));
    write(&root, "/system/tail.bin", &apk_like(4, 3 * 4096 + 1234));
    write(&root, "/system/a/b/c/d/e/f/g/h/deep.txt", b"deep\n");
    write(&root, "/system/incompressible.bin", &noise(5, 3 << 20));
    let text: Vec<u8> = b"ro.config.ringtone=Ring_Synth_04.ogg\n"
        .iter()
        .cycle()
        .take(3 << 20)
        .copied()
        .collect();
    write(&root, "/system/compressible.bin", &text);
    root
}

/// A small tree for mutation tests (an image of ~100 KiB is cheap to copy thousands of
/// times) with the same kinds of things in it.
pub fn small_tree(dir: &Path) -> PathBuf {
    let root = dir.join("tree");
    write(&root, CLIENT, &apk_like(11, 40_000));
    for entry in 0..120 {
        write(
            &root,
            &format!("{BIG_DIR}/privapp-permissions-com.example.vendor.package{entry:04}.xml"),
            format!("<permissions id=\"{entry}\"/>\n").as_bytes(),
        );
    }
    write(&root, "/system/build.prop", b"ro.product.region=00WW\n");
    write(&root, "/system/empty", b"");
    write(&root, "/system/tail.bin", &apk_like(12, 4096 + 777));
    symlink("build.prop", root.join("system/link")).unwrap();
    let text: Vec<u8> = b"0123456789abcdef\n"
        .iter()
        .cycle()
        .take(60_000)
        .copied()
        .collect();
    write(&root, "/system/compressible.bin", &text);
    root
}

/// Runs an erofs-utils tool, failing the test with a clear message if it is missing or fails.
pub fn run_tool(tool: &str, args: &[&str], paths: &[&Path]) -> String {
    let output = protocols::external_tool::command(tool)
        .args(args)
        .args(paths)
        .output()
        .unwrap_or_else(|e| panic!("running `{tool}`: {e}"));
    assert!(
        output.status.success(),
        "`{tool} {args:?} {paths:?}` failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `mkfs.erofs` with fixed timestamps and UUID, plus `options`.
pub fn mkfs(tree: &Path, image: &Path, options: &[&str]) {
    let mut args = vec![
        "--quiet",
        "-T0",
        "-U",
        "6a1e2b3c-4d5e-4f60-8172-8394a5b6c7d8",
    ];
    args.extend_from_slice(options);
    run_tool("mkfs.erofs", &args, &[image, tree]);
}

/// The physical byte ranges of `path`'s extents, as `dump.erofs -e` lists them.
pub fn extents(image: &Path, path: &str) -> Vec<(usize, usize)> {
    let out = run_tool("dump.erofs", &["-e", &format!("--path={path}")], &[image]);
    out.lines()
        .filter_map(|line| {
            let (_, physical) = line.split_once('|')?.1.split_once(':')?;
            let (range, _) = physical.split_once('|')?;
            let (start, end) = range.trim().split_once("..")?;
            Some((start.trim().parse().ok()?, end.trim().parse().ok()?))
        })
        .collect()
}

/// Every regular file under `root`: its path inside the image and its digest.
pub fn regular_files(root: &Path) -> Vec<(String, Sha256Digest, u64)> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                let bytes = fs::read(entry.path()).unwrap();
                let inside = entry.path().strip_prefix(root).unwrap().to_owned();
                files.push((
                    format!("/{}", inside.display()),
                    Sha256Digest::of_bytes(&bytes),
                    bytes.len() as u64,
                ));
            }
        }
    }
    files.sort();
    files
}
