//! Lua scripts the way applications use them, with the `redis` crate: a distributed lock
//! (SET NX PX, released by a compare-and-delete script) contended over keys on several nodes,
//! a script moving a value between nodes while a reload migrates them, a runaway script
//! answered with BUSY and stopped by SCRIPT KILL, and a script that allocates without bound.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::redis_server::RedisServer;
use common::{ConfigFile, THREE_NODES, TestServer};

fn connect(addr: std::net::SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// redis-py's Lock release: delete the key only if it still holds our token.
const RELEASE: &str = r#"
local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1])
return 1
"#;

/// 16 clients take and release 4 locks (on different nodes) 4,000 times in all; a shared
/// table of holders checks that no two clients ever hold one lock at once, and every release
/// of a held lock must find its own token.
#[test]
fn a_lua_released_lock_is_held_by_one_client_at_a_time() {
    const CLIENTS: usize = 16;
    const LOCKS: usize = 4;
    const EACH: usize = 250;
    let server = TestServer::start(THREE_NODES);
    let names: Vec<String> = (0..LOCKS).map(|i| format!("lock:{i}")).collect();
    let nodes: std::collections::HashSet<String> = names
        .iter()
        .map(|n| {
            let t = server.shared.topology.load();
            t.node_for(n.as_bytes()).name().to_string()
        })
        .collect();
    assert!(nodes.len() > 1, "the locks must span nodes");
    let held: Arc<Vec<AtomicBool>> = Arc::new((0..LOCKS).map(|_| AtomicBool::new(false)).collect());
    let release = redis::Script::new(RELEASE);
    let addr = server.resp;
    let contended = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (held, release, names, contended) = (
                Arc::clone(&held),
                release.clone(),
                names.clone(),
                Arc::clone(&contended),
            );
            thread::spawn(move || {
                let mut c = connect(addr);
                for i in 0..EACH {
                    let lock = (t + i) % LOCKS;
                    let token = format!("{t}-{i}");
                    loop {
                        let got: Option<String> = redis::cmd("SET")
                            .arg(&names[lock])
                            .arg(&token)
                            .arg("NX")
                            .arg("PX")
                            .arg(10_000)
                            .query(&mut c)
                            .expect("set nx");
                        if got.is_some() {
                            break;
                        }
                        contended.fetch_add(1, Ordering::Relaxed);
                        thread::yield_now();
                    }
                    assert!(
                        !held[lock].swap(true, Ordering::SeqCst),
                        "two clients hold {}",
                        names[lock]
                    );
                    thread::yield_now();
                    held[lock].store(false, Ordering::SeqCst);
                    let released: i64 = release
                        .key(&names[lock])
                        .arg(&token)
                        .invoke(&mut c)
                        .expect("release");
                    assert_eq!(released, 1, "{} lost its token {token}", names[lock]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client");
    }
    assert!(
        contended.load(Ordering::Relaxed) > 0,
        "the locks were never contended"
    );
    let mut c = server.redis();
    for n in &names {
        let v: Option<String> = redis::cmd("GET").arg(n).query(&mut c).expect("get");
        assert_eq!(v, None, "{n} left held");
    }
}

/// Moves the token from whichever of the two keys holds it to the other.
const MOVE: &str = r#"
local from, to = KEYS[1], KEYS[2]
local v = redis.call('get', from)
if not v then from, to = KEYS[2], KEYS[1]; v = redis.call('get', from) end
if not v then return redis.error_reply('TOKEN lost') end
redis.call('del', from)
redis.call('set', to, v)
return v
"#;

/// Writers move tokens between pairs of keys on different nodes with a script while readers
/// check, with a script, that each token is in exactly one key of its pair; a reload grows
/// the ring from 2 to 5 nodes in the middle, so the keys migrate under the scripts.
#[test]
fn a_script_moving_a_value_between_nodes_is_atomic_during_a_migration() {
    const PAIRS: usize = 8;
    let nodes = |n: usize| -> String {
        (0..n)
            .map(|i| format!("[[nodes]]\nname = \"n{i}\"\nmax_memory = \"64MiB\"\n\n"))
            .collect()
    };
    let config = ConfigFile::new(&nodes(2));
    let server = TestServer::start_file(&config.path);
    let mut c = server.redis();
    let pairs: Vec<(String, String)> = (0..PAIRS)
        .map(|p| (format!("tok:{p}:a"), format!("tok:{p}:b")))
        .collect();
    for (a, _) in &pairs {
        let _: () = redis::cmd("SET")
            .arg(a)
            .arg("T")
            .query(&mut c)
            .expect("set");
    }
    let spread = pairs
        .iter()
        .filter(|(a, b)| {
            let t = server.shared.topology.load();
            t.node_for(a.as_bytes()).name() != t.node_for(b.as_bytes()).name()
        })
        .count();
    assert!(spread > 0, "some pair must span nodes");
    let stop = Arc::new(AtomicBool::new(false));
    let addr = server.resp;
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (stop, pairs) = (Arc::clone(&stop), pairs.clone());
            thread::spawn(move || {
                let mut c = connect(addr);
                let script = redis::Script::new(MOVE);
                let mut rounds = 0usize;
                while !stop.load(Ordering::Relaxed) || rounds < 500 {
                    let (a, b) = &pairs[(w + rounds) % PAIRS];
                    let v: String = script.key(a).key(b).invoke(&mut c).expect("move");
                    assert_eq!(v, "T");
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, pairs) = (Arc::clone(&stop), pairs.clone());
            thread::spawn(move || {
                let mut c = connect(addr);
                let script = redis::Script::new(
                    "return {redis.call('exists', KEYS[1]), redis.call('exists', KEYS[2])}",
                );
                let mut reads = 0usize;
                while !stop.load(Ordering::Relaxed) || reads < 500 {
                    let (a, b) = &pairs[reads % PAIRS];
                    let seen: Vec<i64> = script.key(a).key(b).invoke(&mut c).expect("read");
                    assert_eq!(
                        seen.iter().sum::<i64>(),
                        1,
                        "{a}/{b}: the token was in both or neither: {seen:?}"
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    config.write(&nodes(5));
    server.wait_generation(2);
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let moves: usize = writers.into_iter().map(|t| t.join().expect("writer")).sum();
    let reads: usize = readers.into_iter().map(|t| t.join().expect("reader")).sum();
    assert!(
        moves >= 1500 && reads >= 1000,
        "{moves} moves, {reads} reads"
    );
    server.wait_settled();
    for (a, b) in &pairs {
        let n: i64 = redis::cmd("EXISTS")
            .arg(a)
            .arg(b)
            .query(&mut c)
            .expect("exists");
        assert_eq!(n, 1, "{a}/{b} after the migration");
    }
}

/// An endless script: after `busy-reply-threshold` other clients get BUSY; SCRIPT KILL stops
/// it (its caller gets the killed-script error) and the server serves again.
#[test]
fn a_runaway_script_makes_others_busy_until_script_kill() {
    let server = TestServer::start(THREE_NODES);
    let mut admin = server.redis();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-reply-threshold")
        .arg(100)
        .query(&mut admin)
        .expect("config set");
    let addr = server.resp;
    let runaway = thread::spawn(move || {
        let mut c = connect(addr);
        redis::cmd("EVAL")
            .arg("local i = 0 while true do i = i + 1 end")
            .arg(0)
            .query::<()>(&mut c)
            .expect_err("killed")
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let busy = loop {
        let r: redis::RedisResult<String> = redis::cmd("GET").arg("k").query(&mut admin);
        match r {
            Err(e) if e.to_string().contains("BUSY") => break e.to_string(),
            _ => {}
        }
        assert!(Instant::now() < deadline, "never BUSY");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(busy.contains("SCRIPT KILL"), "{busy}");
    // A memcached client waits (no BUSY in its protocol) without holding up the others.
    let mc = thread::spawn({
        let memcache = server.memcache;
        move || {
            let c = memcache::Client::connect(format!(
                "memcache://{memcache}?timeout=20&protocol=ascii"
            ))
            .expect("memcache");
            c.set("mc", "v", 0).expect("memcache set after the kill");
        }
    });
    thread::sleep(Duration::from_millis(100));
    let _: () = redis::cmd("SCRIPT")
        .arg("KILL")
        .query(&mut admin)
        .expect("kill");
    let err = runaway.join().expect("runaway client");
    assert!(err.to_string().contains("Script killed by user"), "{err}");
    mc.join().expect("memcached client");
    let pong: String = redis::cmd("PING").query(&mut admin).expect("ping");
    assert_eq!(pong, "PONG");
    let none: redis::RedisResult<()> = redis::cmd("SCRIPT").arg("KILL").query(&mut admin);
    let none = none.expect_err("no script").to_string();
    assert!(none.contains("No scripts in execution"), "{none}");
}

/// A script that writes cannot be killed: SCRIPT KILL answers UNKILLABLE.
#[test]
fn a_script_that_wrote_is_unkillable() {
    let server = TestServer::start(THREE_NODES);
    let mut admin = server.redis();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-reply-threshold")
        .arg(50)
        .query(&mut admin)
        .expect("config set");
    let addr = server.resp;
    let writer = thread::spawn(move || {
        let mut c = connect(addr);
        redis::cmd("EVAL")
            .arg("redis.call('set', 'w', '1') local t = redis.call('time') local s = tonumber(t[1]) while tonumber(redis.call('time')[1]) < s + 2 do end return 'done'")
            .arg(0)
            .query::<String>(&mut c)
            .expect("the script finishes")
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r: redis::RedisResult<()> = redis::cmd("SCRIPT").arg("KILL").query(&mut admin);
        match r {
            Err(e) if e.to_string().contains("UNKILLABLE") => break,
            _ => {}
        }
        assert!(Instant::now() < deadline, "never UNKILLABLE");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(writer.join().expect("writer"), "done");
}

/// A script that allocates without bound fails with an error; the server and the scripting
/// engine keep working.
#[test]
fn an_unbounded_allocation_fails_and_the_server_survives() {
    let server = TestServer::start(THREE_NODES);
    let mut c = server.redis();
    let err = redis::cmd("EVAL")
        .arg("local t = {} while true do t[#t + 1] = string.rep('x', 1048576) .. #t end")
        .arg(0)
        .query::<()>(&mut c)
        .expect_err("out of memory");
    assert!(err.to_string().contains("not enough memory"), "{err}");
    let v: i64 = redis::cmd("EVAL")
        .arg("return #KEYS + tonumber(ARGV[1])")
        .arg(1)
        .arg("k")
        .arg(41)
        .query(&mut c)
        .expect("a script after");
    assert_eq!(v, 42);
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut c)
        .expect("info");
    assert!(info.contains("used_memory_lua:"), "{info}");
}

/// A 10 MB script and malformed sha1s get redis's replies; nothing crashes.
#[test]
fn big_scripts_and_bad_sha1s_get_replies() {
    let server = TestServer::start(THREE_NODES);
    let mut c = server.redis();
    let mut body = String::from("return 'big'\n");
    while body.len() < 10 << 20 {
        body.push_str("-- padding padding padding padding padding padding padding padding\n");
    }
    let v: String = redis::cmd("EVAL")
        .arg(&body)
        .arg(0)
        .query(&mut c)
        .expect("big");
    assert_eq!(v, "big");
    for sha in [
        "abc",
        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        &"f".repeat(41),
    ] {
        let e = redis::cmd("EVALSHA")
            .arg(sha)
            .arg(0)
            .query::<()>(&mut c)
            .expect_err("noscript");
        assert!(e.to_string().contains("No matching script"), "{e}");
    }
}

fn function_cmd(c: &mut redis::Connection, args: &[&[u8]]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd("FUNCTION");
    for a in args {
        cmd.arg(*a);
    }
    cmd.query(c)
}

/// FUNCTION DUMP payloads are redis's format: a payload from ringcache restores into
/// redis-server and back, and RESTORE's policies (APPEND, REPLACE, FLUSH) behave.
#[test]
fn function_dump_payloads_restore_across_ringcache_and_redis_server() {
    let server = TestServer::start(THREE_NODES);
    let mut c = server.redis();
    let code = "#!lua name=mylib\nredis.register_function('myfn', function(keys, args) return args[1] end)";
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(code)
        .query(&mut c)
        .expect("load");
    assert_eq!(name, "mylib");
    let dump: Vec<u8> = redis::cmd("FUNCTION")
        .arg("DUMP")
        .query(&mut c)
        .expect("dump");
    function_cmd(&mut c, &[b"FLUSH"]).expect("flush");
    let gone = redis::cmd("FCALL")
        .arg("myfn")
        .arg(0)
        .query::<String>(&mut c);
    assert!(gone.is_err());
    function_cmd(&mut c, &[b"RESTORE", &dump]).expect("restore");
    let v: String = redis::cmd("FCALL")
        .arg("myfn")
        .arg(0)
        .arg("hi")
        .query(&mut c)
        .expect("fcall");
    assert_eq!(v, "hi");
    let again = function_cmd(&mut c, &[b"RESTORE", &dump]).expect_err("append collides");
    assert!(again.to_string().contains("already exists"), "{again}");
    function_cmd(&mut c, &[b"RESTORE", &dump, b"REPLACE"]).expect("replace");
    let mut bad = dump.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let e = function_cmd(&mut c, &[b"RESTORE", &bad]).expect_err("checksum");
    assert!(e.to_string().contains("checksum"), "{e}");
    let Some(redis_server) = RedisServer::start() else {
        return;
    };
    let mut r = connect(redis_server.addr);
    function_cmd(&mut r, &[b"RESTORE", &dump]).expect("redis-server restores ringcache's dump");
    let v: String = redis::cmd("FCALL")
        .arg("myfn")
        .arg(0)
        .arg("there")
        .query(&mut r)
        .expect("fcall on redis");
    assert_eq!(v, "there");
    let code2 = "#!lua name=other\nredis.register_function{function_name='twice', callback=function(k, a) return a[1] .. a[1] end, flags={'no-writes'}}";
    function_cmd(&mut r, &[b"LOAD", code2.as_bytes()]).expect("load on redis");
    let theirs: Vec<u8> = redis::cmd("FUNCTION")
        .arg("DUMP")
        .query(&mut r)
        .expect("dump on redis");
    function_cmd(&mut c, &[b"RESTORE", &theirs, b"FLUSH"])
        .expect("ringcache restores redis-server's dump");
    let v: String = redis::cmd("FCALL_RO")
        .arg("twice")
        .arg(0)
        .arg("ab")
        .query(&mut c)
        .expect("fcall_ro");
    assert_eq!(v, "abab");
    let v: String = redis::cmd("FCALL")
        .arg("myfn")
        .arg(0)
        .arg("x")
        .query(&mut c)
        .expect("myfn");
    assert_eq!(v, "x");
}

/// FUNCTION KILL stops a runaway function; SCRIPT KILL does not apply to it.
#[test]
fn function_kill_stops_a_runaway_function() {
    let server = TestServer::start(THREE_NODES);
    let mut admin = server.redis();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-reply-threshold")
        .arg(100)
        .query(&mut admin)
        .expect("config set");
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=spin\nredis.register_function('spin', function() while true do end end)")
        .query(&mut admin)
        .expect("load");
    let addr = server.resp;
    let runaway = thread::spawn(move || {
        let mut c = connect(addr);
        redis::cmd("FCALL")
            .arg("spin")
            .arg(0)
            .query::<()>(&mut c)
            .expect_err("killed")
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r: redis::RedisResult<()> = redis::cmd("SCRIPT").arg("KILL").query(&mut admin);
        match r {
            Err(e) if e.to_string().contains("FUNCTION KILL") => break,
            _ => {}
        }
        assert!(Instant::now() < deadline, "never busy with a function");
        thread::sleep(Duration::from_millis(20));
    }
    let _: () = redis::cmd("FUNCTION")
        .arg("KILL")
        .query(&mut admin)
        .expect("function kill");
    let err = runaway.join().expect("runaway");
    assert!(err.to_string().contains("Script killed by user"), "{err}");
    let pong: String = redis::cmd("PING").query(&mut admin).expect("ping");
    assert_eq!(pong, "PONG");
}
