//! The pub/sub registry: which connections listen on which channels, patterns and shard
//! channels (each through its [`Mailbox`], see `mailbox`), the keyspace-notification flags and
//! the client-side caching state (`tracking`, which also keeps the directory of connections
//! that have a mailbox).
//!
//! Owns: the channel → subscribers maps, the count of subscribers closed for falling behind.
//! Must not touch: sockets, command parsing, reply encoding (a publisher passes
//! an [`Encode`] function from the protocol layer; the registry only copies the bytes it
//! makes), the flags' meaning (`proto::resp::notify`).
//!
//! Invariants:
//! - A publisher never blocks on a subscriber: it appends to the subscriber's mailbox under
//!   that mailbox's own short lock and wakes its connection. A mailbox whose pending bytes would
//!   pass the limit drops them all and is marked overflowed; its connection closes when it next
//!   looks (`Mailbox::take`), so memory per subscriber is bounded by the limit.
//! - A message is encoded once per publish (once per matching pattern for `pmessage`), as a
//!   RESP2 array whose first byte a RESP3 subscriber's mailbox turns into the push type `>`:
//!   the two encodings differ in that byte only.
//! - Lock order: a registry map, then a mailbox. Nothing takes a map while holding a mailbox.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use bytes::BytesMut;
use hashbrown::HashMap;
use parking_lot::RwLock;

pub use super::mailbox::{Mailbox, Overflowed};
use super::tracking::Tracking;
use crate::store::glob::glob;

/// Encodes one message as a RESP2 array into `out`: (kind, pattern, channel, payload), e.g.
/// `message`, None, `news`, `hello` or `pmessage`, Some(`n*`), `news`, `hello`.
pub type Encode =
    fn(out: &mut BytesMut, kind: &[u8], pattern: Option<&[u8]>, channel: &[u8], payload: &[u8]);

/// The three namespaces of subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE / PUBLISH.
    Channel,
    /// PSUBSCRIBE: glob patterns over PUBLISH's channels.
    Pattern,
    /// SSUBSCRIBE / SPUBLISH.
    Shard,
}

/// Subscribers of one channel or pattern, in subscription order.
type Subscribers = Vec<Arc<Mailbox>>;

/// Every subscription of the server.
pub struct Registry {
    channels: RwLock<HashMap<Box<[u8]>, Subscribers>>,
    patterns: RwLock<HashMap<Box<[u8]>, Subscribers>>,
    shard: RwLock<HashMap<Box<[u8]>, Subscribers>>,
    /// Distinct patterns (PUBLISH skips the pattern map when 0).
    pattern_count: AtomicUsize,
    /// Subscribers closed because their mailbox passed the limit.
    overflows: AtomicU64,
    /// `notify-keyspace-events` as flag bits (the protocol layer defines them); 0 = off.
    keyspace: AtomicU32,
    /// `limits.max_output_buffer`, for messages published from where no request's limits are
    /// at hand (the store's expiries and evictions).
    limit: AtomicU64,
    /// Client-side caching.
    pub tracking: Tracking,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry {
            channels: RwLock::default(),
            patterns: RwLock::default(),
            shard: RwLock::default(),
            pattern_count: AtomicUsize::new(0),
            overflows: AtomicU64::new(0),
            keyspace: AtomicU32::new(0),
            limit: AtomicU64::new(64 << 20),
            tracking: Tracking::default(),
        }
    }
}

impl Registry {
    /// The keyspace-notification flags (one relaxed load: what a write pays when they are off).
    #[inline]
    pub fn keyspace_flags(&self) -> u32 {
        self.keyspace.load(Ordering::Relaxed)
    }

    /// Sets the keyspace-notification flags.
    pub fn set_keyspace_flags(&self, flags: u32) {
        self.keyspace.store(flags, Ordering::Relaxed);
    }

    /// The mailbox limit for messages published outside a request.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Follows `limits.max_output_buffer` (start, reload).
    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
        self.tracking.set_limit(limit);
    }

    /// Lists a connection's mailbox under its client id (see `Tracking::register`).
    pub fn register(&self, mailbox: &Arc<Mailbox>) {
        self.tracking.register(mailbox);
    }

    /// Removes a closing connection from the directory.
    pub fn deregister(&self, id: u64) {
        self.tracking.deregister(id);
    }

    fn map(&self, kind: Kind) -> &RwLock<HashMap<Box<[u8]>, Subscribers>> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }

    /// Adds `mailbox` to `name`'s subscribers. The caller (the connection) makes sure it is
    /// not there already.
    pub fn subscribe(&self, kind: Kind, name: &[u8], mailbox: &Arc<Mailbox>) {
        let mut map = self.map(kind).write();
        match map.get_mut(name) {
            Some(subs) => subs.push(Arc::clone(mailbox)),
            None => {
                map.insert(name.into(), vec![Arc::clone(mailbox)]);
                if kind == Kind::Pattern {
                    self.pattern_count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Removes client `id` from `name`'s subscribers; a name left with none is forgotten.
    pub fn unsubscribe(&self, kind: Kind, name: &[u8], id: u64) {
        let mut map = self.map(kind).write();
        Self::remove(
            &mut map,
            name,
            id,
            kind == Kind::Pattern,
            &self.pattern_count,
        );
    }

    /// Removes client `id` from every name of `names` under one lock (a connection leaving).
    pub fn unsubscribe_all<'a>(&self, kind: Kind, names: impl Iterator<Item = &'a [u8]>, id: u64) {
        let mut map = self.map(kind).write();
        for name in names {
            Self::remove(
                &mut map,
                name,
                id,
                kind == Kind::Pattern,
                &self.pattern_count,
            );
        }
    }

    fn remove(
        map: &mut HashMap<Box<[u8]>, Subscribers>,
        name: &[u8],
        id: u64,
        pattern: bool,
        pattern_count: &AtomicUsize,
    ) {
        let Some(subs) = map.get_mut(name) else {
            return;
        };
        if let Some(i) = subs.iter().position(|m| m.id() == id) {
            subs.remove(i);
        }
        if subs.is_empty() {
            map.remove(name);
            if pattern {
                pattern_count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// PUBLISH: delivers to the channel's subscribers, then to every matching pattern's.
    /// Returns the number of receivers, as redis counts them (a client subscribed to the
    /// channel and to a matching pattern counts twice).
    pub fn publish(&self, channel: &[u8], payload: &[u8], limit: u64, encode: Encode) -> usize {
        let mut receivers = 0;
        let mut frame = BytesMut::new();
        {
            let map = self.channels.read();
            if let Some(subs) = map.get(channel) {
                encode(&mut frame, b"message", None, channel, payload);
                receivers += self.deliver(subs, &frame, limit);
            }
        }
        if self.pattern_count.load(Ordering::Relaxed) > 0 {
            let map = self.patterns.read();
            for (pattern, subs) in map.iter() {
                if glob(pattern, channel) {
                    frame.clear();
                    encode(&mut frame, b"pmessage", Some(pattern), channel, payload);
                    receivers += self.deliver(subs, &frame, limit);
                }
            }
        }
        receivers
    }

    /// SPUBLISH: delivers to the shard channel's subscribers.
    pub fn spublish(&self, channel: &[u8], payload: &[u8], limit: u64, encode: Encode) -> usize {
        let map = self.shard.read();
        let Some(subs) = map.get(channel) else {
            return 0;
        };
        let mut frame = BytesMut::new();
        encode(&mut frame, b"smessage", None, channel, payload);
        self.deliver(subs, &frame, limit)
    }

    fn deliver(&self, subs: &Subscribers, frame: &[u8], limit: u64) -> usize {
        for m in subs {
            if !m.push(frame, limit) {
                self.overflows.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    client = m.id(),
                    limit,
                    "closing subscriber: pending messages passed limits.max_output_buffer"
                );
            }
        }
        subs.len()
    }

    /// Names with at least one subscriber that match `pattern` (all when None).
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Box<[u8]>> {
        let map = self.map(kind).read();
        map.keys()
            .filter(|n| pattern.is_none_or(|p| glob(p, n)))
            .cloned()
            .collect()
    }

    /// Subscribers of `name`.
    pub fn count(&self, kind: Kind, name: &[u8]) -> usize {
        self.map(kind).read().get(name).map_or(0, Vec::len)
    }

    /// Distinct names with subscribers (INFO `pubsub_channels`, PUBSUB NUMPAT, ...).
    pub fn len(&self, kind: Kind) -> usize {
        match kind {
            Kind::Pattern => self.pattern_count.load(Ordering::Relaxed),
            _ => self.map(kind).read().len(),
        }
    }

    /// True when nobody subscribes to anything.
    pub fn is_empty(&self) -> bool {
        self.len(Kind::Channel) == 0 && self.len(Kind::Pattern) == 0 && self.len(Kind::Shard) == 0
    }

    /// Subscribers closed so far because they fell behind.
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(
        out: &mut BytesMut,
        kind: &[u8],
        pattern: Option<&[u8]>,
        channel: &[u8],
        payload: &[u8],
    ) {
        out.extend_from_slice(b"*");
        out.extend_from_slice(kind);
        if let Some(p) = pattern {
            out.extend_from_slice(b" ");
            out.extend_from_slice(p);
        }
        out.extend_from_slice(b" ");
        out.extend_from_slice(channel);
        out.extend_from_slice(b" ");
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\n");
    }

    fn taken(m: &Mailbox) -> String {
        let mut out = BytesMut::new();
        m.take(&mut out).expect("not overflowed");
        String::from_utf8(out.to_vec()).expect("utf8")
    }

    #[test]
    fn publish_reaches_channel_then_pattern_subscribers_and_counts_them() {
        let r = Registry::default();
        let a = Mailbox::new(1, false);
        let b = Mailbox::new(2, true);
        r.subscribe(Kind::Channel, b"news", &a);
        r.subscribe(Kind::Pattern, b"n*", &a);
        r.subscribe(Kind::Pattern, b"n*", &b);
        assert_eq!(r.publish(b"news", b"hi", 1 << 20, encode), 3);
        assert_eq!(taken(&a), "*message news hi\n*pmessage n* news hi\n");
        assert_eq!(taken(&b), ">pmessage n* news hi\n");
        assert_eq!(r.publish(b"other", b"x", 1 << 20, encode), 0);
        assert_eq!(r.len(Kind::Pattern), 1);
        r.unsubscribe(Kind::Pattern, b"n*", 1);
        r.unsubscribe(Kind::Pattern, b"n*", 2);
        r.unsubscribe(Kind::Channel, b"news", 1);
        assert!(r.is_empty());
        assert_eq!(r.publish(b"news", b"hi", 1 << 20, encode), 0);
    }

    #[test]
    fn an_overflowing_mailbox_drops_everything_and_says_so_once() {
        let r = Registry::default();
        let slow = Mailbox::new(1, false);
        let fast = Mailbox::new(2, false);
        r.subscribe(Kind::Shard, b"s", &slow);
        r.subscribe(Kind::Shard, b"s", &fast);
        for _ in 0..10 {
            assert_eq!(r.spublish(b"s", &[b'x'; 100], 1000, encode), 2);
            let mut out = BytesMut::new();
            fast.take(&mut out).expect("fast keeps up");
        }
        assert_eq!(r.overflows(), 1);
        assert_eq!(slow.take(&mut BytesMut::new()), Err(Overflowed));
    }
}
