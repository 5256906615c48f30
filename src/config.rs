//! The configuration file: serde types, parsing and validation.
//!
//! Owns: the shape of `ringcache.toml` (`[listen]`, `[ring]`, `[limits]`, `[rebalance]`,
//! `[snapshot]`, `[[nodes]]`), the
//! size and duration units, and every check a config must pass before it is used. The
//! submodule [`twemproxy`] reads a twemproxy `nutcracker.yml` and writes the equivalent config
//! (`ringcache --from-twemproxy`).
//! Must not touch: sockets, the store, the live topology. The only I/O is reading the file
//! ([`Config::load`]) and the TLS certificate and key it names (`listen.tls_cert`,
//! `listen.tls_key`, read relative to the config file's directory).
//! Invariants: a [`Config`] that `from_toml_str` returned is valid (non-empty unique node names,
//! weights > 0, budgets > 0, at least one protocol listener, a TLS certificate and key that
//! load as a pair); every error names the file, the line and the field, so an operator can fix
//! it without guessing.

pub mod twemproxy;

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest `limits.max_request_size`: memcached's largest item size and twice redis's
/// `proto-max-bulk-len`; a node stores keys of up to 1 GiB (`store::KLEN_MAX`).
pub const MAX_REQUEST_SIZE_CAP: u64 = 1 << 30;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use toml::Spanned;

use crate::auth::{Auth, Category, Cidr, Secret, User};
use crate::route::remote::{Protocol, Settings};
use crate::route::ring::{self, HashKind};
use crate::tls::{self, Material};

/// Why a config was refused. `Display` gives `file:line: field: reason`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The config file.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema (unknown key, wrong type, bad unit).
    #[error("{file}:{line}: {field}: {message}")]
    Parse {
        /// The config file.
        file: String,
        /// 1-based line of the offending text (0 when unknown).
        line: usize,
        /// Dotted path of the key on that line (e.g. `nodes[1].max_memory`), or the table.
        field: String,
        /// What the parser said.
        message: String,
    },
    /// The file parsed but a value is not acceptable.
    #[error("{file}:{line}: {field}: {reason}")]
    Invalid {
        /// The config file.
        file: String,
        /// 1-based line of the field.
        line: usize,
        /// Dotted path of the field, e.g. `nodes[2].weight`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listener addresses.
    pub listen: Listen,
    /// Ring placement settings.
    pub ring: RingConfig,
    /// Connection and request limits.
    pub limits: Limits,
    /// Pace of the background migrator.
    pub rebalance: Rebalance,
    /// The cache nodes, in file order.
    pub nodes: Vec<NodeConfig>,
    /// Passwords and users (`[auth]`); off by default.
    pub auth: Auth,
    /// Snapshots (`[snapshot]`); None: no snapshot is loaded or saved.
    pub snapshot: Option<SnapshotConfig>,
}

/// `[snapshot]`: where the RDB snapshot lives and when it is written. Read at start; a change
/// made by a reload is logged and takes effect at the next start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotConfig {
    /// The file, resolved against the config file's directory. Loaded at start if it exists.
    pub path: PathBuf,
    /// Redis `save` rules: write a snapshot when at least `changes` writes happened within
    /// `after` of the last save. Empty: only SAVE/BGSAVE and `on_shutdown` write one.
    pub save: Vec<SaveRule>,
    /// Write a final snapshot on SIGTERM/SIGINT, after the last connection has flushed.
    pub on_shutdown: bool,
}

/// One `save` rule: `after` seconds and `changes` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveRule {
    /// Time since the last save.
    pub after: Duration,
    /// Writes since the last save.
    pub changes: u64,
}

impl SaveRule {
    /// Parses Redis's `save` syntax: pairs of seconds and changes, `"3600 1 300 100"`; `""`
    /// is no rule.
    pub fn parse_list(s: &str) -> Result<Vec<SaveRule>, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        if words.len() % 2 != 0 {
            return Err("must be pairs of seconds and changes, e.g. \"3600 1 300 100\"".into());
        }
        words
            .chunks(2)
            .map(|pair| {
                let n = |w: &str| {
                    w.parse::<u64>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("{w:?} is not a positive whole number"))
                };
                Ok(SaveRule {
                    after: Duration::from_secs(n(pair[0])?),
                    changes: n(pair[1])?,
                })
            })
            .collect()
    }
}

/// `[listen]`: where each protocol is served. A missing key means that listener is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// memcached text and meta protocol.
    pub memcache: Option<SocketAddr>,
    /// Redis RESP2/RESP3 (inline commands included).
    pub resp: Option<SocketAddr>,
    /// Both protocols on one port: a connection whose first byte is `*` speaks RESP, any other
    /// speaks memcached (so inline RESP commands are only served on `resp`).
    pub any: Option<SocketAddr>,
    /// Prometheus `/metrics` and the admin endpoints over HTTP.
    pub metrics: Option<SocketAddr>,
    /// Per-listener CIDR allow-lists (`[listen.allow]`); a listener without one takes anyone.
    pub allow: Allow,
    /// TLS on some of the cache listeners (`tls_cert`, `tls_key`, `tls`); None: all plain.
    pub tls: Option<Tls>,
}

/// A cache listener kind: the key of `[listen]` and `[listen.allow]` that configures it, the
/// name `listen.tls` lists it by, and the protocol it serves (the metrics listener is not one:
/// it stays plain HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheListener {
    /// `listen.memcache`: memcached text and meta protocol.
    Memcache,
    /// `listen.resp`: Redis RESP2/RESP3.
    Resp,
    /// `listen.any`: both, chosen by each connection's first byte (`*` = RESP).
    Any,
}

/// TLS settings of `[listen]`: one certificate and key for every listener in `listeners`.
/// Equal when the paths, the listeners and the files' contents are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The PEM certificate chain (leaf first), as resolved against the config's directory.
    pub cert: PathBuf,
    /// The PEM private key of the leaf certificate.
    pub key: PathBuf,
    /// The listeners that speak TLS (each configured); the others stay plain.
    pub listeners: Vec<CacheListener>,
    /// The loaded certificate and key.
    pub material: Material,
}

impl CacheListener {
    /// Every cache listener, in [`CacheListener::index`] order.
    pub const ALL: [CacheListener; 3] = [
        CacheListener::Memcache,
        CacheListener::Resp,
        CacheListener::Any,
    ];

    /// Position in [`CacheListener::ALL`] (and in `Stats::by_protocol`).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The key of `[listen]` that sets its address; also its metrics label.
    pub fn name(self) -> &'static str {
        match self {
            CacheListener::Memcache => "memcache",
            CacheListener::Resp => "resp",
            CacheListener::Any => "any",
        }
    }
}

impl Listen {
    /// The address of a cache listener, if it is on.
    pub fn address(&self, listener: CacheListener) -> Option<SocketAddr> {
        match listener {
            CacheListener::Memcache => self.memcache,
            CacheListener::Resp => self.resp,
            CacheListener::Any => self.any,
        }
    }

    /// Whether `listener` speaks TLS.
    pub fn tls_on(&self, listener: CacheListener) -> bool {
        self.tls.as_ref().is_some_and(|t| t.covers(listener))
    }
}

impl Allow {
    /// The allow-list of a cache listener (None: anyone).
    pub fn of(&self, listener: CacheListener) -> Option<&[Cidr]> {
        match listener {
            CacheListener::Memcache => self.memcache.as_deref(),
            CacheListener::Resp => self.resp.as_deref(),
            CacheListener::Any => self.any.as_deref(),
        }
    }
}

impl Tls {
    /// Whether `listener` speaks TLS.
    pub fn covers(&self, listener: CacheListener) -> bool {
        self.listeners.contains(&listener)
    }
}

/// `[listen.allow]`: which peers each listener accepts, as address blocks
/// (`["127.0.0.1/32", "10.0.0.0/8"]`). Other peers are closed on accept and counted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    /// Allowed peers of `listen.memcache`.
    pub memcache: Option<Vec<Cidr>>,
    /// Allowed peers of `listen.resp`.
    pub resp: Option<Vec<Cidr>>,
    /// Allowed peers of `listen.any`.
    pub any: Option<Vec<Cidr>>,
    /// Allowed peers of `listen.metrics`.
    pub metrics: Option<Vec<Cidr>>,
}

/// `[ring]`: how keys are placed on nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingConfig {
    /// Point and key hash scheme (`hash`, and `distribution` for twemproxy's hashes).
    pub hash: HashKind,
    /// Points per unit of weight (160 is ketama's).
    pub points_per_weight: u32,
    /// Hash-tag delimiters (open, close); `None` hashes whole keys.
    pub hash_tags: Option<[u8; 2]>,
}

/// `[limits]`: protection against clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections accepted at once; more are refused with the protocol's error.
    pub max_connections: u32,
    /// Largest value a memcached client may store, in bytes (memcached's item size limit).
    pub max_value_size: u64,
    /// Largest single memcached request (command line plus data), in bytes.
    pub max_request_size: u64,
    /// Largest RESP bulk string and Redis string value (redis's `proto-max-bulk-len`); a RESP
    /// request may be twice that ([`Limits::resp_request_max`]).
    pub proto_max_bulk_len: u64,
    /// Close connections idle this long; zero means never.
    pub idle_timeout: Duration,
    /// Most reply bytes one connection may hold in memory (Redis's client-output-buffer-limit,
    /// hard part): a request whose replies pass it closes the connection.
    pub max_output_buffer: u64,
    /// Close a connection whose replies make no write progress for this long (a client that
    /// pipelines and never reads); zero means never.
    pub output_timeout: Duration,
    /// TCP keepalive idle time set on accepted sockets (Redis's `tcp-keepalive`); zero disables.
    pub tcp_keepalive: Duration,
    /// Longest a TLS handshake may take; a client that connects to a TLS listener and does not
    /// finish it in time is closed (and counted).
    pub tls_handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_value_size: 1 << 20,
            max_request_size: 16 << 20,
            proto_max_bulk_len: 512 << 20,
            idle_timeout: Duration::ZERO,
            max_output_buffer: 64 << 20,
            output_timeout: Duration::from_secs(30),
            tcp_keepalive: Duration::from_secs(300),
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// Largest RESP request (all its arguments): twice `proto_max_bulk_len`, redis's default
    /// `client-query-buffer-limit` (1 GiB) for its default 512 MiB, so that a command with
    /// a value of the largest size and its other arguments fits.
    pub fn resp_request_max(&self) -> u64 {
        self.proto_max_bulk_len.saturating_mul(2)
    }
}

/// Smallest `limits.proto_max_bulk_len` accepted (redis's own minimum).
pub const MIN_PROTO_MAX_BULK_LEN: u64 = 1 << 20;

/// `[rebalance]`: how fast the background migrator moves keys after a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rebalance {
    /// Rest between two chunks the migrator walks (throttles a migration, e.g. to spare a
    /// busy machine's CPU); zero goes as fast as it can, yielding between chunks.
    pub pause: Duration,
}

/// Redis's default `save` rules, used when `[snapshot]` does not set `save`.
pub const DEFAULT_SAVE: &str = "3600 1 300 100 60 10000";

/// The longest `rebalance.pause` accepted (shutdown waits for the migrator's current rest).
pub const MAX_REBALANCE_PAUSE: Duration = Duration::from_secs(1);

/// The smallest `limits.max_output_buffer` accepted: below it, ordinary replies would close
/// connections.
pub const MIN_OUTPUT_BUFFER: u64 = 64 << 10;

/// One `[[nodes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Unique node name; also its identity on the ring.
    pub name: String,
    /// Memory budget in bytes, including the store's own per-item overhead.
    pub max_memory: u64,
    /// Relative share of the ring.
    pub weight: u32,
    /// Set for a remote member (a memcached or Redis server at `address`); None for an
    /// in-process node.
    pub remote: Option<Settings>,
}

/// Default `timeout` of a remote member.
pub const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(1);
/// Most `connections` a remote member may have.
pub const MAX_REMOTE_CONNECTIONS: u32 = 64;

/// A byte count written with a unit (`"256MiB"`, `"1GB"`, `"512"`), or a bare integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// A duration written with a unit (`"30s"`, `"250ms"`, `"5m"`, `"1h"`, `"0s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: path.display().to_string(),
            source,
        })?;
        Config::from_toml_str(&text, path)
    }

    /// Parses and validates `text`; `file` is only used to name the file in errors.
    pub fn from_toml_str(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let file_name = file.display().to_string();
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(text, s.start));
            ConfigError::Parse {
                file: file_name.clone(),
                line,
                field: field_at(text, line),
                message: e.message().trim_end().to_string(),
            }
        })?;
        let invalid = |span: Range<usize>, field: String, reason: String| ConfigError::Invalid {
            file: file_name.clone(),
            line: line_of(text, span.start),
            field,
            reason,
        };

        let raw_listen = raw.listen.unwrap_or_default();
        if raw_listen.memcache.is_none() && raw_listen.resp.is_none() && raw_listen.any.is_none() {
            return Err(invalid(
                0..0,
                "listen.memcache".into(),
                "no protocol listener is configured".into(),
            ));
        }
        let tls = match (raw_listen.tls_cert, raw_listen.tls_key) {
            (None, None) => {
                if let Some(list) = &raw_listen.tls {
                    return Err(invalid(
                        list.span(),
                        "listen.tls".into(),
                        "needs listen.tls_cert and listen.tls_key".into(),
                    ));
                }
                None
            }
            (Some(cert), None) => {
                return Err(invalid(
                    cert.span(),
                    "listen.tls_cert".into(),
                    "needs listen.tls_key, the certificate's private key, too".into(),
                ));
            }
            (None, Some(key)) => {
                return Err(invalid(
                    key.span(),
                    "listen.tls_key".into(),
                    "needs listen.tls_cert, the certificate it belongs to, too".into(),
                ));
            }
            (Some(cert), Some(key)) => {
                let configured = |l: CacheListener| match l {
                    CacheListener::Memcache => raw_listen.memcache.is_some(),
                    CacheListener::Resp => raw_listen.resp.is_some(),
                    CacheListener::Any => raw_listen.any.is_some(),
                };
                let listeners: Vec<CacheListener> = match &raw_listen.tls {
                    // Without a list, every cache listener that is on speaks TLS.
                    None => [
                        CacheListener::Memcache,
                        CacheListener::Resp,
                        CacheListener::Any,
                    ]
                    .into_iter()
                    .filter(|&l| configured(l))
                    .collect(),
                    Some(list) => {
                        if list.get_ref().is_empty() {
                            return Err(invalid(
                                list.span(),
                                "listen.tls".into(),
                                "must name at least one listener (leave out tls_cert and tls_key to turn TLS off)".into(),
                            ));
                        }
                        let mut listeners = Vec::new();
                        for &l in list.get_ref() {
                            if !configured(l) {
                                let name = l.name();
                                return Err(invalid(
                                    list.span(),
                                    "listen.tls".into(),
                                    format!("names {name:?}, but listen.{name} is not set"),
                                ));
                            }
                            if !listeners.contains(&l) {
                                listeners.push(l);
                            }
                        }
                        listeners
                    }
                };
                let dir = file.parent().unwrap_or(Path::new(""));
                let (cert_path, key_path) = (dir.join(cert.get_ref()), dir.join(key.get_ref()));
                let material = tls::load(&cert_path, &key_path).map_err(|e| match e {
                    tls::LoadError::Cert(why) => {
                        invalid(cert.span(), "listen.tls_cert".into(), why)
                    }
                    tls::LoadError::Key(why) => invalid(key.span(), "listen.tls_key".into(), why),
                })?;
                Some(Tls {
                    cert: cert_path,
                    key: key_path,
                    listeners,
                    material,
                })
            }
        };
        let listen = Listen {
            memcache: raw_listen.memcache,
            resp: raw_listen.resp,
            any: raw_listen.any,
            metrics: raw_listen.metrics,
            allow: raw_listen.allow,
            tls,
        };

        let raw_ring = raw.ring.unwrap_or_default();
        let points_per_weight = raw_ring
            .points_per_weight
            .as_ref()
            .map_or(160, |p| *p.get_ref());
        if let Some(p) = &raw_ring.points_per_weight
            && !(1..=10_000).contains(p.get_ref())
        {
            return Err(invalid(
                p.span(),
                "ring.points_per_weight".into(),
                "must be between 1 and 10000".into(),
            ));
        }
        let hash_tags = match &raw_ring.hash_tags {
            None => Some(*b"{}"),
            Some(s) if s.get_ref().is_empty() => None,
            Some(s) => match s.get_ref().as_bytes() {
                // Equal characters work as in twemproxy (`"$$"`: between the first `$` and the
                // next one).
                [open, close] => Some([*open, *close]),
                _ => {
                    return Err(invalid(
                        s.span(),
                        "ring.hash_tags".into(),
                        "must be two characters such as \"{}\" or \"$$\", or \"\" to disable"
                            .into(),
                    ));
                }
            },
        };
        let hash = HashKind::from_config(
            raw_ring.hash.as_ref().map(|h| h.get_ref().as_str()),
            raw_ring.distribution.as_ref().map(|d| d.get_ref().as_str()),
        )
        .map_err(|(field, reason)| {
            let (span, name) = match field {
                ring::ConfigField::Hash => (raw_ring.hash.as_ref().map(Spanned::span), "ring.hash"),
                ring::ConfigField::Distribution => (
                    raw_ring.distribution.as_ref().map(Spanned::span),
                    "ring.distribution",
                ),
            };
            invalid(span.unwrap_or(0..0), name.into(), reason)
        })?;
        let ring = RingConfig {
            hash,
            points_per_weight,
            hash_tags,
        };

        let raw_limits = raw.limits.unwrap_or_default();
        let defaults = Limits::default();
        let limits = Limits {
            max_connections: raw_limits
                .max_connections
                .unwrap_or(defaults.max_connections),
            max_value_size: raw_limits
                .max_value_size
                .map_or(defaults.max_value_size, |s| s.0),
            max_request_size: raw_limits
                .max_request_size
                .map_or(defaults.max_request_size, |s| s.0),
            proto_max_bulk_len: raw_limits
                .proto_max_bulk_len
                .map_or(defaults.proto_max_bulk_len, |s| s.0),
            idle_timeout: raw_limits
                .idle_timeout
                .map_or(defaults.idle_timeout, |d| d.0),
            max_output_buffer: raw_limits
                .max_output_buffer
                .map_or(defaults.max_output_buffer, |s| s.0),
            output_timeout: raw_limits
                .output_timeout
                .map_or(defaults.output_timeout, |d| d.0),
            tcp_keepalive: raw_limits
                .tcp_keepalive
                .map_or(defaults.tcp_keepalive, |d| d.0),
            tls_handshake_timeout: raw_limits
                .tls_handshake_timeout
                .map_or(defaults.tls_handshake_timeout, |d| d.0),
        };
        if limits.tls_handshake_timeout.is_zero() {
            return Err(invalid(
                0..0,
                "limits.tls_handshake_timeout".into(),
                "must be greater than zero".into(),
            ));
        }
        if limits.max_output_buffer < MIN_OUTPUT_BUFFER {
            return Err(invalid(
                0..0,
                "limits.max_output_buffer".into(),
                "must be at least 64KiB".into(),
            ));
        }
        if !limits.tcp_keepalive.is_zero() && limits.tcp_keepalive < Duration::from_secs(1) {
            return Err(invalid(
                0..0,
                "limits.tcp_keepalive".into(),
                "must be \"0s\" (off) or at least 1s".into(),
            ));
        }
        if limits.max_connections == 0 {
            return Err(invalid(
                0..0,
                "limits.max_connections".into(),
                "must be at least 1".into(),
            ));
        }
        if limits.max_request_size > MAX_REQUEST_SIZE_CAP {
            return Err(invalid(
                0..0,
                "limits.max_request_size".into(),
                "must be no more than 1GiB".into(),
            ));
        }
        if !(MIN_PROTO_MAX_BULK_LEN..=MAX_REQUEST_SIZE_CAP / 2).contains(&limits.proto_max_bulk_len)
        {
            return Err(invalid(
                0..0,
                "limits.proto_max_bulk_len".into(),
                "must be at least 1MiB and no more than 512MiB".into(),
            ));
        }
        if limits.max_value_size == 0 || limits.max_value_size > limits.max_request_size {
            return Err(invalid(
                0..0,
                "limits.max_value_size".into(),
                "must be at least 1 byte and no more than limits.max_request_size".into(),
            ));
        }

        let pause = raw.rebalance.and_then(|r| r.pause);
        if let Some(p) = &pause
            && p.get_ref().0 > MAX_REBALANCE_PAUSE
        {
            return Err(invalid(
                p.span(),
                "rebalance.pause".into(),
                "must be at most 1s".into(),
            ));
        }
        let rebalance = Rebalance {
            pause: pause.map_or(Duration::ZERO, |p| p.get_ref().0),
        };

        let snapshot = match raw.snapshot {
            None => None,
            Some(raw_snapshot) => {
                let save = match &raw_snapshot.save {
                    None => SaveRule::parse_list(DEFAULT_SAVE).expect("default rules parse"),
                    Some(text) => SaveRule::parse_list(text.get_ref())
                        .map_err(|why| invalid(text.span(), "snapshot.save".into(), why))?,
                };
                let path = raw_snapshot
                    .path
                    .map_or_else(|| PathBuf::from("dump.rdb"), Spanned::into_inner);
                let dir = file.parent().unwrap_or(Path::new(""));
                Some(SnapshotConfig {
                    path: dir.join(path),
                    save,
                    on_shutdown: raw_snapshot.on_shutdown.unwrap_or(true),
                })
            }
        };

        let raw_nodes = raw.nodes.unwrap_or_default();
        if raw_nodes.is_empty() {
            return Err(invalid(
                0..0,
                "nodes".into(),
                "at least one [[nodes]] entry is required".into(),
            ));
        }
        let mut nodes: Vec<NodeConfig> = Vec::with_capacity(raw_nodes.len());
        for (i, node) in raw_nodes.iter().enumerate() {
            let name = node.name.get_ref().trim();
            if name.is_empty() {
                return Err(invalid(
                    node.name.span(),
                    format!("nodes[{i}].name"),
                    "must not be empty".into(),
                ));
            }
            if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(invalid(
                    node.name.span(),
                    format!("nodes[{i}].name"),
                    "must not contain spaces or control characters".into(),
                ));
            }
            if let Some(prev) = nodes.iter().position(|n| n.name == name) {
                return Err(invalid(
                    node.name.span(),
                    format!("nodes[{i}].name"),
                    format!("duplicate node name {name:?} (also nodes[{prev}])"),
                ));
            }
            let weight = node.weight.as_ref().map_or(1, |w| *w.get_ref());
            if let Some(w) = &node.weight
                && !(1..=1_000).contains(w.get_ref())
            {
                return Err(invalid(
                    w.span(),
                    format!("nodes[{i}].weight"),
                    "must be between 1 and 1000".into(),
                ));
            }
            let remote = remote_settings(node, i, &invalid)?;
            let max_memory = match (&node.max_memory, &remote) {
                (Some(m), Some(_)) => {
                    return Err(invalid(
                        m.span(),
                        format!("nodes[{i}].max_memory"),
                        "a remote node (with `address`) has no max_memory: its server sets it"
                            .into(),
                    ));
                }
                (None, Some(_)) => 0,
                (None, None) => {
                    return Err(invalid(
                        node.name.span(),
                        format!("nodes[{i}]"),
                        "needs max_memory (an in-process node) or address (a remote node)".into(),
                    ));
                }
                (Some(m), None) if m.get_ref().0 == 0 => {
                    return Err(invalid(
                        m.span(),
                        format!("nodes[{i}].max_memory"),
                        "must be greater than zero".into(),
                    ));
                }
                (Some(m), None) => m.get_ref().0,
            };
            nodes.push(NodeConfig {
                name: name.to_string(),
                max_memory,
                weight,
                remote,
            });
        }

        let auth = match raw.auth {
            None => Auth::default(),
            Some(raw_auth) => {
                let password = match raw_auth.password {
                    Some(p) if p.get_ref().is_empty() => {
                        return Err(invalid(
                            p.span(),
                            "auth.password".into(),
                            "must not be empty (leave it out to turn the password off)".into(),
                        ));
                    }
                    p => p.map(|p| Secret::new(p.into_inner())),
                };
                let mut users: Vec<User> = Vec::new();
                for (i, u) in raw_auth.users.unwrap_or_default().into_iter().enumerate() {
                    let name = u.name.get_ref();
                    if name.is_empty()
                        || name == "default"
                        || name.chars().any(|c| c.is_control() || c.is_whitespace())
                    {
                        return Err(invalid(
                            u.name.span(),
                            format!("auth.users[{i}].name"),
                            "must be non-empty, without spaces, and not \"default\" (that is auth.password)".into(),
                        ));
                    }
                    if users.iter().any(|x| x.name == *name) {
                        return Err(invalid(
                            u.name.span(),
                            format!("auth.users[{i}].name"),
                            format!("duplicate user {name:?}"),
                        ));
                    }
                    if u.password.get_ref().is_empty() {
                        return Err(invalid(
                            u.password.span(),
                            format!("auth.users[{i}].password"),
                            "must not be empty".into(),
                        ));
                    }
                    let mut categories = Vec::new();
                    for c in u.categories.get_ref() {
                        let Some(c) = Category::parse(c) else {
                            return Err(invalid(
                                u.categories.span(),
                                format!("auth.users[{i}].categories"),
                                format!("unknown category {c:?} (use read, write, admin)"),
                            ));
                        };
                        categories.push(c);
                    }
                    users.push(User {
                        name: name.clone(),
                        password: Secret::new(u.password.into_inner()),
                        categories,
                    });
                }
                Auth { password, users }
            }
        };

        Ok(Config {
            listen,
            ring,
            limits,
            rebalance,
            nodes,
            auth,
            snapshot,
        })
    }
}

/// The default config path, relative to the working directory.
pub fn default_path() -> PathBuf {
    PathBuf::from("config/ringcache.toml")
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted path of the key written on 1-based `line`: the enclosing table (with the index
/// of an array-of-tables entry) plus the key before `=`. Parse errors only carry a position;
/// this turns it into the field name an operator looks for.
fn field_at(text: &str, line: usize) -> String {
    let mut table = String::new();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for (i, l) in text.lines().enumerate().take(line) {
        let t = l.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let n = match counts.iter_mut().find(|(k, _)| *k == name) {
                Some((_, c)) => {
                    *c += 1;
                    *c - 1
                }
                None => {
                    counts.push((name.clone(), 1));
                    0
                }
            };
            table = format!("{name}[{n}]");
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_string();
        } else if i + 1 == line
            && let Some((key, _)) = t.split_once('=')
        {
            let key = key.trim();
            return if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            };
        }
    }
    table
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<RawListen>,
    ring: Option<RawRing>,
    limits: Option<RawLimits>,
    rebalance: Option<RawRebalance>,
    snapshot: Option<RawSnapshot>,
    nodes: Option<Vec<RawNode>>,
    auth: Option<RawAuth>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawListen {
    memcache: Option<SocketAddr>,
    resp: Option<SocketAddr>,
    any: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
    #[serde(default)]
    allow: Allow,
    tls_cert: Option<Spanned<PathBuf>>,
    tls_key: Option<Spanned<PathBuf>>,
    tls: Option<Spanned<Vec<CacheListener>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    password: Option<Spanned<String>>,
    users: Option<Vec<RawUser>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Spanned<String>,
    password: Spanned<String>,
    categories: Spanned<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRing {
    hash: Option<Spanned<String>>,
    distribution: Option<Spanned<String>>,
    points_per_weight: Option<Spanned<u32>>,
    hash_tags: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_connections: Option<u32>,
    max_value_size: Option<ByteSize>,
    max_request_size: Option<ByteSize>,
    proto_max_bulk_len: Option<ByteSize>,
    idle_timeout: Option<HumanDuration>,
    max_output_buffer: Option<ByteSize>,
    output_timeout: Option<HumanDuration>,
    tcp_keepalive: Option<HumanDuration>,
    tls_handshake_timeout: Option<HumanDuration>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRebalance {
    pause: Option<Spanned<HumanDuration>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSnapshot {
    path: Option<Spanned<PathBuf>>,
    save: Option<Spanned<String>>,
    on_shutdown: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Spanned<String>,
    max_memory: Option<Spanned<ByteSize>>,
    weight: Option<Spanned<u32>>,
    address: Option<Spanned<String>>,
    protocol: Option<Spanned<Protocol>>,
    timeout: Option<Spanned<HumanDuration>>,
    connections: Option<Spanned<u32>>,
    password: Option<Spanned<String>>,
}

/// The remote settings of `[[nodes]]` entry `i`: None without `address`; the remote-only
/// fields without `address` are an error.
fn remote_settings(
    node: &RawNode,
    i: usize,
    invalid: &impl Fn(Range<usize>, String, String) -> ConfigError,
) -> Result<Option<Settings>, ConfigError> {
    let Some(address) = &node.address else {
        let stray = [
            node.protocol.as_ref().map(|p| ("protocol", p.span())),
            node.timeout.as_ref().map(|t| ("timeout", t.span())),
            node.connections.as_ref().map(|c| ("connections", c.span())),
            node.password.as_ref().map(|p| ("password", p.span())),
        ];
        if let Some((field, span)) = stray.into_iter().flatten().next() {
            return Err(invalid(
                span,
                format!("nodes[{i}].{field}"),
                "only a remote node (with `address`) has this field".into(),
            ));
        }
        return Ok(None);
    };
    let text = address.get_ref().trim();
    let valid = text
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !valid {
        return Err(invalid(
            address.span(),
            format!("nodes[{i}].address"),
            format!("{text:?} is not host:port"),
        ));
    }
    let Some(protocol) = &node.protocol else {
        return Err(invalid(
            address.span(),
            format!("nodes[{i}].protocol"),
            "a remote node needs protocol = \"memcache\" or \"resp\"".into(),
        ));
    };
    let timeout = node
        .timeout
        .as_ref()
        .map_or(DEFAULT_REMOTE_TIMEOUT, |t| t.get_ref().0);
    if let Some(t) = &node.timeout
        && (timeout < Duration::from_millis(1) || timeout > Duration::from_secs(3600))
    {
        return Err(invalid(
            t.span(),
            format!("nodes[{i}].timeout"),
            "must be between 1ms and 1h".into(),
        ));
    }
    let default_connections = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let connections = node
        .connections
        .as_ref()
        .map_or(default_connections, |c| *c.get_ref());
    if let Some(c) = &node.connections
        && !(1..=MAX_REMOTE_CONNECTIONS).contains(c.get_ref())
    {
        return Err(invalid(
            c.span(),
            format!("nodes[{i}].connections"),
            format!("must be between 1 and {MAX_REMOTE_CONNECTIONS}"),
        ));
    }
    if let Some(p) = &node.password
        && *protocol.get_ref() != Protocol::Resp
    {
        return Err(invalid(
            p.span(),
            format!("nodes[{i}].password"),
            "only a resp node has a password (memcached has no AUTH)".into(),
        ));
    }
    Ok(Some(Settings {
        address: text.to_string(),
        protocol: *protocol.get_ref(),
        timeout,
        connections: connections.min(MAX_REMOTE_CONNECTIONS) as usize,
        password: node.password.as_ref().map(|p| p.get_ref().clone()),
    }))
}

impl ByteSize {
    /// Parses `"256MiB"`, `"1 GB"`, `"4096"`. KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024.
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let (num, unit) = split_number(s)?;
        let mult: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            "t" | "tb" => 1_000_000_000_000,
            "tib" => 1 << 40,
            _ => {
                return Err(format!(
                    "unknown size unit {unit:?} in {s:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
                ));
            }
        };
        num.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl HumanDuration {
    /// Parses `"30s"`, `"250ms"`, `"5m"`, `"1h"`, `"0"`.
    pub fn parse(s: &str) -> Result<HumanDuration, String> {
        let (num, unit) = split_number(s)?;
        let d = match unit {
            "ms" => Duration::from_millis(num),
            "" if num == 0 => Duration::ZERO,
            "s" => Duration::from_secs(num),
            "m" => Duration::from_secs(num.saturating_mul(60)),
            "h" => Duration::from_secs(num.saturating_mul(3600)),
            _ => {
                return Err(format!(
                    "unknown duration unit {unit:?} in {s:?} (use ms, s, m, h)"
                ));
            }
        };
        Ok(HumanDuration(d))
    }
}

fn split_number(s: &str) -> Result<(u64, &str), String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("{s:?} does not start with a number"));
    }
    let num = t[..digits]
        .parse::<u64>()
        .map_err(|_| format!("number in {s:?} is too large"))?;
    Ok((num, t[digits..].trim()))
}

struct UnitVisitor<T>(fn(&str) -> Result<T, String>, fn(u64) -> T, &'static str);

impl<T> de::Visitor<'_> for UnitVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.2)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        u64::try_from(v)
            .map(self.1)
            .map_err(|_| E::custom("must not be negative"))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok((self.1)(v))
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor(
            ByteSize::parse,
            ByteSize,
            "a size such as \"256MiB\" or a number of bytes",
        ))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor(
            HumanDuration::parse,
            |secs| HumanDuration(Duration::from_secs(secs)),
            "a duration such as \"30s\" or \"250ms\"",
        ))
    }
}

impl NodeConfig {
    /// The string this node's ring points are made of (`Ring::build`'s identity): its `name`.
    /// A server taken over from twemproxy is named by its twemproxy identity
    /// (`twemproxy::Server::identity`), which keeps its keys where twemproxy put them.
    pub fn ring_identity(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[listen]
memcache = "127.0.0.1:0"
metrics = "127.0.0.1:0"

[ring]
hash = "ketama-md5"
points_per_weight = 160

[limits]
max_value_size = "2MiB"
idle_timeout = "30s"

[[nodes]]
name = "cache-a"
max_memory = "64MiB"

[[nodes]]
name = "cache-b"
max_memory = "1GB"
weight = 3
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, Path::new("test.toml"))
    }

    #[test]
    fn parses_a_full_config() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.ring.hash, HashKind::KetamaMd5);
        assert_eq!(c.ring.hash_tags, Some(*b"{}"));
        assert_eq!(c.limits.max_value_size, 2 << 20);
        assert_eq!(c.limits.max_request_size, 16 << 20);
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(30));
        assert_eq!(c.limits.max_output_buffer, 64 << 20);
        assert_eq!(c.limits.output_timeout, Duration::from_secs(30));
        assert_eq!(c.limits.tcp_keepalive, Duration::from_secs(300));
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(c.nodes[0].max_memory, 64 << 20);
        assert_eq!(c.nodes[0].weight, 1);
        assert_eq!(c.nodes[1].max_memory, 1_000_000_000);
        assert_eq!(c.nodes[1].weight, 3);
    }

    #[test]
    fn remote_nodes_parse_and_their_mistakes_name_the_field() {
        let remote =
            "\n[[nodes]]\nname = \"r\"\naddress = \"127.0.0.1:6379\"\nprotocol = \"resp\"\n";
        let c = parse(&format!(
            "{GOOD}{remote}password = \"pw\"\ntimeout = \"250ms\"\nconnections = 3\n"
        ))
        .unwrap();
        let r = c.nodes[2].remote.as_ref().expect("remote");
        assert_eq!(r.address, "127.0.0.1:6379");
        assert_eq!(r.protocol, Protocol::Resp);
        assert_eq!(r.timeout, Duration::from_millis(250));
        assert_eq!(r.connections, 3);
        assert_eq!(r.password.as_deref(), Some("pw"));
        assert_eq!(c.nodes[2].max_memory, 0);
        assert!(c.nodes[0].remote.is_none());
        let defaults = parse(&format!("{GOOD}{remote}")).unwrap();
        let r = defaults.nodes[2].remote.as_ref().unwrap();
        assert_eq!(r.timeout, DEFAULT_REMOTE_TIMEOUT);
        assert!(r.connections >= 1);
        // Line 25 is the remote entry's `address`, 26 its `protocol`, 27 the added line.
        expect_invalid(
            &format!("{GOOD}{remote}max_memory = \"1MiB\"\n"),
            "nodes[2].max_memory",
            27,
        );
        expect_invalid(
            &format!("{GOOD}{remote}timeout = \"0s\"\n"),
            "nodes[2].timeout",
            27,
        );
        expect_invalid(
            &format!("{GOOD}{remote}connections = 0\n"),
            "nodes[2].connections",
            27,
        );
        let mc = remote.replace("\"resp\"", "\"memcache\"");
        expect_invalid(
            &format!("{GOOD}{mc}password = \"x\"\n"),
            "nodes[2].password",
            27,
        );
        expect_invalid(
            &format!("{GOOD}{}", remote.replace("127.0.0.1:6379", "nowhere")),
            "nodes[2].address",
            25,
        );
        expect_invalid(
            &format!("{GOOD}{}", remote.replace("protocol = \"resp\"\n", "")),
            "nodes[2].protocol",
            25,
        );
        expect_invalid(
            &format!("{GOOD}\n[[nodes]]\nname = \"x\"\ntimeout = \"1s\"\n"),
            "nodes[2].timeout",
            25,
        );
        expect_invalid(
            &format!("{GOOD}\n[[nodes]]\nname = \"x\"\n"),
            "nodes[2]",
            24,
        );
        assert!(parse(&format!("{GOOD}{}", remote.replace("resp", "http"))).is_err());
    }

    #[test]
    fn shipped_config_is_valid() {
        let text = include_str!("../config/ringcache.toml");
        let c = parse(text).expect("shipped config must be valid");
        assert!(!c.nodes.is_empty());
    }

    fn expect_invalid(text: &str, field: &str, line: usize) {
        match parse(text) {
            Err(ConfigError::Invalid {
                field: f, line: l, ..
            }) => {
                assert_eq!(f, field);
                assert_eq!(l, line, "line of {field}");
            }
            other => panic!("expected Invalid({field}), got {other:?}"),
        }
    }

    #[test]
    fn twemproxy_hash_and_distribution() {
        use crate::route::ring::{Distribution, KeyHash};
        let text = GOOD.replace(
            "hash = \"ketama-md5\"",
            "hash = \"fnv1a_64\"\ndistribution = \"modula\"",
        );
        let c = parse(&text).expect("valid");
        assert_eq!(
            c.ring.hash,
            HashKind::Twemproxy(KeyHash::Fnv1a64, Distribution::Modula)
        );
        let text = GOOD.replace("hash = \"ketama-md5\"", "hash = \"hsieh\"");
        let c = parse(&text).expect("valid");
        assert_eq!(
            c.ring.hash,
            HashKind::Twemproxy(KeyHash::Hsieh, Distribution::Ketama)
        );
        // Line 7 is `hash = ...`; the distribution goes on line 8.
        expect_invalid(
            &GOOD.replace("hash = \"ketama-md5\"", "hash = \"fnv\""),
            "ring.hash",
            7,
        );
        expect_invalid(
            &GOOD.replace(
                "hash = \"ketama-md5\"",
                "hash = \"md5\"\ndistribution = \"modulo\"",
            ),
            "ring.distribution",
            8,
        );
        expect_invalid(
            &GOOD.replace(
                "hash = \"ketama-md5\"",
                "hash = \"xxh3\"\ndistribution = \"modula\"",
            ),
            "ring.distribution",
            8,
        );
    }

    #[test]
    fn duplicate_node_names_the_second_one() {
        let text = GOOD.replace("name = \"cache-b\"", "name = \"cache-a\"");
        expect_invalid(&text, "nodes[1].name", 19);
        let msg = parse(&text).unwrap_err().to_string();
        assert!(
            msg.starts_with("test.toml:19: nodes[1].name: duplicate"),
            "{msg}"
        );
    }

    #[test]
    fn empty_name_zero_weight_zero_memory() {
        expect_invalid(
            &GOOD.replace("name = \"cache-b\"", "name = \"\""),
            "nodes[1].name",
            19,
        );
        expect_invalid(
            &GOOD.replace("weight = 3", "weight = 0"),
            "nodes[1].weight",
            21,
        );
        expect_invalid(
            &GOOD.replace("max_memory = \"1GB\"", "max_memory = \"0MiB\""),
            "nodes[1].max_memory",
            20,
        );
    }

    #[test]
    fn parse_errors_carry_the_line() {
        for (text, line, needle) in [
            (
                GOOD.replace("max_memory = \"1GB\"", "max_memory = \"lots\""),
                20,
                "number",
            ),
            (
                GOOD.replace("max_memory = \"1GB\"", "max_memory = \"5XB\""),
                20,
                "unit",
            ),
            (
                GOOD.replace("memcache = \"127.0.0.1:0\"", "memcache = \"nowhere\""),
                3,
                "address",
            ),
            (
                GOOD.replace("weight = 3", "wieght = 3"),
                21,
                "unknown field",
            ),
            (
                GOOD.replace("hash = \"ketama-md5\"", "hash = 32"),
                7,
                "invalid type",
            ),
            (
                GOOD.replace(
                    "[[nodes]]\nname = \"cache-b\"",
                    "[[nodes]\nname = \"cache-b\"",
                ),
                18,
                "",
            ),
        ] {
            match parse(&text) {
                Err(ConfigError::Parse {
                    line: l,
                    message,
                    field,
                    ..
                }) => {
                    assert_eq!(l, line, "{message}");
                    assert!(!field.is_empty(), "{message}");
                    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
                }
                other => panic!("expected a parse error, got {other:?}"),
            }
        }
    }

    #[test]
    fn parse_errors_name_the_field() {
        let text = GOOD.replace("max_memory = \"1GB\"", "max_memory = \"5XB\"");
        let msg = parse(&text).unwrap_err().to_string();
        assert!(
            msg.starts_with("test.toml:20: nodes[1].max_memory: unknown size unit"),
            "{msg}"
        );
        let text = GOOD.replace("memcache = \"127.0.0.1:0\"", "memcache = \"nowhere\"");
        let msg = parse(&text).unwrap_err().to_string();
        assert!(msg.starts_with("test.toml:3: listen.memcache: "), "{msg}");
    }

    #[test]
    fn no_nodes_or_no_listener() {
        let no_nodes = GOOD.split("[[nodes]]").next().expect("prefix").to_string();
        expect_invalid(&no_nodes, "nodes", 1);
        expect_invalid(
            &GOOD.replace("memcache = \"127.0.0.1:0\"", ""),
            "listen.memcache",
            1,
        );
    }

    #[test]
    fn auth_and_allow_lists() {
        let text = format!(
            "{GOOD}\n[auth]\npassword = \"pw-default\"\n[[auth.users]]\nname = \"reader\"\npassword = \"pw-reader\"\ncategories = [\"read\"]\n"
        )
        .replace(
            "metrics = \"127.0.0.1:0\"",
            "metrics = \"127.0.0.1:0\"\nallow = { resp = [\"127.0.0.1/32\", \"10.0.0.0/8\"] }",
        );
        let c = parse(&text).expect("valid");
        assert!(c.auth.enabled());
        assert_eq!(c.auth.users.len(), 1);
        assert_eq!(c.auth.users[0].categories, vec![Category::Read]);
        assert_eq!(c.listen.allow.resp.as_ref().map(Vec::len), Some(2));
        assert_eq!(c.listen.allow.memcache, None);
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("pw-default") && !shown.contains("pw-reader"),
            "{shown}"
        );

        let bad = text.replace("categories = [\"read\"]", "categories = [\"reed\"]");
        let msg = parse(&bad).unwrap_err().to_string();
        assert!(
            msg.contains("auth.users[0].categories: unknown category"),
            "{msg}"
        );
        let bad = text.replace("name = \"reader\"", "name = \"default\"");
        assert!(
            parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("auth.users[0].name")
        );
        let bad = text.replace("10.0.0.0/8", "10.0.0.0/40");
        let msg = parse(&bad).unwrap_err().to_string();
        assert!(msg.contains("listen.allow"), "{msg}");
    }

    /// A directory holding a fresh self-signed `cert.pem` and `key.pem`.
    fn tls_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ringcache-config-tls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
        std::fs::write(dir.join("cert.pem"), c.cert.pem()).expect("cert");
        std::fs::write(dir.join("key.pem"), c.signing_key.serialize_pem()).expect("key");
        dir
    }

    fn with_listen(extra: &str) -> String {
        GOOD.replace(
            "metrics = \"127.0.0.1:0\"",
            &format!("metrics = \"127.0.0.1:0\"\nresp = \"127.0.0.1:0\"\n{extra}"),
        )
    }

    #[test]
    fn tls_certificate_key_and_listeners() {
        let dir = tls_dir("ok");
        // Relative paths are read from the config file's directory.
        let text = with_listen("tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"");
        let c = Config::from_toml_str(&text, &dir.join("ringcache.toml")).expect("valid");
        let tls = c.listen.tls.as_ref().expect("tls on");
        assert_eq!(tls.cert, dir.join("cert.pem"));
        assert_eq!(
            tls.listeners,
            [CacheListener::Memcache, CacheListener::Resp]
        );
        assert!(!format!("{c:?}").contains("PRIVATE KEY"));
        assert_eq!(c.limits.tls_handshake_timeout, Duration::from_secs(10));

        let cert = dir.join("cert.pem").display().to_string();
        let key = dir.join("key.pem").display().to_string();
        let text = with_listen(&format!(
            "tls_cert = {cert:?}\ntls_key = {key:?}\ntls = [\"resp\"]"
        ));
        let c = parse(&text).expect("valid");
        let tls = c.listen.tls.as_ref().expect("tls on");
        assert!(tls.covers(CacheListener::Resp) && !tls.covers(CacheListener::Memcache));

        // Line 5 is the first key added after `metrics` (line 4): resp, then the TLS keys.
        expect_invalid(
            &with_listen(&format!("tls_cert = {cert:?}")),
            "listen.tls_cert",
            6,
        );
        expect_invalid(
            &with_listen(&format!("tls_key = {key:?}")),
            "listen.tls_key",
            6,
        );
        expect_invalid(&with_listen("tls = [\"resp\"]"), "listen.tls", 6);
        let both = format!("tls_cert = {cert:?}\ntls_key = {key:?}\n");
        expect_invalid(&with_listen(&format!("{both}tls = []")), "listen.tls", 8);
        expect_invalid(
            &with_listen(&format!("{both}tls = [\"any\"]")),
            "listen.tls",
            8,
        );
        let msg = parse(&with_listen(&format!("{both}tls = [\"any\"]")))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("listen.any is not set"), "{msg}");
        // The metrics listener stays plain HTTP: naming it is a schema error on its line.
        match parse(&with_listen(&format!("{both}tls = [\"metrics\"]"))) {
            Err(ConfigError::Parse { line, field, .. }) => {
                assert_eq!((line, field.as_str()), (8, "listen.tls"));
            }
            other => panic!("expected a parse error, got {other:?}"),
        }

        // Files that are missing, or are not what they should be, name the key and its line.
        let missing = with_listen(&format!("tls_cert = \"nope.pem\"\ntls_key = {key:?}"));
        let msg = parse(&missing).unwrap_err().to_string();
        assert!(
            msg.starts_with("test.toml:6: listen.tls_cert: cannot read nope.pem"),
            "{msg}"
        );
        let swapped = with_listen(&format!("tls_cert = {key:?}\ntls_key = {cert:?}"));
        expect_invalid(&swapped, "listen.tls_cert", 6);
        let other = tls_dir("other");
        let foreign = other.join("key.pem").display().to_string();
        let mismatch = with_listen(&format!("tls_cert = {cert:?}\ntls_key = {foreign:?}"));
        expect_invalid(&mismatch, "listen.tls_key", 7);
        let msg = parse(&mismatch).unwrap_err().to_string();
        assert!(msg.contains("does not belong to the certificate"), "{msg}");

        let zero = GOOD.replace("idle_timeout = \"30s\"", "tls_handshake_timeout = \"0s\"");
        expect_invalid(&zero, "limits.tls_handshake_timeout", 1);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&other);
    }

    #[test]
    fn output_and_keepalive_limits() {
        let text = GOOD.replace(
            "idle_timeout = \"30s\"",
            "idle_timeout = \"30s\"\nmax_output_buffer = \"1MiB\"\noutput_timeout = \"0s\"\ntcp_keepalive = \"60s\"",
        );
        let c = parse(&text).expect("valid");
        assert_eq!(c.limits.max_output_buffer, 1 << 20);
        assert_eq!(c.limits.output_timeout, Duration::ZERO);
        assert_eq!(c.limits.tcp_keepalive, Duration::from_secs(60));
        let small = GOOD.replace("idle_timeout = \"30s\"", "max_output_buffer = \"1KiB\"");
        expect_invalid(&small, "limits.max_output_buffer", 1);
        let fast = GOOD.replace("idle_timeout = \"30s\"", "tcp_keepalive = \"500ms\"");
        expect_invalid(&fast, "limits.tcp_keepalive", 1);
        let huge = GOOD.replace("idle_timeout = \"30s\"", "max_request_size = \"2GiB\"");
        expect_invalid(&huge, "limits.max_request_size", 1);
        let largest = GOOD.replace("idle_timeout = \"30s\"", "max_request_size = \"1GiB\"");
        assert_eq!(
            parse(&largest).expect("valid").limits.max_request_size,
            1 << 30
        );
    }

    #[test]
    fn snapshot_settings() {
        assert_eq!(parse(GOOD).expect("valid").snapshot, None);
        let text = format!("{GOOD}\n[snapshot]\n");
        let c = parse(&text).expect("valid").snapshot.expect("on");
        assert!(c.path.ends_with("dump.rdb"));
        assert_eq!(c.save.len(), 3);
        assert_eq!(c.save[0].after, Duration::from_secs(3600));
        assert!(c.on_shutdown);
        let text = format!(
            "{GOOD}\n[snapshot]\npath = \"snap/x.rdb\"\nsave = \"\"\non_shutdown = false\n"
        );
        let c = parse(&text).expect("valid").snapshot.expect("on");
        assert!(c.path.ends_with("snap/x.rdb"));
        assert!(c.save.is_empty() && !c.on_shutdown);
        for bad in ["\"60\"", "\"60 x\"", "\"0 1\""] {
            let text = format!("{GOOD}\n[snapshot]\nsave = {bad}\n");
            expect_invalid(&text, "snapshot.save", text.lines().count());
        }
    }

    #[test]
    fn rebalance_pause() {
        assert_eq!(parse(GOOD).expect("valid").rebalance.pause, Duration::ZERO);
        let text = format!("{GOOD}\n[rebalance]\npause = \"5ms\"\n");
        let c = parse(&text).expect("valid");
        assert_eq!(c.rebalance.pause, Duration::from_millis(5));
        let slow = format!("{GOOD}\n[rebalance]\npause = \"2s\"\n");
        expect_invalid(&slow, "rebalance.pause", slow.lines().count());
        let typo = format!("{GOOD}\n[rebalance]\npuase = \"5ms\"\n");
        assert!(parse(&typo).is_err());
    }

    #[test]
    fn units() {
        assert_eq!(ByteSize::parse("256MiB"), Ok(ByteSize(256 << 20)));
        assert_eq!(ByteSize::parse("1 kib"), Ok(ByteSize(1024)));
        assert_eq!(ByteSize::parse("100"), Ok(ByteSize(100)));
        assert!(ByteSize::parse("MiB").is_err());
        assert!(ByteSize::parse("99999999999999999999").is_err());
        assert!(ByteSize::parse("16777216TiB").is_err());
        assert_eq!(
            HumanDuration::parse("250ms"),
            Ok(HumanDuration(Duration::from_millis(250)))
        );
        assert_eq!(HumanDuration::parse("0"), Ok(HumanDuration(Duration::ZERO)));
        assert_eq!(
            HumanDuration::parse("2m"),
            Ok(HumanDuration(Duration::from_secs(120)))
        );
        assert!(HumanDuration::parse("5").is_err());
        assert!(HumanDuration::parse("5y").is_err());
    }
}
