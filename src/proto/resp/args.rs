//! Argument parsing shared by the command groups: integers as redis reads them, SCAN cursors,
//! the value size limit, the keys of XREAD/XREADGROUP (for notifications and forwarding).
//!
//! Owns: these few parsers and their errors. Must not touch: any command's option grammar (each
//! group parses its own options), replies.

use super::conn::Reply;
use super::error::RespError;
use super::frame::{Args, parse_i64};
use crate::config::Limits;

/// Refuses a value longer than `proto_max_bulk_len` (redis's `checkStringLength`).
pub(super) fn check_size(limits: &Limits, len: usize) -> Reply {
    if len as u64 > limits.proto_max_bulk_len {
        return Err(RespError::StringTooLong);
    }
    Ok(())
}

/// redis `getLongLongFromObjectOrReply`.
pub(super) fn parse_int(s: &[u8]) -> Result<i64, RespError> {
    parse_i64(s).ok_or_else(|| RespError::NotInteger)
}

/// redis `parseScanCursorOrReply` (`strtoul`): optional sign (a negative cursor wraps), digits,
/// no overflow, nothing else.
pub(super) fn parse_cursor(s: &[u8]) -> Option<u64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { n.wrapping_neg() } else { n })
}

/// The keys of an XREAD/XREADGROUP request: the first half of what follows STREAMS (none if
/// the request does not parse that far).
pub(super) fn stream_keys<'a>(a: &Args<'a>) -> Vec<&'a [u8]> {
    let mut i = 1;
    while i < a.len() {
        let Ok(o) = a.arg(i) else { break };
        if o.eq_ignore_ascii_case(b"streams") {
            let n = a.len() - i - 1;
            if n == 0 || n % 2 != 0 {
                return Vec::new();
            }
            return a.iter_from(i + 1).take(n / 2).collect();
        }
        i += if o.eq_ignore_ascii_case(b"block") || o.eq_ignore_ascii_case(b"count") {
            2
        } else if o.eq_ignore_ascii_case(b"group") {
            3
        } else {
            1
        };
    }
    Vec::new()
}
