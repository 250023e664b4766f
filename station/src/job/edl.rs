//! A unit in Qualcomm EDL: Sahara command mode for its identity (which also picks the signed
//! programmer), programmer upload, Firehose `program`/`patch` from the region's rawprogram and
//! patch files, then verification on the slot it will boot, by the product's route:
//! - `edl_readback`: read back through the same Firehose session before the reset
//!   (`edl_verify.rs`); the unit passes when its verified reset is acknowledged and is not
//!   followed after it (it may boot Android). A unit that fails is not reset: it stays in EDL,
//!   where it cannot boot the wrong client and can be flashed again.
//! - otherwise: `power reset`; the phone re-enumerates on the same port in fastboot and is
//!   verified there through the bootloader.

use std::path::PathBuf;
use std::sync::Arc;

use protocols::firehose::edl::{start as start_programmer, EdlSession};
use protocols::firehose::package::{Package, Step};
use protocols::firehose::{FirehoseConfig, PowerMode, StorageKind as FirehoseStorage, Timeouts};
use protocols::sahara::{DeviceInfo, InfoOutcome, SaharaHost, SaharaImages, SaharaTimeouts};
use protocols::transport::Transport;

use crate::config::{EdlPlan, StorageKind, VerifyMethod};
use crate::events::Phase;
use crate::journal::{ImageSent, Milestone};
use crate::mode::Mode;
use crate::run::UnitContext;
use crate::verdict::{Failure, Verdict};

use super::failure::{from_edl, from_firehose, from_sahara};
use super::{edl_verify, fastboot, Attempt};

pub(super) type Session = EdlSession<Box<dyn Transport>>;

pub fn run(attempt: &mut Attempt<'_>, unit: &mut UnitContext) -> Verdict {
    match flow(attempt, unit) {
        Ok(()) => Verdict::Pass,
        Err(failure) => Verdict::Fail(failure),
    }
}

/// The whole EDL flow, step by step.
fn flow(attempt: &mut Attempt<'_>, unit: &mut UnitContext) -> Result<(), Failure> {
    let plan = choose_plan(attempt)?;
    let (link, identity) = identify(attempt, unit)?;
    let programmer = choose_programmer(attempt, &identity)?;
    let mut session = upload_programmer(attempt, unit, link, programmer, &plan)?;
    flash_package(attempt, unit, &mut session, &plan)?;
    if attempt.context.batch.image_set.activation_client.verify == VerifyMethod::EdlReadback {
        edl_verify::before_reset(attempt, unit, &mut session)?;
        attempt.stamp(unit, Milestone::VerifyDone);
        // The verdict is known; the reset only releases the unit. Its ACK (or the link
        // dropping as the phone resets) ends the job: whatever the phone boots next is no
        // longer the station's, and a device that comes back on the slot is a new attempt.
        return reset(attempt, unit, session);
    }
    reset_to_bootloader(attempt, unit, session)?;
    // Serial continuity cannot be checked here: Sahara reports the SoC's chip serial and
    // fastboot its own `serialno` (on Qualcomm bootloaders usually derived from the storage
    // device, often set by the OEM), and neither protocol exposes the other's. A phone swapped
    // in during this gap is identified and verified as itself (its fastboot serial goes into
    // the row); the flashed unit's EDL chip serial stays in the attempt's log.
    let edl_serial = attempt.serial.clone();
    let client = fastboot::identify(attempt, unit)?;
    if let Some(edl) = edl_serial {
        tracing::info!(slot = attempt.slot, edl_serial = %edl, "unit re-enumerated as fastboot");
    }
    fastboot::verify_booting_slot(attempt, unit, client, None)
}

/// The region's EDL plan; a unit in EDL for a region without one is a station set-up fault.
fn choose_plan(attempt: &Attempt<'_>) -> Result<EdlPlan, Failure> {
    let batch = &attempt.context.batch;
    batch
        .image_set
        .edl
        .clone()
        .ok_or_else(|| Failure::HostError {
            unit: attempt.unit(),
            step: "choosing the flash plan".into(),
            detail: format!(
                "region {} of product {} has no EDL plan, but the unit is in EDL mode; add \
             `flash.edl` to the manifest or bring the unit up in fastboot",
                batch.region(),
                batch.product.name
            ),
        })
}

/// Sahara command mode: the unit's chip serial, HW id and OEM PK hash. The link stays open for
/// the upload on the same session.
fn identify(
    attempt: &mut Attempt<'_>,
    unit: &mut UnitContext,
) -> Result<(Box<dyn Transport>, DeviceInfo), Failure> {
    const STEP: &str = "identify (Sahara)";
    attempt.phase(unit, Phase::Identify);
    let mut link = attempt.open_link(unit, STEP)?;
    let info = match SaharaHost::with_timeouts(&mut *link, SaharaTimeouts::default()).read_info() {
        Ok(InfoOutcome::Info(info)) => info,
        Ok(InfoOutcome::FirehoseAlreadyRunning { .. }) => {
            return Err(Failure::ProtocolError {
                unit: attempt.unit(),
                step: STEP.into(),
                detail: "a Firehose programmer is already running, so the phone's identity cannot \
                         be read; power-cycle the phone into EDL and re-seat it"
                    .into(),
            })
        }
        Err(e) => return Err(from_sahara(attempt.unit(), STEP, &e)),
    };
    let serial = info
        .serial
        .map(crate::bus::edl_serial_text)
        .unwrap_or_else(|| "unknown".to_string());
    attempt.identified(unit, &serial, Mode::Edl)?;
    Ok((link, info))
}

/// The signed programmer for this SoC and OEM key, as pre-flight hashed it.
fn choose_programmer(attempt: &Attempt<'_>, info: &DeviceInfo) -> Result<PathBuf, Failure> {
    let batch = &attempt.context.batch;
    let hw_id = info
        .hw_id
        .map(|h| h.as_u64())
        .or_else(|| info.chip_id_v3.map(|c| u64::from(c.chip_identifier)));
    let pk_hash = info.oem_pk_hash.clone().unwrap_or_default();
    let programmer = hw_id
        .and_then(|hw| batch.product.identity.programmer_for(hw, &pk_hash))
        .ok_or_else(|| Failure::IdentityMismatch {
            unit: attempt.unit(),
            what: "EDL HW id and OEM PK hash".into(),
            expected: batch
                .product
                .identity
                .edl
                .iter()
                .map(|e| format!("0x{:016x}/{}", e.hw_id, hex::encode(&e.oem_pk_hash)))
                .collect::<Vec<_>>()
                .join(" or "),
            found: format!(
                "{}/{}",
                hw_id.map_or("unknown".into(), |h| format!("0x{h:016x}")),
                hex::encode(&pk_hash)
            ),
        })?;
    batch
        .programmers
        .iter()
        .find(|p| p.path() == programmer.programmer.path)
        .map(|p| p.send_path().to_path_buf())
        .ok_or_else(|| Failure::HostError {
            unit: attempt.unit(),
            step: "choosing the programmer".into(),
            detail: format!(
                "programmer {} was not checked by pre-flight",
                programmer.programmer.path.display()
            ),
        })
}

/// Sahara upload of the programmer, then Firehose `configure` for the plan's storage.
fn upload_programmer(
    attempt: &mut Attempt<'_>,
    unit: &UnitContext,
    link: Box<dyn Transport>,
    programmer: PathBuf,
    plan: &EdlPlan,
) -> Result<Session, Failure> {
    attempt.phase(unit, Phase::UploadProgrammer);
    let context = attempt.context;
    let timeouts = &context.station.limits.timeouts;
    let config = FirehoseConfig {
        storage: match plan.storage {
            StorageKind::Ufs => FirehoseStorage::Ufs,
            StorageKind::Emmc => FirehoseStorage::Emmc,
        },
        timeouts: Timeouts {
            response: timeouts.command,
            ..Timeouts::default()
        },
        max_payload: context
            .transfer_bytes
            .min(FirehoseConfig::default().max_payload),
        ..FirehoseConfig::default()
    };
    start_programmer(
        link,
        &SaharaImages::programmer(programmer),
        SaharaTimeouts::default(),
        config,
        Arc::new(unit.progress()),
    )
    .map_err(|e| from_edl(attempt.unit(), "upload programmer", &e))
}

/// Firehose `program` and `patch` of the region's package; what was sent goes into the row.
fn flash_package(
    attempt: &mut Attempt<'_>,
    unit: &UnitContext,
    session: &mut Session,
    plan: &EdlPlan,
) -> Result<(), Failure> {
    let package = load_package(attempt)?;
    attempt.phase(
        unit,
        Phase::Flash {
            partition: plan.rawprogram.join("+"),
        },
    );
    session
        .firehose
        .flash_package(&package)
        .map_err(|e| from_firehose(attempt.unit(), "program the EDL package", &e))?;
    let batch = &attempt.context.batch;
    for program in package.programs() {
        let Some(image) = batch
            .images
            .values()
            .find(|i| i.send_path() == program.path.as_path())
        else {
            continue;
        };
        // The programmer read the copy by its path: it must still be the sealed file.
        image.check_unchanged().map_err(|e| Failure::HostError {
            unit: attempt.unit(),
            step: "program the EDL package".into(),
            detail: e.to_string(),
        })?;
        attempt.result.images_sent.push(ImageSent {
            partition: program.label.clone(),
            file: image.key().to_string(),
            sha256: image.sha256(),
            bytes: image.size(),
        });
    }
    Ok(())
}

/// The package pre-flight parsed and checked from the bytes it hashed; every image it names
/// must still be the file pre-flight hashed (size, mtime, inode), or the unit is not flashed.
/// Its programs read the station's private copies where pre-flight made them.
fn load_package(attempt: &Attempt<'_>) -> Result<Package, Failure> {
    const STEP: &str = "loading the EDL package";
    let batch = &attempt.context.batch;
    let host_error = |detail: String| Failure::HostError {
        unit: attempt.unit(),
        step: STEP.into(),
        detail,
    };
    let mut package = batch
        .edl_package
        .clone()
        .ok_or_else(|| host_error("pre-flight checked no EDL package for this region".into()))?;
    for step in &mut package.steps {
        let Step::Program(program) = step else {
            continue;
        };
        let image = batch
            .images
            .values()
            .find(|i| i.path() == program.path)
            .ok_or_else(|| {
                host_error(format!(
                    "{} is named by the package but not among the files pre-flight hashed",
                    program.path.display()
                ))
            })?;
        image
            .check_unchanged()
            .map_err(|e| host_error(e.to_string()))?;
        program.path = image.send_path().to_path_buf();
    }
    Ok(package)
}

/// Firehose `power reset`: the phone's boot chain brings it back on this port in its
/// bootloader (fastboot).
fn reset_to_bootloader(
    attempt: &mut Attempt<'_>,
    unit: &mut UnitContext,
    session: Session,
) -> Result<(), Failure> {
    reset(attempt, unit, session)?;
    attempt.wait_back(unit, Mode::Fastboot, "EDL reset")
}

/// Firehose `power reset`, acknowledged (or the link dropping as the phone resets); a refused
/// or unanswered reset fails the unit, which is still in EDL.
fn reset(
    attempt: &mut Attempt<'_>,
    unit: &mut UnitContext,
    mut session: Session,
) -> Result<(), Failure> {
    attempt.phase(unit, Phase::Reboot);
    session
        .firehose
        .power(PowerMode::Reset, 0)
        .map_err(|e| from_firehose(attempt.unit(), "power reset", &e))
}
