//! Scripting state every session shares: the engine slot and the flags a running script and
//! the sessions kept out of the gate exchange (kill request, whether the script wrote), plus
//! the counters INFO and the metrics show.
//!
//! Owns: [`Scripts`]. Must not touch: the engine itself (a Lua VM and its caches, owned by
//! `proto::resp::script`, stored here type-erased so that this layer needs no protocol or
//! Lua types), the gate (`gate` marks when a script runs).
//! Invariants: the engine mutex is taken only inside the gate: by a script runner holding the
//! gate exclusively, or by a session inside it (SCRIPT LOAD, FUNCTION ...), so no session
//! inside waits on a runner that waits on it. SCRIPT KILL / FUNCTION KILL run outside the
//! gate and only touch the atomics. `library_code` is its own mutex, never held while taking
//! another one.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64};

use parking_lot::Mutex;

/// The scripting state of one server.
#[derive(Default)]
pub struct Scripts {
    /// The engine, created on first use by the protocol layer.
    pub engine: Mutex<Option<Box<dyn Any + Send>>>,
    /// Set by SCRIPT KILL / FUNCTION KILL; the running script's instruction hook fails it.
    pub kill: AtomicBool,
    /// The running script has called a write command (it can no longer be killed).
    pub wrote: AtomicBool,
    /// Bytes the Lua VM uses (INFO `used_memory_lua`), updated after each run.
    pub lua_memory: AtomicU64,
    /// Scripts in the EVAL cache (INFO `number_of_cached_scripts`).
    pub cached: AtomicU64,
    /// Bytes of the cached scripts' bodies (INFO `used_memory_scripts_eval`).
    pub cached_bytes: AtomicU64,
    /// Functions loaded (INFO `number_of_functions`).
    pub functions: AtomicU64,
    /// Function libraries loaded (INFO `number_of_libraries`).
    pub libraries: AtomicU64,
    /// The code of every loaded function library, by library name: what a snapshot saves
    /// (FUNCTION2 records). Kept by the engine at each change, so that a save reads it without
    /// the engine mutex (which a running script holds).
    pub library_code: Mutex<Vec<Vec<u8>>>,
    /// Scripts killed by SCRIPT KILL / FUNCTION KILL since start.
    pub killed: AtomicU64,
}

impl Scripts {
    /// A copy of the code of every loaded function library, in name order (to save).
    pub fn library_code(&self) -> Vec<Vec<u8>> {
        self.library_code.lock().clone()
    }
}
