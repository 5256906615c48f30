//! The memcached protocol: text commands (get, gets, gat, gats, set, add, replace, append,
//! prepend, cas, delete, incr, decr, touch, flush_all, version, verbosity, stats, quit) and the
//! meta commands (mg, ms, md, ma, mn, me), as memcached 1.6's protocol.txt describes them, with
//! memcached 1.6.18's exact reply bytes and error strings.
//!
//! ```text
//! input bytes ─ parse::Decoder::decode ─▶ Request ─ handler::handle ─▶ Topology::entry ─▶ Node
//!                                                          └─ encode ─▶ out bytes
//! ```
//!
//! Owns: the per-connection [`MemcacheSession`] (decoder state) and the three stages:
//! `parse` (pure decoding, zero copy: framing and the request types in `parse`, the classic
//! commands in `parse::text`, the meta commands in `parse::meta`, the tokenizer in
//! `parse::token`), `handler` (semantics, stats) and `encode` (all wire text); `auth` answers
//! the login before the first request.
//!
//! Must not touch: sockets, the read/write loop, connection counting (`net::conn`), the store's
//! internals, the `ArcSwap`s (only `load()`).
//!
//! Invariants:
//! - `process` handles every complete request in `input`, in order, appending all replies to
//!   `out` (the driver writes once per batch: pipelining). Incomplete bytes stay in `input`.
//! - Nothing a client sends panics, blocks, or makes a buffer grow past the limits: lines are
//!   bounded (2048 bytes without newline, `max_request_size` for multi-gets), data blocks by
//!   `max_value_size`/`max_request_size` (larger ones are swallowed, never buffered).
//! - `quit` and lost framing end the session with [`Flow::Close`]; bytes after them are ignored.
//!
//! Decisions (details in `handler`): a non-string item (Redis hash/list/set/zset under the same
//! key) is invisible to memcached reads and conditional writes (a miss / NOT_FOUND /
//! NOT_STORED), while unconditional `set` and `delete` replace or remove it like Redis SET/DEL.
//! Where memcached 1.6.18 and protocol.txt disagree, 1.6.18 wins (meta `q` hides `EN` for mg
//! and `HD` for ms/md/ma only); newer flags `E` (explicit CAS) and md `x` are accepted.

pub mod auth;
pub mod encode;
mod forward;
pub mod handler;
pub mod parse;

use std::sync::Arc;

use bytes::BytesMut;
use parse::{GetCmd, Request, StoreCmd};

use crate::auth::Access;
use crate::metrics::CommandRecorder;
use crate::proto::forward::Forwarded;
use crate::proto::{Flow, OUT_HIGH_WATER, Session, output_over_limit};
use crate::server::gate::Pass;
use crate::server::{LimitsCache, Shared};

/// One memcached connection's protocol state.
pub struct MemcacheSession {
    shared: Arc<Shared>,
    limits: LimitsCache,
    decoder: parse::Decoder,
    metrics: Option<CommandRecorder>,
    access: Access,
    /// Inside the server's gate while a batch is handled (see `server::gate`).
    pass: Pass,
    /// Kept out of the gate: the batch waits (asynchronously) for it to open.
    gate_wait: bool,
    /// Replies of this batch awaited from remote members.
    forwarded: Forwarded,
    /// Picks this session's connection to each remote member.
    id: u64,
}

impl MemcacheSession {
    /// A session for a new connection.
    pub fn new(shared: Arc<Shared>) -> Self {
        let metrics = shared
            .metrics
            .as_ref()
            .map(|m| CommandRecorder::new(m.commands("memcache", COMMANDS)));
        let access = shared.auth.load().initial();
        MemcacheSession {
            pass: shared.gate.pass(),
            gate_wait: false,
            forwarded: Forwarded::default(),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            limits: LimitsCache::new(Arc::clone(&shared)),
            shared,
            decoder: parse::Decoder::new(),
            metrics,
            access,
        }
    }
}

/// Session ids, for picking connections to remote members.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Command labels for metrics, indexed by [`command_index`]. `invalid` is a malformed request,
/// `oversized` a storage request over the size limits.
pub const COMMANDS: &[&str] = &[
    "get",
    "gets",
    "gat",
    "gats",
    "set",
    "add",
    "replace",
    "append",
    "prepend",
    "cas",
    "delete",
    "incr",
    "decr",
    "touch",
    "flush_all",
    "version",
    "verbosity",
    "stats",
    "quit",
    "mn",
    "mg",
    "ms",
    "md",
    "ma",
    "me",
    "oversized",
    "invalid",
];

/// The metrics label index of a request (into [`COMMANDS`]).
fn command_index(request: &Request) -> usize {
    match request {
        Request::Get { cmd, .. } => match cmd {
            GetCmd::Get => 0,
            GetCmd::Gets => 1,
            GetCmd::Gat => 2,
            GetCmd::Gats => 3,
        },
        Request::Store { cmd, .. } => match cmd {
            StoreCmd::Set => 4,
            StoreCmd::Add => 5,
            StoreCmd::Replace => 6,
            StoreCmd::Append => 7,
            StoreCmd::Prepend => 8,
            StoreCmd::Cas => 9,
        },
        Request::Delete { .. } => 10,
        Request::Arith { incr: true, .. } => 11,
        Request::Arith { incr: false, .. } => 12,
        Request::Touch { .. } => 13,
        Request::FlushAll { .. } => 14,
        Request::Version => 15,
        Request::Verbosity { .. } => 16,
        Request::Stats(_) => 17,
        Request::Quit => 18,
        Request::MetaNoop => 19,
        Request::MetaGet { .. } => 20,
        Request::MetaSet { .. } => 21,
        Request::MetaDelete { .. } => 22,
        Request::MetaArith { .. } => 23,
        Request::MetaDebug { .. } => 24,
        Request::TooLarge { .. } => 25,
        Request::Reject { .. } => 26,
    }
}

impl Session for MemcacheSession {
    fn waiting(&self) -> Option<(Arc<tokio::sync::Notify>, Option<std::time::Instant>)> {
        // memcached has no BUSY reply: wait for the gate however long a script runs.
        self.gate_wait.then(|| self.pass.wake_hint(|| 0))
    }

    fn process(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Flow {
        // Kept out (EXEC or a script runs): wait without holding the thread.
        self.gate_wait = !self.pass.try_enter();
        if self.gate_wait {
            return Flow::Block;
        }
        let flow = self.run(input, out);
        self.pass.leave();
        if let Some(m) = &mut self.metrics {
            m.flush();
        }
        if self.forwarded.pending() {
            self.forwarded.flow = Some(flow);
            return Flow::Remote;
        }
        flow
    }

    fn forwarded(&mut self) -> Option<&mut Forwarded> {
        Some(&mut self.forwarded)
    }
}

impl MemcacheSession {
    /// Handles every complete request of the batch (see [`Session::process`]).
    fn run(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Flow {
        if !self.access.authenticated
            && let Some(flow) = auth::login(input, out, &self.shared, &mut self.access)
        {
            return flow;
        }
        let limits = self.limits.load();
        loop {
            if (out.len() >= OUT_HIGH_WATER || self.forwarded.full()) && !input.is_empty() {
                return Flow::Pause;
            }
            match self.decoder.decode(input, limits) {
                Ok(Some(request))
                    if self.access != Access::ALL
                        && auth::category(&request).is_some_and(|c| !self.access.allows(c)) =>
                {
                    encode::auth(out, encode::AuthReply::Denied);
                }
                Ok(Some(request)) => {
                    let command = command_index(&request);
                    let started = self.metrics.as_mut().and_then(CommandRecorder::start);
                    let mark = out.len();
                    let done = if self.shared.has_remote() {
                        let fwd = &mut self.forwarded;
                        match forward::route(&request, &self.shared, limits, self.id, fwd, out) {
                            Some(done) => done,
                            None => handler::handle(request, &self.shared, limits, out),
                        }
                    } else {
                        handler::handle(request, &self.shared, limits, out)
                    };
                    if let Some(m) = &mut self.metrics {
                        m.record(command, done.error, started);
                    }
                    if output_over_limit(out, mark, limits, &self.shared) {
                        return Flow::Close;
                    }
                    if done.flow == Flow::Close {
                        return Flow::Close;
                    }
                }
                Ok(None) => return Flow::Continue,
                Err(error) => {
                    encode::fatal(out, error);
                    return Flow::Close;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::config::Limits;
    use crate::route::ring::{HashKind, Ring};
    use crate::route::topology::Topology;
    use crate::store::{Clock, Container, NEVER, Node};

    /// 2023-11-14T22:13:20Z, a whole second so `started_unix` is the clock's start exactly.
    const START_MS: u64 = 1_700_000_000_000;

    struct Harness {
        shared: Arc<Shared>,
        clock: Clock,
        session: MemcacheSession,
    }

    fn harness_with(node_memory: u64, limits: Limits) -> Harness {
        let clock = Clock::mock(START_MS);
        let names = ["a", "b", "c"];
        let nodes = names
            .iter()
            .map(|n| Arc::new(Node::new(n, node_memory, clock.clone())))
            .collect();
        let weights: Vec<(&str, u32)> = names.iter().map(|n| (*n, 1)).collect();
        let ring = Ring::build(&weights, HashKind::default(), 160, None);
        let topology = Topology::new(1, ring, nodes);
        let shared = Arc::new(Shared::new(topology, limits, clock.clone()));
        let session = MemcacheSession::new(Arc::clone(&shared));
        Harness {
            shared,
            clock,
            session,
        }
    }

    fn harness() -> Harness {
        harness_with(64 << 20, Limits::default())
    }

    impl Harness {
        fn flow(&mut self, input: &[u8]) -> (String, Flow) {
            let mut input = BytesMut::from(input);
            let mut out = BytesMut::new();
            let flow = self.session.process(&mut input, &mut out);
            (String::from_utf8_lossy(&out).into_owned(), flow)
        }

        fn run(&mut self, input: &str) -> String {
            let (out, flow) = self.flow(input.as_bytes());
            assert_eq!(flow, Flow::Continue);
            out
        }

        fn container(&self, key: &str) {
            let stored = self.shared.topology.load().entry(key.as_bytes(), |e| {
                e.put_container(Container::Hash(Default::default()), NEVER)
            });
            assert!(stored.is_ok());
        }
    }

    #[test]
    fn expiry_semantics() {
        let mut h = harness();
        let absolute = START_MS / 1000 + 100;
        let script = format!(
            "set rel 0 10 1\r\nx\r\nset abs 0 {absolute} 1\r\ny\r\nset past 0 2592001 1\r\nz\r\n\
             set neg 0 -1 1\r\nz\r\nget rel abs past neg\r\n"
        );
        assert_eq!(
            h.run(&script),
            "STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\nVALUE rel 0 1\r\nx\r\nVALUE abs 0 1\r\ny\r\nEND\r\n"
        );
        assert_eq!(h.run("mg rel t\r\nmg abs t\r\n"), "HD t10\r\nHD t100\r\n");
        h.clock.advance(9_999);
        assert_eq!(h.run("mg rel t v\r\n"), "VA 1 t1\r\nx\r\n");
        h.clock.advance(1);
        assert_eq!(h.run("get rel\r\n"), "END\r\n");
        // gat renews, touch renews, T renews.
        assert_eq!(h.run("gat 5 abs\r\n"), "VALUE abs 0 1\r\ny\r\nEND\r\n");
        assert_eq!(h.run("mg abs t\r\n"), "HD t5\r\n");
        assert_eq!(
            h.run("touch abs 0\r\nmg abs t\r\n"),
            "TOUCHED\r\nHD t-1\r\n"
        );
        assert_eq!(
            h.run("mg abs T20 t\r\nmg abs t\r\n"),
            "HD t20\r\nHD t20\r\n"
        );
        h.clock.advance(20_000);
        assert_eq!(h.run("get abs\r\n"), "END\r\n");
    }

    #[test]
    fn flush_all_now_and_later() {
        let mut h = harness();
        assert_eq!(
            h.run("set a 0 0 1\r\nx\r\nflush_all\r\nget a\r\n"),
            "STORED\r\nOK\r\nEND\r\n"
        );
        assert_eq!(
            h.run("set a 0 0 1\r\nx\r\nflush_all 10 noreply\r\nget a\r\n"),
            "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"
        );
        h.clock.advance(10_000);
        assert_eq!(h.run("get a\r\n"), "END\r\n");
        assert_eq!(h.shared.stats.cmd_flush.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn hit_and_last_access_report_the_state_before_the_request() {
        let mut h = harness();
        assert_eq!(h.run("set k 0 0 1\r\nx\r\n"), "STORED\r\n");
        h.clock.advance(5_000);
        assert_eq!(
            h.run("mg k h l\r\nmg k h l\r\n"),
            "HD h0 l5\r\nHD h1 l0\r\n"
        );
        h.clock.advance(3_000);
        // u: no bump, so the access time stays and `l` keeps growing.
        assert_eq!(h.run("mg k l u\r\nmg k l u\r\n"), "HD l3\r\nHD l3\r\n");
        assert_eq!(
            h.run("me k\r\n"),
            "ME k exp=-1 la=3 cas=1 fetch=yes cls=1 size=50\r\n"
        );
        assert_eq!(h.run("me bTI= b\r\nme nokey\r\n"), "EN\r\nEN\r\n");
    }

    #[test]
    fn non_string_items_are_invisible_and_never_clobbered_conditionally() {
        let mut h = harness();
        h.container("h");
        let expect = [
            ("get h\r\n", "END\r\n"),
            ("gets h\r\n", "END\r\n"),
            ("gat 10 h\r\n", "END\r\n"),
            ("mg h v\r\n", "EN\r\n"),
            ("mg h v N30\r\n", "EN\r\n"),
            ("touch h 10\r\n", "NOT_FOUND\r\n"),
            ("incr h 1\r\n", "NOT_FOUND\r\n"),
            ("ma h\r\n", "NF\r\n"),
            ("ma h N0\r\n", "NS\r\n"),
            ("add h 0 0 1\r\nx\r\n", "NOT_STORED\r\n"),
            ("replace h 0 0 1\r\nx\r\n", "NOT_STORED\r\n"),
            ("append h 0 0 1\r\nx\r\n", "NOT_STORED\r\n"),
            ("cas h 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n"),
            ("ms h 1 ME\r\nx\r\n", "NS\r\n"),
            ("ms h 1 MR\r\nx\r\n", "NS\r\n"),
            ("ms h 1 C1\r\nx\r\n", "NF\r\n"),
            ("md h I\r\n", "NF\r\n"),
            ("me h\r\n", "EN\r\n"),
        ];
        for (request, reply) in expect {
            assert_eq!(h.run(request), reply, "{request:?}");
        }
        // Unconditional writes replace or remove any kind, like Redis SET and DEL.
        assert_eq!(
            h.run("set h 0 0 1\r\nx\r\nget h\r\n"),
            "STORED\r\nVALUE h 0 1\r\nx\r\nEND\r\n"
        );
        h.container("d");
        assert_eq!(h.run("delete d\r\nmd d\r\n"), "DELETED\r\nNF\r\n");
    }

    #[test]
    fn split_anywhere_gives_the_same_replies() {
        let script: &[u8] =
            b"set a 1 0 3\r\nabc\r\nget a b\r\nincr n 1\r\nset n 0 0 1\r\n9\r\nincr n 1\r\n\
            ms m 2 T0 F3 k c\r\nhi\r\nmg m v f k\r\nmd m q\r\nmg m q v\r\nmn\r\ngets a\r\n";
        let mut whole = harness();
        let (expected, _) = whole.flow(script);
        for cut in 0..=script.len() {
            let mut h = harness();
            let mut input = BytesMut::from(&script[..cut]);
            let mut out = BytesMut::new();
            assert_eq!(h.session.process(&mut input, &mut out), Flow::Continue);
            input.extend_from_slice(&script[cut..]);
            assert_eq!(h.session.process(&mut input, &mut out), Flow::Continue);
            assert!(input.is_empty());
            assert_eq!(String::from_utf8_lossy(&out), expected, "cut at {cut}");
        }
    }

    #[test]
    fn quit_and_framing_errors_close() {
        let mut h = harness();
        let mut input = BytesMut::from(&b"get a\r\nquit\r\nget b\r\n"[..]);
        let mut out = BytesMut::new();
        assert_eq!(h.session.process(&mut input, &mut out), Flow::Close);
        assert_eq!(&out[..], b"END\r\n");
        let (out, flow) = harness().flow(&[b'x'; 3000]);
        assert_eq!((out.as_str(), flow), ("", Flow::Close));
        let mut small = harness_with(
            64 << 20,
            Limits {
                max_request_size: 4096,
                ..Limits::default()
            },
        );
        let mut line = b"get ".to_vec();
        line.resize(5000, b'k');
        let (out, flow) = small.flow(&line);
        assert_eq!(
            (out.as_str(), flow),
            ("CLIENT_ERROR line too long\r\n", Flow::Close)
        );
    }

    #[test]
    fn out_of_memory_and_too_large() {
        // Room for a tiny item plus the node's slab and index, not for a 300-byte value.
        let mut h = harness_with(
            500,
            Limits {
                max_value_size: 1000,
                ..Limits::default()
            },
        );
        let big = "v".repeat(300);
        let script = format!("set k 0 0 1\r\nx\r\nset k 0 0 300\r\n{big}\r\nget k\r\n");
        assert_eq!(
            h.run(&script),
            "STORED\r\nSERVER_ERROR out of memory storing object\r\nEND\r\n"
        );
        let script = format!(
            "set k 0 0 1\r\nx\r\nadd k2 0 0 300\r\n{big}\r\nms k 300 q\r\n{big}\r\nget k\r\n"
        );
        assert_eq!(
            h.run(&script),
            "STORED\r\nSERVER_ERROR out of memory storing object\r\nSERVER_ERROR out of memory storing object\r\nEND\r\n"
        );
        let huge = "v".repeat(1001);
        let script = format!("set k 0 0 1\r\nx\r\nset k 0 0 1001\r\n{huge}\r\nget k\r\n");
        assert_eq!(
            h.run(&script),
            "STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n"
        );
    }

    /// Random mutations and random chunking of a command corpus: no panic, every call returns,
    /// and buffered input stays bounded.
    #[test]
    fn fuzz_never_panics_or_hangs() {
        const CORPUS: &[&[u8]] = &[
            b"set k 0 0 3\r\nabc\r\n",
            b"get k k2 k\r\n",
            b"gats 10 k\r\n",
            b"cas k 1 2 3 4 noreply\r\nxyz\r\n",
            b"incr k 18446744073709551615\r\n",
            b"delete k 0 noreply\r\n",
            b"ms bTI= 2 b T10 F3 C1 E2 I MA q O1 k c\r\nhi\r\n",
            b"mg bTI= b v k O12 s t c f h l N30 R5 T-1 q u E5\r\n",
            b"md k q I T30 C5 x k O1\r\n",
            b"ma k N0 J5 D2 MD v t c q\r\n",
            b"me k b\r\n",
            b"flush_all 0 noreply\r\n",
            b"stats\r\n",
            b"mn\r\n",
            b"touch k 10\r\n",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let limits = Limits {
            max_value_size: 64,
            max_request_size: 4096,
            ..Limits::default()
        };
        for _ in 0..1000 {
            let mut h = harness_with(4096, limits.clone());
            let mut stream = Vec::new();
            for _ in 0..(next() % 30) {
                let mut piece = CORPUS[(next() % CORPUS.len() as u64) as usize].to_vec();
                for _ in 0..(next() % 4) {
                    let at = (next() % (piece.len() as u64 + 1)) as usize;
                    match next() % 4 {
                        0 if at < piece.len() => piece[at] = next() as u8,
                        1 => {
                            piece.insert(at, b" 0\r\n-9999999999999999999b"[(next() % 25) as usize])
                        }
                        2 if at < piece.len() => {
                            piece.remove(at);
                        }
                        _ => piece.truncate(at),
                    }
                }
                stream.extend_from_slice(&piece);
            }
            let mut input = BytesMut::new();
            let mut out = BytesMut::new();
            let mut rest = &stream[..];
            while !rest.is_empty() {
                let take = ((next() % 64) as usize + 1).min(rest.len());
                input.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if h.session.process(&mut input, &mut out) == Flow::Close {
                    break;
                }
                assert!(input.len() <= 4096 + 64, "buffered {} bytes", input.len());
            }
        }
    }

    #[test]
    fn get_reply_is_bounded() {
        let limits = Limits {
            max_request_size: 1000,
            max_value_size: 900,
            ..Limits::default()
        };
        let mut h = harness_with(64 << 20, limits);
        let value = "v".repeat(900);
        let keys = "k ".repeat(9);
        let script = format!("set k 0 0 900\r\n{value}\r\nget {keys}\r\nget k k\r\n");
        let reply = h.run(&script);
        let two = format!("VALUE k 0 900\r\n{value}\r\n").repeat(2);
        let expect =
            format!("STORED\r\nSERVER_ERROR out of memory writing get response\r\n{two}END\r\n");
        assert_eq!(reply, expect);
    }

    /// Counters shrink in place as in memcached: the result is space-padded to the old length.
    #[test]
    fn shorter_counter_results_are_padded() {
        let mut h = harness();
        assert_eq!(
            h.run("set n 0 0 2\r\n10\r\ndecr n 1\r\nget n\r\n"),
            "STORED\r\n9\r\nVALUE n 0 2\r\n9 \r\nEND\r\n"
        );
        assert_eq!(
            h.run("ma n MD D9 v\r\nincr n 100\r\nget n\r\n"),
            "VA 1\r\n0\r\n100\r\nVALUE n 0 3\r\n100\r\nEND\r\n"
        );
    }

    /// Where we deliberately differ from memcached 1.6.18.
    #[test]
    fn documented_differences() {
        let mut h = harness();
        // Flags beyond 32 bits and control characters in keys are refused.
        assert_eq!(
            h.run("set f 4294967296 0 1\r\nx\r\n"),
            "CLIENT_ERROR bad command line format\r\nERROR\r\n"
        );
        assert_eq!(
            h.run("get a\tb\r\n"),
            "CLIENT_ERROR bad command line format\r\n"
        );
        // Newer meta flags: E (explicit CAS) and md x (drop the value, keep the item).
        assert_eq!(
            h.run("ms e 1 E555 c\r\nx\r\nmg e c\r\n"),
            "HD c555\r\nHD c555\r\n"
        );
        assert_eq!(
            h.run("md e I E777\r\nmg e c v\r\n"),
            "HD\r\nVA 1 c777 X W\r\nx\r\n"
        );
        assert_eq!(
            h.run("ms x 2 F9 T0\r\nhi\r\nmd x x\r\nmg x v f\r\n"),
            "HD\r\nHD\r\nVA 0 f9\r\n\r\n"
        );
        assert_eq!(h.run("mg v N0 E42 c\r\n"), "HD c42 W\r\n");
        // ma q hides success even when it vivified (1.6.18 prints HD there).
        assert_eq!(h.run("ma q1 q N0\r\nmg q1 v\r\n"), "VA 1\r\n0\r\n");
        // me prints the remaining TTL (1.6.18 prints its negation).
        let mut fresh = harness();
        let me = fresh.run("ms t 1 T100\r\nx\r\nme t\r\n");
        assert_eq!(
            me,
            "HD\r\nME t exp=100 la=0 cas=1 fetch=no cls=1 size=50\r\n"
        );
        assert!(
            h.run("version\r\n")
                .starts_with("VERSION 1.6.18-ringcache-")
        );
    }

    #[test]
    fn counters() {
        let mut h = harness();
        h.run("set a 0 0 1\r\n1\r\nget a b\r\ngat 1 a\r\ntouch b 1\r\nincr a 1\r\ndecr b 1\r\n");
        h.run("cas a 0 0 1 999\r\nx\r\ncas b 0 0 1 1\r\nx\r\ndelete a\r\ndelete a\r\nmg a\r\n");
        let s = &h.shared.stats;
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!(
            (get(&s.cmd_get), get(&s.get_hits), get(&s.get_misses)),
            (3, 1, 2)
        );
        assert_eq!(
            (get(&s.cmd_touch), get(&s.touch_hits), get(&s.touch_misses)),
            (2, 1, 1)
        );
        assert_eq!((get(&s.incr_hits), get(&s.decr_misses)), (1, 1));
        assert_eq!(
            (get(&s.cas_badval), get(&s.cas_misses), get(&s.cmd_set)),
            (1, 1, 3)
        );
        assert_eq!((get(&s.delete_hits), get(&s.delete_misses)), (1, 1));
        let stats = h.run("stats\r\n");
        assert!(stats.contains("STAT curr_items 0\r\n"), "{stats}");
        assert!(stats.contains("STAT total_items 2\r\n"), "{stats}");
        assert!(
            stats.contains("STAT limit_maxbytes 201326592\r\n"),
            "{stats}"
        );
        assert!(stats.ends_with("END\r\n"));
    }
}
