//! Whether the station can write where its config says, asked of the kernel (`faccessat` with
//! the effective ids) without creating anything.

use std::path::Path;

/// `Ok(how)` when the station's user can write in `folder`, or create it (its nearest existing
/// ancestor is writable); `Err(why)` otherwise.
pub fn writable_folder(folder: &Path) -> Result<String, String> {
    if folder.exists() {
        if !folder.is_dir() {
            return Err("is not a folder".into());
        }
        return match can_write(folder) {
            Ok(()) => Ok("is writable".into()),
            Err(e) => Err(format!("is not writable ({e})")),
        };
    }
    let mut ancestor = folder;
    while let Some(parent) = ancestor.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if parent.exists() {
            if !parent.is_dir() {
                return Err(format!("{} is not a folder", parent.display()));
            }
            return match can_write(parent) {
                Ok(()) => Ok(format!(
                    "does not exist yet; the station creates it (in {}, writable)",
                    parent.display()
                )),
                Err(e) => Err(format!(
                    "does not exist, and {} is not writable to create it ({e})",
                    parent.display()
                )),
            };
        }
        ancestor = parent;
    }
    Err("no part of the path exists".into())
}

#[cfg(unix)]
fn can_write(folder: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(folder.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("the path holds a NUL byte"))?;
    // SAFETY: a NUL-terminated path that outlives the call; no memory is shared.
    let rc = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn can_write(folder: &Path) -> std::io::Result<()> {
    let metadata = std::fs::metadata(folder)?;
    if metadata.permissions().readonly() {
        Err(std::io::Error::other("read-only"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_missing_and_blocked_folders() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(writable_folder(dir.path()).unwrap(), "is writable");
        let deep = dir.path().join("state/logs");
        assert!(writable_folder(&deep)
            .unwrap()
            .starts_with("does not exist yet"));
        assert!(!deep.exists(), "the check created the folder");
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(writable_folder(&file).unwrap_err(), "is not a folder");
        assert!(writable_folder(&file.join("sub"))
            .unwrap_err()
            .contains("is not a folder"));
        // Root writes anywhere the filesystem allows; the mode is checked for other users.
        #[cfg(unix)]
        if unsafe { libc::geteuid() } != 0 {
            use std::os::unix::fs::PermissionsExt;
            let locked = dir.path().join("locked");
            std::fs::create_dir(&locked).unwrap();
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
            assert!(writable_folder(&locked)
                .unwrap_err()
                .contains("not writable"));
            assert!(writable_folder(&locked.join("logs"))
                .unwrap_err()
                .contains("not writable to create it"));
        }
    }
}
