//! The bodies of the cargo-fuzz targets in `station/fuzz/`, one function per target: the YAML
//! loaders an engineer's files reach (a test engineer's phones file among them), and the ext4 lookup that verifies a phone's read-back.
//!
//! Same arrangement as `flashgate_protocols::fuzz_targets`: each target file is one line calling
//! its body here, compiled only for tests and fuzzing builds, and `cargo test` replays every
//! seed and kept crash through these bodies on stable.

use std::path::{Path, PathBuf};

use crate::config::{PhonesFile, ProductManifest, StationConfig, WorkOrder, YamlDocument};

/// A target's body: the fuzzer's bytes in, a panic on anything that must not happen.
pub type Body = fn(&[u8]);

/// Every target: its name (the file under `station/fuzz/fuzz_targets/`) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("yaml_station", yaml_station),
    ("yaml_product", yaml_product),
    ("yaml_work_order", yaml_work_order),
    ("yaml_phones", yaml_phones),
    ("ext4_client", ext4_client),
    ("erofs_client", erofs_client),
];

/// The demo configuration: relative paths in a fuzzed file resolve against its folders, so a
/// valid input loads as far as the real demo does.
fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo")
}

/// YAML is text: bytes that are not UTF-8 are refused when the file is read, before any parser.
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `station.yaml`, placed in the demo folder (its `image_root` must exist to load).
pub fn yaml_station(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let doc = YamlDocument::from_text(demo_dir().join("station.yaml"), text);
    if let Ok(config) = StationConfig::from_document(&doc) {
        assert!(config.slots.len() <= usize::from(crate::config::MAX_SLOTS));
    }
}

/// A product manifest named `fgdemo.yaml`, its paths resolved inside the demo image root.
pub fn yaml_product(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let demo = demo_dir();
    let Ok(image_root) = demo.join("images").canonicalize() else {
        return;
    };
    let doc = YamlDocument::from_text(demo.join("products/fgdemo.yaml"), text);
    if let Ok(product) = ProductManifest::from_document(&doc, &image_root) {
        assert!(!product.regions.is_empty());
        for set in product.regions.values() {
            for file in set.files.values() {
                assert!(
                    file.path.starts_with(&image_root),
                    "{}",
                    file.path.display()
                );
            }
        }
    }
}

/// A work order named `WO-DEMO-WW.yaml`.
pub fn yaml_work_order(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let doc = YamlDocument::from_text(demo_dir().join("work-orders/WO-DEMO-WW.yaml"), text);
    let _ = WorkOrder::from_document(&doc);
}

/// A phones file named `phones.yaml` in the demo folder (relative image paths resolve there;
/// the loader reads no image). What it accepts must hold what the rig relies on: every phone
/// on its own slot from 1, percentages within 0–100, disconnects only during writes.
pub fn yaml_phones(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let doc = YamlDocument::from_text(demo_dir().join("phones.yaml"), text);
    let Ok(file) = PhonesFile::from_document(doc) else {
        return;
    };
    assert!(!file.phones.is_empty());
    let mut slots = std::collections::BTreeSet::new();
    for phone in &file.phones {
        let slot = phone.slot.expect("a loaded phone has a slot");
        assert!(slot >= 1 && slots.insert(slot), "slot {slot} twice or zero");
        let mut next = Some(phone);
        while let Some(script) = next {
            for (on, percent) in &script.faults.disconnect_during {
                assert!(*percent <= 100, "{percent}%");
                assert!(on.starts_with("flash") || on.starts_with("program"), "{on}");
            }
            answers_within_bounds(&script.faults);
            if let (Some(slots), Some(current)) = (&script.slots, &script.current_slot) {
                assert!(slots.contains(current), "{current} not in {slots:?}");
            }
            next = script.swap_at_next_reboot.as_deref();
            if let Some(swapped) = next {
                assert_eq!(
                    swapped.slot, None,
                    "a swapped-in phone has no slot of its own"
                );
            }
        }
    }
}

/// What the simulator is given for `answer:`, `pull_cable:` and `firehose_packets:` is
/// within the bounds the loader promises.
fn answers_within_bounds(faults: &crate::config::FaultScript) {
    use crate::config::{Answer, FirehosePackets, PullCableScript};
    let rules = faults.hang.len() + faults.fail.len() + faults.answer.len();
    let rules = rules + faults.disconnect_during.len() + faults.read_back.len();
    assert!(rules <= crate::config::MAX_FAULT_RULES, "{rules} rules");
    for rule in &faults.answer {
        assert!(!rule.on.trim().is_empty());
        match &rule.with {
            Answer::TooLong(len) => assert!(
                (5..=crate::config::MAX_LONG_ANSWER as usize).contains(len),
                "{len}"
            ),
            Answer::InfoFlood(every) => assert!(!every.is_zero()),
            Answer::Okay(text) => assert!(text.len() <= crate::config::MAX_OKAY_TEXT),
            _ => {}
        }
    }
    if let Some(PullCableScript::On(on)) = &faults.pull_cable {
        assert!(!on.trim().is_empty());
    }
    if let Some(FirehosePackets::Split(n)) = faults.firehose_packets {
        assert!((1..=1 << 20).contains(&n), "{n}");
    }
}

/// A partition as a phone reads it back or an image file holds it: the activation client is
/// looked up and hashed, and directories listed, in the ext4 filesystem on these bytes, through
/// the same bounded reader the verify step and pre-flight use.
pub fn ext4_client(data: &[u8]) {
    crate::ext4::fuzz_one(data);
}

/// The same for an erofs filesystem (the client's lookup and hash, a listing, a small file).
pub fn erofs_client(data: &[u8]) {
    crate::erofs::exercise_untrusted_image(data);
}

#[cfg(test)]
mod tests;
