//! RESP framing: decoding requests (multibulk and inline) from the read buffer, and encoding
//! replies (RESP2 and RESP3) into the write buffer. (A decoder of reply streams, which only
//! tests need, is `tests/common/frame.rs`.)
//!
//! Owns: the request grammar as redis-server 7.0 (`networking.c`) accepts it, its limits and
//! its fatal errors ([`ProtoError`], sent as `-ERR Protocol error: ...` before the close), and
//! every reply byte (`encode_*`; an error reply's text comes from `error`, `encode_error` only
//! frames it), and [`Args`], the checked access to a request's arguments.
//! Must not touch: commands, error texts, the store, the topology.
//!
//! Invariants:
//! - Zero copy: a decoded request is a list of `(start, len)` ranges into the caller's input
//!   buffer, kept in a `Vec` the [`Decoder`] reuses, so steady-state decoding allocates nothing.
//!   Inline commands (telnet style, with `"..."`/`'...'` quoting as in `sdssplitargs`) are
//!   unescaped into a reusable scratch buffer instead.
//! - Incomplete input gives `Ok(None)` and consumes nothing; the decoder remembers how far it
//!   got so a large multibulk arriving in pieces is scanned once.
//! - Bounded: a count line or inline line may grow to 64 KiB without a newline (redis's
//!   `PROTO_INLINE_MAX_SIZE`), a bulk string to `proto_max_bulk_len` (redis's `proto-max-bulk-len`),
//!   a whole request to `Limits::resp_request_max`. Past that framing is lost: error, then close.
//! - Like redis, a count line ends at the first `\r` and the two bytes after a bulk are skipped
//!   unchecked; `*0` and `*-1` are empty requests (no reply).

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use super::error::RespError;
use crate::config::Limits;

/// Longest inline command or count line without a newline (redis `PROTO_INLINE_MAX_SIZE`).
pub const INLINE_MAX: usize = 64 * 1024;
/// Largest multibulk count redis accepts (`INT_MAX`).
const MULTIBULK_MAX: i64 = i32::MAX as i64;

/// Framing is lost: answered with `-ERR Protocol error: <text>`, then the connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// A `*` line longer than 64 KiB without `\r`.
    #[error("too big mbulk count string")]
    TooBigMbulkCount,
    /// The `*` count is not a number or above `INT_MAX`.
    #[error("invalid multibulk length")]
    InvalidMultibulkLength,
    /// A multibulk element does not start with `$`.
    #[error("expected '$', got '{}'", char::from(*.0))]
    ExpectedBulk(u8),
    /// A `$` line longer than 64 KiB without `\r`.
    #[error("too big bulk count string")]
    TooBigBulkCount,
    /// The `$` length is not a number, negative, or above the bulk limit.
    #[error("invalid bulk length")]
    InvalidBulkLength,
    /// An inline command longer than 64 KiB without a newline.
    #[error("too big inline request")]
    TooBigInline,
    /// An inline command with an unterminated or badly closed quote.
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
    /// The whole request is larger than `Limits::resp_request_max`.
    #[error("request larger than the RESP request limit")]
    RequestTooLarge,
}

/// A decoded request's arguments: byte ranges into one buffer.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    ranges: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    /// Arguments over `buf` (used by tests and the decoder).
    pub fn new(buf: &'a [u8], ranges: &'a [(usize, usize)]) -> Args<'a> {
        Args { buf, ranges }
    }

    /// Number of arguments, the command name included.
    #[inline]
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True if there are no arguments.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Argument `i` (0 is the command name), or None past `len()`.
    #[inline]
    pub fn try_get(&self, i: usize) -> Option<&'a [u8]> {
        let &(start, len) = self.ranges.get(i)?;
        self.buf.get(start..start + len)
    }

    /// Argument `i` (0 is the command name); past `len()` the error
    /// [`RespError::MissingArgument`], never a panic. Handlers run only after the dispatcher
    /// checked the table's arity, so every index the arity guarantees exists and the others are
    /// read after a `len()` check; should a handler still read past the end, the client gets
    /// the command's arity error (the dispatcher names the command) and the server goes on.
    #[inline]
    pub fn arg(&self, i: usize) -> Result<&'a [u8], RespError> {
        self.try_get(i).ok_or_else(|| RespError::MissingArgument)
    }

    /// Arguments `from..` two by two, in order (a last odd one is left out).
    pub fn pairs_from(&self, from: usize) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let mut it = self.iter_from(from);
        std::iter::from_fn(move || Some((it.next()?, it.next()?)))
    }

    /// Arguments `from..` in order.
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = &'a [u8]> + 'a {
        let (buf, ranges) = (self.buf, self.ranges);
        ranges
            .get(from..)
            .unwrap_or(&[])
            .iter()
            .map(move |&(s, l)| &buf[s..s + l])
    }
}

/// Per-connection request decoder state.
#[derive(Default)]
pub struct Decoder {
    /// Argument ranges of the current request (into the input, or `scratch` when inline).
    ranges: Vec<(usize, usize)>,
    /// Unescaped inline arguments.
    scratch: Vec<u8>,
    /// True when `ranges` point into `scratch`.
    inline: bool,
    /// Multibulk in progress: elements announced (0 = none in progress).
    want: usize,
    /// Multibulk in progress: input position of the next element.
    pos: usize,
}

impl Decoder {
    /// A decoder for a new connection.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Decodes the request at the start of `input`. `Ok(Some(n))`: a request of `n` bytes is
    /// complete and its arguments are in [`Decoder::args`] (possibly none: skip it);
    /// `Ok(None)`: more bytes are needed (nothing is consumed).
    pub fn decode(&mut self, input: &[u8], limits: &Limits) -> Result<Option<usize>, ProtoError> {
        if self.want == 0 {
            self.ranges.clear();
            self.inline = false;
            match input.first() {
                None => return Ok(None),
                Some(b'*') => {}
                Some(_) => return self.decode_inline(input),
            }
            let Some((count, next)) = count_line(input, 0)? else {
                if input.len() > INLINE_MAX {
                    return Err(ProtoError::TooBigMbulkCount);
                }
                return Ok(None);
            };
            if count > MULTIBULK_MAX {
                return Err(ProtoError::InvalidMultibulkLength);
            }
            if count <= 0 {
                return Ok(Some(next));
            }
            self.want = count as usize;
            self.pos = next;
        }
        let bulk_max = limits.proto_max_bulk_len;
        while self.ranges.len() < self.want {
            let at = self.pos;
            let Some(&first) = input.get(at) else {
                return Ok(None);
            };
            if first != b'$' {
                self.want = 0;
                return Err(ProtoError::ExpectedBulk(first));
            }
            let Some((len, data)) = count_line(input, at).inspect_err(|_| self.want = 0)? else {
                if input.len() - at > INLINE_MAX {
                    self.want = 0;
                    return Err(ProtoError::TooBigBulkCount);
                }
                return Ok(None);
            };
            if len < 0 || len as u64 > bulk_max {
                self.want = 0;
                return Err(ProtoError::InvalidBulkLength);
            }
            let len = len as usize;
            let end = data + len + 2;
            if end as u64 > limits.resp_request_max().saturating_add(INLINE_MAX as u64) {
                self.want = 0;
                return Err(ProtoError::RequestTooLarge);
            }
            if input.len() < end {
                return Ok(None);
            }
            self.ranges.push((data, len));
            self.pos = end;
        }
        self.want = 0;
        Ok(Some(self.pos))
    }

    /// The arguments of the request `decode` just completed, over the same `input`.
    pub fn args<'a>(&'a self, input: &'a [u8]) -> Args<'a> {
        let buf = if self.inline { &self.scratch } else { input };
        Args {
            buf,
            ranges: &self.ranges,
        }
    }

    fn decode_inline(&mut self, input: &[u8]) -> Result<Option<usize>, ProtoError> {
        let Some(nl) = input.iter().position(|&b| b == b'\n') else {
            if input.len() > INLINE_MAX {
                return Err(ProtoError::TooBigInline);
            }
            return Ok(None);
        };
        let mut line = &input[..nl];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        self.inline = true;
        self.scratch.clear();
        if !split_args(line, &mut self.scratch, &mut self.ranges) {
            return Err(ProtoError::UnbalancedQuotes);
        }
        Ok(Some(nl + 1))
    }
}

/// Parses a `*N\r` / `$N\r` line at `at`: (number, position after `\r` and one more byte).
/// `Ok(None)` if the `\r` or the byte after it has not arrived.
fn count_line(input: &[u8], at: usize) -> Result<Option<(i64, usize)>, ProtoError> {
    let rest = &input[at..];
    // Fast path, one pass: up to 18 digits (no overflow possible), no leading zero, then `\r`.
    let mut v: i64 = 0;
    for (i, &b) in rest.iter().enumerate().skip(1).take(19) {
        match b {
            b'0'..=b'9' if i <= 18 => v = v * 10 + i64::from(b - b'0'),
            b'\r' if i > 1 && (rest[1] != b'0' || i == 2) => {
                return Ok((i + 2 <= rest.len()).then_some((v, at + i + 2)));
            }
            _ => break,
        }
    }
    let Some(cr) = rest.iter().position(|&b| b == b'\r') else {
        return Ok(None);
    };
    if cr + 2 > rest.len() {
        return Ok(None);
    }
    let n = parse_i64(&rest[1..cr]).ok_or(if rest[0] == b'*' {
        ProtoError::InvalidMultibulkLength
    } else {
        ProtoError::InvalidBulkLength
    })?;
    Ok(Some((n, at + cr + 2)))
}

/// redis `string2ll`: optional `-`, digits, no leading zeros (except "0"), no spaces, no `+`,
/// within `i64`.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && (s.len() > 1)) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(d - b'0');
    }
    if neg {
        if v > 1 << 63 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// redis `sdssplitargs`: splits `line` on whitespace with `"..."` (C escapes, `\xHH`) and
/// `'...'` (`\'`) quoting into `scratch`, pushing each argument's range. False on unbalanced
/// quotes (or a closing quote not followed by a space).
fn split_args(line: &[u8], scratch: &mut Vec<u8>, ranges: &mut Vec<(usize, usize)>) -> bool {
    let is_space = |b: u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c);
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return true;
        }
        let start = scratch.len();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            let c = line.get(p).copied();
            if in_dq {
                match c {
                    None => return false,
                    Some(b'\\')
                        if line.len() > p + 3
                            && line[p + 1] == b'x'
                            && line[p + 2].is_ascii_hexdigit()
                            && line[p + 3].is_ascii_hexdigit() =>
                    {
                        let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                        scratch.push(hex(line[p + 2]) * 16 + hex(line[p + 3]));
                        p += 3;
                    }
                    Some(b'\\') if p + 1 < line.len() => {
                        p += 1;
                        scratch.push(match line[p] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if line.get(p + 1).is_some_and(|&b| !is_space(b)) {
                            return false;
                        }
                        p += 1;
                        break;
                    }
                    Some(other) => scratch.push(other),
                }
            } else if in_sq {
                match c {
                    None => return false,
                    Some(b'\\') if line.get(p + 1) == Some(&b'\'') => {
                        p += 1;
                        scratch.push(b'\'');
                    }
                    Some(b'\'') => {
                        if line.get(p + 1).is_some_and(|&b| !is_space(b)) {
                            return false;
                        }
                        p += 1;
                        break;
                    }
                    Some(other) => scratch.push(other),
                }
            } else {
                match c {
                    None => break,
                    Some(b) if is_space(b) => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(other) => scratch.push(other),
                }
            }
            p += 1;
        }
        ranges.push((start, scratch.len() - start));
    }
}

/// Protocol version of a connection (`HELLO 2|3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    /// RESP2 (the default).
    #[default]
    Resp2,
    /// RESP3.
    Resp3,
}

/// Writes `+text\r\n`.
#[inline]
pub fn encode_simple(out: &mut BytesMut, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(b'+');
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

/// Writes `+OK\r\n`.
#[inline]
pub fn encode_ok(out: &mut BytesMut) {
    out.put_slice(b"+OK\r\n");
}

/// Writes `<prefix><n>\r\n`.
#[inline]
fn encode_len(out: &mut BytesMut, prefix: u8, n: i64) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n).as_bytes();
    out.reserve(digits.len() + 3);
    out.put_u8(prefix);
    out.put_slice(digits);
    out.put_slice(b"\r\n");
}

/// Writes `:n\r\n`.
#[inline]
pub fn encode_int(out: &mut BytesMut, n: i64) {
    encode_len(out, b':', n);
}

/// Writes a bulk string.
#[inline]
pub fn encode_bulk(out: &mut BytesMut, data: &[u8]) {
    encode_len(out, b'$', data.len() as i64);
    out.reserve(data.len() + 2);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Writes the null reply (RESP2 `$-1`, RESP3 `_`).
#[inline]
pub fn encode_null(out: &mut BytesMut, v: Version) {
    out.put_slice(match v {
        Version::Resp2 => b"$-1\r\n".as_slice(),
        Version::Resp3 => b"_\r\n",
    });
}

/// Writes the null array (RESP2 `*-1`, RESP3 `_`).
#[inline]
pub fn encode_null_array(out: &mut BytesMut, v: Version) {
    out.put_slice(match v {
        Version::Resp2 => b"*-1\r\n".as_slice(),
        Version::Resp3 => b"_\r\n",
    });
}

/// Writes an array header of `n` elements.
#[inline]
pub fn encode_array(out: &mut BytesMut, n: usize) {
    encode_len(out, b'*', n as i64);
}

/// Writes a push header of `n` elements (RESP2: an array): pub/sub replies and messages.
#[inline]
pub fn encode_push(out: &mut BytesMut, n: usize, v: Version) {
    match v {
        Version::Resp2 => encode_len(out, b'*', n as i64),
        Version::Resp3 => encode_len(out, b'>', n as i64),
    }
}

/// Writes a map header of `n` pairs (RESP2: a flat array of `2n`).
#[inline]
pub fn encode_map(out: &mut BytesMut, n: usize, v: Version) {
    match v {
        Version::Resp2 => encode_len(out, b'*', 2 * n as i64),
        Version::Resp3 => encode_len(out, b'%', n as i64),
    }
}

/// Writes a set header of `n` elements (RESP2: an array).
#[inline]
pub fn encode_set(out: &mut BytesMut, n: usize, v: Version) {
    match v {
        Version::Resp2 => encode_len(out, b'*', n as i64),
        Version::Resp3 => encode_len(out, b'~', n as i64),
    }
}

/// Writes a boolean (RESP2: `:1`/`:0`).
#[inline]
pub fn encode_bool(out: &mut BytesMut, b: bool, v: Version) {
    out.put_slice(match (v, b) {
        (Version::Resp2, true) => b":1\r\n".as_slice(),
        (Version::Resp2, false) => b":0\r\n",
        (Version::Resp3, true) => b"#t\r\n",
        (Version::Resp3, false) => b"#f\r\n",
    });
}

/// Writes an already formatted double (RESP3 `,text`; RESP2 a bulk string).
pub fn encode_double(out: &mut BytesMut, text: &[u8], v: Version) {
    match v {
        Version::Resp2 => encode_bulk(out, text),
        Version::Resp3 => {
            out.put_u8(b',');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
    }
}

/// Writes a verbatim text (RESP3 `=len\r\ntxt:...`; RESP2 a bulk string), as INFO replies.
pub fn encode_verbatim(out: &mut BytesMut, text: &[u8], v: Version) {
    match v {
        Version::Resp2 => encode_bulk(out, text),
        Version::Resp3 => {
            encode_len(out, b'=', text.len() as i64 + 4);
            out.put_slice(b"txt:");
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
    }
}

/// The fatal reply for lost framing.
pub fn encode_proto_error(out: &mut BytesMut, e: ProtoError) {
    let mut text = String::with_capacity(64);
    let _ = write!(text, "-ERR Protocol error: {e}\r\n");
    out.put_slice(text.as_bytes());
}

/// Writes an error reply. Like redis, `\r` and `\n` inside the text become spaces.
pub fn encode_error(out: &mut BytesMut, e: &RespError) {
    if let Some(text) = e.fixed() {
        // Fixed texts have no line breaks: written as they are, without formatting.
        out.reserve(text.len() + 3);
        out.put_u8(b'-');
        out.put_slice(text.as_bytes());
        out.put_slice(b"\r\n");
        return;
    }
    let text = e.to_string();
    out.reserve(text.len() + 3);
    out.put_u8(b'-');
    for b in text.bytes() {
        out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtoError> {
        let mut d = Decoder::new();
        let limits = Limits::default();
        let mut pos = 0;
        let mut out = Vec::new();
        while let Some(n) = d.decode(&input[pos..], &limits)? {
            let args = d.args(&input[pos..]);
            if !args.is_empty() {
                out.push(args.iter_from(0).map(<[u8]>::to_vec).collect());
            }
            pos += n;
        }
        assert_eq!(pos, input.len(), "left over");
        Ok(out)
    }

    fn strs(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk_and_inline() {
        let got = decode_all(
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*0\r\n*-1\r\nPING\r\n\r\n  set a \"b c\\x41\\n\" 'd\\'e'\nx\r\n*1\r\n$0\r\n\r\n",
        )
        .expect("decodes");
        assert_eq!(
            got,
            vec![
                strs(&["GET", "k"]),
                strs(&["PING"]),
                strs(&["set", "a", "b cA\n", "d'e"]),
                strs(&["x"]),
                strs(&[""]),
            ]
        );
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let req: &[u8] = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\n";
        let limits = Limits::default();
        for cut in 0..req.len() {
            let mut d = Decoder::new();
            assert_eq!(d.decode(&req[..cut], &limits), Ok(None), "cut {cut}");
            // Resuming with the whole request gives the same result as decoding it at once.
            assert_eq!(d.decode(req, &limits), Ok(Some(req.len())), "cut {cut}");
            let args = d.args(req);
            assert_eq!(args.len(), 3);
            assert_eq!(args.arg(2).expect("three arguments"), b"0123456789");
        }
        let inline: &[u8] = b"SET k \"v\"\r\n";
        for cut in 0..inline.len() {
            let mut d = Decoder::new();
            let r = d.decode(&inline[..cut], &limits);
            // "SET k \"v\"\r" without its \n is still incomplete.
            assert_eq!(r, Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn reading_past_the_arguments_is_an_error_not_a_panic() {
        let ranges = [(0, 3), (3, 1)];
        let args = Args::new(b"GETk", &ranges);
        assert_eq!(args.arg(1), Ok(&b"k"[..]));
        assert_eq!(args.arg(2), Err(RespError::MissingArgument));
        assert_eq!(args.try_get(usize::MAX), None);
        assert_eq!(args.pairs_from(0).count(), 1);
    }

    #[test]
    fn framing_errors() {
        let limits = Limits {
            proto_max_bulk_len: 100,
            ..Limits::default()
        };
        let cases: &[(&[u8], ProtoError)] = &[
            (b"*x\r\n", ProtoError::InvalidMultibulkLength),
            (b"*2147483648\r\n", ProtoError::InvalidMultibulkLength),
            (b"*1\r\n:1\r\n", ProtoError::ExpectedBulk(b':')),
            (b"*1\r\n$-1\r\n", ProtoError::InvalidBulkLength),
            (b"*1\r\n$101\r\n", ProtoError::InvalidBulkLength),
            (b"*1\r\n$1x\r\n", ProtoError::InvalidBulkLength),
            (b"set \"a\"b\r\n", ProtoError::UnbalancedQuotes),
            (b"set \"a\r\n", ProtoError::UnbalancedQuotes),
        ];
        for (input, want) in cases {
            let mut d = Decoder::new();
            assert_eq!(d.decode(input, &limits), Err(*want), "{input:?}");
        }
        let long = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(
            Decoder::new().decode(&long, &limits),
            Err(ProtoError::TooBigInline)
        );
        let mut star = vec![b'*'; 1];
        star.extend(std::iter::repeat_n(b'1', INLINE_MAX + 1));
        assert_eq!(
            Decoder::new().decode(&star, &limits),
            Err(ProtoError::TooBigMbulkCount)
        );
        let mut out = BytesMut::new();
        encode_proto_error(&mut out, ProtoError::ExpectedBulk(b':'));
        assert_eq!(&out[..], b"-ERR Protocol error: expected '$', got ':'\r\n");
    }

    #[test]
    fn string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_i64(b"-"), None);
    }

    #[test]
    fn reply_golden_bytes() {
        let mut out = BytesMut::new();
        encode_ok(&mut out);
        encode_int(&mut out, -5);
        encode_bulk(&mut out, b"hi");
        encode_null(&mut out, Version::Resp2);
        encode_null(&mut out, Version::Resp3);
        encode_null_array(&mut out, Version::Resp2);
        encode_map(&mut out, 2, Version::Resp2);
        encode_map(&mut out, 2, Version::Resp3);
        encode_set(&mut out, 1, Version::Resp3);
        encode_bool(&mut out, true, Version::Resp3);
        encode_bool(&mut out, false, Version::Resp2);
        encode_double(&mut out, b"1.5", Version::Resp3);
        encode_double(&mut out, b"1.5", Version::Resp2);
        encode_verbatim(&mut out, b"a", Version::Resp3);
        encode_error(&mut out, &RespError::WrongArity("get"));
        encode_error(&mut out, &RespError::UnsupportedOption("a\r\nb".into()));
        assert_eq!(
            &out[..],
            &b"+OK\r\n:-5\r\n$2\r\nhi\r\n$-1\r\n_\r\n*-1\r\n*4\r\n%2\r\n~1\r\n#t\r\n:0\r\n,1.5\r\n$3\r\n1.5\r\n=5\r\ntxt:a\r\n-ERR wrong number of arguments for 'get' command\r\n-ERR Unsupported option a  b\r\n"[..]
        );
    }
}
