//! twemproxy's key hash functions (its `hash:` setting), bit for bit as nutcracker 0.5 computes
//! them on x86-64, quirks included. (C's `char` is unsigned on arm64 Linux: a nutcracker built
//! there does not sign-extend, see below, and places keys with bytes >= 0x80 differently under
//! `one_at_a_time`, the fnv hashes and `hsieh`; x86-64 is what the golden vectors come from.)
//!
//! Owns: the twelve 32-bit key hashes and their config names. Must not touch: ring points, the
//! distribution, hash tags (the ring applies the tag before calling [`KeyHash::hash`]).
//!
//! Invariants, each checked against twemproxy's `src/hashkit/*.c` and golden vectors from a real
//! nutcracker (`tests/twemproxy.rs`):
//! - twemproxy reads key bytes through `const char *`, which is signed on x86-64: where it widens
//!   a byte without masking it (`one_at_a_time`, the four fnv hashes, the 3-byte tail of
//!   `hsieh`), a byte >= 0x80 is sign-extended (0xE9 becomes 0xFFFFFFE9). `widen` reproduces
//!   that; keys in non-ASCII UTF-8 hash differently from the textbook functions because of it.
//! - `fnv1a_64` is 32-bit: twemproxy truncates the 64-bit offset basis and prime to `uint32_t`
//!   and works in 32 bits, which yields the low half of 64-bit FNV-1a (low product bits depend
//!   on low factor bits only). `fnv1_64` is computed in 64 bits and its low 32 bits returned.
//!   Every hash is 32-bit: ketama compares it with 32-bit points, modula takes it modulo.
//! - `crc32` is libmemcached's: the standard CRC-32, then `(crc >> 16) & 0x7fff` (15 bits);
//!   `crc32a` is the standard CRC-32. `crc16` is 0.5's: the CRC-16/XMODEM table in a 32-bit
//!   register that is never truncated (CRC-16/XMODEM in the low half, shifted state above).
//! - `murmur` is MurmurHash2 with seed `0xdeadbeef * len`; `jenkins` is lookup3's `hashlittle`
//!   with initval 13 (twemproxy's word-aligned reads give the byte-wise result).
//! - An empty key is not hashed by twemproxy (`server_pool_hash` returns 0); that rule lives in
//!   the ring, not here, so each function below is the plain C function.

use crc::{CRC_32_ISO_HDLC, Crc};
use md5::{Digest, Md5};

/// One of twemproxy's `hash:` functions. Config spells each exactly as twemproxy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyHash {
    /// Bob Jenkins' one-at-a-time.
    OneAtATime,
    /// The first four bytes of the md5 digest, little-endian.
    Md5,
    /// nutcracker 0.5's untruncated CRC-16/XMODEM.
    Crc16,
    /// libmemcached's 15-bit CRC-32 variant.
    Crc32,
    /// The standard CRC-32.
    Crc32a,
    /// FNV-1 in 64 bits, low 32 bits returned.
    Fnv1_64,
    /// "FNV-1a 64", really 32-bit with truncated constants (twemproxy's default hash).
    Fnv1a64,
    /// FNV-1, 32-bit.
    Fnv1_32,
    /// FNV-1a, 32-bit.
    Fnv1a32,
    /// Paul Hsieh's SuperFastHash.
    Hsieh,
    /// MurmurHash2.
    Murmur,
    /// lookup3 `hashlittle`.
    Jenkins,
}

impl KeyHash {
    /// Every hash, in twemproxy's documentation order.
    pub const ALL: [KeyHash; 12] = [
        KeyHash::OneAtATime,
        KeyHash::Md5,
        KeyHash::Crc16,
        KeyHash::Crc32,
        KeyHash::Crc32a,
        KeyHash::Fnv1_64,
        KeyHash::Fnv1a64,
        KeyHash::Fnv1_32,
        KeyHash::Fnv1a32,
        KeyHash::Hsieh,
        KeyHash::Murmur,
        KeyHash::Jenkins,
    ];

    /// twemproxy's spelling (`hash: fnv1a_64`).
    pub fn name(self) -> &'static str {
        match self {
            KeyHash::OneAtATime => "one_at_a_time",
            KeyHash::Md5 => "md5",
            KeyHash::Crc16 => "crc16",
            KeyHash::Crc32 => "crc32",
            KeyHash::Crc32a => "crc32a",
            KeyHash::Fnv1_64 => "fnv1_64",
            KeyHash::Fnv1a64 => "fnv1a_64",
            KeyHash::Fnv1_32 => "fnv1_32",
            KeyHash::Fnv1a32 => "fnv1a_32",
            KeyHash::Hsieh => "hsieh",
            KeyHash::Murmur => "murmur",
            KeyHash::Jenkins => "jenkins",
        }
    }

    /// The hash twemproxy calls `name`, if any.
    pub fn from_name(name: &str) -> Option<KeyHash> {
        KeyHash::ALL.into_iter().find(|h| h.name() == name)
    }

    /// The 32-bit hash of `key`, as twemproxy's `hash_<name>(key, len)` returns it.
    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            KeyHash::OneAtATime => one_at_a_time(key),
            KeyHash::Md5 => {
                let d: [u8; 16] = Md5::digest(key).into();
                u32::from_le_bytes([d[0], d[1], d[2], d[3]])
            }
            KeyHash::Crc16 => crc16(key),
            KeyHash::Crc32 => (CRC32.checksum(key) >> 16) & 0x7fff,
            KeyHash::Crc32a => CRC32.checksum(key),
            KeyHash::Fnv1_64 => fnv1_64(key),
            KeyHash::Fnv1a64 => fnv1a_64(key),
            KeyHash::Fnv1_32 => fnv1_32(key),
            KeyHash::Fnv1a32 => fnv1a_32(key),
            KeyHash::Hsieh => hsieh(key),
            KeyHash::Murmur => murmur(key),
            KeyHash::Jenkins => hashlittle(key, JENKINS_INITVAL),
        }
    }
}

/// The CRC-16/XMODEM table (polynomial 0x1021, not reflected) that nutcracker 0.5 uses.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};
/// The standard CRC-32 (reflected 0x04C11DB7, init and final xor all ones).
const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// A key byte read through C's signed `char` and converted to `uint32_t`: sign-extended.
fn widen(byte: u8) -> u32 {
    byte as i8 as i32 as u32
}

/// nutcracker 0.5's `hash_crc16`: the XMODEM table driven in a `uint32_t` that is shifted left
/// and never truncated: the low 16 bits are CRC-16/XMODEM, the high 16 the shifted-out state, so
/// keys of two bytes or more hash past 0xffff (later twemproxy versions replaced it with a real
/// CRC-16/ARC, which places keys differently; the golden vectors are from 0.5).
fn crc16(key: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &b in key {
        let index = ((crc >> 8) ^ u32::from(b)) & 0xff;
        crc = (crc << 8) ^ u32::from(CRC16_TABLE[index as usize]);
    }
    crc
}

fn one_at_a_time(key: &[u8]) -> u32 {
    let mut value: u32 = 0;
    for &b in key {
        value = value.wrapping_add(widen(b));
        value = value.wrapping_add(value << 10);
        value ^= value >> 6;
    }
    value = value.wrapping_add(value << 3);
    value ^= value >> 11;
    value.wrapping_add(value << 15)
}

const FNV_64_INIT: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_64_PRIME: u64 = 0x0000_0100_0000_01b3;
const FNV_32_INIT: u32 = 2_166_136_261;
const FNV_32_PRIME: u32 = 16_777_619;

fn fnv1_64(key: &[u8]) -> u32 {
    let mut hash = FNV_64_INIT;
    for &b in key {
        hash = hash.wrapping_mul(FNV_64_PRIME);
        // `(uint64_t)key[x]`: sign-extended to 64 bits.
        hash ^= b as i8 as i64 as u64;
    }
    hash as u32
}

fn fnv1a_64(key: &[u8]) -> u32 {
    // `(uint32_t) FNV_64_INIT` and `(uint32_t) FNV_64_PRIME`: the "64" is in the name only.
    let mut hash = FNV_64_INIT as u32;
    for &b in key {
        hash ^= widen(b);
        hash = hash.wrapping_mul(FNV_64_PRIME as u32);
    }
    hash
}

fn fnv1_32(key: &[u8]) -> u32 {
    let mut hash = FNV_32_INIT;
    for &b in key {
        hash = hash.wrapping_mul(FNV_32_PRIME);
        hash ^= widen(b);
    }
    hash
}

fn fnv1a_32(key: &[u8]) -> u32 {
    let mut hash = FNV_32_INIT;
    for &b in key {
        hash ^= widen(b);
        hash = hash.wrapping_mul(FNV_32_PRIME);
    }
    hash
}

fn hsieh(key: &[u8]) -> u32 {
    if key.is_empty() {
        return 0;
    }
    // `get16bits` reads through `uint8_t *`: unsigned.
    let get16 = |at: &[u8]| u32::from(at[0]) | (u32::from(at[1]) << 8);
    let mut hash: u32 = 0;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        hash = hash.wrapping_add(get16(&c[0..2]));
        let tmp = (get16(&c[2..4]) << 11) ^ hash;
        hash = (hash << 16) ^ tmp;
        hash = hash.wrapping_add(hash >> 11);
    }
    match *chunks.remainder() {
        [a, b, c] => {
            hash = hash.wrapping_add(get16(&[a, b]));
            hash ^= hash << 16;
            // `(uint32_t)key[2] << 18` through signed `char`.
            hash ^= widen(c) << 18;
            hash = hash.wrapping_add(hash >> 11);
        }
        [a, b] => {
            hash = hash.wrapping_add(get16(&[a, b]));
            hash ^= hash << 11;
            hash = hash.wrapping_add(hash >> 17);
        }
        [a] => {
            hash = hash.wrapping_add(u32::from(a));
            hash ^= hash << 10;
            hash = hash.wrapping_add(hash >> 1);
        }
        _ => {}
    }
    hash ^= hash << 3;
    hash = hash.wrapping_add(hash >> 5);
    hash ^= hash << 4;
    hash = hash.wrapping_add(hash >> 17);
    hash ^= hash << 25;
    hash.wrapping_add(hash >> 6)
}

fn murmur(key: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // `(uint32_t)length`: keys past 4 GiB wrap, as in C.
    let len = key.len() as u32;
    let seed = 0xdead_beef_u32.wrapping_mul(len);
    let mut h = seed ^ len;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// twemproxy's `JENKINS_INITVAL`.
const JENKINS_INITVAL: u32 = 13;

/// lookup3's `hashlittle(key, length, initval)`.
fn hashlittle(key: &[u8], initval: u32) -> u32 {
    fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(4);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(6);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(8);
        *b = b.wrapping_add(*a);
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(16);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(19);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(4);
        *b = b.wrapping_add(*a);
    }
    fn last(a: &mut u32, b: &mut u32, c: &mut u32) {
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(14));
        *a ^= *c;
        *a = a.wrapping_sub(c.rotate_left(11));
        *b ^= *a;
        *b = b.wrapping_sub(a.rotate_left(25));
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(16));
        *a ^= *c;
        *a = a.wrapping_sub(c.rotate_left(4));
        *b ^= *a;
        *b = b.wrapping_sub(a.rotate_left(14));
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(24));
    }
    /// Little-endian word of up to four bytes (missing high bytes are zero, as the C masks).
    fn word(bytes: &[u8]) -> u32 {
        bytes
            .iter()
            .rev()
            .fold(0u32, |w, &b| (w << 8) | u32::from(b))
    }
    let init = 0xdead_beef_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(initval);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut rest = key;
    while rest.len() > 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    if rest.is_empty() {
        // Zero-length strings (and only those: the loop leaves 1..=12 bytes) skip the final mix.
        return c;
    }
    let at = |from: usize, to: usize| word(&rest[from.min(rest.len())..to.min(rest.len())]);
    a = a.wrapping_add(at(0, 4));
    b = b.wrapping_add(at(4, 8));
    c = c.wrapping_add(at(8, 12));
    last(&mut a, &mut b, &mut c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for h in KeyHash::ALL {
            assert_eq!(KeyHash::from_name(h.name()), Some(h));
        }
        assert_eq!(KeyHash::from_name("fnv1a-64"), None);
        assert_eq!(KeyHash::from_name("FNV1A_64"), None);
    }

    #[test]
    fn crc_check_values() {
        // The catalogue check values of "123456789".
        // nutcracker 0.5's crc16: the low 16 bits are CRC-16/XMODEM (bits only move up, so the
        // untruncated high bits never feed back), the rest is left-over shifted state.
        assert_eq!(CRC16_TABLE[1], 0x1021);
        assert_eq!(CRC16_TABLE[255], 0x1ef0);
        let xmodem = Crc::<u16>::new(&crc::CRC_16_XMODEM);
        assert_eq!(xmodem.checksum(b"123456789"), 0x31C3);
        for key in [&b"a"[..], b"ab", b"\xff\x01", b"123456789"] {
            let h = KeyHash::Crc16.hash(key);
            assert_eq!(h & 0xffff, u32::from(xmodem.checksum(key)));
        }
        assert_eq!(KeyHash::Crc16.hash(b"a"), u32::from(xmodem.checksum(b"a")));
        assert!(KeyHash::Crc16.hash(b"123456789") > 0xffff);
        assert_eq!(KeyHash::Crc32a.hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            KeyHash::Crc32.hash(b"123456789"),
            (0xCBF4_3926 >> 16) & 0x7fff
        );
    }

    #[test]
    fn ascii_fnv_matches_the_reference_functions() {
        // FNV's published test vectors for ASCII input (no sign extension involved).
        assert_eq!(KeyHash::Fnv1_32.hash(b"a"), 0x050c_5d7e);
        assert_eq!(KeyHash::Fnv1a32.hash(b"a"), 0xe40c_292c);
        assert_eq!(KeyHash::Fnv1a32.hash(b"foobar"), 0xbf9c_f968);
        // 64-bit FNV-1 of "foobar" is 0x340d8765a4dda9c2; twemproxy keeps the low half.
        assert_eq!(KeyHash::Fnv1_64.hash(b"foobar"), 0xa4dd_a9c2);
        // fnv1a_64 works in 32 bits with the truncated 64-bit constants; the low 32 bits of a
        // product depend only on the low 32 bits of its factors, so that is the low half of
        // 64-bit FNV-1a ("a": 0xaf63dc4c8601ec8c), and not 32-bit FNV-1a.
        assert_eq!(KeyHash::Fnv1a64.hash(b"a"), 0x8601_ec8c);
        assert_ne!(KeyHash::Fnv1a64.hash(b"a"), KeyHash::Fnv1a32.hash(b"a"));
        let mut h = 0x8422_2325u32;
        h ^= u32::from(b'a');
        h = h.wrapping_mul(0x1b3);
        assert_eq!(KeyHash::Fnv1a64.hash(b"a"), h);
    }

    #[test]
    fn high_bytes_are_sign_extended_where_twemproxy_does() {
        // 0xE9 through signed char is 0xFFFFFFE9.
        let mut h = FNV_32_INIT;
        h ^= 0xFFFF_FFE9;
        h = h.wrapping_mul(FNV_32_PRIME);
        assert_eq!(KeyHash::Fnv1a32.hash(&[0xE9]), h);
        // crc32 masks the byte, so no difference there: it equals the textbook CRC.
        assert_eq!(
            KeyHash::Crc32a.hash(&[0xE9]),
            CRC32.checksum(&[0xE9]),
            "crc32a reads uint8_t"
        );
    }

    #[test]
    fn murmur2_reference() {
        // MurmurHash2 of "" with twemproxy's seed (0xdeadbeef * 0 = 0): h = 0 mixed.
        assert_eq!(KeyHash::Murmur.hash(b""), 0);
    }

    #[test]
    fn jenkins_lookup3_reference() {
        // lookup3.c's driver5 self-test values.
        assert_eq!(hashlittle(b"", 0), 0xdead_beef);
        let text = b"Four score and seven years ago";
        assert_eq!(hashlittle(text, 0), 0x1777_0551);
        assert_eq!(hashlittle(text, 1), 0xcd62_8161);
        assert_eq!(KeyHash::Jenkins.hash(b""), 0xdead_beef + 13);
    }
}
