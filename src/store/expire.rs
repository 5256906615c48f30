//! Expiry: the lazy check, the bounded background sweep, and `flush` (now or deferred).
//!
//! Owns: `is_expired`, `Node::sweep_expired`, `Node::flush` and the pending-flush deadline.
//! Must not touch: eviction order (evict.rs), charges (node.rs does them in `release`/`clear`).
//! Invariants: an expired item is never returned (every access checks `is_expired` with the
//! entry's `now`); the sweep holds one stripe lock for at most `max_slots` slots; a deferred
//! flush runs exactly once, on the first `entry`/`sweep_expired` at or after its deadline,
//! before that call looks at any item (memcached: every item existing then is invalidated).

use std::sync::atomic::Ordering::Relaxed;

use super::node::{Garbage, Node, Reason, STRIPES};
use super::{ItemMeta, NEVER};

/// True if the item's expiry is set and not in the future.
#[inline]
pub(super) fn is_expired(meta: &ItemMeta, now_ms: u64) -> bool {
    meta.expire_at != NEVER && meta.expire_at <= now_ms
}

impl Node {
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
            let mut garbage = Garbage::default();
            let (scanned, wrapped) = {
                let mut guard = self.stripe(s).lock();
                let st = &mut *guard;
                let start = st.sweep_cursor as usize;
                let end = st.slab.len().min(start.saturating_add(budget));
                for i in start..end {
                    let slot = &st.slab[i];
                    if slot.live() && is_expired(&slot.meta, now) {
                        garbage.push(st.release(i as u32, None, Reason::Expired, &self.acct));
                        removed += 1;
                    }
                }
                let wrapped = end >= st.slab.len();
                st.sweep_cursor = if wrapped { 0 } else { end as u32 };
                (end.saturating_sub(start), wrapped)
            };
            drop(garbage);
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
mod tests {
    use super::super::clock::Clock;
    use super::super::node::Node;

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

    fn set(node: &Node, key: &[u8], val: &[u8], expire_at: u64) {
        node.entry(key, |e| e.put(&[val], 0, expire_at, None))
            .expect("fits");
    }

    #[test]
    fn lazy_expiry_hides_and_reclaims() {
        let clock = Clock::mock(10_000_000);
        let node = Node::new("n", 1 << 30, clock.clone());
        let t0 = clock.now_ms();
        set(&node, b"a", b"1", t0 + 1_000);
        set(&node, b"b", b"2", t0 + 1_000);
        set(&node, b"c", b"3", 0);
        assert_eq!(get(&node, b"a").as_deref(), Some(&b"1"[..]));
        clock.advance(999);
        assert_eq!(get(&node, b"b").as_deref(), Some(&b"2"[..]));
        clock.advance(1);
        assert_eq!(node.len(), 3);
        assert_eq!(get(&node, b"a"), None); // expired at exactly expire_at
        assert_eq!(node.len(), 2);
        let st = node.stats();
        assert_eq!((st.expired, st.expired_unfetched), (1, 0)); // "a" was fetched
        // Walk does not show expired items.
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = node.walk(cursor, 10, |k, _| seen.push(k.to_vec()));
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen, vec![b"c".to_vec()]);
        node.validate().expect("valid");
    }

    #[test]
    fn sweep_reclaims_and_counts_unfetched() {
        let clock = Clock::mock(10_000_000);
        let node = Node::new("n", 1 << 30, clock.clone());
        let t0 = clock.now_ms();
        for i in 0..1000u32 {
            let exp = if i % 2 == 0 { t0 + 5_000 } else { 0 };
            set(&node, &i.to_be_bytes(), b"v", exp);
        }
        for i in (0..100u32).step_by(2) {
            assert!(get(&node, &i.to_be_bytes()).is_some());
        }
        assert_eq!(node.sweep_expired(10_000), 0);
        clock.advance(5_000);
        // Small steps: bounded work per call, all reclaimed after enough calls.
        let mut removed = 0;
        let mut calls = 0;
        while removed < 500 {
            let r = node.sweep_expired(16);
            assert!(r <= 16);
            removed += r;
            calls += 1;
            assert!(calls < 10_000, "sweep makes no progress");
        }
        assert_eq!(removed, 500);
        assert_eq!(node.len(), 500);
        let st = node.stats();
        assert_eq!((st.expired, st.expired_unfetched), (500, 450));
        assert_eq!(node.sweep_expired(100_000), 0);
        node.validate().expect("valid");
    }

    #[test]
    fn flush_now_and_deferred() {
        let clock = Clock::mock(10_000_000);
        let node = Node::new("n", 1 << 30, clock.clone());
        for i in 0..300u32 {
            set(&node, &i.to_be_bytes(), b"v", 0);
        }
        node.flush(0);
        assert_eq!(node.len(), 0);
        assert_eq!(node.used_bytes(), 0);
        assert_eq!(get(&node, &1u32.to_be_bytes()), None);
        node.validate().expect("valid");

        for i in 0..300u32 {
            set(&node, &i.to_be_bytes(), b"v", 0);
        }
        let at = clock.now_ms() + 10_000;
        node.flush(at);
        assert_eq!(node.pending_flush(), Some(at));
        clock.advance(9_999);
        assert_eq!(get(&node, &1u32.to_be_bytes()).as_deref(), Some(&b"v"[..]));
        assert_eq!(node.len(), 300);
        clock.advance(1);
        // The first entry at the deadline performs it, before looking at its own key.
        set(&node, b"after", b"x", 0);
        assert_eq!(node.pending_flush(), None);
        assert_eq!(node.len(), 1);
        assert_eq!(get(&node, b"after").as_deref(), Some(&b"x"[..]));
        node.validate().expect("valid");

        // Deferred, then performed by the sweep; a later flush(now) cancels a pending one.
        node.flush(clock.now_ms() + 1);
        clock.advance(1);
        node.sweep_expired(1);
        assert_eq!(node.len(), 0);
        set(&node, b"k", b"v", 0);
        node.flush(clock.now_ms() + 50);
        node.flush(0);
        set(&node, b"k", b"v", 0);
        clock.advance(100);
        assert_eq!(get(&node, b"k").as_deref(), Some(&b"v"[..]));
        assert_eq!(node.stats().expired, 0);
        node.validate().expect("valid");
    }
}
