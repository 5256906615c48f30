//! Server commands: COMMAND (COUNT, LIST, INFO, DOCS), INFO, CONFIG (GET, SET, RESETSTAT),
//! DBSIZE, FLUSHDB/FLUSHALL, TIME, and the HELP replies of the container commands; MEMORY is
//! routed on to `object`.
//!
//! Owns: these replies, built from the command table (`command`) and the server's state.
//! Must not touch: the keyspace beyond counting and flushing it, framing, the config file
//! (CONFIG SET is refused: ringcache is configured by its file).
//!
//! Invariant: COMMAND INFO/DOCS are generated from the table (arity, flags, key positions,
//! group), so a command added to the table is described without further code.

use bytes::BytesMut;

use super::command::{self, Command};
use super::conn::{Ctx, Reply};
use super::error::RespError;
use super::frame::{
    Args, Version, encode_array, encode_bulk, encode_int, encode_map, encode_null_array, encode_ok,
    encode_set, encode_simple, encode_verbatim,
};
use super::params;
use crate::persist::snapshot;
use crate::server::Stats;
use crate::server::pubsub::Kind;
use crate::store::glob::glob;
use crate::store::{Node, NodeStats};
use std::sync::Arc;

/// The redis version this server answers as (clients gate features on it).
pub const REDIS_VERSION: &str = "7.0.15";

/// Runs a server command (its arity is checked).
pub(super) fn handle(
    cmd: Command,
    sub: Option<&'static str>,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
) -> Reply {
    let v = cx.conn.version;
    let shared = cx.shared;
    match cmd {
        Command::CommandInfo => command_info(sub, a, v, out),
        Command::Info => info(cx, a, out),
        Command::Memory => super::object::memory(sub, a, cx, out),
        Command::DbSize => {
            let n = keyspace_count(cx, |holders| holders.iter().map(|n| n.len()).sum::<u64>());
            encode_int(out, n as i64);
            Ok(())
        }
        Command::FlushDb | Command::FlushAll => {
            let ok = match a.len() {
                1 => true,
                2 => {
                    a.arg(1)?.eq_ignore_ascii_case(b"sync")
                        || a.arg(1)?.eq_ignore_ascii_case(b"async")
                }
                _ => false,
            };
            if !ok {
                return Err(RespError::Syntax);
            }
            // Every node that may hold keys, draining ones included (see `Topology::flush`).
            shared.topology.load().flush(0);
            Stats::add(&shared.stats.cmd_flush, 1);
            encode_ok(out);
            Ok(())
        }
        Command::Save | Command::BgSave => save(cx, cmd == Command::BgSave, a, out),
        Command::LastSave => {
            let at = shared
                .snapshots
                .as_ref()
                .map_or(shared.started_unix, |s| s.last_save_unix());
            encode_int(out, at as i64);
            Ok(())
        }
        Command::Time => {
            let micros = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros());
            encode_array(out, 2);
            let mut buf = itoa::Buffer::new();
            encode_bulk(out, buf.format((micros / 1_000_000) as u64).as_bytes());
            encode_bulk(out, buf.format((micros % 1_000_000) as u64).as_bytes());
            Ok(())
        }
        Command::Config => config(cx, sub, a, out),
        _ => Err(RespError::NotInGroup(cmd.wire())),
    }
}

/// A HELP reply as redis writes one: its header, `lines` (each subcommand, then its
/// description indented by four spaces), and HELP with its own description.
pub(super) fn help(out: &mut BytesMut, cmd: &str, lines: &[&str]) {
    encode_array(out, lines.len() + 3);
    encode_simple(
        out,
        format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").as_bytes(),
    );
    for l in lines {
        encode_simple(out, l.as_bytes());
    }
    encode_simple(out, b"HELP");
    encode_simple(out, b"    Prints this help.");
}

fn command_entry(cmd: Command, v: Version, out: &mut BytesMut) {
    encode_array(out, 10);
    encode_bulk(out, cmd.wire().as_bytes());
    encode_int(out, i64::from(cmd.arity()));
    encode_set(out, cmd.flags().len(), v);
    for f in cmd.flags() {
        encode_simple(out, f.as_bytes());
    }
    let (first, last, step) = cmd.key_positions();
    encode_int(out, first);
    encode_int(out, last);
    encode_int(out, step);
    encode_set(out, 0, v);
    encode_set(out, 0, v);
    encode_array(out, 0);
    let subs: Vec<_> = command::SUBCOMMANDS
        .iter()
        .filter(|(c, _, _)| *c == cmd)
        .collect();
    encode_array(out, subs.len());
    for (c, name, arity) in subs {
        encode_array(out, 10);
        encode_bulk(out, format!("{}|{}", c.wire(), name).as_bytes());
        encode_int(out, i64::from(*arity));
        encode_set(out, 0, v);
        for _ in 0..3 {
            encode_int(out, 0);
        }
        encode_set(out, 0, v);
        encode_set(out, 0, v);
        encode_array(out, 0);
        encode_array(out, 0);
    }
}

fn command_info(sub: Option<&str>, a: &Args<'_>, v: Version, out: &mut BytesMut) -> Reply {
    match sub {
        None => {
            encode_array(out, Command::ALL.len());
            for &c in Command::ALL {
                command_entry(c, v, out);
            }
        }
        Some("count") => encode_int(out, Command::ALL.len() as i64),
        Some("list") => {
            encode_array(out, Command::ALL.len());
            for c in Command::ALL {
                encode_bulk(out, c.wire().as_bytes());
            }
        }
        Some("info") => {
            if a.len() == 2 {
                return command_info(None, a, v, out);
            }
            encode_array(out, a.len() - 2);
            for name in a.iter_from(2) {
                match Command::lookup(name) {
                    Some(c) => command_entry(c, v, out),
                    None => encode_null_array(out, v),
                }
            }
        }
        Some("docs") => {
            let cmds: Vec<Command> = if a.len() == 2 {
                Command::ALL.to_vec()
            } else {
                a.iter_from(2).filter_map(Command::lookup).collect()
            };
            encode_map(out, cmds.len(), v);
            for c in cmds {
                encode_bulk(out, c.wire().as_bytes());
                encode_map(out, 3, v);
                encode_bulk(out, b"summary");
                encode_bulk(
                    out,
                    format!("The {} command.", c.wire().to_uppercase()).as_bytes(),
                );
                encode_bulk(out, b"since");
                encode_bulk(out, b"1.0.0");
                encode_bulk(out, b"group");
                encode_bulk(out, c.group().wire().as_bytes());
            }
        }
        _ => help(
            out,
            "COMMAND",
            &[
                "COUNT",
                "DOCS [<command-name> ...]",
                "INFO [<command-name> ...]",
                "LIST",
            ],
        ),
    }
    Ok(())
}

/// Runs `count` over every node holding keys of the keyspace: this ring's and, during a
/// migration, the draining ones. During a migration it runs exclusively (no session batch and
/// no chunk of the migrator in flight, see `server::gate`), so that no key is counted on two
/// nodes or on none while it moves.
fn keyspace_count<R>(cx: &Ctx<'_>, count: impl FnOnce(&[std::sync::Arc<Node>]) -> R) -> R {
    let topo = cx.shared.topology.load();
    match cx.pass {
        Some(pass) if topo.is_migrating() => pass.gate().exclusive(pass, || {
            let topo = cx.shared.topology.load();
            count(&topo.holders())
        }),
        _ => count(&topo.holders()),
    }
}

fn config_params(cx: &Ctx<'_>) -> Vec<(&'static str, String)> {
    let topo = cx.shared.topology.load();
    let max: u64 = topo.nodes.iter().map(|n| n.max_memory()).sum();
    let l = cx.limits;
    let port = cx.conn.local.map_or(0, |a| a.port());
    vec![
        ("maxmemory", max.to_string()),
        ("maxmemory-policy", "allkeys-lru".into()),
        ("maxclients", l.max_connections.to_string()),
        ("timeout", l.idle_timeout.as_secs().to_string()),
        ("proto-max-bulk-len", l.proto_max_bulk_len.to_string()),
        (
            "client-query-buffer-limit",
            l.resp_request_max().to_string(),
        ),
        (
            "save",
            cx.shared.snapshots.as_ref().map_or_else(String::new, |s| {
                s.rules()
                    .iter()
                    .map(|r| format!("{} {}", r.after.as_secs(), r.changes))
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
        ),
        ("appendonly", "no".into()),
        ("databases", "1".into()),
        ("cluster-enabled", "no".into()),
        ("port", port.to_string()),
        (
            "bind",
            cx.conn
                .local
                .map_or_else(String::new, |a| a.ip().to_string()),
        ),
        ("maxmemory-samples", "5".into()),
        ("lazyfree-lazy-user-flush", "no".into()),
    ]
}

fn config(cx: &mut Ctx<'_>, sub: Option<&str>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    match sub.unwrap_or_default() {
        "get" => {
            let mut params = config_params(cx);
            let set = cx.shared.config_set.lock();
            for (name, _, default) in params::PARAMS {
                let value = set.get(params::canonical(name));
                match params.iter_mut().find(|(n, _)| n == name) {
                    Some(p) => {
                        if let Some(v) = value {
                            p.1.clone_from(v);
                        }
                    }
                    None => params.push((name, value.map_or(*default, |v| v).to_string())),
                }
            }
            drop(set);
            let matched: Vec<&(&str, String)> = params
                .iter()
                .filter(|(name, _)| {
                    a.iter_from(2)
                        .any(|p| glob(&p.to_ascii_lowercase(), name.as_bytes()))
                })
                .collect();
            encode_map(out, matched.len(), cx.conn.version);
            for (name, value) in matched {
                encode_bulk(out, name.as_bytes());
                encode_bulk(out, value.as_bytes());
            }
            Ok(())
        }
        "set" => config_set(cx, a, out),
        "resetstat" => {
            // INFO's counters restart from zero; the Prometheus counters (monotonic by
            // contract) are not touched.
            let topo = cx.shared.topology.load();
            let stats: Vec<_> = topo.nodes.iter().map(|n| (n, n.stats())).collect();
            *cx.shared.stat_baseline.lock() = stat_counters(cx, &stats).to_vec();
            encode_ok(out);
            Ok(())
        }
        "rewrite" => Err(RespError::ConfigRewrite(
            cx.shared.config_path.get().map(|p| p.display().to_string()),
        )),
        _ => {
            help(
                out,
                "CONFIG",
                &[
                    "GET <pattern>",
                    "    Return parameters matching the glob-like <pattern> and their values.",
                    "SET <directive> <value>",
                    "    Set the configuration <directive> to <value>.",
                    "RESETSTAT",
                    "    Reset statistics reported by the INFO command.",
                    "REWRITE",
                    "    Rewrite the configuration file.",
                ],
            );
            Ok(())
        }
    }
}

/// INFO's `# Stats` counters, in order (CONFIG RESETSTAT restarts them from zero).
const STAT_NAMES: [&str; 9] = [
    "total_connections_received",
    "total_commands_processed",
    "total_net_input_bytes",
    "total_net_output_bytes",
    "rejected_connections",
    "expired_keys",
    "evicted_keys",
    "keyspace_hits",
    "keyspace_misses",
];

/// The counters behind [`STAT_NAMES`] since start, `stats` being the nodes' stats.
fn stat_counters(cx: &Ctx<'_>, stats: &[(&Arc<Node>, NodeStats)]) -> [u64; 9] {
    let s = &cx.shared.stats;
    [
        Stats::get(&s.total_connections),
        Stats::get(&s.commands_processed) + cx.conn.commands,
        Stats::get(&s.bytes_read),
        Stats::get(&s.bytes_written),
        Stats::get(&s.rejected_connections),
        stats.iter().map(|(_, st)| st.expired).sum(),
        stats.iter().map(|(_, st)| st.evictions).sum(),
        Stats::get(&s.get_hits),
        Stats::get(&s.get_misses),
    ]
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}

fn kv(text: &mut String, k: &str, v: impl std::fmt::Display) {
    use std::fmt::Write as _;
    let _ = write!(text, "{k}:{v}\r\n");
}

fn info(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    const DEFAULT: &[&str] = &[
        "server",
        "clients",
        "memory",
        "persistence",
        "stats",
        "replication",
        "keyspace",
        "ringcache",
    ];
    let wanted: Vec<String> = a
        .iter_from(1)
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == "all" || w == "everything" || w == "default");
    let shared = cx.shared;
    let topo = shared.topology.load();
    let s = &shared.stats;
    let stats: Vec<_> = topo.nodes.iter().map(|n| (n, n.stats())).collect();
    let used: u64 = stats.iter().map(|(_, st)| st.used_bytes).sum();
    let max: u64 = stats.iter().map(|(_, st)| st.max_bytes).sum();
    let (mut items, mut expires, mut ttl_sum) = (0u64, 0u64, 0u128);
    for st in keyspace_count(cx, |holders| {
        holders.iter().map(|n| n.stats()).collect::<Vec<_>>()
    }) {
        items += st.items;
        expires += st.ttl_items;
        ttl_sum += st.ttl_sum;
    }
    let now_ms = shared.clock.now_ms();
    // Mean remaining TTL in ms, as redis's avg_ttl (0 without keys with a TTL).
    let avg_ttl = if expires > 0 {
        (ttl_sum / u128::from(expires)).saturating_sub(u128::from(now_ms))
    } else {
        0
    };
    let now = now_ms / 1000;
    let uptime = now.saturating_sub(shared.started_unix);
    let mut text = String::new();
    for &section in DEFAULT {
        if !all && !wanted.iter().any(|w| w == section) {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let t = &mut text;
        match section {
            "server" => {
                t.push_str("# Server\r\n");
                kv(t, "redis_version", REDIS_VERSION);
                kv(t, "ringcache_version", env!("CARGO_PKG_VERSION"));
                kv(t, "redis_mode", "standalone");
                kv(t, "os", std::env::consts::OS);
                kv(t, "arch_bits", usize::BITS);
                kv(t, "process_id", shared.pid);
                kv(t, "tcp_port", cx.conn.local.map_or(0, |a| a.port()));
                kv(t, "uptime_in_seconds", uptime);
                kv(t, "uptime_in_days", uptime / 86400);
            }
            "clients" => {
                t.push_str("# Clients\r\n");
                kv(t, "connected_clients", Stats::get(&s.curr_connections));
                kv(t, "maxclients", cx.limits.max_connections);
                kv(t, "blocked_clients", cx.shared.waiters.clients());
                kv(t, "tracking_clients", cx.shared.pubsub.tracking.clients());
            }
            "memory" => {
                t.push_str("# Memory\r\n");
                kv(t, "used_memory", used);
                kv(t, "used_memory_human", human(used));
                kv(t, "maxmemory", max);
                kv(t, "maxmemory_human", human(max));
                kv(t, "maxmemory_policy", "allkeys-lru");
                let sc = &shared.scripts;
                let lua = sc.lua_memory.load(std::sync::atomic::Ordering::Relaxed);
                let cached = sc.cached_bytes.load(std::sync::atomic::Ordering::Relaxed);
                kv(t, "used_memory_lua", lua);
                kv(t, "used_memory_vm_eval", lua);
                kv(t, "used_memory_lua_human", human(lua));
                kv(t, "used_memory_scripts_eval", cached);
                kv(
                    t,
                    "number_of_cached_scripts",
                    sc.cached.load(std::sync::atomic::Ordering::Relaxed),
                );
                kv(
                    t,
                    "number_of_functions",
                    sc.functions.load(std::sync::atomic::Ordering::Relaxed),
                );
                kv(
                    t,
                    "number_of_libraries",
                    sc.libraries.load(std::sync::atomic::Ordering::Relaxed),
                );
            }
            "persistence" => {
                t.push_str("# Persistence\r\n");
                kv(t, "loading", 0);
                let snap = shared.snapshots.as_deref();
                let writes = snapshot::writes(&topo);
                kv(
                    t,
                    "rdb_changes_since_last_save",
                    snap.map_or(0, |s| s.changes_since(writes)),
                );
                kv(
                    t,
                    "rdb_bgsave_in_progress",
                    u8::from(snap.is_some_and(|s| s.in_progress())),
                );
                kv(
                    t,
                    "rdb_last_save_time",
                    snap.map_or(shared.started_unix, |s| s.last_save_unix()),
                );
                let ok = snap.is_none_or(|s| s.last_ok());
                kv(t, "rdb_last_bgsave_status", if ok { "ok" } else { "err" });
                kv(
                    t,
                    "rdb_last_bgsave_time_sec",
                    snap.map_or(-1, |s| s.last().duration.as_secs() as i64),
                );
                kv(t, "rdb_saves_failed", snap.map_or(0, |s| s.failures()));
                kv(t, "rdb_last_save_keys", snap.map_or(0, |s| s.last().keys));
                kv(t, "aof_enabled", 0);
            }
            "stats" => {
                t.push_str("# Stats\r\n");
                let now = stat_counters(cx, &stats);
                let base = shared.stat_baseline.lock().clone();
                for (i, name) in STAT_NAMES.iter().enumerate() {
                    let since = now[i].saturating_sub(base.get(i).copied().unwrap_or(0));
                    kv(t, name, since);
                }
                // Gauges: CONFIG RESETSTAT does not reset them (redis neither).
                let ps = &shared.pubsub;
                kv(t, "pubsub_channels", ps.len(Kind::Channel));
                kv(t, "pubsub_patterns", ps.len(Kind::Pattern));
                kv(t, "pubsubshard_channels", ps.len(Kind::Shard));
                kv(t, "tracking_total_keys", ps.tracking.keys());
                // redis 7.2's name: clients closed by their output buffer limit (a reply past
                // limits.max_output_buffer, or a subscriber that fell that far behind).
                kv(
                    t,
                    "client_output_buffer_limit_disconnections",
                    Stats::get(&shared.stats.closed_output_buffer) + ps.overflows(),
                );
            }
            "replication" => {
                t.push_str("# Replication\r\n");
                kv(t, "role", "master");
                kv(t, "connected_slaves", 0);
            }
            "keyspace" => {
                t.push_str("# Keyspace\r\n");
                if items > 0 {
                    kv(
                        t,
                        "db0",
                        format!("keys={items},expires={expires},avg_ttl={avg_ttl}"),
                    );
                }
            }
            _ => {
                t.push_str("# Ringcache\r\n");
                kv(t, "ring_generation", topo.generation);
                kv(t, "nodes", topo.nodes.len());
                for (i, (node, st)) in stats.iter().enumerate() {
                    kv(
                        t,
                        &format!("node{i}"),
                        format!(
                            "name={},items={},used_memory={},maxmemory={},evicted_keys={},expired_keys={}",
                            node.name(),
                            st.items,
                            st.used_bytes,
                            st.max_bytes,
                            st.evictions,
                            st.expired
                        ),
                    );
                }
            }
        }
    }
    encode_verbatim(out, text.as_bytes(), cx.conn.version);
    Ok(())
}

/// SAVE (in this request) or BGSAVE (on a thread of its own; `SCHEDULE` is accepted).
fn save(cx: &mut Ctx<'_>, background: bool, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    if a.len() > 2 || (a.len() == 2 && !a.arg(1)?.eq_ignore_ascii_case(b"schedule")) {
        return Err(RespError::Syntax);
    }
    let shared = cx.shared;
    let Some(snapshots) = shared.snapshots.clone() else {
        return Err(RespError::SnapshotsOff);
    };
    if snapshots.in_progress() {
        return Err(RespError::SaveInProgress);
    }
    let topology = shared.topology.load_full();
    let writes = snapshot::writes(&topology);
    let now_s = shared.clock.now_ms() / 1000;
    let functions = shared.scripts.library_code();
    if !background {
        return match snapshots.save(&topology, &functions, now_s, writes) {
            Ok(_) => {
                encode_ok(out);
                Ok(())
            }
            Err(e) => Err(RespError::SaveFailed(e.to_string())),
        };
    }
    let spawned = std::thread::Builder::new()
        .name("bgsave".into())
        .spawn(
            move || match snapshots.save(&topology, &functions, now_s, writes) {
                Ok(s) => tracing::info!(keys = s.keys, bytes = s.bytes, "BGSAVE done"),
                Err(e) => tracing::error!(error = %e, "BGSAVE failed"),
            },
        );
    match spawned {
        Ok(_) => {
            encode_simple(out, b"Background saving started");
            Ok(())
        }
        Err(e) => Err(RespError::SaveFailed(e.to_string())),
    }
}

/// CONFIG SET name value [name value ...] (redis 7.0: all or nothing). Every redis 7.0 name
/// is accepted and checked as redis checks it (`params`), remembered for CONFIG GET; `maxclients`,
/// `timeout` and `proto-max-bulk-len` change the live limits until the config file is next reloaded; what the
/// config file owns (memory budgets, passwords) is refused with the file's name.
fn config_set(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    if a.len() < 4 {
        return Err(RespError::WrongSubcommandArity("config", "set"));
    }
    if a.len() % 2 != 0 {
        return Err(RespError::Syntax);
    }
    let file = cx.shared.config_path.get().map_or_else(
        || "the config file".to_string(),
        |p| p.display().to_string(),
    );
    let mut changes: Vec<(&'static str, String)> = Vec::new();
    for (name, value) in a.pairs_from(2) {
        let shown = String::from_utf8_lossy(name).into_owned();
        let Some((param, kind, _)) = params::find(name) else {
            return Err(RespError::ConfigSetUnknown(shown));
        };
        let param: &'static str = params::canonical(param);
        if changes.iter().any(|(n, _)| *n == param) {
            return Err(RespError::ConfigSet(shown, "duplicate parameter".into()));
        }
        let owner = match param {
            "maxmemory" => Some("[[nodes]] max_memory"),
            "requirepass" => Some("[auth] password"),
            _ => None,
        };
        if let Some(key) = owner {
            return Err(RespError::ConfigSet(
                shown,
                format!("set by {key} in {file}, which is reloaded when it changes"),
            ));
        }
        let value = String::from_utf8_lossy(value);
        let mut value =
            params::validate(*kind, &value).map_err(|why| RespError::ConfigSet(shown, why))?;
        if param == "hz" {
            // redis clamps the timer frequency to 1..=500.
            value = value
                .parse::<i64>()
                .map_or(10, |hz| hz.clamp(1, 500))
                .to_string();
        }
        changes.push((param, value));
    }
    let mut limits = cx.limits.clone();
    let mut limits_changed = false;
    for (name, value) in &changes {
        match *name {
            "maxclients" => {
                limits.max_connections = value.parse().unwrap_or(limits.max_connections);
                limits_changed = true;
            }
            "notify-keyspace-events" => super::notify::configure(cx.shared, value),
            "hll-sparse-max-bytes" => cx.shared.hll_sparse_max_bytes.store(
                value.parse().unwrap_or(3000),
                std::sync::atomic::Ordering::Relaxed,
            ),
            "tracking-table-max-keys" => cx
                .shared
                .pubsub
                .tracking
                .set_max_keys(value.parse().unwrap_or(1_000_000)),
            "timeout" => {
                let secs: u64 = value.parse().unwrap_or(0);
                limits.idle_timeout = std::time::Duration::from_secs(secs);
                limits_changed = true;
            }
            "save" => {
                // The rules of `[snapshot]`, replaced until the next restart (without a
                // `[snapshot]` section there is no file to save to: remembered only).
                if let (Some(snap), Ok(rules)) = (
                    &cx.shared.snapshots,
                    crate::config::SaveRule::parse_list(value),
                ) {
                    snap.set_rules(rules);
                }
            }
            "proto-max-bulk-len" => {
                // Validated as redis does (at least 1mb); kept within what the config file
                // accepts.
                limits.proto_max_bulk_len = value
                    .parse::<u64>()
                    .unwrap_or(limits.proto_max_bulk_len)
                    .min(crate::config::MAX_REQUEST_SIZE_CAP / 2);
                limits_changed = true;
            }
            _ => {}
        }
    }
    if limits_changed {
        cx.shared.limits.store(std::sync::Arc::new(limits));
    }
    cx.shared.config_set.lock().extend(changes);
    encode_ok(out);
    Ok(())
}
