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
use super::types::{check, is, read, write};
use crate::proto::Flow;
use crate::store::stream::{StreamEntry, Trim};
use crate::store::{Stream, StreamId};

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
    let added = topo.entry(key, |e| -> Result<Option<StreamId>, RespError> {
        check::<S>(e)?;
        if e.item().is_none() && t.nomkstream {
            return Ok(None);
        }
        if e.item().is_none() {
            e.put_container(S::default().into_container(), crate::store::NEVER)
                .map_err(store_error)?;
        }
        let r = write::<S, _>(e, false, |s| -> Result<StreamId, RespError> {
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
            if let Some(how) = t.trim {
                s.trim(how, t.approx, t.limit);
            }
            Ok(id)
        })?;
        r.transpose()
    })?;
    match added {
        Some(id) => {
            encode_id(out, id);
            cx.shared.waiters.notify(key);
        }
        None => encode_null(out, cx.conn.version),
    }
    Ok(())
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
        Ok(write::<S, _>(e, false, |s| {
            ids.iter().filter(|&&id| s.delete(id)).count() as u64
        })?
        .unwrap_or(0))
    })?;
    encode_int(out, n as i64);
    Ok(())
}

fn xtrim(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let t = parse_add_trim(a, false)?;
    let how = t.trim.expect("XTRIM has a strategy (checked)");
    let topo = cx.shared.topology.load();
    let n = topo.entry(a.arg(1)?, |e| {
        write::<S, _>(e, false, |s| s.trim(how, t.approx, t.limit))
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
        write::<S, _>(e, false, |s| {
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

/// Parsed XREAD arguments.
struct ReadArgs<'a> {
    block: Option<Option<Duration>>,
    count: usize,
    keys: Vec<&'a [u8]>,
    /// Position of the first ID.
    ids_at: usize,
}

fn parse_read<'a>(a: &Args<'a>, in_script: bool) -> Result<ReadArgs<'a>, RespError> {
    let mut r = ReadArgs {
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
            return Err(RespError::XReadGroupOption);
        } else if is(o, "noack") {
            return Err(RespError::XReadNoAckOption);
        } else if is(o, "streams") && more > 0 {
            streams_at = i + 1;
            let n = a.len() - streams_at;
            if n % 2 != 0 {
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
    Ok(r)
}

fn xread(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut, flow: &mut Flow) -> Reply {
    let r = parse_read(a, cx.conn.in_script)?;
    let topo = cx.shared.topology.load();
    // The IDs, `$` resolved to the stream's last ID now, in redis's order (WRONGTYPE of a key
    // before a bad ID of a later one).
    let mut ids = Vec::with_capacity(r.keys.len());
    for (k, key) in r.keys.iter().enumerate() {
        let arg = a.arg(r.ids_at + k)?;
        let last = topo.entry(key, |e| read::<S, _>(e, |s| s.last_id))?;
        let id = if arg == b"$" {
            last.unwrap_or(StreamId::MIN)
        } else if arg == b">" {
            return Err(RespError::XReadGreaterId);
        } else {
            strict_id(arg)?
        };
        ids.push(id);
    }
    let count = r.count;
    let keys = r.keys.clone();
    let attempt = |cx: &mut Ctx<'_>, out: &mut BytesMut| -> Result<bool, RespError> {
        read_once(cx, &keys, &ids, count, out)
    };
    let Some(timeout) = r.block else {
        if !attempt(cx, out)? {
            encode_null_array(out, cx.conn.version);
        }
        return Ok(());
    };
    // The parked request carries the resolved IDs (no `$`), so a retry on the client's behalf
    // reads what was added after it blocked.
    let mut buf = Vec::new();
    let mut ranges = Vec::with_capacity(a.len());
    for (j, arg) in a.iter_from(0).enumerate() {
        let text;
        let arg = if j >= r.ids_at {
            text = ids[j - r.ids_at].to_text();
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
    if v == Version::Resp2 {
        encode_array(out, parts.len());
    } else {
        encode_map(out, parts.len(), v);
    }
    for p in parts {
        out.extend_from_slice(&p);
    }
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
