//! The simulated programmer's injected faults and USB framing as the host sees them, packet by
//! packet.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::super::{serve, AnswerPackets, FirehoseOutcome, FirehoseSimConfig};
use crate::firehose::reader::MessageReader;
use crate::firehose::xml::Element;
use crate::sim::phone::{FaultAction, Phone};
use crate::transport::memory::{pair_with, MemoryLink};
use crate::transport::{Framing, Transport, TransportError};

const T: Duration = Duration::from_secs(5);
const NOP: &str = r#"<?xml version="1.0" ?><data><nop /></data>"#;
const CONFIGURE: &str = r#"<?xml version="1.0" ?><data><configure MemoryName="ufs" MaxPayloadSizeToTargetInBytes="1048576" /></data>"#;
const READ_ONE: &str = r#"<?xml version="1.0" ?><data><read SECTOR_SIZE_IN_BYTES="4096" num_partition_sectors="1" physical_partition_number="0" start_sector="0" /></data>"#;

fn start(
    phone: &Phone,
    answer_packets: AnswerPackets,
) -> (MemoryLink, thread::JoinHandle<FirehoseOutcome>) {
    let (host, mut dev, _c) = pair_with("fh-faults", Framing::Packets, Some(512));
    let config = FirehoseSimConfig {
        greeting: false,
        answer_packets,
        ..FirehoseSimConfig::default()
    };
    let phone = phone.clone();
    let device = thread::spawn(move || serve(&mut dev, &phone, &config, &[]).unwrap());
    (host, device)
}

fn phone() -> Phone {
    Phone::builder()
        .slotted_partition("boot", 1 << 20)
        .build()
        .unwrap()
}

/// Every packet until one ends a `<response>` document.
fn packets_to_response(host: &mut MemoryLink) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut text = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = host.read_packet(&mut buf, T).unwrap();
        packets.push(buf[..n].to_vec());
        text.extend_from_slice(&buf[..n]);
        let s = String::from_utf8_lossy(&text);
        if s.contains("<response") && s.trim_end().ends_with("</data>") {
            return packets;
        }
    }
}

/// The documents of `bytes`, framed as the host frames them.
fn documents(bytes: &[u8]) -> Vec<Vec<Element>> {
    let mut reader = MessageReader::default();
    reader.push(bytes);
    let mut docs = Vec::new();
    while let Some(frame) = reader.pop_frame().unwrap() {
        docs.push(crate::firehose::xml::parse_message(&frame).unwrap());
    }
    docs
}

#[test]
fn answer_packets_whole_split_and_merged_carry_the_same_documents() {
    let mut seen = Vec::new();
    for packets in [
        AnswerPackets::Whole,
        AnswerPackets::Split(7),
        AnswerPackets::Merged,
    ] {
        let (mut host, _device) = start(&phone(), packets);
        host.write(NOP.as_bytes(), T).unwrap();
        let got = packets_to_response(&mut host);
        let docs = documents(&got.concat());
        // Two logs (the handler's, the build date) and the ACK.
        assert_eq!(docs.len(), 3, "{packets:?}");
        match packets {
            AnswerPackets::Whole => assert_eq!(got.len(), 3),
            AnswerPackets::Split(n) => {
                assert!(got.len() > 3 && got.iter().all(|p| p.len() <= n), "{got:?}")
            }
            AnswerPackets::Merged => assert_eq!(got.len(), 1, "one transfer, three documents"),
        }
        seen.push(got.concat());
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "same bytes every way"
    );
}

#[test]
fn stall_answers_nothing_and_ends_when_the_host_leaves() {
    let phone = phone();
    phone.add_fault("nop", FaultAction::Stall, None);
    let (mut host, device) = start(&phone, AnswerPackets::Whole);
    host.write(NOP.as_bytes(), T).unwrap();
    let mut buf = [0u8; 4096];
    assert!(matches!(
        host.read_packet(&mut buf, Duration::from_millis(200)),
        Err(TransportError::Timeout(_))
    ));
    drop(host);
    assert_eq!(device.join().unwrap(), FirehoseOutcome::HostGone);
}

#[test]
fn okay_logs_the_text_and_acks_without_doing_it() {
    let phone = phone();
    phone.add_fault(
        "nop",
        FaultAction::Okay("INFO: as you wish".into()),
        Some(1),
    );
    let (mut host, _device) = start(&phone, AnswerPackets::Whole);
    host.write(NOP.as_bytes(), T).unwrap();
    let got = packets_to_response(&mut host);
    let docs = documents(&got.concat());
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0][0].attr("value"), Some("INFO: as you wish"));
    assert_eq!(docs[1][0].attr("value"), Some("ACK"));
}

#[test]
fn malformed_answer_is_framed_but_not_well_formed() {
    let phone = phone();
    phone.add_fault("nop", FaultAction::Malformed, Some(1));
    let (mut host, _device) = start(&phone, AnswerPackets::Whole);
    host.write(NOP.as_bytes(), T).unwrap();
    let mut buf = [0u8; 4096];
    let n = host.read_packet(&mut buf, T).unwrap();
    let mut reader = MessageReader::default();
    reader.push(&buf[..n]);
    let frame = reader
        .pop_frame()
        .unwrap()
        .expect("a whole <data> document");
    assert!(crate::firehose::xml::parse_message(&frame).is_err());
}

#[test]
fn long_response_and_endless_info_are_log_lines() {
    let phone = phone();
    phone.add_fault("nop", FaultAction::LongResponse(5000), Some(1));
    phone.add_fault(
        "configure",
        FaultAction::EndlessInfo {
            every: Duration::from_millis(5),
        },
        None,
    );
    let (mut host, _device) = start(&phone, AnswerPackets::Whole);
    host.write(NOP.as_bytes(), T).unwrap();
    let docs = documents(&packets_to_response(&mut host).concat());
    let long = docs[0][0].attr("value").unwrap();
    assert_eq!(long.len(), 5000);
    assert_eq!(docs.last().unwrap()[0].attr("value"), Some("ACK"));
    host.write(CONFIGURE.as_bytes(), T).unwrap();
    let mut reader = MessageReader::default();
    for n in 1..=4 {
        let doc = reader.next_message(&mut host, T).unwrap();
        assert_eq!(
            doc[0].attr("value"),
            Some(format!("INFO: configure: still working ({n})").as_str())
        );
    }
}

/// `<read>` one sector: (the data bytes before the next document, the closing response's value).
fn read_one(host: &mut MemoryLink, reader: &mut MessageReader) -> (Vec<u8>, String) {
    host.write(READ_ONE.as_bytes(), T).unwrap();
    loop {
        let doc = reader.next_message(host, T).unwrap();
        if doc[0].name == "response" {
            assert_eq!(doc[0].attr("rawmode"), Some("true"));
            break;
        }
    }
    // Whatever comes before the next document is data (a sector of zeros, a GPT or the
    // substitute bytes never hold `<?xml`).
    let mut data = Vec::new();
    let mut buf = vec![0u8; 8192];
    let rest = loop {
        let n = reader.read_raw(host, &mut buf, T).unwrap();
        match buf[..n].windows(5).position(|w| w == b"<?xml") {
            Some(at) => {
                data.extend_from_slice(&buf[..at]);
                break buf[at..n].to_vec();
            }
            None => data.extend_from_slice(&buf[..n]),
        }
    };
    *reader = MessageReader::with_pushback(64 * 1024, &rest);
    loop {
        let doc = reader.next_message(host, T).unwrap();
        if doc[0].name == "response" {
            return (data, doc[0].attr("value").unwrap_or_default().to_owned());
        }
    }
}

#[test]
fn short_data_and_read_back_change_what_a_read_sends() {
    let phone = phone();
    let other: Arc<[u8]> = Arc::from(&b"not the disk"[..]);
    phone.add_fault("read", FaultAction::ReadBack(other), Some(1));
    phone.add_fault("read", FaultAction::ShortData(100), Some(1));
    let (mut host, _device) = start(&phone, AnswerPackets::Whole);
    host.write(CONFIGURE.as_bytes(), T).unwrap();
    packets_to_response(&mut host);
    let mut reader = MessageReader::default();
    let (data, closing) = read_one(&mut host, &mut reader);
    assert_eq!(data.len(), 4096);
    assert_eq!(&data[..12], b"not the disk");
    assert!(data[12..].iter().all(|&b| b == 0));
    assert_eq!(closing, "ACK");
    let (data, closing) = read_one(&mut host, &mut reader);
    assert_eq!(data.len(), 100, "a short read");
    assert_eq!(closing, "ACK", "…closed as if it were whole");
    let (data, _) = read_one(&mut host, &mut reader);
    assert_eq!(data.len(), 4096, "used up");
}

#[test]
fn truncated_answer_is_half_a_document_and_unknown_prefix_is_no_answer() {
    let phone = phone();
    phone.add_fault("nop", FaultAction::Truncated, Some(1));
    phone.add_fault("nop", FaultAction::UnknownPrefix, Some(1));
    let (mut host, _device) = start(&phone, AnswerPackets::Whole);
    let mut buf = vec![0u8; 4096];
    host.write(NOP.as_bytes(), T).unwrap();
    let n = host.read_packet(&mut buf, T).unwrap();
    let half = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        half.starts_with("<?xml") && !half.contains("</data>"),
        "{half}"
    );
    host.write(NOP.as_bytes(), T).unwrap();
    let n = host.read_packet(&mut buf, T).unwrap();
    let docs = documents(&buf[..n]);
    assert_eq!(docs.len(), 1);
    assert!(
        docs[0]
            .iter()
            .all(|e| e.name != "response" && e.name != "log"),
        "{docs:?}"
    );
}

#[test]
fn pull_cable_ends_the_session_and_the_phone_leaves_the_bus() {
    use crate::sim::{Ending, Presence};
    let phone = phone();
    phone.add_fault("nop", FaultAction::PullCable, Some(1));
    let (mut host, device) = start(&phone, AnswerPackets::Whole);
    host.write(NOP.as_bytes(), T).unwrap();
    assert_eq!(device.join().unwrap(), FirehoseOutcome::HostGone);
    let transition = phone.take_transition().unwrap();
    assert_eq!(transition.ending, Ending::CablePulled);
    assert_eq!(transition.presence, Presence::Leaves);
}
