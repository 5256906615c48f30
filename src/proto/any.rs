//! The combined endpoint: one port for both protocols, told apart by each connection's first
//! byte. `*` (a RESP multibulk) means Redis; anything else is the memcached text protocol, since
//! an inline RESP command (`PING\r\n`) cannot be told from memcached text. Inline RESP is
//! therefore only served on the dedicated `resp` listener.
//!
//! Owns: the choice, made once per connection. Must not touch: either protocol's parsing.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;

use crate::proto::memcache::MemcacheSession;
use crate::proto::resp::RespSession;
use crate::proto::{Flow, Session};
use crate::server::Shared;

/// A session that becomes RESP or memcached on its first byte.
pub enum AnySession {
    /// Nothing received yet.
    Undecided {
        /// Shared state for the session to be made.
        shared: Arc<Shared>,
        /// Peer and local address, for RESP's CLIENT INFO.
        addrs: (Option<SocketAddr>, Option<SocketAddr>),
    },
    /// The connection speaks RESP.
    Resp(Box<RespSession>),
    /// The connection speaks memcached.
    Memcache(MemcacheSession),
}

impl AnySession {
    /// A session for a new connection.
    pub fn new(shared: Arc<Shared>, peer: Option<SocketAddr>, local: Option<SocketAddr>) -> Self {
        AnySession::Undecided {
            shared,
            addrs: (peer, local),
        }
    }
}

impl Session for AnySession {
    fn process(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Flow {
        if let AnySession::Undecided { shared, addrs } = self {
            let Some(&first) = input.first() else {
                return Flow::Continue;
            };
            let shared = Arc::clone(shared);
            *self = if first == b'*' {
                AnySession::Resp(Box::new(RespSession::new(shared, addrs.0, addrs.1)))
            } else {
                AnySession::Memcache(MemcacheSession::new(shared))
            };
        }
        match self {
            AnySession::Resp(s) => s.process(input, out),
            AnySession::Memcache(s) => s.process(input, out),
            AnySession::Undecided { .. } => Flow::Continue,
        }
    }

    fn inbox(&self) -> Option<&tokio::sync::Notify> {
        match self {
            AnySession::Resp(s) => s.inbox(),
            _ => None,
        }
    }

    fn closing(&self) -> Option<&tokio::sync::Notify> {
        match self {
            AnySession::Resp(s) => s.closing(),
            _ => None,
        }
    }

    fn forwarded(&mut self) -> Option<&mut crate::proto::forward::Forwarded> {
        match self {
            AnySession::Resp(s) => s.forwarded(),
            AnySession::Memcache(s) => s.forwarded(),
            _ => None,
        }
    }

    fn waiting(&self) -> Option<(Arc<tokio::sync::Notify>, Option<std::time::Instant>)> {
        match self {
            AnySession::Resp(s) => s.waiting(),
            AnySession::Memcache(s) => s.waiting(),
            _ => None,
        }
    }
}
