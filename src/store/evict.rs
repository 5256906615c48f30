//! SIEVE eviction over a stripe's intrusive queue.
//!
//! Owns: the queue surgery (`link_head`, `unlink`) and victim choice (`sieve_victim`). Must not
//! touch: accounting, the index, counters (`Stripe::release` in node.rs does those), locks.
//! Invariants: the queue holds exactly the occupied slots, newest at `head`; `prev` points
//! toward the head, `next` toward the tail; the hand walks tail → head and wraps to the tail;
//! visited items the hand passes lose their bit and stay where they are (SIEVE, NSDI'24), new
//! items enter at the head. Reads only set the bit (`Entry::mark_read`), never relink.

use super::expire::is_expired;
use super::node::{NIL, Stripe};

impl Stripe {
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
    pub(super) fn sieve_victim(&mut self, protect: Option<u32>, now: u64) -> Option<(u32, bool)> {
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

#[cfg(test)]
mod tests {
    use super::super::clock::Clock;
    use super::super::hash::hash_key;
    use super::super::node::{Node, SLOT_BYTES, STRIPES, stripe_of};

    /// Keys that all land in stripe `s` of a node.
    pub(crate) fn keys_in_stripe(s: usize, n: usize) -> Vec<Vec<u8>> {
        (0u64..)
            .map(|i| format!("key-{i:08}").into_bytes())
            .filter(|k| stripe_of(hash_key(k)) == s)
            .take(n)
            .collect()
    }

    fn present(node: &Node, key: &[u8]) -> bool {
        node.entry(key, |e| e.item().is_some())
    }

    #[test]
    fn sieve_keeps_recently_read_items() {
        let node = Node::new("n", u64::MAX, Clock::mock(1_000_000));
        let keys = keys_in_stripe(3, 10);
        for k in &keys {
            node.entry(k, |e| e.put(&[&[7u8; 100]], 0, 0, None))
                .expect("fits");
        }
        // Read the five oldest: the hand must skip them (clearing their bits).
        for k in &keys[..5] {
            node.entry(k, |e| e.mark_read());
        }
        // Evicting gives back the item's allocation; its slot stays in the slab (fixed charge).
        let freed = node
            .entry(&keys[0], |e| e.item().map(|i| i.charge()))
            .expect("item")
            - SLOT_BYTES;
        let used = node.used_bytes();
        node.set_max_memory(used - 3 * freed);
        assert_eq!(node.used_bytes(), used - 3 * freed);
        let survivors: Vec<usize> = (0..10).filter(|&i| present(&node, &keys[i])).collect();
        assert_eq!(survivors, vec![0, 1, 2, 3, 4, 8, 9]);
        let st = node.stats();
        assert_eq!((st.evictions, st.evicted_unfetched), (3, 3));
        node.validate().expect("valid");

        // A new item in the same stripe: the hand continues after 7, finds 8 unvisited.
        node.set_max_memory(node.used_bytes());
        let extra = keys_in_stripe(3, 11).pop().expect("key");
        node.entry(&extra, |e| e.put(&[&[7u8; 100]], 0, 0, None))
            .expect("fits");
        let survivors: Vec<usize> = (0..10).filter(|&i| present(&node, &keys[i])).collect();
        assert_eq!(survivors, vec![0, 1, 2, 3, 4, 9]);
        assert!(present(&node, &extra));
        assert!(node.used_bytes() <= node.max_memory());
        node.validate().expect("valid");
    }

    #[test]
    fn eviction_spills_to_other_stripes_and_spares_the_new_item() {
        let clock = Clock::mock(1_000_000);
        let node = Node::new("n", u64::MAX, clock);
        // Fill every stripe but 0 a little, stripe 0 with one item.
        for s in 1..STRIPES {
            for k in keys_in_stripe(s, 2) {
                node.entry(&k, |e| e.put(&[&[1u8; 200]], 0, 0, None))
                    .expect("fits");
            }
        }
        let k0 = keys_in_stripe(0, 1).pop().expect("key");
        node.set_max_memory(node.used_bytes() + 1000);
        // A big item in stripe 0: its stripe has nothing else, so others must give way.
        node.entry(&k0, |e| e.put(&[&[2u8; 5000]], 0, 0, None))
            .expect("fits");
        assert!(present(&node, &k0));
        assert!(node.used_bytes() <= node.max_memory());
        assert!(node.stats().evictions > 0);
        node.validate().expect("valid");
    }
}
