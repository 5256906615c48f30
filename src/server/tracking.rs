//! Client-side caching (CLIENT TRACKING): which connections cached which keys, and where
//! their invalidation messages go.
//!
//! Owns: the tracking table (key → client ids, bounded by `tracking-table-max-keys`), the
//! tracking clients (their mode and target) and the BCAST prefixes, and the directory of
//! connections that have a mailbox (where a REDIRECT is looked up at each message). Must not touch:
//! command parsing, sockets; the messages' bytes come from the protocol layer's [`Encode`]
//! (the same function pub/sub uses) through [`Invalidation`].
//!
//! Invariants:
//! - Nothing is paid while no connection tracks: callers check [`Tracking::active`] (one
//!   relaxed load) first.
//! - A key is forgotten once its invalidation is sent (redis: the client must read it again
//!   to be told again); the table never holds more than `max_keys` keys: remembering one more
//!   invalidates another (its clients are told, as redis does).
//! - One mutex guards the table; mailboxes are pushed while holding it (the directory's and
//!   the mailboxes' locks come after it, never the other way round).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use bytes::BytesMut;
use hashbrown::{HashMap, HashSet};
use parking_lot::Mutex;

use super::mailbox::Mailbox;

/// Encodes an invalidation message for `keys` (None: everything, after a flush) in RESP3
/// (`resp3`, a push) or as a RESP2 `__redis__:invalidate` pub/sub message.
pub type Invalidation = fn(out: &mut BytesMut, keys: Option<&[&[u8]]>, resp3: bool);

/// Where a tracking connection's invalidations go.
#[derive(Debug, Clone)]
pub enum Target {
    /// Its own mailbox (RESP3 pushes).
    Own(Arc<Mailbox>),
    /// The REDIRECT client, found by id at each message: a client that has closed (or has no
    /// mailbox, having never subscribed) gets nothing, and holds no memory here.
    Redirect(u64),
}

/// One tracking connection.
#[derive(Debug, Clone)]
pub struct Client {
    /// Where its invalidations go.
    pub target: Target,
    /// NOLOOP: not told about its own writes.
    pub noloop: bool,
    /// BCAST prefixes (empty: default mode, told about the keys it read).
    pub prefixes: Vec<Box<[u8]>>,
    /// BCAST mode.
    pub bcast: bool,
}

#[derive(Default)]
struct Table {
    keys: HashMap<Box<[u8]>, HashSet<u64>>,
    clients: HashMap<u64, Client>,
}

/// The server's tracking state.
pub struct Tracking {
    active: AtomicUsize,
    /// Connections that have a mailbox, by client id (REDIRECT targets are found here).
    directory: Mutex<HashMap<u64, Weak<Mailbox>>>,
    /// The mailbox limit (`limits.max_output_buffer`).
    limit: AtomicU64,
    max_keys: AtomicUsize,
    table: Mutex<Table>,
}

impl Default for Tracking {
    fn default() -> Tracking {
        Tracking {
            active: AtomicUsize::new(0),
            directory: Mutex::default(),
            limit: AtomicU64::new(64 << 20),
            max_keys: AtomicUsize::new(1_000_000),
            table: Mutex::new(Table::default()),
        }
    }
}

impl Tracking {
    /// True when some connection tracks (what a command pays when none does).
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// Follows `limits.max_output_buffer`.
    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// `tracking-table-max-keys` (0: unbounded, as redis).
    pub fn set_max_keys(&self, n: usize) {
        self.max_keys.store(n, Ordering::Relaxed);
    }

    /// Connections tracking now (INFO `tracking_clients`).
    pub fn clients(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Keys tracked now (INFO `tracking_total_keys`).
    pub fn keys(&self) -> usize {
        self.table.lock().keys.len()
    }

    /// Lists a connection's mailbox under its client id.
    pub fn register(&self, mailbox: &Arc<Mailbox>) {
        self.directory
            .lock()
            .insert(mailbox.id(), Arc::downgrade(mailbox));
    }

    /// Removes a closing connection from the directory.
    pub fn deregister(&self, id: u64) {
        self.directory.lock().remove(&id);
    }

    /// The mailbox of live client `id`, if it has one.
    pub fn mailbox(&self, id: u64) -> Option<Arc<Mailbox>> {
        self.directory.lock().get(&id).and_then(Weak::upgrade)
    }

    /// Turns tracking on for client `id` (replacing its previous settings).
    pub fn enable(&self, id: u64, client: Client) {
        let mut t = self.table.lock();
        if t.clients.insert(id, client).is_none() {
            self.active.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Turns tracking off for client `id` (and forgets nothing else: its keys are dropped
    /// lazily when invalidated, as redis does).
    pub fn disable(&self, id: u64) {
        let mut t = self.table.lock();
        if t.clients.remove(&id).is_some() {
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Client `id` read `keys`: remember to tell it when they change.
    pub fn remember<'a>(
        &self,
        id: u64,
        keys: impl Iterator<Item = &'a [u8]>,
        encode: Invalidation,
    ) {
        let max = self.max_keys.load(Ordering::Relaxed);
        let mut t = self.table.lock();
        for key in keys {
            match t.keys.get_mut(key) {
                Some(ids) => {
                    ids.insert(id);
                }
                None => {
                    if max > 0 && t.keys.len() >= max {
                        // Full: invalidate some key to make room.
                        if let Some(victim) = t.keys.keys().next().cloned() {
                            let limit = self.limit.load(Ordering::Relaxed);
                            self.invalidate_locked(&mut t, &victim, None, encode, limit);
                        }
                    }
                    t.keys.insert(key.into(), HashSet::from([id]));
                }
            }
        }
    }

    /// `key` changed (by client `by`, if a client did it): tells its readers and the BCAST
    /// clients whose prefix it matches. Returns the frames meant for `by` itself, which the
    /// caller writes after its reply (redis sends them once the command has answered).
    pub fn invalidate(
        &self,
        key: &[u8],
        by: Option<u64>,
        encode: Invalidation,
    ) -> Option<BytesMut> {
        let limit = self.limit.load(Ordering::Relaxed);
        let mut t = self.table.lock();
        self.invalidate_locked(&mut t, key, by, encode, limit)
    }

    /// Where `client`'s messages go now (None: nowhere, or nowhere they could be read).
    fn target(&self, client: &Client, id: u64) -> Option<Arc<Mailbox>> {
        let m = match &client.target {
            Target::Own(m) => Arc::clone(m),
            Target::Redirect(to) => self.mailbox(*to)?,
        };
        // RESP2 without REDIRECT, or to a redirect that is not in subscribe mode: an
        // unrequested array would break its replies; redis sends nothing either.
        if !m.is_resp3() && (m.id() == id || !m.is_subscribed()) {
            return None;
        }
        Some(m)
    }

    fn invalidate_locked(
        &self,
        t: &mut Table,
        key: &[u8],
        by: Option<u64>,
        encode: Invalidation,
        limit: u64,
    ) -> Option<BytesMut> {
        let mut own = None;
        let send = |client: &Client, id: u64, own: &mut Option<BytesMut>| {
            if client.noloop && by == Some(id) {
                return;
            }
            let Some(target) = self.target(client, id) else {
                return;
            };
            let mut frame = BytesMut::new();
            encode(&mut frame, Some(&[key]), target.is_resp3());
            if by == Some(id) && target.id() == id {
                own.get_or_insert_with(BytesMut::new)
                    .extend_from_slice(&frame);
            } else {
                target.push_raw(&frame, limit);
            }
        };
        if let Some(ids) = t.keys.remove(key) {
            for id in ids {
                if let Some(c) = t.clients.get(&id).filter(|c| !c.bcast) {
                    send(c, id, &mut own);
                }
            }
        }
        for (&id, c) in &t.clients {
            if c.bcast && c.prefixes_match(key) {
                send(c, id, &mut own);
            }
        }
        own
    }

    /// A flush: every tracking client is told that everything changed; the table empties.
    /// Returns the frame for `by` itself, as [`Tracking::invalidate`].
    pub fn flush(&self, by: Option<u64>, encode: Invalidation) -> Option<BytesMut> {
        let limit = self.limit.load(Ordering::Relaxed);
        let mut t = self.table.lock();
        t.keys.clear();
        let mut own = None;
        for (&id, c) in &t.clients {
            let Some(target) = self.target(c, id) else {
                continue;
            };
            let mut frame = BytesMut::new();
            encode(&mut frame, None, target.is_resp3());
            if by == Some(id) && target.id() == id {
                own = Some(frame);
            } else {
                target.push_raw(&frame, limit);
            }
        }
        own
    }
}

impl Client {
    fn prefixes_match(&self, key: &[u8]) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| key.starts_with(p))
    }
}
