//! Simulated phones: one storage, two personalities (fastboot and EDL), served over any transport.
//!
//! [`phone::Phone`] is the shared model (identity, [`storage::Storage`] with GPT LUNs, A/B slot
//! state, injectable device faults). Personalities serve it over the device end of a
//! [`crate::transport::Transport`].

pub mod edl;
pub mod fastboot;
pub mod firehose;
pub mod firehose_expr;
pub mod phone;
pub mod storage;

pub use fastboot::{FastbootConfig, FastbootDevice, FetchAllow, RebootTo, SessionEnd};
pub use phone::{FaultAction, Identity, Phone, PhoneBuilder, PhoneMode};
pub use storage::{DropWrites, LunSpec, PartitionSpec, Storage, StorageError, StorageMode};
pub mod sahara;
pub mod sahara_elf;
