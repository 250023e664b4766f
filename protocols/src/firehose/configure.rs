//! `<configure>`: storage type and payload-size negotiation.
//!
//! Programmers answer a MaxPayloadSizeToTargetInBytes above their limit with a NAK offering the
//! limit in `MaxPayloadSizeToTargetInBytes`, and one below it with an ACK whose
//! `MaxPayloadSizeToTargetInBytesSupported` says how much they could take (Qualcomm's report
//! behind qdl's "firehose: Negotiate max payload size"). qdl and qdlrs then send `configure`
//! once more with the larger size; bkerler/edl does so after a NAK. We do the same, with two
//! bounds qdl lacks: the second configure is the last, and it never asks for more than the
//! host's cap (the chunk buffer, and on a budgeted USB hub the bulk transfer size).

use std::time::Duration;

use super::client::{Firehose, Reply};
use super::response::Response;
use super::xml::Document;
use super::FirehoseError;
use crate::transport::Transport;

/// No payload size above this is ever used, whatever the caller or the programmer says: it
/// bounds the host's chunk buffer.
pub const MAX_PAYLOAD_CAP: usize = 16 * 1024 * 1024;

const SIZE_ATTR: &str = "MaxPayloadSizeToTargetInBytes";
const SUPPORTED_ATTR: &str = "MaxPayloadSizeToTargetInBytesSupported";

/// What `configure` settled on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigureInfo {
    pub payload_size: usize,
    pub sector_size: usize,
    /// The programmer's `MaxPayloadSizeToTargetInBytesSupported`, when it said.
    pub device_supported: Option<usize>,
    /// `configure` documents sent (1, or 2 after a re-negotiation).
    pub exchanges: u8,
    pub target_name: Option<String>,
    pub version: Option<String>,
    pub memory_name: Option<String>,
}

/// What the answer to the first `configure` asks of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Negotiation {
    /// Configured: use this many bytes per raw-data transfer.
    Accept(usize),
    /// Send `configure` once more asking for this size.
    Resend(usize),
    /// A NAK that offers nothing better to ask for.
    Refused,
}

/// Decide after the first answer. `asked` is what the first `configure` asked for, `cap` the
/// most the host will use, `sector` the sector size (payloads are whole sectors).
pub(crate) fn after_first_answer(
    answer: &Response,
    asked: usize,
    cap: usize,
    sector: usize,
) -> Negotiation {
    let usable = |size: usize| {
        let size = size.min(cap).min(MAX_PAYLOAD_CAP);
        size - size % sector.max(1)
    };
    let to_target = payload_attr(answer, SIZE_ATTR);
    let supported = payload_attr(answer, SUPPORTED_ATTR);
    if !answer.ack {
        // The offer is the programmer's limit; some put it only in the Supported attribute.
        return match to_target.or(supported).map(usable) {
            Some(size) if size > 0 && size != asked => Negotiation::Resend(size),
            _ => Negotiation::Refused,
        };
    }
    // The ACK echoes what the programmer will use (the asked size, or less).
    let accepted = to_target.map_or(asked, |s| s.min(asked));
    match supported.map(usable) {
        Some(size) if size > accepted => Negotiation::Resend(size),
        // An ACK for more than the programmer says it supports: send no more than that. Smaller
        // transfers are always safe, so this needs no second configure.
        Some(size) if size > 0 => Negotiation::Accept(accepted.min(size)),
        _ => Negotiation::Accept(accepted),
    }
}

fn payload_attr(answer: &Response, name: &str) -> Option<usize> {
    answer
        .attr(name)
        .and_then(|v| v.trim().parse().ok())
        .filter(|v| *v > 0)
}

impl<T: Transport> Firehose<T> {
    /// The most this session will use per transfer: the configured cap, or `max_payload` when
    /// the caller set none.
    fn payload_cap(&self) -> usize {
        self.config
            .payload_cap
            .unwrap_or(self.config.max_payload)
            .min(MAX_PAYLOAD_CAP)
    }

    /// `configure`: storage type and payload size, re-negotiated once when the programmer
    /// offers a different size (see the module comment).
    pub fn configure(&mut self) -> Result<ConfigureInfo, FirehoseError> {
        self.wait_for_greeting()?;
        let timeout = self.config.timeouts.response;
        let cap = self.payload_cap();
        let asked = self.config.max_payload.min(cap);
        let first = self.configure_once(asked, timeout)?;
        let sector = self.sector_size;
        let (answer, accepted, exchanges) =
            match after_first_answer(&first.response, asked, cap, sector) {
                Negotiation::Accept(size) => (first, size, 1),
                Negotiation::Refused => return Err(self.nak_error("configure", &first)),
                Negotiation::Resend(size) => {
                    tracing::debug!(
                        target: "firehose",
                        "configure: programmer {} {asked} bytes; asking for {size}",
                        if first.ack() { "accepted" } else { "refused" }
                    );
                    let second = self.configure_once(size, timeout)?;
                    if !second.ack() {
                        return Err(self.nak_error("configure", &second));
                    }
                    let accepted =
                        payload_attr(&second.response, SIZE_ATTR).map_or(size, |s| s.min(size));
                    (second, accepted, 2)
                }
            };
        let payload = accepted - accepted % sector.max(1);
        if payload == 0 {
            return Err(self.protocol_error(
                "configure",
                format!("payload size {accepted} is smaller than a {sector}-byte sector"),
            ));
        }
        self.payload_size = payload;
        let attr = |k: &str| answer.response.attr(k).map(str::to_owned);
        Ok(ConfigureInfo {
            payload_size: payload,
            sector_size: sector,
            device_supported: payload_attr(&answer.response, SUPPORTED_ATTR),
            exchanges,
            target_name: attr("TargetName"),
            version: attr("Version"),
            memory_name: attr("MemoryName"),
        })
    }

    fn configure_document(&self, payload: usize) -> Document {
        Document::new("configure")
            .attr("MemoryName", self.config.storage.memory_name())
            .attr(SIZE_ATTR, payload)
            .attr("Verbose", 0)
            .attr("ZlpAwareHost", 1)
            .attr("SkipStorageInit", u8::from(self.config.skip_storage_init))
            .attr("SkipWrite", 0)
            .attr("AlwaysValidate", 0)
            .attr("MaxDigestTableSizeInBytes", 8192)
            .attr("AckRawDataEveryNumPackets", 0)
    }

    fn configure_once(
        &mut self,
        payload: usize,
        timeout: Duration,
    ) -> Result<Reply, FirehoseError> {
        let doc = self.configure_document(payload);
        self.send(&doc, "configure")?;
        self.await_response("configure", timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firehose::response::{parse_frame, Message};

    const MIB: usize = 1024 * 1024;

    /// The `<response>` of a literal programmer message.
    fn answer(xml: &str) -> Response {
        match parse_frame(xml.as_bytes()).unwrap().remove(0) {
            Message::Response(response) => response,
            other => panic!("not a response: {other:?}"),
        }
    }

    fn decide(xml: &str, asked: usize, cap: usize) -> Negotiation {
        after_first_answer(&answer(xml), asked, cap, 4096)
    }

    #[test]
    fn an_ack_offering_more_is_renegotiated_up_to_the_cap() {
        let ack = r#"<?xml version="1.0" encoding="UTF-8" ?><data><response value="ACK" MinVersionSupported="1" MemoryName="UFS" MaxPayloadSizeFromTargetInBytes="4096" MaxPayloadSizeToTargetInBytes="1048576" MaxPayloadSizeToTargetInBytesSupported="4194304" MaxXMLSizeInBytes="4096" Version="1" TargetName="8180" /></data>"#;
        assert_eq!(decide(ack, MIB, 16 * MIB), Negotiation::Resend(4 * MIB));
        assert_eq!(decide(ack, MIB, 2 * MIB), Negotiation::Resend(2 * MIB));
        // The cap is what was asked: nothing more to gain.
        assert_eq!(decide(ack, MIB, MIB), Negotiation::Accept(MIB));
    }

    #[test]
    fn an_ack_at_the_limit_is_final() {
        let ack = r#"<?xml version="1.0" ?><data><response value="ACK" MaxPayloadSizeToTargetInBytes="1048576" MaxPayloadSizeToTargetInBytesSupported="1048576" /></data>"#;
        assert_eq!(decide(ack, MIB, 16 * MIB), Negotiation::Accept(MIB));
        // Older programmers send no Supported attribute at all.
        let ack = r#"<?xml version="1.0" ?><data><response value="ACK" MaxPayloadSizeToTargetInBytes="1048576" /></data>"#;
        assert_eq!(decide(ack, MIB, 16 * MIB), Negotiation::Accept(MIB));
        let ack = r#"<?xml version="1.0" ?><data><response value="ACK" rawmode="false" /></data>"#;
        assert_eq!(decide(ack, MIB, 16 * MIB), Negotiation::Accept(MIB));
    }

    #[test]
    fn an_ack_for_less_or_for_more_than_supported_sends_no_more_than_that() {
        let less = r#"<?xml version="1.0" ?><data><response value="ACK" MaxPayloadSizeToTargetInBytes="524288" MaxPayloadSizeToTargetInBytesSupported="524288" /></data>"#;
        assert_eq!(decide(less, MIB, 16 * MIB), Negotiation::Accept(512 * 1024));
        let contradictory = r#"<?xml version="1.0" ?><data><response value="ACK" MaxPayloadSizeToTargetInBytes="1048576" MaxPayloadSizeToTargetInBytesSupported="262144" /></data>"#;
        assert_eq!(
            decide(contradictory, MIB, 16 * MIB),
            Negotiation::Accept(256 * 1024)
        );
    }

    #[test]
    fn a_nak_offering_a_size_is_retried_with_it_within_the_cap() {
        let nak = r#"<?xml version="1.0" ?><data><response value="NAK" MaxPayloadSizeToTargetInBytes="262144" MaxPayloadSizeToTargetInBytesSupported="262144" /></data>"#;
        assert_eq!(decide(nak, MIB, MIB), Negotiation::Resend(256 * 1024));
        let only_supported = r#"<?xml version="1.0" ?><data><response value="NAK" MaxPayloadSizeToTargetInBytesSupported="262144" /></data>"#;
        assert_eq!(
            decide(only_supported, MIB, MIB),
            Negotiation::Resend(256 * 1024)
        );
        // An odd offer is rounded down to whole sectors.
        let odd = r#"<?xml version="1.0" ?><data><response value="NAK" MaxPayloadSizeToTargetInBytes="300000" /></data>"#;
        assert_eq!(decide(odd, MIB, MIB), Negotiation::Resend(73 * 4096));
    }

    #[test]
    fn a_nak_with_nothing_better_to_ask_is_a_refusal() {
        let plain =
            r#"<?xml version="1.0" ?><data><response value="NAK" rawmode="false" /></data>"#;
        assert_eq!(decide(plain, MIB, 16 * MIB), Negotiation::Refused);
        let same = r#"<?xml version="1.0" ?><data><response value="NAK" MaxPayloadSizeToTargetInBytes="1048576" /></data>"#;
        assert_eq!(decide(same, MIB, 16 * MIB), Negotiation::Refused);
        // Offering more than the cap when the cap was asked: nothing to retry with.
        let more = r#"<?xml version="1.0" ?><data><response value="NAK" MaxPayloadSizeToTargetInBytes="8388608" /></data>"#;
        assert_eq!(decide(more, MIB, MIB), Negotiation::Refused);
        let garbage = r#"<?xml version="1.0" ?><data><response value="NAK" MaxPayloadSizeToTargetInBytes="lots" MaxPayloadSizeToTargetInBytesSupported="-1" /></data>"#;
        assert_eq!(decide(garbage, MIB, MIB), Negotiation::Refused);
        let tiny = r#"<?xml version="1.0" ?><data><response value="NAK" MaxPayloadSizeToTargetInBytes="100" /></data>"#;
        assert_eq!(decide(tiny, MIB, MIB), Negotiation::Refused);
    }

    #[test]
    fn no_offer_ever_exceeds_the_absolute_cap() {
        let huge = r#"<?xml version="1.0" ?><data><response value="ACK" MaxPayloadSizeToTargetInBytes="1048576" MaxPayloadSizeToTargetInBytesSupported="18446744073709551615" /></data>"#;
        assert_eq!(
            decide(huge, MIB, usize::MAX),
            Negotiation::Resend(MAX_PAYLOAD_CAP)
        );
    }
}
