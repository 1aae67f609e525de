//! A per-client fixed-window rate limiter (in memory, per process).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    /// Requests allowed per window; 0 disables the limit.
    limit: u32,
    window: Duration,
    state: Mutex<Windows>,
}

/// Each client's window, and how large the map may grow before expired
/// windows are swept out.
struct Windows {
    by_client: HashMap<IpAddr, (Instant, u32)>,
    sweep_above: usize,
}

/// Clients remembered before the first sweep.
const SWEEP_ABOVE: usize = 100_000;

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        let state = Windows { by_client: HashMap::new(), sweep_above: SWEEP_ABOVE };
        Self { limit, window, state: Mutex::new(state) }
    }

    /// Counts one request; `Err(retry_after)` when over the limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(ip, Instant::now())
    }

    /// [`Self::check`] at a given moment (the tests step time themselves
    /// instead of sleeping and racing a busy machine).
    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        // A poisoned lock only means another request panicked mid-update;
        // the counts are still usable.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.by_client.len() > state.sweep_above {
            state.by_client.retain(|_, (start, _)| now.duration_since(*start) < self.window);
            // When most windows are still open (a crowd signing up within a
            // minute), sweeping again at the next request would walk the
            // whole map for every request: wait until it has doubled.
            state.sweep_above = SWEEP_ABOVE.max(2 * state.by_client.len());
        }
        let entry = state.by_client.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return Err(self.window.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }

    /// `Some(retry_after)` when `ip` has used up its window, without
    /// counting a request (for limits that count only failures).
    pub fn exhausted(&self, ip: IpAddr) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let now = Instant::now();
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (start, count) = *state.by_client.get(&ip)?;
        let elapsed = now.duration_since(start);
        (elapsed < self.window && count >= self.limit).then(|| self.window.saturating_sub(elapsed))
    }

    /// Clients currently remembered.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.state.lock().map(|s| s.by_client.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_limit_then_refuses_per_address() {
        let rl = RateLimiter::new(2, Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(rl.check(a).is_ok());
        assert!(rl.check(a).is_ok());
        assert!(rl.check(a).is_err());
        assert!(rl.check(b).is_ok());
        assert!(RateLimiter::new(0, Duration::from_secs(60)).check(a).is_ok());
    }

    #[test]
    fn a_crowd_of_open_windows_is_swept_rarely_and_expired_ones_go() {
        let window = Duration::from_secs(60);
        let rl = RateLimiter::new(1, window);
        let start = Instant::now();
        let client = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        for i in 0..=SWEEP_ABOVE as u32 {
            assert!(rl.check_at(client(i), start).is_ok());
        }
        // Over the threshold with every window open: nothing is dropped,
        // and the next sweep waits until the map has doubled.
        assert!(rl.check_at(client(SWEEP_ABOVE as u32 + 1), start).is_ok());
        assert_eq!(rl.remembered(), SWEEP_ABOVE + 2);
        assert!(rl.check_at(client(0), start).is_err(), "an open window still counts");
        assert_eq!(rl.state.lock().unwrap().sweep_above, 2 * (SWEEP_ABOVE + 1));
        // Once the windows have closed, the next sweep drops them.
        let later = start + window;
        for i in 0..=SWEEP_ABOVE as u32 + 1 {
            let _ = rl.check_at(client(1_000_000 + i), later);
        }
        assert!(rl.remembered() <= SWEEP_ABOVE + 2, "the old clients are gone: {}", rl.remembered());
    }
}
