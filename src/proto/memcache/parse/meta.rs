//! The meta commands: `mg`, `ms`, `md`, `ma`, `me` (`mn` has no arguments: the dispatch in
//! `parse` answers it), and their flags.
//!
//! Owns: [`MetaFlags`] and its parsing (memcached's `_meta_flag_preparse`), the meta limits
//! (token count, opaque length), the `ms` data block, and base64 keys (`b`), decoded in place.
//!
//! Must not touch: framing beyond `ms` (the newline scan and the swallow state belong to
//! `parse`), the store, reply text (a bad request is a [`Reject`]; its text is in `encode.rs`).
//!
//! Invariants:
//! - Errors come in memcached 1.6.18's order and wording: a duplicate or unknown flag stops at
//!   once, a bad flag token is remembered and reported after the others are read; `mg` names
//!   the flag error, `md`/`ma` answer `invalid or duplicate flag` for any of them.
//! - `ms` swallows its data block after any error found once its length is known (token 2),
//!   as memcached does; before that the data line is read as a command.
//! - No heap allocation: flags are a fixed struct, the opaque token and the key are slices of
//!   the line, a base64 key is decoded through a stack buffer into the line it came from.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Bytes, BytesMut};

use super::token::{Span, Tokens, parse_i64, parse_u32, parse_u64, valid_key};
use super::{Cmd, DATA_LEN_MAX, Decoder, KEY_MAX_LEN, Refused, Reject, Request, too_large};
use crate::config::Limits;

/// Meta commands refuse 20 or more tokens (memcached: `ntokens > MFLAG_MAX_OPT_LENGTH` where
/// `ntokens` also counts its terminal token).
const META_MAX_TOKENS: usize = 20;
/// Longest opaque token, including its `O` (`MFLAG_MAX_OPAQUE_LENGTH`).
const OPAQUE_MAX_LEN: usize = 32;
/// Room for a decoded base64 key: a 250-byte token decodes to at most 189 bytes.
const B64_DECODED_MAX: usize = 192;
/// Most flags a meta command can carry (19 tokens minus command and key).
const META_FLAGS_MAX: usize = META_MAX_TOKENS - 3;

/// Flags of a meta command, as sent. Tokens are validated; numbers are raw protocol values
/// (seconds, not yet converted to expiry times).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaFlags {
    /// `b`: the key was base64 (it is decoded here; echo it encoded).
    pub base64: bool,
    /// `q`: quiet mode.
    pub quiet: bool,
    /// `v`: return the value.
    pub value: bool,
    /// `u`: do not bump (no hit marking, no access time update).
    pub no_bump: bool,
    /// `I`: invalidate (md: mark stale; ms with C: accept an older CAS and mark stale).
    pub invalidate: bool,
    /// `x` (md): drop the value but keep the item.
    pub remove_value: bool,
    /// `N<ttl>`: vivify on miss.
    pub vivify: Option<i64>,
    /// `R<ttl>`: win the recache token if the remaining TTL is below this.
    pub recache: Option<i64>,
    /// `T<ttl>`: new TTL.
    pub ttl: Option<i64>,
    /// `F<flags>`: client flags to store (0 when absent).
    pub client_flags: u32,
    /// `C<cas>`: compare CAS.
    pub compare_cas: Option<u64>,
    /// `E<cas>`: explicit new CAS.
    pub new_cas: Option<u64>,
    /// `M<c>`: mode character.
    pub mode: Option<u8>,
    /// `D<n>` (ma): delta.
    pub delta: Option<u64>,
    /// `J<n>` (ma): initial value on vivify.
    pub initial: Option<u64>,
    /// `O<token>`: the whole opaque token including `O` (empty when absent), echoed as is.
    pub opaque: Bytes,
    order: [u8; META_FLAGS_MAX],
    order_len: u8,
}

impl MetaFlags {
    /// Flag characters in request order; replies echo their return flags in this order.
    pub fn order(&self) -> &[u8] {
        &self.order[..usize::from(self.order_len)]
    }
}

impl Decoder {
    /// `ms <key> <datalen> <flags>*` and its data block; `None` until the block is complete.
    pub(super) fn decode_meta_set(
        &mut self,
        input: &mut BytesMut,
        line_len: usize,
        line_end: usize,
        t: &Tokens,
        limits: &Limits,
    ) -> Option<Request> {
        let nt = t.count;
        let line = &input[..line_end];
        let early = if nt < 2 {
            Some(Reject::Error)
        } else if t.span(1).len() > KEY_MAX_LEN || nt == 2 {
            Some(Reject::BadFormat)
        } else if nt >= META_MAX_TOKENS {
            Some(Reject::FlagsTooLong)
        } else {
            None
        };
        if let Some(error) = early {
            return Some(self.refuse(input, line_len, 0, error, false));
        }
        let Some(len) = parse_i64(t.get(line, 2)).filter(|l| (0..=DATA_LEN_MAX).contains(l)) else {
            return Some(self.refuse(input, line_len, 0, Reject::BadFormat, false));
        };
        let len = len as usize;
        // From here on memcached knows the block length and swallows it after an error.
        let swallow = len as u64 + 2;
        let key = t.span(1);
        let (mut flags, opaque) = match meta_flags(line, t, 3, key) {
            Ok(parsed) => parsed,
            Err(error) => return Some(self.refuse(input, line_len, swallow, error, false)),
        };
        let error = if opaque.is_some_and(|o| o.len() > OPAQUE_MAX_LEN) {
            Some(Reject::OpaqueTooLong)
        } else if !matches!(flags.mode, None | Some(b'E' | b'A' | b'P' | b'R' | b'S')) {
            Some(Reject::SetMode)
        } else if !flags.base64 && !valid_key(key.of(line)) {
            Some(Reject::BadFormat)
        } else {
            None
        };
        if let Some(error) = error {
            return Some(self.refuse(input, line_len, swallow, error, false));
        }
        if too_large(len, line_len, limits) {
            let refused = Refused {
                key,
                base64: flags.base64,
                remove: true,
                noreply: false,
            };
            return Some(self.too_large(input, line_len, swallow, refused));
        }
        let need = line_len + len + 2;
        if input.len() < need {
            return None;
        }
        let mut block = input.split_to(need);
        self.scanned = 0;
        if &block[line_len + len..] != b"\r\n" {
            return Some(Request::reject(Reject::BadDataChunk));
        }
        let key = if flags.base64 {
            match decode_key_in_place(&mut block, key) {
                Some(decoded) => decoded,
                None => return Some(Request::reject(Reject::KeyDecode)),
            }
        } else {
            key
        };
        let block = block.freeze();
        if let Some(o) = opaque {
            flags.opaque = block.slice(o.range());
        }
        Some(Request::MetaSet {
            key: block.slice(key.range()),
            flags,
            data: block.slice(line_len..line_len + len),
        })
    }
}

/// mg / md / ma.
pub(super) fn decode_meta(cmd: Cmd, mut line: BytesMut, t: &Tokens) -> Request {
    let nt = t.count;
    if nt < 2 {
        return Request::reject(Reject::Error);
    }
    let key = t.span(1);
    if key.len() > KEY_MAX_LEN {
        return Request::reject(Reject::BadFormat);
    }
    if nt >= META_MAX_TOKENS {
        let error = if cmd == Cmd::MetaGet {
            Reject::GetFlagsTooLong
        } else {
            Reject::FlagsTooLong
        };
        return Request::reject(error);
    }
    let (mut flags, opaque) = match meta_flags(&line, t, 2, key) {
        Ok(parsed) => parsed,
        Err(error) if cmd == Cmd::MetaGet => return Request::reject(error),
        Err(_) => return Request::reject(Reject::InvalidOrDuplicateFlag),
    };
    if cmd == Cmd::MetaArith && !matches!(flags.mode, None | Some(b'I' | b'+' | b'D' | b'-')) {
        return Request::reject(Reject::ArithMode);
    }
    if opaque.is_some_and(|o| o.len() > OPAQUE_MAX_LEN) {
        return Request::reject(Reject::OpaqueTooLong);
    }
    let key = if flags.base64 {
        match decode_key_in_place(&mut line, key) {
            Some(key) => key,
            None => return Request::reject(Reject::KeyDecode),
        }
    } else if valid_key(key.of(&line)) {
        key
    } else {
        return Request::reject(Reject::BadFormat);
    };
    let line = line.freeze();
    if let Some(o) = opaque {
        flags.opaque = line.slice(o.range());
    }
    let key = line.slice(key.range());
    match cmd {
        Cmd::MetaGet => Request::MetaGet { key, flags },
        Cmd::MetaDelete => Request::MetaDelete { key, flags },
        _ => Request::MetaArith { key, flags },
    }
}

/// `me <key> [b]`.
pub(super) fn decode_debug(mut line: BytesMut, t: &Tokens) -> Request {
    let nt = t.count;
    if nt < 2 || t.span(1).len() > KEY_MAX_LEN {
        return Request::reject(Reject::BadFormat);
    }
    let base64 = nt >= 3 && t.get(&line, 2) == b"b";
    let key = if base64 {
        match decode_key_in_place(&mut line, t.span(1)) {
            Some(key) => key,
            None => return Request::reject(Reject::BadFormat),
        }
    } else if valid_key(t.get(&line, 1)) {
        t.span(1)
    } else {
        return Request::reject(Reject::BadFormat);
    };
    Request::MetaDebug {
        key: line.freeze().slice(key.range()),
        base64,
    }
}

/// memcached's `_meta_flag_preparse`: a duplicate (or non-ASCII) flag or an unknown flag stops
/// at once; a bad token is remembered (the last one wins) and parsing goes on.
fn meta_flags(
    line: &[u8],
    t: &Tokens,
    first: usize,
    key: Span,
) -> Result<(MetaFlags, Option<Span>), Reject> {
    let mut f = MetaFlags::default();
    let mut opaque = None;
    let mut seen: u128 = 0;
    let mut error: Option<Reject> = None;
    for i in first..t.count.min(t.stored) {
        let span = t.span(i);
        let tok = span.of(line);
        let c = tok[0];
        if c >= 127 || seen & (1u128 << c) != 0 {
            return Err(Reject::DuplicateFlag);
        }
        seen |= 1u128 << c;
        let arg = &tok[1..];
        match c {
            b'b' => {
                f.base64 = true;
                let mut tmp = [0u8; B64_DECODED_MAX];
                if STANDARD.decode_slice(key.of(line), &mut tmp).is_err() {
                    error = Some(Reject::KeyDecode);
                }
            }
            b'N' | b'T' | b'R' => match parse_i64(arg) {
                Some(v) if c == b'N' => f.vivify = Some(v),
                Some(v) if c == b'T' => f.ttl = Some(v),
                Some(v) => f.recache = Some(v),
                None => error = Some(Reject::BadToken),
            },
            b'O' => opaque = Some(span),
            b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'l' | b'h' => {}
            b'v' => f.value = true,
            b'u' => f.no_bump = true,
            b'q' => f.quiet = true,
            b'I' => f.invalidate = true,
            b'x' => f.remove_value = true,
            // memcached keeps the previous message for a bad F (default: bad format).
            b'F' => match parse_u32(arg) {
                Some(v) => f.client_flags = v,
                None => error = Some(error.unwrap_or(Reject::BadFormat)),
            },
            b'C' | b'E' => match parse_u64(arg) {
                Some(v) if c == b'C' => f.compare_cas = Some(v),
                Some(v) => f.new_cas = Some(v),
                None => error = Some(Reject::BadToken),
            },
            b'M' => match arg {
                [m] => f.mode = Some(*m),
                _ => error = Some(Reject::ModeLength),
            },
            b'J' | b'D' => match parse_u64(arg) {
                Some(v) if c == b'J' => f.initial = Some(v),
                Some(v) => f.delta = Some(v),
                None if c == b'J' => error = Some(Reject::InvalidInitial),
                None => error = Some(Reject::InvalidDeltaValue),
            },
            _ => return Err(Reject::InvalidFlag),
        }
        if usize::from(f.order_len) < META_FLAGS_MAX {
            f.order[usize::from(f.order_len)] = c;
            f.order_len += 1;
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok((f, opaque)),
    }
}

/// Decodes the base64 key token in place (the decoded key is shorter); returns its new span.
pub(super) fn decode_key_in_place(buf: &mut BytesMut, key: Span) -> Option<Span> {
    let mut tmp = [0u8; B64_DECODED_MAX];
    let n = STANDARD.decode_slice(key.of(buf), &mut tmp).ok()?;
    if n == 0 {
        return None;
    }
    let start = key.start();
    buf[start..start + n].copy_from_slice(&tmp[..n]);
    Some(Span::new(start, start + n))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{b, decode_all, one, rejected};
    use super::*;

    #[test]
    fn meta_flags_decode() {
        match one(b"mg bTI= b v k O12 s t N30 R5 T-1 q u\r\n") {
            Request::MetaGet { key, flags } => {
                assert_eq!(key, b("m2"));
                assert!(flags.base64 && flags.value && flags.quiet && flags.no_bump);
                assert_eq!(
                    (flags.vivify, flags.recache, flags.ttl),
                    (Some(30), Some(5), Some(-1))
                );
                assert_eq!(flags.opaque, b("O12"));
                assert_eq!(flags.order(), b"bvkOstNRTqu");
            }
            other => panic!("{other:?}"),
        }
        match one(b"ms k 2 F7 C9 E10 MA I c\r\nhi\r\n") {
            Request::MetaSet { key, flags, data } => {
                assert_eq!((key, data), (b("k"), b("hi")));
                assert_eq!(flags.client_flags, 7);
                assert_eq!(
                    (flags.compare_cas, flags.new_cas, flags.mode),
                    (Some(9), Some(10), Some(b'A'))
                );
                assert!(flags.invalidate && flags.opaque.is_empty());
            }
            other => panic!("{other:?}"),
        }
        match one(b"ma k D3 J4 M-\r\n") {
            Request::MetaArith { flags, .. } => {
                assert_eq!(
                    (flags.delta, flags.initial, flags.mode),
                    (Some(3), Some(4), Some(b'-'))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn meta_debug_decodes_a_base64_key() {
        assert_eq!(
            one(b"me bTI= b\r\n"),
            Request::MetaDebug {
                key: b("m2"),
                base64: true
            }
        );
    }

    #[test]
    fn meta_rejects() {
        assert_eq!(rejected(b"mg k v v\r\n"), Reject::DuplicateFlag);
        assert_eq!(rejected(b"mg k Y\r\n"), Reject::InvalidFlag);
        assert_eq!(rejected(b"mg k Nx\r\n"), Reject::BadToken);
        assert_eq!(rejected(b"mg k Nx Y\r\n"), Reject::InvalidFlag);
        assert_eq!(rejected(b"mg !!!! b\r\n"), Reject::KeyDecode);
        assert_eq!(rejected(b"md k Y\r\n"), Reject::InvalidOrDuplicateFlag);
        assert_eq!(rejected(b"ma k Mx\r\n"), Reject::ArithMode);
        assert_eq!(rejected(b"ma k Dx\r\n"), Reject::InvalidOrDuplicateFlag);
        assert_eq!(
            rejected(b"mg k O123456789012345678901234567890123\r\n"),
            Reject::OpaqueTooLong
        );
        assert_eq!(
            rejected(b"mg k a b c d e f g h i j k l m n o p q r\r\n"),
            Reject::GetFlagsTooLong
        );
        assert_eq!(
            rejected(b"md k a b c d e f g h i j k l m n o p q r\r\n"),
            Reject::FlagsTooLong
        );
        assert_eq!(rejected(b"mg k\x01 v\r\n"), Reject::BadFormat);
        assert_eq!(rejected(b"me\r\n"), Reject::BadFormat);
        // ms knows the length after token 2: later errors swallow the block.
        let (requests, rest) = decode_all(b"ms k 1 Z\r\nx\r\nmn\r\n");
        assert_eq!(
            requests,
            [Request::reject(Reject::InvalidFlag), Request::MetaNoop]
        );
        assert!(rest.is_empty());
    }
}
