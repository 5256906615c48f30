//! Blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP).
//!
//! Owns: the try/block/retry cycle of a blocking command; the per-key waiter queues are
//! `server::waiters::Waiters` (one per server in `Shared`). Must not touch: sockets (the
//! connection driver does the waiting, see `Flow::Block` and `Session::waiting`).
//!
//! How a client blocks: the command registers the connection at the tail of each key's queue,
//! then tries to pop, exactly like its non-blocking form (registering first means a push that
//! lands during the attempt wakes it: no lost wake-up). Served or failed, it leaves the queues
//! at once. If every key is empty it records the deadline in its `Conn` and returns
//! [`Flow::Block`] without consuming the request. The driver then waits for the connection's
//! `Notify`, the deadline, shutdown or the peer closing, and calls `process` again, which runs
//! the same request as a retry: served, failed (e.g. WRONGTYPE on BLMOVE's destination),
//! timed out (null array, like redis), or blocked again with its place in the queues kept.
//! Inside EXEC a blocking command is its non-blocking form.
//!
//! Waking: every command that can add elements to a list or sorted set (pushes, LINSERT,
//! LMOVE's destination, ZADD, ZINCRBY, the *STORE commands, RENAME, COPY) calls
//! [`Waiters::notify`](crate::server::waiters::Waiters::notify) for the key, from any
//! connection; that wakes only the head of the key's queue (arrival order). A client that
//! leaves a queue from its head for any reason (served, failed, timed out, disconnected) wakes
//! the next one (`Waiters::unregister`), so an element is never left behind while a client
//! waits; a served client also notifies each of its keys. A woken client that finds the key
//! empty again (a non-blocking pop got there first) stays at the head. `notify` costs one
//! atomic load when nobody is blocked, so GET/SET and pushes without waiters pay nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::Notify;

use crate::proto::Flow;
use crate::proto::resp::conn::{Blocked, Ctx, Reply};
use crate::proto::resp::error::RespError;
use crate::proto::resp::float::LongDouble;
use crate::proto::resp::frame::{Version, encode_null_array};

/// redis `getTimeoutFromObjectOrReply` (seconds, fractions allowed): None = block forever.
fn parse_timeout(s: &[u8]) -> Result<Option<Duration>, RespError> {
    let t = LongDouble::parse(s)
        .and_then(|ld| {
            std::str::from_utf8(s)
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .filter(|_| !ld.is_nan_or_infinite())
        })
        .ok_or_else(|| RespError::TimeoutNotFloat)?;
    if t < 0.0 {
        return Err(RespError::TimeoutNegative);
    }
    let ms = (t * 1000.0).ceil();
    if ms > 1e15 {
        return Err(RespError::TimeoutOutOfRange);
    }
    Ok((ms > 0.0).then(|| Duration::from_millis(ms as u64)))
}

/// Runs one attempt of a blocking command over `keys`: `attempt` tries to serve it (writing
/// its reply and returning true). Otherwise blocks (first attempt), keeps blocking, or answers
/// the timeout (null array).
pub(crate) fn run(
    cx: &mut Ctx<'_>,
    keys: &[&[u8]],
    timeout: &[u8],
    out: &mut BytesMut,
    flow: &mut Flow,
    attempt: impl FnOnce(&mut Ctx<'_>, &mut BytesMut) -> Result<bool, RespError>,
) -> Reply {
    let first = cx.conn.blocked.is_none();
    let timeout = if first { parse_timeout(timeout)? } else { None };
    if cx.conn.in_exec {
        // Inside MULTI/EXEC a blocking command is its non-blocking form (redis does the same).
        if !attempt(cx, out)? {
            encode_null_array(out, cx.conn.version);
        }
        return Ok(());
    }
    let waiters = &cx.shared.waiters;
    if first {
        // In the queues before the first attempt: a push that lands between a failed attempt
        // and the registration would otherwise wake nobody, and the element would sit in the
        // list while this client waits.
        let b = Blocked {
            keys: keys.iter().map(|k| Box::<[u8]>::from(*k)).collect(),
            notify: Arc::new(Notify::new()),
            deadline: timeout.map(|t| Instant::now() + t),
        };
        waiters.register(cx.conn.id, &b.notify, &b.keys);
        cx.conn.blocked = Some(Box::new(b));
    }
    let served = attempt(cx, out);
    if !matches!(served, Ok(false)) {
        if let Some(b) = cx.conn.blocked.take() {
            waiters.unregister(cx.conn.id, &b.keys);
        }
        if served.is_ok() {
            for k in keys {
                waiters.notify(k);
            }
        }
        return served.map(|_| ());
    }
    match &cx.conn.blocked {
        Some(b) if b.deadline.is_some_and(|d| Instant::now() >= d) => {
            let b = cx.conn.blocked.take().expect("blocked");
            waiters.unregister(cx.conn.id, &b.keys);
            encode_null_array(out, cx.conn.version);
            return Ok(());
        }
        _ => {}
    }
    *flow = Flow::Block;
    Ok(())
}

/// A command that blocks only in its B* form (LMOVE/BLMOVE, RPOPLPUSH/BRPOPLPUSH,
/// LMPOP/BLMPOP, ZMPOP/BZMPOP): with a `timeout`, [`run`]; without, one attempt, answered by
/// `nothing` (the non-blocking form's null reply) when it served nothing.
pub(crate) fn run_or_answer(
    cx: &mut Ctx<'_>,
    keys: &[&[u8]],
    timeout: Option<&[u8]>,
    out: &mut BytesMut,
    flow: &mut Flow,
    nothing: fn(&mut BytesMut, Version),
    attempt: impl FnOnce(&mut Ctx<'_>, &mut BytesMut) -> Result<bool, RespError>,
) -> Reply {
    match timeout {
        Some(t) if !cx.conn.in_exec => run(cx, keys, t, out, flow, attempt),
        _ => {
            // Inside EXEC the B* form is its non-blocking form, reply included (BRPOPLPUSH
            // answers a null bulk like RPOPLPUSH), after the timeout is checked.
            if let Some(t) = timeout {
                parse_timeout(t)?;
            }
            if !attempt(cx, out)? {
                nothing(out, cx.conn.version);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_like_redis() {
        assert_eq!(parse_timeout(b"0"), Ok(None));
        assert_eq!(parse_timeout(b"0.1"), Ok(Some(Duration::from_millis(100))));
        assert_eq!(parse_timeout(b"2"), Ok(Some(Duration::from_secs(2))));
        assert!(parse_timeout(b"-1").is_err());
        assert!(parse_timeout(b"abc").is_err());
        assert!(parse_timeout(b"inf").is_err());
    }
}
