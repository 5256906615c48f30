//! Criterion micro-benchmarks of the hot path's parts: ring lookup, memcached decode, and node
//! get/set. Run with `cargo bench --bench core`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, criterion_group, criterion_main};
use ringcache::config::Limits;
use ringcache::proto::memcache::parse::Decoder;
use ringcache::route::ring::{HashKind, Ring};
use ringcache::store::{Clock, NEVER, Node};

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

criterion_group!(benches, ring_lookup, memcache_decode, node_ops);
criterion_main!(benches);
