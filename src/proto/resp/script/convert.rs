//! Conversions between RESP replies and Lua values, as redis 7.0's `script_lua.c` does them.
//!
//! Owns: [`reply_to_lua`] (a command's reply bytes, RESP2 or RESP3, → the value `redis.call`
//! returns) and [`lua_to_reply`] (a script's return value → the caller's reply bytes).
//! Must not touch: running commands or scripts (the engine), error texts (`error`).
//!
//! Invariants: replies come from this server's own encoder, so a malformed reply is a bug and
//! becomes an error value, never a panic. Lua tables may nest or refer to themselves: the
//! conversion stops at [`MAX_DEPTH`] with redis's `reached lua stack limit` error in place.

use bytes::{BufMut, BytesMut};
use mlua::{Lua, Table, Value};

use super::super::frame::{
    Version, encode_array, encode_bool, encode_bulk, encode_int, encode_map, encode_null,
    encode_set,
};
use super::super::types::fmt_double;

/// Deepest nesting converted (redis fails where its Lua stack cannot grow).
pub const MAX_DEPTH: usize = 500;

/// A table `{err = text}`, what redis.pcall returns for an error reply.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(text)?)?;
    Ok(Value::Table(t))
}

/// One reply of `bytes` as a Lua value (the first one; the rest is ignored).
pub fn reply_to_lua(lua: &Lua, bytes: &[u8]) -> mlua::Result<Value> {
    let mut pos = 0;
    parse(lua, bytes, &mut pos, 0)
}

fn line<'b>(bytes: &'b [u8], pos: &mut usize) -> mlua::Result<&'b [u8]> {
    let rest = bytes.get(*pos..).unwrap_or_default();
    let end = memchr::memmem::find(rest, b"\r\n")
        .ok_or_else(|| mlua::Error::RuntimeError("malformed reply".into()))?;
    *pos += end + 2;
    Ok(&rest[..end])
}

fn number(s: &[u8]) -> mlua::Result<i64> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| mlua::Error::RuntimeError("malformed reply length".into()))
}

fn bulk<'b>(bytes: &'b [u8], pos: &mut usize, len: i64) -> mlua::Result<&'b [u8]> {
    let len = usize::try_from(len).unwrap_or(0);
    let data = pos
        .checked_add(len)
        .and_then(|end| bytes.get(*pos..end))
        .ok_or_else(|| mlua::Error::RuntimeError("short reply".into()))?;
    *pos += len + 2;
    Ok(data)
}

fn single(lua: &Lua, field: &str, v: impl mlua::IntoLua) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, v)?;
    Ok(Value::Table(t))
}

fn parse(lua: &Lua, bytes: &[u8], pos: &mut usize, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::RuntimeError("reply nested too deep".into()));
    }
    let kind = *bytes
        .get(*pos)
        .ok_or_else(|| mlua::Error::RuntimeError("empty reply".into()))?;
    *pos += 1;
    let head = line(bytes, pos)?;
    Ok(match kind {
        b'+' => single(lua, "ok", lua.create_string(head)?)?,
        b'-' => error_table(lua, head)?,
        b':' => Value::Number(number(head)? as f64),
        b'$' => match number(head)? {
            -1 => Value::Boolean(false),
            n => Value::String(lua.create_string(bulk(bytes, pos, n)?)?),
        },
        b'*' | b'>' => match number(head)? {
            -1 => Value::Boolean(false),
            n => {
                let t = lua.create_table()?;
                for i in 1..=n {
                    t.raw_set(i, parse(lua, bytes, pos, depth + 1)?)?;
                }
                Value::Table(t)
            }
        },
        b'%' => {
            let inner = lua.create_table()?;
            for _ in 0..number(head)? {
                let k = parse(lua, bytes, pos, depth + 1)?;
                let v = parse(lua, bytes, pos, depth + 1)?;
                inner.raw_set(k, v)?;
            }
            single(lua, "map", inner)?
        }
        b'~' => {
            let inner = lua.create_table()?;
            for _ in 0..number(head)? {
                let k = parse(lua, bytes, pos, depth + 1)?;
                inner.raw_set(k, true)?;
            }
            single(lua, "set", inner)?
        }
        b'|' => {
            // Attributes are not shown to scripts: skip them, then the reply itself.
            for _ in 0..number(head)? * 2 {
                parse(lua, bytes, pos, depth + 1)?;
            }
            parse(lua, bytes, pos, depth + 1)?
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(head == b"t"),
        b',' => {
            let d = std::str::from_utf8(head)
                .ok()
                .and_then(|s| match s {
                    "inf" => Some(f64::INFINITY),
                    "-inf" => Some(f64::NEG_INFINITY),
                    s => s.parse().ok(),
                })
                .unwrap_or(f64::NAN);
            single(lua, "double", d)?
        }
        b'(' => single(lua, "big_number", lua.create_string(head)?)?,
        b'=' => {
            let data = bulk(bytes, pos, number(head)?)?;
            let (format, text) = if data.len() >= 4 {
                (&data[..3], &data[4..])
            } else {
                (&b"txt"[..], data)
            };
            let inner = lua.create_table()?;
            inner.raw_set("string", lua.create_string(text)?)?;
            inner.raw_set("format", lua.create_string(format)?)?;
            single(lua, "verbatim_string", inner)?
        }
        _ => return Err(mlua::Error::RuntimeError("unknown reply type".into())),
    })
}

/// Writes a script's return value `v` as the reply to a caller speaking `caller`; `script` is
/// the protocol the script chose with `redis.setresp` (it decides how booleans convert).
pub fn lua_to_reply(v: &Value, caller: Version, script: Version, out: &mut BytesMut) {
    write(v, caller, script, out, 0);
}

fn without_line_breaks(s: &[u8]) -> Vec<u8> {
    s.iter()
        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect()
}

fn field(t: &Table, name: &str) -> Value {
    t.get::<Value>(name).unwrap_or(Value::Nil)
}

fn write(v: &Value, caller: Version, script: Version, out: &mut BytesMut, depth: usize) {
    if depth > MAX_DEPTH {
        out.put_slice(b"-ERR reached lua stack limit\r\n");
        return;
    }
    match v {
        Value::String(s) => encode_bulk(out, &s.as_bytes()),
        Value::Boolean(b) => match script {
            Version::Resp2 if *b => encode_int(out, 1),
            Version::Resp2 => encode_null(out, caller),
            Version::Resp3 => encode_bool(out, *b, caller),
        },
        Value::Integer(i) => encode_int(out, *i),
        // C's `(long long)` of a double out of range: x86 gives the "integer indefinite".
        Value::Number(n)
            if n.is_nan() || *n >= 9.223_372_036_854_776e18 || *n < -9.223_372_036_854_776e18 =>
        {
            encode_int(out, i64::MIN)
        }
        Value::Number(n) => encode_int(out, *n as i64),
        Value::Table(t) => write_table(t, caller, script, out, depth),
        _ => encode_null(out, caller),
    }
}

fn write_table(t: &Table, caller: Version, script: Version, out: &mut BytesMut, depth: usize) {
    if let Value::String(e) = field(t, "err") {
        out.put_u8(b'-');
        out.put_slice(&without_line_breaks(&e.as_bytes()));
        out.put_slice(b"\r\n");
        return;
    }
    if let Value::String(s) = field(t, "ok") {
        out.put_u8(b'+');
        out.put_slice(&without_line_breaks(&s.as_bytes()));
        out.put_slice(b"\r\n");
        return;
    }
    match field(t, "double") {
        Value::Number(d) => return write_double(d, caller, out),
        Value::Integer(i) => return write_double(i as f64, caller, out),
        _ => {}
    }
    if let Value::String(s) = field(t, "big_number") {
        let s = without_line_breaks(&s.as_bytes());
        match caller {
            Version::Resp2 => encode_bulk(out, &s),
            Version::Resp3 => {
                out.put_u8(b'(');
                out.put_slice(&s);
                out.put_slice(b"\r\n");
            }
        }
        return;
    }
    if let Value::Table(vt) = field(t, "verbatim_string")
        && let (Value::String(format), Value::String(text)) =
            (field(&vt, "format"), field(&vt, "string"))
    {
        let text = text.as_bytes();
        match caller {
            Version::Resp2 => encode_bulk(out, &text),
            Version::Resp3 => {
                let format = format.as_bytes();
                let mut f = [b' '; 3];
                for (d, s) in f.iter_mut().zip(format.iter()) {
                    *d = *s;
                }
                out.put_slice(format!("={}\r\n", text.len() + 4).as_bytes());
                out.put_slice(&f);
                out.put_u8(b':');
                out.put_slice(&text);
                out.put_slice(b"\r\n");
            }
        }
        return;
    }
    if let Value::Table(m) = field(t, "map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
        encode_map(out, pairs.len(), caller);
        for (k, v) in &pairs {
            write(k, caller, script, out, depth + 1);
            write(v, caller, script, out, depth + 1);
        }
        return;
    }
    if let Value::Table(s) = field(t, "set") {
        let keys: Vec<Value> = s
            .pairs::<Value, Value>()
            .filter_map(|p| p.ok().map(|(k, _)| k))
            .collect();
        encode_set(out, keys.len(), caller);
        for k in &keys {
            write(k, caller, script, out, depth + 1);
        }
        return;
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
    }
    encode_array(out, items.len());
    for v in &items {
        write(v, caller, script, out, depth + 1);
    }
}

fn write_double(d: f64, caller: Version, out: &mut BytesMut) {
    let text = fmt_double(d);
    match caller {
        Version::Resp2 => encode_bulk(out, text.as_bytes()),
        Version::Resp3 => {
            out.put_u8(b',');
            out.put_slice(text.as_bytes());
            out.put_slice(b"\r\n");
        }
    }
}
