//! The topology: one immutable snapshot of (generation, ring, nodes), plus the migration from
//! the rings before it while their keys are being moved.
//!
//! Owns: mapping a key to its node for a given ring, and [`Topology::entry`], the one routing
//! entry point every protocol handler uses. While a migration runs, `entry` consolidates the key
//! onto its owner first (see `migration.rs`), so handlers never know a migration is running.
//! Must not touch: sockets, parsing, the `ArcSwap` that publishes it (that is `app`'s and
//! `reload`'s job).
//! Invariants: `ring.len() == nodes.len()`, and `ring.lookup` indexes `nodes` in config order.
//! A topology is superseded at most once ([`Topology::supersede`], before its successor is
//! published); every access checks for that under the key's stripe lock and, if superseded,
//! runs on the newest topology instead, so no request writes through a stale ring once keys
//! may be moving away from it.

use std::sync::{Arc, OnceLock};

use crate::config::{NodeConfig, RingConfig};
use crate::route::migration::{self, Ledger, Migration, Previous, Progress};
use crate::route::remote::Member;
use crate::route::ring::{DEFAULT_POINTS_PER_WEIGHT, HashKind, Ring};
use crate::store::{Clock, Entry, Locked, Node};

/// An immutable view of the ring and the nodes it routes to.
pub struct Topology {
    /// Bumped on every applied reload; 1 for the first ring.
    pub generation: u64,
    /// Placement of keys on `nodes`.
    pub ring: Ring,
    /// The nodes, in config order. A remote member has an empty node here (no budget, never
    /// routed to: its keys are forwarded), so that indexes stay those of the ring.
    pub nodes: Vec<Arc<Node>>,
    /// The remote members, at their ring index (None for an in-process node).
    remotes: Vec<Option<Arc<Member>>>,
    /// True when any member is remote: sessions check it once per request.
    has_remote: bool,
    /// Weight of each node, as configured.
    weights: Vec<u32>,
    /// Ring settings this topology was built with.
    ring_config: RingConfig,
    /// The topology that replaced this one, once it has been.
    next: OnceLock<Arc<Topology>>,
    /// Keys of earlier rings still being moved to their owner here; None if never needed.
    migration: Option<Migration>,
    /// Rebalance counters of the server, shared by every generation.
    ledger: Arc<Ledger>,
}

impl Topology {
    /// Builds generation `generation` for `specs`, reusing a node from `existing` when its name
    /// matches (so its data survives) and creating empty nodes for new names. No migration.
    pub fn build(
        generation: u64,
        ring: &RingConfig,
        specs: &[NodeConfig],
        existing: &[Arc<Node>],
        clock: &Clock,
    ) -> Topology {
        Topology::build_with(generation, ring, specs, existing, &[], clock)
    }

    /// [`Topology::build`], also reusing remote members of `members` whose name and settings
    /// are unchanged (their connections stay open).
    pub fn build_with(
        generation: u64,
        ring: &RingConfig,
        specs: &[NodeConfig],
        existing: &[Arc<Node>],
        members: &[Arc<Member>],
        clock: &Clock,
    ) -> Topology {
        let remotes: Vec<Option<Arc<Member>>> = specs
            .iter()
            .map(|spec| {
                let settings = spec.remote.as_ref()?;
                Some(
                    members
                        .iter()
                        .find(|m| m.name() == spec.name && m.matches(settings))
                        .cloned()
                        .unwrap_or_else(|| Arc::new(Member::new(&spec.name, settings))),
                )
            })
            .collect();
        let nodes: Vec<Arc<Node>> = specs
            .iter()
            .map(
                |spec| match existing.iter().find(|n| n.name() == spec.name) {
                    Some(node) => {
                        if node.max_memory() != spec.max_memory {
                            node.set_max_memory(spec.max_memory);
                        }
                        Arc::clone(node)
                    }
                    None => Arc::new(Node::new(&spec.name, spec.max_memory, clock.clone())),
                },
            )
            .collect();
        let weights: Vec<(&str, u32)> = specs
            .iter()
            .map(|s| (s.ring_identity(), s.weight))
            .collect();
        Topology {
            generation,
            ring: Ring::build(&weights, ring.hash, ring.points_per_weight, ring.hash_tags),
            nodes,
            has_remote: remotes.iter().any(Option::is_some),
            remotes,
            weights: specs.iter().map(|s| s.weight).collect(),
            ring_config: ring.clone(),
            next: OnceLock::new(),
            migration: None,
            ledger: Arc::new(Ledger::default()),
        }
    }

    /// A topology over a ring built elsewhere (tests): weight 1 per node, no migration.
    pub fn new(generation: u64, ring: Ring, nodes: Vec<Arc<Node>>) -> Topology {
        let ring_config = RingConfig {
            hash: ring.hash_kind(),
            points_per_weight: DEFAULT_POINTS_PER_WEIGHT,
            hash_tags: None,
        };
        Topology {
            generation,
            weights: vec![1; nodes.len()],
            remotes: vec![None; nodes.len()],
            has_remote: false,
            ring,
            nodes,
            ring_config,
            next: OnceLock::new(),
            migration: None,
            ledger: Arc::new(Ledger::default()),
        }
    }

    /// The next generation for `ring`/`specs`: nodes are reused by name (from this ring and from
    /// earlier rings still draining, so a node removed and added back keeps its keys), budgets
    /// are applied (shrinking evicts before this returns), and, unless placement is unchanged
    /// and nothing is draining, a migration from this ring (and the rings this one was still
    /// draining) is set up. The caller supersedes `self` with the result, publishes it, then
    /// runs [`rebalance::run`] on it.
    pub fn successor(&self, ring: &RingConfig, specs: &[NodeConfig], clock: &Clock) -> Topology {
        let draining = self.previous();
        let mut existing: Vec<Arc<Node>> = self.nodes.clone();
        for prev in draining.iter().flat_map(|p| p.iter()) {
            for node in &prev.nodes {
                if !existing.iter().any(|n| Arc::ptr_eq(n, node)) {
                    existing.push(Arc::clone(node));
                }
            }
        }
        // A deferred flush_all applies to the nodes that exist now, so also to new ones (items
        // moving in from a node with the deadline must not escape it).
        let pending = existing.iter().filter_map(|n| n.pending_flush()).max();
        let members: Vec<Arc<Member>> = self.remotes.iter().flatten().cloned().collect();
        let mut next =
            Topology::build_with(self.generation + 1, ring, specs, &existing, &members, clock);
        next.ledger = Arc::clone(&self.ledger);
        if let Some(at) = pending {
            for node in &next.nodes {
                if node.pending_flush().is_none() {
                    node.flush(at);
                }
            }
        }
        let same_placement = draining.is_none()
            && self.ring_config == *ring
            && self.weights == next.weights
            && self
                .nodes
                .iter()
                .zip(&next.nodes)
                .all(|(a, b)| Arc::ptr_eq(a, b))
            && self.nodes.len() == next.nodes.len();
        if !same_placement {
            let mut previous = vec![Arc::new(Previous {
                generation: self.generation,
                ring: self.ring.clone(),
                nodes: self.nodes.clone(),
            })];
            previous.extend(draining.iter().flat_map(|p| p.iter().cloned()));
            next.migration = Some(Migration::new(previous));
        }
        next
    }

    /// Marks this topology as replaced by `next` (call before publishing `next`): from now on
    /// every access through `self` runs on `next` (or whatever replaced it) instead.
    pub fn supersede(&self, next: Arc<Topology>) {
        // A topology is replaced once; a second call would be a reload bug, and ignoring it
        // keeps the first successor, which requests may already be using.
        let _ = self.next.set(next);
    }

    /// True once a newer topology replaced this one.
    #[inline]
    pub fn is_superseded(&self) -> bool {
        self.next.get().is_some()
    }

    /// The newest topology reachable from this one (itself if not superseded).
    pub fn newest(&self) -> &Topology {
        let mut t = self;
        while let Some(next) = t.next.get() {
            t = next;
        }
        t
    }

    /// True when some member of this ring is a remote server.
    #[inline]
    pub fn has_remote(&self) -> bool {
        self.has_remote
    }

    /// The remote member that owns `key`; None when an in-process node does.
    #[inline]
    pub fn remote_for(&self, key: &[u8]) -> Option<&Arc<Member>> {
        if !self.has_remote {
            return None;
        }
        self.remotes[self.ring.lookup(key)].as_ref()
    }

    /// Every remote member of this ring, in config order.
    pub fn remotes(&self) -> impl Iterator<Item = &Arc<Member>> {
        self.remotes.iter().flatten()
    }

    /// The remote member at ring index `i`, if it is one.
    pub fn remote(&self, i: usize) -> Option<&Arc<Member>> {
        self.remotes.get(i).and_then(Option::as_ref)
    }

    /// The node that owns `key`.
    #[inline]
    pub fn node_for(&self, key: &[u8]) -> &Arc<Node> {
        &self.nodes[self.ring.lookup(key)]
    }

    /// Runs `f` on the entry for `key` in its owning node (see [`Node::entry`]). While a
    /// migration runs, copies of the key on the owners of earlier rings are consolidated onto
    /// the owner first, atomically (see `rebalance.rs`): the newest copy moves over (read
    /// repair), older ones are dropped, so `f` sees exactly what a settled ring would show.
    #[inline]
    pub fn entry<R>(&self, key: &[u8], f: impl FnOnce(&mut Entry<'_>) -> R) -> R {
        let mut f = Some(f);
        let mut topology = self;
        loop {
            if let Some(r) = topology.try_entry(key, &mut f) {
                return r;
            }
            topology = topology.newest();
        }
    }

    /// One attempt of `entry`: None (and `f` untouched) if this topology turned out to be
    /// superseded once the key's lock was held.
    #[inline]
    fn try_entry<R, F: FnOnce(&mut Entry<'_>) -> R>(
        &self,
        key: &[u8],
        f: &mut Option<F>,
    ) -> Option<R> {
        let owner = self.node_for(key);
        if let Some(migration) = &self.migration
            && migration.is_draining()
        {
            let previous = migration.previous();
            if let Some(previous) = &*previous {
                let nodes = migration::holders(previous, owner, key, None);
                if nodes.len() > 1 {
                    return Node::entry_many(&nodes, key, |entries| {
                        if self.is_superseded() {
                            return None;
                        }
                        migration::consolidate(entries, migration, &self.ledger);
                        let f = f.take().expect("f runs at most once");
                        Some(f(&mut entries[0]))
                    });
                }
            }
        }
        owner.entry(key, |e| {
            if self.is_superseded() {
                return None;
            }
            let f = f.take().expect("f runs at most once");
            Some(f(e))
        })
    }

    /// Runs `f` with all `keys` locked at once on their common owner ([`Node::entries`]), so a
    /// multi-key command is atomic: `f(Some(locked))`. When that is not possible, runs
    /// `f(None)` without any lock, and the caller goes through `entry` key by key (not
    /// atomic): the keys are owned by different nodes, a migration is running (keys may need
    /// the holders' locks of `entry`), or this topology was superseded (checked under the
    /// locks, as `entry` does).
    pub fn entries<R>(&self, keys: &[&[u8]], f: impl FnOnce(Option<&mut Locked<'_>>) -> R) -> R {
        let topology = self.newest();
        let owner = keys.first().map(|k| topology.ring.lookup(k));
        let mut f = Some(f);
        if let Some(owner) = owner
            && !topology.is_migrating()
            && keys.iter().all(|k| topology.ring.lookup(k) == owner)
        {
            let r = topology.nodes[owner].entries(keys, |locked| {
                if topology.is_superseded() {
                    return None;
                }
                let f = f.take().expect("f runs at most once");
                Some(f(Some(locked)))
            });
            if let Some(r) = r {
                return r;
            }
        }
        let f = f.take().expect("f did not run");
        f(None)
    }

    /// Consolidates `key` onto its owner (as `entry` does before its closure), also taking it
    /// out of `extra` if that node holds it. Used by the background migrator. False if this
    /// topology was superseded.
    pub(crate) fn pull(&self, key: &[u8], extra: &Node) -> bool {
        let Some(migration) = &self.migration else {
            return !self.is_superseded();
        };
        let previous = migration.previous();
        let Some(previous) = &*previous else {
            return !self.is_superseded();
        };
        let nodes = migration::holders(previous, self.node_for(key), key, Some(extra));
        if nodes.len() < 2 {
            return !self.is_superseded();
        }
        Node::entry_many(&nodes, key, |entries| {
            if self.is_superseded() {
                return false;
            }
            migration::consolidate(entries, migration, &self.ledger);
            true
        })
    }

    /// flush_all: invalidates every item at `at_ms` (now if in the past) on every node that may
    /// hold keys, including nodes removed from the ring and still draining. During a migration
    /// two passes are made: an item moved from a node not yet flushed into one already flushed
    /// during the first pass is caught by the second (moves only go to the key's owner, so it
    /// does not move again).
    pub fn flush(&self, at_ms: u64) {
        let topology = self.newest();
        let mut nodes = topology.nodes.clone();
        let passes = match topology.previous().as_deref() {
            Some(previous) => {
                for prev in previous {
                    for node in &prev.nodes {
                        if !nodes.iter().any(|n| Arc::ptr_eq(n, node)) {
                            nodes.push(Arc::clone(node));
                        }
                    }
                }
                2
            }
            None => 1,
        };
        for _ in 0..passes {
            for node in &nodes {
                node.flush(at_ms);
            }
        }
    }

    /// Nodes of earlier rings that are no longer on this ring but may still hold keys (being
    /// drained); empty when no migration runs.
    pub fn draining_nodes(&self) -> Vec<Arc<Node>> {
        let mut out: Vec<Arc<Node>> = Vec::new();
        if let Some(previous) = self.previous().as_deref() {
            for node in previous.iter().flat_map(|p| &p.nodes) {
                if !self.nodes.iter().chain(&out).any(|n| Arc::ptr_eq(n, node)) {
                    out.push(Arc::clone(node));
                }
            }
        }
        out
    }

    /// Every node that holds keys of this keyspace: this ring's, then the draining ones
    /// (DBSIZE, RANDOMKEY and INFO count those too while a migration runs).
    pub fn holders(&self) -> Vec<Arc<Node>> {
        let mut all = self.nodes.clone();
        all.extend(self.draining_nodes());
        all
    }

    /// The nodes that may hold keys off their owner: every node of the earlier rings still
    /// being drained (current ones included), each once, in an order fixed for this topology;
    /// empty when no migration runs, as every key is then on its owner.
    pub fn migration_sources(&self) -> Vec<Arc<Node>> {
        self.previous().map_or_else(Vec::new, |previous| {
            migration::sources(&previous).into_iter().cloned().collect()
        })
    }

    /// The owner of `key` on the newest earlier ring still draining, if a migration runs.
    pub fn previous_owner(&self, key: &[u8]) -> Option<Arc<Node>> {
        let previous = self.previous()?;
        let prev = previous.first()?;
        Some(Arc::clone(&prev.nodes[prev.ring.lookup(key)]))
    }

    /// True while keys of earlier rings are being moved.
    pub fn is_migrating(&self) -> bool {
        self.migration.as_ref().is_some_and(Migration::is_draining)
    }

    /// Progress of this topology's migration (running or finished); None if it had none.
    pub fn migration_progress(&self) -> Option<Progress> {
        self.migration.as_ref().map(Migration::progress)
    }

    /// The migration from earlier rings, if this topology has one.
    pub(crate) fn migration(&self) -> Option<&Migration> {
        self.migration.as_ref()
    }

    /// Rebalance counters of the server (all generations).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The configured weight of node `i` (0 if out of range).
    pub fn weight(&self, i: usize) -> u32 {
        self.weights.get(i).copied().unwrap_or(0)
    }

    /// The ring settings this topology was built with.
    pub fn ring_config(&self) -> &RingConfig {
        &self.ring_config
    }

    /// The hash scheme of the ring.
    pub fn hash_kind(&self) -> HashKind {
        self.ring_config.hash
    }

    /// Earlier rings still draining (None when settled or never migrating).
    fn previous(&self) -> Option<Arc<Vec<Arc<Previous>>>> {
        let migration = self.migration.as_ref()?;
        if !migration.is_draining() {
            return None;
        }
        migration.previous_full()
    }
}
