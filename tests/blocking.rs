//! Blocking pops that never hang: a failed wake passes the element on, and a stress test that
//! races pushes against clients entering BLPOP, BRPOPLPUSH and BZPOPMIN, round after round,
//! checking that every client is served at once and no element is left behind.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{TWO_NODES, TestServer, wait_blocked};
use redis::Commands;

/// redis 7.0: two clients `BRPOPLPUSH blist t1 0` and `BRPOPLPUSH blist t2 0`, `t1` a string;
/// `LPUSH blist foo` answers the first WRONGTYPE and hands `foo` to the second.
#[test]
fn a_client_that_fails_on_wake_passes_the_element_to_the_next() {
    let server = TestServer::start(TWO_NODES);
    let mut c = server.redis();
    let _: () = c.set("t1", "string").expect("set");
    let addr = server.resp;
    let blocked = |dest: &'static str| {
        thread::spawn(move || {
            let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
            let mut c = client.get_connection().expect("connect");
            // A timeout, so that a regression fails (nil) instead of hanging the test.
            redis::cmd("BRPOPLPUSH")
                .arg("blist")
                .arg(dest)
                .arg(5)
                .query::<String>(&mut c)
                .map_err(|e| e.to_string())
        })
    };
    let first = blocked("t1");
    wait_blocked(&server, 1);
    let second = blocked("t2");
    wait_blocked(&server, 2);
    let _: i64 = c.lpush("blist", "foo").expect("lpush");
    let first = first.join().expect("first");
    assert!(
        first.as_ref().is_err_and(|e| e.contains("WRONGTYPE")),
        "{first:?}"
    );
    assert_eq!(second.join().expect("second"), Ok("foo".to_string()));
    let t2: Vec<String> = c.lrange("t2", 0, -1).expect("lrange");
    assert_eq!(t2, ["foo"]);
    let left: i64 = c.llen("blist").expect("llen");
    assert_eq!(left, 0);
    assert_eq!(server.shared.waiters.len(), 0);
}

const ROUNDS: usize = 1000;

/// Each round, three clients enter a blocking pop (BLPOP and BRPOPLPUSH on one list, BZPOPMIN
/// on a sorted set) while two other connections push exactly what they need, all released by
/// one barrier so the pushes land before, during and after the clients register. Every
/// client must be served well within its 3 s timeout (a lost wake-up would leave it waiting
/// for the deadline), and afterwards every list and set must be empty and every destination
/// hold its one element.
#[test]
fn pushes_racing_blocked_clients_lose_no_wake_up_and_leave_nothing() {
    let server = TestServer::start(TWO_NODES);
    let addr = server.resp;
    let start = Arc::new(Barrier::new(5));
    let connect = move || {
        redis::Client::open(format!("redis://{addr}/"))
            .expect("client")
            .get_connection()
            .expect("connect")
    };
    let mut threads = Vec::new();
    for role in 0..5 {
        let start = Arc::clone(&start);
        threads.push(thread::spawn(move || {
            let mut c = connect();
            let mut slowest = Duration::ZERO;
            for r in 0..ROUNDS {
                let (list, dest, zset) = (format!("l{r}"), format!("d{r}"), format!("z{r}"));
                start.wait();
                let t = Instant::now();
                match role {
                    0 => {
                        let got: Option<(String, String)> = redis::cmd("BLPOP")
                            .arg(&list)
                            .arg(3)
                            .query(&mut c)
                            .expect("blpop");
                        assert!(got.is_some(), "round {r}: BLPOP timed out");
                    }
                    1 => {
                        let got: Option<String> = redis::cmd("BRPOPLPUSH")
                            .arg(&list)
                            .arg(&dest)
                            .arg(3)
                            .query(&mut c)
                            .expect("brpoplpush");
                        assert!(got.is_some(), "round {r}: BRPOPLPUSH timed out");
                    }
                    2 => {
                        let got: Option<(String, String, f64)> = redis::cmd("BZPOPMIN")
                            .arg(&zset)
                            .arg(3)
                            .query(&mut c)
                            .expect("bzpopmin");
                        assert!(got.is_some(), "round {r}: BZPOPMIN timed out");
                    }
                    3 => {
                        for v in ["a", "b"] {
                            let _: i64 = c.lpush(&list, v).expect("lpush");
                        }
                    }
                    _ => {
                        let _: i64 = c.zadd(&zset, "m", r).expect("zadd");
                    }
                }
                slowest = slowest.max(t.elapsed());
            }
            slowest
        }));
    }
    for t in threads {
        let slowest = t.join().expect("client thread");
        assert!(
            slowest < Duration::from_millis(2500),
            "a client waited {slowest:?}: served only at its deadline"
        );
    }
    let mut c = connect();
    let mut pipe = redis::pipe();
    for r in 0..ROUNDS {
        pipe.llen(format!("l{r}"))
            .zcard(format!("z{r}"))
            .llen(format!("d{r}"));
    }
    let counts: Vec<i64> = pipe.query(&mut c).expect("counts");
    for (r, chunk) in counts.chunks(3).enumerate() {
        assert_eq!(chunk, [0, 0, 1], "round {r}: list, zset, destination");
    }
    assert_eq!(server.shared.waiters.len(), 0);
    assert_eq!(server.shared.waiters.clients(), 0);
}
