//! What can go wrong in a Firehose session. Every variant names the link and the command, so the
//! station's verdict sentence and the journal can say what failed where.

use std::path::PathBuf;

use crate::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum FirehoseError {
    #[error("{link}: `{command}` failed on the link: {source}")]
    Transport {
        link: String,
        command: String,
        #[source]
        source: TransportError,
    },

    #[error(
        "{link}: no answer to `{command}` within {secs:.1} s (is a Firehose programmer running?)"
    )]
    Timeout {
        link: String,
        command: String,
        secs: f64,
    },

    /// The programmer answered NAK; `reason` is built from the `<log>` lines it sent first.
    #[error("{link}: programmer refused `{command}` (NAK): {reason}")]
    Nak {
        link: String,
        command: String,
        reason: String,
        logs: Vec<String>,
    },

    #[error("{link}: protocol violation during `{command}`: {detail}")]
    Protocol {
        link: String,
        command: String,
        detail: String,
    },

    #[error("cannot read {path}: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {detail}")]
    BadImage { path: PathBuf, detail: String },

    #[error("cannot read the data to send for `{command}`: {source}")]
    Source {
        command: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot store data read by `{command}`: {source}")]
    Output {
        command: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{link}: `{command}` answered ACK but no SHA-256 digest was found in its logs")]
    NoDigest { link: String, command: String },

    #[error("LUN {lun}: {detail}")]
    Gpt { lun: u32, detail: String },

    #[error("partition `{label}` is in none of the GPTs of LUNs {searched}")]
    PartitionNotFound { label: String, searched: String },

    /// A read of a partition that does not lie inside it (checked before anything is sent).
    #[error("{len} bytes at offset {offset} run past the end of partition {label} ({size} bytes)")]
    PastPartitionEnd {
        label: String,
        offset: u64,
        len: u64,
        size: u64,
    },

    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The caller asked the operation to stop ([`crate::progress::ProgressSink::stop_requested`]):
    /// the data phase ended between two chunks, the programmer is left mid-transfer.
    #[error("{link}: `{command}` stopped at the caller's request")]
    Stopped { link: String, command: String },
}

impl FirehoseError {
    /// True when the device went away (unplugged, reset); the station reports `DISCONNECTED`.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, FirehoseError::Transport { source, .. } if source.is_disconnect())
    }
}
