//! Routing: the ketama ring, the topology (ring + nodes) that requests read, the migration
//! state between rings and its background driver, and the keyspace walk of SCAN that stays
//! exact across them; `remote`, the members that are memcached or Redis servers.
//!
//! Imports point one way: `scan`, `rebalance` -> `topology` -> `migration` -> `ring` ->
//! `hashkit` (twemproxy's key hashes), store; `topology` -> `remote`.

pub mod hashkit;
pub mod migration;
pub mod rebalance;
pub mod remote;
pub mod ring;
pub mod scan;
pub mod topology;
