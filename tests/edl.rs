//! EDL scenarios: flashgate's Firehose host against the simulated programmer (and, through
//! `sim::edl`, the whole Sahara + Firehose phone), in memory and over a pty.

use std::sync::{Arc, Mutex};
use std::thread;

use protocols::firehose::package;
use protocols::firehose::{flash, Firehose, FirehoseConfig, FirehoseError, PowerMode, StorageKind};
use protocols::progress::ProgressEvent;
use protocols::sim::firehose::{FirehoseOutcome, FirehoseSimConfig};
use protocols::sim::{Phone, PhoneMode};
use protocols::transport::memory::{pair_with, MemoryLink};
use protocols::transport::Framing;
use sha2::{Digest, Sha256};

#[path = "edl_package.rs"]
mod edl_package;
use edl_package::{test_phone, EdlPackage};

fn firehose_session(
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
