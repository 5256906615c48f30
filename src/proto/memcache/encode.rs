//! Wire text of every memcached reply: status lines, items, meta responses, stats, errors.
//!
//! Owns: the exact bytes sent to clients (memcached 1.6.18 wording, checked byte for byte
//! against a real server; see `tests/memcache_raw.rs`).
//! Must not touch: the store, parsing, stats counters; callers decide *what* to answer.
//! Invariants: every line ends in `\r\n`; numbers are formatted on the stack (`itoa`); nothing
//! allocates except the growth of `out`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, BytesMut};

use super::parse::{ProtoError, Reject};

/// What `version` answers. memcached clients parse `major.minor.patch` and some gate features
/// (meta commands) on it, so it leads with the memcached version whose protocol we speak.
pub const VERSION: &str = concat!("1.6.18-ringcache-", env!("CARGO_PKG_VERSION"));

/// A fixed status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `STORED`
    Stored,
    /// `NOT_STORED`
    NotStored,
    /// `EXISTS`
    Exists,
    /// `NOT_FOUND`
    NotFound,
    /// `DELETED`
    Deleted,
    /// `TOUCHED`
    Touched,
    /// `OK`
    Ok,
    /// `END`
    End,
    /// `MN` (meta no-op)
    MetaNoop,
    /// `EN` (meta miss)
    MetaMiss,
    /// `SERVER_ERROR object too large for cache`
    TooLarge,
    /// `SERVER_ERROR out of memory storing object`
    OutOfMemoryStoring,
    /// `SERVER_ERROR out of memory` (incr/decr, ma)
    OutOfMemory,
    /// `SERVER_ERROR out of memory writing get response` (the reply would be too large)
    GetTooLarge,
    /// `CLIENT_ERROR cannot increment or decrement non-numeric value`
    NonNumeric,
}

/// Writes a fixed status line.
pub fn reply(out: &mut BytesMut, reply: Reply) {
    out.extend_from_slice(match reply {
        Reply::Stored => b"STORED\r\n".as_slice(),
        Reply::NotStored => b"NOT_STORED\r\n",
        Reply::Exists => b"EXISTS\r\n",
        Reply::NotFound => b"NOT_FOUND\r\n",
        Reply::Deleted => b"DELETED\r\n",
        Reply::Touched => b"TOUCHED\r\n",
        Reply::Ok => b"OK\r\n",
        Reply::End => b"END\r\n",
        Reply::MetaNoop => b"MN\r\n",
        Reply::MetaMiss => b"EN\r\n",
        Reply::TooLarge => b"SERVER_ERROR object too large for cache\r\n",
        Reply::OutOfMemoryStoring => b"SERVER_ERROR out of memory storing object\r\n",
        Reply::OutOfMemory => b"SERVER_ERROR out of memory\r\n",
        Reply::GetTooLarge => b"SERVER_ERROR out of memory writing get response\r\n",
        Reply::NonNumeric => b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    });
}

/// Replies of the login exchange (memcached 1.6 text auth) and of a refused category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthReply {
    /// `STORED`: logged in.
    Stored,
    /// `CLIENT_ERROR unauthenticated`: anything but the auth `set` before login.
    Unauthenticated,
    /// `CLIENT_ERROR authentication failure`
    Failure,
    /// `CLIENT_ERROR bad authentication token format` (not `user password`)
    BadFormat,
    /// `CLIENT_ERROR bad command line termination` (token block not ended by CRLF)
    BadTermination,
    /// `CLIENT_ERROR permission denied`: a named user ran a command outside its categories
    /// (ours; memcached has no per-user permissions).
    Denied,
}

/// Writes a login or permission reply.
pub fn auth(out: &mut BytesMut, reply: AuthReply) {
    out.extend_from_slice(match reply {
        AuthReply::Stored => b"STORED\r\n".as_slice(),
        AuthReply::Unauthenticated => b"CLIENT_ERROR unauthenticated\r\n",
        AuthReply::Failure => b"CLIENT_ERROR authentication failure\r\n",
        AuthReply::BadFormat => b"CLIENT_ERROR bad authentication token format\r\n",
        AuthReply::BadTermination => b"CLIENT_ERROR bad command line termination\r\n",
        AuthReply::Denied => b"CLIENT_ERROR permission denied\r\n",
    });
}

/// Writes the error line for a malformed request.
pub fn reject(out: &mut BytesMut, reject: Reject) {
    out.extend_from_slice(match reject {
        Reject::Error => b"ERROR\r\n".as_slice(),
        Reject::BadFormat => b"CLIENT_ERROR bad command line format\r\n",
        Reject::DeleteUsage => {
            b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
        }
        Reject::BadDataChunk => b"CLIENT_ERROR bad data chunk\r\n",
        Reject::InvalidExptime => b"CLIENT_ERROR invalid exptime argument\r\n",
        Reject::InvalidDelta => b"CLIENT_ERROR invalid numeric delta argument\r\n",
        Reject::BadToken => b"CLIENT_ERROR bad token in command line format\r\n",
        Reject::DuplicateFlag => b"CLIENT_ERROR duplicate flag\r\n",
        Reject::InvalidFlag => b"CLIENT_ERROR invalid flag\r\n",
        Reject::InvalidOrDuplicateFlag => b"CLIENT_ERROR invalid or duplicate flag\r\n",
        Reject::KeyDecode => b"CLIENT_ERROR error decoding key\r\n",
        Reject::ModeLength => b"CLIENT_ERROR incorrect length for M token\r\n",
        Reject::SetMode => b"CLIENT_ERROR invalid mode for ms M token\r\n",
        Reject::ArithMode => b"CLIENT_ERROR invalid mode for ma M token\r\n",
        Reject::InvalidInitial => b"CLIENT_ERROR invalid numeric initial value\r\n",
        Reject::InvalidDeltaValue => b"CLIENT_ERROR invalid numeric delta value\r\n",
        Reject::OpaqueTooLong => b"CLIENT_ERROR opaque token too long\r\n",
        Reject::GetFlagsTooLong => b"CLIENT_ERROR options flags are too long\r\n",
        Reject::FlagsTooLong => b"CLIENT_ERROR options flags too long\r\n",
    });
}

/// `SERVER_ERROR <text>` (ringcache's own reasons, e.g. a remote member that failed).
pub fn server_error(out: &mut BytesMut, text: &str) {
    out.extend_from_slice(b"SERVER_ERROR ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes what is sent before closing on lost framing. memcached closes silently on a long
/// line without newline; past `max_request_size` (our own bound) the client gets a reason.
pub fn fatal(out: &mut BytesMut, error: ProtoError) {
    match error {
        ProtoError::LineTooLong => {}
        ProtoError::RequestTooLarge => out.extend_from_slice(b"CLIENT_ERROR line too long\r\n"),
    }
}

fn put_u64(out: &mut BytesMut, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn put_i64(out: &mut BytesMut, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n`
pub fn value(out: &mut BytesMut, key: &[u8], flags: u32, data: &[u8], cas: Option<u64>) {
    out.reserve(key.len() + data.len() + 64);
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.put_u8(b' ');
    put_u64(out, u64::from(flags));
    out.put_u8(b' ');
    put_u64(out, data.len() as u64);
    if let Some(cas) = cas {
        out.put_u8(b' ');
        put_u64(out, cas);
    }
    out.extend_from_slice(b"\r\n");
    data_block(out, data);
}

/// A number on its own line (incr/decr result).
pub fn number(out: &mut BytesMut, n: u64) {
    put_u64(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Whether a reply is one of the protocol's error lines.
pub fn is_error(reply: &[u8]) -> bool {
    reply.starts_with(b"ERROR")
        || reply.starts_with(b"CLIENT_ERROR")
        || reply.starts_with(b"SERVER_ERROR")
}

/// `VERSION <version>`
pub fn version(out: &mut BytesMut) {
    out.extend_from_slice(b"VERSION ");
    out.extend_from_slice(VERSION.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A data block: the bytes and `\r\n`.
pub fn data_block(out: &mut BytesMut, data: &[u8]) {
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// A meta status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCode {
    /// `HD`: success without value.
    Done,
    /// `NS`: not stored.
    NotStored,
    /// `EX`: CAS mismatch.
    Exists,
    /// `NF`: not found.
    NotFound,
    /// `EN`: miss (mg).
    Miss,
}

/// Starts a meta response line with its status code (no line end).
pub fn meta_code(out: &mut BytesMut, code: MetaCode) {
    out.extend_from_slice(match code {
        MetaCode::Done => b"HD".as_slice(),
        MetaCode::NotStored => b"NS",
        MetaCode::Exists => b"EX",
        MetaCode::NotFound => b"NF",
        MetaCode::Miss => b"EN",
    });
}

/// Starts a meta value response line: `VA <len>` (no line end).
pub fn meta_value(out: &mut BytesMut, len: usize) {
    out.extend_from_slice(b"VA ");
    put_u64(out, len as u64);
}

/// ` <flag><n>`, e.g. ` c42`, ` s5`.
pub fn meta_num(out: &mut BytesMut, flag: u8, n: u64) {
    out.put_u8(b' ');
    out.put_u8(flag);
    put_u64(out, n);
}

/// ` t<ttl>` where -1 means no expiry.
pub fn meta_ttl(out: &mut BytesMut, ttl: i64) {
    out.extend_from_slice(b" t");
    put_i64(out, ttl);
}

/// ` <flag>` alone, e.g. ` W`.
pub fn meta_flag(out: &mut BytesMut, flag: u8) {
    out.put_u8(b' ');
    out.put_u8(flag);
}

/// The opaque token echoed back (` O<token>`); nothing if absent.
pub fn meta_opaque(out: &mut BytesMut, opaque: &[u8]) {
    if !opaque.is_empty() {
        out.put_u8(b' ');
        out.extend_from_slice(opaque);
    }
}

/// ` k<key>`, base64-encoded and followed by ` b` when the request used `b`.
pub fn meta_key(out: &mut BytesMut, key: &[u8], base64: bool) {
    out.extend_from_slice(b" k");
    put_key(out, key, base64);
    if base64 {
        out.extend_from_slice(b" b");
    }
}

fn put_key(out: &mut BytesMut, key: &[u8], base64: bool) {
    if !base64 {
        out.extend_from_slice(key);
        return;
    }
    // Binary keys are at most 189 bytes (decoded from a 250-byte token): 252 encoded.
    let mut buf = [0u8; 344];
    if let Ok(n) = STANDARD.encode_slice(key, &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
}

/// Ends a line.
pub fn crlf(out: &mut BytesMut) {
    out.extend_from_slice(b"\r\n");
}

/// Item metadata shown by `me`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debug {
    /// Seconds until expiry, -1 for none.
    pub exp: i64,
    /// Seconds since last access.
    pub la: u64,
    /// CAS.
    pub cas: u64,
    /// Fetched since stored.
    pub fetched: bool,
    /// Approximate item size in bytes.
    pub size: u64,
}

/// `ME <key> exp=.. la=.. cas=.. fetch=yes|no cls=1 size=..`
pub fn meta_debug(out: &mut BytesMut, key: &[u8], base64: bool, d: Debug) {
    out.extend_from_slice(b"ME ");
    put_key(out, key, base64);
    out.extend_from_slice(b" exp=");
    put_i64(out, d.exp);
    out.extend_from_slice(b" la=");
    put_u64(out, d.la);
    out.extend_from_slice(b" cas=");
    put_u64(out, d.cas);
    out.extend_from_slice(if d.fetched {
        b" fetch=yes".as_slice()
    } else {
        b" fetch=no"
    });
    out.extend_from_slice(b" cls=1 size=");
    put_u64(out, d.size);
    out.extend_from_slice(b"\r\n");
}

/// `STAT <name> <n>`
pub fn stat(out: &mut BytesMut, name: &str, n: u64) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name.as_bytes());
    out.put_u8(b' ');
    put_u64(out, n);
    out.extend_from_slice(b"\r\n");
}

/// `STAT <name> <text>`
pub fn stat_str(out: &mut BytesMut, name: &str, text: &str) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name.as_bytes());
    out.put_u8(b' ');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut out = BytesMut::new();
        f(&mut out);
        out.to_vec()
    }

    #[test]
    fn value_lines() {
        assert_eq!(
            bytes(|o| value(o, b"k", 5, b"ab", None)),
            b"VALUE k 5 2\r\nab\r\n"
        );
        assert_eq!(
            bytes(|o| value(o, b"k", u32::MAX, b"", Some(u64::MAX))),
            b"VALUE k 4294967295 0 18446744073709551615\r\n\r\n".as_slice()
        );
    }

    #[test]
    fn meta_pieces() {
        let line = bytes(|o| {
            meta_value(o, 2);
            meta_num(o, b's', 2);
            meta_ttl(o, -1);
            meta_opaque(o, b"O123");
            meta_opaque(o, b"");
            meta_key(o, b"m2", true);
            meta_flag(o, b'W');
            crlf(o);
        });
        assert_eq!(line, b"VA 2 s2 t-1 O123 kbTI= b W\r\n");
    }

    #[test]
    fn errors_are_exact() {
        assert_eq!(bytes(|o| reject(o, Reject::Error)), b"ERROR\r\n");
        assert_eq!(
            bytes(|o| reject(o, Reject::DeleteUsage)),
            b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n".as_slice()
        );
        assert_eq!(bytes(|o| fatal(o, ProtoError::LineTooLong)), b"");
    }

    #[test]
    fn debug_line() {
        let d = Debug {
            exp: -1,
            la: 0,
            cas: 89,
            fetched: false,
            size: 64,
        };
        assert_eq!(
            bytes(|o| meta_debug(o, b"m17", false, d)),
            b"ME m17 exp=-1 la=0 cas=89 fetch=no cls=1 size=64\r\n".as_slice()
        );
    }
}
