//! The Lua libraries redis ships to scripts, implemented in Rust over mlua: `bit` (LuaBitOp)
//! and `cjson` (lua-cjson's encode/decode and `cjson.null`).
//!
//! Owns: building those tables into a VM's globals. Must not touch: the sandbox or the
//! `redis` API (the engine).
//!
//! Invariants: every function checks its arguments and fails with a Lua error, never a panic;
//! encoding and decoding are bounded in depth (lua-cjson's default limit of 1000), so a
//! self-referencing table or a deeply nested document is an error, not a stack overflow.

use mlua::{LightUserData, Lua, MultiValue, Table, Value, Variadic};

/// lua-cjson's default nesting limit.
const CJSON_MAX_DEPTH: usize = 1000;

/// Adds `bit` and `cjson` to `globals`, and `cmsgpack` and `struct` (`pack`).
pub fn load(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    globals.set("bit", bit(lua)?)?;
    globals.set("cjson", cjson(lua)?)?;
    super::pack::load(lua, globals)
}

fn number(v: &Value, n: usize, name: &str) -> mlua::Result<f64> {
    match v {
        Value::Integer(i) => Ok(*i as f64),
        Value::Number(x) => Ok(*x),
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or_else(|| bad_argument(n, name, "number", v)),
        _ => Err(bad_argument(n, name, "number", v)),
    }
}

fn bad_argument(n: usize, name: &str, want: &str, got: &Value) -> mlua::Error {
    let got = match got {
        Value::Nil => "no value",
        other => other.type_name(),
    };
    mlua::Error::RuntimeError(format!(
        "bad argument #{n} to '{name}' ({want} expected, got {got})"
    ))
}

/// LuaBitOp's normalisation: round to nearest, keep the low 32 bits, signed.
fn tobit(x: f64) -> i32 {
    let r = x.round_ties_even();
    if !r.is_finite() {
        return 0;
    }
    r.rem_euclid(4_294_967_296.0) as u32 as i32
}

fn arg_bits(args: &MultiValue, i: usize, name: &str) -> mlua::Result<i32> {
    let v = args.get(i).cloned().unwrap_or(Value::Nil);
    Ok(tobit(number(&v, i + 1, name)?))
}

fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "tobit",
        lua.create_function(|_, a: MultiValue| Ok(arg_bits(&a, 0, "tobit")? as f64))?,
    )?;
    t.set(
        "bnot",
        lua.create_function(|_, a: MultiValue| Ok(!arg_bits(&a, 0, "bnot")? as f64))?,
    )?;
    t.set(
        "bswap",
        lua.create_function(|_, a: MultiValue| Ok(arg_bits(&a, 0, "bswap")?.swap_bytes() as f64))?,
    )?;
    type Fold = fn(i32, i32) -> i32;
    let folds: [(&str, Fold); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, f) in folds {
        t.set(
            name,
            lua.create_function(move |_, a: MultiValue| {
                let mut acc = arg_bits(&a, 0, name)?;
                for i in 1..a.len() {
                    acc = f(acc, arg_bits(&a, i, name)?);
                }
                Ok(acc as f64)
            })?,
        )?;
    }
    type Shift = fn(i32, u32) -> i32;
    let shifts: [(&str, Shift); 5] = [
        ("lshift", |x, n| ((x as u32) << n) as i32),
        ("rshift", |x, n| ((x as u32) >> n) as i32),
        ("arshift", |x, n| x >> n),
        ("rol", |x, n| (x as u32).rotate_left(n) as i32),
        ("ror", |x, n| (x as u32).rotate_right(n) as i32),
    ];
    for (name, f) in shifts {
        t.set(
            name,
            lua.create_function(move |_, a: MultiValue| {
                let x = arg_bits(&a, 0, name)?;
                let n = arg_bits(&a, 1, name)? as u32 & 31;
                Ok(f(x, n) as f64)
            })?,
        )?;
    }
    t.set(
        "tohex",
        lua.create_function(|_, a: MultiValue| {
            let x = arg_bits(&a, 0, "tohex")? as u32;
            let mut n = match a.get(1) {
                None | Some(Value::Nil) => 8,
                Some(_) => arg_bits(&a, 1, "tohex")?,
            };
            let upper = n < 0;
            if upper {
                n = n.wrapping_neg();
            }
            let n = n.clamp(0, 8) as usize;
            let hex = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(hex[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}

/// `%.14g`, lua-cjson's number format.
fn fmt_g14(d: f64) -> String {
    if d == d.trunc() && d.abs() < 1e14 {
        return format!("{}", d as i64);
    }
    let sci = format!("{d:.13e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..14).contains(&exp) {
        format!(
            "{}e{}{:02}",
            strip(mant),
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    } else {
        let prec = (13 - exp) as usize;
        strip(&format!("{d:.prec$}"))
    }
}

fn is_null(v: &Value) -> bool {
    matches!(v, Value::LightUserData(p) if p.0.is_null())
}

fn cjson(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "encode",
        lua.create_function(|lua, v: Value| {
            let mut out = Vec::new();
            encode(&v, &mut out, 0)?;
            lua.create_string(&out)
        })?,
    )?;
    t.set(
        "decode",
        lua.create_function(|lua, s: mlua::String| {
            let bytes = s.as_bytes();
            let mut p = Parser {
                s: &bytes,
                pos: 0,
                lua,
            };
            p.ws();
            let v = p.value(0)?;
            p.ws();
            if p.pos < p.s.len() {
                return Err(p.error("the end"));
            }
            Ok(v)
        })?,
    )?;
    t.set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    // Settings functions scripts call; ringcache keeps lua-cjson's defaults.
    for name in [
        "encode_keep_buffer",
        "encode_max_depth",
        "decode_max_depth",
        "encode_number_precision",
        "encode_invalid_numbers",
        "decode_invalid_numbers",
        "encode_sparse_array",
    ] {
        t.set(name, lua.create_function(|_, a: Variadic<Value>| Ok(a))?)?;
    }
    Ok(t)
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b if b < 0x20 || b == 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

fn encode_number(d: f64, out: &mut Vec<u8>) -> mlua::Result<()> {
    if !d.is_finite() {
        return Err(mlua::Error::RuntimeError(
            "Cannot serialise number: must not be NaN or Inf".into(),
        ));
    }
    out.extend_from_slice(fmt_g14(d).as_bytes());
    Ok(())
}

fn encode(v: &Value, out: &mut Vec<u8>, depth: usize) -> mlua::Result<()> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => encode_number(*i as f64, out)?,
        Value::Number(n) => encode_number(*n, out)?,
        Value::String(s) => encode_string(&s.as_bytes(), out),
        v if is_null(v) => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            if depth >= CJSON_MAX_DEPTH {
                return Err(mlua::Error::RuntimeError(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 1
                )));
            }
            let pairs: Vec<(Value, Value)> = t
                .clone()
                .pairs::<Value, Value>()
                .collect::<mlua::Result<_>>()?;
            // An array: only positive integer keys, not excessively sparse (lua-cjson).
            let mut max = 0usize;
            let mut array = !pairs.is_empty();
            for (k, _) in &pairs {
                let idx = match k {
                    Value::Integer(i) if *i >= 1 => Some(*i as usize),
                    Value::Number(n) if *n >= 1.0 && n.fract() == 0.0 => Some(*n as usize),
                    _ => None,
                };
                match idx {
                    Some(i) => max = max.max(i),
                    None => {
                        array = false;
                        break;
                    }
                }
            }
            if array && max > pairs.len() * 2 && max > 10 {
                return Err(mlua::Error::RuntimeError(
                    "Cannot serialise table: excessively sparse array".into(),
                ));
            }
            if array {
                out.push(b'[');
                for i in 1..=max {
                    if i > 1 {
                        out.push(b',');
                    }
                    encode(&t.raw_get::<Value>(i)?, out, depth + 1)?;
                }
                out.push(b']');
            } else {
                out.push(b'{');
                for (n, (k, v)) in pairs.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    match k {
                        Value::String(s) => encode_string(&s.as_bytes(), out),
                        Value::Integer(i) => encode_string(fmt_g14(*i as f64).as_bytes(), out),
                        Value::Number(x) => encode_string(fmt_g14(*x).as_bytes(), out),
                        _ => {
                            return Err(mlua::Error::RuntimeError(
                                "Cannot serialise table: table key must be a number or string"
                                    .into(),
                            ));
                        }
                    }
                    out.push(b':');
                    encode(v, out, depth + 1)?;
                }
                out.push(b'}');
            }
        }
        other => {
            return Err(mlua::Error::RuntimeError(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            )));
        }
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    lua: &'a Lua,
}

impl Parser<'_> {
    /// lua-cjson's name of the token at the current position.
    fn found(&self) -> &'static str {
        let rest = &self.s[self.pos.min(self.s.len())..];
        match rest.first() {
            None => "T_END",
            Some(b'{') => "T_OBJ_BEGIN",
            Some(b'}') => "T_OBJ_END",
            Some(b'[') => "T_ARR_BEGIN",
            Some(b']') => "T_ARR_END",
            Some(b'"') => "T_STRING",
            Some(b':') => "T_COLON",
            Some(b',') => "T_COMMA",
            Some(b'-' | b'0'..=b'9') => "T_NUMBER",
            Some(b't') if rest.starts_with(b"true") => "T_BOOLEAN",
            Some(b'f') if rest.starts_with(b"false") => "T_BOOLEAN",
            Some(b'n') if rest.starts_with(b"null") => "T_NULL",
            Some(_) => "invalid token",
        }
    }

    fn error(&self, want: &str) -> mlua::Error {
        let found = self.found();
        mlua::Error::RuntimeError(format!(
            "Expected {want} but found {found} at character {}",
            self.pos + 1
        ))
    }

    fn ws(&mut self) {
        while matches!(self.s.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> mlua::Result<Value> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.error("value"))
        }
    }

    fn value(&mut self, depth: usize) -> mlua::Result<Value> {
        if depth >= CJSON_MAX_DEPTH {
            return Err(mlua::Error::RuntimeError(format!(
                "Found too many nested data structures ({}) at character {}",
                depth + 1,
                self.pos + 1
            )));
        }
        match self.s.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                let t = self.lua.create_table()?;
                self.ws();
                if self.s.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(Value::Table(t));
                }
                loop {
                    self.ws();
                    if self.s.get(self.pos) != Some(&b'"') {
                        return Err(self.error("object key string"));
                    }
                    let k = self.string()?;
                    self.ws();
                    if self.s.get(self.pos) != Some(&b':') {
                        return Err(self.error("colon"));
                    }
                    self.pos += 1;
                    self.ws();
                    let v = self.value(depth + 1)?;
                    t.raw_set(k, v)?;
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Value::Table(t));
                        }
                        _ => return Err(self.error("comma or object end")),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let t = self.lua.create_table()?;
                self.ws();
                if self.s.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(Value::Table(t));
                }
                let mut i = 1;
                loop {
                    self.ws();
                    let v = self.value(depth + 1)?;
                    t.raw_set(i, v)?;
                    i += 1;
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Value::Table(t));
                        }
                        _ => return Err(self.error("comma or array end")),
                    }
                }
            }
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal(b"true", Value::Boolean(true)),
            Some(b'f') => self.literal(b"false", Value::Boolean(false)),
            Some(b'n') => self.literal(
                b"null",
                Value::LightUserData(LightUserData(std::ptr::null_mut())),
            ),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                while matches!(
                    self.s.get(self.pos),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("x");
                match text.parse::<f64>() {
                    Ok(n) => Ok(Value::Number(n)),
                    Err(_) => {
                        self.pos = start;
                        Err(self.error("value"))
                    }
                }
            }
            _ => Err(self.error("value")),
        }
    }

    fn string(&mut self) -> mlua::Result<mlua::String> {
        self.pos += 1;
        let mut buf = Vec::new();
        loop {
            match self.s.get(self.pos) {
                None => return Err(self.error("string end")),
                Some(b'"') => {
                    self.pos += 1;
                    return self.lua.create_string(&buf);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.s.get(self.pos).copied();
                    self.pos += 1;
                    match c {
                        Some(b'"') => buf.push(b'"'),
                        Some(b'\\') => buf.push(b'\\'),
                        Some(b'/') => buf.push(b'/'),
                        Some(b'b') => buf.push(0x08),
                        Some(b'f') => buf.push(0x0c),
                        Some(b'n') => buf.push(b'\n'),
                        Some(b'r') => buf.push(b'\r'),
                        Some(b't') => buf.push(b'\t'),
                        Some(b'u') => {
                            let hex = self
                                .s
                                .get(self.pos..self.pos + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or_else(|| self.error("unicode escape"))?;
                            self.pos += 4;
                            let mut code = hex;
                            if (0xD800..0xDC00).contains(&hex)
                                && self.s.get(self.pos..self.pos + 2) == Some(b"\\u")
                                && let Some(low) = self
                                    .s
                                    .get(self.pos + 2..self.pos + 6)
                                    .and_then(|h| std::str::from_utf8(h).ok())
                                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                            {
                                self.pos += 6;
                                code = 0x10000
                                    + ((hex - 0xD800) << 10)
                                    + (low.wrapping_sub(0xDC00) & 0x3ff);
                            }
                            let ch = char::from_u32(code).unwrap_or('\u{fffd}');
                            let mut tmp = [0u8; 4];
                            buf.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                        }
                        _ => return Err(self.error("escape")),
                    }
                }
                Some(&b) => {
                    buf.push(b);
                    self.pos += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tobit_wraps_like_luabitop() {
        assert_eq!(tobit(4294967295.0), -1);
        assert_eq!(tobit(2147483648.0), i32::MIN);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(1.5), 2);
        assert_eq!(tobit(2.5), 2);
    }

    #[test]
    fn g14_matches_printf() {
        assert_eq!(fmt_g14(1.0), "1");
        assert_eq!(fmt_g14(0.1), "0.1");
        assert_eq!(fmt_g14(1.0 / 3.0), "0.33333333333333");
        assert_eq!(fmt_g14(1e20), "1e+20");
        assert_eq!(fmt_g14(-2.5), "-2.5");
    }
}
