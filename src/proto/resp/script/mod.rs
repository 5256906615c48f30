//! Scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT (LOAD EXISTS FLUSH KILL HELP), FCALL,
//! FCALL_RO and FUNCTION, with redis 7.0's replies and errors.
//!
//! Owns: argument parsing of those commands, running a script inside the gate, the busy
//! rules (which requests a session answers while a script runs too long). The engine (Lua VM,
//! sandbox, `redis` API, EVAL cache) is `engine`; conversions are `convert`; the libraries
//! `libs` (bit, cjson) and `pack` (cmsgpack, struct); function libraries `function`. Must not touch: sockets, framing, store internals.
//!
//! Atomicity: a script runs inside [`Gate::exclusive`](crate::server::gate::Gate::exclusive),
//! as EXEC does: no other session (RESP or memcached) handles a request meanwhile, whatever
//! nodes its keys live on and while a migration runs. So unlike Redis Cluster, keys that a
//! script did not declare in KEYS are allowed. The script runs off the runtime's worker
//! (`proto::off_worker`), so the worker's role (its queued sessions, polling the sockets)
//! moves to another thread; every other session waits asynchronously (the gate is closed:
//! `Flow::Block` until it opens), holding no thread. A session kept out longer than `busy-reply-threshold` answers
//! BUSY (see `RespSession::run_busy`), and SCRIPT KILL / FUNCTION KILL raise the kill flag
//! that the script's instruction hook checks.

mod convert;
mod engine;
mod function;
mod libs;
mod pack;

use std::sync::atomic::Ordering::Relaxed;

use bytes::BytesMut;

use super::command::Command;
use super::conn::{Ctx, Reply};
use super::error::RespError;
use super::frame::{Args, encode_array, encode_bulk, encode_int, encode_ok, parse_i64};
use crate::proto::Flow;
use crate::server::Shared;
use crate::server::scripts::Scripts;
use engine::{Engine, Kind};
use std::sync::Arc;

/// The busy threshold in milliseconds (`busy-reply-threshold`, default 5000; 0: never busy).
pub fn busy_threshold(shared: &Shared) -> u64 {
    shared
        .config_set
        .lock()
        .get("busy-reply-threshold")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000)
}

/// Whether request `a` runs while a script is busy: SCRIPT KILL, FUNCTION KILL, QUIT.
pub fn allowed_while_busy(a: &Args<'_>) -> bool {
    let name = a.try_get(0).unwrap_or_default();
    let sub = a.try_get(1).unwrap_or_default();
    let is = |s: &[u8], w: &str| s.eq_ignore_ascii_case(w.as_bytes());
    (is(name, "script") || is(name, "function")) && is(sub, "kill") && a.len() == 2
        || is(name, "quit")
}

pub use function::load_from_snapshot;

/// Runs `f` on the server's engine (created on first use).
pub(super) fn with_engine<R>(shared: &Shared, f: impl FnOnce(&mut Engine) -> R) -> R {
    with_engine_of(&shared.scripts, f)
}

/// Runs `f` on the engine kept in `scripts` (created on first use).
fn with_engine_of<R>(scripts: &Arc<Scripts>, f: impl FnOnce(&mut Engine) -> R) -> R {
    let mut slot = scripts.engine.lock();
    if slot.as_ref().is_none_or(|e| !e.is::<Engine>()) {
        // Only fails if the allocator refuses the VM's first kilobytes.
        let engine = Engine::new(Arc::clone(scripts)).expect("a new Lua VM");
        *slot = Some(Box::new(engine));
    }
    let engine = slot
        .as_mut()
        .and_then(|e| e.downcast_mut::<Engine>())
        .expect("the engine slot holds an Engine (set above)");
    f(engine)
}

/// Runs `f` while no other session handles a request (unless this connection already runs
/// exclusively, inside EXEC), marked as a script for BUSY. None when another exclusive caller
/// (a script, EXEC) runs: the request is then retried after the gate opens
/// ([`Flow::Block`]), so that a session never parks its thread behind a long script.
pub(super) fn exclusive<R>(
    cx: &mut Ctx<'_>,
    function: bool,
    f: impl FnOnce(&mut Ctx<'_>) -> R,
) -> Option<R> {
    let Some(pass) = cx.pass else {
        return Some(f(cx));
    };
    if cx.conn.in_exec {
        return Some(f(cx));
    }
    let gate = pass.gate();
    gate.try_exclusive(pass, || {
        let scripts = &cx.shared.scripts;
        scripts.kill.store(false, Relaxed);
        scripts.wrote.store(false, Relaxed);
        gate.script_started(function);
        let r = crate::proto::off_worker(|| f(cx));
        gate.script_ended();
        r
    })
}

/// A script's KEYS and ARGV.
type KeysArgs<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>);

/// Splits `numkeys key... arg...` starting at index `at`.
pub(super) fn keys_and_args<'a>(a: &Args<'a>, at: usize) -> Result<KeysArgs<'a>, RespError> {
    let n = parse_i64(a.arg(at)?).ok_or_else(|| RespError::NotInteger)?;
    if n < 0 {
        return Err(RespError::NumKeysNegative);
    }
    let rest: Vec<&[u8]> = a.iter_from(at + 1).collect();
    if n as u64 > rest.len() as u64 {
        return Err(RespError::TooManyKeys);
    }
    let (keys, args) = rest.split_at(n as usize);
    Ok((keys.to_vec(), args.to_vec()))
}

/// EVAL*, FCALL*, SCRIPT and FUNCTION.
pub(super) fn handle(
    cmd: Command,
    sub: Option<&'static str>,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    flow: &mut Flow,
) -> Reply {
    match cmd {
        Command::Eval | Command::EvalSha | Command::EvalRo | Command::EvalShaRo => {
            eval(cmd, a, cx, out, flow)
        }
        Command::FCall | Command::FCallRo => {
            function::fcall(cmd == Command::FCallRo, a, cx, out, flow)
        }
        Command::Script => script(sub, a, cx, out),
        Command::Function => function::handle(sub, a, cx, out),
        _ => Err(RespError::NotInGroup(cmd.wire())),
    }
}

fn eval(
    cmd: Command,
    a: &Args<'_>,
    cx: &mut Ctx<'_>,
    out: &mut BytesMut,
    flow: &mut Flow,
) -> Reply {
    let body = a.arg(1)?;
    let (keys, args) = keys_and_args(a, 2)?;
    let by_sha = matches!(cmd, Command::EvalSha | Command::EvalShaRo);
    let read_only = matches!(cmd, Command::EvalRo | Command::EvalShaRo);
    let sha = if by_sha {
        if body.len() != 40 {
            return Err(RespError::NoScript);
        }
        String::from_utf8_lossy(body).to_ascii_lowercase()
    } else {
        // Compiled (or found) before taking the gate: a syntax error keeps nobody waiting.
        with_engine(cx.shared, |e| e.load(body))?
    };
    let flags = with_engine(cx.shared, |e| e.flags(&sha)).ok_or_else(|| RespError::NoScript)?;
    if read_only && flags.shebang && !flags.no_writes {
        return Err(RespError::ScriptWriteFlagReadOnly);
    }
    let read_only = read_only || flags.no_writes;
    let version = cx.conn.version;
    let limits = cx.limits;
    let ran = exclusive(cx, false, |cx| {
        let shared = cx.shared;
        with_engine(shared, |e| {
            e.run(
                Kind::Eval(&sha),
                None,
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
    retry_unless_ran(ran, flow)
}

/// The reply of a run, or (when the gate was taken) a retry once it opens.
pub(super) fn retry_unless_ran(ran: Option<Reply>, flow: &mut Flow) -> Reply {
    match ran {
        Some(r) => r,
        None => {
            *flow = Flow::Block;
            Ok(())
        }
    }
}

const SCRIPT_HELP: &[&str] = &[
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
];

/// FLUSH's optional mode: SYNC or ASYNC (both flush at once here).
pub(super) fn flush_mode(a: &Args<'_>, function: bool) -> Result<(), RespError> {
    match a.len() {
        2 => Ok(()),
        3 => {
            let m = a.arg(2)?;
            if m.eq_ignore_ascii_case(b"sync") || m.eq_ignore_ascii_case(b"async") {
                Ok(())
            } else {
                Err(RespError::FlushOption(function))
            }
        }
        _ => Err(RespError::FlushOption(function)),
    }
}

/// SCRIPT KILL / FUNCTION KILL: asks the running script to stop (redis's `scriptKill`).
pub(super) fn kill(shared: &Shared, function: bool) -> Reply {
    let Some((_, running_function)) = shared.gate.script_running() else {
        return Err(RespError::NotBusy);
    };
    if shared.scripts.wrote.load(Relaxed) {
        return Err(RespError::Unkillable);
    }
    if running_function != function {
        return Err(RespError::Busy(running_function));
    }
    shared.scripts.kill.store(true, Relaxed);
    shared.scripts.killed.fetch_add(1, Relaxed);
    Ok(())
}

fn script(sub: Option<&'static str>, a: &Args<'_>, cx: &mut Ctx<'_>, out: &mut BytesMut) -> Reply {
    match sub {
        Some("load") => {
            let sha = with_engine(cx.shared, |e| e.load(a.arg(2)?))?;
            encode_bulk(out, sha.as_bytes());
        }
        Some("exists") => {
            let found: Vec<bool> = with_engine(cx.shared, |e| {
                a.iter_from(2)
                    .map(|s| e.exists(&String::from_utf8_lossy(s).to_ascii_lowercase()))
                    .collect()
            });
            encode_array(out, found.len());
            for f in found {
                encode_int(out, f as i64);
            }
        }
        Some("flush") => {
            flush_mode(a, false)?;
            with_engine(cx.shared, Engine::flush);
            encode_ok(out);
        }
        Some("kill") => {
            kill(cx.shared, false)?;
            encode_ok(out);
        }
        Some("help") => super::server::help(out, "SCRIPT", SCRIPT_HELP),
        _ => {
            return Err(RespError::UnknownSubcommand(
                String::from_utf8_lossy(a.arg(1)?).into_owned(),
                "SCRIPT",
            ));
        }
    }
    Ok(())
}
