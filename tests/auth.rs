//! Access control over real sockets: RESP AUTH / HELLO AUTH with a password and named users
//! (read/write/admin categories), memcached 1.6 text authentication, per-listener CIDR
//! allow-lists, and passwords kept out of INFO, CONFIG and metrics.

mod common;

use std::time::Duration;

use common::{TWO_NODES, TestServer};
use ringcache::server::Stats;

const PASSWORD: &str = "s3cret-default-pw";

fn auth_config() -> String {
    format!(
        r#"[auth]
password = "{PASSWORD}"

[[auth.users]]
name = "reader"
password = "reader-pw-123"
categories = ["read"]

[[auth.users]]
name = "writer"
password = "writer-pw-456"
categories = ["read", "write"]
{TWO_NODES}"#
    )
}

fn redis_url(server: &TestServer, userinfo: &str, resp3: bool) -> redis::Connection {
    let query = if resp3 { "?protocol=resp3" } else { "" };
    let client =
        redis::Client::open(format!("redis://{userinfo}@{}/{query}", server.resp)).expect("client");
    client
        .get_connection_with_timeout(Duration::from_secs(10))
        .expect("connection")
}

#[test]
fn resp_requires_auth_and_enforces_categories() {
    let server = TestServer::start(&auth_config());
    let mut raw = server.raw_resp();
    raw.roundtrip(b"PING\r\n", b"-NOAUTH Authentication required.\r\n");
    raw.roundtrip(b"GET k\r\n", b"-NOAUTH Authentication required.\r\n");
    raw.roundtrip(
        b"HELLO 3\r\n",
        b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n",
    );
    raw.roundtrip(
        b"AUTH wrong\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    raw.roundtrip(
        b"AUTH reader wrong\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    raw.roundtrip(format!("AUTH {PASSWORD}\r\n").as_bytes(), b"+OK\r\n");
    raw.roundtrip(b"SET k v\r\n", b"+OK\r\n");
    raw.roundtrip(b"GET k\r\n", b"$1\r\nv\r\n");

    // The redis crate authenticates from the URL (default user, then named users).
    let mut c = redis_url(&server, &format!("default:{PASSWORD}"), false);
    let v: String = redis::cmd("GET").arg("k").query(&mut c).expect("get");
    assert_eq!(v, "v");
    let () = redis::cmd("FLUSHALL")
        .query(&mut c)
        .expect("admin may flush");

    let mut reader = redis_url(&server, "reader:reader-pw-123", false);
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut c)
        .expect("set");
    let v: String = redis::cmd("GET").arg("k").query(&mut reader).expect("read");
    assert_eq!(v, "v");
    let err = redis::cmd("SET")
        .arg("k")
        .arg("w")
        .query::<()>(&mut reader)
        .expect_err("reader may not write");
    assert_eq!(err.code(), Some("NOPERM"), "{err}");

    let mut writer = redis_url(&server, "writer:writer-pw-456", true);
    let () = redis::cmd("SET")
        .arg("k")
        .arg("w")
        .query(&mut writer)
        .expect("writer writes");
    let err = redis::cmd("FLUSHALL")
        .query::<()>(&mut writer)
        .expect_err("writer is no admin");
    assert_eq!(err.code(), Some("NOPERM"), "{err}");

    // HELLO with AUTH logs in and switches protocol in one step.
    let mut raw = server.raw_resp();
    raw.send(b"HELLO 3 AUTH writer writer-pw-456\r\n");
    let hello = raw.read_until(b"modules\r\n*0\r\n");
    assert!(
        hello.starts_with(b"%7\r\n"),
        "{}",
        String::from_utf8_lossy(&hello)
    );
    raw.roundtrip(b"GET k\r\n", b"$1\r\nw\r\n");
    raw.roundtrip(
        b"FLUSHDB\r\n",
        b"-NOPERM this user has no permissions to run the 'flushdb' command\r\n",
    );

    assert_eq!(Stats::get(&server.shared.stats.auth_errors), 2);
    assert!(Stats::get(&server.shared.stats.auth_ok) >= 5);
}

#[test]
fn memcached_text_auth_as_memcached_1_6() {
    let server = TestServer::start(&auth_config());
    let mut mc = server.raw();
    mc.roundtrip(b"get k\r\n", b"CLIENT_ERROR unauthenticated\r\n");
    mc.roundtrip(b"version\r\n", b"CLIENT_ERROR unauthenticated\r\n");
    mc.roundtrip(
        b"set auth 0 0 13\r\ndefault wrong\r\n",
        b"CLIENT_ERROR authentication failure\r\n",
    );
    mc.roundtrip(
        b"set auth 0 0 7\r\nnospace\r\n",
        b"CLIENT_ERROR bad authentication token format\r\n",
    );
    let token = format!("default {PASSWORD}");
    mc.roundtrip(
        format!("set auth 0 0 {}\r\n{token}\r\n", token.len()).as_bytes(),
        b"STORED\r\n",
    );
    mc.roundtrip(b"set k 0 0 1\r\nv\r\n", b"STORED\r\n");
    mc.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
    mc.roundtrip(b"flush_all\r\n", b"OK\r\n");

    // A named user gets only its categories.
    let mut reader = server.raw();
    let token = "reader reader-pw-123";
    // Login pipelined with the first commands, as a client library sends them.
    reader.send(
        format!(
            "set a 0 0 {}\r\n{token}\r\nset k 0 0 1\r\nx\r\nget k\r\nflush_all\r\n",
            token.len()
        )
        .as_bytes(),
    );
    let got = reader
        .read_until(b"CLIENT_ERROR permission denied\r\nEND\r\nCLIENT_ERROR permission denied\r\n");
    assert!(
        got.starts_with(b"STORED\r\n"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    // The any port authenticates memcached clients the same way.
    let mut any = common::Raw::connect(server.any);
    any.roundtrip(b"get k\r\n", b"CLIENT_ERROR unauthenticated\r\n");
    // A junk line without newline past 2048 bytes closes, as in memcached.
    any.send(&[b'x'; 3000]);
    assert_eq!(any.read_to_close(), b"");
}

#[test]
fn passwords_never_appear_in_info_config_or_metrics() {
    let server = TestServer::start(&auth_config());
    let mut raw = server.raw_resp();
    raw.roundtrip(format!("AUTH {PASSWORD}\r\n").as_bytes(), b"+OK\r\n");
    raw.roundtrip(
        b"AUTH reader nope\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    let mut c = redis_url(&server, &format!("default:{PASSWORD}"), false);
    let info: String = redis::cmd("INFO")
        .arg("everything")
        .query(&mut c)
        .expect("info");
    let config: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("*")
        .query(&mut c)
        .expect("config");
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut c)
        .expect("client list");
    let scrape = server.http_get("/metrics");
    let ring = server.http_get("/ring");
    for (what, text) in [
        ("INFO", info),
        ("CONFIG GET *", config.join("\n")),
        ("CLIENT LIST", clients),
        ("/metrics", scrape.clone()),
        ("/ring", ring),
    ] {
        for secret in [PASSWORD, "reader-pw-123", "writer-pw-456", "nope"] {
            assert!(!text.contains(secret), "{what} shows a password");
        }
    }
    assert!(
        scrape.contains("ringcache_auth_total{result=\"error\"} 1"),
        "{scrape}"
    );
}

#[test]
fn allow_lists_close_other_peers_on_accept() {
    let server = TestServer::start(&format!(
        "[listen.allow]\nresp = [\"10.0.0.0/8\"]\nmemcache = [\"127.0.0.1/32\", \"::1\"]\n{TWO_NODES}"
    ));
    // 127.0.0.1 is not in 10.0.0.0/8: closed before a byte is exchanged.
    let mut refused = server.raw_resp();
    assert_eq!(refused.read_to_close(), b"");
    server
        .raw()
        .roundtrip(b"set k 0 0 1\r\nv\r\n", b"STORED\r\n");
    // No list on the any port: everyone.
    common::Raw::connect(server.any).roundtrip(b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n");
    assert_eq!(Stats::get(&server.shared.stats.rejected_not_allowed), 1);
    let scrape = server.http_get("/metrics");
    assert!(
        scrape.contains("ringcache_connections_rejected_total{reason=\"not_allowed\"} 1"),
        "{scrape}"
    );
}
