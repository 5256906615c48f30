//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH with redis 7.0's semantics.
//!
//! Owns: the queue of a connection in MULTI ([`Multi`]), the watched keys and their marks, and
//! running a queue. Must not touch: how a queued command runs (the dispatcher passes itself in
//! as `run`), framing, sockets.
//!
//! How EXEC is atomic and isolated: it runs the whole queue inside
//! [`Gate::exclusive`](crate::server::gate::Gate::exclusive), while no other connection (RESP
//! or memcached) handles a request, whatever nodes the keys live on and while a migration
//! runs, as redis-server runs it on its one thread. Cost: nothing for connections that never
//! use MULTI beyond the gate's per-batch flag; an EXEC waits for the batches in progress to end
//! and holds the others at their next batch for as long as its queue runs.
//!
//! WATCH records each key's mark: its CAS and expiry, or absent. Every write to an item gives it
//! a new CAS (both protocols, every command; a key moved by a migration keeps its CAS), and
//! EXPIRE/PERSIST change the expiry, so EXEC (under the gate) compares the marks and answers a
//! null array if any changed: written, deleted, expired, evicted or flushed. Unlike redis, a
//! key absent at WATCH that was created and deleted again before EXEC counts as unchanged.

use bytes::BytesMut;

use super::command::Command;
use super::conn::{Ctx, Multi, Queued, Reply};
use super::error::RespError;
use super::frame::{Args, encode_array, encode_error, encode_null_array, encode_ok, encode_simple};
use super::types::blocking::serve_ready;
use crate::server::Shared;

/// Whether `cmd` is queued inside MULTI (the others run at once: EXEC, DISCARD, MULTI and
/// WATCH, which answer for the transaction itself, and QUIT and RESET).
pub(super) fn queues(cmd: Command) -> bool {
    !matches!(
        cmd,
        Command::Exec
            | Command::Discard
            | Command::Multi
            | Command::Watch
            | Command::Quit
            | Command::Reset
    )
}

/// Queues request `a` (of command `cmd`) of the open MULTI and answers `+QUEUED`; a command
/// redis flags `no_multi` (SAVE) is refused and aborts the transaction.
pub(super) fn queue(cmd: Command, a: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) {
    let limit = cx.limits.max_output_buffer;
    let Some(multi) = cx.conn.multi.as_mut() else {
        return;
    };
    if cmd.flags().contains(&"no_multi") {
        multi.dirty = true;
        encode_error(out, &RespError::NotInMulti);
        return;
    }
    let size: usize = a.iter_from(0).map(|arg| arg.len() + 16).sum();
    if (multi.bytes + size) as u64 > limit {
        // A queue is held in memory until EXEC: bounded like the replies it will make.
        multi.dirty = true;
        encode_error(out, &RespError::MultiQueueTooLarge);
        return;
    }
    multi.bytes += size;
    multi.queue.push(Queued::of(a));
    encode_simple(out, b"QUEUED");
}

/// Marks the open MULTI (if any) as failed: a request was refused while queueing.
pub(super) fn flag(cx: &mut Ctx<'_>) {
    if let Some(m) = cx.conn.multi.as_mut() {
        m.dirty = true;
    }
}

/// Ends the transaction state of a connection (RESET, DISCARD).
pub(super) fn reset(cx: &mut Ctx<'_>) {
    cx.conn.multi = None;
    cx.conn.watched.clear();
}

/// MULTI, DISCARD, WATCH, UNWATCH and EXEC. `run` handles one request as the dispatcher does.
pub(super) fn handle(
    cmd: Command,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    run: &mut dyn FnMut(&Args<'_>, &mut Ctx<'_>, &mut BytesMut),
) -> Reply {
    match cmd {
        Command::Multi => {
            if cx.conn.multi.is_some() {
                return Err(RespError::MultiNested);
            }
            cx.conn.multi = Some(Multi::default());
            encode_ok(out);
        }
        Command::Discard => {
            if cx.conn.multi.is_none() {
                return Err(RespError::DiscardWithoutMulti);
            }
            reset(cx);
            encode_ok(out);
        }
        Command::Watch => {
            if cx.conn.multi.is_some() {
                return Err(RespError::WatchInsideMulti);
            }
            for key in a.iter_from(1) {
                if !cx.conn.watched.iter().any(|(k, _)| **k == *key) {
                    let m = mark(cx.shared, key);
                    cx.conn.watched.push((key.into(), m));
                }
            }
            encode_ok(out);
        }
        Command::Unwatch => {
            cx.conn.watched.clear();
            encode_ok(out);
        }
        Command::Exec => exec(cx, out, run)?,
        _ => return Err(RespError::NotInGroup(cmd.wire())),
    }
    Ok(())
}

/// A key's mark: (CAS, expiry) of its live item, None when absent.
fn mark(shared: &Shared, key: &[u8]) -> Option<(u64, u64)> {
    shared.topology.load().entry(key, |e| {
        e.item().map(|i| {
            let m = i.meta();
            (m.cas, m.expire_at)
        })
    })
}

fn exec(
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    run: &mut dyn FnMut(&Args<'_>, &mut Ctx<'_>, &mut BytesMut),
) -> Reply {
    let Some(multi) = cx.conn.multi.take() else {
        return Err(RespError::ExecWithoutMulti);
    };
    let watched = std::mem::take(&mut cx.conn.watched);
    if multi.dirty {
        return Err(RespError::ExecAbort);
    }
    let mut body = |cx: &mut Ctx<'_>| {
        if watched.iter().any(|(k, m)| mark(cx.shared, k) != *m) {
            encode_null_array(out, cx.conn.version);
            return;
        }
        encode_array(out, multi.queue.len());
        cx.conn.in_exec = true;
        for q in &multi.queue {
            run(&q.args(), cx, out);
        }
        cx.conn.in_exec = false;
        // Clients blocked on keys the transaction fed are served before anyone else runs.
        serve_ready(cx, run);
    };
    match cx.pass {
        Some(pass) => pass.gate().exclusive(pass, || body(cx)),
        None => body(cx),
    }
    Ok(())
}
