//! HyperLogLog against a real redis-server with many elements: 10^6 random elements PFADDed
//! (pipelined, in batches) into keys owned by three different nodes of ringcache and into the
//! same keys of redis-server; at every checkpoint PFCOUNT of each key and of their union, and
//! the bytes GET returns, must be identical. Then PFMERGE across the nodes, and the strings
//! moved from redis-server to ringcache (SET, DUMP/RESTORE) and back count and read the same.

mod common;

use common::redis_server::RedisServer;
use common::{THREE_NODES, TestServer};

fn connect(addr: std::net::SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// Three key names owned by three different nodes (`prefix` + a number).
fn keys_on_three_nodes(server: &TestServer, prefix: &str) -> Vec<String> {
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
    found.into_iter().map(|(k, _)| k).collect()
}

/// xorshift64*: the same elements for both servers, different every batch.
fn next(x: &mut u64) -> u64 {
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Counts, union count and bytes of `keys` on one server.
fn observe(c: &mut redis::Connection, keys: &[String]) -> (Vec<u64>, u64, Vec<Vec<u8>>) {
    let mut counts = Vec::new();
    let mut bytes = Vec::new();
    for k in keys {
        counts.push(redis::cmd("PFCOUNT").arg(k).query(c).expect("pfcount"));
        bytes.push(redis::cmd("GET").arg(k).query(c).expect("get"));
    }
    let union = redis::cmd("PFCOUNT").arg(keys).query(c).expect("union");
    (counts, union, bytes)
}

#[test]
fn a_million_random_elements_count_as_redis_counts_them() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = TestServer::start(THREE_NODES);
    let keys = keys_on_three_nodes(&server, "hll:");
    let mut want = connect(redis.addr);
    let mut got = connect(server.resp);
    let mut x = 0x1234_5678_9abc_def1u64;
    const TOTAL: usize = 1_000_000;
    const PER_COMMAND: usize = 500;
    const PER_PIPELINE: usize = 40;
    let mut added = 0usize;
    let mut checkpoints = 0;
    let mut next_checkpoint = 1_000;
    while added < TOTAL {
        let mut pipe = redis::pipe();
        for i in 0..PER_PIPELINE {
            let key = &keys[i % keys.len()];
            let mut cmd = redis::cmd("PFADD");
            cmd.arg(key);
            for _ in 0..PER_COMMAND {
                // Small elements (many repeats) and wide ones alike.
                let r = next(&mut x);
                if r & 1 == 0 {
                    cmd.arg((r >> 44).to_string());
                } else {
                    cmd.arg(r.to_le_bytes().as_slice());
                }
            }
            pipe.add_command(cmd);
            added += PER_COMMAND;
        }
        let a: Vec<i64> = pipe.query(&mut want).expect("redis pfadd");
        let b: Vec<i64> = pipe.query(&mut got).expect("ringcache pfadd");
        assert_eq!(a, b, "PFADD replies after {added} elements");
        if added >= next_checkpoint || added >= TOTAL {
            assert_eq!(
                observe(&mut want, &keys),
                observe(&mut got, &keys),
                "after {added} elements"
            );
            checkpoints += 1;
            next_checkpoint *= 4;
        }
    }
    assert!(checkpoints >= 5, "{checkpoints} checkpoints");

    // PFMERGE across the three nodes, then the strings swapped between the servers.
    for c in [&mut want, &mut got] {
        let _: () = redis::cmd("PFMERGE")
            .arg("hll:merged")
            .arg(&keys)
            .query(c)
            .expect("pfmerge");
    }
    let merged: Vec<u8> = redis::cmd("GET")
        .arg("hll:merged")
        .query(&mut want)
        .expect("get");
    let ours: Vec<u8> = redis::cmd("GET")
        .arg("hll:merged")
        .query(&mut got)
        .expect("get");
    assert_eq!(merged, ours);
    let count: u64 = redis::cmd("PFCOUNT")
        .arg("hll:merged")
        .query(&mut want)
        .expect("pfcount");
    let _: () = redis::cmd("SET")
        .arg("hll:from-redis")
        .arg(&merged)
        .query(&mut got)
        .expect("set");
    let here: u64 = redis::cmd("PFCOUNT")
        .arg("hll:from-redis")
        .query(&mut got)
        .expect("pfcount");
    assert_eq!(here, count);

    // DUMP/RESTORE both ways: the payloads need not be the same bytes (LZF output may differ),
    // the HLL strings they restore must.
    let ours: Vec<u8> = redis::cmd("DUMP")
        .arg("hll:merged")
        .query(&mut got)
        .expect("dump");
    let _: () = redis::cmd("RESTORE")
        .arg("hll:from-ringcache")
        .arg(0)
        .arg(&ours)
        .query(&mut want)
        .expect("redis-server restores ringcache's DUMP");
    let theirs: Vec<u8> = redis::cmd("DUMP")
        .arg("hll:merged")
        .query(&mut want)
        .expect("dump");
    let _: () = redis::cmd("RESTORE")
        .arg("hll:from-redis-dump")
        .arg(0)
        .arg(&theirs)
        .query(&mut got)
        .expect("ringcache restores redis-server's DUMP");
    let a: Vec<u8> = redis::cmd("GET")
        .arg("hll:from-ringcache")
        .query(&mut want)
        .expect("get");
    let b: Vec<u8> = redis::cmd("GET")
        .arg("hll:from-redis-dump")
        .query(&mut got)
        .expect("get");
    // redis-server's copy now holds the cardinality PFCOUNT cached; ringcache's does not.
    let theirs_now: Vec<u8> = redis::cmd("GET")
        .arg("hll:merged")
        .query(&mut want)
        .expect("get");
    assert_eq!(a, merged);
    assert_eq!(b, theirs_now);
}
