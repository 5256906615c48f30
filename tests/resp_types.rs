//! Container types over real sockets: blocking pops across connections (timeouts, arrival
//! order, wake-up by a push from another connection, disconnect and shutdown while blocked),
//! atomic multi-key commands on one node, memory accounting of big containers, and element
//! scans that return every element present for the whole iteration while it changes.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{TWO_NODES, TestServer, wait_blocked};
use redis::Value;

fn cmd(name: &str) -> redis::Cmd {
    redis::cmd(name)
}

#[test]
fn blpop_times_out_and_is_woken_by_a_push_from_another_connection() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    let t = Instant::now();
    let v: Value = cmd("BLPOP")
        .arg("q")
        .arg("0.2")
        .query(&mut c)
        .expect("blpop");
    assert_eq!(v, Value::Nil);
    assert!(
        t.elapsed() >= Duration::from_millis(190),
        "{:?}",
        t.elapsed()
    );
    assert!(server.shared.waiters.is_empty());

    let addr = server.resp;
    let waiter = thread::spawn(move || {
        let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
        let mut c = client.get_connection().expect("conn");
        let v: (String, String) = cmd("BLPOP")
            .arg("q")
            .arg("other")
            .arg(0)
            .query(&mut c)
            .expect("blpop");
        v
    });
    wait_blocked(&server, 2);
    let info: String = cmd("INFO").arg("clients").query(&mut c).expect("info");
    assert!(info.contains("blocked_clients:1\r\n"), "{info}");
    let n: i64 = cmd("RPUSH")
        .arg("q")
        .arg("x")
        .arg("y")
        .query(&mut c)
        .expect("rpush");
    assert_eq!(n, 2);
    assert_eq!(waiter.join().expect("waiter"), ("q".into(), "x".into()));
    let left: Vec<String> = cmd("LRANGE")
        .arg("q")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("lrange");
    assert_eq!(left, ["y"]);
    assert!(server.shared.waiters.is_empty());

    // BLMOVE and BZPOPMIN wake the same way; the pushed key is a sorted set here.
    let addr = server.resp;
    let waiter = thread::spawn(move || {
        let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
        let mut c = client.get_connection().expect("conn");
        let v: (String, String, String) = cmd("BZPOPMIN")
            .arg("z")
            .arg(5)
            .query(&mut c)
            .expect("bzpopmin");
        v
    });
    wait_blocked(&server, 1);
    let _: i64 = cmd("ZADD")
        .arg("z")
        .arg(2)
        .arg("b")
        .arg(1)
        .arg("a")
        .query(&mut c)
        .expect("zadd");
    assert_eq!(
        waiter.join().expect("waiter"),
        ("z".into(), "a".into(), "1".into())
    );
}

#[test]
fn blocked_clients_are_served_in_arrival_order() {
    let server = TestServer::start(TWO_NODES);
    let addr = server.resp;
    let mut handles = Vec::new();
    for i in 0..3 {
        handles.push(thread::spawn(move || {
            let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
            let mut c = client.get_connection().expect("conn");
            let v: (String, String) = cmd("BRPOP")
                .arg("jobs")
                .arg(10)
                .query(&mut c)
                .expect("brpop");
            (i, v.1)
        }));
        wait_blocked(&server, i + 1);
    }
    let mut c = server.redis();
    for job in ["a", "b", "c"] {
        let _: i64 = cmd("LPUSH")
            .arg("jobs")
            .arg(job)
            .query(&mut c)
            .expect("lpush");
        // One at a time, so that which client got which job shows the order.
        let left = 2 - ["a", "b", "c"].iter().position(|j| *j == job).expect("job");
        wait_blocked(&server, left);
    }
    let mut got: Vec<(usize, String)> = handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect();
    got.sort();
    assert_eq!(got, [(0, "a".into()), (1, "b".into()), (2, "c".into())]);

    // Several elements pushed at once wake every waiter (the baton is passed on).
    let mut handles = Vec::new();
    for i in 0..3 {
        handles.push(thread::spawn(move || {
            let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
            let mut c = client.get_connection().expect("conn");
            let v: (String, String) = cmd("BLPOP")
                .arg("many")
                .arg(10)
                .query(&mut c)
                .expect("blpop");
            v.1
        }));
        wait_blocked(&server, i + 1);
    }
    let _: i64 = cmd("RPUSH")
        .arg("many")
        .arg("1")
        .arg("2")
        .arg("3")
        .query(&mut c)
        .expect("rpush");
    let mut got: Vec<String> = handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect();
    got.sort();
    assert_eq!(got, ["1", "2", "3"]);
}

#[test]
fn disconnect_and_shutdown_release_blocked_clients() {
    let server = TestServer::start(TWO_NODES);
    let mut raw = server.raw_resp();
    raw.send(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nk\r\n$1\r\n0\r\n");
    wait_blocked(&server, 1);
    drop(raw);
    wait_blocked(&server, 0);
    // A push after the disconnect stays in the list: nobody took it.
    let mut c = server.redis();
    let _: i64 = cmd("RPUSH").arg("k").arg("v").query(&mut c).expect("rpush");
    let n: i64 = cmd("LLEN").arg("k").query(&mut c).expect("llen");
    assert_eq!(n, 1);

    // A client blocked with pipelined requests behind it gets them answered after the wake-up.
    let mut raw = server.raw_resp();
    raw.send(b"*3\r\n$5\r\nBLPOP\r\n$2\r\nk2\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n");
    wait_blocked(&server, 1);
    let _: i64 = cmd("RPUSH")
        .arg("k2")
        .arg("v")
        .query(&mut c)
        .expect("rpush");
    let reply = raw.read_until(b"+PONG\r\n");
    assert_eq!(reply, b"*2\r\n$2\r\nk2\r\n$1\r\nv\r\n+PONG\r\n");

    // Shutdown closes a client blocked forever.
    let mut raw = server.raw_resp();
    raw.send(b"*3\r\n$5\r\nBLPOP\r\n$2\r\nk3\r\n$1\r\n0\r\n");
    wait_blocked(&server, 1);
    let shared = std::sync::Arc::clone(&server.shared);
    drop(server);
    assert!(raw.read_to_close().is_empty());
    assert!(shared.waiters.is_empty());
}

#[test]
fn multi_key_commands_on_one_node_are_atomic() {
    let server = TestServer::start(TWO_NODES);
    let addr = server.resp;
    let mut c = server.redis();
    let _: i64 = cmd("SADD")
        .arg("{t}a")
        .arg("m")
        .query(&mut c)
        .expect("sadd");
    // Two clients move one member back and forth; a third checks that it is always in exactly
    // one of the sets (SMOVE atomic), checking both with one atomic SUNION.
    let movers: Vec<_> = [("{t}a", "{t}b"), ("{t}b", "{t}a")]
        .into_iter()
        .map(|(from, to)| {
            thread::spawn(move || {
                let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
                let mut c = client.get_connection().expect("conn");
                for _ in 0..2000 {
                    let _: i64 = cmd("SMOVE")
                        .arg(from)
                        .arg(to)
                        .arg("m")
                        .query(&mut c)
                        .expect("smove");
                }
            })
        })
        .collect();
    for _ in 0..2000 {
        let n: i64 = cmd("SINTERCARD")
            .arg(1)
            .arg("{t}a")
            .query(&mut c)
            .expect("card");
        let m: i64 = cmd("SCARD").arg("{t}b").query(&mut c).expect("card");
        assert!(n + m <= 2);
        let u: Vec<String> = cmd("SUNION")
            .arg("{t}a")
            .arg("{t}b")
            .query(&mut c)
            .expect("sunion");
        assert_eq!(
            u,
            ["m"],
            "the member is in exactly one set at every instant"
        );
    }
    for m in movers {
        m.join().expect("mover");
    }
    // Cross-node multi-key commands still work (not atomically).
    let _: i64 = cmd("RPUSH")
        .arg("left-list")
        .arg("1")
        .arg("2")
        .query(&mut c)
        .expect("rpush");
    let v: String = cmd("LMOVE")
        .arg("left-list")
        .arg("right-list")
        .arg("LEFT")
        .arg("RIGHT")
        .query(&mut c)
        .expect("lmove");
    assert_eq!(v, "1");
    let _: () = cmd("RENAME")
        .arg("right-list")
        .arg("other-list")
        .query(&mut c)
        .expect("rename");
    let l: Vec<String> = cmd("LRANGE")
        .arg("other-list")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("lrange");
    assert_eq!(l, ["1"]);
}

/// Keys filled with 200 elements each in `big_containers_...`.
const KEYS: usize = 100;

const SMALL_NODES: &str = r#"
[[nodes]]
name = "cache-a"
max_memory = "1MiB"

[[nodes]]
name = "cache-b"
max_memory = "1MiB"
"#;

#[test]
fn big_containers_stay_under_max_memory_and_are_evicted_whole() {
    let server = TestServer::start(SMALL_NODES);
    let mut c = server.redis();
    let value = "v".repeat(100);
    for k in 0..KEYS {
        let mut p = redis::pipe();
        for i in 0..200 {
            let f = format!("f{i}");
            match k % 4 {
                0 => p
                    .cmd("HSET")
                    .arg(format!("h{k}"))
                    .arg(&f)
                    .arg(&value)
                    .ignore(),
                1 => p.cmd("RPUSH").arg(format!("l{k}")).arg(&value).ignore(),
                2 => p
                    .cmd("SADD")
                    .arg(format!("s{k}"))
                    .arg(format!("{f}{value}"))
                    .ignore(),
                _ => p
                    .cmd("ZADD")
                    .arg(format!("z{k}"))
                    .arg(i)
                    .arg(format!("{f}{value}"))
                    .ignore(),
            };
        }
        let _: () = p.query(&mut c).expect("fill");
        let topo = server.shared.topology.load();
        for node in &topo.nodes {
            assert!(
                node.used_bytes() <= node.max_memory(),
                "{} over budget",
                node.name()
            );
        }
    }
    let topo = server.shared.topology.load();
    let mut evictions = 0;
    for node in &topo.nodes {
        node.validate().expect("valid accounting");
        evictions += node.stats().evictions;
    }
    assert!(evictions > 0, "100 containers of ~32KiB cannot fit in 2MiB");
    // Every surviving key is whole: 200 elements.
    let mut seen = 0;
    for k in 0..KEYS {
        let (name, len_cmd) = match k % 4 {
            0 => (format!("h{k}"), "HLEN"),
            1 => (format!("l{k}"), "LLEN"),
            2 => (format!("s{k}"), "SCARD"),
            _ => (format!("z{k}"), "ZCARD"),
        };
        let n: i64 = cmd(len_cmd).arg(&name).query(&mut c).expect("len");
        assert!(n == 0 || n == 200, "{name} has {n} elements");
        seen += usize::from(n == 200);
    }
    assert!(seen > 0 && seen < KEYS, "{seen} of {KEYS} survived");
    // Popping a big list down gives its memory back.
    let before: u64 = topo.nodes.iter().map(|n| n.used_bytes()).sum();
    for k in (1..KEYS).step_by(4) {
        let _: Value = cmd("LPOP")
            .arg(format!("l{k}"))
            .arg(199)
            .query(&mut c)
            .expect("lpop");
    }
    let after: u64 = topo.nodes.iter().map(|n| n.used_bytes()).sum();
    assert!(after < before, "{after} >= {before}");
    for node in &topo.nodes {
        node.validate().expect("valid accounting");
    }
}

/// HSCAN, SSCAN and ZSCAN over 1,000 elements, with removals, additions and score changes
/// between every call: every element present from the first call to the last is returned
/// (redis's SCAN guarantee), and nothing that was never added is.
#[test]
fn element_scans_return_every_element_present_throughout_while_it_changes() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    const N: usize = 1000;
    for kind in ["hash", "set", "zset"] {
        for round in 0..3 {
            let key = format!("{kind}{round}");
            let add = |c: &mut redis::Connection, m: &str, score: usize| {
                let _: i64 = match kind {
                    "hash" => cmd("HSET").arg(&key).arg(m).arg("v").query(c),
                    "set" => cmd("SADD").arg(&key).arg(m).query(c),
                    _ => cmd("ZADD").arg(&key).arg(score).arg(m).query(c),
                }
                .expect("add");
            };
            let remove = |c: &mut redis::Connection, m: &str| {
                let cmd_name = match kind {
                    "hash" => "HDEL",
                    "set" => "SREM",
                    _ => "ZREM",
                };
                let _: i64 = cmd(cmd_name).arg(&key).arg(m).query(c).expect("remove");
            };
            for i in 0..N {
                add(&mut c, &format!("m{i}"), i);
            }
            // Members m0..m299 are removed along the way (moving the members of the last
            // slots down), a new member appears every other call, and zset scores change: the
            // others stay.
            let mut removed = std::collections::HashSet::new();
            let mut next_new = N;
            let mut seen = std::collections::HashSet::new();
            let mut cursor = 0u64;
            let mut step = 0usize;
            loop {
                let scan = match kind {
                    "hash" => "HSCAN",
                    "set" => "SSCAN",
                    _ => "ZSCAN",
                };
                let (next, items): (u64, Vec<String>) = cmd(scan)
                    .arg(&key)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(10 + round)
                    .query(&mut c)
                    .expect("scan");
                let stride = if kind == "set" { 1 } else { 2 };
                seen.extend(items.iter().step_by(stride).cloned());
                if next == 0 {
                    break;
                }
                cursor = next;
                step += 1;
                let victim = (step * 37 + round) % 300;
                if removed.insert(victim) {
                    remove(&mut c, &format!("m{victim}"));
                }
                if step % 2 == 0 {
                    add(&mut c, &format!("m{next_new}"), next_new);
                    next_new += 1;
                }
                if kind == "zset" {
                    let m = format!("m{}", 300 + (step * 13) % (N - 300));
                    let _: f64 = cmd("ZINCRBY")
                        .arg(&key)
                        .arg(-1000)
                        .arg(&m)
                        .query(&mut c)
                        .expect("zincrby");
                }
            }
            assert!(
                removed.len() > 50,
                "{kind}: only {} removals",
                removed.len()
            );
            for i in 0..N {
                if !removed.contains(&i) {
                    assert!(
                        seen.contains(&format!("m{i}")),
                        "{kind} round {round}: m{i} was present throughout and not returned"
                    );
                }
            }
            for m in &seen {
                let i: usize = m[1..].parse().expect("member name");
                assert!(i < next_new, "{kind}: {m} was never added");
            }
        }
    }
}
