//! Flashing an image file the way a good client does (AOSP `fastboot flash`): resolve the slot,
//! learn how much the device can take in one download, then send the image as-is when it fits,
//! or as sparse pieces when it does not. The file is streamed; it is never held in memory.
//!
//! On a dynamic-partition phone the mode matters ([`super::fastbootd`]): in fastbootd a logical
//! partition is first resized to what the image expands to (AOSP's `do_flash`), so it has
//! exactly the extents the image needs; in the bootloader a logical partition is refused.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::client::Fastboot;
use super::command::Command;
use super::error::FastbootError;
use super::resparse::{self, resparse_piece_limit};
use super::slots::SlotChoice;
use super::variable::Variable;
use super::vars::parse_size;
use crate::progress::ProgressEvent;
use crate::transport::Transport;

/// Used when the device does not report `max-download-size`. Bootloaders that old usually have
/// a few hundred MiB of download RAM; 256 MiB has been safe on those we know of.
pub const DEFAULT_FALLBACK_MAX_DOWNLOAD_SIZE: u64 = 256 << 20;

/// How to flash.
#[derive(Debug, Clone)]
pub struct FlashOptions {
    pub slot: SlotChoice,
    /// Like `fastboot -S`: use this download limit instead of the device's.
    pub max_download_size: Option<u64>,
    /// The limit when the device does not report `max-download-size`.
    pub fallback_max_download_size: u64,
}

impl Default for FlashOptions {
    fn default() -> Self {
        FlashOptions {
            slot: SlotChoice::Current,
            max_download_size: None,
            fallback_max_download_size: DEFAULT_FALLBACK_MAX_DOWNLOAD_SIZE,
        }
    }
}

/// What the image file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Raw,
    /// An Android sparse image (magic `0xed26ff3a`).
    Sparse,
}

/// What one flash did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashReport {
    /// Partitions written (with slot suffix).
    pub partitions: Vec<String>,
    pub kind: ImageKind,
    /// Image file length.
    pub image_len: u64,
    /// The download limit used.
    pub max_download_size: u64,
    /// The largest download made: the image length when it went whole, else the piece limit
    /// (at most [`super::RESPARSE_LIMIT`]).
    pub piece_limit: u64,
    /// Downloads per partition (1 when the image was sent as-is).
    pub pieces: usize,
    /// Bytes sent over the link, all partitions together.
    pub bytes_sent: u64,
    /// In fastbootd, the size logical targets were resized to before they were written: the
    /// image's expanded length (`None` when every target was physical).
    pub resized_to: Option<u64>,
}

/// Look at the first bytes of an image; the reader is left at the start.
pub fn image_kind<R: Read + Seek>(image: &mut R) -> std::io::Result<ImageKind> {
    image.seek(SeekFrom::Start(0))?;
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < magic.len() {
        match image.read(&mut magic[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    image.seek(SeekFrom::Start(0))?;
    Ok(if filled == 4 && resparse::is_sparse_magic(magic) {
        ImageKind::Sparse
    } else {
        ImageKind::Raw
    })
}

impl<T: Transport> Fastboot<T> {
    /// The download limit: the override if given, else the device's `max-download-size`
    /// (hex or decimal), else the fallback. Never above what `download:%08x` can announce.
    pub fn max_download_size(&mut self, options: &FlashOptions) -> Result<u64, FastbootError> {
        let limit = match options.max_download_size {
            Some(limit) => limit,
            None => match self.getvar_optional(Variable::MaxDownloadSize)? {
                Some(text) => match parse_size(&text).filter(|&n| n > 0) {
                    Some(n) => n,
                    None => {
                        tracing::warn!(
                            value = %text,
                            fallback = options.fallback_max_download_size,
                            "device reports an unusable max-download-size; using the fallback"
                        );
                        options.fallback_max_download_size
                    }
                },
                None => options.fallback_max_download_size,
            },
        };
        if limit == 0 {
            return Err(FastbootError::Unsupported(
                "a max-download-size of 0 cannot carry any image".into(),
            ));
        }
        Ok(limit.min(u64::from(u32::MAX)))
    }

    /// Flash the image file at `path` to `partition` (slot resolved per `options.slot`).
    pub fn flash_file(
        &mut self,
        partition: &str,
        path: &Path,
        options: &FlashOptions,
    ) -> Result<FlashReport, FastbootError> {
        let mut file = File::open(path).map_err(|source| FastbootError::Io {
            what: format!("opening image {}", path.display()),
            source,
        })?;
        self.flash_image(partition, &mut file, options)
            .map_err(|e| match e {
                FastbootError::Io { what, source } => FastbootError::Io {
                    what: format!("{what} (image {})", path.display()),
                    source,
                },
                FastbootError::Image(why) => {
                    FastbootError::Image(format!("image {}: {why}", path.display()))
                }
                other => other,
            })
    }

    /// Flash an image read from `image` (raw or sparse, detected by its magic).
    pub fn flash_image<R: Read + Seek>(
        &mut self,
        partition: &str,
        image: &mut R,
        options: &FlashOptions,
    ) -> Result<FlashReport, FastbootError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| FastbootError::Io { what, source }
        };
        let kind = image_kind(image).map_err(io("reading the image header"))?;
        let image_len = image
            .seek(SeekFrom::End(0))
            .map_err(io("measuring the image"))?;
        let mode = self.mode()?;
        let targets = self.resolve_partitions(partition, &options.slot)?;
        let limit = self.max_download_size(options)?;
        let sparse_plan = match kind {
            ImageKind::Sparse => Some(resparse::sparse_plan(image)?),
            ImageKind::Raw => None,
        };
        // What a logical partition is resized to: the bytes the image writes (AOSP's
        // `image_size`, a sparse image's expanded length).
        let expanded_len = sparse_plan.as_ref().map_or(image_len, |p| p.image_len());
        // Fits in one download: raw and sparse images alike go as they are. Otherwise plan the
        // pieces once (for a raw image this reads it once) and send them to every target.
        let piece_limit = resparse_piece_limit(image_len, limit);
        let pieces = match piece_limit {
            None => None,
            Some(piece_limit) => Some(resparse::plan_pieces(image, sparse_plan, piece_limit)?),
        };
        let bytes_per_target = match &pieces {
            None => image_len,
            Some(pieces) => pieces.iter().map(resparse::piece_len).sum(),
        };
        let mut report = FlashReport {
            partitions: Vec::new(),
            kind,
            image_len,
            max_download_size: limit,
            piece_limit: piece_limit.unwrap_or(image_len),
            pieces: pieces.as_ref().map_or(1, Vec::len),
            bytes_sent: 0,
            resized_to: None,
        };
        for target in targets {
            if self.check_flash_target(mode, &target)? {
                self.run(&Command::ResizeLogicalPartition {
                    partition: &target,
                    size: expanded_len,
                })?;
                report.resized_to = Some(expanded_len);
            }
            let step = format!("flash {target}");
            self.progress().event(ProgressEvent::StepStarted {
                step: &step,
                total_bytes: bytes_per_target,
            });
            match &pieces {
                None => report.bytes_sent += self.flash_whole(&target, image, image_len)?,
                Some(pieces) => {
                    for piece in pieces {
                        report.bytes_sent += resparse::send_piece(self, &target, image, piece)?;
                    }
                }
            }
            self.progress()
                .event(ProgressEvent::StepFinished { step: &step });
            report.partitions.push(target);
        }
        Ok(report)
    }

    fn flash_whole<R: Read + Seek>(
        &mut self,
        target: &str,
        image: &mut R,
        image_len: u64,
    ) -> Result<u64, FastbootError> {
        if image_len == 0 {
            return Err(FastbootError::Image(
                "the image is empty; nothing to flash".into(),
            ));
        }
        // image_len ≤ limit ≤ u32::MAX (see max_download_size).
        let size = u32::try_from(image_len).map_err(|_| {
            FastbootError::Image(format!("{image_len} bytes do not fit one download"))
        })?;
        image
            .seek(SeekFrom::Start(0))
            .map_err(|source| FastbootError::Io {
                what: "rewinding the image".into(),
                source,
            })?;
        self.download(&mut *image, size)?;
        self.flash(target)?;
        Ok(image_len)
    }
}
