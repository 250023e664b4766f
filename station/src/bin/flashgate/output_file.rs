//! A file a command writes from a device (a partition read back, a dump): written under a
//! temporary name beside it and renamed into place only when complete, so a failed or cut read
//! never leaves a partial file under the name asked for.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;

pub struct OutputFile {
    partial: tempfile::NamedTempFile,
    path: PathBuf,
}

impl OutputFile {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .with_context(|| format!("{} names no file", path.display()))?;
        let partial = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".partial")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a file beside {}", path.display()))?;
        Ok(Self {
            partial,
            path: path.to_path_buf(),
        })
    }

    pub fn file(&self) -> &File {
        self.partial.as_file()
    }

    /// Makes the complete file appear under its name (a partial one is deleted when dropped).
    pub fn commit(self) -> anyhow::Result<()> {
        self.partial
            .as_file()
            .sync_all()
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.partial
            .persist(&self.path)
            .map(drop)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn only_a_committed_file_appears_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boot.img");
        let out = OutputFile::create(&path).unwrap();
        out.file().write_all(b"half").unwrap();
        drop(out);
        assert!(!path.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no partial file left"
        );

        let out = OutputFile::create(&path).unwrap();
        out.file().write_all(b"whole").unwrap();
        out.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
    }
}
