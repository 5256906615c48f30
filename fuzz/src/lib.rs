//! Fuzz target bodies, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, run with
//! `cargo fuzz run --sanitizer none <target>` on stable) and by the randomized test
//! `tests/fuzz_targets.rs`, which runs them in CI on every `cargo test`.
//!
//! - [`memcache_session`] / [`resp_session`]: arbitrary bytes, fed in chunks whose size the
//!   input picks, through a whole protocol session (decoder, handler, nodes). Nothing may
//!   panic, the unconsumed input stays bounded, and every node passes `validate()` after.
//! - [`rdb_reader`]: arbitrary bytes as an RDB file (behind a valid magic when the first byte
//!   is even). Nothing may panic; a file that reads to its end writes back and reads again to
//!   the same records.
//! - [`node_ops`]: a sequence of store operations (put, read, remove, append/prepend, clock
//!   steps, expiry sweeps, budget changes, walks) on one small node; `validate()` after each.

use std::sync::Arc;

use bytes::BytesMut;
use ringcache::config::Limits;
use ringcache::proto::memcache::MemcacheSession;
use ringcache::proto::resp::RespSession;
use ringcache::proto::{Flow, Session};
use ringcache::route::ring::{HashKind, Ring};
use ringcache::route::topology::Topology;
use ringcache::server::Shared;
use ringcache::store::{Clock, Node};

const START_MS: u64 = 1_700_000_000_000;
const MAX_REQUEST: u64 = 64 << 10;

/// Small nodes and limits, so that eviction and the size limits are reached quickly.
fn shared() -> Arc<Shared> {
    let clock = Clock::mock(START_MS);
    let names = ["a", "b"];
    let nodes = names
        .iter()
        .map(|n| Arc::new(Node::new(n, 256 << 10, clock.clone())))
        .collect();
    let weights: Vec<(&str, u32)> = names.iter().map(|n| (*n, 1)).collect();
    let ring = Ring::build(&weights, HashKind::default(), 160, None);
    let limits = Limits {
        max_value_size: 16 << 10,
        max_request_size: MAX_REQUEST,
        max_output_buffer: 1 << 20,
        ..Limits::default()
    };
    Arc::new(Shared::new(Topology::new(1, ring, nodes), limits, clock))
}

fn validate(shared: &Shared) {
    for node in &shared.topology.load().nodes {
        if let Err(e) = node.validate() {
            panic!("node {} invalid: {e}", node.name());
        }
    }
}

/// Feeds `data[1..]` to `session` in chunks of `data[0]` bytes (at least 1), as the connection
/// driver does: process until it stops pausing, drop the replies, read the next chunk.
fn drive(mut session: impl Session, shared: &Shared, data: &[u8]) {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).max(1);
    let mut input = BytesMut::new();
    let mut out = BytesMut::new();
    'chunks: for chunk in data.chunks(split) {
        input.extend_from_slice(chunk);
        loop {
            let flow = session.process(&mut input, &mut out);
            out.clear();
            match flow {
                Flow::Pause => continue,
                Flow::Close => break 'chunks,
                _ => break,
            }
        }
        // Incomplete input is bounded by the request limits (plus one chunk and RESP's
        // 64 KiB inline allowance), whatever was sent.
        let bound = 2 * MAX_REQUEST as usize + (64 << 10) + split;
        assert!(input.len() <= bound, "{} bytes of input kept", input.len());
    }
    validate(shared);
}

/// Arbitrary bytes through a memcached session (text and meta protocol).
pub fn memcache_session(data: &[u8]) {
    let shared = shared();
    drive(MemcacheSession::new(Arc::clone(&shared)), &shared, data);
}

/// Arbitrary bytes through a RESP session (multibulk and inline).
pub fn resp_session(data: &[u8]) {
    let shared = shared();
    drive(
        RespSession::new(Arc::clone(&shared), None, None),
        &shared,
        data,
    );
}

/// Store operations on one node, three bytes each: operation, key, argument.
pub fn node_ops(data: &[u8]) {
    let clock = Clock::mock(START_MS);
    let node = Node::new("n", 32 << 10, clock.clone());
    for op in data.chunks_exact(3) {
        let key = [b'k', op[1] % 32];
        let len = usize::from(op[2]) * 16;
        let expire_at = if op[1] & 0x80 == 0 {
            ringcache::store::NEVER
        } else {
            clock.now_ms() + u64::from(op[2]) * 10
        };
        match op[0] % 9 {
            0 => node.entry(&key, |e| {
                let _ = e.put(&[&vec![b'v'; len]], u32::from(op[2]), expire_at, None);
            }),
            1 => node.entry(&key, |e| {
                if e.item().is_some() {
                    e.mark_read();
                } else {
                    e.record_miss();
                }
            }),
            2 => node.entry(&key, |e| {
                e.remove();
            }),
            3 => node.entry(&key, |e| {
                let _ = e.concat(&vec![b'a'; len], op[2] & 1 == 0);
            }),
            4 => clock.advance(u64::from(op[2]) * 10),
            5 => {
                node.sweep_expired(usize::from(op[2]));
            }
            6 => node.set_max_memory(4096 + u64::from(op[2]) * 256),
            7 => {
                let mut seen = 0;
                node.walk(0, len, |_, _| seen += 1);
                assert!(seen <= len.max(1), "walk returned {seen} items for {len}");
            }
            _ => node.entry(&key, |e| {
                if let Some(moved) = e.take() {
                    let _ = e.put_moved(moved);
                }
            }),
        }
        if let Err(e) = node.validate() {
            panic!("node invalid after op {op:?}: {e}");
        }
    }
}

/// Arbitrary bytes through the RDB reader (with a valid magic when the first byte is even).
pub fn rdb_reader(data: &[u8]) {
    use ringcache::persist::rdb::{Reader, Writer};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file: Vec<u8> = if mode % 2 == 0 {
        [&b"REDIS0010"[..], rest].concat()
    } else {
        rest.to_vec()
    };
    let Ok(mut reader) = Reader::new(&file[..]) else {
        return;
    };
    reader.max_len = 1 << 20;
    let mut records = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(r)) => records.push(r),
            Ok(None) => break,
            Err(_) => return,
        }
    }
    // Function libraries travel as they were read (their code is not checked here).
    let functions = std::mem::take(&mut reader.functions);
    let mut w = Writer::new(Vec::new(), &[]).expect("write to memory");
    for code in &functions {
        w.function(code).expect("write to memory");
    }
    w.select_db(0, records.len() as u64, 0)
        .expect("write to memory");
    for r in &records {
        w.record(r).expect("write to memory");
    }
    let again = w.finish().expect("write to memory");
    let mut reader = Reader::new(&again[..]).expect("own header");
    for r in &records {
        let back = reader.next_record().expect("own file").expect("a record");
        assert_eq!(back.key, r.key);
        assert_eq!(back.value, r.value);
        assert_eq!((back.expire_ms, back.flags), (r.expire_ms, r.flags));
    }
    assert!(reader.next_record().expect("own file").is_none());
    assert_eq!(reader.functions, functions);
}
