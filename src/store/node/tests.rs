//! Unit tests of the node and its entry API: behaviour through `Node`, `Entry` and `Locked`,
//! checked against models and `Node::validate`.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use super::super::charge::alloc_size;
use super::super::hash::hash_key;
use super::super::stripe::Slot;
use super::super::{Container, Kind, NEVER, StoreError, ZSet};
use super::*;

/// xorshift64*: tiny deterministic generator for the randomized tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const T0: u64 = 1_700_000_000_000;

fn get(node: &Node, key: &[u8]) -> Option<Vec<u8>> {
    node.entry(key, |e| {
        let v = e.item().map(|i| i.value().to_vec());
        if v.is_some() {
            e.mark_read();
        } else {
            e.record_miss();
        }
        v
    })
}

fn set(node: &Node, key: &[u8], val: &[u8]) -> Result<u64, StoreError> {
    node.entry(key, |e| e.put(&[val], 0, NEVER, None))
}

fn walk_all(node: &Node, chunk: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = node.walk(cursor, chunk, |k, item| {
            out.push((k.to_vec(), item.value().to_vec()))
        });
        if cursor == 0 {
            return out;
        }
    }
}

#[test]
fn slot_is_56_bytes() {
    assert!(
        size_of::<Slot>() <= 56,
        "Slot is {} bytes",
        size_of::<Slot>()
    );
    assert_eq!(SLOT_BYTES, 56);
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Node>();
}

#[test]
fn put_get_remove_concat() {
    let node = Node::new("n", 1 << 20, Clock::mock(T0));
    assert_eq!(node.name(), "n");
    assert_eq!(get(&node, b"k"), None);
    set(&node, b"k", b"hello").expect("fits");
    assert_eq!(get(&node, b"k").as_deref(), Some(&b"hello"[..]));
    node.entry(b"k", |e| e.put(&[b"a", b"", b"bc"], 42, NEVER, None))
        .expect("fits");
    node.entry(b"k", |e| {
        let item = e.item().expect("live");
        assert_eq!(
            (item.key(), item.value(), item.kind()),
            (&b"k"[..], &b"abc"[..], Kind::Str)
        );
        assert_eq!(item.meta().flags, 42);
        assert!(!item.meta().fetched);
    });
    node.entry(b"k", |e| e.concat(b"def", false)).expect("fits");
    node.entry(b"k", |e| e.concat(b"__", true)).expect("fits");
    assert_eq!(get(&node, b"k").as_deref(), Some(&b"__abcdef"[..]));
    node.entry(b"k", |e| {
        let m = e.item().expect("live").meta();
        assert_eq!(m.flags, 42);
        assert!(m.fetched);
    });
    // Empty key and empty value are items too.
    set(&node, b"", b"").expect("fits");
    assert_eq!(get(&node, b"").as_deref(), Some(&b""[..]));
    assert_eq!(node.len(), 2);
    assert!(node.entry(b"k", |e| e.remove()));
    assert!(!node.entry(b"k", |e| e.remove()));
    assert_eq!(get(&node, b"k"), None);
    // concat on a missing key creates it (Redis APPEND).
    node.entry(b"new", |e| e.concat(b"x", false)).expect("fits");
    assert_eq!(get(&node, b"new").as_deref(), Some(&b"x"[..]));
    let st = node.stats();
    assert_eq!((st.hits, st.misses, st.total_items), (4, 2, 6));
    assert_eq!(st.items, 2);
    node.validate().expect("valid");
}

#[test]
fn cas_changes_on_every_write() {
    let node = Node::new("n", 1 << 20, Clock::mock(T0));
    let c1 = set(&node, b"k", b"1").expect("fits");
    let c2 = set(&node, b"k", b"2").expect("fits");
    let c3 = node.entry(b"k", |e| e.concat(b"3", false)).expect("fits");
    let other = set(&node, b"other", b"x").expect("fits");
    assert!(c1 < c2 && c2 < c3 && c3 < other);
    node.entry(b"k", |e| {
        let mut m = e.meta_mut().expect("live");
        m.flags = 9; // metadata edits keep the CAS
        assert_eq!({ m.cas }, c3);
    });
    let given = node
        .entry(b"k", |e| e.put(&[b"v"], 0, NEVER, Some(777)))
        .expect("fits");
    assert_eq!(given, 777);
    assert_eq!(
        node.entry(b"k", |e| e.item().map(|i| i.meta().cas)),
        Some(777)
    );
    let c4 = set(&node, b"k", b"again").expect("fits");
    assert!(c4 > other);
}

#[test]
fn containers_are_charged_and_typed() {
    let node = Node::new("n", 1 << 20, Clock::mock(T0));
    let used0 = node.used_bytes();
    let cas = node
        .entry(b"h", |e| {
            e.put_container(Container::Hash(Default::default()), NEVER)
        })
        .expect("fits");
    node.entry(b"h", |e| {
        let item = e.item().expect("live");
        assert_eq!(
            (item.kind(), item.value(), item.meta().cas),
            (Kind::Hash, &b""[..], cas)
        );
        assert!(item.container().is_some());
    });
    assert_eq!(
        node.entry(b"h", |e| e.concat(b"x", false)),
        Err(StoreError::WrongType)
    );
    let before = node.used_bytes();
    let n = node
        .entry(b"h", |e| {
            e.update_container(|c| {
                if let Container::Hash(m) = c {
                    for i in 0..100u32 {
                        m.insert(&i.to_be_bytes(), &[0u8; 50]);
                    }
                }
                c.len()
            })
        })
        .expect("container");
    assert_eq!(n, Some(100));
    assert!(node.used_bytes() >= before + 100 * (32 + 64));
    node.validate().expect("valid");
    assert_eq!(
        node.entry(b"s", |e| e.update_container(|c| c.len())),
        Ok(None)
    );
    set(&node, b"s", b"str").expect("fits");
    assert_eq!(
        node.entry(b"s", |e| e.update_container(|c| c.len())),
        Err(StoreError::WrongType)
    );
    node.entry(b"z", |e| {
        e.put_container(Container::ZSet(ZSet::default()), NEVER)
    })
    .expect("fits");
    // Emptying a container removes the key.
    node.entry(b"h", |e| {
        e.update_container(|c| {
            if let Container::Hash(m) = c {
                for i in 0..100u32 {
                    m.remove(&i.to_be_bytes());
                }
            }
        })
    })
    .expect("container");
    assert!(node.entry(b"h", |e| e.item().is_none()));
    // A string replaces a container and vice versa.
    set(&node, b"z", b"now a string").expect("fits");
    assert_eq!(get(&node, b"z").as_deref(), Some(&b"now a string"[..]));
    node.validate().expect("valid");
    for k in [&b"s"[..], b"z"] {
        node.entry(k, |e| e.remove());
    }
    assert_eq!(node.used_bytes() - node.fixed_bytes(), used0);
    node.validate().expect("valid");
}

#[test]
fn entries_lock_several_keys_of_one_node() {
    let node = Node::new("n", 1 << 20, Clock::mock(T0));
    // Enough keys that some share a stripe (one lock for both).
    let names: Vec<Vec<u8>> = (0..100).map(|i| format!("k{i}").into_bytes()).collect();
    let keys: Vec<&[u8]> = names.iter().map(|k| k.as_slice()).collect();
    set(&node, keys[0], b"first").expect("fits");
    node.entries(&keys, |l| {
        let v = l.entry(0, |e| e.item().map(|i| i.value().to_vec()));
        assert_eq!(v.as_deref(), Some(&b"first"[..]));
        for i in 1..keys.len() {
            l.entry(i, |e| e.put(&[b"v"], 0, NEVER, None))
                .expect("fits");
        }
        l.entry(0, |e| e.remove());
    });
    assert!(get(&node, keys[0]).is_none());
    assert_eq!(get(&node, keys[99]).as_deref(), Some(&b"v"[..]));
    assert_eq!(node.len(), 99);
    node.validate().expect("valid");
}

#[test]
fn a_container_grown_past_the_budget_is_evicted_whole() {
    let node = Node::new("n", 64 << 10, Clock::mock(T0));
    set(&node, b"other", b"x").expect("fits");
    node.entry(b"l", |e| {
        e.put_container(Container::List(Default::default()), NEVER)
    })
    .expect("fits");
    let mut refused = None;
    for i in 0..1000 {
        let r = node.entry(b"l", |e| {
            e.update_container(|c| {
                if let Container::List(l) = c {
                    l.push(&[0u8; 100], false);
                }
            })
        });
        assert!(node.used_bytes() <= node.max_memory());
        if r.is_err() {
            refused = Some(i);
            break;
        }
    }
    assert!(refused.is_some(), "a 100 KB list cannot fit in 64 KiB");
    assert!(node.entry(b"l", |e| e.item().is_none()));
    node.validate().expect("valid");
}

#[test]
fn eviction_keeps_used_under_max() {
    let max = 256 * 1024;
    let node = Node::new("n", max, Clock::mock(T0));
    let mut rng = Rng(7);
    for i in 0..20_000u32 {
        let len = 50 + rng.below(250) as usize;
        set(&node, format!("key-{i}").as_bytes(), &vec![b'v'; len]).expect("fits");
        assert!(
            node.used_bytes() <= max,
            "used {} > max after put {i}",
            node.used_bytes()
        );
        if i % 3 == 0 {
            get(&node, format!("key-{}", i / 2).as_bytes());
            assert!(node.used_bytes() <= max);
        }
    }
    let st = node.stats();
    assert!(st.evictions > 15_000, "{st:?}");
    assert!(st.items < 2_000 && st.items > 500, "{st:?}");
    assert!(st.used_bytes > max * 9 / 10, "budget badly used: {st:?}");
    // The most recent item is always there.
    assert!(get(&node, b"key-19999").is_some());
    node.validate().expect("valid");
}

#[test]
fn too_big_item_is_refused() {
    let max = 64 * 1024;
    let node = Node::new("n", max, Clock::mock(T0));
    set(&node, b"k", b"small").expect("fits");
    set(&node, b"other", b"x").expect("fits");
    assert_eq!(
        set(&node, b"k", &vec![0u8; 70_000]),
        Err(StoreError::OutOfMemory)
    );
    assert_eq!(get(&node, b"k").as_deref(), Some(&b"small"[..]));
    assert_eq!(
        set(&node, b"new", &vec![0u8; 70_000]),
        Err(StoreError::OutOfMemory)
    );
    assert_eq!(get(&node, b"new"), None);
    assert_eq!(
        node.entry(b"k", |e| e.concat(&vec![0u8; 70_000], false)),
        Err(StoreError::OutOfMemory)
    );
    assert_eq!(get(&node, b"k").as_deref(), Some(&b"small"[..]));
    // Nearly the whole budget (replacing "other": no slab growth): fits, evicting the rest.
    let floor = node.fixed_bytes() + node.len() * SLOT_BYTES;
    let big = max - floor - 32;
    set(&node, b"other", &vec![1u8; big as usize]).expect("fits");
    assert!(
        node.used_bytes() <= max,
        "{big} {:?} fixed {}",
        node.stats(),
        node.fixed_bytes()
    );
    assert_eq!(get(&node, b"k"), None);
    assert_eq!(get(&node, b"other").map(|v| v.len()), Some(big as usize));
    assert_eq!(node.stats().evictions, 1);
    // One byte past what can ever fit: refused, and the big item stays.
    let floor = node.fixed_bytes() + node.len() * SLOT_BYTES;
    assert_eq!(
        set(&node, b"x", &vec![0u8; (max - floor) as usize]),
        Err(StoreError::OutOfMemory)
    );
    assert_eq!(get(&node, b"other").map(|v| v.len()), Some(big as usize));
    node.validate().expect("valid");
}

#[test]
fn shrinking_max_memory_evicts_before_returning() {
    let node = Node::new("n", 1 << 20, Clock::mock(T0));
    for i in 0..20_000u32 {
        set(&node, &i.to_be_bytes(), &[0u8; 100]).expect("fits");
    }
    assert!(node.used_bytes() > 900 * 1024);
    node.set_max_memory(256 * 1024);
    assert!(node.used_bytes() <= 256 * 1024);
    assert_eq!(node.max_memory(), 256 * 1024);
    node.validate().expect("valid");
    // Below the fixed charge: everything goes, unused capacity is given back.
    node.set_max_memory(1000);
    assert!(node.used_bytes() <= 1000, "{:?}", node.stats());
    node.validate().expect("valid");
    node.set_max_memory(1 << 20);
    set(&node, b"k", b"v").expect("fits");
    assert_eq!(get(&node, b"k").as_deref(), Some(&b"v"[..]));
    node.validate().expect("valid");
}

#[test]
fn walk_sees_every_stable_item_once_under_churn() {
    let node = Node::new("n", u64::MAX, Clock::mock(T0));
    let stable: Vec<Vec<u8>> = (0..5_000)
        .map(|i| format!("stable-{i}").into_bytes())
        .collect();
    for k in &stable {
        set(&node, k, b"s").expect("fits");
    }
    let stop = AtomicBool::new(false);
    let mut seen: HashMap<Vec<u8>, u32> = HashMap::new();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut rng = Rng(99);
            while !stop.load(Relaxed) {
                let k = format!("churn-{}", rng.below(3_000));
                if rng.below(2) == 0 {
                    set(&node, k.as_bytes(), b"c").expect("fits");
                } else {
                    node.entry(k.as_bytes(), |e| e.remove());
                }
            }
        });
        let mut cursor = 0;
        loop {
            cursor = node.walk(cursor, 7, |k, _| *seen.entry(k.to_vec()).or_default() += 1);
            if cursor == 0 {
                break;
            }
            std::thread::yield_now();
        }
        stop.store(true, Relaxed);
    });
    for k in &stable {
        assert_eq!(seen.get(k), Some(&1), "{}", String::from_utf8_lossy(k));
    }
    node.validate().expect("valid");
}

#[test]
fn stripe_walks_cover_a_key_in_the_same_stripe_of_every_node() {
    let a = Node::new("a", u64::MAX, Clock::mock(T0));
    let b = Node::new("b", u64::MAX, Clock::mock(T0));
    let keys: Vec<Vec<u8>> = (0..3_000).map(|i| format!("k{i}").into_bytes()).collect();
    for (i, k) in keys.iter().enumerate() {
        set(if i % 3 == 0 { &a } else { &b }, k, b"v").expect("fits");
    }
    let expired = b"gone".as_slice();
    a.entry(expired, |e| e.put(&[b"x"], 0, T0 - 1, None))
        .expect("fits");
    // Stripe by stripe, in small chunks: every key once, in its key's stripe.
    let mut seen: HashMap<Vec<u8>, (usize, u32)> = HashMap::new();
    for stripe in 0..STRIPES {
        for node in [&a, &b] {
            let mut pos = 0;
            loop {
                let next = node.walk_stripe(stripe, pos, 5, |k, _| {
                    assert_eq!(stripe_of(hash_key(k)), stripe);
                    seen.entry(k.to_vec()).or_insert((stripe, 0)).1 += 1;
                });
                match next {
                    Some(p) => {
                        assert!(p > pos);
                        pos = p;
                    }
                    None => break,
                }
            }
        }
    }
    assert_eq!(seen.len(), keys.len());
    assert!(seen.values().all(|&(_, n)| n == 1));
    assert!(!seen.contains_key(expired));
    assert_eq!(
        a.walk_stripe(STRIPES, 0, 5, |_, _| panic!("no stripe")),
        None
    );
    // All stripes of both nodes under one set of locks: the same keys, tagged by node.
    let mut locked: Vec<(usize, Vec<u8>)> = Vec::new();
    for stripe in 0..STRIPES {
        let walked = Node::walk_stripe_many(
            &[&b, &a],
            stripe,
            || true,
            |i, k, _| locked.push((i, k.to_vec())),
        );
        assert!(walked);
        let skipped =
            Node::walk_stripe_many(&[&a, &b], stripe, || false, |_, _, _| panic!("not walked"));
        assert!(!skipped);
    }
    assert_eq!(locked.len(), keys.len());
    for (i, k) in &locked {
        let n: usize = String::from_utf8_lossy(&k[1..]).parse().expect("number");
        assert_eq!(*i, usize::from(n % 3 == 0), "{n}");
    }
    // The locks are released: the nodes still serve.
    set(&a, b"after", b"v").expect("fits");
    a.validate().expect("valid");
    b.validate().expect("valid");
}

/// What the model knows of a key.
#[derive(Debug, Clone)]
struct Model {
    value: Vec<u8>,
    flags: u32,
    expire_at: u64,
    cas: u64,
}

/// Random ops against a HashMap model. With `max_memory` = unlimited the node must match the
/// model exactly; with a small budget an item may be gone (evicted), never wrong.
fn run_model(seed: u64, max_memory: u64, ops: usize) {
    let clock = Clock::mock(T0);
    let node = Node::new("model", max_memory, clock.clone());
    let bounded = max_memory != u64::MAX;
    let mut rng = Rng(seed);
    let mut model: HashMap<Vec<u8>, Model> = HashMap::new();
    let mut pending_flush = 0u64;
    for op in 0..ops {
        let now = clock.now_ms();
        if pending_flush != 0 && pending_flush <= now {
            let r = rng.below(2);
            // Either path performs it first.
            if r == 0 {
                node.sweep_expired(0);
            }
            model.clear();
            pending_flush = 0;
        }
        model.retain(|_, m| m.expire_at == NEVER || m.expire_at > now);
        let key = format!("k{}", rng.below(if bounded { 400 } else { 150 })).into_bytes();
        let kind = rng.below(100);
        match kind {
            0..=34 => {
                let got = node.entry(&key, |e| {
                    e.item().map(|i| {
                        (
                            i.value().to_vec(),
                            i.meta().flags,
                            i.meta().cas,
                            i.meta().expire_at,
                        )
                    })
                });
                match (got, model.get(&key)) {
                    (Some(g), Some(m)) => {
                        assert_eq!(g, (m.value.clone(), m.flags, m.cas, m.expire_at), "op {op}")
                    }
                    (None, None) => {}
                    (None, Some(_)) if bounded => {
                        model.remove(&key);
                    }
                    (g, m) => panic!(
                        "seed {seed} op {op} key {}: node {g:?} model {m:?}",
                        String::from_utf8_lossy(&key)
                    ),
                }
            }
            35..=59 => {
                let len = rng.below(if bounded { 300 } else { 64 }) as usize;
                let value: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
                let flags = rng.below(4) as u32;
                let expire_at = if rng.below(3) == 0 {
                    now + 1 + rng.below(5_000)
                } else {
                    NEVER
                };
                let cas = node
                    .entry(&key, |e| e.put(&[&value], flags, expire_at, None))
                    .expect("fits");
                model.insert(
                    key,
                    Model {
                        value,
                        flags,
                        expire_at,
                        cas,
                    },
                );
            }
            60..=69 => {
                let removed = node.entry(&key, |e| e.remove());
                let had = model.remove(&key).is_some();
                assert!(
                    removed == had || (bounded && had && !removed),
                    "seed {seed} op {op}"
                );
            }
            70..=79 => {
                let data: Vec<u8> = (0..rng.below(20)).map(|_| rng.below(256) as u8).collect();
                let front = rng.below(2) == 0;
                let r = node.entry(&key, |e| e.item().is_some().then(|| e.concat(&data, front)));
                match (r, model.get_mut(&key)) {
                    (Some(r), Some(m)) => {
                        m.cas = r.expect("fits");
                        if front {
                            m.value.splice(0..0, data.iter().copied());
                        } else {
                            m.value.extend_from_slice(&data);
                        }
                    }
                    (None, None) => {}
                    (None, Some(_)) if bounded => {
                        model.remove(&key);
                    }
                    (r, m) => panic!("seed {seed} op {op}: concat {r:?} model {m:?}"),
                }
            }
            80..=84 => clock.advance(rng.below(2_000)),
            85..=89 => {
                node.sweep_expired(rng.below(300) as usize);
            }
            90..=94 => {
                let expire_at = now + 1 + rng.below(3_000);
                let touched = node.entry(&key, |e| {
                    e.meta_mut().map(|mut m| m.expire_at = expire_at).is_some()
                });
                match (touched, model.get_mut(&key)) {
                    (true, Some(m)) => m.expire_at = expire_at,
                    (false, None) => {}
                    (false, Some(_)) if bounded => {
                        model.remove(&key);
                    }
                    (t, m) => panic!("seed {seed} op {op}: touch {t} model {m:?}"),
                }
            }
            95..=97 => {
                node.entry(&key, |e| e.mark_read());
            }
            _ => {
                if rng.below(2) == 0 {
                    node.flush(0);
                    model.clear();
                    pending_flush = 0;
                } else {
                    pending_flush = now + 1 + rng.below(3_000);
                    node.flush(pending_flush);
                }
            }
        }
        if bounded {
            assert!(
                node.used_bytes() <= max_memory,
                "seed {seed} op {op}: over budget"
            );
        }
        if op % 250 == 249 {
            if let Err(e) = node.validate() {
                panic!("seed {seed} op {op}: {e}");
            }
            if !bounded && pending_flush == 0 {
                let mut walked = walk_all(&node, 13);
                walked.sort();
                let now = clock.now_ms();
                let mut expect: Vec<_> = model
                    .iter()
                    .filter(|(_, m)| m.expire_at == NEVER || m.expire_at > now)
                    .map(|(k, m)| (k.clone(), m.value.clone()))
                    .collect();
                expect.sort();
                assert_eq!(walked, expect, "seed {seed} op {op}");
            }
        }
    }
    node.validate().expect("valid at the end");
}

#[test]
fn random_ops_match_a_model() {
    for seed in [1, 2, 3, 0xdead_beef] {
        run_model(seed, u64::MAX, 3_000);
    }
}

#[test]
fn random_ops_with_eviction_never_lie() {
    for seed in [11, 12, 13] {
        run_model(seed, 48 * 1024, 3_000);
    }
}

#[test]
fn two_threads_hammer_one_node() {
    let max = 96 * 1024;
    let node = Node::new("n", max, Clock::mock(T0));
    std::thread::scope(|scope| {
        for t in 0..2u64 {
            let node = &node;
            scope.spawn(move || {
                let mut rng = Rng(t + 100);
                for _ in 0..20_000 {
                    let key = format!("k{}", rng.below(1_000));
                    match rng.below(10) {
                        0..=4 => {
                            get(node, key.as_bytes());
                        }
                        5..=7 => {
                            let len = rng.below(200) as usize;
                            set(node, key.as_bytes(), &vec![b'x'; len]).expect("fits");
                        }
                        8 => {
                            node.entry(key.as_bytes(), |e| e.concat(b"++", false))
                                .expect("fits");
                        }
                        _ => {
                            node.entry(key.as_bytes(), |e| e.remove());
                        }
                    }
                }
            });
        }
    });
    node.validate().expect("valid");
    assert!(node.used_bytes() <= max);
    assert!(node.stats().evictions > 0);
}

#[test]
fn accounting_per_item_matches_the_formula() {
    let node = Node::new("n", u64::MAX, Clock::mock(T0));
    let n = 100_000u64;
    let value = [b'v'; 100];
    for i in 0..n {
        let key = format!("key:{i:012}");
        assert_eq!(key.len(), 16);
        set(&node, key.as_bytes(), &value).expect("fits");
    }
    let used = node.used_bytes();
    let fixed = node.fixed_bytes();
    let per_item = used as f64 / n as f64;
    println!(
        "charged {per_item:.1} B/item = {} data + {SLOT_BYTES} slot + {:.1} fixed",
        alloc_size(116),
        fixed as f64 / n as f64
    );
    assert_eq!(used - fixed, n * (alloc_size(116) + SLOT_BYTES));
    assert_eq!(alloc_size(116) + SLOT_BYTES, 184);
    assert!((184.0..=204.0).contains(&per_item), "{per_item}");
    node.validate().expect("valid");
}

/// SIEVE eviction as the node drives it (the queue itself is `stripe/evict.rs`).
mod evict {
    use super::super::super::clock::Clock;
    use super::super::super::hash::hash_key;
    use super::super::{Node, SLOT_BYTES, STRIPES, stripe_of};

    /// Keys that all land in stripe `s` of a node.
    pub(crate) fn keys_in_stripe(s: usize, n: usize) -> Vec<Vec<u8>> {
        (0u64..)
            .map(|i| format!("key-{i:08}").into_bytes())
            .filter(|k| stripe_of(hash_key(k)) == s)
            .take(n)
            .collect()
    }

    fn present(node: &Node, key: &[u8]) -> bool {
        node.entry(key, |e| e.item().is_some())
    }

    #[test]
    fn sieve_keeps_recently_read_items() {
        let node = Node::new("n", u64::MAX, Clock::mock(1_000_000));
        let keys = keys_in_stripe(3, 10);
        for k in &keys {
            node.entry(k, |e| e.put(&[&[7u8; 100]], 0, 0, None))
                .expect("fits");
        }
        // Read the five oldest: the hand must skip them (clearing their bits).
        for k in &keys[..5] {
            node.entry(k, |e| e.mark_read());
        }
        // Evicting gives back the item's allocation; its slot stays in the slab (fixed charge).
        let freed = node
            .entry(&keys[0], |e| e.item().map(|i| i.charge()))
            .expect("item")
            - SLOT_BYTES;
        let used = node.used_bytes();
        node.set_max_memory(used - 3 * freed);
        assert_eq!(node.used_bytes(), used - 3 * freed);
        let survivors: Vec<usize> = (0..10).filter(|&i| present(&node, &keys[i])).collect();
        assert_eq!(survivors, vec![0, 1, 2, 3, 4, 8, 9]);
        let st = node.stats();
        assert_eq!((st.evictions, st.evicted_unfetched), (3, 3));
        node.validate().expect("valid");

        // A new item in the same stripe: the hand continues after 7, finds 8 unvisited.
        node.set_max_memory(node.used_bytes());
        let extra = keys_in_stripe(3, 11).pop().expect("key");
        node.entry(&extra, |e| e.put(&[&[7u8; 100]], 0, 0, None))
            .expect("fits");
        let survivors: Vec<usize> = (0..10).filter(|&i| present(&node, &keys[i])).collect();
        assert_eq!(survivors, vec![0, 1, 2, 3, 4, 9]);
        assert!(present(&node, &extra));
        assert!(node.used_bytes() <= node.max_memory());
        node.validate().expect("valid");
    }

    #[test]
    fn eviction_spills_to_other_stripes_and_spares_the_new_item() {
        let clock = Clock::mock(1_000_000);
        let node = Node::new("n", u64::MAX, clock);
        // Fill every stripe but 0 a little, stripe 0 with one item.
        for s in 1..STRIPES {
            for k in keys_in_stripe(s, 2) {
                node.entry(&k, |e| e.put(&[&[1u8; 200]], 0, 0, None))
                    .expect("fits");
            }
        }
        let k0 = keys_in_stripe(0, 1).pop().expect("key");
        node.set_max_memory(node.used_bytes() + 1000);
        // A big item in stripe 0: its stripe has nothing else, so others must give way.
        node.entry(&k0, |e| e.put(&[&[2u8; 5000]], 0, 0, None))
            .expect("fits");
        assert!(present(&node, &k0));
        assert!(node.used_bytes() <= node.max_memory());
        assert!(node.stats().evictions > 0);
        node.validate().expect("valid");
    }
}

/// Expiry as the node drives it: lazy reclaim, the sweep, flush (`stripe/expire.rs` holds the
/// per-stripe part).
mod expire {
    use super::super::super::clock::Clock;
    use super::super::Node;

    fn get(node: &Node, key: &[u8]) -> Option<Vec<u8>> {
        node.entry(key, |e| {
            let v = e.item().map(|i| i.value().to_vec());
            if v.is_some() {
                e.mark_read();
            } else {
                e.record_miss();
            }
            v
        })
    }

    fn set(node: &Node, key: &[u8], val: &[u8], expire_at: u64) {
        node.entry(key, |e| e.put(&[val], 0, expire_at, None))
            .expect("fits");
    }

    #[test]
    fn lazy_expiry_hides_and_reclaims() {
        let clock = Clock::mock(10_000_000);
        let node = Node::new("n", 1 << 30, clock.clone());
        let t0 = clock.now_ms();
        set(&node, b"a", b"1", t0 + 1_000);
        set(&node, b"b", b"2", t0 + 1_000);
        set(&node, b"c", b"3", 0);
        assert_eq!(get(&node, b"a").as_deref(), Some(&b"1"[..]));
        clock.advance(999);
        assert_eq!(get(&node, b"b").as_deref(), Some(&b"2"[..]));
        clock.advance(1);
        assert_eq!(node.len(), 3);
        assert_eq!(get(&node, b"a"), None); // expired at exactly expire_at
        assert_eq!(node.len(), 2);
        let st = node.stats();
        assert_eq!((st.expired, st.expired_unfetched), (1, 0)); // "a" was fetched
        // Walk does not show expired items.
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = node.walk(cursor, 10, |k, _| seen.push(k.to_vec()));
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen, vec![b"c".to_vec()]);
        node.validate().expect("valid");
    }

    #[test]
    fn sweep_reclaims_and_counts_unfetched() {
        let clock = Clock::mock(10_000_000);
        let node = Node::new("n", 1 << 30, clock.clone());
        let t0 = clock.now_ms();
        for i in 0..1000u32 {
            let exp = if i % 2 == 0 { t0 + 5_000 } else { 0 };
            set(&node, &i.to_be_bytes(), b"v", exp);
        }
        for i in (0..100u32).step_by(2) {
            assert!(get(&node, &i.to_be_bytes()).is_some());
        }
        assert_eq!(node.sweep_expired(10_000), 0);
        clock.advance(5_000);
        // Small steps: bounded work per call, all reclaimed after enough calls.
        let mut removed = 0;
        let mut calls = 0;
        while removed < 500 {
            let r = node.sweep_expired(16);
            assert!(r <= 16);
            removed += r;
            calls += 1;
            assert!(calls < 10_000, "sweep makes no progress");
        }
        assert_eq!(removed, 500);
        assert_eq!(node.len(), 500);
        let st = node.stats();
        assert_eq!((st.expired, st.expired_unfetched), (500, 450));
        assert_eq!(node.sweep_expired(100_000), 0);
        node.validate().expect("valid");
    }

    #[test]
    fn flush_now_and_deferred() {
        let clock = Clock::mock(10_000_000);
        let node = Node::new("n", 1 << 30, clock.clone());
        for i in 0..300u32 {
            set(&node, &i.to_be_bytes(), b"v", 0);
        }
        node.flush(0);
        assert_eq!(node.len(), 0);
        assert_eq!(node.used_bytes(), 0);
        assert_eq!(get(&node, &1u32.to_be_bytes()), None);
        node.validate().expect("valid");

        for i in 0..300u32 {
            set(&node, &i.to_be_bytes(), b"v", 0);
        }
        let at = clock.now_ms() + 10_000;
        node.flush(at);
        assert_eq!(node.pending_flush(), Some(at));
        clock.advance(9_999);
        assert_eq!(get(&node, &1u32.to_be_bytes()).as_deref(), Some(&b"v"[..]));
        assert_eq!(node.len(), 300);
        clock.advance(1);
        // The first entry at the deadline performs it, before looking at its own key.
        set(&node, b"after", b"x", 0);
        assert_eq!(node.pending_flush(), None);
        assert_eq!(node.len(), 1);
        assert_eq!(get(&node, b"after").as_deref(), Some(&b"x"[..]));
        node.validate().expect("valid");

        // Deferred, then performed by the sweep; a later flush(now) cancels a pending one.
        node.flush(clock.now_ms() + 1);
        clock.advance(1);
        node.sweep_expired(1);
        assert_eq!(node.len(), 0);
        set(&node, b"k", b"v", 0);
        node.flush(clock.now_ms() + 50);
        node.flush(0);
        set(&node, b"k", b"v", 0);
        clock.advance(100);
        assert_eq!(get(&node, b"k").as_deref(), Some(&b"v"[..]));
        assert_eq!(node.stats().expired, 0);
        node.validate().expect("valid");
    }
}

#[test]
fn update_str_rewrites_in_place_and_keeps_the_charge() {
    let node = Node::new("a", 1 << 20, Clock::mock(T0));
    assert_eq!(
        node.entry(b"s", |e| e.update_str(|v| (v.len(), true))),
        Ok(None)
    );
    node.entry(b"s", |e| e.put(&[b"abcdef"], 7, T0 + 60_000, None))
        .expect("fits");
    let used = node.used_bytes();
    let cas = node.entry(b"s", |e| e.item().map(|i| i.meta().cas));
    // Unchanged: same CAS.
    let n = node.entry(b"s", |e| e.update_str(|v| (v.len(), false)));
    assert_eq!(n, Ok(Some(6)));
    assert_eq!(node.entry(b"s", |e| e.item().map(|i| i.meta().cas)), cas);
    // Changed: new bytes and CAS, same flags, expiry and charge.
    node.entry(b"s", |e| {
        e.update_str(|v| {
            v[0] = b'X';
            ((), true)
        })
    })
    .expect("a string");
    node.entry(b"s", |e| {
        let i = e.item().expect("live");
        assert_eq!(i.value(), b"Xbcdef");
        assert_ne!(Some(i.meta().cas), cas);
        assert_eq!((i.meta().flags, i.meta().expire_at), (7, T0 + 60_000));
    });
    assert_eq!(node.used_bytes(), used);
    node.entry(b"h", |e| {
        e.put_container(Container::ZSet(ZSet::default()), NEVER)
    })
    .expect("fits");
    assert_eq!(
        node.entry(b"h", |e| e.update_str(|_| ((), true))),
        Err(StoreError::WrongType)
    );
    node.validate().expect("valid");
}
