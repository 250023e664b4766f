//! Pre-flight on broken builds that pass their manifest's hashes: sparse images with bad CRCs
//! or chunk tables, images larger than the partitions the product declares, and EDL packages
//! that escape, name unlisted files, are malformed or do not fit the declared storage. Each is
//! refused before any phone is touched, naming the file and line.

use std::path::PathBuf;

use protocols::firehose::package::PackageError;
use station::preflight::{load_and_check, PreflightError};
use station::verified_image::ImageCheckError;

use crate::station_preflight::Demo;

/// CRC-32 (IEEE 802.3), bit by bit: an oracle independent of the code under test.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

impl Demo {
    /// Rewrites the image at `relative` with `edit` and its manifest entry to match, as a
    /// packager would: the manifest then vouches for the broken file.
    fn repackage(&self, relative: &str, edit: impl FnOnce(&mut Vec<u8>)) {
        let path = self.image(relative);
        let mut bytes = std::fs::read(&path).unwrap();
        edit(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        self.repackage_entry(relative);
    }

    /// Replaces the manifest's `sizes:` block with `yaml`.
    fn declare_sizes(&self, yaml: &str) {
        let text = self.manifest_text();
        let start = text.find("\nsizes:\n").unwrap() + 1;
        let end = text.find("\nregions:\n").unwrap() + 1;
        let text = format!("{}{yaml}{}", &text[..start], &text[end..]);
        std::fs::write(self.manifest_path(), text).unwrap();
        flashgate_scenarios::sign_manifest(&self.manifest_path());
    }
}

fn expanded_system(demo: &Demo, region: &str) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    protocols::sparse::expand(
        std::fs::File::open(demo.image(&format!("{region}/system.img"))).unwrap(),
        &mut out,
    )
    .unwrap();
    out.into_inner()
}

#[track_caller]
fn assert_bad_sparse(demo: &Demo, words: &str) {
    let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-EEA")).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            &error,
            PreflightError::Image {
                source: ImageCheckError::BadSparse { key, .. }
            } if key == "system"
        ),
        "{message}"
    );
    assert!(
        message.starts_with("IMAGE_BAD_SPARSE: image `system` (")
            && message.contains("00EEA/system.img)"),
        "{message}"
    );
    assert!(message.contains(words), "expected {words:?}: {message}");
}

#[test]
fn sparse_images_with_a_bad_crc_are_refused() {
    // The header's image_checksum, when a writer filled it in, must be the expanded image's
    // CRC32; img2simg writes 0 ("not computed").
    let demo = Demo::new();
    let good_crc = crc32(&expanded_system(&demo, "00EEA"));
    demo.repackage("00EEA/system.img", |b| {
        assert_eq!(&b[24..28], &[0; 4], "img2simg writes no image_checksum");
        b[24..28].copy_from_slice(&(good_crc ^ 0x8000_0000).to_le_bytes());
    });
    assert_bad_sparse(
        &demo,
        &format!(
            "image_checksum is {:#010x} but the expanded image has CRC32 {good_crc:#010x}",
            good_crc ^ 0x8000_0000
        ),
    );
    demo.repackage("00EEA/system.img", |b| {
        b[24..28].copy_from_slice(&good_crc.to_le_bytes());
    });
    load_and_check(&demo.station(), &demo.work_order("WO-DEMO-EEA")).unwrap();

    // A CRC32 chunk appended after the last chunk: checked against everything before it.
    let demo = Demo::new();
    let append_crc_chunk = |b: &mut Vec<u8>, crc: u32| {
        let chunks = u32::from_le_bytes(b[20..24].try_into().unwrap());
        b[20..24].copy_from_slice(&(chunks + 1).to_le_bytes());
        b.extend_from_slice(&0xCAC4u16.to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&crc.to_le_bytes());
    };
    demo.repackage("00EEA/system.img", |b| append_crc_chunk(b, good_crc));
    load_and_check(&demo.station(), &demo.work_order("WO-DEMO-EEA")).unwrap();
    let demo = Demo::new();
    demo.repackage("00EEA/system.img", |b| append_crc_chunk(b, good_crc ^ 1));
    assert_bad_sparse(&demo, "CRC32 chunk says");
}

#[test]
fn a_sparse_chunk_table_the_file_cannot_hold_is_refused() {
    let demo = Demo::new();
    demo.repackage("00EEA/system.img", |b| {
        b[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    });
    assert_bad_sparse(&demo, "the header declares 4294967295 chunks");
    // One chunk short: the walk runs past the end of the file.
    let demo = Demo::new();
    demo.repackage("00EEA/system.img", |b| {
        let chunks = u32::from_le_bytes(b[20..24].try_into().unwrap());
        b[20..24].copy_from_slice(&(chunks - 1).to_le_bytes());
    });
    assert_bad_sparse(&demo, "total_blks");
}

#[test]
fn an_image_larger_than_its_declared_partition_is_refused() {
    let demo = Demo::new();
    demo.declare_sizes("sizes:\n  partitions: { system: 1000000, boot: 100663296 }\n");
    let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-EEA")).unwrap_err();
    let message = error.to_string();
    match &error {
        PreflightError::ImageTooLarge(too_large) => {
            assert_eq!(too_large.key, "system");
            assert_eq!(too_large.partition, "system");
            assert_eq!((too_large.bytes, too_large.capacity), (1 << 20, 1_000_000));
            assert!(too_large.sparse);
        }
        other => panic!("expected ImageTooLarge, got {other}"),
    }
    assert!(
        message.contains("00EEA/system.img): the sparse image expands to 1048576 bytes, but partition `system` holds 1000000 (`sizes.partitions` in "),
        "{message}"
    );
    let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-WW")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("00WW/system.img): the image has 1048576 bytes, but partition `system`"),
        "{error}"
    );

    // Sizes that fit pass; a partition without a declared size is not checked.
    let demo = Demo::new();
    demo.declare_sizes("sizes:\n  partitions: { system: 1048576 }\n");
    load_and_check(&demo.station(), &demo.work_order("WO-DEMO-EEA")).unwrap();
}

impl Demo {
    /// Rewrites a package XML of region 00EEA with `edit` and repackages its manifest entry.
    fn edit_package(&self, name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
        let relative = format!("00EEA/{name}");
        self.repackage(&relative, |bytes| {
            let text = edit(String::from_utf8(std::mem::take(bytes)).unwrap());
            *bytes = text.into_bytes();
        });
        self.image(&relative).canonicalize().unwrap()
    }
}

fn eea_refusal(demo: &Demo) -> (PreflightError, String) {
    let error = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-EEA")).unwrap_err();
    let message = error.to_string();
    (error, message)
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    1 + text.lines().position(|l| l.contains(needle)).unwrap()
}

#[test]
fn edl_package_paths_must_stay_inside_and_be_listed() {
    for (bad, words) in [
        ("../00WW/boot.img", "leaves the package directory"),
        ("/etc/passwd", "leaves the package directory"),
    ] {
        let demo = Demo::new();
        let xml = demo.edit_package("rawprogram0.xml", |t| {
            t.replacen("filename=\"boot.img\"", &format!("filename=\"{bad}\""), 1)
        });
        let (error, message) = eea_refusal(&demo);
        assert!(
            matches!(error.package_error(), Some(PackageError::Escapes { .. })),
            "{message}"
        );
        assert!(
            message.starts_with(&format!(
                "region 00EEA: the EDL package is refused: {}:4: filename `{bad}` {words}",
                xml.display()
            )),
            "{message}"
        );
    }

    // A file beside the package that the manifest does not list: never hashed, so refused.
    let demo = Demo::new();
    std::fs::write(demo.image("00EEA/extra.img"), b"unlisted").unwrap();
    let xml = demo.edit_package("rawprogram0.xml", |t| {
        t.replacen(
            "filename=\"vbmeta.img\" label=\"vbmeta_b\"",
            "filename=\"extra.img\" label=\"vbmeta_b\"",
            1,
        )
    });
    let (error, message) = eea_refusal(&demo);
    match &error {
        PreflightError::EdlPackageUnlisted { files, .. } => {
            assert_eq!(files.len(), 1);
            assert_eq!(files[0].filename, "extra.img");
            assert_eq!(files[0].origin.line, 7);
        }
        other => panic!("expected EdlPackageUnlisted, got {other}"),
    }
    assert!(
        message.contains(&format!(
            "names files the manifest does not list, so pre-flight did not hash them: {}:7 names \
             `extra.img`",
            xml.display()
        )),
        "{message}"
    );
    assert!(
        message.ends_with(
            "list each in `regions.00EEA.files` with its size and sha256, or remove the line"
        ),
        "{message}"
    );
}

#[test]
fn malformed_edl_xml_is_refused_with_file_and_line() {
    let demo = Demo::new();
    let xml = demo.edit_package("rawprogram0.xml", |t| t.replacen("/>\n", ">\n", 3));
    let (error, message) = eea_refusal(&demo);
    assert!(
        matches!(error.package_error(), Some(PackageError::Xml { .. })),
        "{message}"
    );
    assert!(
        message.contains(&format!("{}: malformed XML at line ", xml.display())),
        "{message}"
    );
    let demo = Demo::new();
    let xml = demo.edit_package("patch0.xml", |t| {
        t.replace(
            "</patches>",
            "  <patch SECTOR_SIZE_IN_BYTES=\"4096\" byte_offset=\"4094\" filename=\"DISK\" physical_partition_number=\"0\" size_in_bytes=\"4\" start_sector=\"1\" value=\"0\" what=\"x\"/>\n</patches>",
        )
    });
    let (_, message) = eea_refusal(&demo);
    assert!(
        message.contains(&format!(
            "{}:4: the patch writes 4 bytes at byte 4094 of a 4096-byte sector",
            xml.display()
        )),
        "{message}"
    );
    let demo = Demo::new();
    demo.edit_package("patch0.xml", |t| {
        t.replace(
            "</patches>",
            "  <patch SECTOR_SIZE_IN_BYTES=\"4096\" byte_offset=\"16\" filename=\"DISK\" physical_partition_number=\"2\" size_in_bytes=\"4\" start_sector=\"1\" value=\"0\" what=\"x\"/>\n</patches>",
        )
    });
    let (_, message) = eea_refusal(&demo);
    assert!(
        message.contains("the patch targets LUN 2, which no program line writes"),
        "{message}"
    );
}

#[test]
fn a_wrong_sparse_flag_is_refused() {
    // 00EEA ships a sparse system image; declare it raw.
    let demo = Demo::new();
    let xml = demo.edit_package("rawprogram0.xml", |t| {
        t.replacen("sparse=\"true\"", "sparse=\"false\"", 1)
    });
    let text = std::fs::read_to_string(&xml).unwrap();
    let (error, message) = eea_refusal(&demo);
    assert!(
        matches!(
            error.package_error(),
            Some(PackageError::SparseNotDeclared { .. })
        ),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "{}:{}: `system.img` is an Android sparse image but the line says sparse=\"false\"",
            xml.display(),
            line_of(&text, "label=\"system_a\"")
        )),
        "{message}"
    );
    // And a raw image declared sparse.
    let demo = Demo::new();
    demo.edit_package("rawprogram0.xml", |t| {
        t.replacen(
            "sparse=\"false\" start_byte_hex=\"0x100000\"",
            "sparse=\"true\" start_byte_hex=\"0x100000\"",
            1,
        )
    });
    let (_, message) = eea_refusal(&demo);
    assert!(
        message.contains("`boot.img` is marked sparse=\"true\" but is not a valid sparse image"),
        "{message}"
    );
}

#[test]
fn sectors_past_the_declared_disk_are_refused() {
    // The demo package ends at sector 2209024 (system_b) of LUN 0.
    let demo = Demo::new();
    demo.declare_sizes("sizes:\n  luns: { 0: 8589934592 }\n");
    let xml = demo.image("00EEA/rawprogram0.xml").canonicalize().unwrap();
    let (error, message) = eea_refusal(&demo);
    assert!(
        matches!(
            error.package_error(),
            Some(PackageError::PastDisk {
                disk_sectors: 2_097_152,
                ..
            })
        ),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "{}:9: partition system_b covers sectors 1160448..2209024 of LUN 0, which has \
             2097152 sectors",
            xml.display()
        )),
        "{message}"
    );
    // A LUN the product declares without the one the package writes.
    let demo = Demo::new();
    demo.declare_sizes("sizes:\n  luns: { 1: 8589934592 }\n");
    let (_, message) = eea_refusal(&demo);
    assert!(
        message.contains("LUN 0 is not among the LUNs the product declares (1)"),
        "{message}"
    );
    // The simulated phone's real LUN size (what the demo declares) passes.
    let demo = Demo::new();
    let (_, batch) = load_and_check(&demo.station(), &demo.work_order("WO-DEMO-EEA")).unwrap();
    assert_eq!(batch.edl_package.unwrap().programs().count(), 6);
    assert_eq!(batch.product.sizes.luns.get(&0), Some(&19_838_009_344));
}

#[test]
fn an_edl_image_larger_than_its_declared_partition_is_refused() {
    let demo = Demo::new();
    // Only the slot-a name is declared, so the fastboot plan (`boot`) is not checked and the
    // EDL line for boot_a is.
    demo.declare_sizes("sizes:\n  partitions: { boot_a: 8192 }\n");
    let (error, message) = eea_refusal(&demo);
    match &error {
        PreflightError::ImageTooLarge(too_large) => {
            assert_eq!(too_large.partition, "boot_a");
            assert_eq!(too_large.key, "boot");
            assert_eq!((too_large.bytes, too_large.capacity), (12288, 8192));
        }
        other => panic!("expected ImageTooLarge, got {other}"),
    }
    assert!(
        message.contains(
            "00EEA/boot.img): the image has 12288 bytes, but partition `boot_a` holds 8192"
        ),
        "{message}"
    );
}

#[test]
fn an_edl_package_that_does_not_write_the_client_partition_is_refused() {
    let demo = Demo::new();
    demo.edit_package("rawprogram0.xml", |t| {
        t.lines()
            .filter(|l| !l.contains("label=\"system_"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let (error, message) = eea_refusal(&demo);
    assert!(
        matches!(&error, PreflightError::EdlClientNotWritten { partition, .. } if partition == "system"),
        "{message}"
    );
    assert!(
        message.starts_with(
            "region 00EEA: the EDL package never writes file `system` ("
        ) && message.contains("to partition system (or system_a/system_b), where the activation client is verified"),
        "{message}"
    );
}
