//! The host client against a scripted device on an in-memory link: exact wire behaviour
//! (attributes sent, chunking, ZLPs, padding, pushback) without the simulator.

use std::time::Duration;

use super::commands::PatchRequest;
use super::program::ProgramTarget;
use super::scripted_device::{
    configured, configured_on, greet, quick, session, Device, DeviceThread, T,
};
use super::xml::Document;
use super::*;
use crate::transport::memory::pair_with;
use crate::transport::{Framing, SendBuffer, Transport, TransportError};

#[test]
fn configure_retries_with_the_size_offered_in_a_nak() {
    let (mut fh, dev) = session(quick(), |d| {
        greet(d);
        let c = d.expect("configure");
        assert_eq!(c.attr("MemoryName"), Some("ufs"));
        assert_eq!(c.attr("MaxPayloadSizeToTargetInBytes"), Some("1048576"));
        assert_eq!(c.attr("ZlpAwareHost"), Some("1"));
        assert_eq!(c.attr("SkipStorageInit"), Some("0"));
        d.log("ERROR: MaxPayloadSizeToTargetInBytes 1048576 too large");
        d.send(
            Document::new("response")
                .attr("value", "NAK")
                .attr("MaxPayloadSizeToTargetInBytes", 262144)
                .attr("MaxPayloadSizeToTargetInBytesSupported", 262144),
        );
        let c = d.expect("configure");
        assert_eq!(c.attr("MaxPayloadSizeToTargetInBytes"), Some("262144"));
        d.send(
            Document::new("response")
                .attr("value", "ACK")
                .attr("MemoryName", "UFS")
                .attr("MaxPayloadSizeToTargetInBytes", 262144)
                .attr("TargetName", "8180")
                .attr("Version", 1),
        );
    });
    let info = fh.configure().unwrap();
    assert_eq!(info.payload_size, 262144);
    assert_eq!(info.sector_size, 4096);
    assert_eq!(info.target_name.as_deref(), Some("8180"));
    assert_eq!(fh.payload_size(), 262144);
    assert!(fh.device_logs().any(|l| l.contains("too large")));
    dev.join().unwrap();
}

#[test]
fn configure_nak_without_an_offer_names_the_reason() {
    let (mut fh, dev) = session(quick(), |d| {
        greet(d);
        d.expect("configure");
        d.log("ERROR: Failed to initialize storage eMMC");
        d.respond("NAK", false);
    });
    match fh.configure() {
        Err(FirehoseError::Nak {
            command, reason, ..
        }) => {
            assert_eq!(command, "configure");
            assert!(reason.contains("Failed to initialize storage"), "{reason}");
        }
        other => panic!("expected NAK, got {other:?}"),
    }
    dev.join().unwrap();
}

#[test]
fn silent_device_times_out_on_configure() {
    // Says nothing at all: the device thread holds the link silent until the test joins it.
    let (mut fh, dev) = session(quick(), |_d| {});
    let err = fh.configure().unwrap_err();
    assert!(
        matches!(err, FirehoseError::Timeout { ref command, .. } if command == "configure"),
        "{err:?}"
    );
    dev.join().unwrap();
}

#[test]
fn program_sends_payload_sized_chunks_with_zlps_and_zero_padding() {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8 + 1).collect();
    let expected = data.clone();
    let (mut fh, dev) = configured(8192, move |d| {
        let p = d.expect("program");
        assert_eq!(p.attr("SECTOR_SIZE_IN_BYTES"), Some("4096"));
        assert_eq!(p.attr("num_partition_sectors"), Some("3"));
        assert_eq!(p.attr("physical_partition_number"), Some("4"));
        assert_eq!(p.attr("start_sector"), Some("NUM_DISK_SECTORS-5."));
        d.respond("ACK", true);
        let first = d.packet();
        assert_eq!(first.len(), 8192);
        assert!(d.packet().is_empty(), "ZLP after a multiple of 512");
        let second = d.packet();
        assert_eq!(second.len(), 4096);
        assert!(d.packet().is_empty());
        let mut all = first;
        all.extend_from_slice(&second);
        assert_eq!(&all[..10_000], &expected[..]);
        assert!(
            all[10_000..].iter().all(|&b| b == 0),
            "last sector zero-padded"
        );
        d.log("INFO: Finished sector address 0");
        d.respond("ACK", false);
    });
    let target = ProgramTarget {
        lun: 4,
        start_sector: "NUM_DISK_SECTORS-5.",
        label: "BackupGPT",
        filename: Some("gpt_backup4.bin"),
    };
    fh.program(&target, &mut &data[..], data.len() as u64)
        .unwrap();
    dev.join().unwrap();
}

/// A link that lends at most `cap` bytes to send from, as USB lends at most its transfer size.
struct LendsLess {
    inner: crate::transport::memory::MemoryLink,
    cap: usize,
}

impl Transport for LendsLess {
    fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        self.inner.write(data, timeout)
    }
    fn read_packet(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        self.inner.read_packet(buf, timeout)
    }
    fn send_buffer(&mut self, len: usize) -> Box<dyn SendBuffer + '_> {
        self.inner.send_buffer(len.min(self.cap))
    }
    fn max_packet_size(&self) -> Option<usize> {
        self.inner.max_packet_size()
    }
    fn write_zero_length(&mut self, timeout: Duration) -> Result<(), TransportError> {
        self.inner.write_zero_length(timeout)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[test]
fn a_payload_larger_than_the_lent_buffer_goes_in_several_sends_and_one_zlp() {
    let data: Vec<u8> = (0..40_000u32).map(|i| (i % 249) as u8 + 1).collect();
    let expected = data.clone();
    let wrap = |inner| LendsLess { inner, cap: 8192 };
    let (mut fh, dev) = configured_on(wrap, quick(), 16384, move |d| {
        d.expect("program");
        d.respond("ACK", true);
        let mut all = Vec::new();
        // 10 sectors: payloads of 4 + 4 + 2 sectors, each sent from the 2-sector buffer, with
        // a ZLP only where a payload ends.
        for sends in [&[8192, 8192][..], &[8192, 8192], &[8192]] {
            for &len in sends {
                let packet = d.packet();
                assert_eq!(packet.len(), len);
                all.extend_from_slice(&packet);
            }
            assert!(d.packet().is_empty(), "ZLP after each payload");
        }
        assert_eq!(&all[..40_000], &expected[..]);
        assert!(all[40_000..].iter().all(|&b| b == 0));
        d.respond("ACK", false);
    });
    program_lun0(&mut fh, "0", "system", &data);
    dev.join().unwrap();
}

/// Program all of `data` as `label` from `start_sector` of LUN 0.
fn program_lun0<L: Transport>(fh: &mut Firehose<L>, start_sector: &str, label: &str, data: &[u8]) {
    let target = ProgramTarget {
        lun: 0,
        start_sector,
        label,
        filename: None,
    };
    fh.program(&target, &mut &data[..], data.len() as u64)
        .unwrap();
}

#[test]
fn program_nak_on_open_surfaces_the_log() {
    let (mut fh, dev) = configured(8192, |d| {
        d.expect("program");
        d.log("ERROR: Start sector 99999999 beyond end of LUN 0");
        d.respond("NAK", false);
    });
    let target = ProgramTarget {
        lun: 0,
        start_sector: "99999999",
        label: "system_a",
        filename: None,
    };
    let err = fh.program(&target, &mut &[1u8; 100][..], 100).unwrap_err();
    assert!(err.to_string().contains("beyond end of LUN"), "{err}");
    dev.join().unwrap();
}

#[test]
fn a_reason_logged_after_the_nak_in_the_same_document_is_kept() {
    let (mut fh, dev) = configured(8192, |d| {
        d.expect("program");
        d.link
            .write(
                br#"<?xml version="1.0" ?><data><response value="NAK" rawmode="false" /><log value="ERROR: Write protected LUN 0" /></data>"#,
                T,
            )
            .unwrap();
    });
    let target = ProgramTarget {
        lun: 0,
        start_sector: "0",
        label: "xbl_a",
        filename: None,
    };
    let err = fh.program(&target, &mut &[1u8; 100][..], 100).unwrap_err();
    assert!(err.to_string().contains("Write protected LUN 0"), "{err}");
    assert_eq!(
        fh.device_logs().last(),
        Some("ERROR: Write protected LUN 0")
    );
    dev.join().unwrap();
}

#[test]
fn a_response_value_that_is_neither_ack_nor_nak_is_a_protocol_error() {
    let (mut fh, dev) = configured(8192, |d| {
        d.expect("nop");
        d.link
            .write(br#"<data><response value="ACK?" /></data>"#, T)
            .unwrap();
    });
    let err = fh.nop().unwrap_err();
    assert!(matches!(err, FirehoseError::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("neither ACK nor NAK"), "{err}");
    dev.join().unwrap();
}

#[test]
fn read_takes_data_that_arrived_with_the_ack() {
    let (mut fh, dev) = configured(8192, |d| {
        let r = d.expect("read");
        assert_eq!(r.attr("num_partition_sectors"), Some("2"));
        assert_eq!(r.attr("start_sector"), Some("6"));
        // One transfer holding the ACK and the first data bytes, as a stream would deliver it.
        let mut bytes = Document::new("response")
            .attr("value", "ACK")
            .attr("rawmode", "true")
            .to_bytes();
        bytes.extend_from_slice(&[0x11; 100]);
        d.link.write(&bytes, T).unwrap();
        d.link.write(&[0x22; 8092], T).unwrap();
        d.respond("ACK", false);
    });
    let mut out = Vec::new();
    fh.read_sectors(2, 6, 2, &mut out).unwrap();
    assert_eq!(out.len(), 8192);
    assert!(out[..100].iter().all(|&b| b == 0x11));
    assert!(out[100..].iter().all(|&b| b == 0x22));
    dev.join().unwrap();
}

#[test]
fn digest_patch_storage_info_and_power() {
    let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let (mut fh, dev) = configured(8192, move |d| {
        let g = d.expect("getsha256digest");
        assert_eq!(g.attr("num_partition_sectors"), Some("16"));
        d.log(&format!("INFO: Digest 0x{hex}"));
        d.respond("ACK", false);

        let p = d.expect("patch");
        assert_eq!(p.attr("filename"), Some("DISK"));
        assert_eq!(p.attr("value"), Some("CRC32(2,4096)"));
        assert_eq!(p.attr("start_sector"), Some("NUM_DISK_SECTORS-1."));
        assert_eq!(p.attr("byte_offset"), Some("88"));
        d.respond("ACK", false);

        d.expect("getstorageinfo");
        d.log(
            r#"INFO: {"storage_info": {"total_blocks":1024, "block_size":4096, "num_physical":3}}"#,
        );
        d.respond("ACK", false);

        let p = d.expect("power");
        assert_eq!(p.attr("value"), Some("reset"));
        d.respond("ACK", false);
        d.log("INFO: Resetting");
    });
    let digest = fh.sha256_digest(0, "6", 16).unwrap();
    assert_eq!(hex::encode(digest), hex);
    fh.patch(&PatchRequest {
        lun: 0,
        sector_size: None,
        start_sector: "NUM_DISK_SECTORS-1.",
        byte_offset: 88,
        size_in_bytes: 4,
        value: "CRC32(2,4096)",
        what: "Update Backup Header with CRC of Partition Array.",
    })
    .unwrap();
    let info = fh.storage_info(0).unwrap();
    assert_eq!(info.size_bytes(), Some(4 << 20));
    fh.power(PowerMode::Reset, 0).unwrap();
    dev.join().unwrap();
}

#[test]
fn digest_missing_from_an_ack_is_an_error() {
    let (mut fh, dev) = configured(8192, |d| {
        d.expect("getsha256digest");
        d.log("INFO: nothing useful");
        d.respond("ACK", false);
    });
    assert!(matches!(
        fh.sha256_digest(0, "0", 1),
        Err(FirehoseError::NoDigest { .. })
    ));
    dev.join().unwrap();
}

#[test]
fn a_programmer_already_running_is_handed_over_with_pushback() {
    let (host, mut dev, _c) = pair_with("fh", Framing::Stream, None);
    let greeting = Document::new("log")
        .attr("value", END_OF_SUPPORTED_FUNCTIONS)
        .to_bytes();
    // The Sahara host read the first 20 bytes while looking for a HELLO.
    let (seen, rest) = greeting.split_at(20);
    dev.write(rest, T).unwrap();
    let handle = DeviceThread::spawn(dev, |d| {
        d.expect("nop");
        d.respond("ACK", false);
    });
    let mut fh = Firehose::with_pushback(host, quick(), seen);
    let lines = fh.wait_for_greeting().unwrap();
    assert_eq!(lines, vec![END_OF_SUPPORTED_FUNCTIONS.to_owned()]);
    fh.nop().unwrap();
    handle.join().unwrap();
}

fn ack_offering(d: &mut Device, size: usize, supported: usize) {
    d.send(
        Document::new("response")
            .attr("value", "ACK")
            .attr("MinVersionSupported", 1)
            .attr("MemoryName", "UFS")
            .attr("MaxPayloadSizeToTargetInBytes", size)
            .attr("MaxPayloadSizeToTargetInBytesSupported", supported)
            .attr("Version", 1)
            .attr("TargetName", "8180"),
    );
}

#[test]
fn configure_is_sent_once_more_when_an_ack_offers_a_larger_payload() {
    let config = FirehoseConfig {
        payload_cap: Some(16 << 20),
        ..quick()
    };
    let (mut fh, dev) = session(config, |d| {
        greet(d);
        let c = d.expect("configure");
        assert_eq!(c.attr("MaxPayloadSizeToTargetInBytes"), Some("1048576"));
        ack_offering(d, 1 << 20, 4 << 20);
        let c = d.expect("configure");
        assert_eq!(c.attr("MaxPayloadSizeToTargetInBytes"), Some("4194304"));
        assert_eq!(c.attr("MemoryName"), Some("ufs"));
        ack_offering(d, 4 << 20, 4 << 20);
        // The raw data now comes in 4 MiB transfers.
        d.expect("program");
        d.respond("ACK", true);
        assert_eq!(d.packet().len(), 4 << 20);
        assert!(d.packet().is_empty(), "ZLP");
        assert_eq!(d.packet().len(), 4096);
        assert!(d.packet().is_empty(), "ZLP");
        d.respond("ACK", false);
    });
    let info = fh.configure().unwrap();
    assert_eq!(info.payload_size, 4 << 20);
    assert_eq!(info.device_supported, Some(4 << 20));
    assert_eq!(info.exchanges, 2);
    let data = vec![0x5a; (4 << 20) + 4096];
    program_lun0(&mut fh, "6", "system_a", &data);
    dev.join().unwrap();
}

#[test]
fn without_a_cap_above_the_ask_a_larger_offer_is_not_taken() {
    let (mut fh, dev) = session(quick(), |d| {
        greet(d);
        d.expect("configure");
        ack_offering(d, 1 << 20, 4 << 20);
        // The next thing the host sends is the command, not a second configure.
        d.expect("nop");
        d.respond("ACK", false);
    });
    let info = fh.configure().unwrap();
    assert_eq!((info.payload_size, info.exchanges), (1 << 20, 1));
    fh.nop().unwrap();
    dev.join().unwrap();
}

#[test]
fn a_refused_second_configure_is_an_error_and_there_is_no_third() {
    let config = FirehoseConfig {
        payload_cap: Some(8 << 20),
        ..quick()
    };
    let (mut fh, dev) = session(config, |d| {
        greet(d);
        d.expect("configure");
        ack_offering(d, 1 << 20, 8 << 20);
        let c = d.expect("configure");
        assert_eq!(c.attr("MaxPayloadSizeToTargetInBytes"), Some("8388608"));
        d.log("ERROR: Failed to allocate 8388608 bytes");
        d.send(
            Document::new("response")
                .attr("value", "NAK")
                .attr("MaxPayloadSizeToTargetInBytes", 2 << 20)
                .attr("MaxPayloadSizeToTargetInBytesSupported", 2 << 20),
        );
        // No third configure follows: the host gives up.
        assert!(d
            .reader
            .next_message(&mut d.link, Duration::from_millis(300))
            .is_err());
    });
    match fh.configure() {
        Err(FirehoseError::Nak {
            command, reason, ..
        }) => {
            assert_eq!(command, "configure");
            assert!(reason.contains("Failed to allocate"), "{reason}");
        }
        other => panic!("expected a NAK, got {other:?}"),
    }
    dev.join().unwrap();
}
