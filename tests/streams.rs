//! Streams with a real client (the `redis` crate): XREAD BLOCK woken by XADD from another
//! connection, from EXEC and from a script; XADDs racing readers entering XREAD BLOCK lose no
//! wake-up.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{TWO_NODES, TestServer, wait_blocked};
use redis::Value;

fn connect(addr: std::net::SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// The IDs of an XREAD reply (one stream).
fn read_ids(v: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    if let Value::Array(streams) = v {
        for s in streams {
            if let Value::Array(kv) = s {
                if let Some(Value::Array(entries)) = kv.get(1) {
                    for e in entries {
                        if let Value::Array(e) = e {
                            if let Some(Value::BulkString(id)) = e.first() {
                                ids.push(String::from_utf8_lossy(id).into_owned());
                            }
                        }
                    }
                }
            }
        }
    }
    ids
}

fn block_read(addr: std::net::SocketAddr, key: &'static str) -> thread::JoinHandle<Value> {
    thread::spawn(move || {
        let mut c = connect(addr);
        redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(5000)
            .arg("STREAMS")
            .arg(key)
            .arg("$")
            .query::<Value>(&mut c)
            .expect("xread")
    })
}

#[test]
fn xread_block_is_woken_by_xadd_from_a_connection_exec_and_a_script() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    let _: String = redis::cmd("XADD")
        .arg("s")
        .arg("1-1")
        .arg("old")
        .arg("x")
        .query(&mut c)
        .expect("xadd");

    // From another connection: the blocked reader gets the new entry, not the old one.
    let r = block_read(server.resp, "s");
    wait_blocked(&server, 1);
    let _: String = redis::cmd("XADD")
        .arg("s")
        .arg("2-1")
        .arg("a")
        .arg("1")
        .query(&mut c)
        .expect("xadd");
    assert_eq!(read_ids(&r.join().expect("reader")), ["2-1"]);

    // From EXEC.
    let r = block_read(server.resp, "s");
    wait_blocked(&server, 1);
    let (_, _): (String, String) = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg("s")
        .arg("3-1")
        .arg("a")
        .arg("1")
        .cmd("XADD")
        .arg("s")
        .arg("3-2")
        .arg("a")
        .arg("1")
        .query(&mut c)
        .expect("exec");
    assert_eq!(read_ids(&r.join().expect("reader")), ["3-1", "3-2"]);

    // From a script.
    let r = block_read(server.resp, "s");
    wait_blocked(&server, 1);
    let _: String = redis::cmd("EVAL")
        .arg("return redis.call('XADD', KEYS[1], '4-1', 'a', 'b')")
        .arg(1)
        .arg("s")
        .query(&mut c)
        .expect("eval");
    assert_eq!(read_ids(&r.join().expect("reader")), ["4-1"]);

    // Several readers of one key are all served by one XADD; a timeout answers nil.
    let readers: Vec<_> = (0..3).map(|_| block_read(server.resp, "s")).collect();
    wait_blocked(&server, 3);
    let _: String = redis::cmd("XADD")
        .arg("s")
        .arg("5-1")
        .arg("a")
        .arg("1")
        .query(&mut c)
        .expect("xadd");
    for r in readers {
        assert_eq!(read_ids(&r.join().expect("reader")), ["5-1"]);
    }
    let t = Instant::now();
    let v: Value = redis::cmd("XREAD")
        .arg("BLOCK")
        .arg(100)
        .arg("STREAMS")
        .arg("s")
        .arg("$")
        .query(&mut c)
        .expect("xread");
    assert_eq!(v, Value::Nil);
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert_eq!(server.shared.waiters.len(), 0);
}

const ROUNDS: usize = 500;

/// Each round, two readers enter `XREAD BLOCK 3000 STREAMS k <last>` while a writer adds the
/// next entry, all released by one barrier: the entry lands before, during or after they
/// register. Every reader must get it well within its timeout (a lost wake-up would leave it
/// waiting for the deadline).
#[test]
fn xadds_racing_blocked_readers_lose_no_wake_up() {
    let server = TestServer::start(TWO_NODES);
    let addr = server.resp;
    let start = Arc::new(Barrier::new(3));
    let mut threads = Vec::new();
    for role in 0..3 {
        let start = Arc::clone(&start);
        threads.push(thread::spawn(move || {
            let mut c = connect(addr);
            let mut slowest = Duration::ZERO;
            for r in 1..=ROUNDS {
                start.wait();
                let t = Instant::now();
                if role == 0 {
                    let _: String = redis::cmd("XADD")
                        .arg("k")
                        .arg(format!("{r}-1"))
                        .arg("f")
                        .arg(r)
                        .query(&mut c)
                        .expect("xadd");
                } else {
                    let v: Value = redis::cmd("XREAD")
                        .arg("BLOCK")
                        .arg(3000)
                        .arg("STREAMS")
                        .arg("k")
                        .arg(format!("{}-1", r - 1))
                        .query(&mut c)
                        .expect("xread");
                    assert_eq!(read_ids(&v), [format!("{r}-1")], "round {r}");
                }
                slowest = slowest.max(t.elapsed());
            }
            slowest
        }));
    }
    for t in threads {
        let slowest = t.join().expect("thread");
        assert!(slowest < Duration::from_secs(2), "slowest {slowest:?}");
    }
    assert_eq!(server.shared.waiters.len(), 0);
}
