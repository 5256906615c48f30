//! The loopback floor: a server that answers RESP GET/SET and memcached get/set without storing
//! anything, in one thread. Each wake-up reads every ready connection once, then writes each
//! one's replies back to back before the next `epoll_wait`, as redis-server does. What it
//! reaches is the most any server can reach on this machine with this load: the kernel's cost
//! of moving requests and replies.
//!
//! Every GET is a hit with a `value_size`-byte value; every SET is stored. Framing is complete
//! (requests split across reads wait for their rest), so pipelined and multi-key loads work.
//! Anything else gets an error reply. A write the socket does not take at once waits for the
//! socket (the floor serves well-behaved load generators, not stalled peers).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

/// Which protocol the floor answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Resp,
    Memcache,
}

/// The epoll token of the listener (connections use their fd).
const LISTENER: u64 = u64::MAX;
const READ_CHUNK: usize = 16 * 1024;

/// One connection: its stream, its unanswered input (`buf[..filled]`; the rest of `buf` is
/// room to read into, kept initialised so that a read costs no zeroing) and its replies not yet
/// written.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    filled: usize,
    out: Vec<u8>,
}

/// The fixed parts of the replies, built once.
pub struct Replies {
    /// RESP: `$<n>\r\n<value>\r\n`.
    bulk: Vec<u8>,
    /// memcached: ` 0 <n>\r\n<value>\r\n`, after `VALUE <key>`.
    item_tail: Vec<u8>,
}

impl Replies {
    /// Replies carrying a value of `value_size` bytes.
    pub fn new(value_size: usize) -> Replies {
        let value = vec![b'v'; value_size];
        let bulk = [format!("${value_size}\r\n").as_bytes(), &value, b"\r\n"].concat();
        let item_tail = [format!(" 0 {value_size}\r\n").as_bytes(), &value, b"\r\n"].concat();
        Replies { bulk, item_tail }
    }
}

/// Serves `listener` forever (until the process ends).
pub fn serve(listener: TcpListener, proto: Proto, value_size: usize) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let ep = Epoll::new()?;
    ep.add(listener.as_raw_fd(), LISTENER)?;
    let replies = Replies::new(value_size);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut replied: Vec<usize> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    loop {
        // Replies go out after every ready connection has been read, back to back, as
        // redis-server writes them before it sleeps: a client on many connections then wakes
        // once per burst, not once per reply.
        for fd in replied.drain(..) {
            let Some(conn) = conns[fd].as_mut() else {
                continue;
            };
            if write_all(&mut conn.stream, &conn.out).is_ok() {
                conn.out.clear();
            } else {
                conns[fd] = None;
            }
        }
        let ready = ep.wait(&mut events)?;
        for event in &events[..ready] {
            let token = event.u64;
            if token == LISTENER {
                accept_all(&listener, &ep, &mut conns)?;
                continue;
            }
            let fd = token as usize;
            let Some(conn) = conns.get_mut(fd).and_then(Option::as_mut) else {
                continue;
            };
            if conn.buf.len() - conn.filled < READ_CHUNK {
                conn.buf.resize(conn.filled + READ_CHUNK, 0);
            }
            match conn.stream.read(&mut conn.buf[conn.filled..]) {
                Ok(0) | Err(_) => {
                    conns[fd] = None;
                    continue;
                }
                Ok(n) => conn.filled += n,
            }
            let used = answer(proto, &conn.buf[..conn.filled], &replies, &mut conn.out);
            conn.buf.copy_within(used..conn.filled, 0);
            conn.filled -= used;
            if !conn.out.is_empty() {
                replied.push(fd);
            }
        }
    }
}

fn accept_all(listener: &TcpListener, ep: &Epoll, conns: &mut Vec<Option<Conn>>) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nodelay(true)?;
                stream.set_nonblocking(true)?;
                let fd = stream.as_raw_fd();
                ep.add(fd, fd as u64)?;
                let fd = fd as usize;
                if conns.len() <= fd {
                    conns.resize_with(fd + 1, || None);
                }
                conns[fd] = Some(Conn {
                    stream,
                    buf: vec![0; 2 * READ_CHUNK],
                    filled: 0,
                    out: Vec::with_capacity(READ_CHUNK),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `out`, waiting for the socket when it is full.
fn write_all(stream: &mut TcpStream, mut out: &[u8]) -> io::Result<()> {
    while !out.is_empty() {
        match stream.write(out) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => out = &out[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut pfd = libc::pollfd {
                    fd: stream.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the duration of the call.
                if unsafe { libc::poll(&mut pfd, 1, -1) } < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Answers every complete request at the front of `input` into `out`; returns the bytes used.
pub fn answer(proto: Proto, input: &[u8], replies: &Replies, out: &mut Vec<u8>) -> usize {
    let mut used = 0;
    loop {
        let step = match proto {
            Proto::Resp => resp(&input[used..], replies, out),
            Proto::Memcache => memcache(&input[used..], replies, out),
        };
        match step {
            Some(n) => used += n,
            None => return used,
        }
    }
}

/// The line at the front of `buf` without its `\r\n`, and the bytes it takes with it.
fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    let end = if nl > 0 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some((&buf[..end], nl + 1))
}

fn number(digits: &[u8]) -> Option<usize> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// One RESP request (an array of bulk strings): GET answers the value, anything else `+OK`.
fn resp(buf: &[u8], replies: &Replies, out: &mut Vec<u8>) -> Option<usize> {
    let (head, mut at) = line(buf)?;
    let Some(count) = head.strip_prefix(b"*").and_then(number) else {
        out.extend_from_slice(b"-ERR the floor speaks RESP arrays only\r\n");
        return Some(at);
    };
    let mut first: &[u8] = b"";
    for i in 0..count {
        let (len_line, n) = line(&buf[at..])?;
        let len = len_line.strip_prefix(b"$").and_then(number)?;
        let start = at + n;
        if buf.len() < start + len + 2 {
            return None;
        }
        if i == 0 {
            first = &buf[start..start + len];
        }
        at = start + len + 2;
    }
    if first.eq_ignore_ascii_case(b"GET") {
        out.extend_from_slice(&replies.bulk);
    } else {
        out.extend_from_slice(b"+OK\r\n");
    }
    Some(at)
}

/// One memcached request: `get`/`gets` answer every key, `set` is stored, anything else `ERROR`.
fn memcache(buf: &[u8], replies: &Replies, out: &mut Vec<u8>) -> Option<usize> {
    let (cmd_line, n) = line(buf)?;
    let mut tokens = cmd_line.split(|&b| b == b' ').filter(|t| !t.is_empty());
    match tokens.next() {
        Some(b"get" | b"gets") => {
            for key in tokens {
                out.extend_from_slice(b"VALUE ");
                out.extend_from_slice(key);
                out.extend_from_slice(&replies.item_tail);
            }
            out.extend_from_slice(b"END\r\n");
            Some(n)
        }
        Some(b"set") => {
            let Some(len) = tokens.nth(3).and_then(number) else {
                out.extend_from_slice(b"CLIENT_ERROR bad command line format\r\n");
                return Some(n);
            };
            if buf.len() < n + len + 2 {
                return None;
            }
            out.extend_from_slice(b"STORED\r\n");
            Some(n + len + 2)
        }
        _ => {
            out.extend_from_slice(b"ERROR\r\n");
            Some(n)
        }
    }
}

/// A level-triggered epoll instance watching for readable sockets.
struct Epoll(RawFd);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; the fd is owned by the returned value.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll(fd))
    }

    fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is valid for the call; the kernel copies it.
        if unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self, events: &mut [libc::epoll_event]) -> io::Result<usize> {
        loop {
            let max = i32::try_from(events.len()).unwrap_or(i32::MAX);
            // SAFETY: `events` is valid for `max` entries.
            let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), max, -1) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: the fd is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}
