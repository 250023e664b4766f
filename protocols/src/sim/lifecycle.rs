//! The life of a simulated phone between sessions: which mode each ending of a session leads
//! to, whether the phone is still on the bus, and — when it rebooted — after how long it comes
//! back and in which personality.
//!
//! One table for every host of a simulated phone (the station's memory bus, fastboot TCP, a
//! pty, FunctionFS): a personality that ends a session reports how with
//! `Phone::end_session`, and the host carries out the [`Transition`] it takes from the phone
//! with `Phone::take_transition`. A session the host ended (closed link, silence) changes
//! nothing: the phone stays as it is, and `Phone::take_transition` has nothing to say.
//!
//! What a real phone does, and so what [`Lifecycle::next`] decides:
//!
//! | ending                                   | mode afterwards        | on the bus               |
//! |------------------------------------------|------------------------|--------------------------|
//! | `reboot`, `continue`, Firehose `reset`   | the boot chain's end   | back if it has a USB personality there, else gone |
//! | `reboot-bootloader`                      | bootloader             | back after the gap       |
//! | `reboot-fastboot`                        | fastbootd              | back after the gap       |
//! | `reboot-recovery`                        | recovery               | gone                     |
//! | `boot` (a downloaded image)              | Android                | gone                     |
//! | `oem edl`, `reset_to_edl`, Sahara RESET  | EDL                    | back after the gap       |
//! | programmer refused by secure boot        | EDL (Sahara, waiting)  | stays, no re-enumeration |
//! | Firehose `power off`                     | off                    | gone                     |
//! | the cable pulled (a scripted fault)      | as it was              | gone until plugged again |
//!
//! The boot chain's end ([`Lifecycle::boots_to`]) is Android on a phone as it leaves the
//! factory (gone from the station's bus); a factory build that stops in the bootloader (the
//! station's demo, a phone served to outside fastboot clients) sets the bootloader; a phone on
//! a deep-flash cable sets EDL. A pulled cable is not an ending of the phone's: it keeps its
//! mode on its battery and is found in it when plugged in again (the hosts' plug/unplug). A
//! phone scripted to have its cable pulled ends its session with [`Ending::CablePulled`], so
//! every host takes it off the bus the same way.

use std::time::Duration;

/// What the phone is running now; its [`Lifecycle`] moves it when a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneMode {
    /// The bootloader's fastboot (ABL).
    Bootloader,
    /// Userspace fastboot in recovery (`fastbootd`).
    Fastbootd,
    Recovery,
    /// Booted to Android (gone from the bus for the station).
    Android,
    /// Qualcomm Emergency Download (Sahara, then Firehose).
    Edl,
    Off,
}

/// Where a fastboot reboot command sends the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootTo {
    /// `reboot`: boot normally.
    System,
    /// `reboot-bootloader`: the bootloader's fastboot again.
    Bootloader,
    /// `reboot-fastboot`: userspace fastboot (fastbootd).
    Fastbootd,
    /// `reboot-recovery`.
    Recovery,
    /// `oem edl`: Qualcomm Emergency Download (the phone re-enumerates as 05c6:9008).
    Edl,
}

/// How the phone ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A fastboot reboot command was acknowledged.
    Reboot(RebootTo),
    /// fastboot `continue`: boot the installed system.
    Continue,
    /// fastboot `boot`: run the downloaded image.
    BootDownloaded,
    /// The host sent Sahara RESET: the boot ROM restarts.
    RomReset,
    /// Secure boot refused the programmer: the ROM answered END_OF_IMAGE with an error and
    /// waits in Sahara (qdl and qdlrs stop there; nothing resets the phone).
    ProgrammerRefused,
    /// Firehose `<power value="reset">`.
    PowerReset,
    /// Firehose `<power value="reset_to_edl">`.
    PowerResetToEdl,
    /// Firehose `<power value="off">`.
    PowerOff,
    /// The cable was pulled (a scripted fault, see `FaultAction::PullCable`): the phone keeps
    /// its mode on its battery and is gone from the bus until it is plugged in again.
    CablePulled,
}

/// How a phone shows up on USB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusPersonality {
    /// Fastboot, 18d1:4ee0: the bootloader and fastbootd alike (`is-userspace` tells them
    /// apart, not the USB ids).
    Fastboot,
    /// Qualcomm EDL, 05c6:9008.
    Edl,
}

impl PhoneMode {
    /// The USB personality of this mode on a flashing station's bus; `None` where the phone is
    /// not a device the station talks to (Android, recovery, off).
    pub fn personality(self) -> Option<BusPersonality> {
        match self {
            PhoneMode::Bootloader | PhoneMode::Fastbootd => Some(BusPersonality::Fastboot),
            PhoneMode::Edl => Some(BusPersonality::Edl),
            PhoneMode::Recovery | PhoneMode::Android | PhoneMode::Off => None,
        }
    }
}

/// Where the phone is on the bus after an ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Still attached as it was: no re-enumeration, the next host session finds it unchanged.
    Stays,
    /// It leaves the bus now and comes back after `after` as `personality`.
    Returns {
        personality: BusPersonality,
        after: Duration,
    },
    /// It leaves the bus and does not come back by itself.
    Leaves,
}

/// One step of the phone's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: PhoneMode,
    pub ending: Ending,
    pub mode: PhoneMode,
    pub presence: Presence,
}

/// A phone's lifecycle settings (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// Where a normal boot ends: `reboot`, `continue` and a Firehose power reset.
    pub boots_to: PhoneMode,
    /// How long a rebooting phone is gone from the bus before it enumerates again (real
    /// phones take seconds; a simulator only needs the host to see the gap).
    pub reboot_gap: Duration,
}

/// How long a simulated phone is off the bus while it reboots.
pub const DEFAULT_REBOOT_GAP: Duration = Duration::from_millis(50);

impl Default for Lifecycle {
    /// A phone as it leaves the factory: a normal boot ends in Android.
    fn default() -> Self {
        Lifecycle {
            boots_to: PhoneMode::Android,
            reboot_gap: DEFAULT_REBOOT_GAP,
        }
    }
}

impl Lifecycle {
    /// A lifecycle whose normal boot ends in `mode`.
    pub fn booting_to(mode: PhoneMode) -> Self {
        Lifecycle {
            boots_to: mode,
            ..Lifecycle::default()
        }
    }

    /// The phone in mode `from` ended a session with `ending`: where it is now.
    pub fn next(&self, from: PhoneMode, ending: Ending) -> Transition {
        let mode = match ending {
            Ending::Reboot(RebootTo::System) | Ending::Continue | Ending::PowerReset => {
                self.boots_to
            }
            Ending::Reboot(RebootTo::Bootloader) => PhoneMode::Bootloader,
            Ending::Reboot(RebootTo::Fastbootd) => PhoneMode::Fastbootd,
            Ending::Reboot(RebootTo::Recovery) => PhoneMode::Recovery,
            Ending::BootDownloaded => PhoneMode::Android,
            Ending::Reboot(RebootTo::Edl)
            | Ending::PowerResetToEdl
            | Ending::RomReset
            | Ending::ProgrammerRefused => PhoneMode::Edl,
            Ending::PowerOff => PhoneMode::Off,
            Ending::CablePulled => from,
        };
        let presence = match (ending, mode.personality()) {
            (Ending::ProgrammerRefused, _) => Presence::Stays,
            (Ending::CablePulled, _) => Presence::Leaves,
            (_, Some(personality)) => Presence::Returns {
                personality,
                after: self.reboot_gap,
            },
            (_, None) => Presence::Leaves,
        };
        Transition {
            from,
            ending,
            mode,
            presence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::phone::Phone;

    const GAP: Duration = DEFAULT_REBOOT_GAP;

    /// Back on the bus after the gap as fastboot.
    fn back_fb() -> Presence {
        Presence::Returns {
            personality: BusPersonality::Fastboot,
            after: GAP,
        }
    }

    /// Back on the bus after the gap as EDL.
    fn back_edl() -> Presence {
        Presence::Returns {
            personality: BusPersonality::Edl,
            after: GAP,
        }
    }

    /// Every ending from a fastboot mode, on a phone as shipped and on a factory build that
    /// stops in the bootloader.
    #[test]
    fn fastboot_endings() {
        use PhoneMode::*;
        let shipped = Lifecycle::default();
        let factory = Lifecycle::booting_to(Bootloader);
        let table = [
            // (lifecycle, from, ending, mode, presence)
            (
                shipped,
                Bootloader,
                Ending::Reboot(RebootTo::System),
                Android,
                Presence::Leaves,
            ),
            (
                factory,
                Bootloader,
                Ending::Reboot(RebootTo::System),
                Bootloader,
                back_fb(),
            ),
            (
                shipped,
                Bootloader,
                Ending::Continue,
                Android,
                Presence::Leaves,
            ),
            (factory, Fastbootd, Ending::Continue, Bootloader, back_fb()),
            (
                shipped,
                Bootloader,
                Ending::Reboot(RebootTo::Bootloader),
                Bootloader,
                back_fb(),
            ),
            (
                shipped,
                Fastbootd,
                Ending::Reboot(RebootTo::Bootloader),
                Bootloader,
                back_fb(),
            ),
            (
                shipped,
                Bootloader,
                Ending::Reboot(RebootTo::Fastbootd),
                Fastbootd,
                back_fb(),
            ),
            (
                shipped,
                Fastbootd,
                Ending::Reboot(RebootTo::Fastbootd),
                Fastbootd,
                back_fb(),
            ),
            (
                factory,
                Bootloader,
                Ending::Reboot(RebootTo::Recovery),
                Recovery,
                Presence::Leaves,
            ),
            (
                factory,
                Bootloader,
                Ending::BootDownloaded,
                Android,
                Presence::Leaves,
            ),
            (
                shipped,
                Bootloader,
                Ending::Reboot(RebootTo::Edl),
                Edl,
                back_edl(),
            ),
        ];
        for (lifecycle, from, ending, mode, presence) in table {
            let t = lifecycle.next(from, ending);
            assert_eq!((t.from, t.ending), (from, ending));
            assert_eq!(
                (t.mode, t.presence),
                (mode, presence),
                "{from:?} {ending:?}"
            );
        }
    }

    #[test]
    fn edl_endings() {
        use PhoneMode::*;
        let shipped = Lifecycle::default();
        let factory = Lifecycle::booting_to(Bootloader);
        let deep_flash_cable = Lifecycle::booting_to(Edl);
        let table = [
            (shipped, Ending::PowerReset, Android, Presence::Leaves),
            (factory, Ending::PowerReset, Bootloader, back_fb()),
            (deep_flash_cable, Ending::PowerReset, Edl, back_edl()),
            (factory, Ending::PowerResetToEdl, Edl, back_edl()),
            (factory, Ending::RomReset, Edl, back_edl()),
            (factory, Ending::ProgrammerRefused, Edl, Presence::Stays),
            (deep_flash_cable, Ending::PowerOff, Off, Presence::Leaves),
        ];
        for (lifecycle, ending, mode, presence) in table {
            let t = lifecycle.next(Edl, ending);
            assert_eq!((t.mode, t.presence), (mode, presence), "{ending:?}");
        }
    }

    #[test]
    fn the_gap_is_the_lifecycles() {
        let slow = Lifecycle {
            boots_to: PhoneMode::Bootloader,
            reboot_gap: Duration::from_secs(3),
        };
        let t = slow.next(PhoneMode::Edl, Ending::PowerReset);
        assert_eq!(
            t.presence,
            Presence::Returns {
                personality: BusPersonality::Fastboot,
                after: Duration::from_secs(3)
            }
        );
    }

    #[test]
    fn modes_and_their_usb_personality() {
        use PhoneMode::*;
        assert_eq!(Bootloader.personality(), Some(BusPersonality::Fastboot));
        assert_eq!(Fastbootd.personality(), Some(BusPersonality::Fastboot));
        assert_eq!(Edl.personality(), Some(BusPersonality::Edl));
        for gone in [Android, Recovery, Off] {
            assert_eq!(gone.personality(), None, "{gone:?}");
        }
    }

    #[test]
    fn the_phone_applies_its_lifecycle_once() {
        let phone = Phone::builder()
            .slotted_partition("boot", 1 << 20)
            .boots_to(PhoneMode::Bootloader)
            .build()
            .unwrap();
        assert_eq!(phone.take_transition(), None, "nothing happened yet");
        phone.set_mode(PhoneMode::Edl);
        let t = phone.end_session(Ending::PowerReset);
        assert_eq!(phone.mode(), PhoneMode::Bootloader);
        assert_eq!(phone.take_transition(), Some(t));
        assert_eq!(phone.take_transition(), None, "taken once");
        assert_eq!(phone.lifecycle().boots_to, PhoneMode::Bootloader);
    }
}
