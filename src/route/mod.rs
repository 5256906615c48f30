//! Routing: the ketama ring, the topology (ring + nodes) that requests read, and rebalancing
//! between rings.

pub mod rebalance;
pub mod ring;
pub mod topology;
