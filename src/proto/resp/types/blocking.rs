//! Blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP).
//!
//! Owns: the per-key waiter queues ([`Waiters`], one per server in `Shared`) and the
//! try/block/retry cycle of a blocking command. Must not touch: sockets (the connection driver
//! does the waiting, see `Flow::Block` and `Session::waiting`).
//!
//! How a client blocks: the command first tries to pop, exactly like its non-blocking form. If
//! every key is empty it registers the connection at the tail of each key's queue, records the
//! deadline in its `Conn`, and returns [`Flow::Block`] without consuming the request. The driver
//! then waits for the connection's `Notify`, the deadline, shutdown or the peer closing, and
//! calls `process` again, which runs the same request as a retry: served, timed out (null
//! array, like redis), or blocked again with its place in the queues kept.
//!
//! Waking: every command that can add elements to a list or sorted set (pushes, LINSERT,
//! LMOVE's destination, ZADD, ZINCRBY, the *STORE commands, RENAME, COPY) calls
//! [`Waiters::notify`] for the key, from any connection; that wakes only the head of the key's
//! queue (arrival order). A served client leaves every queue and passes the baton: it notifies
//! each of its keys, so the next waiter runs if elements are left. A woken client that finds
//! the key empty again (a non-blocking pop got there first) stays at the head. `notify` costs
//! one atomic load when nobody is blocked, so GET/SET and pushes without waiters pay nothing.
//! A connection that closes while blocked (disconnect, shutdown) leaves the queues when its
//! session is dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hashbrown::HashMap;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::proto::Flow;
use crate::proto::resp::float::LongDouble;
use crate::proto::resp::frame::{RespError, encode_null_array};
use crate::proto::resp::handler::{Ctx, Reply};

/// (client id, its wake-up) in arrival order.
type Queue = VecDeque<(u64, Arc<Notify>)>;

/// The blocked clients of a server, per key, in arrival order.
#[derive(Default)]
pub struct Waiters {
    queues: Mutex<HashMap<Box<[u8]>, Queue>>,
    /// Registered (client, key) pairs: `notify` returns at once when 0.
    count: AtomicUsize,
    /// Blocked clients (INFO `blocked_clients`).
    clients: AtomicUsize,
}

impl Waiters {
    /// Adds client `id` at the tail of each key's queue (once per blocking; pair with one
    /// `unregister`).
    pub fn register(&self, id: u64, notify: &Arc<Notify>, keys: &[Box<[u8]>]) {
        self.clients.fetch_add(1, Ordering::Relaxed);
        let mut q = self.queues.lock();
        for k in keys {
            let queue = q.entry(k.clone()).or_default();
            if !queue.iter().any(|(i, _)| *i == id) {
                queue.push_back((id, Arc::clone(notify)));
                self.count.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// Removes client `id` from the keys' queues.
    pub fn unregister(&self, id: u64, keys: &[Box<[u8]>]) {
        self.clients.fetch_sub(1, Ordering::Relaxed);
        let mut q = self.queues.lock();
        for k in keys {
            if let Some(queue) = q.get_mut(k) {
                let before = queue.len();
                queue.retain(|(i, _)| *i != id);
                self.count.fetch_sub(before - queue.len(), Ordering::SeqCst);
                if queue.is_empty() {
                    q.remove(k);
                }
            }
        }
    }

    /// Wakes the first client blocked on `key`, if any.
    #[inline]
    pub fn notify(&self, key: &[u8]) {
        if self.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Some((_, n)) = self.queues.lock().get(key).and_then(|q| q.front()) {
            n.notify_one();
        }
    }

    /// Number of (client, key) registrations (tests, INFO).
    pub fn len(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Clients blocked now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// True if nobody is blocked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A connection's blocked state (in `Conn`).
#[derive(Debug)]
pub struct Blocked {
    /// Keys it waits on.
    pub keys: Vec<Box<[u8]>>,
    /// Woken by pushes.
    pub notify: Arc<Notify>,
    /// When to give up; None = never.
    pub deadline: Option<Instant>,
}

/// redis `getTimeoutFromObjectOrReply` (seconds, fractions allowed): None = block forever.
fn parse_timeout(s: &[u8]) -> Result<Option<Duration>, RespError> {
    let t = LongDouble::parse(s)
        .and_then(|ld| {
            std::str::from_utf8(s)
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .filter(|_| !ld.is_nan_or_infinite())
        })
        .ok_or(RespError::Text(
            "ERR timeout is not a float or out of range",
        ))?;
    if t < 0.0 {
        return Err(RespError::Text("ERR timeout is negative"));
    }
    let ms = (t * 1000.0).ceil();
    if ms > 1e15 {
        return Err(RespError::Text("ERR timeout is out of range"));
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
    let served = attempt(cx, out);
    let waiters = &cx.shared.waiters;
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
        None => {
            let b = Blocked {
                keys: keys.iter().map(|k| Box::<[u8]>::from(*k)).collect(),
                notify: Arc::new(Notify::new()),
                deadline: timeout.map(|t| Instant::now() + t),
            };
            waiters.register(cx.conn.id, &b.notify, &b.keys);
            cx.conn.blocked = Some(Box::new(b));
        }
        Some(b) if b.deadline.is_some_and(|d| Instant::now() >= d) => {
            let b = cx.conn.blocked.take().expect("blocked");
            waiters.unregister(cx.conn.id, &b.keys);
            encode_null_array(out, cx.conn.version);
            return Ok(());
        }
        Some(_) => {}
    }
    *flow = Flow::Block;
    Ok(())
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

    #[test]
    fn notify_wakes_the_head_only() {
        let w = Waiters::default();
        let (a, b) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let keys: Vec<Box<[u8]>> = vec![b"k".to_vec().into()];
        w.register(1, &a, &keys);
        w.register(2, &b, &keys);
        assert_eq!(w.len(), 2);
        w.notify(b"k");
        w.unregister(1, &keys);
        w.unregister(2, &keys);
        assert!(w.is_empty());
    }
}
