//! Remote members: memcached or Redis servers that are ring members (`[[nodes]]` with an
//! `address`), reached through a few persistent, pipelined connections shared by every session.
//!
//! Owns: the member's settings, its connections (`link`), picking the connection of a session,
//! reply framing (`reply`) and the member's counters.
//! Must not touch: what a command means or how a client's reply is built from the member's
//! (that is the protocol's forwarding code), the ring.
//!
//! Invariants: a session's requests to one member always go through the same connection (see
//! [`Member::forward`]), so they run on the member in the order the client sent them, as with
//! one connection; replies come back matched to their requests (`link`).

mod link;
pub mod reply;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::oneshot;

pub use link::Answer;
use link::{Job, Link};
pub use reply::Expect;

/// The protocol a remote member speaks. Config spells it `"memcache"` or `"resp"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// memcached's text and meta protocol.
    Memcache,
    /// Redis's RESP2.
    Resp,
}

impl Protocol {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Memcache => "memcache",
            Protocol::Resp => "resp",
        }
    }
}

/// Why a forwarded request got no reply from its member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteError {
    /// No reply within the member's `timeout`.
    Timeout(Duration),
    /// The member cannot be reached (connect refused or timed out, connection closed, AUTH
    /// refused).
    Down(String),
    /// The member sent bytes that are not a reply to the request.
    Garbage(&'static str),
    /// Too many requests are queued for the member.
    Overloaded,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteError::Timeout(d) => write!(f, "timed out after {}ms", d.as_millis()),
            RemoteError::Down(why) => write!(f, "unreachable ({why})"),
            RemoteError::Garbage(why) => write!(f, "sent an invalid reply ({why})"),
            RemoteError::Overloaded => f.write_str("too many requests queued"),
        }
    }
}

/// A remote member's settings (`[[nodes]]` with an `address`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `host:port`.
    pub address: String,
    pub protocol: Protocol,
    /// How long a request may wait for its reply (and a connect may take).
    pub timeout: Duration,
    /// Persistent connections to the member.
    pub connections: usize,
    /// Redis AUTH password, sent on every new connection.
    pub password: Option<String>,
}

/// Counters of one member.
#[derive(Default)]
pub struct MemberStats {
    /// Requests sent (or refused for an overloaded queue).
    pub requests: AtomicU64,
    /// Requests answered with an error of the member's (timeout, down, garbage, overloaded).
    pub errors: AtomicU64,
    /// Of those, timeouts.
    pub timeouts: AtomicU64,
    /// Seconds each reply took (queued to answered), once the metrics recorder bound it
    /// (`admin`).
    pub latency: std::sync::OnceLock<metrics::Histogram>,
}

/// Where and how to reach a member: what its connection tasks hold (not the member itself,
/// whose links own their queues: a member removed from the ring ends its tasks).
#[derive(Debug)]
pub struct Target {
    pub name: String,
    pub address: String,
    pub timeout: Duration,
    pub password: Option<String>,
}

/// One remote member.
pub struct Member {
    pub target: Arc<Target>,
    pub protocol: Protocol,
    links: Vec<Link>,
    pub stats: Arc<MemberStats>,
}

impl Member {
    /// A member named `name` with `settings`; connections open on first use.
    pub fn new(name: &str, settings: &Settings) -> Member {
        Member {
            target: Arc::new(Target {
                name: name.to_string(),
                address: settings.address.clone(),
                timeout: settings.timeout,
                password: settings.password.clone(),
            }),
            protocol: settings.protocol,
            links: (0..settings.connections.max(1))
                .map(|_| Link::default())
                .collect(),
            stats: Arc::default(),
        }
    }

    /// True when this member was built from `settings` (a reload keeps it then).
    pub fn matches(&self, settings: &Settings) -> bool {
        let t = &self.target;
        t.address == settings.address
            && self.protocol == settings.protocol
            && t.timeout == settings.timeout
            && t.password == settings.password
            && self.links.len() == settings.connections.max(1)
    }

    /// Sends `request` on the connection of session `session` (always the same one for a
    /// session, so its requests keep their order); the receiver gets the reply of shape
    /// `expect`, or why there is none, within the member's timeout.
    pub fn forward(
        &self,
        session: u64,
        request: Bytes,
        expect: Expect,
    ) -> oneshot::Receiver<Answer> {
        let (answer, rx) = oneshot::channel();
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let link = &self.links[(session % self.links.len() as u64) as usize];
        link.send(
            &self.target,
            &self.stats,
            Job {
                request,
                expect,
                deadline: tokio::time::Instant::now() + self.target.timeout,
                answer,
            },
        );
        rx
    }

    /// The member's name (its `[[nodes]]` name).
    pub fn name(&self) -> &str {
        &self.target.name
    }

    /// Counts a failed request (`timeout` when it timed out).
    pub fn count_error(&self, e: &RemoteError) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        if matches!(e, RemoteError::Timeout(_)) {
            self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The configured number of connections.
    pub fn connections(&self) -> usize {
        self.links.len()
    }

    /// Requests queued or waiting for their reply.
    pub fn in_flight(&self) -> usize {
        self.links.iter().map(Link::queued).sum()
    }

    /// Connections currently open.
    pub fn connected(&self) -> usize {
        self.links.iter().filter(|l| l.is_connected()).count()
    }
}

/// Appends a RESP multibulk request made of `parts`.
pub fn encode_command(out: &mut BytesMut, parts: &[&[u8]]) {
    out.put_u8(b'*');
    out.extend_from_slice(parts.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for p in parts {
        out.put_u8(b'$');
        out.extend_from_slice(p.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
}
