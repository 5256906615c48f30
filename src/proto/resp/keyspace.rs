//! Keyspace commands (redis's "generic" group): DEL/UNLINK, EXISTS, TOUCH, EXPIRE and its
//! variants, TTL/PTTL/EXPIRETIME/PEXPIRETIME, PERSIST, TYPE, KEYS, SCAN, RANDOMKEY, RENAME,
//! RENAMENX, COPY; OBJECT is routed on to `object`, SORT and SORT_RO to `sort`.
//!
//! Owns: these commands' semantics and replies, SCAN's MATCH/TYPE options. Must not touch:
//! framing, store internals, the string or container commands.
//!
//! Invariants:
//! - Multi-key DEL, EXISTS, TOUCH and UNLINK route each key on its own; RENAME, RENAMENX and
//!   COPY run through `types::with_keys`: atomic when both keys are on one node and no
//!   migration runs, key by key otherwise (README). A rename or copy wakes blocked poppers.
//! - SCAN (and KEYS) walk the keyspace with `route::scan`: the cursor stays valid across ring
//!   reloads and a full iteration returns every key that existed throughout, even while a
//!   migration moves keys (possibly some twice, which redis allows); this module only adds
//!   MATCH, TYPE and the reply. KEYS removes those duplicates.

use std::collections::HashSet;

use bytes::BytesMut;

use super::args::parse_cursor;
use super::args::parse_int;
use super::command::Command;
use super::conn::{Ctx, Reply};
use super::error::{RespError, store_error};
use super::frame::{
    Args, encode_array, encode_bulk, encode_int, encode_null, encode_ok, encode_simple, parse_i64,
};
use super::random::random_u64;
use super::types::with_keys;
use crate::persist::{rdb, snapshot};
use crate::route;
use crate::route::topology::Topology;
use crate::server::{Shared, Stats};
use crate::store::glob::glob;
use crate::store::{Container, Entry, Item, Kind, NEVER, StoreError};

/// Runs a keyspace command (its arity is checked).
pub(super) fn handle(cmd: Command, a: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) -> Reply {
    let v = cx.conn.version;
    let shared = cx.shared;
    match cmd {
        Command::Delete | Command::Unlink => {
            let topo = shared.topology.load();
            let mut n = 0;
            for key in a.iter_from(1) {
                let removed = topo.entry(key, |e| e.item().is_some() && e.remove());
                n += i64::from(removed);
                Stats::add(
                    if removed {
                        &shared.stats.delete_hits
                    } else {
                        &shared.stats.delete_misses
                    },
                    1,
                );
            }
            encode_int(out, n);
            Ok(())
        }
        Command::Exists => {
            let topo = shared.topology.load();
            let n = a
                .iter_from(1)
                .filter(|key| topo.entry(key, |e| e.item().is_some()))
                .count();
            encode_int(out, n as i64);
            Ok(())
        }
        Command::Touch => {
            let topo = shared.topology.load();
            let n = a
                .iter_from(1)
                .filter(|key| {
                    topo.entry(key, |e| {
                        let found = e.item().is_some();
                        e.mark_read();
                        found
                    })
                })
                .count();
            encode_int(out, n as i64);
            Ok(())
        }
        Command::Expire => expire(shared, a, 1000, false, "expire", out),
        Command::PExpire => expire(shared, a, 1, false, "pexpire", out),
        Command::ExpireAt => expire(shared, a, 1000, true, "expireat", out),
        Command::PExpireAt => expire(shared, a, 1, true, "pexpireat", out),
        Command::Ttl | Command::PTtl | Command::ExpireTime | Command::PExpireTime => {
            let (n, now) = shared.topology.load().entry(a.arg(1)?, |e| {
                (e.item().map(|i| i.meta().expire_at), e.now_ms())
            });
            let reply = match n {
                None => -2,
                Some(NEVER) => -1,
                Some(at) => {
                    let left = at.saturating_sub(now) as i64;
                    match cmd {
                        Command::Ttl => (left + 500) / 1000,
                        Command::PTtl => left,
                        Command::ExpireTime => (at as i64 + 500) / 1000,
                        _ => at as i64,
                    }
                }
            };
            encode_int(out, reply);
            Ok(())
        }
        Command::Persist => {
            let done = shared
                .topology
                .load()
                .entry(a.arg(1)?, |e| match e.meta_mut() {
                    Some(mut m) if m.expire_at != NEVER => {
                        m.expire_at = NEVER;
                        true
                    }
                    _ => false,
                });
            encode_int(out, i64::from(done));
            Ok(())
        }
        Command::Object => super::object::object(a, cx, out),
        Command::Sort | Command::SortRo => super::sort::handle(cmd, a, cx, out),
        Command::Type => {
            let kind = shared
                .topology
                .load()
                .entry(a.arg(1)?, |e| e.item().map(|i| i.kind()));
            encode_simple(out, type_name(kind).as_bytes());
            Ok(())
        }
        Command::Keys => {
            keys(shared, a.arg(1)?, out);
            Ok(())
        }
        Command::Scan => scan(shared, a, out),
        Command::RandomKey => {
            match random_key(&shared.topology.load()) {
                Some(k) => encode_bulk(out, &k),
                None => encode_null(out, v),
            }
            Ok(())
        }
        Command::Rename | Command::RenameNx => rename(shared, a, cmd == Command::RenameNx, out),
        Command::Copy => copy(shared, a, out),
        Command::Dump => {
            let payload = shared.topology.load().entry(a.arg(1)?, |e| {
                e.item().map(|i| rdb::dump(&snapshot::value_of(&i)))
            });
            match payload {
                Some(p) => encode_bulk(out, &p),
                None => encode_null(out, v),
            }
            Ok(())
        }
        Command::Restore => restore_command(shared, a, out),
        _ => Err(RespError::NotInGroup(cmd.wire())),
    }
}

fn type_name(kind: Option<Kind>) -> &'static str {
    match kind {
        None => "none",
        Some(Kind::Str) => "string",
        Some(Kind::Hash) => "hash",
        Some(Kind::List) => "list",
        Some(Kind::Set) => "set",
        Some(Kind::ZSet) => "zset",
        Some(Kind::Stream) => "stream",
    }
}

fn expire(
    shared: &Shared,
    a: &Args<'_>,
    unit: i64,
    absolute: bool,
    name: &'static str,
    out: &mut BytesMut,
) -> Reply {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in a.iter_from(3) {
        match opt.to_ascii_lowercase().as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            _ => {
                return Err(RespError::UnsupportedOption(
                    String::from_utf8_lossy(opt).into_owned(),
                ));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(RespError::ExpireNxAndOthers);
    }
    if gt && lt {
        return Err(RespError::ExpireGtAndLt);
    }
    let mut when = parse_int(a.arg(2)?)?;
    if unit == 1000 {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Err(RespError::InvalidExpire(name));
        }
        when *= 1000;
    }
    let now = shared.clock.now_ms() as i64;
    let base = if absolute { 0 } else { now };
    if when > i64::MAX - base {
        return Err(RespError::InvalidExpire(name));
    }
    when += base;
    let done = shared.topology.load().entry(a.arg(1)?, |e| {
        let Some(current) = e.item().map(|i| i.meta().expire_at) else {
            return false;
        };
        let persistent = current == NEVER;
        let cur = current as i64;
        if (nx && !persistent)
            || (xx && persistent)
            || (gt && (persistent || when <= cur))
            || (lt && !persistent && when >= cur)
        {
            return false;
        }
        if when <= e.now_ms() as i64 {
            e.remove();
        } else if let Some(mut m) = e.meta_mut() {
            m.expire_at = when as u64;
        }
        true
    });
    encode_int(out, i64::from(done));
    Ok(())
}

/// A copy of an item's value and expiry, to write it under another key.
enum Snapshot {
    Str(Vec<u8>, u32, u64),
    Container(Container, u64),
}

fn snapshot(item: &Item<'_>) -> Snapshot {
    let at = item.meta().expire_at;
    match item.container() {
        Some(c) => Snapshot::Container(c.clone(), at),
        None => Snapshot::Str(item.value().to_vec(), item.meta().flags, at),
    }
}

fn restore(e: &mut Entry<'_>, snap: Snapshot) -> Result<(), StoreError> {
    match snap {
        Snapshot::Str(v, flags, at) => e.put(&[&v], flags, at, None).map(|_| ()),
        Snapshot::Container(c, at) => e.put_container(c, at).map(|_| ()),
    }
}

fn rename(shared: &Shared, a: &Args<'_>, nx: bool, out: &mut BytesMut) -> Reply {
    let (src, dst) = (a.arg(1)?, a.arg(2)?);
    let topo = shared.topology.load();
    let stored = with_keys(&topo, &[src, dst], |acc| {
        let Some(snap) = acc.entry(src, |e| e.item().map(|i| snapshot(&i))) else {
            return Err(RespError::NoSuchKey);
        };
        if src == dst {
            return Ok(!nx);
        }
        let stored = acc
            .entry(dst, |e| {
                if nx && e.item().is_some() {
                    return Ok(false);
                }
                restore(e, snap).map(|()| true)
            })
            .map_err(store_error)?;
        if stored {
            acc.entry(src, |e| e.remove());
        }
        Ok(stored)
    })?;
    if stored {
        shared.waiters.notify(dst);
    }
    if nx {
        encode_int(out, i64::from(stored));
    } else {
        encode_ok(out);
    }
    Ok(())
}

fn copy(shared: &Shared, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let (src, dst) = (a.arg(1)?, a.arg(2)?);
    let mut replace = false;
    let mut j = 3;
    while j < a.len() {
        let opt = a.arg(j)?;
        if opt.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if opt.eq_ignore_ascii_case(b"db") && j + 1 < a.len() {
            let db = parse_i64(a.arg(j + 1)?)
                .filter(|n| i32::try_from(*n).is_ok())
                .ok_or_else(|| RespError::NotInteger)?;
            if db != 0 {
                return Err(RespError::DbOutOfRange);
            }
            j += 1;
        } else {
            return Err(RespError::Syntax);
        }
        j += 1;
    }
    if src == dst {
        return Err(RespError::SameObject);
    }
    let topo = shared.topology.load();
    let stored = with_keys(&topo, &[src, dst], |acc| {
        let Some(snap) = acc.entry(src, |e| e.item().map(|i| snapshot(&i))) else {
            return Ok(false);
        };
        acc.entry(dst, |e| {
            if !replace && e.item().is_some() {
                return Ok(false);
            }
            restore(e, snap).map(|()| true)
        })
    })
    .map_err(store_error)?;
    if stored {
        shared.waiters.notify(dst);
    }
    encode_int(out, i64::from(stored));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// SCAN, KEYS, RANDOMKEY

fn scan(shared: &Shared, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let cursor = parse_cursor(a.arg(1)?).ok_or_else(|| RespError::InvalidCursor)?;
    let mut count: i64 = 10;
    let (mut pattern, mut type_filter): (Option<&[u8]>, Option<&[u8]>) = (None, None);
    let mut j = 2;
    while j < a.len() {
        let opt = a.arg(j)?;
        let more = j + 1 < a.len();
        if opt.eq_ignore_ascii_case(b"count") && more {
            count = parse_int(a.arg(j + 1)?)?;
            if count < 1 {
                return Err(RespError::Syntax);
            }
        } else if opt.eq_ignore_ascii_case(b"match") && more {
            pattern = Some(a.arg(j + 1)?).filter(|p| *p != b"*");
        } else if opt.eq_ignore_ascii_case(b"type") && more {
            type_filter = Some(a.arg(j + 1)?);
        } else {
            return Err(RespError::Syntax);
        }
        j += 2;
    }
    let budget = usize::try_from(count).unwrap_or(usize::MAX).min(1 << 20);
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let next = route::scan::scan(&shared.topology.load(), cursor, budget, |k, item| {
        if pattern.is_some_and(|p| !glob(p, k)) {
            return;
        }
        if type_filter
            .is_some_and(|t| !t.eq_ignore_ascii_case(type_name(Some(item.kind())).as_bytes()))
        {
            return;
        }
        keys.push(k.to_vec());
    });
    encode_array(out, 2);
    encode_bulk(out, itoa::Buffer::new().format(next).as_bytes());
    encode_array(out, keys.len());
    for k in &keys {
        encode_bulk(out, k);
    }
    Ok(())
}

/// KEYS: a whole SCAN iteration in one request (so it has SCAN's guarantee across a
/// migration), with the duplicates SCAN may return removed, as KEYS never repeats a key.
fn keys(shared: &Shared, pattern: &[u8], out: &mut BytesMut) {
    let topo = shared.topology.load();
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut unique: HashSet<Vec<u8>> = HashSet::new();
    let mut cursor = 0;
    loop {
        cursor = route::scan::scan(&topo, cursor, 1024, |k, _| {
            if glob(pattern, k) && !unique.contains(k) {
                unique.insert(k.to_vec());
                keys.push(k.to_vec());
            }
        });
        if cursor == 0 {
            break;
        }
    }
    encode_array(out, keys.len());
    for k in &keys {
        encode_bulk(out, k);
    }
}

fn random_key(topo: &Topology) -> Option<Vec<u8>> {
    // Draining nodes too: during a migration they still hold keys of the keyspace.
    let nodes = topo.holders();
    let total: u64 = nodes.iter().map(|n| n.len()).sum();
    if total == 0 {
        return None;
    }
    // A node by its share of the items, then a random item of it; every node after it in
    // turn if it holds only expired items.
    let mut pick = random_u64() % total;
    let start = nodes
        .iter()
        .position(|n| {
            if pick < n.len() {
                true
            } else {
                pick -= n.len();
                false
            }
        })
        .unwrap_or(0);
    let r = random_u64();
    let mut found = None;
    (0..nodes.len())
        .any(|i| nodes[(start + i) % nodes.len()].random_item(r, |k, _| found = Some(k.to_vec())));
    found
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f] (IDLETIME and FREQ are
/// checked and ignored: SIEVE keeps no idle time or frequency).
fn restore_command(shared: &Shared, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let key = a.arg(1)?;
    let ttl = parse_i64(a.arg(2)?).ok_or_else(|| RespError::NotInteger)?;
    let (mut replace, mut absttl) = (false, false);
    let mut j = 4;
    while j < a.len() {
        let opt = a.arg(j)?;
        if opt.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if opt.eq_ignore_ascii_case(b"absttl") {
            absttl = true;
        } else if (opt.eq_ignore_ascii_case(b"idletime") || opt.eq_ignore_ascii_case(b"freq"))
            && j + 1 < a.len()
        {
            j += 1;
            let n = parse_i64(a.arg(j)?).ok_or_else(|| RespError::NotInteger)?;
            if n < 0 {
                return Err(if opt.eq_ignore_ascii_case(b"freq") {
                    RespError::FreqOutOfRange
                } else {
                    RespError::IdleTimeNegative
                });
            }
            if opt.eq_ignore_ascii_case(b"freq") && n > 255 {
                return Err(RespError::FreqOutOfRange);
            }
        } else {
            return Err(RespError::Syntax);
        }
        j += 1;
    }
    if ttl < 0 {
        return Err(RespError::InvalidTtl);
    }
    let topology = shared.topology.load();
    // redis checks the key before the payload.
    if !replace && topology.entry(key, |e| e.item().is_some()) {
        return Err(RespError::BusyKey);
    }
    let value = rdb::restore(a.arg(3)?).map_err(|_| RespError::BadPayload)?;
    topology.entry(key, |e| {
        if !replace && e.item().is_some() {
            return Err(RespError::BusyKey);
        }
        let now = e.now_ms();
        let expire_at = match (ttl, absttl) {
            (0, _) => NEVER,
            (t, true) => t as u64,
            (t, false) => now.saturating_add(t as u64),
        };
        if expire_at != NEVER && expire_at <= now {
            // Already expired (an ABSTTL in the past): redis deletes the key and answers OK.
            e.remove();
            return Ok(());
        }
        snapshot::store(e, value, 0, expire_at).map_err(store_error)
    })?;
    encode_ok(out);
    Ok(())
}
