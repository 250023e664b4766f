//! The flashgate station: configuration, batch orchestration, verification, journal.

pub mod bus;
pub mod config;
pub mod digest;
pub mod journal;
pub mod verdict;
