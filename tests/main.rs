//! Scenario tests: whole flows against simulated phones. One test binary keeps `cargo test` fast.
mod sparse_interop;
