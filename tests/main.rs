//! Scenario tests: whole flows against simulated phones. One test binary keeps `cargo test` fast.
mod fastboot_interop;
mod sparse_interop;
