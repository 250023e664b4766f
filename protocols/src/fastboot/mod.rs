//! The fastboot host side (AOSP `fastboot` README): sans-io codecs for commands, variables and
//! responses (two-way: the simulated device parses commands and encodes responses with the same
//! types), a client over any [`crate::transport::Transport`], and the high-level operations a
//! station needs (identify, flash with slot handling and sparse splitting, read back, digests,
//! reboot), and fastbootd's logical partitions with the refusals when a command needs the
//! other mode ([`fastbootd`]).

pub mod client;
pub mod command;
pub mod error;
pub mod fastbootd;
pub mod flash;
mod link_writer;
pub mod readback;
mod resparse;
pub mod response;
pub mod slots;
pub mod variable;
pub mod vars;

#[cfg(test)]
mod codec_tests;
#[cfg(all(test, feature = "sim"))]
mod fastbootd_tests;
#[cfg(test)]
mod flash_tests;

pub use client::{AnswerBounds, ClientOptions, Fastboot, Reply};
pub use command::{
    Command, CommandError, FlashingAction, GsiAction, ParseError, RebootTarget, SnapshotUpdate,
    DEFAULT_MAX_COMMAND_LEN,
};
pub use error::{FastbootError, Violation};
pub use fastbootd::{FastbootMode, PartitionKind, DEFAULT_SUPER_PARTITION};
pub use flash::{FlashOptions, FlashReport, ImageKind, DEFAULT_FALLBACK_MAX_DOWNLOAD_SIZE};
pub use resparse::{resparse_piece_limit, RESPARSE_LIMIT};
pub use response::{Response, ResponseError, MAX_MESSAGE_LEN, MAX_RESPONSE_LEN};
pub use slots::SlotChoice;
pub use variable::Variable;
pub use vars::{parse_size, DeviceIdentity};
