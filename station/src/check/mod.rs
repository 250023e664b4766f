//! `flashgate check`: everything `run` would refuse, found before a batch and without a phone.
//! The configs, the whole pre-flight (every image file hashed, the plan's sizes and EDL package,
//! the activation client), the slots against the plan, the journal and log folders, and — for a
//! line on real USB — the udev rules and the user's group. Nothing is written: the journal is
//! read without taking its lock, so a running station is seen, not disturbed.

mod folders;
mod udev;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{SlotBinding, StationConfig};
use crate::journal::{Journal, JournalError};
use crate::mode::Mode;
use crate::preflight::{self, CheckedBatch, PreflightError};

pub use folders::writable_folder;
pub use udev::{UdevRules, SHIPPED_RULES};

/// How a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Worth knowing; does not stop a batch.
    Note,
    /// `run` would refuse, or phones would fail.
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Note => "note",
            Self::Fail => "FAIL",
        }
    }
}

/// One line of the check's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub status: Status,
    /// What was checked: `station`, `work order`, `image`, `plan`, `journal`, `logs`, `udev`…
    pub subject: &'static str,
    pub text: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line per finding, whatever the messages hold.
        let text = self.text.replace('\n', " ");
        write!(f, "{:<4} {}: {text}", self.status.as_str(), self.subject)
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub station_file: PathBuf,
    pub work_order_file: PathBuf,
    /// The run to check is `run --sim N`: simulated phones, the simulated runs' journal and
    /// logs, no USB.
    pub simulated: bool,
    /// Where udev rules and groups are looked up (the real system outside tests).
    pub udev: UdevRules,
}

/// Every finding, in the order a line engineer fixes them. Stops early only where nothing
/// further can be known (no station file, no work order, no manifest).
pub fn check(request: &CheckRequest) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut say = |status, subject, text: String| {
        findings.push(Finding {
            status,
            subject,
            text,
        })
    };
    let station = match StationConfig::load(&request.station_file) {
        Ok(station) => station,
        Err(e) => {
            say(Status::Fail, "station", e.to_string());
            return findings;
        }
    };
    say(
        Status::Ok,
        "station",
        format!(
            "{} loaded ({}, {} slot(s), {} at once)",
            station.station_id,
            station.source.display(),
            station.slots.len(),
            station.limits.parallel_slots
        ),
    );
    let work_order = match preflight::load_work_order(&request.work_order_file) {
        Ok(order) => order,
        Err(e) => {
            say(Status::Fail, "work order", e.to_string());
            return findings;
        }
    };
    say(
        Status::Ok,
        "work order",
        format!(
            "{}: product {}, region {}, {} ordered",
            work_order.id, work_order.product, work_order.region, work_order.quantity
        ),
    );
    let product = match preflight::load_product(&station, &work_order) {
        Ok(product) => product,
        Err(e) => {
            let subject = match e {
                PreflightError::ManifestUntrusted(_) => "manifest signature",
                _ => "product",
            };
            say(Status::Fail, subject, e.to_string());
            return findings;
        }
    };
    match (
        product.trust.signed_by(),
        product.trust.engineering_warning(),
    ) {
        (_, Some(warning)) => say(Status::Note, "manifest signature", warning),
        (Some(key), None) => say(
            Status::Ok,
            "manifest signature",
            format!(
                "{} signed by {key}, a key station.yaml pins",
                product.source.display()
            ),
        ),
        (None, None) => {}
    }
    say(
        Status::Ok,
        "product",
        format!(
            "{} loaded ({}, regions {})",
            product.name,
            product.source.display(),
            product
                .regions
                .keys()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let station = if request.simulated {
        station.for_simulated_phones()
    } else {
        station
    };

    match preflight::preflight_findings(&product, &work_order) {
        Ok(batch) => {
            say(Status::Ok, "pre-flight", preflight_summary(&batch));
            for (status, text) in plan_findings(&station, &batch, request.simulated) {
                say(status, "plan", text);
            }
        }
        Err(refusals) => {
            for refusal in refusals {
                say(Status::Fail, subject_of(&refusal), refusal.to_string());
            }
        }
    }

    for (status, text) in journal_findings(&station.journal, &work_order.id, work_order.quantity) {
        say(status, "journal", text);
    }
    match writable_folder(&station.log_dir) {
        Ok(how) => say(
            Status::Ok,
            "logs",
            format!("{} {how}", station.log_dir.display()),
        ),
        Err(why) => say(
            Status::Fail,
            "logs",
            format!(
                "{}: {why}; create it for the station's user or correct `log_dir` in {}",
                station.log_dir.display(),
                station.source.display()
            ),
        ),
    }

    let (status, text) = station_key_finding(&station);
    say(status, "station key", text);

    let on_usb = !request.simulated
        && station
            .slots
            .iter()
            .any(|s| matches!(s.binding, SlotBinding::UsbPort(_)));
    if on_usb {
        for (status, text) in request.udev.findings() {
            say(status, "udev", text);
        }
    } else {
        say(
            Status::Note,
            "udev",
            "not checked: simulated phones need no USB access (udev rules and group are \
             checked for a station whose slots are USB ports)"
                .to_string(),
        );
    }
    findings
}

/// Whether the station can sign its unit proofs, as `run` will load its key.
fn station_key_finding(station: &StationConfig) -> (Status, String) {
    use crate::trust::station_key::{key_id, parse_public_key, StationSigner};
    let Some(key) = &station.station_key else {
        return (
            Status::Note,
            "none: passes will be journaled without a signed unit proof (`station_key` in \
             station.yaml; `flashgate station keygen` makes one; simulated phones are never \
             signed for)"
                .to_string(),
        );
    };
    let loaded = parse_public_key(&key.public_key)
        .and_then(|pinned| StationSigner::load(&key.secret_key_file, &pinned));
    match loaded {
        Ok(signer) if signer.is_demo() => (
            Status::Note,
            format!(
                "flashgate's published DEMO key ({}): its unit proofs prove nothing; a line \
                 station needs its own (`flashgate station keygen`)",
                key.secret_key_file.display()
            ),
        ),
        Ok(signer) => (
            Status::Ok,
            format!(
                "{} signs unit proofs (key id {})",
                key.secret_key_file.display(),
                key_id(signer.public_key())
            ),
        ),
        Err(e) => (Status::Fail, e.to_string()),
    }
}

/// Whether any finding stops the batch.
pub fn failed(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.status == Status::Fail)
}

fn subject_of(refusal: &PreflightError) -> &'static str {
    match refusal {
        PreflightError::Image { .. } => "image",
        PreflightError::ImageTooLarge(_)
        | PreflightError::EdlPackage { .. }
        | PreflightError::EdlPackageUnlisted { .. }
        | PreflightError::EdlClientNotWritten { .. } => "plan",
        PreflightError::ActivationClientWrongRegion(_)
        | PreflightError::ActivationClientUnknown(_)
        | PreflightError::ActivationClientUnreadable(_)
        | PreflightError::ActivationClientMissing(_) => "activation client",
        PreflightError::BuildIdMismatch(_) => "build identity",
        PreflightError::ManifestUntrusted(_) => "manifest signature",
        PreflightError::Config(_)
        | PreflightError::UnknownWorkOrder { .. }
        | PreflightError::UnknownProduct { .. }
        | PreflightError::ProductMismatch { .. }
        | PreflightError::RegionMissing { .. } => "work order",
    }
}

fn preflight_summary(batch: &CheckedBatch) -> String {
    format!(
        "build {} of region {}: {} file(s) and {} programmer(s) match the manifest ({} bytes \
         hashed); activation client {} = {} (allow-listed for {})",
        batch.image_set.build_id,
        batch.region(),
        batch.images.len(),
        batch.programmers.len(),
        batch.bytes_hashed,
        batch.image_set.activation_client.location,
        batch.activation.sha256.short(),
        batch.region(),
    )
}

/// The plan against the station: which modes it can flash, and whether the station's phones
/// can be identified and flashed by it.
fn plan_findings(
    station: &StationConfig,
    batch: &CheckedBatch,
    simulated: bool,
) -> Vec<(Status, String)> {
    let mut out = Vec::new();
    let set = &batch.image_set;
    let mut routes = Vec::new();
    if let Some(plan) = &set.fastboot {
        let fastbootd = plan.fastbootd.as_ref().map_or(String::new(), |d| {
            format!(", {} in fastbootd", d.steps.len())
        });
        routes.push(format!(
            "fastboot: {} partition(s){fastbootd}, slot {}",
            plan.steps.len(),
            plan.slot.as_str()
        ));
    }
    if let (Some(plan), Some(package)) = (&set.edl, &batch.edl_package) {
        routes.push(format!(
            "EDL: {} rawprogram and {} patch file(s), {} step(s)",
            plan.rawprogram.len(),
            plan.patch.len(),
            package.steps.len()
        ));
    }
    out.push((
        Status::Ok,
        format!(
            "{}; verified by {}",
            routes.join("; "),
            set.activation_client.verify.as_str()
        ),
    ));
    if set.edl.is_some() && batch.product.identity.edl.is_empty() {
        out.push((
            Status::Fail,
            format!(
                "region {} has an EDL plan but product {} lists no EDL identity \
                 (`identity.edl`): no EDL unit can be identified; add the SoC's hw_id, \
                 oem_pk_hash and programmer",
                set.region, batch.product.name
            ),
        ));
    }
    if set.fastboot.is_none() && !batch.product.identity.edl.is_empty() {
        out.push((
            Status::Note,
            format!(
                "region {} has no fastboot plan: units that arrive in fastboot fail; only EDL \
                 units are flashed",
                set.region
            ),
        ));
    }
    let simulated_edl: Vec<u16> = station
        .slots
        .iter()
        .filter(|s| s.binding == SlotBinding::Simulated(Mode::Edl))
        .map(|s| s.slot)
        .collect();
    if !simulated && set.edl.is_none() && !simulated_edl.is_empty() {
        out.push((
            Status::Fail,
            format!(
                "slots {simulated_edl:?} hold simulated EDL phones, but region {} has no EDL \
                 plan; make them `simulated: fastboot` or add the region's EDL plan",
                set.region
            ),
        ));
    }
    let usb = station
        .slots
        .iter()
        .filter(|s| matches!(s.binding, SlotBinding::UsbPort(_)))
        .count();
    if !simulated && usb > 0 && usb < station.slots.len() {
        out.push((
            Status::Fail,
            format!(
                "{} of {} slots are USB ports and the others simulated; a station runs either \
                 real or simulated phones — split them into two station files",
                usb,
                station.slots.len()
            ),
        ));
    }
    if usize::from(station.limits.parallel_slots) < station.slots.len() && !simulated {
        out.push((
            Status::Note,
            format!(
                "limits.parallel_slots is {}: only that many of the {} slots flash at once",
                station.limits.parallel_slots,
                station.slots.len()
            ),
        ));
    }
    out
}

fn journal_findings(journal: &Path, work_order: &str, ordered: u32) -> Vec<(Status, String)> {
    let mut out = Vec::new();
    let folder = journal
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match writable_folder(folder) {
        Ok(how) => out.push((Status::Ok, format!("folder {} {how}", folder.display()))),
        Err(why) => {
            out.push((
                Status::Fail,
                format!(
                    "folder {}: {why}; the station writes the journal, its WAL and its lock \
                     there: create it for the station's user or correct `journal`",
                    folder.display()
                ),
            ));
            return out;
        }
    }
    if !journal.exists() {
        out.push((
            Status::Ok,
            format!(
                "{} does not exist yet; the first run creates it",
                journal.display()
            ),
        ));
        return out;
    }
    match Journal::inspect(journal, work_order) {
        Ok(seen) => {
            let passed = format!(
                "{} (schema v{}) read without taking its lock: work order {work_order} has {} of \
                 {ordered} ordered units passed",
                journal.display(),
                seen.schema_version,
                seen.units_passed
            );
            out.push((Status::Ok, passed));
            if seen.units_passed >= ordered {
                out.push((
                    Status::Note,
                    format!(
                        "work order {work_order} is already complete: `run` would flash nothing; \
                         lock the station to the next work order"
                    ),
                ));
            }
            if let Some(holder) = seen.holder {
                let since = holder
                    .since
                    .map(|t| format!(" since {t}"))
                    .unwrap_or_default();
                out.push((
                    Status::Note,
                    format!(
                        "a station is running on this journal (pid {}{since}); `run` now would be \
                         refused until it stops (one station per journal)",
                        holder.pid
                    ),
                ));
            }
        }
        Err(e @ JournalError::NewerSchema { .. }) => out.push((Status::Fail, e.to_string())),
        Err(e) => out.push((
            Status::Fail,
            format!(
                "{} cannot be read: {e}; restore it from backup or move it aside",
                journal.display()
            ),
        )),
    }
    out
}
