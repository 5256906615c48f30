//! Introspection of one key: OBJECT (ENCODING, FREQ, IDLETIME, REFCOUNT, HELP) and MEMORY
//! (USAGE, DOCTOR, STATS, MALLOC-STATS, PURGE, HELP), with redis-server 7.0's replies.
//!
//! Owns: which encoding redis 7.0 would report for a value, the memory a key is charged, the
//! help texts of these two containers. Must not touch: the values (everything here only reads,
//! and does not count as an access: redis looks keys up with LOOKUP_NOTOUCH for OBJECT),
//! framing, other commands.
//!
//! Invariants and known differences:
//! - ENCODING is derived from the value as it is now, with redis 7.0's default thresholds:
//!   strings `int` (a canonical integer of at most 20 bytes), `embstr` (up to 44 bytes) or
//!   `raw`; lists `quicklist` (redis 7.0 has no small list encoding); sets `intset` (at most
//!   `set-max-intset-entries` integer members) or `hashtable`; hashes `listpack` (at most
//!   `hash-max-listpack-entries` entries of at most `hash-max-listpack-value` bytes) or
//!   `hashtable`; sorted sets `listpack` (`zset-max-listpack-*`) or `skiplist`. The limits
//!   are redis-server's built-in defaults (512, 512, 64, 128, 64: what it runs with when no
//!   config file lowers the hash limit to 128) or what CONFIG SET chose. Redis
//!   keeps a converted encoding when the value shrinks again and reports `raw` for any string
//!   changed in place (APPEND, SETRANGE, SETBIT); ringcache reports what the current value
//!   would be encoded as, which differs in those cases.
//! - MEMORY USAGE is the item's exact charge against its node (slot, key, value and the
//!   container's own structure, by allocator size classes); SAMPLES is accepted and ignored
//!   because the charge is exact.
//! - REFCOUNT answers what redis-server answers with its default configuration: its shared
//!   integers (0..=9999 stored as `int`) report `2147483647`, everything else 1.
//! - FREQ answers redis's error unless CONFIG SET chose an LFU policy (then the item's access
//!   counter as ringcache keeps it: 1 if read since written, else 0); IDLETIME answers redis's
//!   error under an LFU policy, otherwise the seconds since the last access.

use bytes::BytesMut;

use super::args::parse_int;
use super::command::Command;
use super::conn::{Ctx, Reply};
use super::error::RespError;
use super::frame::{
    Args, encode_array, encode_bulk, encode_int, encode_map, encode_null, encode_ok, encode_simple,
    encode_verbatim, parse_i64,
};
use super::params;
use crate::store::{Container, Item, Kind};

/// redis's `OBJ_SHARED_REFCOUNT`.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// redis's `OBJ_SHARED_INTEGERS`: 0..this are shared objects.
const SHARED_INTEGERS: i64 = 10_000;

/// redis's `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`.
const EMBSTR_MAX: usize = 44;

/// The encoding thresholds in force: redis 7.0's built-in defaults (hash 512 entries, sorted
/// set 128, intset 512, values of 64 bytes), or what CONFIG SET chose.
struct Limits {
    intset_entries: usize,
    hash_entries: usize,
    hash_value: usize,
    zset_entries: usize,
    zset_value: usize,
}

impl Limits {
    fn of(cx: &Ctx<'_>) -> Limits {
        let set = cx.shared.config_set.lock();
        let get = |name: &'static str| {
            let value = set.get(params::canonical(name)).cloned().or_else(|| {
                params::PARAMS
                    .iter()
                    .find(|(n, _, _)| *n == name)
                    .map(|(_, _, d)| (*d).to_string())
            });
            value
                .and_then(|v| v.parse::<i64>().ok())
                .map_or(0, |n| usize::try_from(n).unwrap_or(0))
        };
        Limits {
            intset_entries: get("set-max-intset-entries"),
            hash_entries: get("hash-max-listpack-entries"),
            hash_value: get("hash-max-listpack-value"),
            zset_entries: get("zset-max-listpack-entries"),
            zset_value: get("zset-max-listpack-value"),
        }
    }
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

fn help(out: &mut BytesMut, lines: &[&str]) {
    encode_array(out, lines.len());
    for l in lines {
        encode_simple(out, l.as_bytes());
    }
}

/// The encoding redis 7.0 gives a string of these bytes when it stores it.
fn string_encoding(v: &[u8]) -> &'static str {
    if v.len() <= 20 && parse_i64(v).is_some() {
        "int"
    } else if v.len() <= EMBSTR_MAX {
        "embstr"
    } else {
        "raw"
    }
}

/// The encoding redis 7.0 would report for `item` under `limits` (see the module header).
fn encoding(item: &Item<'_>, limits: &Limits) -> &'static str {
    match item.container() {
        None => string_encoding(item.value()),
        Some(Container::List(_)) => "quicklist",
        Some(Container::Set(s)) => {
            if s.len() <= limits.intset_entries && s.iter().all(|m| parse_i64(m).is_some()) {
                "intset"
            } else {
                "hashtable"
            }
        }
        Some(Container::Hash(h)) => {
            let max = limits.hash_value;
            if h.len() <= limits.hash_entries
                && h.iter().all(|(f, v)| f.len() <= max && v.len() <= max)
            {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Some(Container::Stream(_)) => "stream",
        Some(Container::ZSet(z)) => {
            let max = limits.zset_value;
            if z.len() <= limits.zset_entries && z.iter().all(|(m, _)| m.len() <= max) {
                "listpack"
            } else {
                "skiplist"
            }
        }
    }
}

/// The maxmemory policy set by CONFIG SET (ringcache's own eviction is SIEVE whatever it says).
fn policy_is_lfu(cx: &Ctx<'_>) -> bool {
    cx.shared
        .config_set
        .lock()
        .get("maxmemory-policy")
        .is_some_and(|p| p.contains("lfu"))
}

/// OBJECT (its subcommand and arity checked by the table).
pub(super) fn object(a: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) -> Reply {
    let sub = Command::Object.subcommand(a.arg(1)?).map(|(w, _)| w);
    if sub == Some("help") {
        help(out, OBJECT_HELP);
        return Ok(());
    }
    let lfu = policy_is_lfu(cx);
    if sub == Some("freq") && !lfu {
        return lookup_or_null(cx, a, out, |_, _| Err(RespError::NoLfuPolicy));
    }
    if sub == Some("idletime") && lfu {
        return lookup_or_null(cx, a, out, |_, _| Err(RespError::NoLruPolicy));
    }
    let clock = cx.shared.clock.clone();
    let limits = Limits::of(cx);
    lookup_or_null(cx, a, out, |item, out| {
        match sub {
            Some("encoding") => encode_bulk(out, encoding(item, &limits).as_bytes()),
            Some("refcount") => {
                let v = item.value();
                let shared = item.kind() == Kind::Str
                    && v.len() <= 20
                    && parse_i64(v).is_some_and(|n| (0..SHARED_INTEGERS).contains(&n));
                encode_int(out, if shared { SHARED_REFCOUNT } else { 1 });
            }
            Some("idletime") => {
                let now = clock.secs_since_start(clock.now_ms());
                encode_int(out, i64::from(now.saturating_sub(item.meta().atime)));
            }
            _ => encode_int(out, i64::from(item.meta().fetched)),
        }
        Ok(())
    })
}

/// Runs `f` on the live item at `a[2]` (not counted as an access); a missing key answers null.
fn lookup_or_null(
    cx: &Ctx<'_>,
    a: &Args<'_>,
    out: &mut BytesMut,
    f: impl FnOnce(&Item<'_>, &mut BytesMut) -> Reply,
) -> Reply {
    let v = cx.conn.version;
    cx.shared
        .topology
        .load()
        .entry(a.arg(2)?, |e| match e.item() {
            None => {
                encode_null(out, v);
                Ok(())
            }
            Some(item) => f(&item, out),
        })
}

/// MEMORY (its subcommand and arity checked by the table).
pub(super) fn memory(
    sub: Option<&str>,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
) -> Reply {
    let v = cx.conn.version;
    match sub.unwrap_or_default() {
        "usage" => {
            let mut j = 3;
            while j < a.len() {
                if a.arg(j)?.eq_ignore_ascii_case(b"samples") && j + 1 < a.len() {
                    if parse_int(a.arg(j + 1)?)? < 0 {
                        return Err(RespError::Syntax);
                    }
                    j += 2;
                } else {
                    return Err(RespError::Syntax);
                }
            }
            lookup_or_null(cx, a, out, |item, out| {
                encode_int(out, item.charge() as i64);
                Ok(())
            })
        }
        "doctor" => {
            encode_verbatim(
                out,
                b"Sam, I have no memory problems: every node keeps within its max_memory by \
                  evicting (SIEVE), and each item is charged what the allocator hands out.",
                v,
            );
            Ok(())
        }
        "stats" => {
            let topo = cx.shared.topology.load();
            let used: u64 = topo.nodes.iter().map(|n| n.used_bytes()).sum();
            let max: u64 = topo.nodes.iter().map(|n| n.max_memory()).sum();
            let keys: u64 = topo.nodes.iter().map(|n| n.len()).sum();
            encode_map(out, 5, v);
            encode_bulk(out, b"peak.allocated");
            encode_int(out, used as i64);
            encode_bulk(out, b"total.allocated");
            encode_int(out, used as i64);
            encode_bulk(out, b"keys.count");
            encode_int(out, keys as i64);
            encode_bulk(out, b"keys.bytes-per-key");
            encode_int(out, used.checked_div(keys).unwrap_or(0) as i64);
            encode_bulk(out, b"maxmemory");
            encode_int(out, max as i64);
            Ok(())
        }
        "malloc-stats" => {
            encode_verbatim(out, b"Stats not supported for the current allocator", v);
            Ok(())
        }
        "purge" => {
            encode_ok(out);
            Ok(())
        }
        _ => {
            help(out, MEMORY_HELP);
            Ok(())
        }
    }
}
