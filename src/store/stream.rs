//! The stream: entries in ID order, redis's node layout (for `~` trimming), and its charge.
//!
//! Owns: `Stream`, `StreamId` and their charge. Must not touch: slots, locks, protocols.
//!
//! Layout: entries live in one `VecDeque` in ID order (XADD appends at the back, trimming
//! pops at the front, XDEL removes in the middle, an O(n) shift that redis pays too in its
//! listpacks); a lookup is a binary search. Besides the entries the stream keeps the shape of
//! redis's radix tree of listpacks (`nodes`: first ID, last ID, live and deleted counts of each
//! node, a node holding at most [`NODE_MAX_ENTRIES`] entries, deleted ones included, as
//! `stream-node-max-entries` says), because approximate trimming (`MAXLEN ~`, `MINID ~`)
//! removes whole nodes only and its result is visible (XLEN). redis's byte limit per node
//! (`stream-node-max-bytes`, 4 KiB) is not modelled: entries of more than about 40 bytes
//! each make redis start nodes earlier than here.
//!
//! Charge: entry and node buffers by capacity, plus the running sum of every entry's field
//! array and field/value allocations (`heap`), so `charge` is O(1).

use std::collections::VecDeque;
use std::mem::size_of;

use super::charge::alloc_size;

/// redis's `stream-node-max-entries` default.
pub const NODE_MAX_ENTRIES: u32 = 100;

/// A stream entry ID: milliseconds and sequence number, ordered as redis orders them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// The largest ID (`+`).
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };
    /// The smallest ID (`-`, `0-0`).
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };

    /// The next ID, None past `MAX` (redis `streamIncrID`).
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                return None;
            }
            return Some(StreamId {
                ms: self.ms + 1,
                seq: 0,
            });
        }
        Some(StreamId {
            ms: self.ms,
            seq: self.seq + 1,
        })
    }

    /// The previous ID, None below `MIN` (redis `streamDecrID`).
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                return None;
            }
            return Some(StreamId {
                ms: self.ms - 1,
                seq: u64::MAX,
            });
        }
        Some(StreamId {
            ms: self.ms,
            seq: self.seq - 1,
        })
    }

    /// `ms-seq`, as redis writes it.
    pub fn to_text(self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }
}

/// A field and its value.
pub type Field = (Box<[u8]>, Box<[u8]>);

/// One stream entry.
#[derive(Debug, Clone)]
pub struct StreamEntry {
    /// Its ID.
    pub id: StreamId,
    /// Its fields, in the order given to XADD.
    pub fields: Box<[Field]>,
}

impl StreamEntry {
    fn heap(&self) -> u64 {
        alloc_size(self.fields.len() * size_of::<Field>())
            + self
                .fields
                .iter()
                .map(|(f, v)| alloc_size(f.len()) + alloc_size(v.len()))
                .sum::<u64>()
    }
}

/// One redis radix-tree node (a listpack): what approximate trimming sees.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// ID of its first entry (its master ID).
    first: StreamId,
    /// ID of the last entry appended to it (deleted or not).
    last: StreamId,
    /// Entries not deleted.
    live: u32,
    /// Entries marked deleted.
    deleted: u32,
}

/// How XADD and XTRIM trim (redis `streamAddTrimArgs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Drop entries below this ID.
    MinId(StreamId),
}

/// Redis stream.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    entries: VecDeque<StreamEntry>,
    nodes: VecDeque<Node>,
    /// Σ entry heaps.
    heap: u64,
    /// The last ID ever given (XADD, XSETID).
    pub last_id: StreamId,
    /// The largest ID ever deleted by XDEL (or set by XSETID).
    pub max_deleted_id: StreamId,
    /// Entries ever added (XADD, or set by XSETID).
    pub entries_added: u64,
    /// Consumer groups, by name.
    groups: Vec<Group>,
    /// Σ group heaps (names, PELs, consumers), refreshed by `groups_mut`.
    group_heap: u64,
}

/// A pending entry of a consumer group (redis `streamNACK`).
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// The entry's ID.
    pub id: StreamId,
    /// Its consumer (`Consumer::tag`).
    pub consumer: u32,
    /// Unix ms of its last delivery.
    pub delivery_time: u64,
    /// Times delivered.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone)]
pub struct Consumer {
    /// Its name.
    pub name: Box<[u8]>,
    /// Its identity in `Pending::consumer` (names are not copied into every pending entry).
    pub tag: u32,
    /// Unix ms it was last seen (read or claimed).
    pub seen_time: u64,
    /// Its pending entries.
    pub pending: u64,
}

/// A consumer group (redis `streamCG`).
#[derive(Debug, Clone)]
pub struct Group {
    /// Its name.
    pub name: Box<[u8]>,
    /// The last ID delivered to it.
    pub last_id: StreamId,
    /// Entries read (redis `entries_read`); None when unknown (-1).
    pub entries_read: Option<u64>,
    /// Pending entries, by ID.
    pub pel: Vec<Pending>,
    /// Consumers, by name.
    pub consumers: Vec<Consumer>,
    next_tag: u32,
}

impl Group {
    fn new(name: &[u8], last_id: StreamId, entries_read: Option<u64>) -> Group {
        Group {
            name: name.into(),
            last_id,
            entries_read,
            pel: Vec::new(),
            consumers: Vec::new(),
            next_tag: 0,
        }
    }

    fn heap(&self) -> u64 {
        alloc_size(self.name.len())
            + alloc_size(self.pel.capacity() * size_of::<Pending>())
            + alloc_size(self.consumers.capacity() * size_of::<Consumer>())
            + self
                .consumers
                .iter()
                .map(|c| alloc_size(c.name.len()))
                .sum::<u64>()
    }

    /// The consumer named `name`.
    pub fn consumer(&self, name: &[u8]) -> Option<&Consumer> {
        self.consumers
            .binary_search_by(|c| (*c.name).cmp(name))
            .ok()
            .map(|i| &self.consumers[i])
    }

    /// The consumer with `tag`.
    pub fn consumer_by_tag(&self, tag: u32) -> Option<&Consumer> {
        self.consumers.iter().find(|c| c.tag == tag)
    }

    /// The consumer named `name`, created if absent (true when created); `seen` updates
    /// its seen time.
    pub fn consumer_or_create(&mut self, name: &[u8], now: u64) -> (u32, bool) {
        match self.consumers.binary_search_by(|c| (*c.name).cmp(name)) {
            Ok(i) => {
                let c = &mut self.consumers[i];
                c.seen_time = now;
                (c.tag, false)
            }
            Err(i) => {
                let tag = self.next_tag;
                self.next_tag = self.next_tag.wrapping_add(1);
                self.consumers.insert(
                    i,
                    Consumer {
                        name: name.into(),
                        tag,
                        seen_time: now,
                        pending: 0,
                    },
                );
                (tag, true)
            }
        }
    }

    /// Creates consumer `name` (XGROUP CREATECONSUMER); false if it exists.
    pub fn consumer_or_create_new(&mut self, name: &[u8], now: u64) -> bool {
        if self.consumer(name).is_some() {
            return false;
        }
        self.consumer_or_create(name, now).1
    }

    /// Deletes consumer `name`, with its pending entries; how many it had, None if absent.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<u64> {
        let i = self
            .consumers
            .binary_search_by(|c| (*c.name).cmp(name))
            .ok()?;
        let c = self.consumers.remove(i);
        self.pel.retain(|p| p.consumer != c.tag);
        Some(c.pending)
    }

    fn pel_pos(&self, id: StreamId) -> Result<usize, usize> {
        self.pel.binary_search_by(|p| p.id.cmp(&id))
    }

    /// The pending entry `id`.
    pub fn pending(&self, id: StreamId) -> Option<&Pending> {
        self.pel_pos(id).ok().map(|i| &self.pel[i])
    }

    fn count(&mut self, tag: u32, delta: i64) {
        if let Some(c) = self.consumers.iter_mut().find(|c| c.tag == tag) {
            c.pending = c.pending.saturating_add_signed(delta);
        }
    }

    /// Removes the pending entry `id` (XACK); true if it was there.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel_pos(id) {
            Ok(i) => {
                let p = self.pel.remove(i);
                self.count(p.consumer, -1);
                true
            }
            Err(_) => false,
        }
    }

    /// Records the delivery of `id` to consumer `tag` at `now` (XREADGROUP `>`): a new
    /// pending entry, or one taken over from its former consumer with its count reset.
    pub fn deliver(&mut self, id: StreamId, tag: u32, now: u64) {
        match self.pel_pos(id) {
            Ok(i) => {
                let old = self.pel[i].consumer;
                self.pel[i] = Pending {
                    id,
                    consumer: tag,
                    delivery_time: now,
                    delivery_count: 1,
                };
                self.count(old, -1);
            }
            Err(i) => self.pel.insert(
                i,
                Pending {
                    id,
                    consumer: tag,
                    delivery_time: now,
                    delivery_count: 1,
                },
            ),
        }
        self.count(tag, 1);
    }

    /// Creates a pending entry with no consumer yet (XCLAIM FORCE); `claim` gives it one.
    pub fn force_pending(&mut self, id: StreamId, now: u64) {
        if let Err(i) = self.pel_pos(id) {
            self.pel.insert(
                i,
                Pending {
                    id,
                    consumer: u32::MAX,
                    delivery_time: now,
                    delivery_count: 1,
                },
            );
        }
    }

    /// Gives pending entry `id` to consumer `tag` with `delivery_time`; the count is set to
    /// `count` if given, else incremented unless `keep_count`.
    pub fn claim(
        &mut self,
        id: StreamId,
        tag: u32,
        delivery_time: u64,
        count: Option<u64>,
        keep_count: bool,
    ) {
        let Ok(i) = self.pel_pos(id) else { return };
        let old = self.pel[i].consumer;
        let p = &mut self.pel[i];
        p.delivery_time = delivery_time;
        match count {
            Some(n) => p.delivery_count = n,
            None if !keep_count => p.delivery_count += 1,
            None => {}
        }
        if old != tag {
            p.consumer = tag;
            self.count(old, -1);
            self.count(tag, 1);
        }
    }

    /// Updates the delivery of a pending entry re-read from history (XREADGROUP with an ID).
    pub fn redeliver(&mut self, id: StreamId, now: u64) {
        if let Ok(i) = self.pel_pos(id) {
            self.pel[i].delivery_time = now;
            self.pel[i].delivery_count += 1;
        }
    }

    /// The pending entries from `start` (by ID), of consumer `tag` if given.
    pub fn pel_from(
        &self,
        start: StreamId,
        tag: Option<u32>,
    ) -> impl Iterator<Item = &Pending> + '_ {
        let lo = self.pel_pos(start).unwrap_or_else(|i| i);
        self.pel[lo..]
            .iter()
            .filter(move |p| tag.is_none_or(|t| p.consumer == t))
    }
}

impl Stream {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there is no entry (an empty stream is still a key, unlike other containers).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes charged: entry and node buffers, field arrays and their bytes. O(1).
    pub fn charge(&self) -> u64 {
        self.buffers() + self.heap
    }

    /// The charge recounted entry by entry and group by group.
    pub fn recompute_charge(&self) -> u64 {
        self.buffers() - self.group_heap
            + self.groups.iter().map(Group::heap).sum::<u64>()
            + self.entries.iter().map(StreamEntry::heap).sum::<u64>()
    }

    fn buffers(&self) -> u64 {
        alloc_size(self.entries.capacity() * size_of::<StreamEntry>())
            + alloc_size(self.nodes.capacity() * size_of::<Node>())
            + alloc_size(self.groups.capacity() * size_of::<Group>())
            + self.group_heap
    }

    /// The consumer groups, by name.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group named `name`.
    pub fn group(&self, name: &[u8]) -> Option<&Group> {
        self.group_pos(name).ok().map(|i| &self.groups[i])
    }

    fn group_pos(&self, name: &[u8]) -> Result<usize, usize> {
        self.groups.binary_search_by(|g| (*g.name).cmp(name))
    }

    /// Runs `f` on group `name` (None if absent) and re-charges the groups
    /// (O(groups + consumers): groups are few).
    pub fn group_mut<R>(
        &mut self,
        name: &[u8],
        f: impl FnOnce(&mut Group, &Stream) -> R,
    ) -> Option<R> {
        let i = self.group_pos(name).ok()?;
        let mut g = std::mem::replace(&mut self.groups[i], Group::new(b"", StreamId::MIN, None));
        let r = f(&mut g, self);
        self.groups[i] = g;
        self.recharge_groups();
        Some(r)
    }

    /// Creates group `name`; false if it exists.
    pub fn create_group(
        &mut self,
        name: &[u8],
        last_id: StreamId,
        entries_read: Option<u64>,
    ) -> bool {
        match self.group_pos(name) {
            Ok(_) => false,
            Err(i) => {
                self.groups
                    .insert(i, Group::new(name, last_id, entries_read));
                self.recharge_groups();
                true
            }
        }
    }

    /// Deletes group `name`; true if it existed.
    pub fn destroy_group(&mut self, name: &[u8]) -> bool {
        match self.group_pos(name) {
            Ok(i) => {
                self.groups.remove(i);
                self.recharge_groups();
                true
            }
            Err(_) => false,
        }
    }

    fn recharge_groups(&mut self) {
        self.group_heap = self.groups.iter().map(Group::heap).sum();
    }

    /// redis `streamRangeHasTombstones` from `start` to the end.
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.is_empty() || self.max_deleted_id == StreamId::MIN {
            return false;
        }
        if self.first_id() > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id
    }

    /// redis `streamEstimateDistanceFromFirstEverEntry`: None when unknown.
    pub fn estimate_entries_read(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.is_empty() && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        let first = self.first_id();
        if self.max_deleted_id == StreamId::MIN || self.max_deleted_id < first {
            if id < first {
                return Some(self.entries_added - self.len() as u64);
            }
            if id == first {
                return Some(self.entries_added - self.len() as u64 + 1);
            }
        }
        None
    }

    /// redis `streamReplyWithCGLag`: None when unknown.
    pub fn lag(&self, g: &Group) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = g.entries_read {
            if !self.has_tombstones_from(g.last_id) {
                return Some(self.entries_added.wrapping_sub(read));
            }
        }
        self.estimate_entries_read(g.last_id)
            .map(|read| self.entries_added.wrapping_sub(read))
    }

    /// The first entry's ID (0-0 when empty).
    pub fn first_id(&self) -> StreamId {
        self.entries.front().map_or(StreamId::MIN, |e| e.id)
    }

    /// The last entry's ID (0-0 when empty), redis `streamLastValidID`.
    pub fn last_entry_id(&self) -> StreamId {
        self.entries.back().map_or(StreamId::MIN, |e| e.id)
    }

    /// The first and last entries.
    pub fn edges(&self) -> (Option<&StreamEntry>, Option<&StreamEntry>) {
        (self.entries.front(), self.entries.back())
    }

    /// Number of radix-tree nodes redis would have (XINFO STREAM FULL shows it).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Appends an entry with `id` (greater than `last_id`, checked by the caller).
    pub fn append(&mut self, id: StreamId, fields: impl Iterator<Item = (Box<[u8]>, Box<[u8]>)>) {
        let entry = StreamEntry {
            id,
            fields: fields.collect(),
        };
        self.heap += entry.heap();
        self.entries.push_back(entry);
        match self.nodes.back_mut() {
            Some(n) if n.live + n.deleted < NODE_MAX_ENTRIES => {
                n.live += 1;
                n.last = id;
            }
            _ => self.nodes.push_back(Node {
                first: id,
                last: id,
                live: 1,
                deleted: 0,
            }),
        }
        self.last_id = id;
        self.entries_added += 1;
    }

    fn position(&self, id: StreamId) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.id.cmp(&id))
    }

    /// Index of the node holding `id`.
    fn node_of(&self, id: StreamId) -> usize {
        self.nodes
            .partition_point(|n| n.first <= id)
            .saturating_sub(1)
    }

    /// The entries node by node (redis's listpacks: what an RDB file holds).
    pub fn node_entries(&self) -> Vec<Vec<&StreamEntry>> {
        let mut it = self.entries.iter();
        self.nodes
            .iter()
            .map(|n| it.by_ref().take(n.live as usize).collect())
            .collect()
    }

    /// Appends a whole node of entries (IDs ascending, above `last_id`), as loaded from an
    /// RDB file: the node keeps its bounds. `last_id` and `entries_added` are the caller's to
    /// set afterwards.
    pub fn push_node(&mut self, entries: Vec<(StreamId, Box<[Field]>)>) {
        let Some(first) = entries.first().map(|e| e.0) else {
            return;
        };
        let mut last = first;
        let live = entries.len() as u32;
        for (id, fields) in entries {
            let entry = StreamEntry { id, fields };
            self.heap += entry.heap();
            self.entries.push_back(entry);
            last = id;
        }
        self.nodes.push_back(Node {
            first,
            last,
            live,
            deleted: 0,
        });
    }

    /// Recreates group `name` as loaded from an RDB file: its pending entries
    /// `(id, delivery time, count)` and its consumers `(name, seen time, their IDs)`.
    pub fn restore_group(
        &mut self,
        name: &[u8],
        last_id: StreamId,
        entries_read: Option<u64>,
        pel: &[(StreamId, u64, u64)],
        consumers: &[(Vec<u8>, u64, Vec<StreamId>)],
    ) {
        if !self.create_group(name, last_id, entries_read) {
            return;
        }
        self.group_mut(name, |g, _| {
            for &(id, time, count) in pel {
                g.force_pending(id, time);
                if let Ok(i) = g.pel_pos(id) {
                    g.pel[i].delivery_count = count;
                }
            }
            for (cname, seen, ids) in consumers {
                let (tag, _) = g.consumer_or_create(cname, *seen);
                for &id in ids {
                    if let Ok(i) = g.pel_pos(id) {
                        g.pel[i].consumer = tag;
                        g.count(tag, 1);
                    }
                }
            }
        });
    }

    /// Deletes the entry `id`; true if it was there (XDEL). Updates `max_deleted_id`.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Ok(pos) = self.position(id) else {
            return false;
        };
        let e = self.entries.remove(pos).expect("found");
        self.heap -= e.heap();
        let n = self.node_of(id);
        let node = &mut self.nodes[n];
        node.live -= 1;
        node.deleted += 1;
        if node.live == 0 {
            self.nodes.remove(n);
        }
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        self.shrink();
        true
    }

    /// redis `streamTrim`: whole nodes from the head, then (exact only) single entries of the
    /// first node left; at most `limit` entries when `limit > 0`. Returns how many went.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        while let Some(node) = self.nodes.front().copied() {
            if let Trim::MaxLen(max) = how {
                if self.entries.len() as u64 <= max {
                    break;
                }
            }
            let live = u64::from(node.live);
            if limit > 0 && deleted + live > limit {
                break;
            }
            let whole = match how {
                Trim::MaxLen(max) => self.entries.len() as u64 - live >= max,
                Trim::MinId(min) => node.last < min,
            };
            if whole {
                for _ in 0..live {
                    self.pop_front();
                }
                self.nodes.pop_front();
                deleted += live;
                continue;
            }
            if approx {
                break;
            }
            let mut from_node = 0u32;
            while from_node < node.live {
                let stop = match how {
                    Trim::MaxLen(max) => self.entries.len() as u64 <= max,
                    Trim::MinId(min) => self.entries.front().is_none_or(|e| e.id >= min),
                };
                if stop {
                    break;
                }
                self.pop_front();
                from_node += 1;
            }
            let n = &mut self.nodes[0];
            n.live -= from_node;
            n.deleted += from_node;
            deleted += u64::from(from_node);
            break;
        }
        self.shrink();
        deleted
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.heap -= e.heap();
        }
    }

    fn shrink(&mut self) {
        let len = self.entries.len();
        if self.entries.capacity() > 8 && len <= self.entries.capacity() / 4 {
            self.entries.shrink_to(len * 2);
        }
        let len = self.nodes.len();
        if self.nodes.capacity() > 8 && len <= self.nodes.capacity() / 4 {
            self.nodes.shrink_to(len * 2);
        }
    }

    /// The entries with `start <= id <= end`, ascending (or descending when `rev`).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
    ) -> Box<dyn Iterator<Item = &StreamEntry> + '_> {
        if start > end {
            return Box::new(std::iter::empty());
        }
        let lo = self.position(start).unwrap_or_else(|i| i);
        let hi = match self.position(end) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        let it = self.entries.range(lo..hi.max(lo));
        if rev {
            Box::new(it.rev())
        } else {
            Box::new(it)
        }
    }

    /// The entry `id`.
    pub fn get(&self, id: StreamId) -> Option<&StreamEntry> {
        self.position(id).ok().map(|i| &self.entries[i])
    }

    /// Every entry, ascending.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &StreamEntry> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    fn add(s: &mut Stream, n: u64) {
        for i in 0..n {
            let ms = s.last_id.ms + 1;
            let _ = i;
            s.append(
                id(ms, 0),
                std::iter::once((b"f".to_vec().into(), vec![7u8; 30].into())),
            );
        }
    }

    #[test]
    fn approximate_trimming_removes_whole_nodes_of_a_hundred() {
        let mut s = Stream::default();
        add(&mut s, 250);
        assert_eq!(s.node_count(), 3);
        assert_eq!(s.trim(Trim::MaxLen(120), true, 0), 100);
        assert_eq!(s.len(), 150);
        assert_eq!(s.trim(Trim::MaxLen(120), false, 0), 30);
        assert_eq!(s.len(), 120);
        assert_eq!(s.first_id(), id(131, 0));
        // The partly trimmed node still counts its deleted entries: it stays full.
        assert!(s.delete(id(200, 0)));
        assert!(!s.delete(id(200, 0)));
        assert_eq!(s.max_deleted_id, id(200, 0));
        assert_eq!(s.trim(Trim::MinId(id(201, 0)), true, 0), 69);
        assert_eq!(s.first_id(), id(201, 0));
        assert_eq!(s.charge(), s.recompute_charge());
        let r: Vec<_> = s
            .range(id(240, 0), StreamId::MAX, true)
            .map(|e| e.id)
            .collect();
        assert_eq!(r.len(), 11);
        assert_eq!(r[0], id(250, 0));
        assert_eq!(id(1, u64::MAX).incr(), Some(id(2, 0)));
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::MIN.decr(), None);
    }
}
