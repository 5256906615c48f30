//! String commands: GET, SET and its options, SETNX/SETEX/PSETEX, MGET, MSET/MSETNX, GETSET,
//! GETDEL, GETEX, APPEND, STRLEN, INCR/DECR and their BY forms, INCRBYFLOAT, GETRANGE/SUBSTR,
//! SETRANGE; LCS is routed on to `lcs`.
//!
//! Owns: these commands' option parsing, checks (in redis-server 7.0's order) and replies, and
//! the EX/PX/EXAT/PXAT expiry arithmetic (unix ms). Must not touch: framing, the `ArcSwap`s
//! (only `load()`), store internals, other groups' commands.
//!
//! Invariants:
//! - Redis strings and memcached items are the same items: a RESP write stores flags 0 and gets
//!   a new CAS (APPEND, SETRANGE and INCR* keep the item's flags); containers answer WRONGTYPE.
//! - GET/SET and the other single-key paths allocate nothing of their own: values are written
//!   from the entry straight into `out`, numbers are formatted on the stack.
//! - MGET and MSET route each key on its own and answer in argument order; MSETNX runs through
//!   `types::with_keys` (atomic when its keys share a node).

use bytes::BytesMut;

use super::args::{check_size, parse_int};
use super::command::Command;
use super::conn::{Ctx, Reply};
use super::error::{RespError, store_error};
use super::float::LongDouble;
use super::frame::{
    Args, Version, encode_array, encode_bulk, encode_int, encode_null, encode_ok, parse_i64,
};
use super::types::{Access, with_keys};
use crate::config::Limits;
use crate::server::{Shared, Stats};
use crate::store::{Entry, Kind, NEVER};

/// Runs a string command (its arity is checked).
pub(super) fn handle(cmd: Command, a: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) -> Reply {
    let v = cx.conn.version;
    let shared = cx.shared;
    match cmd {
        Command::Get => get(shared, a.arg(1)?, v, out),
        Command::Set => set(cx, a, out),
        Command::SetNx => {
            let (key, value) = (a.arg(1)?, a.arg(2)?);
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
            let at = expire_arg(a.arg(2)?, unit, true, shared.clock.now_ms(), cmd.wire())?;
            let value = a.arg(3)?;
            check_size(cx.limits, value.len())?;
            shared
                .topology
                .load()
                .entry(a.arg(1)?, |e| e.put(&[value], 0, at, None))
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
                check_size(cx.limits, a.arg(i)?.len())?;
            }
            let topo = shared.topology.load();
            let keys: Vec<&[u8]> = (1..a.len())
                .step_by(2)
                .map(|i| a.arg(i))
                .collect::<Result<_, _>>()?;
            let set = |acc: &mut Access<'_, '_>| {
                if cmd == Command::MultiSetNx
                    && keys.iter().any(|k| acc.entry(k, |e| e.item().is_some()))
                {
                    return Ok(false);
                }
                for i in (1..a.len()).step_by(2) {
                    let value = a.arg(i + 1)?;
                    acc.entry(a.arg(i)?, |e| e.put(&[value], 0, NEVER, None))
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
            let value = a.arg(2)?;
            check_size(cx.limits, value.len())?;
            shared.topology.load().entry(a.arg(1)?, |e| {
                write_old_value(e, out, v)?;
                e.put(&[value], 0, NEVER, None).map_err(store_error)?;
                Ok(())
            })
        }
        Command::GetDelete => shared.topology.load().entry(a.arg(1)?, |e| {
            if write_old_value(e, out, v)? {
                e.remove();
            }
            Ok(())
        }),
        Command::GetEx => getex(shared, a, v, out),
        Command::Append => {
            let data = a.arg(2)?;
            let limits = cx.limits;
            let len = shared.topology.load().entry(a.arg(1)?, |e| {
                let old = string_len(e)?;
                check_size(limits, old + data.len())?;
                e.concat(data, false).map_err(store_error)?;
                Ok(old + data.len())
            })?;
            encode_int(out, len as i64);
            Ok(())
        }
        Command::StrLen => {
            let len = shared.topology.load().entry(a.arg(1)?, |e| string_len(e))?;
            encode_int(out, len as i64);
            Ok(())
        }
        Command::Incr => incr_by(shared, a.arg(1)?, 1, out),
        Command::Decr => incr_by(shared, a.arg(1)?, -1, out),
        Command::IncrBy => incr_by(shared, a.arg(1)?, parse_int(a.arg(2)?)?, out),
        Command::DecrBy => {
            let by = parse_int(a.arg(2)?)?;
            if by == i64::MIN {
                return Err(RespError::DecrementOverflow);
            }
            incr_by(shared, a.arg(1)?, -by, out)
        }
        Command::IncrByFloat => incr_by_float(shared, cx.limits, a, out),
        Command::GetRange | Command::Substr => getrange(shared, a, out),
        Command::SetRange => setrange(shared, cx.limits, a, out),
        Command::Lcs => super::lcs::handle(cx, a, out),
        _ => Err(RespError::NotInGroup(cmd.wire())),
    }
}

/// Counts a keyspace read.
fn count_read(shared: &Shared, hit: bool) {
    let s = &shared.stats;
    Stats::add(&s.cmd_get, 1);
    Stats::add(if hit { &s.get_hits } else { &s.get_misses }, 1);
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
            .ok_or_else(|| RespError::InvalidExpire(cmd))?;
    }
    Ok(ms as u64)
}

/// An EX/PX/EXAT/PXAT option of SET or GETEX: (unit ms, relative, argument).
type Expiry<'a> = (i64, bool, &'a [u8]);

/// Reads an EX/PX/EXAT/PXAT option at argument `j` (its number at `j + 1`) into `expire`:
/// Ok(false) if `a[j]` is not one or has no argument. A syntax error if `exclusive` (KEEPTTL
/// or PERSIST came first) or if another of the four came first (the same one twice is allowed,
/// the last wins, as in redis).
fn expiry_option<'a>(
    a: &Args<'a>,
    j: usize,
    exclusive: bool,
    expire: &mut Option<Expiry<'a>>,
) -> Result<bool, RespError> {
    let opt = a.arg(j)?;
    let is = |name: &str| opt.eq_ignore_ascii_case(name.as_bytes());
    let kind = match () {
        _ if is("ex") => (1000, true),
        _ if is("px") => (1, true),
        _ if is("exat") => (1000, false),
        _ if is("pxat") => (1, false),
        _ => return Ok(false),
    };
    if j + 1 >= a.len() {
        return Ok(false);
    }
    if exclusive || expire.is_some_and(|(u, r, _)| (u, r) != kind) {
        return Err(RespError::Syntax);
    }
    *expire = Some((kind.0, kind.1, a.arg(j + 1)?));
    Ok(true)
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
    let (key, value) = (a.arg(1)?, a.arg(2)?);
    let (mut nx, mut xx, mut want_get) = (false, false, false);
    let mut keep_ttl = false;
    // (unit ms, relative, argument) of EX/PX/EXAT/PXAT.
    let mut expire: Option<Expiry<'_>> = None;
    let mut j = 3;
    while j < a.len() {
        let opt = a.arg(j)?;
        let is = |name: &str| opt.eq_ignore_ascii_case(name.as_bytes());
        if is("nx") && !xx {
            nx = true;
        } else if is("xx") && !nx {
            xx = true;
        } else if is("get") {
            want_get = true;
        } else if is("keepttl") && expire.is_none() {
            keep_ttl = true;
        } else if expiry_option(a, j, keep_ttl, &mut expire)? {
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
    let mut expire: Option<Expiry<'_>> = None;
    let mut j = 2;
    while j < a.len() {
        if a.arg(j)?.eq_ignore_ascii_case(b"persist") && expire.is_none() {
            opt = ExpireOpt::Persist;
        } else if expiry_option(a, j, opt == ExpireOpt::Persist, &mut expire)? {
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
    let hit = shared.topology.load().entry(a.arg(1)?, |e| {
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
                if let Some(mut m) = e.meta_mut() {
                    m.expire_at = t;
                }
            }
            ExpireOpt::Persist => {
                if let Some(mut m) = e.meta_mut() {
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

fn incr_by(shared: &Shared, key: &[u8], by: i64, out: &mut BytesMut) -> Reply {
    let n = shared.topology.load().entry(key, |e| {
        let (old, at, flags) = match e.item() {
            None => (0, NEVER, 0),
            Some(i) if i.kind() == Kind::Str => (
                parse_i64(i.value()).ok_or_else(|| RespError::NotInteger)?,
                i.meta().expire_at,
                i.meta().flags,
            ),
            Some(_) => return Err(RespError::WrongType),
        };
        let n = old.checked_add(by).ok_or_else(|| RespError::Overflow)?;
        let mut buf = itoa::Buffer::new();
        e.put(&[buf.format(n).as_bytes()], flags, at, None)
            .map_err(store_error)?;
        Ok(n)
    })?;
    encode_int(out, n);
    Ok(())
}

fn incr_by_float(shared: &Shared, limits: &Limits, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let by = LongDouble::parse(a.arg(2)?).ok_or_else(|| RespError::NotFloat)?;
    let text = shared.topology.load().entry(a.arg(1)?, |e| {
        let (old, at, flags) = match e.item() {
            None => (
                LongDouble::parse(b"0").ok_or_else(|| RespError::NotFloat)?,
                NEVER,
                0,
            ),
            Some(i) if i.kind() == Kind::Str => (
                LongDouble::parse(i.value()).ok_or_else(|| RespError::NotFloat)?,
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
    let (mut start, mut end) = (parse_int(a.arg(2)?)?, parse_int(a.arg(3)?)?);
    shared.topology.load().entry(a.arg(1)?, |e| {
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
    let offset = parse_int(a.arg(2)?)?;
    if offset < 0 {
        return Err(RespError::OffsetOutOfRange);
    }
    let data = a.arg(3)?;
    let len = shared.topology.load().entry(a.arg(1)?, |e| {
        let (old, flags, at) = match e.item() {
            None => (&[][..], 0, NEVER),
            Some(i) if i.kind() == Kind::Str => (i.value(), i.meta().flags, i.meta().expire_at),
            Some(_) => return Err(RespError::WrongType),
        };
        if data.is_empty() {
            return Ok(old.len());
        }
        let end = (offset as u64).saturating_add(data.len() as u64);
        if end > limits.proto_max_bulk_len {
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
