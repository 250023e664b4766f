//! Qualcomm Sahara: the boot ROM protocol that uploads a programmer (and reads identity in command mode).
//!
//! - [`packet`]: the wire codec for every command of versions 1–3;
//! - [`status`]: status codes with their names;
//! - [`identity`]: command-mode answers (serial, HW ID, v3 chip id, PK hash, SBL version);
//! - [`host`]: the host side over any transport; [`images`]: the files it serves.

pub mod error;
pub mod host;
pub mod identity;
pub mod images;
pub mod packet;
pub mod status;

pub use error::SaharaError;
pub use host::{
    DeviceInfo, ImageTransfer, InfoOutcome, SaharaHost, SaharaOutcome, SaharaTimeouts, UploadReport,
};
pub use images::SaharaImages;
pub use packet::{Mode, Packet};
pub use status::Status;
