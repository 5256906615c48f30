//! Function libraries: FUNCTION (LOAD DELETE LIST FLUSH DUMP RESTORE STATS KILL HELP), FCALL
//! and FCALL_RO, with `redis.register_function` in both its forms.
//!
//! Owns: the [`Registry`] of libraries and functions (kept in the engine, so one mutex covers
//! the VM and the names), loading a library (its code runs once with the loading API only),
//! and the FUNCTION replies. Must not touch: the gate and running (`mod`, `engine`).
//!
//! Invariants: a library loads whole or not at all (its functions are checked against every
//! other library's before anything changes); a load runs at most [`LOAD_TIMEOUT`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mlua::{Function, HookTriggers, MultiValue, Value, VmState};

use super::super::conn::{Ctx, Reply};
use super::super::error::RespError;
use super::super::frame::{
    Args, encode_array, encode_bulk, encode_map, encode_null, encode_ok, encode_set, encode_simple,
};
use super::engine::{Engine, Func, Kind, Library, Registry, error_text, shebang};
use super::{exclusive, flush_mode, keys_and_args, kill, with_engine};
use crate::persist::rdb;
use crate::store::glob;
use std::sync::atomic::Ordering::Relaxed;

/// How long a library's code may run while it loads (redis: 500 ms).
const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

impl Func {
    fn no_writes(&self) -> bool {
        self.flags.iter().any(|f| f == "no-writes")
    }
}

impl Registry {
    fn publish(&self, engine_control: &crate::server::scripts::Scripts) {
        engine_control
            .libraries
            .store(self.libraries.len() as u64, Relaxed);
        engine_control
            .functions
            .store(self.functions.len() as u64, Relaxed);
        *engine_control.library_code.lock() =
            self.libraries.values().map(|l| l.code.clone()).collect();
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";
const FLAGS: &[&str] = &[
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// Parses the arguments of `redis.register_function`: the function, or the error text.
fn register_args(args: MultiValue) -> Result<Func, String> {
    let err = |s: &str| Err(format!("ERR {s}"));
    if args.len() == 1
        && let Some(Value::Table(t)) = args.front()
    {
        let mut name = None;
        let mut callback = None;
        let mut description = None;
        let mut flags = Vec::new();
        for pair in t.clone().pairs::<Value, Value>() {
            let Ok((k, v)) = pair else {
                return err("unknown argument given to redis.register_function");
            };
            let key = match &k {
                Value::String(s) => s.to_string_lossy(),
                _ => {
                    return err(
                        "named argument key given to redis.register_function is not a string",
                    );
                }
            };
            match (key.as_str(), v) {
                ("function_name", Value::String(s)) => name = Some(s.to_string_lossy()),
                ("function_name", _) => {
                    return err(
                        "function_name argument given to redis.register_function must be a string",
                    );
                }
                ("callback", Value::Function(f)) => callback = Some(f),
                ("callback", _) => {
                    return err(
                        "callback argument given to redis.register_function must be a function",
                    );
                }
                ("description", Value::String(s)) => description = Some(s.as_bytes().to_vec()),
                ("description", _) => {
                    return err(
                        "description argument given to redis.register_function must be a string",
                    );
                }
                ("flags", Value::Table(ft)) => {
                    for f in ft.sequence_values::<Value>() {
                        match f {
                            Ok(Value::String(s))
                                if FLAGS.contains(&s.to_string_lossy().as_str()) =>
                            {
                                flags.push(s.to_string_lossy())
                            }
                            _ => return err("unknown flag given"),
                        }
                    }
                }
                ("flags", _) => {
                    return err(
                        "flags argument to redis.register_function must be a table representing function flags",
                    );
                }
                _ => return err("unknown argument given to redis.register_function"),
            }
        }
        let Some(name) = name else {
            return err("redis.register_function must get a function name argument");
        };
        let Some(callback) = callback else {
            return err("redis.register_function must get a callback argument");
        };
        return Ok(Func {
            name,
            callback,
            description,
            flags,
        });
    }
    if args.len() == 1 {
        return err(
            "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).",
        );
    }
    if args.len() != 2 {
        return err("wrong number of arguments to redis.register_function");
    }
    let name = match &args[0] {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => super::super::types::fmt_double(*n),
        _ => return err("first argument to redis.register_function must be a string"),
    };
    let Value::Function(callback) = args[1].clone() else {
        return err("second argument to redis.register_function must be a function");
    };
    Ok(Func {
        name,
        callback,
        description: None,
        flags: Vec::new(),
    })
}

impl Engine {
    /// FUNCTION LOAD: compiles and runs `code`, registering its functions; the library name.
    fn load_library(&mut self, code: &[u8], replace: bool) -> Result<String, RespError> {
        let (_, start, name) = match shebang(code, true) {
            Ok(s) if s.0.shebang => s,
            Ok(_) => return Err(RespError::MissingLibraryMetadata),
            Err(RespError::ShebangFlag(_)) => {
                return Err(RespError::Script(
                    "ERR Invalid metadata value given: flags".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        let Some(name) = name else {
            return Err(RespError::LibraryNameMissing);
        };
        if !valid_name(&name) {
            return Err(RespError::Script(format!("ERR {BAD_NAME}")));
        }
        if !replace && self.libraries.libraries.contains_key(&name) {
            return Err(RespError::LibraryExists(name));
        }
        let chunk = self
            .lua
            .load(&code[start..])
            .set_name("@user_function")
            .set_environment(self.fn_env.clone())
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => {
                    RespError::FunctionRegister(format!("ERR {message}"))
                }
                other => RespError::FunctionRegister(error_text(&other)),
            })?;
        let registered: RefCell<Vec<Func>> = RefCell::new(Vec::new());
        let deadline = Instant::now() + LOAD_TIMEOUT;
        self.lua
            .set_hook(
                HookTriggers::new().every_nth_instruction(10_000),
                move |_, _| {
                    if Instant::now() > deadline {
                        Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into()))
                    } else {
                        Ok(VmState::Continue)
                    }
                },
            )
            .map_err(|e| RespError::FunctionRegister(error_text(&e)))?;
        let hidden = self.hidden.clone();
        let outcome = self.lua.scope(|scope| {
            let register =
                scope.create_function(|_, args: MultiValue| match register_args(args) {
                    Ok(f) => {
                        let mut list = registered.borrow_mut();
                        if !valid_name(&f.name) {
                            return Ok(Some(format!("ERR {BAD_NAME}")));
                        }
                        if list.iter().any(|g| g.name == f.name) {
                            return Ok(Some("ERR Function already exists in the library".into()));
                        }
                        list.push(f);
                        Ok(None)
                    }
                    Err(e) => Ok(Some(e)),
                })?;
            hidden.raw_set("register", register)?;
            hidden.raw_set("loading", true)?;
            let r = self
                .runner
                .call::<(bool, Value)>((chunk, self.handler.clone()));
            hidden.raw_set("loading", Value::Nil)?;
            hidden.raw_set("register", Value::Nil)?;
            r
        });
        self.lua.remove_hook();
        let (ok, value) = outcome.map_err(|e| RespError::FunctionRegister(error_text(&e)))?;
        if !ok {
            let msg = match value {
                Value::Table(t) => match t.raw_get::<Value>("err") {
                    Ok(Value::String(s)) => s.to_string_lossy(),
                    _ => "ERR unknown error".into(),
                },
                Value::String(s) => format!("ERR {}", s.to_string_lossy()),
                _ => "ERR unknown error".into(),
            };
            return Err(RespError::FunctionRegister(msg));
        }
        let functions = registered.into_inner();
        if functions.is_empty() {
            return Err(RespError::NoFunctions);
        }
        for f in &functions {
            if let Some(owner) = self.libraries.functions.get(&f.name)
                && *owner != name
            {
                return Err(RespError::FunctionExists(f.name.clone()));
            }
        }
        self.remove_library(&name);
        for f in &functions {
            self.libraries
                .functions
                .insert(f.name.clone(), name.clone());
        }
        self.libraries.libraries.insert(
            name.clone(),
            Library {
                code: code.to_vec(),
                functions,
            },
        );
        self.libraries.publish(&self.control);
        self.publish_stats();
        Ok(name)
    }

    fn remove_library(&mut self, name: &str) -> bool {
        let Some(lib) = self.libraries.libraries.remove(name) else {
            return false;
        };
        for f in &lib.functions {
            self.libraries.functions.remove(&f.name);
        }
        self.libraries.publish(&self.control);
        true
    }

    fn flush_libraries(&mut self) {
        self.libraries = Registry::default();
        self.libraries.publish(&self.control);
        let _ = self.lua.gc_collect();
        self.publish_stats();
    }

    /// The callback and `no-writes` flag of function `name`.
    fn function(&self, name: &str) -> Option<(Function, bool)> {
        let lib = self.libraries.functions.get(name)?;
        let f = self
            .libraries
            .libraries
            .get(lib)?
            .functions
            .iter()
            .find(|f| f.name == name)?;
        Some((f.callback.clone(), f.no_writes()))
    }
}

/// FCALL / FCALL_RO.
pub(super) fn fcall(
    read_only: bool,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    flow: &mut crate::proto::Flow,
) -> Reply {
    let name = String::from_utf8_lossy(a.arg(1)?).into_owned();
    let (keys, args) = keys_and_args(a, 2)?;
    let (callback, no_writes) =
        with_engine(cx.shared, |e| e.function(&name)).ok_or_else(|| RespError::FunctionNotFound)?;
    if read_only && !no_writes {
        return Err(RespError::ScriptWriteFlagReadOnly);
    }
    let read_only = read_only || no_writes;
    let version = cx.conn.version;
    let limits = cx.limits;
    let ran = exclusive(cx, true, |cx| {
        let shared = cx.shared;
        with_engine(shared, |e| {
            e.run(
                Kind::Function(&name),
                Some(callback),
                &keys,
                &args,
                read_only,
                shared,
                limits,
                version,
                out,
            )
        })
    });
    super::retry_unless_ran(ran, flow)
}

const FUNCTION_HELP: &[&str] = &[
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
];

/// FUNCTION's subcommands.
pub(super) fn handle(
    sub: Option<&'static str>,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
) -> Reply {
    let shared = cx.shared;
    let v = cx.conn.version;
    match sub {
        Some("load") => {
            let mut replace = false;
            for opt in a.iter_from(2).take(a.len() - 3) {
                if opt.eq_ignore_ascii_case(b"replace") {
                    replace = true;
                } else {
                    return Err(RespError::UnknownOptionGiven(
                        String::from_utf8_lossy(opt).into_owned(),
                    ));
                }
            }
            let code = a.arg(a.len() - 1)?;
            let name = with_engine(shared, |e| e.load_library(code, replace))?;
            encode_bulk(out, name.as_bytes());
        }
        Some("delete") => {
            let name = String::from_utf8_lossy(a.arg(2)?).into_owned();
            if !with_engine(shared, |e| e.remove_library(&name)) {
                return Err(RespError::LibraryNotFound);
            }
            encode_ok(out);
        }
        Some("flush") => {
            flush_mode(a, true)?;
            with_engine(shared, Engine::flush_libraries);
            encode_ok(out);
        }
        Some("kill") => {
            kill(shared, true)?;
            encode_ok(out);
        }
        Some("stats") => {
            let (libs, funcs) = (
                shared.scripts.libraries.load(Relaxed),
                shared.scripts.functions.load(Relaxed),
            );
            encode_map(out, 2, v);
            encode_bulk(out, b"running_script");
            encode_null(out, v);
            encode_bulk(out, b"engines");
            encode_map(out, 1, v);
            encode_bulk(out, b"LUA");
            encode_map(out, 2, v);
            encode_bulk(out, b"libraries_count");
            super::super::frame::encode_int(out, libs as i64);
            encode_bulk(out, b"functions_count");
            super::super::frame::encode_int(out, funcs as i64);
        }
        Some("list") => {
            let mut pattern: Option<&[u8]> = None;
            let mut with_code = false;
            let mut i = 2;
            while i < a.len() {
                let arg = a.arg(i)?;
                if arg.eq_ignore_ascii_case(b"withcode") && !with_code {
                    with_code = true;
                } else if arg.eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
                    i += 1;
                    pattern = Some(a.arg(i).map_err(|_| {
                        RespError::Script("ERR library name argument was not given".into())
                    })?);
                } else {
                    return Err(RespError::UnknownArgument(
                        String::from_utf8_lossy(arg).into_owned(),
                    ));
                }
                i += 1;
            }
            with_engine(shared, |e| list(e, pattern, with_code, v, out));
        }
        Some("dump") => {
            let payload = with_engine(shared, |e| {
                let codes: Vec<&[u8]> = e
                    .libraries
                    .libraries
                    .values()
                    .map(|l| l.code.as_slice())
                    .collect();
                rdb::dump_functions(&codes)
            });
            encode_bulk(out, &payload);
        }
        Some("restore") => {
            if a.len() > 4 {
                return Err(RespError::SubcommandOrArity(
                    String::from_utf8_lossy(a.arg(1)?).into_owned(),
                    "FUNCTION",
                ));
            }
            let policy = match a.try_get(3) {
                None => 1,
                Some(p) if p.eq_ignore_ascii_case(b"flush") => 0,
                Some(p) if p.eq_ignore_ascii_case(b"append") => 1,
                Some(p) if p.eq_ignore_ascii_case(b"replace") => 2,
                Some(_) => return Err(RespError::RestorePolicy),
            };
            let codes = rdb::restore_functions(a.arg(2)?).map_err(|_| RespError::BadPayload)?;
            with_engine(shared, |e| restore(e, &codes, policy))?;
            encode_ok(out);
        }
        Some("help") => super::super::server::help(out, "FUNCTION", FUNCTION_HELP),
        _ => {
            return Err(RespError::UnknownSubcommand(
                String::from_utf8_lossy(a.arg(1)?).into_owned(),
                "FUNCTION",
            ));
        }
    }
    Ok(())
}

/// FUNCTION RESTORE with policy 0 (FLUSH), 1 (APPEND) or 2 (REPLACE): all or nothing.
fn restore(e: &mut Engine, codes: &[Vec<u8>], policy: u8) -> Result<(), RespError> {
    let saved = std::mem::take(&mut e.libraries);
    if policy != 0 {
        // Rebuild from the saved libraries so that a failure can put them back untouched.
        e.libraries = Registry {
            libraries: BTreeMap::new(),
            functions: BTreeMap::new(),
        };
        for lib in saved.libraries.values() {
            let _ = e.load_library(&lib.code, false);
        }
    }
    for code in codes {
        if let Err(err) = e.load_library(code, policy == 2) {
            e.libraries = saved;
            e.libraries.publish(&e.control);
            return Err(match err {
                RespError::LibraryExists(name) => RespError::LibraryExists(name),
                other => other,
            });
        }
    }
    // FLUSH with an empty payload loads nothing: the registry changed all the same.
    e.libraries.publish(&e.control);
    Ok(())
}

/// Loads a function library from a snapshot (a FUNCTION2 record) into `scripts`' engine, as
/// redis does: as FUNCTION LOAD without REPLACE, so a library whose name (or one of whose
/// functions) is already loaded is an error. The error names the library and says why.
pub fn load_from_snapshot(
    scripts: &std::sync::Arc<crate::server::scripts::Scripts>,
    code: &[u8],
) -> Result<String, String> {
    super::with_engine_of(scripts, |e| e.load_library(code, false)).map_err(|err| {
        let name = match super::engine::shebang(code, true) {
            Ok((_, _, Some(name))) => name,
            _ => String::from_utf8_lossy(code.split(|&b| b == b'\n').next().unwrap_or_default())
                .into_owned(),
        };
        format!("library {name:?}: {err}")
    })
}

fn list(
    e: &Engine,
    pattern: Option<&[u8]>,
    with_code: bool,
    v: super::super::frame::Version,
    out: &mut BytesMut,
) {
    let libs: Vec<(&String, &Library)> = e
        .libraries
        .libraries
        .iter()
        .filter(|(name, _)| pattern.is_none_or(|p| glob::glob(p, name.as_bytes())))
        .collect();
    encode_array(out, libs.len());
    for (name, lib) in libs {
        encode_map(out, if with_code { 4 } else { 3 }, v);
        encode_bulk(out, b"library_name");
        encode_bulk(out, name.as_bytes());
        encode_bulk(out, b"engine");
        encode_bulk(out, b"LUA");
        encode_bulk(out, b"functions");
        encode_array(out, lib.functions.len());
        for f in &lib.functions {
            encode_map(out, 3, v);
            encode_bulk(out, b"name");
            encode_bulk(out, f.name.as_bytes());
            encode_bulk(out, b"description");
            match &f.description {
                Some(d) => encode_bulk(out, d),
                None => encode_null(out, v),
            }
            encode_bulk(out, b"flags");
            encode_set(out, f.flags.len(), v);
            // Status replies, as redis 7.0 (`addReplyStatus`), not bulk strings.
            for flag in &f.flags {
                encode_simple(out, flag.as_bytes());
            }
        }
        if with_code {
            encode_bulk(out, b"library_code");
            encode_bulk(out, &lib.code);
        }
    }
}
