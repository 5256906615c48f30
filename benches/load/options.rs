//! Load generator options, key distributions and the latency histogram wrapper. Kept apart from
//! the runner so that a unit test (`tests/loadgen.rs`) can check them without a server.

use std::net::SocketAddr;
use std::time::Duration;

/// Wire protocol spoken to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Redis RESP2 (GET/SET/MGET).
    Resp,
    /// memcached text protocol (get/set).
    Memcache,
}

/// How keys are picked from the key space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// Zipf with exponent `s` (0.99 is the usual "skewed cache" workload).
    Zipf(f64),
}

/// Everything a run needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub protocol: Protocol,
    pub addr: SocketAddr,
    pub connections: usize,
    pub pipeline: usize,
    pub keys: u64,
    pub distribution: Distribution,
    pub value_size: usize,
    /// Fraction of operations that are reads, 0.0..=1.0.
    pub get_ratio: f64,
    /// Keys per read (1 = GET/get, more = MGET/multi-key get).
    pub mget: usize,
    pub duration: Duration,
    /// Store every key once before measuring, so that reads can hit.
    pub prefill: bool,
    /// Tokio worker threads of the generator.
    pub threads: usize,
    /// Print one JSON object instead of the human summary.
    pub json: bool,
    /// Only store every key once, then exit (memory measurements).
    pub fill_only: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            protocol: Protocol::Resp,
            addr: SocketAddr::from(([127, 0, 0, 1], 6379)),
            connections: 50,
            pipeline: 1,
            keys: 100_000,
            distribution: Distribution::Uniform,
            value_size: 100,
            get_ratio: 0.9,
            mget: 1,
            duration: Duration::from_secs(10),
            prefill: true,
            threads: 1,
            json: false,
            fill_only: false,
        }
    }
}

pub const USAGE: &str = "\
usage: cargo bench --bench load -- [options]
  --protocol resp|memcache   wire protocol (default resp)
  --addr HOST:PORT           server address (default 127.0.0.1:6379)
  --connections N            concurrent connections (default 50)
  --pipeline N               requests in flight per connection (default 1)
  --keys N                   key space size (default 100000)
  --distribution uniform|zipf[:S]   key popularity (default uniform; zipf means S=0.99)
  --value-size BYTES         value size for writes (default 100)
  --get-ratio R              fraction of reads, 0..1 (default 0.9)
  --mget N                   keys per read (default 1)
  --duration SECS[s|ms]      measured run time (default 10s)
  --no-prefill               do not store every key before measuring
  --threads N                generator worker threads (default 1)
  --json                     print a JSON summary
  --fill-only                store every key once and exit (for memory measurements)";

impl Options {
    /// Parses command-line arguments (without the program name). Unknown arguments that cargo
    /// passes to bench targets (`--bench`) are ignored.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, String> {
        let mut o = Options::default();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--bench" => {}
                "--protocol" => {
                    o.protocol = match value("--protocol")?.as_str() {
                        "resp" | "redis" => Protocol::Resp,
                        "memcache" | "memcached" => Protocol::Memcache,
                        other => return Err(format!("unknown protocol {other:?}")),
                    }
                }
                "--addr" => {
                    let v = value("--addr")?;
                    o.addr = v.parse().map_err(|_| format!("bad address {v:?}"))?;
                }
                "--connections" => o.connections = positive(&value("--connections")?)?,
                "--pipeline" => o.pipeline = positive(&value("--pipeline")?)?,
                "--keys" => o.keys = positive(&value("--keys")?)? as u64,
                "--distribution" => {
                    let v = value("--distribution")?;
                    o.distribution = match v.split_once(':') {
                        None if v == "uniform" => Distribution::Uniform,
                        None if v == "zipf" => Distribution::Zipf(0.99),
                        Some(("zipf", s)) => {
                            let s: f64 =
                                s.parse().map_err(|_| format!("bad zipf exponent {s:?}"))?;
                            if !(s > 0.0 && s < 10.0) {
                                return Err(format!("zipf exponent {s} out of range"));
                            }
                            Distribution::Zipf(s)
                        }
                        _ => return Err(format!("unknown distribution {v:?}")),
                    }
                }
                "--value-size" => o.value_size = positive(&value("--value-size")?)?,
                "--get-ratio" => {
                    let v = value("--get-ratio")?;
                    o.get_ratio = v.parse().map_err(|_| format!("bad ratio {v:?}"))?;
                    if !(0.0..=1.0).contains(&o.get_ratio) {
                        return Err(format!("get ratio {v} is not within 0..1"));
                    }
                }
                "--mget" => o.mget = positive(&value("--mget")?)?,
                "--duration" => o.duration = duration(&value("--duration")?)?,
                "--no-prefill" => o.prefill = false,
                "--threads" => o.threads = positive(&value("--threads")?)?,
                "--json" => o.json = true,
                "--fill-only" => o.fill_only = true,
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        Ok(o)
    }
}

fn positive(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{v:?} is not a positive number")),
    }
}

fn duration(v: &str) -> Result<Duration, String> {
    let (num, unit) = match v.strip_suffix("ms") {
        Some(n) => (n, 1),
        None => (v.strip_suffix('s').unwrap_or(v), 1000),
    };
    match num.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_millis(n * unit)),
        _ => Err(format!("bad duration {v:?}")),
    }
}

/// A small fast PRNG (xorshift64*): the generator must not spend its time in the RNG.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks key indexes in `0..keys` by a distribution. Zipf uses a precomputed CDF and a binary
/// search: exact, and O(log n) per draw.
pub struct KeyPicker {
    keys: u64,
    cdf: Option<Vec<f64>>,
}

impl KeyPicker {
    pub fn new(keys: u64, distribution: Distribution) -> KeyPicker {
        let cdf = match distribution {
            Distribution::Uniform => None,
            Distribution::Zipf(s) => {
                let mut acc = 0.0;
                let mut cdf: Vec<f64> = (1..=keys)
                    .map(|rank| {
                        acc += 1.0 / (rank as f64).powf(s);
                        acc
                    })
                    .collect();
                for p in &mut cdf {
                    *p /= acc;
                }
                Some(cdf)
            }
        };
        KeyPicker { keys, cdf }
    }

    pub fn pick(&self, rng: &mut Rng) -> u64 {
        match &self.cdf {
            None => rng.next_u64() % self.keys,
            Some(cdf) => {
                let u = rng.next_f64();
                (cdf.partition_point(|&p| p < u) as u64).min(self.keys - 1)
            }
        }
    }
}

/// Length of every key [`key`] makes.
pub const KEY_LEN: usize = 16;

/// The key for index `i`: `key:` and 12 digits, [`KEY_LEN`] bytes.
pub fn key(i: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"key:");
    let mut digits = [b'0'; 12];
    let mut n = i;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
}

/// Latency histogram in microseconds (1 µs .. 60 s, 3 significant digits).
pub struct Latency(pub hdrhistogram::Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"))
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, 60_000_000);
        let _ = self.0.record(us);
    }

    pub fn merge(&mut self, other: &Latency) {
        let _ = self.0.add(&other.0);
    }

    /// The value at `q` (0..1), in microseconds.
    pub fn quantile_us(&self, q: f64) -> u64 {
        self.0.value_at_quantile(q)
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }
}
