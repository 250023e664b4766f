//! The failure vocabulary: a stable code (what reports group by and the journal stores) and a
//! sentence for people naming slot, unit, partition, and what was expected versus found.

use std::fmt;

use crate::config::RegionCode;
use crate::digest::Sha256Digest;

/// Stable failure codes. Their spelling is part of the journal format and of reports: never
/// rename one; add new ones at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureCode {
    IdentityMismatch,
    ImageHashMismatch,
    ActivationClientWrongRegion,
    ActivationClientUnknown,
    DeviceFail,
    Timeout,
    Disconnected,
    ProtocolError,
    SlotMismatch,
    VerifyMismatch,
    /// The station itself failed (journal, image file vanished…): not the unit's fault.
    HostError,
    /// No file at the activation client's path (in the image at pre-flight, on the phone at
    /// verification): a build without the client, or one that moved it.
    ActivationClientMissing,
    /// The build id in the system filesystem's `build.prop` (`ro.build.display.id`) is not the
    /// manifest's: a stale or other build.
    BuildIdMismatch,
    /// The product manifest is unsigned, its signature does not match it, or a key the station
    /// does not pin signed it: a pre-flight refusal (no unit is started), recorded under this
    /// code where a refusal is counted.
    ManifestUntrusted,
}

impl FailureCode {
    pub const ALL: [FailureCode; 14] = [
        Self::IdentityMismatch,
        Self::ImageHashMismatch,
        Self::ActivationClientWrongRegion,
        Self::ActivationClientUnknown,
        Self::DeviceFail,
        Self::Timeout,
        Self::Disconnected,
        Self::ProtocolError,
        Self::SlotMismatch,
        Self::VerifyMismatch,
        Self::HostError,
        Self::ActivationClientMissing,
        Self::BuildIdMismatch,
        Self::ManifestUntrusted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdentityMismatch => "IDENTITY_MISMATCH",
            Self::ImageHashMismatch => "IMAGE_HASH_MISMATCH",
            Self::ActivationClientWrongRegion => "ACTIVATION_CLIENT_WRONG_REGION",
            Self::ActivationClientUnknown => "ACTIVATION_CLIENT_UNKNOWN",
            Self::DeviceFail => "DEVICE_FAIL",
            Self::Timeout => "TIMEOUT",
            Self::Disconnected => "DISCONNECTED",
            Self::ProtocolError => "PROTOCOL_ERROR",
            Self::SlotMismatch => "SLOT_MISMATCH",
            Self::VerifyMismatch => "VERIFY_MISMATCH",
            Self::HostError => "HOST_ERROR",
            Self::ActivationClientMissing => "ACTIVATION_CLIENT_MISSING",
            Self::BuildIdMismatch => "BUILD_ID_MISMATCH",
            Self::ManifestUntrusted => "MANIFEST_UNTRUSTED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// What the line operator does next, as the dashboard shows it.
    pub fn next_step(self) -> NextStep {
        match self {
            // A cable or hub problem as often as the phone's.
            Self::Disconnected | Self::Timeout => NextStep::ReseatCable,
            Self::IdentityMismatch
            | Self::DeviceFail
            | Self::ProtocolError
            | Self::SlotMismatch
            | Self::VerifyMismatch => NextStep::RejectBin,
            // Wrong or altered builds and station faults are not fixed at the slot.
            Self::ActivationClientWrongRegion
            | Self::ActivationClientUnknown
            | Self::ActivationClientMissing
            | Self::BuildIdMismatch
            | Self::ManifestUntrusted
            | Self::ImageHashMismatch
            | Self::HostError => NextStep::CallEngineer,
        }
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the line operator does next with the unit, physically; the wording is what the screen
/// shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// Verified: the unit goes on to the pass tray.
    PassTray,
    /// The phone itself is at fault (refused a step, wrong identity, read back wrong): it goes
    /// into the reject bin for rework.
    RejectBin,
    /// A cable or hub problem as often as the phone's: re-seat it and let it run again.
    ReseatCable,
    /// A wrong or altered build, or a station fault: not fixed at the slot. The unit is kept
    /// aside for the engineer (it may hold the wrong activation client).
    CallEngineer,
    /// The attempt was cut before a verdict: put the unit on a slot again.
    FlashAgain,
    /// The unit was not flashed and waits for the fleet (a place, or the database): it starts
    /// on its own when the fleet lets it.
    LeaveOnSlot,
    /// The unit was not flashed: the work order is complete across the fleet. It goes back
    /// with the unflashed stock (or to the next work order).
    TakeOffOrderComplete,
}

impl fmt::Display for NextStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NextStep::PassTray => "to pass tray",
            NextStep::RejectBin => "to reject bin",
            NextStep::ReseatCable => "re-seat cable",
            NextStep::CallEngineer => "call engineer",
            NextStep::FlashAgain => "flash again",
            NextStep::LeaveOnSlot => "leave on slot",
            NextStep::TakeOffOrderComplete => "take off, order complete",
        })
    }
}

/// The unit a sentence is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRef {
    pub slot: u16,
    /// Unknown before identification.
    pub serial: Option<String>,
}

impl fmt::Display for UnitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.serial {
            Some(serial) => write!(f, "slot {} (serial {serial})", self.slot),
            None => write!(f, "slot {} (serial not yet read)", self.slot),
        }
    }
}

/// Why a unit failed; each variant has one code and renders one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    IdentityMismatch {
        unit: UnitRef,
        /// What was compared: `fastboot product`, `EDL HW id`, `OEM PK hash`…
        what: String,
        expected: String,
        found: String,
    },
    ImageHashMismatch {
        unit: UnitRef,
        file: String,
        expected: Sha256Digest,
        found: Sha256Digest,
    },
    ActivationClientWrongRegion {
        unit: UnitRef,
        /// Partition as read, with slot suffix (`system_a`).
        partition: String,
        /// Path inside ext4 or byte range.
        location: String,
        found_region: RegionCode,
        work_order: String,
        needed_region: RegionCode,
    },
    ActivationClientUnknown {
        unit: UnitRef,
        partition: String,
        location: String,
        found: Sha256Digest,
        expected: Sha256Digest,
        work_order: String,
        needed_region: RegionCode,
    },
    /// No file at the client's path on the phone.
    ActivationClientMissing {
        unit: UnitRef,
        partition: String,
        location: String,
        expected: Sha256Digest,
        work_order: String,
        needed_region: RegionCode,
    },
    /// The build id the phone holds (`ro.build.display.id` in its system filesystem's
    /// `build.prop`, read back) is not the manifest's.
    BuildIdMismatch {
        unit: UnitRef,
        /// Where it was read: `super/system_a /system/build.prop`.
        location: String,
        expected: String,
        /// None: no `build.prop`, or no `ro.build.display.id` in it.
        found: Option<String>,
        work_order: String,
    },
    DeviceFail {
        unit: UnitRef,
        step: String,
        reason: String,
    },
    Timeout {
        unit: UnitRef,
        step: String,
        secs: u64,
    },
    Disconnected {
        unit: UnitRef,
        step: String,
    },
    ProtocolError {
        unit: UnitRef,
        step: String,
        detail: String,
    },
    SlotMismatch {
        unit: UnitRef,
        expected_slot: String,
        found_slot: String,
        detail: String,
    },
    VerifyMismatch {
        unit: UnitRef,
        partition: String,
        what: String,
        expected: String,
        found: String,
    },
    HostError {
        unit: UnitRef,
        step: String,
        detail: String,
    },
    /// Another phone came back on the unit's port after a reboot (its serial differs): the
    /// unit that was flashed left unverified. Coded `IDENTITY_MISMATCH`.
    UnitSwapped {
        /// The unit of this attempt (the one that rebooted).
        unit: UnitRef,
        port_path: String,
        /// The reboot the phone was swapped in (`reboot-bootloader`).
        during: String,
        /// The serial of the phone now on the port.
        found_serial: String,
    },
    /// A failure as the station's event stream carried it to another process (`flashgate
    /// dashboard`): its code and the station's sentence after the unit (its [`Failure::detail`]);
    /// the details stay in the station's journal. Never built by a unit's job.
    Relayed {
        unit: UnitRef,
        code: FailureCode,
        detail: String,
    },
    /// After a reboot a device of another kind came back on the unit's port (the unit fell
    /// into EDL because its boot chain did not start, or another phone was plugged in): the
    /// unit is not verified. Coded `DEVICE_FAIL`.
    CameBackAsOtherKind {
        unit: UnitRef,
        port_path: String,
        /// The reboot (`reboot-bootloader`, `EDL reset`).
        during: String,
        expected: String,
        found: String,
    },
}

impl Failure {
    pub fn code(&self) -> FailureCode {
        match self {
            Self::IdentityMismatch { .. } => FailureCode::IdentityMismatch,
            Self::ImageHashMismatch { .. } => FailureCode::ImageHashMismatch,
            Self::ActivationClientWrongRegion { .. } => FailureCode::ActivationClientWrongRegion,
            Self::ActivationClientUnknown { .. } => FailureCode::ActivationClientUnknown,
            Self::ActivationClientMissing { .. } => FailureCode::ActivationClientMissing,
            Self::BuildIdMismatch { .. } => FailureCode::BuildIdMismatch,
            Self::DeviceFail { .. } => FailureCode::DeviceFail,
            Self::Timeout { .. } => FailureCode::Timeout,
            Self::Disconnected { .. } => FailureCode::Disconnected,
            Self::ProtocolError { .. } => FailureCode::ProtocolError,
            Self::SlotMismatch { .. } => FailureCode::SlotMismatch,
            Self::VerifyMismatch { .. } => FailureCode::VerifyMismatch,
            Self::HostError { .. } => FailureCode::HostError,
            Self::UnitSwapped { .. } => FailureCode::IdentityMismatch,
            Self::CameBackAsOtherKind { .. } => FailureCode::DeviceFail,
            Self::Relayed { code, .. } => *code,
        }
    }

    /// Whether cutting the unit's link or job at a stop could have caused this failure (as
    /// opposed to a finding about the unit, which stands whatever happened after it).
    pub fn may_be_a_cut(&self) -> bool {
        match self {
            Self::DeviceFail { .. }
            | Self::Timeout { .. }
            | Self::Disconnected { .. }
            | Self::ProtocolError { .. }
            | Self::HostError { .. } => true,
            Self::IdentityMismatch { .. }
            | Self::ImageHashMismatch { .. }
            | Self::ActivationClientWrongRegion { .. }
            | Self::ActivationClientUnknown { .. }
            | Self::ActivationClientMissing { .. }
            | Self::BuildIdMismatch { .. }
            | Self::SlotMismatch { .. }
            | Self::VerifyMismatch { .. }
            | Self::UnitSwapped { .. }
            | Self::CameBackAsOtherKind { .. }
            | Self::Relayed { .. } => false,
        }
    }

    pub fn unit(&self) -> &UnitRef {
        match self {
            Self::IdentityMismatch { unit, .. }
            | Self::ImageHashMismatch { unit, .. }
            | Self::ActivationClientWrongRegion { unit, .. }
            | Self::ActivationClientUnknown { unit, .. }
            | Self::ActivationClientMissing { unit, .. }
            | Self::BuildIdMismatch { unit, .. }
            | Self::DeviceFail { unit, .. }
            | Self::Timeout { unit, .. }
            | Self::Disconnected { unit, .. }
            | Self::ProtocolError { unit, .. }
            | Self::SlotMismatch { unit, .. }
            | Self::VerifyMismatch { unit, .. }
            | Self::HostError { unit, .. }
            | Self::UnitSwapped { unit, .. }
            | Self::CameBackAsOtherKind { unit, .. }
            | Self::Relayed { unit, .. } => unit,
        }
    }

    /// The sentence without the code prefix: the unit, then [`Failure::detail`].
    pub fn sentence(&self) -> String {
        format!("{}: {}", self.unit(), self.detail())
    }

    /// What went wrong, without the unit (for a screen that already shows slot and serial).
    pub fn detail(&self) -> String {
        match self {
            Self::IdentityMismatch {
                what,
                expected,
                found,
                ..
            } => {
                format!("{what} is {found}, this product needs {expected}")
            }
            Self::ImageHashMismatch {
                file,
                expected,
                found,
                ..
            } => format!(
                "image {file} has SHA-256 {}, the manifest says {}",
                found.short(),
                expected.short()
            ),
            Self::ActivationClientWrongRegion {
                partition,
                location,
                found_region,
                work_order,
                needed_region,
                ..
            } => format!(
                "{partition} {location} has the {found_region} client, \
                 work order {work_order} needs {needed_region}"
            ),
            Self::ActivationClientUnknown {
                partition,
                location,
                found,
                expected,
                work_order,
                needed_region,
                ..
            } => format!(
                "{partition} {location} has SHA-256 {}, which is no region's client; \
                 work order {work_order} needs the {needed_region} client {}",
                found.short(),
                expected.short()
            ),
            Self::ActivationClientMissing {
                partition,
                location,
                expected,
                work_order,
                needed_region,
                ..
            } => format!(
                "{partition} has no {location}: the activation client is missing; work order \
                 {work_order} needs the {needed_region} client {} (the phone holds another \
                 build: keep it aside for the engineer)",
                expected.short()
            ),
            Self::BuildIdMismatch {
                location,
                expected,
                found,
                work_order,
                ..
            } => match found {
                Some(found) => format!(
                    "{location} says build {found}, work order {work_order} needs build \
                     {expected}: the phone holds another build than the manifest's"
                ),
                None => format!(
                    "{location} names no build (no file, or no ro.build.display.id in it); \
                     work order {work_order} needs build {expected}"
                ),
            },
            Self::DeviceFail { step, reason, .. } => {
                format!("the phone refused {step}: {reason}")
            }
            Self::Timeout { step, secs, .. } => {
                format!("no answer during {step} within {secs} s")
            }
            Self::Disconnected { step, .. } => {
                format!("the phone disconnected during {step}")
            }
            Self::ProtocolError { step, detail, .. } => {
                format!("protocol violation during {step}: {detail}")
            }
            Self::SlotMismatch {
                expected_slot,
                found_slot,
                detail,
                ..
            } => format!(
                "the phone will boot slot {found_slot}, expected slot {expected_slot}: {detail}"
            ),
            Self::VerifyMismatch {
                partition,
                what,
                expected,
                found,
                ..
            } => format!("{partition} {what} read back as {found}, expected {expected}"),
            Self::HostError { step, detail, .. } => {
                format!("station error during {step}: {detail}")
            }
            Self::UnitSwapped {
                unit,
                port_path,
                during,
                found_serial,
            } => {
                let flashed = unit.serial.as_deref().unwrap_or("the unit");
                format!(
                    "another phone (serial {found_serial}) came back on port {port_path} \
                     after {during}; {flashed} was flashed but not verified: put {flashed} back \
                     on a slot for a new attempt ({found_serial} gets an attempt of its own)"
                )
            }
            Self::CameBackAsOtherKind {
                port_path,
                during,
                expected,
                found,
                ..
            } => format!(
                "after {during} a phone in {found} mode came back on port {port_path}, \
                 not the unit in {expected} mode: the unit did not boot its bootloader (a bad \
                 boot chain image) or another phone was plugged in; it was flashed but not \
                 verified: take it off the slot for rework (the phone in {found} mode gets an \
                 attempt of its own)"
            ),
            Self::Relayed { detail, .. } => detail.clone(),
        }
    }
}

impl fmt::Display for Failure {
    /// `CODE: sentence`, as the dashboard and the journal's message column show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.sentence())
    }
}

/// An attempt the station cut before it could reach a verdict (a stop, or the journal no longer
/// answering). Not a failure: the unit is neither blamed nor counted in the yield; it is flashed
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    pub unit: UnitRef,
    /// The step the attempt was in when it was cut (`flash system_a`).
    pub step: String,
    /// Why the station cut it (`the station was stopped (SIGTERM)`).
    pub why: String,
    /// The fleet kept the unit from being flashed (nothing was written to it): why, as a
    /// stable code.
    pub not_flashed: Option<NotFlashed>,
}

impl Interruption {
    pub fn sentence(&self) -> String {
        format!("{}: {}", self.unit, self.detail())
    }

    /// The sentence without the unit.
    pub fn detail(&self) -> String {
        match self.not_flashed {
            Some(code) => format!(
                "not flashed ({code}): {}; next: {}",
                self.why,
                code.next_step()
            ),
            None => format!(
                "{} during {}, before a verdict; the unit is not verified: flash it again",
                self.why, self.step
            ),
        }
    }

    /// What the operator does with the unit now.
    pub fn next_step(&self) -> NextStep {
        self.not_flashed
            .map_or(NextStep::FlashAgain, NotFlashed::next_step)
    }
}

/// Why the fleet database kept a unit from being flashed. Stable codes, like [`FailureCode`]'s:
/// the journal's message and the event stream carry them; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NotFlashed {
    /// Every place of the work order's quantity has passed, across the fleet.
    OrderComplete,
    /// Every place left is held by units being flashed at other stations (they may fail and
    /// give one back).
    NoPlace,
    /// The fleet database does not answer and station.yaml says `fleet.when_offline: stop`.
    FleetOffline,
}

impl NotFlashed {
    pub const ALL: [NotFlashed; 3] = [Self::OrderComplete, Self::NoPlace, Self::FleetOffline];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderComplete => "FLEET_ORDER_COMPLETE",
            Self::NoPlace => "FLEET_NO_PLACE",
            Self::FleetOffline => "FLEET_OFFLINE_STOP",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    pub fn next_step(self) -> NextStep {
        match self {
            Self::OrderComplete => NextStep::TakeOffOrderComplete,
            Self::NoPlace | Self::FleetOffline => NextStep::LeaveOnSlot,
        }
    }
}

impl fmt::Display for NotFlashed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Interruption {
    /// `ABORTED: sentence`, as the journal's message column shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ABORTED: {}", self.sentence())
    }
}

/// The end of one unit attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(Failure),
    Aborted(Interruption),
}

impl Verdict {
    pub fn is_pass(&self) -> bool {
        matches!(self, Self::Pass)
    }

    pub fn code(&self) -> Option<FailureCode> {
        match self {
            Self::Pass | Self::Aborted(_) => None,
            Self::Fail(failure) => Some(failure.code()),
        }
    }
}

impl Verdict {
    /// `PASS`, `FAIL` or `ABORTED`, as the journal's result column and the event stream spell it.
    pub fn result(&self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail(_) => "FAIL",
            Self::Aborted(_) => "ABORTED",
        }
    }

    /// The sentence for people (none for a PASS).
    pub fn reason(&self) -> Option<String> {
        match self {
            Self::Pass => None,
            Self::Fail(failure) => Some(failure.sentence()),
            Self::Aborted(interruption) => Some(interruption.sentence()),
        }
    }

    /// What the operator does with the unit now.
    pub fn next_step(&self) -> NextStep {
        match self {
            Self::Pass => NextStep::PassTray,
            Self::Fail(failure) => failure.code().next_step(),
            Self::Aborted(interruption) => interruption.next_step(),
        }
    }
}

/// The event stream's shape of a verdict: `{"result": "FAIL", "code": …, "reason": …,
/// "next_step": …}` (`code` only for a FAIL; `reason` not for a PASS).
impl serde::Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("result", self.result())?;
        if let Some(code) = self.code() {
            map.serialize_entry("code", code.as_str())?;
        }
        if let Some(reason) = self.reason() {
            map.serialize_entry("reason", &reason)?;
        }
        map.serialize_entry("next_step", &self.next_step())?;
        // The parts of an interruption's sentence, so a reader of the stream can rebuild it.
        if let Self::Aborted(interruption) = self {
            map.serialize_entry("step", &interruption.step)?;
            map.serialize_entry("why", &interruption.why)?;
            if let Some(code) = interruption.not_flashed {
                map.serialize_entry("not_flashed", code.as_str())?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit() -> UnitRef {
        UnitRef {
            slot: 3,
            serial: Some("7PL0042".into()),
        }
    }

    #[test]
    fn wrong_region_sentence_matches_the_issue() {
        let failure = Failure::ActivationClientWrongRegion {
            unit: unit(),
            partition: "system_a".into(),
            location: "/priv-app/ActivationClient/ActivationClient.apk".into(),
            found_region: RegionCode::parse("00CN").unwrap(),
            work_order: "WO-1187".into(),
            needed_region: RegionCode::parse("00EEA").unwrap(),
        };
        assert_eq!(failure.code(), FailureCode::ActivationClientWrongRegion);
        assert_eq!(
            failure.to_string(),
            "ACTIVATION_CLIENT_WRONG_REGION: slot 3 (serial 7PL0042): system_a \
             /priv-app/ActivationClient/ActivationClient.apk has the 00CN client, work order \
             WO-1187 needs 00EEA"
        );
    }

    #[test]
    fn sentences_name_unit_and_expected_versus_found() {
        let expected = Sha256Digest::of_bytes(b"a");
        let found = Sha256Digest::of_bytes(b"b");
        let cases = vec![
            Failure::IdentityMismatch {
                unit: unit(),
                what: "fastboot product".into(),
                expected: "fgdemo".into(),
                found: "otherphone".into(),
            },
            Failure::ActivationClientUnknown {
                unit: unit(),
                partition: "system_b".into(),
                location: "/priv-app/A.apk".into(),
                found,
                expected,
                work_order: "WO-1".into(),
                needed_region: RegionCode::parse("00WW").unwrap(),
            },
            Failure::VerifyMismatch {
                unit: unit(),
                partition: "boot_a".into(),
                what: "SHA-256".into(),
                expected: expected.short(),
                found: found.short(),
            },
            Failure::SlotMismatch {
                unit: unit(),
                expected_slot: "a".into(),
                found_slot: "b".into(),
                detail: "set_active was not honoured".into(),
            },
        ];
        for failure in cases {
            let text = failure.to_string();
            assert!(text.starts_with(failure.code().as_str()), "{text}");
            assert!(text.contains("slot 3 (serial 7PL0042)"), "{text}");
        }
        let missing = Failure::ActivationClientMissing {
            unit: UnitRef {
                slot: 1,
                serial: None,
            },
            partition: "system_a".into(),
            location: "/x.apk".into(),
            expected,
            work_order: "WO-1".into(),
            needed_region: RegionCode::parse("00WW").unwrap(),
        };
        assert_eq!(missing.code(), FailureCode::ActivationClientMissing);
        assert_eq!(missing.code().next_step(), NextStep::CallEngineer);
        assert_eq!(
            missing.sentence(),
            format!(
                "slot 1 (serial not yet read): system_a has no /x.apk: the activation client is \
                 missing; work order WO-1 needs the 00WW client {} (the phone holds another \
                 build: keep it aside for the engineer)",
                expected.short()
            )
        );
        let stale = Failure::BuildIdMismatch {
            unit: unit(),
            location: "super/system_a /system/build.prop".into(),
            expected: "FG.00EEA.2".into(),
            found: Some("FG.00EEA.1".into()),
            work_order: "WO-1".into(),
        };
        assert_eq!(
            stale.to_string(),
            "BUILD_ID_MISMATCH: slot 3 (serial 7PL0042): super/system_a /system/build.prop says \
             build FG.00EEA.1, work order WO-1 needs build FG.00EEA.2: the phone holds another \
             build than the manifest's"
        );
        assert_eq!(stale.code().next_step(), NextStep::CallEngineer);
    }

    #[test]
    fn a_swapped_unit_names_both_serials_the_port_and_what_to_do() {
        let failure = Failure::UnitSwapped {
            unit: unit(),
            port_path: "1-4.2".into(),
            during: "reboot-bootloader".into(),
            found_serial: "7PL0099".into(),
        };
        assert_eq!(failure.code(), FailureCode::IdentityMismatch);
        assert_eq!(
            failure.to_string(),
            "IDENTITY_MISMATCH: slot 3 (serial 7PL0042): another phone (serial 7PL0099) came \
             back on port 1-4.2 after reboot-bootloader; 7PL0042 was flashed but not verified: \
             put 7PL0042 back on a slot for a new attempt (7PL0099 gets an attempt of its own)"
        );
    }

    #[test]
    fn the_dashboard_gets_code_sentence_and_next_step() {
        let failure = Failure::Disconnected {
            unit: unit(),
            step: "flash system_a".into(),
        };
        let shown = Verdict::Fail(failure);
        assert_eq!(shown.result(), "FAIL");
        assert_eq!(shown.code(), Some(FailureCode::Disconnected));
        assert_eq!(
            shown.reason().as_deref(),
            Some("slot 3 (serial 7PL0042): the phone disconnected during flash system_a")
        );
        assert_eq!(shown.next_step(), NextStep::ReseatCable);
        assert_eq!(
            FailureCode::ActivationClientWrongRegion.next_step(),
            NextStep::CallEngineer
        );
        assert!(Verdict::Pass.is_pass());
        assert_eq!(
            serde_json::to_string(&Verdict::Pass).unwrap(),
            r#"{"result":"PASS","next_step":"pass_tray"}"#
        );
        let aborted = Verdict::Aborted(Interruption {
            unit: unit(),
            step: "flash system_a".into(),
            why: "the station was stopped (SIGTERM)".into(),
            not_flashed: None,
        });
        assert_eq!(
            serde_json::to_string(&aborted).unwrap(),
            r#"{"result":"ABORTED","reason":"slot 3 (serial 7PL0042): the station was stopped (SIGTERM) during flash system_a, before a verdict; the unit is not verified: flash it again","next_step":"flash_again","step":"flash system_a","why":"the station was stopped (SIGTERM)"}"#
        );
    }

    #[test]
    fn a_unit_the_fleet_kept_from_flashing_says_so_with_a_code_and_a_next_step() {
        for code in NotFlashed::ALL {
            assert_eq!(NotFlashed::parse(code.as_str()), Some(code));
        }
        let kept = Verdict::Aborted(Interruption {
            unit: unit(),
            step: "asking the fleet database for a place".into(),
            why: "work order WO-1 is complete across the fleet (40 of 40 passed, this station 12)"
                .into(),
            not_flashed: Some(NotFlashed::OrderComplete),
        });
        assert_eq!(kept.next_step(), NextStep::TakeOffOrderComplete);
        assert_eq!(
            kept.reason().unwrap(),
            "slot 3 (serial 7PL0042): not flashed (FLEET_ORDER_COMPLETE): work order WO-1 is \
             complete across the fleet (40 of 40 passed, this station 12); next: take off, order \
             complete"
        );
        let json = serde_json::to_value(&kept).unwrap();
        assert_eq!(json["not_flashed"], "FLEET_ORDER_COMPLETE");
        assert_eq!(json["next_step"], "take_off_order_complete");
        assert_eq!(NotFlashed::NoPlace.next_step(), NextStep::LeaveOnSlot);
        assert_eq!(NotFlashed::FleetOffline.next_step(), NextStep::LeaveOnSlot);
    }

    #[test]
    fn detail_is_the_sentence_without_the_unit_and_steps_are_physical() {
        let failure = Failure::Timeout {
            unit: unit(),
            step: "flash boot_a".into(),
            secs: 30,
        };
        assert_eq!(
            failure.detail(),
            "no answer during flash boot_a within 30 s"
        );
        assert_eq!(
            failure.sentence(),
            format!("slot 3 (serial 7PL0042): {}", failure.detail())
        );
        assert_eq!(Verdict::Pass.next_step().to_string(), "to pass tray");
        assert_eq!(
            FailureCode::DeviceFail.next_step().to_string(),
            "to reject bin"
        );
        assert_eq!(
            FailureCode::Timeout.next_step().to_string(),
            "re-seat cable"
        );
        assert_eq!(
            FailureCode::ImageHashMismatch.next_step().to_string(),
            "call engineer"
        );
        for code in FailureCode::ALL {
            assert_ne!(code.next_step(), NextStep::PassTray, "{code}");
        }
    }

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for code in FailureCode::ALL {
            assert_eq!(FailureCode::parse(code.as_str()), Some(code));
            assert!(seen.insert(code.as_str()));
            let _ = code.next_step();
        }
        assert_eq!(FailureCode::parse("NOPE"), None);
    }
}
