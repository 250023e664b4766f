//! Running a batch: the supervisor (bus events → one job per unit → journal → display) and the
//! per-unit context jobs run with.

pub mod standing;
pub mod supervisor;
pub mod unit;

pub use standing::{Standing, StartGate};
pub use supervisor::{
    JobFactory, Quantity, Recorded, StopWhen, Supervisor, SupervisorError, VerdictRecorder,
};
pub use unit::{ReenumerationError, UnitContext, UnitInfo, UnitJob, UnitOutcome};

#[cfg(test)]
mod standing_tests;
#[cfg(test)]
mod tests;
