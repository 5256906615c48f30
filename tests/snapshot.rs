//! Snapshots end to end: a server saves its ring on shutdown and the next start, with another
//! number of nodes, serves every key again (values, types, TTLs, memcached flags); a real
//! redis-server's dump loads at start; a corrupt file stops the start; `--check-snapshot`.

mod common;

use std::process::Command;
use std::time::Duration;

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
        // What the start loaded is not a change the save rules count.
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query(&mut r)
            .expect("info");
        assert!(info.contains("rdb_changes_since_last_save:0"), "{info}");
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

#[test]
fn kill_9_during_a_save_leaves_the_previous_snapshot_intact() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let config = ConfigFile::new(&format!(
        "[snapshot]\npath = \"dump.rdb\"\nsave = \"1 1\"\non_shutdown = false\n\n{}",
        nodes(&["a", "b"])
    ));
    let dump = config.dir().join("dump.rdb");
    let tmp = config.dir().join("dump.rdb.tmp");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .arg("--config")
        .arg(&config.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ringcache");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    let resp: std::net::SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("resp="))
        .expect("resp address")
        .parse()
        .expect("address");
    let mut raw = common::Raw::connect(resp);
    let value = "v".repeat(100);
    let fill = |raw: &mut common::Raw, from: usize, to: usize| {
        for chunk in (from..to).collect::<Vec<_>>().chunks(1000) {
            let mut batch = String::new();
            for i in chunk {
                batch.push_str(&format!("SET key:{i} {value}\r\n"));
            }
            raw.send(batch.as_bytes());
            raw.read_until("+OK\r\n".repeat(chunk.len()).as_bytes());
        }
    };
    fill(&mut raw, 0, 200_000);
    // The first save (the rule is one write in one second).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dump.exists() {
        assert!(Instant::now() < deadline, "no snapshot was written");
        std::thread::sleep(Duration::from_millis(10));
    }
    while tmp.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = std::fs::read(&dump).expect("read snapshot");
    // More writes start the next save; kill the process while its temporary file is open.
    fill(&mut raw, 200_000, 200_100);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tmp.exists() {
        assert!(Instant::now() < deadline, "the second save never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    let after = std::fs::read(&dump).expect("snapshot still there");
    assert_eq!(after, before, "the snapshot in place changed");
    // Saves may have run during the fill: the file holds what the last finished one saw.
    let (keys, _) = ringcache::persist::snapshot::check(&dump).expect("loadable");
    assert!(keys > 0 && keys <= 200_000, "{keys} keys");
}

#[test]
fn save_bgsave_and_lastsave() {
    let config = ConfigFile::new(&format!("{SNAPSHOT}{}", nodes(&["a", "b"])));
    let server = TestServer::start_file(&config.path);
    let mut r = server.redis();
    let before: i64 = redis::cmd("LASTSAVE").query(&mut r).expect("lastsave");
    for i in 0..100 {
        let _: () = r.set(format!("k{i}"), i).expect("set");
    }
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut r)
        .expect("info");
    assert!(info.contains("rdb_changes_since_last_save:100"), "{info}");
    let _: () = redis::cmd("SAVE").query(&mut r).expect("save");
    let (keys, _) =
        ringcache::persist::snapshot::check(&config.dir().join("dump.rdb")).expect("a snapshot");
    assert_eq!(keys, 100);
    let after: i64 = redis::cmd("LASTSAVE").query(&mut r).expect("lastsave");
    assert!(after >= before);
    let _: () = r.set("more", 1).expect("set");
    let started: String = redis::cmd("BGSAVE").query(&mut r).expect("bgsave");
    assert_eq!(started, "Background saving started");
    assert!(common::eventually(Duration::from_secs(10), || {
        ringcache::persist::snapshot::check(&config.dir().join("dump.rdb"))
            .is_ok_and(|(k, _)| k == 101)
    }));
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut r)
        .expect("info");
    assert!(info.contains("rdb_last_bgsave_status:ok"), "{info}");
    let off = TestServer::start(common::TWO_NODES);
    let err = redis::cmd("SAVE")
        .query::<()>(&mut off.redis())
        .expect_err("no [snapshot]");
    assert!(err.to_string().contains("snapshots are off"), "{err}");
}

/// CONFIG SET save replaces the `[snapshot]` rules live: a server started with none saves
/// once a rule set by CONFIG SET is met, and CONFIG GET shows the rules in force.
#[test]
fn config_set_save_applies_live() {
    let config = ConfigFile::new(&format!("{SNAPSHOT}{}", nodes(&["a", "b"])));
    let server = TestServer::start_file(&config.path);
    let mut r = server.redis();
    let get = |r: &mut redis::Connection| -> Vec<String> {
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("save")
            .query(r)
            .expect("config get")
    };
    assert_eq!(get(&mut r), ["save", ""]);
    let _: () = r.set("k", 1).expect("set");
    std::thread::sleep(Duration::from_millis(1500));
    let dump = config.dir().join("dump.rdb");
    assert!(!dump.exists(), "saved without a rule");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("save")
        .arg("1 1")
        .query(&mut r)
        .expect("config set");
    assert_eq!(get(&mut r), ["save", "1 1"]);
    assert!(
        common::eventually(Duration::from_secs(10), || {
            ringcache::persist::snapshot::check(&dump).is_ok_and(|(k, _)| k == 1)
        }),
        "the rule set by CONFIG SET did not save"
    );
}

/// Two function libraries: one read-only function with a description, one that writes.
const GREET: &str = "#!lua name=greet\nredis.register_function{function_name='hello', callback=function(keys, args) return 'hello ' .. args[1] end, flags={'no-writes'}, description='says hello'}\n";
const COUNTER: &str = "#!lua name=counter\nredis.register_function('bump', function(keys, args) return redis.call('INCR', keys[1]) end)\n";

/// FUNCTION LIST WITHCODE, one entry per library, in library-name order (redis lists them in
/// its dict's order).
fn function_list(con: &mut redis::Connection) -> Vec<String> {
    let list: Vec<redis::Value> = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("WITHCODE")
        .query(con)
        .expect("function list");
    let mut libs: Vec<String> = list.iter().map(|l| format!("{l:?}")).collect();
    libs.sort();
    libs
}

fn load_functions(con: &mut redis::Connection) {
    for code in [GREET, COUNTER] {
        let _: String = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(code)
            .query(con)
            .expect("function load");
    }
}

/// What the functions answer: FCALL and FCALL_RO of both libraries.
fn fcalls(con: &mut redis::Connection) -> (String, String, i64) {
    let hello: String = redis::cmd("FCALL")
        .arg("hello")
        .arg(0)
        .arg("world")
        .query(con)
        .expect("fcall hello");
    let ro: String = redis::cmd("FCALL_RO")
        .arg("hello")
        .arg(0)
        .arg("ro")
        .query(con)
        .expect("fcall_ro hello");
    let bumped: i64 = redis::cmd("FCALL")
        .arg("bump")
        .arg(1)
        .arg("counter")
        .query(con)
        .expect("fcall bump");
    (hello, ro, bumped)
}

#[test]
fn functions_saved_by_ringcache_load_into_redis_server() {
    let config = ConfigFile::new(&format!("{SNAPSHOT}{}", nodes(&["a", "b"])));
    let server = TestServer::start_file(&config.path);
    let mut r = server.redis();
    load_functions(&mut r);
    let _: () = r.set("counter", 41).expect("set");
    let _: () = redis::cmd("SAVE").query(&mut r).expect("save");
    let ours = function_list(&mut r);
    assert_eq!(ours.len(), 2, "{ours:?}");

    let out = Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .arg("--check-snapshot")
        .arg(config.dir().join("dump.rdb"))
        .output()
        .expect("run ringcache");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("OK, 1 keys") && stdout.contains("2 function libraries (counter, greet)"),
        "{stdout}"
    );

    let dir = config.dir().display().to_string();
    let Some(redis) = RedisServer::start_with(&["--dir", &dir, "--dbfilename", "dump.rdb"]) else {
        return;
    };
    let client = redis::Client::open(format!("redis://{}", redis.addr)).expect("client");
    let mut con = client.get_connection().expect("connect");
    assert_eq!(function_list(&mut con), ours);
    assert_eq!(fcalls(&mut con), fcalls(&mut r));
    assert_eq!(fcalls(&mut con).2, 43);
}

#[test]
fn functions_saved_by_redis_server_load_into_ringcache() {
    let config = ConfigFile::new(&format!("{SNAPSHOT}{}", nodes(&["a", "b"])));
    let dir = config.dir().display().to_string();
    let Some(redis) = RedisServer::start_with(&["--dir", &dir, "--dbfilename", "dump.rdb"]) else {
        return;
    };
    let client = redis::Client::open(format!("redis://{}", redis.addr)).expect("client");
    let mut con = client.get_connection().expect("connect");
    load_functions(&mut con);
    let _: () = con.set("counter", 9).expect("set");
    let _: () = redis::cmd("SAVE").query(&mut con).expect("SAVE");
    let theirs = function_list(&mut con);
    let want = fcalls(&mut con);
    drop(redis);

    let server = TestServer::start_file(&config.path);
    let mut r = server.redis();
    assert_eq!(function_list(&mut r), theirs);
    assert_eq!(fcalls(&mut r), want);
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut r)
        .expect("info");
    assert!(info.contains("number_of_libraries:2"), "{info}");
}

#[test]
fn a_restart_keeps_the_function_libraries() {
    let config = ConfigFile::new(&format!("{SNAPSHOT}{}", nodes(&["a", "b", "c"])));
    let before = {
        let server = TestServer::start_file(&config.path);
        let mut r = server.redis();
        load_functions(&mut r);
        // A library deleted before the save is not in the snapshot.
        let _: String = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("#!lua name=gone\nredis.register_function('gone', function() return 1 end)")
            .query(&mut r)
            .expect("function load");
        let _: () = redis::cmd("FUNCTION")
            .arg("DELETE")
            .arg("gone")
            .query(&mut r)
            .expect("function delete");
        function_list(&mut r)
    };
    // Shut down (the final snapshot), then a start with another ring.
    config.write(&format!("{SNAPSHOT}{}", nodes(&["solo"])));
    let server = TestServer::start_file(&config.path);
    let mut r = server.redis();
    assert_eq!(function_list(&mut r), before);
    assert_eq!(fcalls(&mut r).0, "hello world");
    // Loaded as FUNCTION LOAD without REPLACE: loading it again is refused as before.
    let err = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(GREET)
        .query::<String>(&mut r)
        .expect_err("already loaded");
    assert!(err.to_string().contains("already exists"), "{err}");
}

/// A library that cannot load (as redis: twice the same name, or code that fails) stops the
/// start with an error that names it, and `--check-snapshot` fails the same way.
#[test]
fn a_library_that_does_not_load_stops_the_start() {
    use ringcache::persist::rdb::Writer;

    let broken = "#!lua name=broken\nredis.register_function('f', function() return 1 end\n";
    for (codes, library, why) in [
        (&[GREET, GREET][..], "greet", "already exists"),
        (
            &[COUNTER, broken][..],
            "broken",
            "Error registering functions",
        ),
    ] {
        let config = ConfigFile::new(&format!("{SNAPSHOT}{}", nodes(&["a"])));
        let path = config.dir().join("dump.rdb");
        let mut w = Writer::new(Vec::new(), &[("redis-ver", "7.0.15")]).expect("header");
        for code in codes {
            w.function(code.as_bytes()).expect("function");
        }
        w.select_db(0, 0, 0).expect("db");
        std::fs::write(&path, w.finish().expect("finish")).expect("write");

        let cfg = Config::load(&config.path).expect("config");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let err = match rt.block_on(App::start(cfg)) {
            Ok(_) => panic!("started with a library that does not load"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&format!("library \"{library}\"")) && err.contains(why),
            "{err}"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_ringcache"))
            .arg("--check-snapshot")
            .arg(&path)
            .output()
            .expect("run ringcache");
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(library) && stderr.contains(why), "{stderr}");
    }
}
