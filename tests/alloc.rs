//! The request paths make no heap allocation per request: decoding slices the read buffer and
//! replies are written into the (pre-sized) output buffer. A counting global allocator (per
//! thread) checks it for both protocols. A stored value's own block is outside this claim. With
//! metrics on, latency samples go into the exporter's lock-free buckets, which allocate a block
//! now and then: that cost is bounded per request, not zero, and is checked too.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use bytes::BytesMut;
use ringcache::config::Limits;
use ringcache::metrics::Metrics;
use ringcache::proto::memcache::MemcacheSession;
use ringcache::proto::memcache::parse::{Decoder, Request};
use ringcache::proto::resp::RespSession;
use ringcache::proto::{Flow, Session};
use ringcache::route::ring::{HashKind, Ring};
use ringcache::route::topology::Topology;
use ringcache::server::Shared;
use ringcache::store::{Clock, Node};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards to the system allocator; the counter is a const thread-local `Cell`
// (no lazy initialisation, no destructor), so counting cannot allocate or recurse.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Two nodes of 64 MiB, with or without metrics.
fn shared(metrics: bool) -> Arc<Shared> {
    let clock = Clock::real();
    let nodes = ["a", "b"]
        .iter()
        .map(|n| Arc::new(Node::new(n, 64 << 20, clock.clone())))
        .collect();
    let ring = Ring::build(&[("a", 1), ("b", 1)], HashKind::default(), 160, None);
    let mut shared = Shared::new(Topology::new(1, ring, nodes), Limits::default(), clock);
    shared.metrics = metrics.then(|| Arc::new(Metrics::new()));
    Arc::new(shared)
}

const MEMCACHE_READS: &[u8] =
    b"get k nokey k\r\ngets k\r\ngat 100 k\r\nmg k v c f t s k O1\r\nmg nokey v q\r\nmn\r\n";

#[test]
fn the_counter_counts() {
    let before = allocations();
    let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(64));
    assert_eq!(allocations() - before, 1);
    drop(v);
}

#[test]
fn memcache_reads_do_not_allocate() {
    let mut session = MemcacheSession::new(shared(false));
    let mut input = BytesMut::with_capacity(1 << 20);
    let mut out = BytesMut::with_capacity(1 << 20);
    input.extend_from_slice(b"set k 7 0 5\r\nhello\r\n");
    input.extend_from_slice(MEMCACHE_READS);
    assert_eq!(session.process(&mut input, &mut out), Flow::Continue);
    out.clear();
    for _ in 0..3 {
        for _ in 0..100 {
            input.extend_from_slice(MEMCACHE_READS);
        }
        let before = allocations();
        assert_eq!(session.process(&mut input, &mut out), Flow::Continue);
        let used = allocations() - before;
        assert!(input.is_empty());
        assert!(out.ends_with(b"MN\r\n"));
        out.clear();
        assert_eq!(used, 0, "allocations for 100 batches of reads");
    }
}

#[test]
fn decoding_stores_does_not_allocate() {
    let mut input = BytesMut::with_capacity(1 << 20);
    let limits = Limits::default();
    let mut decoder = Decoder::new();
    for _ in 0..200 {
        input.extend_from_slice(b"set key 1 0 5\r\nhello\r\nms bTI= 2 b T10 F3 c k\r\nhi\r\n");
        input.extend_from_slice(b"cas key 0 0 1 5 noreply\r\nx\r\nincr key 1\r\n");
    }
    // The first split turns the buffer into a shared one (one allocation per buffer).
    let first = decoder.decode(&mut input, &limits);
    assert!(matches!(first, Ok(Some(Request::Store { .. }))));
    drop(first);
    let before = allocations();
    let mut decoded = 0;
    while let Ok(Some(request)) = decoder.decode(&mut input, &limits) {
        decoded += 1;
        drop(request);
    }
    assert_eq!(decoded, 799);
    assert_eq!(allocations() - before, 0);
}

const RESP_READS: &[u8] = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$3\r\nGET\r\n$5\r\nnokey\r\n\
*4\r\n$4\r\nMGET\r\n$1\r\nk\r\n$5\r\nnokey\r\n$1\r\nk\r\n*2\r\n$6\r\nEXISTS\r\n$1\r\nk\r\n\
*2\r\n$3\r\nTTL\r\n$1\r\nk\r\n*2\r\n$6\r\nSTRLEN\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n";

#[test]
fn resp_reads_do_not_allocate() {
    let mut session = RespSession::new(shared(false), None, None);
    let mut input = BytesMut::with_capacity(1 << 20);
    let mut out = BytesMut::with_capacity(1 << 20);
    input.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n");
    input.extend_from_slice(RESP_READS);
    assert_eq!(session.process(&mut input, &mut out), Flow::Continue);
    out.clear();
    for _ in 0..3 {
        for _ in 0..100 {
            input.extend_from_slice(RESP_READS);
        }
        let before = allocations();
        assert_eq!(session.process(&mut input, &mut out), Flow::Continue);
        let used = allocations() - before;
        assert!(input.is_empty());
        assert!(out.ends_with(b"+PONG\r\n"));
        out.clear();
        assert_eq!(used, 0, "allocations for 100 batches of reads");
    }
}

#[test]
fn resp_sets_allocate_only_the_stored_item() {
    let mut session = RespSession::new(shared(false), None, None);
    let mut input = BytesMut::with_capacity(1 << 20);
    let mut out = BytesMut::with_capacity(1 << 20);
    let set = b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n$2\r\nEX\r\n$3\r\n100\r\n\
*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n";
    input.extend_from_slice(set);
    assert_eq!(session.process(&mut input, &mut out), Flow::Continue);
    out.clear();
    for _ in 0..100 {
        input.extend_from_slice(set);
    }
    let before = allocations();
    assert_eq!(session.process(&mut input, &mut out), Flow::Continue);
    let used = allocations() - before;
    assert!(out.ends_with(b":101\r\n"), "{out:?}");
    // One allocation per stored item (key ‖ value in one block), nothing else.
    assert_eq!(used, 200);
}

#[test]
fn metrics_cost_a_bounded_number_of_allocations() {
    let mut session = MemcacheSession::new(shared(true));
    let mut input = BytesMut::with_capacity(1 << 20);
    let mut out = BytesMut::with_capacity(1 << 20);
    input.extend_from_slice(b"set k 7 0 5\r\nhello\r\n");
    assert_eq!(session.process(&mut input, &mut out), Flow::Continue);
    out.clear();
    for _ in 0..1000 {
        input.extend_from_slice(MEMCACHE_READS);
    }
    let before = allocations();
    assert_eq!(session.process(&mut input, &mut out), Flow::Continue);
    let used = allocations() - before;
    // 6000 requests; the exporter's sample buckets grow in blocks.
    assert!(
        used <= 6000 / 16,
        "{used} allocations for 6000 requests with metrics on"
    );
}
