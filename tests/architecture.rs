//! The layering rules ARCHITECTURE.md states, checked against the source: each test fails when
//! a rule is broken, naming the file and the line.
//!
//! - protocols never reaches station;
//! - host code never reaches the simulators (neither in `protocols` nor in the station's unit
//!   job, supervisor, journal, pre-flight or verification);
//! - codecs do no I/O.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A file's production lines: test files (`*tests.rs`, `test_support.rs`, `testutil.rs`) have
/// none, and a file's lines stop at its `#[cfg(test)]` module.
fn production_lines(path: &Path) -> Vec<(usize, String)> {
    let name = path.file_name().unwrap().to_string_lossy();
    if name.ends_with("tests.rs") || name == "test_support.rs" || name == "testutil.rs" {
        return Vec::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        out.push((i + 1, code.to_string()));
    }
    out
}

/// Lines of the files under `dirs` (relative to the repository) that contain any of `needles`.
fn offending(dirs: &[&str], needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for dir in dirs {
        let path = root().join(dir);
        let files = if path.is_file() {
            vec![path]
        } else {
            rust_files(&path)
        };
        for file in files {
            for (n, line) in production_lines(&file) {
                if needles.iter().any(|needle| line.contains(needle)) {
                    let shown = file
                        .strip_prefix(root())
                        .unwrap_or(&file)
                        .display()
                        .to_string();
                    found.push(format!("{shown}:{n}: {}", line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn protocols_never_reaches_station() {
    let manifest = std::fs::read_to_string(root().join("protocols/Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("flashgate-station")
            && !manifest.lines().any(|l| l.starts_with("station")),
        "protocols/Cargo.toml depends on the station"
    );
    let found = offending(&["protocols/src"], &["station::", "flashgate_station"]);
    assert!(
        found.is_empty(),
        "protocols code names the station:\n{}",
        found.join("\n")
    );
}

#[test]
fn host_code_never_reaches_the_simulators() {
    let protocol_hosts = [
        "protocols/src/fastboot",
        "protocols/src/firehose",
        "protocols/src/sahara",
        "protocols/src/sparse",
        "protocols/src/gpt",
        "protocols/src/lp",
        "protocols/src/transport",
        "protocols/src/progress.rs",
    ];
    let found = offending(&protocol_hosts, &["crate::sim", "super::sim", "sim::"]);
    assert!(
        found.is_empty(),
        "protocol host code reaches the simulators:\n{}",
        found.join("\n")
    );
    let station_production = [
        "station/src/job",
        "station/src/run",
        "station/src/journal",
        "station/src/preflight",
        "station/src/check",
        "station/src/verdict.rs",
        "station/src/ext4",
        "station/src/erofs",
        "station/src/bus/mod.rs",
        "station/src/bus/rusb_bus.rs",
        "station/src/events",
        "station/src/dashboard",
        "station/src/logging",
    ];
    let found = offending(
        &station_production,
        &[
            "protocols::sim",
            "sim_fleet",
            "bus::sim",
            "SimBus",
            "SimUnit",
        ],
    );
    assert!(
        found.is_empty(),
        "station production code reaches the simulators:\n{}",
        found.join("\n")
    );
}

#[test]
fn codecs_do_no_io() {
    let codecs = [
        "protocols/src/fastboot/command.rs",
        "protocols/src/fastboot/response.rs",
        "protocols/src/fastboot/variable.rs",
        "protocols/src/sahara/packet.rs",
        "protocols/src/sahara/memory_table.rs",
        "protocols/src/sahara/status.rs",
        "protocols/src/firehose/response.rs",
        "protocols/src/firehose/xml.rs",
        "protocols/src/sparse/format.rs",
        "protocols/src/gpt/header.rs",
        "protocols/src/gpt/entry.rs",
        "protocols/src/gpt/guid.rs",
        "protocols/src/lp/geometry.rs",
        "protocols/src/lp/header.rs",
        "protocols/src/lp/metadata.rs",
    ];
    for codec in codecs {
        assert!(
            root().join(codec).is_file(),
            "{codec} moved: update this list"
        );
    }
    let found = offending(
        &codecs,
        &[
            "std::fs",
            "std::net",
            "std::thread",
            "Transport",
            "io::Read",
            "io::Write",
            "File::",
            "Instant::now",
        ],
    );
    assert!(found.is_empty(), "codecs doing I/O:\n{}", found.join("\n"));
}
