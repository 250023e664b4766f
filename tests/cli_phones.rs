//! `flashgate run --phones FILE`: simulated phones with a past and with faults, described in
//! the phones file (configs/demo/phones.yaml) rather than in Rust, end to end through the
//! binary: the verdict each phone earns, and a file mistake placed by file, line and key.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cli_run::{demo_copy, events, run};

/// slot → (result, failure code) of every verdict event.
fn verdicts(stdout: &[u8]) -> BTreeMap<u64, (String, Option<String>)> {
    events(stdout)
        .iter()
        .filter(|e| e["event"] == "verdict")
        .map(|e| {
            (
                e["slot"].as_u64().unwrap(),
                (
                    e["verdict"]["result"].as_str().unwrap().to_owned(),
                    e["verdict"]["code"].as_str().map(str::to_owned),
                ),
            )
        })
        .collect()
}

fn phones_run(demo: &Path, work_order: &str, phones: &Path) -> std::process::Output {
    run(demo, work_order, &["--phones", phones.to_str().unwrap()])
}

/// The demo phones file gives the verdicts its comments promise.
#[test]
fn the_demo_phones_file_gives_the_verdicts_it_promises() {
    let (_keep, demo) = demo_copy();
    let out = phones_run(&demo, "WO-DEMO-EEA", &demo.join("phones.yaml"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let pass = ("PASS".to_owned(), None);
    assert_eq!(
        verdicts(&out.stdout),
        BTreeMap::from([
            (1, pass.clone()),
            (2, pass.clone()),
            (3, pass),
            (4, ("FAIL".to_owned(), Some("VERIFY_MISMATCH".to_owned()))),
            (5, ("FAIL".to_owned(), Some("DEVICE_FAIL".to_owned()))),
        ]),
        "{stderr}"
    );
    let all = events(&out.stdout);
    let detected = |slot: u64| {
        all.iter()
            .find(|e| e["event"] == "unit_detected" && e["slot"] == slot)
            .unwrap_or_else(|| panic!("slot {slot} not detected: {stderr}"))
            .clone()
    };
    assert_eq!(detected(2)["serial"], "FGCN00002");
    assert_eq!(detected(3)["mode"], "edl");
    // The production phone was flashed through EDL (its secure boot took the demo's signed
    // programmer) and refused only the read-back its bootloader cannot do.
    let failure = all
        .iter()
        .find(|e| e["event"] == "verdict" && e["slot"] == 5)
        .map(|e| e["verdict"].to_string())
        .unwrap_or_default();
    assert!(
        failure.contains("fetch:system_a") && failure.contains("unknown command"),
        "{failure}"
    );
}

/// The CN build on the booting slot b of an arriving phone, and a plan that writes slot a only
/// and never switches: the station reads back the slot that boots and refuses the unit.
#[test]
fn the_cn_build_on_slot_b_of_an_arriving_phone_is_refused_from_the_cli() {
    let (_keep, demo) = demo_copy();
    let manifest = demo.join("products/fgdemo.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let start = text.find("  00EEA:").unwrap();
    let (head, tail) = text.split_at(start);
    let tail = tail.replacen(
        "        slot: all\n        set_active: a\n",
        "        slot: a\n",
        1,
    );
    std::fs::write(&manifest, format!("{head}{tail}")).unwrap();
    flashgate_scenarios::sign_manifest(&manifest);
    let phones = demo.join("cn-on-b.yaml");
    std::fs::write(
        &phones,
        "phones:\n\
         \x20 - slot: 1\n\
         \x20 - slot: 2\n\
         \x20   current_slot: b\n\
         \x20   partitions:\n\
         \x20     system_b: { image: images/00CN/system.img }\n",
    )
    .unwrap();
    let out = phones_run(&demo, "WO-DEMO-EEA", &phones);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let found = verdicts(&out.stdout);
    assert_eq!(found[&1], ("PASS".to_owned(), None), "{stderr}");
    assert_eq!(
        found[&2],
        (
            "FAIL".to_owned(),
            Some("ACTIVATION_CLIENT_WRONG_REGION".to_owned())
        ),
        "{stderr}"
    );
    // The reason travels with the verdict on the event stream (the console shows errors only).
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("system_b") && stdout.contains("00CN client"),
        "{stdout}"
    );
}

/// A mistake in the phones file is placed by file, line and key, and no phone is touched.
#[test]
fn a_phones_file_mistake_names_file_line_and_key() {
    let (_keep, demo) = demo_copy();
    let phones = demo.join("bad.yaml");
    std::fs::write(
        &phones,
        "phones:\n  - slot: 1\n    partitions:\n      nosuch_a: { fill: 1 }\n",
    )
    .unwrap();
    let out = phones_run(&demo, "WO-DEMO-EEA", &phones);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("{}:4", phones.display()))
            && stderr.contains("phones[0].partitions.nosuch_a")
            && stderr.contains("no partition named \"nosuch_a\""),
        "{stderr}"
    );
    assert!(verdicts(&out.stdout).is_empty());
}

/// The same file drives `flashgate sim fastboot --phone FILE`: Debian's `fastboot` finds the
/// phone's identity, the slot that boots, its bootloader's settings, the contents it arrived
/// with and its refusal.
#[test]
fn sim_fastboot_serves_the_phone_a_phones_file_describes() {
    let dir = tempfile::tempdir().unwrap();
    let phones = dir.path().join("phones.yaml");
    std::fs::write(
        &phones,
        "phones:\n\
         \x20 - slot: 7\n\
         \x20   serial: SCRIPTED7\n\
         \x20   product: otherphone\n\
         \x20   current_slot: b\n\
         \x20   bootloader: { max_download_size: 128M, fetch: none }\n\
         \x20   partitions:\n\
         \x20     misc: { fill: 0x5a, size: 8K }\n\
         \x20   faults:\n\
         \x20     fail: [{ on: \"erase:misc\", message: misc is write-protected }]\n",
    )
    .unwrap();
    let sim = crate::fastboot_interop::SimServer::start(&["--phone", phones.to_str().unwrap()]);
    let getvar = |name: &str| {
        let out = sim.fastboot(&["getvar", name]);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(getvar("serialno").contains("serialno: SCRIPTED7"));
    assert!(getvar("product").contains("product: otherphone"));
    assert!(getvar("current-slot").contains("current-slot: b"));
    let buffer = getvar("max-download-size");
    assert!(buffer.contains("max-download-size: 0x8000000"), "{buffer}");
    let fetch = getvar("max-fetch-size");
    assert!(!fetch.contains("max-fetch-size: 0x"), "{fetch}");
    let erase = sim.fastboot(&["erase", "misc"]);
    let said = String::from_utf8_lossy(&erase.stderr);
    assert!(!erase.status.success(), "{said}");
    assert!(said.contains("misc is write-protected"), "{said}");
    let misc = std::fs::read(sim.partition_file("misc")).unwrap();
    assert!(misc[..8192].iter().all(|&b| b == 0x5a) && misc[8192..].iter().all(|&b| b == 0));
}

/// The fault keys against Debian's `fastboot` (AOSP 29.0.6): a bootloader that keeps
/// `set_active` only until the next reboot satisfies the client (it checks nothing after
/// OKAY, and `current-slot` shows the new slot until the reboot); answers cut short or with an
/// unknown status are refused by the client in its own words, and the phone answers normally
/// once the counted faults are spent.
#[test]
fn the_aosp_client_meets_scripted_set_active_and_malformed_answers() {
    let dir = tempfile::tempdir().unwrap();
    let phones = dir.path().join("phones.yaml");
    std::fs::write(
        &phones,
        "phones:\n\
         \x20 - slot: 1\n\
         \x20   faults:\n\
         \x20     set_active: lost_on_reboot\n\
         \x20     answer:\n\
         \x20       - { on: \"getvar:product\", with: truncated, times: 1 }\n\
         \x20       - { on: \"getvar:product\", with: unknown_prefix, times: 1 }\n\
         \x20       - { on: \"getvar:product\", with: garbage, times: 1 }\n",
    )
    .unwrap();
    let sim = crate::fastboot_interop::SimServer::start(&["--phone", phones.to_str().unwrap()]);
    let said = |args: &[&str]| {
        let out = sim.fastboot(args);
        (out.status.success(), crate::fastboot_interop::text(&out))
    };
    let (_, text) = said(&["getvar", "product"]);
    assert!(text.contains("unknown status code: OKA"), "{text}");
    let (_, text) = said(&["getvar", "product"]);
    assert!(text.contains("unknown status code: BUSY"), "{text}");
    let (_, text) = said(&["getvar", "product"]);
    assert!(text.contains("unknown status code"), "{text}");
    let (_, text) = said(&["getvar", "product"]);
    assert!(text.contains("product: flashgate_sim"), "{text}");

    let (ok, text) = said(&["set_active", "b"]);
    assert!(ok && text.contains("Setting current slot to 'b'"), "{text}");
    assert!(said(&["getvar", "current-slot"])
        .1
        .contains("current-slot: b"));
    let (ok, text) = said(&["reboot", "bootloader"]);
    assert!(ok, "{text}");
    let back = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let slot = loop {
        let (_, text) = said(&["getvar", "current-slot"]);
        if text.contains("current-slot:") || std::time::Instant::now() > back {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(slot.contains("current-slot: a"), "not kept: {slot}");
}
