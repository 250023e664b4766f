//! Fastboot host client (AOSP `fastboot` README): command codec, response codec, client, flashing.
