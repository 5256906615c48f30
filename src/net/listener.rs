//! Accept loop: the connection cap, socket options, the TLS handshake, and spawning one driver
//! per connection.
//!
//! Owns: accepting, counting and refusing connections (the cap, and peers outside the
//! listener's `[listen.allow]` list, which are closed without a byte); on a TLS listener, the
//! handshake (rustls), before any byte reaches a session, so the `any` listener picks its
//! protocol by the first decrypted byte.
//! Must not touch: payload bytes (beyond the fixed refusal line) or commands.
//! Invariants: `curr_connections` counts exactly the connections whose driver (or handshake)
//! is running; accepting stops as soon as the shutdown token is cancelled, and then the
//! listener signals its connections ([`Stop`]). A handshake ends within
//! `limits.tls_handshake_timeout` or at shutdown; a failed one closes the socket, is
//! counted (`rejected_tls_handshake`) and logged at debug, and never affects other
//! connections. A client refused by the connection cap on a TLS listener gets no refusal line
//! (it would not be TLS): it is just closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{self, Cidr};
use crate::config::CacheListener;
use crate::net::conn;
use crate::net::stop::Stop;
use crate::proto::any::AnySession;
use crate::proto::memcache::MemcacheSession;
use crate::proto::resp::RespSession;
use crate::server::{Shared, Stats};

/// What a client refused by the connection cap is told before the socket closes (the real
/// server's words).
fn refusal(listener: CacheListener) -> &'static [u8] {
    match listener {
        CacheListener::Memcache | CacheListener::Any => b"ERROR Too many open connections\r\n",
        CacheListener::Resp => b"-ERR max number of clients reached\r\n",
    }
}

/// Accepts on `listener` until `shutdown` is cancelled, handing each peer in the allow-list
/// to `accepted`. Peers outside it are closed without a byte and counted
/// (`rejected_not_allowed`); accept errors (out of file descriptors, say) back off for 50 ms
/// instead of spinning on a listener that stays readable. Shared by the cache listeners and
/// the admin listener.
pub async fn accept_loop(
    listener: &TcpListener,
    allow: Option<&[Cidr]>,
    shared: &Shared,
    shutdown: &CancellationToken,
    mut accepted: impl FnMut(TcpStream, SocketAddr),
) {
    loop {
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match next {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !auth::allowed(allow, peer.ip()) {
            Stats::add(&shared.stats.rejected_not_allowed, 1);
            tracing::debug!(%peer, "connection refused: not in the listener's allow-list");
            drop(stream);
            continue;
        }
        accepted(stream, peer);
    }
}

/// Accepts connections on `listener` until `shutdown` is cancelled, spawning each driver on
/// `tracker` so that shutdown can wait for them. With `tls`, every connection first completes
/// a TLS handshake with `shared.tls`.
pub async fn serve(
    listener: TcpListener,
    kind: CacheListener,
    allow: Option<Vec<Cidr>>,
    tls: bool,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    // Connections watch this rather than the token: it is checked on every request.
    let stop = Arc::new(Stop::default());
    let server = Arc::clone(&shared);
    accept_loop(
        &listener,
        allow.as_deref(),
        &server,
        &shutdown,
        |stream, peer| {
            let stats = &shared.stats;
            let limit = u64::from(shared.limits.load().max_connections);
            if stats.curr_connections.fetch_add(1, Ordering::Relaxed) >= limit {
                stats.curr_connections.fetch_sub(1, Ordering::Relaxed);
                Stats::add(&stats.rejected_connections, 1);
                tracing::debug!(%peer, "connection refused: max_connections reached");
                if !tls {
                    tracker.spawn(refuse(stream, refusal(kind)));
                }
                return;
            }
            Stats::add(&stats.total_connections, 1);
            let per_listener = &stats.by_protocol[kind.index()];
            Stats::add(&per_listener.accepted, 1);
            Stats::add(&per_listener.open, 1);
            if let Err(e) = configure(&stream, shared.limits.load().tcp_keepalive) {
                tracing::debug!(%peer, error = %e, "cannot set socket options");
            }
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            tracker.spawn(async move {
                // Only RESP shows the local address (CLIENT INFO): memcached skips the syscall.
                let local = match kind {
                    CacheListener::Memcache => None,
                    CacheListener::Resp | CacheListener::Any => stream.local_addr().ok(),
                };
                let addrs = (Some(peer), local);
                if !tls {
                    drive(stream, kind, addrs, &shared, &stop).await;
                } else if let Some(stream) = handshake(stream, peer, &shared, &stop).await {
                    drive(stream, kind, addrs, &shared, &stop).await;
                }
                let stats = &shared.stats;
                stats.curr_connections.fetch_sub(1, Ordering::Relaxed);
                stats.by_protocol[kind.index()]
                    .open
                    .fetch_sub(1, Ordering::Relaxed);
            });
        },
    )
    .await;
    stop.stop();
}

/// Runs the protocol's session over `stream` (plain or TLS) until the connection ends.
async fn drive<T>(
    stream: T,
    kind: CacheListener,
    (peer, local): (Option<SocketAddr>, Option<SocketAddr>),
    shared: &Arc<Shared>,
    stop: &Stop,
) where
    T: AsyncRead + AsyncWrite + Unpin,
{
    match kind {
        CacheListener::Memcache => {
            let session = MemcacheSession::new(Arc::clone(shared));
            conn::run(stream, session, shared, stop).await;
        }
        CacheListener::Resp => {
            let session = RespSession::new(Arc::clone(shared), peer, local);
            conn::run(stream, session, shared, stop).await;
        }
        CacheListener::Any => {
            let session = AnySession::new(Arc::clone(shared), peer, local);
            conn::run(stream, session, shared, stop).await;
        }
    }
}

/// The server side of a TLS handshake with the current certificate, bounded by
/// `limits.tls_handshake_timeout` and by shutdown. None (counted, logged at debug) when it
/// fails, times out, or the server stops first.
async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    stop: &Stop,
) -> Option<TlsStream<TcpStream>> {
    let Some(config) = shared.tls.as_ref().map(|c| c.load_full()) else {
        // Listeners are made TLS only together with a certificate (app.rs); never plain instead.
        tracing::error!(%peer, "TLS listener without a certificate; closing");
        return None;
    };
    let limit = shared.limits.load().tls_handshake_timeout;
    let accept = TlsAcceptor::from(config).accept(stream);
    let failure = tokio::select! {
        biased;
        () = stop.stopped() => return None,
        r = tokio::time::timeout(limit, accept) => match r {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("not done within {limit:?}"),
        },
    };
    Stats::add(&shared.stats.rejected_tls_handshake, 1);
    tracing::debug!(%peer, error = %failure, "TLS handshake failed; closing");
    None
}

/// Socket options of every served connection: no Nagle delay (replies are written once per
/// batch, so coalescing only adds latency) and, unless `keepalive` is zero, TCP keepalive as
/// redis-server's `tcp-keepalive` sets it (probe after `keepalive` idle, then every third of
/// it, give up after 3), so that peers which vanished without a FIN are detected and their
/// connection slots freed.
pub fn configure(stream: &TcpStream, keepalive: Duration) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    if !keepalive.is_zero() {
        let interval = (keepalive / 3).max(Duration::from_secs(1));
        let params = socket2::TcpKeepalive::new()
            .with_time(keepalive)
            .with_interval(interval)
            .with_retries(3);
        socket2::SockRef::from(stream).set_tcp_keepalive(&params)?;
    }
    Ok(())
}

async fn refuse(mut stream: TcpStream, message: &'static [u8]) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(message)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_get_nodelay_and_keepalive() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = TcpStream::connect(addr).await.expect("connect");
        let (stream, _) = listener.accept().await.expect("accept");
        configure(&stream, Duration::from_secs(300)).expect("configure");
        let sock = socket2::SockRef::from(&stream);
        assert!(sock.tcp_nodelay().expect("nodelay"));
        assert!(sock.keepalive().expect("keepalive"));
        assert_eq!(
            sock.tcp_keepalive_time().expect("idle"),
            Duration::from_secs(300)
        );
        assert_eq!(
            sock.tcp_keepalive_interval().expect("intvl"),
            Duration::from_secs(100)
        );
        assert_eq!(sock.tcp_keepalive_retries().expect("cnt"), 3);

        let _client = TcpStream::connect(addr).await.expect("connect");
        let (stream, _) = listener.accept().await.expect("accept");
        configure(&stream, Duration::ZERO).expect("configure");
        let sock = socket2::SockRef::from(&stream);
        assert!(sock.tcp_nodelay().expect("nodelay"));
        assert!(!sock.keepalive().expect("keepalive"));
    }
}
