//! A real redis-server (Debian package `redis-server`) on a free loopback port, killed on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server child process.
pub struct RedisServer {
    /// Its address.
    pub addr: SocketAddr,
    child: Child,
}

impl RedisServer {
    /// Starts redis-server without persistence on a free port; None if the binary is missing
    /// and the test is not under CI (`common::tool`).
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(&[])
    }

    /// Like [`RedisServer::start`], with more arguments (e.g. `--dir`, `--dbfilename`).
    pub fn start_with(extra: &[&str]) -> Option<RedisServer> {
        if !super::tool("redis-server", "redis-server") {
            return None;
        }
        for _ in 0..10 {
            // redis-server has no `--port 0`: take a free port from the kernel, release it and
            // hope nobody takes it before redis binds it (retried otherwise).
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let mut server = RedisServer {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                child,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                if TcpStream::connect(server.addr).is_ok() {
                    return Some(server);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server did not start");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
