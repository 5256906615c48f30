//! A cache node: a named, memory-bounded map of items split into lock stripes.
//!
//! Owns: `Node` (the stripes behind their mutexes, the budget, the clock, the pending flush),
//! stripe selection (`stripe_of`), the lock order, the drivers that go over several stripes
//! (eviction round robin, the chunked walks, the expiry sweep, `flush`), `stats` and
//! `validate`. Must not touch: protocols, routing, tokio; a stripe's fields (stripe.rs and its
//! submodules own them: this file calls their methods); the entry API (entry.rs, above this
//! file: it adds `Node::entry`, `Node::entry_many` and `Node::entries` on top of the locking
//! helpers here).
//!
//! Layout: `STRIPES` (64) cache-padded `parking_lot::Mutex<Stripe>`. The key is hashed once
//! (`hash::hash_key`: xxh3_64, per-process random seed); bits 40..46 pick the stripe (hashbrown
//! uses the low bits for the bucket and the top 7 as its tag, so those would be constant within
//! a stripe). What a stripe holds and how it is charged: stripe.rs.
//!
//! Invariants: after `Node::entry` returns, `used <= max_memory` unless nothing but the item
//! just written is left to evict (which `put` prevents by refusing items that can never fit,
//! `fits_alone`), barring concurrent writers.
//!
//! Lock order: at most one stripe lock is held at a time, except by `validate` (all stripes of
//! one node, in stripe order), `Node::entries` (several stripes of one node, ascending:
//! `lock_stripes`), `Node::entry_many` and `Node::walk_stripe_many` (the same stripe in several
//! nodes, in ascending node address: `lock_stripe_in_each`). Every multi-lock holder follows
//! the (node address, stripe) order, so no cycle of waits can form. No lock is held while
//! anything but the caller's own closure runs; removed values are dropped after the lock is
//! released (`Garbage`), and the keys expired or evicted under it are reported to the
//! installed `KeyEvents` then (`dispose`), when reporting is on.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, MutexGuard};

use super::clock::Clock;
use super::stripe::{Acct, Counters, Garbage, Item, Stripe};
pub use super::stripe::{KLEN_MAX, SLOT_BYTES};
use super::{KeyEvents, NodeStats};

/// Number of lock stripes per node (power of two, ≥ 8 × cores on the target machines).
pub const STRIPES: usize = 64;
/// The stripe is taken from hash bits `STRIPE_SHIFT .. STRIPE_SHIFT + 6`.
const STRIPE_SHIFT: u32 = 40;
/// Eviction batch per foreign stripe before moving on (spreads the loss round robin).
const EVICT_BATCH: usize = 16;

/// Stripe of a key hash: middle bits, not hashbrown's top-7 tag bits.
#[inline]
pub(super) fn stripe_of(hash: u64) -> usize {
    (hash >> STRIPE_SHIFT) as usize & (STRIPES - 1)
}

/// Locks stripe `stripe` of every node in `nodes` (distinct nodes, locked in ascending address
/// order, see [`Node::entry_many`]) after running each node's due flush: the time each node's
/// clock read and the guards, both in `nodes` order.
///
/// # Panics
/// If the same node is given twice (that would deadlock); `caller` names the entry point.
pub(super) fn lock_stripe_in_each<'n>(
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

/// A stripe on its own cache line(s), so neighbouring locks do not false-share.
#[repr(align(64))]
struct Padded(Mutex<Stripe>);

/// Slots a chunked walk looks at per lock hold when it wants `want` items.
fn walk_limit(want: usize) -> usize {
    want.saturating_mul(8).max(1024)
}

/// A named cache with its own memory budget. `Send + Sync`; share it as `Arc<Node>`.
pub struct Node {
    stripes: Box<[Padded]>,
    acct: Acct,
    name: Box<str>,
    clock: Clock,
    max_memory: AtomicU64,
    /// Deferred flush deadline (unix ms), 0 = none.
    pending_flush: AtomicU64,
    /// Next stripe for round-robin eviction.
    evict_rr: AtomicUsize,
    /// Stripe the sweep works on.
    sweep_rr: AtomicUsize,
    /// Where expired and evicted keys are reported (keyspace notifications), once installed.
    key_events: OnceLock<Arc<dyn KeyEvents>>,
    /// Report them now: one relaxed load per entry when off.
    report_keys: AtomicBool,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name)
            .field("items", &self.len())
            .field("used", &self.acct.used())
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
            acct: Acct::default(),
            name: name.into(),
            clock,
            max_memory: AtomicU64::new(max_memory),
            pending_flush: AtomicU64::new(0),
            evict_rr: AtomicUsize::new(0),
            sweep_rr: AtomicUsize::new(0),
            key_events: OnceLock::new(),
            report_keys: AtomicBool::new(false),
        }
    }

    /// Installs where expired and evicted keys go (once; later calls keep the first) and
    /// whether to report them now.
    pub fn set_key_events(&self, sink: &Arc<dyn KeyEvents>, report: bool) {
        let _ = self.key_events.set(Arc::clone(sink));
        self.report_keys.store(report, Relaxed);
    }

    /// A garbage for one locked operation: it records expired and evicted keys when they are
    /// reported.
    #[inline]
    pub(super) fn garbage(&self) -> Garbage {
        if self.report_keys.load(Relaxed) {
            Garbage::recording()
        } else {
            Garbage::default()
        }
    }

    /// Drops `garbage` (after the stripe lock is released) and reports the keys it recorded.
    #[inline]
    pub(super) fn dispose(&self, mut garbage: Garbage) {
        let keys = garbage.keys.take();
        drop(garbage);
        if let (Some(keys), Some(sink)) = (keys, self.key_events.get()) {
            for (event, key) in keys {
                sink.emit(event, &key);
            }
        }
    }

    /// The node's name (config `[[nodes]] name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's clock. Inline: `Node::entry` (generic, so compiled in the caller's crate)
    /// reads it on every access, where it used to be a field read.
    #[inline]
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The memory budget in bytes.
    pub fn max_memory(&self) -> u64 {
        self.max_memory.load(Relaxed)
    }

    /// Bytes charged now (items + fixed), as in `stats().used_bytes`.
    pub fn used_bytes(&self) -> u64 {
        self.acct.used()
    }

    /// The fixed part of `used_bytes`: unoccupied slab capacity and index buckets.
    pub fn fixed_bytes(&self) -> u64 {
        self.acct.fixed()
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

    /// Prepares for about `items` more items of about `item_bytes` each (loading a snapshot):
    /// grows every stripe's slab and index once instead of step by step. Never reserves more
    /// than the free budget pays for with items of that size, so a node too small for its
    /// share still holds as many items as it would have without the reservation. Undo what a
    /// load did not use with [`Node::trim`].
    pub fn reserve(&self, items: u64, item_bytes: u64) {
        let free = self.max_memory().saturating_sub(self.used_bytes());
        // A slot, about two index buckets, the item's own allocation.
        let fit = free / (SLOT_BYTES + 10 + item_bytes.max(1));
        let items = items.min(fit) as usize;
        if items < STRIPES * 64 {
            return;
        }
        // Stripes get keys by hash: a little over the mean, so that few stripes still grow.
        let mean = items / STRIPES;
        let per = mean + mean / 16;
        for padded in self.stripes.iter() {
            let mut st = padded.0.lock();
            let want = st.len() as usize + per;
            st.reserve(want, &self.acct);
        }
    }

    /// Gives back the slab capacity a [`Node::reserve`] left unused.
    pub fn trim(&self) {
        for padded in self.stripes.iter() {
            padded.0.lock().trim(&self.acct);
        }
    }

    /// Counters summed over the stripes (locks each briefly; no item walk).
    pub fn stats(&self) -> NodeStats {
        let mut c = Counters::default();
        for padded in self.stripes.iter() {
            let s = padded.0.lock().counters();
            c.hits += s.hits;
            c.misses += s.misses;
            c.evictions += s.evictions;
            c.expired += s.expired;
            c.expired_unfetched += s.expired_unfetched;
            c.evicted_unfetched += s.evicted_unfetched;
            c.total_items += s.total_items;
            c.ttl_items += s.ttl_items;
            c.ttl_sum += s.ttl_sum;
        }
        NodeStats {
            items: self.acct.items(),
            used_bytes: self.acct.used(),
            max_bytes: self.max_memory(),
            hits: c.hits,
            misses: c.misses,
            evictions: c.evictions,
            expired: c.expired,
            expired_unfetched: c.expired_unfetched,
            evicted_unfetched: c.evicted_unfetched,
            total_items: c.total_items,
            ttl_items: c.ttl_items,
            ttl_sum: c.ttl_sum,
        }
    }

    /// Number of items (expired ones not yet reclaimed included).
    pub fn len(&self) -> u64 {
        self.acct.items()
    }

    /// True if the node holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Next CAS id of this node.
    #[inline]
    pub(super) fn next_cas(&self) -> u64 {
        self.acct.next_cas()
    }

    /// The node-wide accounting mirrors, for the stripe methods that change charges.
    #[inline]
    pub(super) fn acct(&self) -> &Acct {
        &self.acct
    }

    #[inline]
    fn over(&self) -> bool {
        self.acct.used() > self.max_memory.load(Relaxed)
    }

    /// Stripe `i`'s lock. Whoever takes more than one stripe lock at a time follows the order
    /// in the module header (`lock_stripe_in_each`, `lock_stripes`, `validate`).
    #[inline]
    pub(super) fn stripe(&self, i: usize) -> &Mutex<Stripe> {
        &self.stripes[i].0
    }

    /// Locks the stripes `stripes` of this node, which must be in ascending order without
    /// repeats (the order every multi-lock holder follows, see the module header); the guards
    /// come back in the same order.
    pub(super) fn lock_stripes(&self, stripes: &[usize]) -> Vec<(usize, MutexGuard<'_, Stripe>)> {
        debug_assert!(
            stripes.windows(2).all(|w| w[0] < w[1]),
            "stripes not ascending"
        );
        stripes
            .iter()
            .map(|&s| (s, self.stripe(s).lock()))
            .collect()
    }

    /// True if an item of stripe `st` whose body costs `body_charge` fits in the budget once
    /// every other item's allocation is evicted: all slab and index memory of the node stays
    /// (slots are never given back), plus this stripe's floor and the body.
    pub(super) fn fits_alone(&self, st: &Stripe, body_charge: u64) -> bool {
        let others = (self.acct.fixed().saturating_sub(st.fixed())).saturating_add(
            self.acct
                .items()
                .saturating_sub(u64::from(st.len()))
                .saturating_mul(SLOT_BYTES),
        );
        body_charge
            .saturating_add(others)
            .saturating_add(st.fixed_for(0))
            <= self.max_memory()
    }

    /// Evicts from one (locked) stripe while the node is over budget, at most `limit` items.
    /// Returns (still over budget, items evicted). Never evicts `protect`.
    pub(super) fn evict_stripe(
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
            if !stripe.evict_one(protect, now, &self.acct, garbage) {
                return (true, n);
            }
            n += 1;
        }
        (false, n)
    }

    /// Evicts round robin over all stripes, a batch per stripe, until under budget or nothing
    /// is evictable. `protect` = (stripe, slot) of the item just written.
    pub(super) fn evict_global(&self, protect: Option<(usize, u32)>, now: u64) {
        let mut idle = 0;
        while self.over() && idle < STRIPES {
            let s = self.evict_rr.fetch_add(1, Relaxed) % STRIPES;
            let prot = protect.and_then(|(ps, slot)| (ps == s).then_some(slot));
            let mut garbage = self.garbage();
            let (_, n) = {
                let mut guard = self.stripe(s).lock();
                self.evict_stripe(&mut guard, prot, now, &mut garbage, EVICT_BATCH)
            };
            self.dispose(garbage);
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
            let (next, s, n) = guard.visit(pos, want - seen, scan_limit - scanned, now, &mut f);
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

    /// Visits one live item picked at random from `r` (RANDOMKEY): a stripe holding items,
    /// then a slot of it and the first live item from there (wrapping). Returns false if the
    /// node holds no live item. Close to uniform: the slabs are dense, as freed slots are
    /// reused first.
    pub fn random_item(&self, r: u64, mut f: impl FnMut(&[u8], Item<'_>)) -> bool {
        let now = self.clock.now_ms();
        let first = (r % STRIPES as u64) as usize;
        for k in 0..STRIPES {
            let guard = self.stripe((first + k) % STRIPES).lock();
            if guard.len() == 0 {
                continue;
            }
            let pos = ((r >> 8) % guard.slots() as u64) as usize;
            for (from, limit) in [(pos, usize::MAX), (0, pos)] {
                let (_, seen, _) = guard.visit(from, 1, limit, now, &mut f);
                if seen > 0 {
                    return true;
                }
            }
        }
        false
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
        let (next, _, _) = guard.visit(pos as usize, want, walk_limit(want), now, &mut f);
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
            st.visit(0, usize::MAX, usize::MAX, now, &mut |k, item| f(i, k, item));
        }
        true
    }

    /// Recomputes every count and charge from scratch and checks index ↔ slab consistency, the
    /// SIEVE queue (both directions, count, hand), the free list and the node totals. Locks all
    /// stripes (in order) for a consistent view. For tests.
    #[doc(hidden)]
    pub fn validate(&self) -> Result<(), String> {
        // All stripes, ascending: the one order (see the module header).
        let guards: Vec<_> = self.stripes.iter().map(|p| p.0.lock()).collect();
        let (mut used, mut items, mut fixed) = (0u64, 0u64, 0u64);
        for (si, st) in guards.iter().enumerate() {
            st.validate(si, stripe_of)?;
            used += st.used() + st.fixed();
            fixed += st.fixed();
            items += u64::from(st.len());
        }
        let node = (self.acct.used(), self.acct.items(), self.acct.fixed());
        if node != (used, items, fixed) {
            return Err(format!(
                "node (used, items, fixed) = {node:?}, recomputed {:?}",
                (used, items, fixed)
            ));
        }
        Ok(())
    }

    /// Invalidates every item: now if `at_ms <= now` (this also cancels a pending deferred
    /// flush), else at `at_ms` (replacing any earlier deadline), performed by the first
    /// `entry`/`sweep_expired` at or after it. Flushed items are not counted as expired.
    pub fn flush(&self, at_ms: u64) {
        let now = self.clock().now_ms();
        // A deadline already due happened before this call: perform it, do not overwrite it.
        self.maybe_flush(now);
        if at_ms <= now {
            self.pending_flush.store(0, Relaxed);
            self.flush_now();
        } else {
            self.pending_flush.store(at_ms, Relaxed);
        }
    }

    /// The pending flush deadline (unix ms), if any.
    pub fn pending_flush(&self) -> Option<u64> {
        match self.pending_flush.load(Relaxed) {
            0 => None,
            at => Some(at),
        }
    }

    /// Runs a due deferred flush (one caller wins the deadline).
    #[inline]
    pub(super) fn maybe_flush(&self, now: u64) {
        let at = self.pending_flush.load(Relaxed);
        if at != 0
            && at <= now
            && self
                .pending_flush
                .compare_exchange(at, 0, Relaxed, Relaxed)
                .is_ok()
        {
            self.flush_now();
        }
    }

    /// Empties every stripe, one lock at a time, releasing slab and index memory; values are
    /// dropped after each lock is released.
    fn flush_now(&self) {
        for s in 0..STRIPES {
            let old = self.stripe(s).lock().clear(&self.acct);
            drop(old);
        }
    }

    /// Bounded background sweep step: scans at most `max_slots` slab slots, continuing where the
    /// previous step stopped (per-stripe cursor, stripes in turn), and reclaims expired items.
    /// Returns how many it removed. Also runs a due deferred flush.
    pub fn sweep_expired(&self, max_slots: usize) -> usize {
        let now = self.clock().now_ms();
        self.maybe_flush(now);
        let (mut budget, mut removed) = (max_slots, 0);
        // Every stripe once at most per call, so empty stripes cannot make it spin.
        for _ in 0..STRIPES {
            if budget == 0 {
                break;
            }
            let s = self.sweep_rr.load(Relaxed) % STRIPES;
            let mut garbage = self.garbage();
            let (scanned, wrapped) = {
                let mut guard = self.stripe(s).lock();
                let (scanned, wrapped, n) =
                    guard.sweep_expired(budget, now, &self.acct, &mut garbage);
                removed += n;
                (scanned, wrapped)
            };
            self.dispose(garbage);
            budget -= scanned.min(budget);
            if !wrapped {
                break;
            }
            // Another sweeper may have moved on already; only advance from where we were.
            let _ = self
                .sweep_rr
                .compare_exchange(s, (s + 1) % STRIPES, Relaxed, Relaxed);
        }
        removed
    }
}

#[cfg(test)]
mod tests;
