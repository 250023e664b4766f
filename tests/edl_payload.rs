//! Payload-size re-negotiation against the simulated programmer: it ACKs the host's 1 MiB
//! `configure` and says it supports more (`MaxPayloadSizeToTargetInBytesSupported`); the host
//! configures again with the larger size, up to its own cap, and the programmer then takes raw
//! data in transfers of that size (a transfer above what it was configured for breaks a real
//! programmer's receive buffer, and the simulator NAKs it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use protocols::firehose::{
    Firehose, FirehoseConfig, PowerMode, ProgramTarget, DEFAULT_MAX_PAYLOAD,
};
use protocols::progress::ProgressEvent;
use protocols::sim::firehose::{FirehoseOutcome, FirehoseSimConfig};
use protocols::transport::memory::pair_with;
use protocols::transport::Framing;

use crate::edl::fixture::{noise, test_phone};

const MIB: usize = 1 << 20;

/// Configure with `payload_cap` against a programmer supporting `device_max`, then program
/// 6 MiB into system_a. Returns (negotiated payload, configure exchanges, largest transfer).
fn negotiate_and_program(payload_cap: Option<usize>, device_max: usize) -> (usize, u8, u64) {
    let phone = test_phone(None);
    let (host, mut dev, _c) = pair_with("edl", Framing::Packets, Some(512));
    let p = phone.clone();
    let sim = FirehoseSimConfig {
        max_payload_to_target: device_max,
        ..Default::default()
    };
    let device = thread::spawn(move || {
        protocols::sim::firehose::serve(&mut dev, &p, &sim, &[]).map_err(|e| e.to_string())
    });
    let mut fh = Firehose::new(
        host,
        FirehoseConfig {
            payload_cap,
            ..Default::default()
        },
    );
    let largest = Arc::new(AtomicU64::new(0));
    let seen = largest.clone();
    fh.set_progress(Arc::new(move |e: ProgressEvent<'_>| {
        if let ProgressEvent::Bytes { bytes } = e {
            seen.fetch_max(bytes, Ordering::Relaxed);
        }
    }));
    let info = fh.configure().unwrap();
    assert_eq!(info.device_supported, Some(device_max));

    let system = phone.lock().storage.partition("system_a").unwrap();
    let data = noise(11, 6 * MIB);
    let start = system.first_lba.to_string();
    let target = ProgramTarget {
        lun: 0,
        start_sector: &start,
        label: "system_a",
        filename: None,
    };
    fh.program(&target, &mut &data[..], data.len() as u64)
        .unwrap();
    let mut back = vec![0u8; data.len()];
    phone.read_partition("system_a", 0, &mut back).unwrap();
    assert!(back == data, "system_a holds what was programmed");
    fh.power(PowerMode::Off, 0).unwrap();
    assert_eq!(device.join().unwrap(), Ok(FirehoseOutcome::PowerOff));
    (
        info.payload_size,
        info.exchanges,
        largest.load(Ordering::Relaxed),
    )
}

#[test]
fn a_programmer_supporting_more_is_reconfigured_up_to_what_it_supports() {
    let (payload, exchanges, largest) = negotiate_and_program(Some(16 * MIB), 4 * MIB);
    assert_eq!((payload, exchanges), (4 * MIB, 2));
    assert_eq!(largest, 4 * MIB as u64);
}

#[test]
fn the_host_cap_bounds_the_renegotiated_payload() {
    let (payload, exchanges, largest) = negotiate_and_program(Some(2 * MIB), 4 * MIB);
    assert_eq!((payload, exchanges), (2 * MIB, 2));
    assert_eq!(largest, 2 * MIB as u64);
}

#[test]
fn without_a_cap_the_first_ask_stands() {
    let (payload, exchanges, largest) = negotiate_and_program(None, 4 * MIB);
    assert_eq!((payload, exchanges), (DEFAULT_MAX_PAYLOAD, 1));
    assert_eq!(largest, DEFAULT_MAX_PAYLOAD as u64);
}
