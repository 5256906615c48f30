//! The generator's side of the wire: request encoding, reply parsing and the receive buffer.
//!
//! Kept cheap on purpose: at pipeline 1 the generator does as many syscalls per request as the
//! server, so any work of its own shows up as a lower ceiling on every target alike. No
//! allocation or zeroing per request; replies are parsed in place.

use std::io;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::options::{self, KEY_LEN, Protocol};

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 64 * 1024;

/// What one reply said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// An error reply.
    Error,
    /// A success; for reads, how many keys hit.
    Values(u64),
}

/// Received bytes not parsed yet: `buf[pos..]`.
#[derive(Default)]
pub struct Input {
    buf: Vec<u8>,
    pos: usize,
}

impl Input {
    /// Parses the next complete reply, or None if more bytes are needed.
    pub fn next_reply(&mut self, protocol: Protocol) -> Option<Reply> {
        let (len, reply) = parse_reply(protocol, &self.buf[self.pos..])?;
        self.pos += len;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        Some(reply)
    }

    /// Appends what one read returns (into spare capacity: nothing is zeroed). EOF is an error.
    pub async fn read_more(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        if self.pos > 0 {
            // Only a partial reply is left; move it to the front before reading more.
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        if stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Appends bytes as if read (`tests/loadgen.rs`).
    #[allow(dead_code)]
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
}

/// Appends a read of `keys`: GET/MGET or `get k1 k2 ...`.
pub fn encode_get(protocol: Protocol, keys: &[u64], out: &mut Vec<u8>) {
    match protocol {
        Protocol::Resp => {
            out.push(b'*');
            push_decimal(out, keys.len() as u64 + 1);
            out.extend_from_slice(if keys.len() == 1 {
                b"\r\n$3\r\nGET\r\n"
            } else {
                b"\r\n$4\r\nMGET\r\n"
            });
            for &k in keys {
                push_bulk_len(out, KEY_LEN);
                options::key(k, out);
                out.extend_from_slice(b"\r\n");
            }
        }
        Protocol::Memcache => {
            out.extend_from_slice(b"get");
            for &k in keys {
                out.push(b' ');
                options::key(k, out);
            }
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Appends a write of `value` under key `k`.
pub fn encode_set(protocol: Protocol, k: u64, value: &[u8], out: &mut Vec<u8>) {
    match protocol {
        Protocol::Resp => {
            out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
            push_bulk_len(out, KEY_LEN);
            options::key(k, out);
            out.extend_from_slice(b"\r\n");
            push_bulk_len(out, value.len());
        }
        Protocol::Memcache => {
            out.extend_from_slice(b"set ");
            options::key(k, out);
            out.extend_from_slice(b" 0 0 ");
            push_decimal(out, value.len() as u64);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn push_bulk_len(out: &mut Vec<u8>, len: usize) {
    out.push(b'$');
    push_decimal(out, len as u64);
    out.extend_from_slice(b"\r\n");
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Parses one complete reply from the front of `buf`: (bytes used, reply), or None if more
/// bytes are needed.
pub fn parse_reply(protocol: Protocol, buf: &[u8]) -> Option<(usize, Reply)> {
    match protocol {
        Protocol::Resp => parse_resp(buf, 0),
        Protocol::Memcache => parse_memcache(buf),
    }
}

/// Index of the `\r` of the first CRLF at or after `from`.
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let cr = at + memchr::memchr(b'\r', buf.get(at..)?)?;
        match buf.get(cr + 1)? {
            b'\n' => return Some(cr),
            _ => at = cr + 1,
        }
    }
}

/// A decimal line such as `-1` or `100`; 0 if it is not a number.
fn decimal(line: &[u8]) -> i64 {
    let (neg, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, line),
    };
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return 0;
        }
        n = n.saturating_mul(10).saturating_add(i64::from(d - b'0'));
    }
    if neg { -n } else { n }
}

fn parse_resp(buf: &[u8], at: usize) -> Option<(usize, Reply)> {
    let end = line_end(buf, at)?;
    let line = &buf[at + 1..end];
    match buf.get(at)? {
        b'+' | b':' => Some((end + 2, Reply::Values(0))),
        b'-' => Some((end + 2, Reply::Error)),
        b'$' => {
            let n = decimal(line);
            if n < 0 {
                return Some((end + 2, Reply::Values(0)));
            }
            let stop = end + 2 + n as usize + 2;
            (buf.len() >= stop).then_some((stop, Reply::Values(1)))
        }
        b'*' => {
            let mut pos = end + 2;
            let mut hits = 0;
            for _ in 0..decimal(line).max(0) {
                let (next, r) = parse_resp(buf, pos)?;
                if let Reply::Values(h) = r {
                    hits += h;
                }
                pos = next;
            }
            Some((pos, Reply::Values(hits)))
        }
        _ => Some((end + 2, Reply::Error)),
    }
}

fn parse_memcache(buf: &[u8]) -> Option<(usize, Reply)> {
    let mut pos = 0;
    let mut hits = 0;
    loop {
        let end = line_end(buf, pos)?;
        let line = &buf[pos..end];
        if line == b"END" {
            return Some((end + 2, Reply::Values(hits)));
        }
        if line == b"STORED" {
            return Some((end + 2, Reply::Values(0)));
        }
        if let Some(rest) = line.strip_prefix(b"VALUE ") {
            let bytes = rest.rsplit(|&b| b == b' ').next().map(decimal)?;
            pos = end + 2 + usize::try_from(bytes).ok()? + 2;
            if buf.len() < pos {
                return None;
            }
            hits += 1;
            continue;
        }
        return Some((end + 2, Reply::Error));
    }
}
