//! Protocol errors → the station's failure vocabulary: every protocol error becomes exactly one
//! stable code and a sentence naming the slot, the unit and the step. Each mapper lists every
//! variant, so a new protocol error is a compile error here, not a silent generic code.

use protocols::fastboot::FastbootError;
use protocols::firehose::edl::EdlError;
use protocols::firehose::FirehoseError;
use protocols::sahara::SaharaError;

use crate::verdict::{Failure, UnitRef};

/// The station asked the job to stop (its protocol loop ended between two chunks): the job turns
/// it into ABORTED, since the station's stop flag is set; coded as the station's own doing in
/// case it ever reaches a verdict.
fn stopped(unit: UnitRef, step: String, detail: String) -> Failure {
    Failure::HostError { unit, step, detail }
}

pub fn from_fastboot(unit: UnitRef, step: &str, e: &FastbootError) -> Failure {
    let step = step.to_string();
    match e {
        FastbootError::DeviceFail { message, command } => Failure::DeviceFail {
            unit,
            step,
            reason: format!("`{command}` answered FAIL: {message}"),
        },
        FastbootError::Timeout { timeout, .. } => Failure::Timeout {
            unit,
            step,
            secs: timeout.as_secs(),
        },
        FastbootError::Disconnected { .. } => Failure::Disconnected { unit, step },
        FastbootError::Protocol { .. } | FastbootError::Transport { .. } => {
            Failure::ProtocolError {
                unit,
                step,
                detail: e.to_string(),
            }
        }
        // The device's answers do not allow the step (a slot it lacks, a command it refuses,
        // a logical partition asked of the bootloader).
        FastbootError::Unsupported(_)
        | FastbootError::Command(_)
        | FastbootError::WrongMode { .. } => Failure::DeviceFail {
            unit,
            step,
            reason: e.to_string(),
        },
        FastbootError::Io { .. } | FastbootError::Image(_) => Failure::HostError {
            unit,
            step,
            detail: e.to_string(),
        },
        FastbootError::Stopped { .. } => stopped(unit, step, e.to_string()),
    }
}

pub fn from_firehose(unit: UnitRef, step: &str, e: &FirehoseError) -> Failure {
    let step = step.to_string();
    match e {
        FirehoseError::Transport { source, .. } if source.is_disconnect() => {
            Failure::Disconnected { unit, step }
        }
        FirehoseError::Timeout { secs, .. } => Failure::Timeout {
            unit,
            step,
            secs: *secs as u64,
        },
        FirehoseError::Nak { .. }
        | FirehoseError::NoDigest { .. }
        | FirehoseError::PartitionNotFound { .. } => Failure::DeviceFail {
            unit,
            step,
            reason: e.to_string(),
        },
        FirehoseError::Transport { .. }
        | FirehoseError::Protocol { .. }
        | FirehoseError::Gpt { .. } => Failure::ProtocolError {
            unit,
            step,
            detail: e.to_string(),
        },
        // The host's side: an image file, the data source or the output failed, or the station
        // asked for something the programmer cannot be asked.
        FirehoseError::Image { .. }
        | FirehoseError::BadImage { .. }
        | FirehoseError::Source { .. }
        | FirehoseError::Output { .. }
        | FirehoseError::PastPartitionEnd { .. }
        | FirehoseError::InvalidRequest(_) => Failure::HostError {
            unit,
            step,
            detail: e.to_string(),
        },
        FirehoseError::Stopped { .. } => stopped(unit, step, e.to_string()),
    }
}

pub fn from_sahara(unit: UnitRef, step: &str, e: &SaharaError) -> Failure {
    let step = step.to_string();
    match e {
        SaharaError::Timeout { timeout, .. } => Failure::Timeout {
            unit,
            step,
            secs: timeout.as_secs().max(1),
        },
        SaharaError::Disconnected { .. } | SaharaError::DeviceReset { .. } => {
            Failure::Disconnected { unit, step }
        }
        // A programmer the phone's secure boot refuses: the wrong programmer for this SoC/key.
        SaharaError::ImageRejected { .. } => Failure::IdentityMismatch {
            unit,
            what: "signed programmer".into(),
            expected: "a programmer this phone's secure boot accepts".into(),
            found: e.to_string(),
        },
        // The ROM asks for images or ranges the programmer does not have, refuses what the
        // station asks, or is not in the mode the station needs: the exchange cannot go on.
        SaharaError::UnknownImage { .. }
        | SaharaError::OutOfRange { .. }
        | SaharaError::CommandModeRefused { .. }
        | SaharaError::MemoryDebugMode { .. }
        | SaharaError::NotMemoryDebug { .. }
        | SaharaError::MemoryReadRefused { .. }
        | SaharaError::Transport { .. }
        | SaharaError::Malformed { .. }
        | SaharaError::Unexpected { .. }
        | SaharaError::UnsupportedVersion { .. }
        | SaharaError::PayloadTooLong { .. }
        | SaharaError::MemoryTable { .. }
        | SaharaError::BadDoneStatus { .. } => Failure::ProtocolError {
            unit,
            step,
            detail: e.to_string(),
        },
        SaharaError::ImageFile { .. } | SaharaError::DumpFile { .. } => Failure::HostError {
            unit,
            step,
            detail: e.to_string(),
        },
        SaharaError::Stopped { .. } => stopped(unit, step, e.to_string()),
    }
}

pub fn from_edl(unit: UnitRef, step: &str, e: &EdlError) -> Failure {
    match e {
        EdlError::Sahara(e) => from_sahara(unit, step, e),
        EdlError::Firehose(e) => from_firehose(unit, step, e),
    }
}
