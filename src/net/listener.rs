//! Accept loop: the connection cap, socket options, and spawning one driver per connection.
//!
//! Owns: accepting, counting and refusing connections.
//! Must not touch: payload bytes (beyond the fixed refusal line) or commands.
//! Invariants: `curr_connections` counts exactly the connections whose driver is running;
//! accepting stops as soon as the shutdown token is cancelled.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::net::conn;
use crate::proto::any::AnySession;
use crate::proto::memcache::MemcacheSession;
use crate::proto::resp::RespSession;
use crate::server::{Shared, Stats};

/// The protocol a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// memcached text and meta protocol.
    Memcache,
    /// Redis RESP2/RESP3.
    Resp,
    /// Both, chosen by each connection's first byte (`*` = RESP).
    Any,
}

impl Protocol {
    /// Every listener protocol, in [`Protocol::index`] order.
    pub const ALL: [Protocol; 3] = [Protocol::Memcache, Protocol::Resp, Protocol::Any];

    /// Position in [`Protocol::ALL`] (and in `Stats::by_protocol`).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Memcache => "memcache",
            Protocol::Resp => "resp",
            Protocol::Any => "any",
        }
    }

    /// What a refused client is told before the socket closes (the real server's words).
    fn refusal(self) -> &'static [u8] {
        match self {
            Protocol::Memcache | Protocol::Any => b"ERROR Too many open connections\r\n",
            Protocol::Resp => b"-ERR max number of clients reached\r\n",
        }
    }
}

/// Accepts connections on `listener` until `shutdown` is cancelled, spawning each driver on
/// `tracker` so that shutdown can wait for them.
pub async fn serve(
    listener: TcpListener,
    protocol: Protocol,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors (EMFILE/ENFILE) or a transient error: back off instead
                // of spinning on a listener that stays readable.
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let stats = &shared.stats;
        let limit = u64::from(shared.limits.load().max_connections);
        if stats.curr_connections.fetch_add(1, Ordering::Relaxed) >= limit {
            stats.curr_connections.fetch_sub(1, Ordering::Relaxed);
            Stats::add(&stats.rejected_connections, 1);
            tracing::debug!(%peer, "connection refused: max_connections reached");
            tracker.spawn(refuse(stream, protocol.refusal()));
            continue;
        }
        Stats::add(&stats.total_connections, 1);
        let per_protocol = &stats.by_protocol[protocol.index()];
        Stats::add(&per_protocol.accepted, 1);
        Stats::add(&per_protocol.open, 1);
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let token = shutdown.child_token();
        tracker.spawn(async move {
            match protocol {
                Protocol::Memcache => {
                    let session = MemcacheSession::new(Arc::clone(&shared));
                    conn::run(stream, session, &shared, token).await;
                }
                Protocol::Resp => {
                    let local = stream.local_addr().ok();
                    let session = RespSession::new(Arc::clone(&shared), Some(peer), local);
                    conn::run(stream, session, &shared, token).await;
                }
                Protocol::Any => {
                    let local = stream.local_addr().ok();
                    let session = AnySession::new(Arc::clone(&shared), Some(peer), local);
                    conn::run(stream, session, &shared, token).await;
                }
            }
            let stats = &shared.stats;
            stats.curr_connections.fetch_sub(1, Ordering::Relaxed);
            stats.by_protocol[protocol.index()]
                .open
                .fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn refuse(mut stream: TcpStream, message: &'static [u8]) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(message)).await;
}
