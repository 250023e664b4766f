//! Flashing against a scripted device: the literal commands of each case (slots, limits, raw
//! and sparse, split or whole, logical partitions in fastbootd) and the bytes it received.

use super::flash::*;
use super::{Fastboot, FastbootError, FastbootMode, SlotChoice};
use crate::fastboot::client::tests::{scripted, send, Step::*};
use std::io::Cursor;

#[test]
fn raw_image_that_fits_goes_in_one_download_to_the_current_slot() {
    let image: Vec<u8> = (0..5000u32).map(|i| (i * 31) as u8).collect();
    let (link, dev, _c) = scripted(vec![
        Expect(b"getvar:is-userspace"),
        send(b"OKAYno"),
        Expect(b"getvar:has-slot:boot"),
        send(b"OKAYyes"),
        Expect(b"getvar:slot-count"),
        send(b"OKAY2"),
        Expect(b"getvar:current-slot"),
        send(b"OKAYa"),
        Expect(b"getvar:max-download-size"),
        send(b"OKAY0x00100000"),
        Expect(b"getvar:is-logical:boot_a"),
        send(b"OKAYno"),
        Expect(b"download:00001388"),
        send(b"DATA00001388"),
        Receive(5000),
        send(b"OKAY"),
        Expect(b"flash:boot_a"),
        send(b"INFOwriting"),
        send(b"OKAY"),
    ]);
    let mut fb = Fastboot::new(link);
    let report = fb
        .flash_image("boot", &mut Cursor::new(&image), &FlashOptions::default())
        .unwrap();
    assert_eq!(report.partitions, vec!["boot_a"]);
    assert_eq!(report.kind, ImageKind::Raw);
    assert_eq!((report.pieces, report.bytes_sent), (1, 5000));
    assert_eq!(report.max_download_size, 0x10_0000);
    drop(fb);
    assert_eq!(dev.join().unwrap(), image);
}

#[test]
fn override_skips_the_device_limit_and_all_flashes_every_slot() {
    let (link, dev, _c) = scripted(vec![
        Expect(b"getvar:is-userspace"),
        send(b"FAILGetVar Variable Not found"),
        Expect(b"getvar:has-slot:vbmeta"),
        send(b"OKAYyes"),
        Expect(b"getvar:slot-count"),
        send(b"OKAY2"),
        Expect(b"getvar:is-logical:vbmeta_a"),
        send(b"FAILGetVar Variable Not found"),
        Expect(b"download:00000004"),
        send(b"DATA00000004"),
        Receive(4),
        send(b"OKAY"),
        Expect(b"flash:vbmeta_a"),
        send(b"OKAY"),
        Expect(b"getvar:is-logical:vbmeta_b"),
        send(b"OKAYno"),
        Expect(b"download:00000004"),
        send(b"DATA00000004"),
        Receive(4),
        send(b"OKAY"),
        Expect(b"flash:vbmeta_b"),
        send(b"OKAY"),
    ]);
    let mut fb = Fastboot::new(link);
    let options = FlashOptions {
        slot: SlotChoice::All,
        max_download_size: Some(4096),
        ..FlashOptions::default()
    };
    let report = fb
        .flash_image("vbmeta", &mut Cursor::new(b"AVB0"), &options)
        .unwrap();
    assert_eq!(report.partitions, vec!["vbmeta_a", "vbmeta_b"]);
    assert_eq!(report.bytes_sent, 8);
    drop(fb);
    assert_eq!(dev.join().unwrap(), b"AVB0AVB0");
}

/// AOSP's `do_flash` in fastbootd: `is-logical`, then the resize to what the image
/// expands to (not its sparse length), then the download and the flash.
#[test]
fn a_logical_partition_in_fastbootd_is_resized_to_the_expanded_image_first() {
    let image: Vec<u8> = (0..6 * 4096u32).map(|i| (i / 4096 % 2) as u8).collect();
    let plan = crate::sparse::ChunkPlan::open(&mut Cursor::new(&image)).unwrap();
    let mut sparse = Vec::new();
    plan.whole()
        .write_to(&mut Cursor::new(&image), &mut sparse)
        .unwrap();
    assert!(sparse.len() < image.len());
    let download = format!("download:{:08x}", sparse.len());
    let data = format!("DATA{:08x}", sparse.len());
    let (link, dev, _c) = scripted(vec![
        Expect(b"getvar:is-userspace"),
        send(b"OKAYyes"),
        Expect(b"getvar:has-slot:system"),
        send(b"OKAYyes"),
        Expect(b"getvar:slot-count"),
        send(b"OKAY2"),
        Expect(b"getvar:current-slot"),
        send(b"OKAYb"),
        Expect(b"getvar:max-download-size"),
        send(b"OKAY0x10000000"),
        Expect(b"getvar:is-logical:system_b"),
        send(b"OKAYyes"),
        Expect(b"resize-logical-partition:system_b:24576"),
        send(b"OKAYPartition resized"),
        Expect(Box::leak(download.into_bytes().into_boxed_slice())),
        Send(data.into_bytes()),
        Receive(sparse.len()),
        send(b"OKAY"),
        Expect(b"flash:system_b"),
        send(b"OKAYFlashing succeeded"),
    ]);
    let mut fb = Fastboot::new(link);
    let report = fb
        .flash_image(
            "system",
            &mut Cursor::new(&sparse),
            &FlashOptions::default(),
        )
        .unwrap();
    assert_eq!(report.partitions, vec!["system_b"]);
    assert_eq!(report.resized_to, Some(24576));
    drop(fb);
    assert_eq!(dev.join().unwrap(), sparse);
}

/// A bootloader that says `is-logical: yes` is believed before anything is downloaded.
#[test]
fn a_logical_partition_in_the_bootloader_is_refused_before_the_download() {
    let (link, dev, _c) = scripted(vec![
        Expect(b"getvar:is-userspace"),
        send(b"OKAYno"),
        Expect(b"getvar:has-slot:system_a"),
        send(b"OKAYno"),
        Expect(b"getvar:max-download-size"),
        send(b"OKAY0x10000000"),
        Expect(b"getvar:is-logical:system_a"),
        send(b"OKAYyes"),
    ]);
    let mut fb = Fastboot::new(link);
    let err = fb
        .flash_image(
            "system_a",
            &mut Cursor::new(b"data"),
            &FlashOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(&err, FastbootError::WrongMode { needs, command, .. }
            if *needs == FastbootMode::Fastbootd && command == "flash:system_a"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "`system_a` is a logical partition: reboot to fastbootd first (`reboot fastboot`)"
    );
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn max_download_size_parses_decimal_and_falls_back() {
    let (link, dev, _c) = scripted(vec![
        Expect(b"getvar:max-download-size"),
        send(b"OKAY536870912"),
        Expect(b"getvar:max-download-size"),
        send(b"FAILunknown variable"),
        Expect(b"getvar:max-download-size"),
        send(b"OKAYlots"),
    ]);
    let mut fb = Fastboot::new(link);
    let options = FlashOptions {
        fallback_max_download_size: 1234,
        ..FlashOptions::default()
    };
    assert_eq!(fb.max_download_size(&options).unwrap(), 512 << 20);
    assert_eq!(fb.max_download_size(&options).unwrap(), 1234);
    assert_eq!(fb.max_download_size(&options).unwrap(), 1234);
    drop(fb);
    dev.join().unwrap();
}

/// Script for flashing `pieces` (their encoded lengths) to `target` with the limit given
/// as an override (no max-download-size query) on an unslotted partition.
fn piece_script(
    partition: &'static str,
    lens: &[u64],
) -> Vec<crate::fastboot::client::tests::Step> {
    let leak = |text: String| -> &'static [u8] { Box::leak(text.into_bytes().into_boxed_slice()) };
    let mut script = vec![
        Expect(b"getvar:is-userspace"),
        send(b"OKAYno"),
        Expect(leak(format!("getvar:has-slot:{partition}"))),
        send(b"OKAYno"),
        Expect(leak(format!("getvar:is-logical:{partition}"))),
        send(b"OKAYno"),
    ];
    for &len in lens {
        script.push(Expect(leak(format!("download:{len:08x}"))));
        script.push(Send(format!("DATA{len:08x}").into_bytes()));
        script.push(Receive(len as usize));
        script.push(send(b"OKAY"));
        script.push(Expect(leak(format!("flash:{partition}"))));
        script.push(send(b"OKAY"));
    }
    script
}

/// Expand the concatenated pieces the device received, one after the other, over one
/// partition image, as a device does.
fn expand_pieces(received: &[u8], lens: &[u64], partition_len: usize) -> Vec<u8> {
    let mut partition = Cursor::new(vec![0u8; partition_len]);
    let mut at = 0usize;
    for &len in lens {
        let piece = &received[at..at + len as usize];
        partition.set_position(0);
        crate::sparse::expand(&mut Cursor::new(piece), &mut partition).unwrap();
        at += len as usize;
    }
    partition.into_inner()
}

fn mixed_image() -> Vec<u8> {
    // 64 blocks: random data, a run of zeros, a repeated word, more data.
    let mut image = vec![0u8; 64 * 4096];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for (i, b) in image.iter_mut().enumerate() {
        let block = i / 4096;
        if !(20..50).contains(&block) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        } else if (30..40).contains(&block) {
            *b = [0xde, 0xad, 0xbe, 0xef][i % 4];
        }
    }
    image
}

#[test]
fn sparse_image_over_the_limit_is_split() {
    let image = mixed_image();
    let plan = crate::sparse::ChunkPlan::open(&mut Cursor::new(&image)).unwrap();
    let mut sparse = Vec::new();
    plan.whole()
        .write_to(&mut Cursor::new(&image), &mut sparse)
        .unwrap();
    let limit = 48 * 1024;
    let sparse_plan = crate::sparse::ChunkPlan::open(&mut Cursor::new(&sparse)).unwrap();
    let lens: Vec<u64> = crate::sparse::split(&sparse_plan, limit)
        .unwrap()
        .iter()
        .map(|p| p.encoded_len())
        .collect();
    assert!(lens.len() > 1);
    let (link, dev, _c) = scripted(piece_script("system", &lens));
    let mut fb = Fastboot::new(link);
    let options = FlashOptions {
        max_download_size: Some(limit),
        ..FlashOptions::default()
    };
    let report = fb
        .flash_image("system", &mut Cursor::new(&sparse), &options)
        .unwrap();
    assert_eq!(
        (report.kind, report.pieces),
        (ImageKind::Sparse, lens.len())
    );
    drop(fb);
    let received = dev.join().unwrap();
    assert_eq!(expand_pieces(&received, &lens, image.len()), image);
}

#[test]
fn raw_image_over_the_limit_is_resparsed_and_split() {
    let image = mixed_image();
    let limit = 40 * 1024;
    let plan = crate::sparse::ChunkPlan::open(&mut Cursor::new(&image)).unwrap();
    let lens: Vec<u64> = crate::sparse::split(&plan, limit)
        .unwrap()
        .iter()
        .map(|p| p.encoded_len())
        .collect();
    assert!(
        lens.len() > 3 && lens.iter().all(|&l| l <= limit),
        "{lens:?}"
    );
    let (link, dev, _c) = scripted(piece_script("super", &lens));
    let mut fb = Fastboot::new(link);
    let options = FlashOptions {
        max_download_size: Some(limit),
        ..FlashOptions::default()
    };
    let report = fb
        .flash_image("super", &mut Cursor::new(&image), &options)
        .unwrap();
    assert_eq!(report.kind, ImageKind::Raw);
    assert_eq!(report.pieces, lens.len());
    assert_eq!(report.bytes_sent, lens.iter().sum::<u64>());
    drop(fb);
    let received = dev.join().unwrap();
    assert_eq!(expand_pieces(&received, &lens, image.len()), image);
}

#[test]
fn sparse_image_that_fits_is_sent_byte_for_byte() {
    let image: Vec<u8> = (0..8 * 4096u32).map(|i| (i / 4096) as u8).collect();
    let plan = crate::sparse::ChunkPlan::open(&mut Cursor::new(&image)).unwrap();
    let mut sparse = Vec::new();
    plan.whole()
        .write_to(&mut Cursor::new(&image), &mut sparse)
        .unwrap();
    let len = sparse.len() as u64;
    let (link, dev, _c) = scripted(piece_script("boot", &[len]));
    let mut fb = Fastboot::new(link);
    let options = FlashOptions {
        max_download_size: Some(1 << 20),
        ..FlashOptions::default()
    };
    let report = fb
        .flash_image("boot", &mut Cursor::new(&sparse), &options)
        .unwrap();
    assert_eq!((report.kind, report.pieces), (ImageKind::Sparse, 1));
    drop(fb);
    assert_eq!(dev.join().unwrap(), sparse);
}

#[test]
fn corrupt_sparse_image_is_refused_before_any_download() {
    let mut bad = vec![0x3a, 0xff, 0x26, 0xed, 1, 0, 0, 0];
    bad.extend_from_slice(&[0xff; 40]);
    let (link, dev, c) = scripted(vec![
        Expect(b"getvar:is-userspace"),
        send(b"OKAYno"),
        Expect(b"getvar:has-slot:boot"),
        send(b"OKAYno"),
    ]);
    let mut fb = Fastboot::new(link);
    let options = FlashOptions {
        max_download_size: Some(1 << 20),
        ..FlashOptions::default()
    };
    let err = fb
        .flash_image("boot", &mut Cursor::new(&bad), &options)
        .unwrap_err();
    assert!(matches!(err, FastbootError::Image(_)), "{err:?}");
    let asked = "getvar:is-userspace".len() + "getvar:has-slot:boot".len();
    assert_eq!(c.host_bytes_written(), asked as u64);
    drop(fb);
    dev.join().unwrap();
}

#[test]
fn sparse_magic_is_detected() {
    let mut sparse = Cursor::new(vec![0x3a, 0xff, 0x26, 0xed, 1, 0]);
    assert_eq!(image_kind(&mut sparse).unwrap(), ImageKind::Sparse);
    assert_eq!(sparse.position(), 0);
    assert_eq!(image_kind(&mut Cursor::new(b"ab")).unwrap(), ImageKind::Raw);
}
