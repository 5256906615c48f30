//! Replies from remote members inside a batch: a request whose key a remote member owns is
//! sent to it at once (see each protocol's `forward` module) and leaves a [`Slot`] where its
//! reply belongs in the batch's output; once the batch is decoded, the session waits for every
//! slot ([`Forwarded::settle`]) and the replies go out in request order with the local ones.
//!
//! Owns: the slots of a batch, waiting for them, and turning members' replies (or why there is
//! none) into the client's reply ([`Combine`]).
//! Must not touch: which member owns a key, building the requests (the protocols' `forward`).
//! Invariants: slots are in output order (`at` never decreases); every slot is answered, with
//! an error reply when its member failed, so the client always gets one reply per request.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::oneshot;

use crate::proto::Flow;
use crate::proto::translate::{self, Map};
use crate::route::remote::{Answer, Member, RemoteError};

/// Slots a batch may hold before the session writes what it has (like `OUT_HIGH_WATER`).
pub const MAX_SLOTS: usize = 4096;

/// One member's part of a slot's reply.
pub struct Part {
    pub member: Arc<Member>,
    pub reply: oneshot::Receiver<Answer>,
    /// How the member's reply reads in the client's protocol.
    pub map: Map,
}

impl Part {
    /// A part whose reply is used as the member sent it.
    pub fn same(member: &Arc<Member>, reply: oneshot::Receiver<Answer>) -> Part {
        Part {
            member: Arc::clone(member),
            reply,
            map: Map::Same,
        }
    }
}

/// Where each key of a multi-key memcached get is answered from, in the request's key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetKey {
    /// An in-process node's reply for the key (its `VALUE` block, or nothing for a miss).
    Local(bytes::Bytes),
    /// The key, asked of the slot's part with this index (one `get` per member, its keys in
    /// request order).
    Member(usize, bytes::Bytes),
}

/// How a slot's parts become the client's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Combine {
    /// RESP: the member's reply as it is.
    Resp,
    /// RESP: the member's reply, a nil (`null` of RESP3 when `resp3`) if it is an error (an
    /// element of MGET).
    RespNilOnError { resp3: bool },
    /// RESP: the integer replies of every part plus `local` (DEL, EXISTS, ...).
    RespSum { local: i64 },
    /// RESP: `+OK` when every part answered it (MSET), else the first other reply.
    RespAllOk,
    /// Every member flushed (`+OK` or memcached's `OK`): `+OK` (`resp`) or `OK`; else the
    /// first failure as an error of the client's protocol.
    Flushed { resp: bool },
    /// memcached: the member's reply as it is; a failure is a `SERVER_ERROR` line.
    Memcache,
    /// memcached: the member's reply unless it starts with one of `drop` (meta quiet mode).
    MemcacheQuiet { drop: &'static [&'static [u8]] },
    /// memcached `noreply`: nothing, whatever the member answered.
    Discard,
    /// memcached: a multi-key get answered by several members (one `get` each) and local
    /// nodes, its `VALUE` blocks put back in the request's key order, then `END`; a failed
    /// member's keys are misses.
    MemcacheGet(Vec<GetKey>),
}

/// A reply still to come, and where it goes.
pub struct Slot {
    /// Offset in the batch's output.
    pub at: usize,
    pub parts: Vec<Part>,
    pub combine: Combine,
}

/// The slots of the current batch and the flow the batch ended with.
#[derive(Default)]
pub struct Forwarded {
    slots: Vec<Slot>,
    /// What the session returns once the slots are filled.
    pub flow: Option<Flow>,
}

impl Forwarded {
    /// True when replies are awaited.
    #[inline]
    pub fn pending(&self) -> bool {
        !self.slots.is_empty()
    }

    /// True when the batch holds as many slots as it may.
    #[inline]
    pub fn full(&self) -> bool {
        self.slots.len() >= MAX_SLOTS
    }

    /// Adds a slot at `at` (not before an earlier one).
    pub fn push(&mut self, slot: Slot) {
        debug_assert!(self.slots.last().is_none_or(|s| s.at <= slot.at));
        self.slots.push(slot);
    }

    /// `len` bytes were inserted at `at` of the output (messages before a reply): later slots
    /// move with them.
    pub fn shift(&mut self, at: usize, len: usize) {
        for s in self.slots.iter_mut().filter(|s| s.at >= at) {
            s.at += len;
        }
    }

    /// Waits for every slot's parts and puts each reply in place in `out`; returns the flow
    /// the batch ended with.
    pub async fn settle(&mut self, out: &mut BytesMut) -> Flow {
        let flow = self.flow.take().unwrap_or(Flow::Continue);
        let slots = std::mem::take(&mut self.slots);
        let Some(first) = slots.first() else {
            return flow;
        };
        let base = first.at;
        let rest = out.split_off(base);
        let mut done = base;
        for slot in slots {
            out.extend_from_slice(&rest[done - base..slot.at - base]);
            done = slot.at;
            let mut answers = Vec::with_capacity(slot.parts.len());
            for part in slot.parts {
                let answer = part
                    .reply
                    .await
                    .unwrap_or_else(|_| Err(RemoteError::Down("request dropped".into())));
                if let Err(e) = &answer {
                    part.member.count_error(e);
                }
                let answer = answer.map(|r| translate::apply(&part.map, r));
                answers.push((part.member, answer));
            }
            combine(&slot.combine, &answers, out);
        }
        out.extend_from_slice(&rest[done - base..]);
        flow
    }
}

/// The client's error text for `member` failing with `e`.
pub fn failure(member: &Member, e: &RemoteError) -> String {
    format!("node {} at {} {e}", member.name(), member.target.address)
}

fn combine(how: &Combine, answers: &[(Arc<Member>, Answer)], out: &mut BytesMut) {
    let resp_error = |out: &mut BytesMut, m: &Member, e: &RemoteError| {
        out.extend_from_slice(b"-ERR ");
        out.extend_from_slice(failure(m, e).as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    match how {
        Combine::Resp => {
            for (m, a) in answers {
                match a {
                    Ok(r) => out.extend_from_slice(r),
                    Err(e) => resp_error(out, m, e),
                }
            }
        }
        &Combine::RespNilOnError { resp3 } => {
            for (_, a) in answers {
                match a {
                    Ok(r) if !r.starts_with(b"-") => out.extend_from_slice(r),
                    _ if resp3 => out.extend_from_slice(b"_\r\n"),
                    _ => out.extend_from_slice(b"$-1\r\n"),
                }
            }
        }
        &Combine::RespSum { local } => {
            let mut sum = local;
            for (m, a) in answers {
                match a {
                    Ok(r) => match integer(r) {
                        Some(n) => sum = sum.saturating_add(n),
                        None => {
                            out.extend_from_slice(r);
                            return;
                        }
                    },
                    Err(e) => {
                        resp_error(out, m, e);
                        return;
                    }
                }
            }
            out.extend_from_slice(format!(":{sum}\r\n").as_bytes());
        }
        Combine::RespAllOk => {
            for (m, a) in answers {
                match a {
                    Ok(r) if &r[..] == b"+OK\r\n" => {}
                    Ok(r) => {
                        out.extend_from_slice(r);
                        return;
                    }
                    Err(e) => {
                        resp_error(out, m, e);
                        return;
                    }
                }
            }
            out.extend_from_slice(b"+OK\r\n");
        }
        &Combine::Flushed { resp } => {
            for (m, a) in answers {
                let why = match a {
                    Ok(r) if &r[..] == b"+OK\r\n" || &r[..] == b"OK\r\n" => continue,
                    Ok(r) => String::from_utf8_lossy(r).trim_end().to_string(),
                    Err(e) => e.to_string(),
                };
                let text = format!("node {} did not flush: {why}", m.name());
                match resp {
                    true => out.extend_from_slice(format!("-ERR {text}\r\n").as_bytes()),
                    false => out.extend_from_slice(format!("SERVER_ERROR {text}\r\n").as_bytes()),
                }
                return;
            }
            out.extend_from_slice(if resp { b"+OK\r\n" } else { b"OK\r\n" });
        }
        Combine::Memcache => {
            for (m, a) in answers {
                match a {
                    Ok(r) => out.extend_from_slice(r),
                    Err(e) => {
                        out.extend_from_slice(b"SERVER_ERROR ");
                        out.extend_from_slice(failure(m, e).as_bytes());
                        out.extend_from_slice(b"\r\n");
                    }
                }
            }
        }
        Combine::MemcacheQuiet { drop } => {
            for (m, a) in answers {
                match a {
                    Ok(r) if drop.iter().any(|d| quiet_match(r, d)) => {}
                    Ok(r) => out.extend_from_slice(r),
                    Err(e) => {
                        out.extend_from_slice(b"SERVER_ERROR ");
                        out.extend_from_slice(failure(m, e).as_bytes());
                        out.extend_from_slice(b"\r\n");
                    }
                }
            }
        }
        Combine::Discard => {}
        Combine::MemcacheGet(order) => {
            // Each member's blocks, in its reply's order (the order its keys were asked in).
            let mut blocks: Vec<std::collections::VecDeque<(&[u8], &[u8])>> = answers
                .iter()
                .map(|(_, a)| match a {
                    Ok(r) => value_blocks(r).into_iter().collect(),
                    Err(_) => Default::default(),
                })
                .collect();
            for key in order {
                match key {
                    GetKey::Local(reply) => out.extend_from_slice(reply),
                    GetKey::Member(i, key) => {
                        let Some(queue) = blocks.get_mut(*i) else {
                            continue;
                        };
                        if queue.front().is_some_and(|(k, _)| k == key) {
                            let (_, block) = queue.pop_front().expect("front");
                            out.extend_from_slice(block);
                        }
                    }
                }
            }
            out.extend_from_slice(b"END\r\n");
        }
    }
}

/// The `(key, whole VALUE block)` pairs of a get reply, in order; stops at anything else.
fn value_blocks(r: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(rest) = r.get(at..) {
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            break;
        };
        let Some(head) = rest[..nl]
            .strip_suffix(b"\r")
            .and_then(|h| h.strip_prefix(b"VALUE "))
        else {
            break;
        };
        let mut fields = head.split(|&b| b == b' ');
        let (Some(key), Some(n)) = (fields.next(), fields.nth(1)) else {
            break;
        };
        let Some(n) = std::str::from_utf8(n)
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
        else {
            break;
        };
        let end = nl + 1 + n + 2;
        if rest.len() < end {
            break;
        }
        out.push((key, &rest[..end]));
        at += end;
    }
    out
}

/// True when meta reply `r` has status `code` (`HD`, `EN`, ...).
fn quiet_match(r: &[u8], code: &[u8]) -> bool {
    r.strip_prefix(code)
        .is_some_and(|rest| rest.starts_with(b" ") || rest.starts_with(b"\r"))
}

/// The value of a RESP integer reply.
pub fn integer(r: &[u8]) -> Option<i64> {
    let digits = r.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}
