//! Routing: the ketama ring and the topology (ring + nodes) that requests read.

pub mod ring;
pub mod topology;
