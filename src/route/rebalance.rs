//! Rebalancing: the background migrator that moves keys to their owner on a new ring.
//!
//! Owns: [`run`] (walks every node of the previous rings in chunks and consolidates each key
//! found off its owner) and [`estimate_moves`] (the share of keys a new ring moves, for the
//! reload log line). The migration state, and why a key is never missed, lost or resurrected
//! while it moves, are `route::migration`.
//! Must not touch: sockets, parsing, the `ArcSwap` (reload publishes; this only moves items).
//! Invariants: one stripe lock is held only to copy out a chunk of [`CHUNK`] keys; keys are
//! consolidated one by one through `Topology::pull`, and the driver yields (or rests
//! `rebalance.pause`) between chunks, so request latency stays flat.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::route::migration::sources;
use crate::route::topology::Topology;

/// Keys the migrator copies out of a node per lock hold.
pub const CHUNK: usize = 256;
/// Items sampled per node to estimate how many keys a new ring moves.
const SAMPLE: usize = 2048;

/// For [`run`]'s `inside` where nothing runs exclusively (tests, benchmarks): runs the chunk.
pub fn directly(chunk: &mut dyn FnMut() -> bool) -> bool {
    chunk()
}

/// The background migrator: walks every node of `topology`'s previous rings in chunks and
/// consolidates each key found off its owner, resting `pause` between chunks (config
/// `rebalance.pause`; zero only yields). Returns true if the migration finished (the previous
/// rings are then dropped), false if `topology` was superseded or `stop` said so first (a
/// successor carries the unfinished rings on). Blocking: run it on its own thread.
///
/// Each chunk's moves run through `inside` (the server runs them inside its gate, like a
/// session's batch, so that a command running exclusively, e.g. DBSIZE during a migration,
/// sees no key in flight between two nodes).
pub fn run(
    topology: &Topology,
    pause: Duration,
    stop: &dyn Fn() -> bool,
    inside: &dyn Fn(&mut dyn FnMut() -> bool) -> bool,
) -> bool {
    let Some(migration) = topology.migration() else {
        return true;
    };
    let Some(previous) = migration.previous_full() else {
        return true;
    };
    let sources = sources(&previous);
    migration.set_keys_to_scan(sources.iter().map(|n| n.len()).sum());
    let mut chunk = KeyChunk::default();
    for source in sources {
        let mut cursor = 0;
        loop {
            if topology.is_superseded() || stop() {
                return false;
            }
            chunk.clear();
            cursor = source.walk(cursor, CHUNK, |key, _| chunk.push(key));
            migration.add_scanned(chunk.len() as u64);
            let moved = inside(&mut || {
                chunk.iter().all(|key| {
                    std::ptr::eq(&**topology.node_for(key), &**source) || topology.pull(key, source)
                })
            });
            if !moved {
                return false;
            }
            if cursor == 0 {
                break;
            }
            if pause.is_zero() {
                std::thread::yield_now();
            } else {
                std::thread::sleep(pause);
            }
        }
    }
    if topology.is_superseded() || stop() {
        return false;
    }
    let took = migration.finish();
    let ledger = topology.ledger();
    ledger
        .last_duration_us
        .store(took.as_micros() as u64, Ordering::Relaxed);
    ledger.in_progress.store(false, Ordering::Relaxed);
    true
}

/// Estimates how many of `old`'s items have another owner on `new`, by sampling up to
/// [`SAMPLE`] items per node. Returns (estimated keys to move, items on `old`'s nodes).
pub fn estimate_moves(old: &Topology, new: &Topology) -> (u64, u64) {
    let (mut moving, mut total) = (0.0f64, 0u64);
    let mut chunk = KeyChunk::default();
    for node in &old.nodes {
        let items = node.len();
        total += items;
        if items == 0 {
            continue;
        }
        chunk.clear();
        let mut cursor = 0;
        while chunk.len() < SAMPLE {
            cursor = node.walk(cursor, SAMPLE - chunk.len(), |key, _| chunk.push(key));
            if cursor == 0 {
                break;
            }
        }
        if chunk.len() == 0 {
            continue;
        }
        let moved = chunk
            .iter()
            .filter(|key| !std::ptr::eq(&**new.node_for(key), &**node))
            .count();
        moving += items as f64 * moved as f64 / chunk.len() as f64;
    }
    (moving.round() as u64, total)
}

/// Keys copied out of a node in one buffer (one allocation reused for every chunk).
#[derive(Default)]
struct KeyChunk {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl KeyChunk {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn push(&mut self, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.bytes[a..b])
    }
}

/// Fixtures shared with the other route tests (`scan.rs`).
#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::config::{NodeConfig, RingConfig};
    use crate::route::ring::HashKind;
    use crate::store::{Clock, Container, Kind, NEVER};

    pub(crate) const T0: u64 = 1_700_000_000_000;

    pub(crate) fn ring(hash: HashKind) -> RingConfig {
        RingConfig {
            hash,
            points_per_weight: 160,
            hash_tags: Some(*b"{}"),
        }
    }

    pub(crate) fn specs(names: &[(&str, u32)]) -> Vec<NodeConfig> {
        names
            .iter()
            .map(|&(name, weight)| NodeConfig {
                name: name.into(),
                max_memory: 256 << 20,
                weight,
                remote: None,
            })
            .collect()
    }

    /// Publishes the successor of `t` (as reload does, minus the ArcSwap).
    pub(crate) fn next(t: &Arc<Topology>, names: &[(&str, u32)], hash: HashKind) -> Arc<Topology> {
        let n = Arc::new(t.successor(&ring(hash), &specs(names), &Clock::mock(T0)));
        t.supersede(Arc::clone(&n));
        n
    }

    fn set(t: &Topology, key: &[u8], value: &[u8]) {
        t.entry(key, |e| e.put(&[value], 7, NEVER, None))
            .expect("fits");
    }

    fn get(t: &Topology, key: &[u8]) -> Option<Vec<u8>> {
        t.entry(key, |e| e.item().map(|i| i.value().to_vec()))
    }

    /// Names of the nodes (current and draining) that hold `key`.
    fn held_by(t: &Topology, key: &[u8]) -> Vec<String> {
        t.nodes
            .iter()
            .chain(&t.draining_nodes())
            .filter(|n| n.entry(key, |e| e.item().is_some()))
            .map(|n| n.name().to_string())
            .collect()
    }

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i}").into_bytes()
    }

    #[test]
    fn adding_a_node_moves_about_a_quarter_onto_it_with_metadata() {
        let t1 = Arc::new(Topology::build(
            1,
            &ring(HashKind::Xxh3),
            &specs(&[("a", 1), ("b", 1), ("c", 1)]),
            &[],
            &Clock::mock(T0),
        ));
        let n = 4000;
        let mut cas = HashMap::new();
        for i in 0..n {
            let c = t1
                .entry(&key(i), |e| {
                    e.put(&[b"v", &key(i)], i as u32, T0 + 1_000_000, None)
                })
                .expect("fits");
            cas.insert(i, c);
        }
        let list = Container::List([b"x".to_vec().into_boxed_slice()].into_iter().collect());
        for i in 0..50 {
            let k = format!("list:{i}");
            t1.entry(k.as_bytes(), |e| e.put_container(list.clone(), NEVER))
                .expect("fits");
        }
        let t2 = next(
            &t1,
            &[("a", 1), ("b", 1), ("c", 1), ("d", 1)],
            HashKind::Xxh3,
        );
        assert!(t2.is_migrating());
        let (estimate, total) = estimate_moves(&t1, &t2);
        assert_eq!(total, n as u64 + 50);
        // Half the keys are read (read repair) before the migrator runs.
        for i in (0..n).step_by(2) {
            t2.entry(&key(i), |e| {
                let item = e.item().expect("no miss during the move");
                assert_eq!(item.value(), [&b"v"[..], &key(i)].concat());
                assert_eq!(item.meta().flags, i as u32);
                assert_eq!({ item.meta().cas }, cas[&i]);
                assert_eq!({ item.meta().expire_at }, T0 + 1_000_000);
            });
        }
        assert!(run(&t2, Duration::ZERO, &|| false, &directly));
        assert!(!t2.is_migrating());
        assert!(t2.draining_nodes().is_empty());
        let mut moved = 0;
        for i in 0..n {
            let (before, after) = (t1.node_for(&key(i)).name(), t2.node_for(&key(i)).name());
            if before != after {
                moved += 1;
                assert_eq!(after, "d", "keys only move onto the new node");
            }
            assert_eq!(held_by(&t2, &key(i)), vec![after.to_string()]);
            assert_eq!(get(&t2, &key(i)), Some([&b"v"[..], &key(i)].concat()));
        }
        let fraction = moved as f64 / n as f64;
        assert!((0.18..0.32).contains(&fraction), "{fraction}");
        let progress = t2.migration_progress().expect("had a migration");
        assert!(progress.done);
        assert_eq!(progress.from_generations, vec![1]);
        let lists_moved = (0..50)
            .filter(|i| t2.node_for(format!("list:{i}").as_bytes()).name() == "d")
            .count();
        assert_eq!(progress.keys_moved, moved + lists_moved as u64);
        assert!((estimate as f64 - (moved + lists_moved as u64) as f64).abs() < 0.1 * n as f64);
        for i in 0..50 {
            let k = format!("list:{i}");
            t2.entry(k.as_bytes(), |e| {
                let item = e.item().expect("container kept");
                assert_eq!(item.kind(), Kind::List);
                assert_eq!(item.container().map(Container::len), Some(1));
            });
        }
        // A write after the move gets a CAS above the moved item's (no ABA for `cas`).
        for i in 0..200 {
            let c = t2
                .entry(&key(i), |e| e.put(&[b"new"], 0, NEVER, None))
                .expect("fits");
            assert!(c > cas[&i]);
        }
        for node in &t2.nodes {
            node.validate().expect("valid");
        }
    }

    #[test]
    fn stale_snapshots_deletes_and_flushes_follow_the_newest_ring() {
        let t1 = Arc::new(Topology::build(
            1,
            &ring(HashKind::Xxh3),
            &specs(&[("a", 1), ("b", 1)]),
            &[],
            &Clock::mock(T0),
        ));
        for i in 0..2000 {
            set(&t1, &key(i), b"old");
        }
        let t2 = next(&t1, &[("a", 1), ("b", 1), ("c", 1)], HashKind::Xxh3);
        // Writes through the superseded snapshot land on the new owner.
        for i in 0..2000 {
            if i % 3 == 0 {
                set(&t1, &key(i), b"new");
            }
        }
        // Deletes during the move stick.
        for i in 0..2000 {
            if i % 3 == 1 {
                assert!(t2.entry(&key(i), |e| e.remove()));
            }
        }
        assert!(run(&t2, Duration::ZERO, &|| false, &directly));
        for i in 0..2000 {
            let want: Option<&[u8]> = match i % 3 {
                0 => Some(b"new"),
                1 => None,
                _ => Some(b"old"),
            };
            assert_eq!(get(&t2, &key(i)).as_deref(), want, "key {i}");
            let holders = held_by(&t2, &key(i));
            assert!(holders.len() <= 1, "{holders:?}");
        }
        // flush_all through any snapshot empties every node.
        let t3 = next(&t2, &[("a", 1), ("c", 1)], HashKind::Xxh3);
        assert_eq!(t3.draining_nodes().len(), 1);
        t1.flush(0);
        for i in 0..2000 {
            assert_eq!(get(&t3, &key(i)), None);
        }
        assert!(run(&t3, Duration::ZERO, &|| false, &directly));
        assert!(t3.draining_nodes().is_empty());
    }

    #[test]
    fn chained_reloads_keep_the_newest_value() {
        let t1 = Arc::new(Topology::build(
            1,
            &ring(HashKind::Xxh3),
            &specs(&[("a", 1), ("b", 1), ("c", 1)]),
            &[],
            &Clock::mock(T0),
        ));
        for i in 0..3000 {
            set(&t1, &key(i), b"v1");
        }
        let t2 = next(
            &t1,
            &[("a", 1), ("b", 2), ("c", 1), ("d", 1)],
            HashKind::Xxh3,
        );
        for i in (0..3000).step_by(4) {
            set(&t2, &key(i), b"v2");
        }
        // Superseded before its migrator ran: the next one drains both earlier rings.
        let t3 = next(&t2, &[("b", 1), ("d", 1), ("e", 3)], HashKind::KetamaMd5);
        assert!(
            !run(&t2, Duration::ZERO, &|| false, &directly),
            "a superseded migration stops"
        );
        assert_eq!(
            t3.migration_progress().map(|p| p.from_generations),
            Some(vec![2, 1])
        );
        for i in (1..3000).step_by(4) {
            set(&t3, &key(i), b"v3");
        }
        assert!(run(&t3, Duration::ZERO, &|| false, &directly));
        for i in 0..3000 {
            let want: &[u8] = match i % 4 {
                0 => b"v2",
                1 => b"v3",
                _ => b"v1",
            };
            assert_eq!(get(&t3, &key(i)).as_deref(), Some(want), "key {i}");
            assert_eq!(
                held_by(&t3, &key(i)),
                vec![t3.node_for(&key(i)).name().to_string()]
            );
        }
        for node in &t3.nodes {
            node.validate().expect("valid");
        }
    }

    /// Threads own disjoint keys and check every read against what they last wrote, while the
    /// migrator runs and a second reload restarts it: no miss, no lost write, no resurrection.
    #[test]
    fn concurrent_access_during_migrations_matches_a_model() {
        let t1 = Arc::new(Topology::build(
            1,
            &ring(HashKind::Xxh3),
            &specs(&[("a", 1), ("b", 1), ("c", 1)]),
            &[],
            &Clock::mock(T0),
        ));
        const THREADS: usize = 3;
        const KEYS: usize = 3000;
        for i in 0..THREADS * KEYS {
            set(&t1, &key(i), b"0");
        }
        let current = arc_swap::ArcSwap::new(Arc::clone(&t1));
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let (current, stop) = (&current, &stop);
                scope.spawn(move || {
                    let mut model: Vec<Option<u64>> = vec![Some(0); KEYS];
                    let mut rng = (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    let mut round = 0u64;
                    while !stop.load(Ordering::Relaxed) || round < 3 {
                        round += 1;
                        for (j, want) in model.iter_mut().enumerate() {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            let k = key(t * KEYS + j);
                            let topology = current.load();
                            match rng % 10 {
                                0 => {
                                    topology.entry(&k, |e| e.remove());
                                    *want = None;
                                }
                                1..=3 => {
                                    let v = rng >> 8;
                                    set(&topology, &k, v.to_string().as_bytes());
                                    *want = Some(v);
                                }
                                _ => {
                                    let got = get(&topology, &k)
                                        .map(|v| String::from_utf8_lossy(&v).parse().unwrap_or(0));
                                    assert_eq!(got, *want, "thread {t} key {j} round {round}");
                                }
                            }
                        }
                    }
                });
            }
            let publish = |old: &Arc<Topology>, names: &[(&str, u32)]| {
                let new = next(old, names, HashKind::Xxh3);
                current.store(Arc::clone(&new));
                new
            };
            let t2 = publish(&t1, &[("a", 1), ("b", 1), ("c", 1), ("d", 1)]);
            let half = AtomicBool::new(false);
            let scanned = || {
                t2.migration_progress().map_or(0, |p| p.keys_scanned) > (THREADS * KEYS / 3) as u64
            };
            // Supersede t2 while its migrator is about halfway.
            let stopped = run(
                &t2,
                Duration::ZERO,
                &|| {
                    if scanned() {
                        half.store(true, Ordering::Relaxed);
                        true
                    } else {
                        false
                    }
                },
                &directly,
            );
            assert!(!stopped && half.load(Ordering::Relaxed));
            let t3 = publish(&t2, &[("a", 1), ("c", 1), ("d", 1), ("e", 1)]);
            assert!(run(&t3, Duration::ZERO, &|| false, &directly));
            stop.store(true, Ordering::Relaxed);
        });
        let t = current.load();
        for i in 0..THREADS * KEYS {
            assert!(held_by(&t, &key(i)).len() <= 1);
        }
        assert!(t.draining_nodes().is_empty());
    }
}
