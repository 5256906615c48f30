//! The self-check of one stripe, for `Node::validate` (tests and debugging). A submodule of
//! `stripe`, so it reads the stripe's fields directly.
//!
//! Owns: `Stripe::validate`. Must not touch: anything (read only); locks (the node locks its
//! stripes, in order, and calls this on each). Invariant checked: see the `stripe.rs` header.

use super::{NIL, Stripe};
use crate::store::NEVER;
use crate::store::hash::hash_key;
use crate::store::value::Body;

impl Stripe {
    /// Recomputes this stripe's counts and charges from scratch and checks index ↔ slab
    /// consistency, the free list and the SIEVE queue (both directions, count, hand). `si` is
    /// the stripe's number in its node and `stripe_of` the node's rule for which stripe a key
    /// hash belongs to (the stripe does not know it): every key must belong here.
    pub(in crate::store) fn validate(
        &self,
        si: usize,
        stripe_of: impl Fn(u64) -> usize,
    ) -> Result<(), String> {
        let n = self.slab.len();
        let (mut live, mut used) = (0u32, 0u64);
        let (mut ttl_items, mut ttl_sum) = (0u64, 0u128);
        for (i, slot) in self.slab.iter().enumerate() {
            if !slot.live() {
                if !slot.body.is_empty_alloc() || slot.visited() || slot.prev != NIL {
                    return Err(format!("stripe {si} slot {i}: free slot not clean"));
                }
                continue;
            }
            live += 1;
            used += slot.charge();
            let expire_at = slot.meta.expire_at;
            if expire_at != NEVER {
                ttl_items += 1;
                ttl_sum += u128::from(expire_at);
            }
            let key = slot.key();
            let hash = hash_key(key);
            if stripe_of(hash) != si {
                return Err(format!(
                    "stripe {si} slot {i}: key belongs to stripe {}",
                    stripe_of(hash)
                ));
            }
            let found = self.index.find(hash, |&j| {
                self.slab
                    .get(j as usize)
                    .is_some_and(|s| s.live() && s.key() == key)
            });
            if found != Some(&(i as u32)) {
                return Err(format!(
                    "stripe {si} slot {i}: index lookup gives {found:?}"
                ));
            }
            if let Body::Container(c) = &slot.body {
                if c.charge != c.compute_charge() || c.value.charge() != c.value.recompute_charge()
                {
                    return Err(format!("stripe {si} slot {i}: stale container charge"));
                }
            }
            if let Body::Str(b) = &slot.body {
                if slot.klen() as usize > b.len() {
                    return Err(format!("stripe {si} slot {i}: klen past the allocation"));
                }
            }
        }
        if live != self.live || self.index.len() != live as usize {
            return Err(format!(
                "stripe {si}: live {} / index {} / recomputed {live}",
                self.live,
                self.index.len()
            ));
        }
        if (ttl_items, ttl_sum) != (self.counters.ttl_items, self.counters.ttl_sum) {
            return Err(format!(
                "stripe {si}: items with a TTL {} recomputed {ttl_items}",
                self.counters.ttl_items
            ));
        }
        if used != self.used {
            return Err(format!("stripe {si}: used {} recomputed {used}", self.used));
        }
        if self.fixed != self.fixed_for(live) {
            return Err(format!(
                "stripe {si}: fixed {} recomputed {}",
                self.fixed,
                self.fixed_for(live)
            ));
        }
        // Free list: only free slots, no cycle, covers every free slot.
        let mut free = 0usize;
        let mut f = self.free_head;
        while f != NIL {
            let slot = self
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
        let (mut count, mut prev, mut cur) = (0u32, NIL, self.head);
        while cur != NIL {
            let slot = self
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
        if count != live || self.tail != prev {
            return Err(format!(
                "stripe {si}: queue count {count} (live {live}), tail {} expected {prev}",
                self.tail
            ));
        }
        if self.hand != NIL && !self.slab.get(self.hand as usize).is_some_and(|s| s.live()) {
            return Err(format!("stripe {si}: hand {} on a free slot", self.hand));
        }
        Ok(())
    }
}
