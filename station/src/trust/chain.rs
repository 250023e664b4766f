//! The journal's hash chain, as bytes: the canonical encoding of one finished attempt row, the
//! hash of that encoding, and the link that ties it to the row before it in its station's chain.
//!
//! Everything here is a pure function of values, so the station that appends a row, `journal
//! verify`, and any other reader (the fleet database) compute the same bytes. The encoding is
//! versioned ([`CHAIN_VERSION`]): each chained row stores the version it was hashed with, so a
//! later version can cover more columns without breaking the rows already chained.
//!
//! # Content encoding, version 1
//! ```text
//! "flashgate.journal.attempt.v1\n"
//! then for each column of ATTEMPT_COLUMNS_V1, in that order:
//!     name (ASCII) 0x00 tag value
//! tag 'n': NULL (no value)
//!     'i': INTEGER, 8 bytes big-endian two's complement
//!     'r': REAL, the 8 bytes of the IEEE 754 double, big-endian
//!     't': TEXT, length as 4 bytes big-endian, then the UTF-8 bytes
//!     'b': BLOB, length as 4 bytes big-endian, then the bytes
//! ```
//! The value is what SQLite holds (its storage class), so a text `'5'` put where the station
//! wrote the integer 5 changes the hash.
//!
//! # Content encoding, version 2
//! As version 1, with the first line `"flashgate.journal.attempt.v2\n"` and the columns of
//! ATTEMPT_COLUMNS_V2: version 1's, then `line` (the production line the attempt was made on).
//! The line is hashed because it is part of what happened to the unit: a report by line is
//! what quality reads when a line is suspected, so moving a unit's row to another line by hand
//! must break the chain like any other edit. Rows chained under version 1 keep their version
//! and verify as they were written.
//!
//! # Link, version 1
//! `link = SHA-256("flashgate.journal.link.v1\n" || seq (8 bytes BE) || prev (32) || content (32))`
//! where `prev` is the link of the station's row with `seq - 1`, or for `seq = 1` the genesis
//! value `SHA-256("flashgate.journal.genesis.v1\n" || len(station_id) (4 bytes BE) ||
//! station_id || chain_origin (8 bytes BE))`: `chain_origin` is the highest attempt id the
//! journal held when it started chaining (rows up to it that finished before are "before the
//! chain"), so moving that boundary breaks the first link.

use sha2::{Digest, Sha256};

use crate::digest::Sha256Digest;

/// The encoding the station hashes new rows with.
pub const CHAIN_VERSION: i64 = 2;

/// The columns of an `attempts` row the version-1 content hash covers, in encoding order: every
/// column of the row except the chain's own (which hold the result of hashing).
pub const ATTEMPT_COLUMNS_V1: [&str; 38] = [
    "id",
    "unit_serial",
    "slot",
    "port_path",
    "station_id",
    "work_order",
    "work_order_quantity",
    "product",
    "region",
    "build_id",
    "manifest_sha256",
    "mode",
    "images_sent",
    "activation_sha256_found",
    "verify_method",
    "verify_bytes_read",
    "result",
    "failure_code",
    "failure_message",
    "passed_under_other_work_orders",
    "started_at_ms",
    "identified_at_ms",
    "flash_started_at_ms",
    "flash_done_at_ms",
    "verify_started_at_ms",
    "verify_done_at_ms",
    "finished_at_ms",
    "tool_version",
    "log_path",
    "chip_serial",
    "operator_id",
    "unit_code",
    "unit_code_source",
    "build_id_found",
    "manifest_signed_by",
    "engineering_mode",
    "fleet_place",
    "seen_elsewhere",
];

/// The columns the version-2 content hash covers: version 1's, then the attempt's line.
pub const ATTEMPT_COLUMNS_V2: [&str; 39] = appended(ATTEMPT_COLUMNS_V1, "line");

const fn appended<const N: usize, const M: usize>(
    columns: [&'static str; N],
    last: &'static str,
) -> [&'static str; M] {
    let mut out = [last; M];
    let mut i = 0;
    while i < N && i < M {
        out[i] = columns[i];
        i += 1;
    }
    out
}

/// The columns a content hash of `version` covers, if flashgate knows that version.
pub fn columns_of_version(version: i64) -> Option<&'static [&'static str]> {
    match version {
        1 => Some(&ATTEMPT_COLUMNS_V1),
        2 => Some(&ATTEMPT_COLUMNS_V2),
        _ => None,
    }
}

/// One column's value as SQLite stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl ColumnValue {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Null => out.push(b'n'),
            Self::Integer(v) => {
                out.push(b'i');
                out.extend_from_slice(&v.to_be_bytes());
            }
            Self::Real(v) => {
                out.push(b'r');
                out.extend_from_slice(&v.to_bits().to_be_bytes());
            }
            Self::Text(text) => {
                out.push(b't');
                push_bytes(out, text.as_bytes());
            }
            Self::Blob(bytes) => {
                out.push(b'b');
                push_bytes(out, bytes);
            }
        }
    }
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // A journal value past 4 GiB does not exist (SQLite's own limit is 1 GB); saturating keeps
    // this total rather than panicking on one.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The encoding of `version` of a row given as `(column, value)` in the order of
/// [`columns_of_version`].
pub fn encode_content<'a>(
    version: i64,
    columns: impl IntoIterator<Item = (&'a str, &'a ColumnValue)>,
) -> Vec<u8> {
    let mut out = format!("flashgate.journal.attempt.v{version}\n").into_bytes();
    for (name, value) in columns {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        value.encode(&mut out);
    }
    out
}

/// SHA-256 of a row's content encoding.
pub fn content_hash(encoding: &[u8]) -> Sha256Digest {
    Sha256Digest::of_bytes(encoding)
}

/// The `prev` of a station's first chained row.
pub fn genesis(station_id: &str, chain_origin: i64) -> Sha256Digest {
    let mut hasher = Sha256::new();
    hasher.update(b"flashgate.journal.genesis.v1\n");
    let len = u32::try_from(station_id.len()).unwrap_or(u32::MAX);
    hasher.update(len.to_be_bytes());
    hasher.update(station_id.as_bytes());
    hasher.update(chain_origin.to_be_bytes());
    Sha256Digest::from_hasher(hasher)
}

/// The link of the row at `seq` whose content hashes to `content`, after `prev`.
pub fn link(seq: i64, prev: &Sha256Digest, content: &Sha256Digest) -> Sha256Digest {
    let mut hasher = Sha256::new();
    hasher.update(b"flashgate.journal.link.v1\n");
    hasher.update(seq.to_be_bytes());
    hasher.update(prev.0);
    hasher.update(content.0);
    Sha256Digest::from_hasher(hasher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_kind_has_its_literal_bytes() {
        let values = [
            ("a", ColumnValue::Null),
            ("id", ColumnValue::Integer(258)),
            ("n", ColumnValue::Integer(-1)),
            ("r", ColumnValue::Real(1.5)),
            ("s", ColumnValue::Text("é!".into())),
            ("b", ColumnValue::Blob(vec![0xff])),
        ];
        let encoded = encode_content(1, values.iter().map(|(n, v)| (*n, v)));
        let mut expected = b"flashgate.journal.attempt.v1\n".to_vec();
        expected.extend_from_slice(b"a\0n");
        expected.extend_from_slice(b"id\0i\0\0\0\0\0\0\x01\x02");
        expected.extend_from_slice(b"n\0i\xff\xff\xff\xff\xff\xff\xff\xff");
        expected.extend_from_slice(b"r\0r\x3f\xf8\0\0\0\0\0\0");
        expected.extend_from_slice(b"s\0t\0\0\0\x03\xc3\xa9!");
        expected.extend_from_slice(b"b\0b\0\0\0\x01\xff");
        assert_eq!(encoded, expected);
    }

    #[test]
    fn text_and_integer_of_the_same_digits_differ() {
        let as_text = ColumnValue::Text("5".into());
        let as_integer = ColumnValue::Integer(5);
        assert_ne!(
            encode_content(1, [("slot", &as_text)]),
            encode_content(1, [("slot", &as_integer)])
        );
        // A value cannot spill into the next column: the length says where it ends.
        let ab = (ColumnValue::Text("ab".into()), ColumnValue::Text("".into()));
        let a_b = (ColumnValue::Text("a".into()), ColumnValue::Text("b".into()));
        assert_ne!(
            encode_content(1, [("x", &ab.0), ("y", &ab.1)]),
            encode_content(1, [("x", &a_b.0), ("y", &a_b.1)])
        );
    }

    #[test]
    fn links_and_genesis_are_pinned() {
        // Computed once and pinned: a change here breaks every chain already written.
        let origin = genesis("line3-st01", 0);
        assert_eq!(
            origin.to_hex(),
            hex_of(&{
                let mut pre = b"flashgate.journal.genesis.v1\n".to_vec();
                pre.extend_from_slice(&[0, 0, 0, 10]);
                pre.extend_from_slice(b"line3-st01");
                pre.extend_from_slice(&[0; 8]);
                pre
            })
        );
        let content = content_hash(b"x");
        let first = link(1, &origin, &content);
        let mut pre = b"flashgate.journal.link.v1\n".to_vec();
        pre.extend_from_slice(&1i64.to_be_bytes());
        pre.extend_from_slice(&origin.0);
        pre.extend_from_slice(&content.0);
        assert_eq!(first.to_hex(), hex_of(&pre));
        // The same two values from an outside computation (Python's hashlib), as literals.
        assert_eq!(
            origin.to_hex(),
            "22994cdc116824210929e583baf55d58ae901a55249151d1d8f0957cb1d94788"
        );
        assert_eq!(
            first.to_hex(),
            "70eca1c49352d7fce10b76abe43a5bd66f18e1f41b246dcbc611b862310381b0"
        );
        assert_ne!(genesis("line3-st01", 7), origin);
        assert_ne!(link(2, &origin, &content), first);
    }

    fn hex_of(bytes: &[u8]) -> String {
        Sha256Digest::of_bytes(bytes).to_hex()
    }

    #[test]
    fn only_known_versions_have_columns() {
        assert_eq!(columns_of_version(1).map(<[_]>::len), Some(38));
        assert_eq!(columns_of_version(2).map(<[_]>::len), Some(39));
        assert_eq!(columns_of_version(3), None);
        // Version 2 is version 1 and the line, in that order: a version-1 row is read as it was.
        assert_eq!(ATTEMPT_COLUMNS_V2[..38], ATTEMPT_COLUMNS_V1);
        assert_eq!(ATTEMPT_COLUMNS_V2[38], "line");
        assert_eq!(CHAIN_VERSION, 2);
    }

    #[test]
    fn each_version_names_itself_first() {
        let line = ColumnValue::Text("line3".into());
        let v2 = encode_content(2, [("line", &line)]);
        let mut expected = b"flashgate.journal.attempt.v2\n".to_vec();
        expected.extend_from_slice(b"line\0t\0\0\0\x05line3");
        assert_eq!(v2, expected);
        assert_ne!(
            content_hash(&v2),
            content_hash(&encode_content(1, [("line", &line)]))
        );
    }
}
