//! The tokenizer of memcached command lines, and the checks every command shares: key
//! validity, the multi-get key list, and numbers as memcached's `strtoull`/`strtol` read them.
//!
//! Owns: [`Tokens`] (space-separated token spans of one line) and [`Span`] (a byte range of the
//! line, so that a key can later be sliced out of the frozen buffer without copying).
//!
//! Must not touch: the read buffer (it reads a line, it never consumes or changes it), command
//! semantics, reply text.
//!
//! Invariants:
//! - Allocation free: at most [`MAX_TOKENS`] spans live on the stack; later tokens are only
//!   counted, as memcached counts them.
//! - Tokens are separated by spaces only (memcached 1.6 `proto_text.c`); a token is never empty.
//! - Number parsers accept exactly what memcached's `safe_strto*` accept, and refuse overflow
//!   instead of truncating.

use super::KEY_MAX_LEN;

/// memcached tokenizes at most 24 tokens (`MAX_TOKENS`, including the terminal one); more only
/// matters for counting, so the first 24 are kept.
const MAX_TOKENS: usize = 24;

/// The keys of a space-separated key list, empty tokens skipped.
pub(super) fn split_keys(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = list;
    std::iter::from_fn(move || {
        loop {
            let (key, after) = match memchr::memchr(b' ', rest) {
                Some(p) => (&rest[..p], &rest[p + 1..]),
                None if rest.is_empty() => return None,
                None => (rest, &rest[rest.len()..]),
            };
            rest = after;
            if !key.is_empty() {
                return Some(key);
            }
        }
    })
}

/// 1..=250 bytes, no control characters (spaces cannot occur: they separate tokens).
pub(super) fn valid_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= KEY_MAX_LEN && key.iter().all(|&b| b > b' ' && b != 0x7f)
}

/// `strtoull` as memcached's `safe_strtoull` uses it: optional `+`, decimal digits, no overflow.
pub(super) fn parse_u64(tok: &[u8]) -> Option<u64> {
    let digits = tok.strip_prefix(b"+").unwrap_or(tok);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// [`parse_u64`] that must fit 32 bits (client flags, verbosity level).
pub(super) fn parse_u32(tok: &[u8]) -> Option<u32> {
    parse_u64(tok).and_then(|v| u32::try_from(v).ok())
}

/// `strtol`: optional sign, decimal digits, must fit an i64.
pub(super) fn parse_i64(tok: &[u8]) -> Option<i64> {
    match tok.split_first() {
        Some((b'-', rest)) if !rest.starts_with(b"+") => {
            let v = parse_u64(rest)?;
            if v == 1u64 << 63 {
                Some(i64::MIN)
            } else {
                i64::try_from(v).ok().map(|v| -v)
            }
        }
        _ => parse_u64(tok).and_then(|v| i64::try_from(v).ok()),
    }
}

/// A token's byte range within its line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The span `start..end` of a line (lines are shorter than `max_request_size`, at most
    /// 1 GiB, so offsets fit in u32).
    pub(super) fn new(start: usize, end: usize) -> Span {
        debug_assert!(end <= u32::MAX as usize);
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub(super) fn start(self) -> usize {
        self.start as usize
    }

    pub(super) fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub(super) fn range(self) -> std::ops::Range<usize> {
        self.start()..self.end as usize
    }

    pub(super) fn of(self, line: &[u8]) -> &[u8] {
        &line[self.range()]
    }
}

/// The space-separated tokens of a line: the first [`MAX_TOKENS`] spans and the total count.
pub(super) struct Tokens {
    spans: [Span; MAX_TOKENS],
    /// How many spans are stored: the token count, capped at [`MAX_TOKENS`].
    pub(super) stored: usize,
    /// How many tokens the line has.
    pub(super) count: usize,
}

impl Tokens {
    pub(super) fn new(line: &[u8]) -> Tokens {
        let mut t = Tokens {
            spans: [Span::default(); MAX_TOKENS],
            stored: 0,
            count: 0,
        };
        let mut i = 0;
        while i < line.len() {
            if line[i] == b' ' {
                i += 1;
                continue;
            }
            let start = i;
            i = memchr::memchr(b' ', &line[start..]).map_or(line.len(), |p| start + p);
            if t.stored < MAX_TOKENS {
                t.spans[t.stored] = Span::new(start, i);
                t.stored += 1;
            }
            t.count += 1;
        }
        t
    }

    /// Span of token `i` (empty past the stored ones).
    pub(super) fn span(&self, i: usize) -> Span {
        if i < self.stored {
            self.spans[i]
        } else {
            Span::default()
        }
    }

    /// Bytes of token `i` (empty if absent).
    pub(super) fn get<'a>(&self, line: &'a [u8], i: usize) -> &'a [u8] {
        self.span(i).of(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"+7"), Some(7));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"+"), None);
        assert_eq!(parse_u64(b"1a"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"-5"), Some(-5));
        assert_eq!(parse_i64(b"-+5"), None);
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
    }
}
