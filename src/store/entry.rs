//! The entry API: access to one key, or several, under their stripe locks.
//!
//! Owns: `Entry` (one key in its locked stripe: read, write, remove, move out and in),
//! `Locked` (several keys of one node, `Node::entries`), `Moved` (an item between nodes), and
//! the three ways in, `Node::entry`, `Node::entry_many` and `Node::entries` (an `impl Node`
//! here, above node.rs, so that node.rs does not depend on this file: the node is what an entry
//! points to, the entry is built on top of it). Must not touch: a stripe's fields (it calls
//! `Stripe` methods: `find`, `insert`, `replace`, `release`, ...), the lock order (it takes
//! locks only through node.rs's `stripe`, `lock_stripes` and `lock_stripe_in_each`), the
//! eviction policy (it calls the node's `evict_stripe` / `evict_global` after the closure).
//!
//! Invariants: every entry is made by `Entry::open`, which reclaims an expired item before the
//! closure sees the key, so an expired item is never returned; a write (`install`,
//! `update_container`, `update_str`) marks its slot as `written` and the eviction that follows
//! spares it; replaced and removed bodies go to the caller's `Garbage` and are dropped after
//! the lock is released; `put` refuses, before changing anything, an item that could not fit
//! even alone.

use super::charge::alloc_size;
use super::hash::hash_key;
use super::node::{Node, lock_stripe_in_each, stripe_of};
use super::stripe::{Garbage, Item, MetaMut, Reason, SLOT_BYTES, Stripe, is_expired};
use super::value::{Body, Container, ContainerItem};
use super::{ItemMeta, NEVER, StoreError};

use parking_lot::MutexGuard;

impl Node {
    /// Runs `f` under the key's stripe lock. Expired items are invisible (and reclaimed lazily).
    /// After `f` returns, the node evicts (SIEVE) until used <= max_memory, never evicting the
    /// item `f` just wrote. Evicted values are dropped after the lock is released.
    pub fn entry<R>(&self, key: &[u8], f: impl FnOnce(&mut Entry<'_>) -> R) -> R {
        let now = self.clock().now_ms();
        self.maybe_flush(now);
        let hash = hash_key(key);
        let home = stripe_of(hash);
        let mut garbage = self.garbage();
        let (r, written, over) = {
            let mut guard = self.stripe(home).lock();
            let mut entry = Entry::open(self, &mut guard, key, hash, now, &mut garbage);
            let r = f(&mut entry);
            let written = entry.written;
            let (over, _) = self.evict_stripe(&mut guard, written, now, &mut garbage, usize::MAX);
            (r, written.map(|w| (home, w)), over)
        };
        self.dispose(garbage);
        if over {
            self.evict_global(written, now);
        }
        r
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
        let mut garbage: Vec<Garbage> = nodes.iter().map(|n| n.garbage()).collect();
        let (r, after) = {
            let mut entries: Vec<Entry<'_>> = guards
                .iter_mut()
                .zip(garbage.iter_mut())
                .zip(nodes.iter().zip(&nows))
                .map(|((guard, garbage), (&node, &now))| {
                    let stripe: &mut Stripe = guard.as_mut().expect("locked above");
                    Entry::open(node, stripe, key, hash, now, garbage)
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
        for (node, garbage) in nodes.iter().zip(garbage) {
            node.dispose(garbage);
        }
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
        let now = self.clock().now_ms();
        self.maybe_flush(now);
        let hashes: Vec<u64> = keys.iter().map(|k| hash_key(k)).collect();
        let mut order: Vec<usize> = hashes.iter().map(|&h| stripe_of(h)).collect();
        order.sort_unstable();
        order.dedup();
        let guards = self.lock_stripes(&order);
        let mut locked = Locked {
            node: self,
            now,
            keys,
            hashes,
            guards,
            garbage: self.garbage(),
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
        self.dispose(garbage);
        if over {
            self.evict_global(written.last().copied(), now);
        }
        r
    }
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

impl<'a> Entry<'a> {
    /// The entry for `key` (hash `hash`) in its locked stripe `stripe` of `node`, at time
    /// `now`: finds the key's slot and, if the item there has expired, reclaims it first (body
    /// into `garbage`), so that the entry starts with a live item or none. The one way every
    /// entry is made (`Node::entry`, `Node::entry_many`, `Locked::entry`).
    #[inline]
    fn open(
        node: &'a Node,
        stripe: &'a mut Stripe,
        key: &'a [u8],
        hash: u64,
        now: u64,
        garbage: &'a mut Garbage,
    ) -> Entry<'a> {
        let mut slot = stripe.find(hash, key);
        if let Some(i) = slot
            && is_expired(&stripe.slot(i).meta, now)
        {
            stripe.release_into(i, Some(hash), Reason::Expired, node.acct(), garbage);
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
    }
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
            .filter(|&i| !is_expired(&self.stripe.slot(i).meta, self.now))
    }

    /// The live item, or None.
    pub fn item(&self) -> Option<Item<'_>> {
        let i = self.live_slot()?;
        Some(self.stripe.item(i))
    }

    /// The live item's metadata (no value change), open for editing until the guard drops.
    pub fn meta_mut(&mut self) -> Option<MetaMut<'_>> {
        let i = self.live_slot()?;
        Some(self.stripe.meta_mut(i))
    }

    /// Marks a hit: sets the SIEVE visited bit only if unset, `fetched`, `atime`; counts a hit.
    /// Fields are written only when they change, so hot keys do not bounce cache lines.
    pub fn mark_read(&mut self) {
        let Some(i) = self.live_slot() else {
            return;
        };
        let atime = self.node.clock().secs_since_start(self.now);
        self.stripe.mark_read(i, atime);
    }

    /// Counts a miss.
    pub fn record_miss(&mut self) {
        self.stripe.count_miss();
    }

    /// True if an item of this stripe whose body costs `body_charge` fits in the budget once
    /// every other item's allocation is evicted (see `make_room`).
    fn fits_alone(&self, body_charge: u64) -> bool {
        self.node.fits_alone(self.stripe, body_charge)
    }

    /// Checks that an item whose body costs `body_charge` can fit at all: evicting every other
    /// item gives back their allocations but not their slots (slab memory stays), so the floor
    /// is all slab capacity and index buckets of the node plus this body. Reserves slab/index
    /// room first if the key is new. The existing item, if any, is being replaced, so its body
    /// does not count.
    fn make_room(&mut self, body_charge: u64) -> Result<(), StoreError> {
        let node = self.node;
        let st = &mut *self.stripe;
        let fits = |st: &Stripe| node.fits_alone(st, body_charge);
        if !fits(st) {
            return Err(StoreError::OutOfMemory);
        }
        if self.slot.is_some() {
            return Ok(());
        }
        if !st.reserve_one_if(node.acct(), fits) {
            return Err(StoreError::OutOfMemory);
        }
        Ok(())
    }

    /// Stores `body` for this key (room checked by `make_room`). A replaced item keeps its slot;
    /// `fresh` moves it to the SIEVE head as a new item, otherwise it keeps its place and bit.
    fn install(&mut self, body: Body, klen: u32, meta: ItemMeta, fresh: bool) {
        let acct = self.node.acct();
        let st = &mut *self.stripe;
        let i = match self.slot {
            Some(i) => {
                self.garbage
                    .push(st.replace(i, body, klen, meta, fresh, acct));
                i
            }
            None => st.insert(self.hash, body, klen, meta, acct),
        };
        st.count_stored();
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
            atime: self.node.clock().secs_since_start(self.now),
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
        let slot = self.stripe.slot(i);
        let Body::Str(old) = &slot.body else {
            return Err(StoreError::WrongType);
        };
        let total = old
            .len()
            .checked_add(data.len())
            .ok_or(StoreError::OutOfMemory)?;
        let klen = slot.klen();
        self.make_room(alloc_size(total))?;
        let slot = self.stripe.slot(i);
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
            atime: self.node.clock().secs_since_start(self.now),
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
        self.update_container_as(f, true)
    }

    /// [`Entry::update_container`] that keeps the item's CAS: for the changes Redis does not
    /// signal as modifying the key (a stream's consumer-group bookkeeping: XACK, XREADGROUP,
    /// XCLAIM), so WATCH and client tracking do not see them.
    pub fn update_container_keep_cas<R>(
        &mut self,
        f: impl FnOnce(&mut Container) -> R,
    ) -> Result<Option<R>, StoreError> {
        self.update_container_as(f, false)
    }

    fn update_container_as<R>(
        &mut self,
        f: impl FnOnce(&mut Container) -> R,
        new_cas: bool,
    ) -> Result<Option<R>, StoreError> {
        let Some(i) = self.live_slot() else {
            return Ok(None);
        };
        let slot = self.stripe.slot_mut(i);
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
        self.stripe.recharge_container(i, charge, self.node.acct());
        if new_cas {
            self.stripe.slot_mut(i).meta.cas = self.node.next_cas();
        }
        self.written = Some(i);
        Ok(Some(r))
    }

    /// Runs `f` on the live string's value bytes in place: their length cannot change, so
    /// neither does the charge. If `f` answers that it changed them, the item gets a new CAS
    /// (flags, expiry and its SIEVE place stay) and is marked written. Ok(None) without a live
    /// item, Err(WrongType) on a container. For byte-level rewrites of a big value without a
    /// copy (a dense HyperLogLog's registers and cached cardinality).
    pub fn update_str<R>(
        &mut self,
        f: impl FnOnce(&mut [u8]) -> (R, bool),
    ) -> Result<Option<R>, StoreError> {
        let Some(i) = self.live_slot() else {
            return Ok(None);
        };
        let slot = self.stripe.slot_mut(i);
        let klen = slot.klen() as usize;
        let Body::Str(b) = &mut slot.body else {
            return Err(StoreError::WrongType);
        };
        let (r, changed) = f(&mut b[klen..]);
        if changed {
            slot.meta.cas = self.node.next_cas();
            self.written = Some(i);
        }
        Ok(Some(r))
    }

    /// Removes the item. True if a live item was removed (an expired one is reclaimed too).
    pub fn remove(&mut self) -> bool {
        let Some(i) = self.slot.take() else {
            return false;
        };
        let live = !is_expired(&self.stripe.slot(i).meta, self.now);
        let reason = if live {
            Reason::Removed
        } else {
            Reason::Expired
        };
        let body = self
            .stripe
            .release(i, Some(self.hash), reason, self.node.acct());
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
        let slot = self.stripe.slot(i);
        let (klen, meta) = (slot.klen(), slot.meta);
        let body = self
            .stripe
            .release(i, Some(self.hash), Reason::Removed, self.node.acct());
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
        self.node.acct().raise_cas(moved.meta.cas);
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
        let mut entry = Entry::open(node, stripe, key, hash, now, &mut self.garbage);
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
