//! A cache node: a named, memory-bounded map of items split into lock stripes.
//!
//! Owns: `Node`, `Entry`, `Item`, the stripe layout (`Stripe`, `Slot`) and the accounting.
//! Must not touch: protocols, routing, tokio. SIEVE list surgery lives in `evict.rs`, expiry
//! and flush in `expire.rs`.
//!
//! Layout: `STRIPES` (64) cache-padded `parking_lot::Mutex<Stripe>`. The key is hashed once
//! (xxh3_64, per-process random seed); bits 40..46 pick the stripe (hashbrown uses the low
//! bits for the bucket and the top 7 as its tag, so those would be constant within a stripe).
//! A stripe is a slab
//! `Vec<Slot>` (slots never move, so a `(stripe, slot)` cursor stays valid), a
//! `HashTable<u32>` index into it, an intrusive free list threaded through `Slot::next`, and a
//! SIEVE queue threaded through `Slot::prev/next`.
//!
//! Accounting (all in bytes, exact by construction, recomputed by `validate`):
//! - an occupied slot charges its item `size_of::<Slot>() + alloc_size(key ‖ value)` (containers:
//!   their box, key and contents, see value.rs);
//! - a stripe's `fixed` charge is its unoccupied slab capacity `(capacity - live) * 56` plus
//!   `index.num_buckets() * 5` (u32 + control byte); slots are never charged twice;
//! - node `used` = Σ item charges + Σ fixed; node `fixed` = Σ fixed; node `items` = Σ live.
//!   They are relaxed atomics updated under the stripe lock that changed them.
//! - So `used` = Σ alloc_size(item data) + Σ slab.capacity() × 56 + Σ buckets × 5. Evicting an
//!   item gives back its data allocation only (its slot stays in the slab, now charged as
//!   fixed); `put` refuses an item when even evicting everything else could not make it fit.
//!
//! Invariants: after `Node::entry` returns, `used <= max_memory` unless nothing but the item
//! just written is left to evict (which `put` prevents by refusing items that can never fit),
//! barring concurrent writers; at most one stripe lock is held at a time, except in
//! `validate` (all stripes of one node, in stripe order) and `Node::entry_many` (the key's
//! stripe in several nodes, always locked in ascending node-address order) and
//! `Node::walk_stripe_many` (one stripe in several nodes, the same way) and `Node::entries`
//! (several stripes of one node, in ascending stripe order): every multi-lock holder follows
//! the (node address, stripe) order, so no cycle of waits can form; removed values are dropped
//! after the lock is released (`Garbage`).

use std::fmt;
use std::mem::{self, size_of};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard};

use super::charge::alloc_size;
use super::clock::Clock;
use super::expire::is_expired;
use super::hash::hash_key;
use super::value::{Body, Container, ContainerItem};
use super::{ItemMeta, Kind, NEVER, NodeStats, StoreError};

/// Number of lock stripes per node (power of two, ≥ 8 × cores on the target machines).
pub const STRIPES: usize = 64;
/// The stripe is taken from hash bits `STRIPE_SHIFT .. STRIPE_SHIFT + 6`.
const STRIPE_SHIFT: u32 = 40;
/// "No slot" in links, the free list and the SIEVE hand.
pub(super) const NIL: u32 = u32::MAX;
/// Bytes of one slot, charged to its item while occupied and to `fixed` while free.
pub const SLOT_BYTES: u64 = size_of::<Slot>() as u64;
/// Bytes per index bucket: a `u32` plus hashbrown's control byte.
const BUCKET_BYTES: u64 = 4 + 1;
/// Eviction batch per foreign stripe before moving on (spreads the loss round robin).
const EVICT_BATCH: usize = 16;

/// Stripe of a key hash: middle bits, not hashbrown's top-7 tag bits.
#[inline]
pub(super) fn stripe_of(hash: u64) -> usize {
    (hash >> STRIPE_SHIFT) as usize & (STRIPES - 1)
}

/// Add a signed delta to a relaxed counter (wrapping arithmetic makes negatives work).
#[inline]
fn add(counter: &AtomicU64, delta: i64) {
    if delta != 0 {
        counter.fetch_add(delta as u64, Relaxed);
    }
}

/// Locks stripe `stripe` of every node in `nodes` (distinct nodes, locked in ascending address
/// order, see [`Node::entry_many`]) after running each node's due flush: the time each node's
/// clock read and the guards, both in `nodes` order.
///
/// # Panics
/// If the same node is given twice (that would deadlock); `caller` names the entry point.
fn lock_stripe_in_each<'n>(
    nodes: &[&'n Node],
    stripe: usize,
    caller: &str,
) -> (Vec<u64>, Vec<Option<MutexGuard<'n, Stripe>>>) {
    let nows: Vec<u64> = nodes
        .iter()
        .map(|node| {
            let now = node.clock.now_ms();
            node.maybe_flush(now);
            now
        })
        .collect();
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_unstable_by_key(|&i| std::ptr::from_ref::<Node>(nodes[i]) as usize);
    assert!(
        order
            .windows(2)
            .all(|w| !std::ptr::eq(nodes[w[0]], nodes[w[1]])),
        "{caller}: a node is given twice"
    );
    let mut guards: Vec<Option<MutexGuard<'n, Stripe>>> = (0..nodes.len()).map(|_| None).collect();
    for &i in &order {
        guards[i] = Some(nodes[i].stripe(stripe).lock());
    }
    (nows, guards)
}

/// True if an item of stripe `st` of `node` whose body costs `body_charge` fits in the budget
/// once every other item's allocation is evicted: all slab and index memory of the node stays
/// (slots are never given back), plus this stripe's floor and the body.
fn fits_alone_in(node: &Node, st: &Stripe, body_charge: u64) -> bool {
    let others = (node.acct.fixed.load(Relaxed).saturating_sub(st.fixed)).saturating_add(
        node.acct
            .items
            .load(Relaxed)
            .saturating_sub(u64::from(st.live))
            .saturating_mul(SLOT_BYTES),
    );
    body_charge
        .saturating_add(others)
        .saturating_add(st.fixed_for(0))
        <= node.max_memory()
}

/// Signed difference `new - old` of two byte counts.
#[inline]
fn diff(new: u64, old: u64) -> i64 {
    new.wrapping_sub(old) as i64
}

/// One item (or a free slot) in a stripe's slab. 56 bytes: the key length and two flags share
/// one word, and [`ItemMeta`] is packed, so that every item costs 8 bytes less than a 64-byte
/// slot would.
pub(super) struct Slot {
    /// `key ‖ value` or a container; `Body::empty()` when free.
    pub(super) body: Body,
    pub(super) meta: ItemMeta,
    /// SIEVE: newer neighbour (toward the head); NIL when free.
    pub(super) prev: u32,
    /// SIEVE: older neighbour (toward the tail); free list: next free slot.
    pub(super) next: u32,
    /// Key length inside a `Body::Str` (bits 0..30, so at most [`KLEN_MAX`]); [`LIVE`]:
    /// occupied (holds an item, possibly expired but not yet reclaimed); [`VISITED`]: SIEVE's
    /// visited bit, read since the hand last passed.
    bits: u32,
}

/// Longest key a slot can hold (the config caps `max_request_size` at 1 GiB, so every key is
/// shorter).
pub const KLEN_MAX: u32 = (1 << 30) - 1;
const LIVE: u32 = 1 << 31;
const VISITED: u32 = 1 << 30;

impl Slot {
    fn vacant(next_free: u32) -> Slot {
        Slot {
            body: Body::empty(),
            meta: ItemMeta::default(),
            prev: NIL,
            next: next_free,
            bits: 0,
        }
    }

    /// Key length inside a `Body::Str`.
    #[inline]
    pub(super) fn klen(&self) -> u32 {
        self.bits & KLEN_MAX
    }

    /// Occupied: holds an item (possibly expired but not yet reclaimed).
    #[inline]
    pub(super) fn live(&self) -> bool {
        self.bits & LIVE != 0
    }

    /// SIEVE's visited bit.
    #[inline]
    pub(super) fn visited(&self) -> bool {
        self.bits & VISITED != 0
    }

    /// Sets the key length (keeping the flags).
    #[inline]
    fn set_klen(&mut self, klen: u32) {
        debug_assert!(klen <= KLEN_MAX, "key of {klen} bytes");
        self.bits = (self.bits & !KLEN_MAX) | (klen & KLEN_MAX);
    }

    /// Sets or clears the visited bit.
    #[inline]
    pub(super) fn set_visited(&mut self, visited: bool) {
        if visited {
            self.bits |= VISITED;
        } else {
            self.bits &= !VISITED;
        }
    }

    /// The item's key.
    #[inline]
    pub(super) fn key(&self) -> &[u8] {
        match &self.body {
            // klen <= len is established by `Entry::install` and never changed separately.
            Body::Str(b) => &b[..self.klen() as usize],
            Body::Container(c) => &c.key,
        }
    }

    /// The string value (empty for containers).
    #[inline]
    pub(super) fn value(&self) -> &[u8] {
        match &self.body {
            Body::Str(b) => &b[self.klen() as usize..],
            Body::Container(_) => &[],
        }
    }

    /// Bytes charged to this item.
    #[inline]
    pub(super) fn charge(&self) -> u64 {
        SLOT_BYTES + self.body.charge()
    }

    fn kind(&self) -> Kind {
        match &self.body {
            Body::Str(_) => Kind::Str,
            Body::Container(c) => c.value.kind(),
        }
    }
}

/// Per-stripe counters, summed by `Node::stats`.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counters {
    pub(super) hits: u64,
    pub(super) misses: u64,
    pub(super) evictions: u64,
    pub(super) expired: u64,
    pub(super) expired_unfetched: u64,
    pub(super) evicted_unfetched: u64,
    pub(super) total_items: u64,
}

/// Why an item leaves: decides which counters move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    /// Deleted or replaced by a command: no counter.
    Removed,
    /// Found expired (lazily, by the sweep, or by the eviction hand).
    Expired,
    /// Evicted for room.
    Evicted,
}

/// One lock stripe of a node.
pub(super) struct Stripe {
    /// Slab index of every occupied slot, hashed by `hash_key(key)`.
    pub(super) index: HashTable<u32>,
    pub(super) slab: Vec<Slot>,
    /// Head of the free list (through `Slot::next`).
    pub(super) free_head: u32,
    /// SIEVE queue: newest item.
    pub(super) head: u32,
    /// SIEVE queue: oldest item.
    pub(super) tail: u32,
    /// SIEVE hand: next candidate, moving tail → head; NIL = start at the tail.
    pub(super) hand: u32,
    /// Occupied slots.
    pub(super) live: u32,
    /// Σ item charges of occupied slots.
    pub(super) used: u64,
    /// Fixed charge (see the module header); mirrored into node `fixed` and `used`.
    pub(super) fixed: u64,
    /// Next slab position of the expiry sweep.
    pub(super) sweep_cursor: u32,
    pub(super) counters: Counters,
}

impl Stripe {
    fn new() -> Stripe {
        Stripe {
            index: HashTable::new(),
            slab: Vec::new(),
            free_head: NIL,
            head: NIL,
            tail: NIL,
            hand: NIL,
            live: 0,
            used: 0,
            fixed: 0,
            sweep_cursor: 0,
            counters: Counters::default(),
        }
    }

    /// Slot of `key`, if occupied (expired or not).
    #[inline]
    fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let slab = &self.slab;
        self.index
            .find(hash, |&i| slab[i as usize].key() == key)
            .copied()
    }

    /// The fixed charge this stripe would have with `live` occupied slots.
    #[inline]
    pub(super) fn fixed_for(&self, live: u32) -> u64 {
        // An unallocated table reports one bucket; it owns no memory.
        let buckets = if self.index.capacity() == 0 {
            0
        } else {
            self.index.num_buckets() as u64
        };
        (self.slab.capacity() as u64 - u64::from(live)) * SLOT_BYTES + buckets * BUCKET_BYTES
    }

    /// Brings `fixed` (and the node's mirrors) up to date after a capacity or occupancy change.
    #[inline]
    pub(super) fn sync_fixed(&mut self, acct: &Acct) {
        let fixed = self.fixed_for(self.live);
        if fixed != self.fixed {
            let d = diff(fixed, self.fixed);
            self.fixed = fixed;
            add(&acct.fixed, d);
            add(&acct.used, d);
        }
    }

    /// Makes sure one more item fits without reallocating later in `insert`. The slab grows by
    /// 1/4 (not 2×) to keep the unoccupied tail, charged as fixed, small. False if the stripe
    /// is at the `u32` slot limit.
    fn reserve_one(&mut self) -> bool {
        if self.free_head == NIL && self.slab.len() == self.slab.capacity() {
            let cap = self.slab.capacity();
            if cap >= NIL as usize - 1 {
                return false;
            }
            let grow = (cap / 4).clamp(4, NIL as usize - 1 - cap);
            self.slab.reserve_exact(grow);
        }
        let slab = &self.slab;
        self.index.reserve(1, |&i| hash_key(slab[i as usize].key()));
        true
    }

    /// Occupies a slot with a new item (capacity reserved by `reserve_one`), links it at the
    /// SIEVE head and charges it. Returns the slot.
    fn insert(&mut self, hash: u64, body: Body, klen: u32, meta: ItemMeta, acct: &Acct) -> u32 {
        let i = if self.free_head != NIL {
            let i = self.free_head;
            self.free_head = self.slab[i as usize].next;
            i
        } else {
            self.slab.push(Slot::vacant(NIL));
            (self.slab.len() - 1) as u32
        };
        let slot = &mut self.slab[i as usize];
        slot.body = body;
        slot.meta = meta;
        slot.bits = LIVE;
        slot.set_klen(klen);
        let charge = slot.charge();
        let slab = &self.slab;
        self.index
            .insert_unique(hash, i, |&j| hash_key(slab[j as usize].key()));
        self.link_head(i);
        self.live += 1;
        self.used += charge;
        acct.items.fetch_add(1, Relaxed);
        add(&acct.used, charge as i64);
        self.sync_fixed(acct);
        i
    }

    /// Frees slot `i` (occupied): out of the index, the SIEVE queue and the charge, onto the
    /// free list. Counts `reason`. Returns the body for dropping outside the lock.
    pub(super) fn release(
        &mut self,
        i: u32,
        hash: Option<u64>,
        reason: Reason,
        acct: &Acct,
    ) -> Body {
        let slot = &self.slab[i as usize];
        let hash = hash.unwrap_or_else(|| hash_key(slot.key()));
        match reason {
            Reason::Removed => {}
            Reason::Expired => {
                self.counters.expired += 1;
                if !slot.meta.fetched {
                    self.counters.expired_unfetched += 1;
                }
            }
            Reason::Evicted => {
                self.counters.evictions += 1;
                if !slot.meta.fetched {
                    self.counters.evicted_unfetched += 1;
                }
            }
        }
        if let Ok(found) = self.index.find_entry(hash, |&j| j == i) {
            found.remove();
        } else {
            debug_assert!(false, "slot {i} missing from the index");
        }
        self.unlink(i);
        let free_head = self.free_head;
        let slot = &mut self.slab[i as usize];
        let charge = slot.charge();
        let body = mem::replace(&mut slot.body, Body::empty());
        slot.meta = ItemMeta::default();
        slot.bits = 0;
        slot.next = free_head;
        self.free_head = i;
        self.live -= 1;
        self.used -= charge;
        acct.items.fetch_sub(1, Relaxed);
        add(&acct.used, -(charge as i64));
        self.sync_fixed(acct);
        body
    }

    /// Empties the stripe and releases its slab and index memory; returns them (with every
    /// value) for dropping outside the lock.
    pub(super) fn clear(&mut self, acct: &Acct) -> (Vec<Slot>, HashTable<u32>) {
        let slab = mem::take(&mut self.slab);
        let index = mem::take(&mut self.index);
        acct.items.fetch_sub(u64::from(self.live), Relaxed);
        add(&acct.used, -(self.used as i64));
        self.free_head = NIL;
        self.head = NIL;
        self.tail = NIL;
        self.hand = NIL;
        self.live = 0;
        self.used = 0;
        self.sweep_cursor = 0;
        self.sync_fixed(acct);
        (slab, index)
    }

    /// Gives back unused capacity: trailing free slots are cut off the slab (slots in use never
    /// move), then slab and index are shrunk to fit. Used when the budget shrinks below the
    /// fixed charge.
    fn compact(&mut self, acct: &Acct) -> Option<(Vec<Slot>, HashTable<u32>)> {
        if self.live == 0 {
            return Some(self.clear(acct));
        }
        let keep = self
            .slab
            .iter()
            .rposition(|s| s.live())
            .map_or(0, |p| p + 1);
        self.slab.truncate(keep);
        self.slab.shrink_to_fit();
        // Rebuild the free list without the cut slots, lowest index first.
        self.free_head = NIL;
        for i in (0..self.slab.len()).rev() {
            if !self.slab[i].live() {
                self.slab[i].next = self.free_head;
                self.free_head = i as u32;
            }
        }
        let slab = &self.slab;
        self.index
            .shrink_to_fit(|&i| hash_key(slab[i as usize].key()));
        if self.sweep_cursor as usize > self.slab.len() {
            self.sweep_cursor = 0;
        }
        self.sync_fixed(acct);
        None
    }
}

/// Node-wide counters written on every store: kept on their own cache line, apart from the
/// read-mostly fields every request loads.
#[repr(align(64))]
pub(super) struct Acct {
    /// Σ stripe `used + fixed`.
    pub(super) used: AtomicU64,
    /// Σ stripe `live`.
    pub(super) items: AtomicU64,
    /// Σ stripe `fixed`.
    pub(super) fixed: AtomicU64,
    /// Last CAS id handed out.
    cas: AtomicU64,
}

/// A stripe on its own cache line(s), so neighbouring locks do not false-share.
#[repr(align(64))]
struct Padded(Mutex<Stripe>);

/// Values removed under a stripe lock, dropped after it is released. Two inline places cover
/// the common cases (one replaced value, one evicted item) without allocating.
#[derive(Default)]
pub(super) struct Garbage {
    inline: [Option<Body>; 2],
    spill: Vec<Body>,
}

impl Garbage {
    #[inline]
    pub(super) fn push(&mut self, body: Body) {
        if body.is_empty_alloc() {
            return;
        }
        for place in &mut self.inline {
            if place.is_none() {
                *place = Some(body);
                return;
            }
        }
        self.spill.push(body);
    }
}

/// Slots a chunked walk looks at per lock hold when it wants `want` items.
fn walk_limit(want: usize) -> usize {
    want.saturating_mul(8).max(1024)
}

/// Visits the live, unexpired items of a locked stripe from slot `pos` until `want` were seen
/// or `limit` slots looked at. Returns (the slot to go on from, None at the end of the slab;
/// items seen; slots looked at).
fn visit(
    stripe: &Stripe,
    mut pos: usize,
    want: usize,
    limit: usize,
    now: u64,
    f: &mut impl FnMut(&[u8], Item<'_>),
) -> (Option<usize>, usize, usize) {
    let (mut seen, mut scanned) = (0usize, 0usize);
    while pos < stripe.slab.len() {
        if seen == want || scanned == limit {
            return (Some(pos), seen, scanned);
        }
        scanned += 1;
        let slot = &stripe.slab[pos];
        pos += 1;
        if slot.live() && !is_expired(&slot.meta, now) {
            f(slot.key(), Item { slot });
            seen += 1;
        }
    }
    (None, seen, scanned)
}

/// A named cache with its own memory budget. `Send + Sync`; share it as `Arc<Node>`.
pub struct Node {
    stripes: Box<[Padded]>,
    pub(super) acct: Acct,
    name: Box<str>,
    clock: Clock,
    max_memory: AtomicU64,
    /// Deferred flush deadline (unix ms), 0 = none.
    pub(super) pending_flush: AtomicU64,
    /// Next stripe for round-robin eviction.
    evict_rr: AtomicUsize,
    /// Stripe the sweep works on.
    pub(super) sweep_rr: AtomicUsize,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name)
            .field("items", &self.len())
            .field("used", &self.acct.used.load(Relaxed))
            .field("max_memory", &self.max_memory())
            .finish()
    }
}

impl Node {
    /// An empty node named `name` with a budget of `max_memory` bytes. Allocates nothing per
    /// stripe until items arrive.
    pub fn new(name: &str, max_memory: u64, clock: Clock) -> Node {
        Node {
            stripes: (0..STRIPES)
                .map(|_| Padded(Mutex::new(Stripe::new())))
                .collect(),
            acct: Acct {
                used: AtomicU64::new(0),
                items: AtomicU64::new(0),
                fixed: AtomicU64::new(0),
                cas: AtomicU64::new(0),
            },
            name: name.into(),
            clock,
            max_memory: AtomicU64::new(max_memory),
            pending_flush: AtomicU64::new(0),
            evict_rr: AtomicUsize::new(0),
            sweep_rr: AtomicUsize::new(0),
        }
    }

    /// The node's name (config `[[nodes]] name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The memory budget in bytes.
    pub fn max_memory(&self) -> u64 {
        self.max_memory.load(Relaxed)
    }

    /// Bytes charged now (items + fixed), as in `stats().used_bytes`.
    pub fn used_bytes(&self) -> u64 {
        self.acct.used.load(Relaxed)
    }

    /// The fixed part of `used_bytes`: unoccupied slab capacity and index buckets.
    pub fn fixed_bytes(&self) -> u64 {
        self.acct.fixed.load(Relaxed)
    }

    /// Changes the budget. Shrinking evicts (SIEVE, round robin over the stripes) down to it
    /// before returning; if the fixed charge alone is still over, unused slab and index
    /// capacity is given back.
    pub fn set_max_memory(&self, bytes: u64) {
        self.max_memory.store(bytes, Relaxed);
        if !self.over() {
            return;
        }
        let now = self.clock.now_ms();
        self.evict_global(None, now);
        if self.over() {
            for padded in self.stripes.iter() {
                let freed = padded.0.lock().compact(&self.acct);
                drop(freed);
            }
        }
    }

    /// Counters summed over the stripes (locks each briefly; no item walk).
    pub fn stats(&self) -> NodeStats {
        let mut c = Counters::default();
        for padded in self.stripes.iter() {
            let s = padded.0.lock().counters;
            c.hits += s.hits;
            c.misses += s.misses;
            c.evictions += s.evictions;
            c.expired += s.expired;
            c.expired_unfetched += s.expired_unfetched;
            c.evicted_unfetched += s.evicted_unfetched;
            c.total_items += s.total_items;
        }
        NodeStats {
            items: self.acct.items.load(Relaxed),
            used_bytes: self.acct.used.load(Relaxed),
            max_bytes: self.max_memory(),
            hits: c.hits,
            misses: c.misses,
            evictions: c.evictions,
            expired: c.expired,
            expired_unfetched: c.expired_unfetched,
            evicted_unfetched: c.evicted_unfetched,
            total_items: c.total_items,
        }
    }

    /// Number of items (expired ones not yet reclaimed included).
    pub fn len(&self) -> u64 {
        self.acct.items.load(Relaxed)
    }

    /// True if the node holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Next CAS id of this node.
    #[inline]
    fn next_cas(&self) -> u64 {
        self.acct.cas.fetch_add(1, Relaxed) + 1
    }

    #[inline]
    fn over(&self) -> bool {
        self.acct.used.load(Relaxed) > self.max_memory.load(Relaxed)
    }

    #[inline]
    pub(super) fn stripe(&self, i: usize) -> &Mutex<Stripe> {
        &self.stripes[i].0
    }

    /// Runs `f` under the key's stripe lock. Expired items are invisible (and reclaimed lazily).
    /// After `f` returns, the node evicts (SIEVE) until used <= max_memory, never evicting the
    /// item `f` just wrote. Evicted values are dropped after the lock is released.
    pub fn entry<R>(&self, key: &[u8], f: impl FnOnce(&mut Entry<'_>) -> R) -> R {
        let now = self.clock.now_ms();
        self.maybe_flush(now);
        let hash = hash_key(key);
        let home = stripe_of(hash);
        let mut garbage = Garbage::default();
        let (r, written, over) = {
            let mut guard = self.stripe(home).lock();
            let stripe = &mut *guard;
            let mut slot = stripe.find(hash, key);
            if let Some(i) = slot {
                if is_expired(&stripe.slab[i as usize].meta, now) {
                    garbage.push(stripe.release(i, Some(hash), Reason::Expired, &self.acct));
                    slot = None;
                }
            }
            let mut entry = Entry {
                node: self,
                stripe,
                key,
                hash,
                now,
                slot,
                written: None,
                garbage: &mut garbage,
            };
            let r = f(&mut entry);
            let written = entry.written;
            let (over, _) = self.evict_stripe(&mut guard, written, now, &mut garbage, usize::MAX);
            (r, written.map(|w| (home, w)), over)
        };
        drop(garbage);
        if over {
            self.evict_global(written, now);
        }
        r
    }

    /// Evicts from one (locked) stripe while the node is over budget, at most `limit` items.
    /// Returns (still over budget, items evicted). Never evicts `protect`.
    fn evict_stripe(
        &self,
        stripe: &mut Stripe,
        protect: Option<u32>,
        now: u64,
        garbage: &mut Garbage,
        limit: usize,
    ) -> (bool, usize) {
        let mut n = 0;
        while self.over() {
            if n == limit {
                return (true, n);
            }
            let Some((i, expired)) = stripe.sieve_victim(protect, now) else {
                return (true, n);
            };
            let reason = if expired {
                Reason::Expired
            } else {
                Reason::Evicted
            };
            garbage.push(stripe.release(i, None, reason, &self.acct));
            n += 1;
        }
        (false, n)
    }

    /// Evicts round robin over all stripes, a batch per stripe, until under budget or nothing
    /// is evictable. `protect` = (stripe, slot) of the item just written.
    fn evict_global(&self, protect: Option<(usize, u32)>, now: u64) {
        let mut idle = 0;
        while self.over() && idle < STRIPES {
            let s = self.evict_rr.fetch_add(1, Relaxed) % STRIPES;
            let prot = protect.and_then(|(ps, slot)| (ps == s).then_some(slot));
            let mut garbage = Garbage::default();
            let (_, n) = {
                let mut guard = self.stripe(s).lock();
                self.evict_stripe(&mut guard, prot, now, &mut garbage, EVICT_BATCH)
            };
            drop(garbage);
            idle = if n == 0 { idle + 1 } else { 0 };
        }
    }

    /// Chunked walk: visits up to `max_items` live items from `cursor` (start with 0); returns
    /// the next cursor, 0 when the walk is complete. Every item present for the whole walk is
    /// seen once.
    ///
    /// The cursor is `stripe << 32 | slot`; slots never move, so inserts and removals by other
    /// threads cannot make the walk skip or repeat an item that stays. One stripe is locked at a
    /// time, for at most `max(8 × max_items, 1024)` slots; `f` runs under that lock.
    pub fn walk(&self, cursor: u64, max_items: usize, mut f: impl FnMut(&[u8], Item<'_>)) -> u64 {
        let now = self.clock.now_ms();
        let want = max_items.max(1);
        let scan_limit = walk_limit(want);
        let mut stripe = (cursor >> 32) as usize;
        let mut pos = (cursor & u64::from(u32::MAX)) as usize;
        let (mut seen, mut scanned) = (0usize, 0usize);
        while stripe < STRIPES {
            let guard = self.stripe(stripe).lock();
            let (next, s, n) = visit(&guard, pos, want - seen, scan_limit - scanned, now, &mut f);
            drop(guard);
            (seen, scanned) = (seen + s, scanned + n);
            if let Some(p) = next {
                return (stripe as u64) << 32 | p as u64;
            }
            stripe += 1;
            pos = 0;
        }
        0
    }

    /// [`Node::walk`] within stripe `stripe` only: visits up to `max_items` live items of it
    /// from slot `pos` (start with 0); returns the slot to go on from, None once the stripe is
    /// done. Every item present in the stripe for the whole walk is seen once. The lock is held
    /// for at most `max(8 × max_items, 1024)` slots; `f` runs under it.
    ///
    /// A key's stripe is the same in every node, so walking one stripe of every node covers a
    /// fixed part of the keyspace, wherever its keys live (SCAN walks in that order).
    pub fn walk_stripe(
        &self,
        stripe: usize,
        pos: u32,
        max_items: usize,
        mut f: impl FnMut(&[u8], Item<'_>),
    ) -> Option<u32> {
        if stripe >= STRIPES {
            return None;
        }
        let now = self.clock.now_ms();
        self.maybe_flush(now);
        let want = max_items.max(1);
        let guard = self.stripe(stripe).lock();
        let (next, _, _) = visit(&guard, pos as usize, want, walk_limit(want), now, &mut f);
        // A slot index is below the slab length, which `reserve_one` keeps under u32::MAX.
        next.map(|p| p as u32)
    }

    /// Runs `f(i, key, item)` on every live item of stripe `stripe` of each of `nodes` (`i`
    /// indexes `nodes`) with that stripe locked in all of them at once, in ascending node
    /// address as [`Node::entry_many`] does: no item can move between the nodes, appear or go
    /// meanwhile, so the walk is a snapshot of that part of the keyspace. `proceed` runs first,
    /// once every lock is held: if it says false (the caller's list of nodes turned out to be
    /// stale), nothing is walked and this returns false. The locks are held for the whole
    /// stripe of every node: only for rare use (a SCAN that reloads keep restarting).
    ///
    /// # Panics
    /// If the same node is given twice (that would deadlock).
    pub fn walk_stripe_many(
        nodes: &[&Node],
        stripe: usize,
        proceed: impl FnOnce() -> bool,
        mut f: impl FnMut(usize, &[u8], Item<'_>),
    ) -> bool {
        if stripe >= STRIPES {
            return proceed();
        }
        let (nows, guards) = lock_stripe_in_each(nodes, stripe, "walk_stripe_many");
        if !proceed() {
            return false;
        }
        for (i, (guard, &now)) in guards.iter().zip(&nows).enumerate() {
            let st: &Stripe = guard.as_ref().expect("locked above");
            visit(st, 0, usize::MAX, usize::MAX, now, &mut |k, item| {
                f(i, k, item)
            });
        }
        true
    }

    /// Runs `f` on the entries for `key` in several distinct nodes at once (`entries[i]` belongs
    /// to `nodes[i]`), all under their stripe locks, so that moving an item between nodes is
    /// atomic: no other access to `key` in any of them can see it in neither or in both.
    ///
    /// The key's stripe index is the same in every node (one process-wide key hash), and the
    /// locks are taken in ascending node address: any two `entry_many` calls lock common
    /// stripes in the same order, and every other operation holds one stripe lock at a time
    /// and never waits for another lock while holding it, so no cycle of waits can form.
    /// Afterwards each node evicts down to its budget as in [`Node::entry`].
    ///
    /// # Panics
    /// If the same node is given twice (that would deadlock).
    pub fn entry_many<R>(nodes: &[&Node], key: &[u8], f: impl FnOnce(&mut [Entry<'_>]) -> R) -> R {
        let hash = hash_key(key);
        let home = stripe_of(hash);
        let (nows, mut guards) = lock_stripe_in_each(nodes, home, "entry_many");
        let mut garbage: Vec<Garbage> = (0..nodes.len()).map(|_| Garbage::default()).collect();
        let (r, after) = {
            let mut entries: Vec<Entry<'_>> = guards
                .iter_mut()
                .zip(garbage.iter_mut())
                .zip(nodes.iter().zip(&nows))
                .map(|((guard, garbage), (&node, &now))| {
                    let stripe: &mut Stripe = guard.as_mut().expect("locked above");
                    let mut slot = stripe.find(hash, key);
                    if let Some(i) = slot
                        && is_expired(&stripe.slab[i as usize].meta, now)
                    {
                        garbage.push(stripe.release(i, Some(hash), Reason::Expired, &node.acct));
                        slot = None;
                    }
                    Entry {
                        node,
                        stripe,
                        key,
                        hash,
                        now,
                        slot,
                        written: None,
                        garbage,
                    }
                })
                .collect();
            let r = f(&mut entries);
            let after: Vec<(bool, Option<u32>)> = entries
                .iter_mut()
                .map(|e| {
                    let (over, _) =
                        e.node
                            .evict_stripe(e.stripe, e.written, e.now, e.garbage, usize::MAX);
                    (over, e.written)
                })
                .collect();
            (r, after)
        };
        drop(guards);
        drop(garbage);
        for ((node, &now), (over, written)) in nodes.iter().zip(&nows).zip(after) {
            if over {
                node.evict_global(written.map(|w| (home, w)), now);
            }
        }
        r
    }

    /// Runs `f` with several keys of this node locked at once, so that a command over them
    /// (RENAME, SMOVE, LMOVE, SUNIONSTORE, ...) is atomic: no other access to any of the keys
    /// can run in between. The distinct stripes of the keys are locked in ascending stripe
    /// order (keys sharing a stripe share its one lock). Every multi-lock operation takes its
    /// locks in ascending (node address, stripe) order: this one (one node, rising stripes),
    /// `entry_many` (one stripe, rising node addresses) and `validate` (one node, all
    /// stripes), so no cycle of waits can form.
    /// [`Locked::entry`] gives the entry of key `i`; afterwards the node evicts down to its
    /// budget as in [`Node::entry`], sparing the items written.
    pub fn entries<R>(&self, keys: &[&[u8]], f: impl FnOnce(&mut Locked<'_>) -> R) -> R {
        let now = self.clock.now_ms();
        self.maybe_flush(now);
        let hashes: Vec<u64> = keys.iter().map(|k| hash_key(k)).collect();
        let mut order: Vec<usize> = hashes.iter().map(|&h| stripe_of(h)).collect();
        order.sort_unstable();
        order.dedup();
        let guards: Vec<(usize, MutexGuard<'_, Stripe>)> =
            order.iter().map(|&s| (s, self.stripe(s).lock())).collect();
        let mut locked = Locked {
            node: self,
            now,
            keys,
            hashes,
            guards,
            garbage: Garbage::default(),
            written: Vec::new(),
        };
        let r = f(&mut locked);
        let Locked {
            mut guards,
            mut garbage,
            written,
            ..
        } = locked;
        let mut over = false;
        for (s, guard) in &mut guards {
            let protect = written.iter().rev().find(|w| w.0 == *s).map(|w| w.1);
            over |= self
                .evict_stripe(guard, protect, now, &mut garbage, usize::MAX)
                .0;
        }
        drop(guards);
        drop(garbage);
        if over {
            self.evict_global(written.last().copied(), now);
        }
        r
    }

    /// Recomputes every count and charge from scratch and checks index ↔ slab consistency, the
    /// SIEVE queue (both directions, count, hand), the free list and the node totals. Locks all
    /// stripes (in order) for a consistent view. For tests.
    #[doc(hidden)]
    pub fn validate(&self) -> Result<(), String> {
        let guards: Vec<_> = self.stripes.iter().map(|p| p.0.lock()).collect();
        let (mut used, mut items, mut fixed) = (0u64, 0u64, 0u64);
        for (si, st) in guards.iter().enumerate() {
            validate_stripe(si, st)?;
            used += st.used + st.fixed;
            fixed += st.fixed;
            items += u64::from(st.live);
        }
        let node = (
            self.acct.used.load(Relaxed),
            self.acct.items.load(Relaxed),
            self.acct.fixed.load(Relaxed),
        );
        if node != (used, items, fixed) {
            return Err(format!(
                "node (used, items, fixed) = {node:?}, recomputed {:?}",
                (used, items, fixed)
            ));
        }
        Ok(())
    }
}

fn validate_stripe(si: usize, st: &Stripe) -> Result<(), String> {
    let n = st.slab.len();
    let (mut live, mut used) = (0u32, 0u64);
    for (i, slot) in st.slab.iter().enumerate() {
        if !slot.live() {
            if !slot.body.is_empty_alloc() || slot.visited() || slot.prev != NIL {
                return Err(format!("stripe {si} slot {i}: free slot not clean"));
            }
            continue;
        }
        live += 1;
        used += slot.charge();
        let key = slot.key();
        let hash = hash_key(key);
        if stripe_of(hash) != si {
            return Err(format!(
                "stripe {si} slot {i}: key belongs to stripe {}",
                stripe_of(hash)
            ));
        }
        let found = st.index.find(hash, |&j| {
            st.slab
                .get(j as usize)
                .is_some_and(|s| s.live() && s.key() == key)
        });
        if found != Some(&(i as u32)) {
            return Err(format!(
                "stripe {si} slot {i}: index lookup gives {found:?}"
            ));
        }
        if let Body::Container(c) = &slot.body {
            if c.charge != c.compute_charge() || c.value.charge() != c.value.recompute_charge() {
                return Err(format!("stripe {si} slot {i}: stale container charge"));
            }
        }
        if let Body::Str(b) = &slot.body {
            if slot.klen() as usize > b.len() {
                return Err(format!("stripe {si} slot {i}: klen past the allocation"));
            }
        }
    }
    if live != st.live || st.index.len() != live as usize {
        return Err(format!(
            "stripe {si}: live {} / index {} / recomputed {live}",
            st.live,
            st.index.len()
        ));
    }
    if used != st.used {
        return Err(format!("stripe {si}: used {} recomputed {used}", st.used));
    }
    if st.fixed != st.fixed_for(live) {
        return Err(format!(
            "stripe {si}: fixed {} recomputed {}",
            st.fixed,
            st.fixed_for(live)
        ));
    }
    // Free list: only free slots, no cycle, covers every free slot.
    let mut free = 0usize;
    let mut f = st.free_head;
    while f != NIL {
        let slot = st
            .slab
            .get(f as usize)
            .ok_or_else(|| format!("stripe {si}: free list points past the slab ({f})"))?;
        if slot.live() {
            return Err(format!("stripe {si}: occupied slot {f} on the free list"));
        }
        free += 1;
        if free > n {
            return Err(format!("stripe {si}: free list cycle"));
        }
        f = slot.next;
    }
    if free + live as usize != n {
        return Err(format!(
            "stripe {si}: {free} free + {live} live != slab {n}"
        ));
    }
    // SIEVE queue, head → tail with back links, then the hand.
    let (mut count, mut prev, mut cur) = (0u32, NIL, st.head);
    while cur != NIL {
        let slot = st
            .slab
            .get(cur as usize)
            .ok_or_else(|| format!("stripe {si}: queue points past the slab ({cur})"))?;
        if !slot.live() {
            return Err(format!("stripe {si}: free slot {cur} in the queue"));
        }
        if slot.prev != prev {
            return Err(format!(
                "stripe {si}: slot {cur} prev {} expected {prev}",
                slot.prev
            ));
        }
        count += 1;
        if count > live {
            return Err(format!(
                "stripe {si}: queue longer than live count (cycle?)"
            ));
        }
        prev = cur;
        cur = slot.next;
    }
    if count != live || st.tail != prev {
        return Err(format!(
            "stripe {si}: queue count {count} (live {live}), tail {} expected {prev}",
            st.tail
        ));
    }
    if st.hand != NIL && !st.slab.get(st.hand as usize).is_some_and(|s| s.live()) {
        return Err(format!("stripe {si}: hand {} on a free slot", st.hand));
    }
    Ok(())
}

/// Access to one key under its stripe lock, given to the closure of `Node::entry`.
pub struct Entry<'a> {
    node: &'a Node,
    stripe: &'a mut Stripe,
    key: &'a [u8],
    hash: u64,
    now: u64,
    /// The key's occupied slot (unexpired when the entry was made).
    slot: Option<u32>,
    /// Slot written in this entry: eviction spares it.
    written: Option<u32>,
    garbage: &'a mut Garbage,
}

impl Entry<'_> {
    /// The key.
    pub fn key(&self) -> &[u8] {
        self.key
    }

    /// The time of this access (unix ms), read once when the entry was made.
    pub fn now_ms(&self) -> u64 {
        self.now
    }

    /// The node this entry belongs to.
    pub fn node(&self) -> &Node {
        self.node
    }

    /// The live slot: occupied and not expired (metadata may have been edited in this entry).
    #[inline]
    fn live_slot(&self) -> Option<u32> {
        self.slot
            .filter(|&i| !is_expired(&self.stripe.slab[i as usize].meta, self.now))
    }

    /// The live item, or None.
    pub fn item(&self) -> Option<Item<'_>> {
        let i = self.live_slot()?;
        Some(Item {
            slot: &self.stripe.slab[i as usize],
        })
    }

    /// The live item's metadata (no value change).
    pub fn meta_mut(&mut self) -> Option<&mut ItemMeta> {
        let i = self.live_slot()?;
        Some(&mut self.stripe.slab[i as usize].meta)
    }

    /// Marks a hit: sets the SIEVE visited bit only if unset, `fetched`, `atime`; counts a hit.
    /// Fields are written only when they change, so hot keys do not bounce cache lines.
    pub fn mark_read(&mut self) {
        let Some(i) = self.live_slot() else {
            return;
        };
        let atime = self.node.clock.secs_since_start(self.now);
        let slot = &mut self.stripe.slab[i as usize];
        if !slot.visited() {
            slot.set_visited(true);
        }
        if !slot.meta.fetched {
            slot.meta.fetched = true;
        }
        if slot.meta.atime != atime {
            slot.meta.atime = atime;
        }
        self.stripe.counters.hits += 1;
    }

    /// Counts a miss.
    pub fn record_miss(&mut self) {
        self.stripe.counters.misses += 1;
    }

    /// True if an item of this stripe whose body costs `body_charge` fits in the budget once
    /// every other item's allocation is evicted (see `make_room`).
    fn fits_alone(&self, body_charge: u64) -> bool {
        fits_alone_in(self.node, self.stripe, body_charge)
    }

    /// Checks that an item whose body costs `body_charge` can fit at all: evicting every other
    /// item gives back their allocations but not their slots (slab memory stays), so the floor
    /// is all slab capacity and index buckets of the node plus this body. Reserves slab/index
    /// room first if the key is new. The existing item, if any, is being replaced, so its body
    /// does not count.
    fn make_room(&mut self, body_charge: u64) -> Result<(), StoreError> {
        let node = self.node;
        let st = &mut *self.stripe;
        let fits = |st: &Stripe| fits_alone_in(node, st, body_charge);
        if !fits(st) {
            return Err(StoreError::OutOfMemory);
        }
        if self.slot.is_some() {
            return Ok(());
        }
        let (slab_cap, index_cap) = (st.slab.capacity(), st.index.capacity());
        if !st.reserve_one() || !fits(st) {
            // Give back what the reservation grew: a refused item must not cost anything
            // (its growth would otherwise push the node over budget and evict others).
            st.slab.shrink_to(slab_cap);
            if st.index.capacity() != index_cap {
                let slab = &st.slab;
                st.index
                    .shrink_to(st.index.len(), |&i| hash_key(slab[i as usize].key()));
            }
            st.sync_fixed(&node.acct);
            return Err(StoreError::OutOfMemory);
        }
        Ok(())
    }

    /// Stores `body` for this key (room checked by `make_room`). A replaced item keeps its slot;
    /// `fresh` moves it to the SIEVE head as a new item, otherwise it keeps its place and bit.
    fn install(&mut self, body: Body, klen: u32, meta: ItemMeta, fresh: bool) {
        let acct = &self.node.acct;
        let st = &mut *self.stripe;
        let i = match self.slot {
            Some(i) => {
                let slot = &mut st.slab[i as usize];
                let old = mem::replace(&mut slot.body, body);
                let old_charge = SLOT_BYTES + old.charge();
                slot.set_klen(klen);
                slot.meta = meta;
                let new_charge = slot.charge();
                st.used = st.used - old_charge + new_charge;
                add(&acct.used, diff(new_charge, old_charge));
                if fresh {
                    st.slab[i as usize].set_visited(false);
                    st.unlink(i);
                    st.link_head(i);
                }
                self.garbage.push(old);
                i
            }
            None => st.insert(self.hash, body, klen, meta, acct),
        };
        st.counters.total_items += 1;
        self.slot = Some(i);
        self.written = Some(i);
    }

    /// Stores a string whose value is the concatenation of `parts`, replacing any item of any kind.
    /// `cas: None` takes the next CAS from the node. Returns the item's CAS. New item's meta:
    /// fetched/stale/won false, atime now. Err(OutOfMemory) if the item can never fit; the
    /// existing item, if any, is then left as it was (memcached's `set` deletes it: the caller
    /// does that with `remove`).
    pub fn put(
        &mut self,
        parts: &[&[u8]],
        flags: u32,
        expire_at: u64,
        cas: Option<u64>,
    ) -> Result<u64, StoreError> {
        let klen = u32::try_from(self.key.len()).map_err(|_| StoreError::OutOfMemory)?;
        let total = parts
            .iter()
            .try_fold(self.key.len(), |n, p| n.checked_add(p.len()))
            .ok_or(StoreError::OutOfMemory)?;
        self.make_room(alloc_size(total))?;
        let mut data = Vec::with_capacity(total);
        data.extend_from_slice(self.key);
        for p in parts {
            data.extend_from_slice(p);
        }
        let cas = cas.unwrap_or_else(|| self.node.next_cas());
        let meta = ItemMeta {
            cas,
            expire_at,
            flags,
            atime: self.node.clock.secs_since_start(self.now),
            fetched: false,
            stale: false,
            won: false,
        };
        self.install(Body::Str(data.into_boxed_slice()), klen, meta, true);
        Ok(cas)
    }

    /// append (front=false) / prepend (front=true) to a live string; keeps flags/expiry, new CAS.
    /// Err(WrongType) on a container; caller checks existence first. With no live item, stores
    /// `data` as a new string (flags 0, no expiry), as Redis APPEND does.
    pub fn concat(&mut self, data: &[u8], front: bool) -> Result<u64, StoreError> {
        let Some(i) = self.live_slot() else {
            return self.put(&[data], 0, NEVER, None);
        };
        let slot = &self.stripe.slab[i as usize];
        let Body::Str(old) = &slot.body else {
            return Err(StoreError::WrongType);
        };
        let total = old
            .len()
            .checked_add(data.len())
            .ok_or(StoreError::OutOfMemory)?;
        let klen = slot.klen();
        self.make_room(alloc_size(total))?;
        let slot = &self.stripe.slab[i as usize];
        let (key, value) = (slot.key(), slot.value());
        let mut buf = Vec::with_capacity(total);
        buf.extend_from_slice(key);
        if front {
            buf.extend_from_slice(data);
            buf.extend_from_slice(value);
        } else {
            buf.extend_from_slice(value);
            buf.extend_from_slice(data);
        }
        let cas = self.node.next_cas();
        let meta = ItemMeta { cas, ..slot.meta };
        self.install(Body::Str(buf.into_boxed_slice()), klen, meta, false);
        Ok(cas)
    }

    /// Stores a container value, replacing any item of any kind; new CAS, no flags. Returns the
    /// CAS. Err(OutOfMemory) if it can never fit.
    pub fn put_container(&mut self, value: Container, expire_at: u64) -> Result<u64, StoreError> {
        let klen = u32::try_from(self.key.len()).map_err(|_| StoreError::OutOfMemory)?;
        let item = ContainerItem::new(self.key, value);
        self.make_room(item.charge)?;
        let cas = self.node.next_cas();
        let meta = ItemMeta {
            cas,
            expire_at,
            atime: self.node.clock.secs_since_start(self.now),
            ..ItemMeta::default()
        };
        self.install(Body::Container(Box::new(item)), klen, meta, true);
        Ok(cas)
    }

    /// Runs `f` on the live container in place, then re-charges the item (O(1): the
    /// collections keep their element bytes as they change, see value.rs) and gives it a new
    /// CAS; an emptied container is removed, as Redis does. Ok(None) if there is no live item,
    /// Err(WrongType) on a string. The node evicts other items afterwards if the container grew
    /// past the budget; a container that grew past what the node could hold even alone is
    /// removed (evicted whole) and Err(OutOfMemory) returned.
    pub fn update_container<R>(
        &mut self,
        f: impl FnOnce(&mut Container) -> R,
    ) -> Result<Option<R>, StoreError> {
        let Some(i) = self.live_slot() else {
            return Ok(None);
        };
        let slot = &mut self.stripe.slab[i as usize];
        let Body::Container(c) = &mut slot.body else {
            return Err(StoreError::WrongType);
        };
        let r = f(&mut c.value);
        if c.value.is_empty() {
            self.remove();
            return Ok(Some(r));
        }
        let charge = c.compute_charge();
        if charge > c.charge && !self.fits_alone(charge) {
            // Grown past what the node can ever hold: evicted whole, like any other key that
            // does not fit (the alternative, keeping it, would break the budget for good).
            self.remove();
            return Err(StoreError::OutOfMemory);
        }
        let slot = &mut self.stripe.slab[i as usize];
        let Body::Container(c) = &mut slot.body else {
            unreachable!("checked above");
        };
        let d = diff(charge, c.charge);
        c.charge = charge;
        slot.meta.cas = self.node.next_cas();
        self.stripe.used = self.stripe.used.wrapping_add(d as u64);
        add(&self.node.acct.used, d);
        self.written = Some(i);
        Ok(Some(r))
    }

    /// Removes the item. True if a live item was removed (an expired one is reclaimed too).
    pub fn remove(&mut self) -> bool {
        let Some(i) = self.slot.take() else {
            return false;
        };
        let live = !is_expired(&self.stripe.slab[i as usize].meta, self.now);
        let reason = if live {
            Reason::Removed
        } else {
            Reason::Expired
        };
        let body = self
            .stripe
            .release(i, Some(self.hash), reason, &self.node.acct);
        self.garbage.push(body);
        if self.written == Some(i) {
            self.written = None;
        }
        live
    }

    /// Takes the live item out of this node, whole (value of any kind, flags, CAS, expiry and
    /// access metadata), for [`Entry::put_moved`] into another node. None if there is none.
    pub fn take(&mut self) -> Option<Moved> {
        let i = self.live_slot()?;
        self.slot = None;
        if self.written == Some(i) {
            self.written = None;
        }
        let slot = &self.stripe.slab[i as usize];
        let (klen, meta) = (slot.klen(), slot.meta);
        let body = self
            .stripe
            .release(i, Some(self.hash), Reason::Removed, &self.node.acct);
        Some(Moved { body, klen, meta })
    }

    /// Stores an item taken from another node under this key, replacing any item here, with
    /// its metadata unchanged (a client's `gets` CAS stays valid across a move). The node's CAS
    /// counter is raised past the item's so that later writes here get larger CAS ids. On
    /// Err(OutOfMemory) the item is dropped (after the lock is released).
    pub fn put_moved(&mut self, moved: Moved) -> Result<(), StoreError> {
        debug_assert_eq!(moved.key(), self.key, "moved item stored under another key");
        if let Err(e) = self.make_room(moved.body.charge()) {
            self.garbage.push(moved.body);
            return Err(e);
        }
        self.node.acct.cas.fetch_max(moved.meta.cas, Relaxed);
        self.install(moved.body, moved.klen, moved.meta, true);
        Ok(())
    }
}

/// Several keys of one node under their stripe locks, given to the closure of
/// [`Node::entries`].
pub struct Locked<'a> {
    node: &'a Node,
    now: u64,
    keys: &'a [&'a [u8]],
    hashes: Vec<u64>,
    /// (stripe, guard), ascending stripe.
    guards: Vec<(usize, MutexGuard<'a, Stripe>)>,
    garbage: Garbage,
    /// (stripe, slot) written, in order.
    written: Vec<(usize, u32)>,
}

impl Locked<'_> {
    /// The locked keys.
    pub fn keys(&self) -> &[&[u8]] {
        self.keys
    }

    /// Runs `f` on the entry of key `i` (as [`Node::entry`] would, without locking again).
    pub fn entry<R>(&mut self, i: usize, f: impl FnOnce(&mut Entry<'_>) -> R) -> R {
        let (key, hash) = (self.keys[i], self.hashes[i]);
        let s = stripe_of(hash);
        let node = self.node;
        let now = self.now;
        let g = self
            .guards
            .iter()
            .position(|(gs, _)| *gs == s)
            .expect("every key's stripe is locked");
        let stripe: &mut Stripe = &mut self.guards[g].1;
        let mut slot = stripe.find(hash, key);
        if let Some(j) = slot
            && is_expired(&stripe.slab[j as usize].meta, now)
        {
            self.garbage
                .push(stripe.release(j, Some(hash), Reason::Expired, &node.acct));
            slot = None;
        }
        let mut entry = Entry {
            node,
            stripe,
            key,
            hash,
            now,
            slot,
            written: None,
            garbage: &mut self.garbage,
        };
        let r = f(&mut entry);
        if let Some(w) = entry.written {
            self.written.push((s, w));
        }
        r
    }
}

/// An item taken out of a node by [`Entry::take`], on its way to another node.
pub struct Moved {
    body: Body,
    klen: u32,
    meta: ItemMeta,
}

impl Moved {
    /// Bytes the item is charged (slot and allocations), as in [`Item::charge`].
    pub fn charge(&self) -> u64 {
        SLOT_BYTES + self.body.charge()
    }

    /// The item's metadata.
    pub fn meta(&self) -> &ItemMeta {
        &self.meta
    }

    fn key(&self) -> &[u8] {
        match &self.body {
            Body::Str(b) => &b[..self.klen as usize],
            Body::Container(c) => &c.key,
        }
    }
}

/// A read-only view of a live item, valid while its stripe lock is held.
#[derive(Clone, Copy)]
pub struct Item<'a> {
    slot: &'a Slot,
}

impl<'a> Item<'a> {
    /// The key.
    pub fn key(&self) -> &'a [u8] {
        self.slot.key()
    }

    /// The value kind.
    pub fn kind(&self) -> Kind {
        self.slot.kind()
    }

    /// String bytes ([] for containers).
    pub fn value(&self) -> &'a [u8] {
        self.slot.value()
    }

    /// The item's metadata.
    pub fn meta(&self) -> &'a ItemMeta {
        &self.slot.meta
    }

    /// The container, for container kinds.
    pub fn container(&self) -> Option<&'a Container> {
        match &self.slot.body {
            Body::Str(_) => None,
            Body::Container(c) => Some(&c.value),
        }
    }

    /// Bytes charged for this item (slot + allocations).
    pub fn charge(&self) -> u64 {
        self.slot.charge()
    }
}

impl fmt::Debug for Item<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("key", &self.key())
            .field("kind", &self.kind())
            .field("value_len", &self.value().len())
            .field("meta", self.meta())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::AtomicBool;

    use super::super::ZSet;
    use super::*;

    /// xorshift64*: tiny deterministic generator for the randomized tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const T0: u64 = 1_700_000_000_000;

    fn get(node: &Node, key: &[u8]) -> Option<Vec<u8>> {
        node.entry(key, |e| {
            let v = e.item().map(|i| i.value().to_vec());
            if v.is_some() {
                e.mark_read();
            } else {
                e.record_miss();
            }
            v
        })
    }

    fn set(node: &Node, key: &[u8], val: &[u8]) -> Result<u64, StoreError> {
        node.entry(key, |e| e.put(&[val], 0, NEVER, None))
    }

    fn walk_all(node: &Node, chunk: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = node.walk(cursor, chunk, |k, item| {
                out.push((k.to_vec(), item.value().to_vec()))
            });
            if cursor == 0 {
                return out;
            }
        }
    }

    #[test]
    fn slot_is_56_bytes() {
        assert!(
            size_of::<Slot>() <= 56,
            "Slot is {} bytes",
            size_of::<Slot>()
        );
        assert_eq!(SLOT_BYTES, 56);
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Node>();
    }

    #[test]
    fn put_get_remove_concat() {
        let node = Node::new("n", 1 << 20, Clock::mock(T0));
        assert_eq!(node.name(), "n");
        assert_eq!(get(&node, b"k"), None);
        set(&node, b"k", b"hello").expect("fits");
        assert_eq!(get(&node, b"k").as_deref(), Some(&b"hello"[..]));
        node.entry(b"k", |e| e.put(&[b"a", b"", b"bc"], 42, NEVER, None))
            .expect("fits");
        node.entry(b"k", |e| {
            let item = e.item().expect("live");
            assert_eq!(
                (item.key(), item.value(), item.kind()),
                (&b"k"[..], &b"abc"[..], Kind::Str)
            );
            assert_eq!(item.meta().flags, 42);
            assert!(!item.meta().fetched);
        });
        node.entry(b"k", |e| e.concat(b"def", false)).expect("fits");
        node.entry(b"k", |e| e.concat(b"__", true)).expect("fits");
        assert_eq!(get(&node, b"k").as_deref(), Some(&b"__abcdef"[..]));
        node.entry(b"k", |e| {
            let m = e.item().expect("live").meta();
            assert_eq!(m.flags, 42);
            assert!(m.fetched);
        });
        // Empty key and empty value are items too.
        set(&node, b"", b"").expect("fits");
        assert_eq!(get(&node, b"").as_deref(), Some(&b""[..]));
        assert_eq!(node.len(), 2);
        assert!(node.entry(b"k", |e| e.remove()));
        assert!(!node.entry(b"k", |e| e.remove()));
        assert_eq!(get(&node, b"k"), None);
        // concat on a missing key creates it (Redis APPEND).
        node.entry(b"new", |e| e.concat(b"x", false)).expect("fits");
        assert_eq!(get(&node, b"new").as_deref(), Some(&b"x"[..]));
        let st = node.stats();
        assert_eq!((st.hits, st.misses, st.total_items), (4, 2, 6));
        assert_eq!(st.items, 2);
        node.validate().expect("valid");
    }

    #[test]
    fn cas_changes_on_every_write() {
        let node = Node::new("n", 1 << 20, Clock::mock(T0));
        let c1 = set(&node, b"k", b"1").expect("fits");
        let c2 = set(&node, b"k", b"2").expect("fits");
        let c3 = node.entry(b"k", |e| e.concat(b"3", false)).expect("fits");
        let other = set(&node, b"other", b"x").expect("fits");
        assert!(c1 < c2 && c2 < c3 && c3 < other);
        node.entry(b"k", |e| {
            let m = e.meta_mut().expect("live");
            m.flags = 9; // metadata edits keep the CAS
            assert_eq!({ m.cas }, c3);
        });
        let given = node
            .entry(b"k", |e| e.put(&[b"v"], 0, NEVER, Some(777)))
            .expect("fits");
        assert_eq!(given, 777);
        assert_eq!(
            node.entry(b"k", |e| e.item().map(|i| i.meta().cas)),
            Some(777)
        );
        let c4 = set(&node, b"k", b"again").expect("fits");
        assert!(c4 > other);
    }

    #[test]
    fn containers_are_charged_and_typed() {
        let node = Node::new("n", 1 << 20, Clock::mock(T0));
        let used0 = node.used_bytes();
        let cas = node
            .entry(b"h", |e| {
                e.put_container(Container::Hash(Default::default()), NEVER)
            })
            .expect("fits");
        node.entry(b"h", |e| {
            let item = e.item().expect("live");
            assert_eq!(
                (item.kind(), item.value(), item.meta().cas),
                (Kind::Hash, &b""[..], cas)
            );
            assert!(item.container().is_some());
        });
        assert_eq!(
            node.entry(b"h", |e| e.concat(b"x", false)),
            Err(StoreError::WrongType)
        );
        let before = node.used_bytes();
        let n = node
            .entry(b"h", |e| {
                e.update_container(|c| {
                    if let Container::Hash(m) = c {
                        for i in 0..100u32 {
                            m.insert(&i.to_be_bytes(), &[0u8; 50]);
                        }
                    }
                    c.len()
                })
            })
            .expect("container");
        assert_eq!(n, Some(100));
        assert!(node.used_bytes() >= before + 100 * (32 + 64));
        node.validate().expect("valid");
        assert_eq!(
            node.entry(b"s", |e| e.update_container(|c| c.len())),
            Ok(None)
        );
        set(&node, b"s", b"str").expect("fits");
        assert_eq!(
            node.entry(b"s", |e| e.update_container(|c| c.len())),
            Err(StoreError::WrongType)
        );
        node.entry(b"z", |e| {
            e.put_container(Container::ZSet(ZSet::default()), NEVER)
        })
        .expect("fits");
        // Emptying a container removes the key.
        node.entry(b"h", |e| {
            e.update_container(|c| {
                if let Container::Hash(m) = c {
                    for i in 0..100u32 {
                        m.remove(&i.to_be_bytes());
                    }
                }
            })
        })
        .expect("container");
        assert!(node.entry(b"h", |e| e.item().is_none()));
        // A string replaces a container and vice versa.
        set(&node, b"z", b"now a string").expect("fits");
        assert_eq!(get(&node, b"z").as_deref(), Some(&b"now a string"[..]));
        node.validate().expect("valid");
        for k in [&b"s"[..], b"z"] {
            node.entry(k, |e| e.remove());
        }
        assert_eq!(node.used_bytes() - node.fixed_bytes(), used0);
        node.validate().expect("valid");
    }

    #[test]
    fn entries_lock_several_keys_of_one_node() {
        let node = Node::new("n", 1 << 20, Clock::mock(T0));
        // Enough keys that some share a stripe (one lock for both).
        let names: Vec<Vec<u8>> = (0..100).map(|i| format!("k{i}").into_bytes()).collect();
        let keys: Vec<&[u8]> = names.iter().map(|k| k.as_slice()).collect();
        set(&node, keys[0], b"first").expect("fits");
        node.entries(&keys, |l| {
            let v = l.entry(0, |e| e.item().map(|i| i.value().to_vec()));
            assert_eq!(v.as_deref(), Some(&b"first"[..]));
            for i in 1..keys.len() {
                l.entry(i, |e| e.put(&[b"v"], 0, NEVER, None))
                    .expect("fits");
            }
            l.entry(0, |e| e.remove());
        });
        assert!(get(&node, keys[0]).is_none());
        assert_eq!(get(&node, keys[99]).as_deref(), Some(&b"v"[..]));
        assert_eq!(node.len(), 99);
        node.validate().expect("valid");
    }

    #[test]
    fn a_container_grown_past_the_budget_is_evicted_whole() {
        let node = Node::new("n", 64 << 10, Clock::mock(T0));
        set(&node, b"other", b"x").expect("fits");
        node.entry(b"l", |e| {
            e.put_container(Container::List(Default::default()), NEVER)
        })
        .expect("fits");
        let mut refused = None;
        for i in 0..1000 {
            let r = node.entry(b"l", |e| {
                e.update_container(|c| {
                    if let Container::List(l) = c {
                        l.push(&[0u8; 100], false);
                    }
                })
            });
            assert!(node.used_bytes() <= node.max_memory());
            if r.is_err() {
                refused = Some(i);
                break;
            }
        }
        assert!(refused.is_some(), "a 100 KB list cannot fit in 64 KiB");
        assert!(node.entry(b"l", |e| e.item().is_none()));
        node.validate().expect("valid");
    }

    #[test]
    fn eviction_keeps_used_under_max() {
        let max = 256 * 1024;
        let node = Node::new("n", max, Clock::mock(T0));
        let mut rng = Rng(7);
        for i in 0..20_000u32 {
            let len = 50 + rng.below(250) as usize;
            set(&node, format!("key-{i}").as_bytes(), &vec![b'v'; len]).expect("fits");
            assert!(
                node.used_bytes() <= max,
                "used {} > max after put {i}",
                node.used_bytes()
            );
            if i % 3 == 0 {
                get(&node, format!("key-{}", i / 2).as_bytes());
                assert!(node.used_bytes() <= max);
            }
        }
        let st = node.stats();
        assert!(st.evictions > 15_000, "{st:?}");
        assert!(st.items < 2_000 && st.items > 500, "{st:?}");
        assert!(st.used_bytes > max * 9 / 10, "budget badly used: {st:?}");
        // The most recent item is always there.
        assert!(get(&node, b"key-19999").is_some());
        node.validate().expect("valid");
    }

    #[test]
    fn too_big_item_is_refused() {
        let max = 64 * 1024;
        let node = Node::new("n", max, Clock::mock(T0));
        set(&node, b"k", b"small").expect("fits");
        set(&node, b"other", b"x").expect("fits");
        assert_eq!(
            set(&node, b"k", &vec![0u8; 70_000]),
            Err(StoreError::OutOfMemory)
        );
        assert_eq!(get(&node, b"k").as_deref(), Some(&b"small"[..]));
        assert_eq!(
            set(&node, b"new", &vec![0u8; 70_000]),
            Err(StoreError::OutOfMemory)
        );
        assert_eq!(get(&node, b"new"), None);
        assert_eq!(
            node.entry(b"k", |e| e.concat(&vec![0u8; 70_000], false)),
            Err(StoreError::OutOfMemory)
        );
        assert_eq!(get(&node, b"k").as_deref(), Some(&b"small"[..]));
        // Nearly the whole budget (replacing "other": no slab growth): fits, evicting the rest.
        let floor = node.fixed_bytes() + node.len() * SLOT_BYTES;
        let big = max - floor - 32;
        set(&node, b"other", &vec![1u8; big as usize]).expect("fits");
        assert!(
            node.used_bytes() <= max,
            "{big} {:?} fixed {}",
            node.stats(),
            node.fixed_bytes()
        );
        assert_eq!(get(&node, b"k"), None);
        assert_eq!(get(&node, b"other").map(|v| v.len()), Some(big as usize));
        assert_eq!(node.stats().evictions, 1);
        // One byte past what can ever fit: refused, and the big item stays.
        let floor = node.fixed_bytes() + node.len() * SLOT_BYTES;
        assert_eq!(
            set(&node, b"x", &vec![0u8; (max - floor) as usize]),
            Err(StoreError::OutOfMemory)
        );
        assert_eq!(get(&node, b"other").map(|v| v.len()), Some(big as usize));
        node.validate().expect("valid");
    }

    #[test]
    fn shrinking_max_memory_evicts_before_returning() {
        let node = Node::new("n", 1 << 20, Clock::mock(T0));
        for i in 0..20_000u32 {
            set(&node, &i.to_be_bytes(), &[0u8; 100]).expect("fits");
        }
        assert!(node.used_bytes() > 900 * 1024);
        node.set_max_memory(256 * 1024);
        assert!(node.used_bytes() <= 256 * 1024);
        assert_eq!(node.max_memory(), 256 * 1024);
        node.validate().expect("valid");
        // Below the fixed charge: everything goes, unused capacity is given back.
        node.set_max_memory(1000);
        assert!(node.used_bytes() <= 1000, "{:?}", node.stats());
        node.validate().expect("valid");
        node.set_max_memory(1 << 20);
        set(&node, b"k", b"v").expect("fits");
        assert_eq!(get(&node, b"k").as_deref(), Some(&b"v"[..]));
        node.validate().expect("valid");
    }

    #[test]
    fn walk_sees_every_stable_item_once_under_churn() {
        let node = Node::new("n", u64::MAX, Clock::mock(T0));
        let stable: Vec<Vec<u8>> = (0..5_000)
            .map(|i| format!("stable-{i}").into_bytes())
            .collect();
        for k in &stable {
            set(&node, k, b"s").expect("fits");
        }
        let stop = AtomicBool::new(false);
        let mut seen: HashMap<Vec<u8>, u32> = HashMap::new();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut rng = Rng(99);
                while !stop.load(Relaxed) {
                    let k = format!("churn-{}", rng.below(3_000));
                    if rng.below(2) == 0 {
                        set(&node, k.as_bytes(), b"c").expect("fits");
                    } else {
                        node.entry(k.as_bytes(), |e| e.remove());
                    }
                }
            });
            let mut cursor = 0;
            loop {
                cursor = node.walk(cursor, 7, |k, _| *seen.entry(k.to_vec()).or_default() += 1);
                if cursor == 0 {
                    break;
                }
                std::thread::yield_now();
            }
            stop.store(true, Relaxed);
        });
        for k in &stable {
            assert_eq!(seen.get(k), Some(&1), "{}", String::from_utf8_lossy(k));
        }
        node.validate().expect("valid");
    }

    #[test]
    fn stripe_walks_cover_a_key_in_the_same_stripe_of_every_node() {
        let a = Node::new("a", u64::MAX, Clock::mock(T0));
        let b = Node::new("b", u64::MAX, Clock::mock(T0));
        let keys: Vec<Vec<u8>> = (0..3_000).map(|i| format!("k{i}").into_bytes()).collect();
        for (i, k) in keys.iter().enumerate() {
            set(if i % 3 == 0 { &a } else { &b }, k, b"v").expect("fits");
        }
        let expired = b"gone".as_slice();
        a.entry(expired, |e| e.put(&[b"x"], 0, T0 - 1, None))
            .expect("fits");
        // Stripe by stripe, in small chunks: every key once, in its key's stripe.
        let mut seen: HashMap<Vec<u8>, (usize, u32)> = HashMap::new();
        for stripe in 0..STRIPES {
            for node in [&a, &b] {
                let mut pos = 0;
                loop {
                    let next = node.walk_stripe(stripe, pos, 5, |k, _| {
                        assert_eq!(stripe_of(hash_key(k)), stripe);
                        seen.entry(k.to_vec()).or_insert((stripe, 0)).1 += 1;
                    });
                    match next {
                        Some(p) => {
                            assert!(p > pos);
                            pos = p;
                        }
                        None => break,
                    }
                }
            }
        }
        assert_eq!(seen.len(), keys.len());
        assert!(seen.values().all(|&(_, n)| n == 1));
        assert!(!seen.contains_key(expired));
        assert_eq!(
            a.walk_stripe(STRIPES, 0, 5, |_, _| panic!("no stripe")),
            None
        );
        // All stripes of both nodes under one set of locks: the same keys, tagged by node.
        let mut locked: Vec<(usize, Vec<u8>)> = Vec::new();
        for stripe in 0..STRIPES {
            let walked = Node::walk_stripe_many(
                &[&b, &a],
                stripe,
                || true,
                |i, k, _| locked.push((i, k.to_vec())),
            );
            assert!(walked);
            let skipped =
                Node::walk_stripe_many(&[&a, &b], stripe, || false, |_, _, _| panic!("not walked"));
            assert!(!skipped);
        }
        assert_eq!(locked.len(), keys.len());
        for (i, k) in &locked {
            let n: usize = String::from_utf8_lossy(&k[1..]).parse().expect("number");
            assert_eq!(*i, usize::from(n % 3 == 0), "{n}");
        }
        // The locks are released: the nodes still serve.
        set(&a, b"after", b"v").expect("fits");
        a.validate().expect("valid");
        b.validate().expect("valid");
    }

    /// What the model knows of a key.
    #[derive(Debug, Clone)]
    struct Model {
        value: Vec<u8>,
        flags: u32,
        expire_at: u64,
        cas: u64,
    }

    /// Random ops against a HashMap model. With `max_memory` = unlimited the node must match the
    /// model exactly; with a small budget an item may be gone (evicted), never wrong.
    fn run_model(seed: u64, max_memory: u64, ops: usize) {
        let clock = Clock::mock(T0);
        let node = Node::new("model", max_memory, clock.clone());
        let bounded = max_memory != u64::MAX;
        let mut rng = Rng(seed);
        let mut model: HashMap<Vec<u8>, Model> = HashMap::new();
        let mut pending_flush = 0u64;
        for op in 0..ops {
            let now = clock.now_ms();
            if pending_flush != 0 && pending_flush <= now {
                let r = rng.below(2);
                // Either path performs it first.
                if r == 0 {
                    node.sweep_expired(0);
                }
                model.clear();
                pending_flush = 0;
            }
            model.retain(|_, m| m.expire_at == NEVER || m.expire_at > now);
            let key = format!("k{}", rng.below(if bounded { 400 } else { 150 })).into_bytes();
            let kind = rng.below(100);
            match kind {
                0..=34 => {
                    let got = node.entry(&key, |e| {
                        e.item().map(|i| {
                            (
                                i.value().to_vec(),
                                i.meta().flags,
                                i.meta().cas,
                                i.meta().expire_at,
                            )
                        })
                    });
                    match (got, model.get(&key)) {
                        (Some(g), Some(m)) => {
                            assert_eq!(g, (m.value.clone(), m.flags, m.cas, m.expire_at), "op {op}")
                        }
                        (None, None) => {}
                        (None, Some(_)) if bounded => {
                            model.remove(&key);
                        }
                        (g, m) => panic!(
                            "seed {seed} op {op} key {}: node {g:?} model {m:?}",
                            String::from_utf8_lossy(&key)
                        ),
                    }
                }
                35..=59 => {
                    let len = rng.below(if bounded { 300 } else { 64 }) as usize;
                    let value: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
                    let flags = rng.below(4) as u32;
                    let expire_at = if rng.below(3) == 0 {
                        now + 1 + rng.below(5_000)
                    } else {
                        NEVER
                    };
                    let cas = node
                        .entry(&key, |e| e.put(&[&value], flags, expire_at, None))
                        .expect("fits");
                    model.insert(
                        key,
                        Model {
                            value,
                            flags,
                            expire_at,
                            cas,
                        },
                    );
                }
                60..=69 => {
                    let removed = node.entry(&key, |e| e.remove());
                    let had = model.remove(&key).is_some();
                    assert!(
                        removed == had || (bounded && had && !removed),
                        "seed {seed} op {op}"
                    );
                }
                70..=79 => {
                    let data: Vec<u8> = (0..rng.below(20)).map(|_| rng.below(256) as u8).collect();
                    let front = rng.below(2) == 0;
                    let r =
                        node.entry(&key, |e| e.item().is_some().then(|| e.concat(&data, front)));
                    match (r, model.get_mut(&key)) {
                        (Some(r), Some(m)) => {
                            m.cas = r.expect("fits");
                            if front {
                                m.value.splice(0..0, data.iter().copied());
                            } else {
                                m.value.extend_from_slice(&data);
                            }
                        }
                        (None, None) => {}
                        (None, Some(_)) if bounded => {
                            model.remove(&key);
                        }
                        (r, m) => panic!("seed {seed} op {op}: concat {r:?} model {m:?}"),
                    }
                }
                80..=84 => clock.advance(rng.below(2_000)),
                85..=89 => {
                    node.sweep_expired(rng.below(300) as usize);
                }
                90..=94 => {
                    let expire_at = now + 1 + rng.below(3_000);
                    let touched = node.entry(&key, |e| {
                        e.meta_mut().map(|m| m.expire_at = expire_at).is_some()
                    });
                    match (touched, model.get_mut(&key)) {
                        (true, Some(m)) => m.expire_at = expire_at,
                        (false, None) => {}
                        (false, Some(_)) if bounded => {
                            model.remove(&key);
                        }
                        (t, m) => panic!("seed {seed} op {op}: touch {t} model {m:?}"),
                    }
                }
                95..=97 => {
                    node.entry(&key, |e| e.mark_read());
                }
                _ => {
                    if rng.below(2) == 0 {
                        node.flush(0);
                        model.clear();
                        pending_flush = 0;
                    } else {
                        pending_flush = now + 1 + rng.below(3_000);
                        node.flush(pending_flush);
                    }
                }
            }
            if bounded {
                assert!(
                    node.used_bytes() <= max_memory,
                    "seed {seed} op {op}: over budget"
                );
            }
            if op % 250 == 249 {
                if let Err(e) = node.validate() {
                    panic!("seed {seed} op {op}: {e}");
                }
                if !bounded && pending_flush == 0 {
                    let mut walked = walk_all(&node, 13);
                    walked.sort();
                    let now = clock.now_ms();
                    let mut expect: Vec<_> = model
                        .iter()
                        .filter(|(_, m)| m.expire_at == NEVER || m.expire_at > now)
                        .map(|(k, m)| (k.clone(), m.value.clone()))
                        .collect();
                    expect.sort();
                    assert_eq!(walked, expect, "seed {seed} op {op}");
                }
            }
        }
        node.validate().expect("valid at the end");
    }

    #[test]
    fn random_ops_match_a_model() {
        for seed in [1, 2, 3, 0xdead_beef] {
            run_model(seed, u64::MAX, 3_000);
        }
    }

    #[test]
    fn random_ops_with_eviction_never_lie() {
        for seed in [11, 12, 13] {
            run_model(seed, 48 * 1024, 3_000);
        }
    }

    #[test]
    fn two_threads_hammer_one_node() {
        let max = 96 * 1024;
        let node = Node::new("n", max, Clock::mock(T0));
        std::thread::scope(|scope| {
            for t in 0..2u64 {
                let node = &node;
                scope.spawn(move || {
                    let mut rng = Rng(t + 100);
                    for _ in 0..20_000 {
                        let key = format!("k{}", rng.below(1_000));
                        match rng.below(10) {
                            0..=4 => {
                                get(node, key.as_bytes());
                            }
                            5..=7 => {
                                let len = rng.below(200) as usize;
                                set(node, key.as_bytes(), &vec![b'x'; len]).expect("fits");
                            }
                            8 => {
                                node.entry(key.as_bytes(), |e| e.concat(b"++", false))
                                    .expect("fits");
                            }
                            _ => {
                                node.entry(key.as_bytes(), |e| e.remove());
                            }
                        }
                    }
                });
            }
        });
        node.validate().expect("valid");
        assert!(node.used_bytes() <= max);
        assert!(node.stats().evictions > 0);
    }

    #[test]
    fn accounting_per_item_matches_the_formula() {
        let node = Node::new("n", u64::MAX, Clock::mock(T0));
        let n = 100_000u64;
        let value = [b'v'; 100];
        for i in 0..n {
            let key = format!("key:{i:012}");
            assert_eq!(key.len(), 16);
            set(&node, key.as_bytes(), &value).expect("fits");
        }
        let used = node.used_bytes();
        let fixed = node.fixed_bytes();
        let per_item = used as f64 / n as f64;
        println!(
            "charged {per_item:.1} B/item = {} data + {SLOT_BYTES} slot + {:.1} fixed",
            alloc_size(116),
            fixed as f64 / n as f64
        );
        assert_eq!(used - fixed, n * (alloc_size(116) + SLOT_BYTES));
        assert_eq!(alloc_size(116) + SLOT_BYTES, 184);
        assert!((184.0..=204.0).contains(&per_item), "{per_item}");
        node.validate().expect("valid");
    }
}
