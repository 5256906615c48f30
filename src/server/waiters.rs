//! The clients blocked on keys (BLPOP & co.), per key, in arrival order.
//!
//! Owns: [`Waiters`], one per server in `Shared`. Protocol-neutral: it knows client ids, keys
//! and `Notify` handles, not commands or replies (the try/block/retry cycle is
//! `proto::resp::types::blocking`).
//! Invariants: `count` is the number of (client, key) registrations; `notify` costs one atomic
//! load when it is 0, so writes without waiters pay nothing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hashbrown::HashMap;
use parking_lot::Mutex;
use tokio::sync::Notify;

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

    /// Removes client `id` from the keys' queues. Where it was at the head, the new head is
    /// woken: the client may have been woken for an element it did not take (it timed out,
    /// failed, or disconnected), and the element must not sit there while others wait. A
    /// wake-up that finds nothing costs one retry.
    pub fn unregister(&self, id: u64, keys: &[Box<[u8]>]) {
        self.clients.fetch_sub(1, Ordering::Relaxed);
        let mut q = self.queues.lock();
        for k in keys {
            if let Some(queue) = q.get_mut(k) {
                let was_head = queue.front().is_some_and(|(i, _)| *i == id);
                let before = queue.len();
                queue.retain(|(i, _)| *i != id);
                self.count.fetch_sub(before - queue.len(), Ordering::SeqCst);
                match queue.front() {
                    None => {
                        q.remove(k);
                    }
                    Some((_, next)) if was_head => next.notify_one(),
                    Some(_) => {}
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// True if `n` has a stored wake-up (consumed by this check).
    async fn woken(n: &Notify) -> bool {
        tokio::time::timeout(Duration::ZERO, n.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn notify_wakes_the_head_only() {
        let w = Waiters::default();
        let (a, b) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let keys: Vec<Box<[u8]>> = vec![b"k".to_vec().into()];
        w.register(1, &a, &keys);
        w.register(2, &b, &keys);
        assert_eq!(w.len(), 2);
        w.notify(b"k");
        assert!(woken(&a).await, "the head was not woken");
        assert!(!woken(&b).await, "the second client was woken too");
        w.unregister(1, &keys);
        assert!(
            woken(&b).await,
            "the new head was not woken when the head left"
        );
        w.notify(b"k");
        assert!(woken(&b).await, "the new head was not woken");
        w.unregister(2, &keys);
        assert!(w.is_empty());
        assert_eq!(w.clients(), 0);
    }
}
