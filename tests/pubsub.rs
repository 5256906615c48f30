//! Pub/sub across connections: the message streams of several subscribers (channels,
//! patterns, shard channels; RESP2 and RESP3) compared byte for byte with redis-server's; the
//! `redis` crate's PubSub; a stress test of many publishers and subscribers (every message
//! once, in order per publisher); a subscriber that never reads (closed, memory bounded, the
//! others unaffected); one connection with a million subscriptions.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::TestServer;
use common::frame::Frame;
use common::redis_server::RedisServer;

/// Held by the tests that measure or use a lot of memory: resident memory is the whole test
/// process's, so the million-subscription test must not run while another measures.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// One raw RESP connection that reads whole frames.
struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Peer {
    fn connect(addr: SocketAddr) -> Peer {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        Peer {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, args: &[&[u8]]) {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&req).expect("write");
    }

    /// The raw bytes of the next frame (waits up to 10 s).
    fn frame(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((_, n)) = Frame::decode(&self.buf).expect("valid frame") {
                return self.buf.drain(..n).collect();
            }
            assert!(
                Instant::now() < deadline,
                "no frame; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("closed; have {:?}", String::from_utf8_lossy(&self.buf)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Sends a command and returns the raw bytes of `n` frames.
    fn call(&mut self, args: &[&[u8]], n: usize) -> Vec<u8> {
        self.send(args);
        (0..n).flat_map(|_| self.frame()).collect()
    }

    /// Everything up to and including the reply to a PING sent now: what was delivered before.
    fn until_ping(&mut self) -> Vec<u8> {
        self.send(&[b"PING"]);
        let mut got = Vec::new();
        loop {
            let f = self.frame();
            let end = f == b"+PONG\r\n" || f == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n";
            got.extend_from_slice(&f);
            if end {
                return got;
            }
        }
    }

    /// Reads until `suffix` ends the received bytes (within `limit`); how many bytes came.
    fn read_until(&mut self, suffix: &[u8], limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        let mut total = 0;
        let mut chunk = vec![0u8; 1 << 20];
        while !self.buf.ends_with(suffix) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the suffix"
            );
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("closed"),
                Ok(n) => {
                    total += n;
                    // Keep only a tail: the stream may be tens of megabytes.
                    self.buf.extend_from_slice(&chunk[..n]);
                    if self.buf.len() > 64 {
                        self.buf.drain(..self.buf.len() - 64);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        self.buf.clear();
        total
    }
}

/// Runs the same subscribers and publisher against `addr`; returns every connection's bytes.
fn message_streams(addr: SocketAddr) -> Vec<Vec<u8>> {
    let mut s1 = Peer::connect(addr);
    let mut s2 = Peer::connect(addr);
    let mut s3 = Peer::connect(addr);
    let mut s4 = Peer::connect(addr);
    let mut s5 = Peer::connect(addr);
    let mut streams = vec![Vec::new(); 6];
    streams[0].extend(s1.call(&[b"SUBSCRIBE", b"news", b"sport"], 2));
    streams[1].extend(s2.call(&[b"PSUBSCRIBE", b"n*"], 1));
    s3.call(&[b"HELLO", b"3"], 1); // carries the client id: not compared
    streams[2].extend(s3.call(&[b"SUBSCRIBE", b"news"], 1));
    streams[2].extend(s3.call(&[b"PSUBSCRIBE", b"s?ort"], 1));
    streams[3].extend(s4.call(&[b"SSUBSCRIBE", b"shard1", b"shard2"], 2));
    s5.call(&[b"HELLO", b"3"], 1);
    streams[4].extend(s5.call(&[b"SSUBSCRIBE", b"shard1"], 1));
    streams[4].extend(s5.call(&[b"SUBSCRIBE", b"news", b"weather"], 2));
    streams[4].extend(s5.call(&[b"UNSUBSCRIBE", b"news"], 1));

    let mut publisher = Peer::connect(addr);
    let payloads: [&[u8]; 4] = [b"plain", b"", b"with\r\nnewline", &[0, 255, 13, 10, 0]];
    for i in 0..50 {
        let payload = payloads[i % payloads.len()];
        let channel: &[u8] = match i % 6 {
            0 => b"news",
            1 => b"sport",
            2 => b"nowhere",
            3 => b"weather",
            4 => b"spo",
            _ => b"n",
        };
        streams[5].extend(publisher.call(&[b"PUBLISH", channel, payload], 1));
        if i % 5 == 0 {
            let shard: &[u8] = if i % 10 == 0 { b"shard1" } else { b"shard2" };
            streams[5].extend(publisher.call(&[b"SPUBLISH", shard, payload], 1));
        }
    }
    // PUBSUB sees the subscriptions of the others.
    streams[5].extend(publisher.call(&[b"PUBSUB", b"NUMSUB", b"news", b"sport", b"weather"], 1));
    streams[5].extend(publisher.call(&[b"PUBSUB", b"NUMPAT"], 1));
    streams[5].extend(publisher.call(&[b"PUBSUB", b"SHARDNUMSUB", b"shard1", b"shard2"], 1));
    for (i, s) in [&mut s1, &mut s2, &mut s3, &mut s4, &mut s5]
        .into_iter()
        .enumerate()
    {
        streams[i].extend(s.until_ping());
    }
    // A subscriber that leaves stops receiving, and the counts follow.
    drop(s1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let numsub = publisher.call(&[b"PUBSUB", b"NUMSUB", b"sport"], 1);
        if numsub.ends_with(b":0\r\n") {
            break;
        }
        assert!(Instant::now() < deadline, "the closed subscriber stayed");
        std::thread::sleep(Duration::from_millis(5));
    }
    streams[5].extend(publisher.call(&[b"PUBLISH", b"sport", b"after"], 1));
    streams[2].extend(s3.until_ping());
    streams
}

#[test]
fn message_streams_match_redis_server() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = TestServer::start(common::TWO_NODES);
    let want = message_streams(redis.addr);
    let got = message_streams(server.resp);
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(g),
            String::from_utf8_lossy(w),
            "connection {i} differs from redis-server"
        );
    }
    assert!(want[2].len() > 500, "the streams carry messages");
}

#[test]
fn the_redis_crate_pubsub_receives_channel_and_pattern_messages() {
    let server = TestServer::start(common::TWO_NODES);
    let mut sub_conn = server.redis();
    let mut publisher = server.redis();
    let mut sub = sub_conn.as_pubsub();
    sub.subscribe("orders").expect("subscribe");
    sub.psubscribe("cache:*").expect("psubscribe");
    let n: i64 = redis::cmd("PUBLISH")
        .arg("orders")
        .arg("o-1")
        .query(&mut publisher)
        .expect("publish");
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("PUBLISH")
        .arg("cache:user:1")
        .arg("invalidate")
        .query(&mut publisher)
        .expect("publish");
    assert_eq!(n, 1);
    let m = sub.get_message().expect("message");
    assert_eq!(m.get_channel_name(), "orders");
    assert_eq!(m.get_payload::<String>().expect("payload"), "o-1");
    assert!(!m.from_pattern());
    let m = sub.get_message().expect("message");
    assert_eq!(m.get_channel_name(), "cache:user:1");
    assert_eq!(m.get_pattern::<String>().expect("pattern"), "cache:*");
    assert_eq!(m.get_payload::<String>().expect("payload"), "invalidate");
    sub.unsubscribe("orders").expect("unsubscribe");
    sub.punsubscribe("cache:*").expect("punsubscribe");
    drop(sub);
    // Out of subscribe mode, the connection runs commands again.
    let pong: String = redis::cmd("PING").query(&mut sub_conn).expect("ping");
    assert_eq!(pong, "PONG");
    let n: i64 = redis::cmd("PUBLISH")
        .arg("orders")
        .arg("o-2")
        .query(&mut publisher)
        .expect("publish");
    assert_eq!(n, 0);
}

#[test]
fn an_idle_resp3_connection_receives_pushes() {
    let server = TestServer::start(common::TWO_NODES);
    let mut sub = Peer::connect(server.resp);
    sub.call(&[b"HELLO", b"3"], 1);
    sub.call(&[b"SUBSCRIBE", b"jobs"], 1);
    let mut publisher = server.redis();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("jobs")
        .arg("wake")
        .query(&mut publisher)
        .expect("publish");
    assert_eq!(n, 1);
    // Delivered without the subscriber sending anything.
    assert_eq!(
        sub.frame(),
        b">3\r\n$7\r\nmessage\r\n$4\r\njobs\r\n$4\r\nwake\r\n"
    );
    // And while it waits in a blocking pop.
    sub.send(&[b"BLPOP", b"queue", b"0"]);
    std::thread::sleep(Duration::from_millis(50));
    let _: i64 = redis::cmd("PUBLISH")
        .arg("jobs")
        .arg("again")
        .query(&mut publisher)
        .expect("publish");
    assert_eq!(
        sub.frame(),
        b">3\r\n$7\r\nmessage\r\n$4\r\njobs\r\n$5\r\nagain\r\n"
    );
    let _: i64 = redis::cmd("RPUSH")
        .arg("queue")
        .arg("x")
        .query(&mut publisher)
        .expect("rpush");
    assert_eq!(sub.frame(), b"*2\r\n$5\r\nqueue\r\n$1\r\nx\r\n");
}

/// Publishers race each other and subscribers (channel and pattern) for thousands of messages:
/// every subscriber gets every message exactly once, in each publisher's order.
#[test]
fn stress_every_message_arrives_once_in_publisher_order() {
    let _heavy = heavy();
    const PUBLISHERS: usize = 3;
    const MESSAGES: usize = 3000;
    let server = TestServer::start(common::TWO_NODES);
    let mut readers = Vec::new();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    for r in 0..4 {
        let mut conn = server.redis();
        let ready = ready_tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut sub = conn.as_pubsub();
            if r % 2 == 0 {
                sub.subscribe("stress").expect("subscribe");
            } else {
                sub.psubscribe("str*").expect("psubscribe");
            }
            ready.send(()).expect("ready");
            let mut next = [0usize; PUBLISHERS];
            for _ in 0..PUBLISHERS * MESSAGES {
                let m = sub.get_message().expect("message");
                assert_eq!(m.get_channel_name(), "stress");
                let payload: String = m.get_payload().expect("payload");
                let (p, seq) = payload.split_once(':').expect("p:seq");
                let (p, seq): (usize, usize) = (p.parse().expect("p"), seq.parse().expect("seq"));
                assert_eq!(
                    seq, next[p],
                    "reader {r}: publisher {p} out of order or lost"
                );
                next[p] += 1;
            }
            next
        }));
    }
    for _ in 0..4 {
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("subscribed");
    }
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let mut conn = server.redis();
            std::thread::spawn(move || {
                for seq in 0..MESSAGES {
                    let n: i64 = redis::cmd("PUBLISH")
                        .arg("stress")
                        .arg(format!("{p}:{seq}"))
                        .query(&mut conn)
                        .expect("publish");
                    assert_eq!(n, 4, "receivers");
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().expect("publisher");
    }
    for r in readers {
        assert_eq!(r.join().expect("reader"), [MESSAGES; PUBLISHERS]);
    }
}

/// Resident memory of this process (the server runs in it), in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse::<u64>().ok())
        .expect("VmRSS value")
        * 1024
}

fn info_field(server: &TestServer, field: &str) -> u64 {
    let mut c = server.redis();
    let info: String = redis::cmd("INFO").query(&mut c).expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:"))?.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO has no {field}"))
}

/// A subscriber that never reads while 64 MiB are published to it is closed once 1 MiB waits
/// for it; memory stays bounded and a subscriber that reads gets every message.
#[test]
fn a_subscriber_that_never_reads_is_closed_and_others_keep_receiving() {
    let _heavy = heavy();
    let server = TestServer::start(&format!(
        "[limits]\nmax_output_buffer = \"1MiB\"\noutput_timeout = \"120s\"\n{}",
        common::TWO_NODES
    ));
    let mut slow = Peer::connect(server.resp);
    slow.call(&[b"SUBSCRIBE", b"firehose"], 1);
    let mut good_conn = server.redis();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    const COUNT: usize = 4096;
    // The reading subscriber keeps up: the publisher stays at most 16 messages (256 KiB)
    // ahead of it, well within the limit, while the other falls ever further behind.
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&received);
    let good = std::thread::spawn(move || {
        let mut sub = good_conn.as_pubsub();
        sub.subscribe("firehose").expect("subscribe");
        ready_tx.send(()).expect("ready");
        for i in 0..COUNT {
            let m = sub.get_message().expect("message");
            let payload = m.get_payload_bytes();
            assert_eq!(payload.len(), 16 * 1024);
            assert_eq!(payload[0], (i % 251) as u8, "message {i}");
            seen.store(i + 1, std::sync::atomic::Ordering::Release);
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("subscribed");
    let before = rss_bytes();
    let mut publisher = server.redis();
    let mut peak = before;
    for i in 0..COUNT {
        while i >= received.load(std::sync::atomic::Ordering::Acquire) + 16 {
            std::thread::yield_now();
        }
        let payload = vec![(i % 251) as u8; 16 * 1024];
        let _: i64 = redis::cmd("PUBLISH")
            .arg("firehose")
            .arg(payload)
            .query(&mut publisher)
            .expect("publish");
        if i % 256 == 0 {
            peak = peak.max(rss_bytes());
        }
    }
    good.join().expect("the reading subscriber got everything");
    // Closed by the server although its socket is full and it never reads: the overflow ends
    // the stalled write at once, long before output_timeout. Only the publisher is left.
    assert!(
        common::eventually(Duration::from_secs(10), || {
            ringcache::server::Stats::get(&server.shared.stats.curr_connections) == 1
        }),
        "the slow subscriber is still connected ({} connections)",
        ringcache::server::Stats::get(&server.shared.stats.curr_connections)
    );
    assert!(
        info_field(&server, "client_output_buffer_limit_disconnections") >= 1,
        "the slow subscriber was counted"
    );
    let scrape = server.http_get("/metrics");
    let closed = scrape
        .lines()
        .find_map(|l| {
            l.strip_prefix("ringcache_connections_closed_total{reason=\"pubsub_output_buffer\"}")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(0.0);
    assert!(closed >= 1.0, "the metric counts it: {closed}");
    // Its socket ends: what the kernel buffered, then the close.
    slow.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut sink = Vec::new();
    let _ = slow.stream.read_to_end(&mut sink);
    assert!(
        sink.len() < 16 << 20,
        "got {} bytes of 64 MiB published",
        sink.len()
    );
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 32 << 20,
        "resident memory grew by {growth} bytes while 64 MiB went to a subscriber that never reads"
    );
    // Both subscribers are gone (one closed by the server, one by its thread): nothing is left
    // registered.
    assert!(common::eventually(Duration::from_secs(10), || info_field(
        &server,
        "pubsub_channels"
    ) == 0));
}

/// One connection subscribes to a million channels; publishing, introspection and
/// unsubscribing them all stay fast.
#[test]
fn a_million_subscriptions_on_one_connection() {
    let _heavy = heavy();
    const N: usize = 1_000_000;
    const BATCH: usize = 10_000;
    let server = TestServer::start(common::TWO_NODES);
    let mut sub = Peer::connect(server.resp);
    let rss_before = rss_bytes();
    let started = Instant::now();
    // Sent from another thread while this one reads the confirmations: a client that
    // pipelines 1M subscriptions without reading would stall both sides on full socket buffers.
    let mut writer = sub.stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        for b in 0..N / BATCH {
            let names: Vec<Vec<u8>> = (b * BATCH..(b + 1) * BATCH)
                .map(|i| format!("channel:{i}").into_bytes())
                .collect();
            let mut req = format!("*{}\r\n$9\r\nSUBSCRIBE\r\n", BATCH + 1).into_bytes();
            for n in &names {
                req.extend_from_slice(format!("${}\r\n", n.len()).as_bytes());
                req.extend_from_slice(n);
                req.extend_from_slice(b"\r\n");
            }
            writer.write_all(&req).expect("write");
        }
    });
    sub.read_until(format!(":{N}\r\n").as_bytes(), Duration::from_secs(120));
    sender.join().expect("sender");
    let subscribe_time = started.elapsed();
    // Memory in proportion: the connection's set, the registry's map and its subscriber list.
    let per_subscription = rss_bytes().saturating_sub(rss_before) / N as u64;
    assert!(
        per_subscription < 400,
        "{per_subscription} bytes of resident memory per subscription"
    );
    assert_eq!(info_field(&server, "pubsub_channels"), N as u64);
    let mut other = server.redis();
    let counts: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("channel:0")
        .arg("channel:999999")
        .arg("channel:1000000")
        .query(&mut other)
        .expect("numsub");
    assert_eq!(counts.len(), 6);
    assert_eq!(counts[1], redis::Value::Int(1));
    assert_eq!(counts[3], redis::Value::Int(1));
    assert_eq!(counts[5], redis::Value::Int(0));
    let n: i64 = redis::cmd("PUBLISH")
        .arg("channel:500000")
        .arg("hello")
        .query(&mut other)
        .expect("publish");
    assert_eq!(n, 1);
    assert_eq!(
        sub.frame(),
        b"*3\r\n$7\r\nmessage\r\n$14\r\nchannel:500000\r\n$5\r\nhello\r\n"
    );
    let started = Instant::now();
    sub.send(&[b"UNSUBSCRIBE"]);
    let bytes = sub.read_until(b":0\r\n", Duration::from_secs(120));
    let unsubscribe_time = started.elapsed();
    assert!(bytes > N * 30, "one reply per channel ({bytes} bytes)");
    assert_eq!(info_field(&server, "pubsub_channels"), 0);
    assert!(
        unsubscribe_time < Duration::from_secs(30),
        "unsubscribing from {N} channels took {unsubscribe_time:?} (subscribing: {subscribe_time:?})"
    );
    eprintln!(
        "{N} subscriptions: subscribe {subscribe_time:?}, unsubscribe all {unsubscribe_time:?}, \
         {per_subscription} bytes each"
    );
}

/// The writes every keyspace-notification comparison makes, one request each.
const KEYSPACE_WRITES: &[&[&str]] = &[
    &["SET", "k1", "v"],
    &["SET", "k1", "v2", "EX", "100"],
    &["APPEND", "k1", "x"],
    &["INCR", "n"],
    &["INCRBYFLOAT", "n", "1.5"],
    &["DEL", "k1", "n", "missing"],
    &["EXPIRE", "missing", "10"],
    &["SET", "k2", "v"],
    &["EXPIRE", "k2", "100"],
    &["PERSIST", "k2"],
    &["PERSIST", "k2"],
    &["RENAME", "k2", "k3"],
    &["LPUSH", "l", "a", "b"],
    &["RPUSH", "l", "c"],
    &["LPOP", "l"],
    &["RPOP", "l", "2"],
    &["HSET", "h", "f", "v"],
    &["HSET", "h", "f", "v2"],
    &["HINCRBY", "h", "g", "3"],
    &["HDEL", "h", "f", "g"],
    &["SADD", "s", "a", "b"],
    &["SADD", "s", "a"],
    &["SREM", "s", "a"],
    &["SREM", "s", "zzz"],
    &["ZADD", "z", "1", "a"],
    &["ZADD", "z", "2", "a"],
    &["ZINCRBY", "z", "1", "a"],
    &["ZREM", "z", "a"],
    &["SETNX", "k4", "v"],
    &["SETNX", "k4", "v"],
    &["MSET", "a", "1", "b", "2"],
    &["GETDEL", "a"],
    &["GETDEL", "a"],
    &["SETEX", "b", "100", "x"],
    &["EXPIRE", "b", "-1"],
    &["SET", "e", "v", "PX", "100"],
    &["PFADD", "hll", "a", "b"],
    &["PFADD", "hll", "a"],
    &["PFCOUNT", "hll"],
    &["PFMERGE", "hll2", "hll"],
    &["GEOADD", "geo", "1", "1", "a"],
    &["GEOADD", "geo", "1", "1", "a"],
    &[
        "GEOSEARCHSTORE",
        "gd",
        "geo",
        "FROMLONLAT",
        "1",
        "1",
        "BYRADIUS",
        "9",
        "km",
    ],
    &["GEORADIUS", "geo", "1", "1", "9", "km", "STORE", "gd2"],
    &[
        "GEOSEARCHSTORE",
        "gd",
        "geo",
        "FROMLONLAT",
        "50",
        "50",
        "BYRADIUS",
        "1",
        "km",
    ],
    &[
        "GEOSEARCHSTORE",
        "gd2",
        "nogeo",
        "FROMLONLAT",
        "1",
        "1",
        "BYRADIUS",
        "9",
        "km",
    ],
    &["GEORADIUS", "geo", "1", "1", "9", "km", "STORE", "geo"],
    &["PFMERGE", "hll2", "nohll", "hll"],
    &["PFDEBUG", "TODENSE", "hll"],
    &["GEORADIUS", "nogeo", "1", "1", "9", "km"],
    &["GEORADIUSBYMEMBER", "geo", "a", "9", "km"],
    // Reads: `keymiss` for the keys not found (class m), nothing else.
    &["GET", "missing"],
    &["MGET", "k3", "missing2", "k4"],
    &["HGET", "nohash", "f"],
    &["EXISTS", "missing"],
    &["TTL", "missing"],
    &["STRLEN", "missing"],
    &["LRANGE", "nolist", "0", "-1"],
    &["GET", "k3"],
    &["PFCOUNT", "nohll"],
    &["GEOPOS", "nogeo", "a"],
];

/// A pattern subscriber's stream while `KEYSPACE_WRITES` run with `flags`, then an expiry.
fn keyspace_stream(addr: SocketAddr, flags: &str) -> Vec<u8> {
    let mut admin = Peer::connect(addr);
    admin.call(&[b"FLUSHALL"], 1);
    admin.call(
        &[
            b"CONFIG",
            b"SET",
            b"notify-keyspace-events",
            flags.as_bytes(),
        ],
        1,
    );
    let mut sub = Peer::connect(addr);
    let mut stream = sub.call(&[b"PSUBSCRIBE", b"__key*__:*"], 1);
    let mut writer = Peer::connect(addr);
    for w in KEYSPACE_WRITES {
        let args: Vec<&[u8]> = w.iter().map(|s| s.as_bytes()).collect();
        writer.call(&args, 1);
    }
    // 100 ms leaves the SET time to answer (and publish) before the key expires, even on a
    // loaded machine.
    std::thread::sleep(Duration::from_millis(300));
    // Expired by then: redis's active cycle or this read finds it, once either way.
    writer.call(&[b"GET", b"e"], 1);
    stream.extend(sub.until_ping());
    admin.call(&[b"CONFIG", b"SET", b"notify-keyspace-events", b""], 1);
    stream
}

#[test]
fn keyspace_notifications_match_redis_server() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = TestServer::start(common::TWO_NODES);
    for flags in ["KEA", "Kg$", "El", "Eshz", "Kx", "Em", "KEAm", "KEA"] {
        let want = keyspace_stream(redis.addr, flags);
        let got = keyspace_stream(server.resp, flags);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "notify-keyspace-events {flags}"
        );
    }
}

#[test]
fn memcached_writes_and_evictions_are_notified() {
    let server = TestServer::start(
        r#"
[[nodes]]
name = "small"
max_memory = "1MiB"
"#,
    );
    let mut admin = server.redis();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("E$ge")
        .query(&mut admin)
        .expect("config set");
    let mut sub = Peer::connect(server.resp);
    sub.call(&[b"SUBSCRIBE", b"__keyevent@0__:set"], 1);
    sub.call(&[b"SUBSCRIBE", b"__keyevent@0__:del"], 1);
    sub.call(&[b"SUBSCRIBE", b"__keyevent@0__:incrby"], 1);
    let mut mc = server.raw();
    mc.roundtrip(b"set mc:1 0 0 1\r\n5\r\n", b"STORED\r\n");
    mc.roundtrip(b"incr mc:1 2\r\n", b"7\r\n");
    mc.roundtrip(b"delete mc:1\r\n", b"DELETED\r\n");
    mc.roundtrip(b"delete mc:1\r\n", b"NOT_FOUND\r\n");
    // The meta commands too.
    mc.roundtrip(b"ms mc:2 1\r\nx\r\n", b"HD\r\n");
    mc.roundtrip(b"ms mc:3 1\r\n5\r\n", b"HD\r\n");
    mc.roundtrip(b"ma mc:3\r\n", b"HD\r\n");
    mc.roundtrip(b"md mc:2\r\n", b"HD\r\n");
    mc.roundtrip(b"md mc:2\r\n", b"NF\r\n");
    for (event, key) in [
        ("set", "mc:1"),
        ("incrby", "mc:1"),
        ("del", "mc:1"),
        ("set", "mc:2"),
        ("set", "mc:3"),
        ("incrby", "mc:3"),
        ("del", "mc:2"),
    ] {
        let want = format!(
            "*3\r\n$7\r\nmessage\r\n${}\r\n__keyevent@0__:{event}\r\n${}\r\n{key}\r\n",
            15 + event.len(),
            key.len()
        );
        assert_eq!(String::from_utf8_lossy(&sub.frame()), want);
    }
    // Evictions: 4 MiB into a 1 MiB node.
    let mut evicted = Peer::connect(server.resp);
    evicted.call(&[b"SUBSCRIBE", b"__keyevent@0__:evicted"], 1);
    let value = vec![b'x'; 1024];
    for i in 0..4096 {
        let _: () = redis::cmd("SET")
            .arg(format!("big:{i}"))
            .arg(&value)
            .query(&mut admin)
            .expect("set");
    }
    let first = evicted.frame();
    assert!(
        String::from_utf8_lossy(&first).contains("big:"),
        "{:?}",
        String::from_utf8_lossy(&first)
    );
}

/// Tracking connections in every mode while another connection writes; every connection's
/// bytes (ids left out).
fn tracking_streams(addr: SocketAddr) -> Vec<Vec<u8>> {
    let mut streams = vec![Vec::new(); 9];
    // redis-server may have loaded a dump.rdb from the working directory.
    Peer::connect(addr).call(&[b"FLUSHALL"], 1);
    let resp3 = |p: &mut Peer| {
        p.call(&[b"HELLO", b"3"], 1);
    };
    // Default mode, RESP3.
    let mut c1 = Peer::connect(addr);
    resp3(&mut c1);
    streams[0].extend(c1.call(&[b"CLIENT", b"TRACKING", b"ON"], 1));
    streams[0].extend(c1.call(&[b"GET", b"a"], 1));
    streams[0].extend(c1.call(&[b"MGET", b"b", b"c"], 1));
    // RESP2 with a redirect to a subscriber of __redis__:invalidate.
    let mut target = Peer::connect(addr);
    let id = target.call(&[b"CLIENT", b"ID"], 1);
    let id = String::from_utf8_lossy(&id[1..id.len() - 2]).into_owned();
    streams[1].extend(target.call(&[b"SUBSCRIBE", b"__redis__:invalidate"], 1));
    let mut c2 = Peer::connect(addr);
    streams[2].extend(c2.call(
        &[b"CLIENT", b"TRACKING", b"on", b"REDIRECT", id.as_bytes()],
        1,
    ));
    streams[2].extend(c2.call(&[b"GET", b"a"], 1));
    streams[2].extend(c2.call(&[b"HGET", b"h", b"f"], 1));
    // BCAST with prefixes.
    let mut c3 = Peer::connect(addr);
    resp3(&mut c3);
    streams[3].extend(c3.call(
        &[
            b"CLIENT",
            b"TRACKING",
            b"on",
            b"BCAST",
            b"PREFIX",
            b"user:",
            b"PREFIX",
            b"h",
        ],
        1,
    ));
    // OPTIN: only the read after CLIENT CACHING yes is tracked.
    let mut c4 = Peer::connect(addr);
    resp3(&mut c4);
    streams[4].extend(c4.call(&[b"CLIENT", b"TRACKING", b"on", b"OPTIN"], 1));
    streams[4].extend(c4.call(&[b"GET", b"b"], 1));
    streams[4].extend(c4.call(&[b"CLIENT", b"CACHING", b"yes"], 1));
    streams[4].extend(c4.call(&[b"GET", b"a"], 1));
    // NOLOOP: its own writes are not reported to it; another's are.
    let mut c5 = Peer::connect(addr);
    resp3(&mut c5);
    streams[5].extend(c5.call(&[b"CLIENT", b"TRACKING", b"on", b"NOLOOP"], 1));
    streams[5].extend(c5.call(&[b"GET", b"a"], 1));
    streams[5].extend(c5.call(&[b"GET", b"n"], 1));
    streams[5].extend(c5.call(&[b"SET", b"n", b"1"], 1));
    // A redirect to a connection that never subscribed: accepted, and it is sent nothing.
    let mut plain = Peer::connect(addr);
    let plain_id = plain.call(&[b"CLIENT", b"ID"], 1);
    let plain_id = String::from_utf8_lossy(&plain_id[1..plain_id.len() - 2]).into_owned();
    let mut c6 = Peer::connect(addr);
    streams[7].extend(c6.call(
        &[
            b"CLIENT",
            b"TRACKING",
            b"on",
            b"REDIRECT",
            plain_id.as_bytes(),
        ],
        1,
    ));
    streams[7].extend(c6.call(&[b"GET", b"a"], 1));
    let mut w = Peer::connect(addr);
    for cmd in [
        &[&b"SET"[..], b"a", b"1"][..],
        &[b"SET", b"a", b"2"],
        &[b"SET", b"b", b"1"],
        &[b"DEL", b"c"],
        &[b"SET", b"user:1", b"x"],
        &[b"HSET", b"h", b"f", b"v"],
        &[b"SET", b"other", b"y"],
        &[b"INCR", b"n"],
    ] {
        streams[6].extend(w.call(cmd, 1));
    }
    for (i, p) in [&mut c1, &mut target, &mut c2, &mut c3, &mut c4, &mut c5]
        .into_iter()
        .enumerate()
    {
        streams[i].extend(p.until_ping());
    }
    streams[8].extend(plain.until_ping());
    streams[7].extend(c6.until_ping());
    // Its target gone, the redirect is broken (TRACKINGINFO says so once an invalidation had
    // nowhere to go; redis notices only then).
    drop(plain);
    streams[7].extend(c6.call(&[b"GET", b"a"], 1));
    streams[6].extend(w.call(&[b"SET", b"a", b"3"], 1));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = c6.call(&[b"CLIENT", b"TRACKINGINFO"], 1);
        let info = String::from_utf8_lossy(&info).into_owned();
        if info.contains("broken_redirect") {
            // The redirect's id differs between the servers.
            let info = info.replace(&format!(":{plain_id}\r\n"), ":ID\r\n");
            streams[7].extend(info.as_bytes());
            break;
        }
        assert!(Instant::now() < deadline, "the redirect never broke");
        std::thread::sleep(Duration::from_millis(5));
    }
    streams[6].extend(w.call(&[b"FLUSHALL"], 1));
    for (i, p) in [&mut c1, &mut target, &mut c3].into_iter().enumerate() {
        let i = [0, 1, 3][i];
        streams[i].extend(p.until_ping());
    }
    streams
}

#[test]
fn tracking_invalidations_match_redis_server() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = TestServer::start(common::TWO_NODES);
    let want = tracking_streams(redis.addr);
    let got = tracking_streams(server.resp);
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(g),
            String::from_utf8_lossy(w),
            "connection {i} differs from redis-server"
        );
    }
    assert!(
        String::from_utf8_lossy(&want[0]).contains("invalidate"),
        "the streams carry invalidations"
    );
}

#[test]
fn memcached_writes_invalidate_tracked_keys() {
    let server = TestServer::start(common::TWO_NODES);
    let mut c = Peer::connect(server.resp);
    c.call(&[b"HELLO", b"3"], 1);
    c.call(&[b"CLIENT", b"TRACKING", b"on"], 1);
    c.call(&[b"GET", b"mc:key"], 1);
    let mut mc = server.raw();
    mc.roundtrip(b"set mc:key 0 0 1\r\nx\r\n", b"STORED\r\n");
    assert_eq!(
        c.frame(),
        b">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nmc:key\r\n"
    );
}

/// `tracking-table-max-keys` bounds the table: past it, remembering a key invalidates another,
/// and its reader is told.
#[test]
fn the_tracking_table_is_bounded() {
    let server = TestServer::start(common::TWO_NODES);
    let mut admin = server.redis();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tracking-table-max-keys")
        .arg("100")
        .query(&mut admin)
        .expect("config set");
    let mut c = Peer::connect(server.resp);
    c.call(&[b"HELLO", b"3"], 1);
    c.call(&[b"CLIENT", b"TRACKING", b"on"], 1);
    let mut invalidations = 0;
    for i in 0..1000 {
        c.send(&[b"GET", format!("key:{i}").as_bytes()]);
        loop {
            let f = c.frame();
            if f.starts_with(b">2\r\n$10\r\ninvalidate") {
                invalidations += 1;
            } else {
                assert_eq!(f, b"_\r\n", "the GET's reply");
                break;
            }
        }
    }
    assert!(info_field(&server, "tracking_total_keys") <= 100);
    // Invalidations may trail the last GET's reply: collect them up to a PING.
    let rest = c.until_ping();
    invalidations += rest.windows(10).filter(|w| *w == b"invalidate").count();
    assert_eq!(invalidations, 900, "one per key pushed out of the table");
}

/// Writers race on both protocols while keyspace events are on: every write is reported
/// exactly once, each writer's in its order.
#[test]
fn stress_every_write_is_notified_once_in_order() {
    const WRITERS: usize = 4;
    const WRITES: usize = 1000;
    let _heavy = heavy();
    let server = TestServer::start(common::TWO_NODES);
    let mut admin = server.redis();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("E$")
        .query(&mut admin)
        .expect("config set");
    let mut sub_conn = server.redis();
    let mut sub = sub_conn.as_pubsub();
    sub.subscribe("__keyevent@0__:set").expect("subscribe");
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let resp = server.redis();
            let memcache = server.raw();
            std::thread::spawn(move || {
                let (mut resp, mut memcache) = (resp, memcache);
                for i in 0..WRITES {
                    let key = format!("w{w}:{i}");
                    // Half the writers speak memcached: a `set` is a `set` event too.
                    if w % 2 == 0 {
                        let _: () = redis::cmd("SET")
                            .arg(&key)
                            .arg(i)
                            .query(&mut resp)
                            .expect("set");
                    } else {
                        let req = format!("set {key} 0 0 1\r\nx\r\n");
                        memcache.roundtrip(req.as_bytes(), b"STORED\r\n");
                    }
                }
            })
        })
        .collect();
    let mut next = [0usize; WRITERS];
    for _ in 0..WRITERS * WRITES {
        let m = sub.get_message().expect("event");
        let key: String = m.get_payload().expect("key");
        let (w, i) = key[1..].split_once(':').expect("w:i");
        let (w, i): (usize, usize) = (w.parse().expect("w"), i.parse().expect("i"));
        assert_eq!(
            i, next[w],
            "writer {w}: an event lost, repeated or out of order"
        );
        next[w] += 1;
    }
    for w in writers {
        w.join().expect("writer");
    }
    assert_eq!(next, [WRITES; WRITERS]);
}

/// For 2,000 rounds a tracking reader caches a key and another connection overwrites it: once
/// the write has answered, the reader's next reply is preceded by the invalidation (a client
/// cache that applies invalidations before replies never serves the old value), and each
/// write invalidates once.
#[test]
fn stress_a_tracked_key_is_invalidated_before_the_next_reply() {
    let server = TestServer::start(common::TWO_NODES);
    let mut reader = Peer::connect(server.resp);
    reader.call(&[b"HELLO", b"3"], 1);
    reader.call(&[b"CLIENT", b"TRACKING", b"on"], 1);
    let mut writer = server.redis();
    let invalidation = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\ntracked\r\n";
    for round in 0..2000 {
        let value = round.to_string();
        // Cache it (tracked from here on).
        let got = reader.call(&[b"GET", b"tracked"], 1);
        if round > 0 {
            let previous = (round - 1).to_string();
            let want = format!("${}\r\n{previous}\r\n", previous.len());
            assert_eq!(
                got,
                want.as_bytes(),
                "round {round}: the value written last"
            );
        }
        let _: () = redis::cmd("SET")
            .arg("tracked")
            .arg(&value)
            .query(&mut writer)
            .expect("set");
        reader.send(&[b"PING"]);
        assert_eq!(
            reader.frame(),
            invalidation,
            "round {round}: invalidated first"
        );
        assert_eq!(
            reader.frame(),
            b"+PONG\r\n",
            "round {round}: then the reply"
        );
    }
}

/// A RESP2 redirect target that left subscribe mode gets no invalidation arrays between its
/// replies (it would take them for replies); once subscribed again, it does.
#[test]
fn a_resp2_redirect_target_outside_subscribe_mode_gets_nothing() {
    let server = TestServer::start(common::TWO_NODES);
    let mut target = Peer::connect(server.resp);
    let id = target.call(&[b"CLIENT", b"ID"], 1);
    let id = String::from_utf8_lossy(&id[1..id.len() - 2]).into_owned();
    target.call(&[b"SUBSCRIBE", b"__redis__:invalidate"], 1);
    target.call(&[b"UNSUBSCRIBE"], 1);
    let mut c = Peer::connect(server.resp);
    c.call(
        &[b"CLIENT", b"TRACKING", b"on", b"REDIRECT", id.as_bytes()],
        1,
    );
    c.call(&[b"GET", b"k"], 1);
    let mut w = server.redis();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("1")
        .query(&mut w)
        .expect("set");
    assert_eq!(target.call(&[b"GET", b"k"], 1), b"$1\r\n1\r\n");
    target.call(&[b"SUBSCRIBE", b"__redis__:invalidate"], 1);
    c.call(&[b"GET", b"k"], 1);
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("2")
        .query(&mut w)
        .expect("set");
    assert_eq!(
        target.frame(),
        b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n"
    );
}
