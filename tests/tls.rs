//! TLS on the cache listeners over real sockets. Each test makes its own self-signed
//! certificate (rcgen), writes it beside a config file that names it by a relative path, and
//! talks to the server with a rustls client that trusts only that certificate: RESP and
//! memcached over tokio-rustls, the redis crate over `rediss://`, the `any` listener choosing
//! its protocol by the first decrypted byte, plain-text and silent clients closed and counted
//! without disturbing others, a renewed certificate picked up by a reload, and TLS configs
//! that are refused.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ConfigFile, Raw, TWO_NODES, TestServer};
use ringcache::config::{Config, ConfigError};
use ringcache::server::Stats;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A self-signed certificate for `localhost` and `127.0.0.1`, in PEM.
struct Cert {
    cert: String,
    key: String,
}

impl Cert {
    fn new() -> Cert {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("self-signed certificate");
        Cert {
            cert: c.cert.pem(),
            key: c.signing_key.serialize_pem(),
        }
    }

    /// Writes `cert.pem` and `key.pem` into `dir`, each to a temporary file renamed over the
    /// old one, as certificate renewal tools do.
    fn write_to(&self, dir: &Path) {
        for (name, pem) in [("cert.pem", &self.cert), ("key.pem", &self.key)] {
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, pem).expect("write pem");
            std::fs::rename(&tmp, dir.join(name)).expect("rename pem");
        }
    }
}

/// `[listen]` TLS keys (the file's listeners come first) naming `cert.pem` and `key.pem`
/// beside the config, TLS on `listeners`, then `rest`.
fn tls_config(listeners: &str, rest: &str) -> String {
    format!(
        "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\ntls = [{listeners}]\n{rest}{TWO_NODES}"
    )
}

/// A server whose config is `tls_config(listeners, rest)`, with a fresh certificate.
fn start(listeners: &str, rest: &str) -> (TestServer, ConfigFile, Cert) {
    let cert = Cert::new();
    let file = ConfigFile::new(&tls_config(listeners, rest));
    cert.write_to(file.dir());
    let server = TestServer::start_file(&file.path);
    (server, file, cert)
}

/// A TLS connection from a client that trusts only `root`.
struct Client {
    stream: TlsStream<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr, root: &Cert) -> std::io::Result<Client> {
        let mut roots = rustls::RootCertStore::empty();
        let der = CertificateDer::from_pem_slice(root.cert.as_bytes()).expect("certificate pem");
        roots.add(der).expect("root certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from("localhost").expect("server name");
        let connect = TlsConnector::from(Arc::new(config)).connect(name, tcp);
        let stream = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        Ok(Client {
            stream,
            buf: Vec::new(),
        })
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    /// Reads until the received bytes end with `suffix` (within 10 s) and returns them all.
    async fn read_until(&mut self, suffix: &[u8]) -> Vec<u8> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut chunk = vec![0u8; 64 * 1024];
        while !self.buf.ends_with(suffix) {
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "timed out waiting for {:?}; got {} bytes",
                        String::from_utf8_lossy(suffix),
                        self.buf.len()
                    )
                })
                .expect("read");
            assert!(
                n > 0,
                "connection closed; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
        std::mem::take(&mut self.buf)
    }

    /// Sends `request` and expects exactly `reply` back.
    async fn roundtrip(&mut self, request: &[u8], reply: &[u8]) {
        self.send(request).await;
        let got = self.read_until(reply).await;
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(reply),
            "request {:?}",
            String::from_utf8_lossy(request)
        );
    }
}

#[tokio::test]
async fn resp_and_memcached_over_tls() {
    let (server, _file, cert) = start("\"resp\", \"memcache\"", "");

    let mut resp = Client::connect(server.resp, &cert)
        .await
        .expect("TLS to resp");
    resp.roundtrip(b"PING\r\n", b"+PONG\r\n").await;
    resp.roundtrip(
        b"*3\r\n$3\r\nSET\r\n$4\r\nuser\r\n$5\r\nalice\r\n",
        b"+OK\r\n",
    )
    .await;
    resp.roundtrip(b"*2\r\n$3\r\nGET\r\n$4\r\nuser\r\n", b"$5\r\nalice\r\n")
        .await;

    // Same keyspace over memcached, also over TLS.
    let mut mc = Client::connect(server.memcache, &cert)
        .await
        .expect("TLS to memcache");
    mc.roundtrip(b"get user\r\n", b"VALUE user 0 5\r\nalice\r\nEND\r\n")
        .await;
    mc.roundtrip(b"set k 0 0 1\r\nv\r\n", b"STORED\r\n").await;
    mc.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n")
        .await;

    // A pipelined batch whose replies span many TLS records and overflow the socket buffers:
    // every byte must arrive (ciphertext left in the TLS layer is flushed).
    let value = vec![b'x'; 512 * 1024];
    let mut set = format!("set big 0 0 {}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    mc.roundtrip(&set, b"STORED\r\n").await;
    mc.send(&b"get big\r\n".repeat(20)).await;
    let mut one = format!("VALUE big 0 {}\r\n", value.len()).into_bytes();
    one.extend_from_slice(&value);
    one.extend_from_slice(b"\r\nEND\r\n");
    let mut got = Vec::new();
    while got.len() < one.len() * 20 {
        // Every reply is alike, so a read may end on any of them.
        got.extend(mc.read_until(&one).await);
    }
    assert_eq!(got.len(), one.len() * 20);
    assert!(got == one.repeat(20), "replies differ");
    mc.send(b"version\r\n").await;
    assert!(mc.read_until(b"\r\n").await.starts_with(b"VERSION "));

    // The any listener is not named in `tls`: it stays plain.
    Raw::connect(server.any).roundtrip(b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n");

    // The redis crate over rediss://, the certificate as its only root (checked against the
    // IP address in the URL).
    let url = format!("rediss://{}/", server.resp);
    let certs = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(cert.cert.clone().into_bytes()),
    };
    let client = redis::Client::build_with_tls(url, certs).expect("redis client");
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(10))
        .expect("rediss connection");
    let got: String = redis::cmd("GET").arg("user").query(&mut conn).expect("get");
    assert_eq!(got, "alice");
    let () = redis::cmd("SET")
        .arg("k2")
        .arg("over rediss")
        .query(&mut conn)
        .expect("set");
    resp.roundtrip(
        b"*2\r\n$3\r\nGET\r\n$2\r\nk2\r\n",
        b"$11\r\nover rediss\r\n",
    )
    .await;
    assert_eq!(Stats::get(&server.shared.stats.rejected_tls_handshake), 0);
}

#[tokio::test]
async fn any_listener_picks_the_protocol_by_the_first_decrypted_byte() {
    let (server, _file, cert) = start("\"any\"", "");
    let mut redis = Client::connect(server.any, &cert)
        .await
        .expect("TLS to any");
    redis
        .roundtrip(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nabc\r\n", b"+OK\r\n")
        .await;
    let mut memcached = Client::connect(server.any, &cert)
        .await
        .expect("TLS to any");
    memcached
        .roundtrip(b"get k\r\n", b"VALUE k 0 3\r\nabc\r\nEND\r\n")
        .await;
    // resp and memcache are not named: plain.
    server.raw_resp().roundtrip(b"PING\r\n", b"+PONG\r\n");
    server
        .raw()
        .roundtrip(b"get k\r\n", b"VALUE k 0 3\r\nabc\r\nEND\r\n");
}

#[tokio::test]
async fn plain_text_on_a_tls_port_is_dropped_and_counted() {
    let (server, _file, cert) = start("\"resp\", \"memcache\"", "");
    for addr in [server.resp, server.memcache] {
        let mut plain = Raw::connect(addr);
        plain.send(b"*1\r\n$4\r\nPING\r\n");
        let got = plain.read_to_close();
        // No reply: at most a TLS alert record (content type 21) before the close.
        assert!(
            got.is_empty() || got[0] == 21,
            "plain client got {:?}",
            String::from_utf8_lossy(&got)
        );
        assert!(!got.windows(4).any(|w| w == b"PONG"));
    }
    let rejected = || Stats::get(&server.shared.stats.rejected_tls_handshake);
    assert!(common::eventually(Duration::from_secs(10), || rejected() == 2));

    // A client that trusts another certificate refuses the server's; the server counts it too.
    let stranger = Cert::new();
    assert!(Client::connect(server.resp, &stranger).await.is_err());

    // Others are served as before.
    let mut ok = Client::connect(server.resp, &cert)
        .await
        .expect("TLS to resp");
    ok.roundtrip(b"PING\r\n", b"+PONG\r\n").await;
    let counted = common::eventually(Duration::from_secs(10), || rejected() == 3);
    assert!(counted, "the refused certificate was not counted");
    let scrape = server.http_get("/metrics");
    assert!(
        scrape.contains("ringcache_connections_rejected_total{reason=\"tls_handshake\"} 3"),
        "{scrape}"
    );
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_handshake_timeout() {
    let (server, _file, cert) = start("\"resp\"", "[limits]\ntls_handshake_timeout = \"300ms\"\n");
    let started = Instant::now();
    let mut silent = Raw::connect(server.resp);
    assert_eq!(silent.read_to_close(), b"");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed after {:?}, before the timeout",
        started.elapsed()
    );
    assert!(common::eventually(Duration::from_secs(10), || {
        Stats::get(&server.shared.stats.rejected_tls_handshake) == 1
    }));
    let mut ok = Client::connect(server.resp, &cert)
        .await
        .expect("TLS to resp");
    ok.roundtrip(b"PING\r\n", b"+PONG\r\n").await;
    drop(server);

    // With the default (10 s) timeout, shutdown does not wait for a pending handshake.
    let (server, _file, _cert) = start("\"resp\"", "");
    let _silent = Raw::connect(server.resp);
    assert!(common::eventually(Duration::from_secs(10), || {
        Stats::get(&server.shared.stats.curr_connections) == 1
    }));
    let stopping = Instant::now();
    drop(server);
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?} for a handshake",
        stopping.elapsed()
    );
}

#[tokio::test]
async fn a_renewed_certificate_applies_on_reload_without_a_restart() {
    let (server, file, old) = start("\"resp\"", "");
    let mut before = Client::connect(server.resp, &old)
        .await
        .expect("TLS to resp");
    before
        .roundtrip(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", b"+OK\r\n")
        .await;

    let new = Cert::new();
    new.write_to(file.dir());
    // Renewal tools then reload the server: here by saving the (unchanged) config file.
    file.write(&tls_config("\"resp\"", ""));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut renewed = loop {
        if let Ok(c) = Client::connect(server.resp, &new).await {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    renewed
        .roundtrip(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", b"$1\r\nv\r\n")
        .await;
    // New handshakes present the new certificate only; the open connection goes on.
    assert!(Client::connect(server.resp, &old).await.is_err());
    before.roundtrip(b"PING\r\n", b"+PONG\r\n").await;
    // A renewal is not a ring change.
    assert_eq!(server.shared.topology.load().generation, 1);
    assert!(Stats::get(&server.shared.stats.config_reloads_ok) >= 1);

    // A broken key file rejects the reload; the renewed certificate keeps serving.
    std::fs::write(file.dir().join("key.pem"), "not a key").expect("write");
    file.write(&tls_config("\"resp\"", ""));
    assert!(common::eventually(Duration::from_secs(30), || {
        Stats::get(&server.shared.stats.config_reloads_error) >= 1
    }));
    let mut again = Client::connect(server.resp, &new)
        .await
        .expect("TLS to resp");
    again.roundtrip(b"PING\r\n", b"+PONG\r\n").await;
}

#[test]
fn tls_configs_that_are_refused_name_file_line_and_field() {
    let cert = Cert::new();
    // A certificate without its key: tls_cert is line 6, after the file's five [listen] lines.
    let file = ConfigFile::new(&format!("tls_cert = \"cert.pem\"\n{TWO_NODES}"));
    cert.write_to(file.dir());
    let expected = format!(
        "{}:6: listen.tls_cert: needs listen.tls_key",
        file.path.display()
    );
    match Config::load(&file.path) {
        Err(e @ ConfigError::Invalid { .. }) => {
            assert!(e.to_string().starts_with(&expected), "{e}")
        }
        other => panic!("expected an invalid config, got {other:?}"),
    }
    // The binary refuses it at start with exit status 2 and the same words.
    let out = Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .arg("--config")
        .arg(&file.path)
        .output()
        .expect("run ringcache");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&expected), "{err}");

    // A key that is not the certificate's.
    let other = Cert::new();
    file.write(&tls_config("\"resp\"", ""));
    std::fs::write(file.dir().join("key.pem"), &other.key).expect("write key");
    let msg = Config::load(&file.path).unwrap_err().to_string();
    assert!(
        msg.contains(":7: listen.tls_key: ") && msg.contains("does not belong to the certificate"),
        "{msg}"
    );
    // TLS on the metrics listener is not offered.
    file.write(&tls_config("\"metrics\"", ""));
    cert.write_to(file.dir());
    let msg = Config::load(&file.path).unwrap_err().to_string();
    assert!(
        msg.contains(":8: listen.tls: unknown variant `metrics`"),
        "{msg}"
    );
}
