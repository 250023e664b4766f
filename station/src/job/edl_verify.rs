//! Verification of an EDL unit before its reset (`verify: edl_readback`), through the
//! programmer that flashed it: Firehose `<read>` is random access to any sector, so it works on
//! every Qualcomm phone, whatever its bootloader offers (many production bootloaders have no
//! `fetch`) and wherever its reset leads (a factory flow often boots Android).
//!
//! Read, in order: the GPT of each LUN until `boot_a`, `boot_b` and the client's partition are
//! found; the slot the bootloader will boot, from the A/B bits of the `boot_<slot>` entries
//! ([`protocols::gpt::ab::booting_slot`]); then only what the client needs on that slot — the
//! byte range, or the filesystem's metadata and the file in `<partition>_<slot>`, or the LP
//! metadata of the slot's metadata slot and the logical partition's extents in `super`.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use protocols::firehose::{FirehoseError, FoundPartitions, PartitionReader};
use protocols::gpt::ab::{self, BootingSlot};
use protocols::progress::{ProgressEvent, ProgressSink};
use protocols::transport::Transport;

use crate::config::VerifyMethod;
use crate::events::{Phase, StopOnly};
use crate::read_at::ReadAt;
use crate::run::UnitContext;
use crate::verdict::Failure;

use super::failure::from_firehose;
use super::verify::{judge, judge_build, metadata_slot, read_back, ReadBackError};
use super::Attempt;

/// One partition of the phone in EDL as a random-access source for the file finder.
struct FirehoseSource<'a> {
    reader: PartitionReader<'a, Box<dyn Transport>>,
    /// The protocol error behind the last failed read, for an exact verdict.
    last_error: Option<FirehoseError>,
}

impl ReadAt for FirehoseSource<'_> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self.reader.read_at(offset, buf) {
            Ok(()) => Ok(()),
            // A filesystem or LP table that points past its partition: the layers above
            // report it as such, not as a failed link.
            Err(e @ FirehoseError::PastPartitionEnd { .. }) => {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, e.to_string()))
            }
            Err(e) => {
                let text = e.to_string();
                self.last_error = Some(e);
                Err(io::Error::other(text))
            }
        }
    }
}

/// The session's progress during verification: no per-read events (each filesystem block is
/// its own `<read>`; the operator sees the phase), the station's stop honoured, and every byte
/// read back counted, GPT included.
struct CountingStop {
    stop: StopOnly,
    bytes: AtomicU64,
}

impl ProgressSink for CountingStop {
    fn event(&self, event: ProgressEvent<'_>) {
        if let ProgressEvent::Bytes { bytes } = event {
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    fn stop_requested(&self) -> bool {
        self.stop.stop_requested()
    }
}

/// Verify the activation client on the slot the phone will boot, through the Firehose session
/// that flashed it; the journal row gets the digest found, the method and every byte read.
pub(super) fn before_reset(
    attempt: &mut Attempt<'_>,
    unit: &mut UnitContext,
    session: &mut super::edl::Session,
) -> Result<(), Failure> {
    let counter = Arc::new(CountingStop {
        stop: unit.stop_only(),
        bytes: AtomicU64::new(0),
    });
    session.firehose.set_progress(counter.clone());
    let verdict = verify(attempt, unit, session);
    attempt.result.verify_bytes_read = Some(counter.bytes.load(Ordering::Relaxed));
    session.firehose.set_progress(Arc::new(unit.progress()));
    verdict
}

fn verify(
    attempt: &mut Attempt<'_>,
    unit: &mut UnitContext,
    session: &mut super::edl::Session,
) -> Result<(), Failure> {
    let wanted = attempt.context.batch.image_set.activation_client.clone();
    let base = wanted.partition.as_str();
    let firehose = &mut session.firehose;
    attempt.phase(
        unit,
        Phase::Verify {
            what: "reading the GPT through EDL".into(),
        },
    );
    let luns = firehose.lun_count();
    let slotted = [format!("{base}_a"), format!("{base}_b")];
    let labels = ["boot_a", "boot_b", base, &slotted[0], &slotted[1]];
    let found = firehose
        .find_partitions(&labels, 0..luns)
        .map_err(|e| from_firehose(attempt.unit(), "verify (reading the GPT)", &e))?;
    let booting = booting_slot(attempt, &found)?;
    let suffix = booting.map(|b| b.suffix);
    // A client in `super` is read in the booting slot's LP metadata slot; elsewhere in the
    // booting slot's copy of its partition (the partition itself on a phone without slots).
    let partition = match suffix {
        Some(s) if wanted.location.logical_partition().is_none() => {
            let with_suffix = format!("{base}_{s}");
            if found.get(&with_suffix).is_some() {
                with_suffix
            } else {
                base.to_string()
            }
        }
        _ => base.to_string(),
    };
    let what = format!(
        "{} (EDL read-back)",
        super::verify::phase(&partition, &wanted.location, suffix)
    );
    let step = format!("verify {what}");
    attempt.phase(unit, Phase::Verify { what });
    let location = found
        .require(&partition)
        .map_err(|e| from_firehose(attempt.unit(), &step, &e))?;
    if let Some(slot) = booting {
        tracing::info!(
            slot = slot.suffix,
            state = %slot.state,
            reason = ?slot.reason,
            partition,
            "verifying on the slot the bootloader will boot, per the GPT's A/B attributes"
        );
    }
    let source = FirehoseSource {
        reader: PartitionReader::new(firehose, location),
        last_error: None,
    };
    let (mut source, result) = read_back(attempt, source, &partition, metadata_slot(suffix));
    let found = result.map_err(|e| match e {
        ReadBackError::Source(detail) => match source.last_error.take() {
            Some(e) => from_firehose(attempt.unit(), &step, &e),
            None => Failure::HostError {
                unit: attempt.unit(),
                step: step.clone(),
                detail,
            },
        },
        ReadBackError::Verdict(failure) => failure,
    })?;
    attempt.result.activation_sha256_found = found.sha256;
    attempt.result.build_id_found = found.build.build_id().map(str::to_string);
    attempt.result.verify_method = Some(VerifyMethod::EdlReadback);
    let logical = found.logical_partition.as_deref();
    match judge(attempt, &partition, logical, found.sha256)
        .or_else(|| judge_build(attempt, &partition, logical, &found.build))
    {
        None => {
            super::verify::log_pass(&partition, found.logical_partition.as_deref());
            Ok(())
        }
        Some(failure) => Err(failure),
    }
}

/// The slot the bootloader will boot, from the `boot_a`/`boot_b` entries; `None` on a phone
/// without slots. A table that boots nothing fails the unit: nothing on it would run.
fn booting_slot(
    attempt: &Attempt<'_>,
    found: &FoundPartitions,
) -> Result<Option<BootingSlot>, Failure> {
    let attributes = |label: &str| found.get(label).map(|p| p.partition.attributes);
    ab::booting_slot(attributes("boot_a"), attributes("boot_b")).map_err(|e| {
        Failure::SlotMismatch {
            unit: attempt.unit(),
            expected_slot: "a or b".into(),
            found_slot: "none".into(),
            detail: format!(
                "per the A/B attributes of its GPT (read through EDL after flashing), {e}; \
                 nothing was verified — remove the unit and send it to rework for its \
                 partition table"
            ),
        }
    })
}
