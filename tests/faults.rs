//! Graceful behaviour under faults, against the built binary: SIGTERM in the middle of load
//! exits 0 within a bound with every reply sent whole, and running out of file descriptors on
//! accept backs off (little CPU) and recovers once descriptors are free again.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::{Raw, eventually};

const CONFIG: &str = r#"
[listen]
memcache = "127.0.0.1:0"
resp = "127.0.0.1:0"
metrics = "127.0.0.1:0"

[[nodes]]
name = "a"
max_memory = "16MiB"
"#;

fn temp_config(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringcache-faults-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("ringcache.toml");
    std::fs::write(&path, CONFIG).expect("write config");
    path
}

/// Starts the binary through `sh -c` (so that `prefix` can set limits), returns it with its
/// memcached and RESP addresses and a channel of its stderr lines.
fn start(name: &str, prefix: &str) -> (Child, SocketAddr, SocketAddr, mpsc::Receiver<String>) {
    let config = temp_config(name);
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{prefix} exec '{}' --config '{}'",
            env!("CARGO_BIN_EXE_ringcache"),
            config.display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringcache");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (err_tx, err_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("ready line");
    assert!(line.starts_with("ringcache ready "), "{line}");
    let addr = |key: &str| -> SocketAddr {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{key} missing in {line:?}"))
    };
    let (mc, resp) = (addr("memcache="), addr("resp="));
    (child, mc, resp, err_rx)
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// CPU time (user + system) of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[test]
fn sigterm_during_load_answers_whole_replies_and_exits_0() {
    let (mut child, mc, _, _stderr) = start("sigterm", "");
    let batches = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let batches = Arc::clone(&batches);
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(mc).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(20)))
                    .expect("timeout");
                let mut batch = Vec::new();
                for i in 0..50 {
                    batch.extend_from_slice(
                        format!("set k{c}-{i} 0 0 10\r\n0123456789\r\n").as_bytes(),
                    );
                }
                let mut got = Vec::new();
                let mut sent = 0usize;
                loop {
                    if s.write_all(&batch).is_err() {
                        break;
                    }
                    sent += 50;
                    let mut chunk = [0u8; 4096];
                    let want = sent * b"STORED\r\n".len();
                    let mut closed = false;
                    while got.len() < want {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => {
                                closed = true;
                                break;
                            }
                            Ok(n) => got.extend_from_slice(&chunk[..n]),
                        }
                    }
                    if closed {
                        break;
                    }
                    batches.fetch_add(1, Ordering::Relaxed);
                }
                // Whatever was answered was answered whole.
                assert_eq!(got.len() % 8, 0, "torn reply");
                assert!(
                    got.chunks(8).all(|r| r == b"STORED\r\n"),
                    "unexpected reply"
                );
            })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(30), || batches.load(Ordering::Relaxed)
            >= 80),
        "no load"
    );
    let asked = Instant::now();
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0), "{status:?}");
    for c in clients {
        c.join().expect("client saw a bad reply");
    }
    eprintln!("SIGTERM under load: exited 0 after {took:?}");
}

#[test]
fn accept_backs_off_when_out_of_file_descriptors() {
    let (mut child, mc, _, stderr) = start("emfile", "ulimit -n 48 &&");
    let pid = child.id();
    // More connections than descriptors: the kernel completes them, accept() gets EMFILE.
    let mut held: Vec<TcpStream> = (0..80)
        .map(|_| TcpStream::connect(mc).expect("connect"))
        .collect();
    let warned = eventually(Duration::from_secs(10), || {
        stderr.try_iter().any(|l| l.contains("accept failed"))
    });
    assert!(warned, "the server never ran out of descriptors");
    let before = cpu_ticks(pid);
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(1000));
    let ticks = cpu_ticks(pid) - before;
    let elapsed = start.elapsed().as_secs_f64();
    eprintln!("EMFILE: {ticks} ticks of CPU in {elapsed:.2}s");
    // A spinning accept loop burns ~100 ticks per second per core.
    assert!(
        ticks < 30,
        "accept loop spins: {ticks} ticks in {elapsed:.2}s"
    );

    // Free the descriptors: the server serves again.
    held.clear();
    let mut ok = false;
    for _ in 0..10 {
        let mut r = Raw::connect(mc);
        r.send(b"version\r\n");
        let mut buf = [0u8; 64];
        r.stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        if let Ok(n) = r.stream.read(&mut buf)
            && buf[..n].starts_with(b"VERSION ")
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "the server did not recover");
    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).code(),
        Some(0)
    );
}
