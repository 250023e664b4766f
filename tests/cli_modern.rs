//! The demo's second product, `fgmodern` (a dynamic-partition phone: `super` holding an erofs
//! `system` with the activation client and an ext4 `vendor`), through the `flashgate` binary as
//! the README's main command runs it: a station that has just run a batch of the first product
//! runs a work order of this one on the same slots and journal; a super image of another region
//! is refused before any phone is touched.

use std::path::Path;
use std::process::Command;

use flashgate_scenarios::flashgate_bin;
use sha2::{Digest, Sha256};

use crate::cli_run::{demo_copy, events, run};

const CLIENT: &str = "/system/priv-app/ActivationClient/ActivationClient.apk";

/// The manifest's line for `key` of `region` (`super: { path: …, size: …, sha256: … }`).
fn manifest_line(manifest: &str, region: &str, key: &str) -> String {
    manifest
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with(&format!("{key}: {{ path: fgmodern/{region}/"))
        })
        .unwrap_or_else(|| panic!("no {key} of {region} in the manifest"))
        .to_string()
}

/// The region's allow-listed client hash, from the manifest.
fn client_sha256(manifest: &str, region: &str) -> String {
    let region_start = manifest.find(&format!("  {region}:\n")).unwrap();
    let client = manifest[region_start..].find("activation_client:").unwrap() + region_start;
    let line = manifest[client..]
        .lines()
        .find(|l| l.trim_start().starts_with("sha256:"))
        .unwrap();
    line.split('"').nth(1).unwrap().to_string()
}

#[test]
fn a_station_runs_the_first_product_then_the_modern_one_and_verifies_the_client_in_super() {
    let (_keep, demo) = demo_copy();
    let first = run(&demo, "WO-DEMO-EEA", &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );

    let out = run(&demo, "WO-MODERN-EEA", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "flashgate run failed: {stderr}");
    let events = events(&out.stdout);
    let started = &events[0];
    assert_eq!(started["event"], "batch_started");
    assert_eq!(started["product"], "fgmodern");
    let verdicts: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "verdict").collect();
    assert_eq!(verdicts.len(), 8, "{stderr}");
    for verdict in &verdicts {
        assert_eq!(verdict["verdict"]["result"], "PASS", "{verdict}");
        // New phones on the same journal: the second run's serials follow the first's.
        assert!(
            verdict["serial"].as_str().unwrap().starts_with("FG0002"),
            "{verdict}"
        );
        // Each unit verified the client in the logical partition of the slot it boots.
        let slot = &verdict["slot"];
        let verify: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| {
                e["event"] == "phase_changed"
                    && e["slot"] == *slot
                    && e["phase"]["phase"] == "verify"
            })
            .collect();
        assert_eq!(verify.len(), 1, "{verify:?}");
        assert_eq!(
            verify[0]["phase"]["what"],
            format!("super/system_a {CLIENT}"),
            "{verify:?}"
        );
    }
    // Four phones were flashed through EDL (the whole super.img by a sparse rawprogram line)
    // and came back in fastboot on their own slot to be read back.
    let mode_changes = events
        .iter()
        .filter(|e| e["event"] == "mode_changed" && e["mode"] == "fastboot")
        .count();
    assert_eq!(mode_changes, 4);
    assert!(
        stderr.contains("passed 8 of 100 ordered (this run 8), failed 0, aborted 0"),
        "{stderr}"
    );

    // The journal: the whole super.img was flashed from the bootloader, and the client found
    // on each phone is the 00EEA one the manifest allows.
    let manifest = std::fs::read_to_string(demo.join("products/fgmodern.yaml")).unwrap();
    let allowed = client_sha256(&manifest, "00EEA");
    let super_img = std::fs::read(demo.join("images/fgmodern/00EEA/super.img")).unwrap();
    for verdict in &verdicts {
        let serial = verdict["serial"].as_str().unwrap();
        let history = Command::new(flashgate_bin())
            .args(["history", "--json", serial, "--station"])
            .arg(demo.join("station.yaml"))
            .output()
            .unwrap();
        assert!(history.status.success());
        let rows: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
        let row = &rows[0];
        assert_eq!(row["product"], "fgmodern", "{row}");
        assert_eq!(row["work_order"], "WO-MODERN-EEA", "{row}");
        assert_eq!(row["result"], "PASS", "{row}");
        assert_eq!(row["activation_sha256_found"], allowed.as_str(), "{row}");
        assert_eq!(row["verify_method"], "host_readback", "{row}");
        let sent = row["images_sent"].as_array().unwrap();
        let super_sent = sent
            .iter()
            .find(|i| i["partition"] == "super" || i["file"] == "super")
            .unwrap_or_else(|| panic!("super.img not sent: {row}"));
        assert_eq!(
            super_sent["sha256"],
            hex::encode(Sha256::digest(&super_img)),
            "{row}"
        );
        // Verification read LP metadata, erofs metadata and the client: a few KiB, not the
        // 256 MiB super.
        let read = row["verify_bytes_read"].as_u64().unwrap();
        assert!(read < 1 << 20, "{row}");
        // The unit's log names the logical partition the metadata gave.
        let log = std::fs::read_to_string(row["log_path"].as_str().unwrap()).unwrap();
        assert!(
            log.contains("the region's activation client verified in super/system_a"),
            "{log}"
        );
    }

    // Both work orders are in the station's journal, each with its own product.
    let report = |work_order: &str| -> serde_json::Value {
        let out = Command::new(flashgate_bin())
            .args(["report", "--work-order", work_order, "--json", "--station"])
            .arg(demo.join("station.yaml"))
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(report("WO-DEMO-EEA")["units_passed"], 8);
    assert_eq!(report("WO-MODERN-EEA")["units_passed"], 8);
}

#[test]
fn a_china_super_image_under_the_eea_name_is_refused_before_any_phone_is_touched() {
    let (_keep, demo) = demo_copy();
    // The China super.img shipped as the EEA one, its manifest entry matching the file: only
    // the client inside super's system gives it away.
    let images = demo.join("images/fgmodern");
    let eea_super = images.join("00EEA/super.img");
    std::fs::copy(images.join("00CN/super.img"), &eea_super).unwrap();
    let manifest_path = demo.join("products/fgmodern.yaml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    let patched = manifest.replace(
        &manifest_line(&manifest, "00EEA", "super"),
        &manifest_line(&manifest, "00CN", "super").replace("00CN/", "00EEA/"),
    );
    assert_ne!(patched, manifest);
    std::fs::write(&manifest_path, &patched).unwrap();
    flashgate_scenarios::sign_manifest(&manifest_path);

    let out = run(&demo, "WO-MODERN-EEA", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let found = client_sha256(&manifest, "00CN");
    let allowed = client_sha256(&manifest, "00EEA");
    let expected = format!(
        "error: pre-flight refused the batch; no phone was touched: \
         ACTIVATION_CLIENT_WRONG_REGION: image `super` ({}) of region 00EEA: \
         super/system_a {CLIENT} has the 00CN client, work order WO-MODERN-EEA needs 00EEA: \
         found SHA-256 {found}, region 00EEA allows {allowed}; the build is mis-packaged, do not \
         flash it",
        eea_super.display()
    );
    assert_eq!(stderr.trim(), expected);
    assert!(
        out.stdout.is_empty(),
        "a batch started: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!demo.join("state/journal.sqlite").exists());
    assert_ne!(found, allowed);
}

/// The demo's EDL package for fgmodern places each image at its partition of the phone the
/// simulated rig builds for the product (the same GPT a fastboot unit of it has), so the lines
/// `make-images.sh` writes cannot drift from the simulator's layout.
#[test]
fn the_modern_edl_package_writes_each_image_at_its_partition_on_the_rig_phone() {
    use station::mode::Mode;
    use station::preflight::load_and_check;
    use station::sim_fleet::rig::product_phone;

    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/demo");
    let (_, batch) = load_and_check(
        &demo.join("station.yaml"),
        &demo.join("work-orders/WO-MODERN-EEA.yaml"),
    )
    .unwrap_or_else(|e| panic!("pre-flight: {e}"));
    let phone = product_phone(&batch, 5, Mode::Edl).unwrap();
    let state = phone.lock();
    let rawprogram =
        std::fs::read_to_string(demo.join("images/fgmodern/00EEA/rawprogram0.xml")).unwrap();
    let attribute = |line: &str, name: &str| -> u64 {
        let start = line.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        let len = line[start..].find('"').unwrap();
        line[start..start + len].parse().unwrap()
    };
    let mut labels = Vec::new();
    for line in rawprogram.lines().filter(|l| l.contains("<program ")) {
        let label_at = line.find(" label=\"").unwrap() + 8;
        let label = &line[label_at..label_at + line[label_at..].find('"').unwrap()];
        let partition = state
            .storage
            .partition(label)
            .unwrap_or_else(|| panic!("the rig phone has no {label}"));
        assert_eq!(partition.lun, 0, "{label}");
        assert_eq!(partition.sector_size, 4096, "{label}");
        assert_eq!(
            attribute(line, "start_sector"),
            partition.first_lba,
            "{label}"
        );
        let sectors = attribute(line, "num_partition_sectors");
        assert!(
            partition.first_lba + sectors - 1 <= partition.last_lba,
            "{label}: {sectors} sectors past the partition"
        );
        if label == "super" {
            assert_eq!(partition.last_lba - partition.first_lba + 1, sectors);
        }
        labels.push(label.to_string());
    }
    assert_eq!(
        labels,
        ["boot_a", "boot_b", "vbmeta_a", "vbmeta_b", "super"]
    );
    assert!(
        state.storage.partition("system_a").is_none(),
        "system is logical"
    );
}
