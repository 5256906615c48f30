//! Streams with a real client (the `redis` crate): XREAD BLOCK woken by XADD from another
//! connection, from EXEC and from a script; XADDs racing readers entering XREAD BLOCK lose no
//! wake-up; a consumer group of four reading 100k entries with XREADGROUP BLOCK gets each
//! exactly once, and XAUTOCLAIM rescues the entries of a consumer killed mid-way (about 10 s
//! in a debug build, most of it the 200k XADDs).

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

/// The (ID, value of the first field) pairs of an XREADGROUP/XRANGE-style reply of one stream.
fn entries(v: &Value) -> Vec<(String, u64)> {
    let list = match v {
        Value::Array(streams) => match streams.first() {
            Some(Value::Array(kv)) => match kv.get(1) {
                Some(Value::Array(es)) => es.clone(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    list.iter().filter_map(entry).collect()
}

fn entry(e: &Value) -> Option<(String, u64)> {
    let Value::Array(e) = e else { return None };
    let Some(Value::BulkString(id)) = e.first() else {
        return None;
    };
    let Some(Value::Array(fields)) = e.get(1) else {
        return None;
    };
    let Some(Value::BulkString(n)) = fields.get(1) else {
        return None;
    };
    Some((
        String::from_utf8_lossy(id).into_owned(),
        String::from_utf8_lossy(n).parse().ok()?,
    ))
}

const ENTRIES: u64 = 100_000;

/// Adds `ENTRIES` entries (`n` = 0, 1, ...) to `key` in batches of 1000, each one
/// MULTI/EXEC (so the blocked consumers are served once per batch, 100 entries a read).
fn produce(addr: std::net::SocketAddr, key: &'static str) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut c = connect(addr);
        for batch in 0..ENTRIES / 1000 {
            let mut p = redis::pipe();
            p.atomic();
            for i in batch * 1000..(batch + 1) * 1000 {
                p.cmd("XADD").arg(key).arg("*").arg("n").arg(i).ignore();
            }
            let () = p.query(&mut c).expect("xadd batch");
        }
    })
}

/// A consumer: reads `>` with BLOCK until `total` reaches `ENTRIES` (or, with `quit_after`,
/// until it has acked that many, then reads one more batch it never acks and disconnects).
/// Returns the values it acked and, for a quitter, the ones it left pending.
fn consume(
    addr: std::net::SocketAddr,
    key: &'static str,
    name: String,
    total: Arc<std::sync::atomic::AtomicU64>,
    quit_after: Option<usize>,
) -> thread::JoinHandle<(Vec<u64>, Vec<u64>)> {
    use std::sync::atomic::Ordering;
    thread::spawn(move || {
        let mut c = connect(addr);
        let mut acked = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while total.load(Ordering::SeqCst) < ENTRIES {
            assert!(Instant::now() < deadline, "{name} starved");
            let v: Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g")
                .arg(&name)
                .arg("COUNT")
                .arg(100)
                .arg("BLOCK")
                .arg(200)
                .arg("STREAMS")
                .arg(key)
                .arg(">")
                .query(&mut c)
                .expect("xreadgroup");
            let got = entries(&v);
            if got.is_empty() {
                continue;
            }
            if quit_after.is_some_and(|q| acked.len() >= q) {
                // Killed with these delivered and never acked.
                total.fetch_add(got.len() as u64, Ordering::SeqCst);
                return (acked, got.iter().map(|e| e.1).collect());
            }
            let mut ack = redis::cmd("XACK");
            ack.arg(key).arg("g");
            for (id, _) in &got {
                ack.arg(id);
            }
            let n: u64 = ack.query(&mut c).expect("xack");
            assert_eq!(
                n,
                got.len() as u64,
                "{name}: every delivered entry acks once"
            );
            acked.extend(got.iter().map(|e| e.1));
            total.fetch_add(got.len() as u64, Ordering::SeqCst);
        }
        (acked, Vec::new())
    })
}

fn pending_count(c: &mut redis::Connection, key: &str) -> i64 {
    let v: Value = redis::cmd("XPENDING")
        .arg(key)
        .arg("g")
        .query(c)
        .expect("xpending");
    match v {
        Value::Array(parts) => match parts.first() {
            Some(Value::Int(n)) => *n,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

/// Checks every value in 0..ENTRIES appears exactly once in `seen`.
fn exactly_once(mut seen: Vec<u64>) {
    assert_eq!(seen.len() as u64, ENTRIES, "deliveries");
    seen.sort_unstable();
    for (i, v) in seen.iter().enumerate() {
        assert_eq!(*v, i as u64, "every entry exactly once");
    }
}

/// Four consumers of one group read 100k entries with XREADGROUP BLOCK while a producer adds
/// them: every entry is delivered to exactly one consumer and acked, and XPENDING is empty at
/// the end. Then the same with one consumer killed mid-way, its pending entries claimed by
/// another with XAUTOCLAIM.
#[test]
fn a_consumer_group_delivers_every_entry_once_and_xautoclaim_rescues_a_dead_consumer() {
    use std::sync::atomic::AtomicU64;
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    let t = Instant::now();
    for key in ["jobs", "jobs2"] {
        let () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key)
            .arg("g")
            .arg("$")
            .arg("MKSTREAM")
            .query(&mut c)
            .expect("xgroup create");
    }

    // All four healthy.
    let total = Arc::new(AtomicU64::new(0));
    let consumers: Vec<_> = (0..4)
        .map(|i| {
            consume(
                server.resp,
                "jobs",
                format!("c{i}"),
                Arc::clone(&total),
                None,
            )
        })
        .collect();
    produce(server.resp, "jobs").join().expect("producer");
    let mut seen = Vec::new();
    for h in consumers {
        let (acked, left) = h.join().expect("consumer");
        assert!(left.is_empty());
        seen.extend(acked);
    }
    exactly_once(seen);
    assert_eq!(pending_count(&mut c, "jobs"), 0);
    let len: u64 = redis::cmd("XLEN").arg("jobs").query(&mut c).expect("xlen");
    assert_eq!(len, ENTRIES);

    // One killed mid-way (after acking 2000 entries, it takes a batch and disconnects).
    let total = Arc::new(AtomicU64::new(0));
    let victim = consume(
        server.resp,
        "jobs2",
        "victim".into(),
        Arc::clone(&total),
        Some(2000),
    );
    let consumers: Vec<_> = (0..3)
        .map(|i| {
            consume(
                server.resp,
                "jobs2",
                format!("c{i}"),
                Arc::clone(&total),
                None,
            )
        })
        .collect();
    produce(server.resp, "jobs2").join().expect("producer");
    let (victim_acked, victim_left) = victim.join().expect("victim");
    assert!(!victim_left.is_empty(), "the victim died holding entries");
    let mut seen = victim_acked;
    for h in consumers {
        let (acked, _) = h.join().expect("consumer");
        seen.extend(acked);
    }
    assert_eq!(pending_count(&mut c, "jobs2"), victim_left.len() as i64);
    // The rescuer claims whatever has been pending (idle ≥ 0 ms) from the start, page by page.
    let mut cursor = "0-0".to_string();
    let mut rescued = Vec::new();
    loop {
        let v: Value = redis::cmd("XAUTOCLAIM")
            .arg("jobs2")
            .arg("g")
            .arg("rescuer")
            .arg(0)
            .arg(&cursor)
            .arg("COUNT")
            .arg(50)
            .query(&mut c)
            .expect("xautoclaim");
        let Value::Array(parts) = v else {
            panic!("{v:?}")
        };
        let Some(Value::BulkString(next)) = parts.first() else {
            panic!("{parts:?}")
        };
        let Some(Value::Array(claimed)) = parts.get(1) else {
            panic!("{parts:?}")
        };
        let claimed: Vec<(String, u64)> = claimed.iter().filter_map(entry).collect();
        if !claimed.is_empty() {
            let mut ack = redis::cmd("XACK");
            ack.arg("jobs2").arg("g");
            for (id, _) in &claimed {
                ack.arg(id);
            }
            let n: u64 = ack.query(&mut c).expect("xack");
            assert_eq!(n, claimed.len() as u64);
        }
        rescued.extend(claimed.iter().map(|e| e.1));
        cursor = String::from_utf8_lossy(next).into_owned();
        if cursor == "0-0" {
            break;
        }
    }
    let mut left = victim_left.clone();
    left.sort_unstable();
    let mut got = rescued.clone();
    got.sort_unstable();
    assert_eq!(got, left, "the rescuer claims exactly what the victim left");
    seen.extend(rescued);
    exactly_once(seen);
    assert_eq!(pending_count(&mut c, "jobs2"), 0);
    assert_eq!(server.shared.waiters.len(), 0);
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
}

/// The keyspace events (`__keyevent@0__:<event>` → key) a run of stream commands publishes.
fn stream_events(addr: std::net::SocketAddr) -> Vec<(String, String)> {
    let mut c = connect(addr);
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Etgnm")
        .query(&mut c)
        .expect("config set");
    let mut sub = connect(addr);
    sub.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut ps = sub.as_pubsub();
    ps.psubscribe("__keyevent@0__:*").expect("psubscribe");
    let script: &[&[&str]] = &[
        &["XADD", "ev", "1-1", "a", "1"],
        &["XREAD", "STREAMS", "ev", "nokey", "0", "0"],
        &["XREAD", "COUNT", "1", "STREAMS", "nokey2", "0"],
        &["XRANGE", "nokey3", "-", "+"],
        &["XLEN", "nokey4"],
        &["XADD", "ev", "2-1", "a", "1"],
        &["XADD", "ev", "MAXLEN", "1", "3-1", "a", "1"],
        &["XDEL", "ev", "9-9"],
        &["XDEL", "ev", "3-1"],
        &["XTRIM", "ev", "MAXLEN", "5"],
        &["XADD", "ev", "4-1", "a", "1"],
        &["XTRIM", "ev", "MAXLEN", "0"],
        &["XSETID", "ev", "10-0"],
        &["XGROUP", "CREATE", "ev", "g", "0"],
        &["XGROUP", "CREATE", "ev2", "g", "$", "MKSTREAM"],
        &["XGROUP", "SETID", "ev", "g", "0"],
        &["XGROUP", "CREATECONSUMER", "ev", "g", "c"],
        &["XGROUP", "CREATECONSUMER", "ev", "g", "c"],
        &["XGROUP", "DELCONSUMER", "ev", "g", "c"],
        &["XADD", "ev", "10-5", "a", "1"],
        &["XREADGROUP", "GROUP", "g", "reader", "STREAMS", "ev", ">"],
        &["XREADGROUP", "GROUP", "g", "reader", "STREAMS", "ev", "0"],
        &["XCLAIM", "ev", "g", "claimer", "0", "10-5"],
        &["XAUTOCLAIM", "ev", "g", "auto", "0", "0"],
        &["XAUTOCLAIM", "ev", "g", "auto", "0", "0"],
        &["XGROUP", "DESTROY", "ev", "g"],
        &["XGROUP", "DESTROY", "ev", "g"],
        &["XADD", "ev", "NOMKSTREAM", "11-1", "a", "1"],
        &["XADD", "none", "NOMKSTREAM", "1-1", "a", "1"],
        &["DEL", "ev", "ev2"],
    ];
    for cmd in script {
        let mut r = redis::cmd(cmd[0]);
        for a in &cmd[1..] {
            r.arg(*a);
        }
        let _: Value = r.query(&mut c).expect("command");
    }
    let mut got = Vec::new();
    loop {
        let msg = ps.get_message().expect("message");
        let channel = msg.get_channel_name().to_string();
        let key: String = msg.get_payload().expect("payload");
        let done = channel.ends_with(":del");
        got.push((channel, key));
        if done {
            return got;
        }
    }
}

#[test]
fn stream_commands_publish_the_keyspace_events_redis_server_publishes() {
    let Some(redis) = common::redis_server::RedisServer::start() else {
        return;
    };
    let server = TestServer::start(TWO_NODES);
    let want = stream_events(redis.addr);
    let got = stream_events(server.resp);
    assert_eq!(got, want);
}

/// DUMP of a stream (entries in several nodes, a deleted entry, groups with pending entries
/// and consumers) restores into redis-server, which then answers what ringcache answers.
#[test]
fn a_dumped_stream_restores_into_redis_server() {
    let Some(redis) = common::redis_server::RedisServer::start() else {
        return;
    };
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    let mut r = connect(redis.addr);
    for i in 1..=250u64 {
        let mut cmd = redis::cmd("XADD");
        cmd.arg("d").arg(format!("{i}-1")).arg("n").arg(i);
        if i % 7 == 0 {
            cmd.arg("extra").arg("x".repeat(i as usize));
        }
        let _: String = cmd.query(&mut c).expect("xadd");
    }
    let script: &[&[&str]] = &[
        &["XDEL", "d", "3-1", "150-1"],
        &["XGROUP", "CREATE", "d", "g", "0"],
        &["XGROUP", "CREATE", "d", "h", "$", "ENTRIESREAD", "7"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "5",
            "STREAMS",
            "d",
            ">",
        ],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "bob",
            "COUNT",
            "3",
            "STREAMS",
            "d",
            ">",
        ],
        &["XACK", "d", "g", "2-1"],
        &["XGROUP", "CREATECONSUMER", "d", "g", "carol"],
    ];
    for cmd in script {
        let mut q = redis::cmd(cmd[0]);
        for a in &cmd[1..] {
            q.arg(*a);
        }
        let _: Value = q.query(&mut c).expect("command");
    }
    let payload: Vec<u8> = redis::cmd("DUMP").arg("d").query(&mut c).expect("dump");
    let () = redis::cmd("RESTORE")
        .arg("d")
        .arg(0)
        .arg(payload)
        .query(&mut r)
        .expect("redis-server restores ringcache's payload");
    for probe in [
        &["XRANGE", "d", "-", "+"][..],
        &["XLEN", "d"],
        &["XINFO", "GROUPS", "d"],
        &["XPENDING", "d", "g"],
        &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "d", "0"],
        &["XTRIM", "d", "MAXLEN", "~", "120"],
        &["XLEN", "d"],
    ] {
        let ask = |conn: &mut redis::Connection| {
            let mut q = redis::cmd(probe[0]);
            for a in &probe[1..] {
                q.arg(*a);
            }
            q.query::<Value>(conn).expect("probe")
        };
        assert_eq!(ask(&mut c), ask(&mut r), "{probe:?}");
    }
}

/// A client blocked in XREADGROUP is answered NOGROUP when its group is destroyed, and one
/// blocked on `>` gets the entries XADD brings, added to its PEL.
#[test]
fn xreadgroup_block_is_served_by_xadd_and_answered_when_its_group_goes() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    let () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("q")
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query(&mut c)
        .expect("xgroup");
    let blocked = |consumer: &'static str| {
        let addr = server.resp;
        thread::spawn(move || {
            let mut c = connect(addr);
            redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g")
                .arg(consumer)
                .arg("BLOCK")
                .arg(5000)
                .arg("STREAMS")
                .arg("q")
                .arg(">")
                .query::<Value>(&mut c)
                .map_err(|e| e.to_string())
        })
    };
    let first = blocked("alice");
    wait_blocked(&server, 1);
    let _: String = redis::cmd("XADD")
        .arg("q")
        .arg("1-1")
        .arg("a")
        .arg("1")
        .query(&mut c)
        .expect("xadd");
    let got = first.join().expect("alice").expect("served");
    assert_eq!(entries(&got), [("1-1".to_string(), 1)]);
    let pending: Value = redis::cmd("XPENDING")
        .arg("q")
        .arg("g")
        .query(&mut c)
        .expect("xpending");
    let Value::Array(p) = pending else {
        panic!("{pending:?}")
    };
    assert_eq!(p[0], Value::Int(1));

    let second = blocked("bob");
    wait_blocked(&server, 1);
    let _: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg("q")
        .arg("g")
        .query(&mut c)
        .expect("destroy");
    let err = second.join().expect("bob").expect_err("NOGROUP");
    assert!(err.contains("no longer exists"), "{err}");
    assert_eq!(server.shared.waiters.len(), 0);
}

/// A reader waiting past what an XADD brings does not keep the readers behind it from being
/// served (redis serves every blocked XREAD the entry satisfies).
#[test]
fn a_reader_waiting_for_a_later_id_does_not_hold_up_the_others() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    let addr = server.resp;
    let read_after = move |id: &'static str| {
        thread::spawn(move || {
            let mut c = connect(addr);
            redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(5000)
                .arg("STREAMS")
                .arg("k")
                .arg(id)
                .query::<Value>(&mut c)
                .expect("xread")
        })
    };
    let later = read_after("100-0");
    wait_blocked(&server, 1);
    let now = read_after("0-0");
    wait_blocked(&server, 2);
    let t = Instant::now();
    let _: String = redis::cmd("XADD")
        .arg("k")
        .arg("50-1")
        .arg("a")
        .arg("1")
        .query(&mut c)
        .expect("xadd");
    assert_eq!(read_ids(&now.join().expect("reader")), ["50-1"]);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(server.shared.waiters.len(), 1);
    let _: String = redis::cmd("XADD")
        .arg("k")
        .arg("150-1")
        .arg("a")
        .arg("1")
        .query(&mut c)
        .expect("xadd");
    assert_eq!(read_ids(&later.join().expect("reader")), ["150-1"]);
    assert_eq!(server.shared.waiters.len(), 0);
}
