//! Redis container commands: hashes, lists, sets, sorted sets, and the blocking pops. The
//! dispatcher (`handler`) routes each command straight to its module by the table's group.
//!
//! Owns: the semantics of these commands (redis-server 7.0's checks, in its order, and its
//! replies), the key-access abstraction for multi-key commands ([`Access`]) and score
//! parsing/formatting. Must not touch: framing, sockets, store internals (containers are
//! changed only through their own methods, which keep the memory charge current).
//!
//! Atomicity: a command over several keys (SMOVE, LMOVE, S*STORE, Z*STORE, ZRANGESTORE, and
//! RENAME/COPY in `keyspace`, MSETNX in `strings`, the geo STOREs in `geo`) runs inside
//! [`with_keys`]: when all its keys are owned by one node and no migration is running, every
//! key is locked at once ([`Topology::entries`]) and the command is atomic; otherwise each key
//! is accessed on its own through `Topology::entry`, in the order redis touches them (not
//! atomic, documented in README). [`with_keys_exclusive`] (BITOP, PFMERGE) is atomic in the
//! second case too: it runs the command alone in the server's gate, as EXEC runs its queue.
//!
//! Empty containers never exist: `Entry::update_container` removes a container a command
//! emptied, and a command that would create an empty one (ZADD XX, ...) creates nothing.

pub(super) mod hash;
pub(super) mod list;
pub(super) mod set;
pub(super) mod zset;

pub mod blocking;

use bytes::BytesMut;

use super::conn::{Ctx, Reply};
use super::error::RespError;
use super::error::store_error;
use super::frame::{Version, encode_double};
use crate::route::topology::Topology;
use crate::store::{Container, Entry, Hash, Kind, List, Locked, Set, Stream, ZSet};

pub(super) use super::frame::Args;
pub(super) use super::random::rand_below;

/// Access to the keys of one command: all locked on one node, or routed one by one.
pub(crate) enum Access<'a, 'l> {
    /// Every key locked on its (common) node: atomic.
    Locked(&'a mut Locked<'l>),
    /// Each access routed and locked on its own.
    Routed(&'a Topology),
}

impl Access<'_, '_> {
    /// Runs `f` on the entry of `key` (one of the keys given to [`with_keys`]).
    pub(crate) fn entry<R>(&mut self, key: &[u8], f: impl FnOnce(&mut Entry<'_>) -> R) -> R {
        match self {
            Access::Locked(l) => {
                let i = l
                    .keys()
                    .iter()
                    .position(|k| *k == key)
                    .expect("key given to with_keys");
                l.entry(i, f)
            }
            Access::Routed(t) => t.entry(key, f),
        }
    }
}

/// Runs `f` over `keys`, atomically when they share a node (see the module header).
pub(crate) fn with_keys<R>(
    topo: &Topology,
    keys: &[&[u8]],
    f: impl FnOnce(&mut Access<'_, '_>) -> R,
) -> R {
    topo.entries(keys, |locked| match locked {
        Some(l) => f(&mut Access::Locked(l)),
        None => f(&mut Access::Routed(topo)),
    })
}

/// Like [`with_keys`], and atomic across nodes too: when the keys are not all locked on one
/// node (they span nodes, or a migration runs), `f` runs inside the server's gate, alone, as
/// EXEC runs (inside EXEC it already is). For commands that must never show a half state
/// (BITOP, PFMERGE). None (`f` not run) when another exclusive caller (a script) holds the
/// gate: the request is retried once it opens (`Conn::retry`), so no runtime thread parks
/// behind a long script.
pub(crate) fn with_keys_exclusive<R>(
    cx: &Ctx<'_>,
    topo: &Topology,
    keys: &[&[u8]],
    f: impl FnOnce(&mut Access<'_, '_>) -> R,
) -> Option<R> {
    topo.entries(keys, |locked| match (locked, cx.pass) {
        (Some(l), _) => Some(f(&mut Access::Locked(l))),
        (None, Some(pass)) if !cx.conn.in_exec => {
            let r = pass
                .gate()
                .try_exclusive(pass, || f(&mut Access::Routed(topo)));
            if r.is_none() {
                cx.conn.retry.set(true);
            }
            r
        }
        (None, _) => Some(f(&mut Access::Routed(topo))),
    })
}

/// A container type, for the typed accessors below.
pub(super) trait Typed: Default + Sized {
    fn get(c: &Container) -> Option<&Self>;
    fn get_mut(c: &mut Container) -> Option<&mut Self>;
    fn wrap(self) -> Container;
}

macro_rules! typed {
    ($t:ty, $v:ident) => {
        impl Typed for $t {
            fn get(c: &Container) -> Option<&Self> {
                match c {
                    Container::$v(x) => Some(x),
                    _ => None,
                }
            }
            fn get_mut(c: &mut Container) -> Option<&mut Self> {
                match c {
                    Container::$v(x) => Some(x),
                    _ => None,
                }
            }
            fn wrap(self) -> Container {
                Container::$v(self)
            }
        }
    };
}
typed!(Hash, Hash);
typed!(List, List);
typed!(Set, Set);
typed!(ZSet, ZSet);
typed!(Box<Stream>, Stream);

/// Runs `f` on the live container of type `T`: Ok(None) if the key is absent, WRONGTYPE if it
/// holds another kind. Counts as a read (SIEVE visited bit).
pub(super) fn read<T: Typed, R>(
    e: &mut Entry<'_>,
    f: impl FnOnce(&T) -> R,
) -> Result<Option<R>, RespError> {
    let r = match e.item() {
        None => return Ok(None),
        Some(i) => match i.container().and_then(T::get) {
            Some(c) => f(c),
            None => return Err(RespError::WrongType),
        },
    };
    e.mark_read();
    Ok(Some(r))
}

/// Checks the key holds a `T` or nothing.
pub(super) fn check<T: Typed>(e: &Entry<'_>) -> Reply {
    match e.item() {
        Some(i) if i.container().and_then(T::get).is_none() => Err(RespError::WrongType),
        _ => Ok(()),
    }
}

/// Runs `f` on the live container of type `T`, creating an empty one first if the key is
/// absent and `create`; a container left empty is removed. Ok(None): absent and not created.
pub(super) fn write<T: Typed, R>(
    e: &mut Entry<'_>,
    create: bool,
    f: impl FnOnce(&mut T) -> R,
) -> Result<Option<R>, RespError> {
    check::<T>(e)?;
    if e.item().is_none() {
        if !create {
            return Ok(None);
        }
        e.put_container(T::default().wrap(), crate::store::NEVER)
            .map_err(store_error)?;
    }
    e.update_container(|c| f(T::get_mut(c).expect("type checked")))
        .map_err(store_error)
}

/// Replaces the key's value with `c` (deleting the key if `c` is empty), as the *STORE
/// commands do.
pub(super) fn store(e: &mut Entry<'_>, c: Container) -> Reply {
    if c.is_empty() {
        e.remove();
        return Ok(());
    }
    e.put_container(c, crate::store::NEVER)
        .map(|_| ())
        .map_err(store_error)
}

/// The kind at a key (None if absent).
pub(super) fn kind_of(e: &Entry<'_>) -> Option<Kind> {
    e.item().map(|i| i.kind())
}

/// redis `getDoubleFromObject`: strtod over the whole argument, no leading space, no NaN,
/// no overflow or underflow (ERANGE).
pub(super) fn parse_double(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s[0].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let v: f64 = text.parse().ok()?;
    if v.is_nan() {
        return None;
    }
    let body = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
    if v.is_infinite() && body != "inf" && body != "infinity" {
        return None;
    }
    if v == 0.0 {
        let mantissa = body.split('e').next().unwrap_or("");
        if mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
            return None;
        }
    }
    Some(v)
}

/// redis `d2string`/`addReplyDouble` in 7.0: `%.17g`, `inf`/`-inf`.
pub(super) fn fmt_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{d:.16e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..17).contains(&exp) {
        let m = strip_zeros(mant);
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let prec = (16 - exp) as usize;
        strip_zeros(&format!("{d:.prec$}")).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Writes a double reply (RESP2 bulk, RESP3 `,`).
pub(super) fn reply_double(out: &mut BytesMut, d: f64, v: Version) {
    encode_double(out, fmt_double(d).as_bytes(), v);
}

/// redis `getRangeLongFromObjectOrReply` / index normalization for LRANGE, ZRANGE, LTRIM:
/// the ascending index window `start..end` (empty if none) of `len` elements.
pub(super) fn index_window(start: i64, stop: i64, len: usize) -> (usize, usize) {
    let len = len as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if stop < 0 { len + stop } else { stop };
    if s < 0 {
        s = 0;
    }
    if s > e || s >= len {
        return (0, 0);
    }
    if e >= len {
        e = len - 1;
    }
    (s as usize, e as usize + 1)
}

/// The indexes HRANDFIELD/SRANDMEMBER/ZRANDMEMBER answer for `count` over `len` elements
/// (len > 0): a negative count picks with repetition (at most [`MAX_PICKS`]), a count of at
/// least `len` takes every element (in reverse when `all_reversed`, as redis walks a sorted
/// set's listpack from the tail), and a smaller one picks distinct elements.
fn random_picks(count: i64, len: usize, all_reversed: bool) -> Vec<usize> {
    if count < 0 {
        (0..count.unsigned_abs().min(MAX_PICKS))
            .map(|_| rand_below(len))
            .collect()
    } else if count as u64 >= len as u64 {
        if all_reversed {
            (0..len).rev().collect()
        } else {
            (0..len).collect()
        }
    } else {
        distinct(len, count as usize)
    }
}

/// At most this many elements answer a negative count of HRANDFIELD/SRANDMEMBER/ZRANDMEMBER
/// (repetitions allowed): redis would stream any number; a cap keeps one request from making
/// an unbounded reply.
pub(super) const MAX_PICKS: u64 = 1 << 20;

/// A container HRANDFIELD, SRANDMEMBER and ZRANDMEMBER pick from, by position.
pub(super) trait Pick: Typed {
    /// True for a sorted set: redis walks its listpack from the tail when it returns every
    /// element.
    const ALL_REVERSED: bool = false;
    /// Number of elements.
    fn size(&self) -> usize;
    /// The element at `i` (field or member).
    fn member(&self, i: usize) -> &[u8];
    /// Writes the value paired with element `i` (WITHVALUES, WITHSCORES).
    fn write_value(&self, _i: usize, _out: &mut BytesMut, _v: Version) {}
}

impl Pick for Hash {
    fn size(&self) -> usize {
        self.len()
    }
    fn member(&self, i: usize) -> &[u8] {
        self.at(i).0
    }
    fn write_value(&self, i: usize, out: &mut BytesMut, _v: Version) {
        super::frame::encode_bulk(out, self.at(i).1);
    }
}

impl Pick for Set {
    fn size(&self) -> usize {
        self.len()
    }
    fn member(&self, i: usize) -> &[u8] {
        self.at(i)
    }
}

impl Pick for ZSet {
    const ALL_REVERSED: bool = true;
    fn size(&self) -> usize {
        self.len()
    }
    fn member(&self, i: usize) -> &[u8] {
        self.at(i).0
    }
    fn write_value(&self, i: usize, out: &mut BytesMut, v: Version) {
        reply_double(out, self.at(i).1, v);
    }
}

/// HRANDFIELD, SRANDMEMBER and ZRANDMEMBER: `key [count [<option>]]`, where `option` is
/// WITHVALUES or WITHSCORES (None: SRANDMEMBER, which has none).
pub(super) fn random_members<T: Pick>(
    topo: &Topology,
    a: &Args<'_>,
    v: Version,
    out: &mut BytesMut,
    option: Option<&str>,
) -> Reply {
    use super::frame::{encode_array, encode_bulk, encode_null};
    let key = a.arg(1)?;
    if option.is_none() && a.len() > 3 {
        return Err(RespError::Syntax);
    }
    if a.len() == 2 {
        return topo.entry(key, |e| {
            let done = read::<T, _>(e, |c| encode_bulk(out, c.member(rand_below(c.size()))))?;
            if done.is_none() {
                encode_null(out, v);
            }
            Ok(())
        });
    }
    let count = super::args::parse_int(a.arg(2)?)?;
    let with_values = match (a.len(), option) {
        (3, _) => false,
        (4, Some(o)) if is(a.arg(3)?, o) => true,
        _ => return Err(RespError::Syntax),
    };
    // redis's own limits, in its order: the count is read in -i64::MAX..=i64::MAX (a negative
    // count is negated, i64::MIN cannot be), then the pairs of a WITHVALUES/WITHSCORES reply
    // are counted twice.
    if count == i64::MIN {
        return Err(RespError::RankOutOfRange);
    }
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(RespError::ValueOutOfRange);
    }
    topo.entry(key, |e| {
        let done = read::<T, _>(e, |c| {
            let picks = random_picks(count, c.size(), T::ALL_REVERSED);
            pairs_header(out, picks.len(), with_values, v);
            for i in picks {
                if with_values && v == Version::Resp3 {
                    encode_array(out, 2);
                }
                encode_bulk(out, c.member(i));
                if with_values {
                    c.write_value(i, out, v);
                }
            }
        })?;
        if done.is_none() {
            encode_array(out, 0);
        }
        Ok(())
    })
}

/// Header of a list of `n` elements, or of `n` (element, value) pairs: flat in RESP2, an
/// array of 2-arrays in RESP3 (redis 7's WITHSCORES/WITHVALUES replies).
pub(super) fn pairs_header(out: &mut BytesMut, n: usize, pairs: bool, v: Version) {
    use super::frame::encode_array;
    if pairs && v == Version::Resp2 {
        encode_array(out, 2 * n);
    } else {
        encode_array(out, n);
    }
}

/// `k` distinct random positions below `len` (k < len), in random order.
fn distinct(len: usize, k: usize) -> Vec<usize> {
    let mut picked = hashbrown::HashSet::with_capacity(k);
    let mut out = Vec::with_capacity(k);
    if k * 2 > len {
        let mut all: Vec<usize> = (0..len).collect();
        for i in 0..k {
            let j = i + rand_below(len - i);
            all.swap(i, j);
        }
        all.truncate(k);
        return all;
    }
    while out.len() < k {
        let i = rand_below(len);
        if picked.insert(i) {
            out.push(i);
        }
    }
    out
}

/// The optional count of LPOP/RPOP/SPOP/ZPOPMIN/ZPOPMAX: a non-negative integer.
pub(super) fn parse_count(s: &[u8]) -> Result<usize, RespError> {
    match crate::proto::resp::frame::parse_i64(s) {
        Some(n) if n >= 0 => Ok(n as usize),
        _ => Err(RespError::MustBePositive),
    }
}

/// Case-insensitive option match.
#[inline]
pub(super) fn is(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

/// The numkeys argument of the *MPOP/SINTERCARD/ZUNION family: >0 and not past the args.
pub(super) fn parse_numkeys(
    s: &[u8],
    available: usize,
    too_many: RespError,
) -> Result<usize, RespError> {
    let n = super::args::parse_int(s).map_err(|_| RespError::NumKeysNotPositive)?;
    if n <= 0 {
        return Err(RespError::NumKeysNotPositive);
    }
    if n as u64 > available as u64 {
        return Err(too_many);
    }
    Ok(n as usize)
}

/// The arguments of LMPOP/ZMPOP (and, after their timeout, BLMPOP/BZMPOP when `blocking`):
/// `numkeys key... <first|second> [COUNT n]`: the keys, true if the `first` word was given,
/// and the count (1 by default).
pub(super) fn parse_mpop<'a>(
    a: &Args<'a>,
    blocking: bool,
    first: &str,
    second: &str,
) -> Result<(Vec<&'a [u8]>, bool, usize), RespError> {
    let off = usize::from(blocking);
    // The table's arity (-4, -5) keeps this subtraction from wrapping.
    let nk = parse_numkeys(a.arg(1 + off)?, a.len() - 2 - off, RespError::Syntax)?;
    let keys: Vec<&[u8]> = (0..nk)
        .map(|i| a.arg(2 + off + i))
        .collect::<Result<_, _>>()?;
    let mut j = 2 + off + nk;
    let which = if j < a.len() && is(a.arg(j)?, first) {
        true
    } else if j < a.len() && is(a.arg(j)?, second) {
        false
    } else {
        return Err(RespError::Syntax);
    };
    j += 1;
    let mut count = 1usize;
    let mut seen = false;
    while j < a.len() {
        if !seen && is(a.arg(j)?, "count") && j + 1 < a.len() {
            let n = super::args::parse_int(a.arg(j + 1)?)?;
            if n <= 0 {
                return Err(RespError::CountNotPositive);
            }
            count = n as usize;
            seen = true;
            j += 2;
        } else {
            return Err(RespError::Syntax);
        }
    }
    Ok((keys, which, count))
}

/// One attempt of a pop over several keys (BLPOP, BRPOP, LMPOP, BZPOPMIN, BZPOPMAX, ZMPOP and
/// their blocking forms): the first key in order whose container of type `T` gives something
/// to `pop` is answered by `reply(out, key, popped, version)`. Ok(false): every key was empty.
pub(super) fn pop_first<T: Typed, R>(
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    keys: &[&[u8]],
    mut pop: impl FnMut(&mut T) -> Option<R>,
    reply: impl FnOnce(&mut BytesMut, &[u8], R, Version),
) -> Result<bool, RespError> {
    let topo = cx.shared.topology.load();
    for k in keys {
        if let Some(Some(r)) = topo.entry(k, |e| write::<T, _>(e, false, &mut pop))? {
            reply(out, k, r, cx.conn.version);
            return Ok(true);
        }
    }
    Ok(false)
}

/// Parsed `cursor [MATCH pattern] [COUNT n]` of HSCAN/SSCAN/ZSCAN.
pub(super) struct ScanArgs<'a> {
    pub cursor: u64,
    pub pattern: Option<&'a [u8]>,
    pub count: usize,
}

/// Collections up to this size are returned by one *SCAN call with cursor 0, as redis does
/// for its small (listpack/intset) encodings.
const SCAN_ALL_MAX: usize = 128;

pub(super) fn scan_args<'a>(a: &Args<'a>) -> Result<ScanArgs<'a>, RespError> {
    let cursor = super::args::parse_cursor(a.arg(2)?).ok_or_else(|| RespError::InvalidCursor)?;
    let mut s = ScanArgs {
        cursor,
        pattern: None,
        count: 10,
    };
    let mut i = 3;
    while i < a.len() {
        let rest = a.len() - i - 1;
        if is(a.arg(i)?, "count") && rest >= 1 {
            let n = super::args::parse_int(a.arg(i + 1)?)?;
            if n < 1 {
                return Err(RespError::Syntax);
            }
            s.count = n as usize;
            i += 2;
        } else if is(a.arg(i)?, "match") && rest >= 1 {
            s.pattern = Some(a.arg(i + 1)?).filter(|p| *p != b"*");
            i += 2;
        } else {
            return Err(RespError::Syntax);
        }
    }
    Ok(s)
}

impl ScanArgs<'_> {
    /// The position window to return out of `len` elements, and the next cursor.
    ///
    /// Large collections are walked from the top position down, the cursor being the
    /// position below which the walk continues (0 to start, 0 again at the end). The stores
    /// only ever move an element *down* (a removal moves the last element into the hole, or
    /// shifts the ones above it down by one; a score change keeps a sorted-set member's slot)
    /// and append new elements at the top, so an element present from the first call to the
    /// last cannot pass from below the cursor to above it unseen: it is returned, as redis
    /// promises for its SCANs. It may be returned twice, as in redis.
    pub(super) fn window(&self, len: usize) -> (usize, usize, u64) {
        if len <= SCAN_ALL_MAX {
            return (0, len, 0);
        }
        let end = match self.cursor {
            0 => len,
            c => usize::try_from(c).unwrap_or(usize::MAX).min(len),
        };
        let start = end.saturating_sub(self.count);
        (start, end, start as u64)
    }

    pub(super) fn matches(&self, s: &[u8]) -> bool {
        self.pattern.is_none_or(|p| crate::store::glob::glob(p, s))
    }
}

/// Writes a SCAN reply: `[cursor, [items...]]`.
pub(super) fn reply_scan(out: &mut BytesMut, next: u64, items: &[Vec<u8>]) {
    use super::frame::{encode_array, encode_bulk};
    encode_array(out, 2);
    let mut buf = itoa::Buffer::new();
    encode_bulk(out, buf.format(next).as_bytes());
    encode_array(out, items.len());
    for i in items {
        encode_bulk(out, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_format_like_redis_7_0() {
        for (d, s) in [
            (1.0, "1"),
            (1.1, "1.1000000000000001"),
            (0.1, "0.10000000000000001"),
            (-2.5, "-2.5"),
            (1e17, "1e+17"),
            (1.5e16, "15000000000000000"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (-0.0, "-0"),
            (123456789.0, "123456789"),
        ] {
            assert_eq!(fmt_double(d), s, "{d}");
        }
        assert_eq!(parse_double(b"1e400"), None);
        assert_eq!(parse_double(b"1e-400"), None);
        assert_eq!(parse_double(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_double(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_double(b"nan"), None);
        assert_eq!(parse_double(b" 1"), None);
        assert_eq!(parse_double(b"0e5"), Some(0.0));
        assert_eq!(index_window(0, -1, 3), (0, 3));
        assert_eq!(index_window(-100, 100, 3), (0, 3));
        assert_eq!(index_window(2, 1, 3), (0, 0));
    }
}
