//! A RESP2/RESP3 reply decoder and encoder for tests: splits and inspects the reply streams
//! of ringcache and redis-server. Test support only, so it is not in the library.
//!
//! Included by `tests/common/mod.rs` and, on its own, by `tests/codec_props.rs`.

use bytes::{BufMut, BytesMut};
use ringcache::proto::resp::frame::{
    Version, encode_bool, encode_bulk, encode_double, encode_int, encode_simple, parse_i64,
};

/// Writes `<prefix><n>\r\n`.
fn len_line(out: &mut BytesMut, prefix: u8, n: i64) {
    out.put_u8(prefix);
    out.put_slice(n.to_string().as_bytes());
    out.put_slice(b"\r\n");
}

/// A RESP2/RESP3 value, as a client sees replies. Used to split and inspect reply streams.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+text`
    Simple(Vec<u8>),
    /// `-text`
    Error(Vec<u8>),
    /// `:n`
    Integer(i64),
    /// `$n` bulk string
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` or `_`
    Null,
    /// `*n`
    Array(Vec<Frame>),
    /// `%n`
    Map(Vec<(Frame, Frame)>),
    /// `~n`
    Set(Vec<Frame>),
    /// `>n`
    Push(Vec<Frame>),
    /// `,text` (kept as text: redis formats doubles itself)
    Double(Vec<u8>),
    /// `#t` / `#f`
    Boolean(bool),
    /// `(digits`
    BigNumber(Vec<u8>),
    /// `=n` verbatim string: (format, text)
    Verbatim(Vec<u8>, Vec<u8>),
}

/// Why a reply stream could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed RESP frame at byte {0}")]
pub struct FrameError(pub usize);

impl Frame {
    /// Decodes one frame from the start of `buf`: `Ok(Some((frame, bytes used)))`, or
    /// `Ok(None)` if incomplete.
    pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        decode_frame(buf, 0, 0)
    }

    /// Encodes the frame (RESP3 types as RESP3).
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::Simple(s) => encode_simple(out, s),
            Frame::Error(s) => {
                out.put_u8(b'-');
                out.put_slice(s);
                out.put_slice(b"\r\n");
            }
            Frame::Integer(n) => encode_int(out, *n),
            Frame::Bulk(b) => encode_bulk(out, b),
            Frame::Null => out.put_slice(b"_\r\n"),
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
                let prefix = match self {
                    Frame::Array(_) => b'*',
                    Frame::Set(_) => b'~',
                    _ => b'>',
                };
                len_line(out, prefix, items.len() as i64);
                for item in items {
                    item.encode(out);
                }
            }
            Frame::Map(pairs) => {
                len_line(out, b'%', pairs.len() as i64);
                for (k, v) in pairs {
                    k.encode(out);
                    v.encode(out);
                }
            }
            Frame::Double(t) => encode_double(out, t, Version::Resp3),
            Frame::Boolean(b) => encode_bool(out, *b, Version::Resp3),
            Frame::BigNumber(d) => {
                out.put_u8(b'(');
                out.put_slice(d);
                out.put_slice(b"\r\n");
            }
            Frame::Verbatim(fmt, text) => {
                len_line(out, b'=', (fmt.len() + 1 + text.len()) as i64);
                out.put_slice(fmt);
                out.put_u8(b':');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
        }
    }
}

const FRAME_DEPTH_MAX: usize = 64;

fn decode_frame(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Frame, usize)>, FrameError> {
    if depth > FRAME_DEPTH_MAX {
        return Err(FrameError(at));
    }
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some(cr) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = &buf[at + 1..at + cr];
    let next = at + cr + 2;
    let number = || parse_i64(line).ok_or(FrameError(at));
    let done = |f: Frame, n: usize| Ok(Some((f, n)));
    match kind {
        b'+' => done(Frame::Simple(line.to_vec()), next),
        b'-' => done(Frame::Error(line.to_vec()), next),
        b':' => done(Frame::Integer(number()?), next),
        b',' => done(Frame::Double(line.to_vec()), next),
        b'(' => done(Frame::BigNumber(line.to_vec()), next),
        b'_' => done(Frame::Null, next),
        b'#' => match line {
            b"t" => done(Frame::Boolean(true), next),
            b"f" => done(Frame::Boolean(false), next),
            _ => Err(FrameError(at)),
        },
        b'$' | b'=' | b'!' => {
            let n = number()?;
            if n < 0 {
                return done(Frame::Null, next);
            }
            let end = next + n as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(FrameError(end));
            }
            let data = buf[next..end].to_vec();
            match kind {
                b'$' => done(Frame::Bulk(data), end + 2),
                b'!' => done(Frame::Error(data), end + 2),
                _ => {
                    if data.len() < 4 || data[3] != b':' {
                        return Err(FrameError(at));
                    }
                    done(
                        Frame::Verbatim(data[..3].to_vec(), data[4..].to_vec()),
                        end + 2,
                    )
                }
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = number()?;
            if n < 0 {
                return done(Frame::Null, next);
            }
            let count = if kind == b'%' || kind == b'|' {
                2 * n as usize
            } else {
                n as usize
            };
            let mut items = Vec::with_capacity(count.min(1024));
            let mut pos = next;
            for _ in 0..count {
                let Some((item, p)) = decode_frame(buf, pos, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                pos = p;
            }
            let frame = match kind {
                b'*' => Frame::Array(items),
                b'~' => Frame::Set(items),
                b'>' => Frame::Push(items),
                b'%' => {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Frame::Map(pairs)
                }
                // An attribute precedes the real reply: skip it.
                _ => return decode_frame(buf, pos, depth + 1),
            };
            done(frame, pos)
        }
        _ => Err(FrameError(at)),
    }
}
