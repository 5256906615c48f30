//! Prometheus metrics and the small HTTP listener that serves them with the admin endpoints.
//!
//! Owns: metric names, their help text, the process-wide recorder, and `GET /metrics`,
//! `GET /health`.
//! Must not touch: the data path. Gauges that mirror node state are refreshed at scrape time,
//! so requests pay nothing for them.
//! Invariants: the recorder is installed once per process (tests start many servers in one
//! process); names start with `ringcache_`, counters end in `_total`, units are in the name.

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
    let path = parts.next().unwrap_or_default();
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, ctype, body) = match (method, path) {
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
