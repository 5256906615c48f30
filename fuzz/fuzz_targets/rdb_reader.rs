//! cargo-fuzz target: see `ringcache_fuzz::rdb_reader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcache_fuzz::rdb_reader(data));
