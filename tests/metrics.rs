//! Prometheus metrics: counters move with traffic and `promtool check metrics` accepts a scrape.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Raw, TWO_NODES, TestServer, eventually, http_get};
use ringcache::store::Clock;

fn scrape(server: &TestServer) -> String {
    let (status, body) = http_get(server.metrics, "/metrics");
    assert_eq!(status, 200);
    body
}

/// Sum of the samples of `name` whose labels include every `labels` pair.
fn value(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name
                && labels
                    .iter()
                    .all(|(k, val)| rest.contains(&format!("{k}=\"{val}\""))))
            .then(|| v.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

#[test]
fn counters_follow_traffic() {
    let clock = Clock::mock(1_700_000_000_000);
    let server = TestServer::start_with_clock(
        r#"
[[nodes]]
name = "cache-a"
max_memory = "1MiB"

[[nodes]]
name = "cache-b"
max_memory = "1MiB"
"#,
        clock.clone(),
    );
    let before = scrape(&server);
    let mut c = server.raw();
    c.roundtrip(b"set hit 0 0 1\r\n1\r\n", b"STORED\r\n");
    c.roundtrip(
        b"get hit\r\nget hit\r\n",
        b"VALUE hit 0 1\r\n1\r\nEND\r\nVALUE hit 0 1\r\n1\r\nEND\r\n",
    );
    c.roundtrip(b"get miss1 miss2 miss3\r\n", b"END\r\n");
    c.roundtrip(b"bogus\r\n", b"ERROR\r\n");
    c.roundtrip(b"set short 0 5 1\r\nx\r\n", b"STORED\r\n");
    clock.advance(6_000);
    c.roundtrip(b"get short\r\n", b"END\r\n");
    let value_1k = vec![b'v'; 1000];
    for i in 0..3000 {
        let mut req = format!("set fill:{i} 0 0 1000\r\n").into_bytes();
        req.extend_from_slice(&value_1k);
        req.extend_from_slice(b"\r\n");
        c.roundtrip(&req, b"STORED\r\n");
    }
    let _second = Raw::connect(server.memcache);
    let _third = Raw::connect(server.memcache);
    let after = scrape(&server);

    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert_eq!(delta("ringcache_keyspace_hits_total", &[]), 2.0);
    assert_eq!(delta("ringcache_keyspace_misses_total", &[]), 4.0);
    assert_eq!(delta("ringcache_node_expired_total", &[]), 1.0);
    assert!(delta("ringcache_node_evictions_total", &[]) > 1000.0);
    // The listener counts a connection when it accepts it, just after the client's connect.
    let accepted_before = value(&before, "ringcache_connections_accepted_total", &[]);
    assert!(eventually(Duration::from_secs(10), || {
        value(
            &scrape(&server),
            "ringcache_connections_accepted_total",
            &[],
        ) >= accepted_before + 3.0
    }));
    let get_ok = [
        ("protocol", "memcache"),
        ("command", "get"),
        ("result", "ok"),
    ];
    assert_eq!(delta("ringcache_commands_total", &get_ok), 4.0);
    let invalid = [("command", "invalid"), ("result", "error")];
    assert_eq!(delta("ringcache_commands_total", &invalid), 1.0);
    assert_eq!(
        delta("ringcache_commands_total", &[("command", "set")]),
        3002.0
    );
    // Latency is sampled: one command in LATENCY_SAMPLE_EVERY per connection is timed.
    let timed = value(
        &after,
        "ringcache_command_duration_seconds_count",
        &[("command", "set")],
    );
    let expected = 3002.0 / f64::from(ringcache::metrics::LATENCY_SAMPLE_EVERY);
    assert!(
        (expected * 0.8..=expected * 1.2 + 2.0).contains(&timed),
        "{timed} timed sets, expected about {expected}"
    );
    for node in ["cache-a", "cache-b"] {
        let used = value(
            &after,
            "ringcache_node_memory_used_bytes",
            &[("node", node)],
        );
        let max = value(&after, "ringcache_node_memory_max_bytes", &[("node", node)]);
        assert!(used > 0.0 && used <= max, "{node}: {used} of {max}");
    }
    assert!(value(&after, "ringcache_process_resident_memory_bytes", &[]) > 1e6);
    assert_eq!(value(&after, "ringcache_ring_nodes", &[]), 2.0);
}

#[test]
fn health_and_unknown_paths() {
    let server = TestServer::start(TWO_NODES);
    assert_eq!(
        http_get(server.metrics, "/health"),
        (200, "ok\n".to_string())
    );
    assert_eq!(http_get(server.metrics, "/nope").0, 404);
}

fn load(server: &TestServer, rounds: usize) {
    let mut c = server.raw();
    for i in 0..rounds {
        c.roundtrip(
            format!("set k{i} 0 0 2\r\nv{}\r\n", i % 10).as_bytes(),
            b"STORED\r\n",
        );
        c.send(format!("get k{i} k{}\r\n", i + 1).as_bytes());
        c.read_until(b"END\r\n");
        c.roundtrip(
            format!("mg k{i} v\r\n").as_bytes(),
            format!("VA 2\r\nv{}\r\n", i % 10).as_bytes(),
        );
    }
}

#[test]
fn promtool_accepts_a_scrape_after_load() {
    if !common::tool("promtool", "prometheus") {
        return;
    }
    let server = TestServer::start(TWO_NODES);
    load(&server, 200);
    let body = scrape(&server);
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write scrape");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
