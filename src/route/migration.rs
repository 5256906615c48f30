//! Migration state: the earlier rings a topology is draining, and how one key is consolidated
//! onto its owner while a migration runs.
//!
//! Owns: [`Migration`] (the earlier rings whose owners may still hold keys, and progress),
//! [`Previous`], [`Progress`], the rebalance counters ([`Ledger`]), a key's holders
//! ([`holders`]), the nodes to drain ([`sources`]) and the per-key consolidation
//! ([`consolidate`]) that `Topology::entry` runs while a migration is in progress.
//! Must not touch: `Topology` (it imports this module, never the reverse), sockets, the
//! `ArcSwap` of the server. The background driver that walks the previous rings is
//! `rebalance`.
//!
//! # Protocol
//!
//! A topology T(g) that replaced T(g-1) keeps a list of *previous rings*, newest first:
//! R(g-1), plus the rings T(g-1) itself was still draining. For a key k, its *holders* are its
//! owner O(g) on the current ring followed by its owners on the previous rings (distinct nodes,
//! in that order). Only holders can have a copy of k, and a copy on an earlier holder in that
//! list is never older than a copy on a later one.
//!
//! Every access to k while the migration runs (reads, writes, deletes: `Topology::entry` cannot
//! tell them apart, and needs not) locks k's stripe in **all** its holders at once
//! (`Node::entry_many`, in node-address order, which rules out deadlock) and, under those locks,
//! *consolidates* k: walking the holders in order, the first copy found stays on, or moves to,
//! the owner (insert-if-absent: an owner copy is always the newest, so it is never overwritten)
//! and every later copy is dropped as stale; then the request's closure runs on the owner's
//! entry, still under the same locks. The background migrator (`rebalance::run`) walks every node of the previous
//! rings in chunks and consolidates each key found on a node that does not own it.
//!
//! Why this is race-free:
//! - **No miss caused by the move**: a consolidation is atomic over all of k's holders, so no
//!   access can ever observe k in transit (in none of them); the closure always runs after k
//!   was brought to the owner.
//! - **No older value overwrites a newer one**: writes only ever go to the owner, after
//!   consolidation, so after any write k lives on the owner only; copies on later holders
//!   predate it and are dropped, never moved over it.
//! - **Deletes and flushes stick**: a delete runs after consolidation, when the owner has the
//!   only copy, so nothing is left to come back. `Topology::flush` covers draining nodes too.
//! - **Stale snapshots**: a request may have loaded T(g-1) just before T(g) was published.
//!   Reload marks T(g-1) superseded before publishing T(g), and every access checks that mark
//!   under the key's lock(s) and, if set, redoes the access on the newest topology. A move out
//!   of a node happens under that node's stripe lock and after the mark was set, so a stale
//!   request either finished before the move (and the move carries its write) or sees the
//!   mark. Hence no node gains a copy of k except through the current owner, which keeps the
//!   holder-order invariant above.
//! - **Further reloads** restart the migration against the newest ring: the new topology's
//!   previous rings include the old one's unfinished list, the old migrator stops at its next
//!   chunk (superseded), and the new one walks every node that may still hold moved keys.
//! - A migration **finishes** when the migrator walked every node of the previous rings:
//!   `Node::walk` sees every item present for the whole walk, and no new copy can appear off
//!   its owner, so nothing is left to move. The previous rings are then dropped, which drops
//!   nodes removed from the ring (their memory is released once no request uses them).
//!
//! Cost: while a migration runs, keys whose owner changed take all their holders' locks on
//! every access (typically two); keys whose owner did not change, and every access once the
//! migration is done, take the plain single-lock path plus one atomic load. The migrator holds
//! one stripe lock only to copy out a chunk of `rebalance::CHUNK` keys, consolidates them one by one and
//! yields (or rests `rebalance.pause`) between chunks, so request latency stays flat.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwapOption, Guard};

use crate::route::ring::Ring;
use crate::store::{Entry, Node};

/// Rebalance counters of one server, shared by all its topology generations.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Items moved to a new owner (by the migrator or by read repair), ever.
    pub keys_moved: AtomicU64,
    /// Bytes (item charges) moved, ever.
    pub bytes_moved: AtomicU64,
    /// A migration is running.
    pub in_progress: AtomicBool,
    /// Duration of the last finished migration, in microseconds.
    pub last_duration_us: AtomicU64,
}

/// An earlier ring whose owners may still hold keys, with its nodes (indexed like its ring).
pub struct Previous {
    /// Its generation.
    pub generation: u64,
    /// Its placement.
    pub ring: Ring,
    /// Its nodes, in its config order.
    pub nodes: Vec<Arc<Node>>,
}

/// The migration of one topology from its previous rings.
pub struct Migration {
    /// True until the migrator has drained every previous ring.
    draining: AtomicBool,
    /// Previous rings, newest first; None once drained.
    previous: ArcSwapOption<Vec<Arc<Previous>>>,
    /// Generations of the previous rings (kept for progress reports after they are dropped).
    from: Vec<u64>,
    started: Instant,
    keys_to_scan: AtomicU64,
    keys_scanned: AtomicU64,
    keys_moved: AtomicU64,
    bytes_moved: AtomicU64,
    /// Microseconds from start to finish; 0 while running.
    duration_us: AtomicU64,
}

/// A snapshot of a migration's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Generations of the rings being (or that were) drained, newest first.
    pub from_generations: Vec<u64>,
    /// Items on the nodes to walk when the walk started.
    pub keys_to_scan: u64,
    /// Items the walk has looked at so far.
    pub keys_scanned: u64,
    /// Items moved to their new owner so far (walk and read repair).
    pub keys_moved: u64,
    /// Bytes moved so far.
    pub bytes_moved: u64,
    /// Time since the migration started, or its total duration once done.
    pub elapsed: Duration,
    /// True once every previous ring is drained.
    pub done: bool,
}

impl Migration {
    /// A running migration from `previous` (newest first, non-empty).
    pub fn new(previous: Vec<Arc<Previous>>) -> Migration {
        Migration {
            draining: AtomicBool::new(true),
            from: previous.iter().map(|p| p.generation).collect(),
            previous: ArcSwapOption::from_pointee(previous),
            started: Instant::now(),
            keys_to_scan: AtomicU64::new(0),
            keys_scanned: AtomicU64::new(0),
            keys_moved: AtomicU64::new(0),
            bytes_moved: AtomicU64::new(0),
            duration_us: AtomicU64::new(0),
        }
    }

    /// True until every previous ring is drained.
    #[inline]
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// The previous rings (a cheap guard), None once drained.
    #[inline]
    pub(crate) fn previous(&self) -> Guard<Option<Arc<Vec<Arc<Previous>>>>> {
        self.previous.load()
    }

    /// The previous rings, None once drained.
    pub(crate) fn previous_full(&self) -> Option<Arc<Vec<Arc<Previous>>>> {
        self.previous.load_full()
    }

    /// Progress so far.
    pub fn progress(&self) -> Progress {
        let done = !self.is_draining();
        let elapsed = if done {
            Duration::from_micros(self.duration_us.load(Ordering::Relaxed))
        } else {
            self.started.elapsed()
        };
        Progress {
            from_generations: self.from.clone(),
            keys_to_scan: self.keys_to_scan.load(Ordering::Relaxed),
            keys_scanned: self.keys_scanned.load(Ordering::Relaxed),
            keys_moved: self.keys_moved.load(Ordering::Relaxed),
            bytes_moved: self.bytes_moved.load(Ordering::Relaxed),
            elapsed,
            done,
        }
    }

    /// Records how many items the walk will look at (set once when the walk starts).
    pub(crate) fn set_keys_to_scan(&self, n: u64) {
        self.keys_to_scan.store(n, Ordering::Relaxed);
    }

    /// Counts `n` items the walk looked at.
    pub(crate) fn add_scanned(&self, n: u64) {
        self.keys_scanned.fetch_add(n, Ordering::Relaxed);
    }

    /// Marks the migration done: records its duration, stops consolidation and drops the
    /// previous rings (and so the nodes removed from the ring, once no request uses them).
    /// Returns how long it took.
    pub(crate) fn finish(&self) -> Duration {
        let took = self.started.elapsed();
        self.duration_us
            .store(took.as_micros() as u64, Ordering::Relaxed);
        self.draining.store(false, Ordering::Release);
        self.previous.store(None);
        took
    }

    fn count_move(&self, ledger: &Ledger, bytes: u64) {
        self.keys_moved.fetch_add(1, Ordering::Relaxed);
        self.bytes_moved.fetch_add(bytes, Ordering::Relaxed);
        ledger.keys_moved.fetch_add(1, Ordering::Relaxed);
        ledger.bytes_moved.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// The holders of `key`: `owner`, then its owners on the previous rings (newest first), then
/// `extra`, each node once.
pub(crate) fn holders<'a>(
    previous: &'a [Arc<Previous>],
    owner: &'a Node,
    key: &[u8],
    extra: Option<&'a Node>,
) -> Vec<&'a Node> {
    let mut nodes: Vec<&Node> = Vec::with_capacity(previous.len() + 2);
    nodes.push(owner);
    let earlier = previous
        .iter()
        .map(|p| &*p.nodes[p.ring.lookup(key)])
        .chain(extra);
    for node in earlier {
        if !nodes.iter().any(|n| std::ptr::eq(*n, node)) {
            nodes.push(node);
        }
    }
    nodes
}

/// Every node of `previous` once, newest ring first, each ring in its config order: the nodes
/// that may hold keys off their owner while a migration runs (the migrator walks them, and so
/// does SCAN). The order is fixed for a given `previous`.
pub(crate) fn sources(previous: &[Arc<Previous>]) -> Vec<&Arc<Node>> {
    let mut sources: Vec<&Arc<Node>> = Vec::new();
    for node in previous.iter().flat_map(|p| &p.nodes) {
        if !sources.iter().any(|n| Arc::ptr_eq(n, node)) {
            sources.push(node);
        }
    }
    sources
}

/// Consolidates a key over its holders' entries (`entries[0]` is the owner, the rest in holder
/// order), all locked: the first copy found is the newest; it stays on or moves to the owner,
/// every other copy is dropped.
pub(crate) fn consolidate(entries: &mut [Entry<'_>], migration: &Migration, ledger: &Ledger) {
    let Some((owner, rest)) = entries.split_first_mut() else {
        return;
    };
    let mut found = owner.item().is_some();
    for e in rest {
        if e.item().is_none() {
            continue;
        }
        if found {
            e.remove();
            continue;
        }
        found = true;
        if let Some(moved) = e.take() {
            let bytes = moved.charge();
            // Out of memory: the owner cannot hold the item at all; it is dropped, like a set
            // that cannot fit (and the older copies after it are still dropped as stale).
            if owner.put_moved(moved).is_ok() {
                migration.count_move(ledger, bytes);
            }
        }
    }
}
