//! memcached text-protocol authentication (memcached 1.6 `-Y authfile`) and command
//! categories for named users.
//!
//! Owns: the login exchange of a connection that has not authenticated yet and the
//! request → [`Category`] mapping. Must not touch: the regular decoder, the store.
//! Invariants (memcached 1.6.18, `try_read_command_asciiauth`): until login, the only request
//! understood is `set <key> <flags> <exptime> <bytes>\r\n<user> <password>\r\n` (key, flags and
//! exptime ignored) answered `STORED` or `CLIENT_ERROR authentication failure`; any other line
//! gets `CLIENT_ERROR unauthenticated` and the connection stays open; a line longer than 2048
//! bytes without newline closes it. Our own bound: a token longer than [`TOKEN_MAX`] closes the
//! connection (memcached would buffer it whole).

use bytes::{Buf, BytesMut};

use super::encode::{self, AuthReply};
use super::parse::{GetCmd, LINE_MAX_WITHOUT_NEWLINE, Request};
use crate::auth::{Access, Category};
use crate::proto::Flow;
use crate::server::{Shared, Stats};

/// The longest `user password` token accepted.
pub const TOKEN_MAX: usize = 4096;

/// Handles the requests at the start of `input` while `access` is not authenticated. Returns
/// `Some(flow)` when the session must stop here (incomplete input: `Continue`; a violation:
/// `Close`), None once logged in with input left for the regular decoder.
pub fn login(
    input: &mut BytesMut,
    out: &mut BytesMut,
    shared: &Shared,
    access: &mut Access,
) -> Option<Flow> {
    while !access.authenticated {
        let Some(nl) = input.iter().position(|&b| b == b'\n') else {
            if input.len() > LINE_MAX_WITHOUT_NEWLINE {
                return Some(Flow::Close);
            }
            return Some(Flow::Continue);
        };
        let line = input[..nl].strip_suffix(b"\r").unwrap_or(&input[..nl]);
        let tokens: Vec<&[u8]> = line
            .split(|&b| b == b' ')
            .filter(|t| !t.is_empty())
            .collect();
        let size = tokens
            .get(4)
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(|t| t.parse::<usize>().ok());
        let (true, Some(size)) = (tokens.first() == Some(&&b"set"[..]), size) else {
            input.advance(nl + 1);
            encode::auth(out, AuthReply::Unauthenticated);
            continue;
        };
        if size > TOKEN_MAX {
            encode::auth(out, AuthReply::Failure);
            return Some(Flow::Close);
        }
        let end = nl + 1 + size + 2;
        if input.len() < end {
            return Some(Flow::Continue);
        }
        let block = input.split_to(end);
        let data = &block[nl + 1..];
        if !data.ends_with(b"\r\n") {
            encode::auth(out, AuthReply::BadTermination);
            continue;
        }
        let mut words = data[..size].split(|&b| b == b' ').filter(|t| !t.is_empty());
        let (Some(user), Some(password)) = (words.next(), words.next()) else {
            encode::auth(out, AuthReply::BadFormat);
            continue;
        };
        match shared.auth.load().login(Some(user), password) {
            Some(granted) => {
                Stats::add(&shared.stats.auth_ok, 1);
                *access = granted;
                encode::auth(out, AuthReply::Stored);
            }
            None => {
                Stats::add(&shared.stats.auth_errors, 1);
                encode::auth(out, AuthReply::Failure);
            }
        }
    }
    None
}

/// The category a request needs, or None for requests anyone logged in may send (version,
/// stats, quit, mn, malformed requests).
pub fn category(request: &Request) -> Option<Category> {
    match request {
        Request::Get {
            cmd: GetCmd::Get | GetCmd::Gets,
            ..
        }
        | Request::MetaGet { .. }
        | Request::MetaDebug { .. } => Some(Category::Read),
        Request::Get { .. }
        | Request::Store { .. }
        | Request::TooLarge { .. }
        | Request::Delete { .. }
        | Request::Arith { .. }
        | Request::Touch { .. }
        | Request::MetaSet { .. }
        | Request::MetaDelete { .. }
        | Request::MetaArith { .. } => Some(Category::Write),
        Request::FlushAll { .. } | Request::Verbosity { .. } => Some(Category::Admin),
        Request::Version
        | Request::Stats(_)
        | Request::Quit
        | Request::MetaNoop
        | Request::Reject { .. } => None,
    }
}
