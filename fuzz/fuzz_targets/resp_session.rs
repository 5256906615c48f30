//! cargo-fuzz target: see `ringcache_fuzz::resp_session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcache_fuzz::resp_session(data));
