//! Sorted-set commands and their blocking pops.

use std::cmp::Ordering;

use bytes::BytesMut;

use super::{
    Access, Args, blocking, fmt_double, index_window, is, kind_of, parse_count, parse_double, read,
    reply_double, reply_scan, scan_args, store, with_keys, write,
};
use super::{pairs_header, random_members};
use super::{parse_mpop, pop_first};
use crate::proto::Flow;
use crate::proto::resp::args::{check_size, parse_int};
use crate::proto::resp::command::Command;
use crate::proto::resp::conn::{Ctx, Reply};
use crate::proto::resp::error::RespError;
use crate::proto::resp::frame::{
    Version, encode_array, encode_bulk, encode_int, encode_null, encode_null_array,
};
use crate::store::{Container, Kind, Set, ZSet};

const NOT_FLOAT: RespError = RespError::MinMaxNotFloat;
const NOT_LEX: RespError = RespError::MinMaxNotLex;

/// One end of a score range.
#[derive(Clone, Copy)]
struct ScoreBound {
    v: f64,
    excl: bool,
}

fn parse_score_bound(s: &[u8]) -> Result<ScoreBound, RespError> {
    let (excl, body) = match s.first() {
        Some(b'(') => (true, &s[1..]),
        _ => (false, s),
    };
    let text = std::str::from_utf8(body).map_err(|_| NOT_FLOAT)?;
    let v: f64 = text.parse().map_err(|_| NOT_FLOAT)?;
    if v.is_nan() || body.is_empty() {
        return Err(NOT_FLOAT);
    }
    Ok(ScoreBound { v, excl })
}

/// One end of a lex range: `-`, `+`, `[x`, `(x`.
#[derive(Clone)]
enum LexBound {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

fn parse_lex_bound(s: &[u8]) -> Result<LexBound, RespError> {
    match s {
        b"-" => Ok(LexBound::Min),
        b"+" => Ok(LexBound::Max),
        [b'[', rest @ ..] => Ok(LexBound::Incl(rest.to_vec())),
        [b'(', rest @ ..] => Ok(LexBound::Excl(rest.to_vec())),
        _ => Err(NOT_LEX),
    }
}

/// Members strictly before the range starting at `min`.
fn lex_before_min(min: &LexBound, m: &[u8]) -> bool {
    match min {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Incl(x) => m < x.as_slice(),
        LexBound::Excl(x) => m <= x.as_slice(),
    }
}

/// Members up to and including the range ending at `max`.
fn lex_upto_max(max: &LexBound, m: &[u8]) -> bool {
    match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Incl(x) => m <= x.as_slice(),
        LexBound::Excl(x) => m < x.as_slice(),
    }
}

/// What a range query selects.
enum Range {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

/// A resolved range query: ascending rank window, direction and LIMIT.
struct Query {
    range: Range,
    rev: bool,
    offset: i64,
    count: i64,
    with_scores: bool,
}

impl Query {
    /// Ascending ranks `lo..hi` selected in `z`, after REV and LIMIT.
    fn window(&self, z: &ZSet) -> (usize, usize) {
        let len = z.len();
        let (lo, hi) = match &self.range {
            Range::Rank(start, stop) => {
                let (s, e) = index_window(*start, *stop, len);
                if self.rev { (len - e, len - s) } else { (s, e) }
            }
            Range::Score(min, max) => {
                let lo = z.count_while(|s, _| if min.excl { s <= min.v } else { s < min.v });
                let hi = z.count_while(|s, _| if max.excl { s < max.v } else { s <= max.v });
                (lo, hi.max(lo))
            }
            Range::Lex(min, max) => {
                let lo = z.count_while(|_, m| lex_before_min(min, m));
                let hi = z.count_while(|_, m| lex_upto_max(max, m));
                (lo, hi.max(lo))
            }
        };
        if matches!(self.range, Range::Rank(..)) {
            return (lo, hi);
        }
        if self.offset < 0 {
            return (0, 0);
        }
        let n = hi - lo;
        let off = (self.offset as u64).min(n as u64) as usize;
        let take = if self.count < 0 {
            n - off
        } else {
            (self.count as u64).min((n - off) as u64) as usize
        };
        if self.rev {
            (hi - off - take, hi - off)
        } else {
            (lo + off, lo + off + take)
        }
    }
}

/// Parses `min max [BYSCORE|BYLEX] [REV] [LIMIT o c] [WITHSCORES]` of ZRANGE/ZRANGESTORE
/// (`store`: no WITHSCORES) starting at argument `at`.
fn parse_zrange(a: &Args<'_>, at: usize, store: bool) -> Result<Query, RespError> {
    let (mut by_score, mut by_lex, mut rev, mut with_scores) = (false, false, false, false);
    let (mut offset, mut count, mut limit) = (0, -1, false);
    let mut j = at + 2;
    while j < a.len() {
        let opt = a.arg(j)?;
        if !store && is(opt, "withscores") {
            with_scores = true;
        } else if is(opt, "limit") && j + 2 < a.len() {
            offset = parse_int(a.arg(j + 1)?)?;
            count = parse_int(a.arg(j + 2)?)?;
            limit = true;
            j += 2;
        } else if is(opt, "byscore") {
            by_score = true;
        } else if is(opt, "bylex") {
            by_lex = true;
        } else if is(opt, "rev") {
            rev = true;
        } else {
            return Err(RespError::Syntax);
        }
        j += 1;
    }
    if by_score && by_lex {
        return Err(RespError::Syntax);
    }
    if limit && !by_score && !by_lex {
        return Err(RespError::LimitWithoutBy);
    }
    if with_scores && by_lex {
        return Err(RespError::WithScoresByLex);
    }
    let (x, y) = if rev && (by_score || by_lex) {
        (a.arg(at + 1)?, a.arg(at)?)
    } else {
        (a.arg(at)?, a.arg(at + 1)?)
    };
    let range = if by_score {
        Range::Score(parse_score_bound(x)?, parse_score_bound(y)?)
    } else if by_lex {
        Range::Lex(parse_lex_bound(x)?, parse_lex_bound(y)?)
    } else {
        Range::Rank(parse_int(x)?, parse_int(y)?)
    };
    Ok(Query {
        range,
        rev,
        offset,
        count,
        with_scores,
    })
}

/// Parses the legacy forms: ZRANGEBYSCORE/ZREVRANGEBYSCORE/ZRANGEBYLEX/ZREVRANGEBYLEX/ZREVRANGE.
fn parse_legacy(cmd: Command, a: &Args<'_>) -> Result<Query, RespError> {
    let rev = matches!(
        cmd,
        Command::ZRevRangeByScore | Command::ZRevRangeByLex | Command::ZRevRange
    );
    let lex = matches!(cmd, Command::ZRangeByLex | Command::ZRevRangeByLex);
    let (mut with_scores, mut offset, mut count) = (false, 0, -1);
    let mut j = 4;
    while j < a.len() {
        let opt = a.arg(j)?;
        if is(opt, "withscores") {
            if lex {
                return Err(RespError::WithScoresByLex);
            }
            with_scores = true;
            j += 1;
        } else if is(opt, "limit") && j + 2 < a.len() {
            if cmd == Command::ZRevRange {
                return Err(RespError::LimitWithoutBy);
            }
            offset = parse_int(a.arg(j + 1)?)?;
            count = parse_int(a.arg(j + 2)?)?;
            j += 3;
        } else {
            return Err(RespError::Syntax);
        }
    }
    let (x, y) = if rev && cmd != Command::ZRevRange {
        (a.arg(3)?, a.arg(2)?)
    } else {
        (a.arg(2)?, a.arg(3)?)
    };
    let range = match cmd {
        Command::ZRevRange => Range::Rank(parse_int(x)?, parse_int(y)?),
        _ if lex => Range::Lex(parse_lex_bound(x)?, parse_lex_bound(y)?),
        _ => Range::Score(parse_score_bound(x)?, parse_score_bound(y)?),
    };
    Ok(Query {
        range,
        rev,
        offset,
        count,
        with_scores,
    })
}

fn reply_range(out: &mut BytesMut, z: &ZSet, q: &Query, v: Version) {
    let (lo, hi) = q.window(z);
    pairs_header(out, hi - lo, q.with_scores, v);
    for (m, s) in z.range(lo, hi, q.rev) {
        if q.with_scores && v == Version::Resp3 {
            encode_array(out, 2);
        }
        encode_bulk(out, m);
        if q.with_scores {
            reply_double(out, s, v);
        }
    }
}

fn collect_range(z: &ZSet, q: &Query) -> Vec<(Vec<u8>, f64)> {
    let (lo, hi) = q.window(z);
    z.range(lo, hi, q.rev)
        .map(|(m, s)| (m.to_vec(), s))
        .collect()
}

/// Writes popped (member, score) pairs: flat in RESP2, pairs in RESP3 when `nested`.
fn reply_popped(out: &mut BytesMut, items: &[(Box<[u8]>, f64)], pairs: bool, v: Version) {
    encode_array(out, if pairs { items.len() } else { items.len() * 2 });
    for (m, s) in items {
        if pairs {
            encode_array(out, 2);
        }
        encode_bulk(out, m);
        reply_double(out, *s, v);
    }
}

fn pop(z: &mut ZSet, max: bool, count: usize) -> Vec<(Box<[u8]>, f64)> {
    let n = count.min(z.len());
    (0..n)
        .map(|_| z.remove_at(if max { z.len() - 1 } else { 0 }))
        .collect()
}

/// Runs a sorted-set command (its arity is checked).
pub(crate) fn handle(
    cmd: Command,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    flow: &mut Flow,
) -> Reply {
    let topo = cx.shared.topology.load();
    let v = cx.conn.version;
    let key = a.arg(1)?;
    match cmd {
        Command::ZAdd => zadd(cx, a, out),
        Command::ZIncrBy => (|| {
            let by = parse_double(a.arg(2)?).ok_or_else(|| RespError::NotFloat)?;
            check_size(cx.limits, a.arg(3)?.len())?;
            let r = topo.entry(key, |e| {
                write::<ZSet, _>(e, true, |z| {
                    let new = z.score(a.arg(3)?).unwrap_or(0.0) + by;
                    if new.is_nan() {
                        return Err(RespError::ScoreNan);
                    }
                    z.insert(a.arg(3)?, new);
                    Ok(new)
                })
            })?;
            let new = r.unwrap_or(Ok(0.0))?;
            cx.shared.waiters.notify(key);
            reply_double(out, new, v);
            Ok(())
        })(),
        Command::ZRem => (|| {
            let n = topo.entry(key, |e| {
                write::<ZSet, _>(e, false, |z| {
                    a.iter_from(2).filter(|m| z.remove(m).is_some()).count()
                })
            })?;
            encode_int(out, n.unwrap_or(0) as i64);
            Ok(())
        })(),
        Command::ZScore => (|| {
            let m = a.arg(2)?;
            match topo
                .entry(key, |e| read::<ZSet, _>(e, |z| z.score(m)))?
                .flatten()
            {
                Some(s) => reply_double(out, s, v),
                None => encode_null(out, v),
            }
            Ok(())
        })(),
        Command::ZMScore => (|| {
            let scores = topo.entry(key, |e| {
                read::<ZSet, _>(e, |z| {
                    a.iter_from(2).map(|m| z.score(m)).collect::<Vec<_>>()
                })
            })?;
            encode_array(out, a.len() - 2);
            match scores {
                Some(s) => s.into_iter().for_each(|s| match s {
                    Some(s) => reply_double(out, s, v),
                    None => encode_null(out, v),
                }),
                None => (2..a.len()).for_each(|_| encode_null(out, v)),
            }
            Ok(())
        })(),
        Command::ZCard => (|| {
            let n = topo.entry(key, |e| read::<ZSet, _>(e, |z| z.len()))?;
            encode_int(out, n.unwrap_or(0) as i64);
            Ok(())
        })(),
        Command::ZCount | Command::ZLexCount => (|| {
            let range = if cmd == Command::ZCount {
                Range::Score(parse_score_bound(a.arg(2)?)?, parse_score_bound(a.arg(3)?)?)
            } else {
                Range::Lex(parse_lex_bound(a.arg(2)?)?, parse_lex_bound(a.arg(3)?)?)
            };
            let q = Query {
                range,
                rev: false,
                offset: 0,
                count: -1,
                with_scores: false,
            };
            let n = topo.entry(key, |e| {
                read::<ZSet, _>(e, |z| {
                    let (lo, hi) = q.window(z);
                    hi - lo
                })
            })?;
            encode_int(out, n.unwrap_or(0) as i64);
            Ok(())
        })(),
        Command::ZRank | Command::ZRevRank => (|| {
            let m = a.arg(2)?;
            let with_score = match a.len() {
                3 => false,
                4 if is(a.arg(3)?, "withscore") => true,
                4 => return Err(RespError::Syntax),
                _ => return Err(RespError::WrongArity(cmd.wire())),
            };
            let r = topo.entry(key, |e| {
                read::<ZSet, _>(e, |z| {
                    z.rank(m).map(|r| {
                        let r = if cmd == Command::ZRevRank {
                            z.len() - 1 - r
                        } else {
                            r
                        };
                        (r, z.score(m).unwrap_or(0.0))
                    })
                })
            })?;
            match r.flatten() {
                Some((r, s)) if with_score => {
                    encode_array(out, 2);
                    encode_int(out, r as i64);
                    reply_double(out, s, v);
                }
                Some((r, _)) => encode_int(out, r as i64),
                None if with_score => encode_null_array(out, v),
                None => encode_null(out, v),
            }
            Ok(())
        })(),
        Command::ZRange
        | Command::ZRangeByScore
        | Command::ZRevRangeByScore
        | Command::ZRangeByLex
        | Command::ZRevRangeByLex
        | Command::ZRevRange => (|| {
            let q = if cmd == Command::ZRange {
                parse_zrange(a, 2, false)?
            } else {
                parse_legacy(cmd, a)?
            };
            let done = topo.entry(key, |e| read::<ZSet, _>(e, |z| reply_range(out, z, &q, v)))?;
            if done.is_none() {
                encode_array(out, 0);
            }
            Ok(())
        })(),
        Command::ZRangeStore => (|| {
            let q = parse_zrange(a, 3, true)?;
            let (dst, src) = (a.arg(1)?, a.arg(2)?);
            let n = with_keys(&topo, &[dst, src], |acc: &mut Access<'_, '_>| {
                let items = acc.entry(src, |e| read::<ZSet, _>(e, |z| collect_range(z, &q)))?;
                let mut z = ZSet::default();
                for (m, s) in items.unwrap_or_default() {
                    z.insert(&m, s);
                }
                let n = z.len();
                acc.entry(dst, |e| store(e, Container::ZSet(z)))?;
                Ok::<_, RespError>(n)
            })?;
            cx.shared.waiters.notify(dst);
            encode_int(out, n as i64);
            Ok(())
        })(),
        Command::ZPopMin | Command::ZPopMax => (|| {
            let count = match a.len() {
                2 => None,
                3 => Some(parse_count(a.arg(2)?)?),
                _ => return Err(RespError::Syntax),
            };
            let popped = topo.entry(key, |e| {
                write::<ZSet, _>(e, false, |z| {
                    pop(z, cmd == Command::ZPopMax, count.unwrap_or(1))
                })
            })?;
            reply_popped(
                out,
                &popped.unwrap_or_default(),
                count.is_some() && v == Version::Resp3,
                v,
            );
            Ok(())
        })(),
        Command::ZMPop | Command::BZMPop => (|| {
            let blocking = cmd == Command::BZMPop;
            let (keys, min, count) = parse_mpop(a, blocking, "min", "max")?;
            let attempt = |cx: &mut Ctx<'_>, out: &mut BytesMut| {
                let pop = |z: &mut ZSet| Some(pop(z, !min, count)).filter(|p| !p.is_empty());
                pop_first(cx, out, &keys, pop, |out, k, p, v| {
                    encode_array(out, 2);
                    encode_bulk(out, k);
                    reply_popped(out, &p, true, v);
                })
            };
            let timeout = if blocking { Some(a.arg(1)?) } else { None };
            blocking::run_or_answer(a, cx, &keys, timeout, out, flow, encode_null_array, attempt)
        })(),
        Command::BZPopMin | Command::BZPopMax => {
            let max = cmd == Command::BZPopMax;
            let keys: Vec<&[u8]> = (1..a.len() - 1)
                .map(|i| a.arg(i))
                .collect::<Result<_, _>>()?;
            let attempt = |cx: &mut Ctx<'_>, out: &mut BytesMut| {
                let pop = |z: &mut ZSet| pop(z, max, 1).into_iter().next();
                pop_first(cx, out, &keys, pop, |out, k, (m, s), v| {
                    encode_array(out, 3);
                    encode_bulk(out, k);
                    encode_bulk(out, &m);
                    reply_double(out, s, v);
                })
            };
            blocking::run(a, cx, &keys, a.arg(a.len() - 1)?, out, flow, attempt)
        }
        Command::ZRemRangeByRank | Command::ZRemRangeByScore | Command::ZRemRangeByLex => (|| {
            let range = match cmd {
                Command::ZRemRangeByRank => {
                    Range::Rank(parse_int(a.arg(2)?)?, parse_int(a.arg(3)?)?)
                }
                Command::ZRemRangeByScore => {
                    Range::Score(parse_score_bound(a.arg(2)?)?, parse_score_bound(a.arg(3)?)?)
                }
                _ => Range::Lex(parse_lex_bound(a.arg(2)?)?, parse_lex_bound(a.arg(3)?)?),
            };
            let q = Query {
                range,
                rev: false,
                offset: 0,
                count: -1,
                with_scores: false,
            };
            let n = topo.entry(key, |e| {
                write::<ZSet, _>(e, false, |z| {
                    let (lo, hi) = q.window(z);
                    for _ in lo..hi {
                        z.remove_at(lo);
                    }
                    hi - lo
                })
            })?;
            encode_int(out, n.unwrap_or(0) as i64);
            Ok(())
        })(
        ),
        Command::ZUnion | Command::ZInter | Command::ZDiff => combine_cmd(cx, cmd, a, out, false),
        Command::ZUnionStore | Command::ZInterStore | Command::ZDiffStore => {
            combine_cmd(cx, cmd, a, out, true)
        }
        Command::ZRandMember => random_members::<ZSet>(&topo, a, v, out, Some("withscores")),
        Command::ZInterCard => zintercard(cx, a, out),
        Command::ZScan => (|| {
            let s = scan_args(a)?;
            let (next, items) = topo
                .entry(key, |e| {
                    read::<ZSet, _>(e, |z| {
                        let (lo, hi, next) = s.window(z.len());
                        let mut items = Vec::new();
                        for (m, sc) in (lo..hi).map(|i| z.slot(i)) {
                            if s.matches(m) {
                                items.push(m.to_vec());
                                items.push(fmt_double(sc).into_bytes());
                            }
                        }
                        (next, items)
                    })
                })?
                .unwrap_or((0, Vec::new()));
            reply_scan(out, next, &items);
            Ok(())
        })(),
        _ => Err(RespError::NotInGroup(cmd.wire())),
    }
}

fn zadd(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, false);
    let mut j = 2;
    while j < a.len() {
        let o = a.arg(j)?;
        if is(o, "nx") {
            nx = true;
        } else if is(o, "xx") {
            xx = true;
        } else if is(o, "gt") {
            gt = true;
        } else if is(o, "lt") {
            lt = true;
        } else if is(o, "ch") {
            ch = true;
        } else if is(o, "incr") {
            incr = true;
        } else {
            break;
        }
        j += 1;
    }
    let pairs = a.len() - j;
    if pairs == 0 || pairs % 2 == 1 {
        return Err(RespError::Syntax);
    }
    if nx && xx {
        return Err(RespError::XxAndNx);
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(RespError::GtLtNx);
    }
    if incr && pairs > 2 {
        return Err(RespError::IncrOnePair);
    }
    let mut items = Vec::with_capacity(pairs / 2);
    for i in (j..a.len()).step_by(2) {
        let s = parse_double(a.arg(i)?).ok_or_else(|| RespError::NotFloat)?;
        check_size(cx.limits, a.arg(i + 1)?.len())?;
        items.push((s, a.arg(i + 1)?));
    }
    let v = cx.conn.version;
    let key = a.arg(1)?;
    let topo = cx.shared.topology.load();
    let r = topo.entry(key, |e| {
        write::<ZSet, _>(e, !xx, |z| {
            let (mut added, mut changed) = (0i64, 0i64);
            let mut last = None;
            for &(s, m) in &items {
                let old = z.score(m);
                let new = if incr { old.unwrap_or(0.0) + s } else { s };
                if new.is_nan() {
                    return Err(RespError::ScoreNan);
                }
                match old {
                    None if xx => continue,
                    None => {
                        z.insert(m, new);
                        added += 1;
                        last = Some(new);
                    }
                    Some(_) if nx => continue,
                    Some(o) => {
                        if (gt && new <= o) || (lt && new >= o) {
                            continue;
                        }
                        if o != new {
                            z.insert(m, new);
                            changed += 1;
                        }
                        last = Some(new);
                    }
                }
            }
            Ok((added, changed, last))
        })
    })?;
    let (added, changed, last) = r.unwrap_or(Ok((0, 0, None)))?;
    if added > 0 || changed > 0 {
        cx.shared.waiters.notify(key);
    }
    if incr {
        match last {
            Some(s) => reply_double(out, s, v),
            None => encode_null(out, v),
        }
    } else {
        encode_int(out, if ch { added + changed } else { added });
    }
    Ok(())
}

/// (member, score) pairs read out of an input key.
type Scored = Vec<(Vec<u8>, f64)>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Agg {
    Sum,
    Min,
    Max,
}

fn combine_cmd(
    cx: &mut Ctx<'_>,
    cmd: Command,
    a: &Args<'_>,
    out: &mut BytesMut,
    store_it: bool,
) -> Reply {
    let base = usize::from(store_it) + 1;
    let n = parse_int(a.arg(base)?)?;
    if n <= 0 {
        return Err(RespError::NeedInputKey(cmd.wire()));
    }
    if n as u64 > (a.len() - base - 1) as u64 {
        return Err(RespError::Syntax);
    }
    let n = n as usize;
    let keys: Vec<&[u8]> = (0..n)
        .map(|i| a.arg(base + 1 + i))
        .collect::<Result<_, _>>()?;
    let is_diff = matches!(cmd, Command::ZDiff | Command::ZDiffStore);
    let mut weights = vec![1.0f64; n];
    let mut agg = Agg::Sum;
    let mut with_scores = false;
    let mut j = base + 1 + n;
    while j < a.len() {
        let o = a.arg(j)?;
        let rest = a.len() - j - 1;
        if !is_diff && is(o, "weights") && rest >= n {
            for (i, w) in weights.iter_mut().enumerate() {
                *w = parse_double(a.arg(j + 1 + i)?).ok_or_else(|| RespError::WeightNotFloat)?;
            }
            j += n + 1;
        } else if !is_diff && is(o, "aggregate") && rest >= 1 {
            let x = a.arg(j + 1)?;
            agg = if is(x, "sum") {
                Agg::Sum
            } else if is(x, "min") {
                Agg::Min
            } else if is(x, "max") {
                Agg::Max
            } else {
                return Err(RespError::Syntax);
            };
            j += 2;
        } else if !store_it && is(o, "withscores") {
            with_scores = true;
            j += 1;
        } else {
            return Err(RespError::Syntax);
        }
    }
    let topo = cx.shared.topology.load();
    let mut all: Vec<&[u8]> = keys.clone();
    if store_it {
        all.push(a.arg(1)?);
    }
    let v = cx.conn.version;
    let result = with_keys(&topo, &all, |acc: &mut Access<'_, '_>| {
        let mut inputs: Vec<Option<Scored>> = Vec::with_capacity(n);
        for k in &keys {
            let r = acc.entry(k, |e| match kind_of(e) {
                None => Ok(None),
                Some(Kind::ZSet) => {
                    read::<ZSet, _>(e, |z| z.iter().map(|(m, s)| (m.to_vec(), s)).collect())
                }
                Some(Kind::Set) => {
                    read::<Set, _>(e, |s| s.iter().map(|m| (m.to_vec(), 1.0)).collect())
                }
                Some(_) => Err(RespError::WrongType),
            })?;
            inputs.push(r);
        }
        let mut z = ZSet::default();
        let mut it = inputs.into_iter().enumerate();
        let (_, first) = it.next().expect("n >= 1");
        for (m, s) in first.unwrap_or_default() {
            z.insert(&m, weighted(s, weights[0]));
        }
        for (i, input) in it {
            let input = input.unwrap_or_default();
            match cmd {
                Command::ZUnion | Command::ZUnionStore => {
                    for (m, s) in input {
                        let s = weighted(s, weights[i]);
                        let new = match z.score(&m) {
                            Some(o) => aggregate(o, s, agg),
                            None => s,
                        };
                        z.insert(&m, new);
                    }
                }
                Command::ZInter | Command::ZInterStore => {
                    let mut next = ZSet::default();
                    for (m, s) in input {
                        if let Some(o) = z.score(&m) {
                            next.insert(&m, aggregate(o, weighted(s, weights[i]), agg));
                        }
                    }
                    z = next;
                }
                _ => {
                    for (m, _) in input {
                        z.remove(&m);
                    }
                }
            }
        }
        if store_it {
            let len = z.len();
            acc.entry(a.arg(1)?, |e| store(e, Container::ZSet(z)))?;
            return Ok::<_, RespError>((len, None));
        }
        Ok((z.len(), Some(z)))
    })?;
    match result {
        (len, None) => {
            cx.shared.waiters.notify(a.arg(1)?);
            encode_int(out, len as i64);
        }
        (_, Some(z)) => {
            let q = Query {
                range: Range::Rank(0, -1),
                rev: false,
                offset: 0,
                count: -1,
                with_scores,
            };
            reply_range(out, &z, &q, v);
        }
    }
    Ok(())
}

fn weighted(s: f64, w: f64) -> f64 {
    let r = s * w;
    if r.is_nan() { 0.0 } else { r }
}

fn aggregate(a: f64, b: f64, agg: Agg) -> f64 {
    match agg {
        Agg::Sum => {
            let r = a + b;
            if r.is_nan() { 0.0 } else { r }
        }
        Agg::Min => {
            if b.partial_cmp(&a) == Some(Ordering::Less) {
                b
            } else {
                a
            }
        }
        Agg::Max => {
            if b.partial_cmp(&a) == Some(Ordering::Greater) {
                b
            } else {
                a
            }
        }
    }
}

/// ZINTERCARD numkeys key... [LIMIT n]: the size of the intersection (sets count as sorted
/// sets of score 1), at most `n` when `n > 0`. Every key's type is checked before a missing
/// one makes the answer 0, as redis does; atomic when the keys share a node, like ZINTER.
fn zintercard(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let n = parse_int(a.arg(1)?)?;
    if n <= 0 {
        return Err(RespError::NeedInputKey(Command::ZInterCard.wire()));
    }
    if n as u64 > (a.len() - 2) as u64 {
        return Err(RespError::Syntax);
    }
    let n = n as usize;
    let keys: Vec<&[u8]> = (0..n).map(|i| a.arg(2 + i)).collect::<Result<_, _>>()?;
    let topo = cx.shared.topology.load();
    // The first key's members are the candidates, filtered by each further key in place (no
    // copy of the others: the same big key may be named thousands of times). None: a key is
    // missing, the intersection is empty (every key's type is still checked).
    let candidates = with_keys(&topo, &keys, |acc: &mut Access<'_, '_>| {
        let mut candidates: Option<Vec<Vec<u8>>> = Some(Vec::new());
        for (i, k) in keys.iter().enumerate() {
            acc.entry(k, |e| {
                let kind = kind_of(e);
                let Some(c) = candidates.as_mut() else {
                    return match kind {
                        None | Some(Kind::ZSet | Kind::Set) => Ok(()),
                        Some(_) => Err(RespError::WrongType),
                    };
                };
                let found = match kind {
                    None => None,
                    Some(Kind::ZSet) if i == 0 => {
                        read::<ZSet, _>(e, |z| *c = z.iter().map(|(m, _)| m.to_vec()).collect())?
                    }
                    Some(Kind::Set) if i == 0 => {
                        read::<Set, _>(e, |s| *c = s.iter().map(<[u8]>::to_vec).collect())?
                    }
                    Some(Kind::ZSet) => read::<ZSet, _>(e, |z| c.retain(|m| z.score(m).is_some()))?,
                    Some(Kind::Set) => read::<Set, _>(e, |s| c.retain(|m| s.contains(m)))?,
                    Some(_) => return Err(RespError::WrongType),
                };
                if found.is_none() {
                    candidates = None;
                }
                Ok(())
            })?;
        }
        Ok::<_, RespError>(candidates)
    })?;
    // redis reads the options only after every key's type was checked.
    let mut limit = 0usize;
    let mut j = 2 + n;
    while j < a.len() {
        if is(a.arg(j)?, "limit") && j + 1 < a.len() {
            let l = parse_int(a.arg(j + 1)?).map_err(|_| RespError::LimitNegative)?;
            if l < 0 {
                return Err(RespError::LimitNegative);
            }
            limit = l as usize;
            j += 2;
        } else {
            return Err(RespError::Syntax);
        }
    }
    let count = candidates.map_or(0, |c| {
        if limit > 0 {
            c.len().min(limit)
        } else {
            c.len()
        }
    });
    encode_int(out, count as i64);
    Ok(())
}
