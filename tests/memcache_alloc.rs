//! The get/set paths of the memcached protocol make no heap allocation per request: decoding
//! slices the read buffer, replies are written into the (pre-sized) output buffer.
//! A counting global allocator (per thread) checks it; the store's own allocations for a
//! stored value are outside this claim, so sets are measured at the decoder.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use bytes::BytesMut;
use ringcache::config::Limits;
use ringcache::proto::memcache::MemcacheSession;
use ringcache::proto::memcache::parse::{Decoder, Request};
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

fn session() -> MemcacheSession {
    let clock = Clock::real();
    let nodes = ["a", "b"]
        .iter()
        .map(|n| Arc::new(Node::new(n, 64 << 20, clock.clone())))
        .collect();
    let ring = Ring::build(&[("a", 1), ("b", 1)], HashKind::default(), 160, None);
    let topology = Topology::new(1, ring, nodes);
    MemcacheSession::new(Arc::new(Shared::new(topology, Limits::default(), clock)))
}

const READS: &[u8] =
    b"get k nokey k\r\ngets k\r\ngat 100 k\r\nmg k v c f t s k O1\r\nmg nokey v q\r\nmn\r\n";

#[test]
fn the_counter_counts() {
    let before = allocations();
    let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(64));
    assert_eq!(allocations() - before, 1);
    drop(v);
}

#[test]
fn reads_do_not_allocate() {
    let mut session = session();
    let mut input = BytesMut::with_capacity(1 << 20);
    let mut out = BytesMut::with_capacity(1 << 20);
    input.extend_from_slice(b"set k 7 0 5\r\nhello\r\n");
    input.extend_from_slice(READS);
    assert_eq!(session.process(&mut input, &mut out), Flow::Continue);
    out.clear();
    for _ in 0..3 {
        for _ in 0..100 {
            input.extend_from_slice(READS);
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
