//! Blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP) and
//! blocking stream reads (XREAD BLOCK, in `stream`).
//!
//! Owns: the try/block/retry cycle of a blocking command; the per-key waiter queues are
//! `server::waiters::Waiters` (one per server in `Shared`). Must not touch: sockets (the
//! connection driver does the waiting, see `Flow::Block` and `Session::waiting`).
//!
//! How a client blocks: the command registers the connection at the tail of each key's queue,
//! then tries to serve itself, exactly like its non-blocking form (registering first means a
//! push that lands during the attempt finds it: no lost wake-up). Served or failed, it leaves
//! the queues at once. If every key is empty it records the deadline in its `Conn` and returns
//! [`Flow::Block`] without consuming the request. The driver then waits for the connection's
//! `Notify`, the deadline, shutdown or the peer closing, and calls `process` again, which runs
//! the same request again: it sends the reply stored for it, or answers the timeout (null
//! array, like redis), or keeps blocking.
//! Inside EXEC a blocking command is its non-blocking form.
//!
//! Serving, as redis does it: every command that can add elements to a list or sorted set
//! (pushes, LINSERT, LMOVE's destination, ZADD, ZINCRBY, the *STORE commands, RENAME, COPY)
//! calls [`Waiters::notify`](crate::server::waiters::Waiters::notify) for the key, which marks
//! it ready when clients wait on it. Before that command answers, its connection runs
//! [`serve_ready`]: each waiting client's request runs once more on the client's behalf, in
//! arrival order, until the key cannot serve the next one (a blocked XREAD or XREADGROUP
//! that gets nothing does not stop the ones behind it: `Parked::reader`); the reply (an
//! element, or an error such as WRONGTYPE from BLMOVE's destination, after which the element
//! goes to the next client) is stored for the client, which is woken to send it. So no command that runs after
//! the push (an LPOP from a third client) can take an element from a blocked client, and no
//! element is left behind while a client that could take it waits. `notify` costs one atomic
//! load when nobody is blocked, so GET/SET and pushes without waiters pay nothing; serving
//! costs one more atomic load per command.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::proto::Flow;
use crate::proto::resp::command::Command;
use crate::proto::resp::conn::{Blocked, Conn, Ctx, Queued, Reply};
use crate::proto::resp::error::RespError;
use crate::proto::resp::float::LongDouble;
use crate::proto::resp::frame::{Args, Version, encode_null_array};
use crate::server::waiters::{Park, Parked};

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

/// A blocked request as the serving connection runs it: its arguments and the client's
/// protocol version (the reply is encoded for the client, not for the server).
struct Retry {
    request: Queued,
    version: Version,
}

/// Serves the keys that got elements while clients wait on them (see
/// `server::waiters`): each blocked request runs through `run` (the dispatcher) on its
/// client's behalf, and its reply goes to the client. The connection that wrote calls this
/// before it answers (not inside EXEC, whose end serves them all, nor on behalf of another).
pub(crate) fn serve_ready(
    cx: &Ctx<'_>,
    run: &mut dyn FnMut(&Args<'_>, &mut Ctx<'_>, &mut BytesMut),
) {
    let (shared, limits) = (cx.shared, cx.limits);
    shared.waiters.serve(|request| {
        let retry = request
            .downcast_ref::<Retry>()
            .expect("RESP sessions park RESP requests");
        let mut conn = Conn::on_behalf(retry.version);
        let mut cx = Ctx {
            shared,
            limits,
            conn: &mut conn,
            pass: None,
            forward: None,
        };
        let mut out = BytesMut::new();
        run(&retry.request.args(), &mut cx, &mut out);
        conn.served.then(|| out.to_vec())
    });
}

/// Runs one attempt of blocking command `a` over `keys`: `attempt` tries to serve it (writing
/// its reply and returning true). Otherwise blocks (first attempt), keeps blocking, or answers
/// the timeout (null array).
pub(crate) fn run(
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    keys: &[&[u8]],
    timeout: &[u8],
    out: &mut BytesMut,
    flow: &mut Flow,
    attempt: impl FnOnce(&mut Ctx<'_>, &mut BytesMut) -> Result<bool, RespError>,
) -> Reply {
    // Parsing is pure: a request that parsed when it blocked parses the same on every retry.
    let timeout = parse_timeout(timeout)?;
    run_with_timeout(a, cx, keys, timeout, out, flow, attempt)
}

/// [`run`] with the timeout already parsed (None = forever): XREAD/XREADGROUP give theirs in
/// milliseconds.
pub(crate) fn run_with_timeout(
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    keys: &[&[u8]],
    timeout: Option<Duration>,
    out: &mut BytesMut,
    flow: &mut Flow,
    attempt: impl FnOnce(&mut Ctx<'_>, &mut BytesMut) -> Result<bool, RespError>,
) -> Reply {
    if cx.conn.on_behalf {
        // Another connection serves this client: one attempt; an error is an answer too.
        let r = attempt(cx, out);
        cx.conn.served = !matches!(r, Ok(false));
        return r.map(|_| ());
    }
    if cx.conn.in_exec {
        // Inside MULTI/EXEC a blocking command is its non-blocking form (redis does the same).
        if !attempt(cx, out)? {
            encode_null_array(out, cx.conn.version);
        }
        return Ok(());
    }
    let waiters = &cx.shared.waiters;
    let Some(b) = &cx.conn.blocked else {
        // First attempt. In the queues before it: a push that lands between a failed attempt
        // and the registration would otherwise serve nobody, and the element would sit in the
        // list while this client waits. The attempt holds the client's state, so a connection
        // serving the key meanwhile waits for it, then finds the client gone or still waiting.
        let retry = Retry {
            request: Queued::of(a),
            version: cx.conn.version,
        };
        let keys = keys.iter().map(|k| Box::<[u8]>::from(*k)).collect();
        // XREAD/XREADGROUP take nothing from their keys: readers (see `Parked::reader`).
        let reader = matches!(cx.conn.current, Some(Command::XRead | Command::XReadGroup));
        let parked = Parked::with_role(cx.conn.id, keys, Box::new(retry), reader);
        waiters.register(&parked);
        let mut st = parked.state();
        let served = attempt(cx, out);
        if matches!(served, Ok(false)) {
            drop(st);
            cx.conn.blocked = Some(Box::new(Blocked {
                parked,
                deadline: timeout.map(|t| Instant::now() + t),
            }));
            *flow = Flow::Block;
            return Ok(());
        }
        waiters.leave_locked(&parked, &mut st);
        return served.map(|_| ());
    };
    // Woken, or the deadline passed: served on its behalf meanwhile, timed out, or still
    // waiting (its key is served by whoever writes to it, in arrival order).
    let timed_out = b.deadline.is_some_and(|d| Instant::now() >= d);
    let parked = std::sync::Arc::clone(&b.parked);
    let mut st = parked.state();
    if *st == Park::Waiting && !timed_out {
        *flow = Flow::Block;
        return Ok(());
    }
    match waiters.leave_locked(&parked, &mut st) {
        Some(reply) => out.extend_from_slice(&reply),
        None => encode_null_array(out, cx.conn.version),
    }
    drop(st);
    cx.conn.blocked = None;
    Ok(())
}

/// A command that blocks only in its B* form (LMOVE/BLMOVE, RPOPLPUSH/BRPOPLPUSH,
/// LMPOP/BLMPOP, ZMPOP/BZMPOP): with a `timeout`, [`run`]; without, one attempt, answered by
/// `nothing` (the non-blocking form's null reply) when it served nothing.
#[allow(clippy::too_many_arguments)] // `run`'s arguments plus the non-blocking form's reply.
pub(crate) fn run_or_answer(
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    keys: &[&[u8]],
    timeout: Option<&[u8]>,
    out: &mut BytesMut,
    flow: &mut Flow,
    nothing: fn(&mut BytesMut, Version),
    attempt: impl FnOnce(&mut Ctx<'_>, &mut BytesMut) -> Result<bool, RespError>,
) -> Reply {
    match timeout {
        Some(t) if !cx.conn.in_exec => run(a, cx, keys, t, out, flow, attempt),
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
