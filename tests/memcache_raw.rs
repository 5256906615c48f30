//! Raw-bytes conformance cases for the memcached listener: each case is (request bytes,
//! expected reply bytes), and every expected reply was checked byte for byte against a real
//! memcached 1.6.18 (`memcached -p PORT -U 0 -m 64 -I 1m`).
//!
//! Run against any server with `RINGCACHE_TEST_MEMCACHE_ADDR=127.0.0.1:PORT cargo test --test
//! memcache_raw`; without it, [`start_server`] starts the server under test in-process.
//!
//! Conventions:
//! - `$` in a case is replaced by a per-run key prefix, so cases can rerun against the same
//!   server and do not see each other's keys. Cases that use fixed keys are idempotent.
//! - Unless a case expects the connection to close, `mn\r\n` is appended to the request and
//!   `MN\r\n` to the expected reply: the reply is complete when MN arrives (no sleeps, and a
//!   missing or extra line shows up as a mismatch).
//! - No case depends on a CAS value, a clock tick or `version`: those differ between servers.
//!   Deliberate differences from memcached are tested in the unit tests, not here.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The address of the memcached listener under test: one real server (two nodes, port 0)
/// shared by every case in this file, or `RINGCACHE_TEST_MEMCACHE_ADDR` to run the same cases
/// against another server (e.g. a real memcached, to check the expectations themselves).
fn start_server() -> SocketAddr {
    static SERVER: OnceLock<SocketAddr> = OnceLock::new();
    *SERVER.get_or_init(|| {
        if let Ok(addr) = std::env::var("RINGCACHE_TEST_MEMCACHE_ADDR") {
            return addr
                .parse()
                .expect("RINGCACHE_TEST_MEMCACHE_ADDR is host:port");
        }
        // Leaked on purpose: the server lives as long as the test process.
        let server = Box::leak(Box::new(common::TestServer::start(common::TWO_NODES)));
        server.memcache
    })
}

/// One conformance case.
struct Case {
    name: &'static str,
    /// Sent in order, with a short pause between chunks.
    send: Vec<Vec<u8>>,
    expect: Vec<u8>,
    /// The server must close the connection after `expect`.
    close: bool,
}

fn case(name: &'static str, send: impl AsRef<[u8]>, expect: impl AsRef<[u8]>) -> Case {
    Case {
        name,
        send: vec![send.as_ref().to_vec()],
        expect: expect.as_ref().to_vec(),
        close: false,
    }
}

fn closing(name: &'static str, send: impl AsRef<[u8]>, expect: impl AsRef<[u8]>) -> Case {
    Case {
        close: true,
        ..case(name, send, expect)
    }
}

fn chunked(name: &'static str, send: &[&[u8]], expect: impl AsRef<[u8]>, close: bool) -> Case {
    Case {
        name,
        send: send.iter().map(|c| c.to_vec()).collect(),
        expect: expect.as_ref().to_vec(),
        close,
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn cases() -> Vec<Case> {
    let k250 = "k".repeat(250);
    let k251 = "k".repeat(251);
    let big = "y".repeat(1024 * 1024 + 1);
    let half_a = "a".repeat(600_000);
    let half_b = "b".repeat(600_000);
    let many_z = "$z ".repeat(30);
    let many_z_values = "VALUE $z 0 1\r\nz\r\n".repeat(30);
    let long_get = format!("get {}", "$nx ".repeat(700));
    vec![
        // --- framing, tokens, unknown commands
        case(
            "set and multi-get",
            "set $a 0 0 1\r\nx\r\nget $a $b $a\r\n",
            "STORED\r\nVALUE $a 0 1\r\nx\r\nVALUE $a 0 1\r\nx\r\nEND\r\n",
        ),
        case(
            "noreply set",
            "set $a2 0 0 1 noreply\r\nx\r\nget $a2\r\n",
            "VALUE $a2 0 1\r\nx\r\nEND\r\n",
        ),
        case("get without key", "get\r\n", "ERROR\r\n"),
        case("get with trailing space only", "get \r\n", "ERROR\r\n"),
        case("commands are case-sensitive", "GET a\r\n", "ERROR\r\n"),
        case("empty line", "\r\n", "ERROR\r\n"),
        case("unknown command", "foo bar\r\n", "ERROR\r\n"),
        case("one-letter command", "m\r\n", "ERROR\r\n"),
        case("unknown meta command", "mz a\r\n", "ERROR\r\n"),
        case(
            "extra spaces",
            "set  $c25   0 0 1\r\nx\r\nget   $c25  \r\n",
            "STORED\r\nVALUE $c25 0 1\r\nx\r\nEND\r\n",
        ),
        case(
            "LF-only command lines",
            "set $c26b 0 0 1\nx\r\nget $c26b\n",
            "STORED\r\nVALUE $c26b 0 1\r\nx\r\nEND\r\n",
        ),
        case(
            "LF-only data block is a bad chunk",
            "set $c26 0 0 1\nx\nget $c26\n",
            "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        case(
            "data may contain CR",
            "set $c4b 0 0 3\r\nab\r\r\nget $c4b\r\n",
            "STORED\r\nVALUE $c4b 0 3\r\nab\r\r\nEND\r\n",
        ),
        case(
            "binary data",
            "set $c27 0 0 1\r\n\x01\r\nget $c27\r\n",
            "STORED\r\nVALUE $c27 0 1\r\n\x01\r\nEND\r\n",
        ),
        case(
            "30 keys in one get",
            format!("set $z 0 0 1\r\nz\r\nget {many_z}\r\n"),
            format!("STORED\r\n{many_z_values}END\r\n"),
        ),
        // --- storage command errors
        case(
            "bad data chunk consumes exactly len+2",
            "set $c4 0 0 1\r\nab\r\nget $c4\r\n",
            "CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n",
        ),
        case(
            "bad data chunk after newline",
            "set $c4c 0 0 1\r\nx\n\nget $c4c\r\n",
            "CLIENT_ERROR bad data chunk\r\nEND\r\n",
        ),
        case(
            "bad data chunk keeps the old item",
            "set $t5 0 0 1\r\nx\r\nset $t5 0 0 1\r\nab\r\nget $t5\r\n",
            "STORED\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\nVALUE $t5 0 1\r\nx\r\nEND\r\n",
        ),
        case(
            "noreply hides bad data chunk",
            "set $c5 0 0 1 noreply\r\nab\r\nget $c5\r\n",
            "ERROR\r\nEND\r\n",
        ),
        case(
            "negative length, no swallow",
            "set $c19 0 0 -1\r\nget $c19\r\n",
            "CLIENT_ERROR bad command line format\r\nEND\r\n",
        ),
        case(
            "negative flags",
            "set $c20 -1 0 1\r\nx\r\n",
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        case(
            "max flags",
            "set $c20c 4294967295 0 1\r\nx\r\nget $c20c\r\n",
            "STORED\r\nVALUE $c20c 4294967295 1\r\nx\r\nEND\r\n",
        ),
        case(
            "non-numeric flags",
            "set $c20d abc 0 1\r\nx\r\n",
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        case(
            "non-numeric exptime",
            "set $c20e 0 abc 1\r\nx\r\n",
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        case(
            "unknown 6th token ignored",
            "set $c20f 0 0 1 junk\r\nx\r\nget $c20f\r\n",
            "STORED\r\nVALUE $c20f 0 1\r\nx\r\nEND\r\n",
        ),
        case(
            "plus signs",
            "set $c20g +5 +0 +1\r\nx\r\nget $c20g\r\n",
            "STORED\r\nVALUE $c20g 5 1\r\nx\r\nEND\r\n",
        ),
        case(
            "too many tokens",
            "set $c24 0 0 1 noreply extra\r\nx\r\n",
            "ERROR\r\nERROR\r\n",
        ),
        case(
            "too few tokens",
            "set $c24b 0 0\r\nx\r\n",
            "ERROR\r\nERROR\r\n",
        ),
        case(
            "noreply hides client errors",
            "set $t6 0 0 1\r\nx\r\nset $t6 abc 0 1 noreply\r\nx\r\nset $t6 0 0 -1 noreply\r\nget $t6\r\n",
            "STORED\r\nERROR\r\nVALUE $t6 0 1\r\nx\r\nEND\r\n",
        ),
        case(
            "cas value out of range",
            "cas $t9 0 0 1 99999999999999999999\r\nx\r\n",
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        // --- keys
        case(
            "250-byte key",
            format!("set {k250} 0 0 1\r\nx\r\nget {k250}\r\n"),
            format!("STORED\r\nVALUE {k250} 0 1\r\nx\r\nEND\r\n"),
        ),
        case(
            "251-byte key on set",
            format!("set {k251} 0 0 1\r\nx\r\n"),
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        case(
            "251-byte key in get",
            format!("get a {k251} b\r\n"),
            "CLIENT_ERROR bad command line format\r\n",
        ),
        // memcached also discards replies still queued from the same read batch, so the set
        // goes in its own write.
        chunked(
            "long key drops earlier hits",
            &[
                b"set $c8 0 0 1\r\nx\r\n",
                format!("get $c8 {k251}\r\n").as_bytes(),
            ],
            "STORED\r\nCLIENT_ERROR bad command line format\r\n",
            false,
        ),
        case(
            "251-byte key on delete",
            format!("delete {k251}\r\n"),
            "CLIENT_ERROR bad command line format\r\n",
        ),
        case(
            "251-byte key on incr",
            format!("incr {k251} 1\r\n"),
            "CLIENT_ERROR bad command line format\r\n",
        ),
        case(
            "251-byte key on touch",
            format!("touch {k251} 1\r\n"),
            "CLIENT_ERROR bad command line format\r\n",
        ),
        case(
            "251-byte key on mg",
            format!("mg {k251} v\r\n"),
            "CLIENT_ERROR bad command line format\r\n",
        ),
        // --- too large: block swallowed; set/ms drop the old item, add/append keep it
        case(
            "too large set",
            format!(
                "set $t1 0 0 1\r\nx\r\nset $t1 0 0 {}\r\n{big}\r\nget $t1\r\n",
                big.len()
            ),
            "STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n",
        ),
        case(
            "too large set noreply",
            format!(
                "set $t2 0 0 1\r\nx\r\nset $t2 0 0 {} noreply\r\n{big}\r\nget $t2\r\n",
                big.len()
            ),
            "STORED\r\nEND\r\n",
        ),
        case(
            "too large add keeps item",
            format!(
                "set $t3 0 0 1\r\nx\r\nadd $t3 0 0 {}\r\n{big}\r\nget $t3\r\n",
                big.len()
            ),
            "STORED\r\nSERVER_ERROR object too large for cache\r\nVALUE $t3 0 1\r\nx\r\nEND\r\n",
        ),
        case(
            "too large append keeps item",
            format!(
                "set $t3b 0 0 1\r\nx\r\nappend $t3b 0 0 {}\r\n{big}\r\nget $t3b\r\n",
                big.len()
            ),
            "STORED\r\nSERVER_ERROR object too large for cache\r\nVALUE $t3b 0 1\r\nx\r\nEND\r\n",
        ),
        case(
            "too large ms",
            format!(
                "set $t3c 0 0 1\r\nx\r\nms $t3c {}\r\n{big}\r\nget $t3c\r\n",
                big.len()
            ),
            "STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n",
        ),
        case(
            "too large ms append drops item",
            format!(
                "set $t3d 0 0 1\r\nx\r\nms $t3d {} MA\r\n{big}\r\nget $t3d\r\n",
                big.len()
            ),
            "STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n",
        ),
        case(
            "too large ms is not quiet",
            format!(
                "set $t3e 0 0 1\r\nx\r\nms $t3e {} q O1 k\r\n{big}\r\n",
                big.len()
            ),
            "STORED\r\nSERVER_ERROR object too large for cache\r\n",
        ),
        case(
            "append past the limit",
            format!(
                "set $t4 0 0 600000\r\n{half_a}\r\nappend $t4 0 0 600000\r\n{half_b}\r\nget $t4\r\n"
            ),
            format!("STORED\r\nNOT_STORED\r\nVALUE $t4 0 600000\r\n{half_a}\r\nEND\r\n"),
        ),
        // --- add / replace / append / prepend / cas
        case(
            "append and prepend",
            "append $c22 0 0 1\r\nx\r\nprepend $c22 0 0 1\r\nx\r\nset $c22 5 0 1\r\nb\r\nappend $c22 9 0 1\r\nc\r\nprepend $c22 9 0 1\r\na\r\nget $c22\r\n",
            "NOT_STORED\r\nNOT_STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\nVALUE $c22 5 3\r\nabc\r\nEND\r\n",
        ),
        case(
            "add and replace",
            "add $c23 0 0 1\r\nx\r\nadd $c23 0 0 1\r\ny\r\nreplace $c23 0 0 1\r\nz\r\nreplace $c23x 0 0 1\r\nz\r\nget $c23\r\n",
            "STORED\r\nNOT_STORED\r\nSTORED\r\nNOT_STORED\r\nVALUE $c23 0 1\r\nz\r\nEND\r\n",
        ),
        case(
            "cas on a missing key",
            "cas $c10 0 0 1 5\r\nx\r\n",
            "NOT_FOUND\r\n",
        ),
        case(
            "cas with a bad unique",
            "cas $c10b 0 0 1 abc\r\nx\r\n",
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        case(
            "cas without unique",
            "cas $c10c 0 0 1\r\nx\r\n",
            "ERROR\r\nERROR\r\n",
        ),
        case("cas noreply", "cas $c10d 0 0 1 1 noreply\r\nx\r\n", ""),
        // --- expiry
        case(
            "negative exptime expires at once",
            "set $c21 0 -1 1\r\nx\r\nget $c21\r\n",
            "STORED\r\nEND\r\n",
        ),
        case(
            "30 days is relative, one more is absolute",
            "set $t10 0 2592000 1\r\nx\r\nset $t11 0 2592001 1\r\nx\r\nget $t10 $t11\r\n",
            "STORED\r\nSTORED\r\nVALUE $t10 0 1\r\nx\r\nEND\r\n",
        ),
        case(
            "touch -1 expires",
            "touch $t13 -1\r\nset $t13 0 0 1\r\nx\r\ntouch $t13 -1\r\nget $t13\r\n",
            "NOT_FOUND\r\nSTORED\r\nTOUCHED\r\nEND\r\n",
        ),
        // --- delete / incr / decr / touch / gat
        case(
            "delete forms",
            "delete $c11 0\r\ndelete $c11 1\r\ndelete $c11 noreply\r\ndelete $c11 0 noreply\r\ndelete $c11 x y\r\ndelete $c11 0 0\r\ndelete\r\ndelete a b c d\r\n",
            "NOT_FOUND\r\nCLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\nCLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\nCLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\nERROR\r\nERROR\r\n",
        ),
        case(
            "delete",
            "set $c11b 0 0 1\r\nx\r\ndelete $c11b\r\ndelete $c11b\r\n",
            "STORED\r\nDELETED\r\nNOT_FOUND\r\n",
        ),
        case(
            "incr errors",
            "incr $c9 1\r\nset $c9 0 0 2\r\nab\r\nincr $c9 1\r\nincr $c9 abc\r\nincr $c9 -1\r\nincr $c9\r\n",
            "NOT_FOUND\r\nSTORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nCLIENT_ERROR invalid numeric delta argument\r\nCLIENT_ERROR invalid numeric delta argument\r\nERROR\r\n",
        ),
        case(
            "incr wraps, decr floors at 0",
            "set $c9b 0 0 20\r\n18446744073709551615\r\nincr $c9b 2\r\nset $c9c 0 0 2\r\n10\r\ndecr $c9c 100\r\nincr $c9c 1000\r\nget $c9c\r\n",
            "STORED\r\n1\r\nSTORED\r\n0\r\n1000\r\nVALUE $c9c 0 4\r\n1000\r\nEND\r\n",
        ),
        case(
            "numeric value forms",
            "set $c9d 0 0 3\r\n12 \r\nincr $c9d 1\r\nset $c9e 0 0 4\r\n12ab\r\nincr $c9e 1\r\nset $c9f 0 0 3\r\n+12\r\nincr $c9f 1\r\nset $c9g 0 0 3\r\n 12\r\nincr $c9g 1\r\nset $c9h 0 0 0\r\n\r\nincr $c9h 1\r\nset $c9i 0 0 2\r\n-1\r\nincr $c9i 1\r\n",
            "STORED\r\n13\r\nSTORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nSTORED\r\n13\r\nSTORED\r\n13\r\nSTORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nSTORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        case(
            "incr noreply keeps flags",
            "set $c9j 7 0 1\r\n5\r\nincr $c9j 1 noreply\r\nincr $c9j abc noreply\r\nincr $nokey 1 noreply\r\nget $c9j\r\n",
            "STORED\r\nVALUE $c9j 7 1\r\n6\r\nEND\r\n",
        ),
        case(
            "delta bounds",
            "incr $c9k 18446744073709551616\r\nset $c9k 0 0 1\r\n1\r\nincr $c9k 18446744073709551616\r\nincr $c9k 18446744073709551615\r\n",
            "CLIENT_ERROR invalid numeric delta argument\r\nSTORED\r\nCLIENT_ERROR invalid numeric delta argument\r\n0\r\n",
        ),
        case(
            "touch forms",
            "touch $c12 10\r\nset $c12 0 0 1\r\nx\r\ntouch $c12 10\r\ntouch $c12 abc\r\ntouch $c12\r\ntouch $c12 1 noreply\r\ntouch $c12 1 2 3\r\n",
            "NOT_FOUND\r\nSTORED\r\nTOUCHED\r\nCLIENT_ERROR invalid exptime argument\r\nERROR\r\nERROR\r\n",
        ),
        case(
            "gat forms",
            "set $c13 3 0 1\r\nx\r\ngat 100 $c13 $zz $c13\r\ngat abc $c13\r\ngat 100\r\ngat\r\n",
            "STORED\r\nVALUE $c13 3 1\r\nx\r\nVALUE $c13 3 1\r\nx\r\nEND\r\nCLIENT_ERROR invalid exptime argument\r\nEND\r\nERROR\r\n",
        ),
        // --- other commands
        case(
            "flush_all errors",
            "flush_all abc\r\nflush_all 0 0 0\r\n",
            "CLIENT_ERROR invalid exptime argument\r\nERROR\r\n",
        ),
        case(
            "verbosity forms",
            "verbosity 1\r\nverbosity\r\nverbosity 1 noreply\r\nverbosity abc\r\nverbosity 1 2 3\r\nverbosity noreply\r\n",
            "OK\r\nERROR\r\nCLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        case("unknown stats group", "stats foo\r\n", "ERROR\r\n"),
        closing("quit", "quit\r\nversion\r\n", ""),
        closing("quit with arguments", "quit extra\r\n", ""),
        closing(
            "replies before quit are sent",
            "set $q 0 0 1\r\nx\r\nquit\r\nget $q\r\n",
            "STORED\r\n",
        ),
        // --- meta
        case("mg without key", "mg\r\n", "ERROR\r\n"),
        case("mg with blank key", "mg \r\n", "ERROR\r\n"),
        case("ms without key", "ms\r\n", "ERROR\r\n"),
        case(
            "ms without length",
            "ms $m1x\r\n",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        case("md without key", "md\r\n", "ERROR\r\n"),
        case("ma without key", "ma\r\n", "ERROR\r\n"),
        case(
            "me without key",
            "me\r\n",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        case("mn ignores arguments", "mn extra\r\n", "MN\r\n"),
        case(
            "mg return flags in request order",
            "ms $m1 2\r\nhi\r\nmg $m1 s v f t k O123 h\r\nmg $m1 h\r\n",
            "HD\r\nVA 2 s2 f0 t-1 k$m1 O123 h0\r\nhi\r\nHD h1\r\n",
        ),
        case(
            "base64 keys",
            "ms bTI= 2 F7 T100 k O9 b\r\nhi\r\nmg bTI= b k v\r\nmg m2 v\r\nmg bTI= k v\r\n",
            "HD kbTI= b O9\r\nVA 2 kbTI= b\r\nhi\r\nVA 2\r\nhi\r\nEN kbTI=\r\n",
        ),
        case(
            "bad base64 keys",
            "mg !!!! b v\r\nms !!!! 1 b\r\nx\r\nmg bTI b v\r\nms m2 2 F7 c k O9 b\r\nhi\r\n",
            "CLIENT_ERROR error decoding key\r\nCLIENT_ERROR error decoding key\r\nCLIENT_ERROR error decoding key\r\nCLIENT_ERROR error decoding key\r\n",
        ),
        case(
            "ms quiet and mode errors",
            "ms $m3 2 q\r\nhi\r\nms $m3 2 q ME\r\nhi\r\nms $m3 1 MX\r\nx\r\nms $m3 1 MEE\r\nx\r\n",
            "NS\r\nCLIENT_ERROR invalid mode for ms M token\r\nCLIENT_ERROR incorrect length for M token\r\n",
        ),
        case(
            "ms modes",
            "ms $m4 1 MR\r\nx\r\nms $m4 1 MA\r\nx\r\nms $m4 1 MP\r\nx\r\nms $m4 1 ME\r\nx\r\nms $m4 1 MA\r\nb\r\nms $m4 1 MP\r\na\r\nmg $m4 v\r\nms $m4 1 MS\r\nz\r\nmg $m4 v\r\n",
            "NS\r\nNS\r\nNS\r\nHD\r\nHD\r\nHD\r\nVA 3\r\naxb\r\nHD\r\nVA 1\r\nz\r\n",
        ),
        case(
            "ms quiet append and prepend",
            "set $z9 0 0 1\r\nx\r\nms $z9 1 MA q\r\ny\r\nms $z9 1 MP k c q\r\nw\r\nmg $z9 v\r\n",
            "STORED\r\nVA 3\r\nwxy\r\n",
        ),
        case("ms C on a missing key", "ms $m5 1 C123\r\nx\r\n", "NF\r\n"),
        case(
            "ms C mismatch returns c0",
            "ms $m6 1\r\nx\r\nms $m6 1 C1 c\r\ny\r\nms $m6 1 C1 q\r\ny\r\n",
            "HD\r\nEX c0\r\nEX\r\n",
        ),
        case(
            "ms errors swallow the block once the length is known",
            "ms $m7 abc\r\nx\r\nms $m7 -1\r\nx\r\nms $m7 1 Z\r\nx\r\nms $m7 1 c c\r\nx\r\nms $m7 1 Fabc\r\nx\r\nms $m7 1 Tabc\r\nx\r\nms $m7 1 C\r\nx\r\n",
            "CLIENT_ERROR bad command line format\r\nERROR\r\nCLIENT_ERROR bad command line format\r\nERROR\r\nCLIENT_ERROR invalid flag\r\nCLIENT_ERROR duplicate flag\r\nCLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad token in command line format\r\nCLIENT_ERROR bad token in command line format\r\n",
        ),
        case(
            "ms bad data chunk",
            "ms $m8 1\r\nab\r\nmg $m8 v\r\n",
            "CLIENT_ERROR bad data chunk\r\nERROR\r\nEN\r\n",
        ),
        case(
            "ms bad data chunk is not quiet",
            "ms $m8b 1 q\r\nab\r\n",
            "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        case(
            "ms T-1 expires at once",
            "ms $m20 2 T-1\r\nhi\r\nmg $m20 v\r\n",
            "HD\r\nEN\r\n",
        ),
        case(
            "ms I without C is a set",
            "ms $m21 2 I\r\nhi\r\nmg $m21 v\r\n",
            "HD\r\nVA 2\r\nhi\r\n",
        ),
        case(
            "mg quiet miss, vivify, win token",
            "mg $m9 v q\r\nmg $m9 v q k O1\r\nmg $m9 k O1 s\r\nmg $m9 v N30 s\r\nmg $m9 v N30 s\r\nmg $m9 v q\r\n",
            "EN k$m9 O1\r\nVA 0 s0 W\r\n\r\nVA 0 s0 Z\r\n\r\nVA 0 Z\r\n\r\n",
        ),
        case(
            "mg quiet hit is shown",
            "set $z12 0 0 1\r\nx\r\nmg $z12 k v q O5\r\n",
            "STORED\r\nVA 1 k$z12 O5\r\nx\r\n",
        ),
        case(
            "mg recache",
            "ms $m10 1 T100\r\nx\r\nmg $m10 R200 v\r\nmg $m10 R200 v\r\nmg $m10 R50 v\r\n",
            "HD\r\nVA 1 W\r\nx\r\nVA 1 Z\r\nx\r\nVA 1 Z\r\nx\r\n",
        ),
        case(
            "md invalidate, stale and win",
            "ms $m11 1\r\nx\r\nmd $m11 I T30\r\nmg $m11 v\r\nmg $m11 v\r\nms $m11 1\r\ny\r\nmg $m11 v\r\n",
            "HD\r\nHD\r\nVA 1 X W\r\nx\r\nVA 1 Z X\r\nx\r\nHD\r\nVA 1\r\ny\r\n",
        ),
        case(
            "mg vivify then set",
            "mg $m23 N30 v\r\nms $m23 2 T0\r\nhi\r\nmg $m23 v\r\n",
            "VA 0 W\r\n\r\nHD\r\nVA 2\r\nhi\r\n",
        ),
        case(
            "md quiet hides HD only",
            "ms $m12 1\r\nx\r\nmd $m12 q\r\nmd $m12 q\r\nmd $m12\r\nmd $m12 k O5\r\n",
            "HD\r\nNF\r\nNF\r\nNF k$m12 O5\r\n",
        ),
        case(
            "md quiet miss with flags",
            "md $zz11 q k O7\r\n",
            "NF k$zz11 O7\r\n",
        ),
        case(
            "md C mismatch and flag errors",
            "ms $m13 1\r\nx\r\nmd $m13 C1\r\nmd $m13 C1 q\r\nmd $m13 Z\r\n",
            "HD\r\nEX\r\nEX\r\nCLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        case(
            "ma",
            "ma $m14\r\nma $m14 q\r\nma $m14 N0 J10\r\nma $m14 v\r\nma $m14 v MD D100 t\r\nma $m14 MI D5 v k O1\r\nma $m14 q\r\nma $m14 M+ v\r\nma $m14 M- v\r\nma $m14 Mx\r\nma $m14 Dabc\r\nma $m14 Jabc\r\n",
            "NF\r\nNF\r\nHD\r\nVA 2\r\n11\r\nVA 1 t-1\r\n0\r\nVA 1 k$m14 O1\r\n5\r\nVA 1\r\n7\r\nVA 1\r\n6\r\nCLIENT_ERROR invalid mode for ma M token\r\nCLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        case(
            "ma on a non-number",
            "ms $m15 2\r\nab\r\nma $m15\r\nma $m15 q\r\nma $nokey15 q\r\n",
            "HD\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nNF\r\n",
        ),
        case(
            "ma vivify, T, C",
            "ma $m16 N100 J5 v\r\nma $m16 T0 v t\r\nma $m16 C1 v\r\n",
            "VA 1\r\n5\r\nVA 1 t-1\r\n6\r\nEX\r\n",
        ),
        case(
            "ma quiet hides the value too",
            "ms $z10 3\r\n100\r\nma $z10 q v\r\nma $z10 v\r\n",
            "HD\r\nVA 3\r\n102\r\n",
        ),
        case(
            "me miss and bad base64",
            "me $m17\r\nme m17 b\r\n",
            "EN\r\nCLIENT_ERROR bad command line format\r\n",
        ),
        case(
            "mg flag errors",
            "mg $m18 O123456789012345678901234567890123 v\r\nmg $m18 a b c d e f g h i j k l m n o p q r s\r\nmg $m18 v v\r\nmg $m18 Y\r\n",
            "CLIENT_ERROR opaque token too long\r\nCLIENT_ERROR options flags are too long\r\nCLIENT_ERROR duplicate flag\r\nCLIENT_ERROR invalid flag\r\n",
        ),
        case(
            "P and L are ignored",
            "mg $m19 P L v\r\nmg $m19 Pfoo Lbar\r\n",
            "EN\r\nEN\r\n",
        ),
        // --- cross-protocol: an HTTP request line closes at once, after earlier replies
        closing("HTTP GET closes", "GET / HTTP/1.0\r\nversion\r\n", ""),
        closing("HTTP PUT closes", "PUT /x HTTP/1.1\r\n", ""),
        closing("HTTP DELETE closes", "DELETE HTTP/1.1\r\n", ""),
        closing(
            "HTTP line after a get",
            "get $h1\r\nPOST / HTTP/1.1\r\nget $h1\r\n",
            "END\r\n",
        ),
        case(
            "GET without HTTP/ is an unknown command",
            "GET foo\r\n",
            "ERROR\r\n",
        ),
        case(
            "a known command ending in HTTP/ runs",
            "get $h2 HTTP/1.1\r\n",
            "END\r\n",
        ),
        case(
            "verbosity with a word",
            "verbosity x\r\nverbosity x noreply\r\n",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        // --- line length
        closing("2049 bytes without newline closes", "x".repeat(2049), ""),
        case(
            "2048 bytes then newline",
            cat(&["x".repeat(2048).as_bytes(), b"\r\n"]),
            "ERROR\r\n",
        ),
        closing(
            "long set line without newline closes",
            format!("set {}", "k".repeat(3000)),
            "",
        ),
        chunked(
            "long get line may wait for its newline",
            &[long_get.as_bytes(), b"\r\n"],
            "END\r\n",
            false,
        ),
        chunked(
            "long gat line closes",
            &[format!("gat 0 {}", "a ".repeat(1500)).as_bytes()],
            "",
            true,
        ),
        chunked(
            "long mg line closes",
            &[format!("mg {}", "a".repeat(3000)).as_bytes()],
            "",
            true,
        ),
        case(
            "long line with its newline is parsed",
            format!("foo {}\r\n", "x".repeat(5000)),
            "ERROR\r\n",
        ),
        case(
            "long set line with its newline",
            format!("set $ll 0 0 1 {}\r\nx\r\nget $ll\r\n", "x".repeat(5000)),
            "STORED\r\nVALUE $ll 0 1\r\nx\r\nEND\r\n",
        ),
    ]
}

/// A prefix unique to this run, so reruns against one server start from fresh keys.
fn run_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("r{}x{}_", std::process::id(), nanos % 1_000_000_000)
}

fn substitute(bytes: &[u8], prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b == b'$' {
            out.extend_from_slice(prefix);
        } else {
            out.push(b);
        }
    }
    out
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Reads until `want` bytes arrived, the peer closed (`true`), or the deadline passed.
fn read_reply(stream: &mut TcpStream, want: usize, until_close: bool) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + TIMEOUT;
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    while Instant::now() < deadline && (until_close || got.len() < want) {
        match stream.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (got, true),
        }
    }
    (got, false)
}

fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes).escape_debug().to_string();
    if text.len() > 600 {
        format!("{}...({} bytes)", &text[..600], bytes.len())
    } else {
        text
    }
}

fn run(addr: SocketAddr, prefix: &[u8], case: &Case) -> Result<(), String> {
    let mut stream = connect(addr);
    let mut expect = substitute(&case.expect, prefix);
    let count = case.send.len();
    for (i, chunk) in case.send.iter().enumerate() {
        let mut chunk = substitute(chunk, prefix);
        if i + 1 == count && !case.close {
            chunk.extend_from_slice(b"mn\r\n");
        }
        if stream.write_all(&chunk).is_err() && !case.close {
            return Err(format!("{}: write failed", case.name));
        }
        if i + 1 < count {
            thread::sleep(Duration::from_millis(50));
        }
    }
    if !case.close {
        expect.extend_from_slice(b"MN\r\n");
    }
    let (got, closed) = read_reply(&mut stream, expect.len(), case.close);
    let _ = stream.shutdown(Shutdown::Both);
    if got != expect {
        return Err(format!(
            "{}:\n  expected {}\n  got      {}",
            case.name,
            show(&expect),
            show(&got)
        ));
    }
    if case.close && !closed {
        return Err(format!("{}: connection was not closed", case.name));
    }
    Ok(())
}

#[test]
fn raw_cases_match_memcached() {
    let addr = start_server();
    let prefix = run_prefix();
    let failures: Vec<String> = cases()
        .iter()
        .filter_map(|c| run(addr, prefix.as_bytes(), c).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Sends `request` and reads one reply of at least `min` bytes ending in `end`.
fn exchange(stream: &mut TcpStream, request: &[u8], end: &[u8]) -> Vec<u8> {
    stream.write_all(request).expect("write");
    let deadline = Instant::now() + TIMEOUT;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(end) && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    got
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("utf-8 reply")
}

/// The last space-separated field of the first line (the CAS of a `gets` reply).
fn cas_of(reply: &str) -> u64 {
    let line = reply.lines().next().unwrap_or_default();
    line.rsplit(' ')
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no cas in {reply:?}"))
}

#[test]
fn cas_round_trip() {
    let mut s = connect(start_server());
    let key = format!("{}cas", run_prefix());
    assert_eq!(
        text(exchange(
            &mut s,
            format!("set {key} 3 0 1\r\nx\r\n").as_bytes(),
            b"\r\n"
        )),
        "STORED\r\n"
    );
    let first = text(exchange(
        &mut s,
        format!("gets {key}\r\n").as_bytes(),
        b"END\r\n",
    ));
    assert!(first.starts_with(&format!("VALUE {key} 3 1 ")), "{first}");
    let cas = cas_of(&first);
    let wrong = format!("cas {key} 0 0 1 {}\r\ny\r\n", cas + 1000);
    assert_eq!(
        text(exchange(&mut s, wrong.as_bytes(), b"\r\n")),
        "EXISTS\r\n"
    );
    let right = format!("cas {key} 4 0 1 {cas}\r\ny\r\n");
    assert_eq!(
        text(exchange(&mut s, right.as_bytes(), b"\r\n")),
        "STORED\r\n"
    );
    let again = format!("cas {key} 4 0 1 {cas}\r\nz\r\n");
    assert_eq!(
        text(exchange(&mut s, again.as_bytes(), b"\r\n")),
        "EXISTS\r\n"
    );
    let second = text(exchange(
        &mut s,
        format!("gets {key}\r\n").as_bytes(),
        b"END\r\n",
    ));
    assert!(second.starts_with(&format!("VALUE {key} 4 1 ")), "{second}");
    assert_ne!(cas_of(&second), cas);
    // mg c reports the same CAS as gets; ms c the CAS it stored.
    let mg = text(exchange(
        &mut s,
        format!("mg {key} c\r\n").as_bytes(),
        b"\r\n",
    ));
    assert_eq!(mg, format!("HD c{}\r\n", cas_of(&second)));
    let ms = text(exchange(
        &mut s,
        format!("ms {key} 1 c C{}\r\nw\r\n", cas_of(&second)).as_bytes(),
        b"\r\n",
    ));
    let stored: u64 = ms
        .trim_end()
        .strip_prefix("HD c")
        .and_then(|c| c.parse().ok())
        .expect("HD c<cas>");
    let mg = text(exchange(
        &mut s,
        format!("mg {key} c v\r\n").as_bytes(),
        b"w\r\n",
    ));
    assert_eq!(mg, format!("VA 1 c{stored}\r\nw\r\n"));
}

#[test]
fn ms_invalidate_with_an_older_cas_marks_stale() {
    let mut s = connect(start_server());
    let key = format!("{}stale", run_prefix());
    assert_eq!(
        text(exchange(
            &mut s,
            format!("ms {key} 2\r\nhi\r\n").as_bytes(),
            b"\r\n"
        )),
        "HD\r\n"
    );
    let mg = text(exchange(
        &mut s,
        format!("mg {key} c\r\n").as_bytes(),
        b"\r\n",
    ));
    let cas: u64 = mg
        .trim_end()
        .strip_prefix("HD c")
        .and_then(|c| c.parse().ok())
        .expect("HD c<cas>");
    let older = format!("ms {key} 2 I C{}\r\nyo\r\n", cas - 1);
    assert_eq!(text(exchange(&mut s, older.as_bytes(), b"\r\n")), "HD\r\n");
    assert_eq!(
        text(exchange(
            &mut s,
            format!("mg {key} v\r\n").as_bytes(),
            b"yo\r\n"
        )),
        "VA 2 X W\r\nyo\r\n"
    );
    assert_eq!(
        text(exchange(
            &mut s,
            format!("mg {key} v\r\n").as_bytes(),
            b"yo\r\n"
        )),
        "VA 2 Z X\r\nyo\r\n"
    );
}

/// memcached 1.6.18, checked by hand: an `ms I` with an older CAS over an item that was
/// invalidated and whose win token went out keeps the item stale with its old TTL and hands
/// out no second win token.
#[test]
fn ms_invalidate_keeps_the_ttl_and_the_win_token_already_sent() {
    let mut s = connect(start_server());
    let key = format!("{}stale2", run_prefix());
    let mut ask = |req: String, end: &[u8]| text(exchange(&mut s, req.as_bytes(), end));
    assert_eq!(ask(format!("ms {key} 2 T100\r\nhi\r\n"), b"\r\n"), "HD\r\n");
    assert_eq!(ask(format!("md {key} I\r\n"), b"\r\n"), "HD\r\n");
    let won = ask(format!("mg {key} v c\r\n"), b"hi\r\n");
    assert!(won.ends_with(" X W\r\nhi\r\n"), "{won}");
    let cas: u64 = won
        .split_whitespace()
        .find_map(|w| w.strip_prefix('c'))
        .and_then(|c| c.parse().ok())
        .expect("c<cas>");
    let older = format!("ms {key} 2 I C{} T0\r\nyo\r\n", cas - 1);
    assert_eq!(ask(older, b"\r\n"), "HD\r\n");
    for _ in 0..2 {
        let got = ask(format!("mg {key} v t\r\n"), b"yo\r\n");
        let ttl: u64 = got
            .split_whitespace()
            .find_map(|w| w.strip_prefix('t'))
            .and_then(|t| t.parse().ok())
            .expect("t<ttl>");
        assert!((98..=100).contains(&ttl), "{got}");
        assert!(got.ends_with(" Z X\r\nyo\r\n"), "{got}");
    }
}

#[test]
fn stats_block_shape() {
    let mut s = connect(start_server());
    let general = text(exchange(&mut s, b"stats\r\n", b"END\r\n"));
    for name in [
        "pid",
        "uptime",
        "time",
        "version",
        "pointer_size",
        "curr_connections",
        "total_connections",
        "cmd_get",
        "cmd_set",
        "cmd_flush",
        "cmd_touch",
        "get_hits",
        "get_misses",
        "get_expired",
        "delete_misses",
        "delete_hits",
        "incr_misses",
        "incr_hits",
        "decr_misses",
        "decr_hits",
        "cas_misses",
        "cas_hits",
        "cas_badval",
        "touch_hits",
        "touch_misses",
        "bytes_read",
        "bytes_written",
        "limit_maxbytes",
        "threads",
        "bytes",
        "curr_items",
        "total_items",
        "expired_unfetched",
        "evicted_unfetched",
        "evictions",
    ] {
        assert!(
            general.contains(&format!("\r\nSTAT {name} "))
                || general.starts_with(&format!("STAT {name} ")),
            "stats lacks {name}: {general}"
        );
    }
    assert!(
        general
            .lines()
            .all(|l| l.starts_with("STAT ") || l == "END"),
        "{general}"
    );
    let settings = text(exchange(&mut s, b"stats settings\r\n", b"END\r\n"));
    for line in [
        "STAT evictions on\r\n",
        "STAT cas_enabled yes\r\n",
        "STAT item_size_max 1048576\r\n",
    ] {
        assert!(
            settings.contains(line),
            "stats settings lacks {line:?}: {settings}"
        );
    }
    for name in ["maxbytes", "maxconns"] {
        assert!(
            settings.contains(&format!("STAT {name} ")),
            "stats settings lacks {name}"
        );
    }
}

#[test]
fn pipelined_requests_in_one_write() {
    let mut s = connect(start_server());
    let p = run_prefix();
    let mut request = Vec::new();
    let mut expect = String::new();
    for i in 0..200 {
        request.extend_from_slice(format!("set {p}p{i} {i} 0 1\r\n{}\r\n", i % 10).as_bytes());
        expect.push_str("STORED\r\n");
    }
    request.extend_from_slice(format!("get {p}p0 {p}p199 {p}missing {p}p7\r\n").as_bytes());
    expect.push_str(&format!(
        "VALUE {p}p0 0 1\r\n0\r\nVALUE {p}p199 199 1\r\n9\r\nVALUE {p}p7 7 1\r\n7\r\nEND\r\n"
    ));
    assert_eq!(text(exchange(&mut s, &request, b"END\r\n")), expect);
}
