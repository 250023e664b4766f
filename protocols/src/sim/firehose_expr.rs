//! The arithmetic a Firehose programmer evaluates in `start_sector` and patch `value`
//! attributes: numbers (decimal, Trace32-style `6.`, `0x` hex), `NUM_DISK_SECTORS`, `+ - * /`,
//! parentheses, and — for patch values — `CRC32(start_sector, length_in_bytes)`.
//! Package generators write these so one package fits any disk size; the device resolves them.

/// A patch value: plain arithmetic, or a CRC32 over a byte range the device must read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchValue {
    Number(u64),
    Crc32 { start_sector: u64, len_bytes: u64 },
}

pub fn eval(expr: &str, num_disk_sectors: u64) -> Result<u64, String> {
    let mut p = Expr {
        s: expr.as_bytes(),
        pos: 0,
        n: num_disk_sectors,
        depth: 0,
    };
    let v = p.sum()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(format!("unexpected `{}` in `{expr}`", &expr[p.pos..]));
    }
    Ok(v)
}

pub fn eval_patch_value(expr: &str, num_disk_sectors: u64) -> Result<PatchValue, String> {
    let t = expr.trim();
    if let Some(inner) = t.strip_prefix("CRC32(").and_then(|r| r.strip_suffix(')')) {
        let (a, b) = split_top_level_comma(inner)
            .ok_or_else(|| format!("CRC32 needs two arguments: `{expr}`"))?;
        return Ok(PatchValue::Crc32 {
            start_sector: eval(a, num_disk_sectors)?,
            len_bytes: eval(b, num_disk_sectors)?,
        });
    }
    eval(t, num_disk_sectors).map(PatchValue::Number)
}

fn split_top_level_comma(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

struct Expr<'a> {
    s: &'a [u8],
    pos: usize,
    n: u64,
    depth: usize,
}

impl Expr<'_> {
    fn ws(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }

    fn sum(&mut self) -> Result<u64, String> {
        let mut v = self.product()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let r = self.product()?;
            v = if op == b'+' {
                v.checked_add(r)
            } else {
                v.checked_sub(r)
            }
            .ok_or("arithmetic overflow or negative result")?;
        }
        Ok(v)
    }

    fn product(&mut self) -> Result<u64, String> {
        let mut v = self.atom()?;
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.pos += 1;
            let r = self.atom()?;
            v = if op == b'*' {
                v.checked_mul(r)
            } else {
                v.checked_div(r)
            }
            .ok_or("arithmetic overflow or division by zero")?;
        }
        Ok(v)
    }

    fn atom(&mut self) -> Result<u64, String> {
        match self.peek() {
            Some(b'(') => {
                self.depth += 1;
                if self.depth > 32 {
                    return Err("expression nested too deeply".into());
                }
                self.pos += 1;
                let v = self.sum()?;
                if self.peek() != Some(b')') {
                    return Err("missing `)`".into());
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(v)
            }
            Some(b) if b.is_ascii_digit() => self.number(),
            Some(b) if b.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .s
                    .get(self.pos)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
                {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"NUM_DISK_SECTORS" => Ok(self.n),
                    other => Err(format!("unknown name `{}`", String::from_utf8_lossy(other))),
                }
            }
            _ => Err("expected a number".into()),
        }
    }

    fn number(&mut self) -> Result<u64, String> {
        let rest = &self.s[self.pos..];
        if rest.starts_with(b"0x") || rest.starts_with(b"0X") {
            let digits = rest[2..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            let text = std::str::from_utf8(&rest[2..2 + digits]).unwrap_or_default();
            self.pos += 2 + digits;
            return u64::from_str_radix(text, 16).map_err(|e| e.to_string());
        }
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let text = std::str::from_utf8(&rest[..digits]).unwrap_or_default();
        self.pos += digits;
        // Trace32 notation: a trailing `.` marks a decimal number.
        if self.s.get(self.pos) == Some(&b'.') {
            self.pos += 1;
        }
        text.parse().map_err(|e| format!("`{text}`: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_package_expressions() {
        assert_eq!(eval("6", 1000), Ok(6));
        assert_eq!(eval("NUM_DISK_SECTORS-5.", 1000), Ok(995));
        assert_eq!(eval("NUM_DISK_SECTORS-1", 1000), Ok(999));
        assert_eq!(eval("(4096*NUM_DISK_SECTORS)-20480.", 10), Ok(20480));
        assert_eq!(eval("0x10 + 2*3", 0), Ok(22));
        assert!(eval("NUM_DISK_SECTORS-5.", 3).is_err());
        assert!(eval("FOO-1", 3).is_err());
        assert!(eval("1/0", 3).is_err());
        assert!(eval("(((1)", 3).is_err());
        assert!(eval("", 3).is_err());
        assert!(eval("99999999999999999999999", 3).is_err());
    }

    #[test]
    fn evaluates_crc32_patch_values() {
        assert_eq!(
            eval_patch_value("CRC32(NUM_DISK_SECTORS-5.,4096)", 100),
            Ok(PatchValue::Crc32 {
                start_sector: 95,
                len_bytes: 4096
            })
        );
        assert_eq!(
            eval_patch_value("NUM_DISK_SECTORS-6.", 100),
            Ok(PatchValue::Number(94))
        );
        assert!(eval_patch_value("CRC32(2)", 100).is_err());
    }
}
