//! A unit in fastboot: identify by `getvar`, flash the region's fastboot plan with slot handling,
//! `set_active` and `reboot-bootloader` (the phone that comes back must be the same unit), then
//! verify the activation client on the slot the phone will boot.

use std::sync::Arc;

use protocols::fastboot::{
    ClientOptions, DeviceIdentity, Fastboot, FlashOptions, RebootTarget, SlotChoice, Variable,
};
use protocols::transport::Transport;

use crate::config::{check_unit_code, FastbootStep, SlotSelection, UnitCodeSource};
use crate::events::Phase;
use crate::journal::ImageSent;
use crate::mode::Mode;
use crate::run::UnitContext;
use crate::verdict::{Failure, Verdict};
use crate::verified_image::StreamProof;

use super::failure::from_fastboot;
use super::{verify, Attempt};

pub type Client = Fastboot<Box<dyn Transport>>;

/// Fastboot's timeouts come from station.yaml: a command's whole answer (INFO lines included)
/// within the command timeout, a storage write's (`flash`, `erase`) within the partition timeout.
pub fn open(attempt: &Attempt<'_>, unit: &UnitContext, step: &str) -> Result<Client, Failure> {
    let link = attempt.open_link(unit, step)?;
    let timeouts = &attempt.context.station.limits.timeouts;
    let options = ClientOptions {
        response_timeout: timeouts.command,
        command_deadline: Some(timeouts.command),
        write_deadline: Some(timeouts.flash_partition),
        chunk_size: attempt.context.transfer_bytes,
        ..ClientOptions::default()
    };
    let mut client = Fastboot::with_options(link, options);
    client.set_progress(Arc::new(unit.progress()));
    Ok(client)
}

/// The whole fastboot flow.
pub fn run(attempt: &mut Attempt<'_>, unit: &mut UnitContext) -> Verdict {
    match flow(attempt, unit) {
        Ok(()) => Verdict::Pass,
        Err(failure) => Verdict::Fail(failure),
    }
}

fn flow(attempt: &mut Attempt<'_>, unit: &mut UnitContext) -> Result<(), Failure> {
    let mut client = identify(attempt, unit)?;
    let Some(plan) = attempt.context.batch.image_set.fastboot.clone() else {
        return Err(Failure::HostError {
            unit: attempt.unit(),
            step: "choosing the flash plan".into(),
            detail: format!(
                "region {} of product {} has no fastboot plan, but the unit is in fastboot mode; \
                 add `flash.fastboot` to the manifest or bring the unit up in EDL",
                attempt.context.batch.region(),
                attempt.context.batch.product.name
            ),
        });
    };
    flash(attempt, unit, &mut client, &plan.steps, plan.slot)?;
    if let Some(logical) = &plan.fastbootd {
        client = enter_fastbootd(attempt, unit, client)?;
        if let Some(key) = &logical.super_empty {
            update_super(attempt, unit, &mut client, key, logical.wipe)?;
        }
        flash(attempt, unit, &mut client, &logical.steps, plan.slot)?;
        client = reboot_bootloader(attempt, unit, client)?;
    }
    if let Some(slot) = plan.set_active {
        let step = format!("set_active {}", slot.letter());
        attempt.phase(
            unit,
            Phase::SetActive {
                slot_suffix: slot.suffix().into(),
            },
        );
        client
            .set_active(slot.letter())
            .map_err(|e| from_fastboot(attempt.unit(), &step, &e))?;
        // Bootloaders have answered OKAY to set_active and still booted the old slot (the slot
        // was marked unbootable, or the new attributes were never written back): only
        // `current-slot` read after a reboot shows the slot the phone will boot.
        client = reboot_bootloader(attempt, unit, client)?;
    }
    verify_booting_slot(attempt, unit, client, plan.set_active.map(|s| s.letter()))
}

const REBOOT_BOOTLOADER: &str = "reboot-bootloader";
const REBOOT_FASTBOOT: &str = "reboot-fastboot";

/// `reboot fastboot`: the phone leaves its bootloader for userspace fastboot (fastbootd) and
/// comes back on the same port with the same USB ids; it must be the same unit, and in
/// fastbootd (`is-userspace: yes`) before any logical partition is written.
fn enter_fastbootd(
    attempt: &mut Attempt<'_>,
    unit: &mut UnitContext,
    mut client: Client,
) -> Result<Client, Failure> {
    attempt.phase(unit, Phase::Reboot);
    match client.reboot_fastboot() {
        Ok(_) => {}
        Err(e) if e.is_disconnect() => {
            tracing::debug!("the phone left the bus before acknowledging {REBOOT_FASTBOOT}")
        }
        Err(e) => return Err(from_fastboot(attempt.unit(), REBOOT_FASTBOOT, &e)),
    }
    drop(client);
    attempt.wait_back(unit, Mode::Fastboot, REBOOT_FASTBOOT)?;
    let mut client = reidentify(attempt, unit, REBOOT_FASTBOOT)?;
    let userspace = client
        .is_userspace()
        .map_err(|e| from_fastboot(attempt.unit(), "getvar is-userspace", &e))?;
    if !userspace {
        return Err(Failure::DeviceFail {
            unit: attempt.unit(),
            step: REBOOT_FASTBOOT.into(),
            reason: "the phone came back in its bootloader, not in fastbootd (is-userspace: no); \
                     its recovery image may not start fastbootd"
                .into(),
        });
    }
    Ok(client)
}

/// `update-super` with the plan's `super_empty.img`: fastbootd lays out the slot's logical
/// partitions in `super` before they are written.
fn update_super(
    attempt: &mut Attempt<'_>,
    unit: &mut UnitContext,
    client: &mut Client,
    key: &str,
    wipe: bool,
) -> Result<(), Failure> {
    let step = format!("update-super{}", if wipe { " (wipe)" } else { "" });
    attempt.phase(
        unit,
        Phase::Flash {
            partition: "super (update-super)".into(),
        },
    );
    let image = attempt
        .context
        .batch
        .image(key)
        .ok_or_else(|| Failure::HostError {
            unit: attempt.unit(),
            step: step.clone(),
            detail: format!("the image set has no checked file `{key}`"),
        })?;
    let mut stream = image.open_stream().map_err(|e| Failure::HostError {
        unit: attempt.unit(),
        step: step.clone(),
        detail: e.to_string(),
    })?;
    client
        .update_super(&mut stream, image.size(), wipe)
        .map_err(|e| from_fastboot(attempt.unit(), &step, &e))?;
    attempt.result.images_sent.push(ImageSent {
        partition: "super (update-super)".into(),
        file: key.to_string(),
        sha256: image.sha256(),
        bytes: image.size(),
    });
    Ok(())
}

/// `reboot-bootloader`, wait for the phone to come back on its port, and make sure it is the
/// same unit.
fn reboot_bootloader(
    attempt: &mut Attempt<'_>,
    unit: &mut UnitContext,
    mut client: Client,
) -> Result<Client, Failure> {
    attempt.phase(unit, Phase::Reboot);
    match client.reboot(RebootTarget::Bootloader) {
        Ok(_) => {}
        // A rebooting phone may leave the bus before its OKAY reaches the host: gone is what
        // was asked for. Whether it comes back, and as the same unit, is checked next.
        Err(e) if e.is_disconnect() => {
            tracing::debug!("the phone left the bus before acknowledging {REBOOT_BOOTLOADER}")
        }
        Err(e) => return Err(from_fastboot(attempt.unit(), REBOOT_BOOTLOADER, &e)),
    }
    drop(client);
    attempt.wait_back(unit, Mode::Fastboot, REBOOT_BOOTLOADER)?;
    reidentify(attempt, unit, REBOOT_BOOTLOADER)
}

/// `getvar` the identity, with the configured retries, and check it against the product.
pub fn identify(attempt: &mut Attempt<'_>, unit: &mut UnitContext) -> Result<Client, Failure> {
    attempt.phase(unit, Phase::Identify);
    let (client, identity) = read_identity(attempt, unit)?;
    attempt.identified(unit, &identity.serialno, Mode::Fastboot)?;
    let mut client = check_product(attempt, client, identity)?;
    read_unit_code(attempt, unit, &mut client);
    Ok(client)
}

/// The unit's code for the line's MES, where the product says the bootloader publishes it
/// (`identity.unit_code: { getvar: imei }`). A phone that does not answer is not failed for it
/// (its flashing and verification stand); the operator is warned and the journal row has no
/// code.
fn read_unit_code(attempt: &mut Attempt<'_>, unit: &UnitContext, client: &mut Client) {
    let Some(source) = attempt.context.batch.product.identity.unit_code.clone() else {
        return;
    };
    let UnitCodeSource::Getvar(name) = &source;
    let answer = client
        .getvar(Variable::Other(name))
        .map_err(|e| e.to_string())
        .and_then(|code| check_unit_code(&code).map(|()| code));
    match answer {
        Ok(code) => attempt.record_unit_code(unit, &code, &source),
        Err(problem) => unit.warn(format!(
            "no unit code: `getvar {name}` (the product's identity.unit_code) gave: {problem}; \
             the unit is flashed as usual, its journal row has no code"
        )),
    }
}

/// Identify the phone that came back on the port after a fastboot reboot: its `serialno` must
/// be the unit's. Another phone is not taken for the unit: this attempt fails naming both
/// serials, and the phone on the port is handed to the supervisor as a new unit.
pub fn reidentify(
    attempt: &mut Attempt<'_>,
    unit: &mut UnitContext,
    after: &str,
) -> Result<Client, Failure> {
    attempt.phase(unit, Phase::Identify);
    let (client, identity) = read_identity(attempt, unit)?;
    if attempt
        .serial
        .as_deref()
        .is_some_and(|serial| serial != identity.serialno)
    {
        let failure = Failure::UnitSwapped {
            unit: attempt.unit(),
            port_path: unit.info().port_path.clone(),
            during: after.to_string(),
            found_serial: identity.serialno,
        };
        return Err(super::hand_over(unit, failure));
    }
    check_product(attempt, client, identity)
}

/// Open the link and `getvar` the identity, retrying as station.yaml allows.
fn read_identity(
    attempt: &Attempt<'_>,
    unit: &mut UnitContext,
) -> Result<(Client, DeviceIdentity), Failure> {
    let retries = attempt.context.station.limits.retries.identify;
    let mut tries = 0;
    let (client, identity) = loop {
        let outcome = open(attempt, unit, "identify").and_then(|mut client| {
            client
                .identify()
                .map(|identity| (client, identity))
                .map_err(|e| from_fastboot(attempt.unit(), "identify (getvar)", &e))
        });
        match outcome {
            Ok(found) => break found,
            Err(failure @ (Failure::Timeout { .. } | Failure::Disconnected { .. }))
                if tries < retries && !unit.is_cancelled() =>
            {
                tries += 1;
                unit.warn(format!(
                    "{failure}; retrying identification ({tries}/{retries})"
                ));
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(failure) => return Err(failure),
        }
    };
    Ok((client, identity))
}

/// The phone must be of the batch's product (`getvar product`).
fn check_product(
    attempt: &Attempt<'_>,
    client: Client,
    identity: DeviceIdentity,
) -> Result<Client, Failure> {
    let expected = attempt
        .context
        .batch
        .product
        .identity
        .fastboot_product
        .clone();
    match expected {
        Some(expected) if expected == identity.product => Ok(client),
        Some(expected) => Err(Failure::IdentityMismatch {
            unit: attempt.unit(),
            what: "fastboot product".into(),
            expected,
            found: identity.product,
        }),
        None => Err(Failure::IdentityMismatch {
            unit: attempt.unit(),
            what: "fastboot product".into(),
            expected: format!(
                "(the manifest of {} names no fastboot product)",
                attempt.context.batch.product.name
            ),
            found: identity.product,
        }),
    }
}

fn slot_choice(selection: SlotSelection) -> SlotChoice {
    match selection {
        SlotSelection::Active => SlotChoice::Current,
        SlotSelection::Other => SlotChoice::Other,
        SlotSelection::A => SlotChoice::Slot("a".into()),
        SlotSelection::B => SlotChoice::Slot("b".into()),
        SlotSelection::All => SlotChoice::All,
    }
}

/// Write `steps` in the mode the phone is in (the bootloader, or fastbootd for logical
/// partitions, which the client resizes to each image first).
fn flash(
    attempt: &mut Attempt<'_>,
    unit: &mut UnitContext,
    client: &mut Client,
    steps: &[FastbootStep],
    slot: SlotSelection,
) -> Result<(), Failure> {
    let options = FlashOptions {
        slot: slot_choice(slot),
        ..FlashOptions::default()
    };
    for step in steps {
        if unit.is_cancelled() {
            return Err(Failure::HostError {
                unit: attempt.unit(),
                step: format!("flash {}", step.partition),
                detail: "the batch was stopped".into(),
            });
        }
        attempt.phase(
            unit,
            Phase::Flash {
                partition: step.partition.clone(),
            },
        );
        let step_name = format!("flash {}", step.partition);
        let image = attempt
            .context
            .batch
            .image(&step.file)
            .ok_or_else(|| Failure::HostError {
                unit: attempt.unit(),
                step: step_name.clone(),
                detail: format!("the image set has no checked file `{}`", step.file),
            })?;
        // The stream re-checks the file against pre-flight's digest as it is sent: a file
        // changed on disk since never reaches the phone whole.
        let mut stream = image.open_stream().map_err(|e| Failure::HostError {
            unit: attempt.unit(),
            step: step_name.clone(),
            detail: e.to_string(),
        })?;
        let report = client
            .flash_image(&step.partition, &mut stream, &options)
            .map_err(|e| from_fastboot(attempt.unit(), &step_name, &e))?;
        if let StreamProof::Partial { hashed } = stream.proof() {
            tracing::debug!(
                file = %step.file,
                hashed,
                "image was sent in pieces; its digest was checked at pre-flight and the file is unchanged"
            );
        }
        for partition in report.partitions {
            attempt.result.images_sent.push(ImageSent {
                partition,
                file: step.file.clone(),
                sha256: image.sha256(),
                bytes: report.image_len,
            });
        }
    }
    Ok(())
}

/// Verify the slot that will boot: `current-slot` (which must be `expected_slot` when the plan
/// switched it), then the activation client on that slot's partition.
pub fn verify_booting_slot(
    attempt: &mut Attempt<'_>,
    unit: &mut UnitContext,
    mut client: Client,
    expected_slot: Option<&str>,
) -> Result<(), Failure> {
    let wanted = attempt.context.batch.image_set.activation_client.clone();
    let fail = |attempt: &Attempt<'_>, step: &str, e| from_fastboot(attempt.unit(), step, &e);
    let has_slot = client
        .has_slot(&wanted.partition)
        .map_err(|e| fail(attempt, "verify (has-slot)", e))?;
    // A client in a logical partition is read through `super`, which has no slots, but the
    // booting slot decides which metadata slot (and so which `system_<slot>`) is read.
    let slotted = has_slot || wanted.location.logical_partition().is_some();
    let mut booting = None;
    let partition = if slotted {
        let current = client
            .current_slot()
            .map_err(|e| fail(attempt, "verify (current-slot)", e))?;
        let Some(current) = current else {
            return Err(Failure::SlotMismatch {
                unit: attempt.unit(),
                expected_slot: expected_slot.unwrap_or("a slot").to_string(),
                found_slot: "none".into(),
                detail: format!(
                    "{} has slots but the phone reports no current-slot",
                    wanted.partition
                ),
            });
        };
        if let Some(expected) = expected_slot.filter(|e| *e != current) {
            return Err(Failure::SlotMismatch {
                unit: attempt.unit(),
                expected_slot: expected.to_string(),
                found_slot: current.clone(),
                detail: format!(
                    "the bootloader acknowledged `set_active {expected}`, but after \
                     {REBOOT_BOOTLOADER} current-slot is {current} (slot {expected} not kept: \
                     marked unbootable or never persisted); nothing on slot {current} was \
                     verified — remove the unit and send it to rework for its bootloader"
                ),
            });
        }
        let partition = if has_slot {
            format!("{}_{current}", wanted.partition)
        } else {
            wanted.partition.clone()
        };
        booting = Some(current);
        partition
    } else {
        wanted.partition.clone()
    };
    attempt.phase(
        unit,
        Phase::Verify {
            what: verify::phase(&partition, &wanted.location, booting.as_deref()),
        },
    );
    // Each ext4 block read is its own `fetch`: per-read progress would flood the operator's
    // screen, so verification reports its phase and its byte count only.
    client.set_progress(Arc::new(unit.stop_only()));
    let (_client, found) = verify::activation_client(attempt, client, &partition);
    let found = found?;
    attempt.result.activation_sha256_found = found.sha256;
    attempt.result.build_id_found = found.build.build_id().map(str::to_string);
    attempt.result.verify_method = Some(found.method);
    attempt.result.verify_bytes_read = Some(found.bytes_read);
    let logical = found.logical_partition.as_deref();
    match verify::judge(attempt, &partition, logical, found.sha256)
        .or_else(|| verify::judge_build(attempt, &partition, logical, &found.build))
    {
        None => {
            verify::log_pass(&partition, found.logical_partition.as_deref());
            Ok(())
        }
        Some(failure) => Err(failure),
    }
}
