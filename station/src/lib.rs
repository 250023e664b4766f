//! The flashgate station: configuration, batch orchestration, verification, journal.
pub mod bus;
