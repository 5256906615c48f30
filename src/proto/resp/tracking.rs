//! Client-side caching: CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO with redis 7.0's
//! replies and errors, and the per-command bookkeeping (remember what a tracking client read,
//! invalidate what a command changed).
//!
//! Owns: `Conn::tracking` and its replies. Must not touch: the tracking table's internals
//! (`server::tracking`), the keyspace (it is told which keys changed by `notify`'s marks).
//!
//! Invariant: with no tracking connection, a command pays one relaxed load
//! (`Tracking::active`), checked by the dispatcher before anything here runs.

use bytes::BytesMut;

use super::command::Command;
use super::conn::{Conn, Ctx, Reply, TrackingMode};
use super::error::RespError;
use super::frame::{Args, encode_array, encode_bulk, encode_int, encode_map, encode_ok, parse_i64};
use super::pubsub::{encode_invalidation, mailbox};
use crate::server::Shared;
use crate::server::tracking::{Client, Target};

/// CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO.
pub(super) fn client(cx: &mut Ctx<'_>, sub: &str, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    match sub {
        "tracking" => tracking(cx, a, out),
        "caching" => {
            let yes = a.arg(2)?;
            let mode = cx
                .conn
                .tracking
                .as_deref_mut()
                .ok_or_else(|| RespError::CachingNotInMode)?;
            if yes.eq_ignore_ascii_case(b"yes") {
                if !mode.optin {
                    return Err(RespError::CachingYesNeedsOptin);
                }
                mode.caching = Some(true);
            } else if yes.eq_ignore_ascii_case(b"no") {
                if !mode.optout {
                    return Err(RespError::CachingNoNeedsOptout);
                }
                mode.caching = Some(false);
            } else {
                return Err(RespError::Syntax);
            }
            encode_ok(out);
            Ok(())
        }
        "getredir" => {
            encode_int(
                out,
                cx.conn.tracking.as_ref().map_or(-1, |m| m.redirect as i64),
            );
            Ok(())
        }
        _ => {
            trackinginfo(cx, out);
            Ok(())
        }
    }
}

fn tracking(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let on = a.arg(2)?;
    let on = if on.eq_ignore_ascii_case(b"on") {
        true
    } else if on.eq_ignore_ascii_case(b"off") {
        false
    } else {
        return Err(RespError::Syntax);
    };
    let mut mode = TrackingMode::default();
    let mut j = 3;
    while j < a.len() {
        let opt = a.arg(j)?;
        let more = a.len() - 1 - j;
        if opt.eq_ignore_ascii_case(b"redirect") && more >= 1 {
            j += 1;
            let id = parse_i64(a.arg(j)?).ok_or_else(|| RespError::NotInteger)?;
            // redis checks the target exists while parsing, before the other errors.
            if id <= 0 || !live(cx, id as u64) {
                return Err(RespError::NoSuchRedirect);
            }
            mode.redirect = id as u64;
        } else if opt.eq_ignore_ascii_case(b"bcast") {
            mode.bcast = true;
        } else if opt.eq_ignore_ascii_case(b"optin") {
            mode.optin = true;
        } else if opt.eq_ignore_ascii_case(b"optout") {
            mode.optout = true;
        } else if opt.eq_ignore_ascii_case(b"noloop") {
            mode.noloop = true;
        } else if opt.eq_ignore_ascii_case(b"prefix") && more >= 1 {
            j += 1;
            mode.prefixes.push(a.arg(j)?.into());
        } else {
            return Err(RespError::Syntax);
        }
        j += 1;
    }
    if !on {
        off(cx.conn, cx.shared);
        encode_ok(out);
        return Ok(());
    }
    // redis's order of checks (networking.c, CLIENT TRACKING ON).
    if !mode.bcast && !mode.prefixes.is_empty() {
        return Err(RespError::PrefixNeedsBcast);
    }
    if let Some(old) = &cx.conn.tracking {
        if old.bcast != mode.bcast {
            return Err(RespError::BcastSwitch);
        }
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return Err(RespError::OptWithBcast);
    }
    if mode.optin && mode.optout {
        return Err(RespError::OptinAndOptout);
    }
    if let Some(old) = &cx.conn.tracking {
        if (mode.optin && old.optout) || (mode.optout && old.optin) {
            return Err(RespError::OptSwitch);
        }
    }
    // redis `checkPrefixCollisionsOrReply`: one prefix of another (or equal) collides.
    let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    let existing: &[Box<[u8]>] = cx
        .conn
        .tracking
        .as_deref()
        .filter(|o| o.bcast)
        .map_or(&[], |o| &o.prefixes);
    for (i, p) in mode.prefixes.iter().enumerate() {
        if let Some(q) = existing.iter().find(|q| overlap(p, q)) {
            return Err(RespError::PrefixOverlapExisting(
                String::from_utf8_lossy(p).into_owned(),
                String::from_utf8_lossy(q).into_owned(),
            ));
        }
        if let Some(q) = mode.prefixes[i + 1..].iter().find(|q| overlap(p, q)) {
            return Err(RespError::PrefixOverlap(
                String::from_utf8_lossy(p).into_owned(),
                String::from_utf8_lossy(q).into_owned(),
            ));
        }
    }
    if mode.bcast && mode.prefixes.is_empty() && existing.is_empty() {
        mode.prefixes.push(Box::from(&b""[..]));
    }
    // BCAST prefixes add up over CLIENT TRACKING ON calls (redis).
    let mut prefixes = existing.to_vec();
    prefixes.append(&mut mode.prefixes);
    mode.prefixes = prefixes;
    let target = if mode.redirect != 0 && mode.redirect != cx.conn.id {
        Target::Redirect(mode.redirect)
    } else {
        Target::Own(mailbox(cx.conn, cx.shared))
    };
    cx.shared.pubsub.tracking.enable(
        cx.conn.id,
        Client {
            target,
            noloop: mode.noloop,
            prefixes: mode.prefixes.clone(),
            bcast: mode.bcast,
        },
    );
    cx.conn.tracking = Some(Box::new(mode));
    cx.conn.publish_subs();
    super::notify::refresh(cx.shared);
    encode_ok(out);
    Ok(())
}

/// Whether client `id` is connected (itself, or a RESP connection of the server).
fn live(cx: &Ctx<'_>, id: u64) -> bool {
    id == cx.conn.id || cx.shared.clients.get(id).is_some()
}

/// Turns tracking off (CLIENT TRACKING OFF, RESET, a closing connection).
pub(super) fn off(conn: &mut Conn, shared: &Shared) {
    if conn.tracking.take().is_some() {
        shared.pubsub.tracking.disable(conn.id);
        conn.publish_subs();
        super::notify::refresh(shared);
    }
}

fn trackinginfo(cx: &mut Ctx<'_>, out: &mut BytesMut) {
    let v = cx.conn.version;
    encode_map(out, 3, v);
    encode_bulk(out, b"flags");
    match &cx.conn.tracking {
        None => {
            encode_array(out, 1);
            encode_bulk(out, b"off");
        }
        Some(m) => {
            let mut flags: Vec<&[u8]> = vec![b"on"];
            if m.bcast {
                flags.push(b"bcast");
            }
            if m.optin {
                flags.push(b"optin");
            }
            if m.optout {
                flags.push(b"optout");
            }
            match m.caching {
                Some(true) => flags.push(b"caching-yes"),
                Some(false) => flags.push(b"caching-no"),
                None => {}
            }
            if m.noloop {
                flags.push(b"noloop");
            }
            if m.redirect != 0 && m.redirect != cx.conn.id && !live(cx, m.redirect) {
                flags.push(b"broken_redirect");
            }
            encode_array(out, flags.len());
            for f in flags {
                encode_bulk(out, f);
            }
        }
    }
    encode_bulk(out, b"redirect");
    encode_int(
        out,
        cx.conn.tracking.as_ref().map_or(-1, |m| m.redirect as i64),
    );
    encode_bulk(out, b"prefixes");
    let prefixes: Vec<&[u8]> = cx
        .conn
        .tracking
        .as_ref()
        .filter(|m| m.bcast)
        .map(|m| m.prefixes.iter().map(|p| &**p).collect())
        .unwrap_or_default();
    encode_array(out, prefixes.len());
    for p in prefixes {
        encode_bulk(out, p);
    }
}

/// After a command of a tracking connection (or any write while some connection tracks):
/// remembers what it read, invalidates what it changed (`changed`), a flush invalidates all.
/// Invalidations for the connection itself go after its reply, as redis sends them.
pub(super) fn after_command(
    cx: &mut Ctx<'_>,
    cmd: Command,
    a: &Args<'_>,
    changed: &[&[u8]],
    reply_ok: bool,
    out: &mut BytesMut,
) {
    let shared: &Shared = cx.shared;
    let tracking = &shared.pubsub.tracking;
    let id = cx.conn.id;
    for key in changed {
        if let Some(own) = tracking.invalidate(key, Some(id), encode_invalidation) {
            out.extend_from_slice(&own);
        }
    }
    if matches!(cmd, Command::FlushAll | Command::FlushDb) && reply_ok {
        if let Some(own) = tracking.flush(Some(id), encode_invalidation) {
            out.extend_from_slice(&own);
        }
    }
    let Some(mode) = cx.conn.tracking.as_deref_mut() else {
        return;
    };
    if cmd == Command::Client {
        // CLIENT CACHING sets the flag for the next command; nothing else clears it here.
        return;
    }
    let caching = mode.caching.take();
    if mode.bcast || !reply_ok || !cmd.flags().contains(&"readonly") {
        return;
    }
    let wanted = if mode.optin {
        caching == Some(true)
    } else if mode.optout {
        caching != Some(false)
    } else {
        true
    };
    if wanted {
        let keys = super::notify::read_keys(cmd, a);
        tracking.remember(id, keys.into_iter(), encode_invalidation);
    }
}
