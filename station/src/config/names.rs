//! Checks shared by the configuration files for the short names they contain.

/// Station ids, product names, work order ids, build ids, partition names and file keys: they
/// become file names, journal keys and parts of log lines, so keep them to a safe alphabet.
pub fn check_identifier(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("the name is empty".to_string());
    }
    if text.len() > 64 {
        return Err(format!("`{text}` is longer than 64 characters"));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "`{text}` contains {bad:?}; only letters, digits, `-`, `_` and `.` are allowed"
        ));
    }
    if text.starts_with('.') {
        return Err(format!("`{text}` starts with `.`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for good in ["WO-1187", "line3-st01", "system_a", "FGDEMO.00WW.20261128"] {
            assert!(check_identifier(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "../x", "x/y", ".hidden", "é"] {
            assert!(check_identifier(bad).is_err(), "{bad}");
        }
    }
}
