//! Simulated phones: one storage, two personalities (fastboot and EDL), served over any transport.

pub mod sahara;
pub mod sahara_elf;
