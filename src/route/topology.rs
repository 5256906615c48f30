//! The topology: one immutable snapshot of (generation, ring, nodes).
//!
//! Owns: mapping a key to its node for a given ring.
//! Must not touch: sockets, parsing, the `ArcSwap` that publishes it (that is `app`'s and
//! `reload`'s job).
//! Invariants: `ring.len() == nodes.len()`, and `ring.lookup` indexes `nodes` in config order.

use std::sync::Arc;

use crate::config::{NodeConfig, RingConfig};
use crate::route::ring::Ring;
use crate::store::{Clock, Entry, Node};

/// An immutable view of the ring and the nodes it routes to.
pub struct Topology {
    /// Bumped on every applied reload; 1 for the first ring.
    pub generation: u64,
    /// Placement of keys on `nodes`.
    pub ring: Ring,
    /// The nodes, in config order.
    pub nodes: Vec<Arc<Node>>,
}

impl Topology {
    /// Builds generation `generation` for `specs`, reusing a node from `existing` when its name
    /// matches (so its data survives) and creating empty nodes for new names.
    pub fn build(
        generation: u64,
        ring: &RingConfig,
        specs: &[NodeConfig],
        existing: &[Arc<Node>],
        clock: &Clock,
    ) -> Topology {
        let nodes: Vec<Arc<Node>> = specs
            .iter()
            .map(
                |spec| match existing.iter().find(|n| n.name() == spec.name) {
                    Some(node) => {
                        if node.max_memory() != spec.max_memory {
                            node.set_max_memory(spec.max_memory);
                        }
                        Arc::clone(node)
                    }
                    None => Arc::new(Node::new(&spec.name, spec.max_memory, clock.clone())),
                },
            )
            .collect();
        let weights: Vec<(&str, u32)> = specs.iter().map(|s| (s.name.as_str(), s.weight)).collect();
        Topology {
            generation,
            ring: Ring::build(&weights, ring.hash, ring.points_per_weight, ring.hash_tags),
            nodes,
        }
    }

    /// The node that owns `key`.
    #[inline]
    pub fn node_for(&self, key: &[u8]) -> &Arc<Node> {
        &self.nodes[self.ring.lookup(key)]
    }

    /// Runs `f` on the entry for `key` in its owning node (see [`Node::entry`]).
    #[inline]
    pub fn entry<R>(&self, key: &[u8], f: impl FnOnce(&mut Entry<'_>) -> R) -> R {
        self.node_for(key).entry(key, f)
    }
}
