//! The fuzz targets of `fuzz/` run on stable as a randomized test, so that `cargo test` (CI)
//! exercises them on every run: inputs are built from protocol fragments and random bytes by a
//! seeded generator, for `RINGCACHE_FUZZ_SECS` seconds per target (default 3). A failure prints
//! the seed and the input, which reproduces it (`RINGCACHE_FUZZ_SEED`). The coverage-guided runs
//! use the same bodies through cargo-fuzz (`fuzz/README.md`).

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::time::{Duration, Instant};

/// xorshift64*: small, seedable, good enough to pick fragments.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

const MEMCACHE: &[&[u8]] = &[
    b"get ",
    b"gets ",
    b"gat 10 ",
    b"gats 0 ",
    b"set ",
    b"add ",
    b"replace ",
    b"append ",
    b"prepend ",
    b"cas ",
    b"delete ",
    b"incr ",
    b"decr ",
    b"touch ",
    b"flush_all",
    b"version",
    b"verbosity 1",
    b"stats",
    b"stats settings",
    b"quit",
    b"mn",
    b"mg ",
    b"ms ",
    b"md ",
    b"ma ",
    b"me ",
    b"k1",
    b"k2",
    b"{t}a",
    b" 0 0 5\r\nhello\r\n",
    b" 1 100 3\r\nabc\r\n",
    b" 0 -1 0\r\n\r\n",
    b" 0 0 70000\r\n",
    b" 5",
    b" 18446744073709551615",
    b" noreply",
    b" v t f c k s",
    b" S3 T10 F5",
    b" MA N0 J13",
    b" q",
    b" b",
    b" O123",
    b" I",
    b"\r\n",
    b"\n",
    b" ",
    b"abc\r\n",
    b"12",
];

const RESP: &[&[u8]] = &[
    b"*1\r\n",
    b"*2\r\n",
    b"*3\r\n",
    b"*5\r\n",
    b"*-1\r\n",
    b"*0\r\n",
    b"*99999999\r\n",
    b"$3\r\nGET\r\n",
    b"$3\r\nSET\r\n",
    b"$4\r\nMGET\r\n",
    b"$3\r\nDEL\r\n",
    b"$4\r\nINCR\r\n",
    b"$6\r\nEXPIRE\r\n",
    b"$6\r\nAPPEND\r\n",
    b"$8\r\nSETRANGE\r\n",
    b"$4\r\nSCAN\r\n",
    b"$5\r\nHELLO\r\n",
    b"$1\r\n3\r\n",
    b"$4\r\nAUTH\r\n",
    b"$6\r\nCLIENT\r\n",
    b"$4\r\nINFO\r\n",
    b"$6\r\nCONFIG\r\n",
    b"$8\r\nFLUSHALL\r\n",
    b"$4\r\nKEYS\r\n",
    b"$1\r\n*\r\n",
    b"$2\r\nk1\r\n",
    b"$2\r\nk2\r\n",
    b"$1\r\n5\r\n",
    b"$2\r\nEX\r\n",
    b"$2\r\nNX\r\n",
    b"$20\r\n-9223372036854775808\r\n",
    b"$5\r\nhello\r\n",
    b"$0\r\n\r\n",
    b"$-1\r\n",
    b"$70000\r\n",
    b"$6\r\nSETBIT\r\n",
    b"$8\r\nBITFIELD\r\n",
    b"$5\r\nBITOP\r\n",
    b"$6\r\nBITPOS\r\n",
    b"$3\r\nLCS\r\n",
    b"$4\r\nSORT\r\n",
    b"$10\r\nZINTERCARD\r\n",
    b"$6\r\nOBJECT\r\n",
    b"$6\r\nMEMORY\r\n",
    b"$8\r\nOVERFLOW\r\n",
    b"$2\r\nu8\r\n",
    b"$3\r\ni64\r\n",
    b"$2\r\n#9\r\n",
    b"$2\r\nBY\r\n",
    b"$5\r\nk*->f\r\n",
    b"$3\r\nIDX\r\n",
    b"PING\r\n",
    b"SET k v\r\n",
    b"GET \"k\\x00\"\r\n",
    b"\"unbalanced\r\n",
    b"\r\n",
    b"\n",
    b":1\r\n",
    b"+OK\r\n",
];

/// Pieces of RDB files: opcodes, lengths, value types with small keys, compact encodings.
const RDB: &[&[u8]] = &[
    b"\xfa\x09redis-ver\x057.0.0",
    b"\xfa\x0arc-mcflags\x0242",
    b"\xfe\x00",
    b"\xfb\x02\x01",
    b"\xfc\x00\x10\x20\x30\x40\x01\x00\x00",
    b"\xfd\x00\x10\x20\x30",
    b"\xf8\x05",
    b"\xf9\x07",
    b"\xf5\x03abc",
    b"\x00\x01k\x05hello",
    // Streams (type 19): empty, and two entries with a group, a pending entry and a consumer
    // as redis-server 7.0 writes them.
    b"\x13\x01s\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    b"\x13\x01\x73\x01\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x26\x26\x00\x00\x00\x0f\x00\x02\x01\x00\x01\x01\x01\x81\x66\x02\x00\x01\x02\x01\x00\x01\x00\x01\x01\x01\x04\x01\x02\x01\x00\x01\x01\x01\x02\x01\x04\x01\xff\x02\x01\x02\x01\x01\x00\x00\x02\x01\x01\x67\x01\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x34\x51\x58\x3d\xa2\x01\x00\x00\x01\x01\x01\x63\x34\x51\x58\x3d\xa2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01",
    b"\x00\x01k\xc0\xfb",
    b"\x00\x01k\xc1\xe8\x03",
    b"\x00\x01k\xc3\x05\x0a\x00a\xe0\x00\x00",
    b"\x01\x01l\x02\x01a\x01b",
    b"\x02\x01s\x01\x01m",
    b"\x03\x01z\x01\x01m\x031.5",
    b"\x04\x01h\x01\x01f\x01v",
    b"\x05\x01z\x01\x01m\x00\x00\x00\x00\x00\x00\xf8\x3f",
    b"\x0b\x01i\x0c\x02\x00\x00\x00\x01\x00\x00\x00\x05\x00",
    b"\x10\x01h\x0b\x0b\x00\x00\x00\x02\x00\x81f\x02\x01\x01\xff",
    b"\x12\x01q\x01\x01\x01x",
    b"\x12\x01q\x01\x02\x07\x07\x00\x00\x00\x01\x00\xff",
    b"\x0a\x01z\x0c\x0c\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\xf2\xff",
    b"\x09\x01m\x08\x01\x01k\x01\x00v\xff",
    b"\x13\x01x",
    b"\x81\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\x80\x7f\xff\xff\xff",
    b"\xff\x00\x00\x00\x00\x00\x00\x00\x00",
];

/// An input: a chunk size byte, then fragments and random bytes, sometimes mutated.
fn input(rng: &mut Rng, fragments: &[&[u8]]) -> Vec<u8> {
    let mut data = vec![rng.next_u64() as u8];
    for _ in 0..rng.below(40) {
        match rng.below(10) {
            0 => {
                let n = rng.below(16);
                data.extend((0..n).map(|_| rng.next_u64() as u8));
            }
            1 => data.extend(std::iter::repeat_n(b'x', rng.below(3000))),
            _ => data.extend_from_slice(fragments[rng.below(fragments.len())]),
        }
    }
    if !data.is_empty() && rng.below(4) == 0 {
        let at = rng.below(data.len());
        data[at] = rng.next_u64() as u8;
    }
    data
}

fn run(name: &str, fragments: Option<&[&[u8]]>, target: fn(&[u8])) {
    let secs = std::env::var("RINGCACHE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let seed = std::env::var("RINGCACHE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut runs = 0u64;
    while Instant::now() < deadline {
        let data = match fragments {
            Some(f) => input(&mut rng, f),
            None => (0..rng.below(600)).map(|_| rng.next_u64() as u8).collect(),
        };
        let result = std::panic::catch_unwind(|| target(&data));
        if result.is_err() {
            panic!(
                "{name}: failed on run {runs}, seed {seed}; input {:?}",
                String::from_utf8_lossy(&data)
            );
        }
        runs += 1;
    }
    eprintln!("{name}: {runs} runs in {secs}s (seed {seed})");
    assert!(runs > 0);
}

#[test]
fn memcache_session() {
    run(
        "memcache_session",
        Some(MEMCACHE),
        targets::memcache_session,
    );
}

#[test]
fn resp_session() {
    run("resp_session", Some(RESP), targets::resp_session);
}

#[test]
fn node_ops() {
    run("node_ops", None, targets::node_ops);
}

#[test]
fn rdb_reader() {
    run("rdb_reader", Some(RDB), targets::rdb_reader);
}
