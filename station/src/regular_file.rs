//! Opening files named by configs and manifests only when they are regular files: a FIFO at such
//! a path would block the reader until some writer appears (pre-flight would hang), and a
//! directory or device is never a config or an image.

use std::fs::{File, FileType};
use std::io;
use std::path::Path;

/// Why a path could not be opened as a regular file.
#[derive(Debug, thiserror::Error)]
pub enum RegularFileError {
    #[error("no such file")]
    Missing,
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("{0}")]
    Io(#[source] io::Error),
}

/// What a path holds when it is not a regular file, for messages ("a FIFO").
pub fn describe_file_type(file_type: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a plain file"
    }
}

/// Opens `path` for reading if it is a regular file (symlinks followed). The type is checked
/// before opening and again on the open handle (the path may have been replaced in between);
/// the open itself is non-blocking, so even a FIFO swapped in at that moment cannot hang it.
/// Reads from a regular file are unaffected by `O_NONBLOCK`.
pub fn open_regular(path: &Path) -> Result<File, RegularFileError> {
    let metadata = std::fs::metadata(path).map_err(from_io)?;
    if !metadata.is_file() {
        return Err(RegularFileError::NotRegular(describe_file_type(
            metadata.file_type(),
        )));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let handle = options.open(path).map_err(from_io)?;
    let metadata = handle.metadata().map_err(RegularFileError::Io)?;
    if !metadata.is_file() {
        return Err(RegularFileError::NotRegular(describe_file_type(
            metadata.file_type(),
        )));
    }
    Ok(handle)
}

fn from_io(error: io::Error) -> RegularFileError {
    if error.kind() == io::ErrorKind::NotFound {
        RegularFileError::Missing
    } else {
        RegularFileError::Io(error)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(open_regular(&file).is_ok());
        assert!(matches!(
            open_regular(&dir.path().join("nope")),
            Err(RegularFileError::Missing)
        ));
        assert!(matches!(
            open_regular(dir.path()),
            Err(RegularFileError::NotRegular("a directory"))
        ));
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let error = open_regular(&fifo).unwrap_err();
        assert_eq!(error.to_string(), "is a FIFO, not a regular file");
        assert!(matches!(
            open_regular(Path::new("/dev/null")),
            Err(RegularFileError::NotRegular("a character device"))
        ));
    }
}
