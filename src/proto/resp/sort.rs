//! SORT and SORT_RO: sorting the elements of a list, set or sorted set (numerically or ALPHA,
//! ASC/DESC, LIMIT), by weights read from other keys (BY pattern, `BY nosort`), fetching other
//! keys' values for the result (GET pattern, `GET #`, `->field` of hashes) and storing the
//! result as a list (STORE), with redis-server 7.0's checks, order and replies.
//!
//! Owns: the SORT grammar, redis's `lookupKeyByPattern` substitution, the comparison rules
//! (numbers as `strtod` reads them, ties broken by the bytes; ALPHA by the bytes, which is
//! redis's `strcoll` in the C locale), the LIMIT arithmetic. Must not touch: store internals
//! (values are copied out under their stripe lock, then sorted), framing, other commands.
//!
//! Placement: a key formed by a BY or GET pattern must live on the node of the sorted key. As
//! redis does in cluster mode (`patternHashSlot`), this is decided from the pattern alone: it
//! must carry a hash tag `{...}` before its first wildcard whose owner (the ring hashes only
//! the tag, with the default `hash_tags = "{}"`) is the sorted key's owner; `GET #` is always
//! allowed. Otherwise SORT answers redis cluster's error for BY or GET. The sorted key and
//! every pattern key are read one by one (each under its own stripe lock, not as one atomic
//! step); STORE writes the destination through its own owner, which may be another node, and
//! wakes the clients blocked popping from it.
//!
//! Bounds: a reply stops growing past `limits.max_output_buffer` (the session then closes the
//! connection, as for any oversized reply) and a STORE whose list outgrows its node's
//! `max_memory` answers OOM before it is complete, so GETs times elements cannot make a
//! request hold unbounded memory.

use bytes::BytesMut;

use super::args::parse_int;
use super::command::Command;
use super::conn::{Ctx, Reply};
use super::error::{RespError, store_error};
use super::frame::{Args, encode_array, encode_bulk, encode_int, encode_null};
use crate::route::topology::Topology;
use crate::store::{Container, List, NEVER};

/// Runs SORT or SORT_RO (its arity is checked).
pub(super) fn handle(cmd: Command, a: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) -> Reply {
    let read_only = cmd == Command::SortRo;
    let key = a.arg(1)?;
    let topo = cx.shared.topology.load();
    let (mut desc, mut alpha, mut dont_sort) = (false, false, false);
    let (mut limit_start, mut limit_count): (i64, i64) = (0, -1);
    let mut store: Option<&[u8]> = None;
    let mut by: Option<&[u8]> = None;
    let mut gets: Vec<&[u8]> = Vec::new();
    let mut j = 2;
    while j < a.len() {
        let left = a.len() - j - 1;
        let opt = a.arg(j)?;
        let is = |name: &str| opt.eq_ignore_ascii_case(name.as_bytes());
        if is("asc") {
            desc = false;
        } else if is("desc") {
            desc = true;
        } else if is("alpha") {
            alpha = true;
        } else if is("limit") && left >= 2 {
            limit_start = parse_int(a.arg(j + 1)?)?;
            limit_count = parse_int(a.arg(j + 2)?)?;
            j += 2;
        } else if !read_only && is("store") && left >= 1 {
            store = Some(a.arg(j + 1)?);
            j += 1;
        } else if is("by") && left >= 1 {
            let pattern = a.arg(j + 1)?;
            by = Some(pattern);
            if !pattern.contains(&b'*') {
                dont_sort = true;
            } else if !same_node(&topo, pattern, key) {
                return Err(RespError::SortByCrossNode);
            }
            j += 1;
        } else if is("get") && left >= 1 {
            let pattern = a.arg(j + 1)?;
            if pattern != b"#" && !same_node(&topo, pattern, key) {
                return Err(RespError::SortGetCrossNode);
            }
            gets.push(pattern);
            j += 1;
        } else {
            return Err(RespError::Syntax);
        }
        j += 1;
    }
    let Some((elements, kind)) = read_elements(&topo, key)? else {
        return finish(cx, &topo, out, store, &[], &gets);
    };
    if dont_sort && kind == Kind::Set && store.is_some() {
        // redis: a set's order is its hash table's, so a stored result is sorted instead.
        dont_sort = false;
        alpha = true;
        by = None;
    }
    let len = elements.len() as i64;
    let mut start = limit_start.max(0).min(len);
    let count = limit_count.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    let mut vector: Vec<(Vec<u8>, Weight)> =
        elements.into_iter().map(|e| (e, Weight::None)).collect();
    if dont_sort {
        if desc && kind != Kind::Set {
            vector.reverse();
        }
    } else {
        if let Some(pattern) = by {
            for (e, w) in vector.iter_mut() {
                let Some(v) = lookup(&topo, pattern, e) else {
                    if !alpha {
                        *w = Weight::Score(0.0);
                    }
                    continue;
                };
                *w = if alpha {
                    Weight::Bytes(v)
                } else {
                    Weight::Score(strtod(&v).ok_or_else(|| RespError::SortNotDouble)?)
                };
            }
        } else if !alpha {
            for (e, w) in vector.iter_mut() {
                *w = Weight::Score(strtod(e).ok_or_else(|| RespError::SortNotDouble)?);
            }
        }
        vector.sort_by(|x, y| {
            let c = match (&x.1, &y.1) {
                (Weight::Score(p), Weight::Score(q)) => p
                    .partial_cmp(q)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| x.0.cmp(&y.0)),
                (Weight::Bytes(p), Weight::Bytes(q)) => p.cmp(q),
                (Weight::None, Weight::Bytes(_)) => std::cmp::Ordering::Less,
                (Weight::Bytes(_), Weight::None) => std::cmp::Ordering::Greater,
                (Weight::None, Weight::None) if by.is_some() => std::cmp::Ordering::Equal,
                _ => x.0.cmp(&y.0),
            };
            if desc { c.reverse() } else { c }
        });
    }
    let picked: Vec<Vec<u8>> = if end >= start {
        vector
            .into_iter()
            .skip(start as usize)
            .take((end - start + 1) as usize)
            .map(|(e, _)| e)
            .collect()
    } else {
        Vec::new()
    };
    finish(cx, &topo, out, store, &picked, &gets)
}

/// What an element is sorted by.
enum Weight {
    /// Nothing (ALPHA by the element itself, or a BY key that is missing under ALPHA).
    None,
    /// A number (ties broken by the element's bytes).
    Score(f64),
    /// The bytes of a BY key (ALPHA).
    Bytes(Vec<u8>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// The elements of a sorted key, copied out, and its kind.
type Elements = (Vec<Vec<u8>>, Kind);

/// The elements of the sorted key in its own order (a list's, a sorted set's by score, a set's
/// as SMEMBERS lists them) and its kind; None if the key is missing; WRONGTYPE for a string or
/// a hash.
fn read_elements(topo: &Topology, key: &[u8]) -> Result<Option<Elements>, RespError> {
    topo.entry(key, |e| {
        let r = match e.item() {
            None => return Ok(None),
            Some(i) => match i.container() {
                Some(Container::List(l)) => (l.iter().map(<[u8]>::to_vec).collect(), Kind::List),
                Some(Container::Set(s)) => (set_order(s.iter()), Kind::Set),
                Some(Container::ZSet(z)) => {
                    (z.iter().map(|(m, _)| m.to_vec()).collect(), Kind::ZSet)
                }
                _ => return Err(RespError::WrongType),
            },
        };
        e.mark_read();
        Ok(Some(r))
    })
}

/// A set's members in the order SMEMBERS gives them: small all-integer sets (redis's intsets)
/// in numeric order, others as stored.
fn set_order<'s>(members: impl Iterator<Item = &'s [u8]>) -> Vec<Vec<u8>> {
    let members: Vec<Vec<u8>> = members.map(<[u8]>::to_vec).collect();
    if members.len() <= 512 {
        let ints: Option<Vec<i64>> = members.iter().map(|m| super::frame::parse_i64(m)).collect();
        if let Some(mut ints) = ints {
            ints.sort_unstable();
            return ints.iter().map(|n| n.to_string().into_bytes()).collect();
        }
    }
    members
}

/// Replies (or stores) the picked elements, each replaced by its GET lookups if any.
fn finish(
    cx: &Ctx<'_>,
    topo: &Topology,
    out: &mut BytesMut,
    store: Option<&[u8]>,
    picked: &[Vec<u8>],
    gets: &[&[u8]],
) -> Reply {
    let per = gets.len().max(1);
    let Some(dest) = store else {
        encode_array(out, picked.len() * per);
        let v = cx.conn.version;
        let mark = out.len();
        for e in picked {
            if (out.len() - mark) as u64 > cx.limits.max_output_buffer {
                // Many GETs over a big key: the session closes the connection for this reply;
                // stop building what nobody will receive.
                break;
            }
            if gets.is_empty() {
                encode_bulk(out, e);
            }
            for p in gets {
                match lookup(topo, p, e) {
                    Some(val) => encode_bulk(out, &val),
                    None => encode_null(out, v),
                }
            }
        }
        return Ok(());
    };
    // The stored list must fit in its node: give up (OOM) as soon as it cannot, rather than
    // build a list of elements times GETs that no node could hold.
    let budget = topo.node_for(dest).max_memory();
    let mut bytes = 0u64;
    let mut list = List::default();
    for e in picked {
        let mut push = |v: &[u8]| {
            bytes += v.len() as u64 + 16;
            list.push(v, false);
        };
        if gets.is_empty() {
            push(e);
        }
        for p in gets {
            push(&lookup(topo, p, e).unwrap_or_default());
        }
        if bytes > budget {
            return Err(RespError::OutOfMemory);
        }
    }
    let n = list.len();
    topo.entry(dest, |e| {
        if n == 0 {
            e.remove();
            Ok(())
        } else {
            e.put_container(Container::List(list), NEVER)
                .map(|_| ())
                .map_err(store_error)
        }
    })?;
    if n > 0 {
        // A client blocked popping from the destination is served, as after any push.
        cx.shared.waiters.notify(dest);
    }
    encode_int(out, n as i64);
    Ok(())
}

/// redis `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` of the
/// pattern is replaced by the element and the key's string value is returned, or with
/// `->field` after the `*` the field of the hash at that key. None: no such value (or a
/// pattern without `*`).
fn lookup(topo: &Topology, pattern: &[u8], element: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(element.to_vec());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let after = &pattern[star + 1..];
    let arrow = after
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&i| i + 2 < after.len());
    let (suffix, field) = match arrow {
        Some(i) => (&after[..i], Some(&after[i + 2..])),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(pattern.len() + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(suffix);
    topo.entry(&key, |e| {
        let item = e.item()?;
        match (field, item.container()) {
            (None, None) => Some(item.value().to_vec()),
            (Some(f), Some(Container::Hash(h))) => h.get(f).map(<[u8]>::to_vec),
            _ => None,
        }
    })
}

/// True if every key `pattern` can form lives on `key`'s node (see the module header): the
/// pattern has a non-empty hash tag before any wildcard (`*`, `?`, `[`) or escape, whose owner
/// is `key`'s; or it has none of those at all and is itself a key of that node.
fn same_node(topo: &Topology, pattern: &[u8], key: &[u8]) -> bool {
    let owner = topo.node_for(key);
    let mut open: Option<usize> = None;
    let mut empty_tag = false;
    for (i, &b) in pattern.iter().enumerate() {
        match b {
            b'*' | b'?' | b'[' | b'\\' => return false,
            b'{' if open.is_none() && !empty_tag => open = Some(i),
            b'}' if open == Some(i.wrapping_sub(1)) => {
                open = None;
                empty_tag = true;
            }
            b'}' if open.is_some() => {
                let s = open.unwrap_or(0);
                return std::sync::Arc::ptr_eq(topo.node_for(&pattern[s..=i]), owner);
            }
            _ => {}
        }
    }
    std::sync::Arc::ptr_eq(topo.node_for(pattern), owner)
}

/// C `strtod` over the whole value as redis's SORT uses it: leading white space allowed, the
/// rest must be a number (an empty value is 0), no NaN, no overflow or underflow.
fn strtod(v: &[u8]) -> Option<f64> {
    if v.is_empty() {
        return Some(0.0);
    }
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let text = std::str::from_utf8(&v[start..]).ok()?;
    let d: f64 = text.parse().ok()?;
    if d.is_nan() {
        return None;
    }
    let body = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
    if d.is_infinite() && body != "inf" && body != "infinity" {
        return None;
    }
    if d == 0.0 {
        let mantissa = body.split('e').next().unwrap_or("");
        if mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
            return None;
        }
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::strtod;

    #[test]
    fn scores_are_read_as_strtod_reads_them() {
        assert_eq!(strtod(b""), Some(0.0));
        assert_eq!(strtod(b" 1.5"), Some(1.5));
        assert_eq!(strtod(b"\t-2"), Some(-2.0));
        assert_eq!(strtod(b"1e2"), Some(100.0));
        assert_eq!(strtod(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(strtod(b"1 "), None);
        assert_eq!(strtod(b"  "), None);
        assert_eq!(strtod(b"nan"), None);
        assert_eq!(strtod(b"1e400"), None);
        assert_eq!(strtod(b"1e-400"), None);
        assert_eq!(strtod(b"two"), None);
    }
}
