//! The one parser for byte counts on the command line (`fastboot -S`, `--offset`, `--size`,
//! `sim --partition boot=64M`, `--super 4G` …), so every option takes the same spellings.

/// A byte count: decimal (`4096`), `0x` hex (`0x1000`, exact bytes, no unit), or decimal with a
/// binary unit, any case, optionally after a space: `K`/`KB`/`KiB` (1024), `M`/`MB`/`MiB`,
/// `G`/`GB`/`GiB`, `T`/`TB`/`TiB`, and `B` for bytes. `KB` means 1024 as it does to
/// `fastboot -S 64K` and to partition tables; nobody sizes a partition in powers of ten.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let bad =
        || format!("`{text}` is not a byte count (examples: 4096, 0x1000, 64K, 512M, 1G, 10MiB)");
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        return u64::from_str_radix(hex, 16).map_err(|_| bad());
    }
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    if number.is_empty() {
        return Err(bad());
    }
    let n: u64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim_start().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::parse_byte_size;

    #[test]
    fn byte_counts_in_every_spelling_the_options_take() {
        let accepted: &[(&str, u64)] = &[
            ("0", 0),
            ("4096", 4096),
            ("0x1000", 0x1000),
            ("0X1000", 0x1000),
            ("0xffffffffffffffff", u64::MAX),
            ("512B", 512),
            ("64K", 64 << 10),
            ("64k", 64 << 10),
            ("64KB", 64 << 10),
            ("64KiB", 64 << 10),
            ("64M", 64 << 20),
            ("10MiB", 10 << 20),
            ("10 MiB", 10 << 20),
            ("1G", 1 << 30),
            ("1g", 1 << 30),
            ("4GiB", 4 << 30),
            ("2T", 2 << 40),
            (" 64M ", 64 << 20),
        ];
        for &(text, bytes) in accepted {
            assert_eq!(parse_byte_size(text), Ok(bytes), "{text:?}");
        }
        let refused = [
            "",
            "M",
            "lots",
            "12Q",
            "-1",
            "+1",
            "1.5M",
            "0x",
            "0x1G",
            "0x1000K",
            "64 M B",
            "0x10000000000000000",
            "99999999999999G",
            "17179869184G",
        ];
        for text in refused {
            let error = parse_byte_size(text).expect_err(text);
            assert!(error.contains(&format!("`{text}`")), "{error}");
        }
    }
}
