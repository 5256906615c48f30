//! The load generator's argument parsing, key distributions, histogram and wire encoding (the
//! generator itself runs only as a bench target).

#[path = "../benches/load/options.rs"]
#[allow(dead_code)]
mod options;
#[path = "../benches/load/wire.rs"]
#[allow(dead_code)]
mod wire;

use std::time::Duration;

use options::{Distribution, KeyPicker, Latency, Options, Protocol, Rng};
use wire::{Input, Reply, encode_get, encode_set, parse_reply};

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
    assert_eq!(k.len(), options::KEY_LEN);
}

#[test]
fn requests_are_encoded_as_the_servers_expect() {
    let mut out = Vec::new();
    encode_get(Protocol::Resp, &[7], &mut out);
    encode_get(Protocol::Resp, &[1, 2], &mut out);
    encode_set(Protocol::Resp, 3, b"vv", &mut out);
    assert_eq!(
        out,
        b"*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000007\r\n\
          *3\r\n$4\r\nMGET\r\n$16\r\nkey:000000000001\r\n$16\r\nkey:000000000002\r\n\
          *3\r\n$3\r\nSET\r\n$16\r\nkey:000000000003\r\n$2\r\nvv\r\n"
    );
    out.clear();
    encode_get(Protocol::Memcache, &[1, 2], &mut out);
    encode_set(Protocol::Memcache, 3, &[b'x'; 100], &mut out);
    let mut want =
        b"get key:000000000001 key:000000000002\r\nset key:000000000003 0 0 100\r\n".to_vec();
    want.extend_from_slice(&[b'x'; 100]);
    want.extend_from_slice(b"\r\n");
    assert_eq!(out, want);
}

/// Reply bytes and what parsing them must give: (bytes used, reply), or None for "read more".
type Case = (&'static [u8], Option<(usize, Reply)>);

#[test]
fn replies_are_parsed_whole_or_not_at_all() {
    let resp: &[Case] = &[
        (b"+OK\r\n", Some((5, Reply::Values(0)))),
        (b"-ERR no\r\n", Some((9, Reply::Error))),
        (b"$-1\r\n", Some((5, Reply::Values(0)))),
        (b"$3\r\na\rc\r\n", Some((9, Reply::Values(1)))),
        (b"$3\r\nabc\r", None),
        (
            b"*3\r\n$1\r\na\r\n$-1\r\n$1\r\nb\r\n",
            Some((23, Reply::Values(2))),
        ),
        (b"*3\r\n$1\r\na\r\n$-1\r\n", None),
        (b"+OK\r", None),
    ];
    for (bytes, want) in resp {
        assert_eq!(
            parse_reply(Protocol::Resp, bytes),
            *want,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    let mc: &[Case] = &[
        (b"STORED\r\n", Some((8, Reply::Values(0)))),
        (b"END\r\n", Some((5, Reply::Values(0)))),
        (
            b"VALUE k 0 2\r\nab\r\nVALUE j 0 1\r\nc\r\nEND\r\n",
            Some((38, Reply::Values(2))),
        ),
        (b"VALUE k 0 2\r\nab\r\n", None),
        (b"SERVER_ERROR out of memory\r\n", Some((28, Reply::Error))),
    ];
    for (bytes, want) in mc {
        assert_eq!(
            parse_reply(Protocol::Memcache, bytes),
            *want,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn input_hands_out_replies_across_reads() {
    let mut input = Input::default();
    input.push(b"+OK\r\n$2\r\nh");
    assert_eq!(input.next_reply(Protocol::Resp), Some(Reply::Values(0)));
    assert_eq!(input.next_reply(Protocol::Resp), None);
    input.push(b"i\r\n$-1\r\n");
    assert_eq!(input.next_reply(Protocol::Resp), Some(Reply::Values(1)));
    assert_eq!(input.next_reply(Protocol::Resp), Some(Reply::Values(0)));
    assert_eq!(input.next_reply(Protocol::Resp), None);
}
