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
//! command to a memcached member (only the string subset could be translated, not done yet).

use std::sync::Arc;

use bytes::BytesMut;

use super::command::{Command, Group};
use super::conn::Ctx;
use super::error::RespError;
use super::frame::{Args, Version, encode_error};
use super::handler;
use crate::proto::forward::{Combine, Part, Slot, integer};
use crate::route::remote::{Expect, Member, Protocol, encode_command};
use crate::route::topology::Topology;

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
        C::Sort | C::SortRo => {
            let mut keys: Vec<&[u8]> = a.try_get(1).into_iter().collect();
            let store = (2..a.len()).find(|&i| {
                a.try_get(i)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"store"))
            });
            keys.extend(store.and_then(|i| a.try_get(i + 1)));
            keys
        }
        _ => {
            let (first, last, step) = cmd.key_positions();
            if first <= 0 || step <= 0 {
                return Vec::new();
            }
            let n = a.len() as i64;
            let last = if last < 0 { n + last } else { last.min(n - 1) };
            (first..=last)
                .step_by(step as usize)
                .filter_map(|i| a.try_get(i as usize))
                .collect()
        }
    }
}

/// Answers `cmd` here when a key of it is owned by a remote member (forwarded, split, or
/// refused); false when every key is local, and the groups handle it as usual.
pub(super) fn route(cmd: Command, a: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) -> bool {
    let topology = cx.shared.topology.load();
    if !topology.has_remote() {
        return false;
    }
    let keys = keys(cmd, a);
    if keys.is_empty() {
        return match cmd {
            Command::FlushAll | Command::FlushDb | Command::DbSize if cx.forward.is_some() => {
                fan_out(cmd, a, &topology, cx, out);
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
    if let Some(m) = owners
        .iter()
        .flatten()
        .find(|m| m.protocol != Protocol::Resp)
    {
        let why = format!(
            "node {} speaks the memcache protocol: {} is not translated for it",
            m.name(),
            cmd.wire()
        );
        return refuse(out, why);
    }
    let one_member = owners
        .iter()
        .all(|o| o.is_some_and(|m| Arc::ptr_eq(m, &first)));
    if one_member {
        let mut request = BytesMut::new();
        let parts: Vec<&[u8]> = (0..a.len()).filter_map(|i| a.try_get(i)).collect();
        encode_command(&mut request, &parts);
        send(cx, out, &first, request, Combine::Resp);
        return true;
    }
    match cmd {
        Command::MultiGet => mget(&keys, &owners, cx, out),
        Command::Delete | Command::Unlink | Command::Exists | Command::Touch => {
            sum(cmd, &keys, &owners, cx, out)
        }
        Command::MultiSet => mset(a, &owners, cx, out),
        _ => encode_error(out, &RespError::CrossSlot),
    }
    true
}

/// FLUSHALL/FLUSHDB (to every member, after the local nodes) and DBSIZE (summed; memcached
/// members cannot count and add nothing).
fn fan_out(cmd: Command, a: &Args<'_>, topology: &Topology, cx: &mut Ctx<'_>, out: &mut BytesMut) {
    let mut reply = BytesMut::new();
    handler::run_local(cmd, a, cx, &mut reply);
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
        parts.push(Part {
            member: Arc::clone(m),
            reply: m.forward(cx.conn.id, request.freeze(), expect),
        });
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
    Part {
        member: Arc::clone(member),
        reply: member.forward(cx.conn.id, request.freeze(), Expect::Resp),
    }
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
fn local(cx: &mut Ctx<'_>, cmd: Command, args: &[&[u8]]) -> BytesMut {
    let mut buf = Vec::new();
    let mut ranges = Vec::with_capacity(args.len() + 1);
    for p in std::iter::once(cmd.wire().as_bytes()).chain(args.iter().copied()) {
        ranges.push((buf.len(), p.len()));
        buf.extend_from_slice(p);
    }
    let mut out = BytesMut::new();
    handler::run_local(cmd, &Args::new(&buf, &ranges), cx, &mut out);
    out
}

fn mget(keys: &[&[u8]], owners: &[Option<&Arc<Member>>], cx: &mut Ctx<'_>, out: &mut BytesMut) {
    let resp3 = cx.conn.version == Version::Resp3;
    out.extend_from_slice(format!("*{}\r\n", keys.len()).as_bytes());
    for (key, owner) in keys.iter().zip(owners) {
        match owner {
            Some(m) => {
                let mut request = BytesMut::new();
                encode_command(&mut request, &[b"GET", key]);
                send(cx, out, m, request, Combine::RespNilOnError { resp3 });
            }
            None => {
                let reply = local(cx, Command::MultiGet, &[key]);
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
) {
    let mine: Vec<&[u8]> = keys
        .iter()
        .zip(owners)
        .filter(|(_, o)| o.is_none())
        .map(|(k, _)| *k)
        .collect();
    let mut local_count = 0;
    if !mine.is_empty() {
        let reply = local(cx, cmd, &mine);
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
        let mut args: Vec<&[u8]> = vec![cmd.wire().as_bytes()];
        args.extend(
            keys.iter()
                .zip(owners)
                .filter(|(_, o)| o.is_some_and(|o| Arc::ptr_eq(o, m)))
                .map(|(k, _)| *k),
        );
        let mut request = BytesMut::new();
        encode_command(&mut request, &args);
        parts.push(part(cx, m, request));
    }
    push(cx, out, parts, Combine::RespSum { local: local_count });
}

fn mset(a: &Args<'_>, owners: &[Option<&Arc<Member>>], cx: &mut Ctx<'_>, out: &mut BytesMut) {
    if a.len() % 2 == 0 {
        // An odd number of key/value arguments: the group's own error.
        handler::run_local(Command::MultiSet, a, cx, out);
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
        let reply = local(cx, Command::MultiSet, &mine);
        if &reply[..] != b"+OK\r\n" {
            out.extend_from_slice(&reply);
            return;
        }
    }
    let mut parts = Vec::new();
    for m in members(owners) {
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
