//! One lock stripe of a node, single-threaded: the slab of slots, the index into it, the free
//! list, the SIEVE queue (`stripe/evict.rs`), expiry within the stripe (`stripe/expire.rs`) and
//! the stripe's self-check (`stripe/validate.rs`).
//!
//! Owns: `Slot`, `Stripe` and every field of both, the per-stripe `Counters`, the node-wide
//! accounting mirrors (`Acct`), `Garbage` (bodies removed under the lock) and `Item` (a view of
//! a slot). Must not touch: locks (a `Stripe` is only reached through its guard; the node owns
//! the mutexes and their order, see node.rs), which stripe a key belongs to (node.rs), the entry
//! API (entry.rs). `Stripe`'s fields and a slot's links and bits are private to this file and
//! its submodules; the rest of the store goes through the methods below, and sees of a slot
//! only its `body` and `meta` (the item's data, which the entry API edits in place).
//!
//! Layout: a slab `Vec<Slot>` (slots never move, so a `(stripe, slot)` cursor stays valid), a
//! `HashTable<u32>` index into it hashed by `hash_key`, an intrusive free list threaded
//! through `Slot::next`, and a SIEVE queue threaded through `Slot::prev/next`.
//!
//! Accounting (all in bytes, exact by construction, recomputed by `validate`):
//! - an occupied slot charges its item `size_of::<Slot>() + alloc_size(key ‖ value)` (containers:
//!   their box, key and contents, see value.rs);
//! - a stripe's `fixed` charge is its unoccupied slab capacity `(capacity - live) * 56` plus
//!   `index.num_buckets() * 5` (u32 + control byte); slots are never charged twice;
//! - node `used` = Σ item charges + Σ fixed; node `fixed` = Σ fixed; node `items` = Σ live.
//!   They are relaxed atomics (`Acct`) updated under the stripe lock that changed them, by the
//!   stripe methods that change the charges (`insert`, `replace`, `release`, `clear`,
//!   `recharge_container`, `sync_fixed`), never elsewhere.
//! - So `used` = Σ alloc_size(item data) + Σ slab.capacity() × 56 + Σ buckets × 5. Evicting an
//!   item gives back its data allocation only (its slot stays in the slab, now charged as
//!   fixed).
//!
//! Invariants: every occupied slot is in the index once and in the SIEVE queue once; every free
//! slot is on the free list, clean (no body, no bit, no links but `next`); removed bodies are
//! returned to the caller (who keeps them in a `Garbage` until the lock is released), never
//! dropped here.

use std::fmt;
use std::mem::{self, size_of};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hashbrown::HashTable;

use super::hash::hash_key;
use super::value::{Body, Container};
use super::{ItemMeta, KeyEvent, Kind, NEVER};

mod evict;
mod expire;
mod validate;

pub(super) use expire::is_expired;

/// "No slot" in links, the free list and the SIEVE hand.
const NIL: u32 = u32::MAX;
/// Bytes of one slot, charged to its item while occupied and to `fixed` while free.
pub const SLOT_BYTES: u64 = size_of::<Slot>() as u64;
/// Bytes per index bucket: a `u32` plus hashbrown's control byte.
const BUCKET_BYTES: u64 = 4 + 1;

/// Add a signed delta to a relaxed counter (wrapping arithmetic makes negatives work).
#[inline]
fn add(counter: &AtomicU64, delta: i64) {
    if delta != 0 {
        counter.fetch_add(delta as u64, Relaxed);
    }
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
    prev: u32,
    /// SIEVE: older neighbour (toward the tail); free list: next free slot.
    next: u32,
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
    fn visited(&self) -> bool {
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
    fn set_visited(&mut self, visited: bool) {
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
            // klen <= len is established by `insert`/`replace` and never changed separately.
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
    /// Items with an expiry (INFO's `expires`), expired ones not yet reclaimed included.
    pub(super) ttl_items: u64,
    /// Σ `expire_at` of those items (INFO's `avg_ttl`).
    pub(super) ttl_sum: u128,
}

impl Counters {
    /// Counts `meta`'s expiry in (`+1`) or out (`-1`) of the TTL counters.
    #[inline]
    pub(super) fn count_ttl(&mut self, meta: &ItemMeta, sign: i8) {
        if meta.expire_at != NEVER {
            if sign > 0 {
                self.ttl_items += 1;
                self.ttl_sum += u128::from(meta.expire_at);
            } else {
                self.ttl_items -= 1;
                self.ttl_sum -= u128::from(meta.expire_at);
            }
        }
    }
}

/// An item's metadata open for editing ([`Stripe::meta_mut`]): a change of its expiry moves
/// the stripe's TTL counters when the guard drops.
pub struct MetaMut<'a> {
    meta: &'a mut ItemMeta,
    counters: &'a mut Counters,
    before: u64,
}

impl std::ops::Deref for MetaMut<'_> {
    type Target = ItemMeta;
    fn deref(&self) -> &ItemMeta {
        self.meta
    }
}

impl std::ops::DerefMut for MetaMut<'_> {
    fn deref_mut(&mut self) -> &mut ItemMeta {
        self.meta
    }
}

impl Drop for MetaMut<'_> {
    fn drop(&mut self) {
        if self.meta.expire_at != self.before {
            let old = ItemMeta {
                expire_at: self.before,
                ..*self.meta
            };
            self.counters.count_ttl(&old, -1);
            self.counters.count_ttl(self.meta, 1);
        }
    }
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
    index: HashTable<u32>,
    slab: Vec<Slot>,
    /// Head of the free list (through `Slot::next`).
    free_head: u32,
    /// SIEVE queue: newest item.
    head: u32,
    /// SIEVE queue: oldest item.
    tail: u32,
    /// SIEVE hand: next candidate, moving tail → head; NIL = start at the tail.
    hand: u32,
    /// Occupied slots.
    live: u32,
    /// Σ item charges of occupied slots.
    used: u64,
    /// Fixed charge (see the module header); mirrored into node `fixed` and `used`.
    fixed: u64,
    /// Next slab position of the expiry sweep.
    sweep_cursor: u32,
    counters: Counters,
}

impl Stripe {
    /// An empty stripe; allocates nothing until an item arrives.
    pub(super) fn new() -> Stripe {
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
    pub(super) fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let slab = &self.slab;
        self.index
            .find(hash, |&i| slab[i as usize].key() == key)
            .copied()
    }

    /// Occupied slots (items, expired ones not yet reclaimed included).
    #[inline]
    pub(super) fn len(&self) -> u32 {
        self.live
    }

    /// Slots in the slab, occupied or free (random picks).
    #[inline]
    pub(super) fn slots(&self) -> usize {
        self.slab.len()
    }

    /// Σ item charges of the occupied slots.
    #[inline]
    pub(super) fn used(&self) -> u64 {
        self.used
    }

    /// The stripe's fixed charge now (see the module header).
    #[inline]
    pub(super) fn fixed(&self) -> u64 {
        self.fixed
    }

    /// The stripe's counters.
    #[inline]
    pub(super) fn counters(&self) -> Counters {
        self.counters
    }

    /// Counts a miss.
    #[inline]
    pub(super) fn count_miss(&mut self) {
        self.counters.misses += 1;
    }

    /// The slot at `i` (occupied or not).
    #[inline]
    pub(super) fn slot(&self, i: u32) -> &Slot {
        &self.slab[i as usize]
    }

    /// The slot at `i`, to edit a container in place. Whoever changes a body's size must
    /// re-charge it (`recharge_container`) before the lock is released; metadata is edited
    /// through [`Stripe::meta_mut`], which keeps the TTL counters.
    #[inline]
    pub(super) fn slot_mut(&mut self, i: u32) -> &mut Slot {
        &mut self.slab[i as usize]
    }

    /// The metadata of occupied slot `i`, to edit; the TTL counters follow its expiry when
    /// the guard drops.
    #[inline]
    pub(super) fn meta_mut(&mut self, i: u32) -> MetaMut<'_> {
        let meta = &mut self.slab[i as usize].meta;
        let before = meta.expire_at;
        MetaMut {
            meta,
            counters: &mut self.counters,
            before,
        }
    }

    /// A read-only view of occupied slot `i`.
    #[inline]
    pub(super) fn item(&self, i: u32) -> Item<'_> {
        Item {
            slot: &self.slab[i as usize],
        }
    }

    /// Marks occupied slot `i` read: sets the SIEVE visited bit only if unset, `fetched`,
    /// `atime`; counts a hit. Fields are written only when they change, so hot keys do not
    /// bounce cache lines.
    #[inline]
    pub(super) fn mark_read(&mut self, i: u32, atime: u32) {
        let slot = &mut self.slab[i as usize];
        if !slot.visited() {
            slot.set_visited(true);
        }
        if !slot.meta.fetched {
            slot.meta.fetched = true;
        }
        if slot.meta.atime != atime {
            slot.meta.atime = atime;
        }
        self.counters.hits += 1;
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
    fn sync_fixed(&mut self, acct: &Acct) {
        let fixed = self.fixed_for(self.live);
        if fixed != self.fixed {
            let d = diff(fixed, self.fixed);
            self.fixed = fixed;
            add(&acct.fixed, d);
            add(&acct.used, d);
        }
    }

    /// Grows the slab and the index at once to hold `items` items (loading a snapshot whose
    /// key count is known), so that they are not regrown, copied and rehashed step by step.
    /// The capacity is charged as fixed at once, as any capacity is.
    pub(super) fn reserve(&mut self, items: usize, acct: &Acct) {
        let items = items.min(NIL as usize - 1);
        let free = self.slab.len() - self.live as usize;
        let slots = items.saturating_sub(self.live as usize + free);
        if slots > self.slab.capacity() - self.slab.len() {
            self.slab.reserve_exact(slots);
        }
        let slab = &self.slab;
        self.index
            .reserve(items.saturating_sub(self.index.len()), |&i| {
                hash_key(slab[i as usize].key())
            });
        self.sync_fixed(acct);
    }

    /// Gives back slab capacity past the last slot (what [`Stripe::reserve`] reserved and the
    /// load did not fill); slots in use never move.
    pub(super) fn trim(&mut self, acct: &Acct) {
        if self.slab.capacity() > self.slab.len() {
            self.slab.shrink_to_fit();
            self.sync_fixed(acct);
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

    /// Reserves room for one more item (`reserve_one`) if `fits` still holds afterwards. If
    /// not, gives back what the reservation grew and returns false: a refused item must not
    /// cost anything (its growth would otherwise push the node over budget and evict others).
    pub(super) fn reserve_one_if(&mut self, acct: &Acct, fits: impl Fn(&Stripe) -> bool) -> bool {
        let (slab_cap, index_cap) = (self.slab.capacity(), self.index.capacity());
        if !self.reserve_one() || !fits(self) {
            self.slab.shrink_to(slab_cap);
            if self.index.capacity() != index_cap {
                let slab = &self.slab;
                self.index
                    .shrink_to(self.index.len(), |&i| hash_key(slab[i as usize].key()));
            }
            self.sync_fixed(acct);
            return false;
        }
        true
    }

    /// Occupies a slot with a new item (capacity reserved by `reserve_one`), links it at the
    /// SIEVE head and charges it. Returns the slot.
    pub(super) fn insert(
        &mut self,
        hash: u64,
        body: Body,
        klen: u32,
        meta: ItemMeta,
        acct: &Acct,
    ) -> u32 {
        let i = if self.free_head != NIL {
            let i = self.free_head;
            self.free_head = self.slab[i as usize].next;
            i
        } else {
            self.slab.push(Slot::vacant(NIL));
            (self.slab.len() - 1) as u32
        };
        self.counters.count_ttl(&meta, 1);
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

    /// Gives occupied slot `i` a new body and metadata (a new value for the same key) and
    /// re-charges it. `fresh` moves it to the SIEVE head as a new item, otherwise it keeps its
    /// place and bit. Returns the old body for dropping outside the lock.
    pub(super) fn replace(
        &mut self,
        i: u32,
        body: Body,
        klen: u32,
        meta: ItemMeta,
        fresh: bool,
        acct: &Acct,
    ) -> Body {
        let slot = &mut self.slab[i as usize];
        self.counters.count_ttl(&slot.meta, -1);
        self.counters.count_ttl(&meta, 1);
        let old = mem::replace(&mut slot.body, body);
        let old_charge = SLOT_BYTES + old.charge();
        slot.set_klen(klen);
        slot.meta = meta;
        let new_charge = slot.charge();
        self.used = self.used - old_charge + new_charge;
        add(&acct.used, diff(new_charge, old_charge));
        if fresh {
            self.slab[i as usize].set_visited(false);
            self.unlink(i);
            self.link_head(i);
        }
        old
    }

    /// Counts an item stored (every successful put, concat, put_container or moved item).
    #[inline]
    pub(super) fn count_stored(&mut self) {
        self.counters.total_items += 1;
    }

    /// Re-charges the container in occupied slot `i` at `charge` (its `compute_charge` after
    /// an in-place change), in the stripe and the node.
    pub(super) fn recharge_container(&mut self, i: u32, charge: u64, acct: &Acct) {
        let Body::Container(c) = &mut self.slab[i as usize].body else {
            unreachable!("slot {i} holds a string, not a container");
        };
        let d = diff(charge, c.charge);
        c.charge = charge;
        self.used = self.used.wrapping_add(d as u64);
        add(&acct.used, d);
    }

    /// [`Stripe::release`] into `garbage`, which also records the key of an expired or evicted
    /// item when it was made to (keyspace notifications).
    pub(super) fn release_into(
        &mut self,
        i: u32,
        hash: Option<u64>,
        reason: Reason,
        acct: &Acct,
        garbage: &mut Garbage,
    ) {
        if let Some(keys) = &mut garbage.keys {
            let event = match reason {
                Reason::Expired => Some(KeyEvent::Expired),
                Reason::Evicted => Some(KeyEvent::Evicted),
                Reason::Removed => None,
            };
            if let Some(event) = event {
                keys.push((event, self.slab[i as usize].key().into()));
            }
        }
        garbage.push(self.release(i, hash, reason, acct));
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
        self.counters.count_ttl(&slot.meta, -1);
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
        self.counters.ttl_items = 0;
        self.counters.ttl_sum = 0;
        self.sweep_cursor = 0;
        self.sync_fixed(acct);
        (slab, index)
    }

    /// Gives back unused capacity: trailing free slots are cut off the slab (slots in use never
    /// move), then slab and index are shrunk to fit. Used when the budget shrinks below the
    /// fixed charge.
    pub(super) fn compact(&mut self, acct: &Acct) -> Option<(Vec<Slot>, HashTable<u32>)> {
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

    /// Visits the live, unexpired items of a locked stripe from slot `pos` until `want` were seen
    /// or `limit` slots looked at. Returns (the slot to go on from, None at the end of the slab;
    /// items seen; slots looked at).
    pub(super) fn visit(
        &self,
        mut pos: usize,
        want: usize,
        limit: usize,
        now: u64,
        f: &mut impl FnMut(&[u8], Item<'_>),
    ) -> (Option<usize>, usize, usize) {
        let (mut seen, mut scanned) = (0usize, 0usize);
        while pos < self.slab.len() {
            if seen == want || scanned == limit {
                return (Some(pos), seen, scanned);
            }
            scanned += 1;
            let slot = &self.slab[pos];
            pos += 1;
            if slot.live() && !is_expired(&slot.meta, now) {
                f(slot.key(), Item { slot });
                seen += 1;
            }
        }
        (None, seen, scanned)
    }
}

/// Node-wide counters written on every store: kept on their own cache line, apart from the
/// read-mostly fields every request loads.
#[repr(align(64))]
#[derive(Default)]
pub(super) struct Acct {
    /// Σ stripe `used + fixed`.
    used: AtomicU64,
    /// Σ stripe `live`.
    items: AtomicU64,
    /// Σ stripe `fixed`.
    fixed: AtomicU64,
    /// Last CAS id handed out.
    cas: AtomicU64,
}

impl Acct {
    /// Σ stripe `used + fixed`: the node's charged bytes.
    #[inline]
    pub(super) fn used(&self) -> u64 {
        self.used.load(Relaxed)
    }

    /// Σ stripe `live`: the node's items.
    #[inline]
    pub(super) fn items(&self) -> u64 {
        self.items.load(Relaxed)
    }

    /// Σ stripe `fixed`.
    #[inline]
    pub(super) fn fixed(&self) -> u64 {
        self.fixed.load(Relaxed)
    }

    /// Next CAS id of the node.
    #[inline]
    pub(super) fn next_cas(&self) -> u64 {
        self.cas.fetch_add(1, Relaxed) + 1
    }

    /// Raises the CAS counter to at least `cas`, so that later ids are larger (a moved item
    /// keeps its id).
    #[inline]
    pub(super) fn raise_cas(&self, cas: u64) {
        self.cas.fetch_max(cas, Relaxed);
    }
}

/// Values removed under a stripe lock, dropped after it is released. Two inline places cover
/// the common cases (one replaced value, one evicted item) without allocating.
#[derive(Default)]
pub(super) struct Garbage {
    inline: [Option<Body>; 2],
    spill: Vec<Body>,
    /// Keys expired or evicted under the lock, when the node reports them (`Node::garbage`).
    pub(super) keys: Option<Vec<(KeyEvent, Box<[u8]>)>>,
}

impl Garbage {
    /// A garbage that also records the keys expired or evicted.
    pub(super) fn recording() -> Garbage {
        Garbage {
            keys: Some(Vec::new()),
            ..Garbage::default()
        }
    }

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
