//! The store's two hashes: the key hash (stripe and index bucket) and the member hash (the
//! collections' indexes).
//!
//! Owns: `hash_key`, `member_hash` and their per-process seeds. Must not touch: anything else
//! of the store (a leaf). Invariants: both are seeded at random per process, so that clients
//! cannot precompute keys or members that collide (hash flooding); the key hash is fixed in
//! unit tests so that tests can pick keys of a given stripe. The key hash is independent of
//! the ring hash (`route`), and which of its bits pick the stripe is `node.rs`'s business.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::LazyLock;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Seed of the key hash: random per process, so that clients cannot precompute keys that all
/// collide in one stripe and bucket (hash flooding). Fixed in unit tests for reproducibility.
static KEY_SEED: LazyLock<u64> = LazyLock::new(|| {
    if cfg!(test) {
        0x05ee_d0f5_707e
    } else {
        RandomState::new().hash_one(0x5eed_u64)
    }
});

/// Seed of the member hash (random per process: no precomputed collisions).
static MEMBER_SEED: LazyLock<u64> = LazyLock::new(|| RandomState::new().hash_one(0xc011_u64));

/// The one hash of a key (seeded xxh3_64): picks the stripe and the index bucket. Independent
/// of the ring hash.
#[inline]
pub(super) fn hash_key(key: &[u8]) -> u64 {
    xxh3_64_with_seed(key, *KEY_SEED)
}

/// Hash of a member, field or list-free element, for the collections' indexes.
#[inline]
pub(super) fn member_hash(m: &[u8]) -> u64 {
    xxh3_64_with_seed(m, *MEMBER_SEED)
}
