//! The binary packing libraries redis ships to scripts: `cmsgpack` (lua-cmsgpack's
//! pack/unpack/unpack_one/unpack_limit) and `struct` (Roberto Ierusalimschy's struct:
//! pack/unpack/size), implemented in Rust over mlua with their encodings and error texts.
//!
//! Owns: those two tables. Must not touch: the sandbox or the `redis` API (the engine).
//!
//! Invariants: input bytes are untrusted: every read is bounds-checked and a truncated or
//! malformed input is a Lua error ("Missing bytes in input.", "data string too short"),
//! never a panic; lengths announced by the input never size an allocation up front beyond
//! what the input can hold; nesting is bounded (cmsgpack's 16 levels on encode, a depth cap
//! on decode).

use mlua::{Lua, MultiValue, Table, Value, Variadic};

/// lua-cmsgpack's nesting limit: deeper tables encode as nil.
const MSGPACK_MAX_NESTING: usize = 16;
/// Decoding depth cap (the C library recurses on the C stack).
const MSGPACK_MAX_DECODE_DEPTH: usize = 1000;

fn rt(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

/// Adds `cmsgpack` and `struct` to `globals`.
pub fn load(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    globals.set("cmsgpack", cmsgpack(lua)?)?;
    globals.set("struct", structlib(lua)?)?;
    Ok(())
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

fn mp_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        let u = i as u64;
        if u < 128 {
            out.push(u as u8);
        } else if u < 256 {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u < 65536 {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u < (1 << 32) {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -(1 << 31) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn mp_number(n: f64, out: &mut Vec<u8>) {
    if n.is_finite() && (n as i64) as f64 == n {
        mp_int(n as i64, out);
    } else if (n as f32) as f64 == n || n.is_nan() {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn mp_len(n: usize, fix: u8, fix_max: usize, c16: u8, c32: u8, out: &mut Vec<u8>) {
    if n <= fix_max {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(c16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(c32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn mp_encode(v: &Value, out: &mut Vec<u8>, level: usize) -> mlua::Result<()> {
    match v {
        Value::String(s) => {
            let b = s.as_bytes();
            let n = b.len();
            if n < 32 {
                out.push(0xa0 | n as u8);
            } else if n <= 0xff {
                out.extend_from_slice(&[0xd9, n as u8]);
            } else if n <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => mp_int(*i, out),
        Value::Number(n) => mp_number(*n, out),
        Value::Table(_) if level == MSGPACK_MAX_NESTING => out.push(0xc0),
        Value::Table(t) => {
            let pairs: Vec<(Value, Value)> = t
                .clone()
                .pairs::<Value, Value>()
                .collect::<mlua::Result<_>>()?;
            let mut max = 0i64;
            let mut array = true;
            for (k, _) in &pairs {
                match as_number(k) {
                    Some(n) if n >= 1.0 && n.fract() == 0.0 => max = max.max(n as i64),
                    _ => {
                        array = false;
                        break;
                    }
                }
            }
            if array && max == pairs.len() as i64 {
                let len = t.raw_len();
                mp_len(len, 0x90, 15, 0xdc, 0xdd, out);
                for i in 1..=len {
                    mp_encode(&t.raw_get::<Value>(i)?, out, level + 1)?;
                }
            } else {
                mp_len(pairs.len(), 0x80, 15, 0xde, 0xdf, out);
                for (k, v) in &pairs {
                    mp_encode(k, out, level + 1)?;
                    mp_encode(v, out, level + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

struct Reader<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> mlua::Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.s.len())
            .ok_or_else(|| rt("Missing bytes in input."))?;
        let b = &self.s[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn be(&mut self, n: usize) -> mlua::Result<u64> {
        Ok(self.take(n)?.iter().fold(0u64, |a, &b| a << 8 | b as u64))
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        if depth > MSGPACK_MAX_DECODE_DEPTH {
            return Err(rt("Bad data format in input."));
        }
        let c = self.take(1)?[0];
        Ok(match c {
            0x00..=0x7f => Value::Number(c as f64),
            0x80..=0x8f => self.map(lua, (c & 0x0f) as usize, depth)?,
            0x90..=0x9f => self.array(lua, (c & 0x0f) as usize, depth)?,
            0xa0..=0xbf => self.string(lua, (c & 0x1f) as usize)?,
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xc4 | 0xd9 => {
                let n = self.be(1)? as usize;
                self.string(lua, n)?
            }
            0xc5 | 0xda => {
                let n = self.be(2)? as usize;
                self.string(lua, n)?
            }
            0xc6 | 0xdb => {
                let n = self.be(4)? as usize;
                self.string(lua, n)?
            }
            0xca => Value::Number(f32::from_bits(self.be(4)? as u32) as f64),
            0xcb => Value::Number(f64::from_bits(self.be(8)?)),
            0xcc => Value::Number(self.be(1)? as f64),
            0xcd => Value::Number(self.be(2)? as f64),
            0xce => Value::Number(self.be(4)? as f64),
            0xcf => Value::Number(self.be(8)? as f64),
            0xd0 => Value::Number(self.be(1)? as u8 as i8 as f64),
            0xd1 => Value::Number(self.be(2)? as u16 as i16 as f64),
            0xd2 => Value::Number(self.be(4)? as u32 as i32 as f64),
            0xd3 => Value::Number(self.be(8)? as i64 as f64),
            0xdc => {
                let n = self.be(2)? as usize;
                self.array(lua, n, depth)?
            }
            0xdd => {
                let n = self.be(4)? as usize;
                self.array(lua, n, depth)?
            }
            0xde => {
                let n = self.be(2)? as usize;
                self.map(lua, n, depth)?
            }
            0xdf => {
                let n = self.be(4)? as usize;
                self.map(lua, n, depth)?
            }
            0xe0..=0xff => Value::Number(c as i8 as f64),
            _ => return Err(rt("Bad data format in input.")),
        })
    }

    fn string(&mut self, lua: &Lua, n: usize) -> mlua::Result<Value> {
        let b = self.take(n)?;
        Ok(Value::String(lua.create_string(b)?))
    }

    fn array(&mut self, lua: &Lua, n: usize, depth: usize) -> mlua::Result<Value> {
        let t = lua.create_table()?;
        for i in 1..=n {
            let v = self.value(lua, depth + 1)?;
            t.raw_set(i, v)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize, depth: usize) -> mlua::Result<Value> {
        let t = lua.create_table()?;
        for _ in 0..n {
            let k = self.value(lua, depth + 1)?;
            let v = self.value(lua, depth + 1)?;
            if k != Value::Nil {
                t.raw_set(k, v)?;
            }
        }
        Ok(Value::Table(t))
    }
}

/// Decodes up to `limit` objects (0: all) from `offset`; (next offset or -1 at the end, values).
fn mp_unpack(lua: &Lua, s: &[u8], limit: usize, offset: usize) -> mlua::Result<(i64, Vec<Value>)> {
    let mut r = Reader { s, pos: offset };
    let mut values = Vec::new();
    while r.pos < s.len() && (limit == 0 || values.len() < limit) {
        values.push(r.value(lua, 0)?);
    }
    let next = if r.pos >= s.len() { -1 } else { r.pos as i64 };
    Ok((next, values))
}

fn cmsgpack(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(rt(
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)",
                ));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                mp_encode(v, &mut out, 0)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, s: mlua::String| {
            let (_, values) = mp_unpack(lua, &s.as_bytes(), 0, 0)?;
            Ok(Variadic::from_iter(values))
        })?,
    )?;
    t.set(
        "unpack_one",
        lua.create_function(|lua, (s, offset): (mlua::String, Option<i64>)| {
            let offset = offset.unwrap_or(0).max(0) as usize;
            let (next, values) = mp_unpack(lua, &s.as_bytes(), 1, offset)?;
            let mut out = vec![Value::Number(next as f64)];
            out.extend(values);
            Ok(Variadic::from_iter(out))
        })?,
    )?;
    t.set(
        "unpack_limit",
        lua.create_function(
            |lua, (s, limit, offset): (mlua::String, Option<i64>, Option<i64>)| {
                let limit = limit.unwrap_or(0).max(0) as usize;
                let offset = offset.unwrap_or(0).max(0) as usize;
                let (next, values) = mp_unpack(lua, &s.as_bytes(), limit, offset)?;
                let mut out = vec![Value::Number(next as f64)];
                out.extend(values);
                Ok(Variadic::from_iter(out))
            },
        )?,
    )?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    Ok(t)
}

/// One parsed `struct` format item.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    /// An integer of `size` bytes, signed or not.
    Int(usize, bool),
    Float,
    Double,
    /// `c[n]`: a fixed string (0: the whole string / the previous number).
    Chars(usize),
    /// `s`: a zero-terminated string.
    Zstr,
    Pad,
}

/// A `struct` format: the items with their endianness and alignment state.
struct Format<'a> {
    /// The library function parsing it (named in errors).
    func: &'static str,
    f: &'a [u8],
    pos: usize,
    little: bool,
    align: usize,
}

impl Format<'_> {
    fn new<'a>(f: &'a [u8], func: &'static str) -> Format<'a> {
        Format {
            func,
            f,
            pos: 0,
            little: cfg!(target_endian = "little"),
            align: 1,
        }
    }

    fn num(&mut self, default: usize) -> usize {
        let start = self.pos;
        let mut n: usize = 0;
        while let Some(d @ b'0'..=b'9') = self.f.get(self.pos) {
            n = n.saturating_mul(10).saturating_add((d - b'0') as usize);
            self.pos += 1;
        }
        if self.pos == start { default } else { n }
    }

    /// The next item and its size, or None at the end.
    fn next(&mut self) -> mlua::Result<Option<(Item, usize)>> {
        loop {
            let Some(&c) = self.f.get(self.pos) else {
                return Ok(None);
            };
            self.pos += 1;
            let item = match c {
                b' ' => continue,
                b'>' => {
                    self.little = false;
                    continue;
                }
                b'<' => {
                    self.little = true;
                    continue;
                }
                b'=' => {
                    self.little = cfg!(target_endian = "little");
                    continue;
                }
                b'!' => {
                    let a = self.num(8);
                    if !a.is_power_of_two() {
                        return Err(rt("alignment must be power of 2"));
                    }
                    self.align = a;
                    continue;
                }
                b'b' => (Item::Int(1, true), 1),
                b'B' => (Item::Int(1, false), 1),
                b'h' => (Item::Int(2, true), 2),
                b'H' => (Item::Int(2, false), 2),
                b'l' => (Item::Int(8, true), 8),
                b'L' => (Item::Int(8, false), 8),
                b'T' => (Item::Int(8, false), 8),
                b'i' | b'I' => {
                    let n = self.num(4);
                    if n > 32 {
                        return Err(rt(format!("integral size {n} is larger than limit of 32")));
                    }
                    (Item::Int(n, c == b'i'), n)
                }
                b'f' => (Item::Float, 4),
                b'd' => (Item::Double, 8),
                b'c' => {
                    let n = self.num(1);
                    (Item::Chars(n), n)
                }
                b's' => (Item::Zstr, 0),
                b'x' => (Item::Pad, 1),
                other => {
                    return Err(rt(format!(
                        "bad argument #1 to '{}' (invalid format option '{}')",
                        self.func, other as char
                    )));
                }
            };
            return Ok(Some(item));
        }
    }

    /// Padding before an item of `size` bytes at offset `len`.
    fn padding(&self, item: Item, size: usize, len: usize) -> mlua::Result<usize> {
        if size == 0 || matches!(item, Item::Chars(_)) {
            return Ok(0);
        }
        let size = size.min(self.align);
        if !size.is_power_of_two() {
            return Err(rt("alignment must be power of 2"));
        }
        Ok((size - (len & (size - 1))) & (size - 1))
    }
}

fn put_int(out: &mut Vec<u8>, n: f64, size: usize, little: bool) {
    let v: u64 = if n < 0.0 { n as i64 as u64 } else { n as u64 };
    let mut bytes = vec![0u8; size];
    for (i, b) in bytes.iter_mut().enumerate().take(8) {
        *b = (v >> (8 * i)) as u8;
    }
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn arg_number(args: &MultiValue, i: usize) -> mlua::Result<f64> {
    match args.get(i) {
        Some(Value::Integer(n)) => Ok(*n as f64),
        Some(Value::Number(n)) => Ok(*n),
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                rt(format!(
                    "bad argument #{} to 'pack' (number expected, got string)",
                    i + 1
                ))
            }),
        other => Err(rt(format!(
            "bad argument #{} to 'pack' (number expected, got {})",
            i + 1,
            other.map_or("no value", |v| v.type_name())
        ))),
    }
}

fn arg_bytes(args: &MultiValue, i: usize) -> mlua::Result<Vec<u8>> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(n)) => Ok(n.to_string().into_bytes()),
        Some(Value::Number(n)) => Ok(super::super::types::fmt_double(*n).into_bytes()),
        other => Err(rt(format!(
            "bad argument #{} to 'pack' (string expected, got {})",
            i + 1,
            other.map_or("no value", |v| v.type_name())
        ))),
    }
}

fn struct_pack(args: &MultiValue) -> mlua::Result<Vec<u8>> {
    let fmt = arg_bytes(args, 0)?;
    let mut f = Format::new(&fmt, "pack");
    let mut out = Vec::new();
    let mut arg = 1;
    while let Some((item, size)) = f.next()? {
        let pad = f.padding(item, size, out.len())?;
        out.resize(out.len() + pad, 0);
        match item {
            Item::Int(size, _) => {
                put_int(&mut out, arg_number(args, arg)?, size, f.little);
                arg += 1;
            }
            Item::Float => {
                let n = arg_number(args, arg)? as f32;
                arg += 1;
                out.extend_from_slice(&if f.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            Item::Double => {
                let n = arg_number(args, arg)?;
                arg += 1;
                out.extend_from_slice(&if f.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            Item::Chars(n) => {
                let s = arg_bytes(args, arg)?;
                let n = if n == 0 { s.len() } else { n };
                if s.len() < n {
                    return Err(rt(format!(
                        "bad argument #{} to 'pack' (string too short)",
                        arg + 2
                    )));
                }
                out.extend_from_slice(&s[..n]);
                arg += 1;
            }
            Item::Zstr => {
                let s = arg_bytes(args, arg)?;
                if s.contains(&0) {
                    return Err(rt(format!(
                        "bad argument #{} to 'pack' (string contains zeros)",
                        arg + 2
                    )));
                }
                out.extend_from_slice(&s);
                out.push(0);
                arg += 1;
            }
            Item::Pad => out.push(0),
        }
    }
    Ok(out)
}

fn struct_unpack(lua: &Lua, fmt: &[u8], data: &[u8], start: usize) -> mlua::Result<Vec<Value>> {
    let mut f = Format::new(fmt, "unpack");
    let mut pos = start;
    let mut out: Vec<Value> = Vec::new();
    let short = || rt("bad argument #2 to 'unpack' (data string too short)");
    while let Some((item, size)) = f.next()? {
        pos += f.padding(item, size, pos)?;
        match item {
            Item::Int(size, signed) => {
                let b = data.get(pos..pos + size).ok_or_else(short)?;
                let mut v: u64 = 0;
                for (i, &byte) in b.iter().enumerate().take(8) {
                    let shift = if f.little { i } else { size - 1 - i };
                    if shift < 8 {
                        v |= (byte as u64) << (8 * shift);
                    }
                }
                let n = if signed && size < 8 && size > 0 {
                    let mask = u64::MAX << (size * 8 - 1);
                    if v & mask != 0 {
                        (v | mask) as i64 as f64
                    } else {
                        v as f64
                    }
                } else if signed {
                    v as i64 as f64
                } else {
                    v as f64
                };
                out.push(Value::Number(n));
                pos += size;
            }
            Item::Float => {
                let b: [u8; 4] = data
                    .get(pos..pos + 4)
                    .ok_or_else(short)?
                    .try_into()
                    .map_err(|_| short())?;
                let n = if f.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                out.push(Value::Number(n as f64));
                pos += 4;
            }
            Item::Double => {
                let b: [u8; 8] = data
                    .get(pos..pos + 8)
                    .ok_or_else(short)?
                    .try_into()
                    .map_err(|_| short())?;
                let n = if f.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                out.push(Value::Number(n));
                pos += 8;
            }
            Item::Chars(n) => {
                let n = if n == 0 {
                    match out.pop() {
                        Some(Value::Number(x)) if x >= 0.0 => x as usize,
                        _ => return Err(rt("format 'c0' needs a previous size")),
                    }
                } else {
                    n
                };
                let b = data.get(pos..pos.saturating_add(n)).ok_or_else(short)?;
                out.push(Value::String(lua.create_string(b)?));
                pos += n;
            }
            Item::Zstr => {
                let rest = data.get(pos..).unwrap_or_default();
                let end = memchr::memchr(0, rest).ok_or_else(|| rt("unfinished string in data"))?;
                out.push(Value::String(lua.create_string(&rest[..end])?));
                pos += end + 1;
            }
            Item::Pad => pos += 1,
        }
    }
    out.push(Value::Number((pos + 1) as f64));
    Ok(out)
}

fn structlib(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: MultiValue| lua.create_string(struct_pack(&args)?))?,
    )?;
    t.set(
        "unpack",
        lua.create_function(
            |lua, (fmt, data, init): (mlua::String, mlua::String, Option<i64>)| {
                let start = init.unwrap_or(1);
                if start < 1 {
                    return Err(rt(
                        "bad argument #3 to 'unpack' (offset must be 1 or greater)",
                    ));
                }
                let vals =
                    struct_unpack(lua, &fmt.as_bytes(), &data.as_bytes(), (start - 1) as usize)?;
                Ok(Variadic::from_iter(vals))
            },
        )?,
    )?;
    t.set(
        "size",
        lua.create_function(|_, fmt: mlua::String| {
            let fmt = fmt.as_bytes();
            let mut f = Format::new(&fmt, "size");
            let mut len = 0usize;
            while let Some((item, size)) = f.next()? {
                if item == Item::Zstr {
                    return Err(rt(
                        "bad argument #1 to 'size' (option 's' has no fixed size)",
                    ));
                }
                if item == Item::Chars(0) {
                    return Err(rt(
                        "bad argument #1 to 'size' (option 'c0' has no fixed size)",
                    ));
                }
                len += f.padding(item, size, len)? + size;
            }
            Ok(len as f64)
        })?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgpack_integers_use_the_smallest_encoding() {
        let mut out = Vec::new();
        for n in [0.0, 127.0, 128.0, 65535.0, -1.0, -33.0, -129.0, 1.5] {
            mp_number(n, &mut out);
        }
        assert_eq!(
            out,
            [
                0x00, 0x7f, 0xcc, 0x80, 0xcd, 0xff, 0xff, 0xff, 0xd0, 0xdf, 0xd1, 0xff, 0x7f, 0xca,
                0x3f, 0xc0, 0x00, 0x00
            ]
        );
    }

    #[test]
    fn truncated_msgpack_is_an_error() {
        let lua = Lua::new();
        for bad in [
            &[0xcd, 0x01][..],
            &[0xdb, 0xff, 0xff, 0xff, 0xff],
            &[0x92, 0x01],
        ] {
            assert!(mp_unpack(&lua, bad, 0, 0).is_err(), "{bad:?}");
        }
    }
}
