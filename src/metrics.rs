//! Metric names and the recorder: what the data path records into.
//!
//! Owns: every metric name and its help text ([`ALL`]), a server's own Prometheus recorder
//! ([`Metrics`]), and the per-session command counters ([`CommandRecorder`]).
//! Must not touch: the rest of the crate. This is a leaf: it imports nothing of ringcache, so
//! any layer may record into it; the HTTP side (`/metrics` rendering, admin JSON) is `admin`.
//! Invariants: each server has its own recorder ([`Metrics`]), so servers sharing a process
//! never mix numbers; data-path handles are registered once (per protocol, not per request);
//! names start with `ringcache_`, counters end in `_total`, units are in the name.

use std::sync::Arc;
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use parking_lot::Mutex;

/// Commands handled, by protocol, command and result (`ok` or `error`).
pub const COMMANDS_TOTAL: &str = "ringcache_commands_total";
/// Time spent handling a command inside the server (decode excluded, network excluded).
pub const COMMAND_DURATION_SECONDS: &str = "ringcache_command_duration_seconds";
/// Resident memory of the process.
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "ringcache_process_resident_memory_bytes";
/// Open file descriptors of the process.
pub const PROCESS_OPEN_FDS: &str = "ringcache_process_open_fds";
/// Start time of the process (unix seconds).
pub const PROCESS_START_TIME_SECONDS: &str = "ringcache_process_start_time_seconds";
/// Requests sent to a remote node, by node.
pub const REMOTE_REQUESTS_TOTAL: &str = "ringcache_remote_requests_total";
/// Requests to a remote node that got no reply (timeout, down, invalid reply), by node.
pub const REMOTE_ERRORS_TOTAL: &str = "ringcache_remote_errors_total";
/// Requests to a remote node that timed out, by node.
pub const REMOTE_TIMEOUTS_TOTAL: &str = "ringcache_remote_timeouts_total";
/// Seconds a remote node took to reply (queued to answered), by node.
pub const REMOTE_REPLY_DURATION_SECONDS: &str = "ringcache_remote_reply_duration_seconds";
/// Requests queued or waiting for a reply at a remote node, by node.
pub const REMOTE_IN_FLIGHT: &str = "ringcache_remote_in_flight";
/// Open connections to a remote node, by node.
pub const REMOTE_CONNECTIONS: &str = "ringcache_remote_connections";
/// Bytes used by a node's items and index, by node.
pub const NODE_MEMORY_USED_BYTES: &str = "ringcache_node_memory_used_bytes";
/// A node's memory budget, by node.
pub const NODE_MEMORY_MAX_BYTES: &str = "ringcache_node_memory_max_bytes";
/// Items held by a node, by node.
pub const NODE_ITEMS: &str = "ringcache_node_items";
/// Items evicted to make room, by node.
pub const NODE_EVICTIONS_TOTAL: &str = "ringcache_node_evictions_total";
/// Items reclaimed after their expiry, by node.
pub const NODE_EXPIRED_TOTAL: &str = "ringcache_node_expired_total";
/// Reads that found their key, by node.
pub const KEYSPACE_HITS_TOTAL: &str = "ringcache_keyspace_hits_total";
/// Reads that did not find their key, by node.
pub const KEYSPACE_MISSES_TOTAL: &str = "ringcache_keyspace_misses_total";
/// Open client connections.
pub const CONNECTIONS: &str = "ringcache_connections";
/// Connections accepted since start.
pub const CONNECTIONS_ACCEPTED_TOTAL: &str = "ringcache_connections_accepted_total";
/// Connections refused since start, by reason.
pub const CONNECTIONS_REJECTED_TOTAL: &str = "ringcache_connections_rejected_total";
/// Connections the server closed on a limit, by reason.
pub const CONNECTIONS_CLOSED_TOTAL: &str = "ringcache_connections_closed_total";
/// Login attempts, by result.
pub const AUTH_TOTAL: &str = "ringcache_auth_total";
/// Bytes read from and written to clients, by direction.
pub const NETWORK_BYTES_TOTAL: &str = "ringcache_network_bytes_total";
/// The ring generation being served.
pub const RING_GENERATION: &str = "ringcache_ring_generation";
/// Nodes on the ring.
pub const RING_NODES: &str = "ringcache_ring_nodes";
/// Bytes the Lua VM of scripts and functions uses (bounded).
pub const LUA_MEMORY_BYTES: &str = "ringcache_lua_memory_bytes";
/// Scripts in the EVAL cache.
pub const SCRIPTS_CACHED: &str = "ringcache_scripts_cached";
/// Scripts stopped by SCRIPT KILL / FUNCTION KILL.
pub const SCRIPTS_KILLED_TOTAL: &str = "ringcache_scripts_killed_total";
/// Config reloads, by result (`ok`, `error`).
pub const CONFIG_RELOADS_TOTAL: &str = "ringcache_config_reloads_total";
/// 1 while a migration runs, else 0.
pub const REBALANCE_IN_PROGRESS: &str = "ringcache_rebalance_in_progress";
/// Items moved to a new owner node.
pub const REBALANCE_KEYS_MOVED_TOTAL: &str = "ringcache_rebalance_keys_moved_total";
/// Bytes (item charges) moved to a new owner node.
pub const REBALANCE_BYTES_MOVED_TOTAL: &str = "ringcache_rebalance_bytes_moved_total";
/// Duration of the running migration so far, or of the last one.
pub const REBALANCE_DURATION_SECONDS: &str = "ringcache_rebalance_duration_seconds";
/// Unix time of the last successful snapshot save.
pub const SNAPSHOT_LAST_SAVE_TIMESTAMP_SECONDS: &str =
    "ringcache_snapshot_last_save_timestamp_seconds";
/// Duration of the last successful snapshot save.
pub const SNAPSHOT_DURATION_SECONDS: &str = "ringcache_snapshot_duration_seconds";
/// Size of the last snapshot written.
pub const SNAPSHOT_SIZE_BYTES: &str = "ringcache_snapshot_size_bytes";
/// Keys in the last snapshot written.
pub const SNAPSHOT_KEYS: &str = "ringcache_snapshot_keys";
/// Snapshot saves that failed.
pub const SNAPSHOT_FAILURES_TOTAL: &str = "ringcache_snapshot_failures_total";
/// 1 while a snapshot is being written, else 0.
pub const SNAPSHOT_IN_PROGRESS: &str = "ringcache_snapshot_in_progress";

/// Every metric name with its help text, checked for uniqueness and conventions by a test.
pub const ALL: &[(&str, &str)] = &[
    (
        COMMANDS_TOTAL,
        "Commands handled, by protocol, command and result.",
    ),
    (
        COMMAND_DURATION_SECONDS,
        "Time spent executing a command inside the server, by protocol and command.",
    ),
    (
        PROCESS_RESIDENT_MEMORY_BYTES,
        "Resident memory of the ringcache process.",
    ),
    (
        PROCESS_OPEN_FDS,
        "Open file descriptors of the ringcache process.",
    ),
    (
        PROCESS_START_TIME_SECONDS,
        "Start time of the ringcache process, unix seconds.",
    ),
    (
        NODE_MEMORY_USED_BYTES,
        "Bytes charged to a node: keys, values and per-item overhead.",
    ),
    (REMOTE_REQUESTS_TOTAL, "Requests sent to a remote node."),
    (
        REMOTE_ERRORS_TOTAL,
        "Requests to a remote node that got no reply: timeout, unreachable, invalid reply, queue full.",
    ),
    (
        REMOTE_TIMEOUTS_TOTAL,
        "Requests to a remote node that timed out.",
    ),
    (
        REMOTE_REPLY_DURATION_SECONDS,
        "Seconds a remote node took to reply, from queued to answered.",
    ),
    (
        REMOTE_IN_FLIGHT,
        "Requests queued or waiting for their reply at a remote node.",
    ),
    (REMOTE_CONNECTIONS, "Open connections to a remote node."),
    (
        NODE_MEMORY_MAX_BYTES,
        "A node's memory budget (max_memory).",
    ),
    (NODE_ITEMS, "Items held by a node."),
    (
        NODE_EVICTIONS_TOTAL,
        "Items evicted to make room, per node.",
    ),
    (
        NODE_EXPIRED_TOTAL,
        "Items reclaimed after their expiry, per node.",
    ),
    (
        KEYSPACE_HITS_TOTAL,
        "Key reads that found the key, per node.",
    ),
    (
        KEYSPACE_MISSES_TOTAL,
        "Key reads that did not find the key, per node.",
    ),
    (CONNECTIONS, "Open client connections."),
    (CONNECTIONS_ACCEPTED_TOTAL, "Client connections accepted."),
    (
        CONNECTIONS_REJECTED_TOTAL,
        "Client connections refused, by reason: max_connections, not_allowed (peer outside the listener's allow-list), tls_handshake (a TLS listener's handshake failed or passed limits.tls_handshake_timeout).",
    ),
    (
        CONNECTIONS_CLOSED_TOTAL,
        "Client connections closed by the server on a limit, by reason: output_buffer (one request's replies passed limits.max_output_buffer), output_timeout (the client stopped reading), idle_timeout, input_buffer (input sent during a blocking wait passed limits.max_request_size), pubsub_output_buffer (a subscriber's pending messages passed limits.max_output_buffer).",
    ),
    (
        AUTH_TOTAL,
        "Login attempts (RESP AUTH and HELLO AUTH, memcached auth set), by result: ok or error.",
    ),
    (
        NETWORK_BYTES_TOTAL,
        "Bytes exchanged with clients, by direction (in, out).",
    ),
    (
        RING_GENERATION,
        "Generation of the ring being served; bumped by every applied reload.",
    ),
    (RING_NODES, "Nodes on the ring."),
    (
        LUA_MEMORY_BYTES,
        "Bytes the Lua VM of scripts and functions uses (bounded).",
    ),
    (SCRIPTS_CACHED, "Scripts in the EVAL cache."),
    (
        SCRIPTS_KILLED_TOTAL,
        "Scripts stopped by SCRIPT KILL / FUNCTION KILL.",
    ),
    (
        CONFIG_RELOADS_TOTAL,
        "Config file reloads, by result: ok (applied or unchanged) or error (rejected, old ring kept).",
    ),
    (
        REBALANCE_IN_PROGRESS,
        "1 while keys are being moved to their owner on a new ring, else 0.",
    ),
    (
        REBALANCE_KEYS_MOVED_TOTAL,
        "Items moved to their new owner node after ring changes.",
    ),
    (
        REBALANCE_BYTES_MOVED_TOTAL,
        "Bytes (item charges) moved to their new owner node after ring changes.",
    ),
    (
        REBALANCE_DURATION_SECONDS,
        "Duration of the running migration so far, or of the last finished one.",
    ),
    (
        SNAPSHOT_LAST_SAVE_TIMESTAMP_SECONDS,
        "Unix time of the last successful snapshot save (the start time before any).",
    ),
    (
        SNAPSHOT_DURATION_SECONDS,
        "Duration of the last successful snapshot save.",
    ),
    (
        SNAPSHOT_SIZE_BYTES,
        "Size of the last snapshot file written.",
    ),
    (SNAPSHOT_KEYS, "Keys in the last snapshot file written."),
    (SNAPSHOT_FAILURES_TOTAL, "Snapshot saves that failed."),
    (
        SNAPSHOT_IN_PROGRESS,
        "1 while a snapshot is being written, else 0.",
    ),
];

/// Histogram buckets for command latency: 5 µs to 2.5 s.
const DURATION_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

const METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// One server's metrics: its own Prometheus recorder (not the process-global one, so that
/// servers sharing a process, as tests do, never mix their numbers) and the handles that the
/// data path records into.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    commands: Mutex<Vec<(&'static str, Arc<CommandMetrics>)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A recorder with every metric described and the latency buckets set.
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(COMMAND_DURATION_SECONDS.to_string()),
                DURATION_BUCKETS,
            )
            .expect("non-empty bucket list")
            .set_buckets_for_metric(
                Matcher::Full(REMOTE_REPLY_DURATION_SECONDS.to_string()),
                DURATION_BUCKETS,
            )
            .expect("non-empty bucket list")
            .build_recorder();
        for (name, help) in ALL {
            let key = KeyName::from(*name);
            if name.ends_with("_total") {
                recorder.describe_counter(key, None, (*help).into());
            } else if *name == COMMAND_DURATION_SECONDS || *name == REMOTE_REPLY_DURATION_SECONDS {
                recorder.describe_histogram(key, Some(Unit::Seconds), (*help).into());
            } else {
                recorder.describe_gauge(key, None, (*help).into());
            }
        }
        Metrics {
            handle: recorder.handle(),
            recorder,
            commands: Mutex::new(Vec::new()),
        }
    }

    /// A counter handle; register once and keep it.
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.recorder
            .register_counter(&key(name, labels), &METADATA)
    }

    /// A gauge handle.
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        self.recorder.register_gauge(&key(name, labels), &METADATA)
    }

    /// A histogram handle.
    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        self.recorder
            .register_histogram(&key(name, labels), &METADATA)
    }

    /// The per-command handles of `protocol`, registered on first use and shared by every
    /// session of that protocol.
    pub fn commands(&self, protocol: &'static str, names: &[&'static str]) -> Arc<CommandMetrics> {
        let mut all = self.commands.lock();
        if let Some((_, m)) = all.iter().find(|(p, _)| *p == protocol) {
            return Arc::clone(m);
        }
        let m = Arc::new(CommandMetrics {
            counters: names
                .iter()
                .map(|&command| {
                    let labels = |result| {
                        [
                            ("protocol", protocol),
                            ("command", command),
                            ("result", result),
                        ]
                    };
                    [
                        self.counter(COMMANDS_TOTAL, &labels("ok")),
                        self.counter(COMMANDS_TOTAL, &labels("error")),
                    ]
                })
                .collect(),
            durations: names
                .iter()
                .map(|&command| {
                    self.histogram(
                        COMMAND_DURATION_SECONDS,
                        &[("protocol", protocol), ("command", command)],
                    )
                })
                .collect(),
        });
        all.push((protocol, Arc::clone(&m)));
        m
    }

    /// Drains histogram samples into their buckets (done regularly by `admin::upkeep`, so
    /// memory stays bounded when nobody scrapes).
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The Prometheus text exposition of everything recorded so far.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    Key::from_parts(
        name,
        labels
            .iter()
            .map(|(k, v)| Label::new(*k, v.to_string()))
            .collect::<Vec<_>>(),
    )
}

/// Per-command handles of one protocol, indexed by the protocol's own command number, so that
/// recording a command is two atomic operations and no name lookup.
pub struct CommandMetrics {
    counters: Vec<[Counter; 2]>,
    durations: Vec<Histogram>,
}

/// One command in this many is timed into the latency histogram; every command is counted.
/// Reading the clock twice and recording a sample per command cost about 8% of throughput at
/// pipeline depth 16; a 1-in-16 sample keeps the quantiles and costs a sixteenth of that.
pub const LATENCY_SAMPLE_EVERY: u32 = 16;

/// A session's front to [`CommandMetrics`]: counts go into a small local table that is added to
/// the shared counters once per batch (one atomic add per distinct command and result instead
/// of one per command, and no cache line bouncing between workers per request), and one command
/// in [`LATENCY_SAMPLE_EVERY`] is timed.
pub struct CommandRecorder {
    metrics: Arc<CommandMetrics>,
    pending: [(u16, bool, u32); 8],
    len: usize,
    tick: u32,
}

impl CommandRecorder {
    /// A recorder for one session.
    pub fn new(metrics: Arc<CommandMetrics>) -> CommandRecorder {
        CommandRecorder {
            metrics,
            pending: [(0, false, 0); 8],
            len: 0,
            tick: 0,
        }
    }

    /// Call before running a command: the start time when this command is sampled.
    #[inline]
    pub fn start(&mut self) -> Option<Instant> {
        self.tick = self.tick.wrapping_add(1);
        (self.tick % LATENCY_SAMPLE_EVERY == 0).then(Instant::now)
    }

    /// Counts command number `command` (and records its time if it was sampled).
    #[inline]
    pub fn record(&mut self, command: usize, error: bool, started: Option<Instant>) {
        if let (Some(t), Some(h)) = (started, self.metrics.durations.get(command)) {
            h.record(t.elapsed().as_secs_f64());
        }
        let Ok(id) = u16::try_from(command) else {
            return;
        };
        if let Some(e) = self.pending[..self.len]
            .iter_mut()
            .find(|e| e.0 == id && e.1 == error)
        {
            e.2 += 1;
            return;
        }
        if self.len == self.pending.len() {
            self.flush();
        }
        self.pending[self.len] = (id, error, 1);
        self.len += 1;
    }

    /// Adds the local counts to the shared counters; call at the end of every batch.
    pub fn flush(&mut self) {
        for &(id, error, n) in &self.pending[..self.len] {
            if let Some(c) = self.metrics.counters.get(usize::from(id)) {
                c[usize::from(error)].increment(u64::from(n));
            }
        }
        self.len = 0;
    }
}

impl Drop for CommandRecorder {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_follow_conventions() {
        let mut seen = std::collections::HashSet::new();
        for (name, help) in ALL {
            assert!(seen.insert(*name), "duplicate metric {name}");
            assert!(name.starts_with("ringcache_"), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert!(!help.is_empty(), "{name} has no help");
        }
    }
}
