//! The simulated programmer's `configure` as Qualcomm documents it (the report behind qdl's
//! "firehose: Negotiate max payload size"): a size above its limit is NAKed with the limit
//! offered, a size within it is ACKed with `MaxPayloadSizeToTargetInBytesSupported`, and a
//! second `configure` replaces the first, receive buffer included. Driven by literal XML.

use std::thread;
use std::time::Duration;

use super::{serve, FirehoseOutcome, FirehoseSimConfig};
use crate::firehose::reader::MessageReader;
use crate::firehose::xml::Element;
use crate::sim::Phone;
use crate::transport::memory::{pair_with, MemoryLink};
use crate::transport::{Framing, Transport};

const T: Duration = Duration::from_secs(5);

struct Host {
    link: MemoryLink,
    reader: MessageReader,
}

impl Host {
    fn send(&mut self, xml: &str) {
        self.link.write(xml.as_bytes(), T).unwrap();
    }
    /// The next `<response>`, with the `<log>` lines before it.
    fn response(&mut self) -> (Element, Vec<String>) {
        let mut logs = Vec::new();
        loop {
            for e in self.reader.next_message(&mut self.link, T).unwrap() {
                match e.name.as_str() {
                    "response" => return (e, logs),
                    _ => logs.push(e.attr("value").unwrap_or_default().to_owned()),
                }
            }
        }
    }
    fn configure(&mut self, size: usize) -> (Element, Vec<String>) {
        self.send(&format!(
            r#"<?xml version="1.0" ?><data><configure MemoryName="ufs" MaxPayloadSizeToTargetInBytes="{size}" Verbose="0" ZlpAwareHost="1" SkipStorageInit="0" /></data>"#
        ));
        self.response()
    }
    /// Program `bytes`/4096 sectors at `start_sector`, sending `bytes` in one transfer; true
    /// when the programmer ACKs the data.
    fn program_one_transfer(&mut self, start_sector: u64, bytes: usize) -> bool {
        self.send(&format!(
            r#"<?xml version="1.0" ?><data><program SECTOR_SIZE_IN_BYTES="4096" num_partition_sectors="{}" physical_partition_number="0" start_sector="{start_sector}" /></data>"#,
            bytes / 4096
        ));
        let (open, _) = self.response();
        assert_eq!(open.attr("rawmode"), Some("true"));
        self.link.write(&vec![0xA5; bytes], T).unwrap();
        self.link.write_zero_length(T).unwrap();
        let (done, _) = self.response();
        done.attr("value") == Some("ACK")
    }
}

#[test]
fn configure_nak_offers_the_limit_ack_names_it_and_a_second_configure_wins() {
    let phone = Phone::builder()
        .slots(&[])
        .partition("system", 8 << 20)
        .build()
        .unwrap();
    let system = phone.lock().storage.partition("system").unwrap().first_lba;
    let (host, mut dev, _c) = pair_with("fh", Framing::Packets, Some(512));
    let sim = FirehoseSimConfig {
        max_payload_to_target: 4 << 20,
        greeting: false,
        ..Default::default()
    };
    let p = phone.clone();
    let device = thread::spawn(move || serve(&mut dev, &p, &sim, &[]).unwrap());
    let mut h = Host {
        link: host,
        reader: MessageReader::default(),
    };

    let (nak, logs) = h.configure(8 << 20);
    assert_eq!(nak.attr("value"), Some("NAK"));
    assert_eq!(nak.attr("MaxPayloadSizeToTargetInBytes"), Some("4194304"));
    assert_eq!(
        nak.attr("MaxPayloadSizeToTargetInBytesSupported"),
        Some("4194304")
    );
    assert!(logs.iter().any(|l| l.starts_with("ERROR: ")), "{logs:?}");

    let (ack, _) = h.configure(1 << 20);
    assert_eq!(ack.attr("value"), Some("ACK"));
    assert_eq!(ack.attr("MaxPayloadSizeToTargetInBytes"), Some("1048576"));
    assert_eq!(
        ack.attr("MaxPayloadSizeToTargetInBytesSupported"),
        Some("4194304")
    );
    // Configured for 1 MiB: a 2 MiB transfer overruns the receive buffer.
    assert!(!h.program_one_transfer(system, 2 << 20));

    let (ack, _) = h.configure(4 << 20);
    assert_eq!(ack.attr("MaxPayloadSizeToTargetInBytes"), Some("4194304"));
    assert!(h.program_one_transfer(system, 4 << 20));

    h.send(r#"<?xml version="1.0" ?><data><power value="off" /></data>"#);
    assert_eq!(h.response().0.attr("value"), Some("ACK"));
    assert_eq!(device.join().unwrap(), FirehoseOutcome::PowerOff);
}
