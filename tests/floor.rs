//! The loopback floor bench server (`benches/floor`): its framing, and the real thing on a
//! socket, spoken to by the redis client and raw memcached bytes.

#[path = "../benches/floor/server.rs"]
mod server;

mod common;

use std::net::TcpListener;

use server::{Proto, Replies, answer};

fn bulk(n: usize) -> Vec<u8> {
    [format!("${n}\r\n").as_bytes(), &vec![b'v'; n], b"\r\n"].concat()
}

fn item(key: &str, n: usize) -> Vec<u8> {
    [
        format!("VALUE {key} 0 {n}\r\n").as_bytes(),
        &vec![b'v'; n],
        b"\r\n",
    ]
    .concat()
}

/// Feeds `stream` in two parts cut at every position and checks that the replies and the bytes
/// used add up to those of the whole stream.
fn same_when_split(proto: Proto, stream: &[u8], expect: &[u8]) {
    let replies = Replies::new(5);
    let mut whole = Vec::new();
    assert_eq!(answer(proto, stream, &replies, &mut whole), stream.len());
    assert_eq!(
        String::from_utf8_lossy(&whole),
        String::from_utf8_lossy(expect)
    );
    for cut in 0..stream.len() {
        let mut out = Vec::new();
        let used = answer(proto, &stream[..cut], &replies, &mut out);
        let mut rest = stream[used..cut].to_vec();
        rest.extend_from_slice(&stream[cut..]);
        assert_eq!(answer(proto, &rest, &replies, &mut out), rest.len());
        assert_eq!(out, whole, "cut at {cut}");
    }
}

#[test]
fn resp_requests_are_framed_across_reads() {
    let stream = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nset\r\n$1\r\nk\r\n$2\r\nv\n\r\n*2\r\n$3\r\nget\r\n$2\r\nkk\r\n";
    let expect = [bulk(5), b"+OK\r\n".to_vec(), bulk(5)].concat();
    same_when_split(Proto::Resp, stream, &expect);
}

#[test]
fn memcached_requests_are_framed_across_reads() {
    let stream = b"get a bb\r\nset k 0 0 3\r\na\r\n\r\nget c\r\nbogus\r\n";
    let expect = [
        item("a", 5),
        item("bb", 5),
        b"END\r\nSTORED\r\n".to_vec(),
        item("c", 5),
        b"END\r\nERROR\r\n".to_vec(),
    ]
    .concat();
    same_when_split(Proto::Memcache, stream, &expect);
}

fn start(proto: Proto) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    // The server runs until the test process ends.
    std::thread::spawn(move || server::serve(listener, proto, 100));
    addr
}

#[test]
fn serves_the_redis_client() {
    let addr = start(Proto::Resp);
    let client = redis::Client::open(format!("redis://{addr}/?protocol=resp2")).expect("client");
    let mut c = client.get_connection().expect("connect");
    let () = redis::cmd("SET")
        .arg("k")
        .arg("x")
        .query(&mut c)
        .expect("set");
    let v: Vec<u8> = redis::cmd("GET").arg("k").query(&mut c).expect("get");
    assert_eq!(v, vec![b'v'; 100]);
}

#[test]
fn serves_memcached_text_over_tcp() {
    let addr = start(Proto::Memcache);
    let mut raw = common::Raw::connect(addr);
    raw.roundtrip(b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
    let expect = [item("k", 100), item("j", 100), b"END\r\n".to_vec()].concat();
    raw.roundtrip(b"get k j\r\n", &expect);
}
