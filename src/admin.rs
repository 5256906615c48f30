//! The admin HTTP listener: `GET /metrics`, `GET /health`, and the admin JSON.
//!
//! Owns: the HTTP/1.x exchange of the metrics listener (one request per connection), the
//! scrape-time refresh of gauges that mirror node and server state, `GET /ring` (generation,
//! hash, nodes with weight, points, items and memory, draining nodes, migration progress) and
//! `GET /ring/owner?key=K` (the key's owner, its owner on the ring being drained, and which
//! nodes hold a copy now), and the upkeep task of the recorder. The JSON is written by hand:
//! a few flat objects do not need serde_json.
//! Must not touch: the data path. Gauges that mirror node state are refreshed at scrape time,
//! so requests pay nothing for them. Accepting (allow-list, back-off on accept errors) is
//! `net::listener::accept_loop`, shared with the cache listeners.
//! Invariants: a request that does not finish within 10 s is dropped; a request head over
//! 8 KiB is dropped unanswered.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Cidr;
use crate::config::CacheListener;
use crate::metrics::*;
use crate::net::listener::accept_loop;
use crate::net::stop::Ticker;
use crate::server::{Shared, Stats};

/// Runs [`Metrics::run_upkeep`] every few seconds until shutdown.
pub async fn upkeep(metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut ticker = Ticker::new(Duration::from_secs(5), &shutdown);
    while ticker.tick().await {
        metrics.run_upkeep();
    }
}

/// Gives each remote member of the ring its reply-time histogram (members record into it
/// from then on); run by `app` for the first ring and by each scrape for later ones.
pub fn bind_remote_metrics(metrics: &Metrics, shared: &Shared) {
    for m in shared.topology.load().remotes() {
        m.stats.latency.get_or_init(|| {
            metrics.histogram(REMOTE_REPLY_DURATION_SECONDS, &[("node", m.name())])
        });
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
    bind_remote_metrics(metrics, shared);
    for m in topology.remotes() {
        let s = &m.stats;
        let n = [("node", m.name())];
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        metrics
            .counter(REMOTE_REQUESTS_TOTAL, &n)
            .absolute(load(&s.requests));
        metrics
            .counter(REMOTE_ERRORS_TOTAL, &n)
            .absolute(load(&s.errors));
        metrics
            .counter(REMOTE_TIMEOUTS_TOTAL, &n)
            .absolute(load(&s.timeouts));
        metrics
            .gauge(REMOTE_IN_FLIGHT, &n)
            .set(m.in_flight() as f64);
        metrics
            .gauge(REMOTE_CONNECTIONS, &n)
            .set(m.connected() as f64);
    }
    let st = &shared.stats;
    for listener in CacheListener::ALL {
        let c = &st.by_protocol[listener.index()];
        let label = [("protocol", listener.name())];
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
        .counter(
            CONNECTIONS_CLOSED_TOTAL,
            &[("reason", "pubsub_output_buffer")],
        )
        .absolute(shared.pubsub.overflows());
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
    let scripts = &shared.scripts;
    metrics
        .gauge(LUA_MEMORY_BYTES, &[])
        .set(scripts.lua_memory.load(Ordering::Relaxed) as f64);
    metrics
        .gauge(SCRIPTS_CACHED, &[])
        .set(scripts.cached.load(Ordering::Relaxed) as f64);
    metrics
        .counter(SCRIPTS_KILLED_TOTAL, &[])
        .absolute(scripts.killed.load(Ordering::Relaxed));
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
    if let Some(snap) = &shared.snapshots {
        let last = snap.last();
        metrics
            .gauge(SNAPSHOT_LAST_SAVE_TIMESTAMP_SECONDS, &[])
            .set(snap.last_save_unix() as f64);
        metrics
            .gauge(SNAPSHOT_DURATION_SECONDS, &[])
            .set(last.duration.as_secs_f64());
        metrics
            .gauge(SNAPSHOT_SIZE_BYTES, &[])
            .set(last.bytes as f64);
        metrics.gauge(SNAPSHOT_KEYS, &[]).set(last.keys as f64);
        metrics
            .counter(SNAPSHOT_FAILURES_TOTAL, &[])
            .absolute(snap.failures());
        metrics
            .gauge(SNAPSHOT_IN_PROGRESS, &[])
            .set(if snap.in_progress() { 1.0 } else { 0.0 });
    }
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
    metrics.render()
}

/// Serves `/metrics`, `/health` and the admin JSON until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    allow: Option<Vec<Cidr>>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let stats = Arc::clone(&shared);
    accept_loop(
        &listener,
        allow.as_deref(),
        &stats,
        &shutdown,
        |stream, _peer| {
            let shared = Arc::clone(&shared);
            let metrics = Arc::clone(&metrics);
            tracker.spawn(async move {
                let _ = tokio::time::timeout(
                    Duration::from_secs(10),
                    respond(stream, &shared, &metrics),
                )
                .await;
            });
        },
    )
    .await;
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
        "{{\"generation\":{},\"hash\":\"{}\",\"distribution\":\"{}\",\"points_per_weight\":{},\"nodes\":[",
        topology.generation,
        cfg.hash.name(),
        cfg.hash.distribution().name(),
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
        if let Some(m) = topology.remote(i) {
            out.pop();
            out.push_str(",\"remote\":{\"address\":");
            json_str(&mut out, m.target.address.as_bytes());
            let s = &m.stats;
            let load =
                |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
            let _ = write!(
                out,
                ",\"protocol\":\"{}\",\"connections\":{},\"connected\":{},\"in_flight\":{},\"requests\":{},\"errors\":{},\"timeouts\":{}}}}}",
                m.protocol.name(),
                m.connections(),
                m.connected(),
                m.in_flight(),
                load(&s.requests),
                load(&s.errors),
                load(&s.timeouts)
            );
        }
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
