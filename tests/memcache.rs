//! memcached protocol against the real server: the `memcache` client crate for the common
//! paths, raw bytes for the edges, and memcached's own `memccapable` conformance run.

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{TWO_NODES, TestServer, eventually};
use ringcache::store::Clock;

#[test]
fn client_crate_round_trips_across_nodes() {
    let server = TestServer::start(TWO_NODES);
    let c = server.client();
    for i in 0..200 {
        c.set(&format!("key:{i}"), format!("value-{i}"), 0)
            .expect("set");
    }
    for i in 0..200 {
        let v: Option<String> = c.get(&format!("key:{i}")).expect("get");
        assert_eq!(v.as_deref(), Some(format!("value-{i}").as_str()));
    }
    // Both nodes hold some of the keys: the ring really spreads them.
    let topology = server.shared.topology.load();
    for node in &topology.nodes {
        let items = node.stats().items;
        assert!(
            items > 40,
            "node {} holds only {items} of 200 keys",
            node.name()
        );
    }
    let keys: Vec<String> = (0..50).map(|i| format!("key:{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got: HashMap<String, String> = c.gets(&refs).expect("multi get");
    assert_eq!(got.len(), 50);
    assert_eq!(got["key:7"], "value-7");

    // The crate's ASCII mode reports NOT_STORED as Ok: check the effect instead.
    c.add("key:1", "x", 0).expect("add");
    assert_eq!(
        c.get::<String>("key:1").expect("get").as_deref(),
        Some("value-1")
    );
    c.add("fresh", "x", 0).expect("add");
    c.replace("fresh", "y", 0).expect("replace");
    c.replace("missing", "y", 0).expect("replace");
    assert_eq!(c.get::<String>("missing").expect("get"), None);
    c.append("fresh", "z").expect("append");
    c.prepend("fresh", "w").expect("prepend");
    assert_eq!(
        c.get::<String>("fresh").expect("get").as_deref(),
        Some("wyz")
    );
    assert!(c.delete("fresh").expect("delete"));
    assert!(!c.delete("fresh").expect("delete again"));
    c.set("n", 10u64, 0).expect("set n");
    assert_eq!(c.increment("n", 5).expect("incr"), 15);
    assert_eq!(c.decrement("n", 20).expect("decr floors at 0"), 0);
    assert!(c.touch("n", 100).expect("touch"));
    assert!(!c.touch("nope", 100).expect("touch missing"));

    let (_, _, cas): (String, u32, Option<u64>) = c.get("key:3").expect("gets").expect("hit");
    let cas = cas.expect("cas id");
    assert!(c.cas("key:3", "new", 0, cas).expect("cas"));
    assert!(!c.cas("key:3", "newer", 0, cas).expect("stale cas"));
    assert_eq!(
        c.get::<String>("key:3").expect("get").as_deref(),
        Some("new")
    );

    let version = c.version().expect("version");
    assert!(!version[0].1.is_empty());
    c.flush().expect("flush");
    assert_eq!(c.get::<String>("key:3").expect("get"), None);
}

#[test]
fn cas_conflicts_and_not_found() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.raw();
    c.roundtrip(b"cas k 0 0 1 1\r\na\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"set k 3 0 1\r\na\r\n", b"STORED\r\n");
    c.send(b"gets k\r\n");
    let reply = String::from_utf8(c.read_until(b"END\r\n")).expect("utf8");
    let cas: u64 = reply
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(4))
        .and_then(|t| t.parse().ok())
        .expect("cas in gets reply");
    c.roundtrip(
        format!("cas k 0 0 1 {}\r\nb\r\n", cas + 1000).as_bytes(),
        b"EXISTS\r\n",
    );
    c.roundtrip(
        format!("cas k 5 0 1 {cas}\r\nc\r\n").as_bytes(),
        b"STORED\r\n",
    );
    c.roundtrip(
        format!("cas k 0 0 1 {cas}\r\nd\r\n").as_bytes(),
        b"EXISTS\r\n",
    );
    c.roundtrip(b"get k\r\n", b"VALUE k 5 1\r\nc\r\nEND\r\n");
    c.roundtrip(
        format!("cas k 0 0 1 {cas} noreply\r\nd\r\n").as_bytes(),
        b"",
    );
    c.roundtrip(b"get k\r\n", b"VALUE k 5 1\r\nc\r\nEND\r\n");
}

#[test]
fn noreply_is_silent_and_pipelines_keep_order() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.raw();
    c.send(b"set a 0 0 1 noreply\r\n1\r\nset b 0 0 1 noreply\r\n2\r\nincr a 5 noreply\r\ndelete b noreply\r\nadd a 0 0 1 noreply\r\nx\r\n");
    c.roundtrip(b"get a b\r\n", b"VALUE a 0 1\r\n6\r\nEND\r\n");
    // A pipeline of many requests in one write is answered in order.
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..300 {
        req.extend_from_slice(
            format!(
                "set p{i} 0 0 {}\r\n{i}\r\nget p{i}\r\n",
                i.to_string().len()
            )
            .as_bytes(),
        );
        want.extend_from_slice(
            format!(
                "STORED\r\nVALUE p{i} 0 {}\r\n{i}\r\nEND\r\n",
                i.to_string().len()
            )
            .as_bytes(),
        );
    }
    c.roundtrip(&req, &want);
}

#[test]
fn incr_decr_edges() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.raw();
    c.roundtrip(b"incr nope 1\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"set n 0 0 20\r\n18446744073709551615\r\n", b"STORED\r\n");
    c.roundtrip(b"incr n 1\r\n", b"0\r\n");
    c.roundtrip(
        b"incr n 18446744073709551615\r\n",
        b"18446744073709551615\r\n",
    );
    c.roundtrip(b"incr n 2\r\n", b"1\r\n");
    c.roundtrip(b"decr n 5\r\n", b"0\r\n");
    c.roundtrip(
        b"incr n abc\r\n",
        b"CLIENT_ERROR invalid numeric delta argument\r\n",
    );
    c.roundtrip(b"set s 0 0 3\r\nabc\r\n", b"STORED\r\n");
    c.roundtrip(
        b"incr s 1\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    // As in memcached, a shorter result is written in place and padded with spaces: "10" - 1
    // is stored as "9 ", and still counts as a number.
    c.roundtrip(b"set t 0 0 2\r\n10\r\n", b"STORED\r\n");
    c.roundtrip(b"decr t 1\r\n", b"9\r\n");
    c.roundtrip(b"get t\r\n", b"VALUE t 0 2\r\n9 \r\nEND\r\n");
    c.roundtrip(b"incr t 991\r\n", b"1000\r\n");
    c.roundtrip(b"get t\r\n", b"VALUE t 0 4\r\n1000\r\nEND\r\n");
}

#[test]
fn expiry_follows_memcached_rules() {
    let clock = Clock::mock(1_700_000_000_000);
    let server = TestServer::start_with_clock(TWO_NODES, clock.clone());
    let mut c = server.raw();
    c.roundtrip(b"set rel 0 10 1\r\na\r\n", b"STORED\r\n");
    c.roundtrip(b"set abs 0 1700000020 1\r\nb\r\n", b"STORED\r\n");
    c.roundtrip(b"set neg 0 -1 1\r\nc\r\n", b"STORED\r\n");
    c.roundtrip(b"set never 0 0 1\r\nd\r\n", b"STORED\r\n");
    c.roundtrip(b"get neg\r\n", b"END\r\n");
    c.roundtrip(
        b"get rel abs never\r\n",
        b"VALUE rel 0 1\r\na\r\nVALUE abs 0 1\r\nb\r\nVALUE never 0 1\r\nd\r\nEND\r\n",
    );
    clock.advance(10_000);
    c.roundtrip(b"get rel abs\r\n", b"VALUE abs 0 1\r\nb\r\nEND\r\n");
    c.roundtrip(b"touch abs 100\r\n", b"TOUCHED\r\n");
    clock.advance(20_000);
    c.roundtrip(
        b"get abs never\r\n",
        b"VALUE abs 0 1\r\nb\r\nVALUE never 0 1\r\nd\r\nEND\r\n",
    );
    c.roundtrip(b"gat 1 never\r\n", b"VALUE never 0 1\r\nd\r\nEND\r\n");
    clock.advance(1_000);
    c.roundtrip(b"get never\r\n", b"END\r\n");
}

#[test]
fn eviction_keeps_each_node_within_max_memory() {
    let server = TestServer::start(
        r#"
[[nodes]]
name = "small-a"
max_memory = "1MiB"

[[nodes]]
name = "small-b"
max_memory = "1MiB"
"#,
    );
    let mut c = server.raw();
    let value = vec![b'v'; 1000];
    // ~10 MiB of data into 2 MiB of budget.
    for i in 0..10_000 {
        let mut req = format!("set evict:{i} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        c.roundtrip(&req, b"STORED\r\n");
    }
    let topology = server.shared.topology.load();
    let mut evictions = 0;
    for node in &topology.nodes {
        let s = node.stats();
        assert!(
            s.used_bytes <= s.max_bytes,
            "{} uses {} of {}",
            node.name(),
            s.used_bytes,
            s.max_bytes
        );
        assert!(s.items > 100, "{} kept only {} items", node.name(), s.items);
        evictions += s.evictions;
        node.validate().expect("node invariants");
    }
    assert!(evictions > 7000, "only {evictions} evictions");
    // The newest key is still there.
    c.send(b"get evict:9999\r\n");
    let got = c.read_until(b"END\r\n");
    assert!(got.starts_with(b"VALUE evict:9999 0 1000\r\n"));
    c.send(b"stats\r\n");
    let stats = String::from_utf8(c.read_until(b"END\r\n")).expect("utf8");
    assert!(stats.contains("STAT limit_maxbytes 2097152\r\n"), "{stats}");
}

#[test]
fn one_mebibyte_values_and_too_large_values() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.raw();
    let big: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let mut req = format!("set big 0 0 {}\r\n", big.len()).into_bytes();
    req.extend_from_slice(&big);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
    c.send(b"get big\r\n");
    let got = c.read_until(b"\r\nEND\r\n");
    let header = format!("VALUE big 0 {}\r\n", big.len());
    assert!(got.starts_with(header.as_bytes()));
    assert_eq!(&got[header.len()..header.len() + big.len()], &big[..]);

    // Over max_value_size: refused, the data block swallowed, the old value gone, the
    // connection still usable.
    let mut req = format!("set big 0 0 {}\r\n", big.len() + 1).into_bytes();
    req.extend_from_slice(&big);
    req.extend_from_slice(b"x\r\n");
    c.roundtrip(&req, b"SERVER_ERROR object too large for cache\r\n");
    c.roundtrip(b"get big\r\n", b"END\r\n");
    c.roundtrip(
        b"version\r\n",
        format!(
            "VERSION {}\r\n",
            ringcache::proto::memcache::encode::VERSION
        )
        .as_bytes(),
    );
}

#[test]
fn split_packets_are_reassembled() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.raw();
    let req = b"set split 7 0 11\r\nhello world\r\nget split\r\n";
    for byte in req.iter() {
        c.send(&[*byte]);
    }
    let got = c.read_until(b"END\r\n");
    assert_eq!(got, b"STORED\r\nVALUE split 7 11\r\nhello world\r\nEND\r\n");
}

#[test]
fn malformed_lines_get_memcached_errors_and_the_connection_survives() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.raw();
    c.roundtrip(b"bogus\r\n", b"ERROR\r\n");
    c.roundtrip(b"\r\n", b"ERROR\r\n");
    c.roundtrip(
        b"set k 0 0 notanumber\r\n",
        b"CLIENT_ERROR bad command line format\r\n",
    );
    // memcached consumes the declared length plus two bytes, then parses what follows.
    c.roundtrip(
        b"set k 0 0 3\r\nabcde\r\n",
        b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
    );
    let long_key = "k".repeat(251);
    c.roundtrip(
        format!("get {long_key}\r\n").as_bytes(),
        b"CLIENT_ERROR bad command line format\r\n",
    );
    c.roundtrip(b"get\r\n", b"ERROR\r\n");
    c.roundtrip(
        b"version\r\n",
        format!(
            "VERSION {}\r\n",
            ringcache::proto::memcache::encode::VERSION
        )
        .as_bytes(),
    );
}

#[test]
fn a_line_without_newline_is_bounded() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.raw();
    // 4 MiB of garbage and never a newline: the server answers with an error and closes
    // instead of buffering forever.
    let junk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < 4 * 1024 * 1024 {
        if std::io::Write::write_all(&mut c.stream, &junk).is_err() {
            break;
        }
        sent += junk.len();
    }
    let got = c.read_to_close();
    assert!(
        got.starts_with(b"CLIENT_ERROR") || got.starts_with(b"SERVER_ERROR") || got.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    // The server is fine.
    let mut d = server.raw();
    d.roundtrip(
        b"version\r\n",
        format!(
            "VERSION {}\r\n",
            ringcache::proto::memcache::encode::VERSION
        )
        .as_bytes(),
    );
}

#[test]
fn meta_quiet_mode_is_terminated_by_mn() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.raw();
    c.roundtrip(b"ms mk 2 q\r\nhi\r\nmn\r\n", b"MN\r\n");
    c.roundtrip(
        b"mg miss1 v q\r\nmg mk v q k\r\nmg miss2 v q\r\nmn\r\n",
        b"VA 2 kmk\r\nhi\r\nMN\r\n",
    );
    c.roundtrip(b"md mk q\r\nmd mk q\r\nmn\r\n", b"NF\r\nMN\r\n");
    c.roundtrip(b"mg mk v\r\n", b"EN\r\n");
}

#[test]
fn meta_commands_basics() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.raw();
    c.roundtrip(b"ms m1 3 T60 F7\r\nabc\r\n", b"HD\r\n");
    c.roundtrip(b"mg m1 v f t s\r\n", b"VA 3 f7 t60 s3\r\nabc\r\n");
    c.roundtrip(b"mg m1 O123 k\r\n", b"HD O123 km1\r\n");
    c.roundtrip(
        b"ma m1\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    c.roundtrip(b"ma cnt N0 J10 v\r\n", b"VA 2\r\n10\r\n");
    c.roundtrip(b"ma cnt MD D3 v\r\n", b"VA 1\r\n7\r\n");
    c.roundtrip(b"md m1\r\n", b"HD\r\n");
    c.roundtrip(b"md m1\r\n", b"NF\r\n");
    // base64 key: "m2" is bTI=
    c.roundtrip(b"ms bTI= 1 b\r\nz\r\n", b"HD\r\n");
    c.roundtrip(b"mg m2 v\r\n", b"VA 1\r\nz\r\n");
    c.roundtrip(b"mn\r\n", b"MN\r\n");
}

#[test]
fn memccapable_ascii_passes() {
    if !common::tool("memccapable", "libmemcached-tools") {
        return;
    }
    let server = TestServer::start(TWO_NODES);
    let out = Command::new("memccapable")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.memcache.port().to_string(),
            "-a",
            "-t",
            "10",
        ])
        .output()
        .expect("run memccapable");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let passed = text.matches("[pass]").count();
    assert!(
        passed >= 25,
        "only {passed} memccapable tests passed:\n{text}"
    );
    assert!(
        !text.contains("[FAIL]") && !text.contains("[fail]"),
        "{text}"
    );
    assert!(text.contains("All tests passed"), "{text}");
    assert!(out.status.success(), "{text}");
}

/// Shutdown stops reading, but what a connection has already read is answered in full before
/// it closes. The client pipelines 32 MiB of replies' worth of gets, then a set, a get and a
/// noop, in one write, and does not read: the server reads the whole batch (`bytes_read` says
/// so) and then waits with most replies unwritten, since the socket buffers hold a few MiB.
/// Shutdown begins there (an idle second connection closing shows that it has); only then
/// does the client read, and it must get every reply, whole and in order, and then EOF.
#[test]
fn graceful_drop_lets_clients_finish() {
    const GETS: usize = 64;
    let server = TestServer::start(TWO_NODES);
    let shared = Arc::clone(&server.shared);
    let stat = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let value = vec![b'v'; 512 << 10];
    let mut c = server.raw();
    let mut set = format!("set big 0 0 {}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    c.roundtrip(&set, b"STORED\r\n");
    let mut idle = server.raw();
    idle.roundtrip(b"mn\r\n", b"MN\r\n");

    let mut batch = b"get big\r\n".repeat(GETS);
    batch.extend_from_slice(b"set after 0 0 2\r\nok\r\nget after\r\nmn\r\n");
    let mut expected = Vec::new();
    for _ in 0..GETS {
        expected.extend_from_slice(format!("VALUE big 0 {}\r\n", value.len()).as_bytes());
        expected.extend_from_slice(&value);
        expected.extend_from_slice(b"\r\nEND\r\n");
    }
    expected.extend_from_slice(b"STORED\r\nVALUE after 0 2\r\nok\r\nEND\r\nMN\r\n");

    let (read, written) = (
        stat(&shared.stats.bytes_read),
        stat(&shared.stats.bytes_written),
    );
    c.send(&batch);
    let whole = read + batch.len() as u64;
    assert!(
        eventually(Duration::from_secs(30), || stat(&shared.stats.bytes_read)
            >= whole),
        "the server did not read the whole batch"
    );
    let stopper = std::thread::spawn(move || drop(server));
    assert_eq!(
        idle.read_to_close(),
        b"",
        "the idle connection closes at shutdown"
    );
    let written = stat(&shared.stats.bytes_written) - written;
    assert!(
        written < expected.len() as u64,
        "shutdown began after {written} of {} reply bytes were written: not in flight",
        expected.len()
    );

    let got = read_to_eof(&mut c.stream);
    assert_eq!(got.len(), expected.len(), "reply bytes before EOF");
    assert!(
        got == expected,
        "replies differ from what was asked, in order"
    );
    stopper.join().expect("shutdown");
}

/// Reads until the server closes (EOF) within 30 s; a reset or other error fails the test.
fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        assert!(
            Instant::now() < deadline,
            "not closed after {} bytes",
            got.len()
        );
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read after {} bytes: {e}", got.len()),
        }
    }
}
