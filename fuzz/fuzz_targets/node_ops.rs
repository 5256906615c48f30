//! cargo-fuzz target: see `ringcache_fuzz::node_ops`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcache_fuzz::node_ops(data));
