//! How a phone talks to the station: fastboot (the bootloader, or userspace fastbootd: the same
//! USB interface) or Qualcomm EDL (Sahara, then Firehose). The bus tells it from the device's
//! interface; events, the journal, the dashboard and station.yaml's simulated slots all name it
//! with this one type.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Interface 0xff/0x42/0x03: bootloader fastboot or userspace fastbootd.
    Fastboot,
    /// Qualcomm 05c6 with interface 0xff/0xff/0x10|0x11|0x13|0xff: Sahara/Firehose.
    Edl,
}

impl Mode {
    /// The spelling stored in the journal and machine output (`fastboot`, `edl`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fastboot => "fastboot",
            Self::Edl => "edl",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "fastboot" => Some(Self::Fastboot),
            "edl" => Some(Self::Edl),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    /// The operator's wording (`fastboot`, `EDL`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fastboot => "fastboot",
            Self::Edl => "EDL",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for mode in [Mode::Fastboot, Mode::Edl] {
            assert_eq!(Mode::parse(mode.as_str()), Some(mode));
            assert_eq!(
                serde_json::to_string(&mode).unwrap(),
                format!("\"{}\"", mode.as_str())
            );
        }
        assert_eq!(Mode::Edl.to_string(), "EDL");
        assert_eq!(Mode::parse("EDL"), None);
    }
}
