//! Each injected fault as the host sees it on the wire, in literal bytes.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::super::{FastbootConfig, FastbootDevice, SessionEnd};
use crate::fastboot::Response;
use crate::sim::phone::{FaultAction, Phone};
use crate::transport::memory::{self, MemoryLink};
use crate::transport::{read_exact, Transport, TransportError};

const T: Duration = Duration::from_secs(5);

fn phone() -> Phone {
    let phone = Phone::builder()
        .slotted_partition("boot", 1 << 20)
        .partition("userdata", 1 << 20)
        .build()
        .unwrap();
    phone.write_partition("boot_a", 0, b"ANDROID!").unwrap();
    phone
}

fn start(phone: Phone) -> (MemoryLink, thread::JoinHandle<SessionEnd>) {
    let (host, mut dev, _ctl) = memory::pair("faults");
    let config = FastbootConfig {
        fetch_allow: super::super::FetchAllow::All,
        ..FastbootConfig::default()
    };
    let handle = thread::spawn(move || FastbootDevice::new(phone, config).serve(&mut dev));
    (host, handle)
}

/// Send a command, read one answer packet (up to 4 KiB, so over-long frames show whole).
fn ask(host: &mut MemoryLink, command: &str) -> Vec<u8> {
    host.write(command.as_bytes(), T).unwrap();
    next(host)
}

fn next(host: &mut MemoryLink) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = host.read_packet(&mut buf, T).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn stall_answers_nothing_and_ends_when_the_host_leaves() {
    let phone = phone();
    phone.add_fault("getvar", FaultAction::Stall, None);
    let (mut host, device) = start(phone);
    host.write(b"getvar:product", T).unwrap();
    host.write(b"getvar:serialno", T).unwrap();
    let mut buf = [0u8; 256];
    assert!(matches!(
        host.read_packet(&mut buf, Duration::from_millis(200)),
        Err(TransportError::Timeout(_))
    ));
    drop(host);
    assert!(matches!(device.join().unwrap(), SessionEnd::Disconnected));
}

#[test]
fn long_response_is_one_frame_of_that_length() {
    let phone = phone();
    phone.add_fault("getvar:product", FaultAction::LongResponse(300), Some(1));
    let (mut host, _device) = start(phone);
    let frame = ask(&mut host, "getvar:product");
    assert_eq!(frame.len(), 300);
    assert!(frame.starts_with(b"OKAYxxxx"));
    // The AOSP client's 256-byte buffer: the codec refuses it.
    assert!(Response::parse(&frame).is_err());
    // Used up: the next one is normal.
    assert_eq!(ask(&mut host, "getvar:product"), b"OKAYflashgate_sim");
}

#[test]
fn endless_info_sends_progress_lines_and_never_finishes() {
    let phone = phone();
    phone.add_fault(
        "oem device-info",
        FaultAction::EndlessInfo {
            every: Duration::from_millis(5),
        },
        None,
    );
    let (mut host, device) = start(phone);
    let first = ask(&mut host, "oem device-info");
    assert_eq!(first, b"INFOoem device-info: still working (1)");
    for n in 2..=5 {
        assert_eq!(
            next(&mut host),
            format!("INFOoem device-info: still working ({n})").into_bytes()
        );
    }
    drop(host);
    assert!(matches!(device.join().unwrap(), SessionEnd::Disconnected));
}

#[test]
fn data_size_announces_another_size_and_takes_that_many_bytes() {
    let phone = phone();
    phone.add_fault("download", FaultAction::DataSize(0x10), Some(1));
    let (mut host, _device) = start(phone);
    assert_eq!(ask(&mut host, "download:00001000"), b"DATA00000010");
    host.write(&[7u8; 0x10], T).unwrap();
    assert_eq!(next(&mut host), b"OKAY");
    // A fetch of 8 bytes answered with 4.
    let phone = self::phone();
    phone.add_fault("fetch", FaultAction::DataSize(4), Some(1));
    let (mut host, _device) = start(phone);
    assert_eq!(
        ask(&mut host, "fetch:boot_a:0x00000000:0x00000008"),
        b"DATA00000004"
    );
    assert_eq!(next(&mut host), b"ANDR");
    assert!(next(&mut host).starts_with(b"OKAY"));
}

#[test]
fn okay_answers_the_text_without_doing_the_command() {
    let phone = phone();
    phone.add_fault(
        "getvar:max-download-size",
        FaultAction::Okay("0x0".into()),
        None,
    );
    phone.add_fault("erase:userdata", FaultAction::Okay(String::new()), None);
    phone.write_partition("userdata", 0, b"kept").unwrap();
    let (mut host, _device) = start(phone.clone());
    assert_eq!(ask(&mut host, "getvar:max-download-size"), b"OKAY0x0");
    assert_eq!(ask(&mut host, "erase:userdata"), b"OKAY");
    let mut kept = [0u8; 4];
    phone.read_partition("userdata", 0, &mut kept).unwrap();
    assert_eq!(&kept, b"kept");
}

#[test]
fn short_data_sends_fewer_bytes_than_its_data_announced_then_okay() {
    let phone = phone();
    phone.add_fault("fetch", FaultAction::ShortData(3), Some(1));
    let (mut host, _device) = start(phone);
    assert_eq!(
        ask(&mut host, "fetch:boot_a:0x00000000:0x00000008"),
        b"DATA00000008"
    );
    assert_eq!(next(&mut host), b"AND");
    assert!(next(&mut host).starts_with(b"OKAYFetched boot_a"));
}

#[test]
fn read_back_serves_other_bytes_at_the_partition_offsets() {
    let phone = phone();
    let other: Arc<[u8]> = Arc::from(&b"0123456789"[..]);
    phone.add_fault("fetch:boot_a", FaultAction::ReadBack(other), None);
    let (mut host, _device) = start(phone.clone());
    assert_eq!(
        ask(&mut host, "fetch:boot_a:0x00000008:0x00000004"),
        b"DATA00000004"
    );
    let mut data = [0u8; 4];
    read_exact(&mut host, &mut data, T).unwrap();
    // Past the substitute's end: zeros.
    assert_eq!(&data, b"89\0\0");
    assert!(next(&mut host).starts_with(b"OKAY"));
    // Storage itself is untouched.
    let mut head = [0u8; 8];
    phone.read_partition("boot_a", 0, &mut head).unwrap();
    assert_eq!(&head, b"ANDROID!");
}

#[test]
fn malformed_data_answer_is_not_a_response() {
    let phone = phone();
    phone.add_fault("download", FaultAction::Malformed, Some(1));
    let (mut host, _device) = start(phone);
    let frame = ask(&mut host, "download:00001000");
    assert!(frame.starts_with(b"DATA"));
    assert!(Response::parse(&frame).is_err(), "{frame:?}");
}

#[test]
fn truncated_and_unknown_prefix_answers_are_not_responses() {
    let phone = phone();
    phone.add_fault("getvar:product", FaultAction::Truncated, Some(1));
    phone.add_fault("getvar:product", FaultAction::UnknownPrefix, Some(1));
    let (mut host, _device) = start(phone);
    assert_eq!(ask(&mut host, "getvar:product"), b"OKA");
    let frame = ask(&mut host, "getvar:product");
    assert_eq!(frame, b"BUSYtry again later");
    assert!(Response::parse(b"OKA").is_err());
    assert!(Response::parse(&frame).is_err());
    // The faults were counted: the phone answers normally again.
    assert!(ask(&mut host, "getvar:product").starts_with(b"OKAY"));
}

/// The cable comes out as the command arrives: no answer, the session ends, and the phone's
/// transition takes it off the bus in the mode it was in.
#[test]
fn pull_cable_ends_the_session_unanswered_and_the_phone_leaves_the_bus() {
    use crate::sim::{Ending, PhoneMode, Presence};
    let phone = phone();
    phone.set_mode(PhoneMode::Bootloader);
    phone.add_fault("set_active", FaultAction::PullCable, Some(1));
    let (mut host, device) = start(phone.clone());
    host.write(b"set_active:b", T).unwrap();
    assert!(matches!(device.join().unwrap(), SessionEnd::Disconnected));
    let mut buf = [0u8; 64];
    assert!(host.read_packet(&mut buf, T).is_err(), "nothing answered");
    let transition = phone.take_transition().unwrap();
    assert_eq!(transition.ending, Ending::CablePulled);
    assert_eq!(transition.presence, Presence::Leaves);
    assert_eq!(phone.mode(), PhoneMode::Bootloader);
    assert_eq!(phone.current_slot().as_deref(), Some("a"), "never switched");
}

/// At the next reboot: the reboot is acknowledged and the phone leaves as usual, but the
/// transition says it does not come back; the reboot after that is a normal one.
#[test]
fn pull_cable_at_next_reboot_acknowledges_and_never_returns() {
    use crate::sim::{Lifecycle, PhoneMode, Presence};
    let phone = Phone::builder()
        .slotted_partition("boot", 1 << 20)
        .lifecycle(Lifecycle::booting_to(PhoneMode::Bootloader))
        .build()
        .unwrap();
    phone.set_mode(PhoneMode::Bootloader);
    phone.pull_cable_at_next_reboot();
    // The session ends on the reboot (its OKAY written first); the link goes with it, so the
    // host is not asked to race the phone for the answer.
    let (mut host, device) = start(phone.clone());
    host.write(b"reboot-bootloader", T).unwrap();
    assert!(matches!(device.join().unwrap(), SessionEnd::Reboot(_)));
    let gone = phone.take_transition().unwrap();
    assert_eq!(gone.presence, Presence::Leaves);
    assert_eq!(gone.mode, PhoneMode::Bootloader);
    let (mut host, device) = start(phone.clone());
    host.write(b"reboot-bootloader", T).unwrap();
    device.join().unwrap();
    assert!(matches!(
        phone.take_transition().unwrap().presence,
        Presence::Returns { .. }
    ));
}
