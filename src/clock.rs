//! The time source. Everything that compares times asks a [`Clock`], so
//! tests can move time forward (token expiry, backoff, retention) instead of
//! sleeping, or make it jump back as a corrected wall clock does.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Wall-clock time plus an offset that only tests change; tests may also
/// freeze it so that only `advance` moves it.
#[derive(Debug, Clone)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
    /// Milliseconds since the epoch while frozen; `NOT_FROZEN` otherwise.
    frozen_ms: Arc<AtomicI64>,
}

const NOT_FROZEN: i64 = i64::MIN;

impl Default for Clock {
    fn default() -> Self {
        Self { offset_ms: Arc::default(), frozen_ms: Arc::new(AtomicI64::new(NOT_FROZEN)) }
    }
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, truncated to microseconds: both databases store that precision,
    /// so a value read back equals the value written.
    pub fn now(&self) -> DateTime<Utc> {
        let frozen = self.frozen_ms.load(Ordering::Relaxed);
        let base =
            if frozen == NOT_FROZEN { Utc::now() } else { DateTime::from_timestamp_millis(frozen).unwrap_or_default() };
        (base + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))).trunc_subsecs(6)
    }

    /// Stops the clock at the current instant (for tests that must not
    /// depend on how long a step takes).
    pub fn freeze(&self) {
        let now = self.now();
        self.offset_ms.store(0, Ordering::Relaxed);
        self.frozen_ms.store(now.timestamp_millis(), Ordering::Relaxed);
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Moves this clock (and every clone of it) back, as a wall clock that
    /// is corrected backwards does (for tests of clock jumps).
    pub fn rewind(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_sub(ms, Ordering::Relaxed);
    }
}
