//! Item values and what they cost in memory.
//!
//! Owns: `Body` (what a slot holds), `Container` (Redis hash/list/set/zset values), the
//! collection types behind it (`Hash`, `List`, `Set`; `ZSet` is in zset.rs, below this file)
//! and their charges (`Container::charge`, built on `charge.rs`). Must not touch: slots,
//! stripes, locks, counters (the stripe applies the charges). Invariants: a charge is what the
//! allocator really hands out (glibc x86-64 size classes, `charge::alloc_size`), so that a
//! node's `used` tracks its resident memory; a string's key and value share one allocation
//! (`key ‖ value`); an empty allocation costs nothing.
//!
//! Incremental accounting: every collection keeps the sum of its elements' allocations in a
//! counter that its own mutating methods update, and derives the rest (buffer and index
//! capacity) from O(1) reads, so `Container::charge` is O(1) and `Entry::update_container` can
//! re-charge an item of a million elements after each command in constant time.
//! `Container::recompute_charge` recounts from scratch (O(len)); `Node::validate` compares them.
//! Collections give their spare capacity back when they shrink to a quarter of it, so that a
//! popped-empty big list does not keep (and keep being charged for) its peak buffer.

use std::collections::VecDeque;
use std::mem::size_of;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as Slot;

use super::Kind;
pub use super::charge::alloc_size;
use super::charge::table_charge;
use super::hash::member_hash;
use super::stream::Stream;
use super::zset::ZSet;

/// What an occupied slot holds. 16 bytes: the container variant lives in the niche of the
/// string's pointer, which is what keeps `Slot` at 56 bytes.
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

    /// The charge: this box, the key, and the container's contents. O(1).
    pub(super) fn compute_charge(&self) -> u64 {
        alloc_size(size_of::<ContainerItem>()) + alloc_size(self.key.len()) + self.value.charge()
    }
}

/// A Redis container value. Commands mutate these in place under the stripe lock
/// (`Entry::update_container`); the node re-charges the item afterwards in O(1).
#[derive(Debug, Clone)]
pub enum Container {
    /// Redis hash: field → value.
    Hash(Hash),
    /// Redis list.
    List(List),
    /// Redis set.
    Set(Set),
    /// Redis sorted set.
    ZSet(ZSet),
    /// Redis stream.
    Stream(Box<Stream>),
}

impl Container {
    /// The value kind of this container.
    pub fn kind(&self) -> Kind {
        match self {
            Container::Hash(_) => Kind::Hash,
            Container::List(_) => Kind::List,
            Container::Set(_) => Kind::Set,
            Container::ZSet(_) => Kind::ZSet,
            Container::Stream(_) => Kind::Stream,
        }
    }

    /// Number of elements (fields, list entries, members).
    pub fn len(&self) -> usize {
        match self {
            Container::Hash(m) => m.len(),
            Container::List(l) => l.len(),
            Container::Set(s) => s.len(),
            Container::ZSet(z) => z.len(),
            Container::Stream(s) => s.len(),
        }
    }

    /// True if the container has no elements and Redis deletes it: never for a stream, which
    /// stays a key when its last entry goes (its last ID and groups live on).
    pub fn is_empty(&self) -> bool {
        !matches!(self, Container::Stream(_)) && self.len() == 0
    }

    /// Bytes charged for the contents, O(1): buffer and index capacity plus the running sum of
    /// the elements' allocations.
    pub fn charge(&self) -> u64 {
        match self {
            Container::Hash(h) => h.0.charge(),
            Container::List(l) => l.charge(),
            Container::Set(s) => s.0.charge(),
            Container::ZSet(z) => z.charge(),
            Container::Stream(s) => alloc_size(size_of::<Stream>()) + s.charge(),
        }
    }

    /// The same charge recounted element by element (O(len)), for `validate` and tests.
    pub fn recompute_charge(&self) -> u64 {
        match self {
            Container::Hash(h) => h.0.recompute_charge(),
            Container::List(l) => {
                l.buffer_charge() + l.items.iter().map(|e| alloc_size(e.len())).sum::<u64>()
            }
            Container::Set(s) => s.0.recompute_charge(),
            Container::ZSet(z) => z.recompute_charge(),
            Container::Stream(s) => alloc_size(size_of::<Stream>()) + s.recompute_charge(),
        }
    }
}

/// An element of an [`Indexed`] collection: its lookup key and its own allocations.
pub(super) trait Element {
    fn key(&self) -> &[u8];
    fn heap(&self) -> u64;
}

impl Element for Box<[u8]> {
    #[inline]
    fn key(&self) -> &[u8] {
        self
    }
    #[inline]
    fn heap(&self) -> u64 {
        alloc_size(self.len())
    }
}

impl Element for (Box<[u8]>, Box<[u8]>) {
    #[inline]
    fn key(&self) -> &[u8] {
        &self.0
    }
    #[inline]
    fn heap(&self) -> u64 {
        alloc_size(self.0.len()) + alloc_size(self.1.len())
    }
}

/// Up to this many elements, removal keeps the order of the others.
const ORDERED_MAX: usize = 128;

/// Elements in a dense vector with a hash index of positions: O(1) lookup, insert, removal
/// (swap with the last) and uniform random pick (HRANDFIELD, SRANDMEMBER, SPOP).
#[derive(Debug)]
pub(super) struct Indexed<T> {
    items: Vec<T>,
    index: HashTable<u32>,
    /// Σ element allocations.
    heap: u64,
}

impl<T: Clone> Clone for Indexed<T> {
    fn clone(&self) -> Self {
        Indexed {
            items: self.items.clone(),
            index: self.index.clone(),
            heap: self.heap,
        }
    }
}

impl<T> Default for Indexed<T> {
    fn default() -> Self {
        Indexed {
            items: Vec::new(),
            index: HashTable::new(),
            heap: 0,
        }
    }
}

impl<T: Element> Indexed<T> {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        let items = &self.items;
        self.index
            .find(member_hash(key), |&i| items[i as usize].key() == key)
            .map(|&i| i as usize)
    }

    /// Appends `item`, whose key must be absent.
    fn push(&mut self, item: T) {
        let pos = self.items.len() as u32;
        self.heap += item.heap();
        let h = member_hash(item.key());
        self.items.push(item);
        let items = &self.items;
        self.index
            .insert_unique(h, pos, |&i| member_hash(items[i as usize].key()));
    }

    /// Built from `items` in one pass (loading a snapshot or a RESTORE payload): exact
    /// capacities, so no regrowth and no rehash, and one hash per element. An element whose
    /// key is already there is merged into the first one by `merge` (which keeps its place).
    fn collect(items: impl ExactSizeIterator<Item = T>, merge: impl Fn(&mut T, T)) -> Indexed<T> {
        let n = items.len();
        let mut out: Indexed<T> = Indexed {
            items: Vec::with_capacity(n),
            index: HashTable::with_capacity(n),
            heap: 0,
        };
        for item in items {
            let h = member_hash(item.key());
            let Indexed { items, index, heap } = &mut out;
            let slot = index.entry(
                h,
                |&i| items[i as usize].key() == item.key(),
                |&i| member_hash(items[i as usize].key()),
            );
            match slot {
                Slot::Occupied(e) => {
                    let old = &mut items[*e.get() as usize];
                    *heap -= old.heap();
                    merge(old, item);
                    *heap += old.heap();
                }
                Slot::Vacant(e) => {
                    e.insert(items.len() as u32);
                    *heap += item.heap();
                    items.push(item);
                }
            }
        }
        out
    }

    /// Removes the element at `pos`. Up to [`ORDERED_MAX`] elements the others keep their
    /// order (redis's small hashes are listpacks: HGETALL shows insertion order, deletions
    /// included); above, the last element takes its place (O(1)). Either way an element only
    /// ever moves to a lower position, which HSCAN/SSCAN's walk from the top relies on.
    fn swap_remove(&mut self, pos: usize) -> T {
        let last = self.items.len() - 1;
        let h = member_hash(self.items[pos].key());
        if let Ok(e) = self.index.find_entry(h, |&i| i as usize == pos) {
            e.remove();
        }
        if self.items.len() <= ORDERED_MAX {
            let item = self.items.remove(pos);
            for j in pos..self.items.len() {
                let hj = member_hash(self.items[j].key());
                if let Some(slot) = self.index.find_mut(hj, |&i| i as usize == j + 1) {
                    *slot = j as u32;
                }
            }
            self.heap -= item.heap();
            self.shrink();
            return item;
        }
        if pos != last {
            let hl = member_hash(self.items[last].key());
            if let Some(slot) = self.index.find_mut(hl, |&i| i as usize == last) {
                *slot = pos as u32;
            }
        }
        let item = self.items.swap_remove(pos);
        self.heap -= item.heap();
        self.shrink();
        item
    }

    /// Gives capacity back once a quarter or less of it is used.
    fn shrink(&mut self) {
        let len = self.items.len();
        if self.items.capacity() > 8 && len <= self.items.capacity() / 4 {
            self.items.shrink_to(len * 2);
            let items = &self.items;
            self.index
                .shrink_to(len, |&i| member_hash(items[i as usize].key()));
        }
    }

    fn charge(&self) -> u64 {
        alloc_size(self.items.capacity() * size_of::<T>()) + table_charge(&self.index) + self.heap
    }

    fn recompute_charge(&self) -> u64 {
        alloc_size(self.items.capacity() * size_of::<T>())
            + table_charge(&self.index)
            + self.items.iter().map(Element::heap).sum::<u64>()
    }
}

/// A hash field and its value.
type Field = (Box<[u8]>, Box<[u8]>);

/// Redis hash: field → value.
#[derive(Debug, Clone, Default)]
pub struct Hash(Indexed<Field>);

impl Hash {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there is no field.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// A hash of `pairs`, taking their buffers as they are (a repeated field keeps its first
    /// place and its last value, as repeated HSETs would).
    pub fn from_pairs(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Hash {
        let fields = pairs
            .into_iter()
            .map(|(f, v)| (f.into_boxed_slice(), v.into_boxed_slice()));
        Hash(Indexed::collect(fields, |old, new| old.1 = new.1))
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.0.find(field).map(|i| &*self.0.items[i].1)
    }

    /// Sets `field`; true if it is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self.0.find(field) {
            Some(i) => {
                let slot = &mut self.0.items[i].1;
                self.0.heap = self.0.heap - alloc_size(slot.len()) + alloc_size(value.len());
                *slot = value.into();
                false
            }
            None => {
                self.0.push((field.into(), value.into()));
                true
            }
        }
    }

    /// Removes `field`; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.0.find(field) {
            Some(i) => {
                self.0.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// The `i`-th (field, value), `i < len` (random picks).
    pub fn at(&self, i: usize) -> (&[u8], &[u8]) {
        let (f, v) = &self.0.items[i];
        (f, v)
    }

    /// Every (field, value).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.0.items.iter().map(|(f, v)| (&**f, &**v))
    }
}

/// Redis set.
#[derive(Debug, Clone, Default)]
pub struct Set(Indexed<Box<[u8]>>);

impl Set {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there is no member.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// A set of `members`, taking their buffers as they are (repeats count once).
    pub fn from_members(members: Vec<Vec<u8>>) -> Set {
        let members = members.into_iter().map(Vec::into_boxed_slice);
        Set(Indexed::collect(members, |_, _| {}))
    }

    /// True if `m` is a member.
    pub fn contains(&self, m: &[u8]) -> bool {
        self.0.find(m).is_some()
    }

    /// Adds `m`; true if it is new.
    pub fn insert(&mut self, m: &[u8]) -> bool {
        if self.contains(m) {
            return false;
        }
        self.0.push(m.into());
        true
    }

    /// Removes `m`; true if it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self.0.find(m) {
            Some(i) => {
                self.0.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Removes and returns the `i`-th member, `i < len`.
    pub fn remove_at(&mut self, i: usize) -> Box<[u8]> {
        self.0.swap_remove(i)
    }

    /// The `i`-th member, `i < len`.
    pub fn at(&self, i: usize) -> &[u8] {
        &self.0.items[i]
    }

    /// Every member.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.0.items.iter().map(|m| &**m)
    }
}

/// Redis list.
#[derive(Debug, Clone, Default)]
pub struct List {
    items: VecDeque<Box<[u8]>>,
    heap: u64,
}

impl List {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True if there is no element.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// A list of `items`, head first, taking their buffers as they are.
    pub fn from_items(items: Vec<Vec<u8>>) -> List {
        let mut heap = 0;
        let items: VecDeque<Box<[u8]>> = items
            .into_iter()
            .map(|v| {
                let v = v.into_boxed_slice();
                heap += alloc_size(v.len());
                v
            })
            .collect();
        List { items, heap }
    }

    /// Adds an element at the head (`front`) or tail.
    pub fn push(&mut self, v: &[u8], front: bool) {
        self.heap += alloc_size(v.len());
        if front {
            self.items.push_front(v.into());
        } else {
            self.items.push_back(v.into());
        }
    }

    /// Removes the head (`front`) or tail element.
    pub fn pop(&mut self, front: bool) -> Option<Box<[u8]>> {
        let v = if front {
            self.items.pop_front()
        } else {
            self.items.pop_back()
        }?;
        self.heap -= alloc_size(v.len());
        self.shrink();
        Some(v)
    }

    /// The element at `i`.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.items.get(i).map(|v| &**v)
    }

    /// Replaces the element at `i < len`.
    pub fn set(&mut self, i: usize, v: &[u8]) {
        let slot = &mut self.items[i];
        self.heap = self.heap - alloc_size(slot.len()) + alloc_size(v.len());
        *slot = v.into();
    }

    /// Inserts `v` before position `i <= len`.
    pub fn insert(&mut self, i: usize, v: &[u8]) {
        self.heap += alloc_size(v.len());
        self.items.insert(i, v.into());
    }

    /// Keeps the elements for which `keep(index, element)` is true.
    pub fn retain_indexed(&mut self, mut keep: impl FnMut(usize, &[u8]) -> bool) {
        let mut i = 0;
        let mut freed = 0;
        self.items.retain(|v| {
            let k = keep(i, v);
            i += 1;
            if !k {
                freed += alloc_size(v.len());
            }
            k
        });
        self.heap -= freed;
        self.shrink();
    }

    /// Keeps elements `start..=end` (clamped, valid indexes).
    pub fn trim(&mut self, start: usize, end_exclusive: usize) {
        let end = end_exclusive.min(self.items.len());
        for v in self.items.drain(end..) {
            self.heap -= alloc_size(v.len());
        }
        let start = start.min(self.items.len());
        for v in self.items.drain(..start) {
            self.heap -= alloc_size(v.len());
        }
        self.shrink();
    }

    /// Every element, head to tail.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(|v| &**v)
    }

    fn shrink(&mut self) {
        let len = self.items.len();
        if self.items.capacity() > 8 && len <= self.items.capacity() / 4 {
            self.items.shrink_to(len * 2);
        }
    }

    fn buffer_charge(&self) -> u64 {
        alloc_size(self.items.capacity() * size_of::<Box<[u8]>>())
    }

    fn charge(&self) -> u64 {
        self.buffer_charge() + self.heap
    }
}

impl FromIterator<Box<[u8]>> for List {
    fn from_iter<I: IntoIterator<Item = Box<[u8]>>>(iter: I) -> Self {
        let mut l = List::default();
        for v in iter {
            l.push(&v, false);
        }
        l
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
    fn built_in_one_pass_equals_built_by_inserts() {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..300u32)
            .map(|i| {
                (
                    format!("f{}", i % 250).into_bytes(),
                    vec![b'v'; (i % 40) as usize],
                )
            })
            .collect();
        let mut by_insert = Hash::default();
        for (f, v) in &pairs {
            by_insert.insert(f, v);
        }
        let built = Hash::from_pairs(pairs);
        assert_eq!(built.len(), 250);
        assert!(built.iter().eq(by_insert.iter()));
        for (f, v) in by_insert.iter() {
            assert_eq!(built.get(f), Some(v));
        }
        let c = Container::Hash(built);
        assert_eq!(c.charge(), c.recompute_charge());

        let members: Vec<Vec<u8>> = (0..200u32).map(|i| (i % 150).to_string().into()).collect();
        let built = Set::from_members(members);
        assert_eq!(built.len(), 150);
        assert!(built.contains(b"149") && !built.contains(b"150"));
        let c = Container::Set(built);
        assert_eq!(c.charge(), c.recompute_charge());

        let items: Vec<Vec<u8>> = (0..100u32).map(|i| vec![7u8; i as usize]).collect();
        let built = List::from_items(items.clone());
        assert!(built.iter().eq(items.iter().map(|v| &v[..])));
        let c = Container::List(built);
        assert_eq!(c.charge(), c.recompute_charge());
    }

    #[test]
    fn incremental_charges_match_recount() {
        let mut h = Hash::default();
        assert_eq!(Container::Hash(h.clone()).charge(), 0);
        for i in 0..1000u32 {
            h.insert(&i.to_be_bytes(), &vec![0u8; (i % 70) as usize]);
        }
        for i in (0..1000u32).step_by(3) {
            h.insert(&i.to_be_bytes(), b"x");
            assert!(h.remove(&(i + 1).to_be_bytes()) || i + 1 >= 1000);
        }
        for i in (0..1000u32).step_by(3) {
            assert_eq!(h.get(&i.to_be_bytes()), Some(&b"x"[..]));
        }
        let c = Container::Hash(h);
        assert_eq!(c.charge(), c.recompute_charge());
        assert!(c.charge() >= 600 * (32 + 32), "{}", c.charge());

        let mut s = Set::default();
        for i in 0..5000u32 {
            assert!(s.insert(i.to_string().as_bytes()));
        }
        assert!(!s.insert(b"7"));
        for i in 0..4990u32 {
            assert!(s.remove(i.to_string().as_bytes()));
        }
        assert_eq!(s.len(), 10);
        assert!(s.contains(b"4995"));
        let c = Container::Set(s);
        assert_eq!(c.charge(), c.recompute_charge());
        assert!(c.charge() < 2000, "shrunk: {}", c.charge());

        let mut l: List = (0..10).map(|_| vec![1u8; 10].into_boxed_slice()).collect();
        l.push(b"front", true);
        l.set(3, &[7u8; 100]);
        l.insert(2, b"mid");
        l.retain_indexed(|i, _| i % 2 == 0);
        l.trim(1, 4);
        assert_eq!(l.len(), 3);
        let c = Container::List(l);
        assert_eq!(c.charge(), c.recompute_charge());
        assert_eq!(c.kind(), Kind::List);

        let item = ContainerItem::new(b"key", c);
        assert_eq!(item.charge, item.compute_charge());
    }
}
