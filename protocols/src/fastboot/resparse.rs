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

pub(crate) fn is_sparse_magic(first: [u8; 4]) -> bool {
    crate::sparse::is_sparse(&first)
}

fn image_error(e: SparseError) -> FastbootError {
    FastbootError::Image(e.to_string())
}

/// Check a sparse image's headers and chunk table (the device would refuse a broken one only
/// after the whole download).
pub(crate) fn validate_sparse<R: Read + Seek>(image: &mut R) -> Result<(), FastbootError> {
    ChunkPlan::from_sparse(image).map(drop).map_err(image_error)
}

/// The pieces, each at most `limit` bytes encoded, that carry `image` (raw or sparse).
pub(crate) fn plan_pieces<R: Read + Seek>(
    image: &mut R,
    limit: u64,
) -> Result<Vec<Piece>, FastbootError> {
    let plan = ChunkPlan::open(image).map_err(image_error)?;
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
    fb.download_with(size, &mut |out| {
        piece
            .write_to(&mut *image, out)
            .map(drop)
            .map_err(std::io::Error::other)
    })?;
    fb.flash(target)?;
    Ok(len)
}
