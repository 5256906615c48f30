//! memcached requests whose keys remote members own: re-encoded from the decoded request and
//! sent to the owner; a multi-key get is split into one `get` per memcached member (its keys in
//! request order; one request per key for a Redis member) and answered in key order with the
//! local hits.
//!
//! Owns: which requests leave the process, their wire form for the member, and how `noreply`
//! and meta quiet mode are kept (the member is always asked for a reply, so that replies stay
//! matched to requests on the shared connection; the client's settings drop it here).
//! Must not touch: the link to the member, the local handler's semantics.
//!
//! `flush_all` reaches every member after the local nodes.
//!
//! A key owned by a Redis member takes the string subset, translated: get/gets (GET; CAS 0),
//! gat/gats (GETEX), set/add/replace (SET, NX, XX, EXAT; flags must be 0), delete (DEL),
//! incr/decr (a script with memcached's rules: NOT_FOUND when missing, decr stops at 0), touch
//! (EXPIREAT). append, prepend, cas and meta commands get `SERVER_ERROR` naming the protocol.
//!
//! A failed member answers `SERVER_ERROR node ...` for a one-key request, and a miss for its
//! keys in a multi-key get (as mcrouter does).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};

use super::encode;
use super::handler::{self, Handled};
use super::parse::{GetCmd, Keys, MetaFlags, Request, StoreCmd};
use crate::config::Limits;
use crate::proto::Flow;
use crate::proto::forward::{Combine, Forwarded, GetKey, Part, Slot};
use crate::proto::translate::Map;
use crate::route::remote::{Expect, Member, Protocol, encode_command};
use crate::route::topology::Topology;
use crate::server::Shared;

/// Answers `request` here when a remote member owns its key(s) (forwarded or refused); None
/// when every key is local.
pub fn route(
    request: &Request,
    shared: &Shared,
    limits: &Limits,
    session: u64,
    forwarded: &mut Forwarded,
    out: &mut BytesMut,
) -> Option<Handled> {
    let topology = shared.topology.load();
    if !topology.has_remote() {
        return None;
    }
    let handled = Handled {
        flow: Flow::Continue,
        error: false,
    };
    if let Request::FlushAll { delay, noreply } = request {
        flush_all(
            *delay, *noreply, shared, limits, &topology, session, forwarded, out,
        );
        return Some(handled);
    }
    if let Request::Get { cmd, exptime, keys } = request {
        let owners: Vec<Option<&Arc<Member>>> =
            keys.iter().map(|k| topology.remote_for(k)).collect();
        if owners.iter().all(Option::is_none) {
            return None;
        }
        let now = shared.clock.now_ms() / 1000;
        let get = |m: &Member, key: &[u8]| match m.protocol {
            Protocol::Memcache => (get_request(*cmd, *exptime, key), Expect::Values, Map::Same),
            Protocol::Resp => (
                resp_get(*cmd, *exptime, key, now),
                Expect::Resp,
                Map::RespValue {
                    key: Bytes::copy_from_slice(key),
                    cas: cmd.with_cas(),
                },
            ),
        };
        if owners.len() == 1 {
            let m = owners[0].expect("a remote owner");
            let (req, expect, map) = get(m, keys.iter().next().unwrap_or_default());
            send(
                forwarded,
                out,
                session,
                m,
                (req, expect, map),
                Combine::Memcache,
            );
            return Some(handled);
        }
        // One `get` per memcached member with its keys in request order, one request per key
        // for a Redis member; the replies' blocks are put back in key order at the end.
        let mut requests: Vec<(&Arc<Member>, BytesMut, Expect, Map)> = Vec::new();
        let mut order = Vec::with_capacity(owners.len());
        for (key, owner) in keys.iter().zip(&owners) {
            match owner {
                Some(m) if m.protocol == Protocol::Memcache => {
                    let i = match requests.iter().position(|(r, ..)| Arc::ptr_eq(r, m)) {
                        Some(i) => i,
                        None => {
                            let mut line = get_request(*cmd, *exptime, key);
                            line.truncate(line.len() - 2 - key.len());
                            requests.push((m, line, Expect::Values, Map::Same));
                            requests.len() - 1
                        }
                    };
                    let line = &mut requests[i].1;
                    if line.last() != Some(&b' ') {
                        line.extend_from_slice(b" ");
                    }
                    line.extend_from_slice(key);
                    order.push(GetKey::Member(i, Bytes::copy_from_slice(key)));
                }
                Some(m) => {
                    let (req, expect, map) = get(m, key);
                    requests.push((m, req, expect, map));
                    order.push(GetKey::Member(
                        requests.len() - 1,
                        Bytes::copy_from_slice(key),
                    ));
                }
                None => {
                    let mut one = BytesMut::new();
                    let single = Request::Get {
                        cmd: *cmd,
                        exptime: *exptime,
                        keys: Keys::single(key),
                    };
                    handler::handle(single, shared, limits, &mut one);
                    let block = one.strip_suffix(b"END\r\n").unwrap_or(&one);
                    order.push(GetKey::Local(Bytes::copy_from_slice(block)));
                }
            }
        }
        let parts = requests
            .into_iter()
            .map(|(m, mut request, expect, map)| {
                if expect == Expect::Values {
                    request.extend_from_slice(b"\r\n");
                }
                Part {
                    member: Arc::clone(m),
                    reply: m.forward(session, request.freeze(), expect),
                    map,
                }
            })
            .collect();
        forwarded.push(Slot {
            at: out.len(),
            parts,
            combine: Combine::MemcacheGet(order),
        });
        return Some(handled);
    }
    let key = key_of(request)?;
    let m = topology.remote_for(key)?;
    if m.protocol == Protocol::Resp {
        let now = shared.clock.now_ms() / 1000;
        match to_resp(request, now) {
            Ok((req, map)) => {
                let combine = if request.noreply() {
                    Combine::Discard
                } else {
                    Combine::Memcache
                };
                send(
                    forwarded,
                    out,
                    session,
                    m,
                    (req, Expect::Resp, map),
                    combine,
                );
            }
            Err(why) if !request.noreply() => {
                encode::server_error(out, &format!("node {} speaks resp: {why}", m.name()));
            }
            Err(_) => {}
        }
        return Some(handled);
    }
    let (req, expect, combine) = encode_request(request);
    send(
        forwarded,
        out,
        session,
        m,
        (req, expect, Map::Same),
        combine,
    );
    Some(handled)
}

/// The Redis form of `get`/`gets` (GET) and `gat`/`gats` (GETEX) of `key`.
fn resp_get(cmd: GetCmd, exptime: i64, key: &[u8], now: u64) -> BytesMut {
    let mut r = BytesMut::new();
    if !cmd.touches() {
        encode_command(&mut r, &[b"GET", key]);
        return r;
    }
    match resp_expiry(exptime, now) {
        Expiry::Never => encode_command(&mut r, &[b"GETEX", key, b"PERSIST"]),
        Expiry::At(at) => encode_command(&mut r, &[b"GETEX", key, b"EXAT", at.as_bytes()]),
        Expiry::Gone => encode_command(&mut r, &[b"GETDEL", key]),
    }
    r
}

/// A memcached exptime in Redis's terms.
enum Expiry {
    Never,
    /// Unix seconds, as text.
    At(String),
    /// Negative: already expired.
    Gone,
}

fn resp_expiry(exptime: i64, now: u64) -> Expiry {
    match exptime {
        0 => Expiry::Never,
        e if e < 0 => Expiry::Gone,
        e if e <= 30 * 24 * 3600 => Expiry::At((now as i64 + e).to_string()),
        e => Expiry::At(e.to_string()),
    }
}

/// Redis does not go below zero on memcached's terms: decr stops at 0, and a missing key is
/// NOT_FOUND (not created).
const INCR_SCRIPT: &[u8] = b"if not redis.call('get', KEYS[1]) then return false end \
return redis.call('incrby', KEYS[1], ARGV[1])";
const DECR_SCRIPT: &[u8] = b"local v = redis.call('get', KEYS[1]) \
if not v then return false end \
local n = tonumber(v) \
if not n or n ~= math.floor(n) or n < 0 then return redis.error_reply('ERR value is not an integer or out of range') end \
n = n - tonumber(ARGV[1]) if n < 0 then n = 0 end \
redis.call('set', KEYS[1], n, 'KEEPTTL') return n";
const TOUCH_SCRIPT: &[u8] = b"if redis.call('exists', KEYS[1]) == 0 then return 0 end \
redis.call('persist', KEYS[1]) return 1";

/// The Redis request for a one-key memcached request on a Redis member, and how its reply
/// reads; Err says why it is not translated.
fn to_resp(request: &Request, now: u64) -> Result<(BytesMut, Map), &'static str> {
    let mut r = BytesMut::new();
    let map = match request {
        Request::Store {
            cmd,
            key,
            flags,
            exptime,
            data,
            ..
        } => {
            if *flags != 0 {
                return Err("only flags 0 can be stored");
            }
            let mut args: Vec<&[u8]> = vec![b"SET", key, data];
            match cmd {
                StoreCmd::Set => {}
                StoreCmd::Add => args.push(b"NX"),
                StoreCmd::Replace => args.push(b"XX"),
                _ => return Err("append, prepend and cas are not translated"),
            }
            let at;
            match resp_expiry(*exptime, now) {
                Expiry::Never => {}
                Expiry::At(t) => {
                    at = t;
                    args.extend([&b"EXAT"[..], at.as_bytes()]);
                }
                Expiry::Gone => args.extend([&b"EXAT"[..], b"1"]),
            }
            encode_command(&mut r, &args);
            Map::RespStored
        }
        Request::Delete { key, .. } => {
            encode_command(&mut r, &[b"DEL", key]);
            Map::RespDeleted
        }
        Request::Arith {
            incr, key, delta, ..
        } => {
            let script = if *incr { INCR_SCRIPT } else { DECR_SCRIPT };
            let delta = delta.to_string();
            encode_command(&mut r, &[b"EVAL", script, b"1", key, delta.as_bytes()]);
            Map::RespNumber
        }
        Request::Touch { key, exptime, .. } => {
            match resp_expiry(*exptime, now) {
                Expiry::Never => encode_command(&mut r, &[b"EVAL", TOUCH_SCRIPT, b"1", key]),
                Expiry::At(at) => encode_command(&mut r, &[b"EXPIREAT", key, at.as_bytes()]),
                Expiry::Gone => encode_command(&mut r, &[b"EXPIREAT", key, b"1"]),
            }
            Map::RespTouched
        }
        _ => return Err("meta commands are not translated"),
    };
    Ok((r, map))
}

/// flush_all: the local nodes, then every member (a Redis member as FLUSHALL, only without a
/// delay, which Redis cannot do).
#[allow(clippy::too_many_arguments)]
fn flush_all(
    delay: i64,
    noreply: bool,
    shared: &Shared,
    limits: &Limits,
    topology: &Topology,
    session: u64,
    forwarded: &mut Forwarded,
    out: &mut BytesMut,
) {
    let mut reply = BytesMut::new();
    let local = Request::FlushAll {
        delay,
        noreply: false,
    };
    handler::handle(local, shared, limits, &mut reply);
    let mut parts = Vec::new();
    for m in topology.remotes() {
        let (request, expect) = match m.protocol {
            Protocol::Memcache if delay > 0 => (format!("flush_all {delay}\r\n"), Expect::Line),
            Protocol::Memcache => ("flush_all\r\n".to_string(), Expect::Line),
            Protocol::Resp if delay > 0 => continue,
            Protocol::Resp => ("*1\r\n$8\r\nFLUSHALL\r\n".to_string(), Expect::Resp),
        };
        parts.push(Part::same(
            m,
            m.forward(session, Bytes::from(request), expect),
        ));
    }
    let combine = if noreply {
        Combine::Discard
    } else {
        Combine::Flushed { resp: false }
    };
    forwarded.push(Slot {
        at: out.len(),
        parts,
        combine,
    });
}

fn send(
    forwarded: &mut Forwarded,
    out: &BytesMut,
    session: u64,
    m: &Arc<Member>,
    (request, expect, map): (BytesMut, Expect, Map),
    combine: Combine,
) {
    forwarded.push(Slot {
        at: out.len(),
        parts: vec![Part {
            member: Arc::clone(m),
            reply: m.forward(session, request.freeze(), expect),
            map,
        }],
        combine,
    });
}

/// The key of a one-key request; None for requests without one (answered locally).
fn key_of(request: &Request) -> Option<&[u8]> {
    match request {
        Request::Store { key, .. }
        | Request::Delete { key, .. }
        | Request::Arith { key, .. }
        | Request::Touch { key, .. }
        | Request::MetaGet { key, .. }
        | Request::MetaSet { key, .. }
        | Request::MetaDelete { key, .. }
        | Request::MetaArith { key, .. }
        | Request::MetaDebug { key, .. } => Some(key),
        _ => None,
    }
}

fn get_request(cmd: GetCmd, exptime: i64, key: &[u8]) -> BytesMut {
    let mut r = BytesMut::with_capacity(key.len() + 24);
    match cmd {
        GetCmd::Get => r.extend_from_slice(b"get "),
        GetCmd::Gets => r.extend_from_slice(b"gets "),
        GetCmd::Gat => r.extend_from_slice(format!("gat {exptime} ").as_bytes()),
        GetCmd::Gats => r.extend_from_slice(format!("gats {exptime} ").as_bytes()),
    }
    r.extend_from_slice(key);
    r.extend_from_slice(b"\r\n");
    r
}

/// The member's form of a one-key request, the shape of its reply, and how the client gets it.
fn encode_request(request: &Request) -> (BytesMut, Expect, Combine) {
    let mut r = BytesMut::new();
    let line = |r: &mut BytesMut, parts: &[&[u8]]| {
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                r.put_u8(b' ');
            }
            r.extend_from_slice(p);
        }
        r.extend_from_slice(b"\r\n");
    };
    let reply = |noreply: bool| {
        if noreply {
            Combine::Discard
        } else {
            Combine::Memcache
        }
    };
    match request {
        Request::Store {
            cmd,
            key,
            flags,
            exptime,
            cas,
            data,
            noreply,
        } => {
            let name: &[u8] = match cmd {
                StoreCmd::Set => b"set",
                StoreCmd::Add => b"add",
                StoreCmd::Replace => b"replace",
                StoreCmd::Append => b"append",
                StoreCmd::Prepend => b"prepend",
                StoreCmd::Cas => b"cas",
            };
            let (flags, exptime, len, cas) = (
                flags.to_string(),
                exptime.to_string(),
                data.len().to_string(),
                cas.to_string(),
            );
            let mut parts: Vec<&[u8]> = vec![name, key, flags.as_bytes(), exptime.as_bytes()];
            parts.push(len.as_bytes());
            if *cmd == StoreCmd::Cas {
                parts.push(cas.as_bytes());
            }
            line(&mut r, &parts);
            r.extend_from_slice(data);
            r.extend_from_slice(b"\r\n");
            (r, Expect::Line, reply(*noreply))
        }
        Request::Delete { key, noreply } => {
            line(&mut r, &[b"delete", key]);
            (r, Expect::Line, reply(*noreply))
        }
        Request::Arith {
            incr,
            key,
            delta,
            noreply,
        } => {
            let name: &[u8] = if *incr { b"incr" } else { b"decr" };
            line(&mut r, &[name, key, delta.to_string().as_bytes()]);
            (r, Expect::Line, reply(*noreply))
        }
        Request::Touch {
            key,
            exptime,
            noreply,
        } => {
            line(&mut r, &[b"touch", key, exptime.to_string().as_bytes()]);
            (r, Expect::Line, reply(*noreply))
        }
        Request::MetaGet { key, flags } => meta(b"mg", key, None, flags, Quiet::Miss),
        Request::MetaSet { key, flags, data } => meta(b"ms", key, Some(data), flags, Quiet::Done),
        Request::MetaDelete { key, flags } => meta(b"md", key, None, flags, Quiet::Done),
        Request::MetaArith { key, flags } => meta(b"ma", key, None, flags, Quiet::Success),
        Request::MetaDebug { key, base64 } => {
            let mut r = BytesMut::new();
            r.extend_from_slice(b"me ");
            key_token(&mut r, key, *base64);
            if *base64 {
                r.extend_from_slice(b" b");
            }
            r.extend_from_slice(b"\r\n");
            (r, Expect::Line, Combine::Memcache)
        }
        _ => unreachable!("only one-key requests are forwarded"),
    }
}

/// What meta quiet mode (`q`) leaves out.
#[derive(Clone, Copy)]
enum Quiet {
    /// mg: the miss (`EN`).
    Miss,
    /// ms, md: the success (`HD`).
    Done,
    /// ma: any success (`HD` or `VA`).
    Success,
}

fn key_token(r: &mut BytesMut, key: &[u8], base64: bool) {
    if base64 {
        r.extend_from_slice(STANDARD.encode(key).as_bytes());
    } else {
        r.extend_from_slice(key);
    }
}

/// A meta request with `flags` as the client sent them, less `q` (kept here instead).
fn meta(
    name: &[u8],
    key: &Bytes,
    data: Option<&Bytes>,
    f: &MetaFlags,
    quiet: Quiet,
) -> (BytesMut, Expect, Combine) {
    let mut r = BytesMut::new();
    r.extend_from_slice(name);
    r.put_u8(b' ');
    key_token(&mut r, key, f.base64);
    if let Some(data) = data {
        r.extend_from_slice(format!(" {}", data.len()).as_bytes());
    }
    for &c in f.order() {
        let token = match c {
            b'q' => continue,
            b'N' => f.vivify.map(|v| v.to_string()),
            b'R' => f.recache.map(|v| v.to_string()),
            b'T' => f.ttl.map(|v| v.to_string()),
            b'F' => Some(f.client_flags.to_string()),
            b'C' => f.compare_cas.map(|v| v.to_string()),
            b'E' => f.new_cas.map(|v| v.to_string()),
            b'M' => f.mode.map(|m| char::from(m).to_string()),
            b'D' => f.delta.map(|v| v.to_string()),
            b'J' => f.initial.map(|v| v.to_string()),
            b'O' => {
                r.put_u8(b' ');
                r.extend_from_slice(&f.opaque);
                continue;
            }
            _ => None,
        };
        r.put_u8(b' ');
        r.put_u8(c);
        if let Some(t) = token {
            r.extend_from_slice(t.as_bytes());
        }
    }
    r.extend_from_slice(b"\r\n");
    if let Some(data) = data {
        r.extend_from_slice(data);
        r.extend_from_slice(b"\r\n");
    }
    let combine = match (f.quiet, quiet) {
        (false, _) => Combine::Memcache,
        (true, Quiet::Miss) => Combine::MemcacheQuiet { drop: &[b"EN"] },
        (true, Quiet::Done) => Combine::MemcacheQuiet { drop: &[b"HD"] },
        (true, Quiet::Success) => Combine::MemcacheQuiet {
            drop: &[b"HD", b"VA"],
        },
    };
    (r, Expect::Meta, combine)
}
