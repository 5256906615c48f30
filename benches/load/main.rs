//! Load generator for ringcache and its peers (redis-server, memcached, twemproxy): N
//! connections, pipelining, uniform or Zipf keys, get/set mix, multi-get width, bounded
//! duration. Reports throughput, latency quantiles (HDR histogram), errors and hit ratio.
//!
//! `cargo bench --bench load -- --protocol resp --addr 127.0.0.1:6379 --pipeline 16`

mod options;
mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use options::{KeyPicker, Latency, Options, Rng};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wire::{Input, Reply, encode_get, encode_set};

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
    // One thread: a current-thread runtime, so that the generator pays no cross-thread wakeups.
    let rt = if opts.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(opts.threads);
        b
    }
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
            let mut input = Input::default();
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
                    match input.next_reply(opts.protocol) {
                        Some(_) => done += 1,
                        None => input.read_more(&mut stream).await?,
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
    let mut input = Input::default();
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
            let reply = loop {
                if let Some(r) = input.next_reply(opts.protocol) {
                    break r;
                }
                input.read_more(&mut stream).await?;
            };
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
