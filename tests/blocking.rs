//! Blocking pops that never hang: a failed wake passes the element on, and a stress test that
//! races pushes against clients entering BLPOP, BRPOPLPUSH and BZPOPMIN, round after round,
//! checking that every client is served at once and no element is left behind; and a pop right
//! after a push never takes the element of a client that was blocked before it; transactions
//! and BLMOVE chains serve blocked clients in the order redis-server does.

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

/// redis serves a blocked client before any other command runs: once `LPUSH k a` (or `ZADD`)
/// has answered, an `LPOP k` (`ZPOPMIN`) from a third connection, or queued right behind the
/// push on the pushing connection, finds the key empty, and the blocked client has the
/// element. Round after round, so that a woken client that still had to fetch its element
/// would lose it to the pop at least once.
#[test]
fn a_pop_after_a_push_never_takes_the_element_of_a_blocked_client() {
    let server = TestServer::start(TWO_NODES);
    let addr = server.resp;
    let mut pusher = server.redis();
    let mut popper = server.redis();
    for r in 0..ROUNDS / 2 {
        let zset = r % 2 == 1;
        let key = format!("k{r}");
        let blocked = {
            let key = key.clone();
            thread::spawn(move || {
                let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
                let mut c = client.get_connection().expect("connect");
                let cmd = if zset { "BZPOPMIN" } else { "BLPOP" };
                let got: redis::Value = redis::cmd(cmd).arg(&key).arg(5).query(&mut c).expect(cmd);
                got
            })
        };
        wait_blocked(&server, 1);
        let same_connection = r % 4 >= 2;
        let (pushed, popped): (i64, redis::Value) = if zset {
            let mut pipe = redis::pipe();
            pipe.zadd(&key, "a", 1);
            if same_connection {
                pipe.cmd("ZPOPMIN").arg(&key);
                pipe.query(&mut pusher).expect("zadd, zpopmin")
            } else {
                let pushed: i64 = pusher.zadd(&key, "a", 1).expect("zadd");
                (
                    pushed,
                    redis::cmd("ZPOPMIN")
                        .arg(&key)
                        .query(&mut popper)
                        .expect("zpopmin"),
                )
            }
        } else if same_connection {
            redis::pipe()
                .lpush(&key, "a")
                .lpop(&key, None)
                .query(&mut pusher)
                .expect("lpush, lpop")
        } else {
            let pushed: i64 = pusher.lpush(&key, "a").expect("lpush");
            (pushed, popper.lpop(&key, None).expect("lpop"))
        };
        assert_eq!(pushed, 1, "round {r}");
        let empty = if zset {
            redis::Value::Array(vec![])
        } else {
            redis::Value::Nil
        };
        assert_eq!(
            popped, empty,
            "round {r}: the pop took the blocked client's element"
        );
        let got = blocked.join().expect("blocked client");
        assert!(
            !matches!(got, redis::Value::Nil),
            "round {r}: the blocked client timed out"
        );
    }
    assert_eq!(server.shared.waiters.len(), 0);
}

/// Runs `scenario` (one blocked client, then a second connection's requests) against `addr`;
/// returns the second connection's replies and what the blocked client got.
fn scenario(
    addr: std::net::SocketAddr,
    block: &[&str],
    then: &[&[&str]],
) -> (Vec<redis::Value>, redis::Value) {
    let connect = || {
        redis::Client::open(format!("redis://{addr}/"))
            .expect("client")
            .get_connection()
            .expect("connect")
    };
    let mut c = connect();
    let _: () = redis::cmd("FLUSHALL").query(&mut c).expect("flushall");
    let block: Vec<String> = block.iter().map(|s| s.to_string()).collect();
    let mut b = connect();
    let waiter = thread::spawn(move || {
        let mut cmd = redis::cmd(&block[0]);
        for a in &block[1..] {
            cmd.arg(a);
        }
        cmd.query::<redis::Value>(&mut b).expect("blocked command")
    });
    // Blocked by the time the others run (both servers list it in CLIENT LIST as blocked).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut c)
            .expect("client list");
        if list.contains("flags=b") {
            break;
        }
        assert!(Instant::now() < deadline, "the client never blocked");
        thread::sleep(Duration::from_millis(5));
    }
    let mut pipe = redis::pipe();
    for req in then {
        let cmd = pipe.cmd(req[0]);
        for a in &req[1..] {
            cmd.arg(*a);
        }
    }
    let replies: Vec<redis::Value> = pipe.query(&mut c).expect("pipeline");
    // Releases the blocked client if the scenario left it waiting (BLPOP also waits on it).
    let _: redis::Value = redis::cmd("RPUSH")
        .arg("release")
        .arg("r")
        .query(&mut c)
        .expect("release");
    (replies, waiter.join().expect("blocked client"))
}

/// Redis's order around blocked clients, checked against a real redis-server: a transaction
/// that pushes and pops the same element leaves the blocked client waiting (it is served after
/// EXEC, by then the list is empty); a BLMOVE served into a list another client waits on
/// serves that client in the same step.
#[test]
fn blocked_clients_are_served_as_redis_serves_them() {
    let Some(redis) = common::redis_server::RedisServer::start() else {
        return;
    };
    let server = TestServer::start(TWO_NODES);
    let cases: &[(&[&str], &[&[&str]])] = &[
        (
            &["BLPOP", "k", "release", "5"],
            &[
                &["MULTI"],
                &["LPUSH", "k", "a"],
                &["LPOP", "k"],
                &["EXEC"],
                &["LLEN", "k"],
            ],
        ),
        (
            &["BLPOP", "k", "release", "5"],
            &[
                &["MULTI"],
                &["LPUSH", "k", "a", "b"],
                &["EXEC"],
                &["LRANGE", "k", "0", "-1"],
            ],
        ),
        (
            &["BLMOVE", "src", "{src}dst", "LEFT", "RIGHT", "5"],
            &[
                &["RPUSH", "src", "x", "y"],
                &["LRANGE", "src", "0", "-1"],
                &["LRANGE", "{src}dst", "0", "-1"],
            ],
        ),
    ];
    for (block, then) in cases {
        let want = scenario(redis.addr, block, then);
        let got = scenario(server.resp, block, then);
        assert_eq!(got, want, "{block:?} then {then:?}");
    }
}
