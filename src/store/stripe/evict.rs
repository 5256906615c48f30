//! SIEVE eviction over a stripe's intrusive queue: a submodule of `stripe`, so it works on the
//! stripe's fields directly.
//!
//! Owns: the queue surgery (`link_head`, `unlink`), victim choice (`sieve_victim`) and
//! `evict_one`, the one entry point the node's eviction driver (node.rs) calls. Must not touch:
//! accounting, the index, counters (`Stripe::release` in stripe.rs does those), locks, the
//! budget (the node decides when to evict; this file only decides what).
//! Invariants: the queue holds exactly the occupied slots, newest at `head`; `prev` points
//! toward the head, `next` toward the tail; the hand walks tail → head and wraps to the tail;
//! visited items the hand passes lose their bit and stay where they are (SIEVE, NSDI'24), new
//! items enter at the head. Reads only set the bit (`Stripe::mark_read`), never relink.

use super::{Acct, Garbage, NIL, Reason, Stripe, is_expired};

impl Stripe {
    /// Removes the next SIEVE victim, never `protect`, counted as evicted (or as expired, if it
    /// had). Returns its body for dropping outside the lock; None if nothing but `protect` is
    /// left.
    pub(in crate::store) fn evict_one(
        &mut self,
        protect: Option<u32>,
        now: u64,
        acct: &Acct,
        garbage: &mut Garbage,
    ) -> bool {
        let Some((i, expired)) = self.sieve_victim(protect, now) else {
            return false;
        };
        let reason = if expired {
            Reason::Expired
        } else {
            Reason::Evicted
        };
        self.release_into(i, None, reason, acct, garbage);
        true
    }

    /// Links occupied slot `i` at the head (newest end) of the queue.
    pub(super) fn link_head(&mut self, i: u32) {
        let old = self.head;
        let slot = &mut self.slab[i as usize];
        slot.prev = NIL;
        slot.next = old;
        if old != NIL {
            self.slab[old as usize].prev = i;
        } else {
            self.tail = i;
        }
        self.head = i;
    }

    /// Takes slot `i` out of the queue. A hand resting on it moves to its newer neighbour (or
    /// wraps to the tail), as if the hand had just passed it.
    pub(super) fn unlink(&mut self, i: u32) {
        let slot = &mut self.slab[i as usize];
        let (prev, next) = (slot.prev, slot.next);
        slot.prev = NIL;
        slot.next = NIL;
        if self.hand == i {
            self.hand = prev;
        }
        if prev != NIL {
            self.slab[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.slab[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
    }

    /// Picks the next victim: the first item from the hand toward the head that is expired or
    /// not visited, clearing the visited bits it passes. Expired items go first whatever their
    /// bit (the bool says the victim is expired). Never returns `protect`. None if nothing but
    /// `protect` is left. The victim is not removed; the hand is left on its newer neighbour.
    fn sieve_victim(&mut self, protect: Option<u32>, now: u64) -> Option<(u32, bool)> {
        // Two laps at most: the first clears every bit, the second must find a victim.
        let mut steps = 2 * self.live as usize + 2;
        let mut cur = if self.hand != NIL {
            self.hand
        } else {
            self.tail
        };
        while cur != NIL && steps > 0 {
            steps -= 1;
            let tail = self.tail;
            let slot = &mut self.slab[cur as usize];
            let newer = slot.prev;
            if Some(cur) != protect {
                let expired = is_expired(&slot.meta, now);
                if expired || !slot.visited() {
                    self.hand = newer;
                    return Some((cur, expired));
                }
                slot.set_visited(false);
            }
            cur = if newer != NIL { newer } else { tail };
        }
        self.hand = cur;
        None
    }
}
