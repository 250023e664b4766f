//! Pre-flight and journal scenarios on copies of `configs/demo`: the demo loads and passes, and a
//! mis-packaged or altered build is refused before any phone is touched.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use flashgate_scenarios::batch::{copy_tree, demo_dir};
use protocols::external_tool;
use station::config::{ProductManifest, RegionCode, StationConfig, WorkOrder};
use station::digest::Sha256Digest;
use station::journal::{AttemptOutcome, AttemptStart, Journal};
use station::mode::Mode;
use station::preflight::{load_and_check, preflight, PreflightError};
use station::verdict::{FailureCode, Verdict};
use station::verified_image::{ImageCheckError, ImageFormat};

const CLIENT: &str = "/priv-app/ActivationClient/ActivationClient.apk";

/// A private copy of the demo station to break in one way.
pub(crate) struct Demo {
    _dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
}

impl Demo {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("demo");
        copy_tree(&demo_dir(), &root);
        Demo { _dir: dir, root }
    }

    pub(crate) fn station(&self) -> PathBuf {
        self.root.join("station.yaml")
    }

    pub(crate) fn work_order(&self, id: &str) -> PathBuf {
        self.root.join(format!("work-orders/{id}.yaml"))
    }

    pub(crate) fn manifest_path(&self) -> PathBuf {
        self.root.join("products/fgdemo.yaml")
    }

    pub(crate) fn manifest_text(&self) -> String {
        std::fs::read_to_string(self.manifest_path()).unwrap()
    }

    pub(crate) fn image(&self, relative: &str) -> PathBuf {
        self.root.join("images").join(relative)
    }

    /// Rewrites the manifest's `files` entry `relative` with the file's current size and hash,
    /// as a packager regenerating the manifest from the files on disk would.
    pub(crate) fn repackage_entry(&self, relative: &str) {
        let bytes = std::fs::read(self.image(relative)).unwrap();
        let text = self.manifest_text();
        let start = text.find(&format!("path: {relative},")).unwrap();
        let end = start + text[start..].find('}').unwrap();
        let replacement = format!(
            "path: {relative}, size: {}, sha256: \"{}\" ",
            bytes.len(),
            Sha256Digest::of_bytes(&bytes)
        );
        let text = format!("{}{}{}", &text[..start], replacement, &text[end..]);
        std::fs::write(self.manifest_path(), text).unwrap();
        flashgate_scenarios::sign_manifest(&self.manifest_path());
    }
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_demo_configs_load_and_pass_preflight() {
    let demo = demo_dir();
    let station = StationConfig::load(&demo.join("station.yaml")).unwrap();
    assert_eq!(station.station_id, "demo-st01");
    assert_eq!(station.slots.len(), 8);
    let product = ProductManifest::load(
        &station.product_manifest_path("fgdemo"),
        &station.image_root,
    )
    .unwrap();
    assert_eq!(product.regions.len(), 3);
    for (id, region, format) in [
        ("WO-DEMO-WW", "00WW", ImageFormat::Raw),
        ("WO-DEMO-EEA", "00EEA", ImageFormat::Sparse),
        ("WO-DEMO-CN", "00CN", ImageFormat::Sparse),
    ] {
        let (_, batch) = load_and_check(
            &demo.join("station.yaml"),
            &demo.join(format!("work-orders/{id}.yaml")),
        )
        .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(batch.region().as_str(), region);
        // system, boot, vbmeta + the EDL package's rawprogram0 and patch0.
        assert_eq!(batch.images.len(), 5);
        assert_eq!(batch.programmers.len(), 1);
        assert_eq!(batch.activation.image_format, format);
        assert_eq!(
            batch.activation.sha256,
            product.regions[&RegionCode::parse(region).unwrap()]
                .activation_client
                .sha256
        );
        let system = batch.image("system").unwrap();
        let expanded = 1 << 20;
        assert!(
            batch.activation.bytes_read < expanded / 2,
            "{id}: read {} bytes of a {expanded}-byte filesystem",
            batch.activation.bytes_read
        );
        assert!(batch.bytes_hashed >= system.size());
    }
}

#[test]
fn a_work_order_with_another_regions_image_set_is_refused() {
    let demo = Demo::new();
    // The 00EEA entry now lists the 00CN files (paths, sizes and hashes all consistent), but
    // still allow-lists the 00EEA client.
    let text = demo.manifest_text();
    let eea = text.find("  00EEA:").unwrap();
    let cn = text.find("  00CN:").unwrap();
    let cn_files = {
        let block = &text[cn..];
        let start = block.find("    files:").unwrap();
        let end = block.find("    flash:").unwrap();
        block[start..end].to_string()
    };
    let eea_block = &text[eea..cn];
    let start = eea_block.find("    files:").unwrap();
    let end = eea_block.find("    flash:").unwrap();
    let new_eea = format!("{}{}{}", &eea_block[..start], cn_files, &eea_block[end..]);
    std::fs::write(
        demo.manifest_path(),
        format!("{}{}{}", &text[..eea], new_eea, &text[cn..]),
    )
    .unwrap();
    flashgate_scenarios::sign_manifest(&demo.manifest_path());

    let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-EEA")).unwrap_err();
    assert_eq!(
        error.code(),
        Some(FailureCode::ActivationClientWrongRegion),
        "{error}"
    );
    match &error {
        PreflightError::ActivationClientWrongRegion(mismatch) => {
            assert_eq!(mismatch.found_region.as_ref().unwrap().as_str(), "00CN");
            assert_eq!(mismatch.region.as_str(), "00EEA");
            assert_eq!(mismatch.work_order, "WO-DEMO-EEA");
        }
        other => panic!("expected a wrong-region refusal, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.starts_with("ACTIVATION_CLIENT_WRONG_REGION:"),
        "{message}"
    );
    assert!(
        message.contains("has the 00CN client, work order WO-DEMO-EEA needs 00EEA"),
        "{message}"
    );
    // The other regions are untouched and still pass.
    load_and_check(&demo.station(), &demo.work_order("WO-DEMO-WW")).unwrap();
}

#[test]
fn a_work_order_for_a_region_without_an_image_set_is_refused() {
    let demo = Demo::new();
    std::fs::write(
        demo.root.join("work-orders/WO-DEMO-US.yaml"),
        "id: WO-DEMO-US\nproduct: fgdemo\nregion: 00US\nquantity: 1\n",
    )
    .unwrap();
    let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-US")).unwrap_err();
    assert!(
        matches!(error, PreflightError::RegionMissing { .. }),
        "{error}"
    );
    assert!(error
        .to_string()
        .contains("has no image set for it (it has 00CN, 00EEA, 00WW)"));

    let station = StationConfig::load(&demo.station()).unwrap();
    let product = ProductManifest::load(&demo.manifest_path(), &station.image_root).unwrap();
    let mut order = WorkOrder::load(&demo.work_order("WO-DEMO-WW")).unwrap();
    order.product = "otherphone".into();
    assert!(matches!(
        preflight(&product, &order),
        Err(PreflightError::ProductMismatch { .. })
    ));
}

/// Builds `images/00EEA/system.img` from the 00EEA tree with the 00CN client put inside, and
/// regenerates the manifest entry, as a build server that mixed up one file would.
#[test]
fn a_mispackaged_image_is_refused_with_the_region_named() {
    let demo = Demo::new();
    let work = tempfile::tempdir().unwrap();
    let raw = |region: &str| {
        let out = work.path().join(format!("{region}.raw"));
        run(external_tool::command("simg2img")
            .arg(demo.image(&format!("{region}/system.img")))
            .arg(&out));
        out
    };
    let eea_raw = raw("00EEA");
    let cn_raw = raw("00CN");
    let tree = work.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    run(external_tool::command("debugfs")
        .arg("-R")
        .arg(format!("rdump / {}", tree.display()))
        .arg(&eea_raw));
    let client_in_tree = tree.join(CLIENT.trim_start_matches('/'));
    assert!(
        client_in_tree.exists(),
        "debugfs rdump did not extract the tree"
    );
    run(external_tool::command("debugfs")
        .arg("-R")
        .arg(format!("dump {CLIENT} {}", client_in_tree.display()))
        .arg(&cn_raw));
    let rebuilt = work.path().join("rebuilt.raw");
    run(external_tool::command("mke2fs")
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-N",
            "64",
            "-O",
            "^has_journal",
            "-d",
        ])
        .arg(&tree)
        .arg(&rebuilt)
        .arg("1024k"));
    run(external_tool::command("img2simg")
        .arg(&rebuilt)
        .arg(demo.image("00EEA/system.img")));
    demo.repackage_entry("00EEA/system.img");

    let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-EEA")).unwrap_err();
    let message = error.to_string();
    match &error {
        PreflightError::ActivationClientWrongRegion(mismatch) => {
            assert_eq!(
                mismatch.found_region.as_ref().map(RegionCode::as_str),
                Some("00CN"),
                "{message}"
            );
            assert_eq!(mismatch.image, "system");
        }
        other => panic!("expected ACTIVATION_CLIENT_WRONG_REGION, got {other}"),
    }
    assert!(
        message.contains(&format!("system {CLIENT} has the 00CN client")),
        "{message}"
    );
    assert!(message.contains("00EEA/system.img"), "{message}");
}

#[test]
fn a_client_of_no_region_is_refused_as_unknown() {
    let demo = Demo::new();
    let text = demo.manifest_text();
    // Allow-list a different hash for 00WW: the image's client now belongs to no region.
    let ww = text.find("  00WW:").unwrap();
    let line = ww + text[ww..].find("      sha256: \"").unwrap();
    let end = line + text[line..].find('\n').unwrap();
    let fake = Sha256Digest::of_bytes(b"some other client");
    let text = format!("{}      sha256: \"{fake}\"{}", &text[..line], &text[end..]);
    std::fs::write(demo.manifest_path(), text).unwrap();
    flashgate_scenarios::sign_manifest(&demo.manifest_path());
    let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-WW")).unwrap_err();
    assert_eq!(
        error.code(),
        Some(FailureCode::ActivationClientUnknown),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("no region's allow-listed client"),
        "{error}"
    );
}

#[test]
fn a_client_path_the_image_lacks_is_refused_as_missing_not_unknown() {
    let demo = Demo::new();
    let text = demo.manifest_text();
    let ww = text.find("  00WW:").unwrap();
    let at = ww + text[ww..].find(CLIENT).unwrap();
    let gone = "/priv-app/ActivationClient/Gone.apk";
    let text = format!("{}{gone}{}", &text[..at], &text[at + CLIENT.len()..]);
    std::fs::write(demo.manifest_path(), text).unwrap();
    flashgate_scenarios::sign_manifest(&demo.manifest_path());
    let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-WW")).unwrap_err();
    assert_eq!(
        error.code(),
        Some(FailureCode::ActivationClientMissing),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("ACTIVATION_CLIENT_MISSING: image `system`"),
        "{message}"
    );
    assert!(message.contains(gone), "{message}");
    assert!(message.contains("do not flash it"), "{message}");
}

#[test]
fn an_image_changed_after_the_manifest_was_written_is_refused() {
    let demo = Demo::new();
    // Same size, one byte different.
    let boot = demo.image("00WW/boot.img");
    let mut bytes = std::fs::read(&boot).unwrap();
    bytes[5000] ^= 0x01;
    std::fs::write(&boot, &bytes).unwrap();
    let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-WW")).unwrap_err();
    assert_eq!(
        error.code(),
        Some(FailureCode::ImageHashMismatch),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("IMAGE_HASH_MISMATCH: image `boot`"),
        "{message}"
    );
    assert!(
        message.contains("the file changed after the manifest was written"),
        "{message}"
    );

    // Grown by a byte: caught by size before hashing.
    let demo = Demo::new();
    let system = demo.image("00EEA/system.img");
    let mut bytes = std::fs::read(&system).unwrap();
    bytes.push(0);
    std::fs::write(&system, &bytes).unwrap();
    let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-EEA")).unwrap_err();
    assert_eq!(error.code(), Some(FailureCode::ImageHashMismatch));
    assert!(error.to_string().contains("the manifest says"), "{error}");
}

#[test]
fn an_image_changed_after_preflight_is_not_what_phones_are_sent() {
    let demo = Demo::new();
    let (_, batch) = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-WW")).unwrap();
    let vbmeta = batch.image("vbmeta").unwrap();
    let checked = std::fs::read(vbmeta.path()).unwrap();
    let copy = vbmeta.private_copy().expect("a private copy").to_path_buf();
    assert!(
        copy.starts_with(demo.root.join("state/images")),
        "{}",
        copy.display()
    );
    let mut edited = checked.clone();
    edited[0] = b'X';
    std::fs::write(vbmeta.path(), &edited).unwrap();
    let mut sent = Vec::new();
    vbmeta
        .open_stream()
        .unwrap()
        .read_to_end(&mut sent)
        .unwrap();
    assert_eq!(sent, checked, "phones are sent the copy pre-flight hashed");

    // The private copy itself written to (root can): refused before a byte is handed out.
    std::thread::sleep(Duration::from_millis(20));
    let mut permissions = std::fs::metadata(&copy).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&copy, permissions).unwrap();
    std::fs::write(&copy, &edited).unwrap();
    let error = vbmeta.open_stream().unwrap_err();
    assert!(error.to_string().contains("private copy"), "{error}");
}

#[test]
fn an_image_changed_after_preflight_cannot_be_streamed_when_hashed_per_phone() {
    let demo = Demo::new();
    let (_, batch) = station::preflight::load_and_check_hashing_per_phone(
        &demo.station(),
        &demo.work_order("WO-DEMO-WW"),
        false,
    )
    .unwrap();
    let vbmeta = batch.image("vbmeta").unwrap();
    assert_eq!(vbmeta.private_copy(), None);
    std::thread::sleep(Duration::from_millis(20));
    let mut bytes = std::fs::read(vbmeta.path()).unwrap();
    bytes[0] = b'X';
    std::fs::write(vbmeta.path(), &bytes).unwrap();
    let error = vbmeta.open_stream().unwrap_err();
    assert!(
        error
            .to_string()
            .contains("changed on disk since pre-flight"),
        "{error}"
    );
}

#[test]
fn the_journal_keeps_verdicts_across_reopen_and_flags_reuse() {
    let demo = Demo::new();
    let (station, batch) = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-WW")).unwrap();
    let start = |slot: u16, work_order: &str| AttemptStart {
        slot,
        port_path: format!("sim-{slot}"),
        station_id: station.station_id.clone(),
        line: station.line.clone(),
        work_order: work_order.into(),
        work_order_quantity: batch.work_order.quantity,
        product: batch.product.name.clone(),
        region: batch.region().to_string(),
        build_id: batch.image_set.build_id.clone(),
        manifest_sha256: batch.product.manifest_sha256,
        tool_version: "flashgate-test".into(),
        log_path: None,
        started_at: SystemTime::now(),
        operator: None,
        manifest_signed_by: None,
        engineering_mode: false,
    };
    let pass = AttemptOutcome {
        verdict: Verdict::Pass,
        images_sent: Vec::new(),
        activation_sha256_found: Some(batch.activation.sha256),
        build_id_found: None,
        verify_method: Some(batch.image_set.activation_client.verify),
        verify_bytes_read: Some(batch.activation.bytes_read),
        finished_at: SystemTime::now(),
    };
    {
        let mut journal = Journal::open(&station.journal).unwrap();
        let id = journal.begin(&start(1, "WO-DEMO-WW")).unwrap();
        journal
            .identified(id, "FGSIM0001", Mode::Fastboot, SystemTime::now())
            .unwrap();
        let finished = journal.finish(id, &pass).unwrap();
        assert!(finished.passed_under_other_work_orders.is_empty());
    }
    // A new process (station restart) sees the verdict and flags the same unit under another
    // work order.
    let mut journal = Journal::open(&station.journal).unwrap();
    let history = journal.history("FGSIM0001").unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].result, "PASS");
    assert_eq!(
        history[0].manifest_sha256,
        batch.product.manifest_sha256.to_hex()
    );
    let id = journal.begin(&start(4, "WO-DEMO-EEA")).unwrap();
    let warned = journal
        .identified(id, "FGSIM0001", Mode::Edl, SystemTime::now())
        .unwrap();
    assert_eq!(warned, vec!["WO-DEMO-WW".to_string()]);
    let finished = journal.finish(id, &pass).unwrap();
    assert_eq!(
        finished.passed_under_other_work_orders,
        vec!["WO-DEMO-WW".to_string()]
    );
    drop(journal);

    let journal = Journal::open_existing(&station.journal).unwrap();
    let report = journal.report("WO-DEMO-EEA").unwrap();
    assert_eq!(report.counts.units_passed, 1);
    assert_eq!(report.flagged_units.len(), 1);
    assert_eq!(report.flagged_units[0].serial, "FGSIM0001");
    assert_eq!(journal.history("FGSIM0001").unwrap().len(), 2);
}

/// Runs pre-flight of `work_order` on another thread, so a pre-flight that blocks (opening a
/// FIFO for reading waits for a writer) fails the test instead of hanging it.
fn preflight_within(demo: &Demo, work_order: &str) -> Result<(), PreflightError> {
    let (station, order) = (demo.station(), demo.work_order(work_order));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(load_and_check(&station, &order).map(drop));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("pre-flight did not return within 60 s")
}

#[cfg(unix)]
#[test]
fn a_fifo_or_a_directory_at_an_image_path_is_refused_as_not_a_file() {
    for (relative, work_order) in [
        ("00EEA/boot.img", "WO-DEMO-EEA"),
        ("00EEA/rawprogram0.xml", "WO-DEMO-EEA"),
        ("edl/prog_firehose_fgdemo.elf", "WO-DEMO-WW"),
    ] {
        let demo = Demo::new();
        let path = demo.image(relative);
        std::fs::remove_file(&path).unwrap();
        run(Command::new("mkfifo").arg(&path));
        let error = preflight_within(&demo, work_order).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(
                &error,
                PreflightError::Image {
                    source: ImageCheckError::NotRegularFile { kind: "a FIFO", .. }
                }
            ),
            "{relative}: {message}"
        );
        assert!(
            message.contains(&format!("{relative}) is a FIFO, not a regular file")),
            "{message}"
        );
        assert_eq!(error.code(), None, "{message}");
    }

    let demo = Demo::new();
    let boot = demo.image("00WW/boot.img");
    std::fs::remove_file(&boot).unwrap();
    std::fs::create_dir(&boot).unwrap();
    let error = preflight_within(&demo, "WO-DEMO-WW").unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("IMAGE_NOT_A_FILE: image `boot` (")
            && message.contains("00WW/boot.img) is a directory, not a regular file"),
        "{message}"
    );
    assert!(!message.contains("bytes on disk"), "{message}");
}

#[test]
fn a_missing_image_is_refused_as_missing_not_as_a_mismatch() {
    let demo = Demo::new();
    std::fs::remove_file(demo.image("00EEA/vbmeta.img")).unwrap();
    let error = preflight_within(&demo, "WO-DEMO-EEA").unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            &error,
            PreflightError::Image {
                source: ImageCheckError::Missing { key, .. }
            } if key == "vbmeta"
        ),
        "{message}"
    );
    assert_eq!(error.code(), None, "{message}");
    assert!(!message.contains("IMAGE_HASH_MISMATCH"), "{message}");
    assert!(
        message.starts_with("IMAGE_MISSING: image `vbmeta`"),
        "{message}"
    );
    assert!(
        message.contains("00EEA/vbmeta.img): no such file; copy the build's file there"),
        "{message}"
    );
}

#[test]
fn every_refused_file_is_said_once_under_its_own_code() {
    let demo = Demo::new();
    std::fs::remove_file(demo.image("00EEA/vbmeta.img")).unwrap();
    let boot = demo.image("00EEA/boot.img");
    let mut bytes = std::fs::read(&boot).unwrap();
    bytes[5000] ^= 0x01;
    std::fs::write(&boot, &bytes).unwrap();
    let station = StationConfig::load(&demo.station()).unwrap();
    let order = WorkOrder::load(&demo.work_order("WO-DEMO-EEA")).unwrap();
    let product = station::preflight::load_product(&station, &order).unwrap();
    let refusals = station::preflight::preflight_findings(&product, &order).unwrap_err();
    let lines: Vec<String> = refusals.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].starts_with("IMAGE_HASH_MISMATCH: image `boot`"),
        "{lines:#?}"
    );
    assert_eq!(lines[0].matches("SHA-256").count(), 1, "{lines:#?}");
    assert!(
        lines[1].starts_with("IMAGE_MISSING: image `vbmeta`"),
        "{lines:#?}"
    );
    assert_eq!(lines[1].matches("no such file").count(), 1, "{lines:#?}");
}

#[test]
fn an_unknown_product_or_work_order_lists_the_known_ones() {
    let demo = Demo::new();
    let order = demo.work_order("WO-DEMO-WW");
    std::fs::write(
        &order,
        std::fs::read_to_string(&order)
            .unwrap()
            .replace("product: fgdemo", "product: fgdemo2"),
    )
    .unwrap();
    let error = load_and_check(&demo.station(), &order).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(&error, PreflightError::UnknownProduct { known, .. }
            if known == &["fgdemo", "fgmodern"]),
        "{message}"
    );
    assert!(
        message.contains("product `fgdemo2`")
            && message.contains("(known products: fgdemo, fgmodern)"),
        "{message}"
    );

    let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-XX")).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("WO-DEMO-XX.yaml does not exist")
            && message.contains(
                "WO-DEMO-CN, WO-DEMO-EEA, WO-DEMO-WW, WO-MODERN-CN, WO-MODERN-EEA, WO-MODERN-WW"
            ),
        "{message}"
    );
}

#[test]
fn configs_nested_100k_and_200k_levels_deep_are_refused_with_file_and_line() {
    for depth in [100_000, 200_000] {
        let demo = Demo::new();
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let order = demo.work_order("WO-DEMO-EEA");
        std::fs::write(
            &order,
            format!("id: WO-DEMO-EEA\nproduct: fgdemo\nregion: {nested}\nquantity: 8\n"),
        )
        .unwrap();
        let error = load_and_check(&demo.station(), &order).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}:3: key `(document)`: values nest more than 64 levels deep here; flashgate \
                 configs nest a few levels; this file is damaged or not a flashgate config, \
                 restore it from version control",
                order.display()
            )
        );

        let demo = Demo::new();
        let mut text = demo.manifest_text();
        text.push_str(&format!("extra:\n  {}x\n", "- ".repeat(depth)));
        std::fs::write(demo.manifest_path(), &text).unwrap();
        flashgate_scenarios::sign_manifest(&demo.manifest_path());
        let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-EEA")).unwrap_err();
        let line = text.lines().count();
        assert!(
            error.to_string().starts_with(&format!(
                "{}:{line}: key `(document)`: values nest more than 64 levels",
                demo.manifest_path().display()
            )),
            "{error}"
        );

        let demo = Demo::new();
        let mut text = std::fs::read_to_string(demo.station()).unwrap();
        text.push_str(&format!(
            "x: {}1{}\n",
            "{a: ".repeat(depth),
            "}".repeat(depth)
        ));
        std::fs::write(demo.station(), &text).unwrap();
        let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-EEA")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("values nest more than 64 levels deep here"),
            "{error}"
        );
        assert_eq!(
            error.to_string().split(": key").next().unwrap(),
            format!("{}:{}", demo.station().display(), text.lines().count())
        );
    }
}

#[test]
fn a_plan_that_writes_slot_b_and_activates_slot_a_is_refused_at_load() {
    let demo = Demo::new();
    let text = demo.manifest_text();
    let eea = text.find("  00EEA:").unwrap();
    let edited = format!(
        "{}{}",
        &text[..eea],
        text[eea..].replacen("        slot: all\n", "        slot: b\n", 1)
    );
    std::fs::write(demo.manifest_path(), &edited).unwrap();
    flashgate_scenarios::sign_manifest(&demo.manifest_path());
    let line = 1
        + edited[..eea].lines().count()
        + edited[eea..]
            .lines()
            .position(|l| l == "        set_active: a")
            .unwrap();
    let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-EEA")).unwrap_err();
    assert!(
        matches!(&error, PreflightError::Config(c) if c.line() == Some(line)),
        "{error}"
    );
    assert!(
        error.to_string().starts_with(&format!(
            "{}:{line}: key `regions.00EEA.flash.fastboot.set_active`: the plan writes slot b \
             but activates slot a",
            demo.manifest_path().display()
        )),
        "{error}"
    );
}

/// Deterministic mutations of the demo configs through each loader's bytes entry point: an
/// error or a config, never a panic (a smoke test; the fuzzers go further).
#[test]
fn config_loaders_take_arbitrary_bytes() {
    let demo = Demo::new();
    let root = demo.root.join("images").canonicalize().unwrap();
    let inputs = [
        std::fs::read(demo.station()).unwrap(),
        std::fs::read(demo.work_order("WO-DEMO-EEA")).unwrap(),
        std::fs::read(demo.manifest_path()).unwrap(),
    ];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    const NASTY: &[&[u8]] = &[
        b"[", b"{", b"&a ", b"*a", b"- ", b"\t", b": ", b"\xff", b"\n  ", b"!!", b"'", b"\"",
    ];
    for round in 0..600 {
        let mut bytes = inputs[round % 3].clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % bytes.len().max(1);
            match next() % 3 {
                0 => bytes.truncate(at),
                1 => {
                    let piece = NASTY[(next() as usize) % NASTY.len()];
                    bytes.splice(at..at, piece.iter().copied());
                }
                _ => {
                    if let Some(b) = bytes.get_mut(at) {
                        *b = next() as u8;
                    }
                }
            }
        }
        let file = Path::new("fuzz/fgdemo.yaml");
        let _ = StationConfig::from_bytes(file, &bytes);
        let _ = WorkOrder::from_bytes(file, &bytes);
        let _ = ProductManifest::from_bytes(file, &bytes, &root);
    }
}
