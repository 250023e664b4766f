//! Corpus replay on stable: every seed and every kept crash of every target, through the same
//! bodies the fuzzer runs. A crash input lives in `fuzz/regressions/TARGET/` once its cause is
//! fixed; replaying it here is its regression test.
//!
//! `cargo test -p flashgate-station fuzz_targets::tests::write_seeds -- --ignored` rewrites
//! `fuzz/seeds/` from the demo configuration, `mke2fs` and `mkfs.erofs` (run it when the seeds
//! should change).

use super::*;
use protocols::fuzz_replay;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

#[test]
fn every_seed_and_regression_replays_cleanly() {
    fuzz_replay::assert_corpora_replay(&fuzz_dir(), TARGETS);
}

#[test]
fn every_fuzz_target_file_has_a_body_here() {
    fuzz_replay::assert_target_files_match(&fuzz_dir(), TARGETS);
}

#[test]
fn the_seeds_load_as_the_demo_does() {
    let seed = |target: &str, name: &str| {
        std::fs::read_to_string(fuzz_dir().join("seeds").join(target).join(name)).unwrap()
    };
    let demo = demo_dir();
    let doc = YamlDocument::from_text(demo.join("station.yaml"), seed("yaml_station", "demo"));
    StationConfig::from_document(&doc).unwrap();
    let doc = YamlDocument::from_text(
        demo.join("products/fgdemo.yaml"),
        seed("yaml_product", "demo"),
    );
    ProductManifest::from_document(&doc, &demo.join("images").canonicalize().unwrap()).unwrap();
    let doc = YamlDocument::from_text(
        demo.join("work-orders/WO-DEMO-WW.yaml"),
        seed("yaml_work_order", "demo"),
    );
    WorkOrder::from_document(&doc).unwrap();
    for name in ["demo", "demo-faults", "faults"] {
        let doc = YamlDocument::from_text(demo.join("phones.yaml"), seed("yaml_phones", name));
        PhonesFile::from_document(doc).unwrap();
    }
    let image = std::fs::read(fuzz_dir().join("seeds/ext4_client/tiny-ext4")).unwrap();
    let (_, found) = crate::ext4::hash_file_in_ext4(image, crate::ext4::FUZZ_CLIENT_PATH, 1 << 20);
    assert_eq!(found.unwrap().size, 40);
    for name in ["plain-erofs", "lz4hc-erofs"] {
        let image = std::fs::read(fuzz_dir().join("seeds/erofs_client").join(name)).unwrap();
        let (_, found) =
            crate::erofs::hash_file_in_erofs(image, crate::erofs::FUZZ_CLIENT_PATH, 1 << 20);
        assert_eq!(found.unwrap().size, 39 * 120, "{name}");
    }
}

// ---- seeds -------------------------------------------------------------------------------

fn write_seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = fuzz_dir().join("seeds").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// A phones file with every fault key and a swap, so mutations start from each branch.
const PHONES_WITH_EVERY_FAULT: &str = "phones:
  - slot: 1
    mode: fastboot
    product: flashgate_sim
    serial: FG123456
    slots: [a, b]
    current_slot: b
    partitions:
      system_b: { image: images/00CN/system.img }
      misc: { fill: 0x00, size: 4K }
    faults:
      drop_writes: [system_a]
      disconnect_after: 64M
      disconnect_during: [{ on: \"flash:system_a\", at: 40% }]
      hang: [{ on: \"flash:system_a\", for: 5s, times: 1 }]
      fail: [{ on: \"getvar:product\", message: busy, times: 1 }]
      rate: 40M
      read_back: [{ on: \"fetch:system_a\", fill: 0xff, size: 1M }]
      set_active: lost_on_reboot
      pull_cable: { on: \"flash:boot_a\" }
      answer:
        - { on: \"getvar:product\", with: garbage, times: 1 }
        - { on: \"flash:system_a\", with: too_long, length: 300 }
        - { on: set_active, with: info_flood, every: 100ms }
        - { on: download, with: truncated }
        - { on: erase, with: unknown_prefix }
        - { on: download, with: data_size, size: 0x1000 }
        - { on: flash, with: malformed }
        - { on: \"getvar:max-download-size\", with: okay, text: \"0x0\" }
        - { on: fetch, with: short_data, size: 100 }
    swap_at_next_reboot: { serial: FG999999, slots: [], faults: { set_active: ignored, pull_cable: { at: next_reboot } } }
  - slot: 2
    mode: edl
    faults:
      programmer_boot: 2s
      disconnect_during: [{ on: \"program:system_a\", at: 100% }]
      hang: [{ on: configure, for: ever }]
      sahara: { with: absurd_read, offset: 0, length: 1T }
      firehose_packets: split 7
      answer: [{ on: program, with: unknown_prefix }, { on: read, with: short_data, size: 4K }]
  - { slot: 3, mode: edl, faults: { sahara: { with: exec_length, length: 0xffffffff }, firehose_packets: merged } }
  - { slot: 4, mode: edl, faults: { sahara: { with: hello_lost } } }
";

#[test]
#[ignore = "writes fuzz/seeds/; run by hand when the seeds should change (needs mke2fs)"]
fn write_seeds() {
    let demo = demo_dir();
    let copy = |target: &str, from: &str| {
        write_seed(target, "demo", &std::fs::read(demo.join(from)).unwrap());
    };
    copy("yaml_station", "station.yaml");
    copy("yaml_product", "products/fgdemo.yaml");
    copy("yaml_work_order", "work-orders/WO-DEMO-WW.yaml");
    copy("yaml_phones", "phones.yaml");
    write_seed(
        "yaml_phones",
        "demo-faults",
        &std::fs::read(demo.join("phones-faults.yaml")).unwrap(),
    );
    write_seed("yaml_phones", "faults", PHONES_WITH_EVERY_FAULT.as_bytes());

    // The smallest ext4 mke2fs makes that holds the client: 64 blocks of 1 KiB, 16 inodes, no
    // journal; the client is 40 bytes, so it lives in one extent block.
    let dir = tempfile::tempdir().unwrap();
    let client = dir
        .path()
        .join("root")
        .join(crate::ext4::FUZZ_CLIENT_PATH.trim_start_matches('/'));
    std::fs::create_dir_all(client.parent().unwrap()).unwrap();
    std::fs::write(&client, b"flashgate fuzz seed: activation client\n\0").unwrap();
    let image = dir.path().join("tiny.img");
    std::fs::write(&image, vec![0u8; 64 * 1024]).unwrap();
    let status = std::process::Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "1024", "-N", "16"])
        .args(["-O", "^has_journal,^resize_inode", "-E", "root_owner=0:0"])
        .arg("-d")
        .arg(dir.path().join("root"))
        .arg(&image)
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .status()
        .expect("mke2fs (e2fsprogs) is needed to write the ext4 seed");
    assert!(status.success());
    write_seed("ext4_client", "tiny-ext4", &std::fs::read(&image).unwrap());
    erofs_seeds();
}

/// Two small erofs images as mkfs.erofs makes a system image: the client where the erofs
/// target looks for it, and a build.prop; one uncompressed, one with lz4hc in 4 KiB clusters.
fn erofs_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let client = root.join(crate::erofs::FUZZ_CLIENT_PATH.trim_start_matches('/'));
    std::fs::create_dir_all(client.parent().unwrap()).unwrap();
    std::fs::write(
        &client,
        b"flashgate fuzz seed: activation client\n".repeat(120),
    )
    .unwrap();
    std::fs::write(root.join("system/build.prop"), b"ro.build.id=FG.SEED\n").unwrap();
    for (name, compression) in [("plain-erofs", None), ("lz4hc-erofs", Some("-zlz4hc"))] {
        let image = dir.path().join(name);
        let mut mkfs = std::process::Command::new("mkfs.erofs");
        mkfs.args([
            "--quiet",
            "-T",
            "1700000000",
            "-U",
            "9a5e7a1c-5eed-4a11-8f00-000000000001",
        ]);
        mkfs.arg("--all-root");
        if let Some(flag) = compression {
            mkfs.arg(flag);
        }
        let status = mkfs
            .arg(&image)
            .arg(&root)
            .status()
            .expect("mkfs.erofs (erofs-utils) is needed to write the erofs seeds");
        assert!(status.success());
        write_seed("erofs_client", name, &std::fs::read(&image).unwrap());
    }
}
