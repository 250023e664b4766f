//! Payloads of the command-mode client commands: serial number, MSM HW ID, v3 chip id, OEM PK
//! hash and SBL version. Decoders for the host, encoders for a device; all sans-io.

use std::fmt;

use super::packet::Reader;

/// MSM_ID / OEM_ID / MODEL_ID, whether read as the v1/v2 64-bit HW ID or from the v3 chip id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HwId {
    pub msm_id: u32,
    pub oem_id: u16,
    pub model_id: u16,
}

impl HwId {
    /// The 64-bit form used by v1/v2 and by programmer databases: `MSM_ID << 32 | OEM_ID << 16
    /// | MODEL_ID`, printed as 16 hex digits.
    pub fn as_u64(&self) -> u64 {
        (u64::from(self.msm_id) << 32) | (u64::from(self.oem_id) << 16) | u64::from(self.model_id)
    }

    pub fn from_u64(v: u64) -> HwId {
        HwId {
            msm_id: (v >> 32) as u32,
            oem_id: (v >> 16) as u16,
            model_id: v as u16,
        }
    }
}

impl fmt::Display for HwId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "0x{:016x} (MSM_ID 0x{:08x}, OEM_ID 0x{:04x}, MODEL_ID 0x{:04x})",
            self.as_u64(),
            self.msm_id,
            self.oem_id,
            self.model_id
        )
    }
}

/// The v3 chip id (client command 0x0a) as far as its layout is publicly known: the chip
/// identifier in the first word, MSM_ID at byte 36, OEM_ID at 40, MODEL_ID at 42 and, on some
/// targets, the OEM_ID in an alternate slot at 44 when the first one is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChipIdV3 {
    pub chip_identifier: u32,
    pub hw_id: HwId,
}

/// Bytes a v3 chip id answer needs for the fields we read.
pub const CHIP_ID_V3_MIN_LEN: usize = 44;
/// Length of the answer a device sends (fields above plus the alternate OEM_ID and padding).
pub const CHIP_ID_V3_LEN: usize = 48;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} answer is {len} bytes, at least {min} expected")]
pub struct PayloadError {
    pub what: &'static str,
    pub len: usize,
    pub min: usize,
}

fn short(what: &'static str, len: usize, min: usize) -> PayloadError {
    PayloadError { what, len, min }
}

/// SERIAL_NUM_READ: a little-endian u32.
pub fn decode_serial(payload: &[u8]) -> Result<u32, PayloadError> {
    Reader::new(payload)
        .u32()
        .ok_or_else(|| short("serial number", payload.len(), 4))
}

pub fn encode_serial(serial: u32) -> Vec<u8> {
    serial.to_le_bytes().to_vec()
}

/// MSM_HW_ID_READ: a little-endian u64.
pub fn decode_hw_id(payload: &[u8]) -> Result<HwId, PayloadError> {
    Reader::new(payload)
        .u64()
        .map(HwId::from_u64)
        .ok_or_else(|| short("MSM HW ID", payload.len(), 8))
}

pub fn encode_hw_id(hw_id: HwId) -> Vec<u8> {
    hw_id.as_u64().to_le_bytes().to_vec()
}

/// READ_CHIP_ID_V3.
pub fn decode_chip_id_v3(payload: &[u8]) -> Result<ChipIdV3, PayloadError> {
    let err = || short("v3 chip id", payload.len(), CHIP_ID_V3_MIN_LEN);
    let mut r = Reader::new(payload);
    let chip_identifier = r.u32().ok_or_else(err)?;
    r.skip(32).ok_or_else(err)?;
    let msm_id = r.u32().ok_or_else(err)?;
    let mut oem_id = r.u16().ok_or_else(err)?;
    let model_id = r.u16().ok_or_else(err)?;
    if oem_id == 0 {
        if let Some(alternate) = r.u16() {
            oem_id = alternate;
        }
    }
    Ok(ChipIdV3 {
        chip_identifier,
        hw_id: HwId {
            msm_id,
            oem_id,
            model_id,
        },
    })
}

pub fn encode_chip_id_v3(chip: ChipIdV3) -> Vec<u8> {
    let mut out = vec![0u8; CHIP_ID_V3_LEN];
    out[0..4].copy_from_slice(&chip.chip_identifier.to_le_bytes());
    out[36..40].copy_from_slice(&chip.hw_id.msm_id.to_le_bytes());
    out[40..42].copy_from_slice(&chip.hw_id.oem_id.to_le_bytes());
    out[42..44].copy_from_slice(&chip.hw_id.model_id.to_le_bytes());
    out
}

/// GET_SOFTWARE_VERSION_SBL: a little-endian u32.
pub fn decode_sbl_version(payload: &[u8]) -> Result<u32, PayloadError> {
    Reader::new(payload)
        .u32()
        .ok_or_else(|| short("SBL version", payload.len(), 4))
}

const DIGEST_SIZES: [usize; 3] = [32, 48, 64];

/// OEM_PK_HASH_READ answers come in several shapes: the bare digest (SHA-256 or SHA-384), the
/// digest repeated once per root certificate slot, or the digest zero-padded to a wider field.
/// Reduce them to the one digest, so a station can compare it with a manifest.
pub fn normalize_pk_hash(payload: &[u8]) -> Vec<u8> {
    let mut digest = payload;
    // Repeated copies: the payload is n ≥ 2 copies of one digest-sized block.
    for size in DIGEST_SIZES {
        if payload.len() > size
            && payload.len().is_multiple_of(size)
            && payload.chunks(size).all(|c| c == &payload[..size])
        {
            digest = &payload[..size];
            break;
        }
    }
    // Zero padding: cut trailing zeros, then round back up to a digest size (a digest may end
    // in zero bytes itself), never beyond what was read.
    let used = digest.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let keep = DIGEST_SIZES
        .into_iter()
        .find(|size| used <= *size && *size <= digest.len())
        .unwrap_or(digest.len());
    digest[..keep].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_and_sbl_version_are_le_u32() {
        assert_eq!(decode_serial(&[0x78, 0x56, 0x34, 0x12]), Ok(0x1234_5678));
        assert_eq!(encode_serial(0x1234_5678), vec![0x78, 0x56, 0x34, 0x12]);
        assert_eq!(decode_sbl_version(&[1, 0, 0, 0, 9, 9]), Ok(1));
        assert_eq!(
            decode_serial(&[1, 2]),
            Err(PayloadError {
                what: "serial number",
                len: 2,
                min: 4
            })
        );
    }

    #[test]
    fn hw_id_splits_msm_oem_model() {
        // 0x000bf0e1_0051_0000 little-endian.
        let bytes = [0x00, 0x00, 0x51, 0x00, 0xe1, 0xf0, 0x0b, 0x00];
        let id = decode_hw_id(&bytes).unwrap();
        assert_eq!(
            id,
            HwId {
                msm_id: 0x000b_f0e1,
                oem_id: 0x0051,
                model_id: 0
            }
        );
        assert_eq!(encode_hw_id(id), bytes.to_vec());
        assert_eq!(
            id.to_string(),
            "0x000bf0e100510000 (MSM_ID 0x000bf0e1, OEM_ID 0x0051, MODEL_ID 0x0000)"
        );
        assert!(decode_hw_id(&bytes[..7]).is_err());
    }

    #[test]
    fn chip_id_v3_layout() {
        let mut bytes = vec![0u8; 48];
        bytes[0..4].copy_from_slice(&[0x44, 0x33, 0x22, 0x11]);
        bytes[36..40].copy_from_slice(&[0xe1, 0x60, 0x1d, 0x00]);
        bytes[40..42].copy_from_slice(&[0x72, 0x00]);
        bytes[42..44].copy_from_slice(&[0x34, 0x12]);
        let chip = decode_chip_id_v3(&bytes).unwrap();
        assert_eq!(
            chip,
            ChipIdV3 {
                chip_identifier: 0x1122_3344,
                hw_id: HwId {
                    msm_id: 0x001d_60e1,
                    oem_id: 0x0072,
                    model_id: 0x1234
                }
            }
        );
        assert_eq!(encode_chip_id_v3(chip), bytes);
        // OEM_ID in the alternate slot.
        bytes[40..42].fill(0);
        bytes[44..46].copy_from_slice(&[0x99, 0x00]);
        assert_eq!(decode_chip_id_v3(&bytes).unwrap().hw_id.oem_id, 0x99);
        assert!(decode_chip_id_v3(&bytes[..43]).is_err());
        assert!(decode_chip_id_v3(&bytes[..44]).is_ok());
    }

    #[test]
    fn pk_hash_shapes_reduce_to_the_digest() {
        let sha256: Vec<u8> = (1..=32).collect();
        let sha384: Vec<u8> = (1..=48).collect();
        assert_eq!(normalize_pk_hash(&sha256), sha256);
        assert_eq!(normalize_pk_hash(&sha384), sha384);
        assert_eq!(normalize_pk_hash(&sha256.repeat(2)), sha256);
        assert_eq!(normalize_pk_hash(&sha384.repeat(2)), sha384);
        let mut padded = sha384.clone();
        padded.resize(64, 0);
        assert_eq!(normalize_pk_hash(&padded), sha384);
        // A digest that itself ends in zeros keeps its full size.
        let mut zero_tail = sha256.clone();
        zero_tail[30] = 0;
        zero_tail[31] = 0;
        assert_eq!(normalize_pk_hash(&zero_tail), zero_tail);
        assert_eq!(normalize_pk_hash(&[]), Vec::<u8>::new());
        assert_eq!(normalize_pk_hash(&[7, 0, 0]), vec![7, 0, 0]);
    }
}
