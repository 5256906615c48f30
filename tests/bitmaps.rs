//! Bitmaps the way applications use them, with the `redis` crate: BITOP over keys on three
//! different nodes stays all-or-nothing while transactions or MSETs rewrite its sources (it
//! runs alone in the server's gate, and the MSET race fails without that), a bitmap grown
//! by SETBIT is charged against its node (and `max_memory` and `proto_max_bulk_len` hold), and the
//! bytes SETBIT writes are the memcached item's bytes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use common::{THREE_NODES, TestServer};
use redis::Commands;

fn connect(addr: std::net::SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// Three key names owned by three different nodes (`prefix` + a number).
fn keys_on_three_nodes(server: &TestServer, prefix: &str) -> [String; 3] {
    let topo = server.shared.topology.load();
    let mut found: Vec<(String, String)> = Vec::new();
    for i in 0.. {
        let key = format!("{prefix}{i}");
        let node = topo.node_for(key.as_bytes()).name().to_string();
        if !found.iter().any(|(_, n)| *n == node) {
            found.push((key, node));
        }
        if found.len() == 3 {
            break;
        }
    }
    [found[0].0.clone(), found[1].0.clone(), found[2].0.clone()]
}

/// Writers change two source keys on two nodes inside MULTI/EXEC (the same bit flipped in both,
/// or both set to the same random bytes); readers run BITOP XOR of them into a destination on a
/// third node. The sources are always equal, so every destination BITOP writes must be all
/// zeros: a BITOP that saw one source before a transaction and the other after would show set
/// bits.
#[test]
fn bitop_across_nodes_never_sees_half_a_transaction() {
    let server = TestServer::start(THREE_NODES);
    let [a, b, _] = keys_on_three_nodes(&server, "src:");
    let addr = server.resp;
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..2u64 {
        let (a, b, stop, writes) = (a.clone(), b.clone(), stop.clone(), writes.clone());
        writers.push(thread::spawn(move || {
            let mut c = connect(addr);
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ w;
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if w == 0 {
                    let bit = x % 200;
                    let on = (x >> 32) & 1;
                    let _: () = redis::pipe()
                        .atomic()
                        .setbit(&a, bit as usize, on == 1)
                        .ignore()
                        .setbit(&b, bit as usize, on == 1)
                        .ignore()
                        .query(&mut c)
                        .expect("exec setbit");
                } else {
                    let len = (x % 40) as usize;
                    let value: Vec<u8> = (0..len).map(|i| (x >> (i % 8)) as u8).collect();
                    let _: () = redis::pipe()
                        .atomic()
                        .set(&a, &value)
                        .ignore()
                        .set(&b, &value)
                        .ignore()
                        .query(&mut c)
                        .expect("exec set");
                }
                writes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    const ROUNDS: usize = 3000;
    let mut readers = Vec::new();
    for r in 0..2 {
        let (a, b) = (a.clone(), b.clone());
        let dest = keys_on_three_nodes(&server, &format!("dest{r}:"))
            .into_iter()
            .find(|d| {
                let topo = server.shared.topology.load();
                let node = |k: &str| topo.node_for(k.as_bytes()).name().to_string();
                node(d) != node(&a) && node(d) != node(&b)
            })
            .expect("a key on the third node");
        readers.push(thread::spawn(move || {
            let mut c = connect(addr);
            for round in 0..ROUNDS {
                let len: usize = redis::cmd("BITOP")
                    .arg("XOR")
                    .arg(&dest)
                    .arg(&a)
                    .arg(&b)
                    .query(&mut c)
                    .expect("bitop");
                let set: usize = c.bitcount(&dest).expect("bitcount");
                assert_eq!(set, 0, "round {round}: BITOP saw half a transaction");
                let stored: usize = c.strlen(&dest).expect("strlen");
                assert_eq!(
                    stored, len,
                    "round {round}: BITOP's reply is the stored length"
                );
            }
        }));
    }
    for r in readers {
        r.join().expect("reader");
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    assert!(writes.load(Ordering::Relaxed) > 0, "the writers ran");
}

/// A writer sets two keys on two nodes to the same value with MSET (which redis runs as one
/// step); a reader runs BITOP XOR of the first, a large run of zeros (on the third node) and
/// the second. BITOP must never run in the middle of an MSET, nor let MSETs run between its
/// reads: the destination is always all zeros. The zeros make the reads take a while, so a
/// BITOP that read its sources at different moments would see two different values.
#[test]
fn bitop_across_nodes_never_runs_inside_another_command() {
    let server = TestServer::start(THREE_NODES);
    let [a, b, zeros] = keys_on_three_nodes(&server, "mset:");
    let mut c = server.redis();
    let _: u8 = c.setbit(&zeros, 8 * (512 << 10) - 1, false).expect("zeros");
    let addr = server.resp;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
        thread::spawn(move || {
            let mut c = connect(addr);
            let mut round = 0u32;
            while !stop.load(Ordering::Relaxed) {
                round = round.wrapping_add(1);
                let len = 64 + (round % 7) as usize * 8;
                let value: Vec<u8> = (0..len).map(|i| (i as u32 ^ round) as u8).collect();
                let _: () = redis::cmd("MSET")
                    .arg(&a)
                    .arg(&value)
                    .arg(&b)
                    .arg(&value)
                    .query(&mut c)
                    .expect("mset");
            }
        })
    };
    for round in 0..1000 {
        let _: usize = redis::cmd("BITOP")
            .arg("XOR")
            .arg("mset:dest")
            .arg(&a)
            .arg(&zeros)
            .arg(&b)
            .query(&mut c)
            .expect("bitop");
        let set: usize = redis::cmd("BITCOUNT")
            .arg("mset:dest")
            .arg(0)
            .arg(255)
            .query(&mut c)
            .expect("bitcount");
        assert_eq!(set, 0, "round {round}: BITOP saw two moments");
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
}

/// BITOP AND of two equal sources on two nodes into a destination on a third stores exactly
/// that value and answers its length, round after round with values of changing length.
#[test]
fn bitop_and_of_equal_sources_on_three_nodes_equals_them() {
    let server = TestServer::start(THREE_NODES);
    let [a, b, dest] = keys_on_three_nodes(&server, "k:");
    let mut c = server.redis();
    for round in 0..2000u32 {
        let value = format!("value-{round}-{}", "x".repeat((round % 17) as usize));
        let _: () = redis::pipe()
            .atomic()
            .set(&a, &value)
            .ignore()
            .set(&b, &value)
            .ignore()
            .query(&mut c)
            .expect("exec");
        let len: usize = redis::cmd("BITOP")
            .arg("AND")
            .arg(&dest)
            .arg(&a)
            .arg(&b)
            .query(&mut c)
            .expect("bitop");
        assert_eq!(len, value.len());
        let got: String = c.get(&dest).expect("get");
        assert_eq!(got, value);
    }
}

/// SETBIT at a large offset grows the string to that byte: the node is charged for it, an
/// offset or a BITFIELD write past `proto_max_bulk_len` is refused (as redis refuses them), and
/// the node never goes over `max_memory`.
#[test]
fn setbit_at_a_large_offset_is_charged_and_max_memory_is_respected() {
    let server = TestServer::start(
        r#"
[limits]
proto_max_bulk_len = "1MiB"

[[nodes]]
name = "small"
max_memory = "4MiB"
"#,
    );
    let mut c = server.redis();
    let node = Arc::clone(server.shared.topology.load().node_for(b"bits"));
    let before = node.used_bytes();
    let last_bit = 8 * (1 << 20) - 1;
    let was: u8 = c.setbit("bits", last_bit, true).expect("setbit");
    assert_eq!(was, 0);
    let len: usize = c.strlen("bits").expect("strlen");
    assert_eq!(len, 1 << 20);
    let grown = node.used_bytes() - before;
    assert!(
        (1 << 20..(1 << 20) + 4096).contains(&grown),
        "a 1 MiB bitmap is charged about 1 MiB, got {grown}"
    );
    let usage: u64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("bits")
        .query(&mut c)
        .expect("memory usage");
    assert!(usage >= 1 << 20, "MEMORY USAGE counts the bitmap: {usage}");
    // One bit further is an offset past proto_max_bulk_len: refused, nothing changed.
    for offset in [last_bit + 1, 1 << 32] {
        let err = c
            .setbit::<_, u8>("bits", offset, true)
            .expect_err("past proto_max_bulk_len");
        assert!(
            err.to_string()
                .contains("bit offset is not an integer or out of range"),
            "{err}"
        );
    }
    // A BITFIELD write that starts inside the limit and ends past it: the string would be too
    // long.
    let err = redis::cmd("BITFIELD")
        .arg("bits")
        .arg("SET")
        .arg("i16")
        .arg(last_bit - 3)
        .arg(-1)
        .query::<Vec<i64>>(&mut c)
        .expect_err("string past proto_max_bulk_len");
    assert!(
        err.to_string()
            .contains("string exceeds maximum allowed size"),
        "{err}"
    );
    assert_eq!(c.strlen::<_, usize>("bits").expect("strlen"), 1 << 20);
    // Many large bitmaps: the node evicts to stay within its budget after every write.
    for i in 0..20 {
        let key = format!("bits:{i}");
        let _: u8 = c.setbit(&key, last_bit - i, true).expect("setbit");
        assert!(
            node.used_bytes() <= node.max_memory(),
            "used {} > max {}",
            node.used_bytes(),
            node.max_memory()
        );
        let bit: u8 = c.getbit(&key, last_bit - i).expect("getbit");
        assert_eq!(bit, 1);
    }
    assert!(node.stats().evictions > 0, "old bitmaps were evicted");
    node.validate().expect("accounting is exact");
}

/// A node whose budget cannot hold the bitmap refuses it with the OOM error and stores nothing.
#[test]
fn setbit_that_cannot_fit_is_refused_with_oom() {
    let server = TestServer::start(
        r#"
[limits]
proto_max_bulk_len = "4MiB"

[[nodes]]
name = "tiny"
max_memory = "1MiB"
"#,
    );
    let mut c = server.redis();
    let err = c
        .setbit::<_, u8>("huge", 8 * (2 << 20), true)
        .expect_err("cannot fit");
    assert!(err.to_string().contains("OOM"), "{err}");
    assert!(!c.exists::<_, bool>("huge").expect("exists"));
    let err = redis::cmd("BITFIELD")
        .arg("huge")
        .arg("SET")
        .arg("u8")
        .arg(8 * (2 << 20))
        .arg(1)
        .query::<Vec<i64>>(&mut c)
        .expect_err("cannot fit");
    assert!(err.to_string().contains("OOM"), "{err}");
    assert!(!c.exists::<_, bool>("huge").expect("exists"));
}

/// SETBIT writes the bytes a memcached client reads (the same item), and a memcached value is
/// a bitmap to the bit commands.
#[test]
fn bitmaps_are_the_memcached_items_bytes() {
    let server = TestServer::start(THREE_NODES);
    let mut c = server.redis();
    let _: u8 = c.setbit("mc", 1, true).expect("setbit");
    let _: u8 = c.setbit("mc", 7, true).expect("setbit");
    let mc = server.client();
    let got: Option<Vec<u8>> = mc.get("mc").expect("memcached get");
    assert_eq!(got, Some(vec![0b0100_0001]));
    mc.set("mc2", &b"\xff\x0f"[..], 0).expect("memcached set");
    let n: usize = c.bitcount("mc2").expect("bitcount");
    assert_eq!(n, 12);
    let pos: i64 = redis::cmd("BITPOS")
        .arg("mc2")
        .arg(0)
        .query(&mut c)
        .expect("bitpos");
    assert_eq!(pos, 8);
}
