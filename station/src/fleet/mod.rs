//! The fleet: every station's record in one PostgreSQL database. The station's SQLite journal
//! stays the first place a verdict is committed (a station works while the network is down);
//! an outbox ships its finished rows to the fleet database, where the rules that span stations
//! (a work order's quantity, a serial seen elsewhere) are kept.

pub mod local_server;

pub use local_server::{LocalPostgres, LocalServerError};
