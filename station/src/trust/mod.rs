//! Trust: what lets someone who was not at the station check what it did. The journal's hash
//! chain (its bytes), and the station's signed statement for each unit that passed.

pub mod chain;
pub mod station_key;
pub mod unit_proof;
