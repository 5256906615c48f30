//! Expiry within one stripe: the lazy check and one step of the background sweep. A submodule
//! of `stripe`, so it works on the stripe's fields directly.
//!
//! Owns: `is_expired` and `Stripe::sweep_expired` (the stripe's sweep cursor). Must not touch:
//! eviction order (evict.rs), charges and counters (`Stripe::release` does those), locks and
//! the choice of stripe to sweep (the node's sweep driver and `flush`, in node.rs).
//! Invariants: an expired item is never returned (every access checks `is_expired` with the
//! entry's `now`); one sweep step looks at no more than its budget of slots, and at none in a
//! stripe without an item that has an expiry (the stripe's TTL counters).

use super::{Acct, Garbage, Reason, Stripe};
use crate::store::{ItemMeta, NEVER};

/// True if the item's expiry is set and not in the future.
#[inline]
pub(in crate::store) fn is_expired(meta: &ItemMeta, now_ms: u64) -> bool {
    meta.expire_at != NEVER && meta.expire_at <= now_ms
}

impl Stripe {
    /// One sweep step: looks at up to `budget` slots from the stripe's sweep cursor and
    /// reclaims the expired items among them (bodies into `garbage`). Returns (slots looked at,
    /// true if the cursor reached the end of the slab and wrapped to 0, items reclaimed).
    pub(in crate::store) fn sweep_expired(
        &mut self,
        budget: usize,
        now: u64,
        acct: &Acct,
        garbage: &mut Garbage,
    ) -> (usize, bool, usize) {
        if self.counters.ttl_items == 0 {
            // No item here has an expiry: nothing to look at (a cache without TTLs pays no
            // sweep at all).
            self.sweep_cursor = 0;
            return (0, true, 0);
        }
        let mut removed = 0;
        let start = self.sweep_cursor as usize;
        let end = self.slab.len().min(start.saturating_add(budget));
        for i in start..end {
            let slot = &self.slab[i];
            if slot.live() && is_expired(&slot.meta, now) {
                self.release_into(i as u32, None, Reason::Expired, acct, garbage);
                removed += 1;
            }
        }
        let wrapped = end >= self.slab.len();
        self.sweep_cursor = if wrapped { 0 } else { end as u32 };
        (end.saturating_sub(start), wrapped, removed)
    }
}
