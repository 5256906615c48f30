//! The Lua engine: one Lua 5.1 VM per server (behind the `Scripts` mutex, which is also what
//! runs scripts one at a time, as redis does), its sandbox, the `redis` API scripts see, the
//! EVAL script cache and running a script.
//!
//! Owns: [`Engine`]: the VM, the sandboxed environments, the script cache (sha1 → compiled
//! function and shebang flags), the pseudo-connection `redis.call` runs commands on, and the
//! PRNG behind `math.random`. Must not touch: the gate (the caller runs [`Engine::run`] inside
//! it), reply conversion details (`convert`), the libraries (`libs`).
//!
//! Sandbox: scripts run in an environment table that is always empty; reading a name falls
//! back to the real globals and fails for a missing one (redis's `Script attempted to access
//! nonexistent global variable`), writing any name fails (`Attempt to modify a readonly
//! table`, redis 7.0's read-only globals). `os`, `io`, `debug`, `require`, `dofile`,
//! `loadfile` and `print` are absent; `loadstring`/`load` refuse bytecode. Unlike redis, the
//! library tables themselves (`string`, `redis`, ...) are not read-only.
//!
//! Invariants: the VM's memory is bounded ([`MEMORY_LIMIT`]): a script that allocates past
//! it fails with an error and the VM stays usable. A script is interrupted only by its own
//! instruction-count hook (SCRIPT KILL), never from another thread.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::BytesMut;
use hashbrown::HashMap;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use super::super::command::{self, Command};
use super::super::conn::{Conn, Ctx};
use super::super::error::{RespError, in_script};
use super::super::frame::{Args, Version};
use super::super::handler;
use super::super::server::REDIS_VERSION;
use super::super::types::fmt_double;
use super::convert::{error_table, lua_to_reply, reply_to_lua};
use super::libs;
use crate::config::Limits;
use crate::server::Shared;
use crate::server::scripts::Scripts;

/// Bytes the Lua VM may allocate: scripts and their data, the EVAL cache and the function
/// libraries together.
pub const MEMORY_LIMIT: usize = 128 << 20;

/// Instructions between two checks of the kill flag (redis's hook period).
const HOOK_PERIOD: u32 = 100_000;

/// Shebang flags (`#!lua flags=...`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// The script has a shebang line (redis's non-compatibility mode).
    pub shebang: bool,
    /// `no-writes`: the script may not write.
    pub no_writes: bool,
}

/// One function registered by a library (FUNCTION LOAD; see `function`).
pub(super) struct Func {
    pub(super) name: String,
    pub(super) callback: Function,
    pub(super) description: Option<Vec<u8>>,
    pub(super) flags: Vec<String>,
}

/// One function library: its code and its functions.
pub(super) struct Library {
    pub(super) code: Vec<u8>,
    pub(super) functions: Vec<Func>,
}

/// The loaded libraries, by name, and which library each function belongs to. Defined here,
/// with the engine that owns it, so that `function` depends on `engine` and not the reverse.
#[derive(Default)]
pub struct Registry {
    pub(super) libraries: std::collections::BTreeMap<String, Library>,
    pub(super) functions: std::collections::BTreeMap<String, String>,
}

/// A script in the EVAL cache.
struct Cached {
    func: Function,
    flags: Flags,
}

/// What runs: an EVAL script (by sha1) or a function (by name).
#[derive(Debug, Clone, Copy)]
pub enum Kind<'a> {
    /// EVAL / EVALSHA: KEYS and ARGV are globals.
    Eval(&'a str),
    /// FCALL: keys and args are the function's two arguments.
    Function(&'a str),
}

/// The engine of one server.
pub struct Engine {
    pub(super) lua: Lua,
    /// The environment of EVAL scripts.
    env: Table,
    /// The environment of function libraries.
    pub(super) fn_env: Table,
    /// The real globals (where KEYS and ARGV are set).
    globals: Table,
    /// Per-run state shared with the Lua side: `dispatch` (redis.call), `resp`, `loading`,
    /// `register` (redis.register_function while a library loads).
    pub(super) hidden: Table,
    /// `function(f, handler, ...)`: xpcall with arguments.
    pub(super) runner: Function,
    /// The error handler: adds redis's `source` and `line` to the error.
    pub(super) handler: Function,
    /// Function libraries (FUNCTION LOAD).
    pub(super) libraries: Registry,
    scripts: HashMap<String, Cached>,
    /// Bytes of cached script bodies (INFO).
    cached_bytes: u64,
    /// The pseudo-connection scripts run commands on.
    conn: Conn,
    pub(super) control: Arc<Scripts>,
    runs: u64,
}

/// Lua run once at start, with the full standard library, before the sandbox closes.
const BOOTSTRAP: &str = r#"
local G, hidden = ...
local rawget, rawset, error, tostring, type, select, unpack, setmetatable =
  rawget, rawset, error, tostring, type, select, unpack, setmetatable
G.dofile, G.loadfile, G.print, G.require, G.module, G.os, G.io, G.package, G.debug =
  nil, nil, nil, nil, nil, nil, nil, nil, nil
local loadstring_raw = loadstring
G.loadstring = function(s, name)
  if type(s) == 'string' and s:byte(1) == 27 then
    return nil, 'attempt to load a binary chunk'
  end
  return loadstring_raw(s, name)
end
G.load = function(f, name)
  if type(f) == 'string' then return G.loadstring(f, name) end
  local parts = {}
  while true do
    local p = f()
    if p == nil or p == '' then break end
    parts[#parts + 1] = p
  end
  return G.loadstring(table.concat(parts), name)
end
local pcall_raw = pcall
local errtext = hidden.errtext
G.pcall = function(...)
  local r = {pcall_raw(...)}
  if not r[1] then
    local e = r[2]
    if type(e) == 'table' and type(e.err) == 'string' then return false, e.err end
    local t = errtext(e)
    if t then return false, t end
  end
  return unpack(r, 1, table.maxn(r))
end
local function sandbox(hide)
  local env = {}
  setmetatable(env, {
    __index = function(_, k)
      local v = nil
      if not hide[k] then v = rawget(G, k) end
      if v == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
      end
      return v
    end,
    __newindex = function() error("Attempt to modify a readonly table", 2) end,
    __metatable = false,
  })
  return env
end
local env = sandbox({})
rawset(G, '_G', env)

local redis = G.redis
-- The API below fails by returning FAIL and the error text: the engine wraps each function
-- in a C function that raises it (see `Engine::new`), keeping the caller's frame.
local FAIL = '\0redis-fail'
local function fail(msg) return FAIL, msg end
redis.pcall = function(...)
  local r = hidden.dispatch(...)
  return r
end
local function single(field)
  return function(...)
    if select('#', ...) ~= 1 or type((...)) ~= 'string' then
      return {err = 'ERR wrong number or type of arguments'}
    end
    return {[field] = ...}
  end
end
redis.status_reply = single('ok')
redis.error_reply = function(...)
  if select('#', ...) ~= 1 or type((...)) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  local e = ...
  if e:sub(1, 1) == '-' then e = e:sub(2) end
  local code, msg = e:match('^(%S+) (.*)$')
  if not code then code, msg = 'ERR', e end
  msg = msg:gsub('[\r\n]+$', '')
  return {err = code .. ' ' .. msg}
end
local sha1 = hidden.sha1
redis.sha1hex = function(...)
  if select('#', ...) ~= 1 then return fail('ERR wrong number of arguments') end
  return sha1(tostring((...)))
end
local log = hidden.log
redis.log = function(...)
  local n = select('#', ...)
  if n < 2 then return fail('ERR redis.log() requires two arguments or more.') end
  local level = ...
  if type(level) ~= 'number' and tonumber(level) == nil then
    return fail('ERR First argument must be a number (log level).')
  end
  level = tonumber(level)
  if level < 0 or level > 3 then return fail('ERR Invalid debug level.') end
  local parts = {}
  for i = 2, n do
    local v = select(i, ...)
    if type(v) == 'string' or type(v) == 'number' then parts[#parts + 1] = tostring(v) end
  end
  log(level, table.concat(parts, ' '))
end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.setresp = function(...)
  if select('#', ...) ~= 1 then return fail('ERR redis.setresp() requires one argument.') end
  local v = tonumber((...))
  if v ~= 2 and v ~= 3 then return fail('ERR RESP version must be 2 or 3.') end
  hidden.resp = v
end
redis.set_repl = function(...)
  if select('#', ...) ~= 1 then return fail('ERR redis.set_repl() requires two arguments.') end
  local v = tonumber((...)) or 0
  if v < 0 or v > 3 or v ~= math.floor(v) then
    return fail('ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.')
  end
end
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end

local lrand, srand, floor = hidden.lrand, hidden.srand, math.floor
local function checkint(n, v, name)
  local x = tonumber(v)
  if x == nil then
    error("bad argument #" .. n .. " to '" .. name .. "' (number expected, got " ..
      (v == nil and 'no value' or type(v)) .. ")", 3)
  end
  if x >= 0 then return floor(x) else return -floor(-x) end
end
G.math.random = function(...)
  local r = lrand()
  local n = select('#', ...)
  if n == 0 then return r end
  if n == 1 then
    local u = checkint(1, (...), 'random')
    if u < 1 then error("bad argument #1 to 'random' (interval is empty)", 2) end
    return floor(r * u) + 1
  end
  if n == 2 then
    local a, b = ...
    local l, u = checkint(1, a, 'random'), checkint(2, b, 'random')
    if l > u then error("bad argument #2 to 'random' (interval is empty)", 2) end
    return floor(r * (u - l + 1)) + l
  end
  error('wrong number of arguments', 2)
end
G.math.randomseed = function(...)
  srand(checkint(1, (...), 'randomseed'))
end

-- Function libraries: while a library loads, `redis` is the loading API only.
local load_redis = {
  register_function = function(...)
    local err = hidden.register(...)
    if err then error({err = err}) end
  end,
  log = redis.log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = redis.REDIS_VERSION, REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
  setresp = redis.setresp,
}
setmetatable(load_redis, {
  __index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __newindex = function() error("Attempt to modify a readonly table", 2) end,
  __metatable = false,
})
local fn_env = {}
setmetatable(fn_env, {
  __index = function(_, k)
    if k == 'redis' and hidden.loading then return load_redis end
    local v = nil
    if k ~= 'KEYS' and k ~= 'ARGV' then v = rawget(G, k) end
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = function() error("Attempt to modify a readonly table", 2) end,
  __metatable = false,
})

local xpcall = xpcall
local runner = function(f, h, ...)
  local n = select('#', ...)
  local args = {...}
  return xpcall(function() return f(unpack(args, 1, n)) end, h)
end
return env, fn_env, runner
"#;

/// lrand48 as redis implements it (`rand.c`): 48-bit state, the top 31 bits out.
#[derive(Debug)]
struct Rand48(AtomicU64);

impl Rand48 {
    const A: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    /// redis's initial state (`X0..X2` before any seed).
    fn new() -> Rand48 {
        Rand48(AtomicU64::new(0x1234_ABCD_330E))
    }

    fn seed(&self, seed: i32) {
        self.0.store(
            (((seed as u32) as u64) << 16 | 0x330E) & Self::MASK,
            Relaxed,
        );
    }

    fn next(&self) -> i32 {
        let x = (Self::A.wrapping_mul(self.0.load(Relaxed)).wrapping_add(0xB)) & Self::MASK;
        self.0.store(x, Relaxed);
        (x >> 17) as i32
    }

    /// `math.random()`'s number in [0, 1).
    fn unit(&self) -> f64 {
        const MAX: i64 = i32::MAX as i64;
        (self.next() as i64 % MAX) as f64 / MAX as f64
    }
}

/// sha1 of `data` in lowercase hex, as redis names scripts.
pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest as _;
    let digest = sha1::Sha1::digest(data);
    let mut s = String::with_capacity(40);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Splits a shebang off `body`: (flags, offset of the code: the shebang's line break is kept
/// so that line numbers stay the user's). `allow_name`: function libraries take `name=`.
pub fn shebang(body: &[u8], allow_name: bool) -> Result<(Flags, usize, Option<String>), RespError> {
    if !body.starts_with(b"#!") {
        return Ok((Flags::default(), 0, None));
    }
    let Some(end) = memchr::memchr(b'\n', body) else {
        return Err(RespError::ShebangInvalid);
    };
    let line = String::from_utf8_lossy(&body[..end]).into_owned();
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or_default();
    if engine != "#!lua" {
        return Err(RespError::ShebangEngine(engine.to_string()));
    }
    let mut flags = Flags {
        shebang: true,
        ..Flags::default()
    };
    let mut name = None;
    for part in parts {
        if let Some(list) = part.strip_prefix("flags=") {
            for flag in list.split(',').filter(|f| !f.is_empty()) {
                match flag {
                    "no-writes" => flags.no_writes = true,
                    "allow-oom" | "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                    other => return Err(RespError::ShebangFlag(other.to_string())),
                }
            }
        } else if let (true, Some(n)) = (allow_name, part.strip_prefix("name=")) {
            name = Some(n.to_string());
        } else {
            return Err(RespError::ShebangOption(part.to_string()));
        }
    }
    Ok((flags, end, name))
}

/// An error reply raised by `redis.call`: its text, code included.
#[derive(Debug)]
struct Failed(String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

/// The text of a [`Failed`] error, however mlua wrapped it on its way through callbacks.
fn failed_text(e: &mlua::Error) -> Option<&str> {
    if let Some(Failed(text)) = e.downcast_ref::<Failed>() {
        return Some(text);
    }
    match e {
        mlua::Error::CallbackError { cause, .. } => failed_text(cause),
        _ => None,
    }
}

/// The text of an error raised in Rust (hook, library) or by Lua itself, with its code.
pub(super) fn error_text(e: &mlua::Error) -> String {
    if let Some(text) = failed_text(e) {
        return text.to_string();
    }
    match e {
        mlua::Error::RuntimeError(s) => format!("ERR {s}"),
        mlua::Error::MemoryError(_) => in_script::OUT_OF_MEMORY.to_string(),
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::SyntaxError { message, .. } => format!("ERR {message}"),
        other => format!("ERR {other}"),
    }
}

impl Engine {
    /// A fresh VM with the sandbox and the `redis` API.
    pub fn new(control: Arc<Scripts>) -> mlua::Result<Engine> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        lua.set_memory_limit(MEMORY_LIMIT)?;
        let globals = lua.globals();
        let hidden = lua.create_table()?;
        let redis = lua.create_table()?;
        redis.set("REDIS_VERSION", REDIS_VERSION)?;
        redis.set("REDIS_VERSION_NUM", version_num(REDIS_VERSION))?;
        globals.set("redis", redis)?;
        hidden.set(
            "sha1",
            lua.create_function(|_, s: mlua::String| Ok(sha1_hex(&s.as_bytes())))?,
        )?;
        hidden.set(
            "log",
            lua.create_function(|_, (level, msg): (u8, String)| {
                match level {
                    0 => tracing::debug!(target: "ringcache::script", "{msg}"),
                    1 => tracing::info!(target: "ringcache::script", verbose = true, "{msg}"),
                    2 => tracing::info!(target: "ringcache::script", "{msg}"),
                    _ => tracing::warn!(target: "ringcache::script", "{msg}"),
                }
                Ok(())
            })?,
        )?;
        let rand = Arc::new(Rand48::new());
        let r = Arc::clone(&rand);
        hidden.set("lrand", lua.create_function(move |_, ()| Ok(r.unit()))?)?;
        hidden.set(
            "srand",
            lua.create_function(move |_, seed: f64| {
                rand.seed(seed as i64 as i32);
                Ok(())
            })?,
        )?;
        // redis.call is a C function, as in redis, so that `return redis.call(...)` keeps the
        // script's frame (a Lua wrapper would be tail-called and the error's line lost). Its
        // error travels as a `Failed` to the error handler, which makes it `{err = text}`.
        let h = hidden.clone();
        let call = lua.create_function(move |_, args: MultiValue| {
            let dispatch = match h.raw_get::<Value>("dispatch")? {
                Value::Function(f) => f,
                _ => {
                    return Err(mlua::Error::external(Failed(
                        "ERR redis.call/pcall can only be called inside a script invocation".into(),
                    )));
                }
            };
            let (v, failed): (Value, bool) = dispatch.call(args)?;
            if failed {
                let text = match &v {
                    Value::Table(t) => t.raw_get::<mlua::String>("err")?.to_string_lossy(),
                    _ => String::new(),
                };
                return Err(mlua::Error::external(Failed(text)));
            }
            Ok(v)
        })?;
        lua.globals().get::<Table>("redis")?.raw_set("call", call)?;
        hidden.set(
            "errtext",
            lua.create_function(|_, v: Value| {
                Ok(match v {
                    Value::Error(e) => Some(error_text(&e)),
                    _ => None,
                })
            })?,
        )?;
        libs::load(&lua, &globals)?;
        let (env, fn_env, runner): (Table, Table, Function) = lua
            .load(BOOTSTRAP)
            .set_name("=bootstrap")
            .call((globals.clone(), hidden.clone()))?;
        let handler = lua.create_function(|lua, err: Value| {
            // Where the error happened: the innermost frame of the user's code.
            let mut at = None;
            for level in 1..200 {
                let Some((source, short, line)) = lua.inspect_stack(level, |d| {
                    let s = d.source();
                    (
                        s.source.map(|s| s.into_owned()),
                        s.short_src.map(|s| s.into_owned()),
                        d.current_line(),
                    )
                }) else {
                    break;
                };
                if let (Some(source), Some(line)) = (source, line)
                    && source.starts_with("@user_")
                {
                    at = Some((source, short.unwrap_or_default(), line));
                    break;
                }
            }
            let t = match err {
                Value::Table(t) => t,
                Value::String(s) => {
                    let t = lua.create_table()?;
                    let mut text = b"ERR ".to_vec();
                    text.extend_from_slice(&s.as_bytes());
                    t.raw_set("err", lua.create_string(&text)?)?;
                    t
                }
                Value::Error(e) => {
                    let t = lua.create_table()?;
                    let text = match (failed_text(&e), &at) {
                        (Some(text), _) => text.to_string(),
                        // A library error, like luaL_error: prefixed with the caller's place.
                        (None, Some((_, short, line))) => {
                            let text = error_text(&e);
                            let msg = text.strip_prefix("ERR ").unwrap_or(&text);
                            format!("ERR {short}:{line}: {msg}")
                        }
                        (None, None) => error_text(&e),
                    };
                    t.raw_set("err", text)?;
                    t
                }
                other => {
                    let t = lua.create_table()?;
                    t.raw_set("err", format!("ERR {}", other.to_string()?))?;
                    t
                }
            };
            if let Some((source, _, line)) = at {
                t.raw_set("source", source)?;
                t.raw_set("line", line)?;
            }
            Ok(t)
        })?;
        let redis: Table = globals.get("redis")?;
        for name in ["sha1hex", "log", "setresp", "set_repl"] {
            let inner: Function = redis.get(name)?;
            let wrapped = lua.create_function(move |_, args: MultiValue| {
                let r: MultiValue = inner.call(args)?;
                if let (Some(Value::String(tag)), Some(Value::String(msg))) = (r.front(), r.get(1))
                    && tag.as_bytes().as_ref() == b"\0redis-fail"
                {
                    return Err(mlua::Error::external(Failed(msg.to_string_lossy())));
                }
                Ok(r)
            })?;
            redis.raw_set(name, wrapped)?;
        }
        Ok(Engine {
            lua,
            env,
            fn_env,
            globals,
            hidden,
            runner,
            handler,
            scripts: HashMap::new(),
            libraries: Default::default(),
            cached_bytes: 0,
            conn: Conn::new(None, None, 0),
            control,
            runs: 0,
        })
    }

    /// Compiles `body` into the cache (SCRIPT LOAD, EVAL); its sha1.
    pub fn load(&mut self, body: &[u8]) -> Result<String, RespError> {
        let sha = sha1_hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, start, _) = shebang(body, false)?;
        let func = self
            .lua
            .load(&body[start..])
            .set_name("@user_script")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => RespError::ScriptCompile(message),
                other => RespError::ScriptCompile(error_text(&other)),
            })?;
        self.cached_bytes += body.len() as u64;
        self.scripts.insert(sha.clone(), Cached { func, flags });
        self.publish_stats();
        Ok(sha)
    }

    /// Whether `sha` (lowercase) is cached.
    pub fn exists(&self, sha: &str) -> bool {
        self.scripts.contains_key(sha)
    }

    /// The flags of cached script `sha`.
    pub fn flags(&self, sha: &str) -> Option<Flags> {
        self.scripts.get(sha).map(|c| c.flags)
    }

    /// SCRIPT FLUSH.
    pub fn flush(&mut self) {
        self.scripts.clear();
        self.cached_bytes = 0;
        let _ = self.lua.gc_collect();
        self.publish_stats();
    }

    /// Publishes the counters INFO shows.
    pub fn publish_stats(&self) {
        let c = &self.control;
        c.cached.store(self.scripts.len() as u64, Relaxed);
        c.cached_bytes.store(self.cached_bytes, Relaxed);
        c.lua_memory.store(self.lua.used_memory() as u64, Relaxed);
    }

    /// Runs cached script `sha` (or function `func`) with `keys` and `args`, writing its
    /// reply for a caller speaking `caller` into `out`. `read_only`: EVAL_RO, FCALL_RO or the
    /// `no-writes` flag. Runs wherever it is called: the caller holds the gate.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        kind: Kind<'_>,
        func: Option<Function>,
        keys: &[&[u8]],
        args: &[&[u8]],
        read_only: bool,
        shared: &Shared,
        limits: &Limits,
        caller: Version,
        out: &mut BytesMut,
    ) -> Result<(), RespError> {
        let func = match (kind, func) {
            (_, Some(f)) => f,
            (Kind::Eval(sha), None) => match self.scripts.get(sha) {
                Some(c) => c.func.clone(),
                None => return Err(RespError::NoScript),
            },
            (Kind::Function(_), None) => return Err(RespError::FunctionNotFound),
        };
        let r = self.call(
            kind, func, keys, args, read_only, shared, limits, caller, out,
        );
        self.runs += 1;
        if self.runs % 50 == 0 {
            // A GC step now and then instead of a full cycle in the middle of a script.
            let _ = self.lua.gc_step_kbytes(50);
        }
        self.publish_stats();
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(text)) => Err(RespError::Script(text)),
            Err(e) => Err(RespError::Script(error_text(&e))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        kind: Kind<'_>,
        func: Function,
        keys: &[&[u8]],
        args: &[&[u8]],
        read_only: bool,
        shared: &Shared,
        limits: &Limits,
        caller: Version,
        out: &mut BytesMut,
    ) -> mlua::Result<Result<(), String>> {
        let lua = &self.lua;
        let control = Arc::clone(&self.control);
        let killed = Arc::clone(&self.control);
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_PERIOD),
            move |_, _| {
                if killed.kill.load(Relaxed) {
                    Err(mlua::Error::external(Failed(in_script::KILLED.to_string())))
                } else {
                    Ok(VmState::Continue)
                }
            },
        )?;
        let keys_t = lua.create_sequence_from(
            keys.iter()
                .map(|k| lua.create_string(k))
                .collect::<mlua::Result<Vec<_>>>()?,
        )?;
        let args_t = lua.create_sequence_from(
            args.iter()
                .map(|k| lua.create_string(k))
                .collect::<mlua::Result<Vec<_>>>()?,
        )?;
        self.hidden.raw_set("resp", 2)?;
        let conn = &mut self.conn;
        let hidden = &self.hidden;
        let wrote = Cell::new(false);
        let result = lua.scope(|scope| {
            let dispatch = scope.create_function_mut(|lua, argv: MultiValue| {
                let version = match hidden.raw_get::<i64>("resp") {
                    Ok(3) => Version::Resp3,
                    _ => Version::Resp2,
                };
                dispatch(
                    lua, argv, conn, shared, limits, version, read_only, &wrote, &control,
                )
            })?;
            hidden.raw_set("dispatch", dispatch)?;
            let called = match kind {
                Kind::Eval(_) => {
                    self.globals.raw_set("KEYS", keys_t.clone())?;
                    self.globals.raw_set("ARGV", args_t.clone())?;
                    self.runner
                        .call::<(bool, Value)>((func, self.handler.clone()))
                }
                Kind::Function(_) => self.runner.call::<(bool, Value)>((
                    func,
                    self.handler.clone(),
                    keys_t.clone(),
                    args_t.clone(),
                )),
            };
            hidden.raw_set("dispatch", Value::Nil)?;
            called
        });
        lua.remove_hook();
        let script = match hidden.raw_get::<i64>("resp") {
            Ok(3) => Version::Resp3,
            _ => Version::Resp2,
        };
        let (ok, value) = result?;
        if ok {
            lua_to_reply(&value, caller, script, out);
            return Ok(Ok(()));
        }
        let name = match kind {
            Kind::Eval(sha) => sha,
            Kind::Function(name) => name,
        };
        let text = match &value {
            Value::Table(t) => {
                let msg = match t.raw_get::<Value>("err")? {
                    Value::String(s) => s.to_string_lossy(),
                    _ => "ERR unknown error".to_string(),
                };
                match (t.raw_get::<Value>("source")?, t.raw_get::<Value>("line")?) {
                    (Value::String(src), line @ (Value::Integer(_) | Value::Number(_))) => {
                        let line = match line {
                            Value::Integer(i) => i,
                            Value::Number(n) => n as i64,
                            _ => 0,
                        };
                        format!("{msg} script: {name}, on {}:{line}.", src.to_string_lossy())
                    }
                    _ => msg,
                }
            }
            // A memory error skips the handler: Lua hands back its message.
            Value::String(s) if s.as_bytes().as_ref() == b"not enough memory" => {
                in_script::OUT_OF_MEMORY.to_string()
            }
            Value::String(s) => format!("ERR Error running script {name}, {}", s.to_string_lossy()),
            Value::Error(e) => error_text(e),
            _ => format!("ERR Error running script {name}, execution failure"),
        };
        let _ = lua.gc_collect();
        Ok(Err(text))
    }
}

/// `redis.call` / `redis.pcall`: runs one command on the script's pseudo-connection; the
/// reply as a Lua value and whether it is an error.
#[allow(clippy::too_many_arguments)]
fn dispatch(
    lua: &Lua,
    argv: MultiValue,
    conn: &mut Conn,
    shared: &Shared,
    limits: &Limits,
    version: Version,
    read_only: bool,
    wrote: &Cell<bool>,
    control: &Scripts,
) -> mlua::Result<(Value, bool)> {
    let fail = |text: &str| Ok((error_table(lua, text.as_bytes())?, true));
    let mut buf = Vec::new();
    let mut ranges = Vec::with_capacity(argv.len());
    for v in argv.iter() {
        let start = buf.len();
        match v {
            Value::String(s) => buf.extend_from_slice(&s.as_bytes()),
            Value::Integer(i) => buf.extend_from_slice(fmt_double(*i as f64).as_bytes()),
            Value::Number(n) => buf.extend_from_slice(fmt_double(*n).as_bytes()),
            _ => return fail(in_script::BAD_ARGUMENT),
        }
        ranges.push((start, buf.len() - start));
    }
    if ranges.is_empty() {
        return fail(in_script::NO_ARGUMENTS);
    }
    let a = Args::new(&buf, &ranges);
    let cmd = match command::parse(&a) {
        Ok((cmd, _)) => cmd,
        Err(RespError::UnknownCommand { .. }) => return fail(in_script::UNKNOWN_COMMAND),
        Err(RespError::WrongArity(_) | RespError::WrongSubcommandArity(..)) => {
            return fail(in_script::WRONG_ARITY);
        }
        Err(e) => return fail(&e.to_string()),
    };
    let flags = cmd.flags();
    if flags.contains(&"noscript") || matches!(cmd, Command::Script | Command::Function) {
        return fail(in_script::NOT_ALLOWED);
    }
    if read_only && cmd.may_replicate() {
        return fail(in_script::WRITE_FROM_READ_ONLY);
    }
    if flags.contains(&"write") {
        if read_only {
            return fail(in_script::WRITE_FROM_READ_ONLY);
        }
        wrote.set(true);
        control.wrote.store(true, Relaxed);
    }
    conn.version = version;
    // Blocking commands answer at once, as inside EXEC.
    conn.in_exec = true;
    conn.in_script = true;
    let mut out = BytesMut::new();
    let mut cx = Ctx {
        shared,
        limits,
        conn,
        pass: None,
        forward: None,
    };
    handler::handle(&a, &mut cx, &mut out);
    let failed = out.first() == Some(&b'-') || out.first() == Some(&b'!');
    Ok((reply_to_lua(lua, &out)?, failed))
}

/// redis's `REDIS_VERSION_NUM`: `0x00MMmmpp`.
fn version_num(v: &str) -> i64 {
    let mut n = 0i64;
    for part in v.split('.').take(3) {
        n = n * 256 + part.parse::<i64>().unwrap_or(0);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn math_random_follows_redis_lrand48() {
        // redis 7.0: `math.randomseed(0) return tostring(math.random())` → 0.17082803611217.
        let r = Rand48::new();
        r.seed(0);
        assert_eq!(format!("{:.14}", r.unit()), "0.17082803611217");
    }

    #[test]
    fn shebangs_parse_like_redis() {
        assert_eq!(shebang(b"return 1", false).map(|s| s.1), Ok(0));
        let (f, at, _) = shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1", false).expect("ok");
        assert!(f.no_writes && f.shebang);
        assert_eq!(at, 31);
        assert_eq!(
            shebang(b"#!luax\n", false).map(|s| s.1),
            Err(RespError::ShebangEngine("#!luax".into()))
        );
        assert_eq!(
            shebang(b"#!lua flags=bogus\n", false).map(|s| s.1),
            Err(RespError::ShebangFlag("bogus".into()))
        );
        assert_eq!(
            shebang(b"#!lua name=x\n", false).map(|s| s.1),
            Err(RespError::ShebangOption("name=x".into()))
        );
    }

    #[test]
    fn version_num_is_redis_layout() {
        assert_eq!(version_num("7.0.15"), 0x07000f);
    }
}
