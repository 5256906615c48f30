//! Reply framing for remote members: where one reply ends in the bytes a member sent, so that
//! replies are matched to requests in order on a pipelined connection.
//!
//! Owns: the length of one complete reply of each shape ([`Expect`]), and the bounds that make a
//! misbehaving member an error instead of unbounded memory (a line longer than [`MAX_LINE`], a
//! value larger than [`MAX_VALUE`], nesting deeper than [`MAX_DEPTH`]).
//! Must not touch: sockets, what a reply means.
//! Invariants: `frame_len` never panics and never reads past `buf`; `Ok(None)` means "not all
//! here yet" and only ever for a prefix of something that could still become a valid reply.

/// The shape of the reply a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// One RESP value (any type, nested).
    Resp,
    /// One memcached line (`STORED`, `DELETED`, a number, `TOUCHED`, an error, ...).
    Line,
    /// memcached `get`/`gets`/`gat`/`gats`: `VALUE` blocks then `END`, or one error line.
    Values,
    /// A meta reply: a status line, or `VA <size> ...` followed by the data block.
    Meta,
}

/// A reply that cannot be valid: the connection is out of step with its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Garbage(pub &'static str);

/// Longest reply line accepted (memcached's key limit is 250 bytes; meta flags add a few).
pub const MAX_LINE: usize = 64 * 1024;
/// Largest value accepted in one reply (Redis's `proto-max-bulk-len` ceiling).
pub const MAX_VALUE: usize = 512 << 20;
/// Deepest RESP nesting accepted.
pub const MAX_DEPTH: usize = 64;

type Framed = Result<Option<usize>, Garbage>;

/// The length of the complete reply of shape `expect` at the start of `buf`, None if it is not
/// all there yet.
pub fn frame_len(expect: Expect, buf: &[u8]) -> Framed {
    match expect {
        Expect::Resp => resp(buf, 0, 0),
        Expect::Line => Ok(line(buf, 0)?.map(|(end, _)| end)),
        Expect::Values => values(buf),
        Expect::Meta => meta(buf),
    }
}

/// The line starting at `at`: (index after its `\r\n`, the line without it).
fn line(buf: &[u8], at: usize) -> Result<Option<(usize, &[u8])>, Garbage> {
    let rest = &buf[at.min(buf.len())..];
    match rest.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && rest[i - 1] == b'\r' => Ok(Some((at + i + 1, &rest[..i - 1]))),
        Some(_) => Err(Garbage("line not ended by CRLF")),
        None if rest.len() > MAX_LINE => Err(Garbage("reply line too long")),
        None => Ok(None),
    }
}

fn number(digits: &[u8]) -> Result<i64, Garbage> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(Garbage("bad number in reply"))
}

/// `n` bytes of data then CRLF, starting at `at`: the index after them.
fn block(buf: &[u8], at: usize, n: i64) -> Framed {
    let n = usize::try_from(n).map_err(|_| Garbage("negative length"))?;
    if n > MAX_VALUE {
        return Err(Garbage("value too large"));
    }
    let end = at + n + 2;
    if buf.len() < end {
        return Ok(None);
    }
    if &buf[end - 2..end] != b"\r\n" {
        return Err(Garbage("data block not ended by CRLF"));
    }
    Ok(Some(end))
}

fn resp(buf: &[u8], at: usize, depth: usize) -> Framed {
    if depth > MAX_DEPTH {
        return Err(Garbage("reply nested too deep"));
    }
    let Some((end, head)) = line(buf, at)? else {
        return Ok(None);
    };
    let Some((&kind, body)) = head.split_first() else {
        return Err(Garbage("empty reply line"));
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(end)),
        b'$' | b'!' | b'=' => match number(body)? {
            -1 => Ok(Some(end)),
            n => block(buf, end, n),
        },
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = number(body)?;
            if n == -1 {
                return Ok(Some(end));
            }
            let per = if matches!(kind, b'%' | b'|') { 2 } else { 1 };
            let items = usize::try_from(n)
                .ok()
                .and_then(|n| n.checked_mul(per))
                .filter(|&n| n <= MAX_VALUE)
                .ok_or(Garbage("bad aggregate length"))?;
            let mut at = end;
            for _ in 0..items {
                match resp(buf, at, depth + 1)? {
                    Some(next) => at = next,
                    None => return Ok(None),
                }
            }
            // An attribute (`|`) precedes the value it describes.
            if kind == b'|' {
                return resp(buf, at, depth + 1);
            }
            Ok(Some(at))
        }
        _ => Err(Garbage("unknown RESP type")),
    }
}

/// True for memcached's error lines, which end any reply.
fn is_error(line: &[u8]) -> bool {
    line == b"ERROR" || line.starts_with(b"CLIENT_ERROR") || line.starts_with(b"SERVER_ERROR")
}

fn values(buf: &[u8]) -> Framed {
    let mut at = 0;
    loop {
        let Some((end, l)) = line(buf, at)? else {
            return Ok(None);
        };
        if l == b"END" || (at == 0 && is_error(l)) {
            return Ok(Some(end));
        }
        let Some(rest) = l.strip_prefix(b"VALUE ") else {
            return Err(Garbage("expected VALUE or END"));
        };
        // VALUE <key> <flags> <bytes> [<cas>]
        let bytes = rest
            .split(|&b| b == b' ')
            .nth(2)
            .ok_or(Garbage("short VALUE line"))?;
        match block(buf, end, number(bytes)?)? {
            Some(next) => at = next,
            None => return Ok(None),
        }
    }
}

fn meta(buf: &[u8]) -> Framed {
    let Some((end, l)) = line(buf, 0)? else {
        return Ok(None);
    };
    match l.strip_prefix(b"VA ") {
        Some(rest) => {
            let size = rest.split(|&b| b == b' ').next().unwrap_or_default();
            block(buf, end, number(size)?)
        }
        None => Ok(Some(end)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_values_end_where_they_should() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"+OK\r\n", Some(5)),
            (b"$3\r\nabc\r\n", Some(9)),
            (b"$-1\r\n", Some(5)),
            (b"*2\r\n$1\r\na\r\n:1\r\n", Some(15)),
            (b"*2\r\n$1\r\na\r\n", None),
            (b"$3\r\nab", None),
            (b"%1\r\n+a\r\n+b\r\n", Some(12)),
            (b"*-1\r\n", Some(5)),
            (b"+OK", None),
        ];
        for (buf, want) in cases {
            assert_eq!(frame_len(Expect::Resp, buf), Ok(*want), "{buf:?}");
        }
        for bad in [
            &b"?x\r\n"[..],
            b"$x\r\n",
            b"$3\r\nabcd\r\n",
            b"+OK\n",
            b"$-5\r\n",
        ] {
            assert!(frame_len(Expect::Resp, bad).is_err(), "{bad:?}");
        }
        assert!(frame_len(Expect::Resp, format!("${}\r\n", MAX_VALUE + 1).as_bytes()).is_err());
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2);
        assert!(frame_len(Expect::Resp, deep.as_bytes()).is_err());
    }

    #[test]
    fn memcached_replies_end_where_they_should() {
        let v = b"VALUE k 0 3\r\nabc\r\nVALUE j 5 1 9\r\nx\r\nEND\r\n";
        assert_eq!(frame_len(Expect::Values, v), Ok(Some(v.len())));
        assert_eq!(frame_len(Expect::Values, &v[..20]), Ok(None));
        assert_eq!(frame_len(Expect::Values, b"END\r\n"), Ok(Some(5)));
        assert_eq!(
            frame_len(Expect::Values, b"SERVER_ERROR x\r\n"),
            Ok(Some(16))
        );
        assert!(frame_len(Expect::Values, b"STORED\r\n").is_err());
        assert_eq!(frame_len(Expect::Line, b"STORED\r\nEND"), Ok(Some(8)));
        assert_eq!(frame_len(Expect::Meta, b"VA 2 f0\r\nhi\r\n"), Ok(Some(13)));
        assert_eq!(frame_len(Expect::Meta, b"EN\r\n"), Ok(Some(4)));
        assert_eq!(frame_len(Expect::Meta, b"VA 2 f0\r\nh"), Ok(None));
        assert!(frame_len(Expect::Line, &vec![b'a'; MAX_LINE + 1]).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 7u64;
        for _ in 0..20_000 {
            let len = (seed % 24) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    b"$*:+-\r\n0123VALUE END-1%|"[(seed >> 33) as usize % 24]
                })
                .collect();
            for e in [Expect::Resp, Expect::Line, Expect::Values, Expect::Meta] {
                if let Ok(Some(n)) = frame_len(e, &buf) {
                    assert!(n <= buf.len());
                }
            }
        }
    }
}
