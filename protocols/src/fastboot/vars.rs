//! Reading the variables a flashing client depends on, with the tolerance real bootloaders
//! need: sizes come as `0x…` hex or decimal, booleans as `yes`/`no`, slots with or without `_`.

use super::client::Fastboot;
use super::error::FastbootError;
use super::variable::Variable;
use crate::transport::Transport;

/// A size as bootloaders report it: `0x`-prefixed hex (AOSP fastbootd, most vendors) or
/// decimal (some LK builds). Surrounding spaces are ignored; anything else is `None`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return u64::from_str_radix(hex, 16).ok();
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A slot suffix letter as `current-slot` reports it: `a`, or `_a` on older bootloaders.
pub fn parse_slot(text: &str) -> Option<String> {
    let slot = text.trim().trim_start_matches('_');
    (slot.len() == 1 && slot.bytes().all(|b| b.is_ascii_lowercase())).then(|| slot.to_string())
}

/// What the station checks before it flashes a unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub product: String,
    pub serialno: String,
    /// `secure: yes`.
    pub secure: Option<bool>,
    /// `unlocked: yes`.
    pub unlocked: Option<bool>,
    /// `is-userspace: yes`: fastbootd rather than the bootloader.
    pub is_userspace: Option<bool>,
    pub current_slot: Option<String>,
    pub slot_count: u32,
    pub max_download_size: Option<u64>,
    pub version_bootloader: Option<String>,
}

/// `yes`/`no` as devices answer booleans; anything else is no answer.
pub(super) fn yes_no(value: Option<String>) -> Option<bool> {
    match value?.trim() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

impl<T: Transport> Fastboot<T> {
    /// A variable the device may not know: `Ok(None)` on FAIL (or the empty OKAY that older
    /// bootloaders send for unknown variables); link and protocol errors stay errors.
    pub fn getvar_optional<'v>(
        &mut self,
        var: impl Into<Variable<'v>>,
    ) -> Result<Option<String>, FastbootError> {
        match self.getvar(var) {
            Ok(value) if value.trim().is_empty() => Ok(None),
            Ok(value) => Ok(Some(value)),
            Err(FastbootError::DeviceFail { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Product and serial are required; the rest is read when the device has it.
    pub fn identify(&mut self) -> Result<DeviceIdentity, FastbootError> {
        let product = self.getvar(Variable::Product)?;
        let serialno = self.getvar(Variable::SerialNo)?;
        let secure = yes_no(self.getvar_optional(Variable::Secure)?);
        let unlocked = yes_no(self.getvar_optional(Variable::Unlocked)?);
        let is_userspace = yes_no(self.getvar_optional(Variable::IsUserspace)?);
        let slot_count = self.slot_count()?;
        let current_slot = if slot_count > 0 {
            self.current_slot()?
        } else {
            None
        };
        let max_download_size = self
            .getvar_optional(Variable::MaxDownloadSize)?
            .and_then(|v| parse_size(&v));
        let version_bootloader = self.getvar_optional(Variable::VersionBootloader)?;
        Ok(DeviceIdentity {
            product,
            serialno,
            secure,
            unlocked,
            is_userspace,
            current_slot,
            slot_count,
            max_download_size,
            version_bootloader,
        })
    }

    /// `slot-count`, 0 when the device has no A/B slots (or does not say).
    pub fn slot_count(&mut self) -> Result<u32, FastbootError> {
        Ok(self
            .getvar_optional(Variable::SlotCount)?
            .and_then(|v| parse_size(&v))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0))
    }

    /// `current-slot` without the `_` older bootloaders prefix.
    pub fn current_slot(&mut self) -> Result<Option<String>, FastbootError> {
        Ok(self
            .getvar_optional(Variable::CurrentSlot)?
            .and_then(|v| parse_slot(&v)))
    }

    /// `has-slot:PART` is `yes`.
    pub fn has_slot(&mut self, partition: &str) -> Result<bool, FastbootError> {
        Ok(yes_no(self.getvar_optional(Variable::HasSlot(partition))?) == Some(true))
    }

    /// `partition-size:PART`; an error naming the partition when the device does not know it.
    pub fn partition_size(&mut self, partition: &str) -> Result<u64, FastbootError> {
        let value = self.getvar_optional(Variable::PartitionSize(partition))?;
        value.as_deref().and_then(parse_size).ok_or_else(|| {
            FastbootError::Unsupported(format!(
                "device reports no usable partition-size for `{partition}` ({}); check the \
                 partition name and slot",
                value.as_deref().unwrap_or("unknown variable")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_hex_or_decimal() {
        assert_eq!(parse_size("0x10000000"), Some(0x1000_0000));
        assert_eq!(parse_size("0X20"), Some(0x20));
        assert_eq!(parse_size(" 536870912 "), Some(536_870_912));
        assert_eq!(parse_size("0"), Some(0));
        for bad in [
            "",
            "0x",
            "0xg",
            "12ab",
            "-1",
            "1e9",
            "0x1 2",
            "99999999999999999999",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn slots_parse_with_or_without_underscore() {
        assert_eq!(parse_slot("a").as_deref(), Some("a"));
        assert_eq!(parse_slot("_b").as_deref(), Some("b"));
        assert_eq!(parse_slot(""), None);
        assert_eq!(parse_slot("ab"), None);
        assert_eq!(parse_slot("A"), None);
    }
}
