//! Hash commands.

use bytes::BytesMut;

use super::{Args, check, random_members, read, reply_scan, scan_args, write};
use crate::proto::resp::args::{check_size, parse_int};
use crate::proto::resp::command::Command;
use crate::proto::resp::conn::{Ctx, Reply};
use crate::proto::resp::error::RespError;
use crate::proto::resp::float::LongDouble;
use crate::proto::resp::frame::{
    encode_array, encode_bulk, encode_int, encode_map, encode_null, encode_ok, parse_i64,
};
use crate::store::Hash;

/// Runs a hash command (its arity is checked).
pub(crate) fn handle(cmd: Command, a: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) -> Reply {
    let topo = cx.shared.topology.load();
    let v = cx.conn.version;
    let key = a.arg(1)?;
    match cmd {
        Command::HSet | Command::HMSet => (|| {
            if a.len() % 2 == 1 {
                return Err(RespError::WrongArity(cmd.wire()));
            }
            for i in (3..a.len()).step_by(2) {
                check_size(cx.limits, a.arg(i)?.len())?;
            }
            let added = topo.entry(key, |e| {
                write::<Hash, _>(e, true, |h| {
                    a.pairs_from(2).filter(|&(f, val)| h.insert(f, val)).count()
                })
            })?;
            if cmd == Command::HSet {
                encode_int(out, added.unwrap_or(0) as i64);
            } else {
                encode_ok(out);
            }
            Ok(())
        })(),
        Command::HSetNx => (|| {
            let (field, value) = (a.arg(2)?, a.arg(3)?);
            check_size(cx.limits, value.len())?;
            let set = topo.entry(key, |e| {
                write::<Hash, _>(e, true, |h| {
                    h.get(field).is_none() && h.insert(field, value)
                })
            })?;
            encode_int(out, i64::from(set.unwrap_or(false)));
            Ok(())
        })(),
        Command::HGet => (|| {
            let field = a.arg(2)?;
            topo.entry(key, |e| {
                let found = read::<Hash, _>(e, |h| match h.get(field) {
                    Some(val) => {
                        encode_bulk(out, val);
                        true
                    }
                    None => false,
                })?;
                if found != Some(true) {
                    encode_null(out, v);
                }
                Ok(())
            })
        })(),
        Command::HMGet => topo.entry(key, |e| {
            let n = a.len() - 2;
            let done = read::<Hash, _>(e, |h| {
                encode_array(out, n);
                for f in a.iter_from(2) {
                    match h.get(f) {
                        Some(val) => encode_bulk(out, val),
                        None => encode_null(out, v),
                    }
                }
            })?;
            if done.is_none() {
                encode_array(out, n);
                for _ in 0..n {
                    encode_null(out, v);
                }
            }
            Ok(())
        }),
        Command::HDel => (|| {
            let n = topo.entry(key, |e| {
                write::<Hash, _>(e, false, |h| a.iter_from(2).filter(|f| h.remove(f)).count())
            })?;
            encode_int(out, n.unwrap_or(0) as i64);
            Ok(())
        })(),
        Command::HExists => (|| {
            let field = a.arg(2)?;
            let r = topo.entry(key, |e| read::<Hash, _>(e, |h| h.get(field).is_some()))?;
            encode_int(out, i64::from(r.unwrap_or(false)));
            Ok(())
        })(),
        Command::HLen => (|| {
            let r = topo.entry(key, |e| read::<Hash, _>(e, |h| h.len()))?;
            encode_int(out, r.unwrap_or(0) as i64);
            Ok(())
        })(),
        Command::HStrLen => (|| {
            let field = a.arg(2)?;
            let r = topo.entry(key, |e| {
                read::<Hash, _>(e, |h| h.get(field).map_or(0, <[u8]>::len))
            })?;
            encode_int(out, r.unwrap_or(0) as i64);
            Ok(())
        })(),
        Command::HKeys | Command::HVals | Command::HGetAll => topo.entry(key, |e| {
            let done = read::<Hash, _>(e, |h| {
                match cmd {
                    Command::HGetAll => encode_map(out, h.len(), v),
                    _ => encode_array(out, h.len()),
                }
                for (f, val) in h.iter() {
                    if cmd != Command::HVals {
                        encode_bulk(out, f);
                    }
                    if cmd != Command::HKeys {
                        encode_bulk(out, val);
                    }
                }
            })?;
            if done.is_none() {
                if cmd == Command::HGetAll {
                    encode_map(out, 0, v);
                } else {
                    encode_array(out, 0);
                }
            }
            Ok(())
        }),
        Command::HIncrBy => (|| {
            let field = a.arg(2)?;
            let by = parse_int(a.arg(3)?)?;
            let n = topo.entry(key, |e| {
                check::<Hash>(e)?;
                let old = match e.item() {
                    None => 0,
                    Some(_) => read::<Hash, _>(e, |h| h.get(field).map(parse_i64))?
                        .flatten()
                        .map_or(Ok(0), |x| x.ok_or_else(|| RespError::HashNotInteger))?,
                };
                let n = old.checked_add(by).ok_or_else(|| RespError::Overflow)?;
                let mut buf = itoa::Buffer::new();
                let text = buf.format(n);
                write::<Hash, _>(e, true, |h| h.insert(field, text.as_bytes()))?;
                Ok(n)
            })?;
            encode_int(out, n);
            Ok(())
        })(),
        Command::HIncrByFloat => (|| {
            let field = a.arg(2)?;
            let by = LongDouble::parse(a.arg(3)?).ok_or_else(|| RespError::NotFloat)?;
            if by.is_nan_or_infinite() {
                return Err(RespError::ValueNanOrInfinity);
            }
            let limits = cx.limits;
            let text = topo.entry(key, |e| {
                check::<Hash>(e)?;
                let old = read::<Hash, _>(e, |h| h.get(field).map(<[u8]>::to_vec))?.flatten();
                let old = match old {
                    None => LongDouble::parse(b"0").ok_or_else(|| RespError::NotFloat)?,
                    Some(o) => LongDouble::parse(&o).ok_or_else(|| RespError::HashNotFloat)?,
                };
                let sum = old.plus(by);
                if sum.is_nan_or_infinite() {
                    return Err(RespError::NanOrInfinity);
                }
                let text = sum.format_human();
                check_size(limits, text.len())?;
                write::<Hash, _>(e, true, |h| h.insert(field, text.as_bytes()))?;
                Ok(text)
            })?;
            encode_bulk(out, text.as_bytes());
            Ok(())
        })(),
        Command::HRandField => random_members::<Hash>(&topo, a, v, out, Some("withvalues")),
        Command::HScan => (|| {
            let s = scan_args(a)?;
            let (next, items) = topo
                .entry(key, |e| {
                    read::<Hash, _>(e, |h| {
                        let (lo, hi, next) = s.window(h.len());
                        let mut items = Vec::new();
                        for i in lo..hi {
                            let (f, val) = h.at(i);
                            if s.matches(f) {
                                items.push(f.to_vec());
                                items.push(val.to_vec());
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
