//! The stop signal of a listener's connections, cheap enough to check on every request.
//!
//! Owns: the stopped flag and the wakers of connections waiting on it, and [`Ticker`], the clock
//! of the periodic background tasks that end at shutdown.
//! Must not touch: sockets or sessions.
//! Invariants: once [`Stop::stop`] returns, every [`Stopped`] future reports ready, and every
//! one that was pending has been woken. A `Stopped` polled again by the same task takes no
//! lock (one atomic load and a waker comparison), which is why connections do not use a
//! `CancellationToken` here: each of its polls and checks takes the token's mutex.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use hashbrown::HashMap;
use parking_lot::Mutex;

/// A one-way stop signal shared by a listener and its connections.
#[derive(Default)]
pub struct Stop {
    stopped: AtomicBool,
    waiters: Mutex<Waiters>,
}

#[derive(Default)]
struct Waiters {
    next: u64,
    wakers: HashMap<u64, Waker>,
}

impl Stop {
    /// Signals stop and wakes every pending [`Stopped`] future.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        let wakers: Vec<Waker> = self.waiters.lock().wakers.drain().map(|(_, w)| w).collect();
        for w in wakers {
            w.wake();
        }
    }

    /// True once [`Stop::stop`] has been called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// A future that completes when stop is signalled (at once if it already was).
    pub fn stopped(&self) -> Stopped<'_> {
        Stopped {
            stop: self,
            registered: None,
        }
    }
}

/// Completes when its [`Stop`] is signalled. Cancel-safe; re-polling after completion is fine.
pub struct Stopped<'a> {
    stop: &'a Stop,
    /// The key and waker this future registered, if any.
    registered: Option<(u64, Waker)>,
}

impl Future for Stopped<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.stop.is_stopped() {
            return Poll::Ready(());
        }
        if let Some((_, w)) = &this.registered
            && w.will_wake(cx.waker())
        {
            return Poll::Pending;
        }
        let mut waiters = this.stop.waiters.lock();
        // Checked under the lock: `stop` sets the flag before it takes the lock to wake, so
        // either it sees this waker or this sees the flag.
        if this.stop.is_stopped() {
            return Poll::Ready(());
        }
        let key = match &this.registered {
            Some((key, _)) => *key,
            None => {
                waiters.next += 1;
                waiters.next
            }
        };
        waiters.wakers.insert(key, cx.waker().clone());
        this.registered = Some((key, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        if let Some((key, _)) = self.registered.take() {
            self.stop.waiters.lock().wakers.remove(&key);
        }
    }
}

/// A periodic background task's clock: ticks every `period` (a late tick is delayed, not
/// bunched up) until the shutdown token is cancelled. Shared by the expiry sweep, the snapshot
/// rules and the metrics upkeep.
pub struct Ticker<'a> {
    interval: tokio::time::Interval,
    shutdown: &'a tokio_util::sync::CancellationToken,
}

impl<'a> Ticker<'a> {
    /// A ticker whose first tick is immediate.
    pub fn new(
        period: std::time::Duration,
        shutdown: &'a tokio_util::sync::CancellationToken,
    ) -> Self {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticker { interval, shutdown }
    }

    /// Waits for the next tick: false once shutdown is cancelled (checked first).
    pub async fn tick(&mut self) -> bool {
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => false,
            _ = self.interval.tick() => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_wakes_a_pending_waiter_and_later_ones_are_ready() {
        let stop = std::sync::Arc::new(Stop::default());
        let waiter = {
            let stop = std::sync::Arc::clone(&stop);
            tokio::spawn(async move { stop.stopped().await })
        };
        // Let the waiter register (it cannot complete before stop is signalled).
        while stop.waiters.lock().wakers.is_empty() {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished());
        stop.stop();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("no panic");
        assert!(stop.is_stopped());
        stop.stopped().await;
        assert!(stop.waiters.lock().wakers.is_empty());
    }

    #[test]
    fn a_dropped_waiter_unregisters() {
        let stop = Stop::default();
        let mut f = Box::pin(stop.stopped());
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(f.as_mut().poll(&mut cx).is_pending());
        assert!(f.as_mut().poll(&mut cx).is_pending());
        assert_eq!(stop.waiters.lock().wakers.len(), 1);
        drop(f);
        assert!(stop.waiters.lock().wakers.is_empty());
    }
}
