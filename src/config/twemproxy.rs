//! twemproxy (nutcracker) configuration: reads a `nutcracker.yml` and writes the equivalent
//! ringcache config (`ringcache --from-twemproxy FILE`).
//!
//! Owns: the twemproxy pool keys and their defaults (nutcracker 0.5's `nc_conf.c`), the server
//! line `host:port:weight [name]` and the server identity twemproxy hashes onto the ring, and
//! the TOML text written for each pool. Must not touch: the ring (it only names a
//! [`HashKind`]), ringcache's own config parsing, any I/O but what the caller passes in.
//!
//! Invariants:
//! - A server's ring identity is twemproxy's: the `name` of `host:port:weight name`, else
//!   `host:port`, else only `host` when the port is 11211 (libmemcached compatibility in
//!   twemproxy's `conf_add_server`). The weight is never part of it. Each converted node's
//!   `name` is that identity, so ringcache builds the same points from it.
//! - Every pool becomes one complete ringcache config: ringcache serves one ring per process,
//!   and twemproxy pools each have their own ring and listen address. Several pools print
//!   several configs, each under a banner, one ringcache process per pool.
//! - Nothing is dropped silently: a twemproxy setting with no ringcache equivalent is written as
//!   a comment saying what ringcache does instead.

use std::fmt::Write as _;

use serde_yaml_ng::Value;

use crate::route::ring::{Distribution, HashKind, KeyHash};

/// The port twemproxy leaves out of an unnamed server's identity (`CONF_DEFAULT_KETAMA_PORT`).
pub const KETAMA_PORT: u16 = 11211;

/// Why a `nutcracker.yml` could not be converted. `Display` names the file, then the pool and
/// key (twemproxy reports errors per directive, not per line).
#[derive(Debug, thiserror::Error)]
pub enum TwemproxyError {
    /// Not YAML, or not a mapping of pools.
    #[error("{file}:{line}: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// A pool key twemproxy would reject too (or ringcache cannot read).
    #[error("{file}: pool {pool:?}: {key}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// The pool name.
        pool: String,
        /// The key, e.g. `servers[2]` or `hash`.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// `--pool NAME` names no pool of the file.
    #[error("{file}: no pool {pool:?} (pools: {known})")]
    NoSuchPool {
        /// The file.
        file: String,
        /// The pool asked for.
        pool: String,
        /// The pools the file has, comma-separated.
        known: String,
    },
}

/// One `servers:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The line as written (`127.0.0.1:6379:1 redis-a`).
    pub line: String,
    /// Host name or IP, or the socket path of a unix-socket server.
    pub host: String,
    /// TCP port; `None` for a unix socket (`/path:weight`).
    pub port: Option<u16>,
    /// Relative share.
    pub weight: u32,
    /// The optional name after the space.
    pub name: Option<String>,
}

impl Server {
    /// Parses `host:port:weight [name]` (or `/path:weight [name]`) the way twemproxy does: the
    /// name is what follows the last space, the weight and port what follow the last two colons.
    pub fn parse(line: &str) -> Result<Server, String> {
        let (spec, name) = match line.rsplit_once(' ') {
            Some((spec, name)) if !name.is_empty() => (spec, Some(name.to_string())),
            _ => (line, None),
        };
        let format = "expected \"host:port:weight [name]\"";
        let (rest, weight) = spec.rsplit_once(':').ok_or_else(|| format.to_string())?;
        let weight: u32 = weight
            .parse()
            .map_err(|_| format!("invalid weight {weight:?}: {format}"))?;
        if weight == 0 {
            return Err("weight must be at least 1".into());
        }
        let (host, port) = if rest.starts_with('/') {
            (rest.to_string(), None)
        } else {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| format.to_string())?;
            let port: u16 = port
                .parse()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("invalid port {port:?}: {format}"))?;
            if host.is_empty() {
                return Err(format!("empty host: {format}"));
            }
            (host.to_string(), Some(port))
        };
        Ok(Server {
            line: line.to_string(),
            host,
            port,
            weight,
            name,
        })
    }

    /// The string twemproxy builds this server's ketama points from: see the module header.
    pub fn identity(&self) -> String {
        match (&self.name, self.port) {
            (Some(name), _) => name.clone(),
            (None, Some(KETAMA_PORT)) => self.host.clone(),
            (None, Some(port)) => format!("{}:{port}", self.host),
            // twemproxy takes `addrlen + 1 + portlen` bytes here: the path and its ':'.
            (None, None) => format!("{}:", self.host),
        }
    }

    /// `host:port` to connect to (the socket path for a unix socket).
    pub fn address(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// One twemproxy pool with twemproxy's defaults applied (nutcracker 0.5 `nc_conf.c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The pool's name (its key in the file).
    pub name: String,
    /// `listen`: `host:port`, or a socket path optionally followed by permissions.
    pub listen: String,
    /// `hash` (default fnv1a_64).
    pub hash: KeyHash,
    /// `distribution` (default ketama).
    pub distribution: Distribution,
    /// `hash_tag`: two bytes, or none.
    pub hash_tag: Option<[u8; 2]>,
    /// `timeout` in ms; `None` waits forever (twemproxy's default).
    pub timeout_ms: Option<u64>,
    /// `redis`: the pool speaks RESP, else memcached.
    pub redis: bool,
    /// `redis_auth`.
    pub redis_auth: Option<String>,
    /// `redis_db` (default 0).
    pub redis_db: u64,
    /// `server_connections` when given (twemproxy's default is 1).
    pub server_connections: Option<u64>,
    /// `client_connections` (0, the default: unlimited).
    pub client_connections: u64,
    /// `auto_eject_hosts` (default false).
    pub auto_eject_hosts: bool,
    /// `server_failure_limit` (default 2).
    pub server_failure_limit: u64,
    /// `server_retry_timeout` in ms (default 30000).
    pub server_retry_timeout_ms: u64,
    /// `preconnect` (default false).
    pub preconnect: bool,
    /// `backlog` when given (default 512).
    pub backlog: Option<u64>,
    /// `tcpkeepalive` (default false).
    pub tcpkeepalive: bool,
    /// `servers`, in order (order matters to modula).
    pub servers: Vec<Server>,
}

impl Pool {
    /// The ring scheme of this pool.
    pub fn hash_kind(&self) -> HashKind {
        HashKind::Twemproxy(self.hash, self.distribution)
    }

    /// `(identity, weight)` per server, in order: what `Ring::build` takes.
    pub fn ring_nodes(&self) -> Vec<(String, u32)> {
        self.servers
            .iter()
            .map(|s| (s.identity(), s.weight))
            .collect()
    }
}

/// Reads every pool of a `nutcracker.yml`, in file order. `file` only names the file in errors.
pub fn parse(text: &str, file: &str) -> Result<Vec<Pool>, TwemproxyError> {
    let root: Value = serde_yaml_ng::from_str(text).map_err(|e| TwemproxyError::Yaml {
        file: file.to_string(),
        line: e.location().map_or(0, |l| l.line()),
        message: e.to_string(),
    })?;
    let Value::Mapping(pools) = root else {
        return Err(TwemproxyError::Yaml {
            file: file.to_string(),
            line: 1,
            message: "expected a mapping of pool names to pools".into(),
        });
    };
    let mut out = Vec::with_capacity(pools.len());
    for (name, body) in &pools {
        let name = scalar(name).unwrap_or_else(|| format!("{name:?}"));
        let invalid = |key: &str, reason: String| TwemproxyError::Invalid {
            file: file.to_string(),
            pool: name.clone(),
            key: key.to_string(),
            reason,
        };
        let Value::Mapping(keys) = body else {
            return Err(invalid("", "expected a mapping of settings".into()));
        };
        let mut pool = Pool {
            name: name.clone(),
            listen: String::new(),
            hash: KeyHash::Fnv1a64,
            distribution: Distribution::Ketama,
            hash_tag: None,
            timeout_ms: None,
            redis: false,
            redis_auth: None,
            redis_db: 0,
            server_connections: None,
            client_connections: 0,
            auto_eject_hosts: false,
            server_failure_limit: 2,
            server_retry_timeout_ms: 30_000,
            preconnect: false,
            backlog: None,
            tcpkeepalive: false,
            servers: Vec::new(),
        };
        let mut has_servers = false;
        for (key, value) in keys {
            let key = scalar(key).unwrap_or_default();
            let key = key.as_str();
            if key == "servers" {
                has_servers = true;
                let Value::Sequence(lines) = value else {
                    return Err(invalid(key, "expected a list of servers".into()));
                };
                for (i, line) in lines.iter().enumerate() {
                    let field = format!("servers[{i}]");
                    let line = scalar(line)
                        .ok_or_else(|| invalid(&field, "expected a server string".into()))?;
                    let server = Server::parse(line.trim()).map_err(|r| invalid(&field, r))?;
                    pool.servers.push(server);
                }
                continue;
            }
            let text = scalar(value).ok_or_else(|| invalid(key, "expected a value".into()))?;
            let num = || {
                text.parse::<u64>()
                    .map_err(|_| invalid(key, format!("{text:?} is not a number")))
            };
            let boolean = || match text.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(invalid(
                    key,
                    format!("{text:?} is not \"true\" or \"false\""),
                )),
            };
            match key {
                "listen" => pool.listen = text.clone(),
                "hash" => {
                    pool.hash = KeyHash::from_name(&text)
                        .ok_or_else(|| invalid(key, format!("unknown hash {text:?}")))?;
                }
                "distribution" => {
                    pool.distribution = Distribution::from_name(&text)
                        .ok_or_else(|| invalid(key, format!("unknown distribution {text:?}")))?;
                }
                "hash_tag" => match text.as_bytes() {
                    [open, close] => pool.hash_tag = Some([*open, *close]),
                    _ => {
                        return Err(invalid(key, "must be two characters, e.g. \"{}\"".into()));
                    }
                },
                "timeout" => pool.timeout_ms = Some(num()?),
                "backlog" => pool.backlog = Some(num()?),
                "client_connections" => pool.client_connections = num()?,
                "redis" => pool.redis = boolean()?,
                "redis_auth" => pool.redis_auth = Some(text.clone()),
                "redis_db" => pool.redis_db = num()?,
                "preconnect" => pool.preconnect = boolean()?,
                "auto_eject_hosts" => pool.auto_eject_hosts = boolean()?,
                "server_connections" => pool.server_connections = Some(num()?),
                "server_retry_timeout" => pool.server_retry_timeout_ms = num()?,
                "server_failure_limit" => pool.server_failure_limit = num()?,
                "tcpkeepalive" => pool.tcpkeepalive = boolean()?,
                _ => {
                    return Err(invalid(
                        key,
                        "unknown setting (twemproxy rejects it too)".into(),
                    ));
                }
            }
        }
        if pool.listen.is_empty() {
            return Err(invalid("listen", "missing".into()));
        }
        if !has_servers || pool.servers.is_empty() {
            return Err(invalid("servers", "missing or empty".into()));
        }
        out.push(pool);
    }
    if out.is_empty() {
        return Err(TwemproxyError::Yaml {
            file: file.to_string(),
            line: 1,
            message: "no pools".into(),
        });
    }
    Ok(out)
}

/// A YAML scalar as twemproxy sees it: text (libyaml hands twemproxy every scalar as a string).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The ringcache configs for `text`: every pool, or only `only`. One pool prints one config;
/// several print one config each under a banner (one ringcache process per pool).
pub fn convert(text: &str, file: &str, only: Option<&str>) -> Result<String, TwemproxyError> {
    let mut pools = parse(text, file)?;
    if let Some(name) = only {
        let known: Vec<String> = pools.iter().map(|p| p.name.clone()).collect();
        pools.retain(|p| p.name == name);
        if pools.is_empty() {
            return Err(TwemproxyError::NoSuchPool {
                file: file.to_string(),
                pool: name.to_string(),
                known: known.join(", "),
            });
        }
    }
    let mut out = String::new();
    let several = pools.len() > 1;
    if several {
        let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
        let _ = writeln!(
            out,
            "# {file} has {} twemproxy pools ({}). A ringcache process serves one ring, so every\n\
             # part below is a complete config of its own: save each part to its own file and run\n\
             # one ringcache per pool (or pick one with --pool NAME).",
            pools.len(),
            names.join(", ")
        );
    }
    for pool in &pools {
        if several {
            let _ = writeln!(
                out,
                "\n# {bar}\n# pool {name:?}: save as {name}.toml\n# {bar}",
                bar = "=".repeat(76),
                name = pool.name
            );
        }
        out.push_str(&render(pool, file));
    }
    Ok(out)
}

/// A TOML string literal.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The ringcache config for one pool.
pub fn render(pool: &Pool, file: &str) -> String {
    let mut out = String::new();
    let protocol = if pool.redis { "resp" } else { "memcache" };
    let _ = writeln!(
        out,
        "# ringcache config for twemproxy pool {:?}\n\
         # (from {file} by ringcache --from-twemproxy).\n\
         # Keys are placed exactly as twemproxy places them (same hash, distribution, hash tag\n\
         # and server identities), so every key stays on the server that holds it now.\n",
        pool.name
    );

    out.push_str("[listen]\n");
    let listen = pool.listen.trim();
    if listen.starts_with('/') {
        let _ = writeln!(
            out,
            "# UNSUPPORTED: twemproxy listens on the unix socket {listen:?};\n\
             # ringcache listens on TCP only. Pick an address:\n\
             # {protocol} = \"127.0.0.1:PORT\""
        );
    } else {
        if listen.parse::<std::net::SocketAddr>().is_err() {
            out.push_str("# ringcache listens on an IP address and port: replace the host name\n");
        }
        let _ = writeln!(
            out,
            "{protocol} = {}  # twemproxy listen{}",
            quote(listen),
            if pool.redis { ", redis: true" } else { "" }
        );
    }
    out.push_str("# metrics = \"127.0.0.1:9100\"  # Prometheus /metrics and /ring, if wanted\n");

    out.push_str("\n[ring]\n");
    let _ = writeln!(out, "hash = {}", quote(pool.hash.name()));
    let _ = writeln!(out, "distribution = {}", quote(pool.distribution.name()));
    match pool.hash_tag {
        Some(tag) => {
            let _ = writeln!(out, "hash_tags = {}", quote(&String::from_utf8_lossy(&tag)));
        }
        None => out.push_str(
            "hash_tags = \"\"  # no hash_tag in twemproxy (ringcache's default is \"{}\")\n",
        ),
    }
    if pool.distribution == Distribution::Ketama {
        out.push_str("points_per_weight = 160  # twemproxy's KETAMA_POINTS_PER_SERVER\n");
    }
    if pool.distribution == Distribution::Random {
        out.push_str(
            "# twemproxy's random sends each request to a random server. ringcache keeps one\n\
             # owner per key instead (hash % servers, weights ignored): reads find what was\n\
             # written, but a key is read from one server, not any.\n",
        );
    }

    if pool.client_connections > 0 {
        let _ = writeln!(
            out,
            "\n[limits]\nmax_connections = {}  # twemproxy client_connections",
            pool.client_connections
        );
    }

    let mut notes: Vec<String> = Vec::new();
    if pool.auto_eject_hosts {
        notes.push(format!(
            "auto_eject_hosts: true (server_failure_limit {}, server_retry_timeout {} ms):\n\
             #   ringcache never takes a server off the ring, which would move its keys to the\n\
             #   others and back; a server that fails makes only its own keys fail, each within\n\
             #   its timeout, and it is reconnected with back-off.",
            pool.server_failure_limit, pool.server_retry_timeout_ms
        ));
    }
    if pool.timeout_ms.is_none() {
        notes.push(
            "no timeout: twemproxy waits forever; ringcache's per-node default applies (1s)."
                .into(),
        );
    }
    if pool.preconnect {
        notes.push("preconnect: true: no ringcache setting.".into());
    }
    if let Some(backlog) = pool.backlog {
        notes.push(format!("backlog: {backlog}: no ringcache setting."));
    }
    if pool.tcpkeepalive {
        notes.push(
            "tcpkeepalive: true: [limits] tcp_keepalive covers client connections only.".into(),
        );
    }
    if pool.redis_db != 0 {
        notes.push(format!(
            "redis_db: {}: UNSUPPORTED, ringcache uses each Redis server's db 0.",
            pool.redis_db
        ));
    }
    if !notes.is_empty() {
        out.push_str("\n# twemproxy settings without a ringcache equivalent:\n");
        for note in notes {
            let _ = writeln!(out, "# - {note}");
        }
    }

    out.push_str(
        "\n# One node per twemproxy server. `name` is twemproxy's identity of the server (its\n\
         # name, else host:port, else host alone for port 11211): the ring points are made of\n\
         # it, so changing it moves the server's keys.\n",
    );
    for server in &pool.servers {
        out.push_str("\n[[nodes]]\n");
        let _ = writeln!(out, "name = {}", quote(&server.identity()));
        if server.port.is_none() {
            let _ = writeln!(
                out,
                "# UNSUPPORTED: unix socket server {:?}; ringcache connects over TCP.",
                server.host
            );
        }
        let _ = writeln!(out, "address = {}", quote(&server.address()));
        let _ = writeln!(out, "protocol = {}", quote(protocol));
        let _ = writeln!(out, "weight = {}", server.weight);
        if server.weight > 1_000 {
            out.push_str("# ringcache accepts weights up to 1000: scale this pool's weights\n");
        }
        if let Some(ms) = pool.timeout_ms {
            let _ = writeln!(out, "timeout = \"{ms}ms\"");
        }
        if let Some(n) = pool.server_connections {
            let _ = writeln!(out, "connections = {n}");
        }
        if let Some(auth) = &pool.redis_auth {
            let _ = writeln!(out, "password = {}", quote(auth));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_identity_follows_twemproxy() {
        let cases = [
            ("127.0.0.1:6380:1 server1", "server1", "127.0.0.1:6380", 1),
            ("127.0.0.1:6380:2", "127.0.0.1:6380", "127.0.0.1:6380", 2),
            ("10.0.0.5:11211:3", "10.0.0.5", "10.0.0.5:11211", 3),
            ("10.0.0.5:11211:1 mc-a", "mc-a", "10.0.0.5:11211", 1),
            (
                "cache.local:11212:1",
                "cache.local:11212",
                "cache.local:11212",
                1,
            ),
        ];
        for (line, identity, address, weight) in cases {
            let s = Server::parse(line).expect(line);
            assert_eq!(s.identity(), identity, "{line}");
            assert_eq!(s.address(), address, "{line}");
            assert_eq!(s.weight, weight, "{line}");
        }
        let unix = Server::parse("/tmp/mc.sock:1").expect("unix");
        assert_eq!((unix.port, unix.address()), (None, "/tmp/mc.sock".into()));
        for bad in [
            "127.0.0.1:6379",
            "127.0.0.1:x:1",
            "127.0.0.1:6379:0",
            ":6379:1",
            "a:0:1",
        ] {
            assert!(Server::parse(bad).is_err(), "{bad}");
        }
    }

    const SAMPLE: &str = "
alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: true
  redis: true
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
   - 127.0.0.1:6379:1
beta:
  listen: 127.0.0.1:22122
  hash: murmur
  hash_tag: \"$$\"
  distribution: modula
  timeout: 400
  server_connections: 2
  servers:
   - 127.0.0.1:11211:1
   - 127.0.0.1:11212:2 mc-b
";

    #[test]
    fn parses_pools_with_defaults() {
        let pools = parse(SAMPLE, "n.yml").expect("valid");
        assert_eq!(pools.len(), 2);
        let (a, b) = (&pools[0], &pools[1]);
        assert_eq!(a.name, "alpha");
        assert!(a.redis && a.auto_eject_hosts);
        assert_eq!((a.server_failure_limit, a.timeout_ms), (1, None));
        assert_eq!(
            b.hash_kind(),
            HashKind::Twemproxy(KeyHash::Murmur, Distribution::Modula)
        );
        assert_eq!(b.hash_tag, Some(*b"$$"));
        assert_eq!(b.server_retry_timeout_ms, 30_000);
        assert_eq!(
            b.ring_nodes(),
            [("127.0.0.1".to_string(), 1), ("mc-b".to_string(), 2)]
        );
    }

    #[test]
    fn rejects_what_twemproxy_rejects() {
        for (text, key) in [
            (
                "p:\n  listen: a:1\n  hashh: md5\n  servers:\n   - a:1:1\n",
                "hashh",
            ),
            (
                "p:\n  listen: a:1\n  hash: md6\n  servers:\n   - a:1:1\n",
                "hash",
            ),
            (
                "p:\n  listen: a:1\n  hash_tag: \"{\"\n  servers:\n   - a:1:1\n",
                "hash_tag",
            ),
            (
                "p:\n  listen: a:1\n  redis: yes\n  servers:\n   - a:1:1\n",
                "redis",
            ),
            ("p:\n  listen: a:1\n  servers:\n   - a:1\n", "servers[0]"),
            ("p:\n  listen: a:1\n", "servers"),
            ("p:\n  servers:\n   - a:1:1\n", "listen"),
        ] {
            match parse(text, "n.yml") {
                Err(TwemproxyError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected Invalid({key}), got {other:?}"),
            }
        }
        assert!(matches!(
            parse("p: [1, 2", "n.yml"),
            Err(TwemproxyError::Yaml { .. })
        ));
    }

    #[test]
    fn converts_each_pool_to_toml() {
        let named = SAMPLE.replace("127.0.0.1:22121", "localhost:22121");
        let out = convert(&named, "n.yml", Some("alpha")).expect("converts");
        assert!(out.contains("replace the host name\nresp = \"localhost:22121\""));
        let out = convert(SAMPLE, "n.yml", None).expect("converts");
        assert!(!out.contains("replace the host name"));
        assert!(out.contains("pool \"alpha\": save as alpha.toml"));
        // Every part is a TOML document of its own.
        let parts: Vec<&str> = out.split("\n# pool ").collect();
        assert_eq!(parts.len(), 3);
        for part in &parts[1..] {
            let doc: toml::Table = toml::from_str(&format!("# {part}")).expect("each part is TOML");
            assert!(doc.contains_key("listen") && doc.contains_key("nodes"));
        }
        let beta: toml::Table = toml::from_str(&convert(SAMPLE, "n.yml", Some("beta")).unwrap())
            .expect("one pool is one TOML document");
        assert_eq!(beta["listen"]["memcache"].as_str(), Some("127.0.0.1:22122"));
        assert_eq!(beta["ring"]["hash"].as_str(), Some("murmur"));
        assert_eq!(beta["ring"]["distribution"].as_str(), Some("modula"));
        assert_eq!(beta["ring"]["hash_tags"].as_str(), Some("$$"));
        let nodes = beta["nodes"].as_array().expect("nodes");
        assert_eq!(nodes[0]["name"].as_str(), Some("127.0.0.1"));
        assert_eq!(nodes[0]["address"].as_str(), Some("127.0.0.1:11211"));
        assert_eq!(nodes[1]["name"].as_str(), Some("mc-b"));
        assert_eq!(nodes[1]["weight"].as_integer(), Some(2));
        assert_eq!(nodes[1]["protocol"].as_str(), Some("memcache"));
        assert_eq!(nodes[1]["timeout"].as_str(), Some("400ms"));
        assert_eq!(nodes[1]["connections"].as_integer(), Some(2));
        assert!(matches!(
            convert(SAMPLE, "n.yml", Some("gamma")),
            Err(TwemproxyError::NoSuchPool { .. })
        ));
    }
}
