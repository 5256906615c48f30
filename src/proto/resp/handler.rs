//! Executes RESP commands against the topology and writes the replies.
//!
//! Owns: command semantics (option parsing, redis-server 7.0's checks in redis's order, expiry
//! arithmetic in unix ms), the per-connection state ([`Conn`]: protocol version, name, id),
//! INFO/CONFIG/CLIENT/COMMAND replies, SCAN's MATCH/TYPE options, and glob matching.
//! Must not touch: sockets, framing, the `ArcSwap`s (only `load()`), store internals.
//!
//! Invariants:
//! - The topology is loaded once per request; every key is routed with `Topology::entry` on
//!   that snapshot, one `Entry` closure per key, so a read-modify-write of one key is atomic.
//! - Multi-key commands (MGET, MSET, DEL, EXISTS, TOUCH, UNLINK) route each key on its own and
//!   answer in argument order. Commands that need several keys at once (RENAME, RENAMENX, COPY,
//!   MSETNX, and the container commands in `types`) run through `types::with_keys`: atomic
//!   when every key is on one node and no migration runs, key by key otherwise (README).
//! - GET/SET and the other single-key string paths allocate nothing of their own: values are
//!   written from the entry straight into `out`, numbers are formatted on the stack.
//! - Redis strings and memcached items are the same items: a RESP write stores flags 0 and gets
//!   a new CAS (APPEND, SETRANGE, INCR* and RENAME keep the item's flags); containers (hash,
//!   list, set, zset) answer WRONGTYPE to string commands and are reported by TYPE.
//!
//! SCAN (and KEYS) walk the keyspace with `route::scan`: the cursor stays valid across ring
//! reloads and a full iteration returns every key that existed throughout, even while a
//! migration moves keys (possibly some twice, which redis allows); this module only adds
//! MATCH, TYPE and the reply. KEYS removes those duplicates.

use std::cell::Cell;
use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;

use super::acl;
use super::command::{self, Command};
use super::error::RespError;
use super::float::LongDouble;
use super::frame::{
    Args, Version, encode_array, encode_bulk, encode_error, encode_int, encode_map, encode_null,
    encode_null_array, encode_ok, encode_set, encode_simple, encode_verbatim, parse_i64,
};
use super::types::{Access, with_keys};
use crate::config::Limits;
use crate::proto::Flow;
use crate::route;
use crate::route::topology::Topology;
use crate::server::{Shared, Stats};
use crate::store::{Container, Entry, Item, Kind, NEVER, StoreError};

/// The redis version this server answers as (clients gate features on it).
pub const REDIS_VERSION: &str = "7.0.15";

/// Source of client ids (CLIENT ID), process-wide like redis's.
static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

/// Per-connection state.
#[derive(Debug)]
pub struct Conn {
    /// CLIENT ID.
    pub id: u64,
    /// HELLO protocol version.
    pub version: Version,
    /// CLIENT SETNAME.
    pub name: Option<Box<[u8]>>,
    /// CLIENT SETINFO LIB-NAME.
    pub lib_name: Option<Box<[u8]>>,
    /// CLIENT SETINFO LIB-VER.
    pub lib_ver: Option<Box<[u8]>>,
    /// The peer's and our address, when known.
    pub peer: Option<SocketAddr>,
    /// Our address, when known.
    pub local: Option<SocketAddr>,
    /// Unix ms the connection started.
    pub created_ms: u64,
    /// Commands run since the last flush into `Stats`.
    pub commands: u64,
    /// Wire name of the last command (CLIENT INFO `cmd=`).
    pub last: &'static str,
    /// The command `handle` just ran (None: not a known command), for per-command metrics.
    pub current: Option<Command>,
    /// Set while a blocking pop waits (see `types::blocking`).
    pub blocked: Option<Box<super::types::blocking::Blocked>>,
    /// What this connection may run (see `acl`); everything when auth is off.
    pub access: crate::auth::Access,
}

impl Conn {
    /// State for a new connection.
    pub fn new(peer: Option<SocketAddr>, local: Option<SocketAddr>, now_ms: u64) -> Conn {
        Conn {
            id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
            version: Version::Resp2,
            name: None,
            lib_name: None,
            lib_ver: None,
            peer,
            local,
            created_ms: now_ms,
            commands: 0,
            last: "NULL",
            current: None,
            blocked: None,
            access: crate::auth::Access::ALL,
        }
    }
}

/// Everything one request may use.
pub struct Ctx<'a> {
    /// Shared server state.
    pub shared: &'a Shared,
    /// Limits in force for this batch.
    pub limits: &'a Limits,
    /// This connection.
    pub conn: &'a mut Conn,
}

pub(super) type Reply = Result<(), RespError>;

/// Handles one request (non-empty `args`), appending its reply to `out`.
pub fn handle(args: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) -> Flow {
    cx.conn.commands += 1;
    let (cmd, sub) = match command::parse(args) {
        Ok(c) => c,
        Err(e) => {
            cx.conn.current = None;
            encode_error(out, &e);
            return Flow::Continue;
        }
    };
    cx.conn.last = cmd.wire();
    cx.conn.current = Some(cmd);
    if let Err(e) = acl::check(cmd, cx.conn.access) {
        encode_error(out, &e);
        return Flow::Continue;
    }
    let mut flow = Flow::Continue;
    if let Err(e) = dispatch(cmd, sub, args, cx, out, &mut flow) {
        encode_error(out, &e);
    }
    flow
}

fn dispatch(
    cmd: Command,
    sub: Option<&'static str>,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    flow: &mut Flow,
) -> Reply {
    let v = cx.conn.version;
    let shared = cx.shared;
    match cmd {
        Command::Get => get(shared, a.get(1), v, out),
        Command::Set => set(cx, a, out),
        Command::Ping => {
            match a.len() {
                1 => encode_simple(out, b"PONG"),
                2 => encode_bulk(out, a.get(1)),
                _ => return Err(RespError::WrongArity("ping")),
            }
            Ok(())
        }
        Command::Echo => {
            encode_bulk(out, a.get(1));
            Ok(())
        }
        Command::Hello => hello(cx, a, out),
        Command::Auth => auth(cx, a, out),
        Command::Select => {
            let db = parse_int(a.get(1))?;
            if db != 0 {
                return Err(RespError::DbOutOfRange);
            }
            encode_ok(out);
            Ok(())
        }
        Command::Quit => {
            encode_ok(out);
            *flow = Flow::Close;
            Ok(())
        }
        Command::Reset => {
            cx.conn.version = Version::Resp2;
            cx.conn.name = None;
            encode_simple(out, b"RESET");
            Ok(())
        }
        Command::Client => client(cx, sub, a, out),
        Command::CommandInfo => command_info(sub, a, v, out),
        Command::Info => info(cx, a, out),
        Command::DbSize => {
            let topo = shared.topology.load();
            encode_int(out, topo.nodes.iter().map(|n| n.len()).sum::<u64>() as i64);
            Ok(())
        }
        Command::FlushDb | Command::FlushAll => {
            let ok = match a.len() {
                1 => true,
                2 => {
                    a.get(1).eq_ignore_ascii_case(b"sync")
                        || a.get(1).eq_ignore_ascii_case(b"async")
                }
                _ => false,
            };
            if !ok {
                return Err(RespError::Syntax);
            }
            // Every node that may hold keys, draining ones included (see `Topology::flush`).
            shared.topology.load().flush(0);
            Stats::add(&shared.stats.cmd_flush, 1);
            encode_ok(out);
            Ok(())
        }
        Command::Time => {
            let micros = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros());
            encode_array(out, 2);
            let mut buf = itoa::Buffer::new();
            encode_bulk(out, buf.format((micros / 1_000_000) as u64).as_bytes());
            encode_bulk(out, buf.format((micros % 1_000_000) as u64).as_bytes());
            Ok(())
        }
        Command::Config => config(cx, sub, a, out),
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
            let (n, now) = shared.topology.load().entry(a.get(1), |e| {
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
                .entry(a.get(1), |e| match e.meta_mut() {
                    Some(m) if m.expire_at != NEVER => {
                        m.expire_at = NEVER;
                        true
                    }
                    _ => false,
                });
            encode_int(out, i64::from(done));
            Ok(())
        }
        Command::Type => {
            let kind = shared
                .topology
                .load()
                .entry(a.get(1), |e| e.item().map(|i| i.kind()));
            encode_simple(out, type_name(kind).as_bytes());
            Ok(())
        }
        Command::Keys => {
            keys(shared, a.get(1), out);
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
        Command::SetNx => {
            let (key, value) = (a.get(1), a.get(2));
            check_size(cx.limits, value.len())?;
            let r = shared.topology.load().entry(key, |e| {
                if e.item().is_some() {
                    return Ok(false);
                }
                e.put(&[value], 0, NEVER, None).map(|_| true)
            });
            Stats::add(&shared.stats.cmd_set, 1);
            encode_int(out, i64::from(r.map_err(store_error)?));
            Ok(())
        }
        Command::SetEx | Command::PSetEx => {
            let unit = if cmd == Command::SetEx { 1000 } else { 1 };
            let at = expire_arg(a.get(2), unit, true, shared.clock.now_ms(), cmd.wire())?;
            let value = a.get(3);
            check_size(cx.limits, value.len())?;
            shared
                .topology
                .load()
                .entry(a.get(1), |e| e.put(&[value], 0, at, None))
                .map_err(store_error)?;
            Stats::add(&shared.stats.cmd_set, 1);
            encode_ok(out);
            Ok(())
        }
        Command::MultiGet => {
            let topo = shared.topology.load();
            let mark = out.len();
            encode_array(out, a.len() - 1);
            for key in a.iter_from(1) {
                if (out.len() - mark) as u64 > cx.limits.max_output_buffer {
                    // The session closes the connection; stop building a reply nobody gets.
                    break;
                }
                let hit = topo.entry(key, |e| match e.item() {
                    Some(i) if i.kind() == Kind::Str => {
                        encode_bulk(out, i.value());
                        e.mark_read();
                        true
                    }
                    _ => {
                        e.record_miss();
                        false
                    }
                });
                if !hit {
                    encode_null(out, v);
                }
                count_read(shared, hit);
            }
            Ok(())
        }
        Command::MultiSet | Command::MultiSetNx => {
            if a.len() % 2 == 0 {
                return Err(RespError::WrongArity(cmd.wire()));
            }
            for i in (2..a.len()).step_by(2) {
                check_size(cx.limits, a.get(i).len())?;
            }
            let topo = shared.topology.load();
            let keys: Vec<&[u8]> = (1..a.len()).step_by(2).map(|i| a.get(i)).collect();
            let set = |acc: &mut Access<'_, '_>| {
                if cmd == Command::MultiSetNx
                    && keys.iter().any(|k| acc.entry(k, |e| e.item().is_some()))
                {
                    return Ok(false);
                }
                for i in (1..a.len()).step_by(2) {
                    let value = a.get(i + 1);
                    acc.entry(a.get(i), |e| e.put(&[value], 0, NEVER, None))
                        .map_err(store_error)?;
                    Stats::add(&shared.stats.cmd_set, 1);
                }
                Ok(true)
            };
            // MSETNX is all-or-nothing: atomic when its keys share a node. MSET needs no
            // atomicity across keys beyond each SET's (and takes the cheaper path).
            let done = if cmd == Command::MultiSetNx {
                with_keys(&topo, &keys, set)?
            } else {
                set(&mut Access::Routed(&topo))?
            };
            if !done {
                encode_int(out, 0);
                return Ok(());
            }
            if cmd == Command::MultiSet {
                encode_ok(out);
            } else {
                encode_int(out, 1);
            }
            Ok(())
        }
        Command::GetSet => {
            let value = a.get(2);
            check_size(cx.limits, value.len())?;
            shared.topology.load().entry(a.get(1), |e| {
                write_old_value(e, out, v)?;
                e.put(&[value], 0, NEVER, None).map_err(store_error)?;
                Ok(())
            })
        }
        Command::GetDelete => shared.topology.load().entry(a.get(1), |e| {
            if write_old_value(e, out, v)? {
                e.remove();
            }
            Ok(())
        }),
        Command::GetEx => getex(shared, a, v, out),
        Command::Append => {
            let data = a.get(2);
            let limits = cx.limits;
            let len = shared.topology.load().entry(a.get(1), |e| {
                let old = string_len(e)?;
                check_size(limits, old + data.len())?;
                e.concat(data, false).map_err(store_error)?;
                Ok(old + data.len())
            })?;
            encode_int(out, len as i64);
            Ok(())
        }
        Command::StrLen => {
            let len = shared.topology.load().entry(a.get(1), |e| string_len(e))?;
            encode_int(out, len as i64);
            Ok(())
        }
        Command::Incr => incr_by(shared, a.get(1), 1, out),
        Command::Decr => incr_by(shared, a.get(1), -1, out),
        Command::IncrBy => incr_by(shared, a.get(1), parse_int(a.get(2))?, out),
        Command::DecrBy => {
            let by = parse_int(a.get(2))?;
            if by == i64::MIN {
                return Err(RespError::DecrementOverflow);
            }
            incr_by(shared, a.get(1), -by, out)
        }
        Command::IncrByFloat => incr_by_float(shared, cx.limits, a, out),
        Command::GetRange | Command::Substr => getrange(shared, a, out),
        Command::SetRange => setrange(shared, cx.limits, a, out),
        _ => super::types::dispatch(cmd, a, cx, out, flow),
    }
}

/// Counts a keyspace read.
fn count_read(shared: &Shared, hit: bool) {
    let s = &shared.stats;
    Stats::add(&s.cmd_get, 1);
    Stats::add(if hit { &s.get_hits } else { &s.get_misses }, 1);
}

pub(super) fn store_error(e: StoreError) -> RespError {
    match e {
        StoreError::WrongType => RespError::WrongType,
        StoreError::OutOfMemory => RespError::OutOfMemory,
    }
}

pub(super) fn check_size(limits: &Limits, len: usize) -> Reply {
    if len as u64 > limits.max_value_size {
        return Err(RespError::StringTooLong);
    }
    Ok(())
}

/// redis `getLongLongFromObjectOrReply`.
pub(super) fn parse_int(s: &[u8]) -> Result<i64, RespError> {
    parse_i64(s).ok_or(RespError::NotInteger)
}

fn type_name(kind: Option<Kind>) -> &'static str {
    match kind {
        None => "none",
        Some(Kind::Str) => "string",
        Some(Kind::Hash) => "hash",
        Some(Kind::List) => "list",
        Some(Kind::Set) => "set",
        Some(Kind::ZSet) => "zset",
    }
}

/// Length of the live string, 0 if absent, WRONGTYPE for containers.
fn string_len(e: &Entry<'_>) -> Result<usize, RespError> {
    match e.item() {
        None => Ok(0),
        Some(i) if i.kind() == Kind::Str => Ok(i.value().len()),
        Some(_) => Err(RespError::WrongType),
    }
}

/// Writes the current string value (or null); WRONGTYPE for containers. True if a value was
/// written.
fn write_old_value(e: &mut Entry<'_>, out: &mut BytesMut, v: Version) -> Result<bool, RespError> {
    match e.item() {
        None => {
            encode_null(out, v);
            Ok(false)
        }
        Some(i) if i.kind() == Kind::Str => {
            encode_bulk(out, i.value());
            Ok(true)
        }
        Some(_) => Err(RespError::WrongType),
    }
}

fn get(shared: &Shared, key: &[u8], v: Version, out: &mut BytesMut) -> Reply {
    let hit = shared.topology.load().entry(key, |e| match e.item() {
        None => {
            e.record_miss();
            Ok(false)
        }
        Some(i) if i.kind() == Kind::Str => {
            encode_bulk(out, i.value());
            e.mark_read();
            Ok(true)
        }
        Some(_) => Err(RespError::WrongType),
    })?;
    if !hit {
        encode_null(out, v);
    }
    count_read(shared, hit);
    Ok(())
}

/// An expiry argument: a number in `unit` ms, relative (EX/PX) or absolute (EXAT/PXAT).
/// redis `getExpireMillisecondsOrReply`: must be > 0 and must not overflow.
fn expire_arg(
    s: &[u8],
    unit: i64,
    relative: bool,
    now_ms: u64,
    cmd: &'static str,
) -> Result<u64, RespError> {
    let n = parse_int(s)?;
    if n <= 0 || (unit == 1000 && n > i64::MAX / 1000) {
        return Err(RespError::InvalidExpire(cmd));
    }
    let mut ms = n * unit;
    if relative {
        ms = ms
            .checked_add(now_ms as i64)
            .ok_or(RespError::InvalidExpire(cmd))?;
    }
    Ok(ms as u64)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpireOpt {
    None,
    Keep,
    Persist,
    At(u64),
}

fn set(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let shared = cx.shared;
    let (key, value) = (a.get(1), a.get(2));
    let (mut nx, mut xx, mut want_get) = (false, false, false);
    let mut keep_ttl = false;
    // (unit ms, relative, argument) of EX/PX/EXAT/PXAT.
    let mut expire: Option<(i64, bool, &[u8])> = None;
    let mut j = 3;
    while j < a.len() {
        let opt = a.get(j);
        let next = (j + 1 < a.len()).then(|| a.get(j + 1));
        let is = |name: &str| opt.eq_ignore_ascii_case(name.as_bytes());
        if is("nx") && !xx {
            nx = true;
        } else if is("xx") && !nx {
            xx = true;
        } else if is("get") {
            want_get = true;
        } else if is("keepttl") && expire.is_none() {
            keep_ttl = true;
        } else if let (Some(arg), Some((unit, rel))) = (
            next,
            match () {
                _ if is("ex") => Some((1000, true)),
                _ if is("px") => Some((1, true)),
                _ if is("exat") => Some((1000, false)),
                _ if is("pxat") => Some((1, false)),
                _ => None,
            },
        ) {
            if keep_ttl || expire.is_some_and(|(u, r, _)| (u, r) != (unit, rel)) {
                return Err(RespError::Syntax);
            }
            expire = Some((unit, rel, arg));
            j += 1;
        } else {
            return Err(RespError::Syntax);
        }
        j += 1;
    }
    let at = match expire {
        Some((unit, rel, arg)) => {
            ExpireOpt::At(expire_arg(arg, unit, rel, shared.clock.now_ms(), "set")?)
        }
        None if keep_ttl => ExpireOpt::Keep,
        None => ExpireOpt::None,
    };
    check_size(cx.limits, value.len())?;
    let v = cx.conn.version;
    Stats::add(&shared.stats.cmd_set, 1);
    shared.topology.load().entry(key, |e| {
        let current = e.item().map(|i| (i.kind(), i.meta().expire_at));
        if want_get {
            write_old_value(e, out, v)?;
        }
        let found = current.is_some();
        if (nx && found) || (xx && !found) {
            if !want_get {
                encode_null(out, v);
            }
            return Ok(());
        }
        let expire_at = match at {
            ExpireOpt::At(t) => t,
            ExpireOpt::Keep => current.map_or(NEVER, |(_, t)| t),
            ExpireOpt::None | ExpireOpt::Persist => NEVER,
        };
        e.put(&[value], 0, expire_at, None).map_err(store_error)?;
        if !want_get {
            encode_ok(out);
        }
        Ok(())
    })
}

fn getex(shared: &Shared, a: &Args<'_>, v: Version, out: &mut BytesMut) -> Reply {
    let mut opt = ExpireOpt::None;
    let mut expire: Option<(i64, bool, &[u8])> = None;
    let mut j = 2;
    while j < a.len() {
        let o = a.get(j);
        let next = (j + 1 < a.len()).then(|| a.get(j + 1));
        let is = |name: &str| o.eq_ignore_ascii_case(name.as_bytes());
        let kind = match () {
            _ if is("ex") => Some((1000, true)),
            _ if is("px") => Some((1, true)),
            _ if is("exat") => Some((1000, false)),
            _ if is("pxat") => Some((1, false)),
            _ => None,
        };
        if is("persist") && expire.is_none() {
            opt = ExpireOpt::Persist;
        } else if let (Some(arg), Some((unit, rel))) = (next, kind) {
            if opt == ExpireOpt::Persist || expire.is_some_and(|(u, r, _)| (u, r) != (unit, rel)) {
                return Err(RespError::Syntax);
            }
            expire = Some((unit, rel, arg));
            j += 1;
        } else {
            return Err(RespError::Syntax);
        }
        j += 1;
    }
    let now = shared.clock.now_ms();
    let mut absolute = false;
    if let Some((unit, rel, arg)) = expire {
        opt = ExpireOpt::At(expire_arg(arg, unit, rel, now, "getex")?);
        absolute = !rel;
    }
    let hit = shared.topology.load().entry(a.get(1), |e| {
        if !write_old_value(e, out, v)? {
            e.record_miss();
            return Ok(false);
        }
        e.mark_read();
        match opt {
            ExpireOpt::At(t) if absolute && t <= e.now_ms() => {
                e.remove();
            }
            ExpireOpt::At(t) => {
                if let Some(m) = e.meta_mut() {
                    m.expire_at = t;
                }
            }
            ExpireOpt::Persist => {
                if let Some(m) = e.meta_mut() {
                    m.expire_at = NEVER;
                }
            }
            _ => {}
        }
        Ok(true)
    })?;
    count_read(shared, hit);
    Ok(())
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
    let mut when = parse_int(a.get(2))?;
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
    let done = shared.topology.load().entry(a.get(1), |e| {
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
        } else if let Some(m) = e.meta_mut() {
            m.expire_at = when as u64;
        }
        true
    });
    encode_int(out, i64::from(done));
    Ok(())
}

fn incr_by(shared: &Shared, key: &[u8], by: i64, out: &mut BytesMut) -> Reply {
    let n = shared.topology.load().entry(key, |e| {
        let (old, at, flags) = match e.item() {
            None => (0, NEVER, 0),
            Some(i) if i.kind() == Kind::Str => (
                parse_i64(i.value()).ok_or(RespError::NotInteger)?,
                i.meta().expire_at,
                i.meta().flags,
            ),
            Some(_) => return Err(RespError::WrongType),
        };
        let n = old.checked_add(by).ok_or(RespError::Overflow)?;
        let mut buf = itoa::Buffer::new();
        e.put(&[buf.format(n).as_bytes()], flags, at, None)
            .map_err(store_error)?;
        Ok(n)
    })?;
    encode_int(out, n);
    Ok(())
}

fn incr_by_float(shared: &Shared, limits: &Limits, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let by = LongDouble::parse(a.get(2)).ok_or(RespError::NotFloat)?;
    let text = shared.topology.load().entry(a.get(1), |e| {
        let (old, at, flags) = match e.item() {
            None => (
                LongDouble::parse(b"0").ok_or(RespError::NotFloat)?,
                NEVER,
                0,
            ),
            Some(i) if i.kind() == Kind::Str => (
                LongDouble::parse(i.value()).ok_or(RespError::NotFloat)?,
                i.meta().expire_at,
                i.meta().flags,
            ),
            Some(_) => return Err(RespError::WrongType),
        };
        let sum = old.plus(by);
        if sum.is_nan_or_infinite() {
            return Err(RespError::NanOrInfinity);
        }
        let text = sum.format_human();
        check_size(limits, text.len())?;
        e.put(&[text.as_bytes()], flags, at, None)
            .map_err(store_error)?;
        Ok(text)
    })?;
    encode_bulk(out, text.as_bytes());
    Ok(())
}

fn getrange(shared: &Shared, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let (mut start, mut end) = (parse_int(a.get(2))?, parse_int(a.get(3))?);
    shared.topology.load().entry(a.get(1), |e| {
        let value = match e.item() {
            None => &[][..],
            Some(i) if i.kind() == Kind::Str => i.value(),
            Some(_) => return Err(RespError::WrongType),
        };
        let len = value.len() as i64;
        if start < 0 && end < 0 && start > end {
            encode_bulk(out, b"");
            return Ok(());
        }
        if start < 0 {
            start += len;
        }
        if end < 0 {
            end += len;
        }
        start = start.max(0);
        end = end.max(0);
        if end >= len {
            end = len - 1;
        }
        if start > end || len == 0 {
            encode_bulk(out, b"");
        } else {
            encode_bulk(out, &value[start as usize..=end as usize]);
        }
        Ok(())
    })
}

fn setrange(shared: &Shared, limits: &Limits, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let offset = parse_int(a.get(2))?;
    if offset < 0 {
        return Err(RespError::OffsetOutOfRange);
    }
    let data = a.get(3);
    let len = shared.topology.load().entry(a.get(1), |e| {
        let (old, flags, at) = match e.item() {
            None => (&[][..], 0, NEVER),
            Some(i) if i.kind() == Kind::Str => (i.value(), i.meta().flags, i.meta().expire_at),
            Some(_) => return Err(RespError::WrongType),
        };
        if data.is_empty() {
            return Ok(old.len());
        }
        let end = (offset as u64).saturating_add(data.len() as u64);
        if end > limits.max_value_size {
            return Err(RespError::StringTooLong);
        }
        let end = end as usize;
        let mut value = old.to_vec();
        if value.len() < end {
            value.resize(end, 0);
        }
        value[offset as usize..end].copy_from_slice(data);
        e.put(&[&value], flags, at, None).map_err(store_error)?;
        Ok(value.len())
    })?;
    encode_int(out, len as i64);
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
    let (src, dst) = (a.get(1), a.get(2));
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
    let (src, dst) = (a.get(1), a.get(2));
    let mut replace = false;
    let mut j = 3;
    while j < a.len() {
        let opt = a.get(j);
        if opt.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if opt.eq_ignore_ascii_case(b"db") && j + 1 < a.len() {
            let db = parse_i64(a.get(j + 1))
                .filter(|n| i32::try_from(*n).is_ok())
                .ok_or(RespError::NotInteger)?;
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
    let cursor = parse_cursor(a.get(1)).ok_or(RespError::InvalidCursor)?;
    let mut count: i64 = 10;
    let (mut pattern, mut type_filter): (Option<&[u8]>, Option<&[u8]>) = (None, None);
    let mut j = 2;
    while j < a.len() {
        let opt = a.get(j);
        let more = j + 1 < a.len();
        if opt.eq_ignore_ascii_case(b"count") && more {
            count = parse_int(a.get(j + 1))?;
            if count < 1 {
                return Err(RespError::Syntax);
            }
        } else if opt.eq_ignore_ascii_case(b"match") && more {
            pattern = Some(a.get(j + 1)).filter(|p| *p != b"*");
        } else if opt.eq_ignore_ascii_case(b"type") && more {
            type_filter = Some(a.get(j + 1));
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

/// redis `parseScanCursorOrReply` (`strtoul`): optional sign (a negative cursor wraps), digits,
/// no overflow, nothing else.
pub(super) fn parse_cursor(s: &[u8]) -> Option<u64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { n.wrapping_neg() } else { n })
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(RandomState::new().hash_one(0x5eed_u64) | 1);
}

pub(super) fn random_u64() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    })
}

fn random_key(topo: &Topology) -> Option<Vec<u8>> {
    let total: u64 = topo.nodes.iter().map(|n| n.len()).sum();
    if total == 0 {
        return None;
    }
    let mut pick = random_u64() % total;
    let start = topo
        .nodes
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
    // From a random stripe of the chosen node, then every node from the start (all may hold
    // only expired items).
    let stripe = random_u64() % crate::store::node::STRIPES as u64;
    let n = topo.nodes.len();
    for (i, from) in
        std::iter::once((start, stripe << 32)).chain((0..n).map(|i| ((start + i) % n, 0)))
    {
        let mut found = None;
        let mut cursor = from;
        loop {
            cursor = topo.nodes[i].walk(cursor, 1, |k, _| found = Some(k.to_vec()));
            if found.is_some() || cursor == 0 {
                break;
            }
        }
        if found.is_some() {
            return found;
        }
    }
    None
}

/// redis `stringmatchlen` (case-sensitive): `*`, `?`, `[...]` with `^` and ranges, `\` escapes.
pub fn glob(pattern: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < pattern.len() {
            if pattern[pi] == b'*' {
                while pi < pattern.len() && pattern[pi] == b'*' {
                    pi += 1;
                }
                if pi == pattern.len() {
                    return true;
                }
                star = Some((pi, si));
                continue;
            }
            if si < s.len() {
                if let Some(next) = match_one(pattern, pi, s[si]) {
                    pi = next;
                    si += 1;
                    continue;
                }
            }
        } else if si == s.len() {
            return true;
        }
        match star {
            Some((sp, ss)) if ss < s.len() => {
                star = Some((sp, ss + 1));
                pi = sp;
                si = ss + 1;
            }
            _ => return false,
        }
    }
}

/// Matches one pattern token at `pi` against `c`; the index after the token if it matches.
fn match_one(p: &[u8], pi: usize, c: u8) -> Option<usize> {
    match p[pi] {
        b'?' => Some(pi + 1),
        b'\\' if pi + 1 < p.len() => (p[pi + 1] == c).then_some(pi + 2),
        b'[' => {
            let mut i = pi + 1;
            let not = p.get(i) == Some(&b'^');
            if not {
                i += 1;
            }
            let mut matched = false;
            loop {
                if i >= p.len() {
                    break;
                }
                if p[i] == b'\\' && i + 1 < p.len() {
                    i += 1;
                    matched |= p[i] == c;
                } else if p[i] == b']' {
                    i += 1;
                    break;
                } else if i + 2 < p.len() && p[i + 1] == b'-' {
                    let (lo, hi) = (p[i].min(p[i + 2]), p[i].max(p[i + 2]));
                    matched |= (lo..=hi).contains(&c);
                    i += 2;
                } else {
                    matched |= p[i] == c;
                }
                i += 1;
            }
            (matched != not).then_some(i)
        }
        lit => (lit == c).then_some(pi + 1),
    }
}

// ---------------------------------------------------------------------------------------------
// Connection and server commands

fn valid_client_name(name: &[u8]) -> Reply {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(RespError::InvalidClientName);
    }
    Ok(())
}

fn set_name(conn: &mut Conn, name: &[u8]) {
    conn.name = (!name.is_empty()).then(|| name.into());
}

fn hello(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let mut version = None;
    let mut j = 1;
    if a.len() >= 2 {
        let ver = parse_i64(a.get(1)).ok_or(RespError::ProtocolVersion)?;
        if !(2..=3).contains(&ver) {
            return Err(RespError::NoProto);
        }
        version = Some(if ver == 2 {
            Version::Resp2
        } else {
            Version::Resp3
        });
        j = 2;
    }
    let mut name: Option<&[u8]> = None;
    let mut user: Option<&[u8]> = None;
    let mut password: &[u8] = b"";
    while j < a.len() {
        let opt = a.get(j);
        let more = a.len() - 1 - j;
        if opt.eq_ignore_ascii_case(b"auth") && more >= 2 {
            user = Some(a.get(j + 1));
            password = a.get(j + 2);
            j += 2;
        } else if opt.eq_ignore_ascii_case(b"setname") && more >= 1 {
            valid_client_name(a.get(j + 1))?;
            name = Some(a.get(j + 1));
            j += 1;
        } else {
            return Err(RespError::HelloOption(
                String::from_utf8_lossy(opt).into_owned(),
            ));
        }
        j += 1;
    }
    if let Some(login) = user.and_then(|u| acl::login(cx.shared, Some(u), password)) {
        cx.conn.access = login?;
    } else if !cx.conn.access.authenticated {
        return Err(RespError::HelloNoAuth);
    } else if user.is_some_and(|u| u != b"default") {
        return Err(RespError::WrongPass);
    }
    if let Some(n) = name {
        set_name(cx.conn, n);
    }
    if let Some(v) = version {
        cx.conn.version = v;
    }
    let v = cx.conn.version;
    encode_map(out, 7, v);
    encode_bulk(out, b"server");
    encode_bulk(out, b"redis");
    encode_bulk(out, b"version");
    encode_bulk(out, REDIS_VERSION.as_bytes());
    encode_bulk(out, b"proto");
    encode_int(out, if v == Version::Resp3 { 3 } else { 2 });
    encode_bulk(out, b"id");
    encode_int(out, cx.conn.id as i64);
    encode_bulk(out, b"mode");
    encode_bulk(out, b"standalone");
    encode_bulk(out, b"role");
    encode_bulk(out, b"master");
    encode_bulk(out, b"modules");
    encode_array(out, 0);
    Ok(())
}

fn auth(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let login = match a.len() {
        2 => acl::login(cx.shared, None, a.get(1)),
        3 => acl::login(cx.shared, Some(a.get(1)), a.get(2)),
        _ => None,
    };
    if let Some(result) = login {
        cx.conn.access = result?;
        encode_ok(out);
        return Ok(());
    }
    match a.len() {
        2 => Err(RespError::AuthNotConfigured),
        3 if a.get(1) == b"default" => {
            encode_ok(out);
            Ok(())
        }
        3 => Err(RespError::WrongPass),
        _ => Err(RespError::Syntax),
    }
}

fn client_line(cx: &Ctx<'_>) -> String {
    let c = &*cx.conn;
    let now = cx.shared.clock.now_ms();
    let addr = |a: Option<SocketAddr>| a.map_or_else(String::new, |a| a.to_string());
    let lossy = |b: &Option<Box<[u8]>>| {
        b.as_deref()
            .map_or_else(String::new, |b| String::from_utf8_lossy(b).into_owned())
    };
    format!(
        "id={} addr={} laddr={} fd=0 name={} age={} idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
        c.id,
        addr(c.peer),
        addr(c.local),
        lossy(&c.name),
        now.saturating_sub(c.created_ms) / 1000,
        c.last,
        if c.version == Version::Resp3 { 3 } else { 2 },
        lossy(&c.lib_name),
        lossy(&c.lib_ver),
    )
}

fn on_off(arg: &[u8]) -> Reply {
    if arg.eq_ignore_ascii_case(b"on") || arg.eq_ignore_ascii_case(b"off") {
        Ok(())
    } else {
        Err(RespError::Syntax)
    }
}

fn client(cx: &mut Ctx<'_>, sub: Option<&str>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let v = cx.conn.version;
    match sub.unwrap_or_default() {
        "id" => encode_int(out, cx.conn.id as i64),
        "getname" => match &cx.conn.name {
            Some(n) => encode_bulk(out, n),
            None => encode_null(out, v),
        },
        "setname" => {
            valid_client_name(a.get(2))?;
            set_name(cx.conn, a.get(2));
            encode_ok(out);
        }
        "info" => {
            cx.conn.last = "client|info";
            encode_verbatim(out, client_line(cx).as_bytes(), v);
        }
        "list" => {
            cx.conn.last = "client|list";
            encode_verbatim(out, client_line(cx).as_bytes(), v);
        }
        "setinfo" => {
            let (attr, value) = (a.get(2), a.get(3));
            if attr.eq_ignore_ascii_case(b"lib-name") {
                cx.conn.lib_name = Some(value.into());
            } else if attr.eq_ignore_ascii_case(b"lib-ver") {
                cx.conn.lib_ver = Some(value.into());
            } else {
                return Err(RespError::UnrecognizedOption(
                    String::from_utf8_lossy(attr).into_owned(),
                ));
            }
            encode_ok(out);
        }
        "no-evict" | "no-touch" => {
            on_off(a.get(2))?;
            encode_ok(out);
        }
        "reply" => {
            if !a.get(2).eq_ignore_ascii_case(b"on") {
                return Err(RespError::Syntax);
            }
            encode_ok(out);
        }
        _ => help(
            out,
            "CLIENT",
            &[
                "GETNAME",
                "ID",
                "INFO",
                "LIST",
                "NO-EVICT (ON|OFF)",
                "NO-TOUCH (ON|OFF)",
                "SETINFO <LIB-NAME|LIB-VER> <value>",
                "SETNAME <name>",
            ],
        ),
    }
    Ok(())
}

fn help(out: &mut BytesMut, cmd: &str, lines: &[&str]) {
    encode_array(out, lines.len() + 2);
    encode_simple(
        out,
        format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").as_bytes(),
    );
    for l in lines {
        encode_simple(out, l.as_bytes());
    }
    encode_simple(out, b"HELP");
}

fn command_entry(cmd: Command, v: Version, out: &mut BytesMut) {
    encode_array(out, 10);
    encode_bulk(out, cmd.wire().as_bytes());
    encode_int(out, i64::from(cmd.arity()));
    encode_set(out, cmd.flags().len(), v);
    for f in cmd.flags() {
        encode_simple(out, f.as_bytes());
    }
    let (first, last, step) = cmd.key_positions();
    encode_int(out, first);
    encode_int(out, last);
    encode_int(out, step);
    encode_set(out, 0, v);
    encode_set(out, 0, v);
    encode_array(out, 0);
    let subs: Vec<_> = command::SUBCOMMANDS
        .iter()
        .filter(|(c, _, _)| *c == cmd)
        .collect();
    encode_array(out, subs.len());
    for (c, name, arity) in subs {
        encode_array(out, 10);
        encode_bulk(out, format!("{}|{}", c.wire(), name).as_bytes());
        encode_int(out, i64::from(*arity));
        encode_set(out, 0, v);
        for _ in 0..3 {
            encode_int(out, 0);
        }
        encode_set(out, 0, v);
        encode_set(out, 0, v);
        encode_array(out, 0);
        encode_array(out, 0);
    }
}

fn command_info(sub: Option<&str>, a: &Args<'_>, v: Version, out: &mut BytesMut) -> Reply {
    match sub {
        None => {
            encode_array(out, Command::ALL.len());
            for &c in Command::ALL {
                command_entry(c, v, out);
            }
        }
        Some("count") => encode_int(out, Command::ALL.len() as i64),
        Some("list") => {
            encode_array(out, Command::ALL.len());
            for c in Command::ALL {
                encode_bulk(out, c.wire().as_bytes());
            }
        }
        Some("info") => {
            if a.len() == 2 {
                return command_info(None, a, v, out);
            }
            encode_array(out, a.len() - 2);
            for name in a.iter_from(2) {
                match Command::lookup(name) {
                    Some(c) => command_entry(c, v, out),
                    None => encode_null_array(out, v),
                }
            }
        }
        Some("docs") => {
            let cmds: Vec<Command> = if a.len() == 2 {
                Command::ALL.to_vec()
            } else {
                a.iter_from(2).filter_map(Command::lookup).collect()
            };
            encode_map(out, cmds.len(), v);
            for c in cmds {
                encode_bulk(out, c.wire().as_bytes());
                encode_map(out, 3, v);
                encode_bulk(out, b"summary");
                encode_bulk(
                    out,
                    format!("The {} command.", c.wire().to_uppercase()).as_bytes(),
                );
                encode_bulk(out, b"since");
                encode_bulk(out, b"1.0.0");
                encode_bulk(out, b"group");
                encode_bulk(out, group(c).as_bytes());
            }
        }
        _ => help(
            out,
            "COMMAND",
            &[
                "COUNT",
                "DOCS [<command-name> ...]",
                "INFO [<command-name> ...]",
                "LIST",
            ],
        ),
    }
    Ok(())
}

fn group(c: Command) -> &'static str {
    use Command::*;
    match c {
        Ping | Echo | Hello | Auth | Select | Quit | Reset | Client => "connection",
        CommandInfo | Info | DbSize | FlushDb | FlushAll | Time | Config => "server",
        Delete | Unlink | Exists | Touch | Expire | PExpire | ExpireAt | PExpireAt | Ttl | PTtl
        | ExpireTime | PExpireTime | Persist | Type | Keys | Scan | RandomKey | Rename
        | RenameNx | Copy => "generic",
        _ => {
            // The container commands are contiguous in the table, one block per type.
            let at = |x: Command| Command::ALL.iter().position(|&y| y == x);
            let pos = at(c);
            let within = |a: Command, b: Command| pos >= at(a) && pos <= at(b);
            if within(HSet, HScan) {
                "hash"
            } else if within(LPush, BLMPop) {
                "list"
            } else if within(SAdd, SScan) {
                "set"
            } else if within(ZAdd, ZScan) {
                "sorted-set"
            } else {
                "string"
            }
        }
    }
}

fn config_params(cx: &Ctx<'_>) -> Vec<(&'static str, String)> {
    let topo = cx.shared.topology.load();
    let max: u64 = topo.nodes.iter().map(|n| n.max_memory()).sum();
    let l = cx.limits;
    let port = cx.conn.local.map_or(0, |a| a.port());
    vec![
        ("maxmemory", max.to_string()),
        ("maxmemory-policy", "allkeys-lru".into()),
        ("maxclients", l.max_connections.to_string()),
        ("timeout", l.idle_timeout.as_secs().to_string()),
        ("proto-max-bulk-len", l.max_request_size.to_string()),
        ("client-query-buffer-limit", l.max_request_size.to_string()),
        ("save", String::new()),
        ("appendonly", "no".into()),
        ("databases", "1".into()),
        ("cluster-enabled", "no".into()),
        ("port", port.to_string()),
        (
            "bind",
            cx.conn
                .local
                .map_or_else(String::new, |a| a.ip().to_string()),
        ),
        ("maxmemory-samples", "5".into()),
        ("lazyfree-lazy-user-flush", "no".into()),
    ]
}

fn config(cx: &mut Ctx<'_>, sub: Option<&str>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    match sub.unwrap_or_default() {
        "get" => {
            let params = config_params(cx);
            let matched: Vec<&(&str, String)> = params
                .iter()
                .filter(|(name, _)| {
                    a.iter_from(2)
                        .any(|p| glob(&p.to_ascii_lowercase(), name.as_bytes()))
                })
                .collect();
            encode_map(out, matched.len(), cx.conn.version);
            for (name, value) in matched {
                encode_bulk(out, name.as_bytes());
                encode_bulk(out, value.as_bytes());
            }
            Ok(())
        }
        "set" => Err(RespError::ConfigSet(
            String::from_utf8_lossy(a.get(2)).into_owned(),
        )),
        "resetstat" => {
            encode_ok(out);
            Ok(())
        }
        _ => {
            help(
                out,
                "CONFIG",
                &["GET <pattern>", "SET <directive> <value>", "RESETSTAT"],
            );
            Ok(())
        }
    }
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}

fn kv(text: &mut String, k: &str, v: impl std::fmt::Display) {
    use std::fmt::Write as _;
    let _ = write!(text, "{k}:{v}\r\n");
}

fn info(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    const DEFAULT: &[&str] = &[
        "server",
        "clients",
        "memory",
        "persistence",
        "stats",
        "replication",
        "keyspace",
        "ringcache",
    ];
    let wanted: Vec<String> = a
        .iter_from(1)
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == "all" || w == "everything" || w == "default");
    let shared = cx.shared;
    let topo = shared.topology.load();
    let s = &shared.stats;
    let stats: Vec<_> = topo.nodes.iter().map(|n| (n, n.stats())).collect();
    let used: u64 = stats.iter().map(|(_, st)| st.used_bytes).sum();
    let max: u64 = stats.iter().map(|(_, st)| st.max_bytes).sum();
    let items: u64 = stats.iter().map(|(_, st)| st.items).sum();
    let now = shared.clock.now_ms() / 1000;
    let uptime = now.saturating_sub(shared.started_unix);
    let mut text = String::new();
    for &section in DEFAULT {
        if !all && !wanted.iter().any(|w| w == section) {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let t = &mut text;
        match section {
            "server" => {
                t.push_str("# Server\r\n");
                kv(t, "redis_version", REDIS_VERSION);
                kv(t, "ringcache_version", env!("CARGO_PKG_VERSION"));
                kv(t, "redis_mode", "standalone");
                kv(t, "os", std::env::consts::OS);
                kv(t, "arch_bits", usize::BITS);
                kv(t, "process_id", shared.pid);
                kv(t, "tcp_port", cx.conn.local.map_or(0, |a| a.port()));
                kv(t, "uptime_in_seconds", uptime);
                kv(t, "uptime_in_days", uptime / 86400);
            }
            "clients" => {
                t.push_str("# Clients\r\n");
                kv(t, "connected_clients", Stats::get(&s.curr_connections));
                kv(t, "maxclients", cx.limits.max_connections);
                kv(t, "blocked_clients", cx.shared.waiters.clients());
            }
            "memory" => {
                t.push_str("# Memory\r\n");
                kv(t, "used_memory", used);
                kv(t, "used_memory_human", human(used));
                kv(t, "maxmemory", max);
                kv(t, "maxmemory_human", human(max));
                kv(t, "maxmemory_policy", "allkeys-lru");
            }
            "persistence" => {
                t.push_str("# Persistence\r\n");
                kv(t, "loading", 0);
                kv(t, "rdb_changes_since_last_save", 0);
                kv(t, "aof_enabled", 0);
            }
            "stats" => {
                t.push_str("# Stats\r\n");
                kv(
                    t,
                    "total_connections_received",
                    Stats::get(&s.total_connections),
                );
                kv(
                    t,
                    "total_commands_processed",
                    Stats::get(&s.commands_processed) + cx.conn.commands,
                );
                kv(t, "total_net_input_bytes", Stats::get(&s.bytes_read));
                kv(t, "total_net_output_bytes", Stats::get(&s.bytes_written));
                kv(
                    t,
                    "rejected_connections",
                    Stats::get(&s.rejected_connections),
                );
                kv(
                    t,
                    "expired_keys",
                    stats.iter().map(|(_, st)| st.expired).sum::<u64>(),
                );
                kv(
                    t,
                    "evicted_keys",
                    stats.iter().map(|(_, st)| st.evictions).sum::<u64>(),
                );
                kv(t, "keyspace_hits", Stats::get(&s.get_hits));
                kv(t, "keyspace_misses", Stats::get(&s.get_misses));
            }
            "replication" => {
                t.push_str("# Replication\r\n");
                kv(t, "role", "master");
                kv(t, "connected_slaves", 0);
            }
            "keyspace" => {
                t.push_str("# Keyspace\r\n");
                if items > 0 {
                    kv(t, "db0", format!("keys={items},expires=0,avg_ttl=0"));
                }
            }
            _ => {
                t.push_str("# Ringcache\r\n");
                kv(t, "ring_generation", topo.generation);
                kv(t, "nodes", topo.nodes.len());
                for (i, (node, st)) in stats.iter().enumerate() {
                    kv(
                        t,
                        &format!("node{i}"),
                        format!(
                            "name={},items={},used_memory={},maxmemory={},evicted_keys={},expired_keys={}",
                            node.name(),
                            st.items,
                            st.used_bytes,
                            st.max_bytes,
                            st.evictions,
                            st.expired
                        ),
                    );
                }
            }
        }
    }
    encode_verbatim(out, text.as_bytes(), cx.conn.version);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_like_redis() {
        assert!(glob(b"*", b""));
        assert!(glob(b"h?llo", b"hello"));
        assert!(glob(b"h*llo", b"heeeello"));
        assert!(glob(b"h[ae]llo", b"hallo"));
        assert!(!glob(b"h[^e]llo", b"hello"));
        assert!(glob(b"h[a-b]llo", b"hbllo"));
        assert!(glob(b"h[b-a]llo", b"hallo"));
        assert!(glob(b"a\\*b", b"a*b"));
        assert!(!glob(b"a\\*b", b"axb"));
        assert!(glob(b"*a*b*c*", b"xxaxxbxxcxx"));
        assert!(!glob(b"*a*b*c*", b"xxaxxcxxbxx"));
        assert!(!glob(b"abc", b"ab"));
        assert!(glob(b"user:*", b"user:1"));
    }
}
