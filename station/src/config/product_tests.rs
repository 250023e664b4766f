//! Product manifest error paths: each refusal names file, line and key.

use std::path::Path;

use super::*;

const SHA_A: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const SHA_B: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const SHA_C: &str = "3333333333333333333333333333333333333333333333333333333333333333";

/// Line numbers in the tests below refer to this text.
const GOOD: &str = "\
product: fgdemo
identity:
  fastboot_product: fgdemo
  edl:
    - hw_id: \"0x000a50e100000000\"
      oem_pk_hash: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"
      programmer: { path: edl/prog.elf, size: 100, sha256: \"SHA_A\" }
regions:
  00WW:
    build_id: FGDEMO.00WW.1
    files:
      system: { path: 00WW/system.img, size: 1048576, sha256: \"SHA_A\" }
      boot: { path: 00WW/boot.img, size: 4096, sha256: \"SHA_B\" }
    flash:
      fastboot:
        slot: all
        set_active: a
        partitions:
          - { partition: boot, image: boot }
          - { partition: system, image: system }
    activation_client:
      partition: system
      image: system
      ext4_path: /priv-app/ActivationClient/ActivationClient.apk
      sha256: \"SHA_B\"
      verify: host_readback
  00CN:
    build_id: FGDEMO.00CN.1
    files:
      system: { path: 00CN/system.img, size: 1048576, sha256: \"SHA_C\" }
    flash:
      fastboot:
        slot: active
        partitions:
          - { partition: system, image: system }
    activation_client:
      partition: system
      image: system
      raw: { offset: 4096, length: 100 }
      sha256: \"SHA_C\"
      verify: device_digest
";

fn good() -> String {
    GOOD.replace("SHA_A", SHA_A)
        .replace("SHA_B", SHA_B)
        .replace("SHA_C", SHA_C)
}

fn root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["00WW", "00CN", "edl"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    dir
}

fn load(root: &Path, text: &str) -> Result<ProductManifest, ConfigError> {
    let root = root.canonicalize().unwrap();
    ProductManifest::from_document(
        &YamlDocument::from_text("products/fgdemo.yaml", text),
        &root,
    )
}

#[test]
fn loads_the_good_manifest() {
    let dir = root();
    let product = load(dir.path(), &good()).unwrap();
    assert_eq!(product.name, "fgdemo");
    assert_eq!(product.identity.fastboot_product.as_deref(), Some("fgdemo"));
    let edl = &product.identity.edl[0];
    assert_eq!(edl.hw_id, 0x000a_50e1_0000_0000);
    assert_eq!(
        product
            .identity
            .programmer_for(0x000a_50e1_0000_0000, &[0xaa; 32])
            .map(|e| e.programmer.relative.to_string()),
        Some("edl/prog.elf".to_string())
    );
    assert!(product.identity.programmer_for(1, &[0xaa; 32]).is_none());
    let ww = &product.regions[&RegionCode::parse("00WW").unwrap()];
    assert_eq!(ww.build_id, "FGDEMO.00WW.1");
    let plan = ww.fastboot.as_ref().unwrap();
    assert_eq!(plan.slot, SlotSelection::All);
    assert_eq!(plan.set_active, Some(AbSlot::A));
    assert_eq!(plan.steps[1].partition, "system");
    assert_eq!(ww.activation_image().unwrap().size, 1_048_576);
    assert_eq!(
        ww.activation_image().unwrap().path,
        dir.path().canonicalize().unwrap().join("00WW/system.img")
    );
    assert_eq!(
        ww.activation_client.location,
        ClientLocation::File {
            logical_partition: None,
            path: "/priv-app/ActivationClient/ActivationClient.apk".into()
        }
    );
    let cn = &product.regions[&RegionCode::parse("00CN").unwrap()];
    assert_eq!(
        cn.activation_client.location,
        ClientLocation::RawRange {
            offset: 4096,
            length: 100
        }
    );
    assert_eq!(
        product
            .region_with_client(&crate::digest::Sha256Digest::parse(SHA_C).unwrap())
            .map(RegionCode::as_str),
        Some("00CN")
    );
    assert_eq!(
        product.manifest_sha256,
        crate::digest::Sha256Digest::of_bytes(good().as_bytes())
    );
}

#[track_caller]
fn assert_refused(text: &str, line: usize, key: &str, words: &str) {
    let dir = root();
    let error = load(dir.path(), text).expect_err("manifest accepted");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("products/fgdemo.yaml:{line}: key `{key}`")),
        "expected line {line} key {key}: {message}"
    );
    assert_eq!(error.line(), Some(line), "{message}");
    assert_eq!(error.key().unwrap().to_string(), key, "{message}");
    assert!(message.contains(words), "expected {words:?}: {message}");
}

#[test]
fn unknown_key() {
    let text = good().replace(
        "      verify: host_readback",
        "      verify: host_readback\n      verfy: x",
    );
    assert_refused(
        &text,
        27,
        "regions.00WW.activation_client.verfy",
        "unknown field `verfy`",
    );
}

#[test]
fn missing_activation_client() {
    let start = good()
        .find("    activation_client:\n      partition: system\n      image: system\n      raw")
        .unwrap();
    let text = good()[..start].to_string();
    assert_refused(
        &text,
        28,
        "regions.00CN.activation_client",
        "every region must name its activation client",
    );
}

#[test]
fn bad_hash_format() {
    let text = good().replace(
        &format!("sha256: \"{SHA_B}\"\n      verify"),
        "sha256: \"abc123\"\n      verify",
    );
    assert_refused(
        &text,
        25,
        "regions.00WW.activation_client.sha256",
        "not a SHA-256 (expected 64 hex digits, found 6",
    );
    let text = good().replacen(SHA_A, &"g".repeat(64), 1);
    assert_refused(
        &text,
        7,
        "identity.edl[0].programmer.sha256",
        "`g` is not a hex digit",
    );
}

#[test]
fn paths_escaping_the_root() {
    let text = good().replace("00WW/boot.img", "../boot.img");
    assert_refused(&text, 13, "regions.00WW.files.boot.path", "`..`");
    let text = good().replace("00WW/boot.img", "/etc/passwd");
    assert_refused(&text, 13, "regions.00WW.files.boot.path", "absolute");
}

#[cfg(unix)]
#[test]
fn symlink_escaping_the_root() {
    let dir = root();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("boot.img"), b"x").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("boot.img"),
        dir.path().join("00WW/boot.img"),
    )
    .unwrap();
    let error = load(dir.path(), &good()).unwrap_err();
    let message = error.to_string();
    assert_eq!(error.line(), Some(13), "{message}");
    assert_eq!(
        error.key().unwrap().to_string(),
        "regions.00WW.files.boot.path"
    );
    assert!(message.contains("outside the image root"), "{message}");
}

#[test]
fn cross_references_and_values() {
    let g = good();
    let cases: Vec<(String, usize, &str, &str)> = vec![
        (
            g.replace(
                "- { partition: boot, image: boot }",
                "- { partition: boot, image: bootloader }",
            ),
            19,
            "regions.00WW.flash.fastboot.partitions[0].image",
            "`bootloader` is not one of this region's files (boot, system)",
        ),
        (
            g.replace(
                "- { partition: boot, image: boot }",
                "- { partition: system, image: boot }",
            ),
            20,
            "regions.00WW.flash.fastboot.partitions[1].partition",
            "written twice",
        ),
        (
            g.replacen(
                "      partition: system\n      image: system",
                "      partition: vendor\n      image: system",
                1,
            ),
            22,
            "regions.00WW.activation_client.partition",
            "does not write file `system` to partition `vendor`",
        ),
        (
            g.replacen(
                "      ext4_path: /priv-app",
                "      raw: { offset: 0, length: 1 }\n      ext4_path: /priv-app",
                1,
            ),
            21,
            "regions.00WW.activation_client",
            "both `ext4_path` and `raw`",
        ),
        (
            g.replacen(
                "      ext4_path: /priv-app/ActivationClient/ActivationClient.apk\n",
                "",
                1,
            ),
            21,
            "regions.00WW.activation_client",
            "neither `path` (or `ext4_path`) nor `raw`",
        ),
        (
            g.replace("verify: host_readback", "verify: device_digest"),
            26,
            "regions.00WW.activation_client.verify",
            "device digest covers a byte range",
        ),
        (
            g.replace("verify: host_readback", "verify: trust_me"),
            26,
            "regions.00WW.activation_client.verify",
            "unknown variant `trust_me`",
        ),
        (
            g.replace(
                "raw: { offset: 4096, length: 100 }",
                "raw: { offset: 1048570, length: 100 }",
            ),
            39,
            "regions.00CN.activation_client.raw",
            "run past the end",
        ),
        (
            g.replace(
                &format!("sha256: \"{SHA_C}\"\n      verify"),
                &format!("sha256: \"{SHA_B}\"\n      verify"),
            ),
            25,
            "regions.00WW.activation_client.sha256",
            "same activation client as region 00CN",
        ),
        (
            g.replace("  00CN:", "  00cn:"),
            27,
            "regions",
            "not a region code",
        ),
        (
            g.replace("  00CN:", "  00WW:"),
            27,
            "regions",
            "duplicate key `00WW`",
        ),
        (
            g.replace("product: fgdemo", "product: other"),
            1,
            "product",
            "rename the file to `other.yaml`",
        ),
        (
            g.replace("size: 4096", "size: 0"),
            13,
            "regions.00WW.files.boot.size",
            "empty image",
        ),
        (
            g.replace("build_id: FGDEMO.00WW.1", "build_id: FGDEMO 00WW"),
            10,
            "regions.00WW.build_id",
            "only letters",
        ),
        (
            g.replace("  fastboot_product: fgdemo\n", ""),
            31,
            "regions.00CN.flash.fastboot",
            "fastboot_product",
        ),
        (
            g.replace("slot: all", "slot: c"),
            16,
            "regions.00WW.flash.fastboot.slot",
            "unknown variant",
        ),
        (
            g.replace("hw_id: \"0x000a50e100000000\"", "hw_id: \"chip\""),
            5,
            "identity.edl[0].hw_id",
            "not a HW id",
        ),
        (
            g.replace("ext4_path: /priv-app", "ext4_path: priv-app"),
            24,
            "regions.00WW.activation_client.ext4_path",
            "does not start with `/`",
        ),
    ];
    for (text, line, key, words) in cases {
        assert_refused(&text, line, key, words);
    }
}

#[test]
fn declared_sizes() {
    let with = |sizes: &str| good().replacen("regions:\n", &format!("{sizes}regions:\n"), 1);
    let dir = root();
    let product = load(
        dir.path(),
        &with("sizes:\n  partitions: { system: 4096, boot_b: 8192 }\n  luns: { 0: 1048576, 3: 4096 }\n"),
    )
    .unwrap();
    assert_eq!(product.sizes.partition("system_a"), Some(4096));
    assert_eq!(product.sizes.partition("boot_b"), Some(8192));
    assert_eq!(product.sizes.luns.get(&3), Some(&4096));
    assert_eq!(
        load(dir.path(), &good()).unwrap().sizes,
        DeclaredSizes::default()
    );

    assert_refused(
        &with("sizes:\n  partitions: { system: 0 }\n"),
        9,
        "sizes.partitions.system",
        "size 0",
    );
    assert_refused(
        &with("sizes:\n  luns: { zero: 4096 }\n"),
        9,
        "sizes.luns",
        "`zero` is not a LUN number",
    );
    assert_refused(
        &with("sizes:\n  luns: { 0: 4096, 0: 8192 }\n"),
        9,
        "sizes.luns",
        "duplicate key `0`",
    );
    assert_refused(
        &with("sizes:\n  partition: { system: 1 }\n"),
        9,
        "sizes.partition",
        "unknown field `partition`",
    );
    // A LUN size must be whole sectors of the EDL plan's storage (UFS: 4096 bytes).
    let mut edl = with("sizes:\n  luns: { 0: 6144 }\n");
    let at = edl.rfind("    activation_client:\n").unwrap();
    edl.insert_str(
        at,
        "      edl:\n        storage: ufs\n        rawprogram: [system]\n",
    );
    assert_refused(
        &edl,
        9,
        "sizes.luns.0",
        "6144 bytes is not a whole number of the 4096-byte sectors region 00CN's EDL plan writes",
    );
}

#[test]
fn a_plan_must_boot_the_slot_it_writes() {
    let g = good();
    assert_refused(
        &g.replace("slot: all", "slot: b"),
        17,
        "regions.00WW.flash.fastboot.set_active",
        "the plan writes slot b but activates slot a: phones would boot slot a, which this plan \
         does not write; activate the slot the plan writes (`set_active: b`)",
    );
    for selection in ["active", "other"] {
        assert_refused(
            &g.replace("slot: all", &format!("slot: {selection}")),
            17,
            "regions.00WW.flash.fastboot.set_active",
            &format!("`slot: {selection}` writes whichever slot each phone reports"),
        );
    }
    assert_refused(
        &g.replace("slot: active", "slot: other"),
        33,
        "regions.00CN.flash.fastboot.slot",
        "`slot: other` writes the slot the phone does not boot, and nothing activates it",
    );
    // Consistent plans load: a slot and its activation, a slot alone, both slots.
    let dir = root();
    for text in [
        g.replace("slot: all", "slot: a"),
        g.replace("slot: all", "slot: b")
            .replace("set_active: a", "set_active: b"),
        g.replace("slot: all\n        set_active: a\n", "slot: a\n"),
    ] {
        load(dir.path(), &text).unwrap();
    }
}

#[test]
fn a_partition_written_twice_under_its_slot_name_is_refused() {
    let g = good();
    assert_refused(
        &g.replace(
            "- { partition: boot, image: boot }",
            "- { partition: system_a, image: boot }",
        ),
        20,
        "regions.00WW.flash.fastboot.partitions[1].partition",
        "partition `system` is written twice: once as `system_a` and once as `system` (slot all)",
    );
    // Slot b of a plan that writes slot a is another partition.
    let dir = root();
    let text = g.replace("slot: all", "slot: a").replace(
        "- { partition: boot, image: boot }",
        "- { partition: system_b, image: boot }",
    );
    load(dir.path(), &text).unwrap();
}

/// 00WW written as a dynamic-partition phone's plan: boot in the bootloader, then `system` in
/// fastbootd after `update-super`.
fn with_fastbootd(g: &str) -> String {
    g.replace(
        "      boot: { path: 00WW/boot.img, size: 4096, sha256: \"SHA_B\" }",
        "      boot: { path: 00WW/boot.img, size: 4096, sha256: \"SHA_B\" }\n      super_empty: { path: 00WW/super_empty.img, size: 8192, sha256: \"SHA_C\" }",
    )
    .replace(
        "          - { partition: boot, image: boot }\n          - { partition: system, image: system }",
        "          - { partition: boot, image: boot }\n        fastbootd:\n          super_empty: super_empty\n          partitions:\n            - { partition: system, image: system }",
    )
    .replace("SHA_A", SHA_A)
    .replace("SHA_B", SHA_B)
    .replace("SHA_C", SHA_C)
}

#[test]
fn a_fastbootd_plan_writes_logical_partitions_after_the_bootloader_ones() {
    let dir = root();
    let product = load(dir.path(), &with_fastbootd(GOOD)).unwrap();
    let plan = product.regions[&RegionCode::parse("00WW").unwrap()]
        .fastboot
        .as_ref()
        .unwrap();
    assert_eq!(plan.steps.len(), 1);
    let logical = plan.fastbootd.as_ref().unwrap();
    assert_eq!(logical.super_empty.as_deref(), Some("super_empty"));
    assert!(!logical.wipe);
    assert_eq!(logical.steps[0].partition, "system");
    assert_eq!(
        plan.all_steps()
            .map(|s| s.partition.as_str())
            .collect::<Vec<_>>(),
        ["boot", "system"]
    );
}

#[test]
fn a_fastbootd_plan_is_checked_like_the_bootloader_one() {
    let text = with_fastbootd(GOOD);
    // The same partition in both parts.
    assert_refused(
        &text.replace(
            "            - { partition: system, image: system }",
            "            - { partition: boot, image: boot }",
        ),
        24,
        "regions.00WW.flash.fastboot.fastbootd.partitions[0].partition",
        "partition `boot` is written twice",
    );
    // A super_empty that is not a file of the region.
    assert_refused(
        &text.replace("super_empty: super_empty", "super_empty: nope"),
        22,
        "regions.00WW.flash.fastboot.fastbootd.super_empty",
        "nope",
    );
    // Strict keys.
    let dir = root();
    let error = load(
        dir.path(),
        &text.replace(
            "super_empty: super_empty",
            "super_empty: super_empty\n          format: yes",
        ),
    )
    .unwrap_err();
    assert!(error.to_string().contains("format"), "{error}");
}

#[test]
fn a_client_in_a_logical_partition_of_super() {
    let dir = root();
    let super_manifest = good()
        .replacen("      system: { path: 00WW/system.img", "      super: { path: 00WW/system.img", 1)
        .replacen("{ partition: system, image: system }", "{ partition: super, image: super }", 1)
        .replacen(
            "      partition: system\n      image: system\n      ext4_path: /priv-app/ActivationClient/ActivationClient.apk",
            "      partition: super\n      image: super\n      logical_partition: system\n      path: /system/priv-app/ActivationClient/ActivationClient.apk",
            1,
        );
    let product = load(dir.path(), &super_manifest).unwrap();
    let client = &product.regions[&RegionCode::parse("00WW").unwrap()].activation_client;
    assert_eq!(client.partition, "super");
    assert_eq!(client.file, "super");
    assert_eq!(
        client.location,
        ClientLocation::File {
            logical_partition: Some("system".into()),
            path: "/system/priv-app/ActivationClient/ActivationClient.apk".into()
        }
    );
    assert_eq!(client.location.logical_partition(), Some("system"));
    assert_eq!(
        client.location.to_string(),
        "/system/priv-app/ActivationClient/ActivationClient.apk in logical partition system"
    );

    // A logical partition's own image, written to it by name: `partition` is what the phone
    // reads back (`super`), the plan writes the image to the logical partition.
    let by_name = good().replacen(
        "      partition: system\n      image: system\n      ext4_path:",
        "      partition: super\n      image: system\n      logical_partition: system\n      path:",
        1,
    );
    let product = load(dir.path(), &by_name).unwrap();
    let client = &product.regions[&RegionCode::parse("00WW").unwrap()].activation_client;
    assert_eq!(client.location.logical_partition(), Some("system"));

    let g = super_manifest;
    let cases = [
        (
            g.replacen(
                "      path: /system",
                "      ext4_path: /x\n      path: /system",
                1,
            ),
            21,
            "regions.00WW.activation_client",
            "both `path` and `ext4_path`",
        ),
        (
            g.replacen(
                "      path: /system/priv-app/ActivationClient/ActivationClient.apk",
                "      raw: { offset: 0, length: 1 }",
                1,
            ),
            24,
            "regions.00WW.activation_client.logical_partition",
            "a `raw` range is a range of the partition image",
        ),
        (
            g.replacen("logical_partition: system", "logical_partition: sys/tem", 1),
            24,
            "regions.00WW.activation_client.logical_partition",
            "contains '/'",
        ),
        (
            g.replacen("logical_partition: system", "logical_partiton: system", 1),
            24,
            "regions.00WW.activation_client.logical_partiton",
            "unknown field `logical_partiton`",
        ),
        (
            g.replacen("logical_partition: system", "logical_partition: vendor", 1)
                .replacen(
                    "      partition: super\n      image: super",
                    "      partition: vendor\n      image: super",
                    1,
                ),
            22,
            "regions.00WW.activation_client.partition",
            "does not write file `super` to partition `vendor`",
        ),
        (
            g.replacen("path: /system/priv-app", "path: system/priv-app", 1),
            25,
            "regions.00WW.activation_client.path",
            "does not start with `/`",
        ),
    ];
    for (text, line, key, words) in cases {
        assert_refused(&text, line, key, words);
    }
}

#[test]
fn edl_readback_is_the_route_of_a_region_flashed_through_edl_only() {
    // 00CN flashed through EDL only, verified by Firehose read-back.
    let edl_only = good()
        .replace(
            "      fastboot:\n        slot: active\n        partitions:\n          - { partition: system, image: system }\n",
            "      edl:\n        storage: ufs\n        rawprogram: [system]\n",
        )
        .replace("verify: device_digest", "verify: edl_readback");
    let dir = root();
    let product = load(dir.path(), &edl_only).unwrap();
    let cn = &product.regions[&RegionCode::parse("00CN").unwrap()];
    assert!(cn.fastboot.is_none() && cn.edl.is_some());
    assert_eq!(cn.activation_client.verify, VerifyMethod::EdlReadback);
    assert_eq!(cn.activation_client.verify.as_str(), "edl_readback");

    // A region without an EDL plan cannot be read back through EDL.
    assert_refused(
        &good().replace("verify: host_readback", "verify: edl_readback"),
        26,
        "regions.00WW.activation_client.verify",
        "`edl_readback` reads the client back through Firehose before the EDL reset, but this \
         region has no `flash.edl` plan",
    );
    // Nor a region that also flashes units in fastboot: those could not be verified.
    let both = {
        let mut text = good().replace("verify: device_digest", "verify: edl_readback");
        let at = text.rfind("    activation_client:\n").unwrap();
        text.insert_str(
            at,
            "      edl:\n        storage: ufs\n        rawprogram: [system]\n",
        );
        text
    };
    assert_refused(
        &both,
        44,
        "regions.00CN.activation_client.verify",
        "also has a `flash.fastboot` plan, whose units could not be verified",
    );
}

#[test]
fn unit_code_names_a_fastboot_variable() {
    let dir = root();
    let with = |name: &str| {
        good().replace(
            "  fastboot_product: fgdemo\n",
            &format!("  fastboot_product: fgdemo\n  unit_code: {{ getvar: \"{name}\" }}\n"),
        )
    };
    let manifest = load(dir.path(), &with("imei")).unwrap();
    assert_eq!(
        manifest.identity.unit_code,
        Some(super::UnitCodeSource::Getvar("imei".into()))
    );
    assert_eq!(
        manifest.identity.unit_code.unwrap().to_string(),
        "getvar:imei"
    );
    assert_eq!(load(dir.path(), &good()).unwrap().identity.unit_code, None);
    assert_refused(
        &with("imei; reboot"),
        4,
        "identity.unit_code.getvar",
        "cannot be a fastboot variable name",
    );
}
