//! EDL scenarios: flashgate's Firehose host against the simulated programmer (and, through
//! `sim::edl`, the whole Sahara + Firehose phone), in memory and over a pty.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use flashgate_scenarios::{spawn_device, DeviceThread};
use protocols::firehose::package;
use protocols::firehose::{flash, Firehose, FirehoseConfig, FirehoseError, PowerMode, StorageKind};
use protocols::progress::ProgressEvent;
use protocols::sim::firehose::{FirehoseOutcome, FirehoseSimConfig};
use protocols::sim::{Phone, PhoneMode};
use protocols::transport::memory::{pair_with, MemoryLink};
use protocols::transport::Framing;
use sha2::{Digest, Sha256};

pub(crate) mod fixture;
use fixture::{test_phone, EdlPackage};

pub(crate) fn firehose_session(
    phone: &Phone,
    sim: FirehoseSimConfig,
) -> (
    Firehose<MemoryLink>,
    thread::JoinHandle<Result<FirehoseOutcome, String>>,
) {
    let (host, mut dev, _control) = pair_with("edl", Framing::Packets, Some(512));
    let phone = phone.clone();
    let handle = thread::spawn(move || {
        protocols::sim::firehose::serve(&mut dev, &phone, &sim, &[]).map_err(|e| e.to_string())
    });
    (Firehose::new(host, FirehoseConfig::default()), handle)
}

/// Check what the fastboot personality would see: the shared storage holds exactly the package.
pub fn assert_phone_holds_package(phone: &Phone, pkg: &EdlPackage) {
    let mut boot = vec![0u8; 1 << 20];
    phone.read_partition("boot_a", 0, &mut boot).unwrap();
    assert_eq!(&boot[..pkg.boot.len()], &pkg.boot[..], "boot_a content");
    assert!(
        boot[pkg.boot.len()..].iter().all(|&b| b == 0),
        "boot_a padding"
    );
    let mut system = vec![0u8; pkg.system_raw.len()];
    phone.read_partition("system_a", 0, &mut system).unwrap();
    assert!(
        system == pkg.system_raw,
        "system_a equals the expanded sparse image"
    );
    let mut primary = vec![0u8; pkg.gpt_primary.len()];
    let mut backup = vec![0u8; pkg.gpt_backup.len()];
    {
        let mut state = phone.lock();
        let sector = u64::from(state.storage.lun(0).unwrap().sector_size());
        state.storage.read_lun(0, 0, &mut primary).unwrap();
        state
            .storage
            .read_lun(0, sector * pkg.gpt_backup_lba, &mut backup)
            .unwrap();
    }
    assert!(
        primary == pkg.gpt_primary,
        "patched primary GPT is the valid table"
    );
    assert!(
        backup == pkg.gpt_backup,
        "patched backup GPT is the valid table"
    );
}

#[test]
fn firehose_host_flashes_a_package_on_the_simulated_programmer_in_memory() {
    let phone = test_phone(None);
    let pkg = EdlPackage::for_phone(&phone);
    let sim = FirehoseSimConfig {
        max_payload_to_target: 256 * 1024,
        ..Default::default()
    };
    let (mut fh, device) = firehose_session(&phone, sim);
    let logs = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = logs.clone();
    fh.set_progress(Arc::new(move |e: ProgressEvent<'_>| {
        if let ProgressEvent::DeviceMessage { text } = e {
            sink.lock().unwrap().push(text.to_owned());
        }
    }));

    let greeting = fh.wait_for_greeting().unwrap();
    assert!(greeting
        .last()
        .unwrap()
        .starts_with("INFO: End of supported functions"));
    // The host asks for 1 MiB, the programmer NAKs and offers 256 KiB.
    let info = fh.configure().unwrap();
    assert_eq!(info.payload_size, 256 * 1024);
    assert_eq!(info.memory_name.as_deref(), Some("UFS"));

    let package = package::load(&pkg.files(), &flash::probe_sparse).unwrap();
    assert_eq!(package.skipped.len(), 1);
    assert_eq!(package.host_patches, 1);
    let summary = fh.flash_package(&package).unwrap();
    assert_eq!(summary.programs, 4);
    assert_eq!(summary.patches, 9);
    assert_phone_holds_package(&phone, &pkg);

    // Resolve by label through the device's own GPT, then read back and digest.
    let luns = fh.lun_count();
    assert_eq!(luns, 1);
    let system = fh.find_partition("system_a", 0..luns).unwrap();
    assert_eq!(system.lun, 0);
    let sectors = (pkg.system_raw.len() / 4096) as u64;
    let mut back = Vec::new();
    fh.read_sectors(system.lun, system.first_sector(), sectors, &mut back)
        .unwrap();
    assert!(
        back == pkg.system_raw,
        "read back equals the expanded image"
    );
    let digest = fh
        .sha256_digest(system.lun, &system.first_sector().to_string(), sectors)
        .unwrap();
    assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&pkg.system_raw)));
    // Random access inside a partition (what an ext4 reader does), counting what crossed.
    let mut reader = protocols::firehose::PartitionReader::new(&mut fh, system.clone());
    let mut piece = [0u8; 100];
    reader.read_at(5 * 4096 - 50, &mut piece).unwrap();
    assert_eq!(&piece[..], &pkg.system_raw[5 * 4096 - 50..5 * 4096 + 50]);
    assert_eq!(reader.bytes_read(), 2 * 4096);
    assert!(reader
        .read_at(system.size_bytes() - 10, &mut piece)
        .is_err());
    // Erase: the range reads back as zeros through the fastboot view.
    let boot = fh.find_partition("boot_a", 0..luns).unwrap();
    fh.erase(0, Some((&boot.first_sector().to_string(), 2)))
        .unwrap();
    let mut head = vec![0xFFu8; 3 * 4096];
    phone.read_partition("boot_a", 0, &mut head).unwrap();
    assert!(head[..2 * 4096].iter().all(|&b| b == 0), "erased");
    assert_eq!(
        &head[2 * 4096..],
        &pkg.boot[2 * 4096..3 * 4096],
        "past the erase"
    );
    let err = fh.find_partition("no_such", 0..2).unwrap_err();
    assert!(
        matches!(err, FirehoseError::PartitionNotFound { .. }),
        "{err}"
    );

    fh.power(PowerMode::Reset, 0).unwrap();
    assert_eq!(device.join().unwrap(), Ok(FirehoseOutcome::Reset));
    assert_eq!(phone.mode(), PhoneMode::Bootloader);
    assert!(logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("INFO: Digest 0x")));
}

#[test]
fn firehose_sector_size_and_storage_mismatches_are_refused() {
    let phone = test_phone(None);
    let (host, mut dev, _c) = pair_with("edl", Framing::Stream, None);
    let p = phone.clone();
    let device = thread::spawn(move || {
        protocols::sim::firehose::serve(&mut dev, &p, &FirehoseSimConfig::default(), &[])
            .map_err(|e| e.to_string())
    });
    let mut fh = Firehose::new(
        host,
        FirehoseConfig {
            storage: StorageKind::Emmc,
            ..Default::default()
        },
    );
    let err = fh.configure().unwrap_err();
    assert!(err.to_string().contains("this device has UFS"), "{err}");
    drop(fh);
    assert_eq!(device.join().unwrap(), Ok(FirehoseOutcome::HostGone));
}

#[test]
fn firehose_program_nak_from_an_injected_fault_names_the_reason() {
    let phone = test_phone(None);
    phone.fail("program", "Write failed: UFS device error");
    let (mut fh, device) = firehose_session(&phone, FirehoseSimConfig::default());
    fh.configure().unwrap();
    let target = protocols::firehose::ProgramTarget {
        lun: 0,
        start_sector: "10",
        label: "boot_a",
        filename: None,
    };
    let err = fh
        .program(&target, &mut &[1u8; 4096][..], 4096)
        .unwrap_err();
    assert!(
        matches!(&err, FirehoseError::Nak { reason, .. } if reason.contains("UFS device error")),
        "{err}"
    );
    // The session stays usable after a NAK.
    fh.nop().unwrap();
    fh.power(PowerMode::Off, 0).unwrap();
    assert_eq!(device.join().unwrap(), Ok(FirehoseOutcome::PowerOff));
    assert_eq!(phone.mode(), PhoneMode::Off);
}

// ---- The whole EDL phone: Sahara upload, then Firehose, over one link ----

use protocols::firehose::edl::{self, EdlError};
use protocols::firehose::Timeouts;
use protocols::sahara::{InfoOutcome, SaharaHost, SaharaImages, SaharaTimeouts};
use protocols::sim::edl::{EdlOutcome, EdlSimConfig};
use protocols::sim::sahara_elf::programmer_elf;
use protocols::transport::Transport;

const SAHARA: SaharaTimeouts = SaharaTimeouts {
    hello: Duration::from_millis(300),
    packet: Duration::from_secs(3),
    write: Duration::from_secs(3),
};

/// A programmer file and a phone whose secure boot accepts it.
fn edl_phone(dir: &std::path::Path) -> (Phone, std::path::PathBuf) {
    let programmer = programmer_elf(b"flashgate test programmer for FGEDL0001");
    let path = dir.join("prog_firehose_ddr.elf");
    std::fs::write(&path, &programmer).unwrap();
    let phone = test_phone(None);
    phone
        .lock()
        .identity
        .accepted_programmers
        .push(Sha256::digest(&programmer).into());
    (phone, path)
}

fn spawn_edl<T: Transport + Send + 'static>(
    phone: &Phone,
    link: T,
    config: EdlSimConfig,
) -> DeviceThread<EdlOutcome> {
    let phone = phone.clone();
    spawn_device(link, move |link| {
        protocols::sim::edl::serve(link, &phone, &config).unwrap()
    })
}

fn quick_firehose() -> FirehoseConfig {
    FirehoseConfig {
        timeouts: Timeouts {
            greeting: Duration::from_secs(2),
            response: Duration::from_millis(800),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn whole_flow(framing: Framing) {
    let dir = tempfile::tempdir().unwrap();
    let (phone, programmer) = edl_phone(dir.path());
    let (host, dev, _c) = pair_with(
        "edl",
        framing,
        Some(512).filter(|_| framing == Framing::Packets),
    );
    let device = spawn_edl(&phone, dev, EdlSimConfig::new(2));
    drive_whole_flow(host, &phone, &programmer);
    assert_eq!(
        device.join().unwrap(),
        EdlOutcome::Programmer(FirehoseOutcome::Reset)
    );
    // Re-enumeration: the phone now boots to fastboot, where the same storage is read.
    assert_eq!(phone.mode(), PhoneMode::Bootloader);
}

/// info, upload, configure, flash a package with a sparse image and patches, read back,
/// digest, reset.
fn drive_whole_flow<T: Transport>(mut host: T, phone: &Phone, programmer: &std::path::Path) {
    let pkg = EdlPackage::for_phone(phone);
    // info: Sahara command mode, then back to image transfer.
    let identity = phone.identity();
    match SaharaHost::with_timeouts(&mut host, SAHARA)
        .read_info()
        .unwrap()
    {
        InfoOutcome::Info(info) => {
            assert_eq!(info.serial, Some(identity.chip_serial));
            assert_eq!(info.oem_pk_hash.as_deref(), Some(&identity.oem_pk_hash[..]));
        }
        other => panic!("{other:?}"),
    }
    // upload + configure
    let mut session = edl::start(
        host,
        &SaharaImages::programmer(programmer),
        SAHARA,
        quick_firehose(),
        Arc::new(protocols::progress::NoProgress),
    )
    .unwrap();
    assert!(session.upload.is_some());
    assert!(session
        .greeting
        .iter()
        .any(|l| l.starts_with("INFO: End of supported functions")));
    let fh = &mut session.firehose;
    let package = package::load(&pkg.files(), &flash::probe_sparse).unwrap();
    fh.flash_package(&package).unwrap();
    assert_phone_holds_package(phone, &pkg);
    let luns = fh.lun_count();
    let system = fh.find_partition("system_a", 0..luns).unwrap();
    let sectors = (pkg.system_raw.len() / 4096) as u64;
    let mut back = Vec::new();
    fh.read_sectors(0, system.first_sector(), sectors, &mut back)
        .unwrap();
    assert!(back == pkg.system_raw);
    let digest = fh
        .sha256_digest(0, &system.first_sector().to_string(), sectors)
        .unwrap();
    assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&pkg.system_raw)));
    fh.power(PowerMode::Reset, 0).unwrap();
}

#[test]
fn whole_edl_flow_over_a_pty() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, programmer) = edl_phone(dir.path());
    let tty = dir.path().join("ttyEDL0");
    let pty = protocols::transport::pty::PtyDevice::create(Some(&tty)).unwrap();
    let device = spawn_edl(&phone, pty, EdlSimConfig::new(3));
    let host = protocols::transport::serial::SerialLink::open(tty.to_str().unwrap()).unwrap();
    drive_whole_flow(host, &phone, &programmer);
    assert_eq!(
        device.join().unwrap(),
        EdlOutcome::Programmer(FirehoseOutcome::Reset)
    );
}

#[test]
fn whole_edl_flow_in_memory_over_usb_like_packets() {
    whole_flow(Framing::Packets);
}

#[test]
fn whole_edl_flow_in_memory_over_a_serial_like_stream() {
    whole_flow(Framing::Stream);
}

fn start_against(
    phone: &Phone,
    programmer: &std::path::Path,
) -> (Result<(), EdlError>, EdlOutcome) {
    let (host, dev, _c) = pair_with("edl", Framing::Packets, Some(512));
    let device = spawn_edl(phone, dev, EdlSimConfig::new(3));
    let result = edl::start(
        host,
        &SaharaImages::programmer(programmer),
        SAHARA,
        quick_firehose(),
        Arc::new(protocols::progress::NoProgress),
    )
    .map(drop);
    (result, device.join().unwrap())
}

#[test]
fn a_programmer_the_phone_did_not_sign_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, _) = edl_phone(dir.path());
    let other = dir.path().join("other.elf");
    std::fs::write(&other, programmer_elf(b"a programmer for another product")).unwrap();
    let (result, outcome) = start_against(&phone, &other);
    let err = result.unwrap_err();
    assert!(matches!(err, EdlError::Sahara(_)), "{err}");
    assert!(err.to_string().contains("other.elf"), "{err}");
    assert!(
        matches!(outcome, EdlOutcome::ProgrammerRejected { .. }),
        "{outcome:?}"
    );
}

#[test]
fn a_nak_on_configure_surfaces_the_programmer_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, programmer) = edl_phone(dir.path());
    phone.fail(
        "configure",
        "Failed to initialize (open whole lun) UFS Device slot 0 partition 0",
    );
    let (result, _outcome) = start_against(&phone, &programmer);
    match result {
        Err(EdlError::Firehose(FirehoseError::Nak {
            command, reason, ..
        })) => {
            assert_eq!(command, "configure");
            assert!(reason.contains("UFS Device slot 0"), "{reason}");
        }
        other => panic!("expected a NAK, got {other:?}"),
    }
}

#[test]
fn a_programmer_that_never_answers_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, programmer) = edl_phone(dir.path());
    phone.delay("configure", Duration::from_secs(3));
    let (result, _outcome) = start_against(&phone, &programmer);
    match result {
        Err(EdlError::Firehose(FirehoseError::Timeout { command, .. })) => {
            assert_eq!(command, "configure")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn garbage_from_the_programmer_is_a_protocol_error_not_a_hang() {
    let phone = test_phone(None);
    phone.garbage("getsha256digest");
    let (mut fh, _device) = firehose_session(&phone, FirehoseSimConfig::default());
    fh.configure().unwrap();
    let err = fh.sha256_digest(0, "0", 1).unwrap_err();
    assert!(matches!(err, FirehoseError::Protocol { .. }), "{err}");
}

#[test]
fn unplugged_mid_program_is_a_disconnect() {
    let phone = test_phone(None);
    let (host, mut dev, control) = pair_with("edl", Framing::Packets, Some(512));
    let p = phone.clone();
    let device = thread::spawn(move || {
        protocols::sim::firehose::serve(&mut dev, &p, &FirehoseSimConfig::default(), &[])
            .map_err(|e| e.to_string())
    });
    let mut fh = Firehose::new(host, FirehoseConfig::default());
    fh.configure().unwrap();
    control.cut_after_host_bytes(control.host_bytes_written() + 3 * 1024 * 1024);
    let target = protocols::firehose::ProgramTarget {
        lun: 0,
        start_sector: "256",
        label: "system_a",
        filename: None,
    };
    let data = vec![0x77u8; 6 << 20];
    let err = fh
        .program(&target, &mut &data[..], data.len() as u64)
        .unwrap_err();
    assert!(err.is_disconnect(), "{err}");
    assert_eq!(device.join().unwrap(), Ok(FirehoseOutcome::HostGone));
}

#[test]
fn a_phone_that_drops_writes_is_caught_by_read_back_and_digest() {
    let phone = test_phone(None);
    phone.drop_writes(protocols::sim::DropWrites::Partitions(
        vec!["boot_a".into()],
    ));
    let (mut fh, _device) = firehose_session(&phone, FirehoseSimConfig::default());
    fh.configure().unwrap();
    let boot = fh.find_partition("boot_a", 0..1).unwrap();
    let image = vec![0x42u8; 8192];
    let start = boot.first_sector().to_string();
    let target = protocols::firehose::ProgramTarget {
        lun: 0,
        start_sector: &start,
        label: "boot_a",
        filename: None,
    };
    // The programmer ACKs …
    fh.program(&target, &mut &image[..], image.len() as u64)
        .unwrap();
    // … but what is on the device is not what was sent.
    let mut back = Vec::new();
    fh.read_sectors(0, boot.first_sector(), 2, &mut back)
        .unwrap();
    assert_ne!(back, image);
    let digest = fh.sha256_digest(0, &start, 2).unwrap();
    assert_ne!(digest, <[u8; 32]>::from(Sha256::digest(&image)));
}
