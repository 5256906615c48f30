//! The Redis RDB file format: a pure codec, no I/O of its own beyond the `Read`/`Write` it is
//! given.
//!
//! Owns: [`Writer`] (what ringcache writes: `REDIS0010`, AUX fields, FUNCTION2 records (the
//! code of function libraries), SELECTDB/RESIZEDB, EXPIRETIME_MS, the plain value types
//! 0/1/2/4/5 that every Redis since 2.x and Valkey load, streams as Redis 7.0's type 19
//! (listpacks laid out as redis lays them out), strings over 20 bytes LZF-compressed
//! when that saves space, EOF and the CRC64) and [`Reader`] (everything Redis 7.0 writes and
//! what older versions wrote: int-encoded and LZF strings, linked/ziplist/quicklist/quicklist-2
//! lists, intset, hashtable and listpack sets, zipmap/ziplist/listpack/hashtable hashes,
//! ziplist/listpack/zset/zset-2 sorted sets, the expiry opcodes, IDLE/FREQ, RESIZEDB,
//! SLOT_INFO, AUX anywhere, and FUNCTION2 records, whose code it hands to the caller in
//! [`Reader::functions`]: loading a library is scripting's business, above this layer).
//! Also the `DUMP`/`RESTORE` payload ([`dump`], [`restore`]): a value in the same encoding,
//! the 2-byte RDB version and a CRC64.
//! Must not touch: the store or the ring; values are the neutral [`Value`], converted by the
//! caller.
//! Invariants: nothing in the input can make the reader panic or allocate much more than the
//! input holds (lengths are checked against [`Reader::max_len`] and filled as bytes arrive; an
//! LZF string cannot claim more than LZF's largest expansion of its compressed bytes); every
//! error names the byte offset where it was found; the CRC is checked before the reader says
//! the file ended, so a caller that loads records as they come and only trusts the load once
//! `next` returned `Ok(None)` never serves a corrupt file as complete.
//!
//! memcached flags have no slot in RDB: a record with non-zero flags is preceded by an AUX
//! field `rc-mcflags` whose value is the flags in decimal. Redis skips AUX fields it does not
//! know (they may stand anywhere), so the file still loads into Redis; this reader attaches the
//! flags to the next key.

use std::io::{self, Read, Write};

use crc::{CRC_64_REDIS, Crc, Digest, Table};

/// The RDB version ringcache writes: Redis 7.0's, loadable by Redis 7.0 and later and by
/// Valkey (which refuses 12 and up).
pub const VERSION: u32 = 10;
/// The newest version the reader accepts (Redis 7.4); hash-field-expiry types are refused.
pub const MAX_VERSION: u32 = 12;
/// The AUX field that carries the memcached flags of the next key.
pub const AUX_MCFLAGS: &[u8] = b"rc-mcflags";

/// Slice-by-16 tables (32 KiB): the checksum covers every byte of a file, and the one-table
/// form (a byte per step) took a tenth of the time of loading one.
const CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_REDIS);

// Opcodes (redis src/rdb.h).
const OP_SLOT_INFO: u8 = 244;
const OP_FUNCTION2: u8 = 245;
const OP_FUNCTION_PRE_GA: u8 = 246;
const OP_MODULE_AUX: u8 = 247;
const OP_IDLE: u8 = 248;
const OP_FREQ: u8 = 249;
const OP_AUX: u8 = 250;
const OP_RESIZEDB: u8 = 251;
const OP_EXPIRETIME_MS: u8 = 252;
const OP_EXPIRETIME: u8 = 253;
const OP_SELECTDB: u8 = 254;
const OP_EOF: u8 = 255;

// Value types.
const T_STRING: u8 = 0;
const T_LIST: u8 = 1;
const T_SET: u8 = 2;
const T_ZSET: u8 = 3;
const T_HASH: u8 = 4;
const T_ZSET_2: u8 = 5;
const T_MODULE_PRE_GA: u8 = 6;
const T_MODULE_2: u8 = 7;
const T_HASH_ZIPMAP: u8 = 9;
const T_LIST_ZIPLIST: u8 = 10;
const T_SET_INTSET: u8 = 11;
const T_ZSET_ZIPLIST: u8 = 12;
const T_HASH_ZIPLIST: u8 = 13;
const T_LIST_QUICKLIST: u8 = 14;
const T_STREAM_LISTPACKS: u8 = 15;
const T_HASH_LISTPACK: u8 = 16;
const T_ZSET_LISTPACK: u8 = 17;
const T_LIST_QUICKLIST_2: u8 = 18;
const T_STREAM_LISTPACKS_2: u8 = 19;
const T_SET_LISTPACK: u8 = 20;
const T_STREAM_LISTPACKS_3: u8 = 21;

// Quicklist 2 node containers.
const QUICKLIST_NODE_PLAIN: u64 = 1;
const QUICKLIST_NODE_PACKED: u64 = 2;

// Special string encodings (length byte 11xxxxxx).
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// A value as RDB carries it: one of Redis's five basic types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (also a memcached item).
    String(Vec<u8>),
    /// A list, head first.
    List(Vec<Vec<u8>>),
    /// A set's members.
    Set(Vec<Vec<u8>>),
    /// A hash's (field, value) pairs.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// A sorted set's (member, score) pairs.
    ZSet(Vec<(Vec<u8>, f64)>),
    /// A stream (written as Redis 7.0's `RDB_TYPE_STREAM_LISTPACKS_2`).
    Stream(Box<StreamValue>),
}

/// A stream ID as RDB carries it: (milliseconds, sequence).
pub type Id = (u64, u64);

/// A stream entry as RDB carries it: its ID and its (field, value) pairs.
pub type StreamEntry = (Id, Vec<(Vec<u8>, Vec<u8>)>);

/// A stream as RDB carries it, in the neutral form the caller converts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamValue {
    /// Its entries by node (redis's listpacks): each entry's ID and fields, ascending.
    pub nodes: Vec<Vec<StreamEntry>>,
    /// The last ID given.
    pub last_id: Id,
    /// The first entry's ID (0-0 when empty).
    pub first_id: Id,
    /// The largest ID deleted.
    pub max_deleted_id: Id,
    /// Entries ever added.
    pub entries_added: u64,
    /// Consumer groups, by name.
    pub groups: Vec<StreamGroup>,
}

/// A consumer group as RDB carries it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamGroup {
    /// Its name.
    pub name: Vec<u8>,
    /// Last delivered ID.
    pub last_id: Id,
    /// Entries read; None when unknown (-1).
    pub entries_read: Option<u64>,
    /// Pending entries: (ID, delivery time unix ms, delivery count), ascending.
    pub pel: Vec<(Id, u64, u64)>,
    /// Consumers, by name: (name, seen time unix ms, the IDs of its pending entries).
    pub consumers: Vec<(Vec<u8>, u64, Vec<Id>)>,
}

/// One key of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The database (SELECTDB) it was in.
    pub db: u64,
    /// The key.
    pub key: Vec<u8>,
    /// Its value.
    pub value: Value,
    /// Absolute expiry, unix milliseconds; None = never.
    pub expire_ms: Option<u64>,
    /// memcached flags (0 for values written by Redis).
    pub flags: u32,
}

/// Why a file could not be read: what, and at which byte offset.
#[derive(Debug, thiserror::Error)]
#[error("RDB offset {offset}: {what}")]
pub struct RdbError {
    /// Offset from the start of the file where the problem was found.
    pub offset: u64,
    /// What is wrong.
    pub what: String,
}

/// Writes an RDB file: the header and AUX fields on [`Writer::new`], then
/// [`Writer::select_db`] and the records, then [`Writer::finish`] (EOF and the CRC64).
pub struct Writer<W: Write> {
    out: W,
    crc: Digest<'static, u64, Table<16>>,
}

impl<W: Write> Writer<W> {
    /// Starts a file on `out`: the `REDIS0010` magic, then each (name, value) as an AUX field.
    pub fn new(out: W, aux: &[(&str, &str)]) -> io::Result<Writer<W>> {
        let mut w = Writer {
            out,
            crc: CRC64.digest(),
        };
        w.put(format!("REDIS{VERSION:04}").as_bytes())?;
        for (name, value) in aux {
            w.aux(name.as_bytes(), value.as_bytes())?;
        }
        Ok(w)
    }

    /// An AUX field (Redis skips names it does not know).
    pub fn aux(&mut self, name: &[u8], value: &[u8]) -> io::Result<()> {
        self.put(&[OP_AUX])?;
        self.string(name)?;
        self.string(value)
    }

    /// Starts database `db`, with the hint of how many keys (and keys with a TTL) follow.
    pub fn select_db(&mut self, db: u64, keys: u64, expires: u64) -> io::Result<()> {
        self.put(&[OP_SELECTDB])?;
        self.len(db)?;
        self.put(&[OP_RESIZEDB])?;
        self.len(keys)?;
        self.len(expires)
    }

    /// A function library: its code (shebang line included) in a FUNCTION2 record. Redis 7.0
    /// writes these after the AUX fields and before the first database.
    pub fn function(&mut self, code: &[u8]) -> io::Result<()> {
        self.put(&[OP_FUNCTION2])?;
        self.string(code)
    }

    /// Writes one key (its `db` is not written: see [`Writer::select_db`]).
    pub fn record(&mut self, r: &Record) -> io::Result<()> {
        if r.flags != 0 {
            self.aux(AUX_MCFLAGS, r.flags.to_string().as_bytes())?;
        }
        if let Some(ms) = r.expire_ms {
            self.put(&[OP_EXPIRETIME_MS])?;
            self.put(&ms.to_le_bytes())?;
        }
        self.put(&[kind_of(&r.value)])?;
        self.string(&r.key)?;
        self.value(&r.value)
    }

    /// The value body alone (without type byte): what DUMP carries after its type byte.
    fn value(&mut self, v: &Value) -> io::Result<()> {
        match v {
            Value::String(s) => self.string(s),
            Value::List(items) | Value::Set(items) => {
                self.len(items.len() as u64)?;
                items.iter().try_for_each(|i| self.string(i))
            }
            Value::Hash(pairs) => {
                self.len(pairs.len() as u64)?;
                pairs.iter().try_for_each(|(f, v)| {
                    self.string(f)?;
                    self.string(v)
                })
            }
            Value::ZSet(pairs) => {
                self.len(pairs.len() as u64)?;
                pairs.iter().try_for_each(|(m, score)| {
                    self.string(m)?;
                    self.put(&score.to_le_bytes())
                })
            }
            Value::Stream(st) => self.stream(st),
        }
    }

    /// redis 7.0 `rdbSaveObject` for a stream: each node as (master ID, listpack), the
    /// metadata, then the groups with their PELs and consumers.
    fn stream(&mut self, st: &StreamValue) -> io::Result<()> {
        let nodes: Vec<_> = st.nodes.iter().filter(|n| !n.is_empty()).collect();
        self.len(nodes.len() as u64)?;
        let mut length = 0u64;
        for node in nodes {
            self.string(&id_bytes(node[0].0))?;
            self.string(&stream_listpack(node))?;
            length += node.len() as u64;
        }
        for n in [
            length,
            st.last_id.0,
            st.last_id.1,
            st.first_id.0,
            st.first_id.1,
            st.max_deleted_id.0,
            st.max_deleted_id.1,
            st.entries_added,
        ] {
            self.len(n)?;
        }
        self.len(st.groups.len() as u64)?;
        for g in &st.groups {
            self.string(&g.name)?;
            self.len(g.last_id.0)?;
            self.len(g.last_id.1)?;
            self.len(g.entries_read.unwrap_or(u64::MAX))?;
            self.len(g.pel.len() as u64)?;
            for &(id, time, count) in &g.pel {
                self.put(&id_bytes(id))?;
                self.put(&time.to_le_bytes())?;
                self.len(count)?;
            }
            self.len(g.consumers.len() as u64)?;
            for (name, seen, ids) in &g.consumers {
                self.string(name)?;
                self.put(&seen.to_le_bytes())?;
                self.len(ids.len() as u64)?;
                for &id in ids {
                    self.put(&id_bytes(id))?;
                }
            }
        }
        Ok(())
    }

    /// Ends the file (EOF and CRC64) and hands back the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.put(&[OP_EOF])?;
        let crc = self.crc.finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.out.write_all(bytes)
    }

    fn string(&mut self, s: &[u8]) -> io::Result<()> {
        // As redis with `rdbcompression yes`: strings over 20 bytes are LZF-compressed when that
        // saves at least 4 bytes.
        if s.len() > 20
            && let Some(c) = lzf_compress(s, s.len() - 4)
        {
            self.put(&[0xc0 | ENC_LZF])?;
            self.len(c.len() as u64)?;
            self.len(s.len() as u64)?;
            return self.put(&c);
        }
        self.len(s.len() as u64)?;
        self.put(s)
    }

    fn len(&mut self, n: u64) -> io::Result<()> {
        let mut buf = [0u8; 9];
        let b = encode_len(n, &mut buf);
        self.put(b)
    }
}

/// The payload of `DUMP` for `value`: type byte, value, the 2-byte RDB version and the CRC64
/// of all that (little-endian), as Redis writes it.
pub fn dump(value: &Value) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::new(),
        crc: CRC64.digest(),
    };
    let kind = kind_of(value);
    // Writing to a Vec cannot fail.
    let _ = w.put(&[kind]).and_then(|()| w.value(value));
    let _ = w.put(&(VERSION as u16).to_le_bytes());
    let crc = w.crc.finalize();
    w.out.extend_from_slice(&crc.to_le_bytes());
    w.out
}

/// A reader over the body of a DUMP / FUNCTION DUMP payload (body, 2-byte RDB version,
/// CRC64), once the version and the checksum are checked.
fn payload_reader(payload: &[u8]) -> Result<Reader<&[u8]>, RdbError> {
    let bad = |what: &str| RdbError {
        offset: 0,
        what: what.into(),
    };
    let Some(body_len) = payload.len().checked_sub(10) else {
        return Err(bad("payload too short"));
    };
    let (body, footer) = payload.split_at(body_len);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let stored = u64::from_le_bytes(footer[2..10].try_into().expect("8 bytes"));
    if u32::from(version) > MAX_VERSION {
        return Err(bad("payload version too new"));
    }
    if stored != 0 && stored != CRC64.checksum(&payload[..body_len + 2]) {
        return Err(bad("payload checksum mismatch"));
    }
    Ok(Reader {
        input: body,
        crc: CRC64.digest(),
        offset: 0,
        version: u32::from(version),
        db: 0,
        done: false,
        max_len: 512 << 20,
        aux: Vec::new(),
        functions: Vec::new(),
        db_size: None,
    })
}

/// The value of a `DUMP` payload (from ringcache or a Redis up to [`MAX_VERSION`]). Errors are
/// what `RESTORE` answers `ERR DUMP payload version or checksum are wrong` to.
pub fn restore(payload: &[u8]) -> Result<Value, RdbError> {
    let mut r = payload_reader(payload)?;
    let kind = r.byte()?;
    let value = r.value(kind, b"", 0)?;
    if !r.input.is_empty() {
        return Err(r.err("bytes after the value".into()));
    }
    Ok(value)
}

/// The payload of `FUNCTION DUMP`: one FUNCTION2 record (the library's code) per library,
/// the 2-byte RDB version and the CRC64, as Redis writes it.
pub fn dump_functions(codes: &[&[u8]]) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::new(),
        crc: CRC64.digest(),
    };
    // Writing to a Vec cannot fail.
    for code in codes {
        let _ = w.put(&[OP_FUNCTION2]).and_then(|()| w.string(code));
    }
    let _ = w.put(&(VERSION as u16).to_le_bytes());
    let crc = w.crc.finalize();
    w.out.extend_from_slice(&crc.to_le_bytes());
    w.out
}

/// The libraries' code in a `FUNCTION DUMP` payload (from ringcache or Redis). Errors are
/// what `FUNCTION RESTORE` answers `ERR DUMP payload version or checksum are wrong` to.
pub fn restore_functions(payload: &[u8]) -> Result<Vec<Vec<u8>>, RdbError> {
    let mut r = payload_reader(payload)?;
    let mut codes = Vec::new();
    while !r.input.is_empty() {
        if r.byte()? != OP_FUNCTION2 {
            return Err(r.err("not a function library".into()));
        }
        codes.push(r.string()?);
    }
    Ok(codes)
}

fn kind_of(value: &Value) -> u8 {
    match value {
        Value::String(_) => T_STRING,
        Value::List(_) => T_LIST,
        Value::Set(_) => T_SET,
        Value::Hash(_) => T_HASH,
        Value::ZSet(_) => T_ZSET_2,
        Value::Stream(_) => T_STREAM_LISTPACKS_2,
    }
}

/// A stream ID as redis keys its radix trees: 128 bits big-endian.
fn id_bytes(id: Id) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&id.0.to_be_bytes());
    b[8..].copy_from_slice(&id.1.to_be_bytes());
    b
}

fn id_of(b: &[u8]) -> Option<Id> {
    let ms = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
    let seq = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
    Some((ms, seq))
}

/// Stream entry flags (redis t_stream.c).
const STREAM_ITEM_DELETED: i64 = 1;
const STREAM_ITEM_SAMEFIELDS: i64 = 2;

/// A listpack being built (redis listpack.c's encodings, as `lpAppend` chooses them).
struct Listpack {
    body: Vec<u8>,
    count: usize,
}

impl Listpack {
    fn new() -> Listpack {
        Listpack {
            body: Vec::new(),
            count: 0,
        }
    }

    fn int(&mut self, v: i64) {
        let start = self.body.len();
        let b = &mut self.body;
        if (0..=127).contains(&v) {
            b.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = if v < 0 { (1 << 13) + v } else { v } as u64;
            b.push(0xc0 | (u >> 8) as u8);
            b.push(u as u8);
        } else if (-32768..=32767).contains(&v) {
            b.push(0xf1);
            b.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8_388_608..=8_388_607).contains(&v) {
            b.push(0xf2);
            b.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if i64::from(i32::MIN) <= v && v <= i64::from(i32::MAX) {
            b.push(0xf3);
            b.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            b.push(0xf4);
            b.extend_from_slice(&v.to_le_bytes());
        }
        self.end(start);
    }

    /// `lpAppend` of a string: stored as an integer when it reads as one (redis
    /// `lpStringToInt64`: canonical decimal, fits in 64 bits).
    fn string(&mut self, s: &[u8]) {
        if let Some(v) = canonical_int(s) {
            return self.int(v);
        }
        let start = self.body.len();
        let b = &mut self.body;
        let n = s.len();
        if n < 64 {
            b.push(0x80 | n as u8);
        } else if n < 4096 {
            b.push(0xe0 | (n >> 8) as u8);
            b.push(n as u8);
        } else {
            b.push(0xf0);
            b.extend_from_slice(&(n as u32).to_le_bytes());
        }
        b.extend_from_slice(s);
        self.end(start);
    }

    /// Appends the back-length of the entry that began at `start`.
    fn end(&mut self, start: usize) {
        let l = (self.body.len() - start) as u64;
        let b = &mut self.body;
        if l <= 127 {
            b.push(l as u8);
        } else if l < 16383 {
            b.push((l >> 7) as u8);
            b.push((l & 127) as u8 | 128);
        } else if l < 2_097_151 {
            b.push((l >> 14) as u8);
            b.push(((l >> 7) & 127) as u8 | 128);
            b.push((l & 127) as u8 | 128);
        } else if l < 268_435_455 {
            b.push((l >> 21) as u8);
            b.push(((l >> 14) & 127) as u8 | 128);
            b.push(((l >> 7) & 127) as u8 | 128);
            b.push((l & 127) as u8 | 128);
        } else {
            b.push((l >> 28) as u8);
            b.push(((l >> 21) & 127) as u8 | 128);
            b.push(((l >> 14) & 127) as u8 | 128);
            b.push(((l >> 7) & 127) as u8 | 128);
            b.push((l & 127) as u8 | 128);
        }
        self.count += 1;
    }

    fn finish(self) -> Vec<u8> {
        let total = self.body.len() + 7;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(self.count.min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&self.body);
        out.push(0xff);
        out
    }
}

/// redis `lpStringToInt64`: a canonical decimal integer (no sign on zero, no leading zeros,
/// no spaces, at most 20 bytes) that fits in an i64.
fn canonical_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits[0] == b'0' && (digits.len() > 1 || s.len() > 1))
    {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// One stream node as redis lays it out: the master entry (the first entry's fields), then
/// each entry with its ID as a delta from the master ID, its values alone when its fields are
/// the master's.
fn stream_listpack(node: &[StreamEntry]) -> Vec<u8> {
    let mut lp = Listpack::new();
    let (master, master_fields) = (node[0].0, &node[0].1);
    lp.int(node.len() as i64);
    lp.int(0);
    lp.int(master_fields.len() as i64);
    for (f, _) in master_fields {
        lp.string(f);
    }
    lp.int(0);
    for (id, fields) in node {
        let same = fields.len() == master_fields.len()
            && fields.iter().zip(master_fields).all(|(a, b)| a.0 == b.0);
        lp.int(if same { STREAM_ITEM_SAMEFIELDS } else { 0 });
        lp.int(id.0.wrapping_sub(master.0) as i64);
        lp.int(id.1.wrapping_sub(master.1) as i64);
        if !same {
            lp.int(fields.len() as i64);
        }
        for (f, v) in fields {
            if !same {
                lp.string(f);
            }
            lp.string(v);
        }
        let n = fields.len() as i64;
        lp.int(if same { n + 3 } else { 2 * n + 4 });
    }
    lp.finish()
}

/// The live entries of one stream node's listpack (the inverse of [`stream_listpack`], and
/// what redis writes: deleted entries skipped).
fn stream_node(master: Id, lp: &[u8]) -> Option<Vec<StreamEntry>> {
    let items = listpack(lp)?;
    let mut it = items.into_iter();
    let int = |it: &mut std::vec::IntoIter<Vec<u8>>| -> Option<i64> {
        std::str::from_utf8(&it.next()?).ok()?.parse().ok()
    };
    let _count = int(&mut it)?;
    let _deleted = int(&mut it)?;
    let nfields = usize::try_from(int(&mut it)?).ok()?;
    let mut master_fields = Vec::with_capacity(nfields.min(1024));
    for _ in 0..nfields {
        master_fields.push(it.next()?);
    }
    if int(&mut it)? != 0 {
        return None;
    }
    let mut out = Vec::new();
    while it.len() > 0 {
        let flags = int(&mut it)?;
        let ms = master.0.wrapping_add(int(&mut it)? as u64);
        let seq = master.1.wrapping_add(int(&mut it)? as u64);
        let fields = if flags & STREAM_ITEM_SAMEFIELDS != 0 {
            let mut f = Vec::with_capacity(master_fields.len());
            for name in &master_fields {
                f.push((name.clone(), it.next()?));
            }
            f
        } else {
            let n = usize::try_from(int(&mut it)?).ok()?;
            let mut f = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let name = it.next()?;
                f.push((name, it.next()?));
            }
            f
        };
        int(&mut it)?; // lp-count
        if flags & STREAM_ITEM_DELETED == 0 {
            out.push(((ms, seq), fields));
        }
    }
    Some(out)
}

/// The RDB length encoding of `n` in `buf`.
fn encode_len(n: u64, buf: &mut [u8; 9]) -> &[u8] {
    if n < 1 << 6 {
        buf[0] = n as u8;
        &buf[..1]
    } else if n < 1 << 14 {
        buf[0] = 0x40 | (n >> 8) as u8;
        buf[1] = n as u8;
        &buf[..2]
    } else if let Ok(n) = u32::try_from(n) {
        buf[0] = 0x80;
        buf[1..5].copy_from_slice(&n.to_be_bytes());
        &buf[..5]
    } else {
        buf[0] = 0x81;
        buf[1..9].copy_from_slice(&n.to_be_bytes());
        &buf[..9]
    }
}

/// What a length field held: a length, or the marker of a specially encoded string.
enum Len {
    Plain(u64),
    Special(u8),
}

/// Reads an RDB file record by record. Keys in any database are returned with their `db`.
pub struct Reader<R: Read> {
    input: R,
    crc: Digest<'static, u64, Table<16>>,
    offset: u64,
    version: u32,
    db: u64,
    done: bool,
    /// Largest string, element count or decompressed size accepted (default 512 MiB, Redis's
    /// `proto-max-bulk-len`).
    pub max_len: u64,
    /// The AUX fields read so far (`redis-ver`, `ctime`, ...), except `rc-mcflags`.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// The code of the function libraries (FUNCTION2 records) read and not yet taken: this
    /// codec only carries them, the caller loads them (scripting is above this layer).
    pub functions: Vec<Vec<u8>>,
    /// The key count of the last RESIZEDB record, not yet taken: a hint (from the file, so
    /// untrusted) to size the store before the keys arrive.
    pub db_size: Option<u64>,
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header.
    pub fn new(input: R) -> Result<Reader<R>, RdbError> {
        let mut r = Reader {
            input,
            crc: CRC64.digest(),
            offset: 0,
            version: 0,
            db: 0,
            done: false,
            max_len: 512 << 20,
            aux: Vec::new(),
            functions: Vec::new(),
            db_size: None,
        };
        let mut magic = [0u8; 9];
        r.exact(&mut magic)?;
        let version = std::str::from_utf8(&magic[5..])
            .ok()
            .filter(|_| &magic[..5] == b"REDIS")
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| r.err_at(0, "not an RDB file (no REDIS magic)".into()))?;
        if !(1..=MAX_VERSION).contains(&version) {
            return Err(r.err_at(5, format!("unsupported RDB version {version}")));
        }
        r.version = version;
        Ok(r)
    }

    /// The file's RDB version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next key, or None once EOF was read and the checksum matched.
    pub fn next_record(&mut self) -> Result<Option<Record>, RdbError> {
        if self.done {
            return Ok(None);
        }
        let mut expire_ms = None;
        let mut flags = 0u32;
        loop {
            let at = self.offset;
            let op = self.byte()?;
            match op {
                OP_EOF => {
                    self.check_crc()?;
                    self.done = true;
                    return Ok(None);
                }
                OP_SELECTDB => self.db = self.plain_len()?,
                OP_RESIZEDB => {
                    self.db_size = Some(self.plain_len()?);
                    self.plain_len()?;
                }
                OP_SLOT_INFO => {
                    for _ in 0..3 {
                        self.plain_len()?;
                    }
                }
                OP_AUX => {
                    let name = self.string()?;
                    let value = self.string()?;
                    if name == AUX_MCFLAGS {
                        flags = std::str::from_utf8(&value)
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(|| self.err_at(at, "bad rc-mcflags value".into()))?;
                    } else {
                        self.aux.push((name, value));
                    }
                }
                OP_EXPIRETIME_MS => {
                    let mut b = [0u8; 8];
                    self.exact(&mut b)?;
                    expire_ms = Some(u64::from_le_bytes(b));
                }
                OP_EXPIRETIME => {
                    let mut b = [0u8; 4];
                    self.exact(&mut b)?;
                    expire_ms = Some(u64::from(u32::from_le_bytes(b)) * 1000);
                }
                OP_IDLE => {
                    self.plain_len()?;
                }
                OP_FREQ => {
                    self.byte()?;
                }
                OP_FUNCTION2 => {
                    let code = self.string()?;
                    self.functions.push(code);
                }
                OP_FUNCTION_PRE_GA => {
                    return Err(self.err_at(at, "pre-release function format".into()));
                }
                OP_MODULE_AUX => {
                    return Err(self.err_at(at, "module data (MODULE_AUX) is not supported".into()));
                }
                kind => {
                    let key = self.string()?;
                    let value = self.value(kind, &key, at)?;
                    return Ok(Some(Record {
                        db: self.db,
                        key,
                        value,
                        expire_ms,
                        flags,
                    }));
                }
            }
        }
    }

    fn value(&mut self, kind: u8, key: &[u8], at: u64) -> Result<Value, RdbError> {
        let named = |what: &str| {
            format!(
                "key {:?}: {what} values are not supported",
                String::from_utf8_lossy(key)
            )
        };
        Ok(match kind {
            T_STRING => Value::String(self.string()?),
            T_LIST => Value::List(self.strings()?),
            T_SET => Value::Set(self.strings()?),
            T_ZSET | T_ZSET_2 => {
                let n = self.count()?;
                let mut pairs = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    let member = self.string()?;
                    let score = if kind == T_ZSET_2 {
                        let mut b = [0u8; 8];
                        self.exact(&mut b)?;
                        f64::from_le_bytes(b)
                    } else {
                        self.text_double()?
                    };
                    if score.is_nan() {
                        return Err(
                            self.err(format!("key {:?}: NaN score", String::from_utf8_lossy(key)))
                        );
                    }
                    pairs.push((member, score));
                }
                Value::ZSet(pairs)
            }
            T_HASH => {
                let n = self.count()?;
                let mut pairs = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    pairs.push((self.string()?, self.string()?));
                }
                Value::Hash(pairs)
            }
            T_HASH_ZIPMAP => {
                let blob = self.string()?;
                Value::Hash(zipmap(&blob).ok_or_else(|| self.blob_err(key, "zipmap"))?)
            }
            T_LIST_ZIPLIST => {
                let blob = self.string()?;
                Value::List(ziplist(&blob).ok_or_else(|| self.blob_err(key, "ziplist"))?)
            }
            T_SET_INTSET => {
                let blob = self.string()?;
                Value::Set(intset(&blob).ok_or_else(|| self.blob_err(key, "intset"))?)
            }
            T_SET_LISTPACK => {
                let blob = self.string()?;
                Value::Set(listpack(&blob).ok_or_else(|| self.blob_err(key, "listpack"))?)
            }
            T_ZSET_ZIPLIST | T_ZSET_LISTPACK => {
                let blob = self.string()?;
                let items = if kind == T_ZSET_ZIPLIST {
                    ziplist(&blob)
                } else {
                    listpack(&blob)
                };
                let pairs = items
                    .and_then(pairs_of)
                    .and_then(|pairs| {
                        pairs
                            .into_iter()
                            .map(|(m, s)| Some((m, parse_score(&s)?)))
                            .collect::<Option<Vec<_>>>()
                    })
                    .ok_or_else(|| self.blob_err(key, "sorted set"))?;
                Value::ZSet(pairs)
            }
            T_HASH_ZIPLIST | T_HASH_LISTPACK => {
                let blob = self.string()?;
                let items = if kind == T_HASH_ZIPLIST {
                    ziplist(&blob)
                } else {
                    listpack(&blob)
                };
                Value::Hash(
                    items
                        .and_then(pairs_of)
                        .ok_or_else(|| self.blob_err(key, "hash"))?,
                )
            }
            T_LIST_QUICKLIST | T_LIST_QUICKLIST_2 => {
                let nodes = self.count()?;
                let mut items = Vec::new();
                for _ in 0..nodes {
                    let container = if kind == T_LIST_QUICKLIST_2 {
                        self.plain_len()?
                    } else {
                        QUICKLIST_NODE_PACKED
                    };
                    let blob = self.string()?;
                    match container {
                        QUICKLIST_NODE_PLAIN => items.push(blob),
                        QUICKLIST_NODE_PACKED => {
                            let node = if kind == T_LIST_QUICKLIST {
                                ziplist(&blob)
                            } else {
                                listpack(&blob)
                            };
                            let node = node.ok_or_else(|| self.blob_err(key, "quicklist"))?;
                            // A one-node list (most) keeps the node's vector as it is.
                            if items.is_empty() {
                                items = node;
                            } else {
                                items.extend(node);
                            }
                        }
                        other => {
                            return Err(self.err(format!("unknown quicklist container {other}")));
                        }
                    }
                }
                Value::List(items)
            }
            T_STREAM_LISTPACKS | T_STREAM_LISTPACKS_2 | T_STREAM_LISTPACKS_3 => {
                Value::Stream(Box::new(self.stream(kind, key)?))
            }
            T_MODULE_PRE_GA | T_MODULE_2 => return Err(self.err_at(at, named("module"))),
            other => {
                return Err(self.err_at(
                    at,
                    format!(
                        "key {:?}: unknown value type {other}",
                        String::from_utf8_lossy(key)
                    ),
                ));
            }
        })
    }

    /// redis `rdbLoadObject` for the three stream types (5.0, 7.0 and 7.2 metadata).
    fn stream(&mut self, kind: u8, key: &[u8]) -> Result<StreamValue, RdbError> {
        let mut st = StreamValue::default();
        let nodes = self.count()?;
        for _ in 0..nodes {
            let k = self.string()?;
            let master = id_of(&k)
                .filter(|_| k.len() == 16)
                .ok_or_else(|| self.blob_err(key, "stream node key"))?;
            let lp = self.string()?;
            let node =
                stream_node(master, &lp).ok_or_else(|| self.blob_err(key, "stream listpack"))?;
            st.nodes.push(node);
        }
        let _length = self.plain_len()?;
        st.last_id = (self.plain_len()?, self.plain_len()?);
        if kind >= T_STREAM_LISTPACKS_2 {
            st.first_id = (self.plain_len()?, self.plain_len()?);
            st.max_deleted_id = (self.plain_len()?, self.plain_len()?);
            st.entries_added = self.plain_len()?;
        } else {
            st.first_id = st.nodes.iter().flatten().next().map_or((0, 0), |e| e.0);
            st.entries_added = st.nodes.iter().map(|n| n.len() as u64).sum();
        }
        // Entries strictly ascending across nodes and not above the last ID: a stream that
        // breaks this is refused rather than stored (its lookups are binary searches).
        let mut prev: Option<Id> = None;
        for e in st.nodes.iter().flatten() {
            if prev.is_some_and(|p| p >= e.0) || e.0 > st.last_id {
                return Err(self.blob_err(key, "stream entry IDs out of order"));
            }
            prev = Some(e.0);
        }
        let groups = self.count()?;
        for _ in 0..groups {
            let mut g = StreamGroup {
                name: self.string()?,
                last_id: (self.plain_len()?, self.plain_len()?),
                ..StreamGroup::default()
            };
            if kind >= T_STREAM_LISTPACKS_2 {
                let n = self.plain_len()?;
                g.entries_read = (n != u64::MAX).then_some(n);
            }
            let pel = self.count()?;
            for _ in 0..pel {
                let mut raw = [0u8; 16];
                self.exact(&mut raw)?;
                let mut t = [0u8; 8];
                self.exact(&mut t)?;
                let count = self.plain_len()?;
                g.pel
                    .push((id_of(&raw).unwrap_or((0, 0)), u64::from_le_bytes(t), count));
            }
            g.pel.sort_unstable_by_key(|p| p.0);
            g.pel.dedup_by_key(|p| p.0);
            let consumers = self.count()?;
            for _ in 0..consumers {
                let name = self.string()?;
                let mut t = [0u8; 8];
                self.exact(&mut t)?;
                if kind >= T_STREAM_LISTPACKS_3 {
                    let mut active = [0u8; 8];
                    self.exact(&mut active)?;
                }
                let n = self.count()?;
                let mut ids = Vec::new();
                for _ in 0..n {
                    let mut raw = [0u8; 16];
                    self.exact(&mut raw)?;
                    let id = id_of(&raw).unwrap_or((0, 0));
                    if g.pel.binary_search_by(|p| p.0.cmp(&id)).is_err() {
                        return Err(self.blob_err(key, "consumer PEL entry not in the group PEL"));
                    }
                    ids.push(id);
                }
                g.consumers.push((name, u64::from_le_bytes(t), ids));
            }
            st.groups.push(g);
        }
        Ok(st)
    }

    fn blob_err(&self, key: &[u8], what: &str) -> RdbError {
        self.err(format!(
            "key {:?}: corrupt {what} encoding",
            String::from_utf8_lossy(key)
        ))
    }

    /// Old ZSET (type 3) score: a 1-byte length and ASCII, or 253/254/255 for NaN/+inf/-inf.
    fn text_double(&mut self) -> Result<f64, RdbError> {
        match self.byte()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let mut buf = vec![0u8; usize::from(n)];
                self.exact(&mut buf)?;
                parse_score(&buf).ok_or_else(|| self.err("bad score".into()))
            }
        }
    }

    fn check_crc(&mut self) -> Result<(), RdbError> {
        if self.version < 5 {
            return Ok(());
        }
        let computed = self.crc.clone().finalize();
        let mut b = [0u8; 8];
        let at = self.offset;
        self.input
            .read_exact(&mut b)
            .map_err(|_| self.err_at(at, "truncated checksum".into()))?;
        self.offset += 8;
        let stored = u64::from_le_bytes(b);
        if stored != 0 && stored != computed {
            return Err(self.err_at(
                at,
                format!("checksum mismatch (file {stored:016x}, computed {computed:016x})"),
            ));
        }
        Ok(())
    }

    fn strings(&mut self) -> Result<Vec<Vec<u8>>, RdbError> {
        let n = self.count()?;
        let mut items = Vec::with_capacity(n.min(1024) as usize);
        for _ in 0..n {
            items.push(self.string()?);
        }
        Ok(items)
    }

    /// An element count, bounded like a length.
    fn count(&mut self) -> Result<u64, RdbError> {
        let n = self.plain_len()?;
        if n > self.max_len {
            return Err(self.err(format!("count {n} over the limit")));
        }
        Ok(n)
    }

    fn plain_len(&mut self) -> Result<u64, RdbError> {
        match self.len()? {
            Len::Plain(n) => Ok(n),
            Len::Special(_) => Err(self.err("encoded value where a length was expected".into())),
        }
    }

    fn len(&mut self) -> Result<Len, RdbError> {
        let first = self.byte()?;
        Ok(match first >> 6 {
            0 => Len::Plain(u64::from(first & 0x3f)),
            1 => Len::Plain(u64::from(first & 0x3f) << 8 | u64::from(self.byte()?)),
            2 => match first {
                0x80 => {
                    let mut b = [0u8; 4];
                    self.exact(&mut b)?;
                    Len::Plain(u64::from(u32::from_be_bytes(b)))
                }
                0x81 => {
                    let mut b = [0u8; 8];
                    self.exact(&mut b)?;
                    Len::Plain(u64::from_be_bytes(b))
                }
                _ => return Err(self.err(format!("unknown length encoding {first:#x}"))),
            },
            _ => Len::Special(first & 0x3f),
        })
    }

    fn string(&mut self) -> Result<Vec<u8>, RdbError> {
        match self.len()? {
            Len::Plain(n) => self.bytes(n),
            Len::Special(ENC_INT8) => Ok(int_bytes(i64::from(self.byte()? as i8))),
            Len::Special(ENC_INT16) => {
                let mut b = [0u8; 2];
                self.exact(&mut b)?;
                Ok(int_bytes(i64::from(i16::from_le_bytes(b))))
            }
            Len::Special(ENC_INT32) => {
                let mut b = [0u8; 4];
                self.exact(&mut b)?;
                Ok(int_bytes(i64::from(i32::from_le_bytes(b))))
            }
            Len::Special(ENC_LZF) => {
                let clen = self.plain_len()?;
                let ulen = self.plain_len()?;
                if ulen > self.max_len || ulen > clen.saturating_mul(LZF_MAX_EXPANSION) {
                    return Err(self.err(format!("LZF string of {ulen} bytes from {clen}")));
                }
                let at = self.offset;
                let compressed = self.bytes(clen)?;
                lzf_decompress(&compressed, ulen as usize)
                    .ok_or_else(|| self.err_at(at, "corrupt LZF data".into()))
            }
            Len::Special(other) => Err(self.err(format!("unknown string encoding {other}"))),
        }
    }

    /// `n` bytes, filled as they arrive (a corrupt length cannot make us allocate it upfront).
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, RdbError> {
        if n > self.max_len {
            return Err(self.err(format!("string of {n} bytes over the limit")));
        }
        // Up to 64 KiB (nearly every string) in one exact read into an exact allocation, so
        // that the buffer becomes a store element without a copy; beyond, in 64 KiB steps.
        const STEP: u64 = 64 << 10;
        let mut buf = Vec::with_capacity(n.min(STEP) as usize);
        while (buf.len() as u64) < n {
            let at = buf.len();
            let step = (n - at as u64).min(STEP) as usize;
            buf.resize(at + step, 0);
            if self.input.read_exact(&mut buf[at..]).is_err() {
                return Err(self.err("truncated file".into()));
            }
            self.crc.update(&buf[at..]);
            self.offset += step as u64;
        }
        Ok(buf)
    }

    fn byte(&mut self) -> Result<u8, RdbError> {
        let mut b = [0u8; 1];
        self.exact(&mut b)?;
        Ok(b[0])
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<(), RdbError> {
        self.input
            .read_exact(buf)
            .map_err(|_| self.err("truncated file".into()))?;
        self.crc.update(buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn err(&self, what: String) -> RdbError {
        self.err_at(self.offset, what)
    }

    fn err_at(&self, offset: u64, what: String) -> RdbError {
        RdbError { offset, what }
    }
}

/// LZF never expands more than this: a 3-byte back reference copies at most 264 bytes.
const LZF_MAX_EXPANSION: u64 = 88;

/// Decompresses LZF (liblzf's format, as Redis writes it) into exactly `ulen` bytes.
fn lzf_decompress(input: &[u8], ulen: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(ulen);
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let lit = input.get(i..i + run)?;
            if out.len() + run > ulen {
                return None;
            }
            out.extend_from_slice(lit);
            i += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(i)?);
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(i)?) + 1;
            i += 1;
            let len = len + 2;
            let start = out.len().checked_sub(back)?;
            if out.len() + len > ulen {
                return None;
            }
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    (out.len() == ulen).then_some(out)
}

/// LZF-compresses `input` (liblzf's format, which Redis reads): None if the result would
/// be longer than `max_out` bytes. Literal runs of up to 32 bytes and back references of 3 to
/// 264 bytes within 8 KiB, found through a hash of the next 3 bytes.
fn lzf_compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    // The table grows with the input (2^8 to 2^14 slots), so that a 100-byte value does not
    // pay for clearing a table sized for megabytes.
    let hlog = usize::BITS - input.len().max(1).leading_zeros();
    let hlog = hlog.clamp(8, 14);
    const MAX_LIT: usize = 32;
    const MAX_OFF: usize = 1 << 13;
    const MAX_REF: usize = (1 << 8) + (1 << 3);
    let n = input.len();
    let mut table = vec![usize::MAX; 1 << hlog];
    let mut out: Vec<u8> = Vec::with_capacity(max_out.min(n) + 1);
    // `out[run]` holds the length byte of the literal run being written.
    let mut run = 0;
    out.push(0);
    let mut lit = 0usize;
    let mut ip = 0usize;
    // Appends a literal byte, closing the run (and opening the next) at MAX_LIT bytes.
    let literal = |out: &mut Vec<u8>, run: &mut usize, lit: &mut usize, b: u8| {
        out.push(b);
        *lit += 1;
        if *lit == MAX_LIT {
            out[*run] = (MAX_LIT - 1) as u8;
            *run = out.len();
            out.push(0);
            *lit = 0;
        }
    };
    let hash = |p: usize| -> usize {
        let v = u32::from(input[p]) << 16 | u32::from(input[p + 1]) << 8 | u32::from(input[p + 2]);
        (v.wrapping_mul(0x9E37_79B1) >> (32 - hlog)) as usize
    };
    while ip + 2 < n {
        let h = hash(ip);
        let r = table[h];
        table[h] = ip;
        if r != usize::MAX && r < ip && ip - r - 1 < MAX_OFF && input[r..r + 3] == input[ip..ip + 3]
        {
            let max_len = (n - ip).min(MAX_REF);
            let mut len = 3;
            while len < max_len && input[r + len] == input[ip + len] {
                len += 1;
            }
            // Close the literal run (or drop its empty length byte).
            if lit == 0 {
                out.pop();
            } else {
                out[run] = (lit - 1) as u8;
            }
            let off = ip - r - 1;
            let l = len - 2;
            if l < 7 {
                out.push(((off >> 8) as u8) | ((l as u8) << 5));
            } else {
                out.push(((off >> 8) as u8) | (7 << 5));
                out.push((l - 7) as u8);
            }
            out.push(off as u8);
            ip += len;
            run = out.len();
            out.push(0);
            lit = 0;
        } else {
            literal(&mut out, &mut run, &mut lit, input[ip]);
            ip += 1;
        }
        if out.len() > max_out {
            return None;
        }
    }
    for &b in &input[ip..] {
        literal(&mut out, &mut run, &mut lit, b);
    }
    if lit == 0 {
        out.pop();
    } else {
        out[run] = (lit - 1) as u8;
    }
    (out.len() <= max_out).then_some(out)
}

/// A small cursor over an encoded blob; every read is bounds-checked.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Option<u64> {
        let s = self.take(n)?;
        Some(s.iter().rev().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
    }

    /// A little-endian two's-complement integer of `n` bytes.
    fn signed(&mut self, n: usize) -> Option<i64> {
        let v = self.le(n)?;
        let shift = 64 - 8 * n as u32;
        Some(((v << shift) as i64) >> shift)
    }
}

/// The decimal text of `v` in an exact allocation (it becomes a store element as it is).
fn int_bytes(v: i64) -> Vec<u8> {
    itoa::Buffer::new().format(v).as_bytes().to_vec()
}

/// The entries of a ziplist (Redis ≤ 6.2 lists, hashes and sorted sets).
fn ziplist(b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut c = Cur { b, i: 0 };
    let total = c.le(4)? as usize;
    if total != b.len() {
        return None;
    }
    c.le(4)?; // offset of the tail
    // The entry count saturates at 65535 and comes from the file: the walk below is what
    // counts, the count only sizes the vector (an entry takes at least 2 bytes).
    let count = c.le(2)? as usize;
    let mut items = Vec::with_capacity(count.min(b.len() / 2));
    loop {
        let first = *b.get(c.i)?;
        if first == 0xff {
            return (c.i + 1 == b.len()).then_some(items);
        }
        // prevlen
        if c.u8()? == 254 {
            c.take(4)?;
        }
        let enc = c.u8()?;
        let item = match enc >> 6 {
            0 => c.take(usize::from(enc & 0x3f))?.to_vec(),
            1 => {
                let n = usize::from(enc & 0x3f) << 8 | usize::from(c.u8()?);
                c.take(n)?.to_vec()
            }
            2 => {
                let s = c.take(4)?;
                let n = u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
                c.take(n)?.to_vec()
            }
            _ => match enc {
                0xc0 => int_bytes(c.signed(2)?),
                0xd0 => int_bytes(c.signed(4)?),
                0xe0 => int_bytes(c.signed(8)?),
                0xf0 => int_bytes(c.signed(3)?),
                0xfe => int_bytes(c.signed(1)?),
                0xf1..=0xfd => int_bytes(i64::from(enc & 0x0f) - 1),
                _ => return None,
            },
        };
        items.push(item);
    }
}

/// The entries of a listpack (Redis 7 lists, hashes, sorted sets and 7.2 sets).
fn listpack(b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut c = Cur { b, i: 0 };
    let total = c.le(4)? as usize;
    if total != b.len() {
        return None;
    }
    // As in a ziplist: the count only sizes the vector.
    let count = c.le(2)? as usize;
    let mut items = Vec::with_capacity(count.min(b.len() / 2));
    loop {
        let start = c.i;
        let enc = c.u8()?;
        let item = if enc & 0x80 == 0 {
            int_bytes(i64::from(enc))
        } else if enc & 0xc0 == 0x80 {
            c.take(usize::from(enc & 0x3f))?.to_vec()
        } else if enc & 0xe0 == 0xc0 {
            let v = i64::from(enc & 0x1f) << 8 | i64::from(c.u8()?);
            int_bytes(if v >= 1 << 12 { v - (1 << 13) } else { v })
        } else if enc & 0xf0 == 0xe0 {
            let n = usize::from(enc & 0x0f) << 8 | usize::from(c.u8()?);
            c.take(n)?.to_vec()
        } else {
            match enc {
                0xf0 => {
                    let n = c.le(4)? as usize;
                    c.take(n)?.to_vec()
                }
                0xf1 => int_bytes(c.signed(2)?),
                0xf2 => int_bytes(c.signed(3)?),
                0xf3 => int_bytes(c.signed(4)?),
                0xf4 => int_bytes(c.signed(8)?),
                0xff => return (c.i == b.len()).then_some(items),
                _ => return None,
            }
        };
        let entry_len = c.i - start;
        let backlen = match entry_len {
            0..=127 => 1,
            128..16383 => 2,
            16383..2097151 => 3,
            2097151..268435455 => 4,
            _ => 5,
        };
        c.take(backlen)?;
        items.push(item);
    }
}

/// The members of an intset.
fn intset(b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut c = Cur { b, i: 0 };
    let width = c.le(4)? as usize;
    if !matches!(width, 2 | 4 | 8) {
        return None;
    }
    let n = c.le(4)? as usize;
    if b.len() != 8 + n.checked_mul(width)? {
        return None;
    }
    (0..n).map(|_| Some(int_bytes(c.signed(width)?))).collect()
}

/// The (field, value) pairs of a zipmap (Redis ≤ 2.4 hashes).
fn zipmap(b: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut c = Cur { b, i: 0 };
    c.u8()?; // count hint
    let mut pairs = Vec::new();
    let len = |c: &mut Cur<'_>| -> Option<Option<usize>> {
        match c.u8()? {
            255 => Some(None),
            254 => Some(Some(c.le(4)? as usize)),
            n => Some(Some(usize::from(n))),
        }
    };
    loop {
        let Some(klen) = len(&mut c)? else {
            return (c.i == b.len()).then_some(pairs);
        };
        let key = c.take(klen)?.to_vec();
        let vlen = len(&mut c)??;
        let free = usize::from(c.u8()?);
        let value = c.take(vlen)?.to_vec();
        c.take(free)?;
        pairs.push((key, value));
    }
}

/// Consecutive items as pairs (an odd count is corrupt).
fn pairs_of(items: Vec<Vec<u8>>) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if items.len() % 2 != 0 {
        return None;
    }
    let mut it = items.into_iter();
    let mut pairs = Vec::with_capacity(it.len() / 2);
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        pairs.push((a, b));
    }
    Some(pairs)
}

/// A score written as text (ziplist/listpack entries, old ZSET): Redis's `strtod` forms,
/// including `inf`/`-inf`; NaN is refused.
fn parse_score(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?;
    let v = match t {
        "inf" | "+inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => t.parse::<f64>().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(records: &[Record]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), &[("redis-ver", "7.0.0"), ("redis-bits", "64")])
            .expect("header");
        w.select_db(0, records.len() as u64, 0).expect("db");
        for r in records {
            w.record(r).expect("record");
        }
        w.finish().expect("finish")
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Record>, RdbError> {
        let mut r = Reader::new(bytes)?;
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push(rec);
        }
        Ok(out)
    }

    fn rec(key: &str, value: Value) -> Record {
        Record {
            db: 0,
            key: key.into(),
            value,
            expire_ms: None,
            flags: 0,
        }
    }

    fn sample() -> Vec<Record> {
        let long = vec![b'x'; 70_000];
        vec![
            rec("s", Value::String(b"hello".to_vec())),
            rec("empty", Value::String(Vec::new())),
            rec("big", Value::String(long.clone())),
            Record {
                expire_ms: Some(1_900_000_000_123),
                flags: 42,
                ..rec("mc", Value::String(b"item".to_vec()))
            },
            rec("l", Value::List(vec![b"a".to_vec(), long, b"".to_vec()])),
            rec("set", Value::Set(vec![b"1".to_vec(), b"m".to_vec()])),
            rec(
                "h",
                Value::Hash(vec![
                    (b"f".to_vec(), b"v".to_vec()),
                    (b"g".to_vec(), vec![]),
                ]),
            ),
            rec(
                "z",
                Value::ZSet(vec![
                    (b"a".to_vec(), 1.5),
                    (b"b".to_vec(), f64::INFINITY),
                    (b"c".to_vec(), -0.25),
                ]),
            ),
            rec("\u{0}bin\r\n", Value::String(vec![0, 255, 13, 10])),
        ]
    }

    #[test]
    fn what_is_written_reads_back() {
        let records = sample();
        let bytes = write(&records);
        assert_eq!(&bytes[..9], b"REDIS0010");
        assert_eq!(read_all(&bytes).expect("read"), records);
    }

    #[test]
    fn function_libraries_travel_before_the_keys() {
        let code = b"#!lua name=lib\nredis.register_function('f', function() return 1 end)";
        let mut w = Writer::new(Vec::new(), &[("redis-ver", "7.0.0")]).expect("header");
        w.function(code).expect("function");
        w.select_db(0, 1, 0).expect("db");
        w.record(&rec("k", Value::String(b"v".to_vec())))
            .expect("record");
        let bytes = w.finish().expect("finish");
        let mut r = Reader::new(&bytes[..]).expect("header");
        let first = r.next_record().expect("read").expect("a key");
        // The library came before the key, and is handed over as its code.
        assert_eq!(first.key, b"k");
        assert_eq!(r.functions, [code.to_vec()]);
        assert!(r.next_record().expect("read").is_none());
    }

    #[test]
    fn lzf_compresses_what_the_decoder_reads_back() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut inputs: Vec<Vec<u8>> = vec![
            vec![b'v'; 100],
            vec![b'z'; 300_000],
            b"abcabcabcabcabcabcabcabcabc".to_vec(),
            (0..70_000u32).map(|i| (i % 251) as u8).collect(),
        ];
        for _ in 0..300 {
            let len = (next() % 3000) as usize + 21;
            let alphabet = (next() % 4) as u8 + 1;
            inputs.push(
                (0..len)
                    .map(|_| b'a' + (next() % u64::from(alphabet)) as u8)
                    .collect(),
            );
            inputs.push((0..len).map(|_| next() as u8).collect());
        }
        for input in &inputs {
            if let Some(c) = lzf_compress(input, input.len() - 4) {
                assert!(c.len() <= input.len() - 4);
                assert_eq!(lzf_decompress(&c, input.len()).as_deref(), Some(&input[..]));
            }
        }
        let c = lzf_compress(&[b'v'; 100], 96).expect("compressible");
        assert!(c.len() < 10, "{} bytes", c.len());
        // Random bytes do not compress: they are written as they are.
        assert!(lzf_compress(&inputs[5], inputs[5].len() - 4).is_none());
    }

    #[test]
    fn dump_payloads_round_trip_and_check_their_crc() {
        for r in sample() {
            let payload = dump(&r.value);
            assert_eq!(restore(&payload).expect("restore"), r.value);
            let mut bad = payload.clone();
            bad[0] ^= 0x40;
            assert!(restore(&bad).is_err());
            assert!(restore(&payload[..payload.len() - 1]).is_err());
        }
        // redis-server 7.0: DUMP of SET k hello.
        let from_redis = b"\x00\x05hello\x0a\x00cr\xdfve4 \x0a";
        assert_eq!(
            restore(from_redis).ok(),
            Some(Value::String(b"hello".to_vec()))
        );
    }

    #[test]
    fn lengths_use_every_encoding() {
        for n in [
            0u64,
            63,
            64,
            16383,
            16384,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
        ] {
            let mut buf = [0u8; 9];
            let enc = encode_len(n, &mut buf).to_vec();
            let mut w = Vec::from(&b"REDIS0010"[..]);
            w.extend_from_slice(&enc);
            let mut r = Reader::new(&w[..]).expect("header");
            assert_eq!(r.plain_len().expect("len"), n, "{n}");
        }
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum_and_truncation_names_the_offset() {
        let bytes = write(&sample());
        let mut bad = bytes.clone();
        let i = bad.len() - 20;
        bad[i] ^= 1;
        assert!(read_all(&bad).is_err());
        for cut in [5, 9, 10, 30, bytes.len() / 2, bytes.len() - 1] {
            let err = read_all(&bytes[..cut]).expect_err("truncated");
            assert!(err.offset <= cut as u64, "{err} at cut {cut}");
        }
        // Checksum 0 means "not computed" (rdbchecksum no).
        let mut unchecked = bytes.clone();
        let n = unchecked.len();
        unchecked[n - 8..].fill(0);
        assert_eq!(read_all(&unchecked).expect("read").len(), sample().len());
    }

    #[test]
    fn every_prefix_is_an_error_never_a_panic() {
        let bytes = write(&sample()[..4]);
        for cut in 0..bytes.len() {
            assert!(
                read_all(&bytes[..cut]).is_err(),
                "prefix {cut} read as complete"
            );
        }
    }

    #[test]
    fn special_strings_decode() {
        // int8 -5, int16 1000, int32 -70000, and LZF of "aaaaaaaaaa" (literal 'a', back ref 8).
        let mut f = Vec::from(&b"REDIS0009"[..]);
        for (key, enc) in [
            (&b"a"[..], &[0xc0, 0xfb][..]),
            (b"b", &[0xc1, 0xe8, 0x03]),
            (b"c", &[0xc2, 0x90, 0xee, 0xfe, 0xff]),
            (b"d", &[0xc3, 0x05, 0x0a, 0x00, b'a', 0xe0, 0x00, 0x00]),
        ] {
            f.push(T_STRING);
            f.push(key.len() as u8);
            f.extend_from_slice(key);
            f.extend_from_slice(enc);
        }
        f.push(OP_EOF);
        f.extend_from_slice(&[0; 8]);
        let got: Vec<Vec<u8>> = read_all(&f)
            .expect("read")
            .into_iter()
            .map(|r| match r.value {
                Value::String(s) => s,
                v => panic!("{v:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [&b"-5"[..], b"1000", b"-70000", b"aaaaaaaaaa"].map(<[u8]>::to_vec)
        );
    }

    #[test]
    fn compact_encodings_decode() {
        // listpack: "ab", 7, -2 (13-bit), 300 (13-bit), 100000 (int24)
        let mut lp = vec![0u8; 6];
        for entry in [
            &[0x82, b'a', b'b', 3][..],
            &[0x07, 1],
            &[0xdf, 0xfe, 2],
            &[0xc1, 0x2c, 2],
            &[0xf2, 0xa0, 0x86, 0x01, 4],
        ] {
            lp.extend_from_slice(entry);
        }
        lp.push(0xff);
        let n = lp.len() as u32;
        lp[..4].copy_from_slice(&n.to_le_bytes());
        lp[4..6].copy_from_slice(&5u16.to_le_bytes());
        assert_eq!(
            listpack(&lp).expect("listpack"),
            [&b"ab"[..], b"7", b"-2", b"300", b"100000"].map(<[u8]>::to_vec)
        );
        // ziplist: "x", 12 (immediate), -3 (int8), 70000 (int32)
        let mut zl = vec![0u8; 10];
        for entry in [
            &[0, 0x01, b'x'][..],
            &[3, 0xfd],
            &[2, 0xfe, 0xfd],
            &[3, 0xd0, 0x70, 0x11, 0x01, 0x00],
        ] {
            zl.extend_from_slice(entry);
        }
        zl.push(0xff);
        let n = zl.len() as u32;
        zl[..4].copy_from_slice(&n.to_le_bytes());
        assert_eq!(
            ziplist(&zl).expect("ziplist"),
            [&b"x"[..], b"12", b"-3", b"70000"].map(<[u8]>::to_vec)
        );
        // intset of int16: 5, -1
        let is = [2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0xff, 0xff];
        assert_eq!(
            intset(&is).expect("intset"),
            [&b"5"[..], b"-1"].map(<[u8]>::to_vec)
        );
        // zipmap: {"k": "v"} with one free byte
        let zm = [1, 1, b'k', 1, 1, b'v', 0, 255];
        assert_eq!(
            zipmap(&zm).expect("zipmap"),
            vec![(b"k".to_vec(), b"v".to_vec())]
        );
        // Bounds: a blob that lies about its sizes is refused, not read past its end.
        assert!(listpack(&lp[..lp.len() - 1]).is_none());
        assert!(ziplist(&zl[..zl.len() - 2]).is_none());
        assert!(intset(&is[..10]).is_none());
        assert!(zipmap(&zm[..5]).is_none());
    }

    /// A ziplist of short strings (6-bit lengths) and small integers (immediate encoding).
    fn ziplist_of(items: &[&[u8]]) -> Vec<u8> {
        let mut zl = vec![0u8; 10];
        let mut prev = 0u8;
        for item in items {
            let start = zl.len();
            zl.push(prev);
            match std::str::from_utf8(item)
                .ok()
                .and_then(|t| t.parse::<u8>().ok())
            {
                Some(n) if n <= 12 => zl.push(0xf1 + n),
                _ => {
                    zl.push(item.len() as u8);
                    zl.extend_from_slice(item);
                }
            }
            prev = (zl.len() - start) as u8;
        }
        zl.push(0xff);
        let n = zl.len() as u32;
        zl[..4].copy_from_slice(&n.to_le_bytes());
        zl[8..10].copy_from_slice(&(items.len() as u16).to_le_bytes());
        zl
    }

    /// A file as Redis 2.6-6.2 wrote them (version 6): zipmap, ziplist, quicklist of ziplists,
    /// intset, the old text-score zset, and a TTL in seconds.
    #[test]
    fn a_ziplist_era_file_reads() {
        let mut f = Vec::from(&b"REDIS0006"[..]);
        fn put(f: &mut Vec<u8>, kind: u8, key: &[u8], body: &[u8]) {
            f.push(kind);
            f.push(key.len() as u8);
            f.extend_from_slice(key);
            f.extend_from_slice(body);
        }
        let blob = |b: Vec<u8>| [vec![b.len() as u8], b].concat();
        put(
            &mut f,
            T_HASH_ZIPMAP,
            b"zm",
            &blob(vec![1, 1, b'k', 1, 0, b'v', 255]),
        );
        put(
            &mut f,
            T_LIST_ZIPLIST,
            b"zl",
            &blob(ziplist_of(&[b"a", b"7", b"bc"])),
        );
        put(
            &mut f,
            T_ZSET_ZIPLIST,
            b"zz",
            &blob(ziplist_of(&[b"m", b"2", b"n", b"-1.5"])),
        );
        put(
            &mut f,
            T_HASH_ZIPLIST,
            b"zh",
            &blob(ziplist_of(&[b"f", b"v"])),
        );
        let mut quick = vec![2];
        quick.extend(blob(ziplist_of(&[b"x", b"y"])));
        quick.extend(blob(ziplist_of(&[b"3"])));
        put(&mut f, T_LIST_QUICKLIST, b"ql", &quick);
        put(
            &mut f,
            T_ZSET,
            b"oz",
            &[2, 1, b'a', 3, b'0', b'.', b'5', 1, b'b', 254],
        );
        f.extend_from_slice(&[OP_EXPIRETIME, 0x10, 0x27, 0, 0]);
        put(
            &mut f,
            T_SET_INTSET,
            b"is",
            &blob(vec![2, 0, 0, 0, 1, 0, 0, 0, 9, 0]),
        );
        f.push(OP_EOF);
        let crc = CRC64.checksum(&f);
        f.extend_from_slice(&crc.to_le_bytes());
        let got = read_all(&f).expect("read");
        let v = |s: &[&str]| s.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
        let want = vec![
            rec("zm", Value::Hash(vec![(b"k".to_vec(), b"v".to_vec())])),
            rec("zl", Value::List(v(&["a", "7", "bc"]))),
            rec(
                "zz",
                Value::ZSet(vec![(b"m".to_vec(), 2.0), (b"n".to_vec(), -1.5)]),
            ),
            rec("zh", Value::Hash(vec![(b"f".to_vec(), b"v".to_vec())])),
            rec("ql", Value::List(v(&["x", "y", "3"]))),
            rec(
                "oz",
                Value::ZSet(vec![(b"a".to_vec(), 0.5), (b"b".to_vec(), f64::INFINITY)]),
            ),
            Record {
                expire_ms: Some(10_000_000),
                ..rec("is", Value::Set(v(&["9"])))
            },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn modules_are_refused_by_key_and_type() {
        let mut f = Vec::from(&b"REDIS0010"[..]);
        f.push(T_MODULE_2);
        f.push(3);
        f.extend_from_slice(b"evs");
        let err = read_all(&f).expect_err("module");
        assert_eq!(err.offset, 9);
        assert!(
            err.what.contains("\"evs\"") && err.what.contains("module"),
            "{err}"
        );
    }

    #[test]
    fn streams_round_trip_with_their_groups() {
        let entry = |ms: u64, fields: &[(&str, &str)]| {
            (
                (ms, 0),
                fields
                    .iter()
                    .map(|(f, v)| (f.as_bytes().to_vec(), v.as_bytes().to_vec()))
                    .collect::<Vec<_>>(),
            )
        };
        let st = StreamValue {
            nodes: vec![
                vec![
                    entry(1, &[("a", "1")]),
                    entry(2, &[("a", "-5000")]),
                    entry(3, &[("b", "x"), ("c", &"y".repeat(5000))]),
                ],
                vec![entry(1 << 40, &[("big", "123456789012")])],
            ],
            last_id: (1 << 40, 0),
            first_id: (1, 0),
            max_deleted_id: (0, 0),
            entries_added: 4,
            groups: vec![StreamGroup {
                name: b"g".to_vec(),
                last_id: (2, 0),
                entries_read: None,
                pel: vec![
                    ((1, 0), 1_700_000_000_000, 2),
                    ((2, 0), 1_700_000_000_001, 1),
                ],
                consumers: vec![(b"c".to_vec(), 1_700_000_000_002, vec![(1, 0), (2, 0)])],
            }],
        };
        let v = Value::Stream(Box::new(st));
        assert_eq!(restore(&dump(&v)).expect("restore"), v);
        let records = vec![rec("s", v)];
        assert_eq!(read_all(&write(&records)).expect("read"), records);
    }

    #[test]
    fn a_lying_lzf_header_cannot_allocate() {
        let mut f = Vec::from(&b"REDIS0010"[..]);
        f.extend_from_slice(&[T_STRING, 1, b'k', 0xc3, 0x01, 0x81]);
        f.extend_from_slice(&u64::MAX.to_be_bytes());
        let err = read_all(&f).expect_err("lzf");
        assert!(err.what.contains("LZF"), "{err}");
    }
}
