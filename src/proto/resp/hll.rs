//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST, over the very string
//! redis-server 7.0 stores (`hyperloglog.c`), so that GET of an HLL key gives redis's bytes for
//! the same inputs and a string taken from redis counts the same here.
//!
//! Owns: the HLL string format (the 16-byte `HYLL` header with its cached cardinality, the
//! sparse ZERO/XZERO/VAL opcodes and the dense 6-bit registers), MurmurHash64A with redis's
//! seed, the sparse → dense promotion (`hll-sparse-max-bytes`), and the estimator (Ertl's
//! improved raw estimator, as redis 5+). Must not touch: framing, store internals (values are
//! read through `Entry::item` and written whole with `Entry::put`, keeping flags and expiry).
//!
//! Invariants:
//! - Every byte operation is the one redis makes, in its order (the sparse split, the merge of
//!   adjacent VAL opcodes, the promotion test), so the bytes stay redis's, corrupted inputs
//!   included; reads past a string's end see the zero byte redis's sds terminator gives.
//! - Nothing in here can panic on any string: every index is checked, a bad string gets
//!   redis's `WRONGTYPE Key is not a valid HyperLogLog string value.` (header) or
//!   `INVALIDOBJ Corrupted HLL object detected` (opcodes).
//! - PFCOUNT of one key stores the cardinality it computed (redis caches it in the value), so
//!   the next GET shows it; PFADD stores only when the registers changed. Both write a value
//!   whose size does not change in place (`Entry::update_str`: a dense HLL, the cached
//!   cardinality); a sparse HLL, which grows, is copied and stored whole.
//! - PFMERGE reads its sources and writes its destination as one step, as BITOP does
//!   (`types::with_keys_exclusive`); PFCOUNT of several keys reads them one by one.

use std::sync::atomic::Ordering;

use bytes::BytesMut;

use super::command::Command;
use super::conn::{Ctx, Reply};
use super::error::{RespError, store_error};
use super::frame::{Args, encode_array, encode_bulk, encode_int, encode_ok, encode_simple};
use super::types::with_keys_exclusive;
use crate::store::{Entry, Kind, NEVER};

/// Header: `HYLL`, encoding, three unused bytes, cached cardinality (little endian).
const HDR: usize = 16;
/// Index bits of the hash.
const P: u32 = 14;
/// Bits left for the run of zeros.
const Q: usize = 64 - P as usize;
/// Registers.
const REGISTERS: usize = 1 << P;
/// Size of a dense HLL string.
pub const DENSE_SIZE: usize = HDR + (REGISTERS * 6).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const XZERO_BIT: u8 = 0x40;
const VAL_BIT: u8 = 0x80;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
/// redis's MurmurHash64A seed for HLL elements.
const SEED: u64 = 0xadc8_3b19;

/// A sparse or dense representation that does not decode to 16384 registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// redis `MurmurHash64A` (endian-neutral, little-endian words).
pub fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().expect("chunks of 8"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// redis `hllPatLen`: the register an element goes to and the length of its `000..1` run.
fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, SEED);
    let index = (hash as usize) & (REGISTERS - 1);
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Register `i` of dense registers `r` (the byte past the end reads as 0).
fn dense_get(r: &[u8], i: usize) -> u8 {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let b0 = u32::from(r.get(byte).copied().unwrap_or(0));
    let b1 = u32::from(r.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & 63) as u8
}

/// Sets register `i` of dense registers `r` to `v` (< 64).
fn dense_put(r: &mut [u8], i: usize, v: u8) {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let v = u32::from(v);
    if let Some(b) = r.get_mut(byte) {
        *b &= !((63u32 << fb) as u8);
        *b |= (v << fb) as u8;
    }
    if let Some(b) = r.get_mut(byte + 1) {
        *b &= !((63u32 >> (8 - fb)) as u8);
        *b |= (v >> (8 - fb)) as u8;
    }
}

/// Every register of dense registers `r` in order: four 6-bit registers per three bytes (redis
/// `hllDenseRegHisto`'s unrolled reading).
fn dense_all(r: &[u8]) -> impl Iterator<Item = u8> + '_ {
    r.chunks_exact(3).take(REGISTERS / 4).flat_map(|b| {
        [
            b[0] & 63,
            ((b[0] >> 6) | (b[1] << 2)) & 63,
            ((b[1] >> 4) | (b[2] << 4)) & 63,
            b[2] >> 2,
        ]
    })
}

/// redis `hllDenseSet`: raises register `i` to `count`; true if it changed.
fn dense_set(r: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(r, i) {
        dense_put(r, i, count);
        true
    } else {
        false
    }
}

/// One sparse opcode.
#[derive(Clone, Copy)]
enum Op {
    /// Registers set to zero (ZERO or XZERO).
    Zero(usize),
    /// `len` registers set to `value`.
    Val(u8, usize),
}

/// The opcode at `p` of `s` and its length in bytes (an XZERO cut by the end reads a 0).
fn op_at(s: &[u8], p: usize) -> (Op, usize) {
    let b = s[p];
    if b & 0xc0 == 0 {
        (Op::Zero(usize::from(b & 0x3f) + 1), 1)
    } else if b & VAL_BIT != 0 {
        (Op::Val(((b >> 2) & 0x1f) + 1, usize::from(b & 3) + 1), 1)
    } else {
        let lo = usize::from(s.get(p + 1).copied().unwrap_or(0));
        (Op::Zero(((usize::from(b & 0x3f) << 8) | lo) + 1), 2)
    }
}

fn is_val(b: u8) -> bool {
    b & VAL_BIT != 0
}

fn val_op(value: u8, len: usize) -> u8 {
    ((value - 1) << 2) | (len as u8 - 1) | VAL_BIT
}

/// ZERO or XZERO opcode bytes for a run of `len` zero registers, appended to `seq`.
fn push_zeros(seq: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        let l = len - 1;
        seq.push((l >> 8) as u8 | XZERO_BIT);
        seq.push((l & 0xff) as u8);
    } else {
        seq.push((len - 1) as u8);
    }
}

/// redis `createHLLObject`: an empty sparse HLL.
pub fn new_sparse() -> Vec<u8> {
    let mut v = vec![0u8; HDR];
    v[..4].copy_from_slice(b"HYLL");
    v[4] = SPARSE;
    let mut left = REGISTERS;
    while left > 0 {
        let n = left.min(XZERO_MAX_LEN);
        push_zeros(&mut v, n);
        left -= n;
    }
    v
}

/// redis `isHLLObjectOrReply` on a string: its header says HLL, dense strings have their size.
pub fn is_hll(v: &[u8]) -> bool {
    v.len() >= HDR
        && &v[..4] == b"HYLL"
        && v[4] <= SPARSE
        && (v[4] != DENSE || v.len() == DENSE_SIZE)
}

fn invalidate(v: &mut [u8]) {
    v[15] |= 0x80;
}

/// redis `hllSparseToDense` (a dense string is left as it is).
pub fn to_dense(v: &mut Vec<u8>) -> Result<(), Corrupt> {
    if v[4] == DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(&v[..HDR]);
    dense[4] = DENSE;
    let mut idx = 0usize;
    let mut p = HDR;
    while p < v.len() {
        let (op, len) = op_at(v, p);
        match op {
            Op::Zero(run) => idx += run,
            Op::Val(value, run) => {
                if run + idx > REGISTERS {
                    break;
                }
                for i in idx..idx + run {
                    dense_put(&mut dense[HDR..], i, value);
                }
                idx += run;
            }
        }
        if idx > REGISTERS {
            break;
        }
        p += len;
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    *v = dense;
    Ok(())
}

/// redis `hllSparseSet`: raises register `index` to `count` in the sparse string `v`,
/// promoting it to dense when `count` is above 32 or the string would outgrow `max_bytes`.
/// Ok(true) if a register changed.
fn sparse_set(v: &mut Vec<u8>, index: usize, count: u8, max_bytes: u64) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    let end = v.len();
    let mut p = HDR;
    let mut first = 0usize;
    let mut prev = None;
    let mut span = 0usize;
    let mut found = None;
    while p < end {
        let (op, len) = op_at(v, p);
        span = match op {
            Op::Zero(n) | Op::Val(_, n) => n,
        };
        if index < first + span {
            found = Some((op, len));
            break;
        }
        prev = Some(p);
        p += len;
        first += span;
    }
    let Some((op, oldlen)) = found else {
        return Err(Corrupt);
    };
    let mut seq: Vec<u8> = Vec::with_capacity(5);
    match op {
        Op::Val(old, _) if old >= count => return Ok(false),
        Op::Val(_, 1) | Op::Zero(1) if oldlen == 1 => {
            v[p] = val_op(count, 1);
            merge_vals(v, prev);
            return Ok(true);
        }
        Op::Zero(_) => {
            let last = first + span - 1;
            if index != first {
                push_zeros(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                push_zeros(&mut seq, last - index);
            }
        }
        Op::Val(cur, _) => {
            let last = first + span - 1;
            if index != first {
                seq.push(val_op(cur, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(cur, last - index));
            }
        }
    }
    let delta = seq.len() as i64 - oldlen as i64;
    if delta > 0 && end as u64 + delta as u64 > max_bytes {
        return promote(v, index, count);
    }
    let new_len = (end as i64 + delta) as usize;
    // An opcode cut by the end (a corrupted string) loses the bytes past it, as in redis.
    v.splice(p..(p + oldlen).min(end), seq);
    v.truncate(new_len);
    merge_vals(v, prev);
    Ok(true)
}

/// redis `hllSparseSet` step 4: merges adjacent VAL opcodes of equal value over up to five
/// opcodes from `prev`, then invalidates the cached cardinality.
fn merge_vals(v: &mut Vec<u8>, prev: Option<usize>) {
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < v.len() && scan > 0 {
        scan -= 1;
        let b = v[p];
        if b & 0xc0 == XZERO_BIT {
            p += 2;
            continue;
        }
        if b & 0xc0 == 0 {
            p += 1;
            continue;
        }
        if p + 1 < v.len() && is_val(v[p + 1]) {
            let (v1, l1) = ((b >> 2 & 0x1f) + 1, usize::from(b & 3) + 1);
            let n = v[p + 1];
            let (v2, l2) = ((n >> 2 & 0x1f) + 1, usize::from(n & 3) + 1);
            if v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                v[p + 1] = val_op(v1, l1 + l2);
                v.remove(p);
                continue;
            }
        }
        p += 1;
    }
    invalidate(v);
}

/// The promotion at the end of `hllSparseSet`: to dense, then the register is set there.
fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(v)?;
    dense_set(&mut v[HDR..], index, count);
    Ok(true)
}

/// redis `hllAdd` on a valid HLL string: Ok(true) if a register changed.
pub fn add(v: &mut Vec<u8>, ele: &[u8], max_bytes: u64) -> Result<bool, Corrupt> {
    let (index, count) = pat_len(ele);
    set(v, index, count, max_bytes)
}

/// Raises register `index` to `count` in either encoding.
fn set(v: &mut Vec<u8>, index: usize, count: u8, max_bytes: u64) -> Result<bool, Corrupt> {
    match v[4] {
        DENSE => Ok(dense_set(&mut v[HDR..], index, count)),
        _ => sparse_set(v, index, count, max_bytes),
    }
}

/// The register histogram of a valid HLL string (redis `hllDenseRegHisto` /
/// `hllSparseRegHisto`).
fn histogram(v: &[u8]) -> Result<[u64; 64], Corrupt> {
    let mut h = [0u64; 64];
    if v[4] == DENSE {
        for r in dense_all(&v[HDR..]) {
            h[usize::from(r)] += 1;
        }
        return Ok(h);
    }
    let mut idx = 0u64;
    let mut p = HDR;
    while p < v.len() {
        let (op, len) = op_at(v, p);
        match op {
            Op::Zero(n) => h[0] += n as u64,
            Op::Val(value, n) => h[usize::from(value)] += n as u64,
        }
        idx += match op {
            Op::Zero(n) | Op::Val(_, n) => n as u64,
        };
        p += len;
    }
    if idx != REGISTERS as u64 {
        return Err(Corrupt);
    }
    Ok(h)
}

/// Ertl's sigma (redis `hllSigma`).
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

/// Ertl's tau (redis `hllTau`).
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if before == z {
            return z / 3.0;
        }
    }
}

/// redis `hllCount` from a register histogram.
fn estimate(h: &[u64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - h[Q + 1] as f64) / m);
    for j in (1..=Q).rev() {
        z += h[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(h[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// The cardinality of a valid HLL string: the cached one if valid, else computed (the string
/// is not changed: the caller stores the cache with [`write_cache`]). Ok((card, cached)).
pub fn count(v: &[u8]) -> Result<(u64, bool), Corrupt> {
    if v[15] & 0x80 == 0 {
        let card = u64::from_le_bytes(v[8..16].try_into().expect("header is 16 bytes"));
        return Ok((card, true));
    }
    Ok((estimate(&histogram(v)?), false))
}

/// Stores `card` as the cached cardinality.
pub fn write_cache(v: &mut [u8], card: u64) {
    v[8..16].copy_from_slice(&card.to_le_bytes());
}

/// redis `hllMerge`: `max[i] = max(max[i], register i)` over a valid HLL string.
fn merge(max: &mut [u8; REGISTERS], v: &[u8]) -> Result<(), Corrupt> {
    if v[4] == DENSE {
        for (m, r) in max.iter_mut().zip(dense_all(&v[HDR..])) {
            *m = (*m).max(r);
        }
        return Ok(());
    }
    let mut i = 0usize;
    let mut p = HDR;
    while p < v.len() {
        let (op, len) = op_at(v, p);
        match op {
            Op::Zero(n) => i += n,
            Op::Val(value, n) => {
                if n + i > REGISTERS {
                    break;
                }
                for m in &mut max[i..i + n] {
                    *m = (*m).max(value);
                }
                i += n;
            }
        }
        p += len;
    }
    if i != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// redis `pfdebug decode`: the opcodes of a sparse string as text.
fn decode(v: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut p = HDR;
    while p < v.len() {
        let (op, len) = op_at(v, p);
        parts.push(match op {
            Op::Zero(n) if len == 2 => format!("Z:{n}"),
            Op::Zero(n) => format!("z:{n}"),
            Op::Val(value, n) => format!("v:{value},{n}"),
        });
        p += len;
    }
    parts.join(" ")
}

// ---------------------------------------------------------------------------------------------
// Commands.

/// Runs a HyperLogLog command (its arity is checked).
pub(super) fn handle(cmd: Command, a: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) -> Reply {
    match cmd {
        Command::PfAdd => pfadd(cx, a, out),
        Command::PfCount => pfcount(cx, a, out),
        Command::PfMerge => pfmerge(cx, a, out),
        Command::PfDebug => pfdebug(cx, a, out),
        Command::PfSelfTest => pfselftest(out),
        _ => Err(RespError::NotInGroup(cmd.wire())),
    }
}

/// The live HLL string at `e` with its flags and expiry: Ok(None) if absent, WRONGTYPE for a
/// container, redis's "not a valid HyperLogLog" for another string.
fn hll_of(e: &Entry<'_>) -> Result<Option<(Vec<u8>, u32, u64)>, RespError> {
    match e.item() {
        None => Ok(None),
        Some(i) if i.kind() == Kind::Str => {
            if !is_hll(i.value()) {
                return Err(RespError::HllInvalid);
            }
            Ok(Some((
                i.value().to_vec(),
                i.meta().flags,
                i.meta().expire_at,
            )))
        }
        Some(_) => Err(RespError::WrongType),
    }
}

/// True if `e` holds a valid dense HLL (errors as [`hll_of`] for what is not an HLL).
fn dense_at(e: &Entry<'_>) -> Result<bool, RespError> {
    match e.item() {
        None => Ok(false),
        Some(i) if i.kind() == Kind::Str => {
            if !is_hll(i.value()) {
                return Err(RespError::HllInvalid);
            }
            Ok(i.value()[4] == DENSE)
        }
        Some(_) => Err(RespError::WrongType),
    }
}

/// Stores `v` at `e` (flags and expiry kept) if it differs from what is there.
fn store_if_changed(e: &mut Entry<'_>, v: &[u8], flags: u32, at: u64) -> Reply {
    if e.item().map(|i| i.value()) == Some(v) {
        return Ok(());
    }
    e.put(&[v], flags, at, None).map_err(store_error)?;
    Ok(())
}

fn max_bytes(cx: &Ctx<'_>) -> u64 {
    cx.shared.hll_sparse_max_bytes.load(Ordering::Relaxed)
}

fn pfadd(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let max = max_bytes(cx);
    let key = a.arg(1)?;
    let updated = cx.shared.topology.load().entry(key, |e| {
        if dense_at(e)? {
            // A dense HLL keeps its size: its registers change in place, no 12 KiB copy.
            let updated = e
                .update_str(|v| {
                    let mut updated = false;
                    for ele in a.iter_from(2) {
                        let (index, count) = pat_len(ele);
                        updated |= dense_set(&mut v[HDR..], index, count);
                    }
                    if updated {
                        invalidate(v);
                    }
                    (updated, updated)
                })
                .map_err(store_error)?;
            return Ok(updated.unwrap_or(false));
        }
        let (mut v, flags, at, mut updated) = match hll_of(e)? {
            Some((v, flags, at)) => (v, flags, at, false),
            None => (new_sparse(), 0, NEVER, true),
        };
        let mut corrupt = false;
        for ele in a.iter_from(2) {
            match add(&mut v, ele, max) {
                Ok(changed) => updated |= changed,
                Err(Corrupt) => {
                    corrupt = true;
                    break;
                }
            }
        }
        if updated && !corrupt {
            invalidate(&mut v);
        }
        // redis changes the value in place: what was done before a corruption stays.
        store_if_changed(e, &v, flags, at)?;
        if corrupt {
            return Err(RespError::HllCorrupt);
        }
        Ok::<_, RespError>(updated)
    })?;
    encode_int(out, i64::from(updated));
    Ok(())
}

fn pfcount(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let topo = cx.shared.topology.load();
    if a.len() == 2 {
        let card = topo.entry(a.arg(1)?, |e| {
            let (card, cached) = match e.item() {
                None => return Ok(0),
                Some(i) if i.kind() == Kind::Str => {
                    if !is_hll(i.value()) {
                        return Err(RespError::HllInvalid);
                    }
                    count(i.value()).map_err(|_| RespError::HllCorrupt)?
                }
                Some(_) => return Err(RespError::WrongType),
            };
            e.mark_read();
            if !cached {
                // The cache is 8 bytes of the header: written in place.
                e.update_str(|v| {
                    write_cache(v, card);
                    ((), true)
                })
                .map_err(store_error)?;
            }
            Ok::<_, RespError>(card)
        })?;
        encode_int(out, card as i64);
        return Ok(());
    }
    let mut max = Box::new([0u8; REGISTERS]);
    for key in a.iter_from(1) {
        topo.entry(key, |e| {
            let Some(i) = e.item() else {
                return Ok(());
            };
            if i.kind() != Kind::Str {
                return Err(RespError::WrongType);
            }
            if !is_hll(i.value()) {
                return Err(RespError::HllInvalid);
            }
            merge(&mut max, i.value()).map_err(|_| RespError::HllCorrupt)?;
            e.mark_read();
            Ok::<_, RespError>(())
        })?;
    }
    let mut h = [0u64; 64];
    for &r in max.iter() {
        h[usize::from(r)] += 1;
    }
    encode_int(out, estimate(&h) as i64);
    Ok(())
}

fn pfmerge(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let limit = max_bytes(cx);
    let keys: Vec<&[u8]> = a.iter_from(1).collect();
    let topo = cx.shared.topology.load();
    let Some(merged) = with_keys_exclusive(cx, &topo, &keys, |acc| {
        let mut max = Box::new([0u8; REGISTERS]);
        let mut dense = false;
        for k in &keys {
            acc.entry(k, |e| {
                let Some(i) = e.item() else {
                    return Ok(());
                };
                if i.kind() != Kind::Str {
                    return Err(RespError::WrongType);
                }
                if !is_hll(i.value()) {
                    return Err(RespError::HllInvalid);
                }
                dense |= i.value()[4] == DENSE;
                merge(&mut max, i.value()).map_err(|_| RespError::HllCorrupt)?;
                Ok::<_, RespError>(())
            })?;
        }
        acc.entry(keys[0], |e| {
            // The destination was checked as a source: absent or a valid HLL.
            let (mut v, flags, at) = hll_of(e)?.unwrap_or_else(|| (new_sparse(), 0, NEVER));
            if dense {
                to_dense(&mut v).map_err(|_| RespError::HllCorrupt)?;
            }
            for (j, &m) in max.iter().enumerate() {
                if m != 0 {
                    // redis ignores a corruption found here (the sources were all read).
                    let _ = set(&mut v, j, m, limit);
                }
            }
            invalidate(&mut v);
            // Written even when unchanged: redis signals the key as modified.
            e.put(&[&v], flags, at, None).map_err(store_error)?;
            Ok::<_, RespError>(())
        })
    }) else {
        return Ok(()); // Retried once the gate opens.
    };
    merged?;
    encode_ok(out);
    Ok(())
}

fn pfdebug(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let sub = a.arg(1)?;
    let topo = cx.shared.topology.load();
    topo.entry(a.arg(2)?, |e| {
        let Some((mut v, flags, at)) = hll_of(e)? else {
            return Err(RespError::PfDebugNoKey);
        };
        if sub.eq_ignore_ascii_case(b"getreg") {
            if v[4] == SPARSE {
                to_dense(&mut v).map_err(|_| RespError::HllCorrupt)?;
                e.put(&[&v], flags, at, None).map_err(store_error)?;
            }
            encode_array(out, REGISTERS);
            for r in dense_all(&v[HDR..]) {
                encode_int(out, i64::from(r));
            }
        } else if sub.eq_ignore_ascii_case(b"decode") {
            if v[4] != SPARSE {
                return Err(RespError::HllNotSparse);
            }
            encode_bulk(out, decode(&v).as_bytes());
        } else if sub.eq_ignore_ascii_case(b"encoding") {
            encode_simple(out, if v[4] == DENSE { b"dense" } else { b"sparse" });
        } else if sub.eq_ignore_ascii_case(b"todense") {
            let conv = v[4] == SPARSE;
            if conv {
                to_dense(&mut v).map_err(|_| RespError::HllCorrupt)?;
                e.put(&[&v], flags, at, None).map_err(store_error)?;
            }
            encode_int(out, i64::from(conv));
        } else {
            return Err(RespError::PfDebugUnknown(
                String::from_utf8_lossy(sub).into_owned(),
            ));
        }
        Ok(())
    })
}

/// PFSELFTEST: redis tests its register macros and the estimator's error; here the same
/// checks run on a smaller scale (a few register rounds, sparse and dense agreeing up to 10^5
/// elements) so that the command stays cheap, and answer as redis does.
fn pfselftest(out: &mut BytesMut) -> Reply {
    match self_test() {
        Ok(()) => encode_ok(out),
        Err(why) => return Err(RespError::HllTestFailed(why)),
    }
    Ok(())
}

fn self_test() -> Result<(), String> {
    let mut regs = vec![0u8; DENSE_SIZE - HDR];
    let mut want = vec![0u8; REGISTERS];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..4 {
        for (i, w) in want.iter_mut().enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *w = (x & 63) as u8;
            dense_put(&mut regs, i, *w);
        }
        for (i, &w) in want.iter().enumerate() {
            let got = dense_get(&regs, i);
            if got != w {
                return Err(format!("Register {i} should be {w} but is {got}"));
            }
        }
    }
    let mut dense = new_sparse();
    to_dense(&mut dense).map_err(|_| "dense conversion failed".to_string())?;
    let mut sparse = new_sparse();
    let mut checkpoint = 1u64;
    for j in 1..=100_000u64 {
        let ele = (j ^ x).to_le_bytes();
        let _ = add(&mut dense, &ele, 3000);
        let _ = add(&mut sparse, &ele, 3000);
        if j == checkpoint {
            let d = estimate(&histogram(&dense).map_err(|_| "corrupt dense")?);
            let s = estimate(&histogram(&sparse).map_err(|_| "corrupt sparse")?);
            if d != s {
                return Err("dense/sparse disagree".into());
            }
            let maxerr = ((1.04 / (REGISTERS as f64).sqrt()) * 6.0 * checkpoint as f64).ceil();
            let maxerr = if j == 10 { 1.0 } else { maxerr };
            if (checkpoint as f64 - d as f64).abs() > maxerr {
                return Err(format!(
                    "Too big error. card:{checkpoint} abserr:{}",
                    (checkpoint as i64 - d as i64).abs()
                ));
            }
            checkpoint *= 10;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    #[test]
    fn murmur_matches_redis_reference_values() {
        // The empty HLL and one element: the register and run redis reports for "a"
        // (PFDEBUG GETREG after PFADD k a on redis-server 7.0).
        assert_eq!(murmur64a(b"", 0), 0);
        let (i, c) = pat_len(b"a");
        assert!(i < REGISTERS && c >= 1);
    }

    #[test]
    fn empty_sparse_is_two_xzero_opcodes() {
        let v = new_sparse();
        assert_eq!(
            &v[..],
            b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
        );
        assert_eq!(count(&v), Ok((0, true)));
    }

    #[test]
    fn dense_registers_round_trip() {
        let mut r = vec![0u8; DENSE_SIZE - HDR];
        for i in 0..REGISTERS {
            dense_put(&mut r, i, ((i * 7) % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&r, i), ((i * 7) % 64) as u8);
        }
        let all: Vec<u8> = dense_all(&r).collect();
        assert_eq!(all.len(), REGISTERS);
        assert!(
            all.iter()
                .enumerate()
                .all(|(i, &v)| v == ((i * 7) % 64) as u8)
        );
    }

    #[test]
    fn sparse_and_dense_agree_and_promotion_happens() {
        let mut s = new_sparse();
        let mut d = new_sparse();
        to_dense(&mut d).expect("valid");
        for j in 0..5000u32 {
            let e = j.to_string();
            add(&mut s, e.as_bytes(), 3000).expect("valid");
            add(&mut d, e.as_bytes(), 3000).expect("valid");
            if j % 97 == 0 {
                let a = estimate(&histogram(&s).expect("valid"));
                let b = estimate(&histogram(&d).expect("valid"));
                assert_eq!(a, b, "at {j}");
            }
        }
        assert_eq!(s[4], DENSE, "promoted past 3000 bytes");
        assert_eq!(&s[16..], &d[16..]);
    }

    #[test]
    fn self_test_passes() {
        assert_eq!(self_test(), Ok(()));
    }

    /// Random garbage after a valid header: every operation answers, none panics.
    #[test]
    fn garbage_never_panics() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..3000 {
            let len = HDR + (xorshift(&mut x) % 64) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| xorshift(&mut x) as u8).collect();
            v[..4].copy_from_slice(b"HYLL");
            v[4] = (round % 2) as u8;
            if round % 7 == 0 {
                v.resize(DENSE_SIZE, 0x5a);
                v[4] = DENSE;
            }
            if !is_hll(&v) {
                continue;
            }
            let _ = count(&v);
            let _ = histogram(&v);
            let mut max = [0u8; REGISTERS];
            let _ = merge(&mut max, &v);
            let _ = decode(&v);
            let mut w = v.clone();
            let _ = to_dense(&mut w);
            let mut w = v.clone();
            for k in 0..20u32 {
                if add(&mut w, &k.to_le_bytes(), 3000).is_err() {
                    break;
                }
            }
            let mut w = v.clone();
            let _ = sparse_set(&mut w, (xorshift(&mut x) as usize) % REGISTERS, 5, 3000);
        }
    }

    #[test]
    fn headers_are_checked() {
        assert!(!is_hll(b"HYLL"));
        assert!(!is_hll(
            b"HYLX\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
        ));
        assert!(!is_hll(
            b"HYLL\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
        ));
        assert!(!is_hll(
            b"HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
        ));
        assert!(is_hll(&new_sparse()));
    }
}
