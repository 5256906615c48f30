//! Test helpers: a real server on loopback port 0, run on its own runtime thread, and small
//! raw-socket utilities. No fixed ports and no sleeps as synchronisation.

#![allow(dead_code)]

pub mod frame;
pub mod memcached;
pub mod redis_server;

/// Whether the external program `tool` (from Debian package `package`) is on the PATH. The
/// one rule for real peers a test needs: under CI (`CI` set, as `.ci/run` does) a missing tool
/// fails the test; run locally, the test says loudly what it skips and passes.
pub fn tool(tool: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .any(|dir| std::fs::metadata(dir.join(tool)).is_ok_and(|m| m.is_file()))
    });
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is not installed (Debian package {package}); .ci/run installs it"
        );
        eprintln!(
            "\n*** SKIPPED: {tool} is not installed (Debian package {package}); this test checked \
             nothing ***\n"
        );
    }
    found
}

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringcache::app::App;
use ringcache::config::Config;
use ringcache::server::Shared;
use ringcache::store::Clock;

/// Every listener on a free loopback port.
const LISTEN: &str = "[listen]\nmemcache = \"127.0.0.1:0\"\nresp = \"127.0.0.1:0\"\nany = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\n";

/// Two nodes of 64 MiB: the default test topology.
/// Three nodes of 64 MiB (multi-key commands and scripts cross nodes).
pub const THREE_NODES: &str = r#"
[[nodes]]
name = "cache-a"
max_memory = "64MiB"

[[nodes]]
name = "cache-b"
max_memory = "64MiB"

[[nodes]]
name = "cache-c"
max_memory = "64MiB"
"#;

pub const TWO_NODES: &str = r#"
[[nodes]]
name = "cache-a"
max_memory = "64MiB"

[[nodes]]
name = "cache-b"
max_memory = "64MiB"
"#;

/// A server running in this process, stopped (gracefully) on drop.
pub struct TestServer {
    /// Bound memcached address.
    pub memcache: SocketAddr,
    /// Bound RESP address.
    pub resp: SocketAddr,
    /// Bound combined (first byte decides) address.
    pub any: SocketAddr,
    /// Bound metrics address.
    pub metrics: SocketAddr,
    /// The server's shared state, for white-box assertions.
    pub shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server whose config is `body` (`[ring]`, `[limits]`, `[[nodes]]`), with every
    /// listener on 127.0.0.1:0.
    pub fn start(body: &str) -> TestServer {
        TestServer::start_with_clock(body, Clock::real())
    }

    /// Like [`TestServer::start`] with a chosen (e.g. mock) clock.
    pub fn start_with_clock(body: &str, clock: Clock) -> TestServer {
        let text = format!("{LISTEN}{body}");
        let config = Config::from_toml_str(&text, Path::new("test.toml")).expect("test config");
        TestServer::run(config, clock, None)
    }

    /// Starts a server on the config FILE at `path` (see [`ConfigFile`]) and watches it for
    /// changes, as the binary does.
    pub fn start_file(path: &Path) -> TestServer {
        let config = Config::load(path).expect("test config");
        TestServer::run(config, Clock::real(), Some(path.to_path_buf()))
    }

    fn run(config: Config, clock: Clock, watch: Option<std::path::PathBuf>) -> TestServer {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                // As the binary's runtime (main.rs): Lua scripts need the deeper stack.
                .thread_stack_size(8 << 20)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let app = App::start_with_clock(config.clone(), clock)
                    .await
                    .expect("start");
                if let Some(path) = watch {
                    app.watch_config(path, config);
                }
                ready_tx
                    .send((
                        app.memcache.expect("memcache addr"),
                        app.resp.expect("resp addr"),
                        app.any.expect("any addr"),
                        app.metrics.expect("metrics addr"),
                        Arc::clone(&app.shared),
                    ))
                    .expect("ready");
                let _ = stop_rx.await;
                app.shutdown().await;
            });
        });
        let (memcache, resp, any, metrics, shared) = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not start");
        TestServer {
            memcache,
            resp,
            any,
            metrics,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `GET path` on the metrics listener; returns the body of a 200 answer.
    pub fn http_get(&self, path: &str) -> String {
        let (status, body) = http_get(self.metrics, path);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Waits (up to 30 s) until the ring generation is at least `generation`.
    pub fn wait_generation(&self, generation: u64) {
        assert!(
            eventually(Duration::from_secs(30), || self
                .shared
                .topology
                .load()
                .generation
                >= generation),
            "generation {generation} was not reached (at {})",
            self.shared.topology.load().generation
        );
    }

    /// Waits (up to 60 s) until no migration runs.
    pub fn wait_settled(&self) {
        assert!(
            eventually(Duration::from_secs(60), || !self
                .shared
                .topology
                .load()
                .is_migrating()),
            "migration did not finish"
        );
    }

    /// A raw connection to the memcached listener.
    pub fn raw(&self) -> Raw {
        Raw::connect(self.memcache)
    }

    /// A raw connection to the RESP listener.
    pub fn raw_resp(&self) -> Raw {
        Raw::connect(self.resp)
    }

    /// A `redis` crate connection (RESP2) to the RESP listener.
    pub fn redis(&self) -> redis::Connection {
        self.redis_with(redis::ProtocolVersion::RESP2)
    }

    /// A `redis` crate connection speaking `protocol` to the RESP listener.
    pub fn redis_with(&self, protocol: redis::ProtocolVersion) -> redis::Connection {
        let query = match protocol {
            redis::ProtocolVersion::RESP2 => "",
            _ => "?protocol=resp3",
        };
        let info = format!("redis://{}/{query}", self.resp);
        let client = redis::Client::open(info.as_str()).expect("redis client");
        let conn = client
            .get_connection_with_timeout(Duration::from_secs(10))
            .expect("redis connection");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        conn
    }

    /// A `memcache` crate client (text protocol) connected to this server.
    pub fn client(&self) -> memcache::Client {
        memcache::Client::connect(format!(
            "memcache://{}?timeout=10&protocol=ascii",
            self.memcache
        ))
        .expect("memcache client")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A raw TCP connection with deadline-bounded reads.
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads until the received bytes end with `suffix` (within 10 s) and returns them all.
    pub fn read_until(&mut self, suffix: &[u8]) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.buf.ends_with(suffix) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {:?}; got {:?}",
                String::from_utf8_lossy(suffix),
                String::from_utf8_lossy(&self.buf)
            );
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!(
                    "connection closed; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        std::mem::take(&mut self.buf)
    }

    /// Sends `request` and expects exactly `reply` back.
    pub fn roundtrip(&mut self, request: &[u8], reply: &[u8]) {
        self.send(request);
        let got = self.read_until(reply);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(reply),
            "request {:?}",
            String::from_utf8_lossy(request)
        );
    }

    /// Waits (up to 10 s) for the server to close the connection; returns what it sent first.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "connection was not closed");
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return std::mem::take(&mut self.buf),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return std::mem::take(&mut self.buf),
            }
        }
    }
}

/// `GET path` over HTTP/1.0 to `addr`; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// A config file in its own temporary directory, rewritten the way editors and `mv` do: the
/// new content goes to a temporary file in the same directory, which is renamed over the file.
pub struct ConfigFile {
    dir: PathBuf,
    /// The config file.
    pub path: PathBuf,
}

impl ConfigFile {
    /// Creates the file with `[listen]` on port 0 (every listener) followed by `body`.
    pub fn new(body: &str) -> ConfigFile {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringcache-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = ConfigFile {
            path: dir.join("ringcache.toml"),
            dir,
        };
        file.write(body);
        file
    }

    /// The file's own temporary directory (for files the config names, such as TLS keys).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces the file's content with the listeners plus `body` (write, then rename over).
    pub fn write(&self, body: &str) {
        self.write_raw(&format!("{LISTEN}{body}"));
    }

    /// Replaces the file's content with exactly `text` (write, then rename over).
    pub fn write_raw(&self, text: &str) {
        let tmp = self.dir.join(".ringcache.toml.tmp");
        std::fs::write(&tmp, text).expect("write temp config");
        std::fs::rename(&tmp, &self.path).expect("rename config");
    }

    /// Deletes the file.
    pub fn remove(&self) {
        std::fs::remove_file(&self.path).expect("remove config");
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until `n` (client, key) registrations are blocked in `server`.
pub fn wait_blocked(server: &TestServer, n: usize) {
    assert!(
        eventually(Duration::from_secs(10), || server.shared.waiters.len() == n),
        "expected {n} blocked, have {}",
        server.shared.waiters.len()
    );
}
