//! A unit in Qualcomm EDL: Sahara command mode for its identity (which also picks the signed
//! programmer), programmer upload, Firehose `program`/`patch` from the region's rawprogram and
//! patch files, `power reset`; the phone re-enumerates on the same port in fastboot and is
//! verified there, on the slot it will boot.

use std::path::PathBuf;
use std::sync::Arc;

use protocols::firehose::edl::start as start_programmer;
use protocols::firehose::flash::probe_sparse;
use protocols::firehose::package;
use protocols::firehose::{FirehoseConfig, PowerMode, StorageKind as FirehoseStorage, Timeouts};
use protocols::sahara::{InfoOutcome, SaharaHost, SaharaImages, SaharaTimeouts};

use crate::bus::DeviceKind;
use crate::config::StorageKind;
use crate::events::Phase;
use crate::journal::{ImageSent, Phase as JournalPhase, UnitMode};
use crate::run::UnitContext;
use crate::verdict::{Failure, Verdict};

use super::failure::{from_edl, from_firehose, from_sahara};
use super::{fastboot, Attempt};

pub fn run(attempt: &mut Attempt<'_>, unit: &mut UnitContext) -> Verdict {
    match flow(attempt, unit) {
        Ok(()) => Verdict::Pass,
        Err(failure) => Verdict::Fail(failure),
    }
}

fn flow(attempt: &mut Attempt<'_>, unit: &mut UnitContext) -> Result<(), Failure> {
    let context = attempt.context;
    let batch = &context.batch;
    let Some(plan) = batch.image_set.edl.clone() else {
        return Err(Failure::HostError {
            unit: attempt.unit(),
            step: "choosing the flash plan".into(),
            detail: format!(
                "region {} of product {} has no EDL plan, but the unit is in EDL mode; add \
                 `flash.edl` to the manifest or bring the unit up in fastboot",
                batch.region(),
                batch.product.name
            ),
        });
    };

    // Identify: Sahara command mode, then back to image transfer on the same session.
    unit.phase(Phase::Identify);
    let mut link = attempt.open_link(unit, "identify (Sahara)")?;
    let info = match SaharaHost::with_timeouts(&mut *link, SaharaTimeouts::default()).read_info() {
        Ok(InfoOutcome::Info(info)) => info,
        Ok(InfoOutcome::FirehoseAlreadyRunning { .. }) => {
            return Err(Failure::ProtocolError {
                unit: attempt.unit(),
                step: "identify (Sahara)".into(),
                detail: "a Firehose programmer is already running, so the phone's identity cannot \
                         be read; power-cycle the phone into EDL and re-seat it"
                    .into(),
            })
        }
        Err(e) => return Err(from_sahara(attempt.unit(), "identify (Sahara)", &e)),
    };
    let serial = info
        .serial
        .map(crate::bus::edl_serial_text)
        .unwrap_or_else(|| "unknown".to_string());
    attempt.identified(unit, &serial, UnitMode::Edl);
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
    // Pre-flight hashed every programmer; upload the one it checked.
    let programmer_path: PathBuf = batch
        .programmers
        .iter()
        .find(|p| p.path() == programmer.programmer.path)
        .map(|p| p.path().to_path_buf())
        .ok_or_else(|| Failure::HostError {
            unit: attempt.unit(),
            step: "choosing the programmer".into(),
            detail: format!(
                "programmer {} was not checked by pre-flight",
                programmer.programmer.path.display()
            ),
        })?;

    // Upload and configure.
    unit.phase(Phase::UploadProgrammer);
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
    let progress = Arc::new(unit.progress());
    let mut session = start_programmer(
        link,
        &SaharaImages::programmer(programmer_path),
        SaharaTimeouts::default(),
        config,
        progress,
    )
    .map_err(|e| from_edl(attempt.unit(), "upload programmer", &e))?;

    // Program and patch.
    attempt.journal_phase(unit, JournalPhase::FlashStarted);
    let mut files = Vec::new();
    for key in plan.rawprogram.iter().chain(plan.patch.iter()) {
        let image = batch.image(key).ok_or_else(|| Failure::HostError {
            unit: attempt.unit(),
            step: "loading the EDL package".into(),
            detail: format!("the image set has no checked file `{key}`"),
        })?;
        files.push(image.path().to_path_buf());
    }
    // The package's XML names its images by file name; each of those must be a file pre-flight
    // hashed, unchanged since (size, mtime, inode), or the unit is not flashed.
    let check_unchanged = |path: &std::path::Path| -> Result<(), Failure> {
        let image = batch
            .images
            .values()
            .find(|i| i.path() == path)
            .ok_or_else(|| Failure::HostError {
                unit: attempt.unit(),
                step: "loading the EDL package".into(),
                detail: format!(
                    "{} is named by the package but not listed in the region's files, so pre-flight \
                     did not hash it; add it to the manifest",
                    path.display()
                ),
            })?;
        image
            .open_stream()
            .map(drop)
            .map_err(|e| Failure::HostError {
                unit: attempt.unit(),
                step: "loading the EDL package".into(),
                detail: e.to_string(),
            })
    };
    let package = package::load(&files, &probe_sparse).map_err(|e| Failure::HostError {
        unit: attempt.unit(),
        step: "loading the EDL package".into(),
        detail: e.to_string(),
    })?;
    for program in package.programs() {
        check_unchanged(&program.path)?;
    }
    unit.phase(Phase::Flash {
        partition: plan.rawprogram.join("+"),
    });
    session
        .firehose
        .flash_package(&package)
        .map_err(|e| from_firehose(attempt.unit(), "program the EDL package", &e))?;
    for program in package.programs() {
        let Some(image) = batch
            .images
            .values()
            .find(|i| i.path() == program.path.as_path())
        else {
            continue;
        };
        attempt.result.images_sent.push(ImageSent {
            partition: program.label.clone(),
            file: image.key().to_string(),
            sha256: image.sha256(),
            bytes: image.size(),
        });
    }
    attempt.journal_phase(unit, JournalPhase::FlashDone);

    // Reset into the bootloader; the phone comes back on this port as fastboot.
    unit.phase(Phase::Reboot);
    session
        .firehose
        .power(PowerMode::Reset, 0)
        .map_err(|e| from_firehose(attempt.unit(), "power reset", &e))?;
    drop(session);
    attempt.wait_back(unit, DeviceKind::Fastboot, "EDL reset")?;
    let edl_serial = attempt.serial.clone();
    // Serial continuity cannot be checked here: Sahara reports the SoC's chip serial and
    // fastboot its own `serialno` (on Qualcomm bootloaders usually derived from the storage
    // device, often set by the OEM), and neither protocol exposes the other's. A phone swapped
    // in during this gap is identified and verified as itself (its fastboot serial goes into
    // the row); the flashed unit's EDL chip serial stays in the attempt's log.
    let client = fastboot::identify(attempt, unit)?;
    // The serial a phone reports in fastboot (its `serialno`) is the unit's serial from now on;
    // the EDL chip serial stays in the log.
    if let Some(edl) = edl_serial {
        tracing::info!(slot = attempt.slot, edl_serial = %edl, "unit re-enumerated as fastboot");
    }
    fastboot::verify_booting_slot(attempt, unit, client, None)
}
