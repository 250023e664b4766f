//! The memory a simulated bootloader holds: its downloads kept in memory and the buffers it
//! moves data through. Simulated phones run in the station's process (tests, the line
//! benchmark), so the process's RSS counts them too; [`held_bytes`] is their share, to take off
//! it to see the station's own.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes the simulated bootloaders of this process hold in [`PhoneMemory`] now.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Bytes the simulated bootloaders of this process hold in memory now.
pub fn held_bytes() -> usize {
    HELD.load(Ordering::Relaxed)
}

/// A byte buffer of a simulated bootloader, counted in [`held_bytes`] while it lives: by its
/// length, the bytes it has been given (room reserved and not yet written is not resident).
pub(crate) struct PhoneMemory(Vec<u8>);

impl PhoneMemory {
    pub(crate) fn with_capacity(len: usize) -> Self {
        Self::counted(Vec::with_capacity(len))
    }

    pub(crate) fn zeroed(len: usize) -> Self {
        Self::counted(vec![0u8; len])
    }

    fn counted(bytes: Vec<u8>) -> Self {
        HELD.fetch_add(bytes.len(), Ordering::Relaxed);
        PhoneMemory(bytes)
    }

    pub(crate) fn extend_from_slice(&mut self, data: &[u8]) {
        self.0.extend_from_slice(data);
        HELD.fetch_add(data.len(), Ordering::Relaxed);
    }
}

impl std::ops::Deref for PhoneMemory {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::DerefMut for PhoneMemory {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Drop for PhoneMemory {
    fn drop(&mut self) {
        HELD.fetch_sub(self.0.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_counted_by_what_it_holds_while_it_lives() {
        // Other tests hold phone memory at the same time: the count is at least this buffer's.
        let mut buf = PhoneMemory::with_capacity(100_000);
        buf.extend_from_slice(&[1u8; 300_000]);
        assert!(held_bytes() >= 300_000);
        assert_eq!(buf.len(), 300_000);
        let zeroed = PhoneMemory::zeroed(4096);
        assert!(zeroed.iter().all(|b| *b == 0));
    }
}
