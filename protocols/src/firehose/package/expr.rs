//! The arithmetic package generators write in `start_sector` and patch `value` attributes so one
//! package fits any disk size: numbers (decimal, Trace32-style `6.`, `0x` hex), the name
//! `NUM_DISK_SECTORS`, `+ - * /`, parentheses, and in patch values `CRC32(start, length)`. The
//! programmer evaluates them on the device; the host parses them when a package is loaded (a
//! typo is refused with its line) and evaluates them against a LUN size the product declares.

use std::fmt;

/// Longest expression accepted (real ones are under 40 characters).
const MAX_LEN: usize = 256;
/// Deepest parenthesis nesting accepted.
const MAX_PARENS: usize = 16;

/// A parsed sector expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectorExpr {
    node: Node,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Number(u64),
    DiskSectors,
    Binary(Box<Node>, Op, Box<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

/// Why an expression cannot be evaluated for a disk size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// The result is below zero (`NUM_DISK_SECTORS-34.` on a disk of 20 sectors).
    Negative,
    Overflow,
    DivisionByZero,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Negative => "the result is below zero",
            Self::Overflow => "the result overflows 64 bits",
            Self::DivisionByZero => "it divides by zero",
        })
    }
}

impl SectorExpr {
    /// Parses `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_LEN {
            return Err(format!("longer than {MAX_LEN} characters"));
        }
        let mut parser = Parser {
            s: text.as_bytes(),
            pos: 0,
            parens: 0,
        };
        let node = parser.sum()?;
        parser.skip_ws();
        if parser.pos != parser.s.len() {
            return Err(format!(
                "unexpected `{}`",
                String::from_utf8_lossy(&parser.s[parser.pos..])
            ));
        }
        Ok(Self { node })
    }

    /// The value when it does not depend on the disk size.
    pub fn constant(&self) -> Option<u64> {
        if self.node.uses_disk_size() {
            None
        } else {
            self.node.eval(0).ok()
        }
    }

    pub fn uses_disk_size(&self) -> bool {
        self.node.uses_disk_size()
    }

    /// The value on a disk of `num_disk_sectors` sectors.
    pub fn eval(&self, num_disk_sectors: u64) -> Result<u64, EvalError> {
        self.node.eval(num_disk_sectors)
    }
}

impl Node {
    fn uses_disk_size(&self) -> bool {
        match self {
            Self::Number(_) => false,
            Self::DiskSectors => true,
            Self::Binary(a, _, b) => a.uses_disk_size() || b.uses_disk_size(),
        }
    }

    fn eval(&self, n: u64) -> Result<u64, EvalError> {
        match self {
            Self::Number(v) => Ok(*v),
            Self::DiskSectors => Ok(n),
            Self::Binary(a, op, b) => {
                let (a, b) = (a.eval(n)?, b.eval(n)?);
                match op {
                    Op::Add => a.checked_add(b).ok_or(EvalError::Overflow),
                    Op::Sub => a.checked_sub(b).ok_or(EvalError::Negative),
                    Op::Mul => a.checked_mul(b).ok_or(EvalError::Overflow),
                    Op::Div => a.checked_div(b).ok_or(EvalError::DivisionByZero),
                }
            }
        }
    }
}

/// A patch `value`: arithmetic, or the CRC32 of a byte range the programmer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchValue {
    Number(SectorExpr),
    Crc32 {
        start: SectorExpr,
        length: SectorExpr,
    },
}

impl PatchValue {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let Some(inner) = t
            .strip_prefix("CRC32(")
            .and_then(|rest| rest.strip_suffix(')'))
        else {
            return SectorExpr::parse(t).map(Self::Number);
        };
        let mut depth = 0usize;
        let comma = inner.char_indices().find_map(|(i, c)| {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => return Some(i),
                _ => {}
            }
            None
        });
        let comma = comma.ok_or("CRC32 needs two arguments: (start sector, length in bytes)")?;
        Ok(Self::Crc32 {
            start: SectorExpr::parse(&inner[..comma])?,
            length: SectorExpr::parse(&inner[comma + 1..])?,
        })
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    parens: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn sum(&mut self) -> Result<Node, String> {
        let mut node = self.product()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let rhs = self.product()?;
            let op = if op == b'+' { Op::Add } else { Op::Sub };
            node = Node::Binary(Box::new(node), op, Box::new(rhs));
        }
        Ok(node)
    }

    fn product(&mut self) -> Result<Node, String> {
        let mut node = self.atom()?;
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.pos += 1;
            let rhs = self.atom()?;
            let op = if op == b'*' { Op::Mul } else { Op::Div };
            node = Node::Binary(Box::new(node), op, Box::new(rhs));
        }
        Ok(node)
    }

    fn atom(&mut self) -> Result<Node, String> {
        match self.peek() {
            Some(b'(') => {
                self.parens += 1;
                if self.parens > MAX_PARENS {
                    return Err("parentheses nested too deeply".into());
                }
                self.pos += 1;
                let node = self.sum()?;
                if self.peek() != Some(b')') {
                    return Err("a `(` is not closed".into());
                }
                self.pos += 1;
                self.parens -= 1;
                Ok(node)
            }
            Some(b) if b.is_ascii_digit() => self.number(),
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                let start = self.pos;
                while self
                    .s
                    .get(self.pos)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
                {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"NUM_DISK_SECTORS" => Ok(Node::DiskSectors),
                    other => Err(format!(
                        "unknown name `{}` (only NUM_DISK_SECTORS is defined)",
                        String::from_utf8_lossy(other)
                    )),
                }
            }
            Some(other) => Err(format!("expected a number, found `{}`", other as char)),
            None => Err("expected a number, found the end".into()),
        }
    }

    fn number(&mut self) -> Result<Node, String> {
        let rest = &self.s[self.pos..];
        let (digits, radix, skip) = if rest.starts_with(b"0x") || rest.starts_with(b"0X") {
            let n = rest[2..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            (&rest[2..2 + n], 16, 2 + n)
        } else {
            let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            (&rest[..n], 10, n)
        };
        self.pos += skip;
        // Trace32 notation: a trailing `.` marks a decimal number.
        if radix == 10 && self.s.get(self.pos) == Some(&b'.') {
            self.pos += 1;
        }
        let text = std::str::from_utf8(digits).unwrap_or_default();
        u64::from_str_radix(text, radix)
            .map(Node::Number)
            .map_err(|_| format!("`{text}` is not a 64-bit number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, n: u64) -> Result<u64, String> {
        SectorExpr::parse(text)?.eval(n).map_err(|e| e.to_string())
    }

    #[test]
    fn evaluates_what_package_generators_write() {
        assert_eq!(eval("6", 0), Ok(6));
        assert_eq!(eval("6.", 0), Ok(6));
        assert_eq!(eval("0x6000", 0), Ok(0x6000));
        assert_eq!(eval("NUM_DISK_SECTORS-5.", 1000), Ok(995));
        assert_eq!(eval(" NUM_DISK_SECTORS - 1 ", 1000), Ok(999));
        assert_eq!(
            eval("(512*NUM_DISK_SECTORS)-16896.", 100),
            Ok(51200 - 16896)
        );
        assert_eq!(eval("2+3*4", 0), Ok(14));
        assert_eq!(eval("(2+3)*4/5", 0), Ok(4));
        assert_eq!(SectorExpr::parse("12").unwrap().constant(), Some(12));
        assert_eq!(
            SectorExpr::parse("NUM_DISK_SECTORS-1.").unwrap().constant(),
            None
        );
    }

    #[test]
    fn refuses_what_no_programmer_evaluates() {
        for bad in [
            "",
            "NUM_SECTORS-1",
            "5-",
            "(5",
            "5)",
            "0x",
            "99999999999999999999999",
            "-1",
            "1..",
            &format!("{}1{}", "(".repeat(17), ")".repeat(17)),
            &"1+".repeat(200),
        ] {
            assert!(SectorExpr::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            eval("NUM_DISK_SECTORS-34.", 20),
            Err("the result is below zero".into())
        );
        assert_eq!(
            eval("NUM_DISK_SECTORS/0", 20),
            Err("it divides by zero".into())
        );
        assert_eq!(
            eval("NUM_DISK_SECTORS*0xffffffffffff", 1 << 20),
            Err("the result overflows 64 bits".into())
        );
    }

    #[test]
    fn patch_values() {
        match PatchValue::parse("CRC32(NUM_DISK_SECTORS-5.,4096)").unwrap() {
            PatchValue::Crc32 { start, length } => {
                assert_eq!(start.eval(100), Ok(95));
                assert_eq!(length.constant(), Some(4096));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            PatchValue::parse("NUM_DISK_SECTORS-6.").unwrap(),
            PatchValue::Number(_)
        ));
        assert!(PatchValue::parse("CRC32(2)").is_err());
        assert!(PatchValue::parse("CRC32(2,)").is_err());
        assert!(PatchValue::parse("CRC(2,3)").is_err());
    }
}
