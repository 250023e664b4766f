//! The one place flashing touches the sparse format: sending an image larger than the device's
//! download limit as sparse pieces (libsparse-compatible split; raw images resparsed on the fly).

use std::io::{Read, Seek};

use super::client::Fastboot;
use super::error::FastbootError;
use super::flash::ImageKind;
use crate::transport::Transport;

pub(crate) fn is_sparse_magic(first: [u8; 4]) -> bool {
    crate::sparse::is_sparse(&first)
}

/// Flash `image` to `target` in pieces of at most `limit` bytes each; (pieces, bytes sent).
pub(crate) fn flash_in_pieces<T: Transport, R: Read + Seek>(
    _fb: &mut Fastboot<T>,
    target: &str,
    _image: &mut R,
    kind: ImageKind,
    limit: u64,
) -> Result<(usize, u64), FastbootError> {
    Err(FastbootError::Image(format!(
        "the {kind:?} image for {target} is larger than the {limit}-byte download limit and \
         splitting needs protocols::sparse, which is not merged yet"
    )))
}
