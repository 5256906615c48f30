//! One connection's bounded mailbox: the pub/sub messages and invalidations published to it
//! wait here until its session moves them to the output.
//!
//! Owns: the pending bytes, their bound, the wake-up of the connection. Must not touch:
//! subscriptions (`pubsub`), tracking (`tracking`), sockets.
//!
//! Invariants: pending bytes never pass the limit given to a push: the push that would pass
//! it drops them all and marks the mailbox overflowed, and the connection closes when its
//! session next takes from it. A mailbox is woken once when it goes from empty to not empty.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Messages waiting for one connection, bounded.
#[derive(Debug)]
pub struct Mailbox {
    /// The subscriber's client id (what unsubscribing matches on).
    id: u64,
    /// The subscriber speaks RESP3: messages are pushes (`>`).
    resp3: AtomicBool,
    /// The connection has subscriptions (see `is_subscribed`).
    subscribed: AtomicBool,
    pending: Mutex<Pending>,
    /// Woken when the mailbox goes from empty to not empty, or overflows.
    notify: Notify,
    /// Woken once when the mailbox overflows: the driver stops a stalled write for it.
    overflow: Notify,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: BytesMut,
    overflowed: bool,
}

/// The mailbox's pending messages passed the limit: its connection must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflowed;

impl Mailbox {
    /// An empty mailbox for client `id`.
    pub fn new(id: u64, resp3: bool) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            id,
            resp3: AtomicBool::new(resp3),
            subscribed: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            notify: Notify::new(),
            overflow: Notify::new(),
        })
    }

    /// The client id this mailbox belongs to.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Follows the connection's protocol version (HELLO).
    pub fn set_resp3(&self, resp3: bool) {
        self.resp3.store(resp3, Ordering::Relaxed);
    }

    /// What the connection driver waits on while idle.
    pub fn notify(&self) -> &Notify {
        &self.notify
    }

    /// What the connection driver races a write against: woken when the mailbox overflows
    /// (the connection is to close, even while a write to it is stalled).
    pub fn overflow(&self) -> &Notify {
        &self.overflow
    }

    /// The connection speaks RESP3.
    pub fn is_resp3(&self) -> bool {
        self.resp3.load(Ordering::Relaxed)
    }

    /// The connection has subscriptions (a RESP2 one is in subscribe mode, where a pub/sub
    /// message is expected at any time).
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    /// Follows the connection's subscriptions.
    pub fn set_subscribed(&self, subscribed: bool) {
        self.subscribed.store(subscribed, Ordering::Relaxed);
    }

    /// Appends a frame already encoded for this connection's protocol (invalidations).
    pub fn push_raw(&self, frame: &[u8], limit: u64) -> bool {
        self.append(frame, limit, false)
    }

    /// Appends one message encoded as a RESP2 array (`frame[0] == b'*'`). Returns false when
    /// this push made the mailbox overflow (the caller counts the connection as closed once).
    pub fn push(&self, frame: &[u8], limit: u64) -> bool {
        self.append(frame, limit, self.resp3.load(Ordering::Relaxed))
    }

    fn append(&self, frame: &[u8], limit: u64, push_type: bool) -> bool {
        let mut p = self.pending.lock();
        if p.overflowed {
            return true;
        }
        if (p.bytes.len() + frame.len()) as u64 > limit {
            p.overflowed = true;
            p.bytes = BytesMut::new();
            drop(p);
            self.notify.notify_one();
            self.overflow.notify_one();
            return false;
        }
        let was_empty = p.bytes.is_empty();
        let start = p.bytes.len();
        p.bytes.extend_from_slice(frame);
        if push_type && !frame.is_empty() {
            p.bytes[start] = b'>';
        }
        drop(p);
        if was_empty {
            self.notify.notify_one();
        }
        true
    }

    /// Moves the pending messages to the end of `out`.
    pub fn take(&self, out: &mut BytesMut) -> Result<(), Overflowed> {
        let mut p = self.pending.lock();
        if p.overflowed {
            return Err(Overflowed);
        }
        if p.bytes.is_empty() {
            return Ok(());
        }
        if out.is_empty() {
            std::mem::swap(out, &mut p.bytes);
        } else {
            out.extend_from_slice(&p.bytes);
            p.bytes.clear();
        }
        // A burst's buffer is not kept by an idle subscriber.
        if p.bytes.capacity() > 64 * 1024 {
            p.bytes = BytesMut::new();
        }
        Ok(())
    }

    /// True when messages wait (cheap enough to call after every command of a subscriber).
    pub fn has_pending(&self) -> bool {
        let p = self.pending.lock();
        p.overflowed || !p.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_releases_the_pending_bytes_and_stays() {
        let m = Mailbox::new(7, false);
        assert!(m.push(&[b'*'; 600], 1000));
        assert!(!m.push(&[b'*'; 600], 1000), "this push passes the limit");
        assert_eq!(m.pending.lock().bytes.capacity(), 0, "memory released");
        assert!(m.push(&[b'*'; 10], 1000), "counted once");
        assert_eq!(m.take(&mut BytesMut::new()), Err(Overflowed));
    }

    #[test]
    fn resp3_mailboxes_turn_arrays_into_pushes() {
        let m = Mailbox::new(1, true);
        m.push(b"*1\r\n$1\r\na\r\n", 100);
        m.push_raw(b"*1\r\n$1\r\nb\r\n", 100);
        let mut out = BytesMut::new();
        m.take(&mut out).expect("not overflowed");
        assert_eq!(&out[..], b">1\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n");
    }
}
