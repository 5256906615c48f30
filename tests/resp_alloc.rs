//! The GET/SET/MGET/INCR paths of RESP make no heap allocation of their own per request: the
//! decoder keeps argument ranges into the read buffer in a reused `Vec`, and replies are written
//! straight into the output buffer. A counting global allocator (per thread) checks it: reads
//! allocate nothing, and a write allocates exactly the stored item (key and value in one block).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use bytes::BytesMut;
use ringcache::config::Limits;
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

fn session() -> RespSession {
    let clock = Clock::real();
    let nodes = ["a", "b"]
        .iter()
        .map(|n| Arc::new(Node::new(n, 64 << 20, clock.clone())))
        .collect();
    let ring = Ring::build(&[("a", 1), ("b", 1)], HashKind::default(), 160, None);
    let topology = Topology::new(1, ring, nodes);
    RespSession::new(
        Arc::new(Shared::new(topology, Limits::default(), clock)),
        None,
        None,
    )
}

const READS: &[u8] = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$3\r\nGET\r\n$5\r\nnokey\r\n\
*4\r\n$4\r\nMGET\r\n$1\r\nk\r\n$5\r\nnokey\r\n$1\r\nk\r\n*2\r\n$6\r\nEXISTS\r\n$1\r\nk\r\n\
*2\r\n$3\r\nTTL\r\n$1\r\nk\r\n*2\r\n$6\r\nSTRLEN\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n";

#[test]
fn reads_do_not_allocate() {
    let mut session = session();
    let mut input = BytesMut::with_capacity(1 << 20);
    let mut out = BytesMut::with_capacity(1 << 20);
    input.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n");
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
        assert!(out.ends_with(b"+PONG\r\n"));
        out.clear();
        assert_eq!(used, 0, "allocations for 100 batches of reads");
    }
}

#[test]
fn sets_allocate_only_the_stored_item() {
    let mut session = session();
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
