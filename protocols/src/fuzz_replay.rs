//! Replaying the cargo-fuzz corpora on stable, for the `fuzz_targets` tests of every crate that
//! has fuzz targets: each checked-in seed and kept crash goes through the same body the fuzzer
//! runs, so a regression fails the normal `cargo test`.
//!
//! A crate's fuzz folder holds `fuzz_targets/NAME.rs` (one line calling `fuzz_targets::NAME`),
//! `seeds/NAME/` and `regressions/NAME/`.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// A target's body: the fuzzer's bytes in, a panic on anything that must not happen.
pub type Body = fn(&[u8]);

/// The files directly in `dir`, sorted; none when it does not exist.
pub fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("listing a corpus directory").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Runs `body` on every file in `dir`: how many there were, and one line per input that
/// panicked.
fn replay(name: &str, body: Body, dir: &Path) -> (usize, Vec<String>) {
    let files = corpus_files(dir);
    let mut failures = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).expect("reading a corpus file");
        if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(|| body(&bytes))) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failures.push(format!("{name}: {}: {message}", file.display()));
        }
    }
    (files.len(), failures)
}

/// Every target has seeds, and every seed and regression of every target replays without a
/// panic; the failures are listed together.
pub fn assert_corpora_replay(fuzz_dir: &Path, targets: &[(&str, Body)]) {
    let mut failures = Vec::new();
    for &(name, body) in targets {
        let (seeds, failed) = replay(name, body, &fuzz_dir.join("seeds").join(name));
        assert!(seeds > 0, "target {name} has no seeds in fuzz/seeds/{name}");
        failures.extend(failed);
        let (_, failed) = replay(name, body, &fuzz_dir.join("regressions").join(name));
        failures.extend(failed);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The files in `fuzz_targets/` and the bodies in `targets` are the same set, and each file
/// calls its own body.
pub fn assert_target_files_match(fuzz_dir: &Path, targets: &[(&str, Body)]) {
    let target_dir = fuzz_dir.join("fuzz_targets");
    let mut files: Vec<String> = corpus_files(&target_dir)
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    files.sort();
    let mut names: Vec<String> = targets.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(files, names);
    for name in names {
        let target = std::fs::read_to_string(target_dir.join(format!("{name}.rs"))).unwrap();
        assert!(
            target.contains(&format!("fuzz_targets::{name}(")),
            "fuzz_targets/{name}.rs does not call fuzz_targets::{name}"
        );
    }
}
