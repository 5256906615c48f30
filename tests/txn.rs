//! Transactions the way applications use them, with the `redis` crate: atomic pipelines, a
//! WATCH/MULTI retry loop under contention, a WATCH broken by a memcached write, and
//! all-or-nothing EXECs over keys on different nodes, also while a reload migrates them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::{ConfigFile, TWO_NODES, TestServer};
use redis::Commands;

fn connect(addr: std::net::SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

#[test]
fn an_atomic_pipeline_runs_as_one_transaction() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    let (a, b, n): (String, Vec<String>, i64) = redis::pipe()
        .atomic()
        .set("p:a", "1")
        .ignore()
        .get("p:a")
        .rpush("p:l", &["x", "y"])
        .ignore()
        .lrange("p:l", 0, -1)
        .incr("p:n", 5)
        .query(&mut c)
        .expect("atomic pipeline");
    assert_eq!((a.as_str(), b, n), ("1", vec!["x".into(), "y".into()], 5));
}

/// 8 threads increment one counter with GET + SET inside WATCH/MULTI/EXEC, retrying when EXEC
/// fails: no increment may be lost.
#[test]
fn watch_retry_loops_lose_no_increment() {
    let server = TestServer::start(TWO_NODES);
    const THREADS: usize = 8;
    const EACH: usize = 200;
    let addr = server.resp;
    let retries: usize = (0..THREADS)
        .map(|_| {
            thread::spawn(move || {
                let mut c = connect(addr);
                let mut retries = 0;
                for _ in 0..EACH {
                    loop {
                        let _: () = redis::cmd("WATCH")
                            .arg("counter")
                            .query(&mut c)
                            .expect("watch");
                        let v: Option<i64> = c.get("counter").expect("get");
                        let done: Option<()> = redis::pipe()
                            .atomic()
                            .set("counter", v.unwrap_or(0) + 1)
                            .ignore()
                            .query(&mut c)
                            .expect("exec");
                        if done.is_some() {
                            break;
                        }
                        retries += 1;
                    }
                }
                retries
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .sum();
    let mut c = server.redis();
    let total: i64 = c.get("counter").expect("get");
    assert_eq!(total, (THREADS * EACH) as i64, "{retries} retries");
}

#[test]
fn a_memcached_write_or_an_expiry_breaks_a_watch() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    let _: () = c.set("w", "1").expect("set");
    let _: () = redis::cmd("WATCH").arg("w").query(&mut c).expect("watch");
    let mut mc = server.raw();
    mc.roundtrip(b"set w 0 0 1\r\n2\r\n", b"STORED\r\n");
    let r: Option<(i64,)> = redis::pipe()
        .atomic()
        .incr("w", 1)
        .query(&mut c)
        .expect("exec");
    assert_eq!(r, None, "EXEC ran although memcached wrote the watched key");

    let _: () = c.set("e", "1").expect("set");
    let _: () = c.pexpire("e", 50).expect("pexpire");
    let _: () = redis::cmd("WATCH").arg("e").query(&mut c).expect("watch");
    thread::sleep(Duration::from_millis(100));
    let r: Option<(Option<String>,)> = redis::pipe().atomic().get("e").query(&mut c).expect("exec");
    assert_eq!(r, None, "EXEC ran although the watched key expired");

    let _: () = redis::cmd("WATCH").arg("w").query(&mut c).expect("watch");
    let _: () = redis::cmd("FLUSHALL")
        .query(&mut server.redis())
        .expect("flushall");
    let r: Option<(Option<String>,)> = redis::pipe().atomic().get("w").query(&mut c).expect("exec");
    assert_eq!(
        r, None,
        "EXEC ran although FLUSHALL removed the watched key"
    );
}

/// Writers move money between keys spread over the nodes inside MULTI (DECRBY one, INCRBY
/// another); readers sum every key inside MULTI and must always see the same total, while
/// (in the second half) a reload adds nodes and the keys migrate.
fn transfers_are_all_or_nothing(server: &TestServer, reload: Option<&dyn Fn()>) {
    const KEYS: usize = 16;
    const START: i64 = 1000;
    let mut c = server.redis();
    for k in 0..KEYS {
        let _: () = c.set(format!("acct:{k}"), START).expect("set");
    }
    let nodes: std::collections::HashSet<String> = (0..KEYS)
        .map(|k| {
            let t = server.shared.topology.load();
            t.node_for(format!("acct:{k}").as_bytes())
                .name()
                .to_string()
        })
        .collect();
    assert!(nodes.len() > 1, "the accounts must span nodes");
    let stop = Arc::new(AtomicBool::new(false));
    let addr = server.resp;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut c = connect(addr);
                let mut i = w;
                let mut rounds = 0;
                while !stop.load(Ordering::Relaxed) || rounds < 200 {
                    let (from, to) = (i % KEYS, (i * 7 + 3) % KEYS);
                    i += 1;
                    let _: (i64, i64) = redis::pipe()
                        .atomic()
                        .decr(format!("acct:{from}"), 3)
                        .incr(format!("acct:{to}"), 3)
                        .query(&mut c)
                        .expect("transfer");
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut c = connect(addr);
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) || reads < 200 {
                    let mut pipe = redis::pipe();
                    pipe.atomic();
                    for k in 0..KEYS {
                        pipe.get(format!("acct:{k}"));
                    }
                    let values: Vec<i64> = pipe.query(&mut c).expect("read all");
                    assert_eq!(
                        values.iter().sum::<i64>(),
                        START * KEYS as i64,
                        "a transaction saw a half-done transfer: {values:?}"
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    if let Some(reload) = reload {
        reload();
    }
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let transfers: usize = writers.into_iter().map(|t| t.join().expect("writer")).sum();
    let reads: usize = readers.into_iter().map(|t| t.join().expect("reader")).sum();
    assert!(
        transfers >= 800 && reads >= 400,
        "{transfers} transfers, {reads} reads"
    );
    let total: i64 = (0..KEYS)
        .map(|k| c.get::<_, i64>(format!("acct:{k}")).expect("get"))
        .sum();
    assert_eq!(total, START * KEYS as i64);
}

#[test]
fn transactions_over_several_nodes_are_all_or_nothing() {
    let server = TestServer::start(TWO_NODES);
    transfers_are_all_or_nothing(&server, None);
}

#[test]
fn transactions_stay_all_or_nothing_while_a_reload_migrates_their_keys() {
    let nodes = |n: usize| -> String {
        (0..n)
            .map(|i| format!("[[nodes]]\nname = \"n{i}\"\nmax_memory = \"64MiB\"\n\n"))
            .collect()
    };
    let config = ConfigFile::new(&nodes(2));
    let server = TestServer::start_file(&config.path);
    let reload = || {
        config.write(&nodes(5));
        server.wait_generation(2);
    };
    transfers_are_all_or_nothing(&server, Some(&reload));
    server.wait_settled();
}

/// A MULTI queue is held in memory until EXEC: past `limits.max_output_buffer` a queued
/// command is refused and EXEC aborts, so a client cannot grow the server without bound.
#[test]
fn a_multi_queue_is_bounded() {
    let server = TestServer::start(&format!(
        "[limits]\nmax_output_buffer = \"64KiB\"\n{TWO_NODES}"
    ));
    let mut raw = server.raw_resp();
    raw.roundtrip(b"MULTI\r\n", b"+OK\r\n");
    let value = "v".repeat(1024);
    let mut refused = false;
    for i in 0..100 {
        raw.send(format!("SET k{i} {value}\r\n").as_bytes());
        let reply = raw.read_until(b"\r\n");
        if reply.starts_with(b"-ERR MULTI queue too large") {
            refused = true;
            break;
        }
        assert_eq!(reply, b"+QUEUED\r\n");
    }
    assert!(refused, "100 KiB queued under a 64 KiB bound");
    raw.roundtrip(
        b"EXEC\r\n",
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    );
    raw.roundtrip(b"EXISTS k0\r\n", b":0\r\n");
}
