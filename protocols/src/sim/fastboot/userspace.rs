//! The commands only userspace fastboot (fastbootd) has: logical partitions in `super`
//! ([`super::logical`]), Virtual A/B snapshots and GSI. The bootloader personality does not
//! know them and answers as ABL does; fastbootd answers as AOSP's
//! `fastboot/device/commands.cpp` does (a phone without `super` cannot open it; no phone here
//! has a GSI or a snapshot update in progress).

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
            Command::UpdateSuper { partition, wipe } => self.update_super(link, partition, wipe),
            Command::CreateLogicalPartition { partition, size } => {
                self.create_logical(link, partition, size)
            }
            Command::DeleteLogicalPartition(partition) => self.delete_logical(link, partition),
            Command::ResizeLogicalPartition { partition, size } => {
                self.resize_logical(link, partition, size)
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
