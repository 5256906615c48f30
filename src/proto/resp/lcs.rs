//! LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]: the longest common subsequence
//! of two strings, with redis-server 7.0's dynamic programming, its walk back through the table
//! (which decides which of several equally long answers is given, and the order and shape of
//! the IDX ranges) and its RESP2/RESP3 replies.
//!
//! Owns: this one command. Must not touch: the values (it only reads them), framing.
//! Invariants: the table is `(len1 + 1) * (len2 + 1)` 32-bit cells; like redis, a table larger
//! than `proto-max-bulk-len` (`limits.proto_max_bulk_len`) is refused before it is
//! allocated, so one request cannot make the process grow without bound. The two keys are read
//! together (atomic when they share a node, `types::with_keys`) and copied out before the
//! table is built, so no stripe lock is held during the O(n·m) work.

use bytes::BytesMut;

use super::args::parse_int;
use super::conn::{Ctx, Reply};
use super::error::RespError;
use super::frame::{Args, encode_array, encode_bulk, encode_int, encode_map};
use super::types::{Access, with_keys};
use crate::store::Kind;

/// Runs LCS (its arity is checked).
pub(super) fn handle(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let (k1, k2) = (a.arg(1)?, a.arg(2)?);
    let topo = cx.shared.topology.load();
    let read = |acc: &mut Access<'_, '_>, k: &[u8]| {
        acc.entry(k, |e| match e.item() {
            None => Ok(Vec::new()),
            Some(i) if i.kind() == Kind::Str => Ok(i.value().to_vec()),
            Some(_) => Err(RespError::LcsNotStrings),
        })
    };
    let (x, y) = with_keys(&topo, &[k1, k2], |acc| {
        let x = read(acc, k1);
        let y = read(acc, k2);
        match (x, y) {
            (Ok(x), Ok(y)) => Ok((x, y)),
            _ => Err(RespError::LcsNotStrings),
        }
    })?;
    let (mut get_len, mut get_idx, mut with_len) = (false, false, false);
    let mut min_len: i64 = 0;
    let mut j = 3;
    while j < a.len() {
        let opt = a.arg(j)?;
        if opt.eq_ignore_ascii_case(b"idx") {
            get_idx = true;
        } else if opt.eq_ignore_ascii_case(b"len") {
            get_len = true;
        } else if opt.eq_ignore_ascii_case(b"withmatchlen") {
            with_len = true;
        } else if opt.eq_ignore_ascii_case(b"minmatchlen") && j + 1 < a.len() {
            min_len = parse_int(a.arg(j + 1)?)?.max(0);
            j += 1;
        } else {
            return Err(RespError::Syntax);
        }
        j += 1;
    }
    if get_len && get_idx {
        return Err(RespError::LcsLenAndIdx);
    }
    let cells = (x.len() as u64 + 1) * (y.len() as u64 + 1);
    if cells.saturating_mul(4) > cx.limits.proto_max_bulk_len {
        return Err(RespError::LcsTooLarge);
    }
    let (alen, blen) = (x.len(), y.len());
    let w = blen + 1;
    let mut t = vec![0u32; (alen + 1) * w];
    for i in 1..=alen {
        for j in 1..=blen {
            t[i * w + j] = if x[i - 1] == y[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let total = t[alen * w + blen];
    if get_len {
        encode_int(out, i64::from(total));
        return Ok(());
    }
    // Walk back from the end as redis does: the string, and the matching ranges in the order
    // redis emits them (from the end of the strings towards their start).
    let mut result = vec![0u8; total as usize];
    let mut idx = total as usize;
    let mut ranges: Vec<[usize; 5]> = Vec::new();
    let unset = alen;
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (unset, 0, 0, 0);
    let (mut i, mut j) = (alen, blen);
    while i > 0 && j > 0 {
        let mut emit = false;
        if x[i - 1] == y[j - 1] {
            result[idx - 1] = x[i - 1];
            if a_start == unset {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != unset {
                emit = true;
            }
        }
        if emit {
            let len = a_end.wrapping_sub(a_start).wrapping_add(1);
            if min_len == 0 || len as u64 >= min_len as u64 {
                ranges.push([a_start, a_end, b_start, b_end, len]);
            }
            a_start = unset;
        }
    }
    if !get_idx {
        encode_bulk(out, &result);
        return Ok(());
    }
    encode_map(out, 2, cx.conn.version);
    encode_bulk(out, b"matches");
    encode_array(out, ranges.len());
    for [a0, a1, b0, b1, len] in ranges {
        encode_array(out, 2 + usize::from(with_len));
        encode_array(out, 2);
        encode_int(out, a0 as i64);
        encode_int(out, a1 as i64);
        encode_array(out, 2);
        encode_int(out, b0 as i64);
        encode_int(out, b1 as i64);
        if with_len {
            encode_int(out, len as i64);
        }
    }
    encode_bulk(out, b"len");
    encode_int(out, i64::from(total));
    Ok(())
}
