//! A real memcached (Debian package `memcached`) on a free loopback port, killed on drop; it
//! can be killed (SIGKILL) and started again on the same port.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running memcached child process.
pub struct Memcached {
    /// Its address.
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl Memcached {
    /// Starts memcached (64 MiB, 2 threads) on a free port; None if the binary is missing and
    /// the test is not under CI (`common::tool`).
    pub fn start() -> Option<Memcached> {
        if !super::tool("memcached", "memcached") {
            return None;
        }
        for _ in 0..10 {
            // memcached has no `-p 0` report: take a free port, release it, retry if taken.
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut m = Memcached {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                child: None,
            };
            if m.spawn() {
                return Some(m);
            }
        }
        panic!("memcached did not start");
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("memcached")
            .args(["-l", "127.0.0.1", "-p", &self.addr.port().to_string()])
            .args(["-U", "0", "-m", "64", "-t", "2", "-u", "root"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn memcached");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return false;
            }
            if TcpStream::connect(self.addr).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGKILL: the process dies at once, with its data.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again (empty) on the same port.
    pub fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "memcached did not restart on {}", self.addr);
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.kill();
    }
}
