//! Scenario tests: whole flows against simulated phones. One test binary keeps `cargo test` fast.
mod cli_run;
mod dashboard;
mod dashboard_logs;
mod edl;
mod edl_backup_gpt;
mod edl_payload;
mod edl_ramdump;
mod fastboot_client;
mod fastboot_interop;
mod preflight_images;
mod sahara_host;
mod sahara_pty;
mod sparse_interop;
mod station_batch;
mod station_preflight;
mod station_readback;
