//! Wire protocols. Each protocol provides a [`Session`]: per-connection state that turns bytes
//! read from the socket into replies, without knowing about sockets itself.

pub mod any;
pub mod forward;
pub mod memcache;
pub mod resp;
pub mod translate;

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::sync::Notify;

use crate::config::Limits;
use crate::server::{Shared, Stats};

/// What the connection should do after writing the replies of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// The replies reached [`OUT_HIGH_WATER`] with complete requests still in the input: write
    /// `out`, then call `process` again before reading more. This bounds the reply buffer of a
    /// client that pipelines many large gets in one batch.
    Pause,
    /// Write what is in the output buffer, then close (quit, or framing was lost).
    Close,
    /// A blocking command (BLPOP, ...) waits: write `out`, then wait for
    /// [`Session::waiting`]'s wake-up or deadline (or shutdown, or the peer closing), then
    /// call `process` again, which retries the command.
    Block,
    /// Requests of the batch were forwarded to remote members: the driver waits for their
    /// replies ([`Session::forwarded`], `Forwarded::settle`), which also gives the flow the
    /// batch really ended with, before writing `out`.
    Remote,
}

/// Reply bytes after which a session stops taking requests from the current batch and lets the
/// driver write them first ([`Flow::Pause`]).
pub const OUT_HIGH_WATER: usize = 4 * 1024 * 1024;

/// One protocol session per connection: owns decoder state.
pub trait Session: Send {
    /// Decodes and handles every complete request in `input` (consuming it), appending replies
    /// to `out`. Incomplete trailing bytes stay in `input`. Returns [`Flow::Close`] when the
    /// connection must close after `out` is written, [`Flow::Pause`] when it stopped early
    /// because `out` is full.
    fn process(&mut self, input: &mut bytes::BytesMut, out: &mut BytesMut) -> Flow;

    /// What wakes the session while it waits for input: messages for it are pending (pub/sub,
    /// invalidations). None for a session that never receives any (the driver then waits on
    /// the socket alone). On a wake-up the driver calls `process` with the input it has, and
    /// the session moves the pending messages into `out`.
    fn inbox(&self) -> Option<&Notify> {
        None
    }

    /// Woken when the session must close even while a write to its peer is stalled (its
    /// mailbox overflowed); None for a session without a mailbox.
    fn closing(&self) -> Option<&Notify> {
        None
    }

    /// After [`Flow::Remote`]: the batch's replies still to come from remote members.
    fn forwarded(&mut self) -> Option<&mut forward::Forwarded> {
        None
    }

    /// After [`Flow::Block`]: what to wait for (the wake-up and the deadline, None = forever).
    fn waiting(&self) -> Option<(Arc<Notify>, Option<Instant>)> {
        None
    }
}

/// Enforces `limits.max_output_buffer` after one request: when that request's replies (from
/// `mark`, where they began) passed it, drops them, counts the connection as closed for its
/// output buffer and returns true; the session then ends with [`Flow::Close`]. Earlier replies
/// of the batch are complete and still written; they are bounded by [`OUT_HIGH_WATER`] (the
/// session pauses there), so one connection holds at most `OUT_HIGH_WATER +
/// max_output_buffer` of replies.
pub fn output_over_limit(
    out: &mut BytesMut,
    mark: usize,
    limits: &Limits,
    shared: &Shared,
) -> bool {
    if (out.len() - mark) as u64 <= limits.max_output_buffer {
        return false;
    }
    tracing::info!(
        bytes = out.len() - mark,
        limit = limits.max_output_buffer,
        "closing connection: replies passed limits.max_output_buffer"
    );
    out.truncate(mark);
    Stats::add(&shared.stats.closed_output_buffer, 1);
    true
}

/// Runs `f`, which may hold its thread for long (a script), off the runtime's worker when the
/// runtime allows it (multi-threaded): the worker's role (its queued sessions, polling the
/// sockets) moves to another thread meanwhile. A worker busy for long without this leaves the
/// others asleep with nobody polling the sockets, so no request, SCRIPT KILL included, would
/// be seen until the script ends. On a current-thread runtime, or outside one, `f` runs in
/// place.
pub fn off_worker<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
