//! Time source of the store: real (unix ms, monotonic) or mock (tests).
//!
//! Owns: `Clock`. Must not touch: anything else; this file has no knowledge of nodes.
//! Invariants: `now_ms` never goes backwards for a given clock; the clock remembers its start so
//! that `ItemMeta::atime` (seconds since start) fits in a `u32` for 136 years.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A cheap-to-clone time source in unix milliseconds.
#[derive(Clone)]
pub struct Clock(Arc<Inner>);

struct Inner {
    /// Unix ms at the clock's start.
    start_ms: u64,
    source: Source,
}

enum Source {
    /// `start_ms + elapsed`: monotonic even if the system clock is stepped.
    Real(Instant),
    /// Current unix ms, moved only by `advance`.
    Mock(AtomicU64),
}

impl Clock {
    /// Real clock: unix ms read once at creation, then advanced by `Instant` (monotonic).
    pub fn real() -> Clock {
        let start_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Clock(Arc::new(Inner {
            start_ms,
            source: Source::Real(Instant::now()),
        }))
    }

    /// Mock clock starting at `start_unix_ms`; only `advance` moves it.
    pub fn mock(start_unix_ms: u64) -> Clock {
        Clock(Arc::new(Inner {
            start_ms: start_unix_ms,
            source: Source::Mock(AtomicU64::new(start_unix_ms)),
        }))
    }

    /// Current time in unix milliseconds.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        match &self.0.source {
            Source::Real(start) => {
                let elapsed = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                self.0.start_ms.saturating_add(elapsed)
            }
            Source::Mock(now) => now.load(Relaxed),
        }
    }

    /// Moves a mock clock forward by `ms`; no-op on a real clock.
    pub fn advance(&self, ms: u64) {
        if let Source::Mock(now) = &self.0.source {
            now.fetch_add(ms, Relaxed);
        }
    }

    /// Unix ms at which this clock started (the origin of `ItemMeta::atime`).
    pub fn start_ms(&self) -> u64 {
        self.0.start_ms
    }

    /// Whole seconds from the clock's start to `unix_ms` (0 before the start), as stored in
    /// `ItemMeta::atime`.
    #[inline]
    pub fn secs_since_start(&self, unix_ms: u64) -> u32 {
        let secs = unix_ms.saturating_sub(self.0.start_ms) / 1000;
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// True for a clock made by [`Clock::mock`].
    pub fn is_mock(&self) -> bool {
        matches!(self.0.source, Source::Mock(_))
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("mock", &self.is_mock())
            .field("start_ms", &self.0.start_ms)
            .field("now_ms", &self.now_ms())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_advances_and_real_is_monotonic() {
        let c = Clock::mock(1_000_000);
        assert_eq!(c.now_ms(), 1_000_000);
        c.advance(2_500);
        assert_eq!(c.now_ms(), 1_002_500);
        assert_eq!(c.secs_since_start(c.now_ms()), 2);
        assert_eq!(c.secs_since_start(0), 0);
        let c2 = c.clone();
        c2.advance(500);
        assert_eq!(c.now_ms(), 1_003_000);

        let r = Clock::real();
        let a = r.now_ms();
        r.advance(1_000_000); // no-op
        let b = r.now_ms();
        assert!(b >= a && b - a < 1_000_000);
        assert!(a > 1_600_000_000_000, "unix ms expected, got {a}");
        assert!(!r.is_mock() && c.is_mock());
    }
}
