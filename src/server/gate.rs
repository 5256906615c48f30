//! The exclusive gate: lets one caller (EXEC, a script) run while no session runs a batch.
//!
//! Owns: [`Gate`] and the per-session [`Pass`]. A session holds its pass "inside" while it
//! handles a batch of requests ([`Pass::enter`] / [`Pass::leave`]); [`Gate::exclusive`] waits
//! until every other pass is outside, keeps them out while its closure runs, then lets them in.
//! This is Redis's guarantee for MULTI/EXEC and scripts (nothing else runs meanwhile), across
//! every node and during a migration, without locking keys one by one.
//! Must not touch: sockets, protocols, the store.
//! Invariants: a batch never waits on anything while inside (sessions handle requests
//! synchronously), so an exclusive caller waits at most one batch per session. Cost outside a
//! transaction: entering is one store and one load on the session's own flag and the gate's
//! shared (read-mostly) flag; no shared cache line is written per batch. An exclusive caller
//! takes a mutex (one at a time), raises `closed`, and spins (yielding) until every flag is
//! clear.
//!
//! Memory order: `enter` stores its flag then loads `closed`; `exclusive` stores `closed` then
//! loads the flags; both SeqCst, so at least one side sees the other (Dekker): either the
//! session sees `closed` and steps out, or the exclusive caller sees it inside and waits.
//!
//! Sessions kept out do not block their thread: [`Pass::try_enter`] fails and the session
//! waits asynchronously ([`Pass::wake_hint`]: the gate's `opened` notification, which every
//! exclusive caller fires when it is done, with a deadline). Long exclusive callers
//! (scripts) mark their start ([`Gate::script_started`]), so that a session kept out past the
//! busy threshold can answer `BUSY` instead of waiting, as redis does. The script mark is
//! written only by script runners and read only on the slow path, so the batch path is
//! unchanged.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// The gate of one server.
#[derive(Default)]
pub struct Gate {
    /// Raised while an exclusive caller runs or waits for sessions to leave.
    closed: AtomicBool,
    /// One exclusive caller at a time; sessions kept out wait on it.
    exclusive: Mutex<()>,
    /// Every pass handed out and still alive.
    passes: Mutex<Vec<Arc<AtomicBool>>>,
    /// While a script runs exclusively: [`now_ms`] at its start (0: no script runs).
    script_since: AtomicU64,
    /// The running script is a function (FCALL), not EVAL: which KILL applies.
    script_is_function: AtomicBool,
    /// Fired each time an exclusive caller is done: sessions kept out wait on it.
    opened: Arc<Notify>,
}

/// What a session kept out of the gate does ([`Pass::busy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Inside: handle the batch.
    Inside,
    /// Outside: a script has run past the busy threshold; answer BUSY (the bool: the script is
    /// a function).
    Busy(bool),
}

/// Milliseconds on a process-wide monotonic clock, never 0.
pub fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// A session's pass through the [`Gate`]; leaves the gate's list when dropped.
pub struct Pass {
    gate: Arc<Gate>,
    inside: Arc<AtomicBool>,
}

impl Gate {
    /// A pass for a new session (outside).
    pub fn pass(self: &Arc<Gate>) -> Pass {
        let inside = Arc::new(AtomicBool::new(false));
        self.passes.lock().push(Arc::clone(&inside));
        Pass {
            gate: Arc::clone(self),
            inside,
        }
    }

    /// Runs `f` while no other session is inside. `pass` is the caller's own (it may be
    /// inside; it is taken out for the wait and put back in after). Waits (parked) while
    /// another exclusive caller runs: for callers off the runtime's workers; sessions use
    /// [`Gate::try_exclusive`].
    ///
    /// The caller steps out *before* it waits for the gate: two sessions inside that both
    /// call this (a cross-node BITOP and a DBSIZE during a migration, say) would otherwise
    /// each wait for the other, one for the mutex and one for the other's flag.
    pub fn exclusive<R>(&self, pass: &Pass, f: impl FnOnce() -> R) -> R {
        // Outside before waiting: the caller holding the gate may be waiting for this pass.
        let was_inside = pass.inside.swap(false, SeqCst);
        let one = self.exclusive.lock();
        self.run_exclusive(one, was_inside, pass, f)
    }

    /// Like [`Gate::exclusive`], but None at once if another exclusive caller runs (the
    /// session then waits for [`Pass::wake_hint`] asynchronously and retries), so that no
    /// runtime thread ever parks behind a long script.
    pub fn try_exclusive<R>(&self, pass: &Pass, f: impl FnOnce() -> R) -> Option<R> {
        let one = self.exclusive.try_lock()?;
        let was_inside = pass.inside.swap(false, SeqCst);
        Some(self.run_exclusive(one, was_inside, pass, f))
    }

    fn run_exclusive<R>(
        &self,
        one: parking_lot::MutexGuard<'_, ()>,
        was_inside: bool,
        pass: &Pass,
        f: impl FnOnce() -> R,
    ) -> R {
        self.closed.store(true, SeqCst);
        let others: Vec<Arc<AtomicBool>> = self.passes.lock().clone();
        for flag in &others {
            let mut spins = 0u32;
            while flag.load(SeqCst) {
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
        let r = f();
        if was_inside {
            // Back inside before the gate opens, while still holding it: never a wait here.
            pass.inside.store(true, SeqCst);
        }
        self.closed.store(false, SeqCst);
        drop(one);
        self.opened.notify_waiters();
        r
    }

    /// Marks the start of a script run (called inside [`Gate::exclusive`]).
    pub fn script_started(&self, function: bool) {
        self.script_is_function.store(function, SeqCst);
        self.script_since.store(now_ms(), SeqCst);
    }

    /// Marks the end of a script run.
    pub fn script_ended(&self) {
        self.script_since.store(0, SeqCst);
    }

    /// The running script: (milliseconds it has run, is a function), None when none runs.
    pub fn script_running(&self) -> Option<(u64, bool)> {
        let since = self.script_since.load(SeqCst);
        (since != 0).then(|| {
            (
                now_ms().saturating_sub(since),
                self.script_is_function.load(SeqCst),
            )
        })
    }

    /// Number of passes alive (tests).
    pub fn passes(&self) -> usize {
        self.passes.lock().len()
    }
}

impl Pass {
    /// Steps inside for a batch, waiting while an exclusive caller runs.
    #[inline]
    pub fn enter(&self) {
        while !self.try_enter() {
            // Wait for the exclusive caller to finish (it holds this mutex while it runs).
            drop(self.gate.exclusive.lock());
        }
    }

    /// Steps inside if no exclusive caller runs or waits; false (and outside) otherwise.
    #[inline]
    pub fn try_enter(&self) -> bool {
        self.inside.store(true, SeqCst);
        if !self.gate.closed.load(SeqCst) {
            return true;
        }
        self.inside.store(false, SeqCst);
        false
    }

    /// Whether a session kept out (after [`Pass::try_enter`] failed) should answer BUSY: a
    /// script has run for at least `threshold_ms()` (0: never; read only while a script
    /// runs). `Entry::Busy` says which kind.
    pub fn busy(&self, threshold_ms: impl FnOnce() -> u64) -> Option<Entry> {
        let (ran, function) = self.gate.script_running()?;
        let t = threshold_ms();
        (t > 0 && ran >= t).then_some(Entry::Busy(function))
    }

    /// What a session kept out waits for before it tries again: the gate opening, or a
    /// deadline (when a running script reaches `threshold_ms`, so the session can answer
    /// BUSY; at most 100 ms, in case the opening fired just before the wait began).
    pub fn wake_hint(&self, threshold_ms: impl FnOnce() -> u64) -> (Arc<Notify>, Option<Instant>) {
        let now = Instant::now();
        let mut wait = Duration::from_millis(100);
        if let Some((ran, _)) = self.gate.script_running() {
            let t = threshold_ms();
            if t > 0 {
                wait = wait.min(Duration::from_millis(t.saturating_sub(ran).max(1)));
            }
        }
        (Arc::clone(&self.gate.opened), Some(now + wait))
    }

    /// Steps outside after a batch.
    #[inline]
    pub fn leave(&self) {
        self.inside.store(false, SeqCst);
    }

    /// The gate this pass belongs to.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.inside.store(false, SeqCst);
        self.gate
            .passes
            .lock()
            .retain(|p| !Arc::ptr_eq(p, &self.inside));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    /// Sessions increment two counters inside their batches, one after the other; an
    /// exclusive caller must always see them equal (no batch half done), and every increment
    /// must land.
    #[test]
    fn exclusive_runs_between_batches_only() {
        let gate = Arc::new(Gate::default());
        let a = Arc::new(AtomicU64::new(0));
        let b = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (gate, a, b) = (Arc::clone(&gate), Arc::clone(&a), Arc::clone(&b));
                std::thread::spawn(move || {
                    let pass = gate.pass();
                    for i in 0..20_000u64 {
                        pass.enter();
                        a.fetch_add(1, SeqCst);
                        if i % 7 == 0 {
                            std::hint::spin_loop();
                        }
                        b.fetch_add(1, SeqCst);
                        pass.leave();
                        if i % 1000 == 0 {
                            // An exclusive section from inside a batch, as EXEC runs.
                            pass.enter();
                            gate.exclusive(&pass, || {
                                assert_eq!(a.load(SeqCst), b.load(SeqCst));
                            });
                            pass.leave();
                        }
                    }
                })
            })
            .collect();
        let pass = gate.pass();
        for _ in 0..2000 {
            gate.exclusive(&pass, || assert_eq!(a.load(SeqCst), b.load(SeqCst)));
        }
        for t in threads {
            t.join().expect("session thread");
        }
        assert_eq!(a.load(SeqCst), 60_000);
        assert_eq!(b.load(SeqCst), 60_000);
        drop(pass);
        assert_eq!(gate.passes(), 0);
    }

    /// While a script runs past the threshold a session kept out is told to answer BUSY
    /// (an EXEC-like caller only makes it wait); the gate's opening wakes the waiters.
    #[test]
    fn a_long_script_makes_waiting_sessions_busy() {
        let gate = Arc::new(Gate::default());
        let waiter = gate.pass();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let runner = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                let pass = gate.pass();
                gate.exclusive(&pass, || {
                    gate.script_started(true);
                    started_tx.send(()).expect("started");
                    done_rx.recv().expect("done");
                    gate.script_ended();
                });
            })
        };
        started_rx.recv().expect("started");
        assert!(!waiter.try_enter());
        assert!(
            !waiter.inside.load(SeqCst),
            "a session kept out stays outside"
        );
        let (opened, deadline) = waiter.wake_hint(|| 20);
        assert!(deadline.is_some_and(|d| d <= Instant::now() + Duration::from_millis(20)));
        std::thread::sleep(Duration::from_millis(25));
        assert_eq!(waiter.busy(|| 20), Some(Entry::Busy(true)));
        assert_eq!(
            waiter.busy(|| 0),
            None,
            "a threshold of 0 never answers BUSY"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let woken = opened.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            done_tx.send(()).expect("done");
            tokio::time::timeout(Duration::from_secs(10), woken)
                .await
                .expect("the opening wakes waiters");
        });
        runner.join().expect("runner");
        assert!(waiter.try_enter());
        waiter.leave();
        assert!(gate.script_running().is_none());
    }

    /// Two sessions inside their batches both run an exclusive section, over and over: each
    /// gets its turn (neither waits for the other's flag while holding the gate).
    #[test]
    fn two_sessions_inside_can_both_go_exclusive() {
        let gate = Arc::new(Gate::default());
        let n = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (gate, n) = (Arc::clone(&gate), Arc::clone(&n));
                std::thread::spawn(move || {
                    let pass = gate.pass();
                    for _ in 0..5_000 {
                        pass.enter();
                        gate.exclusive(&pass, || {
                            n.fetch_add(1, SeqCst);
                        });
                        pass.leave();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("session thread");
        }
        assert_eq!(n.load(SeqCst), 10_000);
    }
}
