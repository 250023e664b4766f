//! The station's event model: what the batch orchestrator tells its consumers (dashboard, plain
//! and JSON line output, logs). Plain data; `Serialize` so `--json` can emit one object per event.
//! No tokio, no terminal: the orchestrator emits through [`EventSink`], consumers decide.

mod progress;
mod sink;
mod wire;

use std::fmt;

use crate::mode::Mode;
use serde::{Deserialize, Serialize};

pub use crate::timestamp::now_unix_ms;
pub use progress::{SlotProgress, StopOnly};
pub use sink::{EventSink, Fanout, RecordingSink};

use crate::verdict::Verdict;

/// A slot number as configured in `station.yaml` (the physical USB port the operator sees).
pub type SlotNumber = u16;

/// One thing that happened at the station, stamped with wall-clock time. Deserialized by
/// readers of the station's event stream (see `wire.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Milliseconds since the Unix epoch (UTC).
    pub ts_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// Stamps `kind` with the current wall-clock time.
    pub fn now(kind: EventKind) -> Self {
        Self {
            ts_ms: now_unix_ms(),
            kind,
        }
    }

    pub fn at(ts_ms: u64, kind: EventKind) -> Self {
        Self { ts_ms, kind }
    }

    /// The slot this event concerns, if any (batch-wide events have none).
    pub fn slot(&self) -> Option<SlotNumber> {
        self.kind.slot()
    }
}

/// The station's vocabulary. Serialized with an `"event"` tag in snake_case, fields flattened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    BatchStarted(BatchInfo),
    /// A new unit appeared on a slot: everything shown for the previous unit is cleared.
    UnitDetected {
        slot: SlotNumber,
        port_path: String,
        mode: Mode,
        /// Known at detection for fastboot (USB iSerial); for EDL only after identification.
        serial: Option<String>,
    },
    /// Identification read the unit's serial number.
    UnitIdentified {
        slot: SlotNumber,
        serial: String,
    },
    /// The same unit re-enumerated on the same port path in another mode (EDL → fastboot).
    ModeChanged {
        slot: SlotNumber,
        mode: Mode,
    },
    PhaseChanged {
        slot: SlotNumber,
        phase: Phase,
    },
    /// Bulk data of the current phase: `done` of `total` bytes (`total` 0 when unknown).
    BytesProgress {
        slot: SlotNumber,
        done: u64,
        total: u64,
    },
    /// A line the device sent (fastboot INFO/TEXT, Firehose `<log>`).
    DeviceLog {
        slot: SlotNumber,
        line: String,
    },
    /// Something the operator or engineer should notice that is not a verdict.
    Warning {
        slot: Option<SlotNumber>,
        message: String,
    },
    /// Emitted only after the verdict row is committed to the journal.
    Verdict {
        slot: SlotNumber,
        serial: Option<String>,
        verdict: Verdict,
    },
    /// The operator took the unit off the slot (or it vanished before a verdict).
    UnitRemoved {
        slot: SlotNumber,
    },
    /// The station was asked to stop (a signal, or the journal stopped answering): running
    /// units are cut at their next safe point and recorded, nothing new starts.
    Stopping {
        why: String,
        units_running: u32,
    },
    BatchFinished(BatchSummary),
    /// The fleet holds the station (`why`: no place free, or the database unreachable under
    /// `fleet.when_offline: stop`): no new unit starts, arriving ones wait on their slots
    /// unflashed; `None`: the hold is lifted.
    Holding {
        why: Option<String>,
    },
    /// The fleet sync's view changed: rows waiting to be shipped, the database reachable or
    /// not (only at a station with a fleet database).
    FleetSync(FleetSyncState),
}

/// The outbox to the fleet database, as its sender last saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetSyncState {
    /// Finished attempts in the journal the fleet database has not committed.
    pub backlog: u64,
    /// Attempts of this journal the fleet database holds.
    pub shipped: u64,
    /// When the oldest waiting attempt finished (ms since the epoch).
    pub oldest_unshipped_ms: Option<i64>,
    /// Whether the last try reached the database.
    pub reachable: bool,
    /// Why the last try failed.
    pub error: Option<String>,
}

impl EventKind {
    pub fn slot(&self) -> Option<SlotNumber> {
        match self {
            EventKind::UnitDetected { slot, .. }
            | EventKind::UnitIdentified { slot, .. }
            | EventKind::ModeChanged { slot, .. }
            | EventKind::PhaseChanged { slot, .. }
            | EventKind::BytesProgress { slot, .. }
            | EventKind::DeviceLog { slot, .. }
            | EventKind::Verdict { slot, .. }
            | EventKind::UnitRemoved { slot } => Some(*slot),
            EventKind::Warning { slot, .. } => *slot,
            EventKind::BatchStarted(_)
            | EventKind::FleetSync(_)
            | EventKind::Holding { .. }
            | EventKind::Stopping { .. }
            | EventKind::BatchFinished(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchInfo {
    pub station_id: String,
    pub work_order: String,
    pub product: String,
    pub region: String,
    pub build_id: String,
    /// Units the work order asks for.
    pub quantity: u32,
    /// Distinct units that passed under the work order in earlier runs (from the journal).
    pub passed_before: u32,
    pub slots: Vec<SlotInfo>,
    /// Consecutive failures with one code after which the screen says to stop the line (0: never).
    pub stop_line_after: u32,
    /// Who runs the station, when known (`--operator` or station.yaml).
    pub operator: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    pub slot: SlotNumber,
    /// USB port path (`1-4.2`), or `sim:N` for a simulated slot.
    pub port_path: String,
}

/// What a unit's task is doing now. `Display` gives the operator's wording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    Identify,
    /// Sahara upload of the Firehose programmer.
    UploadProgrammer,
    Flash {
        partition: String,
    },
    /// Firehose `<patch>` / GPT fix-ups.
    Patch,
    SetActive {
        slot_suffix: String,
    },
    Verify {
        what: String,
    },
    Reboot,
    WaitingForReenumeration,
    /// A step the orchestrator names itself (shown as given).
    Other {
        name: String,
    },
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Identify => f.write_str("identify"),
            Phase::UploadProgrammer => f.write_str("upload programmer"),
            Phase::Flash { partition } => write!(f, "flash {partition}"),
            Phase::Patch => f.write_str("patch"),
            Phase::SetActive { slot_suffix } => write!(f, "set active {slot_suffix}"),
            Phase::Verify { what } if what.is_empty() => f.write_str("verify"),
            Phase::Verify { what } => write!(f, "verify {what}"),
            Phase::Reboot => f.write_str("reboot"),
            Phase::WaitingForReenumeration => f.write_str("waiting for re-enumeration"),
            Phase::Other { name } => f.write_str(name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BatchSummary {
    pub passed: u32,
    pub failed: u32,
    /// Attempts the station cut before a verdict (a stop): neither passed nor failed.
    pub aborted: u32,
    /// Attempts the fleet kept from flashing (nothing written to the unit): not counted as
    /// aborted.
    #[serde(default)]
    pub not_flashed: u32,
    /// Why the batch ended on the fleet's word: the work order complete across the fleet.
    #[serde(default)]
    pub fleet_complete: Option<String>,
    /// The work order's quantity, when the batch works to one.
    pub ordered: Option<u32>,
    /// Distinct units passed under the work order in every run the journal holds (this run's
    /// passes included), when counted.
    pub units_passed: Option<u32>,
    /// Failure code → number of unit attempts that failed with it.
    pub failures_by_code: std::collections::BTreeMap<String, u32>,
    pub elapsed_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_flat_and_tagged() {
        let event = Event::at(
            1_700_000_000_000,
            EventKind::Verdict {
                slot: 3,
                serial: Some("7PL0003".into()),
                verdict: Verdict::Fail(crate::verdict::Failure::ActivationClientWrongRegion {
                    unit: crate::verdict::UnitRef {
                        slot: 3,
                        serial: Some("7PL0003".into()),
                    },
                    partition: "system_a".into(),
                    location: "/x.apk".into(),
                    found_region: crate::config::RegionCode::parse("00CN").unwrap(),
                    work_order: "WO-1".into(),
                    needed_region: crate::config::RegionCode::parse("00EEA").unwrap(),
                }),
            },
        );
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"ts_ms":1700000000000,"event":"verdict","slot":3,"serial":"7PL0003","verdict":{"result":"FAIL","code":"ACTIVATION_CLIENT_WRONG_REGION","reason":"slot 3 (serial 7PL0003): system_a /x.apk has the 00CN client, work order WO-1 needs 00EEA","next_step":"call_engineer"}}"#
        );
        let phase = Event::at(
            5,
            EventKind::PhaseChanged {
                slot: 1,
                phase: Phase::Flash {
                    partition: "boot_a".into(),
                },
            },
        );
        assert_eq!(
            serde_json::to_string(&phase).unwrap(),
            r#"{"ts_ms":5,"event":"phase_changed","slot":1,"phase":{"phase":"flash","partition":"boot_a"}}"#
        );
    }

    #[test]
    fn phase_wording() {
        assert_eq!(
            Phase::Flash {
                partition: "system_a".into()
            }
            .to_string(),
            "flash system_a"
        );
        assert_eq!(
            Phase::Verify {
                what: String::new()
            }
            .to_string(),
            "verify"
        );
        assert_eq!(
            Phase::WaitingForReenumeration.to_string(),
            "waiting for re-enumeration"
        );
        assert_eq!(
            crate::verdict::NextStep::ReseatCable.to_string(),
            "re-seat cable"
        );
    }
}
