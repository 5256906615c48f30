//! The clients blocked on keys (BLPOP & co.), per key, in arrival order, and the serving of
//! them when their keys get elements.
//!
//! Owns: [`Waiters`], one per server in `Shared`, and [`Parked`], one per blocked client.
//! Protocol-neutral: it knows client ids, keys, an opaque request and reply bytes, not
//! commands (the try/block/serve cycle is `proto::resp::types::blocking`).
//!
//! Serving, as redis does it: a write that can give a blocked client its element marks the key
//! *ready* ([`Waiters::notify`]); the connection that wrote then serves the ready keys
//! ([`Waiters::serve`]) before it answers: it runs each blocked client's request on that
//! client's behalf, in arrival order, stores the reply in the client's [`Parked`] and wakes it.
//! So when a push returns, the blocked clients it fed have been served, and no later command
//! of anyone (an LPOP, say) can take the element first.
//!
//! Invariants:
//! - `count` is the number of (client, key) registrations; `notify` costs one atomic load when
//!   it is 0, so writes without waiters pay nothing.
//! - A `Parked` is in the queues only while its state is `Waiting`; whoever changes the state
//!   (the serving connection, or the client itself timing out or leaving) removes it from the
//!   queues under the state's lock, so a server that locks a head still in a queue finds it
//!   waiting.
//! - A client that cannot be served ends its key's turn (the ones behind it wait for a later
//!   write), except a reader ([`Parked::reader`]: XREAD, XREADGROUP), which takes nothing: the
//!   clients behind it are each tried once.
//! - One serving pass at a time (`serving`): a writer that finds another connection serving
//!   waits for it, so its reply still follows the service of the clients it fed.
//! - Lock order: `serving`, then a `Parked`'s state, then the stores' locks, then `queues`,
//!   then `ready`. Nothing holds `queues` or `ready` while taking another lock.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use hashbrown::HashMap;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// A key's blocked clients, in arrival order.
type Queue = VecDeque<Arc<Parked>>;

/// One blocked client: what it waits on, its request, and its outcome.
pub struct Parked {
    /// Client id.
    pub id: u64,
    /// Keys it waits on.
    pub keys: Vec<Box<[u8]>>,
    /// Wakes the client's connection (served, or its place changed).
    pub notify: Arc<Notify>,
    /// A reader (XREAD, XREADGROUP): serving it takes nothing from the key, so one that
    /// cannot be served (it waits past what the key holds) does not end the key's turn.
    pub reader: bool,
    /// The blocked request, as the protocol layer needs it to run it again.
    request: Box<dyn Any + Send + Sync>,
    state: Mutex<Park>,
}

/// Where a blocked client stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Park {
    /// In the queues.
    Waiting,
    /// Served on its behalf: the reply to send. Out of the queues.
    Served(Vec<u8>),
    /// Left (served itself, timed out, disconnected). Out of the queues.
    Gone,
}

impl Parked {
    /// A client `id` blocked on `keys` by `request`.
    pub fn new(id: u64, keys: Vec<Box<[u8]>>, request: Box<dyn Any + Send + Sync>) -> Arc<Parked> {
        Parked::with_role(id, keys, request, false)
    }

    /// A client `id` blocked on `keys` by `request`, a reader or not (see [`Parked::reader`]).
    pub fn with_role(
        id: u64,
        keys: Vec<Box<[u8]>>,
        request: Box<dyn Any + Send + Sync>,
        reader: bool,
    ) -> Arc<Parked> {
        Arc::new(Parked {
            id,
            keys,
            reader,
            notify: Arc::new(Notify::new()),
            request,
            state: Mutex::new(Park::Waiting),
        })
    }

    /// Locks the client's state (see the module's lock order).
    pub fn state(&self) -> MutexGuard<'_, Park> {
        self.state.lock()
    }
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked")
            .field("id", &self.id)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// The blocked clients of a server, per key, in arrival order.
#[derive(Default)]
pub struct Waiters {
    queues: Mutex<HashMap<Box<[u8]>, Queue>>,
    /// Registered (client, key) pairs: `notify` returns at once when 0.
    count: AtomicUsize,
    /// Blocked clients (INFO `blocked_clients`).
    clients: AtomicUsize,
    /// Keys that got elements while clients wait on them, to serve.
    ready: Mutex<Vec<Box<[u8]>>>,
    /// `ready` is not empty (read without its lock on every command).
    has_ready: AtomicBool,
    /// One serving pass at a time.
    serving: Mutex<()>,
}

impl Waiters {
    /// Adds `p` at the tail of each of its keys' queues (once per blocking; pair with one
    /// [`Waiters::leave`] or a service).
    pub fn register(&self, p: &Arc<Parked>) {
        self.clients.fetch_add(1, Ordering::Relaxed);
        let mut q = self.queues.lock();
        for k in &p.keys {
            let queue = q.entry(k.clone()).or_default();
            if !queue.iter().any(|x| x.id == p.id) {
                queue.push_back(Arc::clone(p));
                self.count.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// The client leaves (served itself, timed out, disconnected) unless it was served on its
    /// behalf meanwhile: then its reply, which is still its to send.
    pub fn leave(&self, p: &Parked) -> Option<Vec<u8>> {
        self.leave_locked(p, &mut p.state())
    }

    /// [`Waiters::leave`] with the client's state `st` already locked by the caller (so that
    /// what it saw under the lock, e.g. its own attempt serving it, and the leaving are one
    /// step: nobody serves it in between).
    pub fn leave_locked(&self, p: &Parked, st: &mut Park) -> Option<Vec<u8>> {
        match std::mem::replace(st, Park::Gone) {
            Park::Waiting => {
                self.remove(p);
                None
            }
            Park::Served(reply) => Some(reply),
            Park::Gone => None,
        }
    }

    /// Takes `p` out of its keys' queues (its state lock held by the caller). Where it was at
    /// the head and others wait, the key is marked ready, in case it has elements `p` did not
    /// take.
    fn remove(&self, p: &Parked) {
        self.clients.fetch_sub(1, Ordering::Relaxed);
        let mut again = Vec::new();
        {
            let mut q = self.queues.lock();
            for k in &p.keys {
                if let Some(queue) = q.get_mut(k) {
                    let was_head = queue.front().is_some_and(|x| x.id == p.id);
                    let before = queue.len();
                    queue.retain(|x| x.id != p.id);
                    self.count.fetch_sub(before - queue.len(), Ordering::SeqCst);
                    if queue.is_empty() {
                        q.remove(k);
                    } else if was_head {
                        again.push(k.clone());
                    }
                }
            }
        }
        for k in again {
            self.mark(k);
        }
    }

    /// A write gave `key` elements: if clients wait on it, marks it ready for
    /// [`Waiters::serve`].
    #[inline]
    pub fn notify(&self, key: &[u8]) {
        if self.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        if self.queues.lock().contains_key(key) {
            self.mark(key.into());
        }
    }

    fn mark(&self, key: Box<[u8]>) {
        let mut r = self.ready.lock();
        if !r.contains(&key) {
            r.push(key);
        }
        self.has_ready.store(true, Ordering::SeqCst);
    }

    /// True if some key is ready (one atomic load).
    #[inline]
    pub fn has_ready(&self) -> bool {
        self.has_ready.load(Ordering::SeqCst)
    }

    /// Serves the ready keys: for each, its blocked clients in arrival order, each by
    /// `attempt(request)` (Some(reply) when it served the client, None when the key cannot
    /// serve it now, which ends that key's turn). Keys made ready meanwhile (a BLMOVE served
    /// into another waited-on key) are served in the same pass. Returns at once when no key
    /// is ready.
    pub fn serve(&self, mut attempt: impl FnMut(&(dyn Any + Send + Sync)) -> Option<Vec<u8>>) {
        if !self.has_ready() {
            return;
        }
        let _one = self.serving.lock();
        loop {
            let key = {
                let mut r = self.ready.lock();
                match r.pop() {
                    Some(k) => k,
                    None => {
                        self.has_ready.store(false, Ordering::SeqCst);
                        return;
                    }
                }
            };
            loop {
                let head = self
                    .queues
                    .lock()
                    .get(&key)
                    .and_then(|q| q.front().cloned());
                let Some(head) = head else { break };
                let mut st = head.state();
                if *st != Park::Waiting {
                    continue; // Out of the queues already (see the invariants).
                }
                match attempt(&*head.request) {
                    Some(reply) => {
                        *st = Park::Served(reply);
                        self.remove(&head);
                        head.notify.notify_one();
                    }
                    None if head.reader => {
                        // A reader waiting past what the key holds: the others behind it
                        // may still be served (XREAD with an older ID), each tried once.
                        drop(st);
                        self.serve_readers_behind(&key, &head, &mut attempt);
                        break;
                    }
                    None => break,
                }
            }
        }
    }

    /// After `head`, a reader that could not be served: tries every client queued behind it
    /// once, in order, until one that is not a reader cannot be served.
    fn serve_readers_behind(
        &self,
        key: &[u8],
        head: &Arc<Parked>,
        attempt: &mut impl FnMut(&(dyn Any + Send + Sync)) -> Option<Vec<u8>>,
    ) {
        let behind: Vec<Arc<Parked>> = self
            .queues
            .lock()
            .get(key)
            .map(|q| {
                q.iter()
                    .skip_while(|p| !Arc::ptr_eq(p, head))
                    .skip(1)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for p in behind {
            let mut st = p.state();
            if *st != Park::Waiting {
                continue;
            }
            match attempt(&*p.request) {
                Some(reply) => {
                    *st = Park::Served(reply);
                    self.remove(&p);
                    p.notify.notify_one();
                }
                None if p.reader => {}
                None => break,
            }
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
    use super::*;

    fn parked(id: u64, keys: &[&[u8]]) -> Arc<Parked> {
        Parked::new(
            id,
            keys.iter().map(|k| Box::<[u8]>::from(*k)).collect(),
            Box::new(id),
        )
    }

    #[test]
    fn ready_keys_serve_waiters_in_arrival_order() {
        let w = Waiters::default();
        let (a, b) = (parked(1, &[b"k"]), parked(2, &[b"k", b"j"]));
        w.register(&a);
        w.register(&b);
        assert_eq!((w.len(), w.clients()), (3, 2));
        w.notify(b"other");
        assert!(!w.has_ready(), "a key nobody waits on became ready");
        w.notify(b"k");
        // One element: the first client is served, the second stays.
        let mut elements = 1;
        let mut order = Vec::new();
        w.serve(|req| {
            let id = *req.downcast_ref::<u64>().expect("u64 request");
            (elements > 0).then(|| {
                elements -= 1;
                order.push(id);
                format!("reply {id}").into_bytes()
            })
        });
        assert_eq!(order, [1]);
        assert!(!w.has_ready());
        assert_eq!(*a.state(), Park::Served(b"reply 1".to_vec()));
        assert_eq!(w.leave(&a), Some(b"reply 1".to_vec()));
        assert_eq!(*b.state(), Park::Waiting);
        assert_eq!((w.len(), w.clients()), (2, 1));
        assert_eq!(w.leave(&b), None);
        assert!(w.is_empty());
        assert_eq!(w.clients(), 0);
    }

    #[test]
    fn a_head_leaving_marks_its_keys_ready_for_the_next() {
        let w = Waiters::default();
        let (a, b) = (parked(1, &[b"k"]), parked(2, &[b"k"]));
        w.register(&a);
        w.register(&b);
        assert_eq!(w.leave(&a), None);
        assert!(w.has_ready());
        let mut served = Vec::new();
        w.serve(|req| {
            served.push(*req.downcast_ref::<u64>().expect("u64"));
            Some(Vec::new())
        });
        assert_eq!(served, [2]);
        assert!(w.is_empty());
    }
}
