//! Differential test: each command script in `tests/data/resp/` runs against a real
//! redis-server and against ringcache (three nodes, so multi-key commands cross nodes), and
//! every reply must be byte-identical (or, where marked, of the same shape). One test per
//! script, each against fresh servers; a new feature area adds its own script and one
//! `scripts!` line.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::frame::Frame;
use common::redis_server::RedisServer;
use common::{THREE_NODES, TestServer};
use ringcache::config::Limits;
use ringcache::proto::resp::frame::Decoder;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Compare {
    Bytes,
    Shape,
    Unordered,
}

/// A script's lines: (comparison, request bytes as multibulk, source line).
fn script(text: &str) -> Vec<(Compare, Vec<u8>, String)> {
    let limits = Limits::default();
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (mode, rest) = match line.split_at_checked(2) {
            Some(("~ ", r)) => (Compare::Shape, r),
            Some(("^ ", r)) => (Compare::Unordered, r),
            _ => (Compare::Bytes, line),
        };
        let inline = format!("{rest}\r\n");
        let mut d = Decoder::new();
        let n = d
            .decode(inline.as_bytes(), &limits)
            .expect("script line parses")
            .expect("complete");
        assert_eq!(n, inline.len());
        let args = d.args(inline.as_bytes());
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args.iter_from(0) {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        out.push((mode, req, line.to_string()));
    }
    out
}

struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends `req` and returns the raw bytes of one reply.
    fn call(&mut self, req: &[u8]) -> Vec<u8> {
        self.stream.write_all(req).expect("write");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((_, n)) = Frame::decode(&self.buf).expect("valid reply") {
                return self.buf.drain(..n).collect();
            }
            assert!(
                Instant::now() < deadline,
                "no reply to {:?}",
                String::from_utf8_lossy(req)
            );
            match self.read_some() {
                Ok(Some(0)) => panic!(
                    "closed before replying to {:?}",
                    String::from_utf8_lossy(req)
                ),
                Ok(_) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }
}

impl Client {
    /// Appends what arrives within the read timeout to `buf`: Some(bytes read), Some(0) once
    /// the peer closed, None if nothing came.
    fn read_some(&mut self) -> std::io::Result<Option<usize>> {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(Some(n))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// True if the peer closes the connection within 10 s without sending another byte.
    fn closed(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.buf.is_empty() && Instant::now() < deadline {
            match self.read_some() {
                Ok(Some(0)) | Err(_) => return true,
                Ok(_) => {}
            }
        }
        false
    }
}

fn shape(f: &Frame) -> String {
    match f {
        Frame::Array(v) => format!("array[{}]", v.len()),
        Frame::Set(v) => format!("set[{}]", v.len()),
        Frame::Map(v) => format!("map[{}]", v.len()),
        Frame::Push(v) => format!("push[{}]", v.len()),
        Frame::Simple(_) => "simple".into(),
        Frame::Error(_) => "error".into(),
        Frame::Integer(_) => "integer".into(),
        Frame::Bulk(_) => "bulk".into(),
        Frame::Null => "null".into(),
        Frame::Double(_) => "double".into(),
        Frame::Boolean(_) => "bool".into(),
        Frame::BigNumber(_) => "bignum".into(),
        Frame::Verbatim(..) => "verbatim".into(),
    }
}

fn sorted(f: Frame) -> Frame {
    match f {
        Frame::Array(mut v) => {
            v.sort_by_key(|x| format!("{x:?}"));
            Frame::Array(v)
        }
        other => other,
    }
}

/// One test per script: its name and its file under `tests/data/resp/`.
macro_rules! scripts {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $name() {
                replies_match_redis_server(include_str!(concat!("data/resp/", $file)));
            }
        )*
        /// Every script's line count, for the total the suite reports.
        #[test]
        fn scripts_are_not_empty() {
            $(
                let n = script(include_str!(concat!("data/resp/", $file))).len();
                assert!(n >= 50, "{} has {n} commands", $file);
            )*
        }
    };
}

scripts! {
    core_commands_match_redis_server_byte_for_byte => "core.txt",
    bitmaps_match_redis_server_byte_for_byte => "bitmaps.txt",
    introspection_matches_redis_server_byte_for_byte => "introspection.txt",
    lcs_and_zintercard_match_redis_server_byte_for_byte => "lcs_zintercard.txt",
    sort_matches_redis_server_byte_for_byte => "sort.txt",
    pubsub_matches_redis_server_byte_for_byte => "pubsub.txt",
    scripting_matches_redis_server_byte_for_byte => "scripting.txt",
    hyperloglog_matches_redis_server_byte_for_byte => "hll.txt",
    geo_matches_redis_server_byte_for_byte => "geo.txt",
    streams_match_redis_server_byte_for_byte => "streams.txt",
}

/// Runs `text` against redis-server and ringcache; every reply must match. A script ends with
/// QUIT: both servers close the connection after its +OK, with nothing else sent.
fn replies_match_redis_server(text: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = TestServer::start(THREE_NODES);
    let script = script(text);
    let mut want = Client::connect(redis.addr);
    let mut got = Client::connect(server.resp);
    let mut failures = Vec::new();
    for (mode, req, line) in &script {
        let a = want.call(req);
        let b = got.call(req);
        let ok = match mode {
            Compare::Bytes => a == b,
            Compare::Shape | Compare::Unordered => {
                let fa = Frame::decode(&a).expect("frame").expect("complete").0;
                let fb = Frame::decode(&b).expect("frame").expect("complete").0;
                if *mode == Compare::Shape {
                    shape(&fa) == shape(&fb)
                } else {
                    sorted(fa) == sorted(fb)
                }
            }
        };
        if !ok {
            failures.push(format!(
                "{line}\n  redis:     {:?}\n  ringcache: {:?}",
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} replies differ:\n{}",
        failures.len(),
        script.len(),
        failures.join("\n")
    );
    assert!(script.last().is_some_and(|(_, _, line)| line == "QUIT"));
    assert!(
        want.closed(),
        "redis-server kept the connection open after QUIT"
    );
    assert!(
        got.closed(),
        "ringcache kept the connection open after QUIT"
    );
}
