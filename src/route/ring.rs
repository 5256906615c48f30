//! Consistent-hashing ring: maps a key to the index of the node that owns it.
//!
//! Owns: placing node points on the ring (the schemes of [`HashKind`]: native xxh3, and
//! twemproxy's `hash` x `distribution` pairs, of which ketama-md5 is one), hashing keys
//! (including the twemproxy hash-tag rule), and the lookup from a key hash to a node index.
//!
//! Must not touch: node storage, the topology swap, config parsing/validation (weights > 0, sane
//! `points_per_weight`), rebalancing, any I/O. The ring is pure data, built once and never mutated;
//! a new topology builds a new ring. The twemproxy key hash functions live in `hashkit`.
//!
//! Invariants:
//! - `hashes` is sorted ascending by `(point, node index)`; `owners[i]` is the node of `hashes[i]`
//!   and is always `< len()`. Ties are broken by node index so placement never depends on sort
//!   stability or input order of equal points.
//! - Modula and random rings have no points: `hashes` is empty and `owners` is the slot table.
//! - `buckets` only narrows the search: a lookup returns exactly what a binary search of the
//!   whole `hashes` array would.
//! - `lookup` never allocates and is deterministic across processes and platforms (no seeded
//!   hashers): the same nodes and key give the same index everywhere.
//! - [`HashKind::KetamaMd5`] places points exactly like twemproxy 0.5 (`distribution: ketama`,
//!   `hash: md5`) and libmemcached `KETAMA_WEIGHTED`, including its float32 point count (156
//!   instead of 160 points for some node counts). [`HashKind::Twemproxy`] does the same for every
//!   twemproxy hash with `distribution: ketama` and `modula`; `tests/twemproxy.rs` checks both
//!   against golden vectors from a real nutcracker. `random` is stable here, not random (see
//!   [`Distribution::Random`]).

use std::fmt;

use md5::{Digest, Md5};
use xxhash_rust::xxh3::xxh3_64;

pub use crate::route::hashkit::KeyHash;

/// Points per unit of weight that twemproxy/libmemcached use (`KETAMA_POINTS_PER_SERVER`); the
/// natural default for `points_per_weight`.
pub const DEFAULT_POINTS_PER_WEIGHT: u32 = 160;

/// Ketama hashes one md5 digest into four ring points (`pointer_per_hash` in twemproxy).
const POINTS_PER_MD5: u32 = 4;

/// Cap on the lookup bucket table (2^20 + 1 u32 = 4 MiB, reached only past ~4M points); also
/// keeps the ketama shift (32 - bits) positive.
const MAX_BUCKET_BITS: u32 = 20;

/// How node points and key hashes are computed. Config spells it with `[ring] hash` (and
/// `distribution` for twemproxy's hashes); see [`HashKind::from_config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashKind {
    /// 64-bit XXH3 points and key hashes; a node of weight `w` gets exactly
    /// `w * points_per_weight` points, so adding a node never changes anyone else's points.
    #[default]
    Xxh3,
    /// twemproxy/libmemcached-compatible ketama with md5 (32-bit points). Use it to keep key
    /// placement identical to an existing twemproxy (`hash: md5`) or libketama client fleet.
    /// Same placement as `Twemproxy(KeyHash::Md5, Distribution::Ketama)`.
    KetamaMd5,
    /// twemproxy's `hash` and `distribution` pair, placement identical to nutcracker 0.5.
    Twemproxy(KeyHash, Distribution),
}

/// twemproxy's `distribution:` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Distribution {
    /// Consistent hashing: md5 ketama points (160 per server, shared out by weight), the key
    /// hashed with the pool's hash and looked up clockwise.
    #[default]
    Ketama,
    /// `hash(key) % total weight` over a table holding each server `weight` times, servers in
    /// twemproxy's order (sorted by identity: shorter first, then bytewise; not config order).
    /// Adding a server moves most keys.
    Modula,
    /// twemproxy picks a random server for every request. ringcache needs one owner per key
    /// (migration, multi-key grouping, read-after-write), so it picks a *stable* one instead:
    /// `hash(key) % number of servers`, one slot per server in twemproxy's order, weights
    /// ignored as twemproxy ignores them. No placement can equal twemproxy's, which has none.
    Random,
}

impl Distribution {
    /// twemproxy's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Ketama => "ketama",
            Distribution::Modula => "modula",
            Distribution::Random => "random",
        }
    }

    /// The distribution twemproxy calls `name`, if any.
    pub fn from_name(name: &str) -> Option<Distribution> {
        [
            Distribution::Ketama,
            Distribution::Modula,
            Distribution::Random,
        ]
        .into_iter()
        .find(|d| d.name() == name)
    }
}

impl HashKind {
    /// The config spelling of `hash`: `"xxh3"`, `"ketama-md5"`, or a twemproxy hash name.
    pub fn name(self) -> &'static str {
        match self {
            HashKind::Xxh3 => "xxh3",
            HashKind::KetamaMd5 => "ketama-md5",
            HashKind::Twemproxy(hash, _) => hash.name(),
        }
    }

    /// The distribution: [`Distribution::Ketama`] for the two native schemes (both are
    /// consistent hashing).
    pub fn distribution(self) -> Distribution {
        match self {
            HashKind::Twemproxy(_, d) => d,
            HashKind::Xxh3 | HashKind::KetamaMd5 => Distribution::Ketama,
        }
    }

    /// Reads `[ring] hash` and `distribution`: `hash` is `"xxh3"` (the default), `"ketama-md5"`,
    /// or one of twemproxy's hash names (`"fnv1a_64"`, `"md5"`, ...), which then takes
    /// `distribution` (`"ketama"`, the default as in twemproxy, `"modula"` or `"random"`).
    /// `distribution` with xxh3 or ketama-md5 can only be `"ketama"`. The error says which of
    /// the two fields is wrong.
    pub fn from_config(
        hash: Option<&str>,
        distribution: Option<&str>,
    ) -> Result<HashKind, (ConfigField, String)> {
        let dist = match distribution {
            None => None,
            Some(d) => Some(Distribution::from_name(d).ok_or_else(|| {
                (
                    ConfigField::Distribution,
                    format!(
                        "unknown distribution {d:?}: expected \"ketama\", \"modula\" or \"random\""
                    ),
                )
            })?),
        };
        let kind = match hash {
            None | Some("xxh3") => HashKind::Xxh3,
            Some("ketama-md5") => HashKind::KetamaMd5,
            Some(name) => match KeyHash::from_name(name) {
                Some(h) => return Ok(HashKind::Twemproxy(h, dist.unwrap_or_default())),
                None => {
                    let names: Vec<&str> = KeyHash::ALL.iter().map(|h| h.name()).collect();
                    return Err((
                        ConfigField::Hash,
                        format!(
                            "unknown hash {name:?}: expected \"xxh3\", \"ketama-md5\" or a twemproxy \
                             hash ({})",
                            names.join(", ")
                        ),
                    ));
                }
            },
        };
        match dist {
            None | Some(Distribution::Ketama) => Ok(kind),
            Some(d) => Err((
                ConfigField::Distribution,
                format!(
                    "distribution {:?} needs a twemproxy hash such as \"fnv1a_64\" (hash is {:?})",
                    d.name(),
                    kind.name()
                ),
            )),
        }
    }

    /// Width of key hashes and points in bits: 64 for xxh3, 32 for the twemproxy schemes.
    fn width(self) -> u32 {
        match self {
            HashKind::Xxh3 => u64::BITS,
            HashKind::KetamaMd5 | HashKind::Twemproxy(..) => u32::BITS,
        }
    }
}

impl fmt::Display for HashKind {
    /// `xxh3`, `ketama-md5`, or `fnv1a_64/modula` for a twemproxy pair.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashKind::Twemproxy(h, d) => write!(f, "{}/{}", h.name(), d.name()),
            other => f.write_str(other.name()),
        }
    }
}

/// Which `[ring]` field a [`HashKind::from_config`] error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigField {
    /// `ring.hash`.
    Hash,
    /// `ring.distribution`.
    Distribution,
}

/// An immutable ring over `len()` nodes; [`Ring::lookup`] returns an index into the `nodes`
/// slice given to [`Ring::build`].
#[derive(Clone)]
pub struct Ring {
    hash: HashKind,
    hash_tags: Option<[u8; 2]>,
    /// Sorted point values. Kept apart from `owners` so the binary search touches only this
    /// dense array (better cache use than searching `(u64, u32)` pairs). Empty for modula and
    /// random, which have no points.
    hashes: Vec<u64>,
    /// `owners[i]` = node index of `hashes[i]`. For modula and random: the slot table, a key
    /// goes to `owners[hash % owners.len()]`.
    owners: Vec<u32>,
    /// `buckets[b]` = index of the first point whose top bits (`point >> shift`) are `>= b`, plus
    /// a final `hashes.len()`. A lookup binary-searches only its bucket's few points: on a ring of
    /// 160k points (1,000 nodes) a whole-array search is ~17 dependent cache misses; measured
    /// ~0.5 µs per xxh3 lookup without buckets, ~0.1 µs with.
    buckets: Vec<u32>,
    /// `64 - bucket bits` for xxh3, `32 - bucket bits` for the 32-bit twemproxy schemes.
    shift: u32,
    /// Number of points (modula, random: slots) each node got, by node index.
    counts: Vec<u32>,
}

impl Ring {
    /// Builds a ring.
    ///
    /// `nodes` are `(identity, weight)` in config order; the identity is the string the node's
    /// points are made of (renaming it moves its keys, reordering nodes does not). For an
    /// in-process node it is its name; for a
    /// server taken over from twemproxy it must be twemproxy's server name: the `name` of a
    /// `host:port:weight name` entry, else `host:port`, else `host` when the port is 11211
    /// (see `config::twemproxy`). `points_per_weight` is the point density (use
    /// [`DEFAULT_POINTS_PER_WEIGHT`]); `hash_tags` is `Some([open, close])` to route keys by
    /// the part between the delimiters.
    ///
    /// - [`HashKind::Xxh3`]: node `n` of weight `w` gets `w * points_per_weight` points
    ///   `xxh3_64("{name}-{i}")`.
    /// - [`HashKind::KetamaMd5`] and twemproxy's ketama with any key hash: `points_per_weight`
    ///   replaces twemproxy's 160 "points per server"; points are shared out by weight *relative
    ///   to the total* (twemproxy formula), so a node's point count depends on all the other
    ///   nodes too. Points are always md5 (`ketama_hash`); only the key hash varies.
    /// - twemproxy modula: a table with each node `weight` times; random: each node with a
    ///   weight once (see [`Distribution::Random`]). The identities only set the table's order
    ///   (see [`Distribution::Modula`]).
    ///
    /// twemproxy compatibility assumes `"{name}-{i}"` fits its 86-byte buffer (names up to ~80
    /// bytes); longer names overrun it there, here they are simply hashed whole.
    ///
    /// A weight of 0 gives no points (the node is never returned); if no node has points, every
    /// lookup returns 0. Config validation must reject those, and must bound
    /// `weight * points_per_weight` (the ring stores every point, 12 bytes each).
    pub fn build(
        nodes: &[(&str, u32)],
        hash: HashKind,
        points_per_weight: u32,
        hash_tags: Option<[u8; 2]>,
    ) -> Ring {
        let counts: Vec<u32> = match hash {
            HashKind::Xxh3 => nodes
                .iter()
                .map(|&(_, w)| w.saturating_mul(points_per_weight))
                .collect(),
            HashKind::Twemproxy(_, Distribution::Modula) => {
                let counts = nodes.iter().map(|&(_, w)| w).collect();
                return Ring::slots(hash, hash_tags, nodes, counts);
            }
            HashKind::Twemproxy(_, Distribution::Random) => {
                let counts = nodes.iter().map(|&(_, w)| u32::from(w > 0)).collect();
                return Ring::slots(hash, hash_tags, nodes, counts);
            }
            HashKind::KetamaMd5 | HashKind::Twemproxy(_, Distribution::Ketama) => {
                // u64: a u32 sum could wrap with large weights; twemproxy sums in u32 but rejects
                // such configs long before.
                let total: u64 = nodes.iter().map(|&(_, w)| u64::from(w)).sum();
                nodes
                    .iter()
                    .map(|&(_, w)| ketama_points(w, total, nodes.len(), points_per_weight))
                    .collect()
            }
        };
        let total_points: usize = counts.iter().map(|&c| c as usize).sum();
        let mut pairs: Vec<(u64, u32)> = Vec::with_capacity(total_points);
        // One reusable buffer for "{name}-{i}": building 1,000 nodes hashes ~160k strings, and a
        // `format!` per point would dominate the build time.
        let mut buf: Vec<u8> = Vec::with_capacity(64);
        for (index, (&(name, _), &count)) in nodes.iter().zip(&counts).enumerate() {
            let index = u32::try_from(index).expect("node count fits in u32");
            match hash {
                HashKind::Xxh3 => {
                    for i in 0..count {
                        point_name(&mut buf, name, i);
                        pairs.push((xxh3_64(&buf), index));
                    }
                }
                HashKind::KetamaMd5 | HashKind::Twemproxy(..) => {
                    for i in 0..count / POINTS_PER_MD5 {
                        point_name(&mut buf, name, i);
                        let digest = md5(&buf);
                        // Four little-endian u32 points per digest, like `ketama_hash(.., x)`.
                        for word in digest.chunks_exact(4) {
                            let point = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                            pairs.push((u64::from(point), index));
                        }
                    }
                }
            }
        }
        Ring::assemble(hash, hash_tags, pairs, counts)
    }

    /// A modula/random ring: `counts[n]` consecutive slots for node `n`, nodes in twemproxy's
    /// server order. That is not the config order: twemproxy sorts a pool's servers by name
    /// (`conf_validate_server`, to find duplicates) with `string_compare`, which orders shorter
    /// names first and equal lengths bytewise; its ring follows that order. So modula placement
    /// depends on the set of identities, not on the order they are listed in.
    fn slots(
        hash: HashKind,
        hash_tags: Option<[u8; 2]>,
        nodes: &[(&str, u32)],
        counts: Vec<u32>,
    ) -> Ring {
        let mut order: Vec<usize> = (0..nodes.len()).collect();
        // Ties (equal identities, which twemproxy refuses and config validation too) keep
        // config order.
        order.sort_by_key(|&i| (nodes[i].0.len(), nodes[i].0.as_bytes()));
        let mut owners = Vec::with_capacity(counts.iter().map(|&c| c as usize).sum());
        for index in order {
            let count = counts[index];
            let index = u32::try_from(index).expect("node count fits in u32");
            owners.extend(std::iter::repeat_n(index, count as usize));
        }
        Ring {
            hash,
            hash_tags,
            hashes: Vec::new(),
            owners,
            buckets: Vec::new(),
            shift: 0,
            counts,
        }
    }

    /// Sorts the points and splits them into the search arrays.
    fn assemble(
        hash: HashKind,
        hash_tags: Option<[u8; 2]>,
        mut pairs: Vec<(u64, u32)>,
        counts: Vec<u32>,
    ) -> Ring {
        // Tuple order = (point, node index): equal points go to the lower index, matching
        // libmemcached and making the result independent of sort stability.
        pairs.sort_unstable();
        let (hashes, owners): (Vec<u64>, Vec<u32>) = pairs.into_iter().unzip();
        // 4-8 points per bucket: the table costs at most 1 byte per 12-byte point.
        let bits = (hashes.len() / 4).max(2).ilog2().min(MAX_BUCKET_BITS);
        let shift = hash.width() - bits;
        let mut buckets = Vec::with_capacity((1 << bits) + 1);
        let mut at = 0;
        for bucket in 0..1u64 << bits {
            while at < hashes.len() && hashes[at] >> shift < bucket {
                at += 1;
            }
            buckets.push(u32::try_from(at).expect("ring has fewer than 2^32 points"));
        }
        buckets.push(u32::try_from(hashes.len()).expect("ring has fewer than 2^32 points"));
        Ring {
            hash,
            hash_tags,
            hashes,
            owners,
            buckets,
            shift,
            counts,
        }
    }

    /// Returns the index (into the `nodes` given to [`Ring::build`]) of the node owning `key`:
    /// the first point `>=` the key's hash, wrapping to the first point. Never allocates.
    pub fn lookup(&self, key: &[u8]) -> usize {
        // Like twemproxy: one node needs no hashing (and this also covers a weight-0 single node).
        if self.counts.len() <= 1 {
            return 0;
        }
        self.lookup_hash(self.hash_key(key))
    }

    /// Maps an already computed key hash (see [`Ring::hash_key`]) to a node index.
    fn lookup_hash(&self, hash: u64) -> usize {
        if self.hashes.is_empty() {
            // Modula/random (`modula_dispatch`: `continuum + hash % ncontinuum`), or no points.
            let Ok(slots) = u64::try_from(self.owners.len()) else {
                return 0;
            };
            return match hash.checked_rem(slots) {
                Some(at) => self.owners[at as usize] as usize,
                None => 0,
            };
        }
        let bucket = (hash >> self.shift) as usize;
        let (Some(&lo), Some(&hi)) = (self.buckets.get(bucket), self.buckets.get(bucket + 1))
        else {
            // Only a hash wider than the scheme's points (never from `hash_key`): past the end.
            return self.owners.first().map_or(0, |&node| node as usize);
        };
        let (lo, hi) = (lo as usize, hi as usize);
        // If every point of the bucket is < hash, `hi` is the first point of a later bucket,
        // hence > hash: the right answer either way.
        let at = lo + self.hashes[lo..hi].partition_point(|&point| point < hash);
        // Past the last point wraps to the first; an empty ring yields 0 (see `build`).
        let at = if at == self.hashes.len() { 0 } else { at };
        self.owners.get(at).map_or(0, |&node| node as usize)
    }

    /// The hash [`Ring::lookup`] searches for: the hash-tag part of `key` (if configured and
    /// present) hashed with this ring's [`HashKind`]. twemproxy hashes are 32-bit, zero-extended.
    pub fn hash_key(&self, key: &[u8]) -> u64 {
        let part = hashed_part(key, self.hash_tags);
        match self.hash {
            HashKind::Xxh3 => xxh3_64(part),
            // twemproxy's `server_pool_hash` returns 0 for an empty key instead of hashing it.
            HashKind::KetamaMd5 | HashKind::Twemproxy(..) if part.is_empty() => 0,
            HashKind::KetamaMd5 => u64::from(KeyHash::Md5.hash(part)),
            HashKind::Twemproxy(h, _) => u64::from(h.hash(part)),
        }
    }

    /// The point and key hash scheme.
    pub fn hash_kind(&self) -> HashKind {
        self.hash
    }

    /// Number of ring points node `node` got (0 for an out-of-range index).
    pub fn points(&self, node: usize) -> usize {
        self.counts.get(node).map_or(0, |&c| c as usize)
    }

    /// Number of nodes the ring was built with (including any with no points).
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True if the ring was built with no nodes.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

impl fmt::Debug for Ring {
    // A summary: printing up to millions of points helps nobody.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("hash", &self.hash)
            .field("hash_tags", &self.hash_tags)
            .field("nodes", &self.counts.len())
            .field("points", &self.hashes.len())
            .finish()
    }
}

/// twemproxy's `ketama_update` point count for one node, reproduced operation by operation:
///
/// ```c
/// pct = (float)server->weight / (float)total_weight;
/// pointer_per_server = (uint32_t)((floorf((float)(pct * KETAMA_POINTS_PER_SERVER / 4
///                                  * (float)nlive_server + 0.0000000001))) * 4);
/// ```
///
/// `pct * 160 / 4 * n` (160 = `points_per_server` here) is evaluated left to right in float32
/// (int operands convert to float).
/// Only `+ 0.0000000001` happens in double (the literal is a double), and the `(float)` cast
/// rounds that sum straight back to the float32 product, because 1e-10 is far below half an ulp of
/// any product >= 1 — so the epsilon never rescues a product like 39.999996 (n = 25), and such
/// nodes get 156 points, not 160. Rust `f32` arithmetic is IEEE single precision, as is C on
/// x86-64/aarch64 (`FLT_EVAL_METHOD == 0`).
fn ketama_points(weight: u32, total_weight: u64, nodes: usize, points_per_server: u32) -> u32 {
    if total_weight == 0 {
        return 0;
    }
    let pct: f32 = weight as f32 / total_weight as f32;
    let product: f32 = pct * points_per_server as f32 / POINTS_PER_MD5 as f32 * nodes as f32;
    let with_epsilon = (f64::from(product) + 0.000_000_000_1) as f32;
    // Float-to-int `as` saturates (NaN -> 0); the C cast is undefined out of range, which no
    // valid config reaches.
    (with_epsilon.floor() * POINTS_PER_MD5 as f32) as u32
}

/// The part of `key` that is hashed: with `Some([open, close])`, the bytes strictly between the
/// first `open` and the first `close` after it, if that is non-empty; otherwise the whole key.
/// This is twemproxy's `server_pool_idx` rule (an empty tag like `{}` does not look further).
fn hashed_part(key: &[u8], hash_tags: Option<[u8; 2]>) -> &[u8] {
    let Some([open, close]) = hash_tags else {
        return key;
    };
    let Some(start) = memchr::memchr(open, key) else {
        return key;
    };
    let rest = &key[start + 1..];
    match memchr::memchr(close, rest) {
        Some(end) if end > 0 => &rest[..end],
        _ => key,
    }
}

/// Writes `"{name}-{i}"` into `buf` (cleared first) without going through `fmt`.
fn point_name(buf: &mut Vec<u8>, name: &str, i: u32) {
    buf.clear();
    buf.extend_from_slice(name.as_bytes());
    buf.push(b'-');
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut n = i;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: u32 = 100_000;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    fn specs(names: &[String], weight: u32) -> Vec<(&str, u32)> {
        names.iter().map(|n| (n.as_str(), weight)).collect()
    }

    fn key(i: u32) -> Vec<u8> {
        format!("key-{i}").into_bytes()
    }

    // ---- ketama-md5: golden vectors from a real twemproxy ----------------------------------
    //
    // Produced by golden/golden.py in the scratch crate: nutcracker 0.5.0 (Debian) with pools
    // `distribution: ketama`, `hash: md5`, servers `127.0.0.1:PORT:W cache-x`, one memcached per
    // node; every key was `set` through nutcracker and then looked up on each memcached directly.
    // Format: whitespace-separated `key=node-name`. 40 keys per pool, picked from 137..400;
    // in N25/N50 the first 12/11 keys route differently if nodes get 160 points instead of 156.

    const N2: &str = "
        key:0=cache-b key:5=cache-a key:10=cache-b key:15=cache-a
        key:20=cache-b key:25=cache-b key:30=cache-a key:35=cache-a
        key:40=cache-a key:45=cache-b key:50=cache-a key:55=cache-b
        key:60=cache-a key:65=cache-a key:70=cache-b key:75=cache-a
        key:80=cache-a key:85=cache-b key:90=cache-b key:95=cache-a
        user:0:profile=cache-b user:39595:profile=cache-a user:79190:profile=cache-b
        user:18782:profile=cache-a user:58377:profile=cache-a user:97972:profile=cache-b
        user:37564:profile=cache-b user:77159:profile=cache-b user:16751:profile=cache-b
        user:56346:profile=cache-b k0=cache-a k5=cache-b
        k10=cache-b k15=cache-a k20=cache-a k25=cache-a
        k30=cache-b k35=cache-b k40=cache-b k45=cache-b
    ";

    const N3: &str = "
        key:0=cache-b key:5=cache-a key:10=cache-b key:15=cache-a
        key:20=cache-c key:25=cache-b key:30=cache-c key:35=cache-c
        key:40=cache-c key:45=cache-b key:50=cache-a key:55=cache-b
        key:60=cache-a key:65=cache-a key:70=cache-b key:75=cache-c
        key:80=cache-a key:85=cache-c key:90=cache-b key:95=cache-a
        user:0:profile=cache-c user:39595:profile=cache-c user:79190:profile=cache-c
        user:18782:profile=cache-a user:58377:profile=cache-a user:97972:profile=cache-b
        user:37564:profile=cache-b user:77159:profile=cache-b user:16751:profile=cache-b
        user:56346:profile=cache-c k0=cache-c k5=cache-c
        k10=cache-c k15=cache-c k20=cache-c k25=cache-a
        k30=cache-c k35=cache-b k40=cache-b k45=cache-b
    ";

    const N25: &str = "
        key:13=cache-b key:21=cache-a key:71=cache-x key:118=cache-l
        key:133=cache-x user:10863:profile=cache-l user:48427:profile=cache-y k35=cache-x
        k39=cache-w k42=cache-g k43=cache-w k86=cache-j
        key:0=cache-m key:10=cache-e key:20=cache-i key:30=cache-y
        key:40=cache-m key:50=cache-o key:60=cache-l key:70=cache-k
        key:80=cache-t key:90=cache-l key:100=cache-m key:110=cache-m
        key:120=cache-h key:130=cache-k key:140=cache-p key:150=cache-m
        key:160=cache-s key:170=cache-r key:180=cache-v key:190=cache-f
        user:0:profile=cache-u user:79190:profile=cache-w user:58377:profile=cache-i
        user:37564:profile=cache-v user:16751:profile=cache-l user:95941:profile=cache-u
        user:75128:profile=cache-v user:54315:profile=cache-m
    ";

    const N50: &str = "
        key:7=cache-i key:21=cache-a key:71=cache-x key:118=cache-l
        key:133=cache-z5 user:48427:profile=cache-y k39=cache-z11 k63=cache-z
        k64=cache-z20 k74=cache-z6 k92=cache-z13 key:0=cache-m
        key:10=cache-e key:20=cache-i key:30=cache-z4 key:40=cache-z22
        key:50=cache-o key:60=cache-l key:70=cache-k key:80=cache-t
        key:90=cache-l key:100=cache-z4 key:110=cache-z11 key:120=cache-z15
        key:130=cache-z1 key:140=cache-z7 key:150=cache-m key:160=cache-s
        key:170=cache-z13 key:180=cache-z11 key:190=cache-f user:0:profile=cache-z6
        user:79190:profile=cache-z6 user:58377:profile=cache-z6 user:37564:profile=cache-v
        user:16751:profile=cache-l user:95941:profile=cache-z10 user:75128:profile=cache-z16
        user:54315:profile=cache-z14 user:33502:profile=cache-z19
    ";

    /// Weights 1, 2, 3 (80/160/240 points).
    const W123: &str = "
        key:0=cache-b key:5=cache-c key:10=cache-b key:15=cache-b
        key:20=cache-c key:25=cache-b key:30=cache-c key:35=cache-c
        key:40=cache-c key:45=cache-b key:50=cache-a key:55=cache-c
        key:60=cache-c key:65=cache-c key:70=cache-b key:75=cache-c
        key:80=cache-a key:85=cache-c key:90=cache-b key:95=cache-b
        user:0:profile=cache-c user:39595:profile=cache-c user:79190:profile=cache-c
        user:18782:profile=cache-b user:58377:profile=cache-a user:97972:profile=cache-c
        user:37564:profile=cache-b user:77159:profile=cache-b user:16751:profile=cache-b
        user:56346:profile=cache-c k0=cache-c k5=cache-c
        k10=cache-c k15=cache-c k20=cache-c k25=cache-b
        k30=cache-c k35=cache-b k40=cache-c k45=cache-b
    ";

    /// Three nodes with `hash_tag: "{}"`; the `{userN}` keys route differently without the tag.
    const TAG3: &str = "
        {}x=cache-a x{}=cache-a {}=cache-b a{b=cache-b
        a}b{=cache-a }{x}=cache-c {a}{b}=cache-b {{a}}=cache-a
        x{y=cache-a {abc=cache-a abc}=cache-a pre{user3}post=cache-c
        user3=cache-c }user7{=cache-c a{b}c{d}e=cache-c {user4}:field4=cache-a
        {user5}:field5=cache-a {user6}:field6=cache-a {user8}:field8=cache-b
        {user9}:field9=cache-b {user10}:field10=cache-b {user0}:field12=cache-b
        {user1}:field13=cache-a {user2}:field14=cache-b {user4}:field16=cache-a
        {user5}:field17=cache-a {user6}:field18=cache-a {user7}:field19=cache-a
        plain:0=cache-a plain:1=cache-b plain:2=cache-a plain:3=cache-c
        plain:4=cache-a plain:5=cache-b plain:6=cache-a plain:7=cache-a
        plain:8=cache-c plain:9=cache-c plain:10=cache-b plain:11=cache-b
    ";

    /// Node names used by golden.py: cache-a … cache-z, then cache-z0, cache-z1, …
    fn golden_names(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| match u8::try_from(i) {
                Ok(i) if i < 26 => format!("cache-{}", char::from(b'a' + i)),
                _ => format!("cache-z{}", i - 26),
            })
            .collect()
    }

    fn check_golden(nodes: &[(&str, u32)], hash_tags: Option<[u8; 2]>, table: &str) {
        let ring = Ring::build(nodes, HashKind::KetamaMd5, 160, hash_tags);
        let mut checked = 0;
        for pair in table.split_whitespace() {
            let (key, want) = pair.split_once('=').expect("golden entries are key=node");
            let got = nodes[ring.lookup(key.as_bytes())].0;
            assert_eq!(got, want, "key {key:?} on {} nodes", nodes.len());
            checked += 1;
        }
        assert_eq!(checked, 40);
    }

    #[test]
    fn ketama_golden_2_nodes() {
        check_golden(&specs(&golden_names(2), 1), None, N2);
    }

    #[test]
    fn ketama_golden_3_nodes() {
        check_golden(&specs(&golden_names(3), 1), None, N3);
    }

    #[test]
    fn ketama_golden_25_nodes_156_points() {
        let names = golden_names(25);
        let nodes = specs(&names, 1);
        let ring = Ring::build(&nodes, HashKind::KetamaMd5, 160, None);
        assert!((0..25).all(|n| ring.points(n) == 156));
        check_golden(&nodes, None, N25);
    }

    #[test]
    fn ketama_golden_50_nodes_156_points() {
        check_golden(&specs(&golden_names(50), 1), None, N50);
    }

    #[test]
    fn ketama_golden_weighted_1_2_3() {
        let nodes = [("cache-a", 1), ("cache-b", 2), ("cache-c", 3)];
        let ring = Ring::build(&nodes, HashKind::KetamaMd5, 160, None);
        assert_eq!(
            [ring.points(0), ring.points(1), ring.points(2)],
            [80, 160, 240]
        );
        check_golden(&nodes, None, W123);
    }

    #[test]
    fn ketama_golden_hash_tag() {
        check_golden(&specs(&golden_names(3), 1), Some(*b"{}"), TAG3);
    }

    // ---- ketama-md5: point counts -----------------------------------------------------------

    /// anchors.md §4: equal weights get 156 points instead of 160 for these n <= 200.
    const KETAMA_156: [usize; 19] = [
        25, 47, 50, 55, 61, 71, 94, 100, 107, 109, 110, 115, 122, 142, 159, 163, 188, 193, 200,
    ];

    #[test]
    fn ketama_equal_weights_156_points_set() {
        let short: Vec<usize> = (1..=200)
            .filter(|&n| ketama_points(1, n as u64, n, 160) != 160)
            .collect();
        assert_eq!(short, KETAMA_156);
        assert!(
            KETAMA_156
                .iter()
                .all(|&n| ketama_points(1, n as u64, n, 160) == 156)
        );
        // anchors.md: 207 of n <= 2000 are short.
        let short_2000 = (1..=2000)
            .filter(|&n| ketama_points(1, n as u64, n, 160) != 160)
            .count();
        assert_eq!(short_2000, 207);
    }

    #[test]
    fn ketama_epsilon_never_changes_the_count() {
        // The C `+ 0.0000000001` is added in double and cast back to float, which rounds it away;
        // a plain float32 floor gives the same counts.
        for n in 1..=2000usize {
            for w in 1..=4u32 {
                let total = n as u64 - 1 + u64::from(w);
                let pct = w as f32 / total as f32;
                let plain = (pct * 160.0 / 4.0 * n as f32).floor() as u32 * 4;
                assert_eq!(ketama_points(w, total, n, 160), plain, "n={n} w={w}");
            }
        }
    }

    #[test]
    fn ketama_point_count_change_moves_keys_between_old_nodes() {
        // twemproxy behaviour, kept for compatibility: going from 24 to 25 nodes drops every node
        // from 160 to 156 points, so some keys move between *old* nodes too. Rebalancing must
        // diff lookups, not assume keys only move onto the new node.
        let all = names("node-", 25);
        let before = Ring::build(&specs(&all[..24], 1), HashKind::KetamaMd5, 160, None);
        let after = Ring::build(&specs(&all, 1), HashKind::KetamaMd5, 160, None);
        assert_eq!((before.points(0), after.points(0)), (160, 156));
        let between_old = (0..KEYS)
            .map(|i| before.hash_key(&key(i)))
            .filter(|&h| {
                let (a, b) = (before.lookup_hash(h), after.lookup_hash(h));
                a != b && b != 24
            })
            .count();
        assert!(between_old > 0);
    }

    // ---- both schemes: consistency properties ----------------------------------------------

    /// Adds node `n` to `n` nodes: every moved key lands on the new node, about 1/(n+1) move.
    fn check_add_node(hash: HashKind, n: usize) {
        let all = names("node-", n + 1);
        let before = Ring::build(&specs(&all[..n], 1), hash, 160, None);
        let after = Ring::build(&specs(&all, 1), hash, 160, None);
        let mut moved = 0u32;
        for i in 0..KEYS {
            let h = before.hash_key(&key(i));
            let (a, b) = (before.lookup_hash(h), after.lookup_hash(h));
            if a != b {
                assert_eq!(b, n, "{hash:?} n={n}: key {i} moved between old nodes");
                moved += 1;
            }
        }
        let expected = f64::from(KEYS) / (n + 1) as f64;
        let ratio = f64::from(moved) / expected;
        assert!(
            (0.7..=1.3).contains(&ratio),
            "{hash:?} n={n}: moved {moved}, expected ~{expected:.0}"
        );
    }

    /// Removes the middle node of `n`: only its keys move, and they spread over the others.
    fn check_remove_node(hash: HashKind, n: usize) {
        let all = names("node-", n);
        let gone = n / 2;
        let rest: Vec<String> = all
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != gone)
            .map(|(_, s)| s.clone())
            .collect();
        let before = Ring::build(&specs(&all, 1), hash, 160, None);
        let after = Ring::build(&specs(&rest, 1), hash, 160, None);
        let mut moved = 0u32;
        for i in 0..KEYS {
            let h = before.hash_key(&key(i));
            let a = &all[before.lookup_hash(h)];
            let b = &rest[after.lookup_hash(h)];
            if *a == all[gone] {
                moved += 1;
            } else {
                assert_eq!(a, b, "{hash:?} n={n}: key {i} left a surviving node");
            }
        }
        let expected = f64::from(KEYS) / n as f64;
        let ratio = f64::from(moved) / expected;
        assert!(
            (0.7..=1.3).contains(&ratio),
            "{hash:?} n={n}: moved {moved}, expected ~{expected:.0}"
        );
    }

    #[test]
    fn xxh3_add_node_moves_only_onto_it() {
        for n in [3, 5, 10] {
            check_add_node(HashKind::Xxh3, n);
        }
    }

    #[test]
    fn xxh3_remove_node_moves_only_its_keys() {
        for n in [3, 5, 10] {
            check_remove_node(HashKind::Xxh3, n);
        }
    }

    #[test]
    fn ketama_add_node_moves_only_onto_it() {
        for n in [3, 5, 10] {
            check_add_node(HashKind::KetamaMd5, n);
        }
    }

    #[test]
    fn ketama_remove_node_moves_only_its_keys() {
        for n in [3, 5, 10] {
            check_remove_node(HashKind::KetamaMd5, n);
        }
    }

    #[test]
    fn xxh3_weights_are_proportional() {
        let nodes = [("a", 1), ("b", 2), ("c", 3)];
        let ring = Ring::build(&nodes, HashKind::Xxh3, 160, None);
        assert_eq!(
            [ring.points(0), ring.points(1), ring.points(2)],
            [160, 320, 480]
        );
        let mut hits = [0u32; 3];
        for i in 0..KEYS {
            hits[ring.lookup(&key(i))] += 1;
        }
        for (node, &(_, weight)) in nodes.iter().enumerate() {
            let expected = f64::from(KEYS) * f64::from(weight) / 6.0;
            let ratio = f64::from(hits[node]) / expected;
            assert!((0.9..=1.1).contains(&ratio), "node {node}: {hits:?}");
        }
    }

    #[test]
    fn placement_depends_on_names_not_order() {
        for hash in [HashKind::Xxh3, HashKind::KetamaMd5] {
            let forward = [("a", 1), ("b", 2), ("c", 1)];
            let backward = [("c", 1), ("b", 2), ("a", 1)];
            let f = Ring::build(&forward, hash, 160, None);
            let b = Ring::build(&backward, hash, 160, None);
            for i in 0..2_000 {
                let k = key(i);
                assert_eq!(forward[f.lookup(&k)].0, backward[b.lookup(&k)].0);
            }
        }
    }

    #[test]
    fn xxh3_placement_is_pinned() {
        // Regression pin (self-generated): changing point names or hashing would silently move
        // every key of a deployed cache on upgrade.
        let ring = Ring::build(&[("a", 1), ("b", 1), ("c", 1)], HashKind::Xxh3, 160, None);
        let got: Vec<usize> = (0..16).map(|i| ring.lookup(&key(i))).collect();
        assert_eq!(got, XXH3_PIN);
    }

    const XXH3_PIN: [usize; 16] = [2, 0, 1, 0, 2, 1, 2, 2, 2, 0, 1, 2, 2, 2, 2, 2];

    // ---- hash tags ----------------------------------------------------------------------------

    #[test]
    fn hashed_part_follows_twemproxy() {
        let tags = Some(*b"{}");
        let cases: [(&[u8], &[u8]); 11] = [
            (b"{user1}:a", b"user1"),
            (b"x{user1}y", b"user1"),
            (b"{a}{b}", b"a"),
            (b"{{a}}", b"{a"),
            (b"}{x}", b"x"),
            (b"a{b", b"a{b"),
            (b"a}b{", b"a}b{"),
            (b"{}x", b"{}x"),
            // An empty first tag does not make it look for a later one.
            (b"{}{x}", b"{}{x}"),
            (b"plain", b"plain"),
            (b"", b""),
        ];
        for (key, want) in cases {
            assert_eq!(
                hashed_part(key, tags),
                want,
                "{:?}",
                String::from_utf8_lossy(key)
            );
        }
        assert_eq!(hashed_part(b"{user1}:a", None), b"{user1}:a");
        assert_eq!(hashed_part(b"$x$y", Some(*b"$$")), b"x");
    }

    #[test]
    fn hash_tag_routes_by_tag() {
        for hash in [HashKind::Xxh3, HashKind::KetamaMd5] {
            let all = names("node-", 7);
            let ring = Ring::build(&specs(&all, 1), hash, 160, Some(*b"{}"));
            let mut spread = [false; 7];
            for i in 0..1_000 {
                let tag = format!("user{i}");
                let home = ring.lookup(tag.as_bytes());
                spread[home] = true;
                for k in [
                    format!("{{{tag}}}:a"),
                    format!("x{{{tag}}}:b"),
                    format!("{{{tag}}}"),
                ] {
                    assert_eq!(ring.lookup(k.as_bytes()), home, "{hash:?} {k}");
                }
            }
            assert!(spread.iter().all(|&s| s), "{hash:?}: tags reach every node");
        }
    }

    // ---- edge cases -------------------------------------------------------------------------

    #[test]
    fn one_node_ring_returns_0() {
        for hash in [HashKind::Xxh3, HashKind::KetamaMd5] {
            let ring = Ring::build(&[("only", 1)], hash, 160, Some(*b"{}"));
            assert_eq!(ring.len(), 1);
            assert_eq!(ring.points(0), 160);
            for k in [&b""[..], b"a", b"{x}y", b"\xff\x00"] {
                assert_eq!(ring.lookup(k), 0);
            }
        }
    }

    #[test]
    fn empty_ring_and_zero_weight() {
        for hash in [HashKind::Xxh3, HashKind::KetamaMd5] {
            let empty = Ring::build(&[], hash, 160, None);
            assert!(empty.is_empty());
            assert_eq!(empty.lookup(b"k"), 0);
            let ring = Ring::build(&[("zero", 0), ("one", 1), ("two", 1)], hash, 160, None);
            assert_eq!(ring.points(0), 0);
            assert_eq!(ring.points(9), 0);
            assert!((0..2_000).all(|i| ring.lookup(&key(i)) != 0));
        }
    }

    #[test]
    fn equal_points_go_to_lower_node_index_and_wrap() {
        let ring = Ring::assemble(
            HashKind::Xxh3,
            None,
            vec![(10, 1), (10, 0), (5, 2)],
            vec![1, 1, 1],
        );
        assert_eq!(ring.lookup_hash(0), 2);
        assert_eq!(ring.lookup_hash(5), 2);
        assert_eq!(ring.lookup_hash(6), 0);
        assert_eq!(ring.lookup_hash(10), 0);
        assert_eq!(
            ring.lookup_hash(11),
            2,
            "past the last point wraps to the first"
        );
    }

    #[test]
    fn bucketed_lookup_equals_full_binary_search() {
        fn plain(ring: &Ring, hash: u64) -> usize {
            let at = ring.hashes.partition_point(|&p| p < hash);
            ring.owners[if at == ring.hashes.len() { 0 } else { at }] as usize
        }
        for (hash, n) in [
            (HashKind::Xxh3, 1),
            (HashKind::Xxh3, 3),
            (HashKind::Xxh3, 200),
        ]
        .into_iter()
        .chain([(HashKind::KetamaMd5, 2), (HashKind::KetamaMd5, 200)])
        {
            let all = names("node-", n);
            let ring = Ring::build(&specs(&all, 1), hash, 160, None);
            let max = match hash {
                HashKind::Xxh3 => u64::MAX,
                _ => u64::from(u32::MAX),
            };
            let mut probes = vec![0, 1, max - 1, max];
            for &p in ring.hashes.iter().step_by(7) {
                probes.extend([p.saturating_sub(1), p, p.saturating_add(1).min(max)]);
            }
            probes.extend((0..KEYS).map(|i| ring.hash_key(&key(i))));
            for h in probes {
                assert_eq!(ring.lookup_hash(h), plain(&ring, h), "{hash:?} n={n} h={h}");
            }
        }
    }

    #[test]
    fn thousand_nodes_build() {
        let all = names("node-", 1_000);
        let nodes = specs(&all, 1);
        for hash in [HashKind::Xxh3, HashKind::KetamaMd5] {
            let start = std::time::Instant::now();
            let ring = Ring::build(&nodes, hash, 160, None);
            let took = start.elapsed();
            // Milliseconds in release; the bound only catches a quadratic build in debug.
            assert!(took.as_secs() < 5, "{hash:?}: build took {took:?}");
            assert_eq!(ring.len(), 1_000);
            let per_node = match hash {
                HashKind::Xxh3 => 160,
                _ => ketama_points(1, 1_000, 1_000, 160) as usize,
            };
            assert!((0..1_000).all(|n| ring.points(n) == per_node));
            let mut seen = vec![false; 1_000];
            for i in 0..KEYS {
                seen[ring.lookup(&key(i))] = true;
            }
            assert!(seen.iter().all(|&s| s), "{hash:?}: every node owns keys");
        }
    }

    #[test]
    fn hash_kind_from_config() {
        let parse = |h: Option<&str>, d: Option<&str>| HashKind::from_config(h, d);
        assert_eq!(parse(Some("xxh3"), None), Ok(HashKind::Xxh3));
        assert_eq!(parse(Some("ketama-md5"), None), Ok(HashKind::KetamaMd5));
        assert_eq!(parse(None, None), Ok(HashKind::Xxh3));
        assert_eq!(
            parse(Some("ketama-md5"), Some("ketama")),
            Ok(HashKind::KetamaMd5)
        );
        assert_eq!(
            parse(Some("fnv1a_64"), None),
            Ok(HashKind::Twemproxy(KeyHash::Fnv1a64, Distribution::Ketama))
        );
        assert_eq!(
            parse(Some("crc32a"), Some("modula")),
            Ok(HashKind::Twemproxy(KeyHash::Crc32a, Distribution::Modula))
        );
        assert_eq!(
            parse(Some("md5"), Some("random")),
            Ok(HashKind::Twemproxy(KeyHash::Md5, Distribution::Random))
        );
        assert_eq!(
            parse(Some("ketama_md5"), None).unwrap_err().0,
            ConfigField::Hash
        );
        assert_eq!(
            parse(Some("fnv1a-64"), None).unwrap_err().0,
            ConfigField::Hash
        );
        assert_eq!(
            parse(Some("md5"), Some("modulo")).unwrap_err().0,
            ConfigField::Distribution
        );
        assert_eq!(
            parse(None, Some("modula")).unwrap_err().0,
            ConfigField::Distribution
        );
        assert_eq!(
            parse(Some("ketama-md5"), Some("random")).unwrap_err().0,
            ConfigField::Distribution
        );
        let kind = HashKind::Twemproxy(KeyHash::Fnv1a64, Distribution::Modula);
        assert_eq!(kind.to_string(), "fnv1a_64/modula");
        assert_eq!(HashKind::KetamaMd5.to_string(), "ketama-md5");
    }

    // ---- twemproxy schemes (golden vectors from nutcracker: tests/twemproxy.rs) -------------

    #[test]
    fn twemproxy_md5_ketama_equals_ketama_md5() {
        let all = names("node-", 7);
        let nodes: Vec<(&str, u32)> = all.iter().zip(1..).map(|(n, w)| (n.as_str(), w)).collect();
        let a = Ring::build(&nodes, HashKind::KetamaMd5, 160, Some(*b"{}"));
        let twem = HashKind::Twemproxy(KeyHash::Md5, Distribution::Ketama);
        let b = Ring::build(&nodes, twem, 160, Some(*b"{}"));
        for i in 0..KEYS {
            assert_eq!(a.lookup(&key(i)), b.lookup(&key(i)));
        }
        assert_eq!(a.lookup(b""), b.lookup(b""));
    }

    #[test]
    fn modula_follows_weights_and_order() {
        let kind = HashKind::Twemproxy(KeyHash::Crc32a, Distribution::Modula);
        // twemproxy's server order: shorter identities first, then bytewise.
        let ring = Ring::build(&[("bb", 1), ("b", 3), ("a", 2)], kind, 160, None);
        assert_eq!([ring.points(0), ring.points(1), ring.points(2)], [1, 3, 2]);
        let table = [2, 2, 1, 1, 1, 0];
        for i in 0..2_000 {
            let k = key(i);
            let h = u64::from(KeyHash::Crc32a.hash(&k));
            assert_eq!(ring.lookup(&k), table[(h % 6) as usize]);
        }
    }

    #[test]
    fn random_is_stable_and_ignores_weights() {
        let kind = HashKind::Twemproxy(KeyHash::Fnv1a64, Distribution::Random);
        let ring = Ring::build(&[("a", 1), ("b", 5), ("c", 0), ("d", 2)], kind, 160, None);
        assert_eq!(
            (0..4).map(|n| ring.points(n)).collect::<Vec<_>>(),
            [1, 1, 0, 1]
        );
        let owners = [0, 1, 3]; // "a" < "b" < "d"
        let mut hits = [0u32; 4];
        for i in 0..KEYS {
            let k = key(i);
            let node = ring.lookup(&k);
            assert_eq!(node, ring.lookup(&k), "stable");
            let h = u64::from(KeyHash::Fnv1a64.hash(&k));
            assert_eq!(node, owners[(h % 3) as usize]);
            hits[node] += 1;
        }
        assert_eq!(hits[2], 0);
    }

    #[test]
    fn twemproxy_rings_with_no_weight_return_0() {
        for d in [
            Distribution::Ketama,
            Distribution::Modula,
            Distribution::Random,
        ] {
            let kind = HashKind::Twemproxy(KeyHash::Murmur, d);
            let ring = Ring::build(&[("a", 0), ("b", 0)], kind, 160, None);
            assert_eq!(ring.lookup(b"k"), 0);
            assert_eq!(Ring::build(&[], kind, 160, None).lookup(b"k"), 0);
        }
    }

    #[test]
    fn point_name_matches_format() {
        let mut buf = Vec::new();
        for i in [0, 1, 9, 10, 159, u32::MAX] {
            point_name(&mut buf, "cache-a", i);
            assert_eq!(buf, format!("cache-a-{i}").as_bytes());
        }
    }
}
