//! Paths named by manifests: relative to the station's image root and never leaving it.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use super::yaml::deserialize_checked_str;

/// A manifest path, checked on its own: relative, no `..`, no backslashes. Whether it escapes
/// the image root through a symlink is checked by [`resolve_inside`] once the root is known.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImagePath(PathBuf);

impl ImagePath {
    pub fn parse(text: &str) -> Result<Self, String> {
        const FIX: &str = "write it relative to the station's image_root, e.g. `00WW/system.img`";
        if text.trim().is_empty() {
            return Err(format!("the path is empty; {FIX}"));
        }
        if text.contains('\\') || text.contains('\0') {
            return Err(format!(
                "`{text}` contains a backslash or NUL; use `/` between folders"
            ));
        }
        let path = Path::new(text);
        let mut clean = PathBuf::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => clean.push(part),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(format!(
                        "`{text}` uses `..`; manifest paths must stay inside the image root, {FIX}"
                    ))
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(format!(
                    "`{text}` is absolute; manifest paths must stay inside the image root, {FIX}"
                ))
                }
            }
        }
        if clean.as_os_str().is_empty() {
            return Err(format!("`{text}` names no file; {FIX}"));
        }
        Ok(Self(clean))
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl fmt::Display for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.display())
    }
}

impl fmt::Debug for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImagePath({})", self.0.display())
    }
}

deserialize_checked_str!(
    ImagePath,
    "a path relative to the image root",
    ImagePath::parse
);

/// Why a manifest path could not be placed inside the image root.
#[derive(Debug, thiserror::Error)]
pub enum PathEscape {
    #[error("`{relative}` resolves to {} (through a symlink), outside the image root {}; \
             copy the file into the image root instead of linking to it",
            target.display(), root.display())]
    OutsideRoot {
        relative: String,
        target: PathBuf,
        root: PathBuf,
    },
    #[error("`{relative}`: cannot resolve {}: {source}", joined.display())]
    Unresolvable {
        relative: String,
        joined: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Joins `relative` to the canonical `root`. When the file exists its real path is returned and
/// must lie inside `root` (symlinks are followed, so a link to `/etc/passwd` is caught); a file
/// that does not exist yet is returned joined, and pre-flight reports it missing.
pub fn resolve_inside(root: &Path, relative: &ImagePath) -> Result<PathBuf, PathEscape> {
    let joined = root.join(relative.as_path());
    match joined.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(joined),
        Err(source) => {
            return Err(PathEscape::Unresolvable {
                relative: relative.to_string(),
                joined,
                source,
            })
        }
        Ok(_) => {}
    }
    let target = match joined.canonicalize() {
        Ok(target) => target,
        // A dangling symlink: say where it points rather than "missing".
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let target = std::fs::read_link(&joined).unwrap_or_else(|_| joined.clone());
            let target = if target.is_absolute() {
                target
            } else {
                joined.parent().unwrap_or(root).join(target)
            };
            if !lexically_inside(root, &target) {
                return Err(PathEscape::OutsideRoot {
                    relative: relative.to_string(),
                    target,
                    root: root.to_path_buf(),
                });
            }
            return Ok(joined);
        }
        Err(source) => {
            return Err(PathEscape::Unresolvable {
                relative: relative.to_string(),
                joined,
                source,
            })
        }
    };
    if !target.starts_with(root) {
        return Err(PathEscape::OutsideRoot {
            relative: relative.to_string(),
            target,
            root: root.to_path_buf(),
        });
    }
    Ok(target)
}

fn lexically_inside(root: &Path, target: &Path) -> bool {
    let mut depth: Vec<Component> = Vec::new();
    for component in target.components() {
        match component {
            Component::ParentDir => {
                depth.pop();
            }
            Component::CurDir => {}
            other => depth.push(other),
        }
    }
    depth.iter().collect::<PathBuf>().starts_with(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_relative_paths() {
        assert_eq!(
            ImagePath::parse("00WW/system.img").unwrap().as_path(),
            Path::new("00WW/system.img")
        );
        assert_eq!(
            ImagePath::parse("./00WW//boot.img").unwrap().as_path(),
            Path::new("00WW/boot.img")
        );
    }

    #[test]
    fn refuses_escapes_and_oddities() {
        for bad in [
            "../etc/passwd",
            "00WW/../../x",
            "/etc/passwd",
            "a\\b",
            "",
            ".",
            "  ",
        ] {
            assert!(ImagePath::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ImagePath::parse("../x").unwrap_err().contains("`..`"));
        assert!(ImagePath::parse("/x").unwrap_err().contains("absolute"));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_out_of_the_root_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let root_dir = tempfile::tempdir().unwrap();
        let root = root_dir.path().canonicalize().unwrap();
        std::fs::write(outside.path().join("secret.img"), b"x").unwrap();
        std::fs::write(root.join("inside.img"), b"y").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.img"), root.join("link.img"))
            .unwrap();
        std::os::unix::fs::symlink(outside.path().join("gone.img"), root.join("dangling.img"))
            .unwrap();
        std::os::unix::fs::symlink("inside.img", root.join("local.img")).unwrap();

        let inside = resolve_inside(&root, &ImagePath::parse("inside.img").unwrap()).unwrap();
        assert_eq!(inside, root.join("inside.img"));
        let local = resolve_inside(&root, &ImagePath::parse("local.img").unwrap()).unwrap();
        assert_eq!(local, root.join("inside.img"));
        let missing = resolve_inside(&root, &ImagePath::parse("nope.img").unwrap()).unwrap();
        assert_eq!(missing, root.join("nope.img"));
        for escaping in ["link.img", "dangling.img"] {
            let error = resolve_inside(&root, &ImagePath::parse(escaping).unwrap()).unwrap_err();
            assert!(
                matches!(error, PathEscape::OutsideRoot { .. }),
                "{escaping}: {error}"
            );
            assert!(error.to_string().contains("outside the image root"));
        }
    }
}
