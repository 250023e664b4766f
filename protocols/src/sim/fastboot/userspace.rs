//! The commands only userspace fastboot (fastbootd) has: logical partitions in `super`,
//! Virtual A/B snapshots and GSI. The bootloader personality does not know them and answers
//! as ABL does; fastbootd answers as AOSP's `fastboot/device/commands.cpp` does on a phone
//! like this one, which has no `super` (its partitions are all physical) and no GSI.

use super::{fail, info, okay, FastbootDevice, UNKNOWN_COMMAND};
use crate::fastboot::{Command, SnapshotUpdate};
use crate::sim::phone::PhoneMode;
use crate::transport::{Transport, TransportError};

impl FastbootDevice {
    pub(super) fn userspace_only(
        &mut self,
        link: &mut dyn Transport,
        command: Command<'_>,
    ) -> Result<(), TransportError> {
        if self.phone.lock().mode != PhoneMode::Fastbootd {
            return fail(link, UNKNOWN_COMMAND);
        }
        match command {
            Command::UpdateSuper { .. }
            | Command::CreateLogicalPartition { .. }
            | Command::DeleteLogicalPartition(_)
            | Command::ResizeLogicalPartition { .. } => {
                if !self.phone.lock().identity.unlocked {
                    return fail(link, "Command not available on locked devices");
                }
                fail(link, "Could not open super partition")
            }
            // No merge is ever in progress: `snapshot-update-status` says `none`.
            Command::SnapshotUpdate(SnapshotUpdate::Status) => {
                info(link, "none")?;
                okay(link, "")
            }
            Command::SnapshotUpdate(SnapshotUpdate::Cancel) => okay(link, "Success"),
            Command::SnapshotUpdate(SnapshotUpdate::Merge) => {
                fail(link, "No snapshot merge is in progress")
            }
            Command::Gsi(_) => fail(link, "No GSI is installed"),
            _ => fail(link, UNKNOWN_COMMAND),
        }
    }
}
