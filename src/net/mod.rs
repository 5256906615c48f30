//! Networking: accepting connections and driving a protocol session over each.

pub mod conn;
pub mod listener;
pub mod stop;
