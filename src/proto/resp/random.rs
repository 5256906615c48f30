//! The random choices of RANDOMKEY, SPOP, SRANDMEMBER, HRANDFIELD and ZRANDMEMBER.
//!
//! Owns: a per-thread xorshift generator (seeded from `RandomState`, so not predictable across
//! processes; not cryptographic, as redis's is not). Must not touch: the store, replies.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

thread_local! {
    static RNG: Cell<u64> = Cell::new(RandomState::new().hash_one(0x5eed_u64) | 1);
}

pub(super) fn random_u64() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    })
}

/// A random index below `n` (n > 0).
pub(super) fn rand_below(n: usize) -> usize {
    (random_u64() % n as u64) as usize
}
