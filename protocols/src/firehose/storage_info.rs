//! `<getstorageinfo>` answers: programmers print the geometry as JSON inside a `<log>` line,
//! e.g. `INFO: {"storage_info": {"total_blocks":7805952, "block_size":4096, "page_size":4096,
//! "num_physical":6, "mem_type":"UFS", "prod_name":"KLUDG4UHDB-B2D1"}}`. Only the fields are
//! picked out (no JSON library in `protocols`); missing fields stay `None`.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageInfo {
    pub total_blocks: Option<u64>,
    pub block_size: Option<u64>,
    pub page_size: Option<u64>,
    pub num_physical: Option<u64>,
    pub mem_type: Option<String>,
    pub prod_name: Option<String>,
    pub fw_version: Option<String>,
    /// Every log line of the answer, for display.
    pub lines: Vec<String>,
}

impl StorageInfo {
    pub fn from_logs(lines: &[String]) -> Self {
        let mut info = StorageInfo {
            lines: lines.to_vec(),
            ..Default::default()
        };
        for line in lines.iter().filter(|l| l.contains('{')) {
            info.total_blocks = info
                .total_blocks
                .or_else(|| json_number(line, "total_blocks"));
            info.block_size = info.block_size.or_else(|| json_number(line, "block_size"));
            info.page_size = info.page_size.or_else(|| json_number(line, "page_size"));
            info.num_physical = info
                .num_physical
                .or_else(|| json_number(line, "num_physical"));
            info.mem_type = info
                .mem_type
                .take()
                .or_else(|| json_string(line, "mem_type"));
            info.prod_name = info
                .prod_name
                .take()
                .or_else(|| json_string(line, "prod_name"));
            info.fw_version = info
                .fw_version
                .take()
                .or_else(|| json_string(line, "fw_version"));
        }
        info
    }

    /// LUN size in bytes when both geometry fields were reported.
    pub fn size_bytes(&self) -> Option<u64> {
        self.total_blocks?.checked_mul(self.block_size?)
    }
}

/// The text right after `"key":` (spaces skipped).
fn json_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\"");
    let at = line.find(&pattern)? + pattern.len();
    let rest = line[at..].trim_start().strip_prefix(':')?;
    Some(rest.trim_start())
}

fn json_number(line: &str, key: &str) -> Option<u64> {
    let v = json_value(line, key)?;
    let end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    v[..end].parse().ok()
}

fn json_string(line: &str, key: &str) -> Option<String> {
    let v = json_value(line, key)?.strip_prefix('"')?;
    Some(v[..v.find('"')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_geometry_out_of_a_log_line() {
        let lines = vec![
            "INFO: Calling handler for getstorageinfo".to_owned(),
            r#"INFO: {"storage_info": {"total_blocks":7805952, "block_size":4096, "page_size":4096, "num_physical":6, "manufacturer_id":462, "serial_num":1234, "fw_version":"0300","mem_type":"UFS","prod_name":"KLUDG4UHDB-B2D1"}}"#.to_owned(),
        ];
        let info = StorageInfo::from_logs(&lines);
        assert_eq!(info.total_blocks, Some(7_805_952));
        assert_eq!(info.block_size, Some(4096));
        assert_eq!(info.num_physical, Some(6));
        assert_eq!(info.mem_type.as_deref(), Some("UFS"));
        assert_eq!(info.prod_name.as_deref(), Some("KLUDG4UHDB-B2D1"));
        assert_eq!(info.fw_version.as_deref(), Some("0300"));
        assert_eq!(info.size_bytes(), Some(7_805_952 * 4096));
    }

    #[test]
    fn missing_or_broken_fields_are_none() {
        let lines =
            vec![r#"INFO: {"storage_info": {"total_blocks": x, "block_size":}}"#.to_owned()];
        let info = StorageInfo::from_logs(&lines);
        assert_eq!(info.total_blocks, None);
        assert_eq!(info.block_size, None);
        assert_eq!(info.size_bytes(), None);
    }
}
