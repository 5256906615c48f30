//! Commands whose arguments can name the same big value many times (BITOP, ZINTERCARD) hold
//! at most one copy of it while they run: a global allocator that tracks the live bytes of
//! each thread measures the peak of one request handled in-process.

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

struct Tracking;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn add(n: i64) {
    let _ = LIVE.try_with(|l| {
        let now = l.get() + n;
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

/// Starts a measurement: the peak is reset to what is live now.
fn reset_peak() -> i64 {
    let live = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(live));
    live
}

fn peak() -> i64 {
    PEAK.with(Cell::get)
}

// SAFETY: forwards to the system allocator; the counters are const thread-local `Cell`s (no
// lazy initialisation, no destructor), so tracking cannot allocate or recurse.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as i64));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// One node of 256 MiB: every key is local, so the whole request runs on this thread.
fn session() -> RespSession {
    let clock = Clock::real();
    let nodes = vec![Arc::new(Node::new("a", 256 << 20, clock.clone()))];
    let ring = Ring::build(&[("a", 1)], HashKind::default(), 160, None);
    let limits = Limits::default();
    let shared = Shared::new(Topology::new(1, ring, nodes), limits, clock);
    RespSession::new(Arc::new(shared), None, None)
}

/// Runs one request (its arguments) and returns the reply bytes.
fn run(s: &mut RespSession, args: &[&[u8]]) -> Vec<u8> {
    let mut input = BytesMut::new();
    input.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        input.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        input.extend_from_slice(a);
        input.extend_from_slice(b"\r\n");
    }
    let mut out = BytesMut::with_capacity(1 << 16);
    assert_eq!(s.process(&mut input, &mut out), Flow::Continue);
    assert!(input.is_empty(), "the request was handled");
    out.to_vec()
}

const TIMES: usize = 500;

#[test]
fn bitop_over_one_big_key_named_many_times_holds_one_copy() {
    let mut s = session();
    let big = vec![0x5au8; 256 << 10];
    assert_eq!(run(&mut s, &[b"SET", b"big", &big]), b"+OK\r\n");
    let mut args: Vec<&[u8]> = vec![b"BITOP", b"OR", b"dest"];
    args.extend(std::iter::repeat_n(&b"big"[..], TIMES));
    let before = reset_peak();
    let reply = run(&mut s, &args);
    let grew = peak() - before;
    assert_eq!(reply, format!(":{}\r\n", big.len()).into_bytes());
    // Copying every source would take TIMES * 256 KiB = 125 MiB.
    assert!(
        grew < 8 << 20,
        "BITOP peaked at {grew} bytes over {TIMES} sources"
    );
    assert_eq!(run(&mut s, &[b"STRLEN", b"dest"]), b":262144\r\n");
}

#[test]
fn zintercard_over_one_big_key_named_many_times_holds_one_copy() {
    let mut s = session();
    let members: Vec<Vec<u8>> = (0..5_000)
        .map(|i| format!("member:{i}").into_bytes())
        .collect();
    let mut zadd: Vec<&[u8]> = vec![b"ZADD", b"z"];
    for m in &members {
        zadd.push(b"1");
        zadd.push(m);
    }
    assert_eq!(run(&mut s, &zadd), b":5000\r\n");
    let n = TIMES.to_string();
    let mut args: Vec<&[u8]> = vec![b"ZINTERCARD", n.as_bytes()];
    args.extend(std::iter::repeat_n(&b"z"[..], TIMES));
    let before = reset_peak();
    let reply = run(&mut s, &args);
    let grew = peak() - before;
    assert_eq!(reply, b":5000\r\n");
    // Copying every input would take TIMES * ~200 KiB = 100 MiB.
    assert!(
        grew < 8 << 20,
        "ZINTERCARD peaked at {grew} bytes over {TIMES} keys"
    );
}
