//! Routing: the ketama ring, the topology (ring + nodes) that requests read, rebalancing
//! between rings, and the keyspace walk of SCAN that stays exact across them.

pub mod rebalance;
pub mod ring;
pub mod scan;
pub mod topology;
