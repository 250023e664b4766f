//! Scenario tests: whole flows against simulated phones. One test binary keeps `cargo test` fast.
mod dashboard;
mod dashboard_logs;
mod sparse_interop;
