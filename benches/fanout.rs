//! PUBLISH fan-out: N subscribers on one channel, publishers pipelining PUBLISH for a while;
//! reports messages published and delivered per second. Runs against any RESP server
//! (ringcache or redis-server), so the two can be compared in the same run:
//!
//! ```text
//! cargo bench --bench fanout -- --addr 127.0.0.1:6379 [--subscribers 50] [--publishers 1]
//!     [--pipeline 16] [--payload 64] [--duration 5s]
//! ```
//!
//! Owns nothing of the server; plain threads and blocking sockets, so the client side is
//! simple and the same for every server measured.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Options {
    addr: SocketAddr,
    subscribers: usize,
    publishers: usize,
    pipeline: usize,
    payload: usize,
    duration: Duration,
}

fn options() -> Options {
    let mut o = Options {
        addr: "127.0.0.1:6379".parse().expect("addr"),
        subscribers: 50,
        publishers: 1,
        pipeline: 16,
        payload: 64,
        duration: Duration::from_secs(5),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--addr" => o.addr = value.parse().expect("--addr HOST:PORT"),
            "--subscribers" => o.subscribers = value.parse().expect("--subscribers N"),
            "--publishers" => o.publishers = value.parse().expect("--publishers N"),
            "--pipeline" => o.pipeline = value.parse().expect("--pipeline N"),
            "--payload" => o.payload = value.parse().expect("--payload BYTES"),
            "--duration" => {
                let secs = value.trim_end_matches('s');
                o.duration = Duration::from_secs_f64(secs.parse().expect("--duration 5s"));
            }
            // `cargo bench` passes --bench; ignore what is not ours.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    req
}

fn main() {
    let o = options();
    let payload = vec![b'x'; o.payload];
    let message_len = command(&[b"message", b"bench", &payload]).len() as u64;
    let delivered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..o.subscribers {
        let mut s = TcpStream::connect(o.addr).expect("connect");
        s.write_all(&command(&[b"SUBSCRIBE", b"bench"]))
            .expect("subscribe");
        let mut skip = vec![0u8; b"*3\r\n$9\r\nsubscribe\r\n$5\r\nbench\r\n:1\r\n".len()];
        s.read_exact(&mut skip).expect("confirmation");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let delivered = Arc::clone(&delivered);
        let stop = Arc::clone(&stop);
        readers.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut bytes = 0u64;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let before = bytes / message_len;
                        bytes += n as u64;
                        delivered.fetch_add(bytes / message_len - before, Ordering::Relaxed);
                    }
                    Err(_) if stop.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
        }));
    }
    let published = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let publishers: Vec<_> = (0..o.publishers)
        .map(|_| {
            let mut s = TcpStream::connect(o.addr).expect("connect");
            s.set_nodelay(true).expect("nodelay");
            let batch = command(&[b"PUBLISH", b"bench", &payload]).repeat(o.pipeline);
            let published = Arc::clone(&published);
            let (duration, pipeline) = (o.duration, o.pipeline);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while started.elapsed() < duration {
                    s.write_all(&batch).expect("publish");
                    // Each reply is one integer line: count line ends.
                    let mut lines = 0;
                    while lines < pipeline {
                        let n = s.read(&mut buf).expect("reply");
                        assert!(n > 0, "closed");
                        lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
                    }
                    published.fetch_add(pipeline as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().expect("publisher");
    }
    let publish_time = started.elapsed();
    let published = published.load(Ordering::Relaxed);
    let want = published * o.subscribers as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let drain_time = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let got = delivered.load(Ordering::Relaxed);
    println!(
        "{{\"addr\":\"{}\",\"subscribers\":{},\"publishers\":{},\"pipeline\":{},\"payload\":{},\"published\":{},\"published_per_sec\":{:.0},\"delivered\":{},\"delivered_per_sec\":{:.0},\"all_delivered\":{}}}",
        o.addr,
        o.subscribers,
        o.publishers,
        o.pipeline,
        o.payload,
        published,
        published as f64 / publish_time.as_secs_f64(),
        got,
        got as f64 / drain_time.as_secs_f64(),
        got == want
    );
    std::process::exit(0);
}
