//! `flashgate check` through the binary: the whole pre-flight and what the station needs around
//! it, one line per finding, exit 0/1; no phone touched, nothing written; a running station is
//! seen through its lock without being disturbed.

use std::path::Path;
use std::process::{Command, Output};

use flashgate_scenarios::batch::demo_copy;
use flashgate_scenarios::flashgate_bin;
use station::journal::{Journal, JournalError, StationLock};

fn check(demo: &Path, work_order: &str, extra: &[&str]) -> (Output, Vec<String>) {
    let out = Command::new(flashgate_bin())
        .arg("check")
        .arg("--station")
        .arg(demo.join("station.yaml"))
        .arg("--work-order")
        .arg(demo.join(format!("work-orders/{work_order}.yaml")))
        .args(extra)
        .output()
        .expect("running flashgate check");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (out, lines)
}

fn lines_with<'a>(lines: &'a [String], words: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| l.contains(words)).collect()
}

#[test]
fn the_demo_checks_clean_and_nothing_is_written() {
    let (_keep, demo) = demo_copy();
    let (out, lines) = check(&demo, "WO-DEMO-EEA", &[]);
    assert_eq!(out.status.code(), Some(0), "{lines:#?}");
    for line in &lines[..lines.len() - 1] {
        assert!(
            line.starts_with("ok   ") || line.starts_with("note "),
            "{lines:#?}"
        );
    }
    assert_eq!(
        lines.last().unwrap(),
        "check passed: nothing found that would stop this batch"
    );
    assert_eq!(
        lines_with(&lines, "ok   pre-flight: ").len(),
        1,
        "{lines:#?}"
    );
    assert_eq!(lines_with(&lines, "ok   plan: ").len(), 1, "{lines:#?}");
    assert_eq!(lines_with(&lines, "note udev: not checked").len(), 1);
    let signed = lines_with(&lines, "ok   manifest signature: ");
    assert_eq!(signed.len(), 1, "{lines:#?}");
    assert!(
        signed[0].ends_with(
            "fgdemo.yaml signed by flashgate-demo (key id AD7274E4FD7DC8D6), a key station.yaml \
             pins"
        ),
        "{lines:#?}"
    );
    assert!(
        !demo.join("state").exists(),
        "check created the station's state"
    );

    // The manifest edited after signing: one line, under its code, and exit 1.
    let manifest = demo.join("products/fgdemo.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}# edited\n")).unwrap();
    let (out, lines) = check(&demo, "WO-DEMO-EEA", &[]);
    assert_eq!(out.status.code(), Some(1), "{lines:#?}");
    let refused = lines_with(
        &lines,
        "FAIL manifest signature: MANIFEST_UNTRUSTED: manifest ",
    );
    assert_eq!(refused.len(), 1, "{lines:#?}");
}

#[test]
fn every_problem_is_one_line_under_its_own_code_and_the_exit_is_1() {
    let (_keep, demo) = demo_copy();
    std::fs::remove_file(demo.join("images/00WW/boot.img")).unwrap();
    let vbmeta = demo.join("images/00WW/vbmeta.img");
    let mut bytes = std::fs::read(&vbmeta).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&vbmeta, bytes).unwrap();
    let (out, lines) = check(&demo, "WO-DEMO-WW", &[]);
    assert_eq!(out.status.code(), Some(1), "{lines:#?}");
    let missing = lines_with(&lines, "image `boot`");
    assert_eq!(missing.len(), 1, "{lines:#?}");
    assert!(
        missing[0].starts_with("FAIL image: IMAGE_MISSING: image `boot`"),
        "{lines:#?}"
    );
    let mismatch = lines_with(&lines, "image `vbmeta`");
    assert_eq!(mismatch.len(), 1, "{lines:#?}");
    assert!(
        mismatch[0].starts_with("FAIL image: IMAGE_HASH_MISMATCH: image `vbmeta`"),
        "{lines:#?}"
    );
    assert_eq!(mismatch[0].matches("SHA-256").count(), 1);
    // The folders are still checked after the images fail.
    assert_eq!(lines_with(&lines, "ok   logs: ").len(), 1, "{lines:#?}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("check failed: 2 finding(s) would stop the batch"),
        "{lines:#?}"
    );

    // An unknown work order names the known ones, on one line.
    let (out, lines) = check(&demo, "WO-DEMO-XX", &[]);
    assert_eq!(out.status.code(), Some(1));
    let refused = lines_with(&lines, "FAIL work order:");
    assert_eq!(refused.len(), 1, "{lines:#?}");
    assert!(
        refused[0].contains("WO-DEMO-CN, WO-DEMO-EEA, WO-DEMO-WW"),
        "{lines:#?}"
    );
}

#[test]
fn a_running_station_is_seen_and_not_disturbed() {
    let (_keep, demo) = demo_copy();
    let journal = demo.join("state/journal.sqlite");
    // This test process plays the running station: it holds the journal's lock.
    let (_journal, _lock, _) =
        Journal::open_for_station(&journal, std::time::SystemTime::now()).unwrap();
    let (out, lines) = check(&demo, "WO-DEMO-EEA", &[]);
    assert_eq!(out.status.code(), Some(0), "{lines:#?}");
    let running = lines_with(&lines, "a station is running on this journal");
    assert_eq!(running.len(), 1, "{lines:#?}");
    assert!(
        running[0].contains(&format!("(pid {} since ", std::process::id())),
        "{lines:#?}"
    );
    assert_eq!(
        lines_with(&lines, "read without taking its lock").len(),
        1,
        "{lines:#?}"
    );
    // The station still holds its journal: a second station is refused as before.
    assert!(matches!(
        StationLock::take(&journal),
        Err(JournalError::InUse { .. })
    ));
}

#[test]
fn a_usb_station_is_checked_for_udev_and_sim_checks_its_own_journal() {
    let (_keep, demo) = demo_copy();
    let station = demo.join("station.yaml");
    let text = std::fs::read_to_string(&station).unwrap();
    let mut usb = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("  - { slot: ") {
            let slot: u16 = rest.split(',').next().unwrap().parse().unwrap();
            usb.push_str(&format!("  - {{ slot: {slot}, port: \"1-4.{slot}\" }}\n"));
        } else {
            usb.push_str(line);
            usb.push('\n');
        }
    }
    std::fs::write(&station, usb).unwrap();
    let (_, lines) = check(&demo, "WO-DEMO-EEA", &[]);
    // Whatever this machine has installed, both are said.
    assert!(
        lines_with(&lines, " udev: ")
            .iter()
            .any(|l| l.contains("rules")),
        "{lines:#?}"
    );
    assert!(
        lines_with(&lines, " udev: ")
            .iter()
            .any(|l| l.contains("group flashgate")),
        "{lines:#?}"
    );

    let (out, lines) = check(&demo, "WO-DEMO-EEA", &["--sim"]);
    assert_eq!(out.status.code(), Some(0), "{lines:#?}");
    assert_eq!(lines_with(&lines, "note udev: not checked").len(), 1);
    assert_eq!(
        lines_with(&lines, "journal.sim.sqlite does not exist yet").len(),
        1,
        "{lines:#?}"
    );
}
