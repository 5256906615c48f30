//! Set commands.

use bytes::BytesMut;

use super::random_members;
use super::{
    Access, Args, check, is, kind_of, parse_count, parse_numkeys, rand_below, read, reply_scan,
    scan_args, store, with_keys, write,
};
use crate::proto::resp::args::{check_size, parse_int};
use crate::proto::resp::command::Command;
use crate::proto::resp::conn::{Ctx, Reply};
use crate::proto::resp::error::RespError;
use crate::proto::resp::frame::{
    Version, encode_array, encode_bulk, encode_int, encode_null, encode_set,
};
use crate::store::{Container, Kind, Set};

/// Runs a set command (its arity is checked).
pub(crate) fn handle(cmd: Command, a: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) -> Reply {
    let topo = cx.shared.topology.load();
    let v = cx.conn.version;
    let key = a.arg(1)?;
    match cmd {
        Command::SAdd => (|| {
            for m in a.iter_from(2) {
                check_size(cx.limits, m.len())?;
            }
            let n = topo.entry(key, |e| {
                write::<Set, _>(e, true, |s| a.iter_from(2).filter(|m| s.insert(m)).count())
            })?;
            encode_int(out, n.unwrap_or(0) as i64);
            Ok(())
        })(),
        Command::SRem => (|| {
            let n = topo.entry(key, |e| {
                write::<Set, _>(e, false, |s| a.iter_from(2).filter(|m| s.remove(m)).count())
            })?;
            encode_int(out, n.unwrap_or(0) as i64);
            Ok(())
        })(),
        Command::SMembers => (|| {
            let members = topo.entry(key, |e| read::<Set, _>(e, members_of))?;
            reply_members(out, &members.unwrap_or_default(), v);
            Ok(())
        })(),
        Command::SIsMember => (|| {
            let m = a.arg(2)?;
            let r = topo.entry(key, |e| read::<Set, _>(e, |s| s.contains(m)))?;
            encode_int(out, i64::from(r.unwrap_or(false)));
            Ok(())
        })(),
        Command::SMIsMember => (|| {
            let r = topo.entry(key, |e| {
                read::<Set, _>(e, |s| {
                    a.iter_from(2).map(|m| s.contains(m)).collect::<Vec<_>>()
                })
            })?;
            encode_array(out, a.len() - 2);
            match r {
                Some(r) => r.into_iter().for_each(|b| encode_int(out, i64::from(b))),
                None => (2..a.len()).for_each(|_| encode_int(out, 0)),
            }
            Ok(())
        })(),
        Command::SCard => (|| {
            let r = topo.entry(key, |e| read::<Set, _>(e, |s| s.len()))?;
            encode_int(out, r.unwrap_or(0) as i64);
            Ok(())
        })(),
        Command::SPop => (|| {
            if a.len() > 3 {
                return Err(RespError::Syntax);
            }
            if a.len() == 2 {
                let m = topo.entry(key, |e| {
                    write::<Set, _>(e, false, |s| s.remove_at(rand_below(s.len())))
                })?;
                match m {
                    Some(m) => encode_bulk(out, &m),
                    None => encode_null(out, v),
                }
                return Ok(());
            }
            let n = parse_count(a.arg(2)?)?;
            let popped = topo.entry(key, |e| {
                write::<Set, _>(e, false, |s| {
                    let k = n.min(s.len());
                    (0..k)
                        .map(|_| s.remove_at(rand_below(s.len())).to_vec())
                        .collect::<Vec<_>>()
                })
            })?;
            reply_members(out, &popped.unwrap_or_default(), v);
            Ok(())
        })(),
        Command::SRandMember => random_members::<Set>(&topo, a, v, out, None),
        Command::SMove => (|| {
            let (src, dst, m) = (a.arg(1)?, a.arg(2)?, a.arg(3)?);
            let moved = with_keys(&topo, &[src, dst], |acc: &mut Access<'_, '_>| {
                let present = acc.entry(src, |e| read::<Set, _>(e, |s| s.contains(m)))?;
                acc.entry(dst, |e| check::<Set>(e))?;
                let Some(present) = present else {
                    return Ok(false);
                };
                if src == dst {
                    return Ok(present);
                }
                if !present {
                    return Ok(false);
                }
                acc.entry(src, |e| write::<Set, _>(e, false, |s| s.remove(m)))?;
                acc.entry(dst, |e| write::<Set, _>(e, true, |s| s.insert(m)))?;
                Ok::<_, RespError>(true)
            })?;
            encode_int(out, i64::from(moved));
            Ok(())
        })(),
        Command::SInter | Command::SUnion | Command::SDiff => (|| {
            let keys: Vec<&[u8]> = a.iter_from(1).collect();
            let r = with_keys(&topo, &keys, |acc| combine(acc, &keys, op_of(cmd)))?;
            reply_members(out, &r.unwrap_or_default(), v);
            Ok(())
        })(),
        Command::SInterStore | Command::SUnionStore | Command::SDiffStore => (|| {
            let keys: Vec<&[u8]> = a.iter_from(1).collect();
            let op = op_of(cmd);
            let n = with_keys(&topo, &keys, |acc| {
                let r = combine(acc, &keys[1..], op)?;
                let mut s = Set::default();
                for m in r.unwrap_or_default() {
                    s.insert(&m);
                }
                let n = s.len();
                acc.entry(keys[0], |e| store(e, Container::Set(s)))?;
                Ok::<_, RespError>(n)
            })?;
            encode_int(out, n as i64);
            Ok(())
        })(),
        Command::SInterCard => (|| {
            let nk = parse_numkeys(a.arg(1)?, a.len() - 2, RespError::TooManyKeys)?;
            let keys: Vec<&[u8]> = (0..nk).map(|i| a.arg(2 + i)).collect::<Result<_, _>>()?;
            let mut limit = 0usize;
            let mut j = 2 + nk;
            while j < a.len() {
                if is(a.arg(j)?, "limit") && j + 1 < a.len() {
                    let n = parse_int(a.arg(j + 1)?).map_err(|_| RespError::LimitNegative)?;
                    if n < 0 {
                        return Err(RespError::LimitNegative);
                    }
                    limit = n as usize;
                    j += 2;
                } else {
                    return Err(RespError::Syntax);
                }
            }
            let r = with_keys(&topo, &keys, |acc| combine(acc, &keys, Op::Inter))?;
            let n = r.map_or(0, |r| r.len());
            encode_int(out, if limit > 0 { n.min(limit) } else { n } as i64);
            Ok(())
        })(),
        Command::SScan => (|| {
            let s = scan_args(a)?;
            let (next, items) = topo
                .entry(key, |e| {
                    read::<Set, _>(e, |set| {
                        let (lo, hi, next) = s.window(set.len());
                        let items: Vec<Vec<u8>> = (lo..hi)
                            .map(|i| set.at(i))
                            .filter(|m| s.matches(m))
                            .map(<[u8]>::to_vec)
                            .collect();
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

fn op_of(cmd: Command) -> Op {
    match cmd {
        Command::SInter | Command::SInterStore => Op::Inter,
        Command::SUnion | Command::SUnionStore => Op::Union,
        _ => Op::Diff,
    }
}

/// `m` as an integer if it is written exactly as redis would print it.
fn canonical_int(m: &[u8]) -> Option<i64> {
    let n = crate::proto::resp::frame::parse_i64(m)?;
    let mut buf = itoa::Buffer::new();
    (buf.format(n).as_bytes() == m).then_some(n)
}

fn members_of(s: &Set) -> Vec<Vec<u8>> {
    s.iter().map(<[u8]>::to_vec).collect()
}

/// Set algebra over `keys` as redis does it (every key's type is checked, then a missing key
/// makes an intersection empty). None: empty result.
fn combine(
    acc: &mut Access<'_, '_>,
    keys: &[&[u8]],
    op: Op,
) -> Result<Option<Vec<Vec<u8>>>, RespError> {
    let mut sets: Vec<Option<Vec<Vec<u8>>>> = Vec::with_capacity(keys.len());
    for k in keys {
        let s = acc.entry(k, |e| {
            if kind_of(e).is_some_and(|kd| kd != Kind::Set) {
                return Err(RespError::WrongType);
            }
            read::<Set, _>(e, members_of)
        });
        sets.push(s?);
    }
    if op == Op::Inter && sets.iter().any(Option::is_none) {
        return Ok(None);
    }
    let mut it = sets.into_iter();
    let first = it.next().flatten().unwrap_or_default();
    let mut acc_set: Set = Set::default();
    for m in &first {
        acc_set.insert(m);
    }
    for s in it {
        let s = s.unwrap_or_default();
        match op {
            Op::Union => {
                for m in &s {
                    acc_set.insert(m);
                }
            }
            Op::Diff => {
                for m in &s {
                    acc_set.remove(m);
                }
            }
            Op::Inter => {
                let mut other = Set::default();
                for m in &s {
                    other.insert(m);
                }
                let keep: Vec<Vec<u8>> = acc_set
                    .iter()
                    .filter(|m| other.contains(m))
                    .map(<[u8]>::to_vec)
                    .collect();
                acc_set = Set::default();
                for m in &keep {
                    acc_set.insert(m);
                }
            }
        }
    }
    Ok(Some(members_of(&acc_set)))
}

/// Small all-integer sets are intsets in redis, listed in numeric order; so are they here.
const INTSET_MAX: usize = 512;

fn reply_members(out: &mut BytesMut, members: &[Vec<u8>], v: Version) {
    encode_set(out, members.len(), v);
    let mut ints: Vec<i64> = Vec::new();
    if members.len() <= INTSET_MAX {
        ints = members.iter().map_while(|m| canonical_int(m)).collect();
    }
    if ints.len() == members.len() && !ints.is_empty() {
        ints.sort_unstable();
        let mut buf = itoa::Buffer::new();
        for i in ints {
            encode_bulk(out, buf.format(i).as_bytes());
        }
        return;
    }
    for m in members {
        encode_bulk(out, m);
    }
}
