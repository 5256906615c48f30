//! The classic text commands: get/gets/gat/gats, the storage commands (set, add, replace,
//! append, prepend, cas) with their data block, delete, incr/decr, touch, flush_all,
//! verbosity and stats (`version` and `quit` take no arguments: the dispatch in `parse`
//! answers them).
//!
//! Owns: each command's arity, `noreply`, and its argument checks in memcached 1.6's order,
//! which decides which error a request with several faults gets.
//!
//! Must not touch: framing (the newline scan and the swallow state belong to `parse`; this
//! only takes a storage command's block once it is complete), the store, reply text (a bad
//! request is a [`Reject`]; its text is in `encode.rs`).
//!
//! Invariants:
//! - A classic `noreply` is recognised as the last token even on a rejected request, so that
//!   the handler can suppress the error line as memcached does.
//! - A storage command whose length token is bad does not swallow a block: the data line that
//!   follows is read as a command (`ERROR`), as in memcached. A block over the limits is
//!   swallowed as it arrives and answered as too large.
//! - Zero copy: keys, the multi-get key list and data blocks are slices of the read buffer.

use bytes::{Bytes, BytesMut};

use super::token::{Tokens, parse_i64, parse_u32, parse_u64, split_keys, valid_key};
use super::{
    DATA_LEN_MAX, Decoder, GetCmd, Keys, Refused, Reject, Request, StatsGroup, StoreCmd, too_large,
};
use crate::config::Limits;

impl Decoder {
    /// A storage command and its data block; `None` until the block is complete.
    pub(super) fn decode_store(
        &mut self,
        cmd: StoreCmd,
        input: &mut BytesMut,
        line_len: usize,
        line_end: usize,
        t: &Tokens,
        limits: &Limits,
    ) -> Option<Request> {
        let nt = t.count;
        let arity_ok = if cmd == StoreCmd::Cas {
            nt == 6 || nt == 7
        } else {
            nt == 5 || nt == 6
        };
        if !arity_ok {
            return Some(self.refuse(input, line_len, 0, Reject::Error, false));
        }
        let line = &input[..line_end];
        let noreply = t.get(line, nt - 1) == b"noreply";
        let key = t.span(1);
        if !valid_key(key.of(line)) {
            return Some(self.refuse(input, line_len, 0, Reject::BadFormat, noreply));
        }
        let numbers = (
            parse_u32(t.get(line, 2)),
            parse_i64(t.get(line, 3)),
            parse_i64(t.get(line, 4)),
            if cmd == StoreCmd::Cas {
                parse_u64(t.get(line, 5))
            } else {
                Some(0)
            },
        );
        let (Some(flags), Some(exptime), Some(len), Some(cas)) = numbers else {
            return Some(self.refuse(input, line_len, 0, Reject::BadFormat, noreply));
        };
        if !(0..=DATA_LEN_MAX).contains(&len) {
            return Some(self.refuse(input, line_len, 0, Reject::BadFormat, noreply));
        }
        let len = len as usize;
        let swallow = len as u64 + 2;
        if too_large(len, line_len, limits) {
            let refused = Refused {
                key,
                base64: false,
                remove: cmd == StoreCmd::Set,
                noreply,
            };
            return Some(self.too_large(input, line_len, swallow, refused));
        }
        let need = line_len + len + 2;
        if input.len() < need {
            return None;
        }
        let block = input.split_to(need);
        self.scanned = 0;
        if &block[line_len + len..] != b"\r\n" {
            return Some(Request::Reject {
                error: Reject::BadDataChunk,
                noreply,
            });
        }
        let block = block.freeze();
        Some(Request::Store {
            cmd,
            key: block.slice(key.range()),
            flags,
            exptime,
            cas,
            data: block.slice(line_len..line_len + len),
            noreply,
        })
    }
}

/// `get`/`gets <key>*`, `gat`/`gats <exptime> <key>*`.
pub(super) fn decode_get(cmd: GetCmd, line: BytesMut, t: &Tokens) -> Request {
    if t.count < 2 {
        return Request::reject(Reject::Error);
    }
    let (exptime, first) = if cmd.touches() {
        match parse_i64(t.get(&line, 1)) {
            Some(exptime) => (exptime, 2),
            None => return Request::reject(Reject::InvalidExptime),
        }
    } else {
        (0, 1)
    };
    let start = if first < t.count {
        t.span(first).start()
    } else {
        line.len()
    };
    // Validate every key first: memcached answers a bad key with the error alone, no items.
    if !split_keys(&line[start..]).all(valid_key) {
        return Request::reject(Reject::BadFormat);
    }
    Request::Get {
        cmd,
        exptime,
        keys: Keys(line.freeze().slice(start..)),
    }
}

/// `delete <key> [0] [noreply]`.
pub(super) fn decode_delete(line: BytesMut, t: &Tokens) -> Request {
    let nt = t.count;
    if !(2..=4).contains(&nt) {
        return Request::reject(Reject::Error);
    }
    let mut noreply = false;
    if nt > 2 {
        let hold_is_zero = t.get(&line, 2) == b"0";
        noreply = t.get(&line, nt - 1) == b"noreply";
        let valid = (nt == 3 && (hold_is_zero || noreply)) || (nt == 4 && hold_is_zero && noreply);
        if !valid {
            return Request::Reject {
                error: Reject::DeleteUsage,
                noreply,
            };
        }
    }
    match key_of(line, t) {
        Some(key) => Request::Delete { key, noreply },
        None => Request::Reject {
            error: Reject::BadFormat,
            noreply,
        },
    }
}

/// `incr`/`decr <key> <delta> [noreply]`.
pub(super) fn decode_arith(incr: bool, line: BytesMut, t: &Tokens) -> Request {
    match key_and_number(line, t, parse_u64, Reject::InvalidDelta) {
        Ok((key, delta, noreply)) => Request::Arith {
            incr,
            key,
            delta,
            noreply,
        },
        Err((error, noreply)) => Request::Reject { error, noreply },
    }
}

/// `touch <key> <exptime> [noreply]`.
pub(super) fn decode_touch(line: BytesMut, t: &Tokens) -> Request {
    match key_and_number(line, t, parse_i64, Reject::InvalidExptime) {
        Ok((key, exptime, noreply)) => Request::Touch {
            key,
            exptime,
            noreply,
        },
        Err((error, noreply)) => Request::Reject { error, noreply },
    }
}

/// `<command> <key> <number> [noreply]`, the shape incr, decr and touch share: the key, the
/// number and `noreply`, or the error and `noreply` to reject with. The checks run in
/// memcached's order, which decides the error of a request with several faults: the token
/// count (`ERROR`, never quiet), then the key (bad format), then the number (`bad_number`).
fn key_and_number<N>(
    line: BytesMut,
    t: &Tokens,
    parse: fn(&[u8]) -> Option<N>,
    bad_number: Reject,
) -> Result<(Bytes, N, bool), (Reject, bool)> {
    let nt = t.count;
    if !(3..=4).contains(&nt) {
        return Err((Reject::Error, false));
    }
    let noreply = t.get(&line, nt - 1) == b"noreply";
    let number = parse(t.get(&line, 2));
    let Some(key) = key_of(line, t) else {
        return Err((Reject::BadFormat, noreply));
    };
    match number {
        Some(number) => Ok((key, number, noreply)),
        None => Err((bad_number, noreply)),
    }
}

/// `flush_all [delay] [noreply]`.
pub(super) fn decode_flush_all(line: &[u8], t: &Tokens) -> Request {
    let nt = t.count;
    if !(1..=3).contains(&nt) {
        return Request::reject(Reject::Error);
    }
    let noreply = nt > 1 && t.get(line, nt - 1) == b"noreply";
    let delay = if nt == if noreply { 2 } else { 1 } {
        Some(0)
    } else {
        parse_i64(t.get(line, 1))
    };
    match delay {
        Some(delay) => Request::FlushAll { delay, noreply },
        None => Request::Reject {
            error: Reject::InvalidExptime,
            noreply,
        },
    }
}

/// `verbosity <n> [noreply]`.
pub(super) fn decode_verbosity(line: &[u8], t: &Tokens) -> Request {
    let nt = t.count;
    if !(2..=3).contains(&nt) {
        return Request::reject(Reject::Error);
    }
    let noreply = t.get(line, nt - 1) == b"noreply";
    match parse_u32(t.get(line, 1)) {
        Some(_) => Request::Verbosity { noreply },
        None => Request::Reject {
            error: Reject::BadFormat,
            noreply,
        },
    }
}

/// `stats` or `stats settings`; other groups are unknown commands.
pub(super) fn decode_stats(line: &[u8], t: &Tokens) -> Request {
    match t.get(line, 1) {
        b"" => Request::Stats(StatsGroup::General),
        b"settings" => Request::Stats(StatsGroup::Settings),
        _ => Request::reject(Reject::Error),
    }
}

/// The key token of a classic command if it is valid.
fn key_of(line: BytesMut, t: &Tokens) -> Option<Bytes> {
    let key = t.span(1);
    valid_key(key.of(&line)).then(|| line.freeze().slice(key.range()))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{b, decode_all, one, rejected};
    use super::*;

    #[test]
    fn golden_requests() {
        assert_eq!(
            one(b"set k 1 -2 3 noreply\r\nabc\r\n"),
            Request::Store {
                cmd: StoreCmd::Set,
                key: b("k"),
                flags: 1,
                exptime: -2,
                cas: 0,
                data: b("abc"),
                noreply: true
            }
        );
        assert_eq!(
            one(b"cas k 0 0 2 77\r\n\r\n\r\n"),
            Request::Store {
                cmd: StoreCmd::Cas,
                key: b("k"),
                flags: 0,
                exptime: 0,
                cas: 77,
                data: b("\r\n"),
                noreply: false
            }
        );
        match one(b"gats 100  a bb  ccc \r\n") {
            Request::Get {
                cmd: GetCmd::Gats,
                exptime: 100,
                keys,
            } => {
                assert_eq!(keys.iter().collect::<Vec<_>>(), [&b"a"[..], b"bb", b"ccc"]);
            }
            other => panic!("{other:?}"),
        }
        match one(b"gat 1\r\n") {
            Request::Get { keys, .. } => assert_eq!(keys.iter().count(), 0),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            one(b"delete k 0\r\n"),
            Request::Delete {
                key: b("k"),
                noreply: false
            }
        );
        assert_eq!(
            one(b"decr k 18446744073709551615 noreply\r\n"),
            Request::Arith {
                incr: false,
                key: b("k"),
                delta: u64::MAX,
                noreply: true
            }
        );
        assert_eq!(
            one(b"flush_all noreply\r\n"),
            Request::FlushAll {
                delay: 0,
                noreply: true
            }
        );
        assert_eq!(
            one(b"flush_all 0 0\r\n"),
            Request::FlushAll {
                delay: 0,
                noreply: false
            }
        );
        assert_eq!(one(b"stats\r\n"), Request::Stats(StatsGroup::General));
        assert_eq!(one(b"quit\r\n"), Request::Quit);
    }

    #[test]
    fn rejects() {
        assert_eq!(rejected(b"get\r\n"), Reject::Error);
        assert_eq!(rejected(b"\r\n"), Reject::Error);
        assert_eq!(rejected(b"GET a\r\n"), Reject::Error);
        assert_eq!(rejected(b"get a\tb\r\n"), Reject::BadFormat);
        assert_eq!(rejected(b"gat x a\r\n"), Reject::InvalidExptime);
        assert_eq!(rejected(b"delete k 1\r\n"), Reject::DeleteUsage);
        assert_eq!(rejected(b"incr k -1\r\n"), Reject::InvalidDelta);
        assert_eq!(
            rejected(b"incr k 18446744073709551616\r\n"),
            Reject::InvalidDelta
        );
        assert_eq!(rejected(b"touch k x\r\n"), Reject::InvalidExptime);
        assert_eq!(rejected(b"flush_all x\r\n"), Reject::InvalidExptime);
        assert_eq!(rejected(b"stats items\r\n"), Reject::Error);
        // Storage: no swallow while the length is unknown, so the data line is a command.
        let (requests, _) = decode_all(b"set k abc 0 1\r\nx\r\n");
        assert_eq!(
            requests,
            [
                Request::reject(Reject::BadFormat),
                Request::reject(Reject::Error)
            ]
        );
        let (requests, _) = decode_all(b"set k 0 0 1 noreply\r\nab\r\n");
        assert_eq!(
            requests,
            [
                Request::Reject {
                    error: Reject::BadDataChunk,
                    noreply: true
                },
                Request::reject(Reject::Error)
            ]
        );
        assert_eq!(rejected(b"set k 4294967296 0 1\r\n"), Reject::BadFormat);
        assert_eq!(rejected(b"set k 0 0 2147483646\r\n"), Reject::BadFormat);
    }
}
