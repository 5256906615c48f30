//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT.
//!
//! Owns: the per-connection settings these change in `Conn` (protocol version, name, library
//! name and version, access after AUTH/HELLO) and their replies (PING's in RESP2 subscribe
//! mode too). Must not touch: the password
//! check itself (`acl`, `crate::auth`), framing, the keyspace.
//!
//! Invariant: QUIT answers `+OK` and returns `Flow::Close`; nothing else here closes.

use bytes::BytesMut;

use super::acl;
use super::args::parse_int;
use super::command::Command;
use super::conn::Conn;
use super::conn::{Ctx, Reply};
use super::error::RespError;
use super::frame::{
    Args, Version, encode_array, encode_bulk, encode_int, encode_map, encode_null, encode_ok,
    encode_simple, encode_verbatim, parse_i64,
};
use super::server::{REDIS_VERSION, help};
use super::{pubsub, tracking, txn};
use crate::proto::Flow;
use crate::server::clients::{Client, Shown};

/// Runs a connection command (its arity is checked).
pub(super) fn handle(
    cmd: Command,
    sub: Option<&'static str>,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    flow: &mut Flow,
) -> Reply {
    match cmd {
        Command::Ping => {
            if cx.conn.version == Version::Resp2 && cx.conn.subs.any() {
                match a.len() {
                    1 => pubsub::subscribed_pong(out, None),
                    2 => pubsub::subscribed_pong(out, Some(a.arg(1)?)),
                    _ => return Err(RespError::WrongArity("ping")),
                }
                return Ok(());
            }
            match a.len() {
                1 => encode_simple(out, b"PONG"),
                2 => encode_bulk(out, a.arg(1)?),
                _ => return Err(RespError::WrongArity("ping")),
            }
            Ok(())
        }
        Command::Echo => {
            encode_bulk(out, a.arg(1)?);
            Ok(())
        }
        Command::Hello => hello(cx, a, out),
        Command::Auth => auth(cx, a, out),
        Command::Select => {
            let db = parse_int(a.arg(1)?)?;
            if db != 0 {
                return Err(RespError::DbOutOfRange);
            }
            encode_ok(out);
            Ok(())
        }
        Command::Quit => {
            encode_ok(out);
            *flow = Flow::Close;
            Ok(())
        }
        Command::Reset => {
            cx.conn.version = Version::Resp2;
            cx.conn.name = None;
            cx.conn.publish_names();
            txn::reset(cx);
            pubsub::leave(cx.conn, cx.shared);
            tracking::off(cx.conn, cx.shared);
            if let Some(m) = &cx.conn.mailbox {
                m.set_resp3(false);
            }
            encode_simple(out, b"RESET");
            Ok(())
        }
        Command::Client => client(cx, sub, a, out),
        _ => Err(RespError::NotInGroup(cmd.wire())),
    }
}

fn valid_client_name(name: &[u8]) -> Reply {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(RespError::InvalidClientName);
    }
    Ok(())
}

fn set_name(conn: &mut Conn, name: &[u8]) {
    conn.name = (!name.is_empty()).then(|| name.into());
    conn.publish_names();
}

fn hello(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let mut version = None;
    let mut j = 1;
    if a.len() >= 2 {
        let ver = parse_i64(a.arg(1)?).ok_or_else(|| RespError::ProtocolVersion)?;
        if !(2..=3).contains(&ver) {
            return Err(RespError::NoProto);
        }
        version = Some(if ver == 2 {
            Version::Resp2
        } else {
            Version::Resp3
        });
        j = 2;
    }
    let mut name: Option<&[u8]> = None;
    let mut user: Option<&[u8]> = None;
    let mut password: &[u8] = b"";
    while j < a.len() {
        let opt = a.arg(j)?;
        let more = a.len() - 1 - j;
        if opt.eq_ignore_ascii_case(b"auth") && more >= 2 {
            user = Some(a.arg(j + 1)?);
            password = a.arg(j + 2)?;
            j += 2;
        } else if opt.eq_ignore_ascii_case(b"setname") && more >= 1 {
            valid_client_name(a.arg(j + 1)?)?;
            name = Some(a.arg(j + 1)?);
            j += 1;
        } else {
            return Err(RespError::HelloOption(
                String::from_utf8_lossy(opt).into_owned(),
            ));
        }
        j += 1;
    }
    if let Some(login) = user.and_then(|u| acl::login(cx.shared, Some(u), password)) {
        cx.conn.access = login?;
    } else if !cx.conn.access.authenticated {
        return Err(RespError::HelloNoAuth);
    } else if user.is_some_and(|u| u != b"default") {
        return Err(RespError::WrongPass);
    }
    if let Some(n) = name {
        set_name(cx.conn, n);
    }
    if let Some(v) = version {
        cx.conn.version = v;
        if let Some(m) = &cx.conn.mailbox {
            m.set_resp3(v == Version::Resp3);
        }
    }
    let v = cx.conn.version;
    encode_map(out, 7, v);
    encode_bulk(out, b"server");
    encode_bulk(out, b"redis");
    encode_bulk(out, b"version");
    encode_bulk(out, REDIS_VERSION.as_bytes());
    encode_bulk(out, b"proto");
    encode_int(out, if v == Version::Resp3 { 3 } else { 2 });
    encode_bulk(out, b"id");
    encode_int(out, cx.conn.id as i64);
    encode_bulk(out, b"mode");
    encode_bulk(out, b"standalone");
    encode_bulk(out, b"role");
    encode_bulk(out, b"master");
    encode_bulk(out, b"modules");
    encode_array(out, 0);
    Ok(())
}

fn auth(cx: &mut Ctx<'_>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let login = match a.len() {
        2 => acl::login(cx.shared, None, a.arg(1)?),
        3 => acl::login(cx.shared, Some(a.arg(1)?), a.arg(2)?),
        _ => None,
    };
    if let Some(result) = login {
        cx.conn.access = result?;
        encode_ok(out);
        return Ok(());
    }
    match a.len() {
        2 => Err(RespError::AuthNotConfigured),
        3 if a.arg(1)? == b"default" => {
            encode_ok(out);
            Ok(())
        }
        3 => Err(RespError::WrongPass),
        _ => Err(RespError::Syntax),
    }
}

/// CLIENT INFO's line: this connection, published first so that it is current.
fn client_line(cx: &mut Ctx<'_>) -> String {
    cx.conn.publish();
    let now = cx.shared.clock.now_ms();
    match &cx.conn.client {
        Some(c) => c.line(now),
        None => {
            // Not a registered connection (unit tests): shown from its own state.
            let c = &*cx.conn;
            let client = Client::new(c.id, c.peer, c.local, c.created_ms);
            *client.shown.lock() = Shown {
                name: c.name.clone(),
                lib_name: c.lib_name.clone(),
                lib_ver: c.lib_ver.clone(),
                last: c.last,
                resp: if c.version == Version::Resp3 { 3 } else { 2 },
                blocked: false,
                multi: None,
                sub: c.subs.channels.len(),
                psub: c.subs.patterns.len(),
                ssub: c.subs.shard.len(),
                tracking: c.tracking.as_ref().map(|t| (t.redirect as i64, t.bcast)),
            };
            client.touch(now);
            client.line(now)
        }
    }
}

/// CLIENT LIST: every RESP connection of the server.
fn client_list(cx: &mut Ctx<'_>) -> String {
    cx.conn.publish();
    let now = cx.shared.clock.now_ms();
    let all = cx.shared.clients.list();
    if all.is_empty() {
        return client_line(cx);
    }
    all.iter().map(|c| c.line(now)).collect()
}

fn on_off(arg: &[u8]) -> Reply {
    if arg.eq_ignore_ascii_case(b"on") || arg.eq_ignore_ascii_case(b"off") {
        Ok(())
    } else {
        Err(RespError::Syntax)
    }
}

fn client(cx: &mut Ctx<'_>, sub: Option<&str>, a: &Args<'_>, out: &mut BytesMut) -> Reply {
    let v = cx.conn.version;
    // CLIENT LIST's `cmd=` names the subcommand, as redis does.
    cx.conn.last = match sub.unwrap_or_default() {
        "id" => "client|id",
        "getname" => "client|getname",
        "setname" => "client|setname",
        "info" => "client|info",
        "list" => "client|list",
        "setinfo" => "client|setinfo",
        "no-evict" => "client|no-evict",
        "no-touch" => "client|no-touch",
        "reply" => "client|reply",
        _ => "client",
    };
    match sub.unwrap_or_default() {
        "id" => encode_int(out, cx.conn.id as i64),
        "getname" => match &cx.conn.name {
            Some(n) => encode_bulk(out, n),
            None => encode_null(out, v),
        },
        "setname" => {
            valid_client_name(a.arg(2)?)?;
            set_name(cx.conn, a.arg(2)?);
            encode_ok(out);
        }
        "info" => {
            encode_verbatim(out, client_line(cx).as_bytes(), v);
        }
        "list" => {
            encode_verbatim(out, client_list(cx).as_bytes(), v);
        }
        "setinfo" => {
            let (attr, value) = (a.arg(2)?, a.arg(3)?);
            if attr.eq_ignore_ascii_case(b"lib-name") {
                cx.conn.lib_name = Some(value.into());
            } else if attr.eq_ignore_ascii_case(b"lib-ver") {
                cx.conn.lib_ver = Some(value.into());
            } else {
                return Err(RespError::UnrecognizedOption(
                    String::from_utf8_lossy(attr).into_owned(),
                ));
            }
            cx.conn.publish_names();
            encode_ok(out);
        }
        "no-evict" | "no-touch" => {
            on_off(a.arg(2)?)?;
            encode_ok(out);
        }
        "tracking" | "caching" | "getredir" | "trackinginfo" => {
            return tracking::client(cx, sub.unwrap_or_default(), a, out);
        }
        "reply" => {
            if !a.arg(2)?.eq_ignore_ascii_case(b"on") {
                return Err(RespError::Syntax);
            }
            encode_ok(out);
        }
        _ => help(
            out,
            "CLIENT",
            &[
                "GETNAME",
                "ID",
                "INFO",
                "LIST",
                "NO-EVICT (ON|OFF)",
                "NO-TOUCH (ON|OFF)",
                "SETINFO <LIB-NAME|LIB-VER> <value>",
                "SETNAME <name>",
            ],
        ),
    }
    Ok(())
}
