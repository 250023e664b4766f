//! Qualcomm Sahara: the boot ROM protocol that uploads a programmer (and reads identity in command mode).
//!
//! - [`packet`]: the wire codec for every command of versions 1–3;
//! - [`status`]: status codes with their names;
//! - [`identity`]: command-mode answers (serial, HW ID, v3 chip id, PK hash, SBL version);
//! - [`host`]: the host side over any transport, yielding an [`outcome`]; [`images`]: the
//!   files it serves;
//! - [`ramdump`]: collecting a crashed phone's RAM in memory-debug mode, whose table
//!   [`memory_table`] decodes.

pub mod error;
mod framing;
pub mod host;
pub mod identity;
pub mod images;
pub mod memory_table;
pub mod outcome;
pub mod packet;
pub mod ramdump;
pub mod status;

pub use error::SaharaError;
pub use host::{SaharaHost, SaharaTimeouts};
pub use images::SaharaImages;
pub use outcome::{DeviceInfo, ImageTransfer, InfoOutcome, SaharaOutcome, UploadReport};
pub use packet::{Mode, Packet};
pub use status::Status;
