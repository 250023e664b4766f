#![no_main]
libfuzzer_sys::fuzz_target!(
    |data: &[u8]| flashgate_protocols::fuzz_targets::fastboot_response(data)
);
