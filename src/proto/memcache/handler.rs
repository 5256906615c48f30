//! Executes decoded memcached requests against the topology and writes the replies.
//!
//! Owns: command semantics (add/replace/cas/append conditions, incr/decr arithmetic, `noreply`,
//! meta quiet mode, meta flags such as N/R/T/I/E), memcached exptime → absolute expiry, and the
//! memcached-named counters in `shared.stats` (relaxed atomics).
//!
//! Must not touch: sockets, parsing, reply text (all bytes come from `encode.rs`), the
//! `ArcSwap`s (only `load()`).
//!
//! Invariants:
//! - The topology is loaded once per request; a multi-key get routes every key through
//!   `Topology::entry` on that one snapshot and answers in request order with one `END`.
//! - Every store access happens inside one `Entry` closure per key, so a read-modify-write
//!   (cas, incr, append, meta flags) is atomic for that key.
//! - No heap allocation of our own on the get/set paths: item lines are written straight from
//!   the entry into `out`, numbers are formatted on the stack.
//! - One get reply is at most `8 * max_request_size` bytes; a larger one is replaced by
//!   `SERVER_ERROR out of memory writing get response` (memcached's reply when it cannot build
//!   a get response).
//! - Classic `noreply` removes every line the request wrote (errors included), as memcached
//!   does; meta `q` hides only the nominal code (mg: `EN`; ms, md, ma: `HD`), never errors.
//!
//! Non-string items (Redis hashes, lists, sets, sorted sets under the same key): memcached has
//! no error for "wrong type" that clients handle gracefully (`SERVER_ERROR` makes most clients
//! fail the whole multi-get), so memcached commands see such an item as **absent** for
//! everything that reads or depends on the old value, and never destroy it by a conditional
//! write: get/gets/gat/gats/mg miss (`mg N` does not vivify over it), touch/incr/decr/ma/cas
//! answer NOT_FOUND/NF, replace/append/prepend and `ma N` answer NOT_STORED/NS, `md I`/`md x`
//! answer NF. `add` (and `ms ME`) answer NOT_STORED because the key is taken. Unconditional
//! writes replace or remove any kind, like Redis SET and DEL: `set`/`ms` (mode S), `delete`/`md`.
//!
//! Other documented choices: `stats` reports server counters from `shared.stats` and sums
//! item/memory counters over the topology's nodes; `stats reset`/`items`/`slabs`/... are not
//! supported and answer `ERROR` like any unknown stats group; `verbosity` is accepted without
//! effect; `me` shows the remaining TTL (memcached 1.6.18 prints its negation); meta `l` and
//! `me`'s `la` are exact when the item is bumped and otherwise computed from `started_unix`
//! (the clock's start, to within a second); a counter result shorter than the old value is
//! space-padded to its length, as memcached does.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;

use super::encode::{self, MetaCode, Reply};
use super::parse::{GetCmd, Keys, MetaFlags, Request, StatsGroup, StoreCmd};
use crate::config::Limits;
use crate::proto::Flow;
use crate::proto::resp::notify;
use crate::server::{Shared, Stats};
use crate::store::{Entry, ItemMeta, Kind, NEVER, StoreError};

/// Exptimes up to 30 days are relative seconds; larger ones are absolute unix seconds.
const RELATIVE_MAX_SECS: i64 = 60 * 60 * 24 * 30;
/// An `expire_at` in the past (`NEVER` is 0): the item is stored but immediately invisible.
const EXPIRED: u64 = 1;
/// One get reply may hold at most this many times `max_request_size` bytes (128 MiB by
/// default): values are copied into the reply, so `get k k k ...` must not grow it unbounded.
const GET_REPLY_FACTOR: u64 = 8;
/// Per-item overhead shown by `me` as part of `size` (memcached's item header is ~48 bytes).
const ITEM_OVERHEAD: u64 = 48;

/// Handles one request, appending its replies to `out`.
pub fn handle(req: Request, shared: &Shared, limits: &Limits, out: &mut BytesMut) -> Handled {
    let mark = out.len();
    let noreply = req.noreply();
    let flow = dispatch(req, shared, limits, out);
    let error = encode::is_error(&out[mark..]);
    if noreply {
        out.truncate(mark);
    }
    Handled { flow, error }
}

/// What [`handle`] did: how the connection goes on, and whether the reply was an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    /// Continue or close.
    pub flow: Flow,
    /// The reply was `ERROR`, `CLIENT_ERROR ...` or `SERVER_ERROR ...` (before `noreply`).
    pub error: bool,
}

/// Converts a memcached exptime (seconds) into an absolute expiry in unix ms.
pub fn expire_at(exptime: i64, now_ms: u64) -> u64 {
    match exptime {
        0 => NEVER,
        e if e < 0 => EXPIRED,
        e if e <= RELATIVE_MAX_SECS => now_ms.saturating_add(e as u64 * 1000),
        e => (e as u64).saturating_mul(1000).max(EXPIRED),
    }
}

/// Remaining TTL in whole seconds, rounded up; -1 for no expiry.
fn ttl_secs(expire_at: u64, now_ms: u64) -> i64 {
    if expire_at == NEVER {
        return -1;
    }
    let secs = expire_at.saturating_sub(now_ms).div_ceil(1000);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Counts one key looked up by a retrieval or a touch. As memcached does, a lookup that also
/// sets a new expiry (touch, gat/gats, mg with T) counts as a touch, not a get.
fn count_get_or_touch(stats: &Stats, touches: bool, hit: bool) {
    let (cmd, hits, misses) = if touches {
        (&stats.cmd_touch, &stats.touch_hits, &stats.touch_misses)
    } else {
        (&stats.cmd_get, &stats.get_hits, &stats.get_misses)
    };
    inc(cmd);
    inc(if hit { hits } else { misses });
}

fn is_str(entry: &Entry<'_>) -> bool {
    entry.item().is_some_and(|i| i.kind() == Kind::Str)
}

fn dispatch(req: Request, shared: &Shared, limits: &Limits, out: &mut BytesMut) -> Flow {
    match req {
        Request::Get { cmd, exptime, keys } => get(shared, limits, cmd, exptime, &keys, out),
        Request::Store {
            cmd,
            key,
            flags,
            exptime,
            cas,
            data,
            ..
        } => {
            let store = Store {
                cmd,
                key: &key,
                flags,
                exptime,
                cas,
                data: &data,
            };
            let reply = store.run(shared, limits);
            if reply == Reply::Stored {
                let event = match cmd {
                    StoreCmd::Append => "append",
                    StoreCmd::Prepend => "prepend",
                    _ => "set",
                };
                notify::memcache_event(shared, notify::STRING, event, &key);
            }
            encode::reply(out, reply);
        }
        Request::Delete { key, .. } => {
            let removed = shared.topology.load().entry(&key, |e| e.remove());
            if removed {
                notify::memcache_event(shared, notify::GENERIC, "del", &key);
            }
            let stats = &shared.stats;
            inc(if removed {
                &stats.delete_hits
            } else {
                &stats.delete_misses
            });
            encode::reply(
                out,
                if removed {
                    Reply::Deleted
                } else {
                    Reply::NotFound
                },
            );
        }
        Request::Arith {
            incr, key, delta, ..
        } => arith(shared, incr, &key, delta, out),
        Request::Touch { key, exptime, .. } => {
            let touched = shared.topology.load().entry(&key, |e| {
                let at = expire_at(exptime, e.now_ms());
                if !is_str(e) {
                    return false;
                }
                if let Some(mut meta) = e.meta_mut() {
                    meta.expire_at = at;
                }
                true
            });
            count_get_or_touch(&shared.stats, true, touched);
            if touched {
                notify::memcache_event(shared, notify::GENERIC, "expire", &key);
            }
            encode::reply(
                out,
                if touched {
                    Reply::Touched
                } else {
                    Reply::NotFound
                },
            );
        }
        Request::FlushAll { delay, .. } => {
            inc(&shared.stats.cmd_flush);
            let now = shared.clock.now_ms();
            let at = if delay <= 0 {
                now
            } else {
                expire_at(delay, now)
            };
            // Every node that may hold keys, draining ones included (see `Topology::flush`).
            shared.topology.load().flush(at);
            notify::memcache_flush(shared);
            encode::reply(out, Reply::Ok);
        }
        Request::Version => encode::version(out),
        Request::Verbosity { .. } => encode::reply(out, Reply::Ok),
        Request::Stats(group) => stats(shared, limits, group, out),
        Request::Quit => return Flow::Close,
        Request::MetaNoop => encode::reply(out, Reply::MetaNoop),
        Request::MetaGet { key, flags } => meta_get(shared, &key, &flags, out),
        Request::MetaSet { key, flags, data } => meta_set(shared, limits, &key, &flags, &data, out),
        Request::MetaDelete { key, flags } => meta_delete(shared, &key, &flags, out),
        Request::MetaArith { key, flags } => meta_arith(shared, &key, &flags, out),
        Request::MetaDebug { key, base64 } => meta_debug(shared, &key, base64, out),
        Request::TooLarge { key, remove, .. } => {
            if remove {
                shared.topology.load().entry(&key, |e| e.remove());
            }
            encode::reply(out, Reply::TooLarge);
        }
        Request::Reject { error, .. } => encode::reject(out, error),
    }
    Flow::Continue
}

fn get(
    shared: &Shared,
    limits: &Limits,
    cmd: GetCmd,
    exptime: i64,
    keys: &Keys,
    out: &mut BytesMut,
) {
    let topology = shared.topology.load();
    let stats = &shared.stats;
    let mark = out.len();
    let budget = limits
        .max_request_size
        .saturating_mul(GET_REPLY_FACTOR)
        .min(limits.max_output_buffer);
    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    for key in keys.iter() {
        let hit = topology.entry(key, |e| {
            let new_expiry = cmd.touches().then(|| expire_at(exptime, e.now_ms()));
            match e.item() {
                Some(item) if item.kind() == Kind::Str => {
                    if (out.len() - mark).saturating_add(item.value().len()) > budget {
                        return None;
                    }
                    let meta = item.meta();
                    let cas = cmd.with_cas().then_some(meta.cas);
                    encode::value(out, key, meta.flags, item.value(), cas);
                }
                _ => {
                    e.record_miss();
                    return Some(false);
                }
            }
            if let (Some(at), Some(mut meta)) = (new_expiry, e.meta_mut()) {
                meta.expire_at = at;
            }
            e.mark_read();
            Some(true)
        });
        let Some(hit) = hit else {
            // The reply would exceed its budget: drop it whole, as memcached does when it
            // cannot build a get response.
            out.truncate(mark);
            encode::reply(out, Reply::GetTooLarge);
            return;
        };
        count_get_or_touch(stats, cmd.touches(), hit);
    }
    encode::reply(out, Reply::End);
}

/// A classic storage command with its data block.
struct Store<'a> {
    cmd: StoreCmd,
    key: &'a [u8],
    flags: u32,
    exptime: i64,
    cas: u64,
    data: &'a [u8],
}

impl Store<'_> {
    fn run(&self, shared: &Shared, limits: &Limits) -> Reply {
        let stats = &shared.stats;
        inc(&stats.cmd_set);
        shared.topology.load().entry(self.key, |e| {
            let at = expire_at(self.exptime, e.now_ms());
            let current = e.item().map(|i| (i.kind(), i.meta().cas, i.value().len()));
            let string = current.filter(|c| c.0 == Kind::Str);
            match self.cmd {
                StoreCmd::Set => {
                    let reply = stored(e.put(&[self.data], self.flags, at, None));
                    if reply == Reply::OutOfMemoryStoring {
                        // As memcached: a failed overwrite must not leave the old value behind.
                        e.remove();
                    }
                    reply
                }
                StoreCmd::Add if current.is_some() => Reply::NotStored,
                StoreCmd::Replace if string.is_none() => Reply::NotStored,
                StoreCmd::Add | StoreCmd::Replace => {
                    stored(e.put(&[self.data], self.flags, at, None))
                }
                StoreCmd::Append | StoreCmd::Prepend => match string {
                    Some((_, _, len))
                        if (len + self.data.len()) as u64 <= limits.max_value_size =>
                    {
                        stored(e.concat(self.data, self.cmd == StoreCmd::Prepend))
                    }
                    _ => Reply::NotStored,
                },
                StoreCmd::Cas => match string {
                    None => {
                        inc(&stats.cas_misses);
                        Reply::NotFound
                    }
                    Some((_, cas, _)) if cas != self.cas => {
                        inc(&stats.cas_badval);
                        Reply::Exists
                    }
                    Some(_) => {
                        inc(&stats.cas_hits);
                        stored(e.put(&[self.data], self.flags, at, None))
                    }
                },
            }
        })
    }
}

fn stored(result: Result<u64, StoreError>) -> Reply {
    match result {
        Ok(_) => Reply::Stored,
        Err(StoreError::OutOfMemory) => Reply::OutOfMemoryStoring,
        Err(StoreError::WrongType) => Reply::NotStored,
    }
}

/// memcached's `safe_strtoull` on a stored value: optional leading whitespace and sign, digits,
/// then the end or whitespace; `None` if that is not a number that fits in 64 bits.
fn parse_counter(value: &[u8]) -> Option<u64> {
    let is_space = |b: u8| b.is_ascii_whitespace() || b == 0x0b;
    let start = value.iter().position(|&b| !is_space(b))?;
    let rest = &value[start..];
    let (negative, digits) = match rest.split_first() {
        Some((b'-', tail)) => (true, tail),
        Some((b'+', tail)) => (false, tail),
        _ => (false, rest),
    };
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 || (end < digits.len() && !is_space(digits[end])) {
        return None;
    }
    let n = digits[..end].iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })?;
    // "-0" is 0; any other negative number is refused.
    if negative && n != 0 { None } else { Some(n) }
}

/// Stores a counter's new value. Like memcached, which rewrites a number in place when the
/// result is not longer than the old value, a shorter result is padded with spaces to the old
/// length ("10" decremented is "9 "); clients read the value back exactly as memcached gives it.
fn put_counter(
    e: &mut Entry<'_>,
    n: u64,
    old_len: usize,
    flags: u32,
    expire_at: u64,
    cas: Option<u64>,
) -> Result<u64, StoreError> {
    const SPACES: [u8; 64] = [b' '; 64];
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n).as_bytes();
    // A number followed by more than 64 bytes of whitespace is stored unpadded.
    let pad = SPACES
        .get(..old_len.saturating_sub(digits.len()))
        .unwrap_or_default();
    e.put(&[digits, pad], flags, expire_at, cas)
}

fn apply_delta(value: u64, delta: u64, incr: bool) -> u64 {
    if incr {
        value.wrapping_add(delta)
    } else {
        value.saturating_sub(delta)
    }
}

enum Counted {
    Missing,
    NonNumeric,
    OutOfMemory,
    Done(u64),
}

fn arith(shared: &Shared, incr: bool, key: &[u8], delta: u64, out: &mut BytesMut) {
    let outcome = shared.topology.load().entry(key, |e| {
        let Some((meta, number)) = e
            .item()
            .filter(|i| i.kind() == Kind::Str)
            .map(|i| (*i.meta(), (parse_counter(i.value()), i.value().len())))
        else {
            return Counted::Missing;
        };
        let (Some(number), old_len) = number else {
            return Counted::NonNumeric;
        };
        let new = apply_delta(number, delta, incr);
        match put_counter(e, new, old_len, meta.flags, meta.expire_at, None) {
            Ok(_) => Counted::Done(new),
            Err(_) => Counted::OutOfMemory,
        }
    });
    let stats = &shared.stats;
    let (hits, misses) = if incr {
        (&stats.incr_hits, &stats.incr_misses)
    } else {
        (&stats.decr_hits, &stats.decr_misses)
    };
    match outcome {
        Counted::Done(n) => {
            inc(hits);
            notify::memcache_event(shared, notify::STRING, "incrby", key);
            encode::number(out, n);
        }
        Counted::Missing => {
            inc(misses);
            encode::reply(out, Reply::NotFound);
        }
        Counted::NonNumeric => encode::reply(out, Reply::NonNumeric),
        Counted::OutOfMemory => encode::reply(out, Reply::OutOfMemory),
    }
}

/// Seconds since the last access, from `atime` (seconds since the clock's start, which is
/// `started_unix` to within a second).
fn since_access(shared: &Shared, atime: u32, now_ms: u64) -> u64 {
    (now_ms / 1000)
        .saturating_sub(shared.started_unix)
        .saturating_sub(u64::from(atime))
}

fn meta_get(shared: &Shared, key: &[u8], f: &MetaFlags, out: &mut BytesMut) {
    let hit = shared.topology.load().entry(key, |e| {
        let now = e.now_ms();
        let mut created = false;
        if !is_str(e) {
            // Vivify only into a free key, never over a container.
            if let Some(ttl) = f.vivify.filter(|_| e.item().is_none()) {
                created = e.put(&[], 0, expire_at(ttl, now), f.new_cas).is_ok();
            }
            if !created {
                e.record_miss();
                return false;
            }
        }
        let Some(before) = e.item().map(|i| *i.meta()) else {
            return false;
        };
        // W: this client wins the right to recache; Z: another client already won.
        let mut won = created;
        if !before.won && !created {
            let recache = f
                .recache
                .is_some_and(|r| before.expire_at != NEVER && before.expire_at < expire_at(r, now));
            won = recache || before.stale;
        }
        if let Some(mut meta) = e.meta_mut() {
            if let Some(ttl) = f.ttl {
                meta.expire_at = expire_at(ttl, now);
            }
            meta.won |= won;
        }
        // `h` and `l` report the state before this request, so read them before the bump.
        let last_access = if f.no_bump {
            since_access(shared, before.atime, now)
        } else {
            e.mark_read();
            let after = e.item().map_or(before.atime, |i| i.meta().atime);
            u64::from(after.saturating_sub(before.atime))
        };
        let Some(item) = e.item() else {
            return false;
        };
        let meta = item.meta();
        let value = item.value();
        if f.value {
            encode::meta_value(out, value.len());
        } else {
            encode::meta_code(out, MetaCode::Done);
        }
        for &flag in f.order() {
            match flag {
                b's' => encode::meta_num(out, b's', value.len() as u64),
                b't' => encode::meta_ttl(out, ttl_secs(meta.expire_at, now)),
                b'c' => encode::meta_num(out, b'c', meta.cas),
                b'f' => encode::meta_num(out, b'f', u64::from(meta.flags)),
                b'l' => encode::meta_num(out, b'l', last_access),
                b'h' => encode::meta_num(out, b'h', u64::from(before.fetched)),
                b'O' => encode::meta_opaque(out, &f.opaque),
                b'k' => encode::meta_key(out, key, f.base64),
                _ => {}
            }
        }
        if before.won {
            encode::meta_flag(out, b'Z');
        }
        if meta.stale {
            encode::meta_flag(out, b'X');
        }
        if won {
            encode::meta_flag(out, b'W');
        }
        encode::crlf(out);
        if f.value {
            encode::data_block(out, value);
        }
        true
    });
    count_get_or_touch(&shared.stats, f.ttl.is_some(), hit);
    if !hit && !f.quiet {
        meta_status(out, MetaCode::Miss, key, f);
    }
}

/// A meta status line with the echo flags every meta command has (O, k).
fn meta_status(out: &mut BytesMut, code: MetaCode, key: &[u8], f: &MetaFlags) {
    encode::meta_code(out, code);
    for &flag in f.order() {
        match flag {
            b'O' => encode::meta_opaque(out, &f.opaque),
            b'k' => encode::meta_key(out, key, f.base64),
            _ => {}
        }
    }
    encode::crlf(out);
}

enum MetaOutcome {
    Code(MetaCode, u64),
    Error(Reply),
}

fn meta_put(e: &mut Entry<'_>, data: &[u8], flags: u32, at: u64, cas: Option<u64>) -> MetaOutcome {
    match e.put(&[data], flags, at, cas) {
        Ok(cas) => MetaOutcome::Code(MetaCode::Done, cas),
        Err(StoreError::OutOfMemory) => MetaOutcome::Error(Reply::OutOfMemoryStoring),
        Err(StoreError::WrongType) => MetaOutcome::Code(MetaCode::NotStored, 0),
    }
}

fn meta_set(
    shared: &Shared,
    limits: &Limits,
    key: &[u8],
    f: &MetaFlags,
    data: &[u8],
    out: &mut BytesMut,
) {
    let stats = &shared.stats;
    inc(&stats.cmd_set);
    let outcome = shared.topology.load().entry(key, |e| {
        let at = f.ttl.map_or(NEVER, |t| expire_at(t, e.now_ms()));
        let current = e.item().map(|i| (i.kind(), i.meta().cas, i.value().len()));
        let string = current.filter(|c| c.0 == Kind::Str);
        let flags = f.client_flags;
        match (f.mode.unwrap_or(b'S'), f.compare_cas) {
            // Set and replace with C are the classic cas.
            (b'S' | b'R', Some(want)) => match string {
                None => {
                    inc(&stats.cas_misses);
                    MetaOutcome::Code(MetaCode::NotFound, 0)
                }
                Some((_, cas, _)) if cas == want || (f.invalidate && want < cas) => {
                    inc(&stats.cas_hits);
                    let before = e.item().map(|i| *i.meta());
                    let outcome = meta_put(e, data, flags, at, f.new_cas);
                    if let (Some(before), Some(mut meta), true) =
                        (before, e.meta_mut(), want != cas)
                    {
                        // I with an older CAS, as memcached 1.6: the value is replaced but
                        // stays stale, keeps the old TTL, and a win token already handed out
                        // is not handed out again (mg shows X, and Z rather than W).
                        meta.stale = true;
                        meta.expire_at = before.expire_at;
                        meta.won = before.won;
                    }
                    outcome
                }
                Some(_) => {
                    inc(&stats.cas_badval);
                    MetaOutcome::Code(MetaCode::Exists, 0)
                }
            },
            (b'E', _) if current.is_some() => MetaOutcome::Code(MetaCode::NotStored, 0),
            (b'R', None) if string.is_none() => MetaOutcome::Code(MetaCode::NotStored, 0),
            (b'E' | b'R', _) => meta_put(e, data, flags, at, f.new_cas),
            (b'A' | b'P', want) => match string {
                Some((_, cas, _)) if want.is_some_and(|w| w != cas) => {
                    MetaOutcome::Code(MetaCode::Exists, 0)
                }
                Some((_, _, len)) if (len + data.len()) as u64 <= limits.max_value_size => {
                    match e.concat(data, f.mode == Some(b'P')) {
                        Ok(cas) => {
                            let meta = e.meta_mut();
                            match (f.new_cas, meta) {
                                (Some(new), Some(mut meta)) => {
                                    meta.cas = new;
                                    MetaOutcome::Code(MetaCode::Done, new)
                                }
                                _ => MetaOutcome::Code(MetaCode::Done, cas),
                            }
                        }
                        Err(StoreError::OutOfMemory) => {
                            MetaOutcome::Error(Reply::OutOfMemoryStoring)
                        }
                        Err(StoreError::WrongType) => MetaOutcome::Code(MetaCode::NotStored, 0),
                    }
                }
                _ => MetaOutcome::Code(MetaCode::NotStored, 0),
            },
            _ => {
                let outcome = meta_put(e, data, flags, at, f.new_cas);
                if matches!(outcome, MetaOutcome::Error(_)) {
                    e.remove();
                }
                outcome
            }
        }
    });
    if matches!(outcome, MetaOutcome::Code(MetaCode::Done, _)) {
        notify::memcache_event(shared, notify::STRING, "set", key);
    }
    match outcome {
        MetaOutcome::Error(reply) => encode::reply(out, reply),
        MetaOutcome::Code(MetaCode::Done, _) if f.quiet => {}
        MetaOutcome::Code(code, cas) => {
            encode::meta_code(out, code);
            for &flag in f.order() {
                match flag {
                    b'O' => encode::meta_opaque(out, &f.opaque),
                    b'k' => encode::meta_key(out, key, f.base64),
                    // memcached returns c0 when nothing was stored.
                    b'c' => encode::meta_num(out, b'c', cas),
                    _ => {}
                }
            }
            encode::crlf(out);
        }
    }
}

fn meta_delete(shared: &Shared, key: &[u8], f: &MetaFlags, out: &mut BytesMut) {
    let stats = &shared.stats;
    let outcome = shared.topology.load().entry(key, |e| {
        let now = e.now_ms();
        let Some((kind, meta)) = e.item().map(|i| (i.kind(), *i.meta())) else {
            inc(&stats.delete_misses);
            return MetaOutcome::Code(MetaCode::NotFound, 0);
        };
        if f.compare_cas.is_some_and(|want| want != meta.cas) {
            inc(&stats.delete_misses);
            return MetaOutcome::Code(MetaCode::Exists, 0);
        }
        if !f.invalidate && !f.remove_value {
            e.remove();
            inc(&stats.delete_hits);
            return MetaOutcome::Code(MetaCode::Done, 0);
        }
        if kind != Kind::Str {
            return MetaOutcome::Code(MetaCode::NotFound, 0);
        }
        // Both keep the item and give it a new CAS: x empties the value, I only bumps the CAS
        // (an empty append keeps value, flags and expiry).
        let bumped = if f.remove_value {
            e.put(&[], meta.flags, meta.expire_at, None)
        } else {
            e.concat(&[], false)
        };
        if bumped.is_err() {
            return MetaOutcome::Error(Reply::OutOfMemory);
        }
        if let Some(mut m) = e.meta_mut() {
            if f.invalidate {
                m.stale = true;
                m.won = false;
                if let Some(ttl) = f.ttl {
                    m.expire_at = expire_at(ttl, now);
                }
            }
            if let Some(cas) = f.new_cas {
                m.cas = cas;
            }
        }
        MetaOutcome::Code(MetaCode::Done, 0)
    });
    if matches!(outcome, MetaOutcome::Code(MetaCode::Done, _)) {
        // md without I or x removes the item; with them it keeps a changed one.
        let (class, event) = if !f.invalidate && !f.remove_value {
            (notify::GENERIC, "del")
        } else {
            (notify::STRING, "set")
        };
        notify::memcache_event(shared, class, event, key);
    }
    match outcome {
        MetaOutcome::Error(reply) => encode::reply(out, reply),
        MetaOutcome::Code(MetaCode::Done, _) if f.quiet => {}
        MetaOutcome::Code(code, _) => meta_status(out, code, key, f),
    }
}

enum ArithOutcome {
    Code(MetaCode),
    Error(Reply),
    Value {
        n: u64,
        cas: u64,
        expire_at: u64,
        now: u64,
    },
}

fn meta_arith(shared: &Shared, key: &[u8], f: &MetaFlags, out: &mut BytesMut) {
    let incr = !matches!(f.mode, Some(b'D' | b'-'));
    let delta = f.delta.unwrap_or(1);
    let stats = &shared.stats;
    let (hits, misses) = if incr {
        (&stats.incr_hits, &stats.incr_misses)
    } else {
        (&stats.decr_hits, &stats.decr_misses)
    };
    let outcome = shared.topology.load().entry(key, |e| {
        let now = e.now_ms();
        let current: Option<(Kind, ItemMeta, usize, Option<u64>)> = e.item().map(|i| {
            (
                i.kind(),
                *i.meta(),
                i.value().len(),
                parse_counter(i.value()),
            )
        });
        let (n, flags, at, old_len) = match current {
            Some((Kind::Str, meta, old_len, number)) => {
                if old_len == 0 {
                    return ArithOutcome::Error(Reply::NonNumeric);
                }
                if f.compare_cas.is_some_and(|want| want != meta.cas) {
                    return ArithOutcome::Code(MetaCode::Exists);
                }
                let Some(number) = number else {
                    return ArithOutcome::Error(Reply::NonNumeric);
                };
                inc(hits);
                let at = f.ttl.map_or(meta.expire_at, |t| expire_at(t, now));
                (apply_delta(number, delta, incr), meta.flags, at, old_len)
            }
            // A container is never overwritten by vivification.
            Some(_) if f.vivify.is_some() => return ArithOutcome::Code(MetaCode::NotStored),
            None if f.vivify.is_some() => {
                let ttl = f.ttl.or(f.vivify).unwrap_or(0);
                (f.initial.unwrap_or(0), 0, expire_at(ttl, now), 0)
            }
            _ => {
                inc(misses);
                return ArithOutcome::Code(MetaCode::NotFound);
            }
        };
        match put_counter(e, n, old_len, flags, at, f.new_cas) {
            Ok(cas) => ArithOutcome::Value {
                n,
                cas,
                expire_at: at,
                now,
            },
            Err(_) => ArithOutcome::Error(Reply::OutOfMemory),
        }
    });
    if matches!(outcome, ArithOutcome::Value { .. }) {
        notify::memcache_event(shared, notify::STRING, "incrby", key);
    }
    match outcome {
        ArithOutcome::Error(reply) => encode::reply(out, reply),
        ArithOutcome::Code(code) => meta_status(out, code, key, f),
        ArithOutcome::Value { .. } if f.quiet => {}
        ArithOutcome::Value {
            n,
            cas,
            expire_at,
            now,
        } => {
            let mut digits = itoa::Buffer::new();
            let digits = digits.format(n).as_bytes();
            if f.value {
                encode::meta_value(out, digits.len());
            } else {
                encode::meta_code(out, MetaCode::Done);
            }
            for &flag in f.order() {
                match flag {
                    b'c' => encode::meta_num(out, b'c', cas),
                    b't' => encode::meta_ttl(out, ttl_secs(expire_at, now)),
                    b'O' => encode::meta_opaque(out, &f.opaque),
                    b'k' => encode::meta_key(out, key, f.base64),
                    _ => {}
                }
            }
            encode::crlf(out);
            if f.value {
                encode::data_block(out, digits);
            }
        }
    }
}

fn meta_debug(shared: &Shared, key: &[u8], base64: bool, out: &mut BytesMut) {
    let debug = shared.topology.load().entry(key, |e| {
        let now = e.now_ms();
        e.item().filter(|i| i.kind() == Kind::Str).map(|i| {
            let meta = i.meta();
            encode::Debug {
                exp: ttl_secs(meta.expire_at, now),
                la: since_access(shared, meta.atime, now),
                cas: meta.cas,
                fetched: meta.fetched,
                size: (key.len() + i.value().len()) as u64 + ITEM_OVERHEAD,
            }
        })
    });
    match debug {
        Some(debug) => encode::meta_debug(out, key, base64, debug),
        None => encode::reply(out, Reply::MetaMiss),
    }
}

fn stats(shared: &Shared, limits: &Limits, group: StatsGroup, out: &mut BytesMut) {
    let topology = shared.topology.load();
    let (mut items, mut used, mut max, mut total, mut evictions) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut expired_unfetched, mut evicted_unfetched) = (0u64, 0u64);
    for node in &topology.nodes {
        let s = node.stats();
        items += s.items;
        used += s.used_bytes;
        max += s.max_bytes;
        total += s.total_items;
        evictions += s.evictions;
        expired_unfetched += s.expired_unfetched;
        evicted_unfetched += s.evicted_unfetched;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let s = &shared.stats;
    match group {
        StatsGroup::General => {
            let now = shared.clock.now_ms() / 1000;
            encode::stat(out, "pid", u64::from(shared.pid));
            encode::stat(out, "uptime", now.saturating_sub(shared.started_unix));
            encode::stat(out, "time", now);
            encode::stat_str(out, "version", encode::VERSION);
            encode::stat(out, "pointer_size", u64::from(usize::BITS));
            encode::stat(out, "max_connections", u64::from(limits.max_connections));
            encode::stat(out, "curr_connections", get(&s.curr_connections));
            encode::stat(out, "total_connections", get(&s.total_connections));
            for (name, counter) in [
                ("cmd_get", &s.cmd_get),
                ("cmd_set", &s.cmd_set),
                ("cmd_flush", &s.cmd_flush),
                ("cmd_touch", &s.cmd_touch),
                ("get_hits", &s.get_hits),
                ("get_misses", &s.get_misses),
                ("get_expired", &s.get_expired),
                ("delete_misses", &s.delete_misses),
                ("delete_hits", &s.delete_hits),
                ("incr_misses", &s.incr_misses),
                ("incr_hits", &s.incr_hits),
                ("decr_misses", &s.decr_misses),
                ("decr_hits", &s.decr_hits),
                ("cas_misses", &s.cas_misses),
                ("cas_hits", &s.cas_hits),
                ("cas_badval", &s.cas_badval),
                ("touch_hits", &s.touch_hits),
                ("touch_misses", &s.touch_misses),
                ("bytes_read", &s.bytes_read),
                ("bytes_written", &s.bytes_written),
            ] {
                encode::stat(out, name, get(counter));
            }
            encode::stat(out, "limit_maxbytes", max);
            encode::stat(out, "threads", threads);
            encode::stat(out, "bytes", used);
            encode::stat(out, "curr_items", items);
            encode::stat(out, "total_items", total);
            encode::stat(out, "expired_unfetched", expired_unfetched);
            encode::stat(out, "evicted_unfetched", evicted_unfetched);
            encode::stat(out, "evictions", evictions);
        }
        StatsGroup::Settings => {
            encode::stat(out, "maxbytes", max);
            encode::stat(out, "maxconns", u64::from(limits.max_connections));
            encode::stat_str(out, "evictions", "on");
            encode::stat(out, "num_threads", threads);
            encode::stat_str(out, "cas_enabled", "yes");
            encode::stat(out, "item_size_max", limits.max_value_size);
            encode::stat(out, "idle_timeout", limits.idle_timeout.as_secs());
            encode::stat_str(out, "flush_enabled", "yes");
        }
    }
    encode::reply(out, Reply::End);
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_123;

    #[test]
    fn exptime_conversion() {
        assert_eq!(expire_at(0, NOW), NEVER);
        assert_eq!(expire_at(-1, NOW), EXPIRED);
        assert_eq!(expire_at(i64::MIN, NOW), EXPIRED);
        assert_eq!(expire_at(10, NOW), NOW + 10_000);
        assert_eq!(expire_at(RELATIVE_MAX_SECS, NOW), NOW + 2_592_000_000);
        // Past 30 days it is absolute unix time, possibly already past.
        assert_eq!(expire_at(RELATIVE_MAX_SECS + 1, NOW), 2_592_001_000);
        assert_eq!(expire_at(1_800_000_000, NOW), 1_800_000_000_000);
        assert_eq!(expire_at(i64::MAX, NOW), u64::MAX);
    }

    #[test]
    fn remaining_ttl_rounds_up() {
        assert_eq!(ttl_secs(NEVER, NOW), -1);
        assert_eq!(ttl_secs(NOW + 10_000, NOW), 10);
        assert_eq!(ttl_secs(NOW + 9_001, NOW), 10);
        assert_eq!(ttl_secs(NOW + 1, NOW), 1);
        assert_eq!(ttl_secs(NOW - 5, NOW), 0);
    }

    #[test]
    fn counters_parse_like_strtoull() {
        assert_eq!(parse_counter(b"12"), Some(12));
        assert_eq!(parse_counter(b"12 "), Some(12));
        assert_eq!(parse_counter(b" \t12"), Some(12));
        assert_eq!(parse_counter(b"+12"), Some(12));
        assert_eq!(parse_counter(b"12 ab"), Some(12));
        assert_eq!(parse_counter(b"-0"), Some(0));
        assert_eq!(parse_counter(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_counter(b"18446744073709551616"), None);
        assert_eq!(parse_counter(b"12ab"), None);
        assert_eq!(parse_counter(b"-1"), None);
        assert_eq!(parse_counter(b""), None);
        assert_eq!(parse_counter(b"  "), None);
    }

    #[test]
    fn deltas_wrap_up_and_floor_down() {
        assert_eq!(apply_delta(u64::MAX, 2, true), 1);
        assert_eq!(apply_delta(5, 10, false), 0);
        assert_eq!(apply_delta(5, 3, false), 2);
    }
}
