//! Interop with `sgdisk` (gdisk, installed on CI) in both directions.

use std::io::{Read, Seek, SeekFrom, Write};
use std::process::Command;

use super::test_support::small_table;
use super::*;
use crate::external_tool;

/// Write an encoded table into a sparse disk image file of the table's size.
fn write_image(gpt: &Gpt, file: &mut std::fs::File) {
    let enc = gpt.encode().unwrap();
    file.set_len(gpt.disk_sectors * u64::from(gpt.sector_size))
        .unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(&enc.primary).unwrap();
    file.seek(SeekFrom::Start(enc.backup_lba * u64::from(gpt.sector_size)))
        .unwrap();
    file.write_all(&enc.backup).unwrap();
    file.flush().unwrap();
}

fn read_image(path: &std::path::Path, sector_size: u32) -> Result<Gpt, GptError> {
    let mut f = std::fs::File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    Gpt::read(
        |off, buf| {
            f.seek(SeekFrom::Start(off))?;
            f.read_exact(buf)
        },
        sector_size,
        len / u64::from(sector_size),
    )
}

fn sgdisk(args: &[&str]) -> (bool, String) {
    let out = external_tool::command("sgdisk")
        .args(args)
        .output()
        .expect("running sgdisk");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn sgdisk_accepts_what_we_write() {
    let gpt = small_table(512);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write_image(&gpt, file.as_file_mut());
    let path = file.path().to_str().unwrap();
    let (ok, verify) = sgdisk(&["-v", path]);
    assert!(ok, "sgdisk -v failed:\n{verify}");
    assert!(verify.contains("No problems found"), "{verify}");
    let (ok, print) = sgdisk(&["-p", path]);
    assert!(ok, "{print}");
    assert!(
        print.contains(&format!("Disk identifier (GUID): {}", gpt.disk_guid)),
        "{print}"
    );
    for p in &gpt.partitions {
        // "   1            2048           10239   4.0 MiB     FFFF  boot_a"
        let line = print
            .lines()
            .find(|l| l.trim_end().ends_with(&format!(" {}", p.name)))
            .unwrap_or_else(|| panic!("{} missing from sgdisk -p:\n{print}", p.name));
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], (p.index + 1).to_string(), "{line}");
        assert_eq!(fields[1], p.first_lba.to_string(), "{line}");
        assert_eq!(fields[2], p.last_lba.to_string(), "{line}");
    }
    // Type and unique GUIDs as sgdisk reads them.
    let (_, info) = sgdisk(&["-i", "3", path]);
    assert!(info.contains(&types::ANDROID_SYSTEM.to_string()), "{info}");
    assert!(
        info.contains(&Guid::derived("system_a").to_string()),
        "{info}"
    );
    assert!(info.contains("Partition name: 'system_a'"), "{info}");
}

#[test]
fn we_parse_what_sgdisk_writes() {
    let file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().set_len(32 << 20).unwrap();
    let path = file.path().to_str().unwrap();
    let (ok, out) = sgdisk(&[
        "-o",
        "-U",
        "11111111-2222-4333-8444-555555555555",
        "-n",
        "1:2048:+4M",
        "-c",
        "1:boot_a",
        "-t",
        "1:20117F86-E985-4357-B9EE-374BC1D8487D",
        "-u",
        "1:AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE",
        "-n",
        "2:0:+8M",
        "-c",
        "2:système_ü",
        "-A",
        "2:set:2",
        path,
    ]);
    assert!(ok, "{out}");
    let gpt = read_image(file.path(), 512).unwrap();
    assert_eq!(
        gpt.disk_guid.to_string(),
        "11111111-2222-4333-8444-555555555555"
    );
    assert_eq!(gpt.disk_sectors, 65536);
    assert_eq!(gpt.first_usable_lba, 34);
    assert_eq!(gpt.last_usable_lba, 65536 - 34);
    assert_eq!(gpt.partitions.len(), 2);
    let boot = gpt.find("boot_a").unwrap();
    assert_eq!(
        (boot.index, boot.first_lba, boot.last_lba),
        (0, 2048, 2048 + 8191)
    );
    assert_eq!(boot.type_guid, types::ANDROID_BOOT);
    assert_eq!(
        boot.unique_guid.to_string(),
        "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"
    );
    let sys = gpt.find("système_ü").unwrap();
    assert_eq!((sys.first_lba, sys.last_lba), (10240, 10240 + 16383));
    assert_eq!(sys.type_guid, types::LINUX_FILESYSTEM);
    assert_eq!(sys.attributes, 1 << 2);
    // Re-encoding what we parsed reproduces sgdisk's headers and arrays byte for byte (its
    // protective MBR differs only in the CHS end address, which GPT readers ignore).
    let enc = gpt.encode().unwrap();
    let on_disk = std::fs::read(file.path()).unwrap();
    assert!(
        on_disk[512..enc.primary.len()] == enc.primary[512..],
        "primary differs"
    );
    assert_eq!(on_disk[450], 0xEE);
    let at = (enc.backup_lba * 512) as usize;
    assert!(
        on_disk[at..at + enc.backup.len()] == enc.backup[..],
        "backup differs"
    );
}

#[test]
fn sgdisk_accepts_our_4096_byte_sector_table_in_a_disk_image() {
    // sgdisk treats an image file as 512-byte sectors; a 4096-byte-sector table therefore is not
    // at LBA 1 for it. We check instead that our 4K table reads back and that sgdisk, told the
    // right geometry through a loop device where available, agrees.
    let gpt = small_table(4096);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write_image(&gpt, file.as_file_mut());
    assert_eq!(read_image(file.path(), 4096).unwrap(), gpt);
    assert!(matches!(
        read_image(file.path(), 512),
        Err(GptError::BothInvalid { .. })
    ));
}

/// Attach `file` as a loop device with 4096-byte logical sectors (needs root and /dev/loop*);
/// `None` where that is not possible.
fn loop_device_4k(file: &std::path::Path) -> Option<String> {
    let out = Command::new("losetup")
        .args(["--sector-size", "4096", "-f", "--show"])
        .arg(file)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn sgdisk_agrees_on_4096_byte_sector_tables_via_a_loop_device() {
    // sgdisk reads an image file as 512-byte sectors, so the 4K check needs a block device
    // with 4096-byte logical sectors. Without root or loop devices this check cannot run; the
    // 4K round trip above still covers our own reader and writer.
    let gpt = small_table(4096);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write_image(&gpt, file.as_file_mut());
    let Some(dev) = loop_device_4k(file.path()) else {
        eprintln!("skipped: cannot attach a 4096-byte-sector loop device here (not root?)");
        return;
    };
    let (ok_v, verify) = sgdisk(&["-v", &dev]);
    let (ok_p, print) = sgdisk(&["-p", &dev]);
    // sgdisk writes its own table on the 4K device; we read it back from the file.
    let (ok_w, written) = sgdisk(&[
        "-o",
        "-n",
        "1:256:+8M",
        "-c",
        "1:boot_a",
        "-n",
        "2:0:+4M",
        "-c",
        "2:misc",
        &dev,
    ]);
    let _ = Command::new("losetup").args(["-d", &dev]).status();
    assert!(ok_v && verify.contains("No problems found"), "{verify}");
    assert!(
        ok_p && print.contains("Sector size (logical/physical): 4096"),
        "{print}"
    );
    for p in &gpt.partitions {
        assert!(
            print.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() >= 3
                    && f[1] == p.first_lba.to_string()
                    && f[2] == p.last_lba.to_string()
                    && l.trim_end().ends_with(&p.name)
            }),
            "{} missing from:\n{print}",
            p.name
        );
    }
    assert!(ok_w, "{written}");
    let back = read_image(file.path(), 4096).unwrap();
    let boot = back.find("boot_a").unwrap();
    assert_eq!((boot.first_lba, boot.last_lba), (256, 256 + 2047));
    let misc = back.find("misc").unwrap();
    assert_eq!(misc.size_bytes(4096), 4 << 20);
    assert_eq!(
        back.first_usable_lba, 6,
        "2 + 4 sectors of entries at 4096 bytes"
    );
}
