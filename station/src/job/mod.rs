//! One unit's job, from detection to verdict: identify, flash the region's plan, verify the
//! activation client on the slot that will boot, and hand back a [`UnitResult`] for the journal.
//!
//! A unit arriving in fastboot runs the fastboot plan; one arriving in Qualcomm EDL runs the EDL
//! plan (Sahara, Firehose) and is either verified through Firehose before its reset
//! (`verify: edl_readback`), or power-reset into its bootloader and, once it re-enumerates as
//! fastboot on the same port, verified through fastboot like any other unit.

// A `Failure` is built at most once per unit attempt and carries the whole sentence; boxing it
// on every `?` would buy nothing.
#![allow(clippy::result_large_err)]

mod edl;
mod edl_verify;
mod failure;
mod fastboot;
mod outcome;
mod verify;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::config::StationConfig;
use crate::events::{EventKind, Phase, SlotNumber};
use crate::journal::{AttemptId, AttemptStart, Journal, Milestone};
use crate::logging::{UnitLog, UnitLogs};
use crate::mode::Mode;
use crate::preflight::CheckedBatch;
use crate::run::{UnitContext, UnitJob};
use crate::verdict::{Failure, Interruption, NotFlashed, UnitRef, Verdict};

pub use outcome::{JournalRecorder, UnitResult};

/// What every unit of a batch shares.
pub struct BatchContext {
    pub station: StationConfig,
    pub batch: CheckedBatch,
    pub journal: Arc<Mutex<Journal>>,
    /// Per-unit log files (None when the process has no flashgate logging installed, e.g. in
    /// library tests).
    pub unit_logs: Option<UnitLogs>,
    /// Largest bulk transfer one unit keeps in flight: capped so every slot fits the kernel's
    /// usbfs budget (`bus::usbfs::plan`).
    pub transfer_bytes: usize,
    /// The fleet database's rules (a shared quantity, serials seen elsewhere), when the
    /// station has one.
    pub fleet: Option<Arc<crate::fleet::FleetGate>>,
}

/// The job the supervisor starts for each unit.
pub struct StationJob {
    pub context: Arc<BatchContext>,
}

/// State of one unit's attempt while its job runs.
pub(crate) struct Attempt<'a> {
    pub context: &'a BatchContext,
    /// The unit's tracing span: everything logged inside goes to its own file once identified.
    pub span: tracing::Span,
    pub id: Option<AttemptId>,
    pub slot: SlotNumber,
    pub serial: Option<String>,
    /// How the unit was first identified (and flashed); a later re-identification after a
    /// re-enumeration (EDL → fastboot) updates the serial but keeps this.
    pub mode: Option<Mode>,
    /// The attempt's log file, once the unit's first serial named it.
    pub log: Option<UnitLog>,
    /// The milestones the journal row has a time for, so far.
    pub milestones: Vec<Milestone>,
    /// The phase the unit is in, as last shown.
    pub last_phase: Option<Phase>,
    pub result: UnitResult,
    /// Why the fleet refused the unit before it was flashed (its verdict is ABORTED), with the
    /// fleet's code when it holds or ends the batch.
    pub refused: Option<(String, Option<NotFlashed>)>,
}

impl<'a> Attempt<'a> {
    pub fn unit(&self) -> UnitRef {
        UnitRef {
            slot: self.slot,
            serial: self.serial.clone(),
        }
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.context
            .journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The unit is known: record it, and warn when it already passed under another work order.
    /// At its first identification the fleet database (if any) is asked for its place in the
    /// work order: a refused unit is not flashed.
    pub fn identified(
        &mut self,
        unit: &UnitContext,
        serial: &str,
        mode: Mode,
    ) -> Result<(), Failure> {
        let first = self.mode.is_none();
        self.record_identity(unit, serial, mode);
        if first {
            self.admit(unit, serial)?;
        }
        Ok(())
    }

    /// The fleet's word on the unit, before anything is written to it.
    fn admit(&mut self, unit: &UnitContext, serial: &str) -> Result<(), Failure> {
        let (Some(gate), Some(id)) = (&self.context.fleet, self.id) else {
            return Ok(());
        };
        let admission = gate.admit(id.0, serial, &self.context.journal);
        let (place, seen) = match admission {
            crate::fleet::Admission::Granted {
                place,
                seen_elsewhere,
            } => (place, seen_elsewhere),
            crate::fleet::Admission::Offline { why } => {
                unit.warn(format!("slot {}: unit {serial}: {why}", self.slot));
                ("offline", None)
            }
            crate::fleet::Admission::Refused { why, not_flashed } => {
                unit.warn(format!("slot {}: unit {serial}: {why}", self.slot));
                self.refused = Some((why.clone(), not_flashed));
                return Err(Failure::HostError {
                    unit: self.unit(),
                    step: "asking the fleet database for a place".into(),
                    detail: why,
                });
            }
        };
        if let Some(seen) = &seen {
            unit.warn(format!(
                "slot {}: serial {serial} {seen} (fleet database): the journal row is flagged",
                self.slot
            ));
        }
        if let Err(e) = self.journal().set_fleet_place(id, place, seen.as_deref()) {
            unit.warn(format!("journal: {e}"));
        }
        Ok(())
    }

    fn record_identity(&mut self, unit: &UnitContext, serial: &str, mode: Mode) {
        self.serial = Some(serial.to_string());
        unit.identified(serial);
        let Some(id) = self.id else { return };
        self.span.record("serial", serial);
        match (&self.log, &self.context.unit_logs) {
            // Identified again after a re-enumeration (EDL chip serial, then fastboot
            // serialno): one attempt keeps one log file, the one its journal row names.
            (Some(log), _) => tracing::info!(
                serial,
                log = %log.path().display(),
                "unit identified again (after re-enumeration); this attempt's log stays here"
            ),
            (None, Some(logs)) => {
                let attempt_no = u32::try_from(id.0).unwrap_or(u32::MAX);
                match logs.attach(&self.span, serial, attempt_no) {
                    Ok(log) => {
                        if let Err(e) = self.journal().set_log_path(id, log.path()) {
                            unit.warn(format!("journal: {e}"));
                        }
                        self.log = Some(log);
                    }
                    Err(e) => unit.warn(format!("unit log for {serial}: {e}")),
                }
            }
            (None, None) => {}
        }
        let mode = *self.mode.get_or_insert(mode);
        match self
            .journal()
            .identified(id, serial, mode, SystemTime::now())
        {
            Ok(prior) if !prior.is_empty() => unit.warn(format!(
                "serial {serial} already PASSED under work order(s) {}: the journal row is flagged",
                prior.join(", ")
            )),
            Ok(_) => {}
            Err(e) => unit.warn(format!("journal: {e}")),
        }
    }

    /// The unit's code for the line's MES, read from the phone: into the journal row.
    pub fn record_unit_code(
        &mut self,
        unit: &UnitContext,
        code: &str,
        source: &crate::config::UnitCodeSource,
    ) {
        tracing::info!(unit_code = code, source = %source, "unit code read");
        let Some(id) = self.id else { return };
        if let Err(e) = self.journal().unit_code(id, code, &source.to_string()) {
            unit.warn(format!("journal: {e}"));
        }
    }

    /// After a reboot or power reset: wait until a `kind` device is back on the unit's port.
    pub fn wait_back(
        &self,
        unit: &mut UnitContext,
        kind: Mode,
        after: &str,
    ) -> Result<(), Failure> {
        let deadline = self.context.station.limits.timeouts.reenumerate;
        match unit.wait_for_reenumeration(&[kind], deadline) {
            Ok(_) => Ok(()),
            Err(e @ crate::run::ReenumerationError::Timeout { .. }) => Err(Failure::Timeout {
                unit: self.unit(),
                step: format!("re-enumeration after {after} ({e})"),
                secs: deadline.as_secs(),
            }),
            Err(e @ crate::run::ReenumerationError::Cancelled { .. }) => Err(Failure::HostError {
                unit: self.unit(),
                step: format!("re-enumeration after {after}"),
                detail: e.to_string(),
            }),
            Err(crate::run::ReenumerationError::OtherKind {
                port_path, found, ..
            }) => Err(hand_over(
                unit,
                Failure::CameBackAsOtherKind {
                    unit: self.unit(),
                    port_path,
                    during: after.to_string(),
                    expected: kind.to_string(),
                    found: found.to_string(),
                },
            )),
        }
    }

    /// Open a link to the unit in its current mode; a unit no longer on its port is
    /// `DISCONNECTED`, anything else is the station's own failure.
    pub fn open_link(
        &self,
        unit: &UnitContext,
        step: &str,
    ) -> Result<Box<dyn protocols::transport::Transport>, Failure> {
        unit.open().map_err(|e| match e {
            crate::bus::BusError::NotPresent { .. } => Failure::Disconnected {
                unit: self.unit(),
                step: step.to_string(),
            },
            other => Failure::HostError {
                unit: self.unit(),
                step: step.to_string(),
                detail: other.to_string(),
            },
        })
    }

    /// The unit enters `phase`: shown on its slot, and the milestones it marks (flashing
    /// started or done, verification started) stamped in its journal row.
    pub fn phase(&mut self, unit: &UnitContext, phase: Phase) {
        for milestone in Milestone::reached(&self.milestones, self.last_phase.as_ref(), &phase) {
            self.stamp(unit, milestone);
        }
        self.last_phase = Some(phase.clone());
        unit.phase(phase);
    }

    fn stamp(&mut self, unit: &UnitContext, milestone: Milestone) {
        self.milestones.push(milestone);
        if let Some(id) = self.id {
            if let Err(e) = self.journal().milestone(id, milestone, SystemTime::now()) {
                unit.warn(format!("journal: {e}"));
            }
        }
    }

    /// The attempt's result: what the job gathered along the way, with its verdict.
    pub fn finish(mut self, unit: &UnitContext, verdict: Verdict) -> UnitResult {
        // Verification, once started, ends with the verdict.
        if self.milestones.contains(&Milestone::VerifyStarted)
            && !self.milestones.contains(&Milestone::VerifyDone)
        {
            self.stamp(unit, Milestone::VerifyDone);
        }
        if let Some(log) = &self.log {
            let lost = log.write_errors();
            if lost > 0 {
                unit.warn(format!(
                    "LOG WRITE FAILED: slot {}: {lost} line(s) of the unit log {} could not be \
                     written; check free space and permissions of the station's log_dir",
                    self.slot,
                    log.path().display()
                ));
            }
        }
        UnitResult {
            attempt: self.id,
            serial: self.serial,
            verdict,
            log: self.log,
            ..self.result
        }
    }
}

impl UnitJob<UnitResult> for StationJob {
    fn run(self: Box<Self>, unit: &mut UnitContext) -> UnitResult {
        let context = &*self.context;
        let batch = &context.batch;
        let start = AttemptStart {
            slot: unit.slot(),
            port_path: unit.info().port_path.clone(),
            station_id: context.station.station_id.clone(),
            line: context.station.line.clone(),
            work_order: batch.work_order.id.clone(),
            work_order_quantity: batch.work_order.quantity,
            product: batch.product.name.clone(),
            region: batch.region().as_str().to_string(),
            build_id: batch.image_set.build_id.clone(),
            manifest_sha256: batch.product.manifest_sha256,
            tool_version: format!("flashgate {}", env!("CARGO_PKG_VERSION")),
            log_path: None,
            started_at: unit.info().attempt_started,
            operator: context.station.operator.clone(),
            manifest_signed_by: batch.product.trust.signed_by(),
            engineering_mode: batch.product.trust.is_engineering(),
        };
        let begun = context
            .journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .begin(&start);
        let span = crate::logging::unit_span(
            unit.slot(),
            &unit.info().port_path,
            &batch.work_order.id,
            begun
                .as_ref()
                .map_or(0, |id| u32::try_from(id.0).unwrap_or(u32::MAX)),
        );
        let _entered = span.enter();
        let mut attempt = Attempt {
            context,
            span: span.clone(),
            id: None,
            slot: unit.slot(),
            serial: unit
                .device()
                .serial
                .clone()
                .filter(|_| unit.device().kind == Mode::Fastboot),
            mode: None,
            log: None,
            milestones: Vec::new(),
            last_phase: None,
            result: UnitResult::new(None, None, Verdict::Pass),
            refused: None,
        };
        match begun {
            Ok(id) => {
                attempt.id = Some(id);
                unit.info().set_record_id(id.0);
                // The verdict names the unit by the serial the bus shows until it identifies
                // itself; the row must be found under it even if it never does.
                if let Some(serial) = &attempt.serial {
                    if let Err(e) = attempt.journal().seen_as(id, serial) {
                        unit.warn(format!("journal: {e}"));
                    }
                }
            }
            Err(e) => {
                // No row, no flashing: the unit is not touched, and the supervisor stops the
                // batch because the journal does not answer.
                let interruption = Interruption {
                    unit: attempt.unit(),
                    step: "opening the journal row".into(),
                    why: format!("the journal did not answer ({e})"),
                    not_flashed: None,
                };
                unit.emit(EventKind::Warning {
                    slot: Some(unit.slot()),
                    message: interruption.to_string(),
                });
                return attempt.finish(unit, Verdict::Aborted(interruption));
            }
        }
        // A panic in the job (a bug, or a parser defect on hostile bytes) fails this unit only.
        let flow =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match unit.device().kind {
                Mode::Fastboot => fastboot::run(&mut attempt, unit),
                Mode::Edl => edl::run(&mut attempt, unit),
            }));
        let verdict = match flow {
            Ok(verdict) => verdict,
            Err(panic) => Verdict::Fail(Failure::HostError {
                unit: attempt.unit(),
                step: unit
                    .current_phase()
                    .map_or_else(|| "the unit's job".into(), |phase| phase.to_string()),
                detail: format!(
                    "it crashed ({}); the station goes on with the other units — report this \
                     unit's log to the flashgate engineers",
                    panic_message(panic.as_ref())
                ),
            }),
        };
        let verdict = match (verdict, attempt.refused.take()) {
            // Refused by the fleet before flashing: the unit is untouched, not failed.
            (Verdict::Fail(_), Some((why, not_flashed))) => {
                // A unit that waits for the fleet stays on its slot: the supervisor holds it
                // and starts it afresh when the fleet lets it.
                if matches!(
                    not_flashed,
                    Some(NotFlashed::NoPlace | NotFlashed::FleetOffline)
                ) {
                    unit.hand_over_device();
                }
                Verdict::Aborted(Interruption {
                    unit: attempt.unit(),
                    step: "asking the fleet database for a place".into(),
                    why,
                    not_flashed,
                })
            }
            (verdict, _) => verdict,
        };
        let verdict = match verdict {
            // A link cut, a timeout or a refused step after the station asked the job to stop is
            // the stop's doing, not the unit's; a verdict the job reached (a wrong client, a
            // mismatch) stands.
            Verdict::Fail(failure) if unit.is_cancelled() && failure.may_be_a_cut() => {
                Verdict::Aborted(Interruption {
                    unit: attempt.unit(),
                    step: failure_step(&failure),
                    why: unit
                        .stop_reason()
                        .unwrap_or_else(|| "the station was stopped".into()),
                    not_flashed: None,
                })
            }
            other => other,
        };
        attempt.finish(unit, verdict)
    }
}

/// The text a panic carried.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// The step a failure names, for the sentence of an attempt cut by a stop.
fn failure_step(failure: &Failure) -> String {
    match failure {
        Failure::DeviceFail { step, .. }
        | Failure::Timeout { step, .. }
        | Failure::Disconnected { step, .. }
        | Failure::ProtocolError { step, .. }
        | Failure::HostError { step, .. } => step.clone(),
        Failure::UnitSwapped { during, .. } | Failure::CameBackAsOtherKind { during, .. } => {
            during.clone()
        }
        Failure::IdentityMismatch { .. } => "identification".into(),
        Failure::ImageHashMismatch { .. } => "flashing".into(),
        Failure::ActivationClientWrongRegion { .. }
        | Failure::ActivationClientUnknown { .. }
        | Failure::ActivationClientMissing { .. }
        | Failure::BuildIdMismatch { .. }
        | Failure::SlotMismatch { .. }
        | Failure::VerifyMismatch { .. } => "verification".into(),
        // Only readers of the event stream hold one; no job cuts it.
        Failure::Relayed { .. } => "an earlier step".into(),
    }
}

/// The device now on the unit's port is not the unit (another phone, or the unit in another
/// mode): the attempt fails with `failure`, and the device is handed to the supervisor for an
/// attempt of its own. The sentence also goes above the rows, because the slot's row moves on
/// to the new device at once.
pub(crate) fn hand_over(unit: &mut UnitContext, failure: Failure) -> Failure {
    unit.warn(failure.to_string());
    unit.hand_over_device();
    failure
}
