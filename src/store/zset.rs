//! The sorted set: an order-statistic treap over an arena, plus a hash index member → node.
//!
//! Owns: `ZSet` and its charge. Must not touch: slots, locks, protocols, `value.rs` (which
//! builds on this file: the shared charge and hash helpers are below both, in `charge.rs` and
//! `hash.rs`).
//!
//! Layout: nodes live in one `Vec<ZNode>` (40 bytes each: member box, score, two child links,
//! subtree size, heap priority) linked by `u32` indexes; a removed node's place is taken by the
//! last node (its parent link and index entry are fixed up), so the arena stays dense and its
//! charge is exactly `alloc_size(capacity × 40)`. `index` is a `HashTable<u32>` of node
//! positions hashed by member. Order is Redis's: by score, then member bytes (memcmp).
//!
//! Complexity (n members, expected, random priorities): insert, remove, score update, rank
//! (ZRANK), rank of a score or lex bound (ZCOUNT, BYSCORE, BYLEX) and select by rank are
//! O(log n); a range of k elements is O(log n + k) (an explicit-stack in-order walk).
//! Invariants (checked by `check` in tests): BST order, heap order on priorities, subtree
//! sizes, every node indexed once, `heap` = Σ alloc_size(member).

use std::cmp::Ordering;
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hashbrown::HashTable;

use super::charge::{alloc_size, table_charge};
use super::hash::member_hash;

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct ZNode {
    member: Box<[u8]>,
    score: f64,
    left: u32,
    right: u32,
    size: u32,
    prio: u32,
}

/// Redis sorted set: member → score, ordered by (score, member).
#[derive(Debug, Clone)]
pub struct ZSet {
    nodes: Vec<ZNode>,
    root: u32,
    index: HashTable<u32>,
    /// Σ alloc_size(member).
    heap: u64,
    /// xorshift state for priorities.
    rng: u32,
}

/// Sets created so far: mixed into each set's priority seed.
static SETS: AtomicU64 = AtomicU64::new(0);

impl Default for ZSet {
    fn default() -> Self {
        // Priorities come from a per-process random seed: a client that knew them could order
        // its inserts to build a degenerate (deep) tree.
        let n = SETS.fetch_add(1, Relaxed);
        ZSet {
            nodes: Vec::new(),
            root: NIL,
            index: HashTable::new(),
            heap: 0,
            rng: (member_hash(&n.to_le_bytes()) as u32) | 1,
        }
    }
}

#[inline]
fn order(sa: f64, ma: &[u8], sb: f64, mb: &[u8]) -> Ordering {
    sa.partial_cmp(&sb)
        .unwrap_or(Ordering::Equal)
        .then_with(|| ma.cmp(mb))
}

impl ZSet {
    /// An empty set with room for `n` members (loading a snapshot: no regrowth, no rehash).
    pub fn with_capacity(n: usize) -> ZSet {
        let mut z = ZSet::default();
        z.nodes.reserve_exact(n);
        // The table is empty: the hasher has nothing to rehash.
        z.index.reserve(n, |_| 0);
        z
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if there is no member.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Bytes charged (arena capacity, index table, member allocations). O(1).
    pub fn charge(&self) -> u64 {
        alloc_size(self.nodes.capacity() * size_of::<ZNode>())
            + table_charge(&self.index)
            + self.heap
    }

    /// The charge recounted member by member.
    pub fn recompute_charge(&self) -> u64 {
        alloc_size(self.nodes.capacity() * size_of::<ZNode>())
            + table_charge(&self.index)
            + self
                .nodes
                .iter()
                .map(|n| alloc_size(n.member.len()))
                .sum::<u64>()
    }

    fn find(&self, m: &[u8]) -> Option<u32> {
        let nodes = &self.nodes;
        self.index
            .find(member_hash(m), |&i| &*nodes[i as usize].member == m)
            .copied()
    }

    /// The score of `m`.
    pub fn score(&self, m: &[u8]) -> Option<f64> {
        self.find(m).map(|i| self.nodes[i as usize].score)
    }

    /// Sets the score of `m` (never NaN; -0 is stored as 0, as redis does); returns the old
    /// score, None if `m` is new.
    pub fn insert(&mut self, m: &[u8], score: f64) -> Option<f64> {
        let score = score + 0.0;
        if let Some(i) = self.find(m) {
            let old = self.nodes[i as usize].score;
            if old != score {
                self.root = self.erase(self.root, i);
                let n = &mut self.nodes[i as usize];
                n.score = score;
                n.left = NIL;
                n.right = NIL;
                n.size = 1;
                self.root = self.insert_node(self.root, i);
            }
            return Some(old);
        }
        let i = self.nodes.len() as u32;
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        self.nodes.push(ZNode {
            member: m.into(),
            score,
            left: NIL,
            right: NIL,
            size: 1,
            prio: self.rng,
        });
        self.heap += alloc_size(m.len());
        let nodes = &self.nodes;
        self.index.insert_unique(member_hash(m), i, |&j| {
            member_hash(&nodes[j as usize].member)
        });
        self.root = self.insert_node(self.root, i);
        None
    }

    /// Removes `m`; returns its score.
    pub fn remove(&mut self, m: &[u8]) -> Option<f64> {
        let i = self.find(m)?;
        Some(self.remove_node(i).1)
    }

    /// 0-based rank of `m` in ascending order.
    pub fn rank(&self, m: &[u8]) -> Option<usize> {
        let i = self.find(m)?;
        let n = &self.nodes[i as usize];
        let (s, mm) = (n.score, &*n.member);
        Some(self.count_while(|ns, nm| order(ns, nm, s, mm) == Ordering::Less))
    }

    /// Number of members, in order, for which `before(score, member)` holds; `before` must be
    /// true for a prefix of the order and false after it. O(log n).
    pub fn count_while(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut t = self.root;
        let mut n = 0usize;
        while t != NIL {
            let node = &self.nodes[t as usize];
            if before(node.score, &node.member) {
                n += self.size(node.left) as usize + 1;
                t = node.right;
            } else {
                t = node.left;
            }
        }
        n
    }

    /// The member at ascending rank `r < len`, with its score.
    pub fn at(&self, r: usize) -> (&[u8], f64) {
        let i = self.select(r);
        let n = &self.nodes[i as usize];
        (&n.member, n.score)
    }

    /// The member in storage slot `i < len`, with its score: slots are not ranks. A member
    /// keeps its slot when its score changes; a removal moves the member of the last slot into
    /// the freed one; a new member takes a new last slot. So a member only ever moves to a
    /// lower slot, which is what ZSCAN's walk from the top relies on.
    pub fn slot(&self, i: usize) -> (&[u8], f64) {
        let n = &self.nodes[i];
        (&n.member, n.score)
    }

    /// Removes and returns the member at ascending rank `r < len`.
    pub fn remove_at(&mut self, r: usize) -> (Box<[u8]>, f64) {
        let i = self.select(r);
        self.remove_node(i)
    }

    /// Members at ascending ranks `start..end` (clamped), ascending, or descending from
    /// ascending rank `end - 1` down to `start` when `rev`.
    pub fn range(&self, start: usize, end: usize, rev: bool) -> Iter<'_> {
        let end = end.min(self.len());
        let remaining = end.saturating_sub(start);
        let mut it = Iter {
            set: self,
            stack: Vec::new(),
            remaining,
            rev,
        };
        if remaining > 0 {
            let mut k = if rev { self.len() - end } else { start };
            let mut t = self.root;
            while t != NIL {
                let n = &self.nodes[t as usize];
                let (near, far) = if rev {
                    (n.right, n.left)
                } else {
                    (n.left, n.right)
                };
                let ls = self.size(near) as usize;
                if k < ls {
                    it.stack.push(t);
                    t = near;
                } else if k == ls {
                    it.stack.push(t);
                    break;
                } else {
                    k -= ls + 1;
                    t = far;
                }
            }
        }
        it
    }

    /// Every member in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.range(0, self.len(), false)
    }

    #[inline]
    fn size(&self, t: u32) -> u32 {
        if t == NIL {
            0
        } else {
            self.nodes[t as usize].size
        }
    }

    #[inline]
    fn update(&mut self, t: u32) {
        let (l, r) = {
            let n = &self.nodes[t as usize];
            (n.left, n.right)
        };
        self.nodes[t as usize].size = 1 + self.size(l) + self.size(r);
    }

    #[inline]
    fn cmp_nodes(&self, a: u32, b: u32) -> Ordering {
        let (x, y) = (&self.nodes[a as usize], &self.nodes[b as usize]);
        order(x.score, &x.member, y.score, &y.member)
    }

    fn select(&self, mut r: usize) -> u32 {
        let mut t = self.root;
        loop {
            let n = &self.nodes[t as usize];
            let ls = self.size(n.left) as usize;
            match r.cmp(&ls) {
                Ordering::Less => t = n.left,
                Ordering::Equal => return t,
                Ordering::Greater => {
                    r -= ls + 1;
                    t = n.right;
                }
            }
        }
    }

    /// Splits `t` into (< key node k, >= k).
    fn split(&mut self, t: u32, k: u32) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        if self.cmp_nodes(t, k) == Ordering::Less {
            let (l, r) = self.split(self.nodes[t as usize].right, k);
            self.nodes[t as usize].right = l;
            self.update(t);
            (t, r)
        } else {
            let (l, r) = self.split(self.nodes[t as usize].left, k);
            self.nodes[t as usize].left = r;
            self.update(t);
            (l, t)
        }
    }

    /// Merges `a` and `b` (every element of `a` before every element of `b`).
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].prio > self.nodes[b as usize].prio {
            let m = self.merge(self.nodes[a as usize].right, b);
            self.nodes[a as usize].right = m;
            self.update(a);
            a
        } else {
            let m = self.merge(a, self.nodes[b as usize].left);
            self.nodes[b as usize].left = m;
            self.update(b);
            b
        }
    }

    fn insert_node(&mut self, t: u32, n: u32) -> u32 {
        if t == NIL {
            return n;
        }
        if self.nodes[n as usize].prio > self.nodes[t as usize].prio {
            let (l, r) = self.split(t, n);
            let node = &mut self.nodes[n as usize];
            node.left = l;
            node.right = r;
            self.update(n);
            return n;
        }
        if self.cmp_nodes(n, t) == Ordering::Less {
            let c = self.insert_node(self.nodes[t as usize].left, n);
            self.nodes[t as usize].left = c;
        } else {
            let c = self.insert_node(self.nodes[t as usize].right, n);
            self.nodes[t as usize].right = c;
        }
        self.update(t);
        t
    }

    /// Unlinks node `k` (present in `t`) from the tree.
    fn erase(&mut self, t: u32, k: u32) -> u32 {
        if t == k {
            let (l, r) = (self.nodes[k as usize].left, self.nodes[k as usize].right);
            return self.merge(l, r);
        }
        if self.cmp_nodes(k, t) == Ordering::Less {
            let c = self.erase(self.nodes[t as usize].left, k);
            self.nodes[t as usize].left = c;
        } else {
            let c = self.erase(self.nodes[t as usize].right, k);
            self.nodes[t as usize].right = c;
        }
        self.update(t);
        t
    }

    /// Removes node `k` from tree, index and arena (the last node moves into its place).
    fn remove_node(&mut self, k: u32) -> (Box<[u8]>, f64) {
        self.root = self.erase(self.root, k);
        let h = member_hash(&self.nodes[k as usize].member);
        if let Ok(e) = self.index.find_entry(h, |&i| i == k) {
            e.remove();
        }
        let last = (self.nodes.len() - 1) as u32;
        if k != last {
            // Re-point the link to `last` (found by descending with its key) at `k`.
            if self.root == last {
                self.root = k;
            } else {
                let mut cur = self.root;
                loop {
                    let less = self.cmp_nodes(last, cur) == Ordering::Less;
                    let n = &mut self.nodes[cur as usize];
                    let child = if less { &mut n.left } else { &mut n.right };
                    if *child == last {
                        *child = k;
                        break;
                    }
                    cur = *child;
                }
            }
            let hl = member_hash(&self.nodes[last as usize].member);
            if let Some(slot) = self.index.find_mut(hl, |&i| i == last) {
                *slot = k;
            }
        }
        let node = self.nodes.swap_remove(k as usize);
        self.heap -= alloc_size(node.member.len());
        let len = self.nodes.len();
        if self.nodes.capacity() > 8 && len <= self.nodes.capacity() / 4 {
            self.nodes.shrink_to(len * 2);
            let nodes = &self.nodes;
            self.index
                .shrink_to(len, |&i| member_hash(&nodes[i as usize].member));
        }
        (node.member, node.score)
    }

    /// Checks every invariant (tests).
    #[cfg(test)]
    fn check(&self) -> Result<(), String> {
        fn walk(z: &ZSet, t: u32, out: &mut Vec<u32>) -> Result<u32, String> {
            if t == NIL {
                return Ok(0);
            }
            let n = &z.nodes[t as usize];
            for c in [n.left, n.right] {
                if c != NIL && z.nodes[c as usize].prio > n.prio {
                    return Err(format!("heap order at {t}"));
                }
            }
            let l = walk(z, n.left, out)?;
            out.push(t);
            let r = walk(z, n.right, out)?;
            if n.size != l + r + 1 {
                return Err(format!("size at {t}"));
            }
            Ok(n.size)
        }
        let mut inorder = Vec::new();
        walk(self, self.root, &mut inorder)?;
        if inorder.len() != self.nodes.len() || self.index.len() != self.nodes.len() {
            return Err("count".into());
        }
        if inorder
            .windows(2)
            .any(|w| self.cmp_nodes(w[0], w[1]) != Ordering::Less)
        {
            return Err("order".into());
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if self.find(&n.member) != Some(i as u32) {
                return Err(format!("index of {i}"));
            }
        }
        if self.charge() != self.recompute_charge() {
            return Err("charge".into());
        }
        Ok(())
    }
}

/// In-order walk over a rank range of a [`ZSet`].
pub struct Iter<'a> {
    set: &'a ZSet,
    stack: Vec<u32>,
    remaining: usize,
    rev: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let t = self.stack.pop()?;
        self.remaining -= 1;
        let nodes = &self.set.nodes;
        let n = &nodes[t as usize];
        let mut c = if self.rev { n.left } else { n.right };
        while c != NIL {
            self.stack.push(c);
            let cn = &nodes[c as usize];
            c = if self.rev { cn.right } else { cn.left };
        }
        Some((&n.member, n.score))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Random inserts, updates, removals and queries against a sorted Vec model.
    #[test]
    fn random_ops_match_a_naive_model() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut z = ZSet::default();
        let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
        let sort = |m: &mut Vec<(f64, Vec<u8>)>| {
            m.sort_by(|a, b| order(a.0, &a.1, b.0, &b.1));
        };
        for step in 0..20_000 {
            let m = format!("m{}", rng.next() % 300).into_bytes();
            let score = (rng.next() % 50) as f64 - 25.0;
            match rng.next() % 10 {
                0..=4 => {
                    let old = model.iter().position(|e| e.1 == m);
                    let want = old.map(|p| model[p].0);
                    assert_eq!(z.insert(&m, score), want);
                    match old {
                        Some(p) => model[p].0 = score,
                        None => model.push((score, m.clone())),
                    }
                    sort(&mut model);
                }
                5 | 6 => {
                    let old = model.iter().position(|e| e.1 == m);
                    assert_eq!(z.remove(&m), old.map(|p| model.remove(p).0));
                }
                7 => {
                    if !model.is_empty() {
                        let r = (rng.next() as usize) % model.len();
                        let (mm, s) = z.remove_at(r);
                        let e = model.remove(r);
                        assert_eq!((&*mm, s), (&e.1[..], e.0));
                    }
                }
                _ => {
                    assert_eq!(z.rank(&m), model.iter().position(|e| e.1 == m));
                    let n = z.count_while(|s, _| s < score);
                    assert_eq!(n, model.iter().filter(|e| e.0 < score).count());
                    let (a, b) = (
                        rng.next() as usize % (model.len() + 2),
                        rng.next() as usize % (model.len() + 2),
                    );
                    let rev = rng.next() % 2 == 0;
                    let got: Vec<(Vec<u8>, f64)> =
                        z.range(a, b, rev).map(|(m, s)| (m.to_vec(), s)).collect();
                    let mut want: Vec<(Vec<u8>, f64)> = model
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i >= a && *i < b)
                        .map(|(_, e)| (e.1.clone(), e.0))
                        .collect();
                    if rev {
                        want.reverse();
                    }
                    assert_eq!(got, want, "step {step} range {a}..{b} rev {rev}");
                }
            }
            assert_eq!(z.len(), model.len());
            if step % 1000 == 0 {
                z.check().expect("invariants");
            }
        }
        z.check().expect("invariants");
        for (r, e) in model.iter().enumerate() {
            assert_eq!(z.at(r), (&e.1[..], e.0));
            assert_eq!(z.score(&e.1), Some(e.0));
        }
        while !z.is_empty() {
            z.remove_at(0);
        }
        z.check().expect("empty");
        assert!(z.charge() < 1024, "shrunk: {}", z.charge());
    }
}
