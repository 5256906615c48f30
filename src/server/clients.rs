//! The Redis connections of a server, for CLIENT LIST (and CLIENT INFO).
//!
//! Owns: [`Clients`] (in `Shared`) and one [`Client`] per RESP connection: what other
//! connections may see of it. Protocol-neutral: names and wire strings, no commands.
//! Invariants: a connection's session registers it when it starts and removes it when it
//! ends; it publishes what CLIENT LIST shows (`Shown`) when that changes, at most once per
//! batch of requests and only if a field differs, so a connection that runs the same command
//! over and over writes one timestamp per batch and takes no lock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hashbrown::HashMap;
use parking_lot::Mutex;

/// Every live RESP connection, by client id.
#[derive(Default)]
pub struct Clients {
    map: Mutex<HashMap<u64, Arc<Client>>>,
}

/// One connection as others see it.
#[derive(Debug)]
pub struct Client {
    /// CLIENT ID.
    pub id: u64,
    /// The peer's address, when known.
    pub peer: Option<SocketAddr>,
    /// Our address, when known.
    pub local: Option<SocketAddr>,
    /// Unix ms the connection started.
    pub created_ms: u64,
    /// Unix ms its last batch of requests was handled (CLIENT LIST `idle`).
    pub last_ms: AtomicU64,
    /// The rest of what CLIENT LIST shows, published by the connection.
    pub shown: Mutex<Shown>,
}

/// What a connection publishes about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// CLIENT SETNAME.
    pub name: Option<Box<[u8]>>,
    /// CLIENT SETINFO LIB-NAME.
    pub lib_name: Option<Box<[u8]>>,
    /// CLIENT SETINFO LIB-VER.
    pub lib_ver: Option<Box<[u8]>>,
    /// Wire name of its last command (`cmd=`).
    pub last: &'static str,
    /// RESP version (`resp=`).
    pub resp: u8,
    /// Blocked in BLPOP & co. (flag `b`).
    pub blocked: bool,
    /// Commands queued in its open MULTI (`multi=`; flag `x`), None outside MULTI.
    pub multi: Option<usize>,
    /// Channel subscriptions (`sub=`; flag `P` with the next two).
    pub sub: usize,
    /// Pattern subscriptions (`psub=`).
    pub psub: usize,
    /// Shard-channel subscriptions (`ssub=`).
    pub ssub: usize,
    /// CLIENT TRACKING on: (REDIRECT id or 0 for `redir=`, BCAST); flags `t`, `B`.
    pub tracking: Option<(i64, bool)>,
}

impl Default for Shown {
    fn default() -> Self {
        Shown {
            name: None,
            lib_name: None,
            lib_ver: None,
            last: "NULL",
            resp: 2,
            blocked: false,
            multi: None,
            sub: 0,
            psub: 0,
            ssub: 0,
            tracking: None,
        }
    }
}

impl Client {
    /// A connection starting now.
    pub fn new(
        id: u64,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        now_ms: u64,
    ) -> Arc<Client> {
        Arc::new(Client {
            id,
            peer,
            local,
            created_ms: now_ms,
            last_ms: AtomicU64::new(now_ms),
            shown: Mutex::new(Shown::default()),
        })
    }

    /// Records a batch handled at `now_ms`.
    #[inline]
    pub fn touch(&self, now_ms: u64) {
        self.last_ms.store(now_ms, Relaxed);
    }

    /// CLIENT LIST's line for this connection at `now_ms`, with its newline.
    pub fn line(&self, now_ms: u64) -> String {
        let s = self.shown.lock().clone();
        let addr = |a: Option<SocketAddr>| a.map_or_else(String::new, |a| a.to_string());
        let lossy = |b: &Option<Box<[u8]>>| {
            b.as_deref()
                .map_or_else(String::new, |b| String::from_utf8_lossy(b).into_owned())
        };
        // In redis's order.
        let mut flags = String::new();
        if s.sub + s.psub + s.ssub > 0 {
            flags.push('P');
        }
        if s.multi.is_some() {
            flags.push('x');
        }
        if s.blocked {
            flags.push('b');
        }
        if let Some((_, bcast)) = s.tracking {
            flags.push('t');
            if bcast {
                flags.push('B');
            }
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let idle = now_ms.saturating_sub(self.last_ms.load(Relaxed)) / 1000;
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={idle} flags={flags} db=0 sub={} psub={} ssub={} multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir={} resp={} lib-name={} lib-ver={}\n",
            self.id,
            addr(self.peer),
            addr(self.local),
            lossy(&s.name),
            now_ms.saturating_sub(self.created_ms) / 1000,
            s.sub,
            s.psub,
            s.ssub,
            s.multi.map_or(-1, |n| n as i64),
            s.last,
            s.tracking.map_or(-1, |(redirect, _)| redirect),
            s.resp,
            lossy(&s.lib_name),
            lossy(&s.lib_ver),
        )
    }
}

impl Clients {
    /// Adds a connection.
    pub fn register(&self, c: &Arc<Client>) {
        self.map.lock().insert(c.id, Arc::clone(c));
    }

    /// Removes connection `id`.
    pub fn unregister(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    /// Every connection, by id.
    pub fn list(&self) -> Vec<Arc<Client>> {
        let mut all: Vec<_> = self.map.lock().values().cloned().collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// Connection `id`, if alive.
    pub fn get(&self, id: u64) -> Option<Arc<Client>> {
        self.map.lock().get(&id).cloned()
    }

    /// Number of connections.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// True if there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
