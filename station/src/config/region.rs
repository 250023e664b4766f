//! Region codes as the factory writes them on work orders: `00WW`, `00EEA`, `00CN`.

use std::fmt;

use super::yaml::deserialize_checked_str;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode(String);

impl RegionCode {
    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = (2..=8).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
        if !ok {
            return Err(format!(
                "`{text}` is not a region code; write 2 to 8 digits or capital letters, e.g. `00EEA`"
            ));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionCode({})", self.0)
    }
}

deserialize_checked_str!(RegionCode, "a region code such as 00EEA", RegionCode::parse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes() {
        for good in ["00WW", "00EEA", "00CN", "US"] {
            assert_eq!(RegionCode::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "0", "00ww", "00 EEA", "00EEA-1", "123456789"] {
            assert!(RegionCode::parse(bad).is_err(), "{bad}");
        }
    }
}
