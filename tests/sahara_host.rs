//! Sahara host against the simulated boot ROM: identity in command mode (v2, v3), programmer
//! upload (accepted, refused, wrong image, truncated file), recovery (lost HELLO, Firehose
//! already running) and misbehaving devices (silent, garbage), on packet and stream links.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use protocols::progress::{NoProgress, ProgressEvent};
use protocols::sahara::identity::HwId;
use protocols::sahara::packet::{ExecCommand, Hello, HelloResp};
use protocols::sahara::{
    InfoOutcome, Mode, Packet, SaharaError, SaharaHost, SaharaImages, SaharaOutcome,
    SaharaTimeouts, Status,
};
use protocols::sim::sahara::{SaharaDevice, SaharaFault, SaharaIdentity, SaharaServeOutcome};
use protocols::sim::sahara_elf::programmer_elf;
use protocols::transport::memory::{pair, pair_with, MemoryLink};
use protocols::transport::{read_exact, Framing, Transport};
use sha2::{Digest, Sha256};

pub const TIMEOUTS: SaharaTimeouts = SaharaTimeouts {
    hello: Duration::from_millis(200),
    packet: Duration::from_secs(3),
    write: Duration::from_secs(3),
};

/// A programmer file in `dir` and its SHA-256.
pub fn write_programmer(dir: &Path, name: &str, payload: &[u8]) -> (PathBuf, [u8; 32]) {
    let elf = programmer_elf(payload);
    let path = dir.join(name);
    std::fs::write(&path, &elf).unwrap();
    (path, Sha256::digest(&elf).into())
}

pub fn identity_signing(sha: [u8; 32]) -> SaharaIdentity {
    SaharaIdentity {
        serial: 0x1234_abcd,
        hw_id: HwId {
            msm_id: 0x000b_f0e1,
            oem_id: 0x0051,
            model_id: 0x0007,
        },
        chip_identifier: 0x5a5a_0001,
        oem_pk_hash: Sha256::digest(b"oem key").to_vec(),
        sbl_version: 0x0000_0042,
        signed_programmers: vec![sha],
    }
}

/// Run the device on its own thread; it hands its link end back so the host's last reads are
/// not cut by an early drop.
pub fn spawn_device<T: Transport + 'static>(
    device: SaharaDevice,
    mut link: T,
) -> JoinHandle<(SaharaServeOutcome, T)> {
    thread::spawn(move || {
        let outcome = device.serve(&mut link).expect("simulated device failed");
        (outcome, link)
    })
}

fn links(framing: Framing) -> (MemoryLink, MemoryLink) {
    let (host, dev, _control) = match framing {
        Framing::Packets => pair("edl"),
        Framing::Stream => pair_with("edl", Framing::Stream, None),
    };
    (host, dev)
}

fn info_then_upload(version: u32, framing: Framing) {
    let dir = tempfile::tempdir().unwrap();
    let (prog, sha) = write_programmer(dir.path(), "prog_firehose_ddr.elf", &[0xa5; 50_000]);
    let mut identity = identity_signing(sha);
    if version >= 3 {
        identity.oem_pk_hash = Sha256::digest(b"k").repeat(2)[..48].to_vec();
    }
    let device = SaharaDevice::new(version, identity.clone());
    let (mut host_end, dev_end) = links(framing);
    let device = spawn_device(device, dev_end);

    let mut host = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS);
    let InfoOutcome::Info(info) = host.read_info().unwrap() else {
        panic!("expected identity");
    };
    assert_eq!(info.version, Some(version));
    assert_eq!(info.serial, Some(identity.serial));
    assert_eq!(info.hw_id, Some(identity.hw_id));
    assert_eq!(info.oem_pk_hash.as_deref(), Some(&identity.oem_pk_hash[..]));
    assert_eq!(info.sbl_version, Some(0x42));
    if version >= 3 {
        assert_eq!(
            info.chip_id_v3.map(|c| c.chip_identifier),
            Some(0x5a5a_0001)
        );
    } else {
        assert_eq!(info.chip_id_v3, None);
    }
    assert!(info.refused.is_empty(), "{:?}", info.refused);

    // The same session goes on to upload: the ROM said HELLO again after SWITCH_MODE.
    let bytes = AtomicU64::new(0);
    let progress = |e: ProgressEvent<'_>| {
        if let ProgressEvent::Bytes { bytes: n } = e {
            bytes.fetch_add(n, Ordering::Relaxed);
        }
    };
    let outcome = host
        .upload(&SaharaImages::programmer(&prog), &progress)
        .unwrap();
    let SaharaOutcome::ProgrammerLoaded(report) = outcome else {
        panic!("expected upload, got {outcome:?}");
    };
    let size = std::fs::metadata(&prog).unwrap().len();
    assert_eq!(report.version, Some(version));
    assert_eq!(report.images.len(), 1);
    assert_eq!(report.images[0].image_id, 13);
    assert_eq!(report.images[0].bytes_sent, size);
    assert_eq!(bytes.load(Ordering::Relaxed), size);
    // Header, program headers, then 4 KiB requests: 50 000 bytes of code alone take 13.
    assert!(report.images[0].requests > 15, "{report:?}");

    let (outcome, _link) = device.join().unwrap();
    assert_eq!(
        outcome,
        SaharaServeOutcome::ProgrammerAccepted {
            sha256: sha,
            size,
            read_requests: report.images[0].requests,
        }
    );
}

#[test]
fn info_then_upload_v2_packets() {
    info_then_upload(2, Framing::Packets);
}

#[test]
fn info_then_upload_v3_packets() {
    info_then_upload(3, Framing::Packets);
}

#[test]
fn info_then_upload_v2_stream() {
    info_then_upload(2, Framing::Stream);
}

#[test]
fn info_then_upload_v3_stream() {
    info_then_upload(3, Framing::Stream);
}

#[test]
fn v1_rom_uses_read_data_and_accepts_the_programmer() {
    let dir = tempfile::tempdir().unwrap();
    let (prog, sha) = write_programmer(dir.path(), "prog.mbn", b"small programmer");
    let device = SaharaDevice::new(1, identity_signing(sha));
    assert!(!device.read_data_64);
    let (mut host_end, dev_end) = links(Framing::Packets);
    let device = spawn_device(device, dev_end);
    let outcome = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&SaharaImages::programmer(&prog), &NoProgress)
        .unwrap();
    assert!(matches!(outcome, SaharaOutcome::ProgrammerLoaded(_)));
    let (outcome, _link) = device.join().unwrap();
    assert!(matches!(
        outcome,
        SaharaServeOutcome::ProgrammerAccepted { sha256, .. } if sha256 == sha
    ));
}

#[test]
fn unsigned_programmer_is_refused_with_the_file_and_status_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, signed) = write_programmer(dir.path(), "signed.elf", b"the OEM's programmer");
    let (wrong, wrong_sha) = write_programmer(dir.path(), "other_oem.elf", b"another OEM's");
    let device = SaharaDevice::new(2, identity_signing(signed));
    let (mut host_end, dev_end) = links(Framing::Packets);
    let device = spawn_device(device, dev_end);
    let err = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&SaharaImages::programmer(&wrong), &NoProgress)
        .unwrap_err();
    match &err {
        SaharaError::ImageRejected {
            file,
            image,
            status,
            ..
        } => {
            assert_eq!(file, &wrong);
            assert_eq!(*image, 13);
            assert_eq!(*status, Status::IMAGE_AUTH_FAILURE);
        }
        other => panic!("expected ImageRejected, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("other_oem.elf"), "{text}");
    assert!(text.contains("IMAGE_AUTH_FAILURE"), "{text}");
    assert!(text.contains("not signed"), "{text}");
    drop(host_end);
    let (outcome, _link) = device.join().unwrap();
    assert_eq!(
        outcome,
        SaharaServeOutcome::ProgrammerRejected {
            status: Status::IMAGE_AUTH_FAILURE,
            sha256: Some(wrong_sha)
        }
    );
}

#[test]
fn a_file_that_is_not_an_elf_is_refused_by_the_rom() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("firmware.bin");
    std::fs::write(&path, vec![0u8; 4096]).unwrap();
    let device = SaharaDevice::new(2, SaharaIdentity::default());
    let (mut host_end, dev_end) = links(Framing::Stream);
    let device = spawn_device(device, dev_end);
    let err = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&SaharaImages::programmer(&path), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, SaharaError::ImageRejected { status, .. } if status == Status::INVALID_ELF_HDR),
        "{err}"
    );
    drop(host_end);
    device.join().unwrap();
}

#[test]
fn truncated_programmer_is_an_out_of_range_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sha) = write_programmer(dir.path(), "cut.elf", &[7; 10_000]);
    let full = std::fs::read(&path).unwrap();
    std::fs::write(&path, &full[..full.len() - 100]).unwrap();
    let device = SaharaDevice::new(3, identity_signing(sha));
    let (mut host_end, dev_end) = links(Framing::Packets);
    let device = spawn_device(device, dev_end);
    let err = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&SaharaImages::programmer(&path), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(&err, SaharaError::OutOfRange { file, size, .. }
            if file == &path && *size == full.len() as u64 - 100),
        "{err}"
    );
    assert!(err.to_string().contains("cut.elf"));
    drop(host_end);
    assert_eq!(device.join().unwrap().0, SaharaServeOutcome::HostGone);
}

#[test]
fn images_are_served_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let (prog, sha) = write_programmer(dir.path(), "xbl.elf", b"image 21");
    let mut device = SaharaDevice::new(2, identity_signing(sha));
    device.image_id = 21;

    // Offered as image 13 only: the ROM's request for 21 cannot be served.
    let (mut host_end, dev_end) = links(Framing::Packets);
    let handle = spawn_device(device.clone(), dev_end);
    let err = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&SaharaImages::programmer(&prog), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(&err, SaharaError::UnknownImage { image: 21, available, .. } if available == "13"),
        "{err}"
    );
    drop(host_end);
    handle.join().unwrap();

    // Offered by id (with an extra image the ROM never asks for).
    let (mut host_end, dev_end) = links(Framing::Packets);
    let handle = spawn_device(device, dev_end);
    let images = SaharaImages::from_list([(21, prog.clone()), (13, prog.clone())]);
    let outcome = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&images, &NoProgress)
        .unwrap();
    let SaharaOutcome::ProgrammerLoaded(report) = outcome else {
        panic!("{outcome:?}")
    };
    let served: Vec<(u64, u64)> = report
        .images
        .iter()
        .map(|i| (i.image_id, i.requests))
        .collect();
    assert_eq!(served[1], (13, 0));
    assert_eq!(served[0].0, 21);
    assert!(served[0].1 > 0);
    assert!(matches!(
        handle.join().unwrap().0,
        SaharaServeOutcome::ProgrammerAccepted { .. }
    ));
}

#[test]
fn lost_hello_is_recovered_with_an_unsolicited_hello_resp() {
    for framing in [Framing::Packets, Framing::Stream] {
        let dir = tempfile::tempdir().unwrap();
        let (prog, sha) = write_programmer(dir.path(), "prog.elf", b"p");
        let mut device = SaharaDevice::new(3, identity_signing(sha));
        device.fault = Some(SaharaFault::HelloLost);

        // Identity without a HELLO: the version is unknown, so the host asks MSM_HW_ID_READ,
        // is refused (v3) and falls back to the v3 chip id.
        let (mut host_end, dev_end) = links(framing);
        let handle = spawn_device(device.clone(), dev_end);
        let mut host = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS);
        let InfoOutcome::Info(info) = host.read_info().unwrap() else {
            panic!()
        };
        assert_eq!(info.version, None);
        assert_eq!(info.serial, Some(0x1234_abcd));
        assert_eq!(info.hw_id.map(|h| h.msm_id), Some(0x000b_f0e1));
        assert!(info.chip_id_v3.is_some());
        assert_eq!(info.refused.len(), 1);
        assert_eq!(info.refused[0].1, Status::EXEC_CMD_UNSUPPORTED);
        // After SWITCH_MODE the ROM says HELLO again, so the upload does not need the prod.
        let outcome = host
            .upload(&SaharaImages::programmer(&prog), &NoProgress)
            .unwrap();
        let SaharaOutcome::ProgrammerLoaded(report) = outcome else {
            panic!()
        };
        assert_eq!(report.version, Some(3));
        drop(host_end);
        assert!(matches!(
            handle.join().unwrap().0,
            SaharaServeOutcome::ProgrammerAccepted { .. }
        ));

        // Straight to upload.
        let (mut host_end, dev_end) = links(framing);
        let handle = spawn_device(device, dev_end);
        let outcome = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
            .upload(&SaharaImages::programmer(&prog), &NoProgress)
            .unwrap();
        assert!(
            matches!(&outcome, SaharaOutcome::ProgrammerLoaded(r) if r.version.is_none()),
            "{outcome:?}"
        );
        assert!(matches!(
            handle.join().unwrap().0,
            SaharaServeOutcome::ProgrammerAccepted { .. }
        ));
    }
}

const FIREHOSE_HELLO: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<data>\n<log value=\"ERROR: XML not formed correctly\" /></data>";

#[test]
fn running_firehose_programmer_is_detected_and_its_bytes_handed_over() {
    // Packet link: the programmer's log arrives as one transfer, all of it handed back.
    let (mut host_end, mut dev_end) = links(Framing::Packets);
    dev_end.write(FIREHOSE_HELLO, TIMEOUTS.write).unwrap();
    let outcome = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&SaharaImages::programmer("/unused/prog.elf"), &NoProgress);
    // The programmer file is opened before anything is read: it must exist.
    assert!(matches!(outcome, Err(SaharaError::ImageFile { .. })));
    let dir = tempfile::tempdir().unwrap();
    let (prog, _) = write_programmer(dir.path(), "p.elf", b"p");
    let outcome = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&SaharaImages::programmer(&prog), &NoProgress)
        .unwrap();
    assert_eq!(
        outcome,
        SaharaOutcome::FirehoseAlreadyRunning {
            already_read: FIREHOSE_HELLO.to_vec()
        }
    );

    // Stream link: only the 8-byte header was consumed; the rest is still on the link.
    let (mut host_end, mut dev_end) = links(Framing::Stream);
    dev_end.write(FIREHOSE_HELLO, TIMEOUTS.write).unwrap();
    let outcome = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .read_info()
        .unwrap();
    let InfoOutcome::FirehoseAlreadyRunning { already_read } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(already_read, FIREHOSE_HELLO[..8].to_vec());
    let mut rest = vec![0u8; FIREHOSE_HELLO.len() - 8];
    read_exact(&mut host_end, &mut rest, TIMEOUTS.packet).unwrap();
    assert_eq!(rest, FIREHOSE_HELLO[8..].to_vec());
}

#[test]
fn firehose_that_only_answers_the_prod_is_detected() {
    // A running programmer says nothing until it receives bytes; then it complains in XML.
    let (mut host_end, mut dev_end) = links(Framing::Packets);
    let programmer = thread::spawn(move || {
        let mut buf = [0u8; 1024];
        let n = dev_end
            .read_packet(&mut buf, Duration::from_secs(5))
            .unwrap();
        assert_eq!(n, 0x30, "expected the unsolicited HELLO_RESP");
        assert_eq!(&buf[..4], &[2, 0, 0, 0]);
        dev_end
            .write(FIREHOSE_HELLO, Duration::from_secs(1))
            .unwrap();
        dev_end
    });
    let outcome = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .read_info()
        .unwrap();
    assert_eq!(
        outcome,
        InfoOutcome::FirehoseAlreadyRunning {
            already_read: FIREHOSE_HELLO.to_vec()
        }
    );
    programmer.join().unwrap();
}

#[test]
fn silent_device_times_out_after_the_prod() {
    let timeouts = SaharaTimeouts {
        packet: Duration::from_millis(300),
        ..TIMEOUTS
    };
    for framing in [Framing::Packets, Framing::Stream] {
        let mut device = SaharaDevice::new(2, SaharaIdentity::default());
        device.fault = Some(SaharaFault::Silent);
        let (mut host_end, dev_end) = links(framing);
        let handle = spawn_device(device, dev_end);
        let err = SaharaHost::with_timeouts(&mut host_end, timeouts)
            .read_info()
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(err.to_string().contains("unsolicited HELLO_RESP"), "{err}");
        assert!(err.to_string().contains("EDL mode"), "{err}");
        drop(host_end);
        assert_eq!(handle.join().unwrap().0, SaharaServeOutcome::HostGone);
    }
}

#[test]
fn garbage_from_the_device_is_a_protocol_error() {
    for framing in [Framing::Packets, Framing::Stream] {
        let dir = tempfile::tempdir().unwrap();
        let (prog, _) = write_programmer(dir.path(), "p.elf", b"p");
        let mut device = SaharaDevice::new(2, SaharaIdentity::default());
        device.fault = Some(SaharaFault::Garbage);
        let (mut host_end, dev_end) = links(framing);
        let handle = spawn_device(device, dev_end);
        let err = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
            .upload(&SaharaImages::programmer(&prog), &NoProgress)
            .unwrap_err();
        assert!(matches!(err, SaharaError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("55ce"), "{err}");
        drop(host_end);
        assert_eq!(handle.join().unwrap().0, SaharaServeOutcome::HostGone);
    }
}

#[test]
fn bytes_after_done_resp_stay_on_the_link_for_firehose() {
    // On a stream the programmer's first log lines can arrive in the same read as DONE_RESP;
    // the Sahara host must stop at the end of DONE_RESP. A scripted ROM sends both in one write.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.bin");
    std::fs::write(&path, b"0123456789").unwrap();
    let (mut host_end, mut dev_end) = links(Framing::Stream);
    let rom = thread::spawn(move || {
        let t = Duration::from_secs(3);
        let mut buf = [0u8; 64];
        let hello = Packet::Hello(Hello {
            version: 2,
            version_compatible: 1,
            max_packet_len: 1024,
            mode: Mode::ImageTxPending,
        });
        dev_end.write(&hello.encode(), t).unwrap();
        read_exact(&mut dev_end, &mut buf[..0x30], t).unwrap();
        let read = Packet::ReadData64 {
            image: 13,
            offset: 2,
            length: 5,
        };
        dev_end.write(&read.encode(), t).unwrap();
        read_exact(&mut dev_end, &mut buf[..5], t).unwrap();
        assert_eq!(&buf[..5], b"23456");
        let eoi = Packet::EndOfImage {
            image: 13,
            status: Status::SUCCESS,
        };
        dev_end.write(&eoi.encode(), t).unwrap();
        read_exact(&mut dev_end, &mut buf[..8], t).unwrap();
        assert_eq!(Packet::decode(&buf[..8]), Ok(Packet::Done));
        let mut last = Packet::DoneResp {
            status: Mode::ImageTxComplete,
        }
        .encode();
        last.extend_from_slice(FIREHOSE_HELLO);
        dev_end.write(&last, t).unwrap();
        dev_end
    });
    let outcome = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&SaharaImages::programmer(&path), &NoProgress)
        .unwrap();
    assert!(matches!(outcome, SaharaOutcome::ProgrammerLoaded(_)));
    let mut next = vec![0u8; FIREHOSE_HELLO.len()];
    read_exact(&mut host_end, &mut next, TIMEOUTS.packet).unwrap();
    assert_eq!(next, FIREHOSE_HELLO);
    rom.join().unwrap();
}

#[test]
fn simulated_phone_identity_is_what_command_mode_reports() {
    let dir = tempfile::tempdir().unwrap();
    let elf = programmer_elf(b"phone programmer");
    let prog = dir.path().join("prog.elf");
    std::fs::write(&prog, &elf).unwrap();
    let phone = protocols::sim::Phone::builder()
        .serial("FGSAHARA1")
        .msm_hw_id(0x0009_50e1_0072_0001)
        .chip_id(0x0000_0950)
        .sbl_version(7)
        .accept_programmer_bytes(&elf)
        .build()
        .unwrap();
    let expected = phone.identity();
    let (mut host_end, dev_end) = links(Framing::Packets);
    let handle = spawn_device(SaharaDevice::for_phone(3, &phone), dev_end);
    let mut host = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS);
    let InfoOutcome::Info(info) = host.read_info().unwrap() else {
        panic!()
    };
    assert_eq!(info.serial, Some(expected.chip_serial));
    assert_eq!(info.hw_id.map(|h| h.as_u64()), Some(0x0009_50e1_0072_0001));
    assert_eq!(info.chip_id_v3.map(|c| c.chip_identifier), Some(0x950));
    assert_eq!(info.oem_pk_hash, Some(expected.oem_pk_hash));
    assert_eq!(info.sbl_version, Some(7));
    let outcome = host
        .upload(&SaharaImages::programmer(&prog), &NoProgress)
        .unwrap();
    assert!(matches!(outcome, SaharaOutcome::ProgrammerLoaded(_)));
    assert!(matches!(
        handle.join().unwrap().0,
        SaharaServeOutcome::ProgrammerAccepted { sha256, .. } if sha256 == <[u8; 32]>::from(Sha256::digest(&elf))
    ));
}

#[test]
fn v1_rom_refuses_command_mode_and_reset_is_acknowledged() {
    let mut device = SaharaDevice::new(1, SaharaIdentity::default());
    device.host_timeout = Duration::from_secs(2);
    let (mut host_end, dev_end) = links(Framing::Packets);
    let handle = spawn_device(device, dev_end);
    let mut host = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS);
    let err = host.read_info().unwrap_err();
    assert!(
        matches!(err, SaharaError::CommandModeRefused { status, .. } if status == Status::INVALID_HOST_MODE),
        "{err}"
    );
    assert!(err.to_string().contains("INVALID_HOST_MODE"), "{err}");
    host.reset().unwrap();
    assert_eq!(handle.join().unwrap().0, SaharaServeOutcome::Reset);

    // Reset right after the ROM's HELLO, which is still queued ahead of RESET_RESP.
    let (mut host_end, dev_end, control) = pair_with("edl", Framing::Stream, None);
    let handle = spawn_device(SaharaDevice::new(3, SaharaIdentity::default()), dev_end);
    assert!(
        control.wait_for_device_bytes(1, TIMEOUTS.packet),
        "the ROM sent no HELLO"
    );
    SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .reset()
        .unwrap();
    assert_eq!(handle.join().unwrap().0, SaharaServeOutcome::Reset);
}

/// A boot ROM scripted step by step, for behaviours the simulated ROM does not have.
fn scripted_rom(
    framing: Framing,
    script: impl FnOnce(&mut MemoryLink) + Send + 'static,
) -> (MemoryLink, JoinHandle<MemoryLink>) {
    let (host_end, mut dev_end) = links(framing);
    let handle = thread::spawn(move || {
        script(&mut dev_end);
        dev_end
    });
    (host_end, handle)
}

const T: Duration = Duration::from_secs(3);

fn hello(version: u32, version_compatible: u32, mode: Mode) -> Vec<u8> {
    Packet::Hello(Hello {
        version,
        version_compatible,
        max_packet_len: 1024,
        mode,
    })
    .encode()
}

fn expect(dev: &mut MemoryLink, packet: Packet) {
    let len = packet.encode().len();
    let mut buf = vec![0u8; len];
    read_exact(dev, &mut buf, T).unwrap();
    assert_eq!(Packet::decode(&buf), Ok(packet));
}

/// Answer one READ_DATA_64 and check the bytes.
fn read64(dev: &mut MemoryLink, image: u64, offset: u64, want: &[u8]) {
    let length = want.len() as u64;
    dev.write(
        &Packet::ReadData64 {
            image,
            offset,
            length,
        }
        .encode(),
        T,
    )
    .unwrap();
    let mut got = vec![0u8; want.len()];
    read_exact(dev, &mut got, T).unwrap();
    assert_eq!(got, want);
}

fn end_image(dev: &mut MemoryLink, image: u32) {
    let eoi = Packet::EndOfImage {
        image,
        status: Status::SUCCESS,
    };
    dev.write(&eoi.encode(), T).unwrap();
    expect(dev, Packet::Done);
}

fn done_resp(dev: &mut MemoryLink, status: Mode) {
    dev.write(&Packet::DoneResp { status }.encode(), T).unwrap();
}

#[test]
fn multi_image_rom_continues_after_a_pending_done_resp() {
    let dir = tempfile::tempdir().unwrap();
    let sbl = dir.path().join("sbl1.mbn");
    let prog = dir.path().join("prog.elf");
    std::fs::write(&sbl, b"SBL-IMAGE").unwrap();
    std::fs::write(&prog, b"PROGRAMMER").unwrap();
    let (mut host_end, rom) = scripted_rom(Framing::Packets, |dev| {
        dev.write(&hello(2, 1, Mode::ImageTxPending), T).unwrap();
        expect(
            dev,
            Packet::HelloResp(HelloResp {
                version: 2,
                version_compatible: 1,
                status: Status::SUCCESS,
                mode: Mode::ImageTxPending,
            }),
        );
        read64(dev, 21, 4, b"IMAGE");
        end_image(dev, 21);
        // More images to come.
        done_resp(dev, Mode::ImageTxPending);
        read64(dev, 13, 0, b"PROG");
        end_image(dev, 13);
        done_resp(dev, Mode::ImageTxComplete);
    });
    let images = SaharaImages::from_list([(21, sbl.clone()), (13, prog.clone())]);
    let outcome = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&images, &NoProgress)
        .unwrap();
    let SaharaOutcome::ProgrammerLoaded(report) = outcome else {
        panic!("{outcome:?}")
    };
    let sent: Vec<(u64, u64, u64)> = report
        .images
        .iter()
        .map(|i| (i.image_id, i.bytes_sent, i.requests))
        .collect();
    assert_eq!(sent, vec![(21, 5, 1), (13, 4, 1)]);
    rom.join().unwrap();
}

#[test]
fn msm8916_style_pending_after_the_only_programmer_means_done() {
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("prog.mbn");
    std::fs::write(&prog, b"PROGRAMMER").unwrap();
    let (mut host_end, rom) = scripted_rom(Framing::Stream, |dev| {
        dev.write(&hello(2, 1, Mode::ImageTxPending), T).unwrap();
        let mut resp = [0u8; 0x30];
        read_exact(dev, &mut resp, T).unwrap();
        read64(dev, 13, 0, b"PROGRAMMER");
        end_image(dev, 13);
        done_resp(dev, Mode::ImageTxPending);
    });
    let outcome = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&SaharaImages::programmer(&prog), &NoProgress)
        .unwrap();
    assert!(matches!(outcome, SaharaOutcome::ProgrammerLoaded(_)));
    rom.join().unwrap();
}

#[test]
fn rom_that_needs_a_newer_protocol_or_wants_a_crash_dump_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("prog.elf");
    std::fs::write(&prog, b"P").unwrap();

    let (mut host_end, rom) = scripted_rom(Framing::Packets, |dev| {
        dev.write(&hello(4, 4, Mode::ImageTxPending), T).unwrap();
    });
    let err = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&SaharaImages::programmer(&prog), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(
            err,
            SaharaError::UnsupportedVersion {
                version: 4,
                compatible: 4,
                ..
            }
        ),
        "{err}"
    );
    rom.join().unwrap();

    let (mut host_end, rom) = scripted_rom(Framing::Packets, |dev| {
        dev.write(&hello(2, 1, Mode::MemoryDebug), T).unwrap();
    });
    let err = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&SaharaImages::programmer(&prog), &NoProgress)
        .unwrap_err();
    assert!(matches!(err, SaharaError::MemoryDebugMode { .. }), "{err}");
    assert!(err.to_string().contains("crash dump"), "{err}");
    rom.join().unwrap();
}

#[test]
fn oversized_command_answer_is_refused_before_reading_it() {
    let (mut host_end, rom) = scripted_rom(Framing::Stream, |dev| {
        dev.write(&hello(2, 1, Mode::ImageTxPending), T).unwrap();
        let mut resp = [0u8; 0x30];
        read_exact(dev, &mut resp, T).unwrap();
        dev.write(&Packet::CmdReady.encode(), T).unwrap();
        expect(
            dev,
            Packet::Execute {
                command: ExecCommand::SerialNumRead,
            },
        );
        let resp = Packet::ExecuteResp {
            command: ExecCommand::SerialNumRead,
            data_length: 0x1000_0000,
        };
        dev.write(&resp.encode(), T).unwrap();
    });
    let err = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .read_info()
        .unwrap_err();
    assert!(
        matches!(
            err,
            SaharaError::PayloadTooLong {
                len: 0x1000_0000,
                ..
            }
        ),
        "{err}"
    );
    rom.join().unwrap();
}

#[test]
fn unplug_mid_upload_is_a_disconnect() {
    let dir = tempfile::tempdir().unwrap();
    let (prog, sha) = write_programmer(dir.path(), "p.elf", &[9; 64 * 1024]);
    let (mut host_end, dev_end, control) = pair("edl");
    control.cut_after_host_bytes(20_000);
    let handle = spawn_device(SaharaDevice::new(3, identity_signing(sha)), dev_end);
    let err = SaharaHost::with_timeouts(&mut host_end, TIMEOUTS)
        .upload(&SaharaImages::programmer(&prog), &NoProgress)
        .unwrap_err();
    assert!(err.is_disconnect(), "{err}");
    assert!(err.to_string().contains("p.elf"), "{err}");
    assert_eq!(handle.join().unwrap().0, SaharaServeOutcome::HostGone);
}
