//! A scripted programmer for the client's unit tests: the test says, message by message, what
//! the device expects and answers, on an in-memory USB-like link (512-byte packets, ZLPs seen).

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::reader::MessageReader;
use super::response::{encode_log, encode_response, Response};
use super::xml::{Document, Element};
use super::*;
use crate::transport::memory::{pair_with, MemoryLink};
use crate::transport::{Framing, Transport};

pub(super) const T: Duration = Duration::from_secs(2);

pub(super) struct Device {
    pub link: MemoryLink,
    pub reader: MessageReader,
}

impl Device {
    pub fn expect(&mut self, tag: &str) -> Element {
        let mut msg = self.reader.next_message(&mut self.link, T).unwrap();
        assert_eq!(msg.len(), 1);
        let e = msg.remove(0);
        assert_eq!(e.name, tag, "host sent {e:?}");
        e
    }
    pub fn send(&mut self, doc: Document) {
        self.link.write(&doc.to_bytes(), T).unwrap();
    }
    pub fn log(&mut self, text: &str) {
        self.link.write(&encode_log(text), T).unwrap();
    }
    pub fn answer(&mut self, response: &Response) {
        self.link.write(&encode_response(response), T).unwrap();
    }
    /// `value` is `ACK` or `NAK`.
    pub fn respond(&mut self, value: &str, rawmode: bool) {
        let ack = match value {
            "ACK" => true,
            "NAK" => false,
            other => panic!("a response value is ACK or NAK, not {other}"),
        };
        self.answer(&Response {
            ack,
            rawmode: Some(rawmode),
            attributes: Vec::new(),
        });
    }
    /// Next packet as the device's USB endpoint sees it (ZLPs included).
    pub fn packet(&mut self) -> Vec<u8> {
        let mut buf = vec![0u8; 4 << 20];
        let n = self.link.read_packet(&mut buf, T).unwrap();
        buf.truncate(n);
        buf
    }
    /// Answer the next `<read>`, which must address `start` + `count` sectors of `lun`, with
    /// `data` (exactly `count` sectors).
    pub fn serve_read(&mut self, lun: u32, start: u64, count: u64, data: &[u8]) {
        self.serve_read_from(lun, &start.to_string(), count, data)
    }

    /// [`Self::serve_read`] for a `start_sector` given as an expression.
    pub fn serve_read_from(&mut self, lun: u32, start: &str, count: u64, data: &[u8]) {
        let r = self.expect("read");
        assert_eq!(
            r.attr("physical_partition_number"),
            Some(lun.to_string().as_str())
        );
        assert_eq!(r.attr("start_sector"), Some(start));
        assert_eq!(
            r.attr("num_partition_sectors"),
            Some(count.to_string().as_str())
        );
        self.respond("ACK", true);
        self.link.write(data, T).unwrap();
        self.respond("ACK", false);
    }
}

/// The scripted device's thread. After its script it keeps the link until the test joins it
/// (or drops this), because closing a memory link is an unplug that would throw away answers
/// the host has not read yet: an explicit handshake instead of a pause that a slow machine can
/// outlast.
pub(super) struct DeviceThread {
    handle: thread::JoinHandle<()>,
    host_done: Option<mpsc::Sender<()>>,
}

impl DeviceThread {
    pub fn spawn(link: MemoryLink, script: impl FnOnce(&mut Device) + Send + 'static) -> Self {
        let (host_done, done) = mpsc::channel::<()>();
        let handle = thread::spawn(move || {
            let mut d = Device {
                link,
                reader: MessageReader::default(),
            };
            script(&mut d);
            // Returns once the sender is dropped: the test is done with the host side.
            let _ = done.recv();
        });
        Self {
            handle,
            host_done: Some(host_done),
        }
    }

    /// The host is done: release the link and wait for the script's end (its panics included).
    pub fn join(mut self) -> thread::Result<()> {
        drop(self.host_done.take());
        self.handle.join()
    }
}

pub(super) fn session(
    config: FirehoseConfig,
    script: impl FnOnce(&mut Device) + Send + 'static,
) -> (Firehose<MemoryLink>, DeviceThread) {
    session_on(|link| link, config, script)
}

/// [`session`] with the host's end of the link wrapped by `wrap`.
pub(super) fn session_on<L: Transport>(
    wrap: impl FnOnce(MemoryLink) -> L,
    config: FirehoseConfig,
    script: impl FnOnce(&mut Device) + Send + 'static,
) -> (Firehose<L>, DeviceThread) {
    let (host, dev, _c) = pair_with("fh", Framing::Packets, Some(512));
    (
        Firehose::new(wrap(host), config),
        DeviceThread::spawn(dev, script),
    )
}

pub(super) fn quick() -> FirehoseConfig {
    FirehoseConfig {
        timeouts: Timeouts {
            greeting: Duration::from_millis(200),
            response: Duration::from_millis(500),
            raw_data: Duration::from_millis(500),
            program_done: Duration::from_millis(500),
            long_operation: Duration::from_millis(500),
        },
        ..Default::default()
    }
}

pub(super) fn greet(d: &mut Device) {
    d.log("INFO: Binary build date: Jun 25 2021 @ 23:36:59");
    d.log("INFO: Supported Functions (14):");
    d.log("INFO: program");
    d.log(END_OF_SUPPORTED_FUNCTIONS);
}

/// A session already configured with `payload` (the device ACKs the first configure).
pub(super) fn configured_with(
    config: FirehoseConfig,
    payload: usize,
    script: impl FnOnce(&mut Device) + Send + 'static,
) -> (Firehose<MemoryLink>, DeviceThread) {
    configured_on(|link| link, config, payload, script)
}

/// [`configured_with`] with the host's end of the link wrapped by `wrap`.
pub(super) fn configured_on<L: Transport>(
    wrap: impl FnOnce(MemoryLink) -> L,
    config: FirehoseConfig,
    payload: usize,
    script: impl FnOnce(&mut Device) + Send + 'static,
) -> (Firehose<L>, DeviceThread) {
    let (mut fh, dev) = session_on(wrap, config, move |d| {
        greet(d);
        d.expect("configure");
        d.answer(
            &Response {
                ack: true,
                rawmode: None,
                attributes: Vec::new(),
            }
            .with("MaxPayloadSizeToTargetInBytes", payload)
            .with("MaxPayloadSizeToTargetInBytesSupported", payload),
        );
        script(d);
    });
    fh.configure().unwrap();
    (fh, dev)
}

pub(super) fn configured(
    payload: usize,
    script: impl FnOnce(&mut Device) + Send + 'static,
) -> (Firehose<MemoryLink>, DeviceThread) {
    configured_with(quick(), payload, script)
}
