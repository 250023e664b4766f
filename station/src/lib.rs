//! The flashgate station: configuration, batch orchestration, verification, journal.
pub mod bus;
pub mod dashboard;
pub mod events;
pub mod logging;
pub mod run;
