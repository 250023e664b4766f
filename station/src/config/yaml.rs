//! Strict YAML loading: serde_yaml errors turned into [`ConfigError`]s that name file, line and
//! key, plus a way to find the line of a key for checks made after parsing (cross references,
//! paths on disk).
//!
//! The only file that uses `serde_yaml` (`.ci/run` checks it). That crate is deprecated upstream
//! (0.9.34+deprecated, archived by its author) but has shown no defect here, so it stays until
//! one appears. The maintained successor is `yaml_serde` (the YAML organization's fork,
//! github.com/yaml/yaml-serde, 0.10.x): a drop-in by package rename,
//! `serde_yaml = { package = "yaml_serde", version = "0.10" }`. Not `serde_yml`: serde_yaml's
//! author declined to point to it after a run of misguided machine-generated changes.
//! `serde_yaml_ng` and `serde_norway` are other, independent continuations.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::Deserialize;

use super::error::{ConfigError, KeyPath, KeySegment};
use super::yaml_bounds::{check_size, nesting_beyond};
pub use super::yaml_bounds::{MAX_DOCUMENT_BYTES, MAX_NESTING};
use crate::regular_file::{open_regular, RegularFileError};
/// A value taken as written, for keys whose several forms are checked by hand (a byte size as
/// text or a number, a word or a list), so the error can name the phone and what to write.
pub use serde_yaml::Value as LooseValue;

/// One YAML file as read from disk: kept so that errors found after parsing can be placed.
#[derive(Debug, Clone)]
pub struct YamlDocument {
    pub file: PathBuf,
    pub text: String,
}

impl YamlDocument {
    /// Reads `file` if it is a regular file of at most [`MAX_DOCUMENT_BYTES`] of UTF-8 text.
    pub fn read(file: &Path) -> Result<Self, ConfigError> {
        let read_error = |source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        };
        let handle = open_regular(file).map_err(|error| match error {
            RegularFileError::Missing => {
                read_error(std::io::Error::from(std::io::ErrorKind::NotFound))
            }
            RegularFileError::NotRegular(kind) => ConfigError::NotRegularFile {
                file: file.to_path_buf(),
                kind,
            },
            RegularFileError::Io(source) => read_error(source),
        })?;
        let mut bytes = Vec::new();
        handle
            .take(MAX_DOCUMENT_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        Self::from_bytes(file, &bytes)
    }

    /// A document from bytes as read from `file` (named in errors), refused unless they are
    /// UTF-8 text within [`MAX_DOCUMENT_BYTES`]. With [`YamlDocument::parse`] this is the whole
    /// loading path on arbitrary input (what the config fuzzers drive).
    pub fn from_bytes(file: impl Into<PathBuf>, bytes: &[u8]) -> Result<Self, ConfigError> {
        let file = file.into();
        check_size(&file, bytes.len())?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Self::from_text(file, text)),
            Err(e) => {
                let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
                let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
                Err(ConfigError::Invalid {
                    file,
                    line: Some(line),
                    key: KeyPath::root(),
                    problem: "the file is not UTF-8 text".into(),
                    fix: "save it as UTF-8 (configs are plain YAML text)".into(),
                })
            }
        }
    }

    /// Deserializes the whole document; any serde_yaml error becomes a placed [`ConfigError`].
    pub fn from_text(file: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            text: text.into(),
        }
    }

    /// Deserializes the whole document; any serde_yaml error becomes a placed [`ConfigError`].
    /// Documents larger than [`MAX_DOCUMENT_BYTES`] or nested deeper than [`MAX_NESTING`] are
    /// refused before the YAML parser sees them.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        check_size(&self.file, self.text.len())?;
        if let Some(line) = nesting_beyond(&self.text, MAX_NESTING) {
            return Err(ConfigError::Invalid {
                file: self.file.clone(),
                line: Some(line),
                key: KeyPath::root(),
                problem: format!("values nest more than {MAX_NESTING} levels deep here"),
                fix: "flashgate configs nest a few levels; this file is damaged or not a \
                      flashgate config, restore it from version control"
                    .into(),
            });
        }
        serde_yaml::from_str(&self.text).map_err(|e| self.convert(&e))
    }

    /// An error about `key`, placed at the key's line when the key can be found.
    pub fn error_at(
        &self,
        key: &KeyPath,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: self.line_of(key),
            key: key.clone(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// 1-based line of `key` (of the key itself for mapping entries, of the element for sequence
    /// items). Found by walking the document with serde_yaml and stopping at the key with an
    /// error, because serde_yaml only reports positions through errors.
    pub fn line_of(&self, key: &KeyPath) -> Option<usize> {
        if key.is_root() {
            return Some(1);
        }
        self.line_of_occurrence(key, 1)
    }

    /// 1-based line of the `occurrence`-th (1-based) appearance of the last key of `key` in its
    /// mapping: where a duplicate key is (serde's derived structs report duplicates unplaced).
    fn line_of_occurrence(&self, key: &KeyPath, occurrence: usize) -> Option<usize> {
        let deserializer = serde_yaml::Deserializer::from_str(&self.text);
        let seen = std::cell::Cell::new(0);
        let locate = Locate {
            path: &key.0,
            occurrence,
            seen: &seen,
        };
        match locate.deserialize(deserializer) {
            Ok(()) => None,
            Err(e) if e.to_string().contains(LOCATED) => e.location().map(|l| l.line()),
            Err(_) => None,
        }
    }

    fn convert(&self, error: &serde_yaml::Error) -> ConfigError {
        let line = error.location().map(|l| l.line());
        let mut message = error.to_string();
        if let Some(location) = error.location() {
            let suffix = format!(" at line {} column {}", location.line(), location.column());
            if let Some(at) = message.find(&suffix) {
                message.replace_range(at..at + suffix.len(), "");
            }
        }
        let (mut key, problem) = split_path_prefix(&message);
        let mut line = line;
        let fix;
        if let Some(name) = quoted_after(&problem, "duplicate field `") {
            key = key.key(name);
            line = self.line_of_occurrence(&key, 2).or(line);
            fix = "each key may appear only once here; delete or merge one of them".to_string();
        } else if let Some(name) = quoted_after(&problem, "unknown field `") {
            key = key.key(name);
            fix = "remove it or correct its spelling".to_string();
        } else if let Some(name) = quoted_after(&problem, "missing field `") {
            key = key.key(name);
            fix = "add it (configs/demo/ has a complete example)".to_string();
        } else if problem.starts_with("unknown variant") {
            fix = "use one of the listed values".to_string();
        } else if problem.starts_with("invalid type") || problem.starts_with("invalid value") {
            fix = "give a value of the expected type".to_string();
        } else if error.location().is_some() && key.is_root() && !problem.contains(';') {
            fix = "fix the YAML syntax at that line".to_string();
        } else {
            // Our own value checks already end with what to do.
            fix = String::new();
        }
        ConfigError::Invalid {
            file: self.file.clone(),
            line,
            key,
            problem,
            fix,
        }
    }
}

/// serde_yaml prefixes errors inside the document with the path of the value, `a.b[2].c: `.
fn split_path_prefix(message: &str) -> (KeyPath, String) {
    if let Some((prefix, rest)) = message.split_once(": ") {
        let looks_like_path =
            !prefix.is_empty() && !prefix.contains(char::is_whitespace) && !prefix.contains('`');
        if looks_like_path {
            return (parse_key_path(prefix), rest.to_string());
        }
    }
    (KeyPath::root(), message.to_string())
}

fn parse_key_path(text: &str) -> KeyPath {
    let mut path = KeyPath::root();
    for part in text.split('.') {
        let (name, mut indices) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            path = path.key(name);
        }
        while let Some(rest) = indices.strip_prefix('[') {
            let Some(end) = rest.find(']') else { break };
            if let Ok(index) = rest[..end].parse() {
                path = path.index(index);
            }
            indices = &rest[end + 1..];
        }
    }
    path
}

fn quoted_after<'a>(text: &'a str, opening: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(opening)?;
    rest.split('`').next()
}

const LOCATED: &str = "\u{1}flashgate-located\u{1}";

struct Locate<'p> {
    path: &'p [KeySegment],
    /// Which appearance of the last key to stop at (1: the first; 2: its duplicate).
    occurrence: usize,
    seen: &'p std::cell::Cell<usize>,
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        match self.path.first() {
            None => deserializer.deserialize_any(FailHere),
            Some(KeySegment::Key(_)) => deserializer.deserialize_map(self),
            Some(KeySegment::Index(_)) => deserializer.deserialize_seq(self),
        }
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping or sequence")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (Some(KeySegment::Key(wanted)), rest) = (self.path.first(), &self.path[1..]) else {
            return Ok(());
        };
        while let Some(matched) = map.next_key_seed(KeyMatch {
            wanted,
            stop_here: rest.is_empty(),
            occurrence: self.occurrence,
            seen: self.seen,
        })? {
            if matched {
                map.next_value_seed(Locate { path: rest, ..self })?;
                return Ok(());
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (Some(KeySegment::Index(wanted)), rest) = (self.path.first(), &self.path[1..]) else {
            return Ok(());
        };
        for _ in 0..*wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Locate { path: rest, ..self })?;
        Ok(())
    }
}

struct KeyMatch<'w> {
    wanted: &'w str,
    stop_here: bool,
    occurrence: usize,
    seen: &'w std::cell::Cell<usize>,
}

impl<'de> DeserializeSeed<'de> for KeyMatch<'_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyMatch<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        if key == self.wanted {
            if self.stop_here {
                self.seen.set(self.seen.get() + 1);
                if self.seen.get() >= self.occurrence {
                    return Err(E::custom(LOCATED));
                }
                return Ok(false);
            }
            return Ok(true);
        }
        Ok(false)
    }
    fn visit_u64<E: de::Error>(self, key: u64) -> Result<bool, E> {
        self.visit_str(&key.to_string())
    }
    fn visit_i64<E: de::Error>(self, key: i64) -> Result<bool, E> {
        self.visit_str(&key.to_string())
    }
    fn visit_bool<E: de::Error>(self, key: bool) -> Result<bool, E> {
        self.visit_str(&key.to_string())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

struct FailHere;

impl<'de> Visitor<'de> for FailHere {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("anything")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(LOCATED))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(LOCATED))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(LOCATED))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(LOCATED))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(LOCATED))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(LOCATED))
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(LOCATED))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(LOCATED))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(LOCATED))
    }
}

/// A mapping whose keys must be unique. serde_yaml lets a later duplicate silently replace an
/// earlier one when deserializing into a map, which would let a second `00EEA:` entry override
/// the reviewed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueMap<K: Ord, V>(pub BTreeMap<K, V>);

impl<'de, K, V> Deserialize<'de> for UniqueMap<K, V>
where
    K: Deserialize<'de> + Ord + fmt::Display,
    V: Deserialize<'de>,
{
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(UniqueMapVisitor(PhantomData))
    }
}

struct UniqueMapVisitor<K, V>(PhantomData<(K, V)>);

impl<'de, K, V> Visitor<'de> for UniqueMapVisitor<K, V>
where
    K: Deserialize<'de> + Ord + fmt::Display,
    V: Deserialize<'de>,
{
    type Value = UniqueMap<K, V>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some(key) = map.next_key_seed(UniqueKey {
            seen: &entries,
            _value: PhantomData::<V>,
        })? {
            let value = map.next_value()?;
            entries.insert(key, value);
        }
        Ok(UniqueMap(entries))
    }
}

struct UniqueKey<'m, K, V> {
    seen: &'m BTreeMap<K, V>,
    _value: PhantomData<V>,
}

impl<'de, K, V> DeserializeSeed<'de> for UniqueKey<'_, K, V>
where
    K: Deserialize<'de> + Ord + fmt::Display,
{
    type Value = K;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<K, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, K, V> Visitor<'de> for UniqueKey<'_, K, V>
where
    K: Deserialize<'de> + Ord + fmt::Display,
{
    type Value = K;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    // The key is checked inside the visitor so that serde_yaml places the error at the key.
    fn visit_str<E: de::Error>(self, text: &str) -> Result<K, E> {
        let key = K::deserialize(de::value::StrDeserializer::<E>::new(text))?;
        if self.seen.contains_key(&key) {
            return Err(E::custom(format!(
                "duplicate key `{key}`; each key may appear only once here, delete or rename one"
            )));
        }
        Ok(key)
    }
}

/// Implements `Deserialize` for a string newtype through a checking constructor, inside the
/// visitor so that serde_yaml attaches the value's line and key path to the error.
macro_rules! deserialize_checked_str {
    ($type:ty, $expecting:literal, $parse:expr) => {
        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct CheckedVisitor;
                impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
                    type Value = $type;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$type, E> {
                        let parse: fn(&str) -> Result<$type, String> = $parse;
                        parse(text).map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(CheckedVisitor)
            }
        }
    };
}
pub(crate) use deserialize_checked_str;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        items: Vec<Inner>,
        table: UniqueMap<String, Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        size: u64,
    }

    const GOOD: &str =
        "name: x\nitems:\n  - size: 1\n  - size: 2\ntable:\n  a:\n    size: 3\n  b: {size: 4}\n";

    #[test]
    fn locates_keys_and_items() {
        let doc = YamlDocument::from_text("t.yaml", GOOD);
        assert_eq!(doc.line_of(&KeyPath::of(&["name"])), Some(1));
        assert_eq!(doc.line_of(&KeyPath::of(&["items"]).index(1)), Some(4));
        assert_eq!(
            doc.line_of(&KeyPath::of(&["items"]).index(1).key("size")),
            Some(4)
        );
        assert_eq!(doc.line_of(&KeyPath::of(&["table", "a"])), Some(6));
        assert_eq!(doc.line_of(&KeyPath::of(&["table", "a", "size"])), Some(7));
        assert_eq!(doc.line_of(&KeyPath::of(&["table", "b", "size"])), Some(8));
        assert_eq!(doc.line_of(&KeyPath::of(&["table", "c"])), None);
        assert_eq!(doc.line_of(&KeyPath::of(&["items"]).index(7)), None);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = GOOD.replace("  - size: 2", "  - size: 2\n    colour: red");
        let doc = YamlDocument::from_text("t.yaml", text);
        let error = doc.parse::<Outer>().unwrap_err();
        assert_eq!(error.line(), Some(5));
        assert_eq!(error.key().unwrap().to_string(), "items[1].colour");
        let message = error.to_string();
        assert!(message.starts_with("t.yaml:5: key `items[1].colour`: unknown field `colour`"));
        assert!(
            message.contains("remove it or correct its spelling"),
            "{message}"
        );
    }

    #[test]
    fn missing_key_is_named() {
        let text = GOOD.replace("  b: {size: 4}", "  b: {}");
        let doc = YamlDocument::from_text("t.yaml", text);
        let error = doc.parse::<Outer>().unwrap_err();
        assert_eq!(error.key().unwrap().to_string(), "table.b.size");
        assert_eq!(error.line(), Some(8));
        assert!(error.to_string().contains("add it"), "{error}");
    }

    #[test]
    fn wrong_type_is_named() {
        let text = GOOD.replace("size: 3", "size: three");
        let error = YamlDocument::from_text("t.yaml", text)
            .parse::<Outer>()
            .unwrap_err();
        assert_eq!(error.key().unwrap().to_string(), "table.a.size");
        assert_eq!(error.line(), Some(7));
        assert!(error.to_string().contains("expected u64"), "{error}");
    }

    #[test]
    fn duplicate_map_key_is_refused_at_its_line() {
        let text = format!("{GOOD}  a: {{size: 5}}\n");
        let error = YamlDocument::from_text("t.yaml", text)
            .parse::<Outer>()
            .unwrap_err();
        assert_eq!(error.line(), Some(9));
        assert!(error.to_string().contains("duplicate key `a`"), "{error}");
    }

    #[test]
    fn duplicate_struct_field_is_placed_at_the_duplicate() {
        let cases = [
            // At the top level, the second `name` on line 9.
            (format!("{GOOD}name: y\n"), 9, "name"),
            // Inside a sequence item's mapping, the second `size` on line 4.
            (
                GOOD.replace("  - size: 1\n", "  - size: 1\n    size: 7\n"),
                4,
                "items[0].size",
            ),
            // Inside a map value.
            (
                GOOD.replace("    size: 3\n", "    size: 3\n    size: 3\n"),
                8,
                "table.a.size",
            ),
        ];
        for (text, line, key) in cases {
            let error = YamlDocument::from_text("t.yaml", text.as_str())
                .parse::<Outer>()
                .unwrap_err();
            let message = error.to_string();
            assert_eq!(error.line(), Some(line), "{message}");
            assert_eq!(error.key().unwrap().to_string(), key, "{message}");
            assert!(message.contains("duplicate field"), "{message}");
            assert!(message.contains("only once"), "{message}");
        }
    }

    #[track_caller]
    fn assert_too_deep(text: &str, line: usize) {
        let error = YamlDocument::from_text("deep.yaml", text)
            .parse::<Outer>()
            .unwrap_err();
        let message = error.to_string();
        assert_eq!(error.line(), Some(line), "{message}");
        assert!(
            message.starts_with(&format!(
                "deep.yaml:{line}: key `(document)`: values nest more than 64 levels deep here; "
            )),
            "{message}"
        );
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        for depth in [65, 100_000, 200_000] {
            assert_too_deep(
                &format!("name: {}{}\n", "[".repeat(depth), "]".repeat(depth)),
                1,
            );
            assert_too_deep(
                &format!("name: {}1{}\n", "{a: ".repeat(depth), "}".repeat(depth)),
                1,
            );
            assert_too_deep(&format!("{}x\n", "- ".repeat(depth)), 1);
        }
        // Flow collections over several lines, after a few good lines.
        let mut text = String::from("name: x\nitems:\n");
        for _ in 0..100 {
            text.push_str("  - [\n");
        }
        assert_too_deep(&text, 65);
        // Block mappings by indentation.
        let mut text = String::new();
        for level in 0..70 {
            text.push_str(&format!("{}k{level}:\n", " ".repeat(level)));
        }
        assert_too_deep(&text, 65);
    }

    #[test]
    fn oversized_and_non_utf8_documents_are_refused() {
        let big = vec![b'#'; MAX_DOCUMENT_BYTES + 1];
        let error = YamlDocument::from_bytes("big.yaml", &big).unwrap_err();
        assert!(error.to_string().contains("larger than 4 MiB"), "{error}");
        let error = YamlDocument::from_bytes("bad.yaml", b"name: x\nitems: \xff\n").unwrap_err();
        assert_eq!(error.line(), Some(2), "{error}");
        assert!(error.to_string().contains("not UTF-8"), "{error}");
        let doc = YamlDocument::from_bytes("ok.yaml", GOOD.as_bytes()).unwrap();
        assert!(doc.parse::<Outer>().is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_directory_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("station.yaml");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let error = YamlDocument::read(&fifo).unwrap_err();
        assert!(
            error.to_string().ends_with(
                "station.yaml is a FIFO, not a regular file; give the path of the YAML file itself"
            ),
            "{error}"
        );
        let error = YamlDocument::read(dir.path()).unwrap_err();
        assert!(error.to_string().contains("is a directory"), "{error}");
        let error = YamlDocument::read(&dir.path().join("none.yaml")).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }), "{error}");
    }

    #[test]
    fn syntax_error_is_placed() {
        let error = YamlDocument::from_text("t.yaml", "name: [x\nitems: 1\n")
            .parse::<Outer>()
            .unwrap_err();
        assert!(error.line().is_some());
        assert!(error.to_string().starts_with("t.yaml:"), "{error}");
    }
}

/// The YAML value tree, for tests that build or probe documents (the key reference test).
#[cfg(test)]
pub(super) mod tree {
    pub use serde_yaml::{from_str, to_string, Mapping, Value};
}
