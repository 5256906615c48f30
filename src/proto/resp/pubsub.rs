//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE,
//! SUNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB (CHANNELS NUMSUB NUMPAT SHARDCHANNELS SHARDNUMSUB
//! HELP), with redis-server 7.0's replies; the message encoding publishers use.
//!
//! Owns: a connection's side of its subscriptions (`Conn::subs`, `Conn::mailbox`) and their
//! replies. Must not touch: the registry's internals (`server::pubsub`), sockets (messages wait
//! in the mailbox; the session moves them to the output, the driver wakes the session).
//!
//! Invariants:
//! - A name is in the registry for this connection exactly when it is in `Conn::subs`;
//!   [`leave`] removes them all (RESET, disconnect).
//! - Subscription replies are pushes in RESP3 (`>3`), arrays in RESP2, one per name, with the
//!   count redis gives: channels + patterns for (P)(UN)SUBSCRIBE, shard channels for
//!   S(UN)SUBSCRIBE.

use std::sync::Arc;

use bytes::BytesMut;

use super::command::Command;
use super::conn::{Conn, Ctx, Reply};
use super::error::RespError;
use super::frame::{
    Args, Version, encode_array, encode_bulk, encode_int, encode_null, encode_push, encode_simple,
};
use crate::server::Shared;
use crate::server::pubsub::{Kind, Mailbox};

/// Runs a pub/sub command (its arity is checked).
pub(super) fn handle(
    cmd: Command,
    sub: Option<&'static str>,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
) -> Reply {
    match cmd {
        Command::Subscribe => subscribe(cx, a, out, Kind::Channel),
        Command::PSubscribe => subscribe(cx, a, out, Kind::Pattern),
        Command::SSubscribe => {
            if cx.conn.in_exec {
                return Err(RespError::DenyBlocking("SSUBSCRIBE"));
            }
            subscribe(cx, a, out, Kind::Shard)
        }
        Command::Unsubscribe => unsubscribe(cx, a, out, Kind::Channel),
        Command::PUnsubscribe => unsubscribe(cx, a, out, Kind::Pattern),
        Command::SUnsubscribe => unsubscribe(cx, a, out, Kind::Shard),
        Command::Publish | Command::SPublish => {
            let (channel, payload) = (a.arg(1)?, a.arg(2)?);
            let limit = cx.limits.max_output_buffer;
            let n = if cmd == Command::Publish {
                cx.shared
                    .pubsub
                    .publish(channel, payload, limit, encode_message)
            } else {
                cx.shared
                    .pubsub
                    .spublish(channel, payload, limit, encode_message)
            };
            encode_int(out, n as i64);
            Ok(())
        }
        Command::PubSub => pubsub(cx, sub, a, out),
        _ => Err(RespError::NotInGroup(cmd.wire())),
    }
    .inspect(|()| mark_subscribed(cx.conn))
}

/// Tells the mailbox whether the connection has subscriptions (tracking's RESP2 redirect
/// only writes to a connection in subscribe mode).
fn mark_subscribed(conn: &Conn) {
    if let Some(m) = &conn.mailbox {
        m.set_subscribed(conn.subs.any());
    }
    conn.publish_subs();
}

/// The message frames publishers put in mailboxes (see `server::pubsub::Encode`).
pub fn encode_message(
    out: &mut BytesMut,
    kind: &[u8],
    pattern: Option<&[u8]>,
    channel: &[u8],
    payload: &[u8],
) {
    out.reserve(kind.len() + channel.len() + payload.len() + 48);
    encode_array(out, if pattern.is_some() { 4 } else { 3 });
    encode_bulk(out, kind);
    if let Some(p) = pattern {
        encode_bulk(out, p);
    }
    encode_bulk(out, channel);
    encode_bulk(out, payload);
}

/// The connection's mailbox, made (and listed in the registry's directory) on first use.
pub(super) fn mailbox(conn: &mut Conn, shared: &Shared) -> Arc<Mailbox> {
    let resp3 = conn.version == Version::Resp3;
    Arc::clone(conn.mailbox.get_or_insert_with(|| {
        let m = Mailbox::new(conn.id, resp3);
        shared.pubsub.register(&m);
        m
    }))
}

/// An invalidation message (see `server::tracking::Invalidation`): RESP3
/// `>2 invalidate [keys]`, RESP2 `*3 message __redis__:invalidate [keys]`; a null list for a
/// flush.
pub fn encode_invalidation(out: &mut BytesMut, keys: Option<&[&[u8]]>, resp3: bool) {
    let v = if resp3 {
        Version::Resp3
    } else {
        Version::Resp2
    };
    if resp3 {
        encode_push(out, 2, v);
        encode_bulk(out, b"invalidate");
    } else {
        encode_array(out, 3);
        encode_bulk(out, b"message");
        encode_bulk(out, b"__redis__:invalidate");
    }
    match keys {
        Some(keys) => {
            encode_array(out, keys.len());
            for k in keys {
                encode_bulk(out, k);
            }
        }
        None => encode_null(out, v),
    }
}

fn names(conn: &Conn, kind: Kind) -> usize {
    match kind {
        Kind::Shard => conn.subs.shard.len(),
        _ => conn.subs.count(),
    }
}

fn verb(kind: Kind, subscribe: bool) -> &'static [u8] {
    match (kind, subscribe) {
        (Kind::Channel, true) => b"subscribe",
        (Kind::Pattern, true) => b"psubscribe",
        (Kind::Shard, true) => b"ssubscribe",
        (Kind::Channel, false) => b"unsubscribe",
        (Kind::Pattern, false) => b"punsubscribe",
        (Kind::Shard, false) => b"sunsubscribe",
    }
}

fn confirm(out: &mut BytesMut, conn: &Conn, kind: Kind, subscribe: bool, name: Option<&[u8]>) {
    let v = conn.version;
    encode_push(out, 3, v);
    encode_bulk(out, verb(kind, subscribe));
    match name {
        Some(n) => encode_bulk(out, n),
        None => encode_null(out, v),
    }
    encode_int(out, names(conn, kind) as i64);
}

fn subscribe(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut, kind: Kind) -> Reply {
    let mailbox = mailbox(cx.conn, cx.shared);
    for name in a.iter_from(1) {
        let subs = &mut cx.conn.subs;
        let new = match kind {
            Kind::Channel => !subs.channels.contains(name) && subs.channels.insert(name.into()),
            Kind::Shard => !subs.shard.contains(name) && subs.shard.insert(name.into()),
            Kind::Pattern => {
                if subs.patterns.contains_key(name) {
                    false
                } else {
                    subs.patterns.insert(name.into(), subs.next_pattern);
                    subs.next_pattern += 1;
                    true
                }
            }
        };
        if new {
            cx.shared.pubsub.subscribe(kind, name, &mailbox);
        }
        confirm(out, cx.conn, kind, true, Some(name));
    }
    Ok(())
}

fn unsubscribe(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut, kind: Kind) -> Reply {
    let id = cx.conn.id;
    if a.len() > 1 {
        for name in a.iter_from(1) {
            let subs = &mut cx.conn.subs;
            let was = match kind {
                Kind::Channel => subs.channels.remove(name),
                Kind::Shard => subs.shard.remove(name),
                Kind::Pattern => subs.patterns.remove(name).is_some(),
            };
            if was {
                cx.shared.pubsub.unsubscribe(kind, name, id);
            }
            confirm(out, cx.conn, kind, false, Some(name));
        }
        return Ok(());
    }
    let all = take_all(cx.conn, kind);
    if all.is_empty() {
        confirm(out, cx.conn, kind, false, None);
        return Ok(());
    }
    cx.shared
        .pubsub
        .unsubscribe_all(kind, all.iter().map(|n| &**n), id);
    // The count after each name, as redis removes them one by one.
    let v = cx.conn.version;
    let base = names(cx.conn, kind);
    for (i, name) in all.iter().enumerate() {
        encode_push(out, 3, v);
        encode_bulk(out, verb(kind, false));
        encode_bulk(out, name);
        encode_int(out, (base + all.len() - 1 - i) as i64);
    }
    Ok(())
}

/// Removes every subscription of `kind` from the connection; the names, in the order redis
/// answers them (patterns in subscription order).
fn take_all(conn: &mut Conn, kind: Kind) -> Vec<Box<[u8]>> {
    let subs = &mut conn.subs;
    match kind {
        Kind::Channel => subs.channels.drain().collect(),
        Kind::Shard => subs.shard.drain().collect(),
        Kind::Pattern => {
            let mut all: Vec<_> = subs.patterns.drain().collect();
            all.sort_unstable_by_key(|&(_, order)| order);
            all.into_iter().map(|(p, _)| p).collect()
        }
    }
}

/// Drops every subscription without replies (RESET, a closing connection).
pub(super) fn leave(conn: &mut Conn, shared: &Shared) {
    if !conn.subs.any() {
        return;
    }
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        let all = take_all(conn, kind);
        if !all.is_empty() {
            shared
                .pubsub
                .unsubscribe_all(kind, all.iter().map(|n| &**n), conn.id);
        }
    }
    mark_subscribed(conn);
}

fn pubsub(cx: &mut Ctx<'_>, sub: Option<&str>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let registry = &cx.shared.pubsub;
    match sub.unwrap_or_default() {
        sub @ ("channels" | "shardchannels") => {
            if a.len() > 3 {
                return Err(RespError::PubSubSyntax(
                    String::from_utf8_lossy(a.arg(1)?).into_owned(),
                ));
            }
            let kind = if sub == "channels" {
                Kind::Channel
            } else {
                Kind::Shard
            };
            let pattern = if a.len() == 3 { Some(a.arg(2)?) } else { None };
            let list = registry.names(kind, pattern);
            encode_array(out, list.len());
            for n in &list {
                encode_bulk(out, n);
            }
        }
        sub @ ("numsub" | "shardnumsub") => {
            let kind = if sub == "numsub" {
                Kind::Channel
            } else {
                Kind::Shard
            };
            encode_array(out, 2 * (a.len() - 2));
            for name in a.iter_from(2) {
                encode_bulk(out, name);
                encode_int(out, registry.count(kind, name) as i64);
            }
        }
        "numpat" => encode_int(out, registry.len(Kind::Pattern) as i64),
        _ => {
            const HELP: &[&str] = &[
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
                "HELP",
                "    Prints this help.",
            ];
            encode_array(out, HELP.len());
            for line in HELP {
                encode_simple(out, line.as_bytes());
            }
        }
    }
    Ok(())
}

/// The RESP2 subscribe-mode gate: with any subscription, a RESP2 connection may only run
/// these (redis's `processCommand`).
pub(super) fn allowed_when_subscribed(cmd: Command) -> bool {
    matches!(
        cmd,
        Command::Ping
            | Command::Subscribe
            | Command::SSubscribe
            | Command::Unsubscribe
            | Command::SUnsubscribe
            | Command::PSubscribe
            | Command::PUnsubscribe
            | Command::Quit
            | Command::Reset
    )
}

/// PING's reply in RESP2 subscribe mode: `["pong", message or ""]`.
pub(super) fn subscribed_pong(out: &mut BytesMut, message: Option<&[u8]>) {
    encode_array(out, 2);
    encode_bulk(out, b"pong");
    encode_bulk(out, message.unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_frame_is_a_resp2_array_of_bulks() {
        let mut out = BytesMut::new();
        encode_message(&mut out, b"message", None, b"ch", b"hi");
        assert_eq!(&out[..], b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        out.clear();
        encode_message(&mut out, b"pmessage", Some(b"c*"), b"ch", b"");
        assert_eq!(
            &out[..],
            b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$0\r\n\r\n"
        );
    }
}
