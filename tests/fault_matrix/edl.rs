//! The fault matrix's EDL rows: a boot ROM (Sahara) and a Firehose programmer that misbehave,
//! on slot 2 beside a good EDL phone (slot 1) and a good fastboot phone (slot 3), each
//! described in a phones file.

use std::thread;
use std::time::Duration;

use protocols::firehose::{Firehose, FirehoseConfig, FirehoseError, Timeouts};
use protocols::sim::firehose::FirehoseSimConfig;
use protocols::sim::FaultAction;
use protocols::transport::memory::pair_with;
use protocols::transport::Framing;

use super::{all_pass, only_failure, Rig};
use station::events::EventKind;

/// Slot 2's EDL phone has `faults` (the YAML value of its `faults:` key).
fn edl_with(faults: &str) -> Rig {
    Rig::phones(&format!(
        "phones:\n  - {{ slot: 1, mode: edl }}\n  - slot: 2\n    mode: edl\n    faults: {faults}\n  - slot: 3\n"
    ))
}

// ---- Sahara ---------------------------------------------------------------------------------

/// The SHA-256 of a programmer signed for another product (the demo's fgmodern programmer).
const OTHER_PROGRAMMER: &str = "cbb04c21f8a1aa2e4f3a11fdd3ca8fbcd944fa440af6639b0a017f0bac19f00a";

/// Secure boot refuses the manifest's programmer (the phone trusts another one's signature):
/// END_OF_IMAGE with an authentication failure.
#[test]
fn sahara_programmer_rejected_by_secure_boot_fails_identity_mismatch() {
    let rig = Rig::phones(&format!(
        "phones:\n  - {{ slot: 1, mode: edl }}\n  - slot: 2\n    mode: edl\n    \
         bootloader: {{ accepted_programmers: [{OTHER_PROGRAMMER}] }}\n  - slot: 3\n"
    ));
    let outcome = rig.run();
    only_failure(&outcome, 2, "IDENTITY_MISMATCH", "signed programmer");
}

/// A ROM that never sends HELLO, nor answers the host's prod.
#[test]
fn sahara_hello_never_sent_fails_timeout() {
    let rig = edl_with("{ sahara: { with: silent } }");
    let outcome = rig.run();
    let sentence = only_failure(&outcome, 2, "TIMEOUT", "during identify (Sahara)");
    assert!(sentence.contains("serial not yet read"), "{sentence}");
}

/// READ_DATA_64 for 2^60 bytes: refused before a byte is read or allocated.
#[test]
fn sahara_absurd_read_length_fails_protocol_error() {
    let rig = edl_with("{ sahara: { with: absurd_read, offset: 0, length: 0x1000000000000000 } }");
    let outcome = rig.run();
    only_failure(&outcome, 2, "PROTOCOL_ERROR", "during upload programmer");
}

/// READ_DATA_64 at an offset past the programmer's end.
#[test]
fn sahara_read_offset_past_the_programmer_fails_protocol_error() {
    let rig = edl_with("{ sahara: { with: absurd_read, offset: 0xffffffffffffffef, length: 64 } }");
    let outcome = rig.run();
    only_failure(&outcome, 2, "PROTOCOL_ERROR", "during upload programmer");
}

/// EXECUTE_RESP announcing 4 GiB of serial number.
#[test]
fn sahara_absurd_command_answer_length_fails_protocol_error() {
    let rig = edl_with("{ sahara: { with: exec_length, length: 0xffffffff } }");
    let outcome = rig.run();
    only_failure(&outcome, 2, "PROTOCOL_ERROR", "during identify (Sahara)");
}

// ---- Firehose -------------------------------------------------------------------------------

/// The programmer NAKs the first `<program>`, with its reason in the log before the NAK.
#[test]
fn firehose_nak_on_program_fails_device_fail_with_the_programmer_reason() {
    let rig = edl_with(
        "{ fail: [{ on: program, message: \"Write protection is enabled on LUN 0\", times: 1 }] }",
    );
    let outcome = rig.run();
    let sentence = only_failure(
        &outcome,
        2,
        "DEVICE_FAIL",
        "refused program the EDL package",
    );
    assert!(
        sentence.contains("Write protection is enabled"),
        "{sentence}"
    );
}

/// Every XML document in 7-byte USB transfers: legal on a byte stream, the host re-frames.
#[test]
fn firehose_responses_split_across_packets_pass() {
    let rig = edl_with("{ firehose_packets: split 7 }");
    all_pass(&rig.run(), 3);
}

/// Logs and response in one transfer (several documents per packet): the host re-frames.
#[test]
fn firehose_documents_merged_in_one_packet_pass() {
    let rig = edl_with("{ firehose_packets: merged }");
    all_pass(&rig.run(), 3);
}

/// An answer to `<program>` that is not well-formed XML.
#[test]
fn firehose_malformed_xml_fails_protocol_error() {
    let rig = edl_with("{ answer: [{ on: program, with: malformed, times: 1 }] }");
    let outcome = rig.run();
    only_failure(
        &outcome,
        2,
        "PROTOCOL_ERROR",
        "during program the EDL package",
    );
}

/// A ROM that sends line noise instead of HELLO, then ignores the host.
#[test]
fn sahara_garbage_instead_of_hello_fails_protocol_error() {
    let outcome = edl_with("{ sahara: { with: garbage } }").run();
    let (code, sentence) = super::failure_beside_passes(&outcome, 2, "during identify (Sahara)");
    assert_eq!(code, "PROTOCOL_ERROR", "{sentence}");
}

/// Half of the ACK to `<program>`, then nothing: the host waits for the rest of the document
/// and gives up at the partition timeout, never taking half a document for an answer.
#[test]
fn firehose_truncated_answer_fails_timeout() {
    let outcome = edl_with("{ answer: [{ on: program, with: truncated, times: 1 }] }").run();
    only_failure(&outcome, 2, "TIMEOUT", "during program the EDL package");
}

/// A well-formed document that is no answer (`<busy>`): not taken for an ACK.
#[test]
fn firehose_document_that_is_no_answer_fails_timeout() {
    let outcome = edl_with("{ answer: [{ on: program, with: unknown_prefix, times: 1 }] }").run();
    only_failure(&outcome, 2, "TIMEOUT", "during program the EDL package");
}

/// The cable comes out as the programmer gets its first `<program>`: DISCONNECTED, and the
/// phone leaves the bus.
#[test]
fn firehose_cable_pulled_at_program_fails_disconnected() {
    let outcome = edl_with("{ pull_cable: { on: program } }").run();
    only_failure(
        &outcome,
        2,
        "DISCONNECTED",
        "during program the EDL package",
    );
    assert!(outcome
        .slot_events(2)
        .contains(&EventKind::UnitRemoved { slot: 2 }));
}

/// A `<read>` that sends 1000 of its 16 384 bytes, then its closing ACK. The station reads
/// nothing over Firehose in a batch (EDL units are verified through fastboot after their
/// reset), so this row drives the Firehose host directly — a protocol test of the host, where
/// a phones file has no batch to drive: the missing bytes are a timeout,
/// which the station's mapping reports as TIMEOUT.
#[test]
fn firehose_short_read_fails_timeout() {
    let phone = protocols::sim::Phone::builder()
        .slotted_partition("boot", 1 << 20)
        .build()
        .unwrap();
    phone.add_fault("read", FaultAction::ShortData(1000), Some(1));
    let (host, mut device, _control) = pair_with("short-read", Framing::Packets, Some(512));
    let serving = phone.clone();
    let programmer = thread::spawn(move || {
        protocols::sim::firehose::serve(&mut device, &serving, &FirehoseSimConfig::default(), &[])
            .map_err(|e| e.to_string())
    });
    let config = FirehoseConfig {
        timeouts: Timeouts {
            response: Duration::from_secs(2),
            raw_data: Duration::from_secs(2),
            ..Timeouts::default()
        },
        ..FirehoseConfig::default()
    };
    let mut firehose = Firehose::new(host, config);
    firehose.wait_for_greeting().unwrap();
    firehose.configure().unwrap();
    let mut out = Vec::new();
    let err = firehose.read_sectors(0, 0, 4, &mut out).unwrap_err();
    assert!(
        matches!(&err, FirehoseError::Timeout { command, .. } if command.starts_with("read LUN 0")),
        "{err:?}"
    );
    assert!(out.is_empty(), "nothing of a short read reaches the output");
    drop(firehose);
    programmer.join().unwrap().unwrap();
}
