//! Scenario tests: whole flows against simulated phones. One test binary keeps `cargo test` fast.
mod edl;
mod sahara_host;
mod sahara_pty;
mod sparse_interop;
