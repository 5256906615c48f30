//! Rebalance bench (not a test): 1M keys of 100 bytes on 3 nodes, add a 4th while a thread
//! keeps reading random keys through `Topology::entry`; reports the migration's duration and
//! keys/s, and the GET latency p50/p99 before and during the move.
//!
//! `cargo bench --bench rebalance` (RINGCACHE_BENCH_KEYS overrides the key count).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use ringcache::config::{NodeConfig, RingConfig};
use ringcache::route::rebalance;
use ringcache::route::ring::HashKind;
use ringcache::route::topology::Topology;
use ringcache::store::{Clock, NEVER};

fn specs(names: &[&str]) -> Vec<NodeConfig> {
    names
        .iter()
        .map(|n| NodeConfig {
            name: (*n).into(),
            max_memory: 1 << 30,
            weight: 1,
            remote: None,
        })
        .collect()
}

fn key(i: u64) -> String {
    format!("key:{i:012}")
}

/// Reads random keys until `stop`; returns sorted latencies (ns) and the miss count.
fn reader(current: &ArcSwap<Topology>, n: u64, stop: &AtomicBool) -> (Vec<u64>, u64) {
    let mut lat = Vec::with_capacity(1 << 20);
    let mut misses = 0;
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    while !stop.load(Ordering::Relaxed) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let k = key(rng % n);
        let t = Instant::now();
        let hit = current
            .load()
            .entry(k.as_bytes(), |e| e.item().map(|i| i.value().len()));
        lat.push(t.elapsed().as_nanos() as u64);
        if hit.is_none() {
            misses += 1;
        }
    }
    lat.sort_unstable();
    (lat, misses)
}

fn pct(lat: &[u64], p: f64) -> Duration {
    Duration::from_nanos(
        lat.get((lat.len() as f64 * p) as usize)
            .copied()
            .unwrap_or(0),
    )
}

fn main() {
    let n: u64 = std::env::var("RINGCACHE_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let ring = RingConfig {
        hash: HashKind::Xxh3,
        points_per_weight: 160,
        hash_tags: Some(*b"{}"),
    };
    let clock = Clock::real();
    let t1 = Arc::new(Topology::build(
        1,
        &ring,
        &specs(&["a", "b", "c"]),
        &[],
        &clock,
    ));
    let value = [b'v'; 100];
    for i in 0..n {
        t1.entry(key(i).as_bytes(), |e| e.put(&[&value], 0, NEVER, None))
            .expect("fits");
    }
    let current = ArcSwap::new(Arc::clone(&t1));
    let stop = AtomicBool::new(false);
    let (before, _) = std::thread::scope(|s| {
        let h = s.spawn(|| reader(&current, n, &stop));
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, Ordering::Relaxed);
        h.join().expect("reader")
    });
    stop.store(false, Ordering::Relaxed);
    let (during, misses, took, moved) = std::thread::scope(|s| {
        let h = s.spawn(|| reader(&current, n, &stop));
        std::thread::sleep(Duration::from_millis(100));
        let t2 = Arc::new(t1.successor(&ring, &specs(&["a", "b", "c", "d"]), &clock));
        t1.supersede(Arc::clone(&t2));
        current.store(Arc::clone(&t2));
        let start = Instant::now();
        assert!(rebalance::run(
            &t2,
            Duration::ZERO,
            &|| false,
            &rebalance::directly
        ));
        let took = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        let (lat, misses) = h.join().expect("reader");
        let moved = t2.migration_progress().map_or(0, |p| p.keys_moved);
        (lat, misses, took, moved)
    });
    println!(
        "rebalance: {n} keys x 100 B, 3 -> 4 nodes: moved {moved} ({:.1}%) in {took:.2?} = {:.0} keys/s scanned, {:.0} keys/s moved",
        moved as f64 * 100.0 / n as f64,
        n as f64 / took.as_secs_f64(),
        moved as f64 / took.as_secs_f64()
    );
    println!(
        "GET before: p50 {:?} p99 {:?} ({} reads); during: p50 {:?} p99 {:?} ({} reads, {misses} misses)",
        pct(&before, 0.5),
        pct(&before, 0.99),
        before.len(),
        pct(&during, 0.5),
        pct(&during, 0.99),
        during.len()
    );
    assert_eq!(misses, 0, "a read missed during the move");
}
