//! Prometheus metrics and the small HTTP listener that serves them with the admin endpoints.
//!
//! Owns: metric names, their help text, the process-wide recorder, and `GET /metrics`,
//! `GET /health`, and the admin JSON: `GET /ring` (generation, hash, nodes with weight, points,
//! items and memory, draining nodes, migration progress) and `GET /ring/owner?key=K` (the
//! key's owner, its owner on the ring being drained, and which nodes hold a copy now). The JSON
//! is written by hand: a few flat objects do not need serde_json.
//! Must not touch: the data path. Gauges that mirror node state are refreshed at scrape time,
//! so requests pay nothing for them.
//! Invariants: each server has its own recorder ([`Metrics`]), so servers sharing a process
//! never mix numbers; data-path handles are registered once (per protocol, not per request);
//! names start with `ringcache_`, counters end in `_total`, units are in the name.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::net::listener::Protocol;
use crate::server::{Shared, Stats};

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
        "Client connections closed by the server on a limit, by reason: output_buffer (one request's replies passed limits.max_output_buffer), output_timeout (the client stopped reading), idle_timeout, input_buffer (input sent during a blocking wait passed limits.max_request_size).",
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
            .build_recorder();
        for (name, help) in ALL {
            let key = KeyName::from(*name);
            if name.ends_with("_total") {
                recorder.describe_counter(key, None, (*help).into());
            } else if *name == COMMAND_DURATION_SECONDS {
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

    /// Drains histogram samples into their buckets (done regularly by [`upkeep`], so memory
    /// stays bounded when nobody scrapes).
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
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

/// Runs [`Metrics::run_upkeep`] every few seconds until shutdown.
pub async fn upkeep(metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            _ = tick.tick() => metrics.run_upkeep(),
        }
    }
}

/// Resident bytes and open descriptors from /proc (zero where /proc is unavailable).
fn process_stats() -> (u64, u64) {
    let rss_pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    (rss_pages * 4096, fds)
}

/// Copies node and server counters into the recorder, then renders the exposition. Counters
/// kept by the data path as plain atomics are mirrored as absolute values at scrape time.
pub fn render(metrics: &Metrics, shared: &Shared) -> String {
    let topology = shared.topology.load();
    for node in &topology.nodes {
        let s = node.stats();
        let n = [("node", node.name())];
        metrics
            .gauge(NODE_MEMORY_USED_BYTES, &n)
            .set(s.used_bytes as f64);
        metrics
            .gauge(NODE_MEMORY_MAX_BYTES, &n)
            .set(s.max_bytes as f64);
        metrics.gauge(NODE_ITEMS, &n).set(s.items as f64);
        metrics
            .counter(NODE_EVICTIONS_TOTAL, &n)
            .absolute(s.evictions);
        metrics.counter(NODE_EXPIRED_TOTAL, &n).absolute(s.expired);
        metrics.counter(KEYSPACE_HITS_TOTAL, &n).absolute(s.hits);
        metrics
            .counter(KEYSPACE_MISSES_TOTAL, &n)
            .absolute(s.misses);
    }
    let st = &shared.stats;
    for protocol in Protocol::ALL {
        let c = &st.by_protocol[protocol.index()];
        let label = [("protocol", protocol.label())];
        metrics
            .gauge(CONNECTIONS, &label)
            .set(Stats::get(&c.open) as f64);
        metrics
            .counter(CONNECTIONS_ACCEPTED_TOTAL, &label)
            .absolute(Stats::get(&c.accepted));
    }
    metrics
        .counter(CONNECTIONS_REJECTED_TOTAL, &[("reason", "max_connections")])
        .absolute(Stats::get(&st.rejected_connections));
    metrics
        .counter(CONNECTIONS_REJECTED_TOTAL, &[("reason", "not_allowed")])
        .absolute(Stats::get(&st.rejected_not_allowed));
    metrics
        .counter(CONNECTIONS_REJECTED_TOTAL, &[("reason", "tls_handshake")])
        .absolute(Stats::get(&st.rejected_tls_handshake));
    metrics
        .counter(AUTH_TOTAL, &[("result", "ok")])
        .absolute(Stats::get(&st.auth_ok));
    metrics
        .counter(AUTH_TOTAL, &[("result", "error")])
        .absolute(Stats::get(&st.auth_errors));
    for (reason, counter) in [
        ("output_buffer", &st.closed_output_buffer),
        ("output_timeout", &st.closed_output_timeout),
        ("idle_timeout", &st.closed_idle_timeout),
        ("input_buffer", &st.closed_input_buffer),
    ] {
        metrics
            .counter(CONNECTIONS_CLOSED_TOTAL, &[("reason", reason)])
            .absolute(Stats::get(counter));
    }
    metrics
        .counter(NETWORK_BYTES_TOTAL, &[("direction", "in")])
        .absolute(Stats::get(&st.bytes_read));
    metrics
        .counter(NETWORK_BYTES_TOTAL, &[("direction", "out")])
        .absolute(Stats::get(&st.bytes_written));
    metrics
        .counter(CONFIG_RELOADS_TOTAL, &[("result", "ok")])
        .absolute(Stats::get(&st.config_reloads_ok));
    metrics
        .counter(CONFIG_RELOADS_TOTAL, &[("result", "error")])
        .absolute(Stats::get(&st.config_reloads_error));
    let ledger = topology.ledger();
    let running = topology.is_migrating();
    metrics
        .gauge(REBALANCE_IN_PROGRESS, &[])
        .set(if running { 1.0 } else { 0.0 });
    metrics
        .counter(REBALANCE_KEYS_MOVED_TOTAL, &[])
        .absolute(ledger.keys_moved.load(Ordering::Relaxed));
    metrics
        .counter(REBALANCE_BYTES_MOVED_TOTAL, &[])
        .absolute(ledger.bytes_moved.load(Ordering::Relaxed));
    let duration = match topology.migration_progress() {
        Some(p) if running => p.elapsed,
        _ => Duration::from_micros(ledger.last_duration_us.load(Ordering::Relaxed)),
    };
    metrics
        .gauge(REBALANCE_DURATION_SECONDS, &[])
        .set(duration.as_secs_f64());
    let (rss, fds) = process_stats();
    metrics
        .gauge(PROCESS_RESIDENT_MEMORY_BYTES, &[])
        .set(rss as f64);
    metrics.gauge(PROCESS_OPEN_FDS, &[]).set(fds as f64);
    metrics
        .gauge(PROCESS_START_TIME_SECONDS, &[])
        .set(shared.started_unix as f64);
    metrics
        .gauge(RING_GENERATION, &[])
        .set(topology.generation as f64);
    metrics
        .gauge(RING_NODES, &[])
        .set(topology.nodes.len() as f64);
    metrics.handle.render()
}

/// Serves `/metrics` and `/health` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    allow: Option<Vec<crate::auth::Cidr>>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if !crate::auth::allowed(allow.as_deref(), peer.ip()) {
            Stats::add(&shared.stats.rejected_not_allowed, 1);
            continue;
        }
        let shared = Arc::clone(&shared);
        let metrics = Arc::clone(&metrics);
        tracker.spawn(async move {
            let _ =
                tokio::time::timeout(Duration::from_secs(10), respond(stream, &shared, &metrics))
                    .await;
        });
    }
}

/// Answers one HTTP/1.x request and closes the connection.
async fn respond(mut stream: TcpStream, shared: &Shared, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() > 8192 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let mut target = target.splitn(2, |&b| b == b'?');
    let path = target.next().unwrap_or_default();
    let query = target.next().unwrap_or_default();
    let (status, ctype, body) = match (method, path) {
        (b"GET", b"/ring") => ("200 OK", "application/json", ring_json(shared)),
        (b"GET", b"/ring/owner") => match query_param(query, b"key") {
            Some(key) => ("200 OK", "application/json", owner_json(shared, &key)),
            None => (
                "400 Bad Request",
                "text/plain",
                "missing ?key=\n".to_string(),
            ),
        },
        (b"GET", b"/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4",
            render(metrics, shared),
        ),
        (b"GET", b"/health") => ("200 OK", "text/plain", "ok\n".to_string()),
        (b"GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".to_string(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// `GET /ring`: the topology being served, its nodes, and the migration.
pub fn ring_json(shared: &Shared) -> String {
    let topology = shared.topology.load();
    let cfg = topology.ring_config();
    let mut out = String::with_capacity(1024);
    let _ = write!(
        out,
        "{{\"generation\":{},\"hash\":\"{}\",\"points_per_weight\":{},\"nodes\":[",
        topology.generation,
        cfg.hash.name(),
        cfg.points_per_weight
    );
    for (i, node) in topology.nodes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json_str(&mut out, node.name().as_bytes());
        let _ = write!(
            out,
            ",\"weight\":{},\"points\":{},\"items\":{},\"memory_used_bytes\":{},\"memory_max_bytes\":{}}}",
            topology.weight(i),
            topology.ring.points(i),
            node.len(),
            node.used_bytes(),
            node.max_memory()
        );
    }
    out.push_str("],\"draining\":[");
    for (i, node) in topology.draining_nodes().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json_str(&mut out, node.name().as_bytes());
        let _ = write!(
            out,
            ",\"items\":{},\"memory_used_bytes\":{}}}",
            node.len(),
            node.used_bytes()
        );
    }
    out.push_str("],\"migration\":");
    match topology.migration_progress() {
        None => out.push_str("null"),
        Some(p) => {
            let from: Vec<String> = p.from_generations.iter().map(u64::to_string).collect();
            let _ = write!(
                out,
                "{{\"in_progress\":{},\"from_generations\":[{}],\"keys_to_scan\":{},\"keys_scanned\":{},\"keys_moved\":{},\"bytes_moved\":{},\"elapsed_seconds\":{:.6}}}",
                !p.done,
                from.join(","),
                p.keys_to_scan,
                p.keys_scanned,
                p.keys_moved,
                p.bytes_moved,
                p.elapsed.as_secs_f64()
            );
        }
    }
    out.push_str("}\n");
    out
}

/// `GET /ring/owner?key=K`: the owner of `key`, its owner on the ring being drained (null when
/// none runs), and the nodes that hold a live copy right now.
pub fn owner_json(shared: &Shared, key: &[u8]) -> String {
    let topology = shared.topology.load();
    let mut out = String::with_capacity(256);
    out.push_str("{\"key\":");
    json_str(&mut out, key);
    let _ = write!(out, ",\"generation\":{},\"owner\":", topology.generation);
    json_str(&mut out, topology.node_for(key).name().as_bytes());
    out.push_str(",\"previous_owner\":");
    match topology.previous_owner(key) {
        Some(node) => json_str(&mut out, node.name().as_bytes()),
        None => out.push_str("null"),
    }
    out.push_str(",\"held_by\":[");
    let mut first = true;
    for node in topology.nodes.iter().chain(&topology.draining_nodes()) {
        if node.entry(key, |e| e.item().is_some()) {
            if !first {
                out.push(',');
            }
            first = false;
            json_str(&mut out, node.name().as_bytes());
        }
    }
    out.push_str("]}\n");
    out
}

/// Appends `bytes` as a JSON string (invalid UTF-8 replaced).
fn json_str(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The percent-decoded value of `name` in a query string (`+` is a space, as in forms).
fn query_param(query: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        (kv.next() == Some(name)).then(|| percent_decode(kv.next().unwrap_or_default()))
    })
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
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

    #[test]
    fn query_strings_decode() {
        assert_eq!(
            query_param(b"key=a%20b%2Bc+d", b"key"),
            Some(b"a b+c d".to_vec())
        );
        assert_eq!(
            query_param(b"x=1&key=%7Buser%7D", b"key"),
            Some(b"{user}".to_vec())
        );
        assert_eq!(query_param(b"x=1", b"key"), None);
        assert_eq!(query_param(b"key=50%", b"key"), Some(b"50%".to_vec()));
        assert_eq!(query_param(b"key=%4", b"key"), Some(b"%4".to_vec()));
        let mut s = String::new();
        json_str(&mut s, b"a\"b\\c\n");
        assert_eq!(s, r#""a\"b\\c\u000a""#);
    }
}
