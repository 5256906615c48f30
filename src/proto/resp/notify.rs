//! Keyspace notifications (`notify-keyspace-events`): after a write, `__keyspace@0__:<key>`
//! gets the event name and `__keyevent@0__:<event>` gets the key, as redis 7.0 publishes
//! them, for writes from both protocols and for the store's expiries and evictions.
//!
//! Owns: the event classes (redis's flag letters), the per-command event names, and the sink
//! the nodes report expired and evicted keys to. Must not touch: the registry's internals
//! (`server::pubsub`), the store (it reports through `store::KeyEvents`).
//!
//! Invariants:
//! - Off (the default), a write pays one relaxed load (`enabled`), and the nodes one relaxed
//!   load per locked operation (`Node::garbage`).
//! - On, a RESP write command's keys are marked (CAS and expiry, as WATCH marks them) before
//!   and after it runs; a key whose mark changed gets the command's event (and `del` if the
//!   command emptied it, `new` if it created it). A command whose reply says nothing changed
//!   (an error, `:0` from the counting commands) publishes nothing.

use std::sync::Arc;

use super::command::Command;
use super::frame::Args;
use super::pubsub::{encode_invalidation, encode_message};
use crate::server::Shared;
use crate::server::pubsub::Registry;
use crate::store::{KeyEvent, KeyEvents};

/// `K`: publish on `__keyspace@0__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@0__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME, ...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted-set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: expired keys.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: evicted keys.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: key misses.
pub const KEYMISS: u32 = 1 << 11;
/// `d`: module key types (none here).
pub const MODULE: u32 = 1 << 12;
/// `n`: new keys.
pub const NEW: u32 = 1 << 13;

/// redis `keyspaceEventsStringToFlags` (the value CONFIG SET has already checked).
pub fn parse_flags(value: &str) -> u32 {
    let mut flags = 0;
    for c in value.chars() {
        flags |= match c {
            'A' => {
                GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE
            }
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEYMISS,
            'd' => MODULE,
            'n' => NEW,
            _ => 0,
        };
    }
    flags
}

/// Applies `notify-keyspace-events = value` (CONFIG SET, or the config file at start).
pub fn configure(shared: &Shared, value: &str) {
    let flags = parse_flags(value);
    shared.pubsub.set_keyspace_flags(flags);
    refresh(shared);
}

/// Turns the nodes' reporting of expired and evicted keys on when notifications or tracking
/// need them, off otherwise.
pub fn refresh(shared: &Shared) {
    let report =
        reports_store_events(shared.pubsub.keyspace_flags()) || shared.pubsub.tracking.active();
    if report {
        shared.install_key_events(|| Arc::new(Sink(Arc::clone(&shared.pubsub))));
    }
    shared.report_key_events(report);
}

/// Whether the nodes must report expired and evicted keys under `flags`.
pub fn reports_store_events(flags: u32) -> bool {
    flags & (KEYSPACE | KEYEVENT) != 0 && flags & (EXPIRED | EVICTED) != 0
}

/// The sink the nodes report expired and evicted keys to.
struct Sink(Arc<Registry>);

impl KeyEvents for Sink {
    fn emit(&self, event: KeyEvent, key: &[u8]) {
        let (class, name) = match event {
            KeyEvent::Expired => (EXPIRED, "expired"),
            KeyEvent::Evicted => (EVICTED, "evicted"),
        };
        publish(&self.0, class, name, key);
        if self.0.tracking.active() {
            self.0.tracking.invalidate(key, None, encode_invalidation);
        }
    }
}

/// True when some notification may be published (the one load a write pays when off).
#[inline]
pub fn enabled(shared: &Shared) -> bool {
    shared.pubsub.keyspace_flags() & (KEYSPACE | KEYEVENT) != 0
}

/// redis `notifyKeyspaceEvent`: publishes `event` of `class` for `key` where the flags ask.
pub fn publish(registry: &Registry, class: u32, event: &str, key: &[u8]) {
    let flags = registry.keyspace_flags();
    if flags & class == 0 || flags & (KEYSPACE | KEYEVENT) == 0 {
        return;
    }
    let limit = registry.limit();
    let mut channel = Vec::with_capacity(24 + key.len().max(event.len()));
    if flags & KEYSPACE != 0 {
        channel.extend_from_slice(b"__keyspace@0__:");
        channel.extend_from_slice(key);
        registry.publish(&channel, event.as_bytes(), limit, encode_message);
    }
    if flags & KEYEVENT != 0 {
        channel.clear();
        channel.extend_from_slice(b"__keyevent@0__:");
        channel.extend_from_slice(event.as_bytes());
        registry.publish(&channel, key, limit, encode_message);
    }
}

/// What one key of a write command publishes when its mark changed.
#[derive(Clone, Copy)]
struct Rule {
    class: u32,
    event: &'static str,
    /// Also `expire` after the event (SET EX, SETEX, ...).
    expire: bool,
    /// What a key the command removed publishes.
    gone: Gone,
    /// The command looks the key up for reading first: `keymiss` if it was absent (PFMERGE's
    /// keys, the source of a geo STORE).
    read: bool,
}

/// What a key that the command removed publishes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gone {
    /// The event, then `del` (a pop that emptied a list).
    EventThenDel,
    /// `del` alone (DEL, a STORE with an empty result, EXPIRE in the past).
    Del,
    /// The event alone (RENAME's source).
    Event,
}

const fn rule(class: u32, event: &'static str) -> Rule {
    Rule {
        class,
        event,
        expire: false,
        gone: Gone::EventThenDel,
        read: false,
    }
}

const fn gone_is_del(class: u32, event: &'static str) -> Rule {
    Rule {
        class,
        event,
        expire: false,
        gone: Gone::Del,
        read: false,
    }
}

/// A key the command may change without any event (PFCOUNT's cached cardinality); only client
/// tracking hears of it.
const SILENT: Rule = rule(0, "");

/// A key read before the write: `keymiss` if absent, nothing else of its own.
const READ: Rule = Rule {
    read: true,
    ..SILENT
};

fn has_opt(a: &Args<'_>, from: usize, names: &[&[u8]]) -> bool {
    a.iter_from(from)
        .any(|x| names.iter().any(|n| x.eq_ignore_ascii_case(n)))
}

fn side(a: &Args<'_>, i: usize, left: &'static str, right: &'static str) -> &'static str {
    match a.arg(i) {
        Ok(w) if w.eq_ignore_ascii_case(b"left") => left,
        _ => right,
    }
}

/// The keys a write command touches and each one's rule; None: not a write with events.
fn rules<'a>(cmd: Command, a: &Args<'a>) -> Option<Vec<(&'a [u8], Rule)>> {
    use Command as C;
    let key = |i: usize| a.arg(i).ok();
    let one = |r: Rule| Some(vec![(key(1)?, r)]);
    let each = |from: usize, step: usize, r: Rule| {
        Some(
            a.iter_from(from)
                .step_by(step)
                .map(|k| (k, r))
                .collect::<Vec<_>>(),
        )
    };
    let expiring = has_opt(a, 3, &[b"ex", b"px", b"exat", b"pxat"]);
    match cmd {
        C::Set => one(Rule {
            expire: expiring,
            ..rule(STRING, "set")
        }),
        C::SetNx | C::GetSet => one(rule(STRING, "set")),
        C::SetEx | C::PSetEx => one(Rule {
            expire: true,
            ..rule(STRING, "set")
        }),
        C::MultiSet | C::MultiSetNx => each(1, 2, rule(STRING, "set")),
        C::Append => one(rule(STRING, "append")),
        C::Incr | C::Decr | C::IncrBy | C::DecrBy => one(rule(STRING, "incrby")),
        C::IncrByFloat => one(rule(STRING, "incrbyfloat")),
        C::SetRange => one(rule(STRING, "setrange")),
        C::GetDelete | C::Delete | C::Unlink => each(1, 1, gone_is_del(GENERIC, "del")),
        C::GetEx => {
            if has_opt(a, 2, &[b"persist"]) {
                one(rule(GENERIC, "persist"))
            } else if has_opt(a, 2, &[b"ex", b"px", b"exat", b"pxat"]) {
                one(gone_is_del(GENERIC, "expire"))
            } else {
                None
            }
        }
        C::Expire | C::PExpire | C::ExpireAt | C::PExpireAt => one(gone_is_del(GENERIC, "expire")),
        C::Persist => one(rule(GENERIC, "persist")),
        C::Rename | C::RenameNx => Some(vec![
            (
                key(1)?,
                Rule {
                    gone: Gone::Event,
                    ..rule(GENERIC, "rename_from")
                },
            ),
            (key(2)?, rule(GENERIC, "rename_to")),
        ]),
        C::Copy => Some(vec![(key(2)?, rule(GENERIC, "copy_to"))]),
        C::Restore => one(rule(GENERIC, "restore")),
        C::HSet | C::HSetNx | C::HMSet => one(rule(HASH, "hset")),
        C::HDel => one(rule(HASH, "hdel")),
        C::HIncrBy => one(rule(HASH, "hincrby")),
        C::HIncrByFloat => one(rule(HASH, "hincrbyfloat")),
        C::LPush | C::LPushX => one(rule(LIST, "lpush")),
        C::RPush | C::RPushX => one(rule(LIST, "rpush")),
        C::LPop => one(rule(LIST, "lpop")),
        C::RPop => one(rule(LIST, "rpop")),
        C::BLPop => each(1, 1, rule(LIST, "lpop")),
        C::BRPop => each(1, 1, rule(LIST, "rpop")),
        C::LSet => one(rule(LIST, "lset")),
        C::LRem => one(rule(LIST, "lrem")),
        C::LTrim => one(rule(LIST, "ltrim")),
        C::LInsert => one(rule(LIST, "linsert")),
        // redis pushes (and notifies) the destination first.
        C::RPopLPush | C::BRPopLPush => Some(vec![
            (key(2)?, rule(LIST, "lpush")),
            (key(1)?, rule(LIST, "rpop")),
        ]),
        C::LMove | C::BLMove => Some(vec![
            (key(2)?, rule(LIST, side(a, 4, "lpush", "rpush"))),
            (key(1)?, rule(LIST, side(a, 3, "lpop", "rpop"))),
        ]),
        C::LMPop | C::BLMPop | C::ZMPop | C::BZMPop => {
            let first = if matches!(cmd, C::LMPop | C::ZMPop) {
                2
            } else {
                3
            };
            let n: usize = std::str::from_utf8(a.arg(first - 1).ok()?)
                .ok()?
                .parse()
                .ok()?;
            let dir = a.arg(first.checked_add(n)?).ok()?;
            let r = match cmd {
                C::LMPop | C::BLMPop if dir.eq_ignore_ascii_case(b"left") => rule(LIST, "lpop"),
                C::LMPop | C::BLMPop => rule(LIST, "rpop"),
                _ if dir.eq_ignore_ascii_case(b"min") => rule(ZSET, "zpopmin"),
                _ => rule(ZSET, "zpopmax"),
            };
            Some(a.iter_from(first).take(n).map(|k| (k, r)).collect())
        }
        C::SAdd => one(rule(SET, "sadd")),
        C::SRem => one(rule(SET, "srem")),
        C::SPop => one(rule(SET, "spop")),
        C::SMove => Some(vec![
            (key(1)?, rule(SET, "srem")),
            (key(2)?, rule(SET, "sadd")),
        ]),
        C::SInterStore => one(gone_is_del(SET, "sinterstore")),
        C::SUnionStore => one(gone_is_del(SET, "sunionstore")),
        C::SDiffStore => one(gone_is_del(SET, "sdiffstore")),
        C::ZAdd => one(rule(
            ZSET,
            if has_opt(a, 2, &[b"incr"]) {
                "zincr"
            } else {
                "zadd"
            },
        )),
        C::ZIncrBy => one(rule(ZSET, "zincr")),
        C::ZRem => one(rule(ZSET, "zrem")),
        C::ZRemRangeByRank => one(rule(ZSET, "zremrangebyrank")),
        C::ZRemRangeByScore => one(rule(ZSET, "zremrangebyscore")),
        C::ZRemRangeByLex => one(rule(ZSET, "zremrangebylex")),
        C::ZPopMin | C::BZPopMin => each(1, 1, rule(ZSET, "zpopmin")),
        C::ZPopMax | C::BZPopMax => each(1, 1, rule(ZSET, "zpopmax")),
        C::ZUnionStore => one(gone_is_del(ZSET, "zunionstore")),
        C::ZInterStore => one(gone_is_del(ZSET, "zinterstore")),
        C::ZDiffStore => one(gone_is_del(ZSET, "zdiffstore")),
        C::ZRangeStore => one(gone_is_del(ZSET, "zrangestore")),
        C::PfAdd => one(rule(STRING, "pfadd")),
        // XADD publishes its own events (`new`, `xadd`, `xtrim` when its trim removed
        // entries): the key is marked here for client tracking only.
        C::XAdd => one(SILENT),
        C::XDel => one(rule(STREAM, "xdel")),
        C::XTrim => one(rule(STREAM, "xtrim")),
        // XSETID and XGROUP publish their own events: redis does not signal them as
        // modifying the key (WATCH and tracking ignore them), so no mark changes.
        // PFMERGE reads every key (the destination too), then writes the destination, with
        // PFADD's event.
        C::PfMerge => Some(
            std::iter::once((
                key(1)?,
                Rule {
                    read: true,
                    ..rule(STRING, "pfadd")
                },
            ))
            .chain(a.iter_from(2).map(|k| (k, READ)))
            .collect(),
        ),
        // GEOADD runs as ZADD in redis.
        C::GeoAdd => one(rule(ZSET, "zadd")),
        C::GeoSearchStore => Some(vec![
            (key(2)?, READ),
            (key(1)?, gone_is_del(ZSET, "geosearchstore")),
        ]),
        // Write commands (STORE is optional) that read their source first.
        C::GeoRadius | C::GeoRadiusByMember => {
            let mut keys = vec![(key(1)?, READ)];
            if let Some(dst) = super::geo::store_key(cmd, a) {
                keys.push((dst, gone_is_del(ZSET, "georadiusstore")));
            }
            Some(keys)
        }
        // PFCOUNT of one key stores the cardinality it computed: no event, but redis signals
        // the key as modified (tracking clients drop it).
        C::PfCount if a.len() == 2 => one(SILENT),
        _ => None,
    }
}

/// The keys at the command table's key positions (for a read-only command, the keys it reads).
pub(super) fn read_keys<'a>(cmd: Command, a: &Args<'a>) -> Vec<&'a [u8]> {
    let (first, last, step) = cmd.key_positions();
    if first <= 0 || step <= 0 {
        return Vec::new();
    }
    let n = a.len() as i64;
    let last = if last < 0 { n + last } else { last.min(n - 1) };
    (first..=last)
        .step_by(step as usize)
        .filter_map(|i| a.arg(i as usize).ok())
        .collect()
}

/// After a read-only command (or GETDEL, GETEX, which read the key as redis's reads do):
/// `keymiss` for each key it looked for and did not find (the `m` class).
pub(super) fn keymiss(shared: &Shared, cmd: Command, a: &Args<'_>, reply: &[u8]) {
    if shared.pubsub.keyspace_flags() & KEYMISS == 0 {
        return;
    }
    let keys = match cmd {
        // They may remove the key they found: the null reply is what says it was missing.
        Command::GetDelete | Command::GetEx => {
            if reply == b"$-1\r\n" || reply == b"_\r\n" {
                if let Ok(key) = a.arg(1) {
                    publish(&shared.pubsub, KEYMISS, "keymiss", key);
                }
            }
            return;
        }
        // Its keys follow STREAMS (the table gives no positions: movable keys); redis looks
        // each up twice when it answers (resolving the IDs, then reading).
        Command::XRead => {
            let keys = super::args::stream_keys(a);
            let twice = !matches!(reply.first(), Some(b'-' | b'!'));
            let again = if twice { keys.clone() } else { Vec::new() };
            keys.into_iter().chain(again).collect()
        }
        _ if cmd.flags().contains(&"readonly") => read_keys(cmd, a),
        _ => return,
    };
    for key in keys {
        if mark(shared, key).is_none() {
            publish(&shared.pubsub, KEYMISS, "keymiss", key);
        }
    }
}

/// A key's mark: (CAS, expiry) of its live item, None when absent (what WATCH compares).
type Mark = Option<(u64, u64)>;

fn mark(shared: &Shared, key: &[u8]) -> Mark {
    shared.topology.load().entry(key, |e| {
        e.item().map(|i| {
            let m = i.meta();
            (m.cas, m.expire_at)
        })
    })
}

/// The marks of a write command's keys before it runs (None: it publishes nothing).
pub(super) struct Before<'a> {
    keys: Vec<(&'a [u8], Rule, Mark)>,
}

/// Called before a command runs when notifications are on: marks its keys.
pub(super) fn before<'a>(shared: &Shared, cmd: Command, a: &Args<'a>) -> Option<Before<'a>> {
    let keys = rules(cmd, a)?
        .into_iter()
        .map(|(k, r)| (k, r, mark(shared, k)))
        .collect();
    Some(Before { keys })
}

/// Commands whose `:0` reply means they changed nothing (HSET and ZADD answer `:0` for an
/// update, which redis does notify).
fn zero_is_unchanged(cmd: Command) -> bool {
    use Command as C;
    matches!(
        cmd,
        C::SAdd
            | C::XDel
            | C::XTrim
            | C::SRem
            | C::HDel
            | C::HSetNx
            | C::ZRem
            | C::LRem
            | C::SMove
            | C::SetNx
            | C::MultiSetNx
            | C::Persist
            | C::Expire
            | C::PExpire
            | C::ExpireAt
            | C::PExpireAt
            | C::RenameNx
            | C::Copy
            | C::ZRemRangeByRank
            | C::ZRemRangeByScore
            | C::ZRemRangeByLex
            | C::LPushX
            | C::RPushX
    )
}

/// After `cmd` ran with `reply`: publishes for each key whose mark changed; returns those
/// keys (what client-side caching invalidates).
pub(super) fn after<'a>(
    shared: &Shared,
    cmd: Command,
    before: Before<'a>,
    reply: &[u8],
) -> Vec<&'a [u8]> {
    let mut changed = Vec::new();
    let registry = &shared.pubsub;
    // Lookups for reading come first in redis, whatever the command answers then.
    if registry.keyspace_flags() & KEYMISS != 0 {
        for (key, r, was) in &before.keys {
            if r.read && was.is_none() {
                publish(registry, KEYMISS, "keymiss", key);
            }
        }
    }
    if matches!(reply.first(), Some(b'-' | b'!')) || (reply == b":0\r\n" && zero_is_unchanged(cmd))
    {
        return changed;
    }
    for (key, r, was) in before.keys {
        let now = mark(shared, key);
        if now == was {
            continue;
        }
        changed.push(key);
        // A silent or read-only rule (a geo STORE's source may be its destination too).
        if r.event.is_empty() {
            continue;
        }
        if was.is_none() && now.is_some() {
            publish(registry, NEW, "new", key);
        }
        if now.is_none() {
            if r.gone != Gone::Del {
                publish(registry, r.class, r.event, key);
            }
            if r.gone != Gone::Event {
                publish(registry, GENERIC, "del", key);
            }
            continue;
        }
        publish(registry, r.class, r.event, key);
        if r.expire {
            publish(registry, GENERIC, "expire", key);
        }
    }
    changed
}

/// For the memcached protocol: one event for one key it changed (the caller knows what it
/// did); also invalidates the key for tracking clients.
pub fn memcache_event(shared: &Shared, class: u32, event: &str, key: &[u8]) {
    if enabled(shared) {
        publish(&shared.pubsub, class, event, key);
    }
    if shared.pubsub.tracking.active() {
        shared
            .pubsub
            .tracking
            .invalidate(key, None, encode_invalidation);
    }
}

/// For the memcached protocol: `flush_all` invalidates everything for tracking clients.
pub fn memcache_flush(shared: &Shared) {
    if shared.pubsub.tracking.active() {
        shared.pubsub.tracking.flush(None, encode_invalidation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(parts: &[&[u8]]) -> (Vec<u8>, Vec<(usize, usize)>) {
        let mut buf = Vec::new();
        let mut ranges = Vec::new();
        for p in parts {
            ranges.push((buf.len(), p.len()));
            buf.extend_from_slice(p);
        }
        (buf, ranges)
    }

    /// `rules` runs before the command checks its arguments: whatever they are, it must not
    /// panic (huge counts, missing directions, too few keys).
    #[test]
    fn rules_take_any_arguments() {
        let shapes: &[&[&[u8]]] = &[
            &[b"k"],
            &[b"18446744073709551615", b"k", b"left"],
            &[b"1", b"k"],
            &[b"2", b"k"],
            &[b"-1", b"k", b"right"],
            &[b"k", b"v", b"EX", b"10"],
            &[b"k", b"k2", b"LEFT", b"RIGHT"],
            &[b"0", b"1", b"k", b"MIN"],
        ];
        for &cmd in Command::ALL {
            for shape in shapes {
                let mut parts: Vec<&[u8]> = vec![cmd.wire().as_bytes()];
                parts.extend_from_slice(shape);
                let (buf, ranges) = args_of(&parts);
                let _ = rules(cmd, &Args::new(&buf, &ranges));
            }
        }
        let (buf, ranges) = args_of(&[b"lmove", b"a", b"b", b"LEFT", b"RIGHT"]);
        let keys = rules(Command::LMove, &Args::new(&buf, &ranges)).expect("a write");
        let events: Vec<_> = keys.iter().map(|(k, r)| (*k, r.event)).collect();
        assert_eq!(events, [(&b"b"[..], "rpush"), (&b"a"[..], "lpop")]);
    }

    #[test]
    fn flags_follow_redis_letters() {
        assert_eq!(parse_flags(""), 0);
        assert_eq!(
            parse_flags("KEA") & (KEYSPACE | KEYEVENT),
            KEYSPACE | KEYEVENT
        );
        assert_eq!(parse_flags("A") & NEW, 0, "A does not include n");
        assert_eq!(parse_flags("A") & KEYMISS, 0, "A does not include m");
        assert_eq!(parse_flags("Ex"), KEYEVENT | EXPIRED);
        assert!(reports_store_events(parse_flags("Kx")));
        assert!(!reports_store_events(parse_flags("K$")));
        assert!(!reports_store_events(parse_flags("x")));
    }
}
