//! ringcache: an elastic in-memory cache in one process.
//!
//! Applications speak memcached (text and meta) or Redis (RESP2/RESP3) to one endpoint. Every
//! key goes through a consistent-hashing ring to one of the in-process cache nodes, each with
//! its own memory budget, TTLs and SIEVE eviction.
//!
//! ```text
//!  socket ─▶ net::listener ─▶ net::conn (read, one write per batch)
//!                                │ bytes
//!                                ▼
//!      proto::memcache::MemcacheSession | proto::resp::RespSession (decode → handle → encode)
//!                  (proto::any::AnySession picks one by the first byte)
//!                                │ key
//!                                ▼
//!            server::Shared.topology (ArcSwap<route::Topology>, loaded once per request)
//!                                │ ring.lookup(key)
//!                                ▼
//!                      store::Node (lock stripes, SIEVE, TTL)
//!          or route::remote::Member (a memcached or Redis server: the request is forwarded
//!             through proto::forward, its reply put in place when the batch is written)
//! ```
//!
//! On a TLS listener `net::listener` completes the handshake (rustls, `tls`) first and
//! `net::conn` runs over the TLS stream; sessions only ever see plaintext.
//!
//! `reload` watches the config file: it builds the next topology, publishes it with one
//! `ArcSwap::store`, and `route::rebalance` moves the keys whose owner changed while
//! `Topology::entry` keeps every request answered as if the move were done
//! (`route::migration`). `persist` saves the ring to one RDB file and loads it into any ring.
//!
//! Imports point one way, with no circle between files:
//!
//! ```text
//!  main ─▶ app ─▶ {net, admin, reload} ─▶ proto ─▶ server ─▶ persist ─▶ route ─▶ store
//!  used from anywhere: metrics (imports nothing of the crate), config, auth, tls
//! ```
//!
//! `server` is the state every session reads (`Shared`: topology, limits, stats, the blocked
//! clients' registry `server::waiters`); it never imports `proto`, `net` or `admin`.

#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod auth;
pub mod config;
pub mod metrics;
pub mod net;
pub mod persist;
pub mod proto;
pub mod reload;
pub mod route;
pub mod server;
pub mod store;
pub mod tls;
