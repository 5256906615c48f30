//! Replies across protocols: a Redis client's request answered by a memcached member, or a
//! memcached client's by a Redis member, for the string subset both protocols share. The
//! requests are built by each protocol's `forward` module; this turns the member's reply into
//! the one the client's protocol gives.
//!
//! Owns: [`Map`], one variant per reply shape, and [`apply`].
//! Must not touch: sockets, which requests are translated.
//! Invariants: `apply` never panics whatever the member sent (a reply it does not expect
//! becomes an error of the client's protocol).

use bytes::{BufMut, Bytes, BytesMut};

/// How one member reply becomes (part of) the client's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Map {
    /// The reply as it is (same protocol).
    Same,
    /// Nothing (a preparatory request whose reply does not matter).
    Ignore,
    /// memcached `VALUE ... END` / `END` → a RESP bulk / nil.
    McValue { resp3: bool },
    /// `STORED` → `+OK`; `NOT_STORED` (add/replace refused) → nil.
    McStored { resp3: bool },
    /// `STORED` → `:1`; `NOT_STORED` → `:0` (SETNX).
    McStoredInt,
    /// `DELETED` → `:1`; `NOT_FOUND` → `:0`.
    McDeleted,
    /// `TOUCHED` → `:1`; `NOT_FOUND` → `:0`.
    McTouched,
    /// `HD` → `:1`; `EN` → `:0` (EXISTS through `mg`).
    McHit,
    /// A number line → `:n`.
    McNumber,
    /// RESP bulk / nil → `VALUE <key> 0 <n> [0]\r\n...END` / `END` (a wrong type is a miss, as
    /// for an in-process node).
    RespValue { key: Bytes, cas: bool },
    /// `+OK` → `STORED`; nil (SET NX/XX refused) → `NOT_STORED`.
    RespStored,
    /// `:n` (n > 0) → `DELETED`; `:0` → `NOT_FOUND`.
    RespDeleted,
    /// `:1` → `TOUCHED`; `:0` → `NOT_FOUND`.
    RespTouched,
    /// `:n` → `n`; nil → `NOT_FOUND`.
    RespNumber,
}

/// `reply` (one complete reply of the member) as the client's protocol says it.
pub fn apply(map: &Map, reply: Bytes) -> Bytes {
    let line = reply.strip_suffix(b"\r\n").unwrap_or(&reply);
    let resp_nil = |resp3: bool| Bytes::from_static(if resp3 { b"_\r\n" } else { b"$-1\r\n" });
    let int = |n: i64| Bytes::from(format!(":{n}\r\n"));
    let resp_error = |line: &[u8]| {
        let text = String::from_utf8_lossy(line);
        let text = text
            .strip_prefix("SERVER_ERROR ")
            .or_else(|| text.strip_prefix("CLIENT_ERROR "))
            .unwrap_or(&text);
        Bytes::from(format!("-ERR memcached node: {text}\r\n"))
    };
    let mc_error = |line: &[u8]| {
        let text = String::from_utf8_lossy(line.strip_prefix(b"-").unwrap_or(line)).into_owned();
        Bytes::from(format!("SERVER_ERROR redis node: {text}\r\n"))
    };
    match map {
        Map::Same => reply,
        Map::Ignore => Bytes::new(),
        Map::McValue { resp3 } => {
            if line == b"END" {
                return resp_nil(*resp3);
            }
            match value_block(&reply) {
                Some(data) => {
                    let mut out = BytesMut::with_capacity(data.len() + 16);
                    out.put_u8(b'$');
                    out.extend_from_slice(data.len().to_string().as_bytes());
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(data);
                    out.extend_from_slice(b"\r\n");
                    out.freeze()
                }
                None => resp_error(line),
            }
        }
        Map::McStored { resp3 } => match line {
            b"STORED" => Bytes::from_static(b"+OK\r\n"),
            b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND" => resp_nil(*resp3),
            _ => resp_error(line),
        },
        Map::McStoredInt => match line {
            b"STORED" => int(1),
            b"NOT_STORED" => int(0),
            _ => resp_error(line),
        },
        Map::McDeleted => match line {
            b"DELETED" => int(1),
            b"NOT_FOUND" => int(0),
            _ => resp_error(line),
        },
        Map::McTouched => match line {
            b"TOUCHED" => int(1),
            b"NOT_FOUND" => int(0),
            _ => resp_error(line),
        },
        Map::McHit => match line {
            b"HD" => int(1),
            b"EN" => int(0),
            _ => resp_error(line),
        },
        Map::McNumber => match std::str::from_utf8(line).ok().and_then(|s| s.parse().ok()) {
            Some(n) => int(n),
            None if line.starts_with(b"CLIENT_ERROR") => {
                Bytes::from_static(b"-ERR value is not an integer or out of range\r\n")
            }
            None => resp_error(line),
        },
        Map::RespValue { key, cas } => {
            if line.starts_with(b"-WRONGTYPE") || line == b"$-1" || line == b"_" {
                return Bytes::from_static(b"END\r\n");
            }
            match bulk(&reply) {
                Some(data) => {
                    let mut out = BytesMut::with_capacity(data.len() + key.len() + 32);
                    out.extend_from_slice(b"VALUE ");
                    out.extend_from_slice(key);
                    out.extend_from_slice(format!(" 0 {}", data.len()).as_bytes());
                    if *cas {
                        out.extend_from_slice(b" 0");
                    }
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(data);
                    out.extend_from_slice(b"\r\nEND\r\n");
                    out.freeze()
                }
                None => mc_error(line),
            }
        }
        Map::RespStored => match line {
            b"+OK" => Bytes::from_static(b"STORED\r\n"),
            b"$-1" | b"_" => Bytes::from_static(b"NOT_STORED\r\n"),
            _ => mc_error(line),
        },
        Map::RespDeleted => match integer(line) {
            Some(0) => Bytes::from_static(b"NOT_FOUND\r\n"),
            Some(_) => Bytes::from_static(b"DELETED\r\n"),
            None => mc_error(line),
        },
        Map::RespTouched => match integer(line) {
            Some(0) => Bytes::from_static(b"NOT_FOUND\r\n"),
            Some(_) => Bytes::from_static(b"TOUCHED\r\n"),
            None => mc_error(line),
        },
        Map::RespNumber => match integer(line) {
            Some(n) => Bytes::from(format!("{n}\r\n")),
            None if line == b"$-1" || line == b"_" => Bytes::from_static(b"NOT_FOUND\r\n"),
            None if line.starts_with(b"-ERR value is not an integer") => Bytes::from_static(
                b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
            ),
            None => mc_error(line),
        },
    }
}

fn integer(line: &[u8]) -> Option<i64> {
    std::str::from_utf8(line.strip_prefix(b":")?)
        .ok()?
        .parse()
        .ok()
}

/// The data of a one-item `VALUE <key> <flags> <n> [<cas>]\r\n<data>\r\nEND\r\n` reply.
fn value_block(reply: &[u8]) -> Option<&[u8]> {
    let nl = reply.iter().position(|&b| b == b'\n')?;
    let head = reply.get(..nl.checked_sub(1)?)?.strip_prefix(b"VALUE ")?;
    let n: usize = std::str::from_utf8(head.split(|&b| b == b' ').nth(2)?)
        .ok()?
        .parse()
        .ok()?;
    reply.get(nl + 1..nl + 1 + n)
}

/// The data of a RESP bulk reply `$<n>\r\n<data>\r\n`.
fn bulk(reply: &[u8]) -> Option<&[u8]> {
    let nl = reply.iter().position(|&b| b == b'\n')?;
    let n: usize = std::str::from_utf8(reply.get(1..nl.checked_sub(1)?)?)
        .ok()?
        .parse()
        .ok()?;
    if reply.first() != Some(&b'$') {
        return None;
    }
    reply.get(nl + 1..nl + 1 + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ap(map: Map, reply: &'static [u8]) -> Bytes {
        apply(&map, Bytes::from_static(reply))
    }

    #[test]
    fn memcached_replies_become_resp() {
        let v = Map::McValue { resp3: false };
        assert_eq!(
            ap(v.clone(), b"VALUE k 0 2\r\nhi\r\nEND\r\n"),
            &b"$2\r\nhi\r\n"[..]
        );
        assert_eq!(ap(v, b"END\r\n"), &b"$-1\r\n"[..]);
        assert_eq!(
            ap(Map::McStored { resp3: true }, b"NOT_STORED\r\n"),
            &b"_\r\n"[..]
        );
        assert_eq!(ap(Map::McDeleted, b"DELETED\r\n"), &b":1\r\n"[..]);
        assert_eq!(ap(Map::McNumber, b"42\r\n"), &b":42\r\n"[..]);
        assert!(ap(Map::McTouched, b"SERVER_ERROR out of memory\r\n").starts_with(b"-ERR"));
    }

    #[test]
    fn resp_replies_become_memcached() {
        let key = Bytes::from_static(b"k");
        let v = Map::RespValue { key, cas: false };
        assert_eq!(
            ap(v.clone(), b"$2\r\nhi\r\n"),
            &b"VALUE k 0 2\r\nhi\r\nEND\r\n"[..]
        );
        assert_eq!(ap(v.clone(), b"$-1\r\n"), &b"END\r\n"[..]);
        assert_eq!(ap(v, b"-WRONGTYPE x\r\n"), &b"END\r\n"[..]);
        assert_eq!(ap(Map::RespStored, b"$-1\r\n"), &b"NOT_STORED\r\n"[..]);
        assert_eq!(ap(Map::RespDeleted, b":1\r\n"), &b"DELETED\r\n"[..]);
        assert_eq!(ap(Map::RespNumber, b":7\r\n"), &b"7\r\n"[..]);
        assert_eq!(ap(Map::RespNumber, b"$-1\r\n"), &b"NOT_FOUND\r\n"[..]);
        assert!(ap(Map::RespTouched, b"-ERR boom\r\n").starts_with(b"SERVER_ERROR"));
    }

    #[test]
    fn garbage_in_gives_an_error_not_a_panic() {
        for r in [
            &b""[..],
            b"$",
            b"$5\r\nab",
            b"VALUE",
            b"VALUE k 0 99\r\nx\r\n",
            b"\r\n",
        ] {
            let r = Bytes::copy_from_slice(r);
            for m in [
                Map::McValue { resp3: false },
                Map::RespValue {
                    key: Bytes::from_static(b"k"),
                    cas: true,
                },
                Map::RespNumber,
                Map::McNumber,
            ] {
                let _ = apply(&m, r.clone());
            }
        }
    }
}
