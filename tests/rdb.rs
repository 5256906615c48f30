//! The RDB codec against the real thing: a file ringcache writes passes `redis-check-rdb` and a
//! real redis-server serves it; a file a real redis-server saves (every type, in its small
//! listpack/intset and its large encodings, LZF-compressed and int-encoded strings, TTLs)
//! reads back as the same data.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::redis_server::RedisServer;
use redis::Commands;
use ringcache::persist::rdb::{Reader, Record, Value, Writer};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringcache-rdb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn rec(key: &[u8], value: Value) -> Record {
    Record {
        db: 0,
        key: key.to_vec(),
        value,
        expire_ms: None,
        flags: 0,
    }
}

fn numbered(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}{i}").into_bytes())
        .collect()
}

/// Every type, small and large, TTLs, binary keys, empty and large values, a flagged item.
fn records() -> Vec<Record> {
    let expire = now_ms() + 3_600_000;
    vec![
        rec(b"str", Value::String(b"hello".to_vec())),
        rec(b"int", Value::String(b"12345".to_vec())),
        rec(b"empty", Value::String(Vec::new())),
        rec(b"large", Value::String(vec![b'z'; 300_000])),
        rec(b"bin\x00\xff\r\nkey", Value::String(vec![0, 1, 2, 255])),
        Record {
            expire_ms: Some(expire),
            ..rec(b"ttl", Value::String(b"soon".to_vec()))
        },
        Record {
            flags: 7,
            ..rec(b"mc", Value::String(b"item".to_vec()))
        },
        rec(b"list", Value::List(numbered("e", 3))),
        rec(b"biglist", Value::List(numbered("element-", 1000))),
        rec(b"set", Value::Set(numbered("", 5))),
        rec(b"bigset", Value::Set(numbered("m", 600))),
        rec(
            b"hash",
            Value::Hash(vec![
                (b"f1".to_vec(), b"v1".to_vec()),
                (b"f2".to_vec(), Vec::new()),
            ]),
        ),
        rec(
            b"bighash",
            Value::Hash(
                numbered("field", 300)
                    .into_iter()
                    .zip(numbered("value", 300))
                    .collect(),
            ),
        ),
        rec(
            b"zset",
            Value::ZSet(vec![
                (b"a".to_vec(), 1.0),
                (b"b".to_vec(), 2.5),
                (b"c".to_vec(), -3.0),
            ]),
        ),
        Record {
            expire_ms: Some(expire),
            ..rec(
                b"bigzset",
                Value::ZSet(
                    numbered("member", 300)
                        .into_iter()
                        .enumerate()
                        .map(|(i, m)| (m, i as f64 / 4.0))
                        .collect(),
                ),
            )
        },
    ]
}

fn write_file(path: &Path, records: &[Record]) {
    let file = std::fs::File::create(path).expect("create");
    let expires = records.iter().filter(|r| r.expire_ms.is_some()).count() as u64;
    let mut w = Writer::new(
        std::io::BufWriter::new(file),
        &[("redis-ver", "7.0.0"), ("redis-bits", "64"), ("ctime", "0")],
    )
    .expect("header");
    w.select_db(0, records.len() as u64, expires).expect("db");
    for r in records {
        w.record(r).expect("record");
    }
    w.finish().expect("finish");
}

fn read_file(path: &Path) -> Vec<Record> {
    let file = std::fs::File::open(path).expect("open");
    let mut r = Reader::new(std::io::BufReader::new(file)).expect("header");
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().expect("record") {
        out.push(rec);
    }
    out
}

/// The value a redis-server holds at `key`, read with ordinary commands.
fn fetch(con: &mut redis::Connection, key: &[u8]) -> Value {
    let kind: String = redis::cmd("TYPE").arg(key).query(con).expect("TYPE");
    match kind.as_str() {
        "string" => Value::String(con.get(key).expect("GET")),
        "list" => Value::List(con.lrange(key, 0, -1).expect("LRANGE")),
        "set" => Value::Set(con.smembers(key).expect("SMEMBERS")),
        "hash" => Value::Hash(con.hgetall(key).expect("HGETALL")),
        "zset" => Value::ZSet(con.zrange_withscores(key, 0, -1).expect("ZRANGE")),
        other => panic!("unexpected type {other}"),
    }
}

/// Values compared without the order sets and hashes do not promise.
fn canonical(v: Value) -> Value {
    match v {
        Value::Set(mut m) => {
            m.sort();
            Value::Set(m)
        }
        Value::Hash(mut p) => {
            p.sort();
            Value::Hash(p)
        }
        Value::ZSet(mut p) => {
            p.sort_by(|a, b| a.0.cmp(&b.0));
            Value::ZSet(p)
        }
        v => v,
    }
}

#[test]
fn a_written_file_passes_redis_check_rdb_and_loads_into_redis_server() {
    if !common::tool("redis-check-rdb", "redis-tools") {
        return;
    }
    let dir = temp_dir("write");
    let path = dir.join("dump.rdb");
    let records = records();
    write_file(&path, &records);

    let check = Command::new("redis-check-rdb")
        .arg(&path)
        .output()
        .expect("run redis-check-rdb");
    let text = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(
        check.status.success() && text.contains("RDB looks OK"),
        "{text}"
    );

    let dir_arg = dir.display().to_string();
    let Some(redis) = RedisServer::start_with(&["--dir", &dir_arg, "--dbfilename", "dump.rdb"])
    else {
        return;
    };
    let client = redis::Client::open(format!("redis://{}", redis.addr)).expect("client");
    let mut con = client.get_connection().expect("connect");
    let dbsize: usize = redis::cmd("DBSIZE").query(&mut con).expect("DBSIZE");
    assert_eq!(dbsize, records.len());
    for r in &records {
        assert_eq!(
            canonical(fetch(&mut con, &r.key)),
            canonical(r.value.clone()),
            "{:?}",
            String::from_utf8_lossy(&r.key)
        );
        let pttl: i64 = con.pttl(&r.key).expect("PTTL");
        match r.expire_ms {
            None => assert_eq!(pttl, -1),
            Some(at) => {
                let want = at as i64 - now_ms() as i64;
                assert!((pttl - want).abs() < 2_000, "pttl {pttl}, want {want}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_saved_by_redis_server_reads_back() {
    let dir = temp_dir("read");
    let dir_arg = dir.display().to_string();
    let Some(redis) = RedisServer::start_with(&["--dir", &dir_arg, "--dbfilename", "dump.rdb"])
    else {
        return;
    };
    let client = redis::Client::open(format!("redis://{}", redis.addr)).expect("client");
    let mut con = client.get_connection().expect("connect");
    // Small values take the compact encodings (listpack, intset, int), large ones the
    // hashtable/quicklist/skiplist ones; long repetitive strings are LZF-compressed on save.
    let _: () = con.set("str", "hello").expect("set");
    let _: () = con.set("int", 12345).expect("set");
    let _: () = con.set("neg", -70000).expect("set");
    let _: () = con.set("lzf", "abc".repeat(1000)).expect("set");
    let _: () = con.set("raw", vec![b'q'; 100]).expect("set");
    let _: () = con.set_ex("ttl", "soon", 3600).expect("setex");
    let _: () = con
        .rpush("list", &["a", "1", "-2", "300000"])
        .expect("rpush");
    let _: () = con
        .rpush("biglist", numbered("element-", 2000))
        .expect("rpush");
    let _: () = con.rpush("plainlist", vec![b'p'; 20_000]).expect("rpush");
    let _: () = con
        .sadd("intset", &[1i64, -5, 70000, i64::MAX])
        .expect("sadd");
    let _: () = con.sadd("set", &["x", "y"]).expect("sadd");
    let _: () = con.sadd("bigset", numbered("m", 1000)).expect("sadd");
    let _: () = con
        .hset_multiple("hash", &[("f", "v"), ("n", "7")])
        .expect("hset");
    let big_hash: Vec<(Vec<u8>, Vec<u8>)> = numbered("field", 1000)
        .into_iter()
        .zip(numbered("value", 1000))
        .collect();
    let _: () = con.hset_multiple("bighash", &big_hash).expect("hset");
    let _: () = con
        .zadd_multiple("zset", &[(1.5, "a"), (-2.0, "b"), (3.0, "c")])
        .expect("zadd");
    let big_zset: Vec<(f64, Vec<u8>)> = numbered("member", 1000)
        .into_iter()
        .enumerate()
        .map(|(i, m)| (i as f64 * 0.5 - 100.0, m))
        .collect();
    let _: () = con.zadd_multiple("bigzset", &big_zset).expect("zadd");

    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut con).expect("KEYS");
    let mut want = BTreeMap::new();
    for k in &keys {
        want.insert(k.clone(), canonical(fetch(&mut con, k)));
    }
    let _: () = redis::cmd("SAVE").query(&mut con).expect("SAVE");

    let records = read_file(&dir.join("dump.rdb"));
    assert_eq!(records.len(), keys.len());
    let mut got = BTreeMap::new();
    for r in records {
        assert_eq!(r.db, 0);
        if r.key == b"ttl" {
            let left = r.expire_ms.expect("ttl kept") as i64 - now_ms() as i64;
            assert!((3_590_000..=3_600_000).contains(&left), "{left}");
        } else {
            assert_eq!(r.expire_ms, None, "{:?}", String::from_utf8_lossy(&r.key));
        }
        got.insert(r.key, canonical(r.value));
    }
    assert_eq!(got, want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// DUMP payloads travel both ways: every type dumped by ringcache restores into a real
/// redis-server with the same value, and back.
#[test]
fn dump_payloads_restore_into_redis_server_and_back() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = common::TestServer::start(common::TWO_NODES);
    let mut rc = server.redis();
    let mut rs = redis::Client::open(format!("redis://{}", redis.addr))
        .expect("client")
        .get_connection()
        .expect("connect");
    let _: () = rc.set("str", "hello").expect("set");
    let _: () = rc.rpush("list", numbered("e", 300)).expect("rpush");
    let _: () = rc.sadd("set", &["1", "x", "2"]).expect("sadd");
    let _: () = rc
        .hset_multiple("hash", &[("f", "v"), ("g", "")])
        .expect("hset");
    let _: () = rc
        .zadd_multiple("zset", &[(1.5, "a"), (-2.0, "b")])
        .expect("zadd");
    for key in ["str", "list", "set", "hash", "zset"] {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut rc).expect("dump");
        let _: () = redis::cmd("RESTORE")
            .arg(key)
            .arg(0)
            .arg(&payload)
            .query(&mut rs)
            .expect("restore into redis-server");
        let want = canonical(fetch(&mut rc, key.as_bytes()));
        assert_eq!(
            canonical(fetch(&mut rs, key.as_bytes())),
            want,
            "{key} in redis"
        );
        let back: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut rs).expect("dump");
        let _: () = redis::cmd("RESTORE")
            .arg(key)
            .arg(0)
            .arg(&back)
            .arg("REPLACE")
            .query(&mut rc)
            .expect("restore into ringcache");
        assert_eq!(
            canonical(fetch(&mut rc, key.as_bytes())),
            want,
            "{key} back"
        );
    }
}

/// A stream both ways through RDB files: written by ringcache (two nodes, a group with
/// pending entries and consumers), it passes `redis-check-rdb` and redis-server serves it;
/// saved by redis-server (several nodes, a deleted entry, groups), it reads back with the
/// entries XRANGE shows and the groups XINFO shows.
#[test]
fn streams_travel_through_rdb_files_both_ways() {
    use ringcache::persist::rdb::{StreamGroup, StreamValue};
    if !common::tool("redis-check-rdb", "redis-tools") {
        return;
    }
    let entry = |ms: u64, v: &str| ((ms, 0), vec![(b"f".to_vec(), v.as_bytes().to_vec())]);
    let st = StreamValue {
        nodes: vec![
            (1..=100).map(|i| entry(i, &i.to_string())).collect(),
            vec![entry(200, "x"), entry(201, &"long".repeat(100))],
        ],
        last_id: (300, 0),
        first_id: (1, 0),
        max_deleted_id: (0, 0),
        entries_added: 102,
        groups: vec![StreamGroup {
            name: b"g".to_vec(),
            last_id: (2, 0),
            entries_read: Some(2),
            pel: vec![
                ((1, 0), 1_700_000_000_000, 3),
                ((2, 0), 1_700_000_000_000, 1),
            ],
            consumers: vec![
                (b"alice".to_vec(), 1_700_000_000_000, vec![(1, 0)]),
                (b"bob".to_vec(), 1_700_000_000_000, vec![(2, 0)]),
            ],
        }],
    };
    let dir = temp_dir("stream-write");
    let path = dir.join("dump.rdb");
    write_file(&path, &[rec(b"s", Value::Stream(Box::new(st)))]);
    let check = Command::new("redis-check-rdb")
        .arg(&path)
        .output()
        .expect("run redis-check-rdb");
    let text = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(
        check.status.success() && text.contains("RDB looks OK"),
        "{text}"
    );
    let dir_arg = dir.display().to_string();
    let Some(redis) = RedisServer::start_with(&["--dir", &dir_arg, "--dbfilename", "dump.rdb"])
    else {
        return;
    };
    let client = redis::Client::open(format!("redis://{}", redis.addr)).expect("client");
    let mut con = client.get_connection().expect("connect");
    let len: u64 = redis::cmd("XLEN").arg("s").query(&mut con).expect("XLEN");
    assert_eq!(len, 102);
    let last: Vec<(String, Vec<String>)> = redis::cmd("XREVRANGE")
        .arg("s")
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(&mut con)
        .expect("XREVRANGE");
    assert_eq!(last[0].0, "201-0");
    assert_eq!(last[0].1[1], "long".repeat(100));
    let pending: (u64, String, String, Vec<(String, String)>) = redis::cmd("XPENDING")
        .arg("s")
        .arg("g")
        .query(&mut con)
        .expect("XPENDING");
    assert_eq!(
        pending,
        (
            2,
            "1-0".into(),
            "2-0".into(),
            vec![("alice".into(), "1".into()), ("bob".into(), "1".into())]
        )
    );
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);

    // Saved by redis-server.
    let dir = temp_dir("stream-read");
    let dir_arg = dir.display().to_string();
    let Some(redis) = RedisServer::start_with(&["--dir", &dir_arg, "--dbfilename", "dump.rdb"])
    else {
        return;
    };
    let client = redis::Client::open(format!("redis://{}", redis.addr)).expect("client");
    let mut con = client.get_connection().expect("connect");
    for i in 1..=250u64 {
        let _: String = redis::cmd("XADD")
            .arg("s")
            .arg(format!("{i}-1"))
            .arg("n")
            .arg(i)
            .arg("other")
            .arg(if i % 3 == 0 { "x" } else { "-123456" })
            .query(&mut con)
            .expect("XADD");
    }
    let _: u64 = redis::cmd("XDEL")
        .arg("s")
        .arg("5-1")
        .query(&mut con)
        .expect("XDEL");
    let () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("s")
        .arg("g")
        .arg("0")
        .query(&mut con)
        .expect("XGROUP");
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("c")
        .arg("COUNT")
        .arg(3)
        .arg("STREAMS")
        .arg("s")
        .arg(">")
        .query(&mut con)
        .expect("XREADGROUP");
    let want: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg("s")
        .arg("-")
        .arg("+")
        .query(&mut con)
        .expect("XRANGE");
    let _: () = redis::cmd("SAVE").query(&mut con).expect("SAVE");
    let records = read_file(&dir.join("dump.rdb"));
    let Value::Stream(st) = &records[0].value else {
        panic!("{:?}", records[0].value)
    };
    let got: Vec<(String, Vec<String>)> = st
        .nodes
        .iter()
        .flatten()
        .map(|((ms, seq), fields)| {
            let flat = fields
                .iter()
                .flat_map(|(f, v)| [f.clone(), v.clone()])
                .map(|b| String::from_utf8(b).expect("utf8"))
                .collect();
            (format!("{ms}-{seq}"), flat)
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(st.nodes.len(), 3);
    assert_eq!(
        (st.last_id, st.max_deleted_id, st.entries_added),
        ((250, 1), (5, 1), 250)
    );
    let g = &st.groups[0];
    // A tombstone ahead (5-1) leaves the group's read counter unknown, as redis computes it.
    assert_eq!(
        (g.name.as_slice(), g.last_id, g.entries_read),
        (&b"g"[..], (3, 1), None)
    );
    assert_eq!(
        g.pel.iter().map(|p| p.0).collect::<Vec<_>>(),
        [(1, 1), (2, 1), (3, 1)]
    );
    assert_eq!(g.consumers.len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
