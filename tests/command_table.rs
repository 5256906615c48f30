//! COMMAND INFO and COMMAND DOCS describe the bitmap, LCS, ZINTERCARD, SORT, OBJECT, MEMORY,
//! HyperLogLog, geo and stream commands as a real redis-server 7.0 does: name, arity, flags, first key, last key, step and
//! the documentation group, compared field by field (the parts ringcache generates from its
//! command table; ACL categories, tips and key specs are not generated).

mod common;

use common::redis_server::RedisServer;
use common::{TWO_NODES, TestServer};
use redis::Value;

const COMMANDS: &[&str] = &[
    "setbit",
    "getbit",
    "bitcount",
    "bitpos",
    "bitop",
    "bitfield",
    "bitfield_ro",
    "lcs",
    "zintercard",
    "sort",
    "sort_ro",
    "object",
    "memory",
    "pfadd",
    "pfcount",
    "pfmerge",
    "pfdebug",
    "pfselftest",
    "geoadd",
    "geodist",
    "geohash",
    "geopos",
    "georadius",
    "georadius_ro",
    "georadiusbymember",
    "georadiusbymember_ro",
    "geosearch",
    "geosearchstore",
    "xadd",
    "xrange",
    "xrevrange",
    "xlen",
    "xdel",
    "xtrim",
    "xsetid",
    "xread",
    "xreadgroup",
    "xgroup",
    "xack",
    "xpending",
    "xclaim",
    "xautoclaim",
    "xinfo",
];

/// A reply value as comparable text (sets sorted, simple and bulk strings alike).
fn text(v: &Value) -> String {
    match v {
        Value::Int(n) => n.to_string(),
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Array(items) | Value::Set(items) => {
            let mut parts: Vec<String> = items.iter().map(text).collect();
            parts.sort();
            format!("[{}]", parts.join(","))
        }
        other => format!("{other:?}"),
    }
}

/// (name, arity, flags, first, last, step) of each command's COMMAND INFO entry.
fn info(c: &mut redis::Connection) -> Vec<Vec<String>> {
    let reply: Vec<Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg(COMMANDS)
        .query(c)
        .expect("command info");
    reply
        .iter()
        .map(|entry| match entry {
            Value::Array(fields) => fields.iter().take(6).map(text).collect(),
            other => panic!("not an entry: {other:?}"),
        })
        .collect()
}

/// Each command's COMMAND DOCS `group`.
fn groups(c: &mut redis::Connection) -> Vec<String> {
    COMMANDS
        .iter()
        .map(|name| {
            let reply: Value = redis::cmd("COMMAND")
                .arg("DOCS")
                .arg(name)
                .query(c)
                .expect("command docs");
            let Value::Array(pairs) = reply else {
                panic!("docs: {reply:?}");
            };
            let Some(Value::Array(doc)) = pairs.get(1) else {
                panic!("docs of {name}: {pairs:?}");
            };
            doc.chunks(2)
                .find(|kv| text(&kv[0]) == "group")
                .map(|kv| text(&kv[1]))
                .unwrap_or_else(|| panic!("no group for {name}"))
        })
        .collect()
}

#[test]
fn new_commands_are_described_as_redis_describes_them() {
    let server = TestServer::start(TWO_NODES);
    let mut ours = server.redis();
    let Some(redis_server) = RedisServer::start() else {
        return;
    };
    let mut theirs = redis::Client::open(format!("redis://{}/", redis_server.addr))
        .expect("client")
        .get_connection()
        .expect("connect to redis-server");
    assert_eq!(info(&mut ours), info(&mut theirs));
    assert_eq!(groups(&mut ours), groups(&mut theirs));
    let count: i64 = redis::cmd("COMMAND")
        .arg("COUNT")
        .query(&mut ours)
        .expect("count");
    let list: Vec<String> = redis::cmd("COMMAND")
        .arg("LIST")
        .query(&mut ours)
        .expect("list");
    assert_eq!(count as usize, list.len());
    for name in COMMANDS {
        assert!(list.iter().any(|n| n == name), "{name} in COMMAND LIST");
    }
}
