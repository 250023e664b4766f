//! The one place flashing touches the sparse format: an image larger than the device's
//! download limit goes as sparse pieces, split the way libsparse splits for the AOSP client
//! (each piece declares the whole image, DONT_CARE over the other pieces' ranges); a raw image
//! is resparsed on the fly (repeated 32-bit words become FILL). RAW data is read from the file
//! while it is sent.

use std::io::{Read, Seek};

use super::client::Fastboot;
use super::error::FastbootError;
use crate::sparse::{split, ChunkPlan, Piece, SparseError};
use crate::transport::Transport;

/// The largest sparse piece the AOSP client resparses into, whatever `max-download-size` says
/// (`RESPARSE_LIMIT` in its fastboot.cpp; it exists there to bound host memory, which our
/// streaming client does not need). We cut at the same size anyway so that a device with more
/// than 1 GiB of download RAM gets the same pieces from us as from `fastboot flash`, the client
/// its bootloader was validated with.
pub const RESPARSE_LIMIT: u64 = 1 << 30;

/// The size of the sparse pieces an image of `image_len` bytes goes in under `download_limit`,
/// or `None` when it goes whole in one download. As the AOSP client decides it: the image is
/// split only when it does not fit, and then into pieces of at most [`RESPARSE_LIMIT`] even if
/// the device would take more (an image that fits goes whole, however large).
pub fn resparse_piece_limit(image_len: u64, download_limit: u64) -> Option<u64> {
    (image_len > download_limit).then(|| download_limit.min(RESPARSE_LIMIT))
}

pub(crate) fn is_sparse_magic(first: [u8; 4]) -> bool {
    crate::sparse::is_sparse(&first)
}

fn image_error(e: SparseError) -> FastbootError {
    FastbootError::Image(e.to_string())
}

/// Check a sparse image's headers and chunk table (the device would refuse a broken one only
/// after the whole download); the plan is kept for splitting, so the table is read once.
pub(crate) fn sparse_plan<R: Read + Seek>(image: &mut R) -> Result<ChunkPlan, FastbootError> {
    ChunkPlan::from_sparse(image).map_err(image_error)
}

/// The pieces, each at most `limit` bytes encoded, that carry `image`: a sparse image by the
/// plan [`sparse_plan`] made, a raw one (`plan` None) by reading it once.
pub(crate) fn plan_pieces<R: Read + Seek>(
    image: &mut R,
    plan: Option<ChunkPlan>,
    limit: u64,
) -> Result<Vec<Piece>, FastbootError> {
    let plan = match plan {
        Some(plan) => plan,
        None => ChunkPlan::scan_raw(image).map_err(image_error)?,
    };
    split(&plan, limit).map_err(image_error)
}

pub(crate) fn piece_len(piece: &Piece) -> u64 {
    piece.encoded_len()
}

/// Download one piece, encoded while it streams, and flash it to `target`.
pub(crate) fn send_piece<T: Transport, R: Read + Seek>(
    fb: &mut Fastboot<T>,
    target: &str,
    image: &mut R,
    piece: &Piece,
) -> Result<u64, FastbootError> {
    let len = piece.encoded_len();
    let size = u32::try_from(len).map_err(|_| {
        FastbootError::Image(format!(
            "a sparse piece of {len} bytes exceeds one download"
        ))
    })?;
    // RAW data goes from the image file straight into the buffer the link sends from.
    fb.download_streamed(size, &mut |out| {
        piece
            .write_via(&mut *image, out, |out, image, len| {
                out.read_from(image, len).map_err(|source| SparseError::Io {
                    doing: "reading RAW data from the image",
                    source,
                })
            })
            .map(drop)
            .map_err(std::io::Error::other)
    })?;
    fb.flash(target)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastboot::client::tests::{scripted, send, Step, Step::*};
    use crate::fastboot::{FlashOptions, ImageKind};
    use crate::sparse::{ChunkHeader, SparseHeader, CHUNK_TYPE_DONT_CARE, CHUNK_TYPE_RAW};
    use std::io::SeekFrom;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    #[test]
    fn pieces_are_capped_at_one_gib_only_when_the_image_does_not_fit() {
        // (image length, download limit) → piece limit, as AOSP's get_sparse_limit decides.
        let cases = [
            (300 * MIB, 64 * MIB, Some(64 * MIB)),
            (64 * MIB, 64 * MIB, None),
            (3 * GIB, 2 * GIB, Some(GIB)),
            (3 * GIB, 4 * GIB - 1, None),
            (GIB + 1, GIB, Some(GIB)),
            (2 * GIB, GIB + MIB, Some(GIB)),
            (1536 * MIB, 2 * GIB, None),
        ];
        for (image_len, limit, want) in cases {
            assert_eq!(
                resparse_piece_limit(image_len, limit),
                want,
                "image {image_len}, limit {limit}"
            );
        }
        assert_eq!(RESPARSE_LIMIT, 1024 * 1024 * 1024);
    }

    /// An image file of gigabytes that is never held in memory: `head` bytes, then `body_len`
    /// bytes of a pattern, then `tail` bytes.
    struct VirtualImage {
        head: Vec<u8>,
        body_len: u64,
        tail: Vec<u8>,
        pos: u64,
    }

    impl VirtualImage {
        fn len(&self) -> u64 {
            self.head.len() as u64 + self.body_len + self.tail.len() as u64
        }

        fn byte_at(&self, at: u64) -> u8 {
            let head = self.head.len() as u64;
            if at < head {
                self.head[at as usize]
            } else if at < head + self.body_len {
                ((at - head) % 251) as u8
            } else {
                self.tail[(at - head - self.body_len) as usize]
            }
        }
    }

    impl Read for VirtualImage {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = (self.len().saturating_sub(self.pos)).min(buf.len() as u64) as usize;
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = self.byte_at(self.pos + i as u64);
            }
            self.pos += n as u64;
            Ok(n)
        }
    }

    impl Seek for VirtualImage {
        fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
            self.pos = match to {
                SeekFrom::Start(n) => n,
                SeekFrom::End(d) => self.len().saturating_add_signed(d),
                SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
            };
            Ok(self.pos)
        }
    }

    /// A sparse image of 2 GiB whose first 1.75 GiB are one RAW chunk, the rest DONT_CARE.
    fn sparse_with_big_raw_chunk() -> VirtualImage {
        let raw_blocks = 7 * 65536u32; // 1.75 GiB of 4 KiB blocks
        let raw_len = u64::from(raw_blocks) * 4096;
        let mut head = SparseHeader::new(4096, 8 * 65536, 2).encode().to_vec();
        let raw_total = u32::try_from(12 + raw_len).unwrap();
        head.extend_from_slice(&ChunkHeader::new(CHUNK_TYPE_RAW, raw_blocks, raw_total).encode());
        let tail = ChunkHeader::new(CHUNK_TYPE_DONT_CARE, 65536, 12)
            .encode()
            .to_vec();
        VirtualImage {
            head,
            body_len: raw_len,
            tail,
            pos: 0,
        }
    }

    fn download_command(len: u64) -> Step {
        Expect(Box::leak(
            format!("download:{len:08x}")
                .into_bytes()
                .into_boxed_slice(),
        ))
    }

    #[test]
    fn an_image_over_a_large_limit_goes_in_pieces_of_at_most_one_gib() {
        let mut image = sparse_with_big_raw_chunk();
        let limit = 1536 * MIB;
        assert!(image.len() > limit);
        let plan = ChunkPlan::open(&mut image).unwrap();
        let capped = split(&plan, RESPARSE_LIMIT).unwrap();
        let uncapped = split(&plan, limit).unwrap();
        let first = capped[0].encoded_len();
        assert!(
            first <= RESPARSE_LIMIT && first > RESPARSE_LIMIT - MIB,
            "{first}"
        );
        assert_ne!(
            first,
            uncapped[0].encoded_len(),
            "the cap must change the cut"
        );
        // The device refuses the first download; what matters is the size the client asked.
        let (link, dev, _c) = scripted(vec![
            Expect(b"getvar:is-userspace"),
            send(b"OKAYno"),
            Expect(b"getvar:has-slot:system"),
            send(b"OKAYno"),
            Expect(b"getvar:is-logical:system"),
            send(b"OKAYno"),
            download_command(first),
            send(b"FAILtest device stops here"),
        ]);
        let mut fb = Fastboot::new(link);
        let options = FlashOptions {
            max_download_size: Some(limit),
            ..FlashOptions::default()
        };
        let err = fb.flash_image("system", &mut image, &options).unwrap_err();
        assert!(
            matches!(&err, FastbootError::DeviceFail { command, .. } if *command == format!("download:{first:08x}")),
            "{err:?}"
        );
        drop(fb);
        dev.join().unwrap();
    }

    #[test]
    fn an_image_that_fits_goes_whole_even_above_one_gib() {
        let mut image = VirtualImage {
            head: Vec::new(),
            body_len: 1280 * MIB,
            tail: Vec::new(),
            pos: 0,
        };
        assert_eq!(
            crate::fastboot::flash::image_kind(&mut image).unwrap(),
            ImageKind::Raw
        );
        let (link, dev, _c) = scripted(vec![
            Expect(b"getvar:is-userspace"),
            send(b"OKAYno"),
            Expect(b"getvar:has-slot:system"),
            send(b"OKAYno"),
            Expect(b"getvar:is-logical:system"),
            send(b"OKAYno"),
            download_command(1280 * MIB),
            send(b"FAILtest device stops here"),
        ]);
        let mut fb = Fastboot::new(link);
        let options = FlashOptions {
            max_download_size: Some(1536 * MIB),
            ..FlashOptions::default()
        };
        let err = fb.flash_image("system", &mut image, &options).unwrap_err();
        assert!(matches!(err, FastbootError::DeviceFail { .. }), "{err:?}");
        drop(fb);
        dev.join().unwrap();
    }
}
