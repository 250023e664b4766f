//! The Sahara host opening a pseudo-terminal as a serial port (as it opens a QDLoader tty),
//! with the simulated boot ROM on the other side.

use std::path::Path;
use std::time::Duration;

use protocols::progress::NoProgress;
use protocols::sahara::{
    InfoOutcome, SaharaError, SaharaHost, SaharaImages, SaharaOutcome, SaharaTimeouts, Status,
};
use protocols::sim::sahara::{SaharaDevice, SaharaFault, SaharaIdentity, SaharaServeOutcome};
use protocols::transport::pty::PtyDevice;
use protocols::transport::serial::SerialLink;
use protocols::transport::{read_exact, Transport};

use crate::sahara_host::{identity_signing, spawn_device, write_programmer, TIMEOUTS};

fn open_host(path: &Path) -> SerialLink {
    SerialLink::open(path.to_str().unwrap()).unwrap()
}

#[test]
fn info_then_upload_over_a_pty_v2_and_v3() {
    for version in [2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let (prog, sha) = write_programmer(dir.path(), "prog_firehose.elf", &[0x3c; 70_000]);
        let tty = dir.path().join("ttyEDL0");
        let identity = identity_signing(sha);
        // The ROM says HELLO as soon as it is up, before the host opens the port: the tty
        // buffers it, as a real QDLoader port does.
        let pty = PtyDevice::create(Some(&tty)).unwrap();
        let handle = spawn_device(SaharaDevice::new(version, identity.clone()), pty);
        let mut link = open_host(&tty);
        let mut host = SaharaHost::with_timeouts(&mut link, TIMEOUTS);
        let InfoOutcome::Info(info) = host.read_info().unwrap() else {
            panic!("expected identity")
        };
        assert_eq!(info.version, Some(version));
        assert_eq!(info.serial, Some(identity.serial));
        assert_eq!(info.hw_id, Some(identity.hw_id));
        assert_eq!(info.chip_id_v3.is_some(), version >= 3);
        assert_eq!(info.oem_pk_hash, Some(identity.oem_pk_hash.clone()));
        assert_eq!(info.sbl_version, Some(identity.sbl_version));
        let outcome = host
            .upload(&SaharaImages::programmer(&prog), &NoProgress)
            .unwrap();
        let SaharaOutcome::ProgrammerLoaded(report) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            report.images[0].bytes_sent,
            std::fs::metadata(&prog).unwrap().len()
        );
        let (outcome, _pty) = handle.join().unwrap();
        assert!(matches!(
            outcome,
            SaharaServeOutcome::ProgrammerAccepted { sha256, .. } if sha256 == sha
        ));
    }
}

#[test]
fn host_can_close_and_reopen_the_port_between_info_and_upload() {
    let dir = tempfile::tempdir().unwrap();
    let (prog, sha) = write_programmer(dir.path(), "p.elf", b"reopen");
    let tty = dir.path().join("ttyEDL1");
    let pty = PtyDevice::create(Some(&tty)).unwrap();
    let handle = spawn_device(SaharaDevice::new(2, identity_signing(sha)), pty);
    {
        let mut link = open_host(&tty);
        let outcome = SaharaHost::with_timeouts(&mut link, TIMEOUTS)
            .read_info()
            .unwrap();
        assert!(matches!(outcome, InfoOutcome::Info(_)));
    }
    let mut link = open_host(&tty);
    let outcome = SaharaHost::with_timeouts(&mut link, TIMEOUTS)
        .upload(&SaharaImages::programmer(&prog), &NoProgress)
        .unwrap();
    assert!(matches!(outcome, SaharaOutcome::ProgrammerLoaded(_)));
    assert!(matches!(
        handle.join().unwrap().0,
        SaharaServeOutcome::ProgrammerAccepted { .. }
    ));
}

#[test]
fn wrong_programmer_over_a_pty_names_file_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let (_, signed) = write_programmer(dir.path(), "right.elf", b"right");
    let (wrong, _) = write_programmer(dir.path(), "wrong.elf", b"wrong");
    let tty = dir.path().join("ttyEDL2");
    let pty = PtyDevice::create(Some(&tty)).unwrap();
    let mut device = SaharaDevice::new(3, identity_signing(signed));
    device.host_timeout = Duration::from_secs(2);
    let handle = spawn_device(device, pty);
    let mut link = open_host(&tty);
    let err = SaharaHost::with_timeouts(&mut link, TIMEOUTS)
        .upload(&SaharaImages::programmer(&wrong), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(&err, SaharaError::ImageRejected { file, status, .. }
            if file == &wrong && *status == Status::IMAGE_AUTH_FAILURE),
        "{err}"
    );
    assert!(err.to_string().contains("wrong.elf"));
    // A serial port has no unplug: the ROM waits in its error state until its own timeout.
    drop(link);
    assert!(matches!(
        handle.join().unwrap().0,
        SaharaServeOutcome::ProgrammerRejected { .. }
    ));
}

#[test]
fn lost_hello_silence_and_garbage_over_a_pty() {
    let dir = tempfile::tempdir().unwrap();
    let (prog, sha) = write_programmer(dir.path(), "p.elf", b"faults");

    // Lost HELLO: recovered by the unsolicited HELLO_RESP.
    let tty = dir.path().join("ttyEDL3");
    let mut device = SaharaDevice::new(2, identity_signing(sha));
    device.fault = Some(SaharaFault::HelloLost);
    let handle = spawn_device(device, PtyDevice::create(Some(&tty)).unwrap());
    let mut link = open_host(&tty);
    let outcome = SaharaHost::with_timeouts(&mut link, TIMEOUTS)
        .upload(&SaharaImages::programmer(&prog), &NoProgress)
        .unwrap();
    assert!(matches!(outcome, SaharaOutcome::ProgrammerLoaded(_)));
    handle.join().unwrap();

    // Silent: a timeout error after the prod.
    let tty = dir.path().join("ttyEDL4");
    let mut device = SaharaDevice::new(2, SaharaIdentity::default());
    device.fault = Some(SaharaFault::Silent);
    device.host_timeout = Duration::from_secs(1);
    let handle = spawn_device(device, PtyDevice::create(Some(&tty)).unwrap());
    let mut link = open_host(&tty);
    let timeouts = SaharaTimeouts {
        packet: Duration::from_millis(300),
        ..TIMEOUTS
    };
    let err = SaharaHost::with_timeouts(&mut link, timeouts)
        .read_info()
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("serial:"), "{err}");
    drop(link);
    handle.join().unwrap();

    // Garbage: a protocol error, not a hang or a panic.
    let tty = dir.path().join("ttyEDL5");
    let mut device = SaharaDevice::new(2, SaharaIdentity::default());
    device.fault = Some(SaharaFault::Garbage);
    device.host_timeout = Duration::from_secs(1);
    let handle = spawn_device(device, PtyDevice::create(Some(&tty)).unwrap());
    let mut link = open_host(&tty);
    let err = SaharaHost::with_timeouts(&mut link, TIMEOUTS)
        .upload(&SaharaImages::programmer(&prog), &NoProgress)
        .unwrap_err();
    assert!(matches!(err, SaharaError::Malformed { .. }), "{err}");
    drop(link);
    handle.join().unwrap();
}

#[test]
fn running_firehose_over_a_pty_leaves_its_bytes_for_the_firehose_client() {
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("ttyEDL6");
    let mut pty = PtyDevice::create(Some(&tty)).unwrap();
    let xml = b"<?xml version=\"1.0\" ?><data><log value=\"INFO: Binary build date\" /></data>";
    pty.write(xml, TIMEOUTS.write).unwrap();
    let mut link = open_host(&tty);
    let outcome = SaharaHost::with_timeouts(&mut link, TIMEOUTS)
        .read_info()
        .unwrap();
    let InfoOutcome::FirehoseAlreadyRunning { already_read } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(already_read, xml[..8].to_vec());
    let mut rest = vec![0u8; xml.len() - 8];
    read_exact(&mut link, &mut rest, TIMEOUTS.packet).unwrap();
    assert_eq!(rest, xml[8..].to_vec());
}
