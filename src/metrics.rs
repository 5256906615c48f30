//! Prometheus metrics and the small HTTP listener that serves them with the admin endpoints.
//!
//! Owns: metric names, their help text, the process-wide recorder, and `GET /metrics`,
//! `GET /health`, and the admin JSON: `GET /ring` (generation, hash, nodes with weight, points,
//! items and memory, draining nodes, migration progress) and `GET /ring/owner?key=K` (the
//! key's owner, its owner on the ring being drained, and which nodes hold a copy now). The JSON
//! is written by hand: a few flat objects do not need serde_json.
//! Must not touch: the data path. Gauges that mirror node state are refreshed at scrape time,
//! so requests pay nothing for them.
//! Invariants: the recorder is installed once per process (tests start many servers in one
//! process); names start with `ringcache_`, counters end in `_total`, units are in the name.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::server::{Shared, Stats};

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
        "Client connections refused, by reason.",
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

/// Installs the process-wide recorder (once) and returns its handle.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed already; then ours just stays unused.
            let _ = metrics::set_global_recorder(recorder);
            for (name, help) in ALL {
                if name.ends_with("_total") {
                    describe_counter!(*name, *help);
                } else {
                    describe_gauge!(*name, *help);
                }
            }
            handle
        })
        .clone()
}

/// Copies node and server counters into the exporter's gauges, then renders the exposition.
/// Counters are mirrored as absolute values so that the data path keeps only plain atomics.
pub fn render(handle: &PrometheusHandle, shared: &Shared) -> String {
    let topology = shared.topology.load();
    for node in &topology.nodes {
        let s = node.stats();
        let name = node.name().to_string();
        gauge!(NODE_MEMORY_USED_BYTES, "node" => name.clone()).set(s.used_bytes as f64);
        gauge!(NODE_MEMORY_MAX_BYTES, "node" => name.clone()).set(s.max_bytes as f64);
        gauge!(NODE_ITEMS, "node" => name.clone()).set(s.items as f64);
        metrics::counter!(NODE_EVICTIONS_TOTAL, "node" => name.clone()).absolute(s.evictions);
        metrics::counter!(NODE_EXPIRED_TOTAL, "node" => name.clone()).absolute(s.expired);
        metrics::counter!(KEYSPACE_HITS_TOTAL, "node" => name.clone()).absolute(s.hits);
        metrics::counter!(KEYSPACE_MISSES_TOTAL, "node" => name).absolute(s.misses);
    }
    let st = &shared.stats;
    gauge!(CONNECTIONS, "protocol" => "memcache").set(Stats::get(&st.curr_connections) as f64);
    metrics::counter!(CONNECTIONS_ACCEPTED_TOTAL, "protocol" => "memcache")
        .absolute(Stats::get(&st.total_connections));
    metrics::counter!(CONNECTIONS_REJECTED_TOTAL, "reason" => "max_connections")
        .absolute(Stats::get(&st.rejected_connections));
    metrics::counter!(NETWORK_BYTES_TOTAL, "direction" => "in")
        .absolute(Stats::get(&st.bytes_read));
    metrics::counter!(NETWORK_BYTES_TOTAL, "direction" => "out")
        .absolute(Stats::get(&st.bytes_written));
    gauge!(RING_GENERATION).set(topology.generation as f64);
    gauge!(RING_NODES).set(topology.nodes.len() as f64);
    metrics::counter!(CONFIG_RELOADS_TOTAL, "result" => "ok")
        .absolute(Stats::get(&st.config_reloads_ok));
    metrics::counter!(CONFIG_RELOADS_TOTAL, "result" => "error")
        .absolute(Stats::get(&st.config_reloads_error));
    let ledger = topology.ledger();
    let running = topology.is_migrating();
    gauge!(REBALANCE_IN_PROGRESS).set(if running { 1.0 } else { 0.0 });
    metrics::counter!(REBALANCE_KEYS_MOVED_TOTAL)
        .absolute(ledger.keys_moved.load(Ordering::Relaxed));
    metrics::counter!(REBALANCE_BYTES_MOVED_TOTAL)
        .absolute(ledger.bytes_moved.load(Ordering::Relaxed));
    let duration = match topology.migration_progress() {
        Some(p) if running => p.elapsed,
        _ => Duration::from_micros(ledger.last_duration_us.load(Ordering::Relaxed)),
    };
    gauge!(REBALANCE_DURATION_SECONDS).set(duration.as_secs_f64());
    handle.render()
}

/// Serves `/metrics` and `/health` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    handle: PrometheusHandle,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = Arc::clone(&shared);
        let handle = handle.clone();
        tracker.spawn(async move {
            let _ =
                tokio::time::timeout(Duration::from_secs(10), respond(stream, &shared, &handle))
                    .await;
        });
    }
}

/// Answers one HTTP/1.x request and closes the connection.
async fn respond(
    mut stream: TcpStream,
    shared: &Shared,
    handle: &PrometheusHandle,
) -> std::io::Result<()> {
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
            render(handle, shared),
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
