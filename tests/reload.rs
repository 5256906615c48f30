//! Hot reload and live migration, end to end: a real server on port 0 whose config file the
//! test rewrites on disk (write a temporary file, rename it over), real memcached clients on
//! raw sockets, and white-box checks of where every key lives afterwards.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{ConfigFile, Raw, TestServer, eventually};
use ringcache::route::topology::Topology;

fn nodes(list: &[(&str, u32, &str)]) -> String {
    list.iter()
        .map(|(name, weight, mem)| {
            format!("[[nodes]]\nname = \"{name}\"\nmax_memory = \"{mem}\"\nweight = {weight}\n")
        })
        .collect()
}

fn three() -> String {
    nodes(&[
        ("cache-a", 1, "64MiB"),
        ("cache-b", 1, "64MiB"),
        ("cache-c", 1, "64MiB"),
    ])
}

fn four() -> String {
    nodes(&[
        ("cache-a", 1, "64MiB"),
        ("cache-b", 1, "64MiB"),
        ("cache-c", 1, "64MiB"),
        ("cache-d", 1, "64MiB"),
    ])
}

fn key(i: usize) -> String {
    format!("key:{i}")
}

fn value(i: usize) -> String {
    format!("value-{i}")
}

/// Stores `value(i)` under `key(i)` for every i in `range`, pipelined with noreply.
fn load(server: &TestServer, range: std::ops::Range<usize>) {
    let mut c = server.raw();
    let mut batch = String::new();
    for i in range {
        let v = value(i);
        batch.push_str(&format!(
            "set {} 0 0 {} noreply\r\n{v}\r\n",
            key(i),
            v.len()
        ));
        if batch.len() > 64 * 1024 {
            c.send(batch.as_bytes());
            batch.clear();
        }
    }
    batch.push_str("mn\r\n");
    c.send(batch.as_bytes());
    c.read_until(b"MN\r\n");
}

/// `get` of many keys at once; returns (key, value) of every hit, in order.
fn get_many(c: &mut Raw, keys: &[String]) -> Vec<(String, String)> {
    c.send(format!("get {}\r\n", keys.join(" ")).as_bytes());
    let reply = c.read_until(b"END\r\n");
    let text = String::from_utf8(reply).expect("utf8");
    let mut lines = text.split("\r\n");
    let mut hits = Vec::new();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("VALUE ") {
            let k = rest.split(' ').next().unwrap_or_default().to_string();
            let v = lines.next().unwrap_or_default().to_string();
            hits.push((k, v));
        }
    }
    hits
}

/// Reads every key in `keys` in batches of 100, forever until `stop`; counts misses (a key
/// in `deleted` may miss) and wrong values, and how many reads ran while a migration did.
struct Reader {
    misses: AtomicU64,
    wrong: AtomicU64,
    reads_while_migrating: AtomicU64,
}

fn read_loop(
    server: &TestServer,
    n: usize,
    may_miss: &(dyn Fn(usize) -> bool + Sync),
    stop: &AtomicBool,
    stats: &Reader,
) {
    let mut c = server.raw();
    let mut start = 0;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let ids: Vec<usize> = (start..(start + 100).min(n)).collect();
        let keys: Vec<String> = ids.iter().map(|&i| key(i)).collect();
        let migrating = server.shared.topology.load().is_migrating();
        let hits = get_many(&mut c, &keys);
        if migrating {
            stats
                .reads_while_migrating
                .fetch_add(keys.len() as u64, Ordering::Relaxed);
        }
        let mut hit = hits.iter();
        let mut next = hit.next();
        for &i in &ids {
            match next {
                Some((k, v)) if *k == key(i) => {
                    if !v.starts_with("value-") && !v.starts_with("w") {
                        stats.wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    next = hit.next();
                }
                _ if may_miss(i) => {}
                _ => {
                    stats.misses.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        start += 100;
        if start >= n {
            start = 0;
            if stopping {
                return;
            }
        }
    }
}

/// Names of the nodes that hold `key` (white box, current and draining nodes).
fn held_by(t: &Topology, key: &[u8]) -> Vec<String> {
    t.nodes
        .iter()
        .chain(&t.draining_nodes())
        .filter(|n| n.entry(key, |e| e.item().is_some()))
        .map(|n| n.name().to_string())
        .collect()
}

/// Every key in `ids` is held by its owner only (and by nobody if `absent`).
fn assert_on_owners(
    server: &TestServer,
    ids: impl Iterator<Item = usize>,
    absent: &HashSet<usize>,
) {
    let t = server.shared.topology.load_full();
    assert!(t.draining_nodes().is_empty());
    for i in ids {
        let k = key(i);
        let held = held_by(&t, k.as_bytes());
        if absent.contains(&i) {
            assert!(held.is_empty(), "{k} deleted but held by {held:?}");
        } else {
            assert_eq!(
                held,
                vec![t.node_for(k.as_bytes()).name().to_string()],
                "{k}"
            );
        }
    }
}

/// a. 3 nodes, add a 4th: a reader over all keys sees zero misses during the move; afterwards
/// every key is on its owner only, ~1/4 moved, all of them onto the new node.
#[test]
fn adding_a_node_moves_a_quarter_of_the_keys_with_zero_misses() {
    let started = Instant::now();
    let n = 100_000;
    let file = ConfigFile::new(&three());
    let server = TestServer::start_file(&file.path);
    load(&server, 0..n);
    let before = server.shared.topology.load_full();
    assert_eq!(before.generation, 1);
    let loaded = started.elapsed();

    let stop = AtomicBool::new(false);
    let stats = Reader {
        misses: AtomicU64::new(0),
        wrong: AtomicU64::new(0),
        reads_while_migrating: AtomicU64::new(0),
    };
    let moving = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| read_loop(&server, n, &|_| false, &stop, &stats));
        }
        file.write(&four());
        server.wait_generation(2);
        server.wait_settled();
        stop.store(true, Ordering::Relaxed);
    });
    let moved_in = moving.elapsed();
    assert_eq!(
        stats.misses.load(Ordering::Relaxed),
        0,
        "misses during the move"
    );
    assert_eq!(stats.wrong.load(Ordering::Relaxed), 0);

    let after = server.shared.topology.load_full();
    assert_eq!((after.generation, after.nodes.len()), (2, 4));
    let mut moved = 0u64;
    for i in 0..n {
        let k = key(i);
        let (old, new) = (before.node_for(k.as_bytes()), after.node_for(k.as_bytes()));
        if old.name() != new.name() {
            moved += 1;
            assert_eq!(new.name(), "cache-d", "{k} moved between old nodes");
        }
    }
    assert_on_owners(&server, 0..n, &HashSet::new());
    let fraction = moved as f64 / n as f64;
    assert!(
        (0.20..0.30).contains(&fraction),
        "moved fraction {fraction}"
    );
    assert_eq!(after.ledger().keys_moved.load(Ordering::Relaxed), moved);

    let ring = server.http_get("/ring");
    assert!(
        ring.starts_with("{\"generation\":2,\"hash\":\"xxh3\""),
        "{ring}"
    );
    assert!(
        ring.contains("\"name\":\"cache-d\",\"weight\":1,\"points\":160"),
        "{ring}"
    );
    assert!(ring.contains("\"in_progress\":false"), "{ring}");
    assert!(ring.contains(&format!("\"keys_moved\":{moved}")), "{ring}");
    let owner = server.http_get("/ring/owner?key=key%3A1");
    let expect = after.node_for(b"key:1").name();
    assert_eq!(
        owner,
        format!(
            "{{\"key\":\"key:1\",\"generation\":2,\"owner\":\"{expect}\",\"previous_owner\":null,\"held_by\":[\"{expect}\"]}}\n"
        )
    );
    let metrics = server.http_get("/metrics");
    assert!(
        metrics.contains("ringcache_rebalance_in_progress 0"),
        "{metrics}"
    );
    assert!(metrics.contains("# HELP ringcache_rebalance_keys_moved_total"));
    println!(
        "100k keys: load {loaded:?}, reload+migration {moved_in:?} ({moved} moved, fraction {fraction:.3}), reads during the move {}, whole test {:?}",
        stats.reads_while_migrating.load(Ordering::Relaxed),
        started.elapsed()
    );
}

/// b + c. Writers update keys and a deleter deletes keys while the move runs: every key ends
/// with its last written value, deleted keys stay deleted (also on every node).
#[test]
fn writes_and_deletes_during_the_move_stick() {
    let n = 30_000;
    let file = ConfigFile::new(&three());
    let server = TestServer::start_file(&file.path);
    load(&server, 0..n);
    let stop = AtomicBool::new(false);
    let last = Arc::new(parking_lot::Mutex::new(vec![None::<String>; n]));
    let deleted = parking_lot::Mutex::new(HashSet::new());
    let stats = Reader {
        misses: AtomicU64::new(0),
        wrong: AtomicU64::new(0),
        reads_while_migrating: AtomicU64::new(0),
    };
    std::thread::scope(|scope| {
        // Writers: keys i % 3 == 1, versioned values; replies read so each write completed.
        for w in 0..2usize {
            let (server, stop, last) = (&server, &stop, Arc::clone(&last));
            scope.spawn(move || {
                let mut c = server.raw();
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) || round < 2 {
                    round += 1;
                    let ids: Vec<usize> = (0..n).filter(|i| i % 3 == 1 && i % 2 == w).collect();
                    for chunk in ids.chunks(200) {
                        let mut batch = String::new();
                        for &i in chunk {
                            let v = format!("w{round}-{i}");
                            batch.push_str(&format!("set {} 0 0 {}\r\n{v}\r\n", key(i), v.len()));
                        }
                        c.send(batch.as_bytes());
                        let want = "STORED\r\n".repeat(chunk.len());
                        c.roundtrip(b"", want.as_bytes());
                        let mut last = last.lock();
                        for &i in chunk {
                            last[i] = Some(format!("w{round}-{i}"));
                        }
                    }
                }
            });
        }
        // Deleter: keys i % 3 == 2, once each, as the move runs.
        let (server_ref, deleted_ref) = (&server, &deleted);
        scope.spawn(move || {
            let mut c = server_ref.raw();
            server_ref.wait_generation(2);
            let ids: Vec<usize> = (0..n).filter(|i| i % 3 == 2).collect();
            for chunk in ids.chunks(50) {
                let batch: String = chunk
                    .iter()
                    .map(|&i| format!("delete {}\r\n", key(i)))
                    .collect();
                c.roundtrip(
                    batch.as_bytes(),
                    "DELETED\r\n".repeat(chunk.len()).as_bytes(),
                );
                deleted_ref.lock().extend(chunk);
            }
        });
        scope.spawn(|| read_loop(&server, n, &|i| i % 3 == 2, &stop, &stats));
        file.write(&four());
        server.wait_generation(2);
        server.wait_settled();
        // Let the deleter finish before stopping the writers' last rounds.
        assert!(eventually(Duration::from_secs(60), || deleted.lock().len() == n / 3));
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(stats.misses.load(Ordering::Relaxed), 0);
    let last = last.lock();
    let deleted = deleted.lock();
    let mut c = server.raw();
    for start in (0..n).step_by(100) {
        let ids: Vec<usize> = (start..start + 100).collect();
        let keys: Vec<String> = ids.iter().map(|&i| key(i)).collect();
        let hits: std::collections::HashMap<String, String> =
            get_many(&mut c, &keys).into_iter().collect();
        for &i in &ids {
            let got = hits.get(&key(i));
            match i % 3 {
                2 => assert_eq!(got, None, "{} was deleted", key(i)),
                1 => assert_eq!(got, last[i].as_ref(), "{} lost its last write", key(i)),
                _ => assert_eq!(got, Some(&value(i))),
            }
        }
    }
    assert_on_owners(&server, 0..n, &deleted);
}

/// d. Remove a node: all its keys are readable from the others, and the node is dropped.
#[test]
fn removing_a_node_drains_it_and_releases_it() {
    let n = 30_000;
    let file = ConfigFile::new(&three());
    let server = TestServer::start_file(&file.path);
    load(&server, 0..n);
    let removed = Arc::downgrade(
        server
            .shared
            .topology
            .load()
            .nodes
            .iter()
            .find(|node| node.name() == "cache-c")
            .expect("cache-c"),
    );
    let held = removed.upgrade().map_or(0, |node| node.len());
    assert!(held > n as u64 / 5, "{held}");
    let stop = AtomicBool::new(false);
    let stats = Reader {
        misses: AtomicU64::new(0),
        wrong: AtomicU64::new(0),
        reads_while_migrating: AtomicU64::new(0),
    };
    std::thread::scope(|scope| {
        scope.spawn(|| read_loop(&server, n, &|_| false, &stop, &stats));
        file.write(&nodes(&[("cache-a", 1, "64MiB"), ("cache-b", 1, "64MiB")]));
        server.wait_generation(2);
        server.wait_settled();
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(stats.misses.load(Ordering::Relaxed), 0);
    assert_on_owners(&server, 0..n, &HashSet::new());
    let t = server.shared.topology.load();
    assert_eq!(t.nodes.iter().map(|n| n.len()).sum::<u64>(), n as u64);
    drop(t);
    assert!(
        eventually(Duration::from_secs(10), || removed.upgrade().is_none()),
        "the removed node is still referenced"
    );
    let ring = server.http_get("/ring");
    assert!(!ring.contains("cache-c"), "{ring}");
}

/// e. Reweight a node, change the hash, shrink a node's budget.
#[test]
fn reweight_rehash_and_shrink_apply_live() {
    let n = 20_000;
    let file = ConfigFile::new(&three());
    let server = TestServer::start_file(&file.path);
    load(&server, 0..n);

    file.write(&nodes(&[
        ("cache-a", 1, "64MiB"),
        ("cache-b", 2, "64MiB"),
        ("cache-c", 1, "64MiB"),
    ]));
    server.wait_generation(2);
    server.wait_settled();
    assert_on_owners(&server, 0..n, &HashSet::new());
    let t = server.shared.topology.load_full();
    assert_eq!(t.weight(1), 2);
    let items: Vec<u64> = t.nodes.iter().map(|node| node.len()).collect();
    assert!(
        items[1] > items[0] + items[0] / 2 && items[1] > items[2] + items[2] / 2,
        "{items:?}"
    );

    file.write(&format!(
        "[ring]\nhash = \"ketama-md5\"\n{}",
        nodes(&[
            ("cache-a", 1, "64MiB"),
            ("cache-b", 2, "64MiB"),
            ("cache-c", 1, "64MiB"),
        ])
    ));
    server.wait_generation(3);
    server.wait_settled();
    assert_on_owners(&server, 0..n, &HashSet::new());
    let mut c = server.raw();
    for start in (0..n).step_by(100) {
        let keys: Vec<String> = (start..start + 100).map(key).collect();
        assert_eq!(get_many(&mut c, &keys).len(), 100);
    }
    assert!(server.http_get("/ring").contains("\"hash\":\"ketama-md5\""));

    file.write(&format!(
        "[ring]\nhash = \"ketama-md5\"\n{}",
        nodes(&[
            ("cache-a", 1, "256KiB"),
            ("cache-b", 2, "64MiB"),
            ("cache-c", 1, "64MiB"),
        ])
    ));
    server.wait_generation(4);
    let t = server.shared.topology.load_full();
    assert!(!t.is_migrating(), "a budget change moves no key");
    let a = &t.nodes[0];
    assert_eq!(a.max_memory(), 256 << 10);
    assert!(a.used_bytes() <= 256 << 10, "{:?}", a.stats());
    assert!(a.stats().evictions > 0);
}

/// f. A garbled file, a duplicate node, a deleted file: the old ring keeps serving and the
/// error is counted; a changed listener is ignored; the next good file applies.
#[test]
fn bad_files_are_rejected_and_the_old_ring_keeps_serving() {
    let file = ConfigFile::new(&three());
    let server = TestServer::start_file(&file.path);
    load(&server, 0..1000);
    let errors = || {
        server
            .shared
            .stats
            .config_reloads_error
            .load(Ordering::Relaxed)
    };
    let check_serving = || {
        assert_eq!(server.shared.topology.load().generation, 1);
        let mut c = server.raw();
        let keys: Vec<String> = (0..100).map(key).collect();
        assert_eq!(get_many(&mut c, &keys).len(), 100);
    };

    file.write(&format!("{}\n[[nodes]\nname = ", four()));
    assert!(eventually(Duration::from_secs(30), || errors() >= 1));
    check_serving();

    file.write(&format!("{}{}", four(), nodes(&[("cache-b", 1, "1MiB")])));
    assert!(eventually(Duration::from_secs(30), || errors() >= 2));
    check_serving();

    file.remove();
    assert!(eventually(Duration::from_secs(30), || errors() >= 3));
    check_serving();
    let metrics = server.http_get("/metrics");
    let line = format!(
        "ringcache_config_reloads_total{{result=\"error\"}} {}",
        errors()
    );
    assert!(metrics.contains(&line), "{line} not in {metrics}");

    // Only [listen] changed: warned about, nothing applied.
    file.write_raw(&format!(
        "[listen]\nmemcache = \"127.0.0.1:1\"\nmetrics = \"127.0.0.1:0\"\n{}",
        three()
    ));
    let ok = || {
        server
            .shared
            .stats
            .config_reloads_ok
            .load(Ordering::Relaxed)
    };
    assert!(eventually(Duration::from_secs(30), || ok() >= 1));
    assert_eq!(
        server.shared.topology.load().generation,
        1,
        "listen-only change"
    );
    file.write(&four());
    server.wait_generation(2);
    server.wait_settled();
    assert_eq!(server.shared.topology.load().generation, 2);
    assert_on_owners(&server, 0..1000, &HashSet::new());
}

/// g. Two reloads in quick succession during a migration: no key lost, none misses.
#[test]
fn a_reload_during_a_migration_restarts_it_without_losing_keys() {
    let n = 40_000;
    let file = ConfigFile::new(&three());
    let server = TestServer::start_file(&file.path);
    load(&server, 0..n);
    let stop = AtomicBool::new(false);
    let stats = Reader {
        misses: AtomicU64::new(0),
        wrong: AtomicU64::new(0),
        reads_while_migrating: AtomicU64::new(0),
    };
    std::thread::scope(|scope| {
        scope.spawn(|| read_loop(&server, n, &|_| false, &stop, &stats));
        file.write(&four());
        server.wait_generation(2);
        file.write(&nodes(&[
            ("cache-b", 1, "64MiB"),
            ("cache-c", 1, "64MiB"),
            ("cache-d", 1, "64MiB"),
            ("cache-e", 2, "64MiB"),
        ]));
        server.wait_generation(3);
        server.wait_settled();
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(stats.misses.load(Ordering::Relaxed), 0);
    assert_on_owners(&server, 0..n, &HashSet::new());
    let t = server.shared.topology.load();
    assert_eq!(t.nodes.iter().map(|n| n.len()).sum::<u64>(), n as u64);
}

/// The same guarantee seen by a Redis client: MGETs over every key while a node is added never
/// return a nil, writes made over RESP during the move stick, and every key ends on its owner.
#[test]
fn redis_clients_see_no_miss_during_a_migration() {
    let n = 50_000;
    let file = ConfigFile::new(&three());
    let server = TestServer::start_file(&file.path);
    let mut c = server.redis();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut cmd = redis::cmd("MSET");
        for &i in chunk {
            cmd.arg(key(i)).arg(value(i));
        }
        let () = cmd.query(&mut c).expect("mset");
    }
    let stop = AtomicBool::new(false);
    let nils = AtomicU64::new(0);
    let reads = AtomicU64::new(0);
    let during = AtomicU64::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut r = server.redis();
            while !stop.load(Ordering::Relaxed) {
                for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
                    let keys: Vec<String> = chunk.iter().map(|&i| key(i)).collect();
                    let migrating = server.shared.topology.load().is_migrating();
                    let got: Vec<Option<String>> =
                        redis::cmd("MGET").arg(&keys).query(&mut r).expect("mget");
                    for (v, &i) in got.iter().zip(chunk) {
                        // Keys below 1000 are rewritten during the move: either value is fine.
                        match v {
                            None => {
                                nils.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(v) if i >= 1000 => assert_eq!(*v, value(i), "{}", key(i)),
                            Some(_) => {}
                        }
                    }
                    reads.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if migrating && server.shared.topology.load().is_migrating() {
                        during.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                }
            }
        });
        file.write(&four());
        server.wait_generation(2);
        let mut w = server.redis();
        for i in 0..1000 {
            let () = redis::cmd("SET")
                .arg(key(i))
                .arg(format!("new-{i}"))
                .query(&mut w)
                .expect("set");
        }
        server.wait_settled();
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(nils.load(Ordering::Relaxed), 0, "nils during the move");
    assert!(reads.load(Ordering::Relaxed) >= n as u64);
    assert!(
        during.load(Ordering::Relaxed) > 0,
        "no MGET ran while the migration was in progress"
    );
    for i in 0..1000 {
        let v: String = redis::cmd("GET").arg(key(i)).query(&mut c).expect("get");
        assert_eq!(v, format!("new-{i}"));
    }
    assert_on_owners(&server, 0..n, &HashSet::new());
}

/// SCAN across reloads: one iteration with a small COUNT while nodes are added, removed and
/// reweighted. The migrations run during its calls (slowed by `rebalance.pause` so that many
/// calls overlap them) and between them, and a reader moves keys by read repair meanwhile.
/// Every key that existed throughout must be returned (duplicates are allowed, as in redis).
#[test]
fn scan_returns_every_key_across_reloads_and_migrations() {
    let n = 30_000;
    let count = 20;
    let pace = "[rebalance]\npause = \"3ms\"\n";
    let file = ConfigFile::new(&format!("{pace}{}", three()));
    let server = TestServer::start_file(&file.path);
    load(&server, 0..n);
    let steps = [
        // Add a node: keys move onto it only.
        four(),
        // Remove one and reweight another: keys leave a draining node, and move both ways.
        nodes(&[
            ("cache-a", 1, "64MiB"),
            ("cache-b", 2, "64MiB"),
            ("cache-d", 1, "64MiB"),
        ]),
        // A new hash while that migration may still run: almost every key moves.
        format!(
            "[ring]\nhash = \"ketama-md5\"\n{}",
            nodes(&[
                ("cache-a", 1, "64MiB"),
                ("cache-b", 2, "64MiB"),
                ("cache-d", 1, "64MiB"),
                ("cache-e", 1, "64MiB"),
            ])
        ),
        // Remove two nodes, and let this migration finish between two calls.
        nodes(&[("cache-a", 1, "64MiB"), ("cache-e", 1, "64MiB")]),
    ];
    let moved = || {
        server
            .shared
            .topology
            .load()
            .ledger()
            .keys_moved
            .load(Ordering::Relaxed)
    };
    let stop = AtomicBool::new(false);
    let mut seen: HashSet<String> = HashSet::new();
    let (mut returned, mut calls, mut during, mut moved_during) = (0usize, 0usize, 0usize, 0usize);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut r = server.redis();
            while !stop.load(Ordering::Relaxed) {
                for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
                    let keys: Vec<String> = chunk.iter().map(|&i| key(i)).collect();
                    let got: Vec<Option<String>> =
                        redis::cmd("MGET").arg(&keys).query(&mut r).expect("mget");
                    assert!(got.iter().all(Option::is_some), "a miss during the move");
                }
            }
        });
        let mut c = server.redis();
        let mut cursor = 0u64;
        let mut step = 0;
        loop {
            let (before, moved_before) = (server.shared.topology.load_full(), moved());
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(count)
                .query(&mut c)
                .expect("scan");
            calls += 1;
            let after = server.shared.topology.load_full();
            if before.is_migrating() && Arc::ptr_eq(&before, &after) && after.is_migrating() {
                during += 1;
            }
            if moved() > moved_before {
                moved_during += 1;
            }
            returned += keys.len();
            seen.extend(keys);
            cursor = next;
            if cursor == 0 {
                break;
            }
            // Reload at 15%, 30%, 45% and 60% of the keys returned.
            if step < steps.len() && seen.len() >= n * 15 * (step + 1) / 100 {
                let generation = after.generation + 1;
                file.write(&format!("{pace}{}", steps[step]));
                server.wait_generation(generation);
                if step == steps.len() - 1 {
                    server.wait_settled();
                }
                step += 1;
            }
            assert!(calls < 40 * n / count, "the iteration does not end");
        }
        assert_eq!(step, steps.len(), "every reload ran during the iteration");
        stop.store(true, Ordering::Relaxed);
    });
    let missing: Vec<usize> = (0..n).filter(|&i| !seen.contains(&key(i))).collect();
    println!(
        "scan: {calls} calls, {returned} keys returned ({} distinct), {during} calls inside a migration, {moved_during} calls while keys moved, {} keys moved",
        seen.len(),
        moved()
    );
    assert!(
        missing.is_empty(),
        "{} keys never returned, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(seen.len(), n, "only existing keys");
    assert!(
        during >= 50,
        "only {during} SCAN calls overlapped a migration"
    );
    assert!(
        moved_during >= 50,
        "only {moved_during} SCAN calls overlapped moves"
    );
    assert_eq!(server.shared.topology.load().generation, 5);
}

/// Reading the file is not a change: the reload's own read of the config must not trigger the
/// next reload (an endless loop of "nothing to apply" every debounce period).
#[test]
fn reading_the_file_does_not_trigger_another_reload() {
    let file = ConfigFile::new(&three());
    let server = TestServer::start_file(&file.path);
    file.write(&nodes(&[("cache-a", 2, "64MiB"), ("cache-b", 1, "64MiB")]));
    server.wait_generation(2);
    let stats = &server.shared.stats;
    assert!(eventually(Duration::from_secs(10), || {
        ringcache::server::Stats::get(&stats.config_reloads_ok) == 1
    }));
    // A window of ten debounce periods: a reload caused by the last one's read would show.
    std::thread::sleep(ringcache::reload::DEBOUNCE * 10);
    assert_eq!(ringcache::server::Stats::get(&stats.config_reloads_ok), 1);
    assert_eq!(server.shared.topology.load().generation, 2);
}

/// While a removed node drains, its keys are still part of the keyspace: DBSIZE and INFO's
/// keyspace count them (no dip), and RANDOMKEY can return them.
#[test]
fn dbsize_and_randomkey_count_draining_nodes_during_a_migration() {
    let n = 30_000;
    let file = ConfigFile::new(&format!("[rebalance]\npause = \"3ms\"\n{}", three()));
    let server = TestServer::start_file(&file.path);
    load(&server, 0..n);
    let mut c = server.redis();
    let dbsize =
        |c: &mut redis::Connection| -> u64 { redis::cmd("DBSIZE").query(c).expect("dbsize") };
    assert_eq!(dbsize(&mut c), n as u64);
    file.write(&format!(
        "[rebalance]\npause = \"3ms\"\n{}",
        nodes(&[("cache-a", 1, "64MiB"), ("cache-b", 1, "64MiB")])
    ));
    server.wait_generation(2);
    let mut during = 0;
    let mut seen = HashSet::new();
    while server.shared.topology.load().is_migrating() {
        let size = dbsize(&mut c);
        let info: String = redis::cmd("INFO")
            .arg("keyspace")
            .query(&mut c)
            .expect("info");
        let key: String = redis::cmd("RANDOMKEY").query(&mut c).expect("randomkey");
        let value: Option<String> = redis::cmd("GET").arg(&key).query(&mut c).expect("get");
        if server.shared.topology.load().is_migrating() {
            during += 1;
            assert_eq!(size, n as u64, "DBSIZE during the migration");
            assert!(
                info.contains(&format!("db0:keys={n},")),
                "INFO keyspace during the migration: {info}"
            );
        }
        assert!(
            value.is_some(),
            "RANDOMKEY gave {key}, which GET does not find"
        );
        seen.insert(key);
    }
    assert!(during > 5, "only {during} samples while the migration ran");
    assert!(seen.len() > during / 2, "RANDOMKEY is not random: {seen:?}");
    server.wait_settled();
    assert_eq!(dbsize(&mut c), n as u64);
}
