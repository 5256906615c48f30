//! Per-connection state and the context every command handler receives.
//!
//! Owns: [`Conn`] (protocol version, name, id, blocked state, access, the open MULTI, the
//! watched keys, the pub/sub mailbox and subscriptions), [`Ctx`] (what one request may use) and [`Reply`]. Must not touch: command semantics, framing, sockets.
//! Sits below the command groups and the dispatcher (they all import it, it imports none of
//! them), so that no group depends on the dispatcher.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::command::Command;
use super::error::RespError;
use super::frame::{Args, Version};
use crate::config::Limits;
use crate::proto::forward::Forwarded;
use crate::server::Shared;
use crate::server::clients::Client;
use crate::server::gate::Pass;
use crate::server::pubsub::Mailbox;
use crate::server::waiters::Parked;

/// Source of client ids (CLIENT ID), process-wide like redis's.
static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

/// Per-connection state.
#[derive(Debug)]
pub struct Conn {
    /// CLIENT ID.
    pub id: u64,
    /// HELLO protocol version.
    pub version: Version,
    /// CLIENT SETNAME.
    pub name: Option<Box<[u8]>>,
    /// CLIENT SETINFO LIB-NAME.
    pub lib_name: Option<Box<[u8]>>,
    /// CLIENT SETINFO LIB-VER.
    pub lib_ver: Option<Box<[u8]>>,
    /// The peer's and our address, when known.
    pub peer: Option<SocketAddr>,
    /// Our address, when known.
    pub local: Option<SocketAddr>,
    /// Unix ms the connection started.
    pub created_ms: u64,
    /// Commands run since the last flush into `Stats`.
    pub commands: u64,
    /// Wire name of the last command (CLIENT INFO `cmd=`).
    pub last: &'static str,
    /// The command `handle` just ran (None: not a known command), for per-command metrics.
    pub current: Option<Command>,
    /// Set while a blocking pop waits (see `types::blocking`).
    pub blocked: Option<Box<Blocked>>,
    /// What this connection may run (see `acl`); everything when auth is off.
    pub access: crate::auth::Access,
    /// Set while EXEC runs this connection's queue: blocking commands do not block.
    pub in_exec: bool,
    /// Set while a script's `redis.call` runs a command (XREAD BLOCK is refused there).
    pub in_script: bool,
    /// The open MULTI, if any (see `txn`).
    pub multi: Option<Multi>,
    /// WATCHed keys and their marks (see `txn`).
    pub watched: Vec<Watched>,
    /// This is a blocked client's request run on its behalf by the connection that fed its
    /// key (see `types::blocking`): a blocking command makes one attempt and reports it in
    /// `served`.
    pub on_behalf: bool,
    /// Set by that attempt: it answered (an element, or an error such as WRONGTYPE).
    pub served: bool,
    /// Set by a command that found the server's gate held by another exclusive caller (a
    /// script): its reply is dropped and the request retried once the gate opens.
    pub retry: std::cell::Cell<bool>,
    /// What other connections see of this one (CLIENT LIST); None when not a real
    /// connection (a request run on another's behalf, unit tests).
    pub client: Option<Arc<Client>>,
    /// The part of `client.shown` last published by [`Conn::publish`].
    published: Published,
    /// Where published messages wait for this connection: made at its first subscription and
    /// kept (see `pubsub`).
    pub mailbox: Option<Arc<Mailbox>>,
    /// Its channel, pattern and shard-channel subscriptions (see `pubsub`).
    pub subs: Subscriptions,
    /// CLIENT TRACKING settings while tracking is on (see `tracking`).
    pub tracking: Option<Box<TrackingMode>>,
}

/// A connection's CLIENT TRACKING settings.
#[derive(Debug, Clone, Default)]
pub struct TrackingMode {
    /// REDIRECT client id (0: none).
    pub redirect: u64,
    /// BCAST.
    pub bcast: bool,
    /// OPTIN.
    pub optin: bool,
    /// OPTOUT.
    pub optout: bool,
    /// NOLOOP.
    pub noloop: bool,
    /// BCAST prefixes.
    pub prefixes: Vec<Box<[u8]>>,
    /// CLIENT CACHING YES (OPTIN) / NO (OPTOUT) given for the next command.
    pub caching: Option<bool>,
}

/// A connection's subscriptions. Redis 7.0 keeps patterns in a list, so PUNSUBSCRIBE without
/// arguments answers in subscription order: patterns carry their order here (a map, so that
/// one connection's million patterns are found and removed in constant time).
#[derive(Debug, Default)]
pub struct Subscriptions {
    /// SUBSCRIBE channels.
    pub channels: hashbrown::HashSet<Box<[u8]>>,
    /// PSUBSCRIBE patterns and their subscription order.
    pub patterns: hashbrown::HashMap<Box<[u8]>, u64>,
    /// The next pattern's order.
    pub next_pattern: u64,
    /// SSUBSCRIBE shard channels.
    pub shard: hashbrown::HashSet<Box<[u8]>>,
}

impl Subscriptions {
    /// Channels and patterns: the count SUBSCRIBE & co. reply with.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Any subscription at all: a RESP2 connection is then in subscribe mode.
    pub fn any(&self) -> bool {
        self.count() + self.shard.len() > 0
    }
}

/// (last command's name pointer and length, RESP3, blocked, MULTI queue length).
type Published = (usize, usize, bool, bool, Option<usize>);

impl Conn {
    /// State for a new connection.
    pub fn new(peer: Option<SocketAddr>, local: Option<SocketAddr>, now_ms: u64) -> Conn {
        Conn::with_id(
            NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
            peer,
            local,
            now_ms,
        )
    }

    /// The state of a connection with client id `id`, nothing set yet.
    fn with_id(id: u64, peer: Option<SocketAddr>, local: Option<SocketAddr>, now_ms: u64) -> Conn {
        Conn {
            id,
            version: Version::Resp2,
            name: None,
            lib_name: None,
            lib_ver: None,
            peer,
            local,
            created_ms: now_ms,
            commands: 0,
            last: "NULL",
            current: None,
            blocked: None,
            access: crate::auth::Access::ALL,
            in_exec: false,
            in_script: false,
            multi: None,
            watched: Vec::new(),
            on_behalf: false,
            served: false,
            retry: std::cell::Cell::new(false),
            client: None,
            published: (0, 0, false, false, None),
            mailbox: None,
            subs: Subscriptions::default(),
            tracking: None,
        }
    }

    /// Publishes the subscription counts and the tracking state for CLIENT LIST (after
    /// (P|S)(UN)SUBSCRIBE, CLIENT TRACKING, RESET).
    pub fn publish_subs(&self) {
        if let Some(client) = &self.client {
            let mut s = client.shown.lock();
            s.sub = self.subs.channels.len();
            s.psub = self.subs.patterns.len();
            s.ssub = self.subs.shard.len();
            s.tracking = self.tracking.as_ref().map(|t| (t.redirect as i64, t.bcast));
        }
    }

    /// Publishes what changed of the command, protocol, blocked and MULTI state for CLIENT
    /// LIST (a lock only when something did).
    pub fn publish(&mut self) {
        let Some(client) = &self.client else {
            return;
        };
        let now: Published = (
            self.last.as_ptr() as usize,
            self.last.len(),
            self.version == Version::Resp3,
            self.blocked.is_some(),
            self.multi.as_ref().map(|m| m.queue.len()),
        );
        if now == self.published {
            return;
        }
        self.published = now;
        let mut s = client.shown.lock();
        s.last = self.last;
        s.resp = if now.2 { 3 } else { 2 };
        s.blocked = now.3;
        s.multi = now.4;
    }

    /// Publishes the name and library fields (after CLIENT SETNAME / SETINFO, HELLO SETNAME).
    pub fn publish_names(&self) {
        if let Some(client) = &self.client {
            let mut s = client.shown.lock();
            s.name = self.name.clone();
            s.lib_name = self.lib_name.clone();
            s.lib_ver = self.lib_ver.clone();
        }
    }

    /// The state a blocked client's request runs in when another connection serves it: the
    /// client's protocol version, no id of its own.
    pub fn on_behalf(version: Version) -> Conn {
        Conn {
            version,
            on_behalf: true,
            ..Conn::with_id(0, None, None, 0)
        }
    }
}

/// Everything one request may use.
pub struct Ctx<'a> {
    /// Shared server state.
    pub shared: &'a Shared,
    /// Limits in force for this batch.
    pub limits: &'a Limits,
    /// This connection.
    pub conn: &'a mut Conn,
    /// The connection's pass through the server's gate (EXEC runs exclusively through it);
    /// None only in unit tests that run commands without a session.
    pub pass: Option<&'a Pass>,
    /// The batch's replies awaited from remote members; None where a request cannot wait for
    /// one (inside EXEC, a script, on a blocked client's behalf).
    pub forward: Option<&'a mut Forwarded>,
}

/// What a command handler returns: its reply is already in `out` when Ok.
pub(super) type Reply = Result<(), RespError>;

/// A connection's open MULTI.
#[derive(Debug, Default)]
pub struct Multi {
    /// Queued requests, in order.
    pub(super) queue: Vec<Queued>,
    /// A request was refused while queueing: EXEC answers EXECABORT.
    pub dirty: bool,
    /// Bytes of arguments queued (bounded by `limits.max_output_buffer`).
    pub(super) bytes: usize,
}

/// One queued request: its arguments, owned.
#[derive(Debug)]
pub(super) struct Queued {
    pub(super) buf: Vec<u8>,
    pub(super) ranges: Vec<(usize, usize)>,
}

impl Queued {
    /// An owned copy of request `a`.
    pub(super) fn of(a: &Args<'_>) -> Queued {
        let mut buf = Vec::new();
        let mut ranges = Vec::with_capacity(a.len());
        for arg in a.iter_from(0) {
            ranges.push((buf.len(), arg.len()));
            buf.extend_from_slice(arg);
        }
        Queued { buf, ranges }
    }

    /// The request's arguments.
    pub(super) fn args(&self) -> Args<'_> {
        Args::new(&self.buf, &self.ranges)
    }
}

/// A watched key and its mark at WATCH time: (CAS, expiry) of its item, None when absent.
pub type Watched = (Box<[u8]>, Option<(u64, u64)>);

/// A connection's blocked state (in [`Conn`]; the cycle is in `types::blocking`).
#[derive(Debug)]
pub struct Blocked {
    /// Its place in the key queues, its request and its outcome.
    pub parked: Arc<Parked>,
    /// When to give up; None = never.
    pub deadline: Option<Instant>,
}
