//! Load generator for ringcache and its peers (redis-server, memcached, twemproxy): N
//! connections, pipelining, uniform or Zipf keys, get/set mix, multi-get width, bounded
//! duration. Reports throughput, latency quantiles (HDR histogram), errors and hit ratio.
//!
//! `cargo bench --bench load -- --protocol resp --addr 127.0.0.1:6379 --pipeline 16`

mod options;

use std::sync::Arc;
use std::time::{Duration, Instant};

use options::{KeyPicker, Latency, Options, Protocol, Rng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Default)]
struct Totals {
    ops: u64,
    gets: u64,
    hits: u64,
    errors: u64,
    latency: Latency,
}

fn main() {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads)
        .enable_all()
        .build()
        .expect("runtime");
    let result = rt.block_on(run(opts.clone()));
    match result {
        Ok(_) if opts.fill_only => println!("stored {} keys", opts.keys),
        Ok((totals, elapsed)) => report(&opts, &totals, elapsed),
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(opts: Options) -> std::io::Result<(Totals, Duration)> {
    if opts.prefill || opts.fill_only {
        prefill(&opts).await?;
    }
    if opts.fill_only {
        return Ok((Totals::default(), Duration::ZERO));
    }
    let picker = Arc::new(KeyPicker::new(opts.keys, opts.distribution));
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut tasks = Vec::with_capacity(opts.connections);
    for c in 0..opts.connections {
        let opts = opts.clone();
        let picker = Arc::clone(&picker);
        tasks.push(tokio::spawn(async move {
            connection(&opts, &picker, c as u64 + 1, deadline).await
        }));
    }
    let mut totals = Totals::default();
    for t in tasks {
        let t = t.await.map_err(std::io::Error::other)??;
        totals.ops += t.ops;
        totals.gets += t.gets;
        totals.hits += t.hits;
        totals.errors += t.errors;
        totals.latency.merge(&t.latency);
    }
    Ok((totals, start.elapsed()))
}

/// Stores every key once (16 connections, pipelined) so that reads can hit.
async fn prefill(opts: &Options) -> std::io::Result<()> {
    let workers = 16.min(opts.keys as usize).max(1);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let opts = opts.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(opts.addr).await?;
            stream.set_nodelay(true)?;
            let value = vec![b'x'; opts.value_size];
            let mut out = Vec::new();
            let mut input = Vec::new();
            let mut i = w as u64;
            while i < opts.keys {
                out.clear();
                let mut n = 0;
                while n < 64 && i < opts.keys {
                    encode_set(opts.protocol, i, &value, &mut out);
                    i += workers as u64;
                    n += 1;
                }
                stream.write_all(&out).await?;
                let mut done = 0;
                while done < n {
                    match parse_reply(opts.protocol, &input) {
                        Some((len, _)) => {
                            input.drain(..len);
                            done += 1;
                        }
                        None => read_more(&mut stream, &mut input).await?,
                    }
                }
            }
            Ok::<(), std::io::Error>(())
        }));
    }
    for t in tasks {
        t.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}

async fn connection(
    opts: &Options,
    picker: &KeyPicker,
    seed: u64,
    deadline: Instant,
) -> std::io::Result<Totals> {
    let mut stream = TcpStream::connect(opts.addr).await?;
    stream.set_nodelay(true)?;
    let mut rng = Rng::new(seed);
    let value = vec![b'x'; opts.value_size];
    let mut totals = Totals::default();
    let mut out = Vec::with_capacity(4096);
    let mut input = Vec::with_capacity(64 * 1024);
    let mut is_get = vec![false; opts.pipeline];
    let mut keys = Vec::with_capacity(opts.mget);
    while Instant::now() < deadline {
        out.clear();
        for g in is_get.iter_mut() {
            *g = rng.next_f64() < opts.get_ratio;
            if *g {
                keys.clear();
                keys.extend((0..opts.mget).map(|_| picker.pick(&mut rng)));
                encode_get(opts.protocol, &keys, &mut out);
            } else {
                encode_set(opts.protocol, picker.pick(&mut rng), &value, &mut out);
            }
        }
        let sent = Instant::now();
        stream.write_all(&out).await?;
        for &g in &is_get {
            let (len, reply) = loop {
                if let Some(r) = parse_reply(opts.protocol, &input) {
                    break r;
                }
                read_more(&mut stream, &mut input).await?;
            };
            input.drain(..len);
            totals.latency.record(sent.elapsed());
            totals.ops += 1;
            match reply {
                Reply::Error => totals.errors += 1,
                Reply::Values(hits) if g => {
                    totals.gets += opts.mget as u64;
                    totals.hits += hits;
                }
                Reply::Values(_) => {}
            }
        }
    }
    Ok(totals)
}

async fn read_more(stream: &mut TcpStream, input: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 64 * 1024];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    input.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn encode_get(protocol: Protocol, keys: &[u64], out: &mut Vec<u8>) {
    match protocol {
        Protocol::Resp => {
            let cmd: &[u8] = if keys.len() == 1 { b"GET" } else { b"MGET" };
            out.extend_from_slice(format!("*{}\r\n${}\r\n", keys.len() + 1, cmd.len()).as_bytes());
            out.extend_from_slice(cmd);
            out.extend_from_slice(b"\r\n");
            for &k in keys {
                let mut key = Vec::with_capacity(16);
                options::key(k, &mut key);
                out.extend_from_slice(format!("${}\r\n", key.len()).as_bytes());
                out.extend_from_slice(&key);
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

fn encode_set(protocol: Protocol, k: u64, value: &[u8], out: &mut Vec<u8>) {
    let mut key = Vec::with_capacity(16);
    options::key(k, &mut key);
    match protocol {
        Protocol::Resp => {
            out.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n", key.len()).as_bytes());
            out.extend_from_slice(&key);
            out.extend_from_slice(format!("\r\n${}\r\n", value.len()).as_bytes());
        }
        Protocol::Memcache => {
            out.extend_from_slice(b"set ");
            out.extend_from_slice(&key);
            out.extend_from_slice(format!(" 0 0 {}\r\n", value.len()).as_bytes());
        }
    }
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// What one reply said.
enum Reply {
    /// An error reply.
    Error,
    /// A success; for reads, how many keys hit.
    Values(u64),
}

/// Parses one complete reply from the front of `buf`: (bytes used, reply), or None if more
/// bytes are needed.
fn parse_reply(protocol: Protocol, buf: &[u8]) -> Option<(usize, Reply)> {
    match protocol {
        Protocol::Resp => parse_resp(buf, 0),
        Protocol::Memcache => parse_memcache(buf),
    }
}

fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

fn parse_resp(buf: &[u8], at: usize) -> Option<(usize, Reply)> {
    let end = line_end(buf, at)?;
    let line = &buf[at + 1..end];
    let number = || -> i64 {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    match buf.get(at)? {
        b'+' | b':' => Some((end + 2, Reply::Values(0))),
        b'-' => Some((end + 2, Reply::Error)),
        b'$' => {
            let n = number();
            if n < 0 {
                return Some((end + 2, Reply::Values(0)));
            }
            let stop = end + 2 + n as usize + 2;
            (buf.len() >= stop).then_some((stop, Reply::Values(1)))
        }
        b'*' => {
            let n = number();
            let mut pos = end + 2;
            let mut hits = 0;
            for _ in 0..n.max(0) {
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
            let bytes: usize = rest
                .rsplit(|&b| b == b' ')
                .next()
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| t.parse().ok())?;
            pos = end + 2 + bytes + 2;
            if buf.len() < pos {
                return None;
            }
            hits += 1;
            continue;
        }
        return Some((end + 2, Reply::Error));
    }
}

fn report(opts: &Options, t: &Totals, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let throughput = t.ops as f64 / secs;
    let hit_ratio = if t.gets == 0 {
        0.0
    } else {
        t.hits as f64 / t.gets as f64
    };
    let (p50, p99, p999) = (
        t.latency.quantile_us(0.5),
        t.latency.quantile_us(0.99),
        t.latency.quantile_us(0.999),
    );
    if opts.json {
        println!(
            "{{\"ops\":{},\"samples\":{},\"seconds\":{secs:.3},\"throughput\":{throughput:.0},\"p50_us\":{p50},\"p99_us\":{p99},\"p999_us\":{p999},\"errors\":{},\"hit_ratio\":{hit_ratio:.4}}}",
            t.ops,
            t.latency.count(),
            t.errors
        );
    } else {
        println!(
            "{:?} {} conns={} pipeline={} mget={} keys={} get_ratio={}",
            opts.protocol,
            opts.addr,
            opts.connections,
            opts.pipeline,
            opts.mget,
            opts.keys,
            opts.get_ratio
        );
        println!(
            "  {throughput:.0} ops/s over {secs:.1}s  p50 {p50}us  p99 {p99}us  p999 {p999}us  errors {}  hit ratio {hit_ratio:.3}",
            t.errors
        );
    }
}
