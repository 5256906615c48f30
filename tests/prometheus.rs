//! A real Prometheus (Debian package `prometheus`) scrapes a ringcache serving traffic over
//! both protocols and evaluates every PromQL expression of `grafana/ringcache.json` through its
//! HTTP API: each must be valid and return at least one series.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Raw, TWO_NODES, TestServer, eventually, http_get};

/// A real Prometheus, killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn start_prometheus(target: SocketAddr) -> Prometheus {
    let dir = std::env::temp_dir().join(format!("ringcache-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ringcache\n    static_configs:\n      - targets: [\"{target}\"]\n"
        ),
    )
    .expect("config");
    // The port is free when picked; another process could take it before Prometheus binds, so
    // retry a few times.
    for _ in 0..5 {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run prometheus");
        let mut p = Prometheus {
            child,
            addr,
            dir: dir.clone(),
        };
        let ready = eventually(Duration::from_secs(30), || {
            if p.child.try_wait().ok().flatten().is_some() {
                return true;
            }
            TcpStream::connect(addr).is_ok() && http_get(addr, "/-/ready").0 == 200
        });
        if ready && p.child.try_wait().ok().flatten().is_none() {
            return p;
        }
        let _ = p.child.kill();
        std::mem::forget(p.dir.clone());
    }
    panic!("prometheus did not start");
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every `expr` of the dashboard, with its variables replaced as Grafana would.
fn dashboard_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/grafana/ringcache.json"
    ))
    .expect("dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            exprs.push(
                expr.replace("$instance", ".*")
                    .replace("$__rate_interval", "15s"),
            );
        }
    }
    assert!(exprs.len() >= 14, "dashboard has too few queries");
    exprs
}

#[test]
fn prometheus_evaluates_every_dashboard_query() {
    if !common::tool("prometheus", "prometheus") {
        return;
    }
    let Some(member) = common::memcached::Memcached::start() else {
        return;
    };
    let config = common::ConfigFile::new(TWO_NODES);
    let server = TestServer::start_file(&config.path);
    // One reload, so that the reload and rebalance series carry data; it adds a remote node
    // (a real memcached), so that the remote-node series do too.
    config.write(&format!(
        "{TWO_NODES}\n[[nodes]]\nname = \"cache-c\"\nmax_memory = \"64MiB\"\n\n[[nodes]]\nname = \"mc-d\"\naddress = \"{}\"\nprotocol = \"memcache\"\n",
        member.addr
    ));
    server.wait_generation(2);
    let prometheus = start_prometheus(server.metrics);
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = Arc::clone(&stop);
        let addr = server.memcache;
        std::thread::spawn(move || {
            let mut c = Raw::connect(addr);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                c.roundtrip(
                    format!("set t{} 0 0 1\r\nx\r\n", i % 500).as_bytes(),
                    b"STORED\r\n",
                );
                c.send(format!("get t{} missing{i}\r\n", i % 500).as_bytes());
                c.read_until(b"END\r\n");
                i += 1;
            }
        })
    };
    let exprs = dashboard_expressions();
    let mut pending: Vec<String> = exprs.clone();
    let mut last_error = String::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|expr| {
            let (status, body) = http_get(
                prometheus.addr,
                &format!("/api/v1/query?query={}", url_encode(expr)),
            );
            let reply: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if status != 200 || reply["status"] != "success" {
                last_error = format!("{expr}: HTTP {status} {body}");
                // A syntax error never heals: fail at once.
                assert_ne!(status, 400, "invalid PromQL: {last_error}");
                return true;
            }
            let empty = reply["data"]["result"].as_array().is_none_or(Vec::is_empty);
            if empty {
                last_error = format!("{expr}: no series yet");
            }
            empty
        });
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    stop.store(true, Ordering::Relaxed);
    traffic.join().expect("traffic thread");
    assert!(
        pending.is_empty(),
        "{} of {} dashboard queries returned no series; last: {last_error}\n{pending:#?}",
        pending.len(),
        exprs.len()
    );
}
