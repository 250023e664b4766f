//! The flashgate station: configuration, batch orchestration, verification, journal.

pub mod dashboard;
pub mod events;
pub mod logging;
