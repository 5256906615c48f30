//! Snapshots: the RDB codec ([`rdb`], pure and fuzzed). Saving and loading a ring's nodes
//! build on it.

pub mod rdb;
