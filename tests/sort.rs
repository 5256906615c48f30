//! SORT with BY and GET patterns on a three-node ring, with the `redis` crate: patterns whose
//! keys share the sorted key's node (by a hash tag) work; patterns whose keys may live on
//! another node get redis cluster's errors, decided from the pattern before anything is read;
//! STORE writes its list through the destination's own node and wakes a client blocked on it.

mod common;

use common::{THREE_NODES, TestServer};
use redis::Commands;

const BY_ERROR: &str = "BY option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.";
const GET_ERROR: &str = "GET option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.";

/// Two hash tags whose keys live on different nodes.
fn tags_on_two_nodes(server: &TestServer) -> (String, String) {
    let topo = server.shared.topology.load();
    let node = |tag: &str| {
        topo.node_for(format!("{{{tag}}}").as_bytes())
            .name()
            .to_string()
    };
    let first = "t0".to_string();
    let other = (1..)
        .map(|i| format!("t{i}"))
        .find(|t| node(t) != node(&first))
        .expect("a tag on another node");
    (first, other)
}

fn sort(c: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Vec<Option<String>>> {
    redis::cmd("SORT").arg(args).query(c)
}

fn error_text(r: redis::RedisResult<Vec<Option<String>>>) -> String {
    let e = r.expect_err("an error");
    format!(
        "{} {}",
        e.code().unwrap_or_default(),
        e.detail().unwrap_or_default()
    )
}

#[test]
fn sort_by_and_get_patterns_on_another_node_are_refused() {
    let server = TestServer::start(THREE_NODES);
    let (near, far) = tags_on_two_nodes(&server);
    let mut c = server.redis();
    let list = format!("{{{near}}}list");
    let _: () = c.rpush(&list, &["b", "a", "c"]).expect("rpush");
    for (w, v) in [("a", 3), ("b", 1), ("c", 2)] {
        let _: () = c.set(format!("{{{near}}}w_{w}"), v).expect("set");
        let _: () = c.set(format!("{{{far}}}w_{w}"), v).expect("set");
        let _: () = c
            .set(format!("{{{near}}}o_{w}"), format!("obj-{w}"))
            .expect("set");
    }

    // Same node (same tag): sorted by the weights, objects fetched.
    let by_near = format!("{{{near}}}w_*");
    let get_near = format!("{{{near}}}o_*");
    let got = sort(
        &mut c,
        &[&list, "BY", &by_near, "GET", "#", "GET", &get_near],
    )
    .expect("sort");
    let want: Vec<Option<String>> = ["b", "obj-b", "c", "obj-c", "a", "obj-a"]
        .iter()
        .map(|s| Some(s.to_string()))
        .collect();
    assert_eq!(got, want);

    // Another node's tag, no tag, a tag after the wildcard: refused, for BY and for GET.
    let by_far = format!("{{{far}}}w_*");
    let untagged = "w_*".to_string();
    let late_tag = format!("w_*{{{near}}}");
    for pattern in [&by_far, &untagged, &late_tag] {
        let e = error_text(sort(&mut c, &[&list, "BY", pattern]));
        assert_eq!(e, format!("ERR {BY_ERROR}"), "BY {pattern}");
        let e = error_text(sort(&mut c, &[&list, "GET", pattern]));
        assert_eq!(e, format!("ERR {GET_ERROR}"), "GET {pattern}");
        let e = error_text(
            redis::cmd("SORT_RO")
                .arg(&list)
                .arg("BY")
                .arg(pattern)
                .query(&mut c),
        );
        assert_eq!(e, format!("ERR {BY_ERROR}"), "SORT_RO BY {pattern}");
    }
    // The check is made from the pattern alone: on a missing key too, and before STORE.
    let e = error_text(sort(&mut c, &["{nothing}here", "BY", &by_far]));
    assert_eq!(e, format!("ERR {BY_ERROR}"));
    let e = error_text(sort(&mut c, &[&list, "GET", &by_far, "STORE", "dst"]));
    assert_eq!(e, format!("ERR {GET_ERROR}"));
    assert!(!c.exists::<_, bool>("dst").expect("exists"));

    // GET # and BY nosort (no wildcard: nothing is looked up) are fine anywhere.
    let got = sort(&mut c, &[&list, "BY", "nosort", "GET", "#"]).expect("sort");
    assert_eq!(got.len(), 3);
    let got = sort(&mut c, &[&list, "ALPHA", "DESC"]).expect("sort");
    assert_eq!(
        got,
        vec![Some("c".into()), Some("b".into()), Some("a".into())]
    );
}

#[test]
fn sort_store_writes_a_list_on_the_destination_node() {
    let server = TestServer::start(THREE_NODES);
    let (near, far) = tags_on_two_nodes(&server);
    let mut c = server.redis();
    let src = format!("{{{near}}}nums");
    let dst = format!("{{{far}}}sorted");
    let nums: Vec<i64> = (0..500).map(|i| (i * 7919) % 1000 - 500).collect();
    let _: () = c.rpush(&src, &nums).expect("rpush");
    let n: usize = redis::cmd("SORT")
        .arg(&src)
        .arg("DESC")
        .arg("LIMIT")
        .arg(10)
        .arg(100)
        .arg("STORE")
        .arg(&dst)
        .query(&mut c)
        .expect("sort store");
    assert_eq!(n, 100);
    let mut want = nums.clone();
    want.sort_unstable_by(|a, b| b.cmp(a));
    let got: Vec<i64> = c.lrange(&dst, 0, -1).expect("lrange");
    assert_eq!(got, want[10..110].to_vec());
    let topo = server.shared.topology.load();
    let node = topo.node_for(dst.as_bytes());
    node.validate().expect("the stored list is charged exactly");
}

/// A client blocked in BLPOP on SORT's STORE destination is served by the stored list.
#[test]
fn sort_store_wakes_a_client_blocked_on_the_destination() {
    let server = TestServer::start(THREE_NODES);
    let mut c = server.redis();
    let _: () = c.rpush("{s}src", &[3, 1, 2]).expect("rpush");
    let addr = server.resp;
    let waiter = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://{addr}/"))
            .expect("client")
            .get_connection()
            .expect("connect");
        let got: Option<(String, String)> = c.blpop("{s}dst", 10.0).expect("blpop");
        got
    });
    common::wait_blocked(&server, 1);
    let n: usize = redis::cmd("SORT")
        .arg("{s}src")
        .arg("STORE")
        .arg("{s}dst")
        .query(&mut c)
        .expect("sort store");
    assert_eq!(n, 3);
    let got = waiter.join().expect("waiter");
    assert_eq!(got, Some(("{s}dst".into(), "1".into())));
    let rest: Vec<String> = c.lrange("{s}dst", 0, -1).expect("lrange");
    assert_eq!(rest, vec!["2".to_string(), "3".to_string()]);
}

/// SORT with many GETs over a big list cannot build an unbounded reply or stored list: the
/// reply stops at `max_output_buffer` (the connection is closed, as for any oversized reply)
/// and a STORE that cannot fit in its node answers OOM before the whole list is built.
#[test]
fn sort_with_many_gets_is_bounded() {
    let server = TestServer::start(
        r#"
[limits]
max_output_buffer = "1MiB"

[[nodes]]
name = "small"
max_memory = "4MiB"
"#,
    );
    let mut c = server.redis();
    let items: Vec<u32> = (0..10_000).collect();
    let _: () = c.rpush("big", &items).expect("rpush");
    let mut sort = redis::cmd("SORT");
    sort.arg("big");
    for _ in 0..200 {
        sort.arg("GET").arg("#");
    }
    let reply: redis::RedisResult<Vec<String>> = sort.query(&mut c);
    assert!(reply.is_err(), "a 2,000,000-element reply is refused");

    let mut c = server.redis();
    sort.arg("STORE").arg("dst");
    let err = sort
        .query::<usize>(&mut c)
        .expect_err("a stored list larger than the node");
    assert!(err.to_string().contains("OOM"), "{err}");
    assert!(!c.exists::<_, bool>("dst").expect("exists"));
    let n: usize = c.llen("big").expect("llen");
    assert_eq!(n, 10_000, "the server still serves");
}
