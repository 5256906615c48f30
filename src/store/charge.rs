//! What memory costs: the allocator's size classes, and the charge of a hashbrown table.
//!
//! Owns: `alloc_size` and `table_charge`. Must not touch: anything else of the store; it is a
//! leaf that `value.rs`, `zset.rs` and the stripe all build their charges on, which is why it
//! sits below them (it used to live in `value.rs`, which made `zset.rs` and `value.rs` import
//! each other). Invariant: a charge is what glibc x86-64 malloc really hands out, so that a
//! node's `used` tracks its resident memory.

use hashbrown::HashTable;

/// Bytes the allocator uses for a request of `n` bytes: glibc malloc's chunk size
/// `max(32, round_up(n + 8, 16))`; 0 for `n == 0` (Rust does not allocate empty boxes).
#[inline]
pub const fn alloc_size(n: usize) -> u64 {
    if n == 0 {
        return 0;
    }
    let chunk = (n as u64 + 8 + 15) & !15;
    if chunk < 32 { 32 } else { chunk }
}

/// Charge of a hashbrown table (one allocation: buckets and control bytes).
#[inline]
pub(super) fn table_charge<T>(t: &HashTable<T>) -> u64 {
    alloc_size(t.allocation_size())
}
