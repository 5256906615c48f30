//! Item values and what they cost in memory.
//!
//! Owns: `Body` (what a slot holds), `Container` (Redis hash/list/set/zset values) and the charge
//! formulas (`alloc_size`, `Container::charge`). Must not touch: slots, stripes, locks, counters
//! (node.rs applies the charges). Invariants: a charge is what the allocator really hands out
//! (glibc x86-64 size classes), so that a node's `used` tracks its resident memory; a string's
//! key and value share one allocation (`key ‖ value`); an empty allocation costs nothing.

use std::cmp::Ordering;
use std::collections::{BTreeSet, VecDeque};
use std::mem::size_of;

use hashbrown::{HashMap, HashSet};

use super::Kind;

/// Bytes the allocator uses for a request of `n` bytes: glibc malloc's chunk size
/// `max(32, round_up(n + 8, 16))`; 0 for `n == 0` (Rust does not allocate empty boxes).
#[inline]
pub const fn alloc_size(n: usize) -> u64 {
    if n == 0 {
        return 0;
    }
    let chunk = (n as u64 + 8 + 15) & !15;
    if chunk < 32 { 32 } else { chunk }
}

/// What an occupied slot holds. 16 bytes: the container variant lives in the niche of the
/// string's pointer, which is what keeps `Slot` at 64 bytes.
pub(super) enum Body {
    /// `key ‖ value` in one allocation; the key length is in the slot.
    Str(Box<[u8]>),
    /// A Redis container, with its own key allocation and cached charge.
    Container(Box<ContainerItem>),
}

impl Body {
    /// A body that owns no allocation (free slots).
    #[inline]
    pub(super) fn empty() -> Body {
        Body::Str(Box::default())
    }

    /// True if dropping this body frees nothing (not worth carrying out of the lock).
    #[inline]
    pub(super) fn is_empty_alloc(&self) -> bool {
        matches!(self, Body::Str(b) if b.is_empty())
    }

    /// Bytes charged for the body (the slot itself is charged by the caller).
    #[inline]
    pub(super) fn charge(&self) -> u64 {
        match self {
            Body::Str(b) => alloc_size(b.len()),
            Body::Container(c) => c.charge,
        }
    }
}

/// A container value with its key. `charge` caches `ContainerItem::compute_charge`; whoever
/// mutates `value` must refresh it (and apply the delta to the stripe) before unlocking.
pub(super) struct ContainerItem {
    pub(super) key: Box<[u8]>,
    pub(super) value: Container,
    pub(super) charge: u64,
}

impl ContainerItem {
    pub(super) fn new(key: &[u8], value: Container) -> ContainerItem {
        let mut item = ContainerItem {
            key: key.into(),
            value,
            charge: 0,
        };
        item.charge = item.compute_charge();
        item
    }

    /// Recomputes the charge from scratch: this box, the key, and the container's contents.
    pub(super) fn compute_charge(&self) -> u64 {
        alloc_size(size_of::<ContainerItem>()) + alloc_size(self.key.len()) + self.value.charge()
    }
}

/// A Redis container value. No commands yet: they mutate these in place under the stripe lock
/// (`Entry::update_container`), and the node re-charges the item afterwards.
#[derive(Debug, Clone)]
pub enum Container {
    /// Redis hash: field → value.
    Hash(HashMap<Box<[u8]>, Box<[u8]>>),
    /// Redis list.
    List(VecDeque<Box<[u8]>>),
    /// Redis set.
    Set(HashSet<Box<[u8]>>),
    /// Redis sorted set.
    ZSet(ZSet),
}

/// Redis sorted set: member → score, plus (score, member) order.
#[derive(Debug, Clone, Default)]
pub struct ZSet {
    /// Member → score.
    pub scores: HashMap<Box<[u8]>, f64>,
    /// (score, member) in Redis order: by score, then member bytes.
    pub order: BTreeSet<(Score, Box<[u8]>)>,
}

/// A sorted-set score with a total order (`f64::total_cmp`), usable as a `BTreeSet` key.
#[derive(Debug, Clone, Copy)]
pub struct Score(pub f64);

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0) == Ordering::Equal
    }
}
impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Elements per std B-tree node (B = 6) and an assumed average fill of 8 of them.
const BTREE_NODE_CAP: usize = 11;
const BTREE_AVG_FILL: usize = 8;

/// Charge of a `BTreeSet<T>` of `len` elements: approximate (std does not expose its nodes),
/// one leaf-sized node (11 elements + parent pointer + indices) per 8 elements.
fn btree_charge<T>(len: usize) -> u64 {
    let node = alloc_size(BTREE_NODE_CAP * size_of::<T>() + 16);
    len.div_ceil(BTREE_AVG_FILL) as u64 * node
}

/// Charge of a hashbrown table allocation (buckets of entries + control bytes).
fn table_charge(bytes: usize) -> u64 {
    alloc_size(bytes)
}

impl Container {
    /// The value kind of this container.
    pub fn kind(&self) -> Kind {
        match self {
            Container::Hash(_) => Kind::Hash,
            Container::List(_) => Kind::List,
            Container::Set(_) => Kind::Set,
            Container::ZSet(_) => Kind::ZSet,
        }
    }

    /// Number of elements (fields, list entries, members).
    pub fn len(&self) -> usize {
        match self {
            Container::Hash(m) => m.len(),
            Container::List(l) => l.len(),
            Container::Set(s) => s.len(),
            Container::ZSet(z) => z.scores.len(),
        }
    }

    /// True if the container has no elements (Redis deletes such keys).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes charged for the contents, recomputed from scratch (O(len)): table/buffer capacity
    /// plus every element's allocation. Exact for hash/list/set; the sorted set's B-tree part is
    /// an estimate (see `btree_charge`).
    pub fn charge(&self) -> u64 {
        match self {
            Container::Hash(m) => {
                table_charge(m.allocation_size())
                    + m.iter()
                        .map(|(k, v)| alloc_size(k.len()) + alloc_size(v.len()))
                        .sum::<u64>()
            }
            Container::List(l) => {
                alloc_size(l.capacity() * size_of::<Box<[u8]>>())
                    + l.iter().map(|e| alloc_size(e.len())).sum::<u64>()
            }
            Container::Set(s) => {
                table_charge(s.allocation_size())
                    + s.iter().map(|e| alloc_size(e.len())).sum::<u64>()
            }
            Container::ZSet(z) => {
                table_charge(z.scores.allocation_size())
                    + btree_charge::<(Score, Box<[u8]>)>(z.order.len())
                    + z.scores.keys().map(|m| alloc_size(m.len())).sum::<u64>()
                    + z.order
                        .iter()
                        .map(|(_, m)| alloc_size(m.len()))
                        .sum::<u64>()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_size_follows_glibc_classes() {
        assert_eq!(alloc_size(0), 0);
        assert_eq!(alloc_size(1), 32);
        assert_eq!(alloc_size(24), 32);
        assert_eq!(alloc_size(25), 48);
        assert_eq!(alloc_size(116), 128);
        assert_eq!(alloc_size(120), 128);
        assert_eq!(alloc_size(121), 144);
        assert_eq!(size_of::<Body>(), 16);
    }

    #[test]
    fn container_charges_grow_with_contents() {
        let mut h = HashMap::new();
        let empty = Container::Hash(h.clone()).charge();
        assert_eq!(empty, 0);
        for i in 0..100u32 {
            h.insert(
                i.to_be_bytes().to_vec().into_boxed_slice(),
                vec![0u8; 40].into_boxed_slice(),
            );
        }
        let c = Container::Hash(h);
        assert!(c.charge() >= 100 * (32 + 48), "{}", c.charge());
        assert_eq!(c.kind(), Kind::Hash);
        assert_eq!(c.len(), 100);

        let l: VecDeque<Box<[u8]>> = (0..10).map(|_| vec![1u8; 10].into_boxed_slice()).collect();
        let c = Container::List(l);
        assert_eq!(c.charge(), alloc_size(c_cap(&c) * 16) + 10 * 32);

        let mut z = ZSet::default();
        for i in 0..20u8 {
            let m: Box<[u8]> = vec![i; 5].into_boxed_slice();
            z.scores.insert(m.clone(), f64::from(i));
            z.order.insert((Score(f64::from(i)), m));
        }
        let c = Container::ZSet(z);
        assert!(c.charge() > 40 * 32);
        assert!(Score(-0.0) < Score(0.0) && Score(1.0) == Score(1.0));

        let item = ContainerItem::new(b"key", c);
        assert_eq!(item.charge, item.compute_charge());
    }

    fn c_cap(c: &Container) -> usize {
        match c {
            Container::List(l) => l.capacity(),
            _ => 0,
        }
    }
}
