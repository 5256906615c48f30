//! The load generator's argument parsing, key distributions and histogram (the generator itself
//! runs only as a bench target).

#[path = "../benches/load/options.rs"]
#[allow(dead_code)]
mod options;

use std::time::Duration;

use options::{Distribution, KeyPicker, Latency, Options, Protocol, Rng};

fn parse(args: &[&str]) -> Result<Options, String> {
    Options::parse(args.iter().map(|s| s.to_string()))
}

#[test]
fn parses_every_option() {
    let o = parse(&[
        "--bench",
        "--protocol",
        "memcache",
        "--addr",
        "127.0.0.1:11211",
        "--connections",
        "8",
        "--pipeline",
        "16",
        "--keys",
        "1000",
        "--distribution",
        "zipf:0.8",
        "--value-size",
        "32",
        "--get-ratio",
        "0.5",
        "--mget",
        "10",
        "--duration",
        "250ms",
        "--no-prefill",
        "--threads",
        "2",
        "--json",
        "--fill-only",
    ])
    .expect("valid");
    assert_eq!(o.protocol, Protocol::Memcache);
    assert_eq!(o.addr.port(), 11211);
    assert_eq!(
        (o.connections, o.pipeline, o.keys, o.mget),
        (8, 16, 1000, 10)
    );
    assert_eq!(o.distribution, Distribution::Zipf(0.8));
    assert_eq!(o.value_size, 32);
    assert_eq!(o.get_ratio, 0.5);
    assert_eq!(o.duration, Duration::from_millis(250));
    assert!(!o.prefill && o.json && o.fill_only);
    assert_eq!(o.threads, 2);
    assert_eq!(
        parse(&["--duration", "3"]).expect("secs").duration,
        Duration::from_secs(3)
    );
    assert_eq!(
        parse(&["--distribution", "zipf"])
            .expect("zipf")
            .distribution,
        Distribution::Zipf(0.99)
    );
    assert_eq!(parse(&[]).expect("defaults"), Options::default());
}

#[test]
fn rejects_bad_options() {
    for args in [
        &["--protocol", "http"][..],
        &["--connections", "0"],
        &["--get-ratio", "1.5"],
        &["--addr", "nowhere"],
        &["--duration", "fast"],
        &["--distribution", "zipf:-1"],
        &["--pipeline"],
        &["--frobnicate"],
    ] {
        assert!(parse(args).is_err(), "{args:?} was accepted");
    }
}

#[test]
fn zipf_is_skewed_and_uniform_is_not() {
    let mut rng = Rng::new(7);
    let zipf = KeyPicker::new(1000, Distribution::Zipf(0.99));
    let uniform = KeyPicker::new(1000, Distribution::Uniform);
    let (mut z0, mut u0) = (0, 0);
    for _ in 0..100_000 {
        let z = zipf.pick(&mut rng);
        let u = uniform.pick(&mut rng);
        assert!(z < 1000 && u < 1000);
        z0 += u64::from(z == 0);
        u0 += u64::from(u == 0);
    }
    // Rank 1 of Zipf(0.99) over 1000 keys has about 13% of the mass; uniform has 0.1%.
    assert!((11_000..15_000).contains(&z0), "zipf rank-1 share {z0}");
    assert!(u0 < 300, "uniform key-0 share {u0}");
}

#[test]
fn histogram_quantiles() {
    let mut a = Latency::default();
    for us in 1..=1000u64 {
        a.record(Duration::from_micros(us));
    }
    let mut b = Latency::default();
    b.record(Duration::from_secs(2));
    a.merge(&b);
    assert_eq!(a.count(), 1001);
    let p50 = a.quantile_us(0.5);
    assert!((495..=505).contains(&p50), "p50 {p50}");
    let p99 = a.quantile_us(0.99);
    assert!((985..=995).contains(&p99), "p99 {p99}");
    let max = a.quantile_us(1.0);
    assert!((1_999_000..=2_001_000).contains(&max), "max {max}");
}

#[test]
fn keys_are_fixed_width() {
    let mut k = Vec::new();
    options::key(42, &mut k);
    assert_eq!(k, b"key:000000000042");
}
