//! How a phone proves it is this product: the fastboot `product` variable, or (EDL) the MSM HW
//! ID / chip id and OEM public-key hash that Sahara command mode reports, which also choose the
//! signed programmer to upload.

use serde::Deserialize;

use super::files::{FileEntryFile, ImageFile};

#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// What `fastboot getvar product` must answer.
    pub fastboot_product: Option<String>,
    /// Accepted EDL identities, each with the programmer that SoC and key accept.
    pub edl: Vec<EdlIdentity>,
    /// Where the unit's code for the line's MES (IMEI, label code) is read, if the product
    /// says; the journal keeps it with the attempt.
    pub unit_code: Option<UnitCodeSource>,
}

/// Where a unit's code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitCodeSource {
    /// `fastboot getvar <name>` (a vendor variable such as `imei`), read once the unit is
    /// identified in fastboot (an EDL unit after its reset into the bootloader).
    Getvar(String),
}

impl std::fmt::Display for UnitCodeSource {
    /// As the journal's `unit_code_source` column stores it: `getvar:imei`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnitCodeSource::Getvar(name) => write!(f, "getvar:{name}"),
        }
    }
}

/// The longest unit code or variable name taken (an IMEI is 15 digits, a label code rarely 30).
pub const MAX_UNIT_CODE_LEN: usize = 64;

/// A fastboot variable name as a bootloader publishes it: letters, digits, `-`, `_`, `.`.
pub fn check_variable_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_UNIT_CODE_LEN {
        return Err(format!(
            "`{name}` cannot be a fastboot variable name (1 to {MAX_UNIT_CODE_LEN} characters)"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "`{name}` cannot be a fastboot variable name (letters, digits, `-`, `_`, `.`)"
        ));
    }
    Ok(())
}

/// A code a phone answered: printable ASCII without spaces, at most [`MAX_UNIT_CODE_LEN`].
pub fn check_unit_code(code: &str) -> Result<(), String> {
    if code.is_empty() {
        return Err("the phone answered an empty value".into());
    }
    if code.len() > MAX_UNIT_CODE_LEN || !code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the phone answered `{}`, which is not a unit code (printable ASCII without spaces, \
             at most {MAX_UNIT_CODE_LEN} characters)",
            code.escape_debug()
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct EdlIdentity {
    /// Sahara MSM HW ID (v1/v2) or chip id (v3), as the 64-bit value the device reports.
    pub hw_id: u64,
    /// OEM public-key hash (SHA-256 or SHA-384: 32 or 48 bytes) the device reports.
    pub oem_pk_hash: Vec<u8>,
    pub programmer: ImageFile,
}

impl Identity {
    /// The programmer for a device reporting `hw_id` and `pk_hash`, if the product accepts it.
    pub fn programmer_for(&self, hw_id: u64, pk_hash: &[u8]) -> Option<&EdlIdentity> {
        self.edl
            .iter()
            .find(|e| e.hw_id == hw_id && e.oem_pk_hash == pk_hash)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IdentityFile {
    #[serde(default)]
    pub fastboot_product: Option<String>,
    #[serde(default)]
    pub edl: Vec<EdlIdentityFile>,
    #[serde(default)]
    pub unit_code: Option<UnitCodeFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UnitCodeFile {
    pub getvar: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EdlIdentityFile {
    pub hw_id: HwIdText,
    pub oem_pk_hash: PkHashText,
    pub programmer: FileEntryFile,
}

#[derive(Debug)]
pub(super) struct HwIdText(pub u64);
#[derive(Debug)]
pub(super) struct PkHashText(pub Vec<u8>);

fn parse_hw_id(text: &str) -> Result<HwIdText, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "`{text}` is not a HW id; write the hex value `flashgate edl info` prints, e.g. \"0x000a50e100000000\""
        ));
    }
    u64::from_str_radix(digits, 16)
        .map(HwIdText)
        .map_err(|e| format!("`{text}`: {e}"))
}

fn parse_pk_hash(text: &str) -> Result<PkHashText, String> {
    let bytes = hex::decode(text).map_err(|_| {
        format!("`{text}` is not hex; write the OEM PK hash `flashgate edl info` prints")
    })?;
    if bytes.len() != 32 && bytes.len() != 48 {
        return Err(format!(
            "the OEM PK hash has {} bytes; it is 32 (SHA-256) or 48 (SHA-384) bytes, as `flashgate edl info` prints it",
            bytes.len()
        ));
    }
    Ok(PkHashText(bytes))
}

super::yaml::deserialize_checked_str!(HwIdText, "a hex HW id", parse_hw_id);
super::yaml::deserialize_checked_str!(PkHashText, "a hex OEM PK hash", parse_pk_hash);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hw_ids_and_pk_hashes() {
        assert_eq!(parse_hw_id("0x000a50e1").unwrap().0, 0xa50e1);
        assert_eq!(parse_hw_id("A50E1").unwrap().0, 0xa50e1);
        assert!(parse_hw_id("0x").is_err());
        assert!(parse_hw_id("0x12345678901234567").is_err());
        assert!(parse_hw_id("xyz").is_err());
        assert_eq!(parse_pk_hash(&"ab".repeat(32)).unwrap().0.len(), 32);
        assert_eq!(parse_pk_hash(&"ab".repeat(48)).unwrap().0.len(), 48);
        assert!(parse_pk_hash(&"ab".repeat(31))
            .unwrap_err()
            .contains("31 bytes"));
        assert!(parse_pk_hash("zz").is_err());
    }
}

#[cfg(test)]
mod unit_code_tests {
    use super::*;

    #[test]
    fn codes_a_phone_answers_are_checked() {
        assert!(check_unit_code("356938035643809").is_ok());
        assert!(check_unit_code("").is_err());
        assert!(check_unit_code("35693 8035643809").is_err());
        assert!(check_unit_code("IMEI\x1b[2J").is_err());
        assert!(check_unit_code(&"9".repeat(MAX_UNIT_CODE_LEN + 1)).is_err());
        assert!(check_variable_name("imei").is_ok());
        assert!(check_variable_name("oem-serial_2.x").is_ok());
        assert!(check_variable_name("").is_err());
        assert!(check_variable_name("a:b").is_err());
    }
}
