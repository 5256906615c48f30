//! Snapshots: the RDB codec ([`rdb`], pure and fuzzed) and saving a ring's nodes into one
//! file and loading one into any ring ([`snapshot`]).

pub mod rdb;
pub mod snapshot;
