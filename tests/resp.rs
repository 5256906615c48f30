//! RESP over real sockets: the `redis` crate in RESP2 and RESP3, raw bytes for framing errors,
//! inline commands and pipelining, the combined port, cross-protocol reads, SCAN across a ring
//! change, and redis-benchmark.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{Raw, TWO_NODES, TestServer};
use redis::{ProtocolVersion, Value};
use ringcache::config::Config;
use ringcache::route::topology::Topology;
use ringcache::store::{Container, NEVER};

fn cmd(name: &str) -> redis::Cmd {
    redis::cmd(name)
}

#[test]
fn strings_and_keys_with_the_redis_crate() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    let _: () = cmd("SET")
        .arg("user:1")
        .arg("alice")
        .query(&mut c)
        .expect("set");
    let v: String = cmd("GET").arg("user:1").query(&mut c).expect("get");
    assert_eq!(v, "alice");
    let none: Option<String> = cmd("GET").arg("missing").query(&mut c).expect("get");
    assert_eq!(none, None);
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let mut mset = cmd("MSET");
    for k in &keys {
        mset.arg(k).arg(format!("v-{k}"));
    }
    let _: () = mset.query(&mut c).expect("mset");
    let mut mget = cmd("MGET");
    mget.arg(&keys).arg("missing");
    let got: Vec<Option<String>> = mget.query(&mut c).expect("mget");
    assert_eq!(got.len(), 51);
    for (k, v) in keys.iter().zip(&got) {
        assert_eq!(v.as_deref(), Some(format!("v-{k}").as_str()));
    }
    assert_eq!(got[50], None);
    let n: i64 = cmd("INCRBY")
        .arg("n")
        .arg(41)
        .query(&mut c)
        .expect("incrby");
    assert_eq!(n, 41);
    let n: i64 = cmd("INCR").arg("n").query(&mut c).expect("incr");
    assert_eq!(n, 42);
    let f: String = cmd("INCRBYFLOAT")
        .arg("f")
        .arg("10.5")
        .query(&mut c)
        .expect("float");
    assert_eq!(f, "10.5");
    let ok: i64 = cmd("EXPIRE")
        .arg("n")
        .arg(100)
        .query(&mut c)
        .expect("expire");
    assert_eq!(ok, 1);
    let ttl: i64 = cmd("TTL").arg("n").query(&mut c).expect("ttl");
    assert_eq!(ttl, 100);
    let deleted: i64 = cmd("DEL")
        .arg(&keys[..10])
        .arg("missing")
        .query(&mut c)
        .expect("del");
    assert_eq!(deleted, 10);
    let exists: i64 = cmd("EXISTS").arg(&keys).query(&mut c).expect("exists");
    assert_eq!(exists, 40);
    let dbsize: i64 = cmd("DBSIZE").query(&mut c).expect("dbsize");
    assert_eq!(dbsize, 43);
    // RENAME moves keys between nodes (keys differ, so they usually land on different nodes).
    for i in 10..50 {
        let _: () = cmd("RENAME")
            .arg(format!("k{i}"))
            .arg(format!("r{i}"))
            .query(&mut c)
            .expect("rename");
        let v: String = cmd("GET").arg(format!("r{i}")).query(&mut c).expect("get");
        assert_eq!(v, format!("v-k{i}"));
    }
    let err = cmd("RENAME")
        .arg("k10")
        .arg("x")
        .query::<()>(&mut c)
        .expect_err("no such key");
    assert!(err.to_string().contains("no such key"), "{err}");
    let t: String = cmd("TYPE").arg("r10").query(&mut c).expect("type");
    assert_eq!(t, "string");
    let pong: String = cmd("PING").query(&mut c).expect("ping");
    assert_eq!(pong, "PONG");
    let info: String = cmd("INFO").query(&mut c).expect("info");
    assert!(info.contains("redis_version:"), "{info}");
    assert!(info.contains("# Ringcache\r\n"), "{info}");
    assert!(info.contains("name=cache-a,items="), "{info}");
    let _: () = cmd("FLUSHALL").query(&mut c).expect("flushall");
    let dbsize: i64 = cmd("DBSIZE").query(&mut c).expect("dbsize");
    assert_eq!(dbsize, 0);
}

#[test]
fn resp3_with_the_redis_crate() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis_with(ProtocolVersion::RESP3);
    let v: Value = cmd("GET").arg("nothing").query(&mut c).expect("get");
    assert_eq!(v, Value::Nil);
    let v: Value = cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .query(&mut c)
        .expect("config");
    assert!(matches!(v, Value::Map(ref m) if m.len() == 1), "{v:?}");
    let _: () = cmd("SET").arg("a").arg("1").query(&mut c).expect("set");
    let v: Value = cmd("INFO").arg("keyspace").query(&mut c).expect("info");
    assert!(
        matches!(&v, Value::VerbatimString { text, .. } if text.contains("db0:keys=1")),
        "{v:?}"
    );
    let hello: Value = cmd("HELLO").arg(3).query(&mut c).expect("hello");
    assert!(
        matches!(hello, Value::Map(ref m) if m.len() == 7),
        "{hello:?}"
    );
}

#[test]
fn memcached_and_redis_share_the_keyspace() {
    let server = TestServer::start(TWO_NODES);
    let mut mc = server.raw();
    let mut r = server.raw_resp();
    mc.roundtrip(b"set shared 42 0 5\r\nhello\r\n", b"STORED\r\n");
    r.roundtrip(b"GET shared\r\n", b"$5\r\nhello\r\n");
    r.roundtrip(b"APPEND shared !\r\n", b":6\r\n");
    // APPEND keeps the memcached flags; SET stores flags 0 and a new CAS.
    mc.roundtrip(b"get shared\r\n", b"VALUE shared 42 6\r\nhello!\r\nEND\r\n");
    mc.send(b"gets shared\r\n");
    let before = mc.read_until(b"END\r\n");
    r.roundtrip(b"SET shared world\r\n", b"+OK\r\n");
    mc.send(b"gets shared\r\n");
    let after = mc.read_until(b"END\r\n");
    assert!(after.starts_with(b"VALUE shared 0 5 "), "{after:?}");
    assert_ne!(before, after);
    r.roundtrip(b"SET n 10 EX 100\r\n", b"+OK\r\n");
    mc.roundtrip(b"incr n 5\r\n", b"15\r\n");
    r.roundtrip(b"INCR n\r\nTTL n\r\n", b":16\r\n:100\r\n");
    mc.roundtrip(b"set c 0 0 1\r\n7\r\n", b"STORED\r\n");
    r.roundtrip(b"INCRBY c 3\r\n", b":10\r\n");
}

#[test]
fn containers_answer_wrongtype() {
    let server = TestServer::start(TWO_NODES);
    let stored = server.shared.topology.load().entry(b"h", |e| {
        e.put_container(Container::Hash(Default::default()), NEVER)
    });
    assert!(stored.is_ok());
    let mut r = server.raw_resp();
    let wrong = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    for request in [
        &b"GET h\r\n"[..],
        b"APPEND h x\r\n",
        b"INCR h\r\n",
        b"INCRBYFLOAT h 1\r\n",
        b"STRLEN h\r\n",
        b"GETRANGE h 0 1\r\n",
        b"SETRANGE h 0 x\r\n",
        b"GETSET h x\r\n",
        b"GETDEL h\r\n",
        b"GETEX h\r\n",
        b"SET h x GET\r\n",
    ] {
        r.roundtrip(request, wrong);
    }
    r.roundtrip(
        b"TYPE h\r\nMGET h\r\nEXISTS h\r\n",
        b"+hash\r\n*1\r\n$-1\r\n:1\r\n",
    );
    r.roundtrip(
        b"RENAME h h2\r\nTYPE h2\r\nTYPE h\r\n",
        b"+OK\r\n+hash\r\n+none\r\n",
    );
    r.roundtrip(b"COPY h2 h3\r\nTYPE h3\r\n", b":1\r\n+hash\r\n");
    r.roundtrip(
        b"SET h2 s\r\nTYPE h2\r\nDEL h3\r\n",
        b"+OK\r\n+string\r\n:1\r\n",
    );
}

#[test]
fn inline_commands_and_pipelining() {
    let server = TestServer::start(TWO_NODES);
    let mut r = server.raw_resp();
    r.roundtrip(b"PING\r\n", b"+PONG\r\n");
    r.roundtrip(b"set k \"a b\\x41\"\nget k\r\n", b"+OK\r\n$4\r\na bA\r\n");
    r.roundtrip(b"\r\n\r\nECHO 'x y'\r\n", b"$3\r\nx y\r\n");
    let mut batch = Vec::new();
    let mut expect = Vec::new();
    for i in 0..1000 {
        batch.extend_from_slice(
            format!("*3\r\n$3\r\nSET\r\n$4\r\nk{i:03}\r\n$1\r\nv\r\n").as_bytes(),
        );
        batch.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n");
        expect.extend_from_slice(format!("+OK\r\n:{}\r\n", i + 1).as_bytes());
    }
    r.roundtrip(&batch, &expect);
    // A request split at every byte still works.
    let req = b"*3\r\n$3\r\nSET\r\n$2\r\nsp\r\n$5\r\nsplit\r\n*2\r\n$3\r\nGET\r\n$2\r\nsp\r\n";
    for b in req {
        r.send(&[*b]);
    }
    assert_eq!(r.read_until(b"$5\r\nsplit\r\n"), b"+OK\r\n$5\r\nsplit\r\n");
    r.send(b"QUIT\r\nPING\r\n");
    assert_eq!(r.read_to_close(), b"+OK\r\n");
}

#[test]
fn framing_errors_reply_then_close() {
    let server = TestServer::start(TWO_NODES);
    for (request, reply) in [
        (
            &b"*1\r\n:1\r\n"[..],
            &b"-ERR Protocol error: expected '$', got ':'\r\n"[..],
        ),
        (
            b"*x\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$99999999999\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"SET k \"unbalanced\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            b"PING\r\n*1\r\n*",
            b"+PONG\r\n-ERR Protocol error: expected '$', got '*'\r\n",
        ),
    ] {
        let mut r = server.raw_resp();
        r.send(request);
        assert_eq!(
            String::from_utf8_lossy(&r.read_to_close()),
            String::from_utf8_lossy(reply),
            "{request:?}"
        );
    }
    let mut r = server.raw_resp();
    r.send(&vec![b'a'; 70 * 1024]);
    assert_eq!(
        r.read_to_close(),
        b"-ERR Protocol error: too big inline request\r\n"
    );
    // A Redis string may be up to proto-max-bulk-len (512 MiB by default), not memcached's
    // 1 MiB item limit; past it, a growing command is refused and the connection stays.
    let mut r = server.raw_resp();
    let big = vec![b'v'; 20 << 20];
    let mut req = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", big.len()).into_bytes();
    req.extend_from_slice(&big);
    req.extend_from_slice(b"\r\nSTRLEN k\r\n");
    r.roundtrip(&req, b"+OK\r\n:20971520\r\n");
    let mut c = server.redis();
    let back: Vec<u8> = redis::cmd("GET").arg("k").query(&mut c).expect("get");
    assert!(back == big, "a 20 MiB value came back different");
    r.roundtrip(
        b"SETRANGE k 536870911 ab\r\nPING\r\n",
        b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n+PONG\r\n",
    );
    // memcached keeps its 1 MiB item limit on the same key space.
    let mut m = server.raw();
    let mut set = format!("set mk 0 0 {}\r\n", 2 << 20).into_bytes();
    set.extend_from_slice(&vec![b'x'; 2 << 20]);
    set.extend_from_slice(b"\r\n");
    m.roundtrip(&set, b"SERVER_ERROR object too large for cache\r\n");
}

#[test]
fn any_port_serves_both_protocols() {
    let server = TestServer::start(TWO_NODES);
    let mut r = Raw::connect(server.any);
    r.roundtrip(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", b"+OK\r\n");
    r.roundtrip(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", b"$1\r\nv\r\n");
    let mut m = Raw::connect(server.any);
    m.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
    m.roundtrip(b"version\r\n", b"VERSION 1.6.18-ringcache-0.1.0\r\n");
}

#[test]
fn scan_walks_every_key_across_a_node_change() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    let all: HashSet<String> = (0..3000).map(|i| format!("key:{i}")).collect();
    for chunk in all.iter().collect::<Vec<_>>().chunks(500) {
        let mut mset = cmd("MSET");
        for k in chunk {
            mset.arg(k.as_str()).arg("v");
        }
        let _: () = mset.query(&mut c).expect("mset");
    }
    let mut seen = HashSet::new();
    let mut cursor: u64 = 0;
    let mut rounds = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(100)
            .query(&mut c)
            .expect("scan");
        seen.extend(keys);
        rounds += 1;
        if rounds == 5 {
            // Reload: a third node appears (empty, it sorts anywhere in the scan order).
            let text = format!(
                "[listen]\nresp = \"127.0.0.1:0\"\n{TWO_NODES}\n[[nodes]]\nname = \"cache-new\"\nmax_memory = \"64MiB\"\n"
            );
            let config = Config::from_toml_str(&text, Path::new("t.toml")).expect("config");
            let old = server.shared.topology.load_full();
            let topo = Topology::build(
                2,
                &config.ring,
                &config.nodes,
                &old.nodes,
                &server.shared.clock,
            );
            server.shared.topology.store(Arc::new(topo));
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
        assert!(rounds < 10_000, "scan does not end");
    }
    assert_eq!(seen, all);
    let mut matched: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("key:1?")
            .arg("TYPE")
            .arg("string")
            .query(&mut c)
            .expect("scan");
        matched.extend(keys);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    matched.sort();
    let want: Vec<String> = (10..20).map(|i| format!("key:{i}")).collect();
    assert_eq!(matched, want);
    let keys: Vec<String> = cmd("KEYS").arg("key:2??").query(&mut c).expect("keys");
    assert_eq!(keys.len(), 100);
    let k: String = cmd("RANDOMKEY").query(&mut c).expect("randomkey");
    assert!(all.contains(&k));
}

#[test]
fn refused_connections_get_the_redis_error() {
    let server = TestServer::start(&format!("[limits]\nmax_connections = 1\n{TWO_NODES}"));
    let mut first = server.raw_resp();
    first.roundtrip(b"PING\r\n", b"+PONG\r\n");
    let mut second = server.raw_resp();
    assert_eq!(
        second.read_to_close(),
        b"-ERR max number of clients reached\r\n"
    );
}

#[test]
fn redis_benchmark_runs_clean() {
    if !common::tool("redis-benchmark", "redis-tools") {
        return;
    }
    let server = TestServer::start(TWO_NODES);
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &server.resp.port().to_string()])
        .args(["-q", "-n", "20000", "-t", "ping,set,get,incr,mset"])
        .output()
        .expect("redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    for test in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "MSET (10 keys)",
    ] {
        let line = text
            .split(['\r', '\n'])
            .rfind(|l| l.starts_with(&format!("{test}: ")) && l.contains("requests per second"))
            .unwrap_or_else(|| panic!("no result for {test}: {text}"));
        let rps: f64 = line[test.len() + 2..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unparsable: {line}"));
        assert!(rps > 0.0, "{line}");
    }
    assert!(!text.contains("ERR"), "{text}");
}

/// CONFIG SET accepts every redis 7.0 parameter (CONFIG GET shows it), applies `maxclients`
/// live, and refuses what the config file owns, naming the file.
#[test]
fn config_set_remembers_applies_and_names_the_file() {
    let config = common::ConfigFile::new(TWO_NODES);
    let server = TestServer::start_file(&config.path);
    let mut c = server.redis();
    let all: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("*")
        .query(&mut c)
        .expect("get");
    assert!(all.len() / 2 >= 190, "{} parameters", all.len() / 2);
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("zset-max-ziplist-entries")
        .arg("64")
        .query(&mut c)
        .expect("set");
    let got: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("zset-max-listpack-entries")
        .query(&mut c)
        .expect("get");
    assert_eq!(got, ["zset-max-listpack-entries", "64"]);
    let err = cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1gb")
        .query::<()>(&mut c)
        .expect_err("maxmemory belongs to the file");
    assert!(
        err.to_string().contains(&config.path.display().to_string()),
        "{err}"
    );
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("maxclients")
        .arg("1")
        .query(&mut c)
        .expect("set maxclients");
    let mut second = server.raw_resp();
    second.send(b"PING\r\n");
    assert_eq!(
        second.read_to_close(),
        b"-ERR max number of clients reached\r\n"
    );
}

/// INFO's keyspace line counts keys with an expiry however it was set or cleared (SET EX,
/// EXPIRE, PERSIST, a memcached exptime and touch, DEL, overwrite) and gives their mean
/// remaining TTL in ms.
#[test]
fn info_keyspace_counts_keys_with_an_expiry_from_both_protocols() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    let keyspace = |c: &mut redis::Connection| -> String {
        let info: String = cmd("INFO").arg("keyspace").query(c).expect("info");
        info.lines()
            .find(|l| l.starts_with("db0:"))
            .unwrap_or("")
            .to_string()
    };
    let field = |line: &str, name: &str| -> u64 {
        line.split([':', ','])
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    for i in 0..10 {
        let _: () = cmd("SET")
            .arg(format!("k{i}"))
            .arg("v")
            .query(&mut c)
            .expect("set");
    }
    let _: () = cmd("SET")
        .arg("k0")
        .arg("v")
        .arg("EX")
        .arg(100)
        .query(&mut c)
        .expect("set ex");
    let _: i64 = cmd("EXPIRE")
        .arg("k1")
        .arg(200)
        .query(&mut c)
        .expect("expire");
    let _: i64 = cmd("PEXPIRE")
        .arg("k2")
        .arg(300_000)
        .query(&mut c)
        .expect("pexpire");
    let line = keyspace(&mut c);
    assert_eq!(
        (field(&line, "keys"), field(&line, "expires")),
        (10, 3),
        "{line}"
    );
    let avg = field(&line, "avg_ttl");
    assert!((190_000..=200_000).contains(&avg), "{line}");
    let _: i64 = cmd("PERSIST").arg("k2").query(&mut c).expect("persist");
    let _: i64 = cmd("DEL").arg("k1").query(&mut c).expect("del");
    let _: () = cmd("SET")
        .arg("k0")
        .arg("again")
        .query(&mut c)
        .expect("overwrite");
    assert_eq!(field(&keyspace(&mut c), "expires"), 0);
    let mut m = server.raw();
    m.roundtrip(b"set mc 0 100 1\r\nx\r\n", b"STORED\r\n");
    m.roundtrip(b"touch k3 100\r\n", b"TOUCHED\r\n");
    let line = keyspace(&mut c);
    assert_eq!(
        (field(&line, "keys"), field(&line, "expires")),
        (10, 2),
        "{line}"
    );
    server.shared.topology.load().nodes.iter().for_each(|n| {
        n.validate().expect("valid node");
    });
}

/// CLIENT LIST shows every Redis connection of the server, with what each one is doing: its
/// name and library, its last command, blocked (`b`) or in MULTI (`x`, `multi=` queued), and
/// a closed connection is gone from it.
#[test]
fn client_list_shows_every_connection() {
    let server = TestServer::start(TWO_NODES);
    let mut me = server.redis();
    let mut named = server.redis();
    let _: () = cmd("CLIENT")
        .arg("SETNAME")
        .arg("worker-1")
        .query(&mut named)
        .expect("setname");
    let _: () = cmd("CLIENT")
        .arg("SETINFO")
        .arg("LIB-NAME")
        .arg("mylib")
        .query(&mut named)
        .expect("setinfo");
    let named_id: i64 = cmd("CLIENT").arg("ID").query(&mut named).expect("id");
    let mut in_multi = server.raw_resp();
    in_multi.roundtrip(
        b"MULTI\r\nSET a 1\r\nGET a\r\n",
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n",
    );
    let addr = server.resp;
    let blocked = std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
        let mut c = client.get_connection().expect("connect");
        let v: Value = cmd("BLPOP")
            .arg("list")
            .arg(5)
            .query(&mut c)
            .expect("blpop");
        v
    });
    common::wait_blocked(&server, 1);
    let list: String = cmd("CLIENT")
        .arg("LIST")
        .query(&mut me)
        .expect("client list");
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 4, "{list}");
    let line = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle}: {list}"))
            .to_string()
    };
    let n = line("name=worker-1 ");
    assert!(n.starts_with(&format!("id={named_id} ")), "{n}");
    assert!(
        n.contains(" lib-name=mylib ") && n.contains(" cmd=client|id "),
        "{n}"
    );
    let m = line("flags=x ");
    assert!(m.contains(" multi=2 ") && m.contains(" cmd=get "), "{m}");
    let b = line("flags=b ");
    assert!(b.contains(" cmd=blpop "), "{b}");
    assert!(line("cmd=client|list ").contains(" flags=N "));
    let _: i64 = cmd("LPUSH")
        .arg("list")
        .arg("x")
        .query(&mut me)
        .expect("lpush");
    assert_ne!(blocked.join().expect("blocked"), Value::Nil);
    drop(named);
    drop(in_multi);
    assert!(
        common::eventually(std::time::Duration::from_secs(5), || {
            let list: String = cmd("CLIENT")
                .arg("LIST")
                .query(&mut me)
                .expect("client list");
            list.lines().count() == 1
        }),
        "closed connections stay in CLIENT LIST"
    );
}

/// CONFIG RESETSTAT restarts INFO's counters from zero (the Prometheus counters stay
/// monotonic).
#[test]
fn config_resetstat_restarts_info_counters() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    for i in 0..50 {
        let _: Option<String> = cmd("GET").arg(format!("k{i}")).query(&mut c).expect("get");
    }
    let stat = |c: &mut redis::Connection, name: &str| -> u64 {
        let info: String = cmd("INFO").arg("stats").query(c).expect("info");
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .expect("stat")
    };
    assert!(stat(&mut c, "keyspace_misses") >= 50);
    assert!(stat(&mut c, "total_commands_processed") >= 50);
    let _: () = cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut c)
        .expect("resetstat");
    assert_eq!(stat(&mut c, "keyspace_misses"), 0);
    assert!(stat(&mut c, "total_commands_processed") <= 3);
    let _: Option<String> = cmd("GET").arg("missing").query(&mut c).expect("get");
    assert_eq!(stat(&mut c, "keyspace_misses"), 1);
}
