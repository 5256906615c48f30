//! The dispatcher: identifies a request's command, checks its arity and access, and hands it to
//! its group's module.
//!
//! Owns: the order of the checks every request goes through (unknown command, arity, NOAUTH /
//! NOPERM, the RESP2 subscribe-mode gate), the per-command bookkeeping in `Conn` (`last`,
//! `current`, `commands`), the serving of blocked clients a request fed, and the routing by
//! the table's group column. Must not touch: any command's semantics (the group modules:
//! `strings`, `keyspace`, `connection`, `server`, `types::{hash, list, set, zset}`, `bitmaps`, `hll`, `geo`, `stream`,
//! `txn`, `pubsub`, `script`), framing, sockets.
//!
//! Invariants:
//! - No handler runs before `command::parse` accepted the arity from the table, so every index
//!   the arity guarantees is present; past that, handlers check `Args::len`. `Args::arg` never
//!   panics: past the end it is an error, which this module answers as the command's arity
//!   error.
//! - Routing is one match on [`Group`]: no handler sees a command of another group.

use bytes::BytesMut;

use super::command::{self, Command, Group};
use super::conn::{Ctx, Reply};
use super::error::RespError;
use super::frame::{Args, Version, encode_error};
use super::{
    acl, bitmaps, connection, forward, geo, hll, keyspace, notify, pubsub, script, server, stream,
    strings, tracking, txn, types,
};
use crate::proto::Flow;

/// Handles one request (non-empty `args`), appending its reply to `out`.
pub fn handle(args: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) -> Flow {
    cx.conn.commands += 1;
    let (cmd, sub) = match command::parse(args) {
        Ok(c) => c,
        Err(e) => {
            cx.conn.current = None;
            txn::flag(cx);
            if cx.conn.multi.is_some() && args.arg(0).is_ok_and(|n| n.eq_ignore_ascii_case(b"exec"))
            {
                // redis: EXEC refused inside MULTI ends the transaction, saying why.
                txn::reset(cx);
                encode_error(out, &RespError::ExecAbortBecause(Box::new(e)));
            } else {
                encode_error(out, &e);
            }
            return Flow::Continue;
        }
    };
    cx.conn.last = cmd.wire();
    cx.conn.current = Some(cmd);
    if let Err(e) = acl::check(cmd, cx.conn.access) {
        txn::flag(cx);
        encode_error(out, &e);
        return Flow::Continue;
    }
    // redis 7.0 checks subscribe mode after access and before MULTI queues the command; the
    // commands EXEC runs are not checked (a queued SUBSCRIBE does not stop the rest).
    if cx.conn.version == Version::Resp2
        && cx.conn.subs.any()
        && !cx.conn.in_exec
        && !pubsub::allowed_when_subscribed(cmd)
    {
        let name = match sub {
            Some(s) => format!("{}|{s}", cmd.wire()),
            None => cmd.wire().to_string(),
        };
        let e = RespError::SubscribedContext(name);
        if cmd == Command::Exec {
            // redis: a refused EXEC always answers EXECABORT, saying why.
            txn::reset(cx);
            encode_error(out, &RespError::ExecAbortBecause(Box::new(e)));
        } else {
            encode_error(out, &e);
        }
        return Flow::Continue;
    }
    if cx.conn.multi.is_some() && txn::queues(cmd) {
        txn::queue(cmd, args, cx, out);
        return Flow::Continue;
    }
    // Keys owned by remote members leave here (one relaxed load when none is).
    if cx.shared.has_remote() && forward::route(cmd, args, cx, out, &mut run_local) {
        return Flow::Continue;
    }
    serve_ready(cx);
    let mut flow = Flow::Continue;
    // Keyspace notifications and client-side caching: two relaxed loads when both are off.
    let tracking = cx.shared.pubsub.tracking.active();
    let notifying = notify::enabled(cx.shared);
    let marks = if notifying || tracking {
        notify::before(cx.shared, cmd, args)
    } else {
        None
    };
    let mark = out.len();
    match dispatch(cmd, sub, args, cx, out, &mut flow) {
        Ok(()) => {}
        Err(RespError::MissingArgument) => {
            encode_error(out, &RespError::WrongArity(cmd.wire()));
        }
        Err(e) => encode_error(out, &e),
    }
    if cx.conn.retry.take() {
        // The gate is held by a script: no reply; the session waits for it and retries.
        out.truncate(mark);
        flow = Flow::Block;
    }
    if flow != Flow::Block {
        let changed = match marks {
            Some(marks) => notify::after(cx.shared, cmd, marks, &out[mark..]),
            None => Vec::new(),
        };
        if notifying {
            notify::keymiss(cx.shared, cmd, args, &out[mark..]);
        }
        if tracking {
            let ok = !matches!(out.get(mark), Some(b'-' | b'!'));
            tracking::after_command(cx, cmd, args, &changed, ok, out);
        }
    }
    // This request fed keys clients block on: they are served before it answers.
    serve_ready(cx);
    flow
}

/// Serves the clients blocked on keys that got elements (one atomic load when there are
/// none): after a request, so they are served before it answers, and before one, so a
/// request racing a push from another connection cannot take an element first either. Not
/// inside EXEC (its end serves) nor on a blocked client's behalf (the serving pass does).
#[inline]
fn serve_ready(cx: &mut Ctx<'_>) {
    if cx.shared.waiters.has_ready() && !cx.conn.in_exec && !cx.conn.on_behalf {
        types::blocking::serve_ready(cx, &mut |a, cx, out| {
            handle(a, cx, out);
        });
    }
}

/// Runs `cmd` (arity checked by the caller, every key local) in its group, answering its
/// error: a part of a request split between local nodes and remote members.
fn run_local(cmd: Command, a: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) {
    let mut flow = Flow::Continue;
    match dispatch(cmd, None, a, cx, out, &mut flow) {
        Ok(()) => {}
        Err(RespError::MissingArgument) => encode_error(out, &RespError::WrongArity(cmd.wire())),
        Err(e) => encode_error(out, &e),
    }
}

/// Runs `cmd` (its arity checked) in its group's module.
#[inline]
fn dispatch(
    cmd: Command,
    sub: Option<&'static str>,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    flow: &mut Flow,
) -> Reply {
    match cmd.group() {
        Group::String => strings::handle(cmd, a, cx, out),
        Group::Keyspace => keyspace::handle(cmd, a, cx, out),
        Group::Connection => connection::handle(cmd, sub, a, cx, out, flow),
        Group::Server => server::handle(cmd, sub, a, cx, out),
        Group::Hash => types::hash::handle(cmd, a, cx, out),
        Group::List => types::list::handle(cmd, a, cx, out, flow),
        Group::Set => types::set::handle(cmd, a, cx, out),
        Group::SortedSet => types::zset::handle(cmd, a, cx, out, flow),
        Group::PubSub => pubsub::handle(cmd, sub, a, cx, out),
        Group::Scripting => script::handle(cmd, sub, a, cx, out, flow),
        Group::Bitmap => bitmaps::handle(cmd, a, cx, out),
        Group::HyperLogLog => hll::handle(cmd, a, cx, out),
        Group::Geo => geo::handle(cmd, a, cx, out),
        Group::Stream => stream::handle(cmd, a, cx, out, flow),
        Group::Transaction => {
            let r = txn::handle(cmd, a, cx, out, flow, &mut |a, cx, out| {
                handle(a, cx, out);
            });
            // The queued commands ran through `handle`: EXEC is what this request was.
            cx.conn.last = cmd.wire();
            cx.conn.current = Some(cmd);
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Limits;
    use crate::proto::resp::conn::Conn;
    use crate::route::ring::{HashKind, Ring};
    use crate::route::topology::Topology;
    use crate::server::Shared;
    use crate::store::{Clock, Node};

    fn shared() -> Arc<Shared> {
        let clock = Clock::mock(1_700_000_000_000);
        let nodes = vec![Arc::new(Node::new("a", 1 << 20, clock.clone()))];
        let ring = Ring::build(&[("a", 1)], HashKind::default(), 160, None);
        Arc::new(Shared::new(
            Topology::new(1, ring, nodes),
            Limits::default(),
            clock,
        ))
    }

    /// Runs `parts` as one request; the reply bytes.
    fn run(shared: &Shared, parts: &[&[u8]]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut ranges = Vec::new();
        for p in parts {
            ranges.push((buf.len(), p.len()));
            buf.extend_from_slice(p);
        }
        let limits = Limits::default();
        let mut conn = Conn::new(None, None, 0);
        let mut cx = Ctx {
            shared,
            limits: &limits,
            conn: &mut conn,
            pass: None,
            forward: None,
        };
        let mut out = BytesMut::new();
        handle(&Args::new(&buf, &ranges), &mut cx, &mut out);
        out.to_vec()
    }

    #[test]
    fn every_command_with_too_few_arguments_gets_the_arity_error() {
        let shared = shared();
        for &cmd in Command::ALL {
            let need = cmd.arity().unsigned_abs() as usize;
            // Every count below the arity (the name alone included): the arity error, no panic.
            for n in 1..need {
                let mut parts: Vec<&[u8]> = vec![cmd.wire().as_bytes()];
                parts.resize(n, b"1");
                let mut want = BytesMut::new();
                encode_error(&mut want, &RespError::WrongArity(cmd.wire()));
                assert_eq!(
                    run(&shared, &parts),
                    want.to_vec(),
                    "{} with {n}",
                    cmd.wire()
                );
            }
        }
    }

    #[test]
    fn every_command_is_handled_by_its_group() {
        let shared = shared();
        for &cmd in Command::ALL {
            if cmd.group() == Group::List && cmd.flags().contains(&"blocking") {
                continue; // Would block: covered by the blocking tests.
            }
            if matches!(
                cmd,
                Command::BZPopMin | Command::BZPopMax | Command::BZMPop | Command::XRead
            ) {
                continue;
            }
            // The fewest arguments the arity allows; container commands get their HELP.
            let need = cmd.arity().unsigned_abs().max(1) as usize;
            let mut parts: Vec<&[u8]> = vec![cmd.wire().as_bytes()];
            parts.resize(need, b"1");
            if cmd.is_container() && need >= 2 {
                parts[1] = b"help";
            }
            let reply = run(&shared, &parts);
            let text = String::from_utf8_lossy(&reply);
            assert!(
                !text.contains("not handled by its group"),
                "{}: {text}",
                cmd.wire()
            );
        }
    }
}
