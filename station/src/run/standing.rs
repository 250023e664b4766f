//! A say over starting units besides the station's own count: the fleet database, which knows
//! what the other stations working the work order have passed and hold. The supervisor reads
//! its last word before it starts a unit, and asks it afresh at an interval (a blocking call,
//! on a blocking thread): the order complete elsewhere ends the batch as the station's own
//! quantity does; a hold keeps arriving units on their slots, unflashed, until it lifts.

use std::time::Duration;

/// Whether the station may start units now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Standing {
    #[default]
    Open,
    /// No unit starts; arriving ones wait on their slots, and start on their own once the
    /// hold lifts. `why` is the banner.
    Hold { why: String },
    /// The work order is complete: the batch ends once the units being flashed have their
    /// verdicts, as when the station's own count reaches the quantity.
    Complete { why: String },
}

impl Standing {
    pub fn is_open(&self) -> bool {
        matches!(self, Standing::Open)
    }

    /// The banner of a hold.
    pub fn hold(&self) -> Option<&str> {
        match self {
            Standing::Hold { why } => Some(why),
            _ => None,
        }
    }

    pub fn complete(&self) -> Option<&str> {
        match self {
            Standing::Complete { why } => Some(why),
            _ => None,
        }
    }
}

/// The other party to every start (at a line: the fleet database's gate).
pub trait StartGate: Send + Sync + 'static {
    /// The last word, without asking (no I/O): read before every start.
    fn standing(&self) -> Standing;
    /// Asks afresh (blocking I/O, bounded by the gate's own timeouts).
    fn recheck(&self) -> Standing;
    /// How often the supervisor asks afresh while the batch runs.
    fn recheck_every(&self) -> Duration;
}
