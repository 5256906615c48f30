//! Remote members: real redis-server and memcached processes on the ring next to an
//! in-process node, reached through ringcache with the `redis` and `memcache` crates and raw
//! bytes. Checks that every key lands on its owner only, that replies keep request order
//! across members, and that a dead or hostile member only fails its own keys, within its
//! timeout.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::memcached::Memcached;
use common::redis_server::RedisServer;
use common::{Raw, TestServer};

/// A ring of one in-process node and `members` (name, address, protocol), each remote member
/// with a 300 ms timeout.
fn ring(members: &[(&str, SocketAddr, &str)]) -> String {
    let mut body = String::from("[[nodes]]\nname = \"local\"\nmax_memory = \"64MiB\"\n");
    for (name, addr, protocol) in members {
        body.push_str(&format!(
            "\n[[nodes]]\nname = \"{name}\"\naddress = \"{addr}\"\nprotocol = \"{protocol}\"\ntimeout = \"300ms\"\nconnections = 2\n"
        ));
    }
    body
}

/// The ring index of `key`'s owner (0 is the in-process node).
fn owner(server: &TestServer, key: &str) -> usize {
    server.shared.topology.load().ring.lookup(key.as_bytes())
}

fn direct_redis(addr: SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

#[test]
fn redis_members_hold_their_keys_and_multikey_commands_split() {
    let (Some(a), Some(b)) = (RedisServer::start(), RedisServer::start()) else {
        return;
    };
    let server = TestServer::start(&ring(&[("ra", a.addr, "resp"), ("rb", b.addr, "resp")]));
    let mut c = server.redis();
    let mut direct = [direct_redis(a.addr), direct_redis(b.addr)];
    let keys: Vec<String> = (0..600).map(|i| format!("key:{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        let _: () = redis::cmd("SET").arg(k).arg(i).query(&mut c).unwrap();
    }
    let mut placed = [0; 3];
    for k in &keys {
        let o = owner(&server, k);
        placed[o] += 1;
        for (m, conn) in direct.iter_mut().enumerate() {
            let there: bool = redis::cmd("EXISTS").arg(k).query(conn).unwrap();
            assert_eq!(there, o == m + 1, "{k} (owner {o}) on member {m}");
        }
    }
    assert!(placed.iter().all(|&n| n > 100), "spread {placed:?}");
    // MGET across all three in key order, with misses.
    let mut q = redis::cmd("MGET");
    for k in &keys {
        q.arg(k).arg(format!("{k}:missing"));
    }
    let got: Vec<Option<String>> = q.query(&mut c).unwrap();
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(got[2 * i].as_deref(), Some(i.to_string().as_str()), "{k}");
        assert_eq!(got[2 * i + 1], None);
    }
    // A wrong-type key in MGET is a nil, as in redis.
    let _: () = redis::cmd("HSET")
        .arg("key:0")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .map(|_: i64| ())
        .or_else(|_| {
            let _: i64 = redis::cmd("DEL").arg("key:0").query(&mut c)?;
            redis::cmd("HSET")
                .arg("key:0")
                .arg("f")
                .arg("v")
                .query(&mut c)
        })
        .unwrap();
    let got: Vec<Option<String>> = redis::cmd("MGET")
        .arg("key:0")
        .arg("key:1")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, [None, Some("1".to_string())]);
    // Summed counts over members.
    let n: i64 = redis::cmd("EXISTS").arg(&keys[..]).query(&mut c).unwrap();
    assert_eq!(n, keys.len() as i64);
    let n: i64 = redis::cmd("DEL").arg(&keys[..300]).query(&mut c).unwrap();
    assert_eq!(n, 300);
    let n: i64 = redis::cmd("EXISTS").arg(&keys[..]).query(&mut c).unwrap();
    assert_eq!(n, 300);
    // MSET spreads; each value is where GET finds it.
    let mut m = redis::cmd("MSET");
    for k in &keys {
        m.arg(k).arg(format!("m-{k}"));
    }
    let _: () = m.query(&mut c).unwrap();
    for k in keys.iter().step_by(7) {
        let v: String = redis::cmd("GET").arg(k).query(&mut c).unwrap();
        assert_eq!(v, format!("m-{k}"));
    }
    // Commands that cannot be split: CROSSSLOT unless a hash tag puts the keys together.
    let (x, y) = (0..)
        .map(|i| (format!("x{i}"), format!("y{i}")))
        .find(|(x, y)| owner(&server, x) != owner(&server, y) && owner(&server, x) > 0)
        .unwrap();
    let _: () = redis::cmd("SET").arg(&x).arg("1").query(&mut c).unwrap();
    let e = redis::cmd("RENAME")
        .arg(&x)
        .arg(&y)
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
    let _: () = redis::cmd("SET")
        .arg("{t}a")
        .arg("1")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("RENAME")
        .arg("{t}a")
        .arg("{t}b")
        .query(&mut c)
        .unwrap();
    let v: String = redis::cmd("GET").arg("{t}b").query(&mut c).unwrap();
    assert_eq!(v, "1");
    // DBSIZE adds the members' counts; FLUSHALL empties every member too.
    let total: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    let mut each = 0;
    for conn in &mut direct {
        each += redis::cmd("DBSIZE").query::<i64>(conn).unwrap();
    }
    assert!(total > each && each > 0, "{total} {each}");
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 0);
    for conn in &mut direct {
        assert_eq!(redis::cmd("DBSIZE").query::<i64>(conn).unwrap(), 0);
    }
    // Blocking commands are not sent to a member.
    let e = redis::cmd("BLPOP")
        .arg(&x)
        .arg(1)
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("not forwarded"), "{e}");
}

#[test]
fn a_pipeline_over_members_keeps_request_order() {
    let (Some(a), Some(b)) = (RedisServer::start(), RedisServer::start()) else {
        return;
    };
    let server = TestServer::start(&ring(&[("ra", a.addr, "resp"), ("rb", b.addr, "resp")]));
    // Several connections at once, each pipelining dependent commands on keys all over the
    // ring: every reply must be its own request's.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let mut c = server.redis();
            std::thread::spawn(move || {
                for round in 0..20 {
                    let mut p = redis::pipe();
                    for i in 0..200 {
                        let k = format!("t{t}:k{i}");
                        p.cmd("SET").arg(&k).arg(round * 1000 + i);
                        p.cmd("INCR").arg(&k);
                        p.cmd("GET").arg(&k);
                        p.cmd("HSET").arg(format!("{k}:h")).arg("f").arg(i);
                    }
                    let replies: Vec<redis::Value> = p.query(&mut c).unwrap();
                    for i in 0..200 {
                        let want = round * 1000 + i + 1;
                        assert_eq!(replies[4 * i + 1], redis::Value::Int(want as i64));
                        let got: String =
                            redis::from_redis_value(replies[4 * i + 2].clone()).unwrap();
                        assert_eq!(got, want.to_string());
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn memcached_members_serve_text_and_meta_commands() {
    let (Some(a), Some(b)) = (Memcached::start(), Memcached::start()) else {
        return;
    };
    let server = TestServer::start(&ring(&[
        ("ma", a.addr, "memcache"),
        ("mb", b.addr, "memcache"),
    ]));
    let client = server.client();
    let keys: Vec<String> = (0..300).map(|i| format!("item:{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        client.set(k, format!("v{i}").as_str(), 0).unwrap();
    }
    // Each key on its owner only.
    let direct = [a.addr, b.addr].map(|addr| {
        memcache::Client::connect(format!("memcache://{addr}?protocol=ascii")).unwrap()
    });
    for k in &keys {
        let o = owner(&server, k);
        for (m, d) in direct.iter().enumerate() {
            let v: Option<String> = d.get(k).unwrap();
            assert_eq!(v.is_some(), o == m + 1, "{k} owner {o} member {m}");
        }
    }
    // Multi-key get answers in key order across members, misses left out.
    let mut raw = server.raw();
    let mut req = b"get".to_vec();
    for k in keys.iter().take(50) {
        req.extend_from_slice(format!(" {k} {k}-missing").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    raw.send(&req);
    let got = raw.read_until(b"END\r\n");
    let mut want = Vec::new();
    for (i, k) in keys.iter().take(50).enumerate() {
        let v = format!("v{i}");
        want.extend_from_slice(format!("VALUE {k} 0 {}\r\n{v}\r\n", v.len()).as_bytes());
    }
    want.extend_from_slice(b"END\r\n");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    // One remote key at a time through every text command.
    let k = keys
        .iter()
        .find(|k| owner(&server, k) == 1)
        .expect("a key on ma");
    for (req, reply) in [
        (format!("set {k} 7 0 2\r\n10\r\n"), "STORED\r\n".to_string()),
        (format!("incr {k} 5\r\n"), "15\r\n".into()),
        (format!("decr {k} 20\r\n"), "0\r\n".into()),
        (format!("touch {k} 100\r\n"), "TOUCHED\r\n".into()),
        (format!("add {k} 0 0 1\r\nx\r\n"), "NOT_STORED\r\n".into()),
        (format!("append {k} 0 0 1\r\nz\r\n"), "STORED\r\n".into()),
        // memcached keeps a decremented number's length, padded with spaces.
        (
            format!("get {k}\r\n"),
            format!("VALUE {k} 7 3\r\n0 z\r\nEND\r\n"),
        ),
        (
            format!("set {k} 0 0 1 noreply\r\nq\r\nget {k}\r\n"),
            format!("VALUE {k} 0 1\r\nq\r\nEND\r\n"),
        ),
        (
            format!("mg {k} v f k O9\r\n"),
            format!("VA 1 f0 k{k} O9\r\nq\r\n"),
        ),
        (format!("ms {k} 2 T0 F3 q\r\nhi\r\nmn\r\n"), "MN\r\n".into()),
        (format!("mg {k}-none v q\r\nmn\r\n"), "MN\r\n".into()),
        (
            format!("ma {k} q\r\nmn\r\n"),
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\nMN\r\n".into(),
        ),
        (format!("md {k} q\r\nmg {k} v\r\n"), "EN\r\n".into()),
        (format!("delete {k}\r\n"), "NOT_FOUND\r\n".into()),
    ] {
        raw.roundtrip(req.as_bytes(), reply.as_bytes());
    }
    // flush_all reaches the members.
    raw.roundtrip(b"flush_all\r\n", b"OK\r\n");
    for d in &direct {
        let v: Option<String> = d.get(&keys[1]).unwrap();
        assert_eq!(v, None);
    }
    // gets/cas through the member: the CAS it hands out is the one it checks.
    client.set(k, "a", 0).unwrap();
    let (_, _, cas): (String, u32, Option<u64>) = {
        let got: std::collections::HashMap<String, (Vec<u8>, u32, Option<u64>)> =
            client.gets(&[k.as_str()]).unwrap();
        let (v, f, c) = got[k.as_str()].clone();
        (String::from_utf8(v).unwrap(), f, c)
    };
    assert!(client.cas(k, "b", 0, cas.unwrap()).unwrap());
    assert!(!client.cas(k, "c", 0, cas.unwrap()).unwrap());
}

/// Time a request takes on a raw connection, and its reply.
fn timed(raw: &mut Raw, req: &[u8], until: &[u8]) -> (Duration, String) {
    let t = Instant::now();
    raw.send(req);
    let reply = raw.read_until(until);
    (t.elapsed(), String::from_utf8_lossy(&reply).into_owned())
}

#[test]
fn a_killed_member_fails_only_its_keys_fast_and_comes_back() {
    let (Some(mut a), Some(b)) = (Memcached::start(), Memcached::start()) else {
        return;
    };
    let server = TestServer::start(&ring(&[
        ("ma", a.addr, "memcache"),
        ("mb", b.addr, "memcache"),
    ]));
    let key_on = |m: usize| {
        (0..)
            .map(|i| format!("k{i}"))
            .find(|k| owner(&server, k) == m)
            .unwrap()
    };
    let (ka, kb, kl) = (key_on(1), key_on(2), key_on(0));
    let mut raw = server.raw();
    for k in [&ka, &kb, &kl] {
        raw.roundtrip(format!("set {k} 0 0 1\r\n1\r\n").as_bytes(), b"STORED\r\n");
    }
    a.kill();
    // Its keys fail with SERVER_ERROR, well within the timeout once the member is known down;
    // the others answer as before.
    for _ in 0..20 {
        let (took, reply) = timed(&mut raw, format!("get {ka}\r\n").as_bytes(), b"\r\n");
        assert!(reply.starts_with("SERVER_ERROR node ma"), "{reply}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
        raw.roundtrip(
            format!("get {kb}\r\n").as_bytes(),
            format!("VALUE {kb} 0 1\r\n1\r\nEND\r\n").as_bytes(),
        );
        raw.roundtrip(
            format!("get {kl}\r\n").as_bytes(),
            format!("VALUE {kl} 0 1\r\n1\r\nEND\r\n").as_bytes(),
        );
    }
    // Counted per member, and shown in /ring.
    let scrape = server.http_get("/metrics");
    let errors = scrape
        .lines()
        .find(|l| l.starts_with("ringcache_remote_errors_total{node=\"ma\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(errors >= 20.0, "{scrape}");
    assert!(scrape.contains("ringcache_remote_reply_duration_seconds_bucket{node=\"mb\""));
    let ring = server.http_get("/ring");
    let ma = format!(
        "\"remote\":{{\"address\":\"{}\",\"protocol\":\"memcache\",\"connections\":2,\"connected\":0",
        a.addr
    );
    assert!(ring.contains(&ma), "{ring}");
    // In a multi-key get, the dead member's keys are misses.
    raw.roundtrip(
        format!("get {ka} {kb}\r\n").as_bytes(),
        format!("VALUE {kb} 0 1\r\n1\r\nEND\r\n").as_bytes(),
    );
    a.restart();
    assert!(
        common::eventually(Duration::from_secs(10), || {
            raw.send(format!("set {ka} 0 0 1\r\n2\r\n").as_bytes());
            raw.read_until(b"\r\n") == b"STORED\r\n"
        }),
        "the restarted member is used again"
    );
    raw.roundtrip(
        format!("get {ka}\r\n").as_bytes(),
        format!("VALUE {ka} 0 1\r\n2\r\nEND\r\n").as_bytes(),
    );
}

/// A fake member: accepts connections and treats each with `behave` (on its own thread).
fn fake_member(behave: fn(TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || behave(s));
        }
    });
    addr
}

/// Reads requests and answers each with `reply`.
fn answer_with(mut s: TcpStream, reply: &[u8]) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 || s.write_all(reply).is_err() {
            return;
        }
    }
}

#[test]
fn hostile_members_cannot_hang_crash_or_block_other_keys() {
    let Some(good) = RedisServer::start() else {
        return;
    };
    let garbage = fake_member(|s| answer_with(s, b"?this is not RESP\r\n"));
    let half = fake_member(|s| answer_with(s, b"$100\r\nonly part of it"));
    let silent = fake_member(|mut s| {
        let mut buf = [0u8; 4096];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    });
    let huge = fake_member(|s| answer_with(s, b"*9999999999999\r\n"));
    let server = TestServer::start(&ring(&[
        ("good", good.addr, "resp"),
        ("garbage", garbage, "resp"),
        ("half", half, "resp"),
        ("silent", silent, "resp"),
        ("huge", huge, "resp"),
    ]));
    let names = ["local", "good", "garbage", "half", "silent", "huge"];
    let mut raw = server.raw_resp();
    for (m, name) in names.iter().enumerate() {
        let k = (0..)
            .map(|i| format!("h{i}"))
            .find(|k| owner(&server, k) == m)
            .unwrap();
        for _ in 0..3 {
            let (took, reply) = timed(
                &mut raw,
                format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n$1\r\nv\r\n", k.len()).as_bytes(),
                b"\r\n",
            );
            assert!(took < Duration::from_secs(2), "{name}: {took:?}");
            if m < 2 {
                assert_eq!(reply, "+OK\r\n", "{name}");
            } else {
                assert!(
                    reply.starts_with(&format!("-ERR node {name} ")),
                    "{name}: {reply}"
                );
            }
        }
    }
    // Still serving, and the good member still works.
    raw.roundtrip(b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n");
    let mut c = server.redis();
    let k = (0..)
        .map(|i| format!("g{i}"))
        .find(|k| owner(&server, k) == 1)
        .unwrap();
    let _: () = redis::cmd("SET").arg(&k).arg("ok").query(&mut c).unwrap();
    let v: String = redis::cmd("GET").arg(&k).query(&mut c).unwrap();
    assert_eq!(v, "ok");
}

#[test]
fn memccapable_passes_through_memcached_members() {
    if !common::tool("memccapable", "libmemcached-tools") {
        return;
    }
    let (Some(a), Some(b)) = (Memcached::start(), Memcached::start()) else {
        return;
    };
    let server = TestServer::start(&ring(&[
        ("ma", a.addr, "memcache"),
        ("mb", b.addr, "memcache"),
    ]));
    let out = std::process::Command::new("memccapable")
        .args(["-h", "127.0.0.1", "-p", &server.memcache.port().to_string()])
        .args(["-a", "-t", "10"])
        .output()
        .expect("run memccapable");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.matches("[pass]").count() >= 25, "{text}");
    assert!(!text.to_lowercase().contains("[fail]"), "{text}");
    assert!(out.status.success(), "{text}");
}

#[test]
fn each_protocol_reaches_the_other_protocols_members_for_strings() {
    let (Some(r), Some(m)) = (RedisServer::start(), Memcached::start()) else {
        return;
    };
    let server = TestServer::start(&ring(&[("rd", r.addr, "resp"), ("mc", m.addr, "memcache")]));
    let key_on = |n: usize, tag: &str| {
        (0..)
            .map(|i| format!("{tag}{i}"))
            .find(|k| owner(&server, k) == n)
            .unwrap()
    };
    // A Redis client on a memcached member's keys.
    let mut c = server.redis();
    let mc_direct =
        memcache::Client::connect(format!("memcache://{}?protocol=ascii", m.addr)).unwrap();
    let k = key_on(2, "onmc");
    let q = |c: &mut redis::Connection, args: &[&str]| -> redis::Value {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(c)
            .unwrap_or_else(|e| redis::Value::SimpleString(format!("error: {e}")))
    };
    use redis::Value::{BulkString, Int, Nil, Okay};
    let bulk = |s: &str| BulkString(s.as_bytes().to_vec());
    assert_eq!(q(&mut c, &["SET", &k, "v1"]), Okay);
    assert_eq!(mc_direct.get::<String>(&k).unwrap().as_deref(), Some("v1"));
    assert_eq!(q(&mut c, &["GET", &k]), bulk("v1"));
    assert_eq!(q(&mut c, &["SET", &k, "v2", "NX"]), Nil);
    assert_eq!(q(&mut c, &["SET", &k, "v3", "XX", "EX", "100"]), Okay);
    assert_eq!(q(&mut c, &["SETNX", &k, "x"]), Int(0));
    assert_eq!(q(&mut c, &["EXPIRE", &k, "50"]), Int(1));
    assert_eq!(q(&mut c, &["GETEX", &k, "EX", "60"]), bulk("v3"));
    assert_eq!(q(&mut c, &["EXISTS", &k, &format!("{k}-no")]), Int(1));
    let n = key_on(2, "counter");
    assert_eq!(q(&mut c, &["INCR", &n]), Int(1));
    assert_eq!(q(&mut c, &["INCRBY", &n, "41"]), Int(42));
    assert_eq!(q(&mut c, &["DECRBY", &n, "2"]), Int(40));
    assert_eq!(mc_direct.get::<String>(&n).unwrap().as_deref(), Some("40"));
    assert_eq!(
        q(&mut c, &["MSET", &k, "a", &n, "b", "{x}local", "c"]),
        Okay
    );
    assert_eq!(
        q(&mut c, &["MGET", &k, &n, "{x}local", "nope"]),
        redis::Value::Array(vec![bulk("a"), bulk("b"), bulk("c"), Nil])
    );
    assert_eq!(q(&mut c, &["DEL", &k, &n, "{x}local", "nope"]), Int(3));
    assert_eq!(mc_direct.get::<String>(&k).unwrap(), None);
    match q(&mut c, &["HSET", &k, "f", "v"]) {
        redis::Value::SimpleString(e) => assert!(e.contains("memcache protocol"), "{e}"),
        other => panic!("{other:?}"),
    }
    // A memcached client on a Redis member's keys.
    let mut rd_direct = direct_redis(r.addr);
    let k = key_on(1, "onrd");
    let mut raw = server.raw();
    for (req, reply) in [
        (format!("set {k} 0 0 2\r\nhi\r\n"), "STORED\r\n".to_string()),
        (
            format!("get {k}\r\n"),
            format!("VALUE {k} 0 2\r\nhi\r\nEND\r\n"),
        ),
        (
            format!("gets {k}\r\n"),
            format!("VALUE {k} 0 2 0\r\nhi\r\nEND\r\n"),
        ),
        (format!("add {k} 0 0 1\r\nx\r\n"), "NOT_STORED\r\n".into()),
        (
            format!("replace {k} 0 100 2\r\n10\r\n"),
            "STORED\r\n".into(),
        ),
        (format!("incr {k} 5\r\n"), "15\r\n".into()),
        (format!("decr {k} 100\r\n"), "0\r\n".into()),
        (format!("incr {k}-none 1\r\n"), "NOT_FOUND\r\n".into()),
        (format!("touch {k} 0\r\n"), "TOUCHED\r\n".into()),
        (
            format!("gat 200 {k}\r\n"),
            format!("VALUE {k} 0 1\r\n0\r\nEND\r\n"),
        ),
        (
            format!("set {k} 3 0 1\r\nx\r\n"),
            "SERVER_ERROR node rd speaks resp: only flags 0 can be stored\r\n".into(),
        ),
        (format!("delete {k}\r\n"), "DELETED\r\n".into()),
        (format!("delete {k}\r\n"), "NOT_FOUND\r\n".into()),
    ] {
        raw.roundtrip(req.as_bytes(), reply.as_bytes());
    }
    raw.roundtrip(format!("set {k} 0 0 1\r\n7\r\n").as_bytes(), b"STORED\r\n");
    let ttl: i64 = redis::cmd("TTL").arg(&k).query(&mut rd_direct).unwrap();
    assert_eq!(ttl, -1);
    raw.roundtrip(format!("touch {k} 100\r\n").as_bytes(), b"TOUCHED\r\n");
    let ttl: i64 = redis::cmd("TTL").arg(&k).query(&mut rd_direct).unwrap();
    assert!((98..=100).contains(&ttl), "{ttl}");
    let v: String = redis::cmd("GET").arg(&k).query(&mut rd_direct).unwrap();
    assert_eq!(v, "7");
    // One get over all three kinds of node, a key twice, misses in between: key order kept.
    let (kl, km) = (key_on(0, "l"), key_on(2, "m"));
    raw.roundtrip(format!("set {kl} 1 0 1\r\nL\r\n").as_bytes(), b"STORED\r\n");
    raw.roundtrip(format!("set {km} 2 0 1\r\nM\r\n").as_bytes(), b"STORED\r\n");
    let km2 = key_on(2, "n");
    raw.roundtrip(
        format!("set {km2} 3 0 1\r\nN\r\n").as_bytes(),
        b"STORED\r\n",
    );
    raw.roundtrip(
        format!("get {km} {k} nope {kl} {km2} {km} {k}\r\n").as_bytes(),
        format!(
            "VALUE {km} 2 1\r\nM\r\nVALUE {k} 0 1\r\n7\r\nVALUE {kl} 1 1\r\nL\r\nVALUE {km2} 3 1\r\nN\r\nVALUE {km} 2 1\r\nM\r\nVALUE {k} 0 1\r\n7\r\nEND\r\n"
        )
        .as_bytes(),
    );
}

#[test]
fn a_resp3_client_gets_resp3_replies_from_redis_members() {
    let Some(r) = RedisServer::start_with(&["--requirepass", "pw"]) else {
        return;
    };
    let body = format!(
        "[[nodes]]\nname = \"rd\"\naddress = \"{}\"\nprotocol = \"resp\"\npassword = \"pw\"\n",
        r.addr
    );
    let server = TestServer::start(&body);
    let mut c3 = server.redis_with(redis::ProtocolVersion::RESP3);
    let _: () = redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .query(&mut c3)
        .unwrap();
    let v: redis::Value = redis::cmd("HGETALL").arg("h").query(&mut c3).unwrap();
    assert!(matches!(v, redis::Value::Map(_)), "{v:?}");
    let _: () = redis::cmd("SADD").arg("s").arg("a").query(&mut c3).unwrap();
    let v: redis::Value = redis::cmd("SMEMBERS").arg("s").query(&mut c3).unwrap();
    assert!(matches!(v, redis::Value::Set(_)), "{v:?}");
    // The same through a RESP2 client: arrays, on its own connections.
    let mut c2 = server.redis();
    let v: redis::Value = redis::cmd("HGETALL").arg("h").query(&mut c2).unwrap();
    assert!(matches!(v, redis::Value::Array(_)), "{v:?}");
}

#[test]
fn a_reply_over_the_output_limit_closes_only_its_connection_with_remote_parts_pending() {
    let Some(r) = RedisServer::start() else {
        return;
    };
    let body = format!(
        "[limits]\nmax_output_buffer = \"64KiB\"\n\n{}",
        ring(&[("rd", r.addr, "resp")])
    );
    let server = TestServer::start(&body);
    let key_on = |n: usize, tag: &str| {
        (0..)
            .map(|i| format!("{tag}{i}"))
            .find(|k| owner(&server, k) == n)
            .unwrap()
    };
    let mut c = server.redis();
    let big = "x".repeat(40 << 10);
    let (l1, l2, rk) = (key_on(0, "a"), key_on(0, "b"), key_on(1, "c"));
    for k in [&l1, &l2, &rk] {
        let _: () = redis::cmd("SET").arg(k).arg(&big).query(&mut c).unwrap();
    }
    // A GET of a remote key, then an MGET whose local parts pass the limit, pipelined.
    let mut raw = server.raw_resp();
    raw.send(
        format!(
            "*2\r\n$3\r\nGET\r\n${}\r\n{rk}\r\n*4\r\n$4\r\nMGET\r\n${}\r\n{rk}\r\n${}\r\n{l1}\r\n${}\r\n{l2}\r\n",
            rk.len(),
            rk.len(),
            l1.len(),
            l2.len()
        )
        .as_bytes(),
    );
    let got = raw.read_to_close();
    assert!(
        got.starts_with(format!("${}\r\n", big.len()).as_bytes()),
        "{}",
        got.len()
    );
    assert_eq!(
        got.len(),
        big.len() + 2 + format!("${}\r\n", big.len()).len()
    );
    // The server goes on.
    let v: String = redis::cmd("GET").arg(&rk).query(&mut c).unwrap();
    assert_eq!(v.len(), big.len());
}

/// Reads one memcached reply line (with its CRLF) from `r`.
fn line(r: &mut std::io::BufReader<TcpStream>) -> String {
    use std::io::BufRead;
    let mut s = String::new();
    r.read_line(&mut s).expect("reply line (no hang)");
    assert!(s.ends_with("\r\n"), "cut reply {s:?}");
    s
}

/// Clients pipeline sets and gets over an in-process node and a memcached member while the
/// member is killed and restarted, again and again: every request gets exactly one reply, in
/// order, and a get never returns another request's value (a hit is the value this client last
/// stored for that key, a failure is a miss or SERVER_ERROR).
#[test]
fn replies_stay_matched_while_a_member_dies_and_returns() {
    let (Some(mut a), Some(_b)) = (Memcached::start(), Memcached::start()) else {
        return;
    };
    let server = TestServer::start(&ring(&[("ma", a.addr, "memcache")]));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|t| {
            let (addr, stop) = (server.memcache, std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                let s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = std::io::BufReader::new(s);
                let (mut round, mut hits) = (0u64, 0u64);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    round += 1;
                    let mut req = String::new();
                    for i in 0..50 {
                        let v = format!("{t}-{round}-{i}");
                        req.push_str(&format!(
                            "set t{t}k{i} 0 0 {}\r\n{v}\r\nget t{t}k{i}\r\n",
                            v.len()
                        ));
                    }
                    w.write_all(req.as_bytes()).unwrap();
                    for i in 0..50 {
                        let want = format!("{t}-{round}-{i}");
                        let set = line(&mut r);
                        assert!(
                            set == "STORED\r\n" || set.starts_with("SERVER_ERROR node ma"),
                            "{set}"
                        );
                        let got = line(&mut r);
                        if got.starts_with("VALUE ") {
                            assert_eq!(got, format!("VALUE t{t}k{i} 0 {}\r\n", want.len()));
                            assert_eq!(line(&mut r), format!("{want}\r\n"));
                            assert_eq!(line(&mut r), "END\r\n");
                            hits += 1;
                        } else {
                            assert!(
                                got == "END\r\n" || got.starts_with("SERVER_ERROR node ma"),
                                "{got}"
                            );
                        }
                    }
                }
                (round, hits)
            })
        })
        .collect();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(150));
        a.kill();
        std::thread::sleep(Duration::from_millis(150));
        a.restart();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        let (rounds, hits) = c.join().expect("client");
        assert!(rounds > 5 && hits > 0, "{rounds} rounds, {hits} hits");
    }
}
