//! Snapshots end to end: a server saves its ring on shutdown and the next start, with another
//! number of nodes, serves every key again (values, types, TTLs, memcached flags); a real
//! redis-server's dump loads at start; a corrupt file stops the start; `--check-snapshot`.

mod common;

use std::process::Command;

use common::redis_server::RedisServer;
use common::{ConfigFile, TestServer};
use redis::Commands;
use ringcache::app::App;
use ringcache::config::Config;

fn nodes(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("[[nodes]]\nname = \"{n}\"\nmax_memory = \"64MiB\"\n\n"))
        .collect()
}

const SNAPSHOT: &str = "[snapshot]\npath = \"dump.rdb\"\nsave = \"\"\n\n";

#[test]
fn a_restart_serves_every_key_again_in_any_ring_size() {
    let config = ConfigFile::new(&format!("{SNAPSHOT}{}", nodes(&["a", "b", "c"])));
    {
        let server = TestServer::start_file(&config.path);
        let mut r = server.redis();
        for i in 0..500 {
            let _: () = r.set(format!("s{i}"), format!("v{i}")).expect("set");
        }
        let _: () = r.set_ex("ttl", "x", 1000).expect("setex");
        let _: () = r.hset("h", "f", "v").expect("hset");
        let _: () = r.rpush("l", &["a", "b", "c"]).expect("rpush");
        let _: () = r.sadd("s", &["x", "y"]).expect("sadd");
        let _: () = r.zadd("z", "m", 2.5).expect("zadd");
        let mc = server.client();
        mc.set("mc", "item", 0).expect("memcache set");
        let mut raw = server.raw();
        raw.roundtrip(b"set flagged 77 0 2\r\nhi\r\n", b"STORED\r\n");
        let metrics = server.http_get("/metrics");
        assert!(
            metrics.contains("ringcache_snapshot_in_progress 0"),
            "{metrics}"
        );
        assert!(
            metrics.contains("ringcache_snapshot_failures_total 0"),
            "{metrics}"
        );
    }
    assert!(
        config.dir().join("dump.rdb").exists(),
        "no snapshot on shutdown"
    );

    for ring in [&["p", "q", "r", "s", "t"][..], &["solo"]] {
        config.write(&format!("{SNAPSHOT}{}", nodes(ring)));
        let server = TestServer::start_file(&config.path);
        let mut r = server.redis();
        let dbsize: u64 = redis::cmd("DBSIZE").query(&mut r).expect("dbsize");
        assert_eq!(dbsize, 507, "ring {ring:?}");
        for i in 0..500 {
            let v: String = r.get(format!("s{i}")).expect("get");
            assert_eq!(v, format!("v{i}"));
        }
        let ttl: i64 = r.ttl("ttl").expect("ttl");
        assert!((990..=1000).contains(&ttl), "ttl {ttl}");
        let h: String = r.hget("h", "f").expect("hget");
        assert_eq!(h, "v");
        let l: Vec<String> = r.lrange("l", 0, -1).expect("lrange");
        assert_eq!(l, ["a", "b", "c"]);
        let mut s: Vec<String> = r.smembers("s").expect("smembers");
        s.sort();
        assert_eq!(s, ["x", "y"]);
        let z: f64 = r.zscore("z", "m").expect("zscore");
        assert_eq!(z, 2.5);
        let mut raw = server.raw();
        raw.roundtrip(b"get flagged\r\n", b"VALUE flagged 77 2\r\nhi\r\nEND\r\n");
        let topology = server.shared.topology.load();
        for node in &topology.nodes {
            node.validate().expect("valid node");
        }
    }

    let out = Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .arg("--check-snapshot")
        .arg(config.dir().join("dump.rdb"))
        .output()
        .expect("run ringcache");
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OK, 507 keys"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_dump_saved_by_redis_server_loads_at_start() {
    let config = ConfigFile::new(&format!("{SNAPSHOT}{}", nodes(&["a", "b"])));
    let dir = config.dir().display().to_string();
    let Some(redis) = RedisServer::start_with(&["--dir", &dir, "--dbfilename", "dump.rdb"]) else {
        return;
    };
    let client = redis::Client::open(format!("redis://{}", redis.addr)).expect("client");
    let mut con = client.get_connection().expect("connect");
    let _: () = con.set("k", "v").expect("set");
    let _: () = con.set("n", 42).expect("set");
    let _: () = con.set("long", "ab".repeat(5000)).expect("set");
    let _: () = con.hset("h", "f", 1).expect("hset");
    let _: () = con.zadd("z", "m", 1.5).expect("zadd");
    let _: () = con.sadd("ints", &[1, 2, 3]).expect("sadd");
    let _: () = redis::cmd("SAVE").query(&mut con).expect("SAVE");
    drop(redis);

    let server = TestServer::start_file(&config.path);
    let mut r = server.redis();
    let v: String = r.get("k").expect("get");
    assert_eq!(v, "v");
    let n: i64 = r.get("n").expect("get");
    assert_eq!(n, 42);
    let long: String = r.get("long").expect("get");
    assert_eq!(long, "ab".repeat(5000));
    let h: i64 = r.hget("h", "f").expect("hget");
    assert_eq!(h, 1);
    let z: f64 = r.zscore("z", "m").expect("zscore");
    assert_eq!(z, 1.5);
    let mut ints: Vec<i64> = r.smembers("ints").expect("smembers");
    ints.sort();
    assert_eq!(ints, [1, 2, 3]);
}

#[test]
fn a_corrupt_snapshot_stops_the_start() {
    let config = ConfigFile::new(&format!("{SNAPSHOT}{}", nodes(&["a"])));
    let path = config.dir().join("dump.rdb");
    // A valid start, then a truncated key: nothing may be served as if it were the whole file.
    std::fs::write(&path, b"REDIS0010\xfe\x00\x00\x01k\x05hel").expect("write");
    let cfg = Config::load(&config.path).expect("config");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let err = match rt.block_on(App::start(cfg)) {
        Ok(_) => panic!("started on a truncated snapshot"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("dump.rdb") && err.contains("offset"),
        "error does not say where: {err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .arg("--check-snapshot")
        .arg(&path)
        .output()
        .expect("run ringcache");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
}
