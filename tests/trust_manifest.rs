//! Region mix-ups and release trust, on copies of `configs/demo`: a manifest edited after the
//! release signed it, or signed by a key the station does not pin (checked against Debian's
//! `minisign`, which signs the demo manifests); a stale build whose `build.prop` names another
//! build than the manifest; an image without the activation client; a phone whose booting slot
//! holds an older build; and engineering mode, which every attempt records.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Cursor;
use std::path::Path;

use flashgate_scenarios::batch::{run_batch, BatchOutcome, BatchSetup, DemoStation};
use flashgate_scenarios::sign_manifest_with;
use protocols::external_tool;
use station::config::{PhonesFile, YamlDocument};
use station::events::{EventKind, SlotNumber};
use station::mode::Mode;
use station::preflight::{load_and_check, load_and_check_as, PreflightError};
use station::sim_fleet::rig::{sim_port, simulated_bus, FIRST_RIG_SERIAL};
use station::sim_fleet::scripted::scripted_rig;
use station::trust::manifest_signature::{signature_path, UntrustedManifest};
use station::verdict::{FailureCode, Verdict};

const DEMO_KEY_ID: &str = "AD7274E4FD7DC8D6";
const EEA: &str = "WO-DEMO-EEA";
const WW: &str = "WO-DEMO-WW";

fn refusal(demo: &DemoStation, work_order: &str) -> PreflightError {
    match load_and_check(&demo.station_file(), &demo.work_order_file(work_order)) {
        Ok(_) => panic!("pre-flight accepted {work_order}"),
        Err(e) => e,
    }
}

/// Runs `slots` fresh simulated phones of the batch `load` checked; every one gets a verdict.
fn run_fresh_phones(
    loaded: (
        station::config::StationConfig,
        station::preflight::CheckedBatch,
    ),
    slots: &[(SlotNumber, Mode)],
) -> BatchOutcome {
    let (station, batch) = loaded;
    let (bus, units) = simulated_bus(&batch, slots).unwrap();
    for unit in &units {
        unit.plug();
    }
    run_batch(BatchSetup {
        slots: slots.iter().map(|(s, _)| (sim_port(*s), *s)).collect(),
        stop_after_verdicts: Some(slots.len()),
        station,
        batch,
        bus,
        reactions: Vec::new(),
    })
}

fn serial_of(slot: SlotNumber) -> String {
    format!("FG{:06}", FIRST_RIG_SERIAL + u32::from(slot))
}

#[test]
fn the_demo_manifests_signed_by_minisign_verify_and_one_byte_changed_is_refused() {
    let demo = DemoStation::new();
    // The committed signature was made by `minisign -S` (configs/demo/make-images.sh); the
    // tool itself agrees it is valid.
    let output = external_tool::command("minisign")
        .arg("-V")
        .arg("-p")
        .arg(demo.root.join("keys/demo-release.pub"))
        .arg("-m")
        .arg(demo.manifest_file())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (_, batch) = demo.load(EEA);
    assert_eq!(
        batch.product.trust.signed_by().as_deref(),
        Some(format!("flashgate-demo (key id {DEMO_KEY_ID})").as_str())
    );

    // One byte of the manifest changed after signing (a comment, even): refused.
    let mut bytes = std::fs::read(demo.manifest_file()).unwrap();
    let at = bytes.iter().position(|&b| b == b'#').unwrap() + 2;
    bytes[at] ^= 0x20;
    std::fs::write(demo.manifest_file(), &bytes).unwrap();
    let refused = refusal(&demo, EEA);
    assert_eq!(refused.code(), Some(FailureCode::ManifestUntrusted));
    let PreflightError::ManifestUntrusted(untrusted) = &refused else {
        panic!("{refused}")
    };
    assert!(
        matches!(**untrusted, UntrustedManifest::BadSignature { .. }),
        "{refused}"
    );
    let message = refused.to_string();
    assert!(
        message.starts_with("MANIFEST_UNTRUSTED: manifest "),
        "{message}"
    );
    assert!(message.contains("products/fgdemo.yaml"), "{message}");
    assert!(
        message.contains(&format!(
            "by flashgate-demo (key id {DEMO_KEY_ID}) does not match"
        )),
        "{message}"
    );
    assert!(message.contains("do not flash it"), "{message}");
}

#[test]
fn a_manifest_signed_by_a_key_the_station_does_not_pin_is_refused_naming_the_key() {
    let demo = DemoStation::new();
    let keys = tempfile::tempdir().unwrap();
    let (public, secret) = (keys.path().join("k.pub"), keys.path().join("k.key"));
    let made = external_tool::command("minisign")
        .args(["-G", "-W", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    // "untrusted comment: minisign public key 0123456789ABCDEF"
    let key_id = std::fs::read_to_string(&public)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    sign_manifest_with(&demo.manifest_file(), &secret);
    let refused = refusal(&demo, EEA);
    assert_eq!(refused.code(), Some(FailureCode::ManifestUntrusted));
    let message = refused.to_string();
    assert!(
        message.contains(&format!("is signed by key id {key_id}")),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "which station.yaml does not pin (it pins flashgate-demo (key id {DEMO_KEY_ID}))"
        )),
        "{message}"
    );

    // Pinned as well, the same signature is trusted.
    let line = std::fs::read_to_string(&public).unwrap();
    let key = line.lines().nth(1).unwrap();
    demo.edit_station(|text| {
        text.replace(
            "trusted_manifest_keys:\n",
            &format!(
                "trusted_manifest_keys:\n  - {{ name: second-release, public_key: \"{key}\" }}\n"
            ),
        )
    });
    let (_, batch) = demo.load(EEA);
    assert_eq!(
        batch.product.trust.signed_by(),
        Some(format!("second-release (key id {key_id})"))
    );
}

#[test]
fn an_unsigned_manifest_is_refused_unless_the_station_is_in_engineering_mode_which_every_attempt_records(
) {
    let demo = DemoStation::new();
    std::fs::remove_file(signature_path(&demo.manifest_file())).unwrap();
    let refused = refusal(&demo, WW);
    assert_eq!(refused.code(), Some(FailureCode::ManifestUntrusted));
    assert!(
        refused.to_string().contains("is not signed (no "),
        "{refused}"
    );

    // `run --engineering`: flashed, loudly, and recorded.
    let loaded = load_and_check_as(&demo.station_file(), &demo.work_order_file(WW), true)
        .unwrap_or_else(|e| panic!("{e}"));
    let warning = loaded.1.product.trust.engineering_warning().unwrap();
    assert!(
        warning.starts_with("ENGINEERING MODE: the manifest is NOT trusted"),
        "{warning}"
    );
    let outcome = run_fresh_phones(loaded, &[(1, Mode::Fastboot)]);
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    // On every consumer's stream (dashboard, plain lines, JSON), for the whole run: a warning
    // of no slot, right after the batch starts.
    let warnings: Vec<&str> = outcome
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Warning {
                slot: None,
                message,
            } => Some(message.as_str()),
            _ => None,
        })
        .collect();
    // (The demo station's published proof key has its own warning after it.)
    assert_eq!(warnings.first(), Some(&warning.as_str()), "{warnings:?}");
    assert_eq!(warnings.iter().filter(|w| **w == warning).count(), 1);
    let rows = outcome.history(&serial_of(1));
    assert!(rows[0].engineering_mode, "{rows:?}");
    assert_eq!(rows[0].manifest_signed_by, None);

    // station.yaml's `engineering_mode: true` does the same; a signed manifest is still named.
    let demo = DemoStation::new();
    demo.edit_station(|text| format!("{text}engineering_mode: true\n"));
    let outcome = run_fresh_phones(demo.load(WW), &[(1, Mode::Fastboot)]);
    let rows = outcome.history(&serial_of(1));
    assert!(rows[0].engineering_mode);
    assert_eq!(
        rows[0].manifest_signed_by.as_deref(),
        Some(format!("flashgate-demo (key id {DEMO_KEY_ID})").as_str())
    );
}

#[test]
fn a_production_run_records_the_key_that_signed_its_manifest() {
    let demo = DemoStation::new();
    let outcome = run_fresh_phones(demo.load(WW), &[(1, Mode::Fastboot), (2, Mode::Edl)]);
    for slot in [1, 2] {
        assert_eq!(outcome.verdict_on(slot), Verdict::Pass, "slot {slot}");
    }
    let rows = outcome.history(&serial_of(1));
    assert!(!rows[0].engineering_mode);
    assert_eq!(
        rows[0].manifest_signed_by.as_deref(),
        Some(format!("flashgate-demo (key id {DEMO_KEY_ID})").as_str())
    );
    assert_eq!(
        rows[0].build_id_found.as_deref(),
        Some("FGDEMO.00WW.20251128")
    );
}

/// The release engineer's manifest names a newer build than the image it points at (a stale
/// image left in the release folder): refused before any phone, naming both ids and the file.
#[test]
fn a_stale_build_is_refused_with_build_id_mismatch() {
    let demo = DemoStation::new();
    demo.edit_manifest(|text| {
        text.replace(
            "build_id: FGDEMO.00EEA.20251128",
            "build_id: FGDEMO.00EEA.20251205",
        )
    });
    let refused = refusal(&demo, EEA);
    assert_eq!(refused.code(), Some(FailureCode::BuildIdMismatch));
    let message = refused.to_string();
    assert!(
        message.starts_with("BUILD_ID_MISMATCH: image `system` ("),
        "{message}"
    );
    assert!(
        message.contains("00EEA/system.img) of region 00EEA"),
        "{message}"
    );
    assert!(
        message.contains(
            "system /build.prop says ro.build.display.id=FGDEMO.00EEA.20251128, the manifest's \
             build_id is FGDEMO.00EEA.20251205"
        ),
        "{message}"
    );
    assert!(message.contains("do not flash it"), "{message}");
}

/// A tree like the demo's `system`, optionally without the activation client.
fn system_tree(root: &Path, build_id: &str) {
    std::fs::create_dir_all(root.join("app/Settings")).unwrap();
    std::fs::write(root.join("app/Settings/Settings.apk"), b"Settings\n").unwrap();
    std::fs::write(
        root.join("build.prop"),
        format!("ro.product.name=fgdemo\nro.build.display.id={build_id}\n"),
    )
    .unwrap();
}

/// A raw ext4 `system` image of build `build_id` without the activation client, at `image`.
fn system_without_client(demo: &DemoStation, build_id: &str, image: &Path) {
    let tree = demo.root.join(format!("tree-{build_id}"));
    system_tree(&tree, build_id);
    std::fs::create_dir_all(image.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(image);
    let made = external_tool::command("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-d"])
        .arg(&tree)
        .arg(image)
        .arg("1M")
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}

/// A build packaged without the activation client: refused as missing, not as unknown.
#[test]
fn an_image_without_the_activation_client_is_refused_as_missing() {
    let demo = DemoStation::new();
    let image = demo.image("00WW/system.img");
    system_without_client(&demo, "FGDEMO.00WW.20251128", &image);
    let bytes = std::fs::read(&image).unwrap();
    let digest = station::digest::Sha256Digest::of_bytes(&bytes);
    demo.edit_manifest(|text| {
        let at = text.find("path: 00WW/system.img,").unwrap();
        let end = at + text[at..].find('}').unwrap();
        format!(
            "{}path: 00WW/system.img, size: {}, sha256: \"{digest}\" {}",
            &text[..at],
            bytes.len(),
            &text[end..]
        )
    });
    let refused = refusal(&demo, WW);
    assert_eq!(
        refused.code(),
        Some(FailureCode::ActivationClientMissing),
        "{refused}"
    );
    let message = refused.to_string();
    assert!(
        message.starts_with("ACTIVATION_CLIENT_MISSING: image `system` ("),
        "{message}"
    );
    assert!(
        message.contains("/priv-app/ActivationClient/ActivationClient.apk is missing"),
        "{message}"
    );
}

/// Runs 00EEA (its plan cut to slot `a`, never switching) on two phones; phone 2 boots slot
/// `b`, which holds the image `system_b` (relative to the demo folder).
fn run_with_slot_b_holding(demo: &DemoStation, system_b: &str) -> BatchOutcome {
    demo.edit_manifest(|text| {
        let start = text.find("  00EEA:").unwrap();
        let (head, tail) = text.split_at(start);
        let tail = tail.replacen(
            "        slot: all\n        set_active: a\n",
            "        slot: a\n",
            1,
        );
        format!("{head}{tail}")
    });
    let (station, batch) = demo.load(EEA);
    let phones = format!(
        "phones:
  - slot: 1
  - slot: 2
    current_slot: b
    partitions:
      system_b: {{ image: {system_b} }}
"
    );
    let file = PhonesFile::from_document(YamlDocument::from_text(
        demo.root.join("phones.yaml"),
        phones,
    ))
    .unwrap();
    let rig = scripted_rig(&batch, &file, FIRST_RIG_SERIAL).unwrap();
    for unit in &rig.units {
        unit.plug();
    }
    let slots: BTreeMap<String, SlotNumber> =
        rig.slots.iter().map(|(s, _)| (sim_port(*s), *s)).collect();
    let outcome = run_batch(BatchSetup {
        stop_after_verdicts: Some(slots.len()),
        slots,
        station,
        batch,
        bus: rig.bus,
        reactions: Vec::new(),
    });
    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    outcome
}

/// A phone whose booting slot holds a build without the client: missing on the phone, read
/// back through `fetch:` (not unknown).
#[test]
fn a_phone_whose_booting_slot_has_no_client_fails_with_activation_client_missing() {
    let demo = DemoStation::new();
    system_without_client(
        &demo,
        "FGDEMO.00EEA.20251128",
        &demo.image("noclient/system.img"),
    );
    let outcome = run_with_slot_b_holding(&demo, "images/noclient/system.img");
    let (code, sentence) = outcome.failure_on(2);
    assert_eq!(code, "ACTIVATION_CLIENT_MISSING");
    assert!(
        sentence.starts_with(&format!(
            "slot 2 (serial {}): system_b has no /priv-app/ActivationClient/ActivationClient.apk: \
             the activation client is missing; work order {EEA} needs the 00EEA client ",
            serial_of(2)
        )),
        "{sentence}"
    );
    let row = &outcome.history(&serial_of(2))[0];
    assert_eq!(row.activation_sha256_found, None);
}

/// The EEA build with its `build.prop` naming an older build (same length, so the ext4 image
/// stays valid: file data has no checksum), expanded to a raw image at `out`.
fn older_eea_build(demo: &DemoStation, out: &Path) {
    let mut expanded = Cursor::new(Vec::new());
    protocols::sparse::expand(
        File::open(demo.image("00EEA/system.img")).unwrap(),
        &mut expanded,
    )
    .unwrap();
    let mut bytes = expanded.into_inner();
    let now = b"ro.build.display.id=FGDEMO.00EEA.20251128";
    let old = b"ro.build.display.id=FGDEMO.00EEA.20251101";
    let at = bytes
        .windows(now.len())
        .position(|w| w == now)
        .expect("the demo system image's build.prop");
    bytes[at..at + now.len()].copy_from_slice(old);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(out, bytes).unwrap();
}

/// A phone whose booting slot holds an older build (the right client, an older build.prop):
/// with a plan that writes slot `a` only and never switches, the station reads build.prop back
/// from the slot that boots, records the id it found, and fails the unit.
#[test]
fn a_phone_whose_booting_slot_holds_an_older_build_fails_with_build_id_mismatch() {
    let demo = DemoStation::new();
    older_eea_build(&demo, &demo.image("older/system.img"));
    let outcome = run_with_slot_b_holding(&demo, "images/older/system.img");
    let (code, sentence) = outcome.failure_on(2);
    assert_eq!(code, "BUILD_ID_MISMATCH");
    assert_eq!(
        sentence,
        format!(
            "slot 2 (serial {}): system_b /build.prop says build FGDEMO.00EEA.20251101, work \
             order {EEA} needs build FGDEMO.00EEA.20251128: the phone holds another build than \
             the manifest's",
            serial_of(2)
        )
    );
    let row = &outcome.history(&serial_of(2))[0];
    assert_eq!(row.build_id, "FGDEMO.00EEA.20251128");
    assert_eq!(row.build_id_found.as_deref(), Some("FGDEMO.00EEA.20251101"));
    // The client itself is the region's: only the build is wrong.
    assert_eq!(
        row.activation_sha256_found.as_deref(),
        Some(outcome_client(&demo).as_str())
    );
    let passed = &outcome.history(&serial_of(1))[0];
    assert_eq!(
        passed.build_id_found.as_deref(),
        Some("FGDEMO.00EEA.20251128")
    );
}

fn outcome_client(demo: &DemoStation) -> String {
    let (_, batch) = demo.load(EEA);
    batch.image_set.activation_client.sha256.to_hex()
}
