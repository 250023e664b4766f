//! Protocol errors → the station's failure vocabulary: every protocol error becomes exactly one
//! stable code and a sentence naming the slot, the unit and the step.

use protocols::fastboot::FastbootError;
use protocols::firehose::edl::EdlError;
use protocols::firehose::FirehoseError;
use protocols::sahara::SaharaError;

use crate::verdict::{Failure, UnitRef};

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
        FastbootError::Unsupported(_) | FastbootError::Command(_) => Failure::DeviceFail {
            unit,
            step,
            reason: e.to_string(),
        },
        FastbootError::Io { .. } | FastbootError::Image(_) => Failure::HostError {
            unit,
            step,
            detail: e.to_string(),
        },
    }
}

pub fn from_firehose(unit: UnitRef, step: &str, e: &FirehoseError) -> Failure {
    let step = step.to_string();
    match e {
        e if e.is_disconnect() => Failure::Disconnected { unit, step },
        FirehoseError::Timeout { secs, .. } => Failure::Timeout {
            unit,
            step,
            secs: *secs as u64,
        },
        FirehoseError::Nak { .. } | FirehoseError::NoDigest { .. } => Failure::DeviceFail {
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
        FirehoseError::PartitionNotFound { .. } => Failure::DeviceFail {
            unit,
            step,
            reason: e.to_string(),
        },
        _ => Failure::HostError {
            unit,
            step,
            detail: e.to_string(),
        },
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
        SaharaError::ImageFile { .. } => Failure::HostError {
            unit,
            step,
            detail: e.to_string(),
        },
        _ => Failure::ProtocolError {
            unit,
            step,
            detail: e.to_string(),
        },
    }
}

pub fn from_edl(unit: UnitRef, step: &str, e: &EdlError) -> Failure {
    match e {
        EdlError::Sahara(e) => from_sahara(unit, step, e),
        EdlError::Firehose(e) => from_firehose(unit, step, e),
    }
}
