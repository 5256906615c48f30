//! Saving a ring's keys into one RDB file and loading one into any ring.
//!
//! Owns: [`save`] (writes the function libraries' code it is given, then walks every node of
//! a topology stripe chunk by stripe chunk, copying a chunk of items out under one stripe lock
//! and encoding it outside the lock, into a temporary file that is fsynced and renamed over
//! the snapshot, so a crash mid-save never leaves a broken file in place), [`load`] (routes
//! each record through the current ring, so the file is placement-free, and hands each
//! function library's code to the caller's [`Functions`] callback: scripting lives above this
//! layer) and [`check`] (reads a file without serving it).
//! Must not touch: sockets, protocols, scripting, the `ArcSwap` of the server (callers pass the topology
//! they loaded).
//! Invariants: each key is written as it is at the moment its chunk is copied: a snapshot is
//! consistent per key, not a point in time across keys. A save that meets a running migration
//! waits for it to finish first (keys off their owner would otherwise be written twice or
//! missed). Memory beyond the data: one chunk of copied items while saving, one record while
//! loading. memcached flags travel in the file (see `rdb`); CAS ids do not (a loaded item gets
//! a new one).

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::{SaveRule, SnapshotConfig};
use crate::persist::rdb::{
    self, RdbError, Reader, Record, StreamGroup, StreamValue, Value, Writer,
};
use crate::route::topology::Topology;
use crate::store::stream::Field;
use crate::store::{
    Container, Entry, Hash, Item, Kind, List, NEVER, Set, StoreError, Stream, StreamId, ZSet,
};

/// Items copied out of a node per stripe lock hold while saving.
const CHUNK: usize = 256;

/// What a save wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Saved {
    /// Keys written.
    pub keys: u64,
    /// Size of the file.
    pub bytes: u64,
    /// Time the save took.
    pub duration: Duration,
}

/// What a load did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loaded {
    /// Keys stored.
    pub keys: u64,
    /// Keys skipped because their TTL had passed.
    pub expired: u64,
    /// Keys refused because they can never fit in their node.
    pub too_large: u64,
    /// Items evicted while loading, to make room in a node too small for its share.
    pub evicted: u64,
    /// Function libraries in the file, loaded through the caller's callback.
    pub functions: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Time the load took.
    pub duration: Duration,
}

/// Why a save or load failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The snapshot file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not a valid RDB file (nothing after the error was loaded).
    #[error("{path}: {source}")]
    Format {
        /// The snapshot file.
        path: PathBuf,
        /// Where and what.
        source: RdbError,
    },
    /// A function library in the file did not load (as redis, the whole load fails).
    #[error("{path}: RDB offset {offset}: failed loading function library: {what}")]
    Function {
        /// The snapshot file.
        path: PathBuf,
        /// Offset of the record after the library's.
        offset: u64,
        /// Which library and why, as the callback said.
        what: String,
    },
}

/// What loading a snapshot does with a function library's code (the FUNCTION2 records): load
/// it into the server's registry, or only check it. The error names the library and says why.
pub type Functions<'a> = &'a mut dyn FnMut(&[u8]) -> Result<(), String>;

/// The snapshot settings of a server and what its saves did: one save at a time, the `save`
/// rules, and the numbers INFO, LASTSAVE and the metrics show.
pub struct Snapshots {
    /// The `[snapshot]` settings.
    pub config: SnapshotConfig,
    /// Held for the whole of a save: saves never overlap.
    saving: Mutex<()>,
    in_progress: AtomicBool,
    /// Unix seconds of the last successful save (or of the start, before any).
    last_save_unix: AtomicU64,
    last_ok: AtomicBool,
    failures: AtomicU64,
    /// Writes counted at the last save, and when it was.
    base: Mutex<(u64, Instant)>,
    last: Mutex<Saved>,
    /// The `save` rules in force: the config's, until CONFIG SET save replaces them.
    rules: Mutex<Vec<SaveRule>>,
}

impl Snapshots {
    /// The state of a server started at `now_unix` with no save yet.
    pub fn new(config: SnapshotConfig, now_unix: u64) -> Snapshots {
        Snapshots {
            rules: Mutex::new(config.save.clone()),
            config,
            saving: Mutex::new(()),
            in_progress: AtomicBool::new(false),
            last_save_unix: AtomicU64::new(now_unix),
            last_ok: AtomicBool::new(true),
            failures: AtomicU64::new(0),
            base: Mutex::new((0, Instant::now())),
            last: Mutex::new(Saved::default()),
        }
    }

    /// Saves `topology` and the function libraries' `functions` (their code) to the
    /// configured path now (waiting for a save already running). `writes` is the server's
    /// write count at this moment (see [`Snapshots::due`]).
    pub fn save(
        &self,
        topology: &Topology,
        functions: &[Vec<u8>],
        now_unix: u64,
        writes: u64,
    ) -> Result<Saved, SnapshotError> {
        let _one = self.saving.lock();
        self.in_progress.store(true, Ordering::Relaxed);
        let result = save(topology, functions, &self.config.path, now_unix);
        self.in_progress.store(false, Ordering::Relaxed);
        match &result {
            Ok(saved) => {
                *self.last.lock() = *saved;
                *self.base.lock() = (writes, Instant::now());
                self.last_save_unix.store(now_unix, Ordering::Relaxed);
                self.last_ok.store(true, Ordering::Relaxed);
            }
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.last_ok.store(false, Ordering::Relaxed);
            }
        }
        result
    }

    /// Counts from `writes` on: what a start just loaded is not a change to save again.
    pub fn loaded(&self, writes: u64) {
        *self.base.lock() = (writes, Instant::now());
    }

    /// Whether a `save` rule asks for a snapshot, given the server's write count now (items
    /// stored since start, summed over the nodes: deletes and expiries do not count).
    pub fn due(&self, writes: u64) -> bool {
        let (base, at) = *self.base.lock();
        let changes = writes.saturating_sub(base);
        let elapsed = at.elapsed();
        self.rules
            .lock()
            .iter()
            .any(|r| changes >= r.changes && elapsed >= r.after)
    }

    /// The `save` rules in force.
    pub fn rules(&self) -> Vec<SaveRule> {
        self.rules.lock().clone()
    }

    /// Replaces the `save` rules (CONFIG SET save), until the next restart.
    pub fn set_rules(&self, rules: Vec<SaveRule>) {
        *self.rules.lock() = rules;
    }

    /// True while a save runs.
    pub fn in_progress(&self) -> bool {
        self.in_progress.load(Ordering::Relaxed)
    }

    /// Unix seconds of the last successful save (LASTSAVE).
    pub fn last_save_unix(&self) -> u64 {
        self.last_save_unix.load(Ordering::Relaxed)
    }

    /// Whether the last save succeeded (INFO `rdb_last_bgsave_status`).
    pub fn last_ok(&self) -> bool {
        self.last_ok.load(Ordering::Relaxed)
    }

    /// Saves that failed since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// What the last successful save wrote.
    pub fn last(&self) -> Saved {
        *self.last.lock()
    }

    /// Writes since the last save (INFO `rdb_changes_since_last_save`).
    pub fn changes_since(&self, writes: u64) -> u64 {
        writes.saturating_sub(self.base.lock().0)
    }
}

/// The write count [`Snapshots`] measures its rules with: items stored, summed over the nodes.
pub fn writes(topology: &Topology) -> u64 {
    topology.nodes.iter().map(|n| n.stats().total_items).sum()
}

/// Writes every function library of `functions` (their code) and every live key of
/// `topology` to `path` (through `path.tmp`, fsynced, renamed). `ctime_s` is the unix time
/// written in the `ctime` AUX field.
pub fn save(
    topology: &Topology,
    functions: &[Vec<u8>],
    path: &Path,
    ctime_s: u64,
) -> Result<Saved, SnapshotError> {
    let started = Instant::now();
    let topology = settled(topology);
    let used: u64 = topology.nodes.iter().map(|n| n.stats().used_bytes).sum();
    let (ctime, used) = (ctime_s.to_string(), used.to_string());
    let aux = [
        ("redis-ver", "7.0.0"),
        ("redis-bits", "64"),
        ("ctime", ctime.as_str()),
        ("used-mem", used.as_str()),
    ];
    let tmp = temp_path(path);
    let io_err = |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    };
    let result = (|| -> io::Result<u64> {
        let file = File::create(&tmp)?;
        let mut w = Writer::new(BufWriter::with_capacity(1 << 20, file), &aux)?;
        // Where redis 7.0 writes them: after the AUX fields, before the first database.
        for code in functions {
            w.function(code)?;
        }
        let keys: u64 = topology.nodes.iter().map(|n| n.len()).sum();
        w.select_db(0, keys, 0)?;
        let mut written = 0u64;
        let mut chunk: Vec<Record> = Vec::with_capacity(CHUNK);
        for node in &topology.nodes {
            let mut cursor = 0;
            loop {
                chunk.clear();
                cursor = node.walk(cursor, CHUNK, |key, item| chunk.push(record(key, &item)));
                for r in &chunk {
                    w.record(r)?;
                }
                written += chunk.len() as u64;
                if cursor == 0 {
                    break;
                }
                // The saver runs beside the workers, often on the same cores: giving the CPU
                // back after every chunk keeps a request from waiting a whole scheduler slice
                // (milliseconds) behind it, so BGSAVE costs request latency one chunk at most.
                std::thread::yield_now();
            }
        }
        let out = w.finish()?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(written)
    })();
    let keys = match result {
        Ok(k) => k,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(e));
        }
    };
    std::fs::rename(&tmp, path).map_err(io_err)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable once the directory is.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    let bytes = std::fs::metadata(path).map_err(io_err)?.len();
    Ok(Saved {
        keys,
        bytes,
        duration: started.elapsed(),
    })
}

/// Loads `path` into `topology`: each key goes to its owner on the current ring; keys whose
/// TTL passed (by `now_ms`) are skipped; a node without room evicts as it would under writes.
/// Each function library's code goes to `functions` as it is read; one that fails fails the
/// load. On a format error, the keys before it stay loaded and the error says where it
/// stopped.
pub fn load(
    topology: &Topology,
    path: &Path,
    now_ms: u64,
    functions: Functions<'_>,
) -> Result<Loaded, SnapshotError> {
    let started = Instant::now();
    let file = File::open(path).map_err(|source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = Reader::new(BufReader::with_capacity(1 << 20, file)).map_err(|source| {
        SnapshotError::Format {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let file_len = std::fs::metadata(path).map_or(0, |m| m.len());
    let evictions = |t: &Topology| t.nodes.iter().map(|n| n.stats().evictions).sum::<u64>();
    let evicted_before = evictions(topology);
    let mut loaded = Loaded::default();
    let mut progress = (started, 0u64, 0u64);
    loop {
        if loaded.keys % 65_536 == 65_535 && progress.0.elapsed() >= Duration::from_secs(1) {
            // Big files: keys and bytes per second, about once a second.
            let (at, keys, bytes) = progress;
            let secs = at.elapsed().as_secs_f64();
            tracing::info!(
                keys = loaded.keys,
                mb = reader.offset() >> 20,
                keys_per_s = ((loaded.keys - keys) as f64 / secs) as u64,
                mb_per_s = format!("{:.1}", (reader.offset() - bytes) as f64 / secs / 1048576.0),
                "loading snapshot"
            );
            progress = (Instant::now(), loaded.keys, reader.offset());
        }
        let record = reader
            .next_record()
            .map_err(|source| SnapshotError::Format {
                path: path.to_path_buf(),
                source,
            })?;
        loaded.functions += take_functions(&mut reader, path, functions)?;
        if let Some(keys) = reader.db_size.take() {
            reserve(topology, keys, file_len);
        }
        let Some(r) = record else { break };
        let expire_at = match r.expire_ms {
            Some(at) if at <= now_ms => {
                loaded.expired += 1;
                continue;
            }
            // 0 means "never" in the store; a key due at the epoch has long expired.
            Some(at) => at,
            None => NEVER,
        };
        let stored = topology.entry(&r.key, |e| store(e, r.value, r.flags, expire_at));
        match stored {
            Ok(()) => loaded.keys += 1,
            Err(StoreError::OutOfMemory | StoreError::WrongType) => loaded.too_large += 1,
        }
    }
    for node in &topology.nodes {
        node.trim();
    }
    loaded.evicted = evictions(topology) - evicted_before;
    loaded.bytes = reader.offset();
    loaded.duration = started.elapsed();
    Ok(loaded)
}

/// Sizes each node for its share (by weight) of the `keys` a file of `file_len` bytes says it
/// holds (RESIZEDB), so that loading does not regrow and rehash the stripes step by step. The
/// count comes from the file: it is believed only as far as the file could hold that many keys.
fn reserve(topology: &Topology, keys: u64, file_len: u64) {
    // The smallest record (a one-byte key, an empty string) takes 3 bytes.
    let keys = keys.min(file_len / 3);
    if keys == 0 {
        return;
    }
    let item_bytes = file_len / keys;
    let total: u64 = (0..topology.nodes.len())
        .map(|i| u64::from(topology.weight(i)))
        .sum();
    for (i, node) in topology.nodes.iter().enumerate() {
        let share = keys * u64::from(topology.weight(i)) / total.max(1);
        node.reserve(share, item_bytes);
    }
}

/// Hands the function libraries the reader has met to `functions`; how many.
fn take_functions<R: io::Read>(
    reader: &mut Reader<R>,
    path: &Path,
    functions: Functions<'_>,
) -> Result<u64, SnapshotError> {
    let mut n = 0;
    for code in std::mem::take(&mut reader.functions) {
        functions(&code).map_err(|what| SnapshotError::Function {
            path: path.to_path_buf(),
            offset: reader.offset(),
            what,
        })?;
        n += 1;
    }
    Ok(n)
}

/// Reads `path` to its end without storing anything: the number of keys and the bytes read
/// (function libraries are read and not checked: see [`check_with`]).
pub fn check(path: &Path) -> Result<(u64, u64), SnapshotError> {
    check_with(path, &mut |_| Ok(()))
}

/// [`check`], handing each function library's code to `functions` (to check it).
pub fn check_with(path: &Path, functions: Functions<'_>) -> Result<(u64, u64), SnapshotError> {
    let file = File::open(path).map_err(|source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |source| SnapshotError::Format {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = Reader::new(BufReader::with_capacity(1 << 20, file)).map_err(format)?;
    let mut keys = 0;
    loop {
        let record = reader.next_record().map_err(format)?;
        take_functions(&mut reader, path, functions)?;
        if record.is_none() {
            break;
        }
        keys += 1;
    }
    Ok((keys, reader.offset()))
}

/// The newest topology with no migration running (waits for the migrator to finish).
fn settled(topology: &Topology) -> &Topology {
    let mut t = topology.newest();
    while t.is_migrating() {
        std::thread::sleep(Duration::from_millis(10));
        t = t.newest();
    }
    t
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// A copy of one store item as an RDB record.
fn record(key: &[u8], item: &Item<'_>) -> Record {
    let meta = item.meta();
    let value = value_of(item);
    debug_assert_eq!(item.kind() == Kind::Str, matches!(value, Value::String(_)));
    Record {
        db: 0,
        key: key.to_vec(),
        value,
        expire_ms: (meta.expire_at != NEVER).then_some(meta.expire_at),
        flags: if item.kind() == Kind::Str {
            meta.flags
        } else {
            0
        },
    }
}

/// Stores `value` (with memcached `flags` for a string) as the entry's item, replacing any.
pub fn store(
    e: &mut Entry<'_>,
    value: Value,
    flags: u32,
    expire_at: u64,
) -> Result<(), StoreError> {
    match value {
        Value::String(s) => e.put(&[&s], flags, expire_at, None).map(drop),
        other => e.put_container(container(other), expire_at).map(drop),
    }
}

/// A copy of one store item's value (DUMP, snapshots).
pub fn value_of(item: &Item<'_>) -> Value {
    match item.container() {
        None => Value::String(item.value().to_vec()),
        Some(Container::List(l)) => Value::List(l.iter().map(<[u8]>::to_vec).collect()),
        Some(Container::Set(s)) => Value::Set(s.iter().map(<[u8]>::to_vec).collect()),
        Some(Container::Hash(h)) => {
            Value::Hash(h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect())
        }
        Some(Container::ZSet(z)) => Value::ZSet(z.iter().map(|(m, s)| (m.to_vec(), s)).collect()),
        Some(Container::Stream(st)) => Value::Stream(Box::new(stream_value(st))),
    }
}

fn id(i: StreamId) -> rdb::Id {
    (i.ms, i.seq)
}

fn sid(i: rdb::Id) -> StreamId {
    StreamId { ms: i.0, seq: i.1 }
}

/// A store stream in RDB's neutral form.
fn stream_value(st: &Stream) -> StreamValue {
    let nodes = st
        .node_entries()
        .into_iter()
        .map(|n| {
            n.into_iter()
                .map(|e| {
                    let fields = e
                        .fields
                        .iter()
                        .map(|(f, v)| (f.to_vec(), v.to_vec()))
                        .collect();
                    (id(e.id), fields)
                })
                .collect()
        })
        .collect();
    let groups = st
        .groups()
        .iter()
        .map(|g| StreamGroup {
            name: g.name.to_vec(),
            last_id: id(g.last_id),
            entries_read: g.entries_read,
            pel: g
                .pel
                .iter()
                .map(|p| (id(p.id), p.delivery_time, p.delivery_count))
                .collect(),
            consumers: g
                .consumers
                .iter()
                .map(|c| {
                    let ids = g
                        .pel
                        .iter()
                        .filter(|p| p.consumer == c.tag)
                        .map(|p| id(p.id))
                        .collect();
                    (c.name.to_vec(), c.seen_time, ids)
                })
                .collect(),
        })
        .collect();
    StreamValue {
        nodes,
        last_id: id(st.last_id),
        first_id: id(st.first_id()),
        max_deleted_id: id(st.max_deleted_id),
        entries_added: st.entries_added,
        groups,
    }
}

/// A store stream from RDB's neutral form.
fn stream_of(v: StreamValue) -> Stream {
    let mut st = Stream::default();
    for node in v.nodes {
        st.push_node(
            node.into_iter()
                .map(|(i, fields)| {
                    let fields: Box<[Field]> = fields
                        .into_iter()
                        .map(|(f, v)| (f.into_boxed_slice(), v.into_boxed_slice()))
                        .collect();
                    (sid(i), fields)
                })
                .collect(),
        );
    }
    st.last_id = sid(v.last_id);
    st.max_deleted_id = sid(v.max_deleted_id);
    st.entries_added = v.entries_added;
    for g in v.groups {
        let pel: Vec<_> = g.pel.iter().map(|&(i, t, n)| (sid(i), t, n)).collect();
        let consumers: Vec<_> = g
            .consumers
            .into_iter()
            .map(|(name, seen, ids)| (name, seen, ids.into_iter().map(sid).collect()))
            .collect();
        st.restore_group(&g.name, sid(g.last_id), g.entries_read, &pel, &consumers);
    }
    st
}

/// A store container holding `value` (not a string), built in one pass: each element's buffer
/// becomes the store's without a copy, indexes are sized once and hash each element once.
fn container(value: Value) -> Container {
    match value {
        Value::String(_) => unreachable!("strings are stored with put"),
        Value::List(items) => Container::List(List::from_items(items)),
        Value::Set(items) => Container::Set(Set::from_members(items)),
        Value::Hash(pairs) => Container::Hash(Hash::from_pairs(pairs)),
        Value::ZSet(pairs) => {
            let mut z = ZSet::with_capacity(pairs.len());
            for (m, s) in &pairs {
                z.insert(m, *s);
            }
            Container::ZSet(z)
        }
        Value::Stream(st) => Container::Stream(Box::new(stream_of(*st))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::{NodeConfig, RingConfig};
    use crate::route::ring::HashKind;
    use crate::store::Clock;

    const NOW: u64 = 1_800_000_000_000;

    fn ring(names: &[&str]) -> Topology {
        ring_of(names, 64 << 20)
    }

    fn ring_of(names: &[&str], max_memory: u64) -> Topology {
        let specs: Vec<NodeConfig> = names
            .iter()
            .map(|n| NodeConfig {
                name: (*n).into(),
                max_memory,
                weight: 1,
                remote: None,
            })
            .collect();
        let cfg = RingConfig {
            hash: HashKind::default(),
            points_per_weight: 160,
            hash_tags: Some(*b"{}"),
        };
        Topology::build(1, &cfg, &specs, &[], &Clock::mock(NOW))
    }

    fn dump(t: &Topology) -> Vec<Record> {
        let mut all = Vec::new();
        for node in &t.nodes {
            node.walk(0, usize::MAX, |k, item| {
                let mut r = record(k, &item);
                if let Value::Set(m) = &mut r.value {
                    m.sort();
                }
                if let Value::Hash(p) = &mut r.value {
                    p.sort();
                }
                all.push(r);
            });
        }
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }

    #[test]
    fn a_stream_with_groups_survives_save_and_load() {
        let id = |ms| StreamId { ms, seq: 0 };
        let mut st = Stream::default();
        for ms in 1..=150 {
            st.append(
                id(ms),
                std::iter::once((b"n".to_vec().into(), ms.to_string().into_bytes().into())),
            );
        }
        assert!(st.delete(id(7)));
        st.create_group(b"g", id(10), Some(9));
        st.group_mut(b"g", |g, _| {
            let (alice, _) = g.consumer_or_create(b"alice", NOW);
            g.deliver(id(9), alice, NOW - 5);
            g.deliver(id(10), alice, NOW - 4);
            g.consumer_or_create(b"bob", NOW - 1);
        });
        let three = ring(&["a", "b", "c"]);
        three.entry(b"s", |e| {
            e.put_container(Container::Stream(Box::new(st)), NEVER)
                .expect("fits")
        });
        let saved = dump(&three);
        let one = ring(&["x"]);
        for r in &saved {
            one.entry(&r.key, |e| store(e, r.value.clone(), r.flags, NEVER))
                .expect("store");
        }
        assert_eq!(dump(&one), saved);
        one.entry(b"s", |e| {
            let item = e.item().expect("loaded");
            let Some(Container::Stream(s)) = item.container() else {
                panic!("not a stream")
            };
            assert_eq!(s.len(), 149);
            assert_eq!(s.node_count(), 2);
            assert_eq!(s.max_deleted_id, id(7));
            let g = s.group(b"g").expect("group");
            assert_eq!((g.pel.len(), g.consumers.len()), (2, 2));
            assert_eq!(g.consumer(b"alice").map(|c| c.pending), Some(2));
            let c = item.container().expect("container");
            assert_eq!(c.charge(), c.recompute_charge());
        });
    }

    #[test]
    fn a_ring_of_three_restores_into_five_and_into_one() {
        let three = ring(&["a", "b", "c"]);
        for i in 0..2000u32 {
            let key = format!("k{i}");
            three.entry(key.as_bytes(), |e| {
                let expire = if i % 3 == 0 { NOW + 60_000 } else { NEVER };
                match i % 5 {
                    0 => e.put(&[b"v", key.as_bytes()], i, expire, None).map(drop),
                    1 => {
                        let mut h = Hash::default();
                        h.insert(b"f", key.as_bytes());
                        e.put_container(Container::Hash(h), expire).map(drop)
                    }
                    2 => {
                        let mut z = ZSet::default();
                        z.insert(key.as_bytes(), f64::from(i));
                        z.insert(b"m", -1.5);
                        e.put_container(Container::ZSet(z), expire).map(drop)
                    }
                    3 => {
                        let mut s = Set::default();
                        s.insert(b"x");
                        s.insert(key.as_bytes());
                        e.put_container(Container::Set(s), expire).map(drop)
                    }
                    _ => {
                        let l = [b"a".to_vec(), key.clone().into_bytes()]
                            .into_iter()
                            .map(Vec::into_boxed_slice)
                            .collect();
                        e.put_container(Container::List(l), expire).map(drop)
                    }
                }
                .expect("fits")
            });
        }
        let dir = std::env::temp_dir().join(format!("ringcache-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("dump.rdb");
        let saved = save(&three, &[], &path, NOW / 1000).expect("save");
        assert_eq!(saved.keys, 2000);
        assert_eq!(check(&path).expect("check").0, 2000);
        let want = dump(&three);
        for names in [&["p", "q", "r", "s", "t"][..], &["solo"]] {
            let t = ring(names);
            let loaded = load(&t, &path, NOW, &mut |_| Ok(())).expect("load");
            assert_eq!(loaded.keys, 2000);
            assert_eq!(dump(&t).len(), want.len());
            for (got, want) in dump(&t).iter().zip(&want) {
                assert_eq!(got.key, want.key);
                assert_eq!(got.value, want.value);
                assert_eq!((got.expire_ms, got.flags), (want.expire_ms, want.flags));
            }
            for node in &t.nodes {
                node.validate().expect("valid");
                node.walk(0, usize::MAX, |k, _| {
                    assert!(Arc::ptr_eq(t.node_for(k), node), "key off its owner");
                });
            }
        }
        // Loaded later than the TTL: those keys are skipped.
        let late = load(&ring(&["x"]), &path, NOW + 120_000, &mut |_| Ok(())).expect("load");
        assert_eq!((late.keys, late.expired), (2000 - 667, 667));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The stripes are sized from RESIZEDB before the keys arrive; a node too small for the
    /// file still evicts as under writes, stays within its budget, and the load says how many
    /// items it dropped; what the reservation did not use is given back.
    #[test]
    fn a_load_sizes_the_nodes_once_and_a_small_node_evicts() {
        let big = ring(&["a", "b"]);
        for i in 0..30_000u32 {
            big.entry(format!("key:{i}").as_bytes(), |e| {
                e.put(&[&[b'x'; 100]], 0, NEVER, None).map(drop)
            })
            .expect("fits");
        }
        let dir = std::env::temp_dir().join(format!("ringcache-reserve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("dump.rdb");
        save(&big, &[], &path, NOW / 1000).expect("save");

        let roomy = ring(&["p", "q", "r"]);
        let loaded = load(&roomy, &path, NOW, &mut |_| Ok(())).expect("load");
        assert_eq!((loaded.keys, loaded.evicted), (30_000, 0));
        for node in &roomy.nodes {
            node.validate().expect("valid");
            // Nearly all of the slab holds items: the reservation was trimmed.
            let stats = node.stats();
            let slack = node.fixed_bytes() / crate::store::node::SLOT_BYTES;
            assert!(
                slack < stats.items / 2,
                "{slack} free slots for {}",
                stats.items
            );
        }

        let small = ring_of(&["tiny"], 1 << 20);
        let loaded = load(&small, &path, NOW, &mut |_| Ok(())).expect("load");
        assert!(loaded.evicted > 0, "{loaded:?}");
        let node = &small.nodes[0];
        node.validate().expect("valid");
        assert!(node.used_bytes() <= node.max_memory());
        assert_eq!(node.len(), loaded.keys - loaded.evicted);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
