//! List commands, LMOVE/RPOPLPUSH and their blocking forms.

use bytes::BytesMut;

use super::{Access, Args, blocking, check, index_window, is, parse_count, read, with_keys, write};
use super::{parse_mpop, pop_first};
use crate::proto::Flow;
use crate::proto::resp::args::{check_size, parse_int};
use crate::proto::resp::command::Command;
use crate::proto::resp::conn::{Ctx, Reply};
use crate::proto::resp::error::RespError;
use crate::proto::resp::frame::{
    encode_array, encode_bulk, encode_int, encode_null, encode_null_array, encode_ok,
};
use crate::store::List;

/// Runs a list command (its arity is checked).
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
        Command::LPush | Command::RPush | Command::LPushX | Command::RPushX => (|| {
            for x in a.iter_from(2) {
                check_size(cx.limits, x.len())?;
            }
            let front = matches!(cmd, Command::LPush | Command::LPushX);
            let create = matches!(cmd, Command::LPush | Command::RPush);
            let n = topo.entry(key, |e| {
                write::<List, _>(e, create, |l| {
                    for x in a.iter_from(2) {
                        l.push(x, front);
                    }
                    l.len()
                })
            })?;
            if n.is_some() {
                cx.shared.waiters.notify(key);
            }
            encode_int(out, n.unwrap_or(0) as i64);
            Ok(())
        })(),
        Command::LPop | Command::RPop => (|| {
            let front = cmd == Command::LPop;
            let count = match a.len() {
                2 => None,
                3 => Some(parse_count(a.arg(2)?)?),
                _ => return Err(RespError::WrongArity(cmd.wire())),
            };
            let popped = topo.entry(key, |e| {
                write::<List, _>(e, false, |l| {
                    let n = count.unwrap_or(1).min(l.len());
                    (0..n).filter_map(|_| l.pop(front)).collect::<Vec<_>>()
                })
            })?;
            match (popped, count) {
                (None, None) => encode_null(out, v),
                (None, Some(_)) => encode_null_array(out, v),
                (Some(p), None) => match p.first() {
                    Some(x) => encode_bulk(out, x),
                    None => encode_null(out, v),
                },
                (Some(p), Some(_)) => {
                    encode_array(out, p.len());
                    for x in &p {
                        encode_bulk(out, x);
                    }
                }
            }
            Ok(())
        })(),
        Command::LLen => (|| {
            let n = topo.entry(key, |e| read::<List, _>(e, |l| l.len()))?;
            encode_int(out, n.unwrap_or(0) as i64);
            Ok(())
        })(),
        Command::LRange => (|| {
            let (start, stop) = (parse_int(a.arg(2)?)?, parse_int(a.arg(3)?)?);
            topo.entry(key, |e| {
                let done = read::<List, _>(e, |l| {
                    let (lo, hi) = index_window(start, stop, l.len());
                    encode_array(out, hi - lo);
                    for x in l.iter().skip(lo).take(hi - lo) {
                        encode_bulk(out, x);
                    }
                })?;
                if done.is_none() {
                    encode_array(out, 0);
                }
                Ok(())
            })
        })(),
        Command::LIndex => (|| {
            let i = parse_int(a.arg(2)?)?;
            topo.entry(key, |e| {
                let found = read::<List, _>(e, |l| {
                    let idx = if i < 0 { l.len() as i64 + i } else { i };
                    match usize::try_from(idx).ok().and_then(|x| l.get(x)) {
                        Some(x) => {
                            encode_bulk(out, x);
                            true
                        }
                        None => false,
                    }
                })?;
                if found != Some(true) {
                    encode_null(out, v);
                }
                Ok(())
            })
        })(),
        Command::LSet => (|| {
            let i = parse_int(a.arg(2)?)?;
            let value = a.arg(3)?;
            check_size(cx.limits, value.len())?;
            topo.entry(key, |e| {
                let ok = write::<List, _>(e, false, |l| {
                    let idx = if i < 0 { l.len() as i64 + i } else { i };
                    match usize::try_from(idx).ok().filter(|&x| x < l.len()) {
                        Some(x) => {
                            l.set(x, value);
                            true
                        }
                        None => false,
                    }
                })?;
                match ok {
                    None => Err(RespError::NoSuchKey),
                    Some(false) => Err(RespError::IndexOutOfRange),
                    Some(true) => {
                        encode_ok(out);
                        Ok(())
                    }
                }
            })
        })(),
        Command::LRem => (|| {
            let count = parse_int(a.arg(2)?)?;
            let elem = a.arg(3)?;
            let n = topo.entry(key, |e| {
                write::<List, _>(e, false, |l| {
                    let len = l.len();
                    let limit = if count == 0 {
                        usize::MAX
                    } else {
                        count.unsigned_abs() as usize
                    };
                    let matching: Vec<usize> = if count >= 0 {
                        l.iter()
                            .enumerate()
                            .filter(|(_, x)| *x == elem)
                            .map(|(i, _)| i)
                            .take(limit)
                            .collect()
                    } else {
                        l.iter()
                            .enumerate()
                            .rev()
                            .filter(|(_, x)| *x == elem)
                            .map(|(i, _)| i)
                            .take(limit)
                            .collect()
                    };
                    let mut marks = vec![false; len];
                    for &i in &matching {
                        marks[i] = true;
                    }
                    l.retain_indexed(|i, _| !marks[i]);
                    matching.len()
                })
            })?;
            encode_int(out, n.unwrap_or(0) as i64);
            Ok(())
        })(),
        Command::LTrim => (|| {
            let (start, stop) = (parse_int(a.arg(2)?)?, parse_int(a.arg(3)?)?);
            topo.entry(key, |e| {
                write::<List, _>(e, false, |l| {
                    let (lo, hi) = index_window(start, stop, l.len());
                    l.trim(lo, hi);
                })
            })?;
            encode_ok(out);
            Ok(())
        })(),
        Command::LInsert => (|| {
            let before = if is(a.arg(2)?, "before") {
                true
            } else if is(a.arg(2)?, "after") {
                false
            } else {
                return Err(RespError::Syntax);
            };
            check_size(cx.limits, a.arg(4)?.len())?;
            let (pivot, elem) = (a.arg(3)?, a.arg(4)?);
            let n = topo.entry(key, |e| {
                write::<List, _>(e, false, |l| {
                    let pos = l.iter().position(|x| x == pivot);
                    match pos {
                        Some(p) => {
                            l.insert(if before { p } else { p + 1 }, elem);
                            l.len() as i64
                        }
                        None => -1,
                    }
                })
            })?;
            if n.is_some_and(|n| n > 0) {
                cx.shared.waiters.notify(key);
            }
            encode_int(out, n.unwrap_or(0));
            Ok(())
        })(),
        Command::LPos => lpos(cx, a, out),
        Command::LMove | Command::RPopLPush | Command::BLMove | Command::BRPopLPush => {
            let (src, dst) = (a.arg(1)?, a.arg(2)?);
            let (from_left, to_left, timeout) = match cmd {
                Command::RPopLPush => (false, true, None),
                Command::BRPopLPush => (false, true, Some(a.arg(3)?)),
                _ => {
                    let side = |s: &[u8]| {
                        if is(s, "left") {
                            Ok(true)
                        } else if is(s, "right") {
                            Ok(false)
                        } else {
                            Err(RespError::Syntax)
                        }
                    };
                    match (side(a.arg(3)?), side(a.arg(4)?)) {
                        (Ok(f), Ok(t)) => (
                            f,
                            t,
                            if cmd == Command::BLMove {
                                Some(a.arg(5)?)
                            } else {
                                None
                            },
                        ),
                        (Err(e), _) | (_, Err(e)) => return Err(e),
                    }
                }
            };
            let attempt = |cx: &mut Ctx<'_>, out: &mut BytesMut| {
                let topo = cx.shared.topology.load();
                let moved = lmove(&topo, src, dst, from_left, to_left)?;
                match moved {
                    Some(x) => {
                        cx.shared.waiters.notify(dst);
                        encode_bulk(out, &x);
                        Ok(true)
                    }
                    None => Ok(false),
                }
            };
            blocking::run_or_answer(a, cx, &[src], timeout, out, flow, encode_null, attempt)
        }
        Command::LMPop | Command::BLMPop => (|| {
            let blocking = cmd == Command::BLMPop;
            let (keys, front, count) = parse_mpop(a, blocking, "left", "right")?;
            let attempt = |cx: &mut Ctx<'_>, out: &mut BytesMut| {
                let pop = |l: &mut List| {
                    let n = count.min(l.len());
                    Some((0..n).filter_map(|_| l.pop(front)).collect::<Vec<_>>())
                        .filter(|p| !p.is_empty())
                };
                pop_first(cx, out, &keys, pop, |out, k, p, _| {
                    encode_array(out, 2);
                    encode_bulk(out, k);
                    encode_array(out, p.len());
                    for x in &p {
                        encode_bulk(out, x);
                    }
                })
            };
            let timeout = if blocking { Some(a.arg(1)?) } else { None };
            blocking::run_or_answer(a, cx, &keys, timeout, out, flow, encode_null_array, attempt)
        })(),
        Command::BLPop | Command::BRPop => {
            let front = cmd == Command::BLPop;
            let keys: Vec<&[u8]> = (1..a.len() - 1)
                .map(|i| a.arg(i))
                .collect::<Result<_, _>>()?;
            let attempt = |cx: &mut Ctx<'_>, out: &mut BytesMut| {
                pop_first(
                    cx,
                    out,
                    &keys,
                    |l: &mut List| l.pop(front),
                    |out, k, x, _| {
                        encode_array(out, 2);
                        encode_bulk(out, k);
                        encode_bulk(out, &x);
                    },
                )
            };
            blocking::run(a, cx, &keys, a.arg(a.len() - 1)?, out, flow, attempt)
        }
        _ => Err(RespError::NotInGroup(cmd.wire())),
    }
}

/// Pops from `src` and pushes onto `dst` (atomically when they share a node). WRONGTYPE on
/// either key before anything moves; None if `src` is empty.
pub(super) fn lmove(
    topo: &crate::route::topology::Topology,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
) -> Result<Option<Box<[u8]>>, RespError> {
    with_keys(topo, &[src, dst], |acc: &mut Access<'_, '_>| {
        let present = acc.entry(src, |e| read::<List, _>(e, |_| ()))?;
        if present.is_none() {
            return Ok(None);
        }
        acc.entry(dst, |e| check::<List>(e))?;
        let Some(Some(x)) = acc.entry(src, |e| write::<List, _>(e, false, |l| l.pop(from_left)))?
        else {
            return Ok(None);
        };
        acc.entry(dst, |e| write::<List, _>(e, true, |l| l.push(&x, to_left)))?;
        Ok(Some(x))
    })
}

fn lpos(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let elem = a.arg(2)?;
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    let mut j = 3;
    while j < a.len() {
        let opt = a.arg(j)?;
        if j + 1 >= a.len() {
            return Err(RespError::Syntax);
        }
        let n = parse_int(a.arg(j + 1)?)?;
        if is(opt, "rank") {
            if n == 0 {
                return Err(RespError::RankZero);
            }
            if n == i64::MIN {
                return Err(RespError::RankOutOfRange);
            }
            rank = n;
        } else if is(opt, "count") {
            if n < 0 {
                return Err(RespError::CountNegative);
            }
            count = Some(n);
        } else if is(opt, "maxlen") {
            if n < 0 {
                return Err(RespError::MaxLenNegative);
            }
            maxlen = n;
        } else {
            return Err(RespError::Syntax);
        }
        j += 2;
    }
    let v = cx.conn.version;
    let topo = cx.shared.topology.load();
    let found = topo.entry(a.arg(1)?, |e| {
        read::<List, _>(e, |l| {
            let want = match count {
                Some(0) => usize::MAX,
                Some(c) => c as usize,
                None => 1,
            };
            let limit = if maxlen == 0 {
                usize::MAX
            } else {
                maxlen as usize
            };
            let mut skip = rank.unsigned_abs() - 1;
            let mut hits = Vec::new();
            let len = l.len();
            let mut visit = |i: usize, x: &[u8]| {
                if x == elem {
                    if skip > 0 {
                        skip -= 1;
                    } else {
                        hits.push(i as i64);
                    }
                }
                hits.len() < want
            };
            if rank > 0 {
                for (i, x) in l.iter().enumerate().take(limit) {
                    if !visit(i, x) {
                        break;
                    }
                }
            } else {
                for (n, x) in l.iter().rev().enumerate().take(limit) {
                    if !visit(len - 1 - n, x) {
                        break;
                    }
                }
            }
            hits
        })
    })?;
    let hits = found.unwrap_or_default();
    match count {
        Some(_) => {
            encode_array(out, hits.len());
            for h in hits {
                encode_int(out, h);
            }
        }
        None => match hits.first() {
            Some(&h) => encode_int(out, h),
            None => encode_null(out, v),
        },
    }
    Ok(())
}
