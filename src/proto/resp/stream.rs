//! Stream commands, as redis-server 7.0's `t_stream.c`: XADD, XRANGE, XREVRANGE, XLEN, XDEL,
//! XTRIM, XSETID and XREAD (BLOCK through the blocking machinery of `types::blocking`).
//!
//! Owns: the option grammar of these commands (checked in redis's order, with its error texts),
//! ID parsing (`streamGenericParseIDOrReply`), and the entry replies. Must not touch: stream
//! internals (`store::stream`, changed only through its methods, which keep the charge
//! current), the waiter queues (XADD only calls `Waiters::notify`), framing.
//!
//! Invariants:
//! - An empty stream is a key (XDEL/XTRIM of the last entry keep it, with its last ID), as in
//!   redis; `Container::is_empty` is false for streams so the store keeps it.
//! - XADD wakes the clients blocked in XREAD on its key (`Waiters::notify`), from any
//!   connection, EXEC or script; a blocked XREAD's `$` IDs are resolved when it first runs
//!   (the parked request carries the resolved IDs), so an entry added while it waits is the
//!   one it returns.

use std::time::Duration;

use bytes::BytesMut;

use super::args::{check_size, parse_int};
use super::command::Command;
use super::conn::{Ctx, Reply};
use super::error::{RespError, store_error};
use super::frame::{
    Args, Version, encode_array, encode_bulk, encode_int, encode_map, encode_null,
    encode_null_array, encode_ok,
};
use super::notify;
use super::types::{check, is, read, write};
use crate::proto::Flow;
use crate::store::stream::{StreamEntry, Trim};
use crate::store::{Container, Entry, Stream, StreamId};

/// The container type the typed accessors use for streams.
type S = Box<Stream>;

/// Runs a stream command (its arity is checked).
pub(super) fn handle(
    cmd: Command,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    flow: &mut Flow,
) -> Reply {
    match cmd {
        Command::XAdd => xadd(cx, a, out),
        Command::XRange => xrange(cx, a, out, false),
        Command::XRevRange => xrange(cx, a, out, true),
        Command::XLen => {
            let topo = cx.shared.topology.load();
            let n = topo.entry(a.arg(1)?, |e| read::<S, _>(e, |s| s.len()))?;
            encode_int(out, n.unwrap_or(0) as i64);
            Ok(())
        }
        Command::XDel => xdel(cx, a, out),
        Command::XTrim => xtrim(cx, a, out),
        Command::XSetId => xsetid(cx, a, out),
        Command::XRead => xread(cx, a, out, flow),
        Command::XReadGroup => xread(cx, a, out, flow),
        Command::XGroup => xgroup(cx, a, out),
        Command::XAck => xack(cx, a, out),
        Command::XPending => xpending(cx, a, out),
        Command::XClaim => xclaim(cx, a, out),
        Command::XAutoClaim => xautoclaim(cx, a, out),
        Command::XInfo => xinfo(cx, a, out),
        _ => Err(RespError::NotInGroup(cmd.wire())),
    }
}

/// redis `string2ull`: a non-negative `long long`, or else what `strtoull` accepts whole
/// (leading spaces, a sign; a `-` negates, as strtoull does).
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(n) = super::frame::parse_i64(s) {
        return u64::try_from(n).ok();
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// A parsed ID: the ID and whether its sequence was given (false for XADD's `ms-*`).
struct ParsedId {
    id: StreamId,
    seq_given: bool,
}

/// redis `streamGenericParseIDOrReply`. `strict`: `-` and `+` refused; `missing_seq`: the
/// sequence of a bare `ms`; `allow_star_seq`: XADD's `ms-*`.
fn parse_id(
    s: &[u8],
    strict: bool,
    missing_seq: u64,
    allow_star_seq: bool,
) -> Result<ParsedId, RespError> {
    let bad = || RespError::StreamIdInvalid;
    if s.len() > 127 {
        return Err(bad());
    }
    // C string semantics: the ID ends at the first NUL.
    let s = s.split(|&b| b == 0).next().unwrap_or(s);
    if strict && (s == b"-" || s == b"+") {
        return Err(bad());
    }
    if s == b"-" {
        return Ok(ParsedId {
            id: StreamId::MIN,
            seq_given: true,
        });
    }
    if s == b"+" {
        return Ok(ParsedId {
            id: StreamId::MAX,
            seq_given: true,
        });
    }
    let (ms, seq) = match s.iter().position(|&b| b == b'-') {
        Some(d) => (&s[..d], Some(&s[d + 1..])),
        None => (s, None),
    };
    let ms = string2ull(ms).ok_or_else(bad)?;
    let (seq, seq_given) = match seq {
        None => (missing_seq, true),
        Some(b"*") if allow_star_seq => (0, false),
        Some(t) => (string2ull(t).ok_or_else(bad)?, true),
    };
    Ok(ParsedId {
        id: StreamId { ms, seq },
        seq_given,
    })
}

/// A strict ID (no `-`/`+`), a bare `ms` meaning `ms-0`.
fn strict_id(s: &[u8]) -> Result<StreamId, RespError> {
    parse_id(s, true, 0, false).map(|p| p.id)
}

/// redis `streamParseIntervalIDOrReply`: `(id` is exclusive (strict), else any ID.
fn interval_id(s: &[u8], missing_seq: u64) -> Result<(StreamId, bool), RespError> {
    if s.len() > 1 && s[0] == b'(' {
        Ok((parse_id(&s[1..], true, missing_seq, false)?.id, true))
    } else {
        Ok((parse_id(s, false, missing_seq, false)?.id, false))
    }
}

fn encode_id(out: &mut BytesMut, id: StreamId) {
    encode_bulk(out, id.to_text().as_bytes());
}

/// One entry as redis replies it: `[id, [field, value, ...]]`.
fn encode_entry(out: &mut BytesMut, e: &StreamEntry) {
    encode_array(out, 2);
    encode_id(out, e.id);
    encode_array(out, e.fields.len() * 2);
    for (f, v) in e.fields.iter() {
        encode_bulk(out, f);
        encode_bulk(out, v);
    }
}

/// Parsed XADD/XTRIM options (redis `streamAddTrimArgs`).
struct TrimArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    nomkstream: bool,
    /// XADD: the ID given (None for `*`), and the position of the first field.
    id: Option<ParsedId>,
    fields_at: usize,
}

/// redis `streamParseAddOrTrimArgsOrReply`, in its order.
fn parse_add_trim(a: &Args<'_>, xadd: bool) -> Result<TrimArgs, RespError> {
    let mut t = TrimArgs {
        trim: None,
        approx: false,
        limit: 0,
        nomkstream: false,
        id: None,
        fields_at: a.len(),
    };
    let mut limit: Option<i64> = None;
    let mut i = 2;
    while i < a.len() {
        let more = a.len() - 1 - i;
        let opt = a.arg(i)?;
        if xadd && opt == b"*" {
            t.fields_at = i + 1;
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if t.trim.is_some() {
                return Err(RespError::TrimBothStrategies);
            }
            t.approx = false;
            let next = a.arg(i + 1)?;
            if more >= 2 && next == b"~" {
                t.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let v = a.arg(i + 1)?;
            t.trim = Some(if is(opt, "maxlen") {
                let n = parse_int(v)?;
                if n < 0 {
                    return Err(RespError::StreamMaxLenNegative);
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(strict_id(v)?)
            });
            i += 2;
            continue;
        } else if is(opt, "limit") && more > 0 {
            let n = parse_int(a.arg(i + 1)?)?;
            if n < 0 {
                return Err(RespError::StreamLimitNegative);
            }
            limit = Some(n);
            i += 2;
            continue;
        } else if xadd && is(opt, "nomkstream") {
            t.nomkstream = true;
        } else if xadd {
            t.id = Some(parse_id(opt, true, 0, true)?);
            t.fields_at = i + 1;
            break;
        } else {
            return Err(RespError::Syntax);
        }
        i += 1;
    }
    if limit.is_some_and(|l| l > 0) && t.trim.is_none() {
        return Err(RespError::LimitWithoutStrategy);
    }
    if !xadd && t.trim.is_none() {
        return Err(RespError::XTrimNoStrategy);
    }
    match limit {
        Some(_) if !t.approx => return Err(RespError::LimitWithoutApprox),
        Some(l) => t.limit = l as u64,
        // redis: 100 × stream-node-max-entries for `~`, no limit for an exact trim.
        None if t.approx => t.limit = 100 * u64::from(crate::store::stream::NODE_MAX_ENTRIES),
        None => {}
    }
    Ok(t)
}

fn xadd(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let t = parse_add_trim(a, true)?;
    // The ID's position is `fields_at - 1`; then at least one field/value pair.
    let rest = a.len() - t.fields_at.min(a.len());
    if t.fields_at > a.len() || rest < 2 || rest % 2 == 1 {
        return Err(RespError::WrongArity("xadd"));
    }
    for i in t.fields_at..a.len() {
        check_size(cx.limits, a.arg(i)?.len())?;
    }
    if let Some(p) = &t.id {
        if p.seq_given && p.id == StreamId::MIN {
            return Err(RespError::XAddIdZero);
        }
    }
    let key = a.arg(1)?;
    let now = cx.shared.clock.now_ms();
    let topo = cx.shared.topology.load();
    let added = topo.entry(
        key,
        |e| -> Result<Option<(StreamId, bool, bool)>, RespError> {
            check::<S>(e)?;
            if e.item().is_none() && t.nomkstream {
                return Ok(None);
            }
            let created = e.item().is_none();
            if created {
                e.put_container(S::default().into_container(), crate::store::NEVER)
                    .map_err(store_error)?;
            }
            let r = write::<S, _>(e, false, |s| -> Result<(StreamId, bool, bool), RespError> {
                if s.last_id == StreamId::MAX {
                    return Err(RespError::StreamExhausted);
                }
                let last = s.last_id;
                let id = match &t.id {
                    None => {
                        if now > last.ms {
                            StreamId { ms: now, seq: 0 }
                        } else {
                            last.incr().ok_or_else(|| RespError::StreamExhausted)?
                        }
                    }
                    Some(p) if !p.seq_given => {
                        let ms = p.id.ms;
                        if ms == last.ms {
                            if last.seq == u64::MAX {
                                return Err(RespError::XAddIdTooSmall);
                            }
                            StreamId {
                                ms,
                                seq: last.seq + 1,
                            }
                        } else if ms > last.ms {
                            StreamId { ms, seq: 0 }
                        } else {
                            return Err(RespError::XAddIdTooSmall);
                        }
                    }
                    Some(p) => {
                        if p.id <= last {
                            return Err(RespError::XAddIdTooSmall);
                        }
                        p.id
                    }
                };
                let fields = a
                    .pairs_from(t.fields_at)
                    .map(|(f, v)| (Box::<[u8]>::from(f), Box::<[u8]>::from(v)));
                s.append(id, fields);
                let trimmed = t.trim.is_some_and(|how| s.trim(how, t.approx, t.limit) > 0);
                Ok((id, created, trimmed))
            })?;
            r.transpose()
        },
    )?;
    match added {
        Some((id, created, trimmed)) => {
            encode_id(out, id);
            cx.shared.waiters.notify(key);
            // redis's events, in its order: `new` (dbAdd), `xadd`, then `xtrim` when the trim
            // removed entries (the rule in `notify` is silent for XADD: one rule per key
            // cannot say the second).
            if notify::enabled(cx.shared) {
                let registry = &cx.shared.pubsub;
                if created {
                    notify::publish(registry, notify::NEW, "new", key);
                }
                notify::publish(registry, notify::STREAM, "xadd", key);
                if trimmed {
                    notify::publish(registry, notify::STREAM, "xtrim", key);
                }
            }
        }
        None => encode_null(out, cx.conn.version),
    }
    Ok(())
}

/// Runs `f` on the stream at the entry (which the caller checked exists) without a new CAS:
/// redis does not signal these changes as modifying the key (see `Entry::update_container_keep_cas`).
fn write_quiet<R>(
    e: &mut Entry<'_>,
    f: impl FnOnce(&mut Stream) -> R,
) -> Result<Option<R>, RespError> {
    check::<S>(e)?;
    e.update_container_keep_cas(|c| match c {
        Container::Stream(s) => Some(f(s)),
        _ => None,
    })
    .map(Option::flatten)
    .map_err(store_error)
}

/// Wraps a stream for `put_container`.
trait IntoContainer {
    fn into_container(self) -> crate::store::Container;
}

impl IntoContainer for S {
    fn into_container(self) -> crate::store::Container {
        crate::store::Container::Stream(self)
    }
}

fn xrange(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut, rev: bool) -> Reply {
    let (start_arg, end_arg) = if rev {
        (a.arg(3)?, a.arg(2)?)
    } else {
        (a.arg(2)?, a.arg(3)?)
    };
    let (mut start, startex) = interval_id(start_arg, 0)?;
    if startex {
        start = start
            .incr()
            .ok_or_else(|| RespError::IntervalStartInvalid)?;
    }
    let (mut end, endex) = interval_id(end_arg, u64::MAX)?;
    if endex {
        end = end.decr().ok_or_else(|| RespError::IntervalEndInvalid)?;
    }
    let mut count: i64 = -1;
    let mut j = 4;
    while j < a.len() {
        if is(a.arg(j)?, "count") && j + 1 < a.len() {
            count = parse_int(a.arg(j + 1)?)?.max(0);
            j += 2;
        } else {
            return Err(RespError::Syntax);
        }
    }
    let v = cx.conn.version;
    let topo = cx.shared.topology.load();
    topo.entry(a.arg(1)?, |e| {
        let done = read::<S, _>(e, |s| {
            if count == 0 {
                encode_null_array(out, v);
                return;
            }
            let n = if count < 0 {
                usize::MAX
            } else {
                count as usize
            };
            let picked: Vec<&StreamEntry> = s.range(start, end, rev).take(n).collect();
            encode_array(out, picked.len());
            for e in picked {
                encode_entry(out, e);
            }
        })?;
        if done.is_none() {
            encode_array(out, 0);
        }
        Ok(())
    })
}

fn xdel(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let topo = cx.shared.topology.load();
    let n = topo.entry(a.arg(1)?, |e| -> Result<u64, RespError> {
        check::<S>(e)?;
        if e.item().is_none() {
            return Ok(0);
        }
        // Every ID is checked before any is deleted.
        let ids = a
            .iter_from(2)
            .map(strict_id)
            .collect::<Result<Vec<_>, _>>()?;
        let n =
            write_quiet(e, |s| ids.iter().filter(|&&id| s.delete(id)).count() as u64)?.unwrap_or(0);
        // redis signals the key as modified only when entries went.
        if n > 0 {
            write::<S, _>(e, false, |_| ())?;
        }
        Ok(n)
    })?;
    encode_int(out, n as i64);
    Ok(())
}

fn xtrim(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let t = parse_add_trim(a, false)?;
    let how = t.trim.expect("XTRIM has a strategy (checked)");
    let topo = cx.shared.topology.load();
    let n = topo.entry(a.arg(1)?, |e| {
        let n = write_quiet(e, |s| s.trim(how, t.approx, t.limit))?;
        if n.is_some_and(|n| n > 0) {
            write::<S, _>(e, false, |_| ())?;
        }
        Ok::<_, RespError>(n)
    })?;
    encode_int(out, n.unwrap_or(0) as i64);
    Ok(())
}

fn xsetid(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let id = strict_id(a.arg(2)?)?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < a.len() {
        let more = a.len() - 1 - i;
        let opt = a.arg(i)?;
        if is(opt, "entriesadded") && more > 0 {
            let n = parse_int(a.arg(i + 1)?)?;
            if n < 0 {
                return Err(RespError::EntriesAddedNegative);
            }
            entries_added = Some(n as u64);
        } else if is(opt, "maxdeletedid") && more > 0 {
            max_deleted = strict_id(a.arg(i + 1)?)?;
            if id < max_deleted {
                return Err(RespError::XSetIdBelowGivenMaxDeleted);
            }
        } else {
            return Err(RespError::Syntax);
        }
        i += 2;
    }
    let topo = cx.shared.topology.load();
    topo.entry(a.arg(1)?, |e| {
        check::<S>(e)?;
        if e.item().is_none() {
            return Err(RespError::NoSuchKey);
        }
        write_quiet(e, |s| {
            if !s.is_empty() {
                if id < s.last_entry_id() {
                    return Err(RespError::XSetIdTooSmall);
                }
                if entries_added.is_some_and(|n| (s.len() as u64) > n) {
                    return Err(RespError::XSetIdEntriesAdded);
                }
            }
            s.last_id = id;
            if let Some(n) = entries_added {
                s.entries_added = n;
            }
            if max_deleted != StreamId::MIN {
                s.max_deleted_id = max_deleted;
            }
            Ok(())
        })?
        .unwrap_or(Ok(()))
    })?;
    // redis 7.0 publishes `xsetid` but does not signal the key as modified (WATCH holds).
    notify::publish(&cx.shared.pubsub, notify::STREAM, "xsetid", a.arg(1)?);
    encode_ok(out);
    Ok(())
}

/// redis `getTimeoutFromObjectOrReply` in milliseconds: None = block forever.
fn parse_block_ms(s: &[u8]) -> Result<Option<Duration>, RespError> {
    let ms = super::frame::parse_i64(s).ok_or_else(|| RespError::TimeoutNotInteger)?;
    if ms < 0 {
        return Err(RespError::TimeoutNegative);
    }
    Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
}

/// Parsed XREAD/XREADGROUP arguments.
struct ReadArgs<'a> {
    /// XREADGROUP: group and consumer.
    group: Option<(&'a [u8], &'a [u8])>,
    noack: bool,
    block: Option<Option<Duration>>,
    count: usize,
    keys: Vec<&'a [u8]>,
    /// Position of the first ID.
    ids_at: usize,
}

fn parse_read<'a>(
    a: &Args<'a>,
    in_script: bool,
    xreadgroup: bool,
) -> Result<ReadArgs<'a>, RespError> {
    let mut r = ReadArgs {
        group: None,
        noack: false,
        block: None,
        count: 0,
        keys: Vec::new(),
        ids_at: 0,
    };
    let mut streams_at = 0;
    let mut i = 1;
    while i < a.len() {
        let more = a.len() - 1 - i;
        let o = a.arg(i)?;
        if is(o, "block") && more > 0 {
            if in_script {
                return Err(RespError::BlockInScript(
                    String::from_utf8_lossy(a.arg(0)?).into_owned(),
                ));
            }
            r.block = Some(parse_block_ms(a.arg(i + 1)?)?);
            i += 2;
        } else if is(o, "count") && more > 0 {
            r.count = parse_int(a.arg(i + 1)?)?.max(0) as usize;
            i += 2;
        } else if is(o, "group") && more >= 2 {
            if !xreadgroup {
                return Err(RespError::XReadGroupOption);
            }
            r.group = Some((a.arg(i + 1)?, a.arg(i + 2)?));
            i += 3;
        } else if is(o, "noack") {
            if !xreadgroup {
                return Err(RespError::XReadNoAckOption);
            }
            r.noack = true;
            i += 1;
        } else if is(o, "streams") && more > 0 {
            streams_at = i + 1;
            let n = a.len() - streams_at;
            if n % 2 != 0 {
                // redis 7.0 names XREAD and `$` for XREADGROUP too.
                return Err(RespError::XReadUnbalanced);
            }
            r.keys = (0..n / 2)
                .map(|k| a.arg(streams_at + k))
                .collect::<Result<_, _>>()?;
            r.ids_at = streams_at + n / 2;
            break;
        } else {
            return Err(RespError::Syntax);
        }
    }
    if streams_at == 0 {
        return Err(RespError::Syntax);
    }
    if xreadgroup && r.group.is_none() {
        return Err(RespError::XReadGroupMissingGroup);
    }
    Ok(r)
}

fn xread(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut, flow: &mut Flow) -> Reply {
    let xreadgroup = a.arg(0)?.eq_ignore_ascii_case(b"xreadgroup");
    let r = parse_read(a, cx.conn.in_script, xreadgroup)?;
    let topo = cx.shared.topology.load();
    // The IDs, `$` resolved to the stream's last ID now, in redis's order (WRONGTYPE of a key
    // before a bad ID of a later one). `>` (XREADGROUP) is None.
    // A blocked request run again (on its client's behalf, or by its own connection at the
    // deadline) skips the lookups: its IDs are resolved and its errors are the attempt's
    // to give, so that the blocking cycle answers them and leaves the queues.
    let retry = cx.conn.on_behalf || cx.conn.blocked.is_some();
    let mut ids: Vec<Option<StreamId>> = Vec::with_capacity(r.keys.len());
    for (k, key) in r.keys.iter().enumerate() {
        let arg = a.arg(r.ids_at + k)?;
        let found = if retry {
            None
        } else {
            topo.entry(key, |e| {
                read::<S, _>(e, |s| {
                    (s.last_id, r.group.map(|(g, _)| s.group(g).is_some()))
                })
            })?
        };
        if let Some((g, _)) = r.group {
            if !retry && !matches!(found, Some((_, Some(true)))) {
                return Err(RespError::NoGroupRead(lossy(key), lossy(g)));
            }
        }
        let id = if arg == b"$" {
            if xreadgroup {
                return Err(RespError::XReadGroupDollar);
            }
            Some(found.map_or(StreamId::MIN, |f| f.0))
        } else if arg == b">" {
            if !xreadgroup {
                return Err(RespError::XReadGreaterId);
            }
            None
        } else {
            Some(strict_id(arg)?)
        };
        ids.push(id);
    }
    let count = r.count;
    let keys = r.keys.clone();
    let (group, noack) = (r.group, r.noack);
    let attempt = |cx: &mut Ctx<'_>, out: &mut BytesMut| -> Result<bool, RespError> {
        match group {
            None => {
                let ids: Vec<StreamId> = ids.iter().map(|i| i.unwrap_or(StreamId::MAX)).collect();
                read_once(cx, &keys, &ids, count, out)
            }
            Some((g, c)) => read_group_once(cx, &keys, &ids, g, c, count, noack, out),
        }
    };
    let Some(timeout) = r.block else {
        if !attempt(cx, out)? {
            encode_null_array(out, cx.conn.version);
        }
        return Ok(());
    };
    if xreadgroup {
        return super::types::blocking::run_with_timeout(a, cx, &keys, timeout, out, flow, attempt);
    }
    // The parked request carries the resolved IDs (no `$`), so a retry on the client's behalf
    // reads what was added after it blocked.
    let mut buf = Vec::new();
    let mut ranges = Vec::with_capacity(a.len());
    for (j, arg) in a.iter_from(0).enumerate() {
        let text;
        let arg = if j >= r.ids_at {
            text = ids[j - r.ids_at].unwrap_or(StreamId::MAX).to_text();
            text.as_bytes()
        } else {
            arg
        };
        ranges.push((buf.len(), arg.len()));
        buf.extend_from_slice(arg);
    }
    let resolved = Args::new(&buf, &ranges);
    super::types::blocking::run_with_timeout(&resolved, cx, &keys, timeout, out, flow, attempt)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes the reply of XREAD/XREADGROUP from its per-stream parts (`[key, entries]`).
fn reply_parts(out: &mut BytesMut, parts: Vec<BytesMut>, v: Version) {
    if v == Version::Resp2 {
        encode_array(out, parts.len());
    } else {
        encode_map(out, parts.len(), v);
    }
    for p in parts {
        out.extend_from_slice(&p);
    }
}

/// One XREADGROUP attempt: per stream, the consumer's history from its ID, or (`>`) the
/// entries after the group's last ID, delivered (added to the PEL unless `noack`).
/// Ok(false) if nothing was served.
#[allow(clippy::too_many_arguments)] // The parsed request, passed through.
fn read_group_once(
    cx: &mut Ctx<'_>,
    keys: &[&[u8]],
    ids: &[Option<StreamId>],
    group: &[u8],
    consumer: &[u8],
    count: usize,
    noack: bool,
    out: &mut BytesMut,
) -> Result<bool, RespError> {
    let v = cx.conn.version;
    let on_behalf = cx.conn.on_behalf;
    let now = cx.shared.clock.now_ms();
    let topo = cx.shared.topology.load();
    let n = if count == 0 { usize::MAX } else { count };
    let mut parts: Vec<BytesMut> = Vec::new();
    for (key, &id) in keys.iter().zip(ids) {
        // Set when this read created the consumer (redis announces `xgroup-createconsumer`).
        let mut created: Vec<bool> = Vec::new();
        let part = topo.entry(key, |e| -> Result<Option<BytesMut>, RespError> {
            check::<S>(e)?;
            if e.item().is_none() {
                return Ok(None);
            }
            let r = write_quiet(e, |s| -> Result<Option<BytesMut>, RespError> {
                let Some(g) = s.group(group) else {
                    // Destroyed while the client was blocked (XGROUP DESTROY wakes it).
                    return Err(if on_behalf {
                        RespError::NoGroupBlocked
                    } else {
                        RespError::NoGroupRead(lossy(key), lossy(group))
                    });
                };
                let mut b = BytesMut::new();
                if v == Version::Resp2 {
                    encode_array(&mut b, 2);
                }
                encode_bulk(&mut b, key);
                match id {
                    Some(after) => {
                        // History strictly after the ID given, as redis reads it.
                        let Some(start) = after.incr() else {
                            encode_array(&mut b, 0);
                            return Ok(Some(b));
                        };
                        let r = s.group_mut(group, |g, s| {
                            let (tag, made) = g.consumer_or_create(consumer, now);
                            created.push(made);
                            let pending: Vec<StreamId> =
                                g.pel_from(start, Some(tag)).take(n).map(|p| p.id).collect();
                            encode_array(&mut b, pending.len());
                            for pid in pending {
                                match s.get(pid) {
                                    Some(entry) => {
                                        encode_entry(&mut b, entry);
                                        g.redeliver(pid, now);
                                    }
                                    None => {
                                        encode_array(&mut b, 2);
                                        encode_id(&mut b, pid);
                                        encode_null_array(&mut b, v);
                                    }
                                }
                            }
                        });
                        debug_assert!(r.is_some());
                        Ok(Some(b))
                    }
                    None => {
                        if s.is_empty() || s.last_entry_id() <= g.last_id {
                            return Ok(None);
                        }
                        let Some(from) = g.last_id.incr() else {
                            return Ok(None);
                        };
                        let picked: Vec<StreamId> = s
                            .range(from, StreamId::MAX, false)
                            .take(n)
                            .map(|e| e.id)
                            .collect();
                        s.group_mut(group, |g, s| {
                            let (tag, made) = g.consumer_or_create(consumer, now);
                            created.push(made);
                            encode_array(&mut b, picked.len());
                            for &eid in &picked {
                                if let Some(entry) = s.get(eid) {
                                    encode_entry(&mut b, entry);
                                }
                                if eid > g.last_id {
                                    match g.entries_read {
                                        Some(r) if !s.has_tombstones_from(eid) => {
                                            g.entries_read = Some(r + 1);
                                        }
                                        _ if s.entries_added > 0 => {
                                            g.entries_read = s.estimate_entries_read(eid);
                                        }
                                        _ => {}
                                    }
                                    g.last_id = eid;
                                }
                                if !noack {
                                    g.deliver(eid, tag, now);
                                }
                            }
                        });
                        Ok(Some(b))
                    }
                }
            })?;
            r.transpose().map(Option::flatten)
        })?;
        if created.contains(&true) {
            created_event(cx, key);
        }
        if let Some(b) = part {
            parts.push(b);
        }
    }
    if parts.is_empty() {
        return Ok(false);
    }
    reply_parts(out, parts, v);
    Ok(true)
}

/// `xgroup-createconsumer` for a consumer a read or a claim created.
fn created_event(cx: &Ctx<'_>, key: &[u8]) {
    notify::publish(
        &cx.shared.pubsub,
        notify::STREAM,
        "xgroup-createconsumer",
        key,
    );
}

/// The group named in argument 2 of XGROUP-style commands must exist on a stream at `key`.
/// True when the stream at `e` has group `name` with `consumer` in it.
fn has_consumer(e: &mut Entry<'_>, name: &[u8], consumer: &[u8]) -> Result<bool, RespError> {
    let known = read::<S, _>(e, |s| {
        s.group(name)
            .is_some_and(|g| g.consumer(consumer).is_some())
    })?;
    Ok(known.unwrap_or(false))
}

fn xgroup(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let sub = a.arg(1)?.to_ascii_lowercase();
    if sub == b"help" {
        super::server::help(
            out,
            "XGROUP",
            &[
                "CREATE <key> <groupname> <id|$> [option]",
                "    Create a new consumer group. Options are:",
                "    * MKSTREAM",
                "      Create the empty stream if it does not exist.",
                "    * ENTRIESREAD entries_read",
                "      Set the group's entries_read counter (internal use).",
                "CREATECONSUMER <key> <groupname> <consumer>",
                "    Create a new consumer in the specified group.",
                "DELCONSUMER <key> <groupname> <consumer>",
                "    Remove the specified consumer.",
                "DESTROY <key> <groupname>",
                "    Remove the specified group.",
                "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
                "    Set the current group ID and entries_read counter.",
            ],
        );
        return Ok(());
    }
    let key = a.arg(2)?;
    let name = a.arg(3)?;
    let create = sub == b"create";
    let mut mkstream = false;
    let mut entries_read: Option<u64> = None;
    if create || sub == b"setid" {
        let mut i = 5;
        while i < a.len() {
            if create && is(a.arg(i)?, "mkstream") {
                mkstream = true;
                i += 1;
            } else if is(a.arg(i)?, "entriesread") && i + 1 < a.len() {
                let n = parse_int(a.arg(i + 1)?)?;
                if n < -1 {
                    return Err(RespError::EntriesReadNegative);
                }
                entries_read = u64::try_from(n).ok();
                i += 2;
            } else {
                return Err(subcommand_syntax(a));
            }
        }
    }
    let now = cx.shared.clock.now_ms();
    let topo = cx.shared.topology.load();
    // The events this call publishes (after the stripe lock): `new` and the subcommand's.
    let mut events: Vec<(u32, &'static str)> = Vec::new();
    let r = topo.entry(key, |e| -> Reply {
        check::<S>(e)?;
        let exists = e.item().is_some();
        let has_group = exists && read::<S, _>(e, |s| s.group(name).is_some())?.unwrap_or(false);
        if !mkstream {
            if !exists {
                return Err(RespError::XGroupNeedsKey);
            }
            if !has_group && matches!(&sub[..], b"setid" | b"createconsumer" | b"delconsumer") {
                return Err(RespError::NoGroupForKey(lossy(name), lossy(key)));
            }
        }
        match &sub[..] {
            b"create" if (5..=8).contains(&a.len()) => {
                let id_arg = a.arg(4)?;
                let id = if id_arg == b"$" {
                    read::<S, _>(e, |s| s.last_id)?.unwrap_or(StreamId::MIN)
                } else {
                    strict_id(id_arg)?
                };
                if !exists {
                    e.put_container(S::default().into_container(), crate::store::NEVER)
                        .map_err(store_error)?;
                }
                let made =
                    write_quiet(e, |s| s.create_group(name, id, entries_read))?.unwrap_or(false);
                if !exists {
                    events.push((notify::NEW, "new"));
                }
                if !made {
                    return Err(RespError::BusyGroup);
                }
                events.push((notify::STREAM, "xgroup-create"));
                encode_ok(out);
            }
            b"setid" if a.len() == 5 || a.len() == 7 => {
                let id_arg = a.arg(4)?;
                let id = if id_arg == b"$" {
                    read::<S, _>(e, |s| s.last_id)?.unwrap_or(StreamId::MIN)
                } else {
                    parse_id(id_arg, false, 0, false)?.id
                };
                write_quiet(e, |s| {
                    s.group_mut(name, |g, _| {
                        g.last_id = id;
                        g.entries_read = entries_read;
                    })
                })?;
                events.push((notify::STREAM, "xgroup-setid"));
                encode_ok(out);
            }
            b"destroy" if a.len() == 4 => {
                // Nothing written (no new CAS, no event) when there is no such group.
                let gone = has_group && write_quiet(e, |s| s.destroy_group(name))?.unwrap_or(false);
                if gone {
                    events.push((notify::STREAM, "xgroup-destroy"));
                }
                encode_int(out, i64::from(gone));
            }
            b"createconsumer" if a.len() == 5 => {
                let consumer = a.arg(4)?;
                let known = has_consumer(e, name, consumer)?;
                let made = !known
                    && write_quiet(e, |s| {
                        s.group_mut(name, |g, _| g.consumer_or_create_new(consumer, now))
                    })?
                    .flatten()
                    .unwrap_or(false);
                if made {
                    events.push((notify::STREAM, "xgroup-createconsumer"));
                }
                encode_int(out, i64::from(made));
            }
            b"delconsumer" if a.len() == 5 => {
                let consumer = a.arg(4)?;
                let known = has_consumer(e, name, consumer)?;
                if !known {
                    encode_int(out, 0);
                    return Ok(());
                }
                let n = write_quiet(e, |s| s.group_mut(name, |g, _| g.delete_consumer(consumer)))?
                    .flatten()
                    .flatten()
                    .unwrap_or(0);
                events.push((notify::STREAM, "xgroup-delconsumer"));
                encode_int(out, n as i64);
            }
            _ => return Err(subcommand_syntax(a)),
        }
        Ok(())
    });
    // Published once the stripe lock is released.
    for (class, event) in events {
        notify::publish(&cx.shared.pubsub, class, event, key);
    }
    r?;
    if sub == b"destroy" {
        // Clients blocked in XREADGROUP on this group are answered (NOGROUP).
        cx.shared.waiters.notify(key);
    }
    Ok(())
}

/// redis `addReplySubcommandSyntaxError`.
fn subcommand_syntax(a: &Args<'_>) -> RespError {
    let cmd = lossy(a.arg(0).unwrap_or(b"")).to_ascii_uppercase();
    let upper: &'static str = if cmd == "XGROUP" { "XGROUP" } else { "XINFO" };
    RespError::SubcommandOrArity(lossy(a.arg(1).unwrap_or(b"")), upper)
}

fn xack(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let (key, name) = (a.arg(1)?, a.arg(2)?);
    let topo = cx.shared.topology.load();
    let n = topo.entry(key, |e| -> Result<i64, RespError> {
        check::<S>(e)?;
        let has = read::<S, _>(e, |s| s.group(name).is_some())?.unwrap_or(false);
        if !has {
            return Ok(0);
        }
        let ids = a
            .iter_from(3)
            .map(strict_id)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(write_quiet(e, |s| {
            s.group_mut(name, |g, _| ids.iter().filter(|&&id| g.ack(id)).count())
        })?
        .flatten()
        .unwrap_or(0) as i64)
    })?;
    encode_int(out, n);
    Ok(())
}

fn xpending(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let (key, name) = (a.arg(1)?, a.arg(2)?);
    let summary = a.len() == 3;
    if a.len() != 3 && !(6..=9).contains(&a.len()) {
        return Err(RespError::Syntax);
    }
    let mut range = (StreamId::MIN, StreamId::MAX, 0i64, 0i64, None::<&[u8]>);
    if a.len() >= 6 {
        let mut at = 3;
        if is(a.arg(3)?, "idle") {
            range.3 = parse_int(a.arg(4)?)?;
            if a.len() < 8 {
                return Err(RespError::Syntax);
            }
            at += 2;
        }
        range.2 = parse_int(a.arg(at + 2)?)?.max(0);
        let (mut start, startex) = interval_id(a.arg(at)?, 0)?;
        if startex {
            start = start
                .incr()
                .ok_or_else(|| RespError::IntervalStartInvalid)?;
        }
        let (mut end, endex) = interval_id(a.arg(at + 1)?, u64::MAX)?;
        if endex {
            end = end.decr().ok_or_else(|| RespError::IntervalEndInvalid)?;
        }
        range.0 = start;
        range.1 = end;
        if at + 3 < a.len() {
            range.4 = Some(a.arg(at + 3)?);
        }
    }
    let (start, end, mut count, minidle, consumer) = range;
    let v = cx.conn.version;
    let now = cx.shared.clock.now_ms();
    let topo = cx.shared.topology.load();
    topo.entry(key, |e| -> Reply {
        let done = read::<S, _>(e, |s| -> Reply {
            let Some(g) = s.group(name) else {
                return Err(RespError::NoGroup(lossy(key), lossy(name)));
            };
            if summary {
                encode_array(out, 4);
                encode_int(out, g.pel.len() as i64);
                if g.pel.is_empty() {
                    encode_null(out, v);
                    encode_null(out, v);
                    encode_null_array(out, v);
                    return Ok(());
                }
                encode_id(out, g.pel[0].id);
                encode_id(out, g.pel[g.pel.len() - 1].id);
                let with: Vec<_> = g.consumers.iter().filter(|c| c.pending > 0).collect();
                encode_array(out, with.len());
                for c in with {
                    encode_array(out, 2);
                    encode_bulk(out, &c.name);
                    encode_bulk(out, c.pending.to_string().as_bytes());
                }
                return Ok(());
            }
            let tag = match consumer {
                Some(c) => match g.consumer(c) {
                    Some(c) => Some(c.tag),
                    None => {
                        encode_array(out, 0);
                        return Ok(());
                    }
                },
                None => None,
            };
            let mut rows = Vec::new();
            for p in g.pel_from(start, tag) {
                if count == 0 || p.id > end {
                    break;
                }
                let idle = now as i64 - p.delivery_time as i64;
                if minidle != 0 && idle < minidle {
                    continue;
                }
                count -= 1;
                rows.push((p.id, p.consumer, idle.max(0), p.delivery_count));
            }
            encode_array(out, rows.len());
            for (id, tag, idle, n) in rows {
                encode_array(out, 4);
                encode_id(out, id);
                encode_bulk(out, g.consumer_by_tag(tag).map_or(&b""[..], |c| &c.name));
                encode_int(out, idle);
                encode_int(out, n as i64);
            }
            Ok(())
        })?;
        match done {
            Some(r) => r,
            None => Err(RespError::NoGroup(lossy(key), lossy(name))),
        }
    })
}

fn xclaim(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let (key, name, consumer) = (a.arg(1)?, a.arg(2)?, a.arg(3)?);
    let now = cx.shared.clock.now_ms();
    let topo = cx.shared.topology.load();
    let mut created = false;
    topo.entry(key, |e| -> Reply {
        check::<S>(e)?;
        let has = read::<S, _>(e, |s| s.group(name).is_some())?.unwrap_or(false);
        if !has {
            return Err(RespError::NoGroup(lossy(key), lossy(name)));
        }
        let minidle = super::frame::parse_i64(a.arg(4)?)
            .ok_or(RespError::StreamArg(
                "Invalid min-idle-time argument for XCLAIM",
            ))?
            .max(0);
        let mut ids = Vec::new();
        let mut j = 5;
        while j < a.len() {
            match strict_id(a.arg(j)?) {
                Ok(id) => ids.push(id),
                Err(_) => break,
            }
            j += 1;
        }
        let (mut force, mut justid) = (false, false);
        let mut retrycount: Option<u64> = None;
        let mut delivery: Option<i64> = None;
        let mut last_id = StreamId::MIN;
        while j < a.len() {
            let more = a.len() - 1 - j;
            let opt = a.arg(j)?;
            let num = |j: usize, what: &'static str| {
                super::frame::parse_i64(a.arg(j)?).ok_or(RespError::StreamArg(what))
            };
            if is(opt, "force") {
                force = true;
            } else if is(opt, "justid") {
                justid = true;
            } else if is(opt, "idle") && more > 0 {
                j += 1;
                delivery = Some(now as i64 - num(j, "Invalid IDLE option argument for XCLAIM")?);
            } else if is(opt, "time") && more > 0 {
                j += 1;
                delivery = Some(num(j, "Invalid TIME option argument for XCLAIM")?);
            } else if is(opt, "retrycount") && more > 0 {
                j += 1;
                let n = num(j, "Invalid RETRYCOUNT option argument for XCLAIM")?;
                // redis: a negative count means "not given".
                retrycount = u64::try_from(n).ok();
            } else if is(opt, "lastid") && more > 0 {
                j += 1;
                last_id = strict_id(a.arg(j)?)?;
            } else {
                return Err(RespError::XClaimOption(lossy(opt)));
            }
            j += 1;
        }
        let delivery = match delivery {
            Some(d) if d >= 0 && d <= now as i64 => d as u64,
            _ => now,
        };
        let v = cx.conn.version;
        write_quiet(e, |s| {
            s.group_mut(name, |g, s| {
                if last_id > g.last_id {
                    g.last_id = last_id;
                }
                let mut body = BytesMut::new();
                let mut n = 0;
                let mut tag = None;
                for &id in &ids {
                    if s.get(id).is_none() {
                        if let Some(p) = g.pending(id).copied() {
                            g.ack(p.id);
                        }
                        continue;
                    }
                    if force && g.pending(id).is_none() {
                        g.force_pending(id, now);
                    }
                    let Some(p) = g.pending(id).copied() else {
                        continue;
                    };
                    if p.consumer != u32::MAX && minidle > 0 {
                        let idle = now as i64 - p.delivery_time as i64;
                        if idle < minidle {
                            continue;
                        }
                    }
                    let t = *tag.get_or_insert_with(|| {
                        let (t, made) = g.consumer_or_create(consumer, now);
                        created |= made;
                        t
                    });
                    g.claim(id, t, delivery, retrycount, justid);
                    if justid {
                        encode_id(&mut body, id);
                    } else {
                        match s.get(id) {
                            Some(entry) => encode_entry(&mut body, entry),
                            None => encode_null(&mut body, v),
                        }
                    }
                    n += 1;
                }
                encode_array(out, n);
                out.extend_from_slice(&body);
            })
        })?;
        Ok(())
    })?;
    if created {
        created_event(cx, key);
    }
    Ok(())
}

fn xautoclaim(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let (key, name, consumer) = (a.arg(1)?, a.arg(2)?, a.arg(3)?);
    let minidle = super::frame::parse_i64(a.arg(4)?)
        .ok_or(RespError::StreamArg(
            "Invalid min-idle-time argument for XAUTOCLAIM",
        ))?
        .max(0);
    let (mut start, startex) = interval_id(a.arg(5)?, 0)?;
    if startex {
        start = start
            .incr()
            .ok_or_else(|| RespError::IntervalStartInvalid)?;
    }
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < a.len() {
        let more = a.len() - 1 - j;
        let opt = a.arg(j)?;
        if is(opt, "count") && more > 0 {
            let max = i64::MAX / 16;
            count = match super::frame::parse_i64(a.arg(j + 1)?) {
                Some(n) if (1..=max).contains(&n) => n,
                _ => return Err(RespError::GeoCountNotPositive),
            };
            j += 1;
        } else if is(opt, "justid") {
            justid = true;
        } else {
            return Err(RespError::Syntax);
        }
        j += 1;
    }
    let now = cx.shared.clock.now_ms();
    let topo = cx.shared.topology.load();
    let mut created = false;
    topo.entry(key, |e| -> Reply {
        check::<S>(e)?;
        let has = read::<S, _>(e, |s| s.group(name).is_some())?.unwrap_or(false);
        if !has {
            return Err(RespError::NoGroup(lossy(key), lossy(name)));
        }
        write_quiet(e, |s| {
            s.group_mut(name, |g, s| {
                let mut attempts = count * 10;
                let mut deleted = Vec::new();
                let mut body = BytesMut::new();
                let mut n = 0;
                let mut tag = None;
                // The PEL position walked (entries removed as they go keep it in place).
                let mut pos = g.pel.partition_point(|p| p.id < start);
                loop {
                    if attempts == 0 {
                        break;
                    }
                    attempts -= 1;
                    if count == 0 || pos >= g.pel.len() {
                        break;
                    }
                    let p = g.pel[pos];
                    if s.get(p.id).is_none() {
                        g.ack(p.id);
                        deleted.push(p.id);
                        count -= 1;
                        continue;
                    }
                    pos += 1;
                    if minidle > 0 && (now as i64 - p.delivery_time as i64) < minidle {
                        continue;
                    }
                    let t = *tag.get_or_insert_with(|| {
                        let (t, made) = g.consumer_or_create(consumer, now);
                        created |= made;
                        t
                    });
                    g.claim(p.id, t, now, None, justid);
                    if justid {
                        encode_id(&mut body, p.id);
                    } else if let Some(entry) = s.get(p.id) {
                        encode_entry(&mut body, entry);
                    }
                    n += 1;
                    count -= 1;
                }
                let next = g.pel.get(pos).map_or(StreamId::MIN, |p| p.id);
                encode_array(out, 3);
                encode_id(out, next);
                encode_array(out, n);
                out.extend_from_slice(&body);
                encode_array(out, deleted.len());
                for id in deleted {
                    encode_id(out, id);
                }
            })
        })?;
        Ok(())
    })?;
    if created {
        created_event(cx, key);
    }
    Ok(())
}

fn xinfo(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let sub = a.arg(1)?.to_ascii_lowercase();
    if sub == b"help" {
        super::server::help(
            out,
            "XINFO",
            &[
                "CONSUMERS <key> <groupname>",
                "    Show consumers of <groupname>.",
                "GROUPS <key>",
                "    Show the stream consumer groups.",
                "STREAM <key> [FULL [COUNT <count>]",
                "    Show information about the stream.",
            ],
        );
        return Ok(());
    }
    let key = a.arg(2)?;
    let v = cx.conn.version;
    let now = cx.shared.clock.now_ms();
    let topo = cx.shared.topology.load();
    topo.entry(key, |e| -> Reply {
        let done = read::<S, _>(e, |s| -> Reply {
            match &sub[..] {
                b"consumers" => {
                    let name = a.arg(3)?;
                    let Some(g) = s.group(name) else {
                        return Err(RespError::NoGroupForKey(lossy(name), lossy(key)));
                    };
                    encode_array(out, g.consumers.len());
                    for c in &g.consumers {
                        encode_map(out, 3, v);
                        encode_bulk(out, b"name");
                        encode_bulk(out, &c.name);
                        encode_bulk(out, b"pending");
                        encode_int(out, c.pending as i64);
                        encode_bulk(out, b"idle");
                        encode_int(out, (now as i64 - c.seen_time as i64).max(0));
                    }
                    Ok(())
                }
                b"groups" => {
                    encode_array(out, s.groups().len());
                    for g in s.groups() {
                        encode_map(out, 6, v);
                        encode_bulk(out, b"name");
                        encode_bulk(out, &g.name);
                        encode_bulk(out, b"consumers");
                        encode_int(out, g.consumers.len() as i64);
                        encode_bulk(out, b"pending");
                        encode_int(out, g.pel.len() as i64);
                        encode_bulk(out, b"last-delivered-id");
                        encode_id(out, g.last_id);
                        encode_bulk(out, b"entries-read");
                        match g.entries_read {
                            Some(n) => encode_int(out, n as i64),
                            None => encode_null(out, v),
                        }
                        encode_bulk(out, b"lag");
                        match s.lag(g) {
                            Some(n) => encode_int(out, n as i64),
                            None => encode_null(out, v),
                        }
                    }
                    Ok(())
                }
                b"stream" => {
                    let (full, count) = info_stream_args(a)?;
                    info_stream(out, s, full, count, v);
                    Ok(())
                }
                _ => Err(subcommand_syntax(a)),
            }
        })?;
        match done {
            Some(r) => r,
            None => Err(RespError::NoSuchKey),
        }
    })
}

/// `XINFO STREAM key [FULL [COUNT n]]`: (full, count), count 0 meaning all.
fn info_stream_args(a: &Args<'_>) -> Result<(bool, usize), RespError> {
    if a.len() <= 3 {
        return Ok((false, 10));
    }
    if !is(a.arg(3)?, "full") {
        return Err(subcommand_syntax(a));
    }
    if a.len() == 4 {
        return Ok((true, 10));
    }
    if a.len() != 6 || !is(a.arg(4)?, "count") {
        return Err(subcommand_syntax(a));
    }
    Ok((true, parse_int(a.arg(5)?)?.max(0) as usize))
}

/// XINFO STREAM [FULL [COUNT n]] (redis 7.0.15's fields; `radix-tree-nodes` is an estimate:
/// ringcache has no radix tree).
fn info_stream(out: &mut BytesMut, s: &Stream, full: bool, count: usize, v: Version) {
    encode_map(out, if full { 9 } else { 10 }, v);
    let kv_int = |out: &mut BytesMut, k: &[u8], n: i64| {
        encode_bulk(out, k);
        encode_int(out, n);
    };
    kv_int(out, b"length", s.len() as i64);
    kv_int(out, b"radix-tree-keys", s.node_count() as i64);
    kv_int(out, b"radix-tree-nodes", s.node_count() as i64 + 1);
    encode_bulk(out, b"last-generated-id");
    encode_id(out, s.last_id);
    encode_bulk(out, b"max-deleted-entry-id");
    encode_id(out, s.max_deleted_id);
    kv_int(out, b"entries-added", s.entries_added as i64);
    encode_bulk(out, b"recorded-first-entry-id");
    encode_id(out, s.first_id());
    if !full {
        kv_int(out, b"groups", s.groups().len() as i64);
        let (first, last) = s.edges();
        for (k, e) in [(&b"first-entry"[..], first), (&b"last-entry"[..], last)] {
            encode_bulk(out, k);
            match e {
                Some(e) => encode_entry(out, e),
                None => encode_null(out, v),
            }
        }
        return;
    }
    let n = if count == 0 { usize::MAX } else { count };
    let entries: Vec<&StreamEntry> = s.iter().take(n).collect();
    encode_bulk(out, b"entries");
    encode_array(out, entries.len());
    for e in entries {
        encode_entry(out, e);
    }
    encode_bulk(out, b"groups");
    encode_array(out, s.groups().len());
    for g in s.groups() {
        encode_map(out, 7, v);
        encode_bulk(out, b"name");
        encode_bulk(out, &g.name);
        encode_bulk(out, b"last-delivered-id");
        encode_id(out, g.last_id);
        encode_bulk(out, b"entries-read");
        match g.entries_read {
            Some(r) => encode_int(out, r as i64),
            None => encode_null(out, v),
        }
        encode_bulk(out, b"lag");
        match s.lag(g) {
            Some(l) => encode_int(out, l as i64),
            None => encode_null(out, v),
        }
        let pel: Vec<_> = g.pel.iter().take(n).collect();
        kv_int(out, b"pel-count", g.pel.len() as i64);
        encode_bulk(out, b"pending");
        encode_array(out, pel.len());
        for p in pel {
            encode_array(out, 4);
            encode_id(out, p.id);
            encode_bulk(
                out,
                g.consumer_by_tag(p.consumer).map_or(&b""[..], |c| &c.name),
            );
            encode_int(out, p.delivery_time as i64);
            encode_int(out, p.delivery_count as i64);
        }
        encode_bulk(out, b"consumers");
        encode_array(out, g.consumers.len());
        for c in &g.consumers {
            encode_map(out, 4, v);
            encode_bulk(out, b"name");
            encode_bulk(out, &c.name);
            kv_int(out, b"seen-time", c.seen_time as i64);
            kv_int(out, b"pel-count", c.pending as i64);
            let mine: Vec<_> = g.pel_from(StreamId::MIN, Some(c.tag)).take(n).collect();
            encode_bulk(out, b"pending");
            encode_array(out, mine.len());
            for p in mine {
                encode_array(out, 3);
                encode_id(out, p.id);
                encode_int(out, p.delivery_time as i64);
                encode_int(out, p.delivery_count as i64);
            }
        }
    }
}

/// One XREAD attempt: the entries after each key's ID; Ok(false) if there is none.
fn read_once(
    cx: &mut Ctx<'_>,
    keys: &[&[u8]],
    ids: &[StreamId],
    count: usize,
    out: &mut BytesMut,
) -> Result<bool, RespError> {
    let v = cx.conn.version;
    let topo = cx.shared.topology.load();
    let mut parts: Vec<BytesMut> = Vec::new();
    for (key, &id) in keys.iter().zip(ids) {
        let part = topo.entry(key, |e| {
            read::<S, _>(e, |s| {
                if s.is_empty() || s.last_entry_id() <= id {
                    return None;
                }
                let start = id.incr()?;
                let n = if count == 0 { usize::MAX } else { count };
                let picked: Vec<&StreamEntry> =
                    s.range(start, StreamId::MAX, false).take(n).collect();
                let mut b = BytesMut::new();
                if v == Version::Resp2 {
                    encode_array(&mut b, 2);
                }
                encode_bulk(&mut b, key);
                encode_array(&mut b, picked.len());
                for e in picked {
                    encode_entry(&mut b, e);
                }
                Some(b)
            })
        })?;
        if let Some(Some(b)) = part {
            parts.push(b);
        }
    }
    if parts.is_empty() {
        return Ok(false);
    }
    reply_parts(out, parts, v);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_like_redis() {
        let id = |s: &[u8]| parse_id(s, false, 7, true).map(|p| (p.id.ms, p.id.seq, p.seq_given));
        assert_eq!(id(b"5"), Ok((5, 7, true)));
        assert_eq!(id(b"5-3"), Ok((5, 3, true)));
        assert_eq!(id(b"5-*"), Ok((5, 0, false)));
        assert_eq!(id(b"-"), Ok((0, 0, true)));
        assert_eq!(id(b"+"), Ok((u64::MAX, u64::MAX, true)));
        assert_eq!(id(b"+5"), Ok((5, 7, true)));
        assert_eq!(id(b"18446744073709551615-1"), Ok((u64::MAX, 1, true)));
        assert!(id(b"18446744073709551616").is_err());
        assert!(id(b"-1").is_err());
        assert!(id(b"").is_err());
        assert!(id(b"1-").is_err());
        assert!(id(b"a-1").is_err());
        assert!(strict_id(b"-").is_err());
        assert_eq!(string2ull(b" 12"), Some(12));
        assert_eq!(string2ull(b"-0"), Some(0));
    }
}
