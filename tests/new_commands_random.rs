//! Random requests of the bitmap, LCS, ZINTERCARD, SORT, OBJECT and MEMORY commands (and, in a
//! second test, of the HyperLogLog and geo commands), built
//! from their keywords, edge numbers and a few keys of every type, handled in-process: every
//! request gets exactly one well-formed reply (never a panic or a hang), far offsets on a small
//! node are refused without being allocated, and the node's accounting stays exact.

use std::sync::Arc;

use bytes::BytesMut;
use ringcache::config::Limits;
use ringcache::proto::resp::RespSession;
use ringcache::proto::{Flow, Session};
use ringcache::route::ring::{HashKind, Ring};
use ringcache::route::topology::Topology;
use ringcache::server::Shared;
use ringcache::store::{Clock, Node};

const COMMANDS: &[&str] = &[
    "SETBIT",
    "GETBIT",
    "BITCOUNT",
    "BITPOS",
    "BITOP",
    "BITFIELD",
    "BITFIELD_RO",
    "LCS",
    "ZINTERCARD",
    "SORT",
    "SORT_RO",
    "OBJECT",
    "MEMORY",
];

const TOKENS: &[&str] = &[
    "k0",
    "k1",
    "list",
    "set",
    "zset",
    "hash",
    "str",
    "0",
    "1",
    "-1",
    "7",
    "8",
    "63",
    "64",
    "100",
    "-100",
    "2",
    "3",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "#0",
    "#3",
    "#-1",
    "u1",
    "u8",
    "u63",
    "u64",
    "i1",
    "i8",
    "i64",
    "i65",
    "GET",
    "SET",
    "INCRBY",
    "OVERFLOW",
    "WRAP",
    "SAT",
    "FAIL",
    "AND",
    "OR",
    "XOR",
    "NOT",
    "BIT",
    "BYTE",
    "LIMIT",
    "BY",
    "nosort",
    "w_*",
    "w_*->f",
    "#",
    "ALPHA",
    "DESC",
    "ASC",
    "STORE",
    "LEN",
    "IDX",
    "MINMATCHLEN",
    "WITHMATCHLEN",
    "ENCODING",
    "FREQ",
    "IDLETIME",
    "REFCOUNT",
    "HELP",
    "USAGE",
    "SAMPLES",
    "DOCTOR",
    "STATS",
    "",
    "x",
];

/// One small node: every far offset is past its budget.
fn session() -> (RespSession, Arc<Node>) {
    let clock = Clock::real();
    let node = Arc::new(Node::new("a", 8 << 20, clock.clone()));
    let ring = Ring::build(&[("a", 1)], HashKind::default(), 160, None);
    let shared = Shared::new(
        Topology::new(1, ring, vec![Arc::clone(&node)]),
        Limits::default(),
        clock,
    );
    (RespSession::new(Arc::new(shared), None, None), node)
}

fn request(args: &[&str]) -> BytesMut {
    let mut input = BytesMut::new();
    input.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        input.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    input
}

/// Length of the one RESP reply at the start of `b`, if complete.
fn reply_len(b: &[u8]) -> Option<usize> {
    let line_end = b.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&b[1..line_end]).ok()?;
    let after = line_end + 2;
    match b.first()? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' => Some(after),
        b'$' | b'=' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                Some(after)
            } else {
                Some(after + n as usize + 2)
            }
        }
        b'*' | b'~' | b'%' => {
            let n: i64 = head.parse().ok()?;
            let items = if b[0] == b'%' { 2 * n } else { n };
            let mut at = after;
            for _ in 0..items.max(0) {
                at += reply_len(&b[at..])?;
            }
            Some(at)
        }
        _ => None,
    }
}

#[test]
fn random_requests_get_one_well_formed_reply_each() {
    let (mut s, node) = session();
    let setup: &[&[&str]] = &[
        &["RPUSH", "list", "3", "1", "2", "k0"],
        &["SADD", "set", "5", "1", "k1"],
        &["ZADD", "zset", "1", "a", "2", "k0"],
        &["HSET", "hash", "f", "v"],
        &["SET", "str", "foobar"],
        &["SET", "w_1", "9"],
        &["HSET", "w_2", "f", "4"],
    ];
    for args in setup {
        let mut input = request(args);
        let mut out = BytesMut::new();
        assert_eq!(s.process(&mut input, &mut out), Flow::Continue);
    }
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    for round in 0..50_000 {
        let mut args: Vec<&str> = vec![COMMANDS[next(COMMANDS.len())]];
        for _ in 0..next(8) {
            args.push(TOKENS[next(TOKENS.len())]);
        }
        let mut input = request(&args);
        let mut out = BytesMut::new();
        assert_eq!(
            s.process(&mut input, &mut out),
            Flow::Continue,
            "round {round}: {args:?}"
        );
        assert!(input.is_empty(), "round {round}: {args:?} was handled");
        assert_eq!(
            reply_len(&out),
            Some(out.len()),
            "round {round}: {args:?} got one reply: {:?}",
            String::from_utf8_lossy(&out)
        );
        assert!(node.used_bytes() <= node.max_memory());
    }
    node.validate().expect("accounting is exact");
}

const HLL_GEO_COMMANDS: &[&str] = &[
    "PFADD",
    "PFCOUNT",
    "PFMERGE",
    "PFDEBUG",
    "GEOADD",
    "GEOPOS",
    "GEODIST",
    "GEOHASH",
    "GEOSEARCH",
    "GEOSEARCHSTORE",
    "GEORADIUS",
    "GEORADIUS_RO",
    "GEORADIUSBYMEMBER",
    "GEORADIUSBYMEMBER_RO",
];

const HLL_GEO_TOKENS: &[&str] = &[
    "hll",
    "dense",
    "bad",
    "trunc",
    "geo",
    "zset",
    "list",
    "str",
    "new",
    "a",
    "b",
    "GETREG",
    "DECODE",
    "ENCODING",
    "TODENSE",
    "FROMMEMBER",
    "FROMLONLAT",
    "BYRADIUS",
    "BYBOX",
    "WITHDIST",
    "WITHCOORD",
    "WITHHASH",
    "COUNT",
    "ANY",
    "ASC",
    "DESC",
    "STORE",
    "STOREDIST",
    "NX",
    "XX",
    "CH",
    "m",
    "km",
    "mi",
    "ft",
    "yd",
    "0",
    "1",
    "-1",
    "3",
    "13.36",
    "38.11",
    "180",
    "-180",
    "85.05112878",
    "90",
    "inf",
    "-inf",
    "nan",
    "1e308",
    "1e-308",
    "",
    "x",
];

/// The same for the HyperLogLog and geo commands, with valid (sparse and dense) and corrupted
/// HLL strings among the keys: one well-formed reply each, exact accounting after.
#[test]
fn hll_and_geo_requests_get_one_well_formed_reply_each() {
    let (mut s, node) = session();
    let mut raw = |args: &[&[u8]]| {
        let mut input = BytesMut::new();
        input.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            input.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            input.extend_from_slice(a);
            input.extend_from_slice(b"\r\n");
        }
        let mut out = BytesMut::new();
        assert_eq!(s.process(&mut input, &mut out), Flow::Continue);
    };
    let header = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80";
    let bad = [&header[..], b"\x7f\xfe\x83\xff\xff"].concat();
    let trunc = [&header[..], b"\x40"].concat();
    raw(&[b"PFADD", b"hll", b"a", b"b", b"c"]);
    raw(&[b"PFADD", b"dense", b"x"]);
    raw(&[b"PFDEBUG", b"TODENSE", b"dense"]);
    raw(&[b"SET", b"bad", &bad]);
    raw(&[b"SET", b"trunc", &trunc]);
    raw(&[
        b"GEOADD", b"geo", b"13.36", b"38.11", b"a", b"15.08", b"37.5", b"b",
    ]);
    raw(&[b"ZADD", b"zset", b"-1", b"a", b"1e20", b"b"]);
    raw(&[b"RPUSH", b"list", b"a"]);
    raw(&[b"SET", b"str", b"HYLL"]);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    // Fewer rounds: a dense HLL is 12 KiB copied per write, slow in a debug build.
    for round in 0..10_000 {
        let mut args: Vec<&str> = vec![HLL_GEO_COMMANDS[next(HLL_GEO_COMMANDS.len())]];
        for _ in 0..next(12) {
            args.push(HLL_GEO_TOKENS[next(HLL_GEO_TOKENS.len())]);
        }
        let mut input = request(&args);
        let mut out = BytesMut::new();
        assert_eq!(
            s.process(&mut input, &mut out),
            Flow::Continue,
            "round {round}: {args:?}"
        );
        assert!(input.is_empty(), "round {round}: {args:?} was handled");
        assert_eq!(
            reply_len(&out),
            Some(out.len()),
            "round {round}: {args:?} got one reply: {:?}",
            String::from_utf8_lossy(&out)
        );
        assert!(node.used_bytes() <= node.max_memory());
    }
    node.validate().expect("accounting is exact");
}

const STREAM_COMMANDS: &[&str] = &[
    "XADD",
    "XRANGE",
    "XREVRANGE",
    "XLEN",
    "XDEL",
    "XTRIM",
    "XSETID",
    "XREAD",
    "XREADGROUP",
    "XGROUP",
    "XACK",
    "XPENDING",
    "XCLAIM",
    "XAUTOCLAIM",
    "XINFO",
    "DUMP",
];

const STREAM_TOKENS: &[&str] = &[
    "s",
    "s",
    "s",
    "t",
    "str",
    "g",
    "g",
    "c",
    "d",
    "*",
    "1",
    "1-1",
    "2-*",
    "5",
    "0",
    "-1",
    "-",
    "+",
    "(1",
    "$",
    ">",
    "18446744073709551615-18446744073709551615",
    "18446744073709551615",
    "MAXLEN",
    "MINID",
    "~",
    "=",
    "LIMIT",
    "NOMKSTREAM",
    "COUNT",
    "STREAMS",
    "GROUP",
    "NOACK",
    "CREATE",
    "SETID",
    "DESTROY",
    "CREATECONSUMER",
    "DELCONSUMER",
    "MKSTREAM",
    "ENTRIESREAD",
    "ENTRIESADDED",
    "MAXDELETEDID",
    "IDLE",
    "TIME",
    "RETRYCOUNT",
    "FORCE",
    "JUSTID",
    "LASTID",
    "STREAM",
    "GROUPS",
    "CONSUMERS",
    "FULL",
    "HELP",
    "f",
    "v",
    "",
];

/// Stream requests (no BLOCK among the words: a blocked request would wait): one well-formed
/// reply each, exact accounting after, and every stream left DUMPs and RESTOREs.
#[test]
fn stream_requests_get_one_well_formed_reply_each() {
    let (mut s, node) = session();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    for setup in [
        &["XADD", "s", "1-1", "f", "v"][..],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["SET", "str", "x"],
    ] {
        let mut input = request(setup);
        let mut out = BytesMut::new();
        s.process(&mut input, &mut out);
    }
    for round in 0..20_000 {
        let mut args: Vec<&str> = vec![STREAM_COMMANDS[next(STREAM_COMMANDS.len())]];
        for _ in 0..next(10) {
            args.push(STREAM_TOKENS[next(STREAM_TOKENS.len())]);
        }
        let mut input = request(&args);
        let mut out = BytesMut::new();
        assert_eq!(
            s.process(&mut input, &mut out),
            Flow::Continue,
            "round {round}: {args:?}"
        );
        assert!(input.is_empty(), "round {round}: {args:?} was handled");
        assert_eq!(
            reply_len(&out),
            Some(out.len()),
            "round {round}: {args:?} got one reply: {:?}",
            String::from_utf8_lossy(&out)
        );
        assert!(node.used_bytes() <= node.max_memory());
    }
    node.validate().expect("accounting is exact");
    // What the random commands left in `s` (if it is a stream) DUMPs and RESTOREs as itself.
    let mut run = |args: &[&[u8]]| {
        let mut input = BytesMut::new();
        input.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            input.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            input.extend_from_slice(a);
            input.extend_from_slice(b"\r\n");
        }
        let mut out = BytesMut::new();
        s.process(&mut input, &mut out);
        out.to_vec()
    };
    if run(&[b"TYPE", b"s"]) == b"+stream\r\n" {
        let dump = run(&[b"DUMP", b"s"]);
        let head = dump.iter().position(|&b| b == b'\r').expect("bulk header");
        let payload = &dump[head + 2..dump.len() - 2];
        assert_eq!(run(&[b"RESTORE", b"copy", b"0", payload]), b"+OK\r\n");
        for probe in [
            &[b"XRANGE" as &[u8], b"KEY", b"-", b"+"][..],
            &[b"XINFO", b"GROUPS", b"KEY"],
            &[b"XLEN", b"KEY"],
        ] {
            let with = |key: &'static [u8]| -> Vec<&[u8]> {
                probe
                    .iter()
                    .map(|a| if *a == b"KEY" { key } else { *a })
                    .collect()
            };
            let want = run(&with(b"s"));
            assert_eq!(run(&with(b"copy")), want, "{probe:?}");
        }
    }
}
