//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO, with
//! redis-server 7.0's checks (in its order), replies and overflow arithmetic.
//!
//! Owns: bit offsets (`#` offsets of BITFIELD included), the bit/byte range arithmetic of
//! BITCOUNT/BITPOS, the BITFIELD integer codec and its WRAP/SAT/FAIL overflow rules, BITOP's
//! byte loop. Must not touch: framing, store internals (strings are read through `Entry::item`
//! and written whole with `Entry::put`, which charges the node), other groups' commands.
//!
//! Invariants:
//! - A bitmap is the string value itself (a memcached item is the same string): bit 0 is the
//!   most significant bit of byte 0; a write zero-pads the string up to the byte it touches,
//!   keeps the item's flags and expiry, and happens only if the bytes change (so WATCH is not
//!   broken by a no-op).
//! - Offsets are refused from `8 * proto_max_bulk_len` bits on (redis's limit: 2^32 with its
//!   default 512 MiB); a write that would make the string longer than
//!   `limits.proto_max_bulk_len` is refused before anything changes, and memory is charged like
//!   any string (out of memory: the OOM error, nothing changed). A string larger than its
//!   node's whole budget is refused before its bytes are even allocated, so a SETBIT at a far
//!   offset costs no transient memory a node could not hold.
//! - BITOP reads every source and writes its destination as one step: when the keys share a
//!   node they are locked together, otherwise the command runs alone in the server's gate
//!   (`types::with_keys_exclusive`), so no other command sees or makes a half state.

use bytes::BytesMut;

use super::args::{check_size, parse_int};
use super::command::Command;
use super::conn::{Ctx, Reply};
use super::error::{RespError, store_error};
use super::frame::{Args, encode_array, encode_int, encode_null, parse_i64};
use super::types::with_keys_exclusive;
use crate::config::Limits;
use crate::store::{Entry, Kind, NEVER};

/// Runs a bitmap command (its arity is checked).
pub(super) fn handle(cmd: Command, a: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) -> Reply {
    match cmd {
        Command::SetBit => setbit(cx, a, out),
        Command::GetBit => getbit(cx, a, out),
        Command::BitCount => bitcount(cx, a, out),
        Command::BitPos => bitpos(cx, a, out),
        Command::BitOp => bitop(cx, a, out),
        Command::BitField => bitfield(cx, a, out, false),
        Command::BitFieldRo => bitfield(cx, a, out, true),
        _ => Err(RespError::NotInGroup(cmd.wire())),
    }
}

/// redis `getBitOffsetFromArgument`: a non-negative bit offset whose byte is below
/// `proto_max_bulk_len` (`limit`); with `bits > 0` a `#n` offset means `n * bits` (BITFIELD).
fn parse_offset(s: &[u8], bits: u32, limit: u64) -> Result<u64, RespError> {
    let (hash, digits) = match s {
        [b'#', rest @ ..] if bits > 0 => (true, rest),
        _ => (false, s),
    };
    let mut n = parse_i64(digits).ok_or_else(|| RespError::BitOffset)?;
    if hash {
        n = n.wrapping_mul(i64::from(bits));
    }
    if n < 0 || (n >> 3) as u64 >= limit {
        return Err(RespError::BitOffset);
    }
    Ok(n as u64)
}

/// The live string at `e` (None if absent), WRONGTYPE for a container.
fn string_of<'e>(e: &'e Entry<'_>) -> Result<Option<&'e [u8]>, RespError> {
    match e.item() {
        None => Ok(None),
        Some(i) if i.kind() == Kind::Str => Ok(Some(i.value())),
        Some(_) => Err(RespError::WrongType),
    }
}

/// Runs `f` on a copy of the string at `e` zero-padded to at least `len` bytes (created if
/// absent, as redis's `lookupStringForBitCommand` does) and stores it if it is new, grew or
/// changed, keeping flags and expiry. Refused (nothing changed) past `proto_max_bulk_len`, or
/// with OOM past the node's whole budget (before the bytes are allocated).
fn update_string<R>(
    e: &mut Entry<'_>,
    limits: &Limits,
    len: u64,
    f: impl FnOnce(&mut [u8]) -> R,
) -> Result<R, RespError> {
    let (old, flags, at) = match e.item() {
        None => (None, 0, NEVER),
        Some(i) if i.kind() == Kind::Str => (Some(i.value()), i.meta().flags, i.meta().expire_at),
        Some(_) => return Err(RespError::WrongType),
    };
    let old_len = old.map_or(0, <[u8]>::len);
    if len > old_len as u64 {
        check_size(limits, usize::try_from(len).unwrap_or(usize::MAX))?;
        if len > e.node().max_memory() {
            return Err(RespError::OutOfMemory);
        }
    }
    let mut value = old.unwrap_or_default().to_vec();
    if (value.len() as u64) < len {
        value.resize(len as usize, 0);
    }
    let r = f(&mut value);
    if old != Some(value.as_slice()) {
        e.put(&[&value], flags, at, None).map_err(store_error)?;
    }
    Ok(r)
}

fn setbit(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let offset = parse_offset(a.arg(2)?, 0, cx.limits.proto_max_bulk_len)?;
    let on = parse_i64(a.arg(3)?).ok_or_else(|| RespError::BitValue)?;
    if on & !1 != 0 {
        return Err(RespError::BitValue);
    }
    let limits = cx.limits;
    let byte = (offset >> 3) as usize;
    let mask = 1u8 << (7 - (offset & 7));
    let was = cx.shared.topology.load().entry(a.arg(1)?, |e| {
        update_string(e, limits, offset / 8 + 1, |v| {
            let was = v[byte] & mask != 0;
            if on == 1 {
                v[byte] |= mask;
            } else {
                v[byte] &= !mask;
            }
            was
        })
    })?;
    encode_int(out, i64::from(was));
    Ok(())
}

fn getbit(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let offset = parse_offset(a.arg(2)?, 0, cx.limits.proto_max_bulk_len)?;
    let bit = cx.shared.topology.load().entry(a.arg(1)?, |e| {
        let v = string_of(e)?;
        let byte = (offset >> 3) as usize;
        let bit = v
            .and_then(|v| v.get(byte))
            .is_some_and(|b| b & (1 << (7 - (offset & 7))) != 0);
        if v.is_some() {
            e.mark_read();
        }
        Ok::<_, RespError>(bit)
    })?;
    encode_int(out, i64::from(bit));
    Ok(())
}

/// BIT or BYTE (the unit of a BITCOUNT/BITPOS range): true for BIT.
fn parse_unit(s: &[u8]) -> Result<bool, RespError> {
    if s.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if s.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(RespError::Syntax)
    }
}

/// A range of whole bytes `start..=end` of a string, with the bits to ignore in its first and
/// last byte (redis's `first_byte_neg_mask` / `last_byte_neg_mask`).
struct Span {
    start: i64,
    end: i64,
    first_mask: u8,
    last_mask: u8,
}

/// redis's range normalization for BITCOUNT/BITPOS over a string of `len` bytes: negative
/// indexes count from the end, the range is clipped, and a BIT range becomes bytes plus masks.
fn span(mut start: i64, mut end: i64, len: usize, bit: bool) -> Span {
    let mut total = len as i64;
    if bit {
        total <<= 3;
    }
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    if bit && start <= end {
        first_mask = !((1u16 << (8 - (start & 7))) - 1) as u8;
        last_mask = ((1u16 << (7 - (end & 7))) - 1) as u8;
        start >>= 3;
        end >>= 3;
    }
    Span {
        start,
        end,
        first_mask,
        last_mask,
    }
}

fn bitcount(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let n = cx.shared.topology.load().entry(a.arg(1)?, |e| {
        // redis 7.0 looks the key up first: a missing key counts 0 whatever the arguments.
        let Some(v) = string_of(e)? else {
            return Ok(0);
        };
        let s = match a.len() {
            2 => Span {
                start: 0,
                end: v.len() as i64 - 1,
                first_mask: 0,
                last_mask: 0,
            },
            4 | 5 => {
                let start = parse_int(a.arg(2)?)?;
                let end = parse_int(a.arg(3)?)?;
                if start < 0 && end < 0 && start > end {
                    return Ok(0);
                }
                let bit = if a.len() == 5 {
                    parse_unit(a.arg(4)?)?
                } else {
                    false
                };
                span(start, end, v.len(), bit)
            }
            _ => return Err(RespError::Syntax),
        };
        if s.start > s.end {
            return Ok(0);
        }
        let bytes = &v[s.start as usize..=s.end as usize];
        let mut n: i64 = bytes.iter().map(|b| i64::from(b.count_ones())).sum();
        n -= i64::from((bytes[0] & s.first_mask).count_ones());
        n -= i64::from((bytes[bytes.len() - 1] & s.last_mask).count_ones());
        Ok::<_, RespError>(n)
    })?;
    encode_int(out, n);
    Ok(())
}

/// redis `redisBitpos`: the first bit equal to `bit` in `bytes`; not found: -1 for a set bit,
/// the first bit past the end for a clear one.
fn first_bit(bytes: &[u8], bit: bool) -> i64 {
    for (i, &b) in bytes.iter().enumerate() {
        let b = if bit { b } else { !b };
        if b != 0 {
            return i as i64 * 8 + i64::from(b.leading_zeros());
        }
    }
    if bit { -1 } else { bytes.len() as i64 * 8 }
}

fn bitpos(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let bit = parse_int(a.arg(2)?)?;
    if bit != 0 && bit != 1 {
        return Err(RespError::BitArgument);
    }
    let bit = bit == 1;
    let pos = cx.shared.topology.load().entry(a.arg(1)?, |e| {
        // redis 7.0: a missing key is an infinite run of zeros, whatever the range says.
        let Some(v) = string_of(e)? else {
            return Ok(if bit { -1 } else { 0 });
        };
        let (s, end_given) = match a.len() {
            3 => (span(0, v.len() as i64 - 1, v.len(), false), false),
            4..=6 => {
                let start = parse_int(a.arg(3)?)?;
                let unit = if a.len() == 6 {
                    parse_unit(a.arg(5)?)?
                } else {
                    false
                };
                let end = if a.len() >= 5 {
                    parse_int(a.arg(4)?)?
                } else {
                    v.len() as i64 - 1
                };
                (span(start, end, v.len(), unit), a.len() >= 5)
            }
            _ => return Err(RespError::Syntax),
        };
        if s.start > s.end {
            return Ok(-1);
        }
        Ok::<_, RespError>(bitpos_in(v, &s, bit, end_given))
    })?;
    encode_int(out, pos);
    Ok(())
}

/// BITPOS over the span `s` of `v` (start <= end), as redis computes it byte by byte.
fn bitpos_in(v: &[u8], s: &Span, bit: bool, end_given: bool) -> i64 {
    let mut start = s.start as usize;
    let end = s.end as usize;
    let mut bytes = end - start + 1;
    let pos;
    // Forces the masked-out bits of an edge byte to the value not searched for.
    let edge = |b: u8, mask: u8| if bit { b & !mask } else { b | mask };
    'found: {
        if s.first_mask != 0 {
            let mut c = edge(v[start], s.first_mask);
            if s.last_mask != 0 && bytes == 1 {
                c = edge(c, s.last_mask);
            }
            let p = first_bit(&[c], bit);
            if bytes == 1 || (p != -1 && p != 8) {
                pos = p;
                break 'found;
            }
            start += 1;
            bytes -= 1;
        }
        let cur = bytes - usize::from(s.last_mask != 0);
        if cur > 0 {
            let p = first_bit(&v[start..start + cur], bit);
            if bytes == cur || (p != -1 && p != (cur as i64) << 3) {
                pos = p;
                break 'found;
            }
            start += cur;
            bytes -= cur;
        }
        pos = first_bit(&[edge(v[end], s.last_mask)], bit);
    }
    if end_given && !bit && pos == (bytes as i64) << 3 {
        return -1;
    }
    if pos == -1 {
        return -1;
    }
    pos + ((start as i64) << 3)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let name = a.arg(1)?;
    let op = match () {
        _ if name.eq_ignore_ascii_case(b"and") => BitOp::And,
        _ if name.eq_ignore_ascii_case(b"or") => BitOp::Or,
        _ if name.eq_ignore_ascii_case(b"xor") => BitOp::Xor,
        _ if name.eq_ignore_ascii_case(b"not") => BitOp::Not,
        _ => return Err(RespError::Syntax),
    };
    if op == BitOp::Not && a.len() != 4 {
        return Err(RespError::BitopNotOneKey);
    }
    let keys: Vec<&[u8]> = a.iter_from(2).collect();
    let (dest, sources) = (keys[0], &keys[1..]);
    let limits = cx.limits;
    let topo = cx.shared.topology.load();
    let Some(len) = with_keys_exclusive(cx, &topo, &keys, |acc| {
        // Folded one source at a time, straight from its entry: however many sources (the
        // same big key may be named thousands of times), only the result is held. A missing
        // source, or the part past a shorter one's end, is zeros.
        let mut res: Vec<u8> = Vec::new();
        for (i, k) in sources.iter().enumerate() {
            acc.entry(k, |e| {
                let v = string_of(e)?.unwrap_or_default();
                if v.len() > res.len() {
                    check_size(limits, v.len())?;
                }
                let common = v.len().min(res.len());
                match op {
                    _ if i == 0 => res.extend_from_slice(v),
                    BitOp::And => {
                        res.iter_mut().zip(v).for_each(|(r, b)| *r &= b);
                        res[common..].iter_mut().for_each(|r| *r = 0);
                        res.resize(res.len().max(v.len()), 0);
                    }
                    BitOp::Or => {
                        res.iter_mut().zip(v).for_each(|(r, b)| *r |= b);
                        res.extend_from_slice(&v[common..]);
                    }
                    BitOp::Xor => {
                        res.iter_mut().zip(v).for_each(|(r, b)| *r ^= b);
                        res.extend_from_slice(&v[common..]);
                    }
                    BitOp::Not => {}
                }
                if !v.is_empty() {
                    e.mark_read();
                }
                Ok::<_, RespError>(())
            })?;
        }
        if op == BitOp::Not {
            res.iter_mut().for_each(|b| *b = !*b);
        }
        let max = res.len();
        if max == 0 {
            acc.entry(dest, |e| e.remove());
            return Ok(0);
        }
        acc.entry(dest, |e| e.put(&[&res], 0, NEVER, None))
            .map_err(store_error)?;
        Ok::<_, RespError>(max)
    }) else {
        return Ok(()); // Retried once the gate opens.
    };
    encode_int(out, len? as i64);
    Ok(())
}

/// BITFIELD overflow behavior.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// One BITFIELD operation.
#[derive(Clone, Copy)]
struct FieldOp {
    /// None: GET; Some(false): SET; Some(true): INCRBY.
    write: Option<bool>,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

/// redis `getBitfieldTypeFromArgument`: `i1`..`i64` or `u1`..`u63`.
fn parse_type(s: &[u8]) -> Result<(bool, u32), RespError> {
    let signed = match s.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(RespError::BitfieldType),
    };
    // redis reads the width with strlen: it stops at a NUL byte.
    let digits = &s[1..];
    let digits = &digits[..digits.iter().position(|&b| b == 0).unwrap_or(digits.len())];
    match parse_i64(digits) {
        Some(n) if n >= 1 && n <= if signed { 64 } else { 63 } => Ok((signed, n as u32)),
        _ => Err(RespError::BitfieldType),
    }
}

/// The unsigned integer of `bits` bits at bit `offset` of `v` (zeros past its end).
fn get_unsigned(v: &[u8], offset: u64, bits: u32) -> u64 {
    let mut value = 0u64;
    for j in 0..u64::from(bits) {
        let o = offset + j;
        let byte = usize::try_from(o >> 3).ok().and_then(|i| v.get(i)).copied();
        let bit = byte.map_or(0, |b| (b >> (7 - (o & 7))) & 1);
        value = (value << 1) | u64::from(bit);
    }
    value
}

/// The signed integer of `bits` bits at bit `offset` of `v` (two's complement).
fn get_signed(v: &[u8], offset: u64, bits: u32) -> i64 {
    let mut value = get_unsigned(v, offset, bits);
    if bits < 64 && value & (1 << (bits - 1)) != 0 {
        value |= u64::MAX << bits;
    }
    value as i64
}

/// Writes the low `bits` bits of `value` at bit `offset` of `v` (long enough).
fn set_bits(v: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..u64::from(bits) {
        let on = value & (1 << (u64::from(bits) - 1 - j)) != 0;
        let o = offset + j;
        let byte = (o >> 3) as usize;
        let mask = 1u8 << (7 - (o & 7));
        if on {
            v[byte] |= mask;
        } else {
            v[byte] &= !mask;
        }
    }
}

/// redis `checkUnsignedBitfieldOverflow`: whether `value + incr` leaves `bits` unsigned bits,
/// and the value to store instead under WRAP or SAT (None under FAIL).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, Option<u64>) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX << bits);
    if value > max || (incr > 0 && incr > max_incr) {
        return match ow {
            Overflow::Wrap => (true, Some(wrap())),
            Overflow::Sat => (true, Some(max)),
            Overflow::Fail => (true, None),
        };
    }
    if incr < 0 && incr < min_incr {
        return match ow {
            Overflow::Wrap => (true, Some(wrap())),
            Overflow::Sat => (true, Some(0)),
            Overflow::Fail => (true, None),
        };
    }
    (false, None)
}

/// redis `checkSignedBitfieldOverflow`, as [`unsigned_overflow`] for `bits` signed bits.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, Option<i64>) {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr)
    {
        return match ow {
            Overflow::Wrap => (true, Some(wrap())),
            Overflow::Sat => (true, Some(max)),
            Overflow::Fail => (true, None),
        };
    }
    if value < min || (bits != 64 && incr < min_incr) || (value < 0 && incr < 0 && incr < min_incr)
    {
        return match ow {
            Overflow::Wrap => (true, Some(wrap())),
            Overflow::Sat => (true, Some(min)),
            Overflow::Fail => (true, None),
        };
    }
    (false, None)
}

/// Parses BITFIELD's operations (redis `bitfieldGeneric`'s loop, its errors in its order).
fn parse_field_ops(a: &Args<'_>, limit: u64) -> Result<Vec<FieldOp>, RespError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < a.len() {
        let rest = a.len() - j - 1;
        let sub = a.arg(j)?;
        let write = if sub.eq_ignore_ascii_case(b"get") && rest >= 2 {
            None
        } else if sub.eq_ignore_ascii_case(b"set") && rest >= 3 {
            Some(false)
        } else if sub.eq_ignore_ascii_case(b"incrby") && rest >= 3 {
            Some(true)
        } else if sub.eq_ignore_ascii_case(b"overflow") && rest >= 1 {
            let kind = a.arg(j + 1)?;
            overflow = match () {
                _ if kind.eq_ignore_ascii_case(b"wrap") => Overflow::Wrap,
                _ if kind.eq_ignore_ascii_case(b"sat") => Overflow::Sat,
                _ if kind.eq_ignore_ascii_case(b"fail") => Overflow::Fail,
                _ => return Err(RespError::OverflowType),
            };
            j += 2;
            continue;
        } else {
            return Err(RespError::Syntax);
        };
        let (signed, bits) = parse_type(a.arg(j + 1)?)?;
        let offset = parse_offset(a.arg(j + 2)?, bits, limit)?;
        let value = match write {
            Some(_) => parse_int(a.arg(j + 3)?)?,
            None => 0,
        };
        ops.push(FieldOp {
            write,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if write.is_some() { 4 } else { 3 };
    }
    Ok(ops)
}

fn bitfield(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut, read_only: bool) -> Reply {
    let ops = parse_field_ops(a, cx.limits.proto_max_bulk_len)?;
    let v = cx.conn.version;
    let limits = cx.limits;
    // The furthest bit a SET/INCRBY reaches: the string grows to hold it.
    let highest = ops
        .iter()
        .filter(|o| o.write.is_some())
        .map(|o| o.offset + u64::from(o.bits) - 1)
        .max();
    if highest.is_some() && read_only {
        return Err(RespError::BitfieldRoGetOnly);
    }
    // Results: Some(n) an integer, None the null of a FAIL overflow.
    let results: Vec<Option<i64>> = cx.shared.topology.load().entry(a.arg(1)?, |e| {
        let Some(highest) = highest else {
            let value = string_of(e)?.unwrap_or_default();
            let r = ops.iter().map(|o| Some(read_field(value, o))).collect();
            if e.item().is_some() {
                e.mark_read();
            }
            return Ok(r);
        };
        update_string(e, limits, highest / 8 + 1, |value| {
            ops.iter().map(|o| run_field_op(value, o)).collect()
        })
    })?;
    encode_array(out, results.len());
    for r in results {
        match r {
            Some(n) => encode_int(out, n),
            None => encode_null(out, v),
        }
    }
    Ok(())
}

/// A GET: the field's value as redis replies it.
fn read_field(value: &[u8], o: &FieldOp) -> i64 {
    if o.signed {
        get_signed(value, o.offset, o.bits)
    } else {
        get_unsigned(value, o.offset, o.bits) as i64
    }
}

/// Runs one operation on `value` (long enough for every write): its reply.
fn run_field_op(value: &mut [u8], o: &FieldOp) -> Option<i64> {
    let Some(incr) = o.write else {
        return Some(read_field(value, o));
    };
    if o.signed {
        let old = get_signed(value, o.offset, o.bits);
        let (over, limit, new, reply) = if incr {
            let (over, limit) = signed_overflow(old, o.value, o.bits, o.overflow);
            let new = limit.unwrap_or(old.wrapping_add(o.value));
            (over, limit, new, new)
        } else {
            let (over, limit) = signed_overflow(o.value, 0, o.bits, o.overflow);
            (over, limit, limit.unwrap_or(o.value), old)
        };
        if over && limit.is_none() {
            return None;
        }
        set_bits(value, o.offset, o.bits, new as u64);
        Some(reply)
    } else {
        let old = get_unsigned(value, o.offset, o.bits);
        let (over, limit, new, reply) = if incr {
            let (over, limit) = unsigned_overflow(old, o.value, o.bits, o.overflow);
            let new = limit.unwrap_or(old.wrapping_add(o.value as u64));
            (over, limit, new, new)
        } else {
            let (over, limit) = unsigned_overflow(o.value as u64, 0, o.bits, o.overflow);
            (over, limit, limit.unwrap_or(o.value as u64), old)
        };
        if over && limit.is_none() {
            return None;
        }
        set_bits(value, o.offset, o.bits, new);
        Some(reply as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_at_every_width() {
        let mut v = vec![0u8; 16];
        for bits in 1..=64u32 {
            for offset in [0u64, 1, 7, 8, 13] {
                v.iter_mut().for_each(|b| *b = 0);
                let max = if bits == 64 {
                    i64::MAX
                } else {
                    (1i64 << (bits - 1)) - 1
                };
                set_bits(&mut v, offset, bits, (-max - 1) as u64);
                assert_eq!(
                    get_signed(&v, offset, bits),
                    -max - 1,
                    "i{bits} at {offset}"
                );
                set_bits(&mut v, offset, bits, max as u64);
                assert_eq!(get_signed(&v, offset, bits), max, "i{bits} at {offset}");
            }
        }
    }

    #[test]
    fn overflow_rules_match_redis() {
        assert_eq!(
            unsigned_overflow(255, 1, 8, Overflow::Wrap),
            (true, Some(0))
        );
        assert_eq!(
            unsigned_overflow(255, 1, 8, Overflow::Sat),
            (true, Some(255))
        );
        assert_eq!(unsigned_overflow(0, -1, 8, Overflow::Sat), (true, Some(0)));
        assert_eq!(unsigned_overflow(0, -1, 8, Overflow::Fail), (true, None));
        assert_eq!(
            signed_overflow(127, 1, 8, Overflow::Wrap),
            (true, Some(-128))
        );
        assert_eq!(
            signed_overflow(-128, -1, 8, Overflow::Sat),
            (true, Some(-128))
        );
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            (true, Some(i64::MIN))
        );
        assert_eq!(signed_overflow(5, -3, 8, Overflow::Fail), (false, None));
    }

    #[test]
    fn offsets_stop_at_eight_times_proto_max_bulk_len() {
        const LIMIT: u64 = 512 << 20;
        assert_eq!(parse_offset(b"4294967295", 0, LIMIT), Ok(4_294_967_295));
        assert_eq!(
            parse_offset(b"4294967296", 0, LIMIT),
            Err(RespError::BitOffset)
        );
        assert_eq!(parse_offset(b"8388607", 0, 1 << 20), Ok(8_388_607));
        assert_eq!(
            parse_offset(b"8388608", 0, 1 << 20),
            Err(RespError::BitOffset)
        );
        assert_eq!(parse_offset(b"-1", 0, LIMIT), Err(RespError::BitOffset));
        assert_eq!(parse_offset(b"#3", 8, LIMIT), Ok(24));
        assert_eq!(parse_offset(b"#3", 0, LIMIT), Err(RespError::BitOffset));
        assert_eq!(
            parse_offset(b"#9223372036854775807", 64, LIMIT),
            Err(RespError::BitOffset)
        );
    }
}
