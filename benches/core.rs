//! Criterion micro-benchmarks of the hot path's parts: ring lookup, memcached decode, node
//! get/set, and sorted-set ZADD/ZRANK/ZRANGE on a 1M-member set through the node (lock,
//! update, O(1) re-charge). Run with `cargo bench --bench core` (`-- zset` for the latter).

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, criterion_group, criterion_main};
use ringcache::config::Limits;
use ringcache::proto::memcache::parse::Decoder;
use ringcache::route::ring::{HashKind, Ring};
use ringcache::store::{Clock, Container, NEVER, Node, ZSet};

fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("key:{i:012}").into_bytes())
        .collect()
}

fn ring_lookup(c: &mut Criterion) {
    let keys = keys(4096);
    for (label, hash, nodes) in [
        ("xxh3/2", HashKind::Xxh3, 2),
        ("xxh3/100", HashKind::Xxh3, 100),
        ("ketama-md5/2", HashKind::KetamaMd5, 2),
        ("ketama-md5/100", HashKind::KetamaMd5, 100),
    ] {
        let names: Vec<String> = (0..nodes).map(|i| format!("cache-{i}")).collect();
        let specs: Vec<(&str, u32)> = names.iter().map(|n| (n.as_str(), 1)).collect();
        let ring = Ring::build(&specs, hash, 160, Some(*b"{}"));
        let mut i = 0;
        c.bench_function(&format!("ring_lookup/{label}"), |b| {
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(ring.lookup(black_box(&keys[i])))
            })
        });
    }
}

fn memcache_decode(c: &mut Criterion) {
    let limits = Limits::default();
    let mut value = b"set key:000000000042 0 0 100\r\n".to_vec();
    value.extend_from_slice(&[b'v'; 100]);
    value.extend_from_slice(b"\r\n");
    for (label, request) in [
        ("get", b"get key:000000000042\r\n".to_vec()),
        (
            "get_10_keys",
            format!(
                "get {}\r\n",
                (0..10)
                    .map(|i| format!("key:{i:012}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
            .into_bytes(),
        ),
        ("set_100B", value.clone()),
        ("mg", b"mg key:000000000042 v f t c\r\n".to_vec()),
    ] {
        let mut decoder = Decoder::new();
        let mut buf = BytesMut::with_capacity(4096);
        c.bench_function(&format!("memcache_decode/{label}"), |b| {
            b.iter(|| {
                buf.extend_from_slice(&request);
                let r = decoder.decode(&mut buf, &limits);
                black_box(r.is_ok())
            })
        });
    }
}

fn node_ops(c: &mut Criterion) {
    let node = Node::new("bench", 1 << 30, Clock::real());
    let keys = keys(100_000);
    let value = [b'v'; 100];
    for k in &keys {
        node.entry(k, |e| e.put(&[&value], 0, NEVER, None))
            .expect("fits");
    }
    let mut i = 0;
    c.bench_function("node_get/100k_keys_100B", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            node.entry(&keys[i], |e| {
                e.mark_read();
                e.item().map(|it| black_box(it.value().len()))
            })
        })
    });
    c.bench_function("node_set/100k_keys_100B", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            node.entry(&keys[i], |e| e.put(&[&value], 0, NEVER, None))
        })
    });
}

/// xorshift64, for reproducible random members and ranks.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn zset_ops(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let node = Node::new("bench", 1 << 32, Clock::real());
    let mut z = ZSet::default();
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..N {
        z.insert(
            format!("member:{i:09}").as_bytes(),
            (next(&mut x) % N) as f64,
        );
    }
    node.entry(b"z", |e| e.put_container(Container::ZSet(z), NEVER))
        .expect("fits");
    let members: Vec<Vec<u8>> = (0..4096)
        .map(|_| format!("member:{:09}", next(&mut x) % N).into_bytes())
        .collect();
    let mut i = 0;
    // ZADD z <score> <member> on an existing member: a new score moves it in the order.
    c.bench_function("zset_zadd/1M_members_update", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            let score = (next(&mut x) % N) as f64;
            node.entry(b"z", |e| {
                e.update_container(|c| match c {
                    Container::ZSet(z) => black_box(z.insert(&members[i], score)),
                    _ => None,
                })
            })
        })
    });
    // ZRANK z <member>.
    c.bench_function("zset_zrank/1M_members", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            node.entry(b"z", |e| {
                e.item().and_then(|it| match it.container() {
                    Some(Container::ZSet(z)) => black_box(z.rank(&members[i])),
                    _ => None,
                })
            })
        })
    });
    // ZRANGE z <r> <r+9> from a random rank: select + 10-element in-order walk.
    c.bench_function("zset_zrange/1M_members_10_from_random_rank", |b| {
        b.iter(|| {
            let r = (next(&mut x) % (N - 10)) as usize;
            node.entry(b"z", |e| {
                e.item().map(|it| match it.container() {
                    Some(Container::ZSet(z)) => {
                        z.range(r, r + 10, false).map(|(m, _)| m.len()).sum()
                    }
                    _ => 0usize,
                })
            })
        })
    });
}

criterion_group!(benches, ring_lookup, memcache_decode, node_ops, zset_ops);
criterion_main!(benches);
