//! Geo against a real redis-server with random data: thousands of points (clusters, exact
//! duplicates, points near the poles and the antimeridian) GEOADDed to both servers, then
//! random GEOSEARCH / GEORADIUS / GEORADIUSBYMEMBER queries (circles and boxes, every unit,
//! ASC/DESC, COUNT with and without ANY, WITHDIST/WITHCOORD/WITHHASH), GEOSEARCHSTORE into
//! destinations on other nodes, GEODIST, GEOPOS and GEOHASH: every reply must be identical.
//! And GEOADD / GEOSEARCHSTORE wake a client blocked in BZPOPMIN on their key.

mod common;

use common::redis_server::RedisServer;
use common::{THREE_NODES, TestServer};

fn connect(addr: std::net::SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Runs `cmd` on both servers; the replies (or errors) must be equal.
fn same(
    want: &mut redis::Connection,
    got: &mut redis::Connection,
    cmd: &redis::Cmd,
    what: &str,
) -> redis::Value {
    let a: redis::RedisResult<redis::Value> = cmd.query(want);
    let b: redis::RedisResult<redis::Value> = cmd.query(got);
    match (&a, &b) {
        (Ok(x), Ok(y)) => {
            // The first differing element, not two walls of text.
            if let (redis::Value::Array(p), redis::Value::Array(q)) = (x, y) {
                for (i, (u, w)) in p.iter().zip(q).enumerate() {
                    assert_eq!(u, w, "{what}: element {i} of {} / {}", p.len(), q.len());
                }
            }
            assert_eq!(x, y, "{what}")
        }
        (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string(), "{what}"),
        _ => panic!("{what}: redis {a:?}, ringcache {b:?}"),
    }
    a.unwrap_or(redis::Value::Nil)
}

#[test]
fn random_searches_answer_as_redis_answers() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = TestServer::start(THREE_NODES);
    let mut want = connect(redis.addr);
    let mut got = connect(server.resp);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    // Points: a few clusters, uniform ones, exact duplicates, extreme places.
    let mut points: Vec<(f64, f64)> = Vec::new();
    let centers = [
        (2.35, 48.86),
        (13.4, 52.5),
        (-73.9, 40.7),
        (151.2, -33.9),
        (179.9, 0.0),
    ];
    for i in 0..3000 {
        let p = match i % 6 {
            0..=2 => {
                let (lon, lat) = centers[rng.below(centers.len() as u64) as usize];
                (
                    (lon + rng.uniform(-2.0, 2.0)).clamp(-180.0, 180.0),
                    lat + rng.uniform(-2.0, 2.0),
                )
            }
            3 => (rng.uniform(-180.0, 180.0), rng.uniform(-85.0, 85.0)),
            4 if !points.is_empty() => points[rng.below(points.len() as u64) as usize],
            _ => (
                rng.pick(&["-180", "180", "0", "179.99", "-179.99"])
                    .parse()
                    .expect("f64"),
                rng.uniform(-85.05, 85.05),
            ),
        };
        points.push(p);
    }
    for chunk in points.chunks(300).enumerate() {
        let mut cmd = redis::cmd("GEOADD");
        cmd.arg("geo:src");
        for (j, (lon, lat)) in chunk.1.iter().enumerate() {
            cmd.arg(format!("{lon:.6}"))
                .arg(format!("{lat:.6}"))
                .arg(format!("m{}", chunk.0 * 300 + j));
        }
        same(&mut want, &mut got, &cmd, "GEOADD");
    }

    let units = ["m", "km", "mi", "ft"];
    for round in 0..600 {
        let mut cmd;
        let (lon, lat) = points[rng.below(points.len() as u64) as usize];
        let member = format!("m{}", rng.below(points.len() as u64 + 20));
        let unit = rng.pick(&units);
        let scale = match unit {
            "m" => 1000.0,
            "ft" => 3000.0,
            _ => 1.0,
        };
        let radius = format!("{:.3}", rng.uniform(0.0, 800.0) * scale);
        let kind = rng.below(5);
        let store = kind == 4;
        if kind == 0 {
            cmd = redis::cmd("GEORADIUS");
            cmd.arg("geo:src")
                .arg(format!("{lon:.5}"))
                .arg(format!("{lat:.5}"));
            cmd.arg(&radius).arg(unit);
        } else if kind == 1 {
            cmd = redis::cmd("GEORADIUSBYMEMBER_RO");
            cmd.arg("geo:src").arg(&member).arg(&radius).arg(unit);
        } else {
            cmd = redis::cmd(if store { "GEOSEARCHSTORE" } else { "GEOSEARCH" });
            if store {
                cmd.arg(format!("geo:dst{}", round % 7));
            }
            cmd.arg("geo:src");
            if rng.below(2) == 0 {
                cmd.arg("FROMMEMBER").arg(&member);
            } else {
                cmd.arg("FROMLONLAT")
                    .arg(format!("{:.4}", rng.uniform(-180.0, 180.0)))
                    .arg(format!("{:.4}", rng.uniform(-85.0, 85.0)));
            }
            if rng.below(2) == 0 {
                cmd.arg("BYRADIUS").arg(&radius).arg(unit);
            } else {
                let w = format!("{:.2}", rng.uniform(0.0, 2000.0) * scale);
                let h = format!("{:.2}", rng.uniform(0.0, 2000.0) * scale);
                cmd.arg("BYBOX").arg(w).arg(h).arg(unit);
            }
        }
        match rng.below(3) {
            0 => {
                cmd.arg("ASC");
            }
            1 => {
                cmd.arg("DESC");
            }
            _ => {}
        }
        if rng.below(2) == 0 {
            cmd.arg("COUNT").arg(1 + rng.below(30));
            if rng.below(3) == 0 {
                cmd.arg("ANY");
            }
        }
        if store {
            if rng.below(2) == 0 {
                cmd.arg("STOREDIST");
            }
        } else {
            for opt in ["WITHDIST", "WITHCOORD", "WITHHASH"] {
                if rng.below(2) == 0 {
                    cmd.arg(opt);
                }
            }
        }
        let what = format!("round {round}: {:?}", cmd.args_iter().collect::<Vec<_>>());
        same(&mut want, &mut got, &cmd, &what);
        if store {
            let mut range = redis::cmd("ZRANGE");
            range
                .arg(format!("geo:dst{}", round % 7))
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES");
            same(&mut want, &mut got, &range, &what);
        }
        let (a, b) = (rng.below(3100), rng.below(3100));
        let mut dist = redis::cmd("GEODIST");
        dist.arg("geo:src")
            .arg(format!("m{a}"))
            .arg(format!("m{b}"))
            .arg(unit);
        same(&mut want, &mut got, &dist, "GEODIST");
        let mut pos = redis::cmd("GEOPOS");
        pos.arg("geo:src").arg(format!("m{a}")).arg(format!("m{b}"));
        same(&mut want, &mut got, &pos, "GEOPOS");
        let mut hash = redis::cmd("GEOHASH");
        hash.arg("geo:src")
            .arg(format!("m{a}"))
            .arg(format!("m{b}"));
        same(&mut want, &mut got, &hash, "GEOHASH");
    }
}

/// GEOADD and GEOSEARCHSTORE feed sorted sets like ZADD does: a client blocked in BZPOPMIN on
/// the key (on any node) gets the member GEOADD added, with its 52-bit score.
#[test]
fn geoadd_and_geosearchstore_wake_a_blocked_bzpopmin() {
    let server = TestServer::start(THREE_NODES);
    let addr = server.resp;
    for (key, write) in [
        (
            "geo:blocked",
            vec!["GEOADD", "geo:blocked", "13.361389", "38.115556", "Palermo"],
        ),
        (
            "geo:stored",
            vec![
                "GEOSEARCHSTORE",
                "geo:stored",
                "geo:blocked2",
                "FROMLONLAT",
                "13.3",
                "38.1",
                "BYRADIUS",
                "100",
                "km",
            ],
        ),
    ] {
        let mut setup = connect(addr);
        let _: i64 = redis::cmd("GEOADD")
            .arg("geo:blocked2")
            .arg("13.361389")
            .arg("38.115556")
            .arg("Palermo")
            .query(&mut setup)
            .expect("geoadd");
        let waiter = std::thread::spawn(move || {
            let mut c = connect(addr);
            let v: Option<(String, String, f64)> = redis::cmd("BZPOPMIN")
                .arg(key)
                .arg(10)
                .query(&mut c)
                .expect("bzpopmin");
            v
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut w = connect(addr);
        let _: i64 = redis::cmd(write[0])
            .arg(&write[1..])
            .query(&mut w)
            .expect("write");
        let got = waiter.join().expect("waiter");
        assert_eq!(
            got,
            Some((
                key.to_string(),
                "Palermo".to_string(),
                3_479_099_956_230_698.0
            )),
            "{write:?}"
        );
    }
}
