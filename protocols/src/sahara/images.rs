//! The images a host offers over Sahara: usually one programmer as image 13, sometimes several
//! images by id. Files are opened, never loaded: each READ_DATA reads just the requested range.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::error::SaharaError;
use super::packet::PROGRAMMER_IMAGE_ID;

/// Which file answers which Sahara image id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaharaImages {
    entries: Vec<(u32, PathBuf)>,
}

impl SaharaImages {
    /// One Firehose programmer, served as image 13.
    pub fn programmer(path: impl Into<PathBuf>) -> Self {
        SaharaImages {
            entries: vec![(PROGRAMMER_IMAGE_ID, path.into())],
        }
    }

    /// Several images by id; a later entry for the same id replaces an earlier one.
    pub fn from_list(list: impl IntoIterator<Item = (u32, PathBuf)>) -> Self {
        let mut images = SaharaImages {
            entries: Vec::new(),
        };
        for (id, path) in list {
            images = images.with_image(id, path);
        }
        images
    }

    pub fn with_image(mut self, id: u32, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        match self.entries.iter_mut().find(|(i, _)| *i == id) {
            Some(entry) => entry.1 = path,
            None => self.entries.push((id, path)),
        }
        self
    }

    /// Parse `FILE` (image 13) or `ID:FILE` as the command line gives them.
    pub fn parse_entry(text: &str) -> (u32, PathBuf) {
        if let Some((id, file)) = text.split_once(':') {
            if let Ok(id) = id.parse::<u32>() {
                return (id, PathBuf::from(file));
            }
        }
        (PROGRAMMER_IMAGE_ID, PathBuf::from(text))
    }

    pub fn entries(&self) -> &[(u32, PathBuf)] {
        &self.entries
    }

    /// The one programmer the device loads when there is a single image: MSM8916-class ROMs
    /// report "pending" after it, which then means "done".
    pub(crate) fn is_single_programmer(&self) -> bool {
        matches!(self.entries.as_slice(), [(PROGRAMMER_IMAGE_ID, _)])
    }

    pub(crate) fn open(&self) -> Result<OpenImages, SaharaError> {
        let mut open = Vec::with_capacity(self.entries.len());
        for (id, path) in &self.entries {
            let file_error = |source| SaharaError::ImageFile {
                file: path.clone(),
                source,
            };
            let file = File::open(path).map_err(file_error)?;
            let size = file.metadata().map_err(file_error)?.len();
            open.push(OpenImage {
                id: u64::from(*id),
                path: path.clone(),
                file,
                size,
                bytes_sent: 0,
                requests: 0,
            });
        }
        Ok(OpenImages { images: open })
    }
}

pub(crate) struct OpenImage {
    pub id: u64,
    pub path: PathBuf,
    file: File,
    pub size: u64,
    pub bytes_sent: u64,
    pub requests: u64,
}

impl OpenImage {
    /// Read `buf.len()` bytes at `offset` (already checked against `size`).
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), SaharaError> {
        let path = self.path.clone();
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(buf))
            .map_err(|source| SaharaError::ImageFile { file: path, source })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub(crate) struct OpenImages {
    pub images: Vec<OpenImage>,
}

impl OpenImages {
    pub fn get_mut(&mut self, id: u64) -> Option<&mut OpenImage> {
        self.images.iter_mut().find(|i| i.id == id)
    }

    pub fn ids(&self) -> String {
        let ids: Vec<String> = self.images.iter().map(|i| i.id.to_string()).collect();
        ids.join(", ")
    }

    pub fn total_size(&self) -> u64 {
        self.images.iter().map(|i| i.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_with_and_without_id() {
        assert_eq!(
            SaharaImages::parse_entry("prog_firehose_ddr.elf"),
            (13, PathBuf::from("prog_firehose_ddr.elf"))
        );
        assert_eq!(
            SaharaImages::parse_entry("21:sbl1.mbn"),
            (21, PathBuf::from("sbl1.mbn"))
        );
        // A path with a colon that is not an id stays a path.
        assert_eq!(
            SaharaImages::parse_entry("C:prog.elf"),
            (13, PathBuf::from("C:prog.elf"))
        );
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let images = SaharaImages::from_list([
            (13, PathBuf::from("a")),
            (21, PathBuf::from("b")),
            (13, PathBuf::from("c")),
        ]);
        assert_eq!(
            images.entries(),
            &[(13, PathBuf::from("c")), (21, PathBuf::from("b"))]
        );
        assert!(!images.is_single_programmer());
        assert!(SaharaImages::programmer("p").is_single_programmer());
    }

    #[test]
    fn missing_file_is_named() {
        let err = SaharaImages::programmer("/nonexistent/prog.elf")
            .open()
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/prog.elf"), "{err}");
    }
}
