//! State shared by every connection: the live topology, limits, clock, server counters and the
//! pub/sub registry (`pubsub`).
//!
//! Owns: [`Shared`] and the protocol-neutral [`Stats`] counters.
//! Must not touch: sockets or wire formats.
//! Invariants: the topology, the limits and the TLS certificate are replaced only by `app` and
//! `reload`, each with one `ArcSwap::store`; readers `load()` once per request (per handshake
//! for TLS), except that connections read the limits through an `arc_swap::Cache` (sessions
//! through [`LimitsCache`], which owns its `Arc<Shared>`).

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::auth::Auth;
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::persist::snapshot::Snapshots;
use crate::route::topology::Topology;
use crate::store::{Clock, KeyEvents};
use gate::Gate;
use scripts::Scripts;
use waiters::Waiters;

pub mod clients;
pub mod gate;
pub mod mailbox;
pub mod pubsub;
pub mod scripts;
pub mod tracking;
pub mod waiters;

/// Everything a protocol handler may read, shared by all connections.
pub struct Shared {
    /// The ring and its nodes; swapped whole on reload.
    pub topology: ArcSwap<Topology>,
    /// True while the topology has a remote member (kept with `topology` by
    /// [`Shared::swap_topology`]): sessions check it once per request.
    remote: std::sync::atomic::AtomicBool,
    /// The clock every node uses.
    pub clock: Clock,
    /// Request and connection limits; swapped whole on reload.
    pub limits: ArcSwap<Limits>,
    /// Passwords and users; swapped whole on reload.
    pub auth: ArcSwap<Auth>,
    /// Server-wide counters (memcached `stats` names).
    pub stats: Stats,
    /// Unix time (seconds) the server started.
    pub started_unix: u64,
    /// This process's id.
    pub pid: u32,
    /// The server's metrics, when the metrics listener is configured (None: nothing is
    /// recorded, which is also how the cost of metrics is measured).
    pub metrics: Option<Arc<Metrics>>,
    /// Clients blocked in BLPOP & co., per key (woken by pushes from any connection).
    pub waiters: Waiters,
    /// Lets EXEC run while no session handles a request (every session holds a pass).
    pub gate: Arc<Gate>,
    /// The pub/sub registry: channel, pattern and shard-channel subscribers.
    pub pubsub: Arc<pubsub::Registry>,
    /// Where nodes report expired and evicted keys (keyspace notifications), once the protocol
    /// layer made it; installed into every node by [`Shared::sync_key_events`].
    pub key_events: std::sync::OnceLock<Arc<dyn KeyEvents>>,
    /// Whether nodes report expired and evicted keys now (the flags ask for them).
    report_key_events: std::sync::atomic::AtomicBool,
    /// Lua scripts and functions (EVAL, FCALL): the engine and the kill flag.
    pub scripts: Arc<Scripts>,
    /// The RESP connections, for CLIENT LIST.
    pub clients: clients::Clients,
    /// Counters as they were at the last CONFIG RESETSTAT (INFO shows what came since).
    pub stat_baseline: parking_lot::Mutex<Vec<u64>>,
    /// `hll-sparse-max-bytes`: the largest sparse HyperLogLog string before it turns dense.
    pub hll_sparse_max_bytes: std::sync::atomic::AtomicU64,
    /// Redis parameters set by CONFIG SET (name -> value), shown by CONFIG GET.
    pub config_set: parking_lot::Mutex<hashbrown::HashMap<&'static str, String>>,
    /// The config file being served, when the server watches one (named in errors).
    pub config_path: std::sync::OnceLock<std::path::PathBuf>,
    /// Snapshot settings and save state, when `[snapshot]` is configured.
    pub snapshots: Option<Arc<Snapshots>>,
    /// The certificate and key of the TLS listeners, when any listener speaks TLS; a reload
    /// that finds new files swaps it, and later handshakes use the new one.
    pub tls: Option<ArcSwap<rustls::ServerConfig>>,
}

impl Shared {
    /// Publishes `next` as the topology. The remote flag is raised before a ring with remote
    /// members is published and lowered after one without is, so a request that sees the
    /// flag down never routes a remote member's key locally.
    pub fn swap_topology(&self, next: Arc<Topology>) {
        use std::sync::atomic::Ordering;
        let remote = next.has_remote();
        if remote {
            self.remote.store(true, Ordering::SeqCst);
        }
        self.topology.store(next);
        if !remote {
            self.remote.store(false, Ordering::SeqCst);
        }
    }

    /// True when some member of the current ring is remote.
    #[inline]
    pub fn has_remote(&self) -> bool {
        self.remote.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Builds the shared state around an initial topology.
    pub fn new(topology: Topology, limits: Limits, clock: Clock) -> Shared {
        let started_unix = clock.now_ms() / 1000;
        let out_limit = limits.max_output_buffer;
        Shared {
            remote: std::sync::atomic::AtomicBool::new(topology.has_remote()),
            topology: ArcSwap::from_pointee(topology),
            clock,
            limits: ArcSwap::from_pointee(limits),
            auth: ArcSwap::from_pointee(Auth::default()),
            stats: Stats::default(),
            started_unix,
            pid: std::process::id(),
            metrics: None,
            waiters: Waiters::default(),
            gate: Arc::new(Gate::default()),
            pubsub: {
                let registry = pubsub::Registry::default();
                registry.set_limit(out_limit);
                Arc::new(registry)
            },
            key_events: std::sync::OnceLock::new(),
            report_key_events: std::sync::atomic::AtomicBool::new(false),
            scripts: Arc::new(Scripts::default()),
            clients: clients::Clients::default(),
            snapshots: None,
            config_set: Default::default(),
            hll_sparse_max_bytes: std::sync::atomic::AtomicU64::new(3000),
            stat_baseline: Default::default(),
            config_path: std::sync::OnceLock::new(),
            tls: None,
        }
    }
}

impl Shared {
    /// Makes the key-event sink with `make` unless there is one already.
    pub fn install_key_events(&self, make: impl FnOnce() -> Arc<dyn KeyEvents>) {
        let _ = self.key_events.get_or_init(make);
    }

    /// Turns the nodes' reporting of expired and evicted keys on or off.
    pub fn report_key_events(&self, report: bool) {
        self.report_key_events.store(report, Ordering::Relaxed);
        self.sync_key_events();
    }

    /// Points every node of the current topology at the key-event sink (when there is one)
    /// with the current reporting switch. Called when it changes and after a reload (new
    /// nodes).
    pub fn sync_key_events(&self) {
        let report = self.report_key_events.load(Ordering::Relaxed);
        if let Some(sink) = self.key_events.get() {
            for node in &self.topology.load().nodes {
                node.set_key_events(sink, report);
            }
        }
    }
}

/// One connection's copy of the limits. Each use costs one atomic load that checks the copy
/// is still the published one (a full `ArcSwap::load` takes and returns a debt slot); after a
/// reload, the next use picks up the new limits. Limits own no resources, so a copy kept by an
/// idle connection costs nothing.
pub struct LimitsCache(arc_swap::Cache<LimitsOf, Arc<Limits>>);

/// The limits slot of a server, owned (what [`arc_swap::Cache`] revalidates against).
struct LimitsOf(Arc<Shared>);

impl Deref for LimitsOf {
    type Target = ArcSwap<Limits>;

    fn deref(&self) -> &ArcSwap<Limits> {
        &self.0.limits
    }
}

impl LimitsCache {
    /// A cache of `shared`'s limits.
    pub fn new(shared: Arc<Shared>) -> LimitsCache {
        LimitsCache(arc_swap::Cache::new(LimitsOf(shared)))
    }

    /// The current limits.
    #[inline]
    pub fn load(&mut self) -> &Arc<Limits> {
        self.0.load()
    }
}

/// Server-wide counters. Relaxed atomics: they are statistics, not synchronisation.
#[derive(Default, Debug)]
#[allow(missing_docs)]
pub struct Stats {
    pub curr_connections: AtomicU64,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// Connections closed on accept because the peer is not in the listener's allow-list.
    pub rejected_not_allowed: AtomicU64,
    /// Connections to a TLS listener closed because the handshake failed or did not finish
    /// within `limits.tls_handshake_timeout`.
    pub rejected_tls_handshake: AtomicU64,
    /// Successful logins (RESP AUTH / HELLO AUTH, memcached auth `set`).
    pub auth_ok: AtomicU64,
    /// Refused logins.
    pub auth_errors: AtomicU64,
    pub cmd_get: AtomicU64,
    pub cmd_set: AtomicU64,
    pub cmd_touch: AtomicU64,
    pub cmd_flush: AtomicU64,
    pub get_hits: AtomicU64,
    pub get_misses: AtomicU64,
    pub get_expired: AtomicU64,
    pub delete_hits: AtomicU64,
    pub delete_misses: AtomicU64,
    pub incr_hits: AtomicU64,
    pub incr_misses: AtomicU64,
    pub decr_hits: AtomicU64,
    pub decr_misses: AtomicU64,
    pub cas_hits: AtomicU64,
    pub cas_misses: AtomicU64,
    pub cas_badval: AtomicU64,
    pub touch_hits: AtomicU64,
    pub touch_misses: AtomicU64,
    /// Connections by listener protocol (memcache, resp, any: `CacheListener::index`).
    pub by_protocol: [ProtocolConnections; 3],
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    pub config_reloads_ok: AtomicU64,
    pub config_reloads_error: AtomicU64,
    /// Connections closed because one request's replies passed `limits.max_output_buffer`.
    pub closed_output_buffer: AtomicU64,
    /// Connections closed because their replies made no write progress for
    /// `limits.output_timeout` (the peer does not read).
    pub closed_output_timeout: AtomicU64,
    /// Connections closed because input buffered during a blocking wait passed
    /// `limits.max_request_size`.
    pub closed_input_buffer: AtomicU64,
    /// Connections closed after `limits.idle_timeout` without a request.
    pub closed_idle_timeout: AtomicU64,
    /// Commands run over RESP (redis `total_commands_processed`), added per batch.
    pub commands_processed: AtomicU64,
}

/// Connection counters of one listener protocol.
#[derive(Default, Debug)]
pub struct ProtocolConnections {
    /// Open now.
    pub open: AtomicU64,
    /// Accepted since start.
    pub accepted: AtomicU64,
}

impl Stats {
    /// Adds `n` to a counter.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    #[inline]
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::ring::{HashKind, Ring};

    #[test]
    fn a_limits_cache_sees_a_reload_at_its_next_use() {
        let clock = Clock::mock(0);
        let ring = Ring::build(&[("a", 1)], HashKind::default(), 160, None);
        let node = Arc::new(crate::store::Node::new("a", 1 << 20, clock.clone()));
        let topology = Topology::new(1, ring, vec![node]);
        let shared = Arc::new(Shared::new(topology, Limits::default(), clock));
        let mut cache = LimitsCache::new(Arc::clone(&shared));
        let before = cache.load().max_connections;
        let reloaded = Limits {
            max_connections: before + 1,
            ..Limits::default()
        };
        shared.limits.store(Arc::new(reloaded));
        assert_eq!(cache.load().max_connections, before + 1);
    }
}
