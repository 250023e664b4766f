#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| station::fuzz_targets::yaml_phones(data));
