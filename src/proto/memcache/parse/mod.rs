//! Decoding of memcached text and meta requests from a connection's read buffer.
//!
//! Owns: framing (command line, then the data block of storage commands), tokenizing, and the
//! validation of keys, numbers and meta flags into [`Request`]s; the per-connection
//! [`Decoder`] state (newline scan offset, bytes still to swallow after a refused data block).
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

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf, Bytes, BytesMut};

use crate::config::Limits;

/// Longest key memcached accepts (`KEY_MAX_LENGTH`).
pub const KEY_MAX_LEN: usize = 250;
/// A command line without newline may grow this far (memcached's read check) unless it is a
/// `get`/`gets`, which may grow to `max_request_size`.
pub const LINE_MAX_WITHOUT_NEWLINE: usize = 2048;
/// memcached tokenizes at most 24 tokens (`MAX_TOKENS`, including the terminal one); more only
/// matters for counting, so the first 24 are kept.
const MAX_TOKENS: usize = 24;
/// Meta commands refuse 20 or more tokens (memcached: `ntokens > MFLAG_MAX_OPT_LENGTH` where
/// `ntokens` also counts its terminal token).
const META_MAX_TOKENS: usize = 20;
/// Longest opaque token, including its `O` (`MFLAG_MAX_OPAQUE_LENGTH`).
const OPAQUE_MAX_LEN: usize = 32;
/// Largest data length memcached parses (`INT_MAX - 2`).
const DATA_LEN_MAX: i64 = i32::MAX as i64 - 2;
/// Room for a decoded base64 key: a 250-byte token decodes to at most 189 bytes.
const B64_DECODED_MAX: usize = 192;
/// Most flags a meta command can carry (19 tokens minus command and key).
const META_FLAGS_MAX: usize = META_MAX_TOKENS - 3;

/// Framing is lost: the connection must close after the replies so far.
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
    /// The keys in request order (never empty slices; validated by the decoder).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        split_keys(&self.0)
    }
}

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

    fn decode_store(
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

    fn decode_meta_set(
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
fn decode_line(cmd: Cmd, mut line: BytesMut, t: &Tokens) -> Request {
    let nt = t.count;
    match cmd {
        Cmd::Get(get) => decode_get(get, line, t),
        Cmd::Delete => {
            if !(2..=4).contains(&nt) {
                return Request::reject(Reject::Error);
            }
            let mut noreply = false;
            if nt > 2 {
                let hold_is_zero = t.get(&line, 2) == b"0";
                noreply = t.get(&line, nt - 1) == b"noreply";
                let valid =
                    (nt == 3 && (hold_is_zero || noreply)) || (nt == 4 && hold_is_zero && noreply);
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
        Cmd::Incr | Cmd::Decr => {
            if !(3..=4).contains(&nt) {
                return Request::reject(Reject::Error);
            }
            let noreply = t.get(&line, nt - 1) == b"noreply";
            let delta = parse_u64(t.get(&line, 2));
            let Some(key) = key_of(line, t) else {
                return Request::Reject {
                    error: Reject::BadFormat,
                    noreply,
                };
            };
            match delta {
                Some(delta) => Request::Arith {
                    incr: cmd == Cmd::Incr,
                    key,
                    delta,
                    noreply,
                },
                None => Request::Reject {
                    error: Reject::InvalidDelta,
                    noreply,
                },
            }
        }
        Cmd::Touch => {
            if !(3..=4).contains(&nt) {
                return Request::reject(Reject::Error);
            }
            let noreply = t.get(&line, nt - 1) == b"noreply";
            let exptime = parse_i64(t.get(&line, 2));
            let Some(key) = key_of(line, t) else {
                return Request::Reject {
                    error: Reject::BadFormat,
                    noreply,
                };
            };
            match exptime {
                Some(exptime) => Request::Touch {
                    key,
                    exptime,
                    noreply,
                },
                None => Request::Reject {
                    error: Reject::InvalidExptime,
                    noreply,
                },
            }
        }
        Cmd::FlushAll => {
            if !(1..=3).contains(&nt) {
                return Request::reject(Reject::Error);
            }
            let noreply = nt > 1 && t.get(&line, nt - 1) == b"noreply";
            let delay = if nt == if noreply { 2 } else { 1 } {
                Some(0)
            } else {
                parse_i64(t.get(&line, 1))
            };
            match delay {
                Some(delay) => Request::FlushAll { delay, noreply },
                None => Request::Reject {
                    error: Reject::InvalidExptime,
                    noreply,
                },
            }
        }
        Cmd::Version => Request::Version,
        Cmd::Verbosity => {
            if !(2..=3).contains(&nt) {
                return Request::reject(Reject::Error);
            }
            let noreply = t.get(&line, nt - 1) == b"noreply";
            match parse_u32(t.get(&line, 1)) {
                Some(_) => Request::Verbosity { noreply },
                None => Request::Reject {
                    error: Reject::BadFormat,
                    noreply,
                },
            }
        }
        Cmd::Stats => match t.get(&line, 1) {
            b"" => Request::Stats(StatsGroup::General),
            b"settings" => Request::Stats(StatsGroup::Settings),
            _ => Request::reject(Reject::Error),
        },
        Cmd::Quit => Request::Quit,
        Cmd::MetaNoop => Request::MetaNoop,
        Cmd::MetaGet | Cmd::MetaDelete | Cmd::MetaArith => decode_meta(cmd, line, t),
        Cmd::MetaDebug => {
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
        Cmd::Store(_) | Cmd::MetaSet | Cmd::Unknown => Request::reject(Reject::Error),
    }
}

/// The key token of a classic command if it is valid.
fn key_of(line: BytesMut, t: &Tokens) -> Option<Bytes> {
    let key = t.span(1);
    valid_key(key.of(&line)).then(|| line.freeze().slice(key.range()))
}

fn decode_get(cmd: GetCmd, line: BytesMut, t: &Tokens) -> Request {
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

/// mg / md / ma.
fn decode_meta(cmd: Cmd, mut line: BytesMut, t: &Tokens) -> Request {
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
fn decode_key_in_place(buf: &mut BytesMut, key: Span) -> Option<Span> {
    let mut tmp = [0u8; B64_DECODED_MAX];
    let n = STANDARD.decode_slice(key.of(buf), &mut tmp).ok()?;
    if n == 0 {
        return None;
    }
    let start = key.start();
    buf[start..start + n].copy_from_slice(&tmp[..n]);
    Some(Span::new(start, start + n))
}

fn split_keys(list: &[u8]) -> impl Iterator<Item = &[u8]> {
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
fn valid_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= KEY_MAX_LEN && key.iter().all(|&b| b > b' ' && b != 0x7f)
}

/// `strtoull` as memcached's `safe_strtoull` uses it: optional `+`, decimal digits, no overflow.
fn parse_u64(tok: &[u8]) -> Option<u64> {
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

fn parse_u32(tok: &[u8]) -> Option<u32> {
    parse_u64(tok).and_then(|v| u32::try_from(v).ok())
}

/// `strtol`: optional sign, decimal digits, must fit an i64.
fn parse_i64(tok: &[u8]) -> Option<i64> {
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
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The span `start..end` of a line (lines are shorter than `max_request_size`, at most
    /// 1 GiB, so offsets fit in u32).
    fn new(start: usize, end: usize) -> Span {
        debug_assert!(end <= u32::MAX as usize);
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    fn start(self) -> usize {
        self.start as usize
    }

    fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    fn range(self) -> std::ops::Range<usize> {
        self.start()..self.end as usize
    }

    fn of(self, line: &[u8]) -> &[u8] {
        &line[self.range()]
    }
}

/// The space-separated tokens of a line: the first [`MAX_TOKENS`] spans and the total count.
struct Tokens {
    spans: [Span; MAX_TOKENS],
    stored: usize,
    count: usize,
}

impl Tokens {
    fn new(line: &[u8]) -> Tokens {
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
    fn span(&self, i: usize) -> Span {
        if i < self.stored {
            self.spans[i]
        } else {
            Span::default()
        }
    }

    /// Bytes of token `i` (empty if absent).
    fn get<'a>(&self, line: &'a [u8], i: usize) -> &'a [u8] {
        self.span(i).of(line)
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

    fn limits() -> Limits {
        Limits::default()
    }

    fn decode_all(bytes: &[u8]) -> (Vec<Request>, BytesMut) {
        let mut input = BytesMut::from(bytes);
        let mut decoder = Decoder::new();
        let mut requests = Vec::new();
        while let Some(request) = decoder.decode(&mut input, &limits()).expect("framing") {
            requests.push(request);
        }
        (requests, input)
    }

    fn one(bytes: &[u8]) -> Request {
        let (mut requests, rest) = decode_all(bytes);
        assert_eq!(requests.len(), 1, "{requests:?}");
        assert!(rest.is_empty(), "left {rest:?}");
        requests.remove(0)
    }

    fn rejected(bytes: &[u8]) -> Reject {
        match one(bytes) {
            Request::Reject { error, .. } => error,
            other => panic!("expected a reject, got {other:?}"),
        }
    }

    fn b(s: &'static str) -> Bytes {
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
        assert_eq!(
            one(b"me bTI= b\r\n"),
            Request::MetaDebug {
                key: b("m2"),
                base64: true
            }
        );
    }

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
        // ms knows the length after token 2: later errors swallow the block.
        let (requests, rest) = decode_all(b"ms k 1 Z\r\nx\r\nmn\r\n");
        assert_eq!(
            requests,
            [Request::reject(Reject::InvalidFlag), Request::MetaNoop]
        );
        assert!(rest.is_empty());
        assert_eq!(rejected(b"set k 4294967296 0 1\r\n"), Reject::BadFormat);
        assert_eq!(rejected(b"set k 0 0 2147483646\r\n"), Reject::BadFormat);
    }

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
