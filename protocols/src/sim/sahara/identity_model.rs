//! Who the simulated ROM says it is in command mode, and which programmers it accepts.

use sha2::{Digest, Sha256};

use crate::sahara::identity::HwId;
use crate::sim::phone::Identity;

/// Who the ROM says it is in command mode, and which programmers its secure boot accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaharaIdentity {
    pub serial: u32,
    pub hw_id: HwId,
    /// First word of the v3 chip id.
    pub chip_identifier: u32,
    /// The OEM public-key hash digest (32 or 48 bytes).
    pub oem_pk_hash: Vec<u8>,
    pub sbl_version: u32,
    /// SHA-256 of every programmer file this ROM accepts.
    pub signed_programmers: Vec<[u8; 32]>,
}

impl Default for SaharaIdentity {
    fn default() -> Self {
        SaharaIdentity {
            serial: 0x7e11_a5c3,
            hw_id: HwId {
                msm_id: 0x0013_10e1,
                oem_id: 0x0072,
                model_id: 0x0000,
            },
            chip_identifier: 0x0013_10e1,
            oem_pk_hash: Sha256::digest(b"flashgate demo OEM root key").to_vec(),
            sbl_version: 0x0000_0003,
            signed_programmers: Vec::new(),
        }
    }
}

impl From<&Identity> for SaharaIdentity {
    /// The Sahara side of a simulated phone's identity.
    fn from(id: &Identity) -> Self {
        SaharaIdentity {
            serial: id.chip_serial,
            hw_id: HwId::from_u64(id.msm_hw_id),
            chip_identifier: id.chip_id,
            oem_pk_hash: id.oem_pk_hash.clone(),
            sbl_version: id.sbl_version,
            signed_programmers: id.accepted_programmers.clone(),
        }
    }
}
