//! RESP requests whose keys remote members own: forwarded whole to the one member that owns
//! every key, split by owner for the commands that add up (MGET, MSET, DEL, UNLINK, EXISTS,
//! TOUCH), refused with Redis Cluster's `CROSSSLOT` error when the keys span members and the
//! command cannot be split (a hash tag puts keys together).
//!
//! Owns: which requests leave the process and how their replies are assembled (slots, see
//! `proto::forward`). Must not touch: the link to the member, the commands' own semantics
//! (local keys still go through the groups).
//!
//! FLUSHALL and FLUSHDB also reach every member (memcached ones as `flush_all`), DBSIZE adds
//! the Redis members' counts. KEYS, SCAN and RANDOMKEY see the in-process nodes only.
//!
//! Not forwarded (an error names the member): blocking commands, WATCH, and any request on a
//! remote key inside MULTI/EXEC or a script (they need the member's own transaction); any
//! command to a memcached member outside the string subset.
//!
//! A memcached member's keys take the string subset, translated (replies by
//! `proto::translate`): GET, SET (NX, XX, EX, PX, EXAT, PXAT), SETNX, SETEX, PSETEX, GETEX,
//! INCR/DECR/INCRBY/DECRBY (an `add` of 0 first, as Redis counts from 0; memcached's decr stops
//! at 0), EXPIRE/PEXPIRE (`touch`), and in MGET, MSET, DEL, UNLINK, EXISTS, TOUCH.

use std::sync::Arc;

use bytes::BytesMut;

use super::command::{Command, Group};
use super::conn::Ctx;
use super::error::RespError;
use super::frame::{Args, Version, encode_error};
use crate::proto::forward::{Combine, Part, Slot, integer};
use crate::proto::translate::Map;
use crate::route::remote::{Expect, Member, Protocol, encode_command};
use crate::route::topology::Topology;

/// Runs a command on the in-process nodes (every key local) into the buffer given: the
/// dispatcher's `run_local`, passed in so that this module does not import the dispatcher.
pub(super) type Local<'f> = &'f mut dyn FnMut(Command, &Args<'_>, &mut Ctx<'_>, &mut BytesMut);

/// The keys of `cmd`'s request `a`: the table's positions, or for the commands whose keys move
/// (`movablekeys`), the keys their numkeys argument counts.
pub(super) fn keys<'a>(cmd: Command, a: &Args<'a>) -> Vec<&'a [u8]> {
    use Command as C;
    let counted = |numkeys_at: usize| -> Vec<&'a [u8]> {
        let n = a
            .try_get(numkeys_at)
            .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        (numkeys_at + 1..numkeys_at + 1 + n)
            .filter_map(|i| a.try_get(i))
            .collect()
    };
    match cmd {
        C::Eval | C::EvalSha | C::EvalRo | C::EvalShaRo | C::FCall | C::FCallRo => counted(2),
        C::LMPop | C::ZMPop | C::SInterCard | C::ZUnion | C::ZInter | C::ZDiff | C::ZInterCard => {
            counted(1)
        }
        C::BLMPop | C::BZMPop => counted(2),
        C::ZUnionStore | C::ZInterStore | C::ZDiffStore => {
            let mut keys: Vec<&[u8]> = a.try_get(1).into_iter().collect();
            keys.extend(counted(2));
            keys
        }
        // Stream commands whose keys the table cannot place: after STREAMS, or the container
        // commands' key (XGROUP CREATE key ..., XINFO STREAM key).
        C::XRead | C::XReadGroup => super::args::stream_keys(a),
        C::XGroup | C::XInfo => a.try_get(2).into_iter().collect(),
        C::Sort | C::SortRo | C::GeoRadius | C::GeoRadiusByMember => {
            let mut keys: Vec<&[u8]> = a.try_get(1).into_iter().collect();
            let store = (2..a.len()).find(|&i| {
                a.try_get(i).is_some_and(|w| {
                    w.eq_ignore_ascii_case(b"store") || w.eq_ignore_ascii_case(b"storedist")
                })
            });
            keys.extend(store.and_then(|i| a.try_get(i + 1)));
            keys
        }
        _ => super::notify::read_keys(cmd, a),
    }
}

/// Answers `cmd` here when a key of it is owned by a remote member (forwarded, split, or
/// refused); false when every key is local, and the groups handle it as usual.
pub(super) fn route(
    cmd: Command,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    run: Local<'_>,
) -> bool {
    let topology = cx.shared.topology.load();
    if !topology.has_remote() {
        return false;
    }
    let keys = keys(cmd, a);
    if keys.is_empty() {
        return match cmd {
            Command::FlushAll | Command::FlushDb | Command::DbSize if cx.forward.is_some() => {
                fan_out(cmd, a, &topology, cx, out, run);
                true
            }
            _ => false,
        };
    }
    let owners: Vec<Option<&Arc<Member>>> = keys.iter().map(|k| topology.remote_for(k)).collect();
    let Some(first) = owners.iter().flatten().next().map(|m| Arc::clone(m)) else {
        return false;
    };
    let refuse = |out: &mut BytesMut, why: String| {
        encode_error(out, &RespError::Remote(why));
        true
    };
    if cx.forward.is_none() {
        let why = format!(
            "key on remote node {}: not available inside MULTI/EXEC or scripts",
            first.name()
        );
        return refuse(out, why);
    }
    if cmd.flags().contains(&"blocking") || cmd.group() == Group::Transaction {
        let why = format!(
            "{} is not forwarded to remote node {}",
            cmd.wire(),
            first.name()
        );
        return refuse(out, why);
    }
    let memcache = owners
        .iter()
        .flatten()
        .any(|m| m.protocol == Protocol::Memcache);
    let one_member = owners
        .iter()
        .all(|o| o.is_some_and(|m| Arc::ptr_eq(m, &first)));
    if one_member && !memcache {
        let mut request = BytesMut::new();
        let parts: Vec<&[u8]> = (0..a.len()).filter_map(|i| a.try_get(i)).collect();
        encode_command(&mut request, &parts);
        send(cx, out, &first, request, Combine::Resp);
        return true;
    }
    match cmd {
        Command::MultiGet => mget(&keys, &owners, cx, out, run),
        Command::Delete | Command::Unlink | Command::Exists | Command::Touch => {
            sum(cmd, &keys, &owners, cx, out, run)
        }
        Command::MultiSet => mset(a, &owners, cx, out, run),
        _ if one_member => {
            let resp3 = cx.conn.version == Version::Resp3;
            let now = cx.shared.clock.now_ms() / 1000;
            match to_memcache(cmd, a, resp3, now) {
                Some((requests, combine)) => {
                    let parts = requests
                        .into_iter()
                        .map(|(request, expect, map)| mc_part(cx, &first, request, expect, map))
                        .collect();
                    push(cx, out, parts, combine);
                }
                None => {
                    let why = format!(
                        "node {} speaks the memcache protocol: {} is not translated for it",
                        first.name(),
                        cmd.wire()
                    );
                    encode_error(out, &RespError::Remote(why));
                }
            }
        }
        _ => encode_error(out, &RespError::CrossSlot),
    }
    true
}

/// A request for a memcached member whose reply reads as `map` says.
fn mc_part(
    cx: &Ctx<'_>,
    member: &Arc<Member>,
    request: BytesMut,
    expect: Expect,
    map: Map,
) -> Part {
    Part {
        member: Arc::clone(member),
        reply: member.forward(cx.conn.id, request.freeze(), expect),
        map,
    }
}

/// Largest relative memcached exptime: larger numbers are unix times.
const MC_RELATIVE_MAX: i64 = 30 * 24 * 3600;

/// A memcached exptime for a TTL of `secs` from now (`now` in unix seconds).
fn mc_exptime(secs: i64, now: u64) -> i64 {
    if secs > MC_RELATIVE_MAX {
        secs.saturating_add(now as i64)
    } else {
        secs
    }
}

/// A memcached exptime for unix time `at` (already past: expired).
fn mc_exptime_at(at: i64, now: u64) -> i64 {
    if at <= now as i64 {
        -1
    } else {
        at.max(MC_RELATIVE_MAX + 1)
    }
}

fn number(a: &Args<'_>, i: usize) -> Option<i64> {
    std::str::from_utf8(a.try_get(i)?).ok()?.parse().ok()
}

/// memcached's `set`/`add` of `key` to `value` with `exptime`.
fn mc_store(verb: &str, key: &[u8], value: &[u8], exptime: i64) -> BytesMut {
    let mut r = BytesMut::with_capacity(key.len() + value.len() + 32);
    r.extend_from_slice(verb.as_bytes());
    r.extend_from_slice(b" ");
    r.extend_from_slice(key);
    r.extend_from_slice(format!(" 0 {exptime} {}\r\n", value.len()).as_bytes());
    r.extend_from_slice(value);
    r.extend_from_slice(b"\r\n");
    r
}

fn mc_line(parts: &[&[u8]]) -> BytesMut {
    let mut r = BytesMut::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            r.extend_from_slice(b" ");
        }
        r.extend_from_slice(p);
    }
    r.extend_from_slice(b"\r\n");
    r
}

type McRequests = (Vec<(BytesMut, Expect, Map)>, Combine);

/// The memcached requests for a Redis string command on one memcached member's key, and how
/// their replies combine; None for what is not translated (options memcached cannot express
/// included).
fn to_memcache(cmd: Command, a: &Args<'_>, resp3: bool, now: u64) -> Option<McRequests> {
    let key = a.try_get(1)?;
    let one = |r: BytesMut, e: Expect, m: Map| Some((vec![(r, e, m)], Combine::Resp));
    match cmd {
        Command::Get => one(
            mc_line(&[b"get", key]),
            Expect::Values,
            Map::McValue { resp3 },
        ),
        Command::Set => {
            let value = a.try_get(2)?;
            let (mut verb, mut exptime) = ("set", 0);
            let mut i = 3;
            while i < a.len() {
                let opt = a.try_get(i)?.to_ascii_uppercase();
                match opt.as_slice() {
                    b"NX" => verb = "add",
                    b"XX" => verb = "replace",
                    b"EX" | b"PX" | b"EXAT" | b"PXAT" => {
                        let n = number(a, i + 1).filter(|&n| n > 0)?;
                        i += 1;
                        exptime = match opt.as_slice() {
                            b"EX" => mc_exptime(n, now),
                            b"PX" => mc_exptime((n + 999) / 1000, now),
                            b"EXAT" => mc_exptime_at(n, now),
                            _ => mc_exptime_at((n + 999) / 1000, now),
                        };
                    }
                    _ => return None,
                }
                i += 1;
            }
            let request = mc_store(verb, key, value, exptime);
            one(request, Expect::Line, Map::McStored { resp3 })
        }
        Command::SetNx => one(
            mc_store("add", key, a.try_get(2)?, 0),
            Expect::Line,
            Map::McStoredInt,
        ),
        Command::SetEx | Command::PSetEx => {
            let n = number(a, 2).filter(|&n| n > 0)?;
            let secs = if cmd == Command::SetEx {
                n
            } else {
                (n + 999) / 1000
            };
            let request = mc_store("set", key, a.try_get(3)?, mc_exptime(secs, now));
            one(request, Expect::Line, Map::McStored { resp3 })
        }
        Command::Incr | Command::Decr | Command::IncrBy | Command::DecrBy => {
            let delta = match cmd {
                Command::Incr => 1,
                Command::Decr => -1,
                Command::IncrBy => number(a, 2)?,
                _ => number(a, 2)?.checked_neg()?,
            };
            // Redis counts from 0 for a missing key: `add` it first (refused if present).
            let verb: &[u8] = if delta < 0 { b"decr" } else { b"incr" };
            let amount = delta.unsigned_abs().to_string();
            let requests = vec![
                (mc_store("add", key, b"0", 0), Expect::Line, Map::Ignore),
                (
                    mc_line(&[verb, key, amount.as_bytes()]),
                    Expect::Line,
                    Map::McNumber,
                ),
            ];
            Some((requests, Combine::Resp))
        }
        Command::Expire | Command::PExpire if a.len() == 3 => {
            let n = number(a, 2)?;
            let secs = if cmd == Command::Expire {
                n
            } else {
                (n + 999) / 1000
            };
            let exptime = if secs <= 0 { -1 } else { mc_exptime(secs, now) };
            let request = mc_line(&[b"touch", key, exptime.to_string().as_bytes()]);
            one(request, Expect::Line, Map::McTouched)
        }
        Command::GetEx => {
            let exptime = match a.len() {
                2 => {
                    return one(
                        mc_line(&[b"get", key]),
                        Expect::Values,
                        Map::McValue { resp3 },
                    );
                }
                3 if a.try_get(2)?.eq_ignore_ascii_case(b"persist") => 0,
                4 => {
                    let n = number(a, 3).filter(|&n| n > 0)?;
                    match a.try_get(2)?.to_ascii_uppercase().as_slice() {
                        b"EX" => mc_exptime(n, now),
                        b"PX" => mc_exptime((n + 999) / 1000, now),
                        b"EXAT" => mc_exptime_at(n, now),
                        b"PXAT" => mc_exptime_at((n + 999) / 1000, now),
                        _ => return None,
                    }
                }
                _ => return None,
            };
            let request = mc_line(&[b"gat", exptime.to_string().as_bytes(), key]);
            one(request, Expect::Values, Map::McValue { resp3 })
        }
        _ => None,
    }
}

/// FLUSHALL/FLUSHDB (to every member, after the local nodes) and DBSIZE (summed; memcached
/// members cannot count and add nothing).
fn fan_out(
    cmd: Command,
    a: &Args<'_>,
    topology: &Topology,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    run: Local<'_>,
) {
    let mut reply = BytesMut::new();
    run(cmd, a, cx, &mut reply);
    if reply.starts_with(b"-") {
        out.extend_from_slice(&reply);
        return;
    }
    let mut parts = Vec::new();
    for m in topology.remotes() {
        let mut request = BytesMut::new();
        let expect = match (cmd, m.protocol) {
            (Command::DbSize, Protocol::Memcache) => continue,
            (_, Protocol::Memcache) => {
                request.extend_from_slice(b"flush_all\r\n");
                Expect::Line
            }
            (_, Protocol::Resp) => {
                let parts: Vec<&[u8]> = (0..a.len()).filter_map(|i| a.try_get(i)).collect();
                encode_command(&mut request, &parts);
                Expect::Resp
            }
        };
        parts.push(Part::same(
            m,
            m.forward(cx.conn.id, request.freeze(), expect),
        ));
    }
    let combine = match cmd {
        Command::DbSize => Combine::RespSum {
            local: integer(&reply).unwrap_or(0),
        },
        _ => Combine::Flushed { resp: true },
    };
    push(cx, out, parts, combine);
}

/// Sends `request` to `member` and leaves a slot for its reply at the end of `out`.
fn send(
    cx: &mut Ctx<'_>,
    out: &BytesMut,
    member: &Arc<Member>,
    request: BytesMut,
    combine: Combine,
) {
    let part = part(cx, member, request);
    push(cx, out, vec![part], combine);
}

fn part(cx: &Ctx<'_>, member: &Arc<Member>, request: BytesMut) -> Part {
    let request = request.freeze();
    let reply = if cx.conn.version == Version::Resp3 {
        member.forward_resp3(cx.conn.id, request, Expect::Resp)
    } else {
        member.forward(cx.conn.id, request, Expect::Resp)
    };
    Part::same(member, reply)
}

fn push(cx: &mut Ctx<'_>, out: &BytesMut, parts: Vec<Part>, combine: Combine) {
    if let Some(f) = cx.forward.as_deref_mut() {
        f.push(Slot {
            at: out.len(),
            parts,
            combine,
        });
    }
}

/// Runs `name keys...` on the local nodes (every key is local) into a fresh buffer.
fn local(cx: &mut Ctx<'_>, run: Local<'_>, cmd: Command, args: &[&[u8]]) -> BytesMut {
    let mut buf = Vec::new();
    let mut ranges = Vec::with_capacity(args.len() + 1);
    for p in std::iter::once(cmd.wire().as_bytes()).chain(args.iter().copied()) {
        ranges.push((buf.len(), p.len()));
        buf.extend_from_slice(p);
    }
    let mut out = BytesMut::new();
    run(cmd, &Args::new(&buf, &ranges), cx, &mut out);
    out
}

fn mget(
    keys: &[&[u8]],
    owners: &[Option<&Arc<Member>>],
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    run: Local<'_>,
) {
    let resp3 = cx.conn.version == Version::Resp3;
    out.extend_from_slice(format!("*{}\r\n", keys.len()).as_bytes());
    for (key, owner) in keys.iter().zip(owners) {
        match owner {
            Some(m) if m.protocol == Protocol::Memcache => {
                let part = mc_part(
                    cx,
                    m,
                    mc_line(&[b"get", key]),
                    Expect::Values,
                    Map::McValue { resp3 },
                );
                push(cx, out, vec![part], Combine::RespNilOnError { resp3 });
            }
            Some(m) => {
                let mut request = BytesMut::new();
                encode_command(&mut request, &[b"GET", key]);
                send(cx, out, m, request, Combine::RespNilOnError { resp3 });
            }
            None => {
                let reply = local(cx, run, Command::MultiGet, &[key]);
                // `*1\r\n` then the element.
                out.extend_from_slice(reply.get(4..).unwrap_or_default());
            }
        }
    }
}

/// The members among `owners`, each once, in first-seen order.
fn members<'m>(owners: &[Option<&'m Arc<Member>>]) -> Vec<&'m Arc<Member>> {
    let mut seen: Vec<&Arc<Member>> = Vec::new();
    for m in owners.iter().flatten() {
        if !seen.iter().any(|s| Arc::ptr_eq(s, m)) {
            seen.push(m);
        }
    }
    seen
}

fn sum(
    cmd: Command,
    keys: &[&[u8]],
    owners: &[Option<&Arc<Member>>],
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    run: Local<'_>,
) {
    let mine: Vec<&[u8]> = keys
        .iter()
        .zip(owners)
        .filter(|(_, o)| o.is_none())
        .map(|(k, _)| *k)
        .collect();
    let mut local_count = 0;
    if !mine.is_empty() {
        let reply = local(cx, run, cmd, &mine);
        match integer(&reply) {
            Some(n) => local_count = n,
            None => {
                out.extend_from_slice(&reply);
                return;
            }
        }
    }
    let mut parts = Vec::new();
    for m in members(owners) {
        let theirs = keys
            .iter()
            .zip(owners)
            .filter(|(_, o)| o.is_some_and(|o| Arc::ptr_eq(o, m)))
            .map(|(k, _)| *k);
        if m.protocol == Protocol::Memcache {
            // One request per key: `delete`, or `mg` (a hit answers HD) for EXISTS/TOUCH.
            for key in theirs {
                let part = match cmd {
                    Command::Delete | Command::Unlink => {
                        let r = mc_line(&[b"delete", key]);
                        mc_part(cx, m, r, Expect::Line, Map::McDeleted)
                    }
                    _ => mc_part(cx, m, mc_line(&[b"mg", key]), Expect::Meta, Map::McHit),
                };
                parts.push(part);
            }
            continue;
        }
        let mut args: Vec<&[u8]> = vec![cmd.wire().as_bytes()];
        args.extend(theirs);
        let mut request = BytesMut::new();
        encode_command(&mut request, &args);
        parts.push(part(cx, m, request));
    }
    push(cx, out, parts, Combine::RespSum { local: local_count });
}

fn mset(
    a: &Args<'_>,
    owners: &[Option<&Arc<Member>>],
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    run: Local<'_>,
) {
    if a.len() % 2 == 0 {
        // An odd number of key/value arguments: the group's own error.
        run(Command::MultiSet, a, cx, out);
        return;
    }
    let pairs: Vec<(&[u8], &[u8])> = (1..a.len())
        .step_by(2)
        .filter_map(|i| Some((a.try_get(i)?, a.try_get(i + 1)?)))
        .collect();
    let mine: Vec<&[u8]> = pairs
        .iter()
        .zip(owners)
        .filter(|(_, o)| o.is_none())
        .flat_map(|((k, v), _)| [*k, *v])
        .collect();
    if !mine.is_empty() {
        let reply = local(cx, run, Command::MultiSet, &mine);
        if &reply[..] != b"+OK\r\n" {
            out.extend_from_slice(&reply);
            return;
        }
    }
    let mut parts = Vec::new();
    let resp3 = cx.conn.version == Version::Resp3;
    for m in members(owners) {
        let theirs = pairs
            .iter()
            .zip(owners)
            .filter(|(_, o)| o.is_some_and(|o| Arc::ptr_eq(o, m)));
        if m.protocol == Protocol::Memcache {
            for ((k, v), _) in theirs {
                let r = mc_store("set", k, v, 0);
                parts.push(mc_part(cx, m, r, Expect::Line, Map::McStored { resp3 }));
            }
            continue;
        }
        let mut args: Vec<&[u8]> = vec![b"MSET"];
        args.extend(
            pairs
                .iter()
                .zip(owners)
                .filter(|(_, o)| o.is_some_and(|o| Arc::ptr_eq(o, m)))
                .flat_map(|((k, v), _)| [*k, *v]),
        );
        let mut request = BytesMut::new();
        encode_command(&mut request, &args);
        parts.push(part(cx, m, request));
    }
    push(cx, out, parts, Combine::RespAllOk);
}
