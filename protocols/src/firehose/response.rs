//! What a Firehose programmer sends the host, both ways: [`parse_frame`] reads one document
//! (`<?xml …?><data>…</data>`) into messages on the host, [`encode`] writes one message as a
//! document on the (simulated) programmer.
//!
//! A programmer answers each command with any number of `<log value="…"/>` lines and one
//! `<response value="ACK|NAK" …/>`; `rawmode="true"` on an ACK opens a raw-data phase, and a
//! `configure` answer carries the negotiated sizes as further attributes. Real programmers put
//! one element in each document, but a document holding several (a log after the response, as
//! some MSM8916 programmers send) is read whole and in order. Sans-io: bytes in, messages out.

use super::xml::{self, Document, Element, XmlError};

/// A `<response>`: ACK or NAK, raw mode, and every other attribute in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub ack: bool,
    /// `rawmode="true|false"`, `None` when the programmer left it out (configure answers).
    pub rawmode: Option<bool>,
    /// The attributes other than `value` and `rawmode` (`MaxPayloadSizeToTargetInBytes`, …).
    pub attributes: Vec<(String, String)>,
}

impl Response {
    /// `<response value="ACK" rawmode="…"/>`.
    pub fn ack(rawmode: bool) -> Self {
        Response {
            ack: true,
            rawmode: Some(rawmode),
            attributes: Vec::new(),
        }
    }

    /// `<response value="NAK" rawmode="false"/>`.
    pub fn nak() -> Self {
        Response {
            ack: false,
            rawmode: Some(false),
            attributes: Vec::new(),
        }
    }

    /// Add an attribute after `value` and `rawmode`.
    pub fn with(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.attributes.push((name.to_owned(), value.to_string()));
        self
    }

    /// Raw data follows this ACK.
    pub fn is_raw(&self) -> bool {
        self.ack && self.rawmode == Some(true)
    }

    /// The value of another attribute (exact name, as programmers and qdl compare).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One element of a programmer's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Response(Response),
    /// A `<log value="…"/>` line (a programmer's progress, its reasons for a NAK, digests).
    Log(String),
    /// Anything else, kept for the caller to report and skip.
    Other(Element),
}

/// A document that is not a programmer's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("<response> on line {line} has value `{value}`, neither ACK nor NAK")]
    BadValue { line: usize, value: String },
    #[error("<response> on line {line} has rawmode `{value}`, neither true nor false")]
    BadRawmode { line: usize, value: String },
}

/// Read one document into its messages, in document order.
pub fn parse_frame(bytes: &[u8]) -> Result<Vec<Message>, FrameError> {
    xml::parse_message(bytes)?
        .into_iter()
        .map(message)
        .collect()
}

fn message(element: Element) -> Result<Message, FrameError> {
    match element.name.as_str() {
        "log" => Ok(Message::Log(
            element.attr("value").unwrap_or_default().to_owned(),
        )),
        "response" => response(element).map(Message::Response),
        _ => Ok(Message::Other(element)),
    }
}

fn response(element: Element) -> Result<Response, FrameError> {
    let line = element.line;
    let mut ack = None;
    let mut rawmode = None;
    let mut attributes = Vec::new();
    for (name, value) in element.attributes {
        match name.as_str() {
            "value" => {
                ack = Some(match value.as_str() {
                    "ACK" => true,
                    "NAK" => false,
                    _ => return Err(FrameError::BadValue { line, value }),
                })
            }
            "rawmode" => {
                rawmode = Some(match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(FrameError::BadRawmode { line, value }),
                })
            }
            _ => attributes.push((name, value)),
        }
    }
    let Some(ack) = ack else {
        return Err(FrameError::BadValue {
            line,
            value: "(none)".to_owned(),
        });
    };
    Ok(Response {
        ack,
        rawmode,
        attributes,
    })
}

/// One message as the document a programmer sends for it:
/// `<?xml version="1.0" encoding="UTF-8" ?>\n<data>\n<TAG … />\n</data>`.
pub fn encode(message: &Message) -> Vec<u8> {
    match message {
        Message::Log(text) => encode_log(text),
        Message::Response(response) => encode_response(response),
        Message::Other(element) => {
            with_attributes(Document::new(&element.name), &element.attributes).to_bytes()
        }
    }
}

/// A `<log>` document.
pub fn encode_log(text: &str) -> Vec<u8> {
    Document::new("log").attr("value", text).to_bytes()
}

/// A `<response>` document: `value`, then `rawmode` when set, then the other attributes.
pub fn encode_response(response: &Response) -> Vec<u8> {
    let value = if response.ack { "ACK" } else { "NAK" };
    let mut doc = Document::new("response").attr("value", value);
    if let Some(raw) = response.rawmode {
        doc = doc.attr("rawmode", raw);
    }
    with_attributes(doc, &response.attributes).to_bytes()
}

fn with_attributes(doc: Document, attributes: &[(String, String)]) -> Document {
    attributes
        .iter()
        .fold(doc, |doc, (name, value)| doc.attr(name, value))
}
