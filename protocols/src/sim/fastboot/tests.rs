//! The simulated fastboot device, driven with literal command bytes over an in-memory link.

use std::thread;
use std::time::Duration;

use super::*;
use crate::sim::phone::Phone;
use crate::sim::storage::DropWrites;
use crate::transport::memory::{self, MemoryLink};

pub(super) const T: Duration = Duration::from_secs(5);

fn small_phone() -> Phone {
    Phone::builder()
        .serial("SIMTEST1")
        .product("sim_product")
        .slotted_partition("boot", 1 << 20)
        .slotted_partition("vendor_boot", 1 << 20)
        .slotted_partition("system", 8 << 20)
        .partition("userdata", 2 << 20)
        .build()
        .unwrap()
}

/// A device served on a thread; the host end to talk to it. The thread returns the device end
/// with the outcome (dropping it would unplug the link before the host read the last answer).
pub(super) fn start(
    phone: Phone,
    config: FastbootConfig,
) -> (MemoryLink, thread::JoinHandle<(SessionEnd, MemoryLink)>) {
    let (host, mut dev, _ctl) = memory::pair("fbsim");
    let handle = thread::spawn(move || {
        let end = FastbootDevice::new(phone, config).serve(&mut dev);
        (end, dev)
    });
    (host, handle)
}

pub(super) fn cmd(host: &mut MemoryLink, command: &str) -> Vec<String> {
    host.write(command.as_bytes(), T).unwrap();
    let mut replies = Vec::new();
    loop {
        let mut buf = [0u8; 256];
        let n = host.read_packet(&mut buf, T).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = !text.starts_with("INFO") && !text.starts_with("TEXT");
        replies.push(text);
        if done {
            return replies;
        }
    }
}

pub(super) fn one(host: &mut MemoryLink, command: &str) -> String {
    let r = cmd(host, command);
    assert_eq!(r.len(), 1, "{command}: {r:?}");
    r.into_iter().next().unwrap()
}

pub(super) fn download(host: &mut MemoryLink, data: &[u8]) {
    assert_eq!(
        one(host, &format!("download:{:08x}", data.len())),
        format!("DATA{:08x}", data.len())
    );
    for piece in data.chunks(100_000) {
        host.write(piece, T).unwrap();
    }
    let mut buf = [0u8; 256];
    let n = host.read_packet(&mut buf, T).unwrap();
    assert_eq!(&buf[..n], b"OKAY");
}

#[test]
fn identity_variables_answer_like_a_bootloader() {
    let (mut host, dev) = start(small_phone(), FastbootConfig::default());
    assert_eq!(one(&mut host, "getvar:product"), "OKAYsim_product");
    assert_eq!(one(&mut host, "getvar:serialno"), "OKAYSIMTEST1");
    assert_eq!(one(&mut host, "getvar:version"), "OKAY0.4");
    assert_eq!(one(&mut host, "getvar:secure"), "OKAYyes");
    assert_eq!(one(&mut host, "getvar:unlocked"), "OKAYyes");
    assert_eq!(one(&mut host, "getvar:max-download-size"), "OKAY0x10000000");
    assert_eq!(one(&mut host, "getvar:slot-count"), "OKAY2");
    assert_eq!(one(&mut host, "getvar:current-slot"), "OKAYa");
    assert_eq!(one(&mut host, "getvar:has-slot:boot"), "OKAYyes");
    assert_eq!(one(&mut host, "getvar:has-slot:userdata"), "OKAYno");
    assert_eq!(
        one(&mut host, "getvar:partition-size:boot_b"),
        "OKAY0x100000"
    );
    assert_eq!(
        one(&mut host, "getvar:partition-size:system"),
        "OKAY0x800000"
    );
    assert_eq!(one(&mut host, "getvar:partition-type:userdata"), "OKAYext4");
    assert_eq!(one(&mut host, "getvar:is-logical:system_a"), "OKAYno");
    assert_eq!(one(&mut host, "getvar:is-userspace"), "OKAYno");
    assert_eq!(one(&mut host, "getvar:slot-successful:a"), "OKAYyes");
    assert_eq!(one(&mut host, "getvar:slot-retry-count:b"), "OKAY7");
    assert_eq!(
        one(&mut host, "getvar:nonexistent"),
        "FAILGetVar Variable Not found"
    );
    assert!(one(&mut host, "getvar:partition-size:nope").starts_with("FAIL"));
    drop(host);
    assert!(matches!(dev.join().unwrap().0, SessionEnd::Disconnected));
}

#[test]
fn vendor_variables_answer_only_on_phones_that_publish_them() {
    let phone = Phone::builder()
        .vendor_variable("imei", "356938035643809")
        .build()
        .unwrap();
    let (mut host, dev) = start(phone, FastbootConfig::default());
    assert_eq!(one(&mut host, "getvar:imei"), "OKAY356938035643809");
    assert_eq!(
        one(&mut host, "getvar:meid"),
        "FAILGetVar Variable Not found"
    );
    drop(host);
    dev.join().unwrap();
    let (mut host, dev) = start(small_phone(), FastbootConfig::default());
    assert_eq!(
        one(&mut host, "getvar:imei"),
        "FAILGetVar Variable Not found"
    );
    drop(host);
    dev.join().unwrap();
}

#[test]
fn getvar_all_is_info_lines_then_okay_each_within_256_bytes() {
    let phone = Phone::builder().product(&"p".repeat(300)).build().unwrap();
    let (mut host, _dev) = start(phone, FastbootConfig::default());
    let replies = cmd(&mut host, "getvar:all");
    assert_eq!(replies.last().unwrap(), "OKAY");
    let info: Vec<&String> = replies.iter().filter(|r| r.starts_with("INFO")).collect();
    assert_eq!(info.len(), replies.len() - 1);
    assert!(info.iter().any(|l| *l == "INFOcurrent-slot:a"));
    assert!(info.iter().any(|l| *l == "INFOhas-slot:system:yes"));
    assert!(info
        .iter()
        .any(|l| *l == "INFOpartition-size:userdata:0x200000000"));
    assert!(info
        .iter()
        .any(|l| *l == "INFOmax-download-size:0x10000000"));
    assert!(info.iter().all(|l| l.len() <= 256));
    // The 300-byte product was cut to fit one frame.
    let product = one(&mut host, "getvar:product");
    assert_eq!(product.len(), 256);
}

#[test]
fn long_and_unknown_commands_fail_and_the_session_continues() {
    let (mut host, _dev) = start(small_phone(), FastbootConfig::default());
    let long = format!("getvar:{}", "x".repeat(60));
    assert!(one(&mut host, &long).starts_with("FAILCommand too long"));
    assert_eq!(one(&mut host, "powerdown"), "FAILunknown command");
    assert_eq!(one(&mut host, "oem frobnicate"), "FAILunknown command");
    assert_eq!(one(&mut host, "reboot:bootloader"), "FAILunknown command");
    assert_eq!(
        one(&mut host, "getvar:"),
        "FAILgetvar: missing variable name"
    );
    host.write(&[0xff, 0xfe, b':'], T).unwrap();
    let mut buf = [0u8; 256];
    let n = host.read_packet(&mut buf, T).unwrap();
    assert_eq!(
        &buf[..n],
        b"FAILCommand contains control character or non-ASCII byte 0xff"
    );
    assert_eq!(one(&mut host, "getvar:product"), "OKAYsim_product");
}

#[test]
fn raw_flash_of_base_name_writes_the_current_slot() {
    let phone = small_phone();
    let (mut host, _dev) = start(phone.clone(), FastbootConfig::default());
    let image: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    download(&mut host, &image);
    assert_eq!(one(&mut host, "flash:boot"), "OKAY");
    let mut back = vec![0u8; image.len()];
    phone.read_partition("boot_a", 0, &mut back).unwrap();
    assert!(back == image);
    phone.read_partition("boot_b", 0, &mut back).unwrap();
    assert!(back.iter().all(|&b| b == 0), "other slot untouched");
    // After set_active:b the same command lands in boot_b.
    assert_eq!(one(&mut host, "set_active:b"), "OKAY");
    assert_eq!(one(&mut host, "getvar:current-slot"), "OKAYb");
    assert_eq!(
        one(&mut host, "flash:boot"),
        "OKAY",
        "download buffer is kept"
    );
    phone.read_partition("boot_b", 0, &mut back).unwrap();
    assert!(back == image);
    assert_eq!(one(&mut host, "set_active:_a"), "OKAY");
    assert_eq!(one(&mut host, "set_active:c"), "FAILInvalid slot suffix: c");
}

#[test]
fn download_limits_and_flash_refusals() {
    let config = FastbootConfig {
        max_download_size: 0x1000,
        ..FastbootConfig::default()
    };
    let phone = small_phone();
    let (mut host, _dev) = start(phone.clone(), config);
    assert_eq!(
        one(&mut host, "flash:boot_a"),
        "FAILNo image downloaded: send `download` first"
    );
    assert_eq!(
        one(&mut host, "download:00001001"),
        "FAILRequested download size is more than max allowed"
    );
    assert_eq!(
        one(&mut host, "download:zz"),
        "FAILdownload: invalid size (8 hex digits) `zz`"
    );
    // `download:%08x` is exactly 8 digits, as fastbootd insists.
    assert_eq!(
        one(&mut host, "download:1000"),
        "FAILdownload: invalid size (8 hex digits) `1000`"
    );
    assert_eq!(
        one(&mut host, "download:00000000"),
        "FAILInvalid download size"
    );
    download(&mut host, &[1u8; 0x1000]);
    assert_eq!(one(&mut host, "flash:nope"), "FAILNo such partition: nope");
    phone.lock().identity.unlocked = false;
    assert_eq!(
        one(&mut host, "flash:boot_a"),
        "FAILFlashing is not allowed in Lock State"
    );
    assert_eq!(
        one(&mut host, "erase:boot_a"),
        "FAILErase is not allowed in Lock State"
    );
    assert_eq!(
        one(&mut host, "fetch:vendor_boot_a"),
        "FAILFetch is not allowed on locked devices"
    );
    assert_eq!(one(&mut host, "flashing unlock"), "OKAY");
    assert_eq!(one(&mut host, "getvar:unlocked"), "OKAYyes");
    assert_eq!(
        one(&mut host, "flashing unlock"),
        "FAILDevice already : unlocked!"
    );
    // An image larger than the partition is refused.
    let tiny = Phone::builder().partition("tiny", 4096).build().unwrap();
    let (mut host, _dev) = start(tiny, FastbootConfig::default());
    download(&mut host, &[1u8; 8192]);
    assert!(one(&mut host, "flash:tiny").starts_with("FAILImage size 8192 exceeds"));
}

/// A sparse image built by hand: RAW block, FILL 2 blocks, DONT_CARE 1 block, RAW block.
pub(super) fn sparse_image(blk: u32, raw: &[u8]) -> Vec<u8> {
    use crate::sparse::{
        ChunkHeader, SparseHeader, CHUNK_TYPE_DONT_CARE, CHUNK_TYPE_FILL, CHUNK_TYPE_RAW,
    };
    let mut out = SparseHeader::new(blk, 5, 4).encode().to_vec();
    out.extend_from_slice(&ChunkHeader::new(CHUNK_TYPE_RAW, 1, 12 + blk).encode());
    out.extend_from_slice(&raw[..blk as usize]);
    out.extend_from_slice(&ChunkHeader::new(CHUNK_TYPE_FILL, 2, 16).encode());
    out.extend_from_slice(&0xdead_beefu32.to_le_bytes());
    out.extend_from_slice(&ChunkHeader::new(CHUNK_TYPE_DONT_CARE, 1, 12).encode());
    out.extend_from_slice(&ChunkHeader::new(CHUNK_TYPE_RAW, 1, 12 + blk).encode());
    out.extend_from_slice(&raw[blk as usize..2 * blk as usize]);
    out
}

#[test]
fn sparse_flash_expands_and_leaves_dont_care_alone() {
    let phone = small_phone();
    phone
        .write_partition("system_a", 3 * 4096, &[0x55; 4096])
        .unwrap();
    let (mut host, _dev) = start(phone.clone(), FastbootConfig::default());
    let raw: Vec<u8> = (0..8192u32).map(|i| (i % 249) as u8).collect();
    download(&mut host, &sparse_image(4096, &raw));
    assert_eq!(one(&mut host, "flash:system_a"), "OKAY");
    let mut back = vec![0u8; 5 * 4096];
    phone.read_partition("system_a", 0, &mut back).unwrap();
    assert!(back[..4096] == raw[..4096]);
    assert!(back[4096..3 * 4096]
        .chunks(4)
        .all(|w| w == 0xdead_beefu32.to_le_bytes()));
    assert!(
        back[3 * 4096..4 * 4096].iter().all(|&b| b == 0x55),
        "DONT_CARE kept old data"
    );
    assert!(back[4 * 4096..] == raw[4096..]);
    // A sparse image that expands past the partition is refused before writing.
    download(&mut host, &sparse_image(1 << 20, &vec![1u8; 2 << 20]));
    assert!(one(&mut host, "flash:boot_a").starts_with("FAILSparse image size span overflow"));
    // Garbage after a valid sparse header: a FAIL naming the problem, not a panic.
    let mut bad = sparse_image(4096, &raw);
    bad.truncate(40);
    download(&mut host, &bad);
    assert!(one(&mut host, "flash:system_a").starts_with("FAILFlashing sparse image"));
}

#[test]
fn fetch_follows_fastbootd_rules() {
    let phone = small_phone();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 241) as u8).collect();
    phone.write_partition("vendor_boot_a", 0, &data).unwrap();
    let (mut host, _dev) = start(phone, FastbootConfig::default());
    assert_eq!(
        one(&mut host, "fetch:system_a"),
        "FAILFetch is only allowed on [vendor_boot, vendor_boot_a, vendor_boot_b]"
    );
    assert_eq!(
        one(&mut host, "fetch:vendor_boot_a:0x10:0x100"),
        "DATA00000100"
    );
    let mut buf = vec![0u8; 0x100];
    crate::transport::read_exact(&mut host, &mut buf, T).unwrap();
    assert!(buf == data[0x10..0x110]);
    let mut okay = [0u8; 256];
    let n = host.read_packet(&mut okay, T).unwrap();
    assert!(okay[..n].starts_with(b"OKAYFetched vendor_boot_a"));
    // Offset at the very end: fastbootd answers OKAY with nothing to send.
    assert_eq!(
        one(&mut host, "fetch:vendor_boot_a:0x100000"),
        "OKAYRead 0 bytes"
    );
    assert!(one(&mut host, "fetch:vendor_boot_a:0x200000").starts_with("FAILInvalid offset"));
    assert!(one(&mut host, "fetch:vendor_boot_a:0:0x100001").starts_with("FAILInvalid size"));
    // Arguments are read by the shared codec, which names what it could not read.
    assert_eq!(
        one(&mut host, "fetch:vendor_boot_a:x"),
        "FAILfetch: invalid offset `x`"
    );
}

#[test]
fn fetch_whole_partition_and_max_fetch_size() {
    let phone = small_phone();
    let config = FastbootConfig {
        fetch_allow: FetchAllow::All,
        max_fetch_size: 0x8000,
        ..FastbootConfig::default()
    };
    let (mut host, _dev) = start(phone, config);
    assert_eq!(one(&mut host, "getvar:max-fetch-size"), "OKAY0x8000");
    assert!(one(&mut host, "fetch:boot_a").starts_with("FAILCannot fetch 0x100000 bytes"));
    assert_eq!(one(&mut host, "fetch:boot_a:0x0:0x8000"), "DATA00008000");
}

#[test]
fn a_bootloader_without_fetch_answers_it_as_an_unknown_command() {
    let config = FastbootConfig {
        fetch_allow: FetchAllow::None,
        fetch_requires_unlocked: false,
        ..FastbootConfig::default()
    };
    let (mut host, _dev) = start(small_phone(), config);
    assert_eq!(
        one(&mut host, "fetch:boot_a:0x0:0x1000"),
        "FAILunknown command"
    );
    assert_eq!(one(&mut host, "fetch:vendor_boot_a"), "FAILunknown command");
    assert!(one(&mut host, "getvar:max-fetch-size").starts_with("FAIL"));
    // The rest of the bootloader is there.
    assert_eq!(one(&mut host, "getvar:current-slot"), "OKAYa");
}

#[test]
fn oem_sha256_answers_the_digest_of_the_range() {
    let phone = small_phone();
    phone
        .write_partition("system_b", 4096, b"activation client")
        .unwrap();
    let (mut host, _dev) = start(phone.clone(), FastbootConfig::default());
    let replies = cmd(&mut host, "oem sha256 system_b 4096 17");
    use sha2::{Digest, Sha256};
    let expect = hex::encode(Sha256::digest(b"activation client"));
    assert_eq!(replies, vec![format!("INFO{expect}"), "OKAY".to_string()]);
    let whole = cmd(&mut host, "oem sha256 boot_a");
    let expect = hex::encode(Sha256::digest(vec![0u8; 1 << 20]));
    assert_eq!(whole[0], format!("INFO{expect}"));
    assert_eq!(
        one(&mut host, "oem sha256"),
        "FAILusage: oem sha256 <partition> [<offset> <length>]"
    );
    assert!(one(&mut host, "oem sha256 boot_a 0 99999999").starts_with("FAILrange"));
    assert!(one(&mut host, "oem sha256 nope").starts_with("FAILNo such partition"));
}

/// One bootloader (its RAM kept across sessions, as `SimUnit` keeps it) serving one session.
pub(super) fn session(device: &mut FastbootDevice, commands: &[&str]) -> (Vec<String>, SessionEnd) {
    let (mut host, mut dev, _ctl) = memory::pair("fbsim-session");
    thread::scope(|scope| {
        let served = scope.spawn(move || {
            let end = device.serve(&mut dev);
            (end, dev)
        });
        let replies = commands.iter().map(|c| one(&mut host, c)).collect();
        drop(host);
        let (end, _dev) = served.join().unwrap();
        (replies, end)
    })
}

#[test]
fn set_active_acknowledged_but_ignored_keeps_the_booting_slot() {
    let phone = small_phone();
    let config = FastbootConfig {
        set_active: SetActiveBehaviour::IgnoredAfterOkay,
        ..FastbootConfig::default()
    };
    let mut device = FastbootDevice::new(phone.clone(), config);
    let (replies, _) = session(
        &mut device,
        &["set_active:b", "getvar:current-slot", "set_active:c"],
    );
    assert_eq!(replies, ["OKAY", "OKAYa", "FAILInvalid slot suffix: c"]);
    assert_eq!(phone.current_slot().as_deref(), Some("a"));
}

#[test]
fn set_active_kept_in_ram_only_is_lost_on_reboot() {
    let phone = small_phone();
    let config = FastbootConfig {
        set_active: SetActiveBehaviour::LostOnReboot,
        ..FastbootConfig::default()
    };
    let mut device = FastbootDevice::new(phone.clone(), config);
    let (replies, end) = session(
        &mut device,
        &[
            "set_active:b",
            "getvar:current-slot",
            "set_active:a",
            "set_active:b",
            "reboot-bootloader",
        ],
    );
    // Until the reboot the phone itself believes the switch.
    assert_eq!(replies, ["OKAY", "OKAYb", "OKAY", "OKAY", "OKAY"]);
    assert!(matches!(end, SessionEnd::Reboot(RebootTo::Bootloader)));
    let (replies, _) = session(&mut device, &["getvar:current-slot"]);
    assert_eq!(replies, ["OKAYa"], "the slot of the last boot comes back");
    // Honoured is the default, and persists across the reboot.
    let honest = small_phone();
    let mut device = FastbootDevice::new(honest.clone(), FastbootConfig::default());
    session(&mut device, &["set_active:b", "reboot-bootloader"]);
    assert_eq!(honest.current_slot().as_deref(), Some("b"));
}

#[test]
fn faults_fail_garbage_delay_and_dropped_writes() {
    let phone = small_phone();
    phone.fail("flash:boot_a", "Write protected");
    phone.garbage("getvar:serialno");
    phone.delay("getvar:version", Duration::from_millis(150));
    phone.drop_writes(DropWrites::All);
    let (mut host, _dev) = start(phone.clone(), FastbootConfig::default());
    download(&mut host, &[9u8; 4096]);
    assert_eq!(one(&mut host, "flash:boot_a"), "FAILWrite protected");
    assert_eq!(
        one(&mut host, "flash:boot_b"),
        "OKAY",
        "dropped writes still answer OKAY"
    );
    let mut back = [1u8; 4096];
    phone.read_partition("boot_b", 0, &mut back).unwrap();
    assert!(back.iter().all(|&b| b == 0), "…and store nothing");
    let garbage = one(&mut host, "getvar:serialno");
    assert!(garbage.starts_with('\u{FFFD}'), "{garbage:?}");
    let started = std::time::Instant::now();
    assert_eq!(one(&mut host, "getvar:version"), "OKAY0.4");
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[test]
fn reboots_end_the_session_and_set_the_mode() {
    use crate::sim::phone::PhoneMode;
    let phone = small_phone();
    for (command, to, mode) in [
        ("reboot-fastboot", RebootTo::Fastbootd, PhoneMode::Fastbootd),
        (
            "reboot-bootloader",
            RebootTo::Bootloader,
            PhoneMode::Bootloader,
        ),
        ("reboot-recovery", RebootTo::Recovery, PhoneMode::Recovery),
        ("reboot", RebootTo::System, PhoneMode::Android),
        ("oem edl", RebootTo::Edl, PhoneMode::Edl),
    ] {
        let (mut host, dev) = start(phone.clone(), FastbootConfig::default());
        assert_eq!(one(&mut host, command), "OKAY");
        match dev.join().unwrap().0 {
            SessionEnd::Reboot(r) => assert_eq!(r, to, "{command}"),
            other => panic!("{command}: {other:?}"),
        }
        assert_eq!(phone.mode(), mode);
    }
    phone.set_mode(PhoneMode::Fastbootd);
    let (mut host, dev) = start(phone.clone(), FastbootConfig::default());
    assert_eq!(one(&mut host, "getvar:is-userspace"), "OKAYyes");
    assert_eq!(one(&mut host, "continue"), "OKAY");
    assert!(matches!(dev.join().unwrap().0, SessionEnd::Continue));
}

#[test]
fn logical_partition_commands_belong_to_fastbootd() {
    use crate::sim::phone::PhoneMode;
    let phone = small_phone();
    let fastbootd_only = [
        "update-super:super:wipe",
        "create-logical-partition:product_a:4096",
        "delete-logical-partition:product_a",
        "resize-logical-partition:system_a:0",
        "snapshot-update:cancel",
        "gsi:status",
    ];
    let (mut host, _dev) = start(phone.clone(), FastbootConfig::default());
    for command in fastbootd_only {
        assert_eq!(one(&mut host, command), "FAILunknown command", "{command}");
    }
    drop(host);
    phone.set_mode(PhoneMode::Fastbootd);
    let (mut host, _dev) = start(phone.clone(), FastbootConfig::default());
    // This phone has no `super`: fastbootd says so rather than not knowing the command.
    assert_eq!(one(&mut host, fastbootd_only[0]), "FAILNo data available");
    for command in &fastbootd_only[1..4] {
        assert_eq!(
            one(&mut host, command),
            "FAILCould not open super partition",
            "{command}"
        );
    }
    assert_eq!(
        cmd(&mut host, "snapshot-update:"),
        vec!["INFOnone".to_string(), "OKAY".to_string()]
    );
    assert_eq!(one(&mut host, "snapshot-update:cancel"), "OKAYSuccess");
    assert_eq!(
        one(&mut host, "snapshot-update:merge"),
        "FAILNo snapshot merge is in progress"
    );
    assert_eq!(one(&mut host, "gsi:wipe"), "FAILNo GSI is installed");
    assert_eq!(
        one(&mut host, "update-super:super:merge"),
        "FAILupdate-super: invalid argument `merge`"
    );
    phone.lock().identity.unlocked = false;
    assert_eq!(
        one(&mut host, "delete-logical-partition:product_a"),
        "FAILCommand not available on locked devices"
    );
}

#[test]
fn upload_returns_what_oem_log_staged() {
    let (mut host, _dev) = start(small_phone(), FastbootConfig::default());
    assert_eq!(one(&mut host, "upload"), "FAILNo data staged for upload");
    let r = cmd(&mut host, "oem log");
    assert_eq!(r.last().unwrap(), "OKAY");
    let reply = one(&mut host, "upload");
    let len = usize::from_str_radix(reply.strip_prefix("DATA").unwrap(), 16).unwrap();
    let mut log = vec![0u8; len];
    crate::transport::read_exact(&mut host, &mut log, T).unwrap();
    assert_eq!(String::from_utf8(log).unwrap(), "upload\noem log\n");
    let mut okay = [0u8; 256];
    let n = host.read_packet(&mut okay, T).unwrap();
    assert_eq!(&okay[..n], b"OKAY");
}

#[test]
fn a_host_that_vanishes_mid_download_ends_the_session() {
    let (mut host, dev) = start(small_phone(), FastbootConfig::default());
    assert_eq!(one(&mut host, "download:00100000"), "DATA00100000");
    host.write(&[0u8; 1000], T).unwrap();
    drop(host);
    assert!(matches!(dev.join().unwrap().0, SessionEnd::Disconnected));
}

#[test]
fn spilled_downloads_flash_the_same_bytes() {
    let phone = small_phone();
    let config = FastbootConfig {
        spill_downloads_above: 0,
        ..FastbootConfig::default()
    };
    let (mut host, _dev) = start(phone.clone(), config);
    let image: Vec<u8> = (0..500_000u32).map(|i| (i % 239) as u8).collect();
    download(&mut host, &image);
    assert_eq!(one(&mut host, "flash:system_b"), "OKAY");
    let mut back = vec![0u8; image.len()];
    phone.read_partition("system_b", 0, &mut back).unwrap();
    assert!(back == image);
}
