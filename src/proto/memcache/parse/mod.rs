//! Decoding of memcached text and meta requests from a connection's read buffer.
//!
//! Owns: framing (the command line, then the data block of storage commands), the dispatch
//! from command name to its decoder, the [`Request`] vocabulary every later stage reads, and
//! the per-connection [`Decoder`] state (newline scan offset, bytes still to swallow after a
//! refused data block). The commands themselves are decoded beside it: `text` (classic
//! commands), `meta` (mg, ms, md, ma, me and their flags), `token` (the tokenizer, key and
//! number checks shared by both).
//!
//! Must not touch: the store, the topology, stats, the clock, reply text. A malformed request is
//! a [`Request::Reject`] carrying a [`Reject`]; its wire text lives in `encode.rs`.
//!
//! Invariants:
//! - Pure: the result depends only on the buffered bytes, the decoder state and [`Limits`].
//! - Incomplete input gives `Ok(None)` and leaves the buffer as it was. Bytes are consumed only
//!   together with the request they form, or while swallowing a refused data block.
//! - Zero copy, no heap allocation per request: keys, the multi-get key list (one `Bytes`,
//!   iterated in place) and data blocks are `Bytes` slices split off the buffer; a base64 (`b`)
//!   key is decoded in place through a stack buffer.
//! - Bounded memory: a line without newline may grow to 2048 bytes (`get`/`gets`, which
//!   memcached lets grow for large multi-gets: `max_request_size`), else the connection is closed
//!   as memcached does. A data block is buffered only if it fits `max_value_size` and
//!   `max_request_size`; otherwise it is swallowed as it arrives and never held.
//! - Token rules follow memcached 1.6 `proto_text.c`: tokens are separated by spaces only, a
//!   trailing `\r` before `\n` is dropped, token-count errors are `ERROR`, `noreply` is the last
//!   token, meta commands take at most 19 tokens. Deliberate differences: keys with control
//!   characters are refused (protocol.txt forbids them; memcached does not check), and numbers
//!   out of range (flags > u32, exptime/length beyond 64 bits or > 2^31) are refused instead of
//!   being truncated.

mod meta;
mod text;
mod token;

use bytes::{Buf, Bytes, BytesMut};

pub use meta::MetaFlags;
use meta::decode_key_in_place;
use token::{Span, Tokens, split_keys, valid_key};

use crate::config::Limits;

/// Longest key memcached accepts (`KEY_MAX_LENGTH`).
pub const KEY_MAX_LEN: usize = 250;
/// A command line without newline may grow this far (memcached's read check) unless it is a
/// `get`/`gets`, which may grow to `max_request_size`.
pub const LINE_MAX_WITHOUT_NEWLINE: usize = 2048;
/// Largest data length memcached parses (`INT_MAX - 2`).
const DATA_LEN_MAX: i64 = i32::MAX as i64 - 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// More than 2048 bytes without a newline in something that is not a `get`/`gets`
    /// (memcached closes silently).
    #[error("command line longer than 2048 bytes without newline")]
    LineTooLong,
    /// A command line (a large multi-get) grew past `max_request_size`.
    #[error("command line longer than max_request_size")]
    RequestTooLarge,
}

/// Which retrieval command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetCmd {
    /// `get <key>*`
    Get,
    /// `gets <key>*`: also returns the CAS.
    Gets,
    /// `gat <exptime> <key>*`: get and touch.
    Gat,
    /// `gats <exptime> <key>*`: get and touch, with CAS.
    Gats,
}

impl GetCmd {
    /// Whether replies carry the CAS value.
    pub fn with_cas(self) -> bool {
        matches!(self, GetCmd::Gets | GetCmd::Gats)
    }

    /// Whether the command also sets a new expiry.
    pub fn touches(self) -> bool {
        matches!(self, GetCmd::Gat | GetCmd::Gats)
    }
}

/// Which classic storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCmd {
    /// Store unconditionally.
    Set,
    /// Store only if absent.
    Add,
    /// Store only if present.
    Replace,
    /// Append to a present value.
    Append,
    /// Prepend to a present value.
    Prepend,
    /// Store only if the CAS matches.
    Cas,
}

/// A request whose wire form was wrong, answered with an error line (the connection stays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// `ERROR`: unknown command or wrong number of tokens.
    Error,
    /// `CLIENT_ERROR bad command line format`
    BadFormat,
    /// `CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]`
    DeleteUsage,
    /// `CLIENT_ERROR bad data chunk`: the data block did not end in `\r\n`.
    BadDataChunk,
    /// `CLIENT_ERROR invalid exptime argument`
    InvalidExptime,
    /// `CLIENT_ERROR invalid numeric delta argument` (incr/decr)
    InvalidDelta,
    /// `CLIENT_ERROR bad token in command line format` (meta numeric token)
    BadToken,
    /// `CLIENT_ERROR duplicate flag`
    DuplicateFlag,
    /// `CLIENT_ERROR invalid flag`
    InvalidFlag,
    /// `CLIENT_ERROR invalid or duplicate flag` (md/ma: any flag error)
    InvalidOrDuplicateFlag,
    /// `CLIENT_ERROR error decoding key` (bad base64 with `b`)
    KeyDecode,
    /// `CLIENT_ERROR incorrect length for M token`
    ModeLength,
    /// `CLIENT_ERROR invalid mode for ms M token`
    SetMode,
    /// `CLIENT_ERROR invalid mode for ma M token`
    ArithMode,
    /// `CLIENT_ERROR invalid numeric initial value` (ma J)
    InvalidInitial,
    /// `CLIENT_ERROR invalid numeric delta value` (ma D)
    InvalidDeltaValue,
    /// `CLIENT_ERROR opaque token too long`
    OpaqueTooLong,
    /// `CLIENT_ERROR options flags are too long` (mg)
    GetFlagsTooLong,
    /// `CLIENT_ERROR options flags too long` (ms, md, ma)
    FlagsTooLong,
}

/// The key list of a multi-key retrieval: one `Bytes`, keys separated by spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys(Bytes);

impl Keys {
    /// One key (already validated: no spaces).
    pub fn single(key: &[u8]) -> Keys {
        Keys(Bytes::copy_from_slice(key))
    }

    /// The keys in request order (never empty slices; validated by the decoder).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        split_keys(&self.0)
    }
}

/// Which `stats` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsGroup {
    /// `stats`
    General,
    /// `stats settings`
    Settings,
}

/// One decoded request. Keys and data are slices of the connection's read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// get / gets / gat / gats; `exptime` is 0 unless the command touches.
    Get {
        /// Which command.
        cmd: GetCmd,
        /// gat/gats expiry (protocol seconds).
        exptime: i64,
        /// Keys in request order (possibly none: `gat 10` answers `END`).
        keys: Keys,
    },
    /// set / add / replace / append / prepend / cas with a complete, well-terminated block.
    Store {
        /// Which command.
        cmd: StoreCmd,
        /// Key.
        key: Bytes,
        /// Client flags.
        flags: u32,
        /// Expiry (protocol seconds).
        exptime: i64,
        /// CAS to compare (`cas` only; else 0).
        cas: u64,
        /// The data block without its `\r\n`.
        data: Bytes,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `delete <key> [0] [noreply]`
    Delete {
        /// Key.
        key: Bytes,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `incr`/`decr <key> <delta> [noreply]`
    Arith {
        /// incr (true) or decr.
        incr: bool,
        /// Key.
        key: Bytes,
        /// Delta.
        delta: u64,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`
    Touch {
        /// Key.
        key: Bytes,
        /// New expiry (protocol seconds).
        exptime: i64,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`
    FlushAll {
        /// Delay (protocol seconds; <= 0 means now).
        delay: i64,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `version`
    Version,
    /// `verbosity <n> [noreply]` (accepted, no effect).
    Verbosity {
        /// Suppress the reply.
        noreply: bool,
    },
    /// `stats` / `stats settings`
    Stats(StatsGroup),
    /// `quit`
    Quit,
    /// `mn`
    MetaNoop,
    /// `mg <key> <flags>*`
    MetaGet {
        /// Key (base64-decoded if `b`).
        key: Bytes,
        /// Flags.
        flags: MetaFlags,
    },
    /// `ms <key> <datalen> <flags>*` with its data block.
    MetaSet {
        /// Key (base64-decoded if `b`).
        key: Bytes,
        /// Flags.
        flags: MetaFlags,
        /// The data block without its `\r\n`.
        data: Bytes,
    },
    /// `md <key> <flags>*`
    MetaDelete {
        /// Key (base64-decoded if `b`).
        key: Bytes,
        /// Flags.
        flags: MetaFlags,
    },
    /// `ma <key> <flags>*`
    MetaArith {
        /// Key (base64-decoded if `b`).
        key: Bytes,
        /// Flags.
        flags: MetaFlags,
    },
    /// `me <key> [b]`
    MetaDebug {
        /// Key (base64-decoded if `b`).
        key: Bytes,
        /// The key was base64.
        base64: bool,
    },
    /// A storage request whose block exceeds the limits. The decoder swallows the block;
    /// memcached answers `SERVER_ERROR object too large for cache` and, for `set` and `ms`,
    /// removes the old item so that stale data does not outlive a failed overwrite.
    TooLarge {
        /// Key.
        key: Bytes,
        /// Remove the current item.
        remove: bool,
        /// Suppress the reply (classic `noreply`).
        noreply: bool,
    },
    /// A malformed request, answered with an error line (suppressed by a classic `noreply`).
    Reject {
        /// Which error.
        error: Reject,
        /// Suppress the reply.
        noreply: bool,
    },
}

impl Request {
    /// Whether a classic `noreply` suppresses every reply line of this request.
    pub fn noreply(&self) -> bool {
        match self {
            Request::Store { noreply, .. }
            | Request::Delete { noreply, .. }
            | Request::Arith { noreply, .. }
            | Request::Touch { noreply, .. }
            | Request::FlushAll { noreply, .. }
            | Request::Verbosity { noreply }
            | Request::TooLarge { noreply, .. }
            | Request::Reject { noreply, .. } => *noreply,
            _ => false,
        }
    }

    fn reject(error: Reject) -> Request {
        Request::Reject {
            error,
            noreply: false,
        }
    }
}

/// Per-connection decoder state.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes at the front of the buffer already searched for `\n` (all belong to one line).
    scanned: usize,
    /// Data bytes of a refused block still to discard.
    swallow: u64,
}

impl Decoder {
    /// A decoder at the start of a connection.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Decodes the next request from the front of `input`. `Ok(None)`: more bytes are needed.
    pub fn decode(
        &mut self,
        input: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Request>, ProtoError> {
        if self.swallow > 0 {
            let n = usize::try_from(self.swallow)
                .unwrap_or(usize::MAX)
                .min(input.len());
            input.advance(n);
            self.swallow -= n as u64;
            if self.swallow > 0 {
                return Ok(None);
            }
        }
        let from = self.scanned.min(input.len());
        let Some(nl) = memchr::memchr(b'\n', &input[from..]).map(|i| from + i) else {
            self.scanned = input.len();
            if input.len() > LINE_MAX_WITHOUT_NEWLINE && !is_multiget(input) {
                return Err(ProtoError::LineTooLong);
            }
            if input.len() as u64 > limits.max_request_size {
                return Err(ProtoError::RequestTooLarge);
            }
            return Ok(None);
        };
        if nl as u64 >= limits.max_request_size {
            return Err(ProtoError::RequestTooLarge);
        }
        // Keep the scan position while a storage command waits for its data block.
        self.scanned = nl;
        let line_len = nl + 1;
        let line_end = if nl > 0 && input[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        // The commonest request, `get <one key>`, skips the tokenizer: a valid key has no
        // spaces, so the general path would find the same two tokens.
        if input[..line_end].starts_with(b"get ") && valid_key(&input[4..line_end]) {
            self.scanned = 0;
            let mut line = input.split_to(line_len);
            line.truncate(line_end);
            return Ok(Some(Request::Get {
                cmd: GetCmd::Get,
                exptime: 0,
                keys: Keys(line.freeze().slice(4..)),
            }));
        }
        let toks = Tokens::new(&input[..line_end]);
        let cmd = command(toks.get(input, 0));
        let request = match cmd {
            Cmd::Store(store) => self.decode_store(store, input, line_len, line_end, &toks, limits),
            Cmd::MetaSet => self.decode_meta_set(input, line_len, line_end, &toks, limits),
            _ => {
                self.scanned = 0;
                let mut line = input.split_to(line_len);
                line.truncate(line_end);
                Some(decode_line(cmd, line, &toks))
            }
        };
        Ok(request)
    }

    /// Consumes the command line, arms the swallow of `swallow` data bytes, and rejects.
    fn refuse(
        &mut self,
        input: &mut BytesMut,
        line_len: usize,
        swallow: u64,
        error: Reject,
        noreply: bool,
    ) -> Request {
        input.advance(line_len);
        self.scanned = 0;
        self.swallow = swallow;
        Request::Reject { error, noreply }
    }

    /// Consumes the command line and arms the swallow of a too-large block.
    fn too_large(
        &mut self,
        input: &mut BytesMut,
        line_len: usize,
        swallow: u64,
        refused: Refused,
    ) -> Request {
        let mut line = input.split_to(line_len);
        self.scanned = 0;
        self.swallow = swallow;
        let key = refused.key;
        let key = if refused.base64 {
            decode_key_in_place(&mut line, key).unwrap_or(key)
        } else {
            key
        };
        Request::TooLarge {
            key: line.freeze().slice(key.range()),
            remove: refused.remove,
            noreply: refused.noreply,
        }
    }
}

/// The key and reply options of a storage request refused as too large.
struct Refused {
    key: Span,
    base64: bool,
    remove: bool,
    noreply: bool,
}

/// Whether a block of `len` bytes behind a `line_len` command line exceeds the limits.
fn too_large(len: usize, line_len: usize, limits: &Limits) -> bool {
    len as u64 > limits.max_value_size
        || (line_len as u64).saturating_add(len as u64 + 2) > limits.max_request_size
}

/// memcached lets only a `get `/`gets ` line (after at most 100 spaces) grow past 2048 bytes.
fn is_multiget(buf: &[u8]) -> bool {
    let spaces = buf.iter().take_while(|&&b| b == b' ').count();
    let rest = &buf[spaces..];
    spaces <= 100 && (rest.starts_with(b"get ") || rest.starts_with(b"gets "))
}

/// Decodes a complete command line that carries no data block.
fn decode_line(cmd: Cmd, line: BytesMut, t: &Tokens) -> Request {
    match cmd {
        Cmd::Get(get) => text::decode_get(get, line, t),
        Cmd::Delete => text::decode_delete(line, t),
        Cmd::Incr | Cmd::Decr => text::decode_arith(cmd == Cmd::Incr, line, t),
        Cmd::Touch => text::decode_touch(line, t),
        Cmd::FlushAll => text::decode_flush_all(&line, t),
        Cmd::Version => Request::Version,
        Cmd::Verbosity => text::decode_verbosity(&line, t),
        Cmd::Stats => text::decode_stats(&line, t),
        Cmd::Quit => Request::Quit,
        Cmd::MetaNoop => Request::MetaNoop,
        Cmd::MetaGet | Cmd::MetaDelete | Cmd::MetaArith => meta::decode_meta(cmd, line, t),
        Cmd::MetaDebug => meta::decode_debug(line, t),
        // An HTTP request line sent to the memcached port (`GET / HTTP/1.1`): memcached closes
        // at once rather than answer, so a cross-protocol request smuggles nothing through.
        Cmd::Unknown
            if t.get(&line, t.count.saturating_sub(1))
                .starts_with(b"HTTP/") =>
        {
            Request::Quit
        }
        Cmd::Store(_) | Cmd::MetaSet | Cmd::Unknown => Request::reject(Reject::Error),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Get(GetCmd),
    Store(StoreCmd),
    Delete,
    Incr,
    Decr,
    Touch,
    FlushAll,
    Version,
    Verbosity,
    Stats,
    Quit,
    MetaNoop,
    MetaGet,
    MetaSet,
    MetaDelete,
    MetaArith,
    MetaDebug,
    Unknown,
}

fn command(name: &[u8]) -> Cmd {
    match name {
        b"get" => Cmd::Get(GetCmd::Get),
        b"gets" => Cmd::Get(GetCmd::Gets),
        b"gat" => Cmd::Get(GetCmd::Gat),
        b"gats" => Cmd::Get(GetCmd::Gats),
        b"set" => Cmd::Store(StoreCmd::Set),
        b"add" => Cmd::Store(StoreCmd::Add),
        b"replace" => Cmd::Store(StoreCmd::Replace),
        b"append" => Cmd::Store(StoreCmd::Append),
        b"prepend" => Cmd::Store(StoreCmd::Prepend),
        b"cas" => Cmd::Store(StoreCmd::Cas),
        b"delete" => Cmd::Delete,
        b"incr" => Cmd::Incr,
        b"decr" => Cmd::Decr,
        b"touch" => Cmd::Touch,
        b"flush_all" => Cmd::FlushAll,
        b"version" => Cmd::Version,
        b"verbosity" => Cmd::Verbosity,
        b"stats" => Cmd::Stats,
        b"quit" => Cmd::Quit,
        b"mn" => Cmd::MetaNoop,
        b"mg" => Cmd::MetaGet,
        b"ms" => Cmd::MetaSet,
        b"md" => Cmd::MetaDelete,
        b"ma" => Cmd::MetaArith,
        b"me" => Cmd::MetaDebug,
        _ => Cmd::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn limits() -> Limits {
        Limits::default()
    }

    pub(super) fn decode_all(bytes: &[u8]) -> (Vec<Request>, BytesMut) {
        let mut input = BytesMut::from(bytes);
        let mut decoder = Decoder::new();
        let mut requests = Vec::new();
        while let Some(request) = decoder.decode(&mut input, &limits()).expect("framing") {
            requests.push(request);
        }
        (requests, input)
    }

    pub(super) fn one(bytes: &[u8]) -> Request {
        let (mut requests, rest) = decode_all(bytes);
        assert_eq!(requests.len(), 1, "{requests:?}");
        assert!(rest.is_empty(), "left {rest:?}");
        requests.remove(0)
    }

    pub(super) fn rejected(bytes: &[u8]) -> Reject {
        match one(bytes) {
            Request::Reject { error, .. } => error,
            other => panic!("expected a reject, got {other:?}"),
        }
    }

    pub(super) fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    /// Requests that are valid and complete, each alone and all pipelined.
    const VALID: &[&[u8]] = &[
        b"get a\r\n",
        b"gets a bb ccc\r\n",
        b"gat 10 a b\r\n",
        b"set k 1 2 3\r\nabc\r\n",
        b"set k 0 0 0 noreply\r\n\r\n",
        b"cas k 0 0 2 77\r\n\r\n\r\n",
        b"append k 0 0 1\nx\r\n",
        b"delete k 0 noreply\r\n",
        b"incr k 5\r\n",
        b"touch k -1\r\n",
        b"flush_all 10\r\n",
        b"verbosity 1\r\n",
        b"stats settings\r\n",
        b"version\r\n",
        b"mn\r\n",
        b"mg bTI= b v k O1 s t c f h l q u\r\n",
        b"ms k 2 T10 F5 I C9 E10 MA q O1 k c\r\nhi\r\n",
        b"md k q I T30 C5 x\r\n",
        b"ma k N0 J5 D2 MD v t c\r\n",
        b"me k\r\n",
        b"bogus\r\n",
    ];

    /// `get <one key>` skips the tokenizer; a leading space sends the same line through it
    /// (tokens skip leading spaces), and both must decode alike, valid key or not.
    #[test]
    fn single_key_get_decodes_as_the_tokenizer_does() {
        let long = "k".repeat(KEY_MAX_LEN);
        let too_long = "k".repeat(KEY_MAX_LEN + 1);
        let keys: &[&[u8]] = &[
            b"a",
            b"key:000000012345",
            long.as_bytes(),
            too_long.as_bytes(),
            b"bad\x01key",
            b"del\x7f",
            b"k\r",
            b"",
            b" ",
        ];
        for key in keys {
            for end in [&b"\r\n"[..], b"\n"] {
                let line = [&b"get "[..], key, end].concat();
                let spaced = [&b" "[..], &line].concat();
                assert_eq!(
                    one(&line),
                    one(&spaced),
                    "{:?}",
                    String::from_utf8_lossy(&line)
                );
            }
        }
        assert_eq!(
            one(b"get key\r\n"),
            Request::Get {
                cmd: GetCmd::Get,
                exptime: 0,
                keys: Keys(b("key")),
            }
        );
    }

    /// Every strict prefix of a valid request is incomplete and leaves the buffer untouched.
    #[test]
    fn every_prefix_is_incomplete() {
        let mut all = Vec::new();
        for request in VALID {
            all.extend_from_slice(request);
            for cut in 0..request.len() {
                let mut input = BytesMut::from(&request[..cut]);
                let got = Decoder::new().decode(&mut input, &limits());
                assert_eq!(
                    got,
                    Ok(None),
                    "prefix {:?}",
                    String::from_utf8_lossy(&request[..cut])
                );
                assert_eq!(&input[..], &request[..cut]);
            }
        }
        // The same holds for the pipelined stream after the requests before the cut.
        let (whole, rest) = decode_all(&all);
        assert_eq!(whole.len(), VALID.len());
        assert!(rest.is_empty());
    }

    /// Feeding one byte at a time yields the same requests as one big buffer.
    #[test]
    fn byte_at_a_time() {
        let all: Vec<u8> = VALID.concat();
        let (whole, _) = decode_all(&all);
        let mut decoder = Decoder::new();
        let mut input = BytesMut::new();
        let mut got = Vec::new();
        for &byte in &all {
            input.extend_from_slice(&[byte]);
            while let Some(request) = decoder.decode(&mut input, &limits()).expect("framing") {
                got.push(request);
            }
        }
        assert_eq!(got, whole);
        assert!(input.is_empty());
    }

    #[test]
    fn too_large_block_is_swallowed_as_it_arrives() {
        let limits = Limits {
            max_value_size: 10,
            ..Limits::default()
        };
        let mut decoder = Decoder::new();
        let mut input = BytesMut::from(&b"set k 0 0 11 noreply\r\n0123"[..]);
        let first = decoder.decode(&mut input, &limits).expect("framing");
        assert_eq!(
            first,
            Some(Request::TooLarge {
                key: b("k"),
                remove: true,
                noreply: true
            })
        );
        assert_eq!(decoder.decode(&mut input, &limits), Ok(None));
        assert!(input.is_empty(), "swallowed bytes are dropped at once");
        input.extend_from_slice(b"4567890\r");
        assert_eq!(decoder.decode(&mut input, &limits), Ok(None));
        input.extend_from_slice(b"\nmn\r\n");
        assert_eq!(
            decoder.decode(&mut input, &limits),
            Ok(Some(Request::MetaNoop))
        );
        // ms drops the old item too and is never quiet; add keeps it.
        let mut input = BytesMut::from(&b"ms bTI= 11 b q\r\n"[..]);
        let got = Decoder::new().decode(&mut input, &limits).expect("framing");
        assert_eq!(
            got,
            Some(Request::TooLarge {
                key: b("m2"),
                remove: true,
                noreply: false
            })
        );
        let mut input = BytesMut::from(&b"add k 0 0 11\r\n"[..]);
        let got = Decoder::new().decode(&mut input, &limits).expect("framing");
        assert_eq!(
            got,
            Some(Request::TooLarge {
                key: b("k"),
                remove: false,
                noreply: false
            })
        );
        // max_request_size bounds the block too.
        let limits = Limits {
            max_request_size: 64,
            ..Limits::default()
        };
        let mut input = BytesMut::from(&b"set k 0 0 50\r\n"[..]);
        let got = Decoder::new().decode(&mut input, &limits).expect("framing");
        assert!(matches!(got, Some(Request::TooLarge { .. })));
    }

    #[test]
    fn line_limits() {
        let mut input = BytesMut::from(&[b'x'; 2048][..]);
        let mut decoder = Decoder::new();
        assert_eq!(decoder.decode(&mut input, &limits()), Ok(None));
        input.extend_from_slice(b"x");
        assert_eq!(
            decoder.decode(&mut input, &limits()),
            Err(ProtoError::LineTooLong)
        );
        // A multi-get may be longer, up to max_request_size.
        let small = Limits {
            max_request_size: 10_000,
            ..Limits::default()
        };
        let mut decoder = Decoder::new();
        let mut input = BytesMut::from(&b"  gets "[..]);
        while input.len() < 9_000 {
            input.extend_from_slice(b"key ");
            assert_eq!(decoder.decode(&mut input, &small), Ok(None));
        }
        input.extend_from_slice(&[b'k'; 2000]);
        assert_eq!(
            decoder.decode(&mut input, &small),
            Err(ProtoError::RequestTooLarge)
        );
        // With its newline, a long line is parsed like memcached does.
        let mut line = vec![b'x'; 5000];
        line.extend_from_slice(b"\r\n");
        assert_eq!(rejected(&line), Reject::Error);
    }

    /// A decoded request points into the read buffer instead of copying it.
    #[test]
    fn zero_copy() {
        let mut input = BytesMut::from(&b"set key 0 0 5\r\nhello\r\n"[..]);
        let base = input.as_ptr() as usize;
        let request = Decoder::new()
            .decode(&mut input, &limits())
            .expect("framing");
        let Some(Request::Store { key, data, .. }) = request else {
            panic!("{request:?}")
        };
        assert_eq!(key.as_ptr() as usize, base + 4);
        assert_eq!(data.as_ptr() as usize, base + 15);
    }
}
