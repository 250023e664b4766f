//! Build identity: the build id a system filesystem carries in its `build.prop`
//! (`ro.build.display.id`), read through the same layered finder as the activation client —
//! from an image file at pre-flight, from the phone's blocks at verification.

use crate::image::{FindError, Finder};
use crate::read_at::ReadAt;

/// The property that names the build, as Android's Settings shows it ("Build number").
pub const BUILD_ID_PROPERTY: &str = "ro.build.display.id";

/// Where a system filesystem keeps `build.prop`, in the order they are tried: a system-as-root
/// image (Android 10 and later) has it under `/system`, an older `system` image at its root.
pub const BUILD_PROP_PATHS: [&str; 2] = ["/system/build.prop", "/build.prop"];

/// Largest `build.prop` read (real ones are a few KiB).
pub const MAX_BUILD_PROP_SIZE: u64 = 1 << 20;

/// A `build.prop` found in a filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildProp {
    /// Its path in the filesystem (`/system/build.prop`).
    pub path: String,
    /// `ro.build.display.id`, when the file sets it.
    pub build_id: Option<String>,
    /// Bytes read from the source to find and read it (the last path tried).
    pub bytes_read: u64,
}

/// The value of `property` in `build.prop` text: `key=value` lines, `#` comments, blanks around
/// key and value ignored. The first assignment wins, as for Android's read-only `ro.`
/// properties; an empty value is no value.
pub fn property(text: &[u8], property: &str) -> Option<String> {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim() == property)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// Reads `build.prop` at the first of `paths` that exists in the filesystem `finder` opens on
/// `source`; `Ok(None)` when none of them does. The source is handed back whatever the outcome.
pub fn read_build_prop<S: ReadAt + Send>(
    finder: &Finder,
    mut source: S,
    paths: &[&str],
) -> (S, Result<Option<BuildProp>, FindError>) {
    for path in paths {
        let mut text = Vec::new();
        let (back, result) = finder.read_file(source, path, MAX_BUILD_PROP_SIZE, &mut text);
        source = back;
        match result {
            Ok(found) => {
                return (
                    source,
                    Ok(Some(BuildProp {
                        path: (*path).to_string(),
                        build_id: property(&text, BUILD_ID_PROPERTY),
                        bytes_read: found.bytes_read,
                    })),
                );
            }
            Err(e) if e.is_absent_file() => {}
            Err(e) => return (source, Err(e)),
        }
    }
    (source, Ok(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_assignment_of_the_property_is_the_build_id() {
        let text = b"# begin build properties\nro.build.id=TQ3A.230901.001\n\
                     ro.build.display.id = FG.00EEA.20251128 \nro.build.display.id=LATER\n";
        assert_eq!(
            property(text, BUILD_ID_PROPERTY).as_deref(),
            Some("FG.00EEA.20251128")
        );
        assert_eq!(
            property(text, "ro.build.id").as_deref(),
            Some("TQ3A.230901.001")
        );
        assert_eq!(
            property(b"ro.build.display.id.extra=x\n", BUILD_ID_PROPERTY),
            None
        );
        assert_eq!(
            property(b"#ro.build.display.id=x\n", BUILD_ID_PROPERTY),
            None
        );
        assert_eq!(property(b"ro.build.display.id=\n", BUILD_ID_PROPERTY), None);
        assert_eq!(property(b"\xff\xfe=\n", BUILD_ID_PROPERTY), None);
    }
}
