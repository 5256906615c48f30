//! Property tests of both codecs: encoding a request (or a RESP reply frame) and decoding it
//! gives it back, and every strict prefix of a valid request is incomplete (`Ok(None)`), never
//! an error, whether fed to a fresh decoder or byte by byte to one decoder.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use ringcache::config::Limits;
use ringcache::proto::memcache::parse::{Decoder as McDecoder, GetCmd, Request, StoreCmd};
use ringcache::proto::resp::frame::Decoder as RespDecoder;

#[path = "common/frame.rs"]
mod frame;
use frame::Frame;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------- RESP requests ----------

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn resp_requests_round_trip(args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..8)) {
        let limits = Limits::default();
        let wire = multibulk(&args);
        let mut d = RespDecoder::new();
        prop_assert_eq!(d.decode(&wire, &limits), Ok(Some(wire.len())));
        let got = d.args(&wire);
        let got: Vec<Vec<u8>> = got.iter_from(0).map(<[u8]>::to_vec).collect();
        prop_assert_eq!(&got, &args);

        for end in 0..wire.len() {
            prop_assert_eq!(RespDecoder::new().decode(&wire[..end], &limits), Ok(None), "prefix {}", end);
        }
        let mut d = RespDecoder::new();
        for end in 0..wire.len() {
            prop_assert_eq!(d.decode(&wire[..end], &limits), Ok(None), "incremental prefix {}", end);
        }
        prop_assert_eq!(d.decode(&wire, &limits), Ok(Some(wire.len())));
    }
}

// ---------- RESP reply frames ----------

fn line_text() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(b"abcXYZ019 _-:.".to_vec()), 0..20)
}

fn frame() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        line_text().prop_map(Frame::Simple),
        line_text().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Frame::Bulk),
        Just(Frame::Null),
        any::<bool>().prop_map(Frame::Boolean),
        (1u64..u64::MAX).prop_map(|n| Frame::BigNumber(n.to_string().into_bytes())),
        (-1000i32..1000).prop_map(|n| Frame::Double(format!("{n}.5").into_bytes())),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(|t| Frame::Verbatim(b"txt".to_vec(), t)),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Frame::Array),
            prop::collection::vec(inner.clone(), 0..5).prop_map(Frame::Set),
            prop::collection::vec(inner.clone(), 1..5).prop_map(Frame::Push),
            prop::collection::vec((inner.clone(), inner), 0..3).prop_map(Frame::Map),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn resp_frames_round_trip(f in frame()) {
        let mut wire = BytesMut::new();
        f.encode(&mut wire);
        prop_assert_eq!(Frame::decode(&wire), Ok(Some((f.clone(), wire.len()))));
        for end in 0..wire.len() {
            prop_assert_eq!(Frame::decode(&wire[..end]), Ok(None), "prefix {}", end);
        }
    }
}

// ---------- memcached requests ----------

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(b"abcdefghijklmnopqrstuvwxyzABC0123456789:_-{}".to_vec()),
        1..40,
    )
}

const STORE: [(StoreCmd, &str); 6] = [
    (StoreCmd::Set, "set"),
    (StoreCmd::Add, "add"),
    (StoreCmd::Replace, "replace"),
    (StoreCmd::Append, "append"),
    (StoreCmd::Prepend, "prepend"),
    (StoreCmd::Cas, "cas"),
];

/// What decoding must give: a request, or a get (its keys are not constructible here).
#[derive(Debug, Clone)]
enum Want {
    Req(Box<Request>),
    Get(GetCmd, Vec<Vec<u8>>),
}

/// A memcached request and its wire form.
fn mc_request() -> impl Strategy<Value = (Want, Vec<u8>)> {
    let store = (
        0..STORE.len(),
        key(),
        any::<u32>(),
        -1000i64..100_000_000,
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..100),
        any::<bool>(),
    )
        .prop_map(|(c, key, flags, exptime, cas, data, noreply)| {
            let (cmd, name) = STORE[c];
            let cas = if cmd == StoreCmd::Cas { cas } else { 0 };
            let mut wire = format!(
                "{name} {} {flags} {exptime} {}",
                String::from_utf8_lossy(&key),
                data.len()
            )
            .into_bytes();
            if cmd == StoreCmd::Cas {
                wire.extend_from_slice(format!(" {cas}").as_bytes());
            }
            if noreply {
                wire.extend_from_slice(b" noreply");
            }
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(&data);
            wire.extend_from_slice(b"\r\n");
            let req = Request::Store {
                cmd,
                key: Bytes::from(key),
                flags,
                exptime,
                cas,
                data: Bytes::from(data),
                noreply,
            };
            (Want::Req(Box::new(req)), wire)
        });
    let get = (any::<bool>(), prop::collection::vec(key(), 1..6)).prop_map(|(gets, keys)| {
        let name = if gets { "gets" } else { "get" };
        let list: Vec<String> = keys
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        let wire = format!("{name} {}\r\n", list.join(" ")).into_bytes();
        let cmd = if gets { GetCmd::Gets } else { GetCmd::Get };
        (Want::Get(cmd, keys), wire)
    });
    let delete = (key(), any::<bool>()).prop_map(|(key, noreply)| {
        let wire = format!(
            "delete {}{}\r\n",
            String::from_utf8_lossy(&key),
            if noreply { " noreply" } else { "" }
        )
        .into_bytes();
        (
            Want::Req(Box::new(Request::Delete {
                key: Bytes::from(key),
                noreply,
            })),
            wire,
        )
    });
    let arith = (any::<bool>(), key(), any::<u64>(), any::<bool>()).prop_map(
        |(incr, key, delta, noreply)| {
            let wire = format!(
                "{} {} {delta}{}\r\n",
                if incr { "incr" } else { "decr" },
                String::from_utf8_lossy(&key),
                if noreply { " noreply" } else { "" }
            )
            .into_bytes();
            (
                Want::Req(Box::new(Request::Arith {
                    incr,
                    key: Bytes::from(key),
                    delta,
                    noreply,
                })),
                wire,
            )
        },
    );
    let touch =
        (key(), -1000i64..100_000_000, any::<bool>()).prop_map(|(key, exptime, noreply)| {
            let wire = format!(
                "touch {} {exptime}{}\r\n",
                String::from_utf8_lossy(&key),
                if noreply { " noreply" } else { "" }
            )
            .into_bytes();
            (
                Want::Req(Box::new(Request::Touch {
                    key: Bytes::from(key),
                    exptime,
                    noreply,
                })),
                wire,
            )
        });
    prop_oneof![store, get, delete, arith, touch]
}

/// Whether `got` is what was encoded.
fn same(got: &Request, want: &Want) -> bool {
    match (got, want) {
        (
            Request::Get {
                cmd,
                exptime: 0,
                keys,
            },
            Want::Get(c, k),
        ) => cmd == c && keys.iter().eq(k.iter().map(Vec::as_slice)),
        (got, Want::Req(want)) => got == want.as_ref(),
        _ => false,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn memcache_requests_round_trip((want, wire) in mc_request()) {
        let limits = Limits::default();
        let mut input = BytesMut::from(&wire[..]);
        let got = McDecoder::new().decode(&mut input, &limits);
        let Ok(Some(got)) = got else {
            return Err(TestCaseError::fail(format!("{got:?} for {:?}", String::from_utf8_lossy(&wire))));
        };
        prop_assert!(same(&got, &want), "{got:?} != {want:?}");
        prop_assert!(input.is_empty());

        for end in 0..wire.len() {
            let mut prefix = BytesMut::from(&wire[..end]);
            let r = McDecoder::new().decode(&mut prefix, &limits);
            prop_assert!(matches!(r, Ok(None)), "prefix {}: {:?}", end, r);
        }
        let mut d = McDecoder::new();
        let mut input = BytesMut::new();
        for (i, &b) in wire.iter().enumerate() {
            input.extend_from_slice(&[b]);
            let r = d.decode(&mut input, &limits);
            if i + 1 < wire.len() {
                prop_assert!(matches!(r, Ok(None)), "byte {}: {:?}", i, r);
            } else {
                prop_assert!(matches!(&r, Ok(Some(g)) if same(g, &want)), "{:?}", r);
            }
        }
    }
}

#[test]
fn frames_roundtrip_and_prefixes_are_incomplete() {
    let frame = Frame::Array(vec![
        Frame::Bulk(b"a\r\nb".to_vec()),
        Frame::Map(vec![(Frame::Simple(b"k".to_vec()), Frame::Integer(3))]),
        Frame::Set(vec![Frame::Double(b"1.5".to_vec()), Frame::Boolean(false)]),
        Frame::Null,
        Frame::Verbatim(b"txt".to_vec(), b"x".to_vec()),
        Frame::Error(b"ERR e".to_vec()),
    ]);
    let mut out = BytesMut::new();
    frame.encode(&mut out);
    assert_eq!(Frame::decode(&out), Ok(Some((frame, out.len()))));
    for cut in 0..out.len() {
        assert_eq!(Frame::decode(&out[..cut]), Ok(None), "cut {cut}");
    }
}
