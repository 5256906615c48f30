//! The built binary: ready line with bound addresses, a set/get, /metrics, clean exit on SIGTERM,
//! exit status 2 with file:line:field on a bad config, and a --help that says what it serves.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Raw;

fn temp_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringcache-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("ringcache.toml");
    std::fs::write(&path, text).expect("write config");
    path
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
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("{key} missing in {line:?}"))
}

#[test]
fn binary_serves_and_exits_cleanly_on_sigterm() {
    let config = temp_config(
        "smoke",
        r#"
[listen]
resp = "127.0.0.1:0"
memcache = "127.0.0.1:0"
any = "127.0.0.1:0"
metrics = "127.0.0.1:0"

[[nodes]]
name = "a"
max_memory = "8MiB"

[[nodes]]
name = "b"
max_memory = "8MiB"
"#,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ringcache");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("no ready line");
    assert!(line.starts_with("ringcache ready "), "{line}");
    let memcache: std::net::SocketAddr = field(&line, "memcache=").parse().expect("memcache addr");
    let metrics: std::net::SocketAddr = field(&line, "metrics=").parse().expect("metrics addr");
    assert_ne!(memcache.port(), 0);
    let resp: std::net::SocketAddr = field(&line, "resp=").parse().expect("resp addr");
    let any: std::net::SocketAddr = field(&line, "any=").parse().expect("any addr");
    let mut r = Raw::connect(resp);
    r.roundtrip(b"SET rkey rval\r\n", b"+OK\r\n");
    let mut a = Raw::connect(any);
    a.roundtrip(b"*2\r\n$3\r\nGET\r\n$4\r\nrkey\r\n", b"$4\r\nrval\r\n");

    let mut c = Raw::connect(memcache);
    c.roundtrip(b"set greeting 5 0 5\r\nhello\r\n", b"STORED\r\n");
    c.roundtrip(
        b"get greeting\r\n",
        b"VALUE greeting 5 5\r\nhello\r\nEND\r\n",
    );

    let mut m = Raw::connect(metrics);
    m.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let body = String::from_utf8(m.read_to_close()).expect("utf8");
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(body.contains("ringcache_node_items{node=\"a\"}"), "{body}");

    // A request written just before SIGTERM is still answered.
    c.send(b"get greeting\r\n");
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let got = c.read_to_close();
    assert_eq!(got, b"VALUE greeting 5 5\r\nhello\r\nEND\r\n");
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn bad_config_exits_2_naming_file_line_and_field() {
    let config = temp_config(
        "bad",
        "[listen]\nmemcache = \"127.0.0.1:0\"\n\n[[nodes]]\nname = \"a\"\nmax_memory = \"8MiB\"\nweight = 0\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run ringcache");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "{}:7: nodes[0].weight: must be between 1 and 1000",
        config.display()
    );
    assert!(err.contains(&expected), "{err}");
}

#[test]
fn help_describes_both_protocols() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .arg("--help")
        .output()
        .expect("run ringcache");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["memcached", "Redis", "ketama", "--config"] {
        assert!(
            help.contains(word),
            "--help does not mention {word}:\n{help}"
        );
    }
}
