//! Hardening against slow and hostile clients: output-buffer limits (slow readers and huge
//! replies), the connection cap on both protocols, the idle timeout, and the protocols'
//! out-of-memory errors. Every wait is bounded; nothing sleeps to synchronise.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Raw, TWO_NODES, TestServer, eventually};
use ringcache::server::Stats;

/// Resident memory of this process (the server runs in it), in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

/// `name{labels} value` from a Prometheus scrape, or 0 when absent.
fn metric(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Writes `request` `count` times from another thread, ignoring the error the write gets once
/// the server closes the socket. Returns the thread and the socket for the test to hold (and
/// never read).
fn flood(
    addr: SocketAddr,
    request: &'static [u8],
    count: usize,
) -> (std::thread::JoinHandle<()>, TcpStream) {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_write_timeout(Some(Duration::from_secs(60)))
        .expect("write timeout");
    let mut writer = stream.try_clone().expect("clone");
    let thread = std::thread::spawn(move || {
        let batch: Vec<u8> = request.repeat(1000);
        for _ in 0..count / 1000 {
            if writer.write_all(&batch).is_err() {
                return;
            }
        }
    });
    (thread, stream)
}

#[test]
fn a_client_that_never_reads_is_closed_and_memory_stays_bounded() {
    let server = TestServer::start(&format!("[limits]\noutput_timeout = \"1s\"\n{TWO_NODES}"));
    let value = vec![b'v'; 100_000];
    let mut raw = server.raw();
    let mut set = format!("set big 0 0 {}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    raw.roundtrip(&set, b"STORED\r\n");

    let before = rss_bytes();
    let mut peak = before;
    // 100k gets of a 100 KB value over each protocol: 10 GB of replies each if buffered.
    for (i, (addr, request)) in [
        (server.memcache, &b"get big\r\n"[..]),
        (server.resp, &b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n"[..]),
    ]
    .into_iter()
    .enumerate()
    {
        let (writer, socket) = flood(addr, request, 100_000);
        let closed = eventually(Duration::from_secs(30), || {
            peak = peak.max(rss_bytes());
            Stats::get(&server.shared.stats.closed_output_timeout) == i as u64 + 1
        });
        assert!(closed, "the slow reader was not closed");
        writer.join().expect("writer");
        drop(socket);
    }
    let growth = peak.saturating_sub(before);
    eprintln!(
        "slow readers: RSS before {} MiB, peak {} MiB, growth {} MiB",
        before >> 20,
        peak >> 20,
        growth >> 20
    );
    assert!(
        growth < 64 << 20,
        "RSS grew by {} MiB while serving clients that never read",
        growth >> 20
    );
    let scrape = server.http_get("/metrics");
    assert_eq!(
        metric(
            &scrape,
            "ringcache_connections_closed_total{reason=\"output_timeout\"}"
        ),
        2.0,
        "{scrape}"
    );
    // The server still serves everyone else.
    server
        .raw()
        .roundtrip(b"version\r\n", b"VERSION 1.6.18-ringcache-0.1.0\r\n");
}

#[test]
fn a_reply_over_max_output_buffer_closes_or_fails() {
    let server = TestServer::start(&format!(
        "[limits]\nmax_output_buffer = \"1MiB\"\n{TWO_NODES}"
    ));
    let mut raw = server.raw();
    let value = "x".repeat(100_000);
    for i in 0..20 {
        raw.roundtrip(
            format!("set k{i} 0 0 {}\r\n{value}\r\n", value.len()).as_bytes(),
            b"STORED\r\n",
        );
    }
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();

    // memcached: the get is refused with memcached's error; the connection stays usable.
    raw.roundtrip(
        format!("get {}\r\n", keys.join(" ")).as_bytes(),
        b"SERVER_ERROR out of memory writing get response\r\n",
    );
    raw.send(b"get k1\r\n");
    let got = raw.read_until(b"END\r\n");
    assert!(got.starts_with(b"VALUE k1 0 100000\r\n"));

    // RESP: like redis's client-output-buffer-limit, the client is closed; replies before
    // the oversized one in the same batch are still delivered.
    let mut resp = server.raw_resp();
    let mut mget = format!("PING\r\n*{}\r\n$4\r\nMGET\r\n", keys.len() + 1);
    for k in &keys {
        mget.push_str(&format!("${}\r\n{k}\r\n", k.len()));
    }
    resp.send(mget.as_bytes());
    assert_eq!(resp.read_to_close(), b"+PONG\r\n");
    assert_eq!(Stats::get(&server.shared.stats.closed_output_buffer), 1);
    let scrape = server.http_get("/metrics");
    assert_eq!(
        metric(
            &scrape,
            "ringcache_connections_closed_total{reason=\"output_buffer\"}"
        ),
        1.0
    );
    // The limit is per request: a pipeline whose replies add up to more is served whole.
    let mut resp = server.raw_resp();
    resp.send(&b"GET k1\r\n".repeat(30));
    let mut all = vec![0u8; 30 * (b"$100000\r\n".len() + value.len() + 2)];
    resp.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    std::io::Read::read_exact(&mut resp.stream, &mut all).expect("30 replies");
    assert!(all.starts_with(b"$100000\r\nxxx"));
    resp.roundtrip(b"PING\r\n", b"+PONG\r\n");
    // A reply under the limit is fine.
    let mut resp = server.raw_resp();
    resp.send(b"*3\r\n$4\r\nMGET\r\n$2\r\nk1\r\n$2\r\nk2\r\n");
    let got = resp.read_until(b"\r\n");
    assert!(got.starts_with(b"*2\r\n$100000\r\n"));
}

#[test]
fn max_connections_refuses_with_each_protocols_error_and_counts() {
    let server = TestServer::start(&format!("[limits]\nmax_connections = 1\n{TWO_NODES}"));
    let mut first = server.raw();
    first.roundtrip(b"version\r\n", b"VERSION 1.6.18-ringcache-0.1.0\r\n");

    // memcached 1.6 writes exactly this line, then closes (memcached.c, conn_listening).
    assert_eq!(
        server.raw().read_to_close(),
        b"ERROR Too many open connections\r\n"
    );
    assert_eq!(
        server.raw_resp().read_to_close(),
        b"-ERR max number of clients reached\r\n"
    );
    assert_eq!(Stats::get(&server.shared.stats.rejected_connections), 2);
    let scrape = server.http_get("/metrics");
    assert_eq!(
        metric(
            &scrape,
            "ringcache_connections_rejected_total{reason=\"max_connections\"}"
        ),
        2.0
    );

    // Once the first leaves, its slot is free again.
    drop(first);
    assert!(eventually(Duration::from_secs(10), || Stats::get(
        &server.shared.stats.curr_connections
    ) == 0));
    server.raw_resp().roundtrip(b"PING\r\n", b"+PONG\r\n");
}

#[test]
fn idle_connections_are_closed_and_counted() {
    let server = TestServer::start(&format!("[limits]\nidle_timeout = \"300ms\"\n{TWO_NODES}"));
    let mut mc = server.raw();
    mc.roundtrip(b"version\r\n", b"VERSION 1.6.18-ringcache-0.1.0\r\n");
    let mut resp = server.raw_resp();
    resp.roundtrip(b"PING\r\n", b"+PONG\r\n");
    assert_eq!(mc.read_to_close(), b"");
    assert_eq!(resp.read_to_close(), b"");
    assert_eq!(Stats::get(&server.shared.stats.closed_idle_timeout), 2);
    let scrape = server.http_get("/metrics");
    assert_eq!(
        metric(
            &scrape,
            "ringcache_connections_closed_total{reason=\"idle_timeout\"}"
        ),
        2.0
    );
}

#[test]
fn a_full_node_answers_each_protocols_out_of_memory_error() {
    // One node whose whole budget is smaller than one value (which is under max_value_size):
    // nothing can be evicted to make room.
    let server = TestServer::start("[[nodes]]\nname = \"tiny\"\nmax_memory = \"64KiB\"\n");
    let value = "x".repeat(100_000);
    let mut mc: Raw = server.raw();
    mc.roundtrip(
        format!("set big 0 0 {}\r\n{value}\r\n", value.len()).as_bytes(),
        b"SERVER_ERROR out of memory storing object\r\n",
    );
    mc.roundtrip(b"get big\r\n", b"END\r\n");
    let mut resp = server.raw_resp();
    resp.roundtrip(
        format!(
            "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n{value}\r\n",
            value.len()
        )
        .as_bytes(),
        b"-OOM command not allowed when used memory > 'maxmemory'.\r\n",
    );
    // Small writes still work on the same connections.
    resp.roundtrip(b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n", b"+OK\r\n");
    mc.roundtrip(b"get a\r\n", b"VALUE a 0 1\r\nb\r\nEND\r\n");
}

#[test]
fn oversized_input_is_refused_without_buffering_it() {
    let server = TestServer::start(&format!(
        "[limits]\nmax_value_size = \"512KiB\"\nmax_request_size = \"1MiB\"\nproto_max_bulk_len = \"1MiB\"\n{TWO_NODES}"
    ));
    let before = rss_bytes();

    // memcached: a 200 MB data block over max_value_size is swallowed as it arrives, never
    // buffered, and answered with memcached's error; the connection stays usable.
    let mut mc = server.raw();
    let len = 200_000_000usize;
    mc.send(format!("set big 0 0 {len}\r\n").as_bytes());
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0;
    while sent < len {
        let n = chunk.len().min(len - sent);
        mc.send(&chunk[..n]);
        sent += n;
    }
    mc.roundtrip(b"\r\n", b"SERVER_ERROR object too large for cache\r\n");
    mc.roundtrip(b"get big\r\n", b"END\r\n");

    // A command line longer than max_request_size (a multi-get may pass memcached's 2048):
    // refused and closed. One byte past the limit, so the server has read all of it.
    let mut mc = server.raw();
    let mut line = b"get".to_vec();
    while line.len() <= 1 << 20 {
        line.extend_from_slice(b" k");
    }
    mc.send(&line);
    assert_eq!(mc.read_to_close(), b"CLIENT_ERROR line too long\r\n");

    // RESP: a bulk longer than proto-max-bulk-len is refused at its header.
    let mut resp = server.raw_resp();
    resp.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200000000\r\n");
    assert_eq!(
        resp.read_to_close(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    // Very many small arguments: the request as a whole passes twice proto_max_bulk_len.
    let mut resp = server.raw_resp();
    // Sent up to the header that crosses the limit (plus redis's 64 KiB inline slack), so that
    // the server has read everything and closes with a FIN, not a reset.
    let limit = (2 << 20) + 64 * 1024;
    let mut many = b"*1000000000\r\n".to_vec();
    loop {
        let end = many.len() + b"$1\r\na\r\n".len();
        many.extend_from_slice(b"$1\r\n");
        if end > limit {
            break;
        }
        many.extend_from_slice(b"a\r\n");
    }
    resp.send(&many);
    let got = resp.read_to_close();
    assert!(
        got.starts_with(b"-ERR Protocol error: "),
        "{}",
        String::from_utf8_lossy(&got)
    );

    let growth = rss_bytes().saturating_sub(before);
    eprintln!("oversized input: RSS growth {} MiB", growth >> 20);
    assert!(growth < 64 << 20, "RSS grew by {} MiB", growth >> 20);
    server.raw_resp().roundtrip(b"PING\r\n", b"+PONG\r\n");
}

#[test]
fn input_sent_during_a_blocking_wait_is_bounded() {
    let server = TestServer::start(&format!(
        "[limits]\nmax_value_size = \"512KiB\"\nmax_request_size = \"1MiB\"\nproto_max_bulk_len = \"1MiB\"\n{TWO_NODES}"
    ));
    let before = rss_bytes();
    let mut resp = server.raw_resp();
    resp.send(b"*3\r\n$5\r\nBLPOP\r\n$4\r\nlist\r\n$1\r\n0\r\n");
    // Valid pipelined requests keep arriving while BLPOP waits: buffered up to the limit,
    // then the connection is closed.
    let ping = b"*1\r\n$4\r\nPING\r\n".repeat(10_000);
    let mut sent = 0usize;
    while sent < 20 << 20 {
        if std::io::Write::write_all(&mut resp.stream, &ping).is_err() {
            break;
        }
        sent += ping.len();
    }
    assert!(eventually(Duration::from_secs(10), || Stats::get(
        &server.shared.stats.closed_input_buffer
    ) == 1));
    let growth = rss_bytes().saturating_sub(before);
    eprintln!(
        "blocked client input: {} MiB sent, RSS growth {} MiB",
        sent >> 20,
        growth >> 20
    );
    assert!(growth < 64 << 20, "RSS grew by {} MiB", growth >> 20);
    let scrape = server.http_get("/metrics");
    assert_eq!(
        metric(
            &scrape,
            "ringcache_connections_closed_total{reason=\"input_buffer\"}"
        ),
        1.0
    );
    server.raw_resp().roundtrip(b"PING\r\n", b"+PONG\r\n");
}
