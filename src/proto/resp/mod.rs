//! The Redis protocol: RESP2 and RESP3 (`HELLO 3`), multibulk and inline requests, and the
//! connection, server, keyspace, string, hash, list, set and sorted-set commands (the latter
//! in `types`), transactions, pub/sub, keyspace notifications and client-side caching, with
//! redis-server 7.0's replies.
//!
//! ```text
//! input bytes ─ frame::Decoder::decode ─▶ Args (ranges into the input)
//!   ─ handler::handle: command::parse (name, arity) ─ acl::check ─ route by Command::group ─▶
//!       strings | keyspace | connection | server | types::{hash, list, set, zset} | pubsub
//!         ─▶ Topology::entry ─▶ Node        replies: frame::encode_*, errors: error::RespError
//! ```
//!
//! Owns: the per-connection [`RespSession`] and the stages: `frame` (framing, reply bytes),
//! `command` (the table: name, arity, flags, key positions, group), `handler` (the dispatcher),
//! `txn` (MULTI/EXEC/WATCH), `pubsub` (the pub/sub commands and message frames), `notify`
//! (keyspace notifications), `tracking` (CLIENT TRACKING and invalidations),
//! one module per command group (`strings`, `keyspace`, `connection`, `server`, `bitmaps`, `hll`, `geo` (with `geohash`), and
//! `types` for the containers and the blocking pops; `lcs`, `sort` and `object` hold LCS, SORT
//! and OBJECT/MEMORY for the groups that route them), `error` (every error reply's text), `conn` (the
//! per-connection state and the handler context, below every group), `args`, `random`
//! (helpers the groups share), `acl` (NOAUTH/NOPERM) and `float` (INCRBYFLOAT's long doubles).
//! Must not touch: sockets, the read/write loop, connection counting, store internals.
//!
//! Invariants:
//! - `process` handles every complete request in `input` in order, appending every reply to
//!   `out`; a request is consumed only after it was handled (its arguments are slices of
//!   `input`, so nothing is copied).
//! - A blocking command that must wait returns [`Flow::Block`] without consuming its request;
//!   the driver calls `process` again after the wake-up and the request is retried.
//! - Framing errors reply `-ERR Protocol error: ...` and close ([`Flow::Close`]), like
//!   redis-server; QUIT replies `+OK` and closes; bytes after either are ignored.
//! - Commands are counted into `Stats::commands_processed` once per batch, not per request.
//! - A connection with a mailbox (it subscribed or tracks) gets its pending messages at the
//!   start of every `process` (the driver calls it when the mailbox wakes it) and, after each
//!   command, before that command's reply (where redis writes messages published meanwhile);
//!   an overflowed mailbox closes the connection.

// `RespError` owns heap data in a few variants, so `ok_or(RespError::X)` builds an error and
// runs its drop glue on every success: 65 instructions per GET/SET under callgrind, on the
// argument accessors alone. `ok_or_else` builds it only on failure.
#![allow(clippy::unnecessary_lazy_evaluations)]

pub mod acl;
mod args;
mod bitmaps;
mod command;
pub mod conn;
mod connection;
pub mod error;
pub mod float;
mod forward;
pub mod frame;
mod geo;
mod geohash;
pub mod handler;
mod hll;
mod keyspace;
mod lcs;
pub mod notify;
mod object;
mod params;
mod pubsub;
mod random;
mod script;
mod server;
mod sort;
mod stream;
mod strings;
mod tracking;
mod txn;
pub mod types;

pub use command::Command;
pub use script::load_from_snapshot;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::{Buf, BytesMut};

use crate::metrics::CommandRecorder;
use crate::proto::forward::Forwarded;
use crate::proto::{Flow, OUT_HIGH_WATER, Session, output_over_limit};
use crate::server::clients::Client;
use crate::server::gate::{Entry, Pass};
use crate::server::{LimitsCache, Shared, Stats};
use conn::{Conn, Ctx};

/// One Redis connection's protocol state.
pub struct RespSession {
    shared: Arc<Shared>,
    limits: LimitsCache,
    decoder: frame::Decoder,
    conn: Conn,
    metrics: Option<CommandRecorder>,
    /// Inside the server's gate while a batch is handled (see `server::gate`).
    pass: Pass,
    /// Kept out of the gate: the batch waits (asynchronously) for it to open.
    gate_wait: bool,
    /// Replies of this batch awaited from remote members.
    forwarded: Forwarded,
}

/// Command labels for metrics: every command's wire name in [`Command::ALL`] order, then
/// `unknown`.
fn command_labels() -> &'static [&'static str] {
    static LABELS: OnceLock<Vec<&'static str>> = OnceLock::new();
    LABELS.get_or_init(|| {
        Command::ALL
            .iter()
            .map(|c| c.wire())
            .chain(std::iter::once("unknown"))
            .collect()
    })
}

impl RespSession {
    /// A session for a new connection from `peer` to `local` (shown by CLIENT INFO/LIST).
    pub fn new(shared: Arc<Shared>, peer: Option<SocketAddr>, local: Option<SocketAddr>) -> Self {
        let now = shared.clock.now_ms();
        let mut conn = Conn::new(peer, local, now);
        conn.access = shared.auth.load().initial();
        let client = Client::new(conn.id, peer, local, now);
        shared.clients.register(&client);
        conn.client = Some(client);
        let metrics = shared
            .metrics
            .as_ref()
            .map(|m| CommandRecorder::new(m.commands("resp", command_labels())));
        RespSession {
            pass: shared.gate.pass(),
            gate_wait: false,
            forwarded: Forwarded::default(),
            metrics,
            limits: LimitsCache::new(Arc::clone(&shared)),
            shared,
            decoder: frame::Decoder::new(),
            conn,
        }
    }

    fn run(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Flow {
        let limits = self.limits.load();
        // Messages that arrived while the connection was idle go out first.
        if let Some(m) = &self.conn.mailbox {
            if m.take(out).is_err() {
                return Flow::Close;
            }
        }
        loop {
            if (out.len() >= OUT_HIGH_WATER || self.forwarded.full()) && !input.is_empty() {
                return Flow::Pause;
            }
            match self.decoder.decode(input, limits) {
                Ok(Some(n)) => {
                    let args = self.decoder.args(input);
                    let flow = if args.is_empty() {
                        Flow::Continue
                    } else {
                        let mark = out.len();
                        let slots = self.forwarded.len();
                        let started = self.metrics.as_mut().and_then(CommandRecorder::start);
                        let mut cx = Ctx {
                            shared: &self.shared,
                            limits,
                            conn: &mut self.conn,
                            pass: Some(&self.pass),
                            forward: Some(&mut self.forwarded),
                        };
                        let flow = handler::handle(&args, &mut cx, out);
                        // Messages published while the command ran (to itself too: PUBLISH,
                        // a keyspace event) go before its reply, where redis writes them.
                        if let Some(m) = &self.conn.mailbox {
                            let before = out.len();
                            if m.has_pending() && !deliver_before(m, out, mark) {
                                return Flow::Close;
                            }
                            self.forwarded.shift(mark, out.len() - before);
                        }
                        // A blocked command is counted once, when it finally answers.
                        if let (Some(m), false) = (&mut self.metrics, flow == Flow::Block) {
                            // Simple and blob errors; the index of an unknown command is ALL.len().
                            let error = matches!(out.get(mark), Some(b'-' | b'!'));
                            let command =
                                self.conn.current.map_or(Command::ALL.len(), |c| c as usize);
                            m.record(command, error, started);
                        }
                        if output_over_limit(out, mark, limits, &self.shared) {
                            self.forwarded.truncate(slots);
                            Flow::Close
                        } else {
                            flow
                        }
                    };
                    if flow == Flow::Block {
                        // The request stays in `input`: it is retried after the wake-up.
                        return Flow::Block;
                    }
                    input.advance(n);
                    if flow == Flow::Close {
                        return Flow::Close;
                    }
                }
                Ok(None) => return Flow::Continue,
                Err(e) => {
                    frame::encode_proto_error(out, e);
                    return Flow::Close;
                }
            }
        }
    }
}

/// Moves `m`'s pending messages into `out` at `mark` (before the reply written after it).
/// False when the mailbox overflowed: the connection closes.
fn deliver_before(m: &crate::server::pubsub::Mailbox, out: &mut BytesMut, mark: usize) -> bool {
    let reply = out.split_off(mark);
    if m.take(out).is_err() {
        return false;
    }
    out.unsplit(reply);
    true
}

impl RespSession {
    /// Answers a batch while a script has run past the busy threshold (outside the gate):
    /// SCRIPT KILL, FUNCTION KILL and QUIT run, every other request gets redis's BUSY error.
    fn run_busy(&mut self, input: &mut BytesMut, out: &mut BytesMut, function: bool) -> Flow {
        let limits = self.limits.load();
        loop {
            match self.decoder.decode(input, limits) {
                Ok(Some(n)) => {
                    let args = self.decoder.args(input);
                    let mut flow = Flow::Continue;
                    if !args.is_empty() {
                        self.conn.commands += 1;
                        if script::allowed_while_busy(&args) {
                            let mut cx = Ctx {
                                shared: &self.shared,
                                limits,
                                conn: &mut self.conn,
                                pass: None,
                                forward: None,
                            };
                            flow = handler::handle(&args, &mut cx, out);
                        } else {
                            frame::encode_error(out, &error::RespError::Busy(function));
                        }
                    }
                    input.advance(n);
                    if flow == Flow::Close {
                        return Flow::Close;
                    }
                }
                Ok(None) => return Flow::Continue,
                Err(e) => {
                    frame::encode_proto_error(out, e);
                    return Flow::Close;
                }
            }
        }
    }
}

impl Drop for RespSession {
    fn drop(&mut self) {
        pubsub::leave(&mut self.conn, &self.shared);
        tracking::off(&mut self.conn, &self.shared);
        if self.conn.mailbox.is_some() {
            self.shared.pubsub.deregister(self.conn.id);
        }
        // A client that disconnects (or is shut down) while blocked leaves the queues.
        if let Some(b) = self.conn.blocked.take() {
            self.shared.waiters.leave(&b.parked);
        }
        self.shared.clients.unregister(self.conn.id);
    }
}

impl Session for RespSession {
    fn inbox(&self) -> Option<&tokio::sync::Notify> {
        self.conn.mailbox.as_deref().map(|m| m.notify())
    }

    fn closing(&self) -> Option<&tokio::sync::Notify> {
        self.conn.mailbox.as_deref().map(|m| m.overflow())
    }

    fn forwarded(&mut self) -> Option<&mut Forwarded> {
        Some(&mut self.forwarded)
    }

    fn waiting(&self) -> Option<(Arc<tokio::sync::Notify>, Option<std::time::Instant>)> {
        if self.gate_wait {
            return Some(self.pass.wake_hint(|| script::busy_threshold(&self.shared)));
        }
        self.conn
            .blocked
            .as_ref()
            .map(|b| (Arc::clone(&b.parked.notify), b.deadline))
    }

    fn process(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Flow {
        self.gate_wait = false;
        let flow = if self.pass.try_enter() {
            let flow = self.run(input, out);
            self.pass.leave();
            // Block without a blocked command: EXEC or a script found the gate taken and is
            // retried once it opens.
            if flow == Flow::Block && self.conn.blocked.is_none() {
                self.gate_wait = true;
            }
            flow
        } else {
            // Kept out (EXEC or a script runs): answer BUSY once a script has run too long,
            // otherwise wait (asynchronously, see `waiting`) and try again.
            match self.pass.busy(|| script::busy_threshold(&self.shared)) {
                Some(Entry::Busy(function)) => self.run_busy(input, out, function),
                _ => {
                    self.gate_wait = true;
                    return Flow::Block;
                }
            }
        };
        if let Some(m) = &mut self.metrics {
            m.flush();
        }
        if self.conn.commands > 0 {
            Stats::add(&self.shared.stats.commands_processed, self.conn.commands);
            self.conn.commands = 0;
            if let Some(c) = &self.conn.client {
                c.touch(self.shared.clock.now_ms());
            }
            self.conn.publish();
        }
        if self.forwarded.pending() {
            self.forwarded.flow = Some(flow);
            return Flow::Remote;
        }
        flow
    }
}
