//! Redis 7.0's configuration parameters, for CONFIG GET and CONFIG SET: every name (old
//! aliases included), how redis validates a value, and its default.
//!
//! Owns: [`PARAMS`] and [`validate`]. Must not touch: what a parameter does (the few that mean
//! something here are applied by `server::config`), reply bytes.
//!
//! The table was read off redis-server 7.0.15 (`CONFIG GET *`, then `CONFIG SET` of values out
//! of each parameter's type and range, whose errors give the kind and the bounds); the error
//! texts are redis's. Defaults are redis's, except those of a running server (`port`, `dir`).

/// How redis validates a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `yes` or `no`.
    Bool,
    /// A whole number within the bounds.
    Int(i64, i64),
    /// A memory value (`100mb`, `1gb`, bytes) within the bounds.
    Memory(i64, i64),
    /// One of the words.
    Enum(&'static [&'static str]),
    /// Any text.
    Text,
    /// Pairs of seconds and changes (`save`).
    Save,
    /// Event class characters (`notify-keyspace-events`).
    KeyspaceEvents,
    /// Set at start only.
    Immutable,
    /// Refused unless protected configs are enabled (they are not here).
    Protected,
}

use Kind::*;

/// Every parameter: (name, kind, default), sorted by name.
pub const PARAMS: &[(&str, Kind, &str)] = &[
    (
        "acl-pubsub-default",
        Enum(&["allchannels", "resetchannels"]),
        "resetchannels",
    ),
    ("aclfile", Immutable, ""),
    ("acllog-max-len", Int(0, 9223372036854775807), "128"),
    ("active-defrag-cycle-max", Int(1, 99), "25"),
    ("active-defrag-cycle-min", Int(1, 99), "1"),
    (
        "active-defrag-ignore-bytes",
        Memory(0, 9223372036854775807),
        "104857600",
    ),
    (
        "active-defrag-max-scan-fields",
        Int(1, 9223372036854775807),
        "1000",
    ),
    ("active-defrag-threshold-lower", Int(0, 1000), "10"),
    ("active-defrag-threshold-upper", Int(0, 1000), "100"),
    ("active-expire-effort", Int(1, 10), "1"),
    ("activedefrag", Bool, "no"),
    ("activerehashing", Bool, "yes"),
    ("always-show-logo", Immutable, "no"),
    ("aof-disable-auto-gc", Bool, "no"),
    ("aof-load-truncated", Bool, "yes"),
    ("aof-rewrite-incremental-fsync", Bool, "yes"),
    ("aof-timestamp-enabled", Bool, "no"),
    ("aof-use-rdb-preamble", Bool, "yes"),
    ("aof_rewrite_cpulist", Immutable, ""),
    ("appenddirname", Immutable, "appendonlydir"),
    ("appendfilename", Immutable, "appendonly.aof"),
    (
        "appendfsync",
        Enum(&["everysec", "always", "no"]),
        "everysec",
    ),
    ("appendonly", Bool, "no"),
    (
        "auto-aof-rewrite-min-size",
        Memory(0, 9223372036854775807),
        "67108864",
    ),
    ("auto-aof-rewrite-percentage", Int(0, 2147483647), "100"),
    ("bgsave_cpulist", Immutable, ""),
    ("bind", Text, "* -::*"),
    ("bind-source-addr", Text, ""),
    ("bio_cpulist", Immutable, ""),
    ("busy-reply-threshold", Int(0, 9223372036854775807), "5000"),
    (
        "client-output-buffer-limit",
        Text,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    (
        "client-query-buffer-limit",
        Memory(0, 9223372036854775807),
        "1073741824",
    ),
    ("cluster-allow-pubsubshard-when-down", Bool, "yes"),
    ("cluster-allow-reads-when-down", Bool, "no"),
    ("cluster-allow-replica-migration", Bool, "yes"),
    ("cluster-announce-bus-port", Int(0, 65535), "0"),
    ("cluster-announce-hostname", Text, ""),
    ("cluster-announce-ip", Text, ""),
    ("cluster-announce-port", Int(0, 65535), "0"),
    ("cluster-announce-tls-port", Int(0, 65535), "0"),
    ("cluster-config-file", Immutable, "nodes.conf"),
    ("cluster-enabled", Immutable, "no"),
    (
        "cluster-link-sendbuf-limit",
        Memory(0, 9223372036854775807),
        "0",
    ),
    ("cluster-migration-barrier", Int(0, 2147483647), "1"),
    ("cluster-node-timeout", Int(0, 9223372036854775807), "15000"),
    ("cluster-port", Immutable, "0"),
    (
        "cluster-preferred-endpoint-type",
        Enum(&["ip", "hostname", "unknown-endpoint"]),
        "ip",
    ),
    ("cluster-replica-no-failover", Bool, "no"),
    ("cluster-replica-validity-factor", Int(0, 2147483647), "10"),
    ("cluster-require-full-coverage", Bool, "yes"),
    ("cluster-slave-no-failover", Bool, "no"),
    ("cluster-slave-validity-factor", Int(0, 2147483647), "10"),
    ("crash-log-enabled", Bool, "yes"),
    ("crash-memcheck-enabled", Bool, "yes"),
    ("daemonize", Immutable, "no"),
    ("databases", Immutable, "16"),
    ("dbfilename", Protected, "dump.rdb"),
    ("dir", Protected, "."),
    ("disable-thp", Immutable, "yes"),
    ("dynamic-hz", Bool, "yes"),
    ("enable-debug-command", Immutable, "no"),
    ("enable-module-command", Immutable, "no"),
    ("enable-protected-configs", Immutable, "no"),
    (
        "hash-max-listpack-entries",
        Int(0, 9223372036854775807),
        "512",
    ),
    (
        "hash-max-listpack-value",
        Memory(0, 9223372036854775807),
        "64",
    ),
    (
        "hash-max-ziplist-entries",
        Int(0, 9223372036854775807),
        "512",
    ),
    (
        "hash-max-ziplist-value",
        Memory(0, 9223372036854775807),
        "64",
    ),
    (
        "hll-sparse-max-bytes",
        Memory(0, 9223372036854775807),
        "3000",
    ),
    ("hz", Int(0, 2147483647), "10"),
    ("ignore-warnings", Text, ""),
    ("io-threads", Immutable, "1"),
    ("io-threads-do-reads", Immutable, "no"),
    ("jemalloc-bg-thread", Bool, "yes"),
    (
        "latency-monitor-threshold",
        Int(0, 9223372036854775807),
        "0",
    ),
    ("latency-tracking", Bool, "yes"),
    ("latency-tracking-info-percentiles", Text, "50 99 99.9"),
    ("lazyfree-lazy-eviction", Bool, "no"),
    ("lazyfree-lazy-expire", Bool, "no"),
    ("lazyfree-lazy-server-del", Bool, "no"),
    ("lazyfree-lazy-user-del", Bool, "no"),
    ("lazyfree-lazy-user-flush", Bool, "no"),
    ("lfu-decay-time", Int(0, 2147483647), "1"),
    ("lfu-log-factor", Int(0, 2147483647), "10"),
    ("list-compress-depth", Int(0, 2147483647), "0"),
    ("list-max-listpack-size", Int(-2147483648, 2147483647), "-2"),
    ("list-max-ziplist-size", Int(-2147483648, 2147483647), "-2"),
    ("logfile", Immutable, ""),
    (
        "loglevel",
        Enum(&["debug", "verbose", "notice", "warning"]),
        "notice",
    ),
    ("lua-time-limit", Int(0, 9223372036854775807), "5000"),
    ("masterauth", Text, ""),
    ("masteruser", Text, ""),
    ("maxclients", Int(1, 4294967295), "10000"),
    ("maxmemory", Memory(0, 9223372036854775807), "0"),
    ("maxmemory-clients", Text, "0"),
    ("maxmemory-eviction-tenacity", Int(0, 100), "10"),
    (
        "maxmemory-policy",
        Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
        "noeviction",
    ),
    ("maxmemory-samples", Int(1, 2147483647), "5"),
    ("min-replicas-max-lag", Int(0, 2147483647), "10"),
    ("min-replicas-to-write", Int(0, 2147483647), "0"),
    ("min-slaves-max-lag", Int(0, 2147483647), "10"),
    ("min-slaves-to-write", Int(0, 2147483647), "0"),
    ("no-appendfsync-on-rewrite", Bool, "no"),
    ("notify-keyspace-events", KeyspaceEvents, ""),
    (
        "oom-score-adj",
        Enum(&["no", "yes", "relative", "absolute"]),
        "no",
    ),
    ("oom-score-adj-values", Text, "0 200 800"),
    ("pidfile", Immutable, ""),
    ("port", Int(0, 65535), "6379"),
    (
        "proc-title-template",
        Text,
        "{title} {listen-addr} {server-mode}",
    ),
    (
        "propagation-error-behavior",
        Enum(&["ignore", "panic", "panic-on-replicas"]),
        "ignore",
    ),
    ("protected-mode", Bool, "yes"),
    (
        "proto-max-bulk-len",
        Memory(1048576, 9223372036854775807),
        "536870912",
    ),
    ("rdb-del-sync-files", Bool, "no"),
    ("rdb-save-incremental-fsync", Bool, "yes"),
    ("rdbchecksum", Immutable, "yes"),
    ("rdbcompression", Bool, "yes"),
    (
        "repl-backlog-size",
        Memory(0, 9223372036854775807),
        "1048576",
    ),
    ("repl-backlog-ttl", Int(0, 9223372036854775807), "3600"),
    ("repl-disable-tcp-nodelay", Bool, "no"),
    (
        "repl-diskless-load",
        Enum(&["disabled", "on-empty-db", "swapdb"]),
        "disabled",
    ),
    ("repl-diskless-sync", Bool, "yes"),
    ("repl-diskless-sync-delay", Int(0, 2147483647), "5"),
    ("repl-diskless-sync-max-replicas", Int(0, 2147483647), "0"),
    ("repl-ping-replica-period", Int(1, 2147483647), "10"),
    ("repl-ping-slave-period", Int(1, 2147483647), "10"),
    ("repl-timeout", Int(1, 2147483647), "60"),
    ("replica-announce-ip", Text, ""),
    ("replica-announce-port", Int(0, 65535), "0"),
    ("replica-announced", Bool, "yes"),
    ("replica-ignore-disk-write-errors", Bool, "no"),
    ("replica-ignore-maxmemory", Bool, "yes"),
    ("replica-lazy-flush", Bool, "no"),
    ("replica-priority", Int(0, 2147483647), "100"),
    ("replica-read-only", Bool, "yes"),
    ("replica-serve-stale-data", Bool, "yes"),
    ("replicaof", Immutable, ""),
    ("requirepass", Text, ""),
    (
        "sanitize-dump-payload",
        Enum(&["no", "yes", "clients"]),
        "no",
    ),
    ("save", Save, "3600 1 300 100 60 10000"),
    ("server_cpulist", Immutable, ""),
    ("set-max-intset-entries", Int(0, 9223372036854775807), "512"),
    ("set-proc-title", Immutable, "yes"),
    (
        "shutdown-on-sigint",
        Enum(&["default", "save", "nosave", "now", "force"]),
        "default",
    ),
    (
        "shutdown-on-sigterm",
        Enum(&["default", "save", "nosave", "now", "force"]),
        "default",
    ),
    ("shutdown-timeout", Int(0, 2147483647), "10"),
    ("slave-announce-ip", Text, ""),
    ("slave-announce-port", Int(0, 65535), "0"),
    ("slave-ignore-maxmemory", Bool, "yes"),
    ("slave-lazy-flush", Bool, "no"),
    ("slave-priority", Int(0, 2147483647), "100"),
    ("slave-read-only", Bool, "yes"),
    ("slave-serve-stale-data", Bool, "yes"),
    ("slaveof", Immutable, ""),
    (
        "slowlog-log-slower-than",
        Int(-1, 9223372036854775807),
        "10000",
    ),
    ("slowlog-max-len", Int(0, 9223372036854775807), "128"),
    ("socket-mark-id", Immutable, "0"),
    ("stop-writes-on-bgsave-error", Bool, "yes"),
    (
        "stream-node-max-bytes",
        Memory(0, 9223372036854775807),
        "4096",
    ),
    (
        "stream-node-max-entries",
        Int(0, 9223372036854775807),
        "100",
    ),
    ("supervised", Immutable, "no"),
    ("syslog-enabled", Immutable, "no"),
    ("syslog-facility", Immutable, "local0"),
    ("syslog-ident", Immutable, "redis"),
    ("tcp-backlog", Immutable, "511"),
    ("tcp-keepalive", Int(0, 2147483647), "300"),
    ("timeout", Int(0, 2147483647), "0"),
    ("tls-auth-clients", Enum(&["no", "yes", "optional"]), "yes"),
    ("tls-ca-cert-dir", Text, ""),
    ("tls-ca-cert-file", Text, ""),
    ("tls-cert-file", Text, ""),
    ("tls-ciphers", Text, ""),
    ("tls-ciphersuites", Text, ""),
    ("tls-client-cert-file", Text, ""),
    ("tls-client-key-file", Text, ""),
    ("tls-client-key-file-pass", Text, ""),
    ("tls-cluster", Bool, "no"),
    ("tls-dh-params-file", Text, ""),
    ("tls-key-file", Text, ""),
    ("tls-key-file-pass", Text, ""),
    ("tls-port", Int(0, 65535), "0"),
    ("tls-prefer-server-ciphers", Bool, "no"),
    ("tls-protocols", Text, ""),
    ("tls-replication", Bool, "no"),
    ("tls-session-cache-size", Int(0, 2147483647), "20480"),
    ("tls-session-cache-timeout", Int(0, 2147483647), "300"),
    ("tls-session-caching", Bool, "yes"),
    (
        "tracking-table-max-keys",
        Int(0, 9223372036854775807),
        "1000000",
    ),
    ("unixsocket", Immutable, ""),
    ("unixsocketperm", Immutable, "0"),
    (
        "zset-max-listpack-entries",
        Int(0, 9223372036854775807),
        "128",
    ),
    (
        "zset-max-listpack-value",
        Memory(0, 9223372036854775807),
        "64",
    ),
    (
        "zset-max-ziplist-entries",
        Int(0, 9223372036854775807),
        "128",
    ),
    (
        "zset-max-ziplist-value",
        Memory(0, 9223372036854775807),
        "64",
    ),
];

/// The parameter named `name` (ASCII case-insensitive).
pub fn find(name: &[u8]) -> Option<&'static (&'static str, Kind, &'static str)> {
    PARAMS
        .iter()
        .find(|(n, _, _)| n.as_bytes().eq_ignore_ascii_case(name))
}

/// The name a parameter's value is kept under: redis 7.0's old aliases (`*-ziplist-*`,
/// `slave*`) share their value with the new name.
pub fn canonical(name: &'static str) -> &'static str {
    let renamed = name
        .replace("ziplist", "listpack")
        .replace("slaves", "replicas")
        .replace("slave", "replica");
    if renamed == name {
        return name;
    }
    find(renamed.as_bytes()).map_or(name, |(n, _, _)| n)
}

/// Checks `value` as redis does for `kind`; the normalised value to remember, or redis's
/// reason (the text after `CONFIG SET failed (...) - `).
pub fn validate(kind: Kind, value: &str) -> Result<String, String> {
    match kind {
        Bool => match value.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Int(lo, hi) => {
            let n: i64 = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if n < lo || n > hi {
                return Err(format!("argument must be between {lo} and {hi} inclusive"));
            }
            Ok(n.to_string())
        }
        Memory(lo, hi) => {
            let n = memory(value).ok_or_else(|| "argument must be a memory value".to_string())?;
            if n < lo || n > hi {
                return Err(format!("argument must be between {lo} and {hi} inclusive"));
            }
            Ok(n.to_string())
        }
        Enum(words) => words
            .iter()
            .find(|w| w.eq_ignore_ascii_case(value))
            .map(|w| w.to_string())
            .ok_or_else(|| {
                format!(
                    "argument(s) must be one of the following: {}",
                    words.join(", ")
                )
            }),
        Text => Ok(value.into()),
        Save => {
            let words: Vec<&str> = value.split_whitespace().collect();
            let pairs_ok = words.len() % 2 == 0 && words.iter().all(|w| w.parse::<u64>().is_ok());
            if pairs_ok {
                Ok(words.join(" "))
            } else {
                Err("Invalid save parameters".into())
            }
        }
        KeyspaceEvents => keyspace_events(value)
            .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
        Immutable => Err("can't set immutable config".into()),
        Protected => Err("can't set protected config".into()),
    }
}

/// redis `keyspaceEventsStringToFlags` then `keyspaceEventsFlagsToString`: the classes in
/// redis's own order (`A` for all of `g$lshzxetd`), then `K`, `E`, `m`.
fn keyspace_events(value: &str) -> Option<String> {
    const CLASSES: &str = "g$lshzxetdn";
    const ALL: &str = "g$lshzxetd";
    let mut on: Vec<char> = Vec::new();
    for c in value.chars() {
        match c {
            'A' => on.extend(ALL.chars()),
            c if CLASSES.contains(c) || "KEm".contains(c) => on.push(c),
            _ => return None,
        }
    }
    let mut out = String::new();
    if ALL.chars().all(|c| on.contains(&c)) {
        out.push('A');
        if on.contains(&'n') {
            out.push('n');
        }
    } else {
        out.extend(CLASSES.chars().filter(|c| on.contains(c)));
    }
    out.extend("KEm".chars().filter(|c| on.contains(c)));
    Some(out)
}

/// redis `memtoull`: a number with an optional unit (b, k, kb, m, mb, g, gb; case-insensitive).
fn memory(value: &str) -> Option<i64> {
    let v = value.to_ascii_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let mult: i64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    num.parse::<i64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_unique_and_defaults_valid() {
        for w in PARAMS.windows(2) {
            assert!(w[0].0 < w[1].0, "{} / {}", w[0].0, w[1].0);
        }
        for (name, kind, default) in PARAMS {
            if !matches!(kind, Immutable | Protected) {
                assert!(validate(*kind, default).is_ok(), "{name} = {default:?}");
            }
        }
        assert_eq!(
            canonical("hash-max-ziplist-entries"),
            "hash-max-listpack-entries"
        );
        assert_eq!(canonical("slaveof"), "replicaof");
        assert_eq!(canonical("min-slaves-to-write"), "min-replicas-to-write");
        assert_eq!(keyspace_events("KEA").as_deref(), Some("AKE"));
        assert_eq!(keyspace_events("Elg").as_deref(), Some("glE"));
        assert_eq!(keyspace_events("Q"), None);
        assert_eq!(memory("1gb"), Some(1 << 30));
        assert_eq!(memory("10k"), Some(10_000));
        assert_eq!(memory("-1"), None);
    }
}
