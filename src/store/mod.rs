//! The in-process cache node store: keys routed to a [`Node`] live here, with their values, TTLs,
//! CAS ids and memory charges.
//!
//! Owns: the shared store types (`StoreError`, `Kind`, `ItemMeta`, `NodeStats`, `NEVER`), the
//! module tree below and its public face (the re-exports here are the whole API the rest of the
//! crate uses, plus `node::STRIPES`). Must not touch: protocols, routing, tokio I/O (`store`
//! imports none of them). Invariants: every call is synchronous and holds at most one stripe
//! lock at a time (except `Node::validate`, `Node::entry_many`, `Node::walk_stripe_many` and
//! `Node::entries`, which take several in ascending (node address, stripe) order, see node.rs);
//! no lock is held while anything but the caller's own closure runs; values are dropped after
//! the stripe lock is released.
//!
//! Layout, from the bottom up (each file imports only files listed before it, and the types
//! above):
//! - `glob.rs`: redis's glob matching (pure; KEYS, SCAN, pub/sub patterns).
//! - `clock.rs`: time; `charge.rs`: what memory costs (`alloc_size`); `hash.rs`: the key and
//!   member hashes.
//! - `zset.rs`: the sorted set; `stream.rs`: the stream; `value.rs`: item bodies and the other containers.
//! - `stripe.rs`: one stripe, single-threaded: a slab of 56-byte slots, a
//!   `hashbrown::HashTable<u32>` index into it, an intrusive free list and the accounting; its
//!   submodules `stripe/evict.rs` (the SIEVE queue), `stripe/expire.rs` (the lazy check and a
//!   sweep step) and `stripe/validate.rs` (the stripe's self-check) see its fields, nothing
//!   else does.
//! - `node.rs`: a node is 64 stripes behind mutexes; stripe selection, the lock order, the
//!   drivers over several stripes (eviction, walks, sweep, flush), stats, `validate`.
//! - `entry.rs`: the entry API (`Entry`, `Locked`, `Moved`) and `Node::entry`,
//!   `Node::entry_many`, `Node::entries`.
//!
//! Expiry is lazy on access plus a bounded sweep; time comes from [`Clock`].

mod charge;
pub mod clock;
mod entry;
pub mod glob;
mod hash;
pub mod node;
pub mod stream;
mod stripe;
pub mod value;
pub mod zset;

pub use charge::alloc_size;
pub use clock::Clock;
pub use entry::{Entry, Locked, Moved};
pub use node::Node;
pub use stream::{Stream, StreamId};
pub use stripe::Item;
pub use value::{Container, Hash, List, Set};
pub use zset::ZSet;

/// Why a key left a node without a command removing it: what keyspace notifications report
/// as `expired` and `evicted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEvent {
    /// Its TTL passed (found on access, by the sweep, or by the eviction hand).
    Expired,
    /// Evicted to make room.
    Evicted,
}

/// Receives the keys a node expires or evicts, after the stripe lock is released. The server
/// installs one (`Node::set_key_events`) for keyspace notifications; the store knows nothing
/// of what it does.
pub trait KeyEvents: Send + Sync {
    /// One key expired or was evicted.
    fn emit(&self, event: KeyEvent, key: &[u8]);
}

/// `ItemMeta::expire_at` value meaning "no expiry".
pub const NEVER: u64 = 0;

/// Errors of store operations. A miss is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The key holds a value of another kind than the operation needs.
    #[error("wrong type")]
    WrongType,
    /// The item can never fit in the node's memory budget.
    #[error("out of memory")]
    OutOfMemory,
}

/// The kind of value an item holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bytes: a memcached item or a Redis string.
    Str,
    /// Redis hash.
    Hash,
    /// Redis list.
    List,
    /// Redis set.
    Set,
    /// Redis sorted set.
    ZSet,
    /// Redis stream.
    Stream,
}

/// Per-item metadata, stored inline in the slot; handlers may edit it in place.
///
/// Packed to 4-byte alignment (28 bytes instead of 32 with padding), which is what lets a
/// slot take 56 bytes rather than 64: 8 bytes less per item. Fields are read and written by
/// value; a reference to `cas` or `expire_at` is not allowed (the compiler refuses it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, packed(4))]
pub struct ItemMeta {
    /// Unique per modification within the node.
    pub cas: u64,
    /// Absolute expiry in unix milliseconds; [`NEVER`] (0) = no expiry.
    pub expire_at: u64,
    /// memcached client flags.
    pub flags: u32,
    /// Seconds since the clock's start of the last access (meta `l`/`h`).
    pub atime: u32,
    /// Read at least once since stored (meta `h`, `expired_unfetched`/`evicted_unfetched`).
    pub fetched: bool,
    /// Meta invalidation (md I / ms I): the item is stale.
    pub stale: bool,
    /// Meta: a client already received the recache "win" token (W/Z).
    pub won: bool,
}

/// A node's counters, summed over its stripes (`Node::stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Live items (expired ones not yet reclaimed included).
    pub items: u64,
    /// Charged bytes: item charges plus the fixed cost of slabs and indexes.
    pub used_bytes: u64,
    /// The node's memory budget.
    pub max_bytes: u64,
    /// Reads that found a live item (`Entry::mark_read`).
    pub hits: u64,
    /// Reads that found nothing (`Entry::record_miss`).
    pub misses: u64,
    /// Live items removed to make room.
    pub evictions: u64,
    /// Expired items reclaimed (lazily, by the sweep, or met by the eviction hand).
    pub expired: u64,
    /// Expired items reclaimed that had never been read.
    pub expired_unfetched: u64,
    /// Evicted items that had never been read.
    pub evicted_unfetched: u64,
    /// Items ever stored (every successful put/concat/put_container).
    pub total_items: u64,
    /// Items with an expiry (expired ones not yet reclaimed included).
    pub ttl_items: u64,
    /// Σ expiry (unix ms) of those items: with `ttl_items`, their mean expiry.
    pub ttl_sum: u128,
}
