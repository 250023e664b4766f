//! GUIDs as the UEFI spec stores them: the first three fields little-endian, the last two as
//! bytes ("mixed-endian"), so `C12A7328-F81F-11D2-BA4B-00A0C93EC93B` is stored as
//! `28 73 2A C1 1F F8 D2 11 BA 4B 00 A0 C9 3E C9 3B`.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// A GUID in on-disk byte order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid([u8; 16]);

impl Guid {
    pub const NIL: Guid = Guid([0; 16]);

    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Guid(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// A version-4-shaped GUID derived from a name (SHA-256 of it), so a simulated phone built
    /// twice from the same description has the same disk and partition GUIDs.
    pub fn derived(name: &str) -> Self {
        let digest = Sha256::digest(name.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        // Version 4 in the high nibble of time_hi (stored little-endian: byte 7), variant 10xx.
        b[7] = (b[7] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Guid(b)
    }

    /// Parse the canonical text form at compile time (for constants); panics only on a
    /// malformed literal in our own source.
    pub const fn from_str_const(s: &str) -> Self {
        match parse(s.as_bytes()) {
            Some(g) => g,
            None => panic!("malformed GUID literal"),
        }
    }
}

const fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Text byte positions of the 16 bytes in canonical (big-endian text) order.
const TEXT_POS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
/// Where text byte i lands on disk.
const DISK_POS: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];

const fn parse(s: &[u8]) -> Option<Guid> {
    if s.len() != 36 || s[8] != b'-' || s[13] != b'-' || s[18] != b'-' || s[23] != b'-' {
        return None;
    }
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        let p = TEXT_POS[i];
        let (hi, lo) = match (hex_val(s[p]), hex_val(s[p + 1])) {
            (Some(h), Some(l)) => (h, l),
            _ => return None,
        };
        out[DISK_POS[i]] = hi << 4 | lo;
        i += 1;
    }
    Some(Guid(out))
}

/// A string that is not `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a GUID (expected XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)")]
pub struct GuidParseError(pub String);

impl FromStr for Guid {
    type Err = GuidParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s.as_bytes()).ok_or_else(|| GuidParseError(s.to_string()))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &d) in DISK_POS.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{:02X}", self.0[d])?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

/// Partition type GUIDs seen on Android/Qualcomm phones and in tools.
pub mod types {
    use super::Guid;

    /// EFI System Partition.
    pub const EFI_SYSTEM: Guid = Guid::from_str_const("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    /// Microsoft basic data (what generic tools default to).
    pub const BASIC_DATA: Guid = Guid::from_str_const("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7");
    /// Linux filesystem data (sgdisk's default, code 8300).
    pub const LINUX_FILESYSTEM: Guid = Guid::from_str_const("0FC63DAF-8483-4772-8E79-3D69D8477DE4");
    /// Android boot (Qualcomm `boot_a`/`boot_b`).
    pub const ANDROID_BOOT: Guid = Guid::from_str_const("20117F86-E985-4357-B9EE-374BC1D8487D");
    /// Android system.
    pub const ANDROID_SYSTEM: Guid = Guid::from_str_const("97D7B011-54DA-4835-B3C4-917AD6E73D74");
    /// Android vendor.
    pub const ANDROID_VENDOR: Guid = Guid::from_str_const("C5A0AEEC-13EA-11E5-A1B1-001E67CA0C3C");
    /// Android user data.
    pub const ANDROID_USERDATA: Guid = Guid::from_str_const("1B81E7E6-F50D-419B-A739-2AEEF8DA3335");
    /// Android misc (bootloader message).
    pub const ANDROID_MISC: Guid = Guid::from_str_const("EF32A33B-A409-486C-9141-9FFB711F6266");
    /// Android metadata.
    pub const ANDROID_METADATA: Guid = Guid::from_str_const("20AC26BE-20B7-11E3-84C5-6CFDB94711E9");
    /// Android persist.
    pub const ANDROID_PERSIST: Guid = Guid::from_str_const("38F428E6-D326-425D-9140-6E0EA133647C");
    /// Qualcomm vbmeta.
    pub const VBMETA: Guid = Guid::from_str_const("4B7A15D6-322C-42AC-8110-88B7DA0C5D77");
    /// Qualcomm dtbo.
    pub const DTBO: Guid = Guid::from_str_const("24D0D418-D31D-4D8D-AC2C-4D4305188450");

    /// The type a partition named `name` (without slot suffix) usually has on a Qualcomm phone.
    pub fn for_name(name: &str) -> Guid {
        let base = name
            .strip_suffix("_a")
            .or_else(|| name.strip_suffix("_b"))
            .unwrap_or(name);
        match base {
            "boot" | "vendor_boot" | "init_boot" | "recovery" => ANDROID_BOOT,
            "system" | "system_ext" | "product" | "super" => ANDROID_SYSTEM,
            "vendor" | "odm" => ANDROID_VENDOR,
            "userdata" => ANDROID_USERDATA,
            "misc" => ANDROID_MISC,
            "metadata" => ANDROID_METADATA,
            "persist" => ANDROID_PERSIST,
            "vbmeta" | "vbmeta_system" => VBMETA,
            "dtbo" => DTBO,
            _ => BASIC_DATA,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_guid_is_stored_mixed_endian() {
        assert_eq!(
            types::EFI_SYSTEM.as_bytes(),
            &[
                0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
                0xC9, 0x3B
            ]
        );
        assert_eq!(
            types::EFI_SYSTEM.to_string(),
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
        );
    }

    #[test]
    fn parse_accepts_lowercase_and_refuses_malformed() {
        let g: Guid = "0fc63daf-8483-4772-8e79-3d69d8477de4".parse().unwrap();
        assert_eq!(g, types::LINUX_FILESYSTEM);
        for bad in [
            "",
            "0FC63DAF84834772-8E79-3D69D8477DE4",
            "0FC63DAF-8483-4772-8E79-3D69D8477DEZ",
            "0FC63DAF-8483-4772-8E79-3D69D8477DE4-",
            "0FC63DAF-8483-4772-8E79-3D69D8477DE€",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_guids_are_stable_v4_and_distinct() {
        let a = Guid::derived("phone-1/boot_a");
        assert_eq!(a, Guid::derived("phone-1/boot_a"));
        assert_ne!(a, Guid::derived("phone-1/boot_b"));
        let text = a.to_string();
        assert_eq!(&text[14..15], "4");
        assert!(matches!(&text[19..20], "8" | "9" | "A" | "B"));
    }
}
