//! A per-client fixed-window rate limiter (in memory, per process), and
//! the sign-up limits built from it: per address and per network (an IPv4
//! /24 or an IPv6 /64, what one person or one small network usually holds).

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

/// The address a limit counts: an IPv4-mapped IPv6 address
/// (`::ffff:192.0.2.1`) is the IPv4 address it carries.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The network `ip` belongs to for the subnet limit, as its first address:
/// the /24 of an IPv4 address, the /64 of an IPv6 one.
pub fn subnet_of(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V4(v4) => IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) & 0xffff_ff00)),
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
    }
}

/// Sign-up limits: per address and per subnet, each a fixed one-minute
/// window. A per-address limit of 0 turns both off (load tests from one
/// address rely on that). A network holds at least one address, so its
/// limit is never below the per-address one (an operator who raised the
/// per-address limit is not capped lower by the new network limit).
pub struct SubscribeLimits {
    per_ip: RateLimiter,
    per_subnet: RateLimiter,
}

impl SubscribeLimits {
    pub fn new(per_ip: u32, per_subnet: u32) -> Self {
        let window = Duration::from_secs(60);
        let per_subnet = if per_ip == 0 || per_subnet == 0 { 0 } else { per_subnet.max(per_ip) };
        Self { per_ip: RateLimiter::new(per_ip, window), per_subnet: RateLimiter::new(per_subnet, window) }
    }

    /// Counts one sign-up from `ip`; `Err(retry_after)` when its address or
    /// its network is over the limit. A request refused for its address is
    /// not counted against its network.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let ip = canonical(ip);
        self.per_ip.check(ip)?;
        self.per_subnet.check(subnet_of(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_the_v4_slash_24_and_the_v6_slash_64_and_mapped_v4_is_v4() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(subnet_of(ip("198.51.100.77")), ip("198.51.100.0"));
        assert_eq!(subnet_of(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), ip("2001:db8:1:2::"));
        assert_eq!(subnet_of(ip("::ffff:198.51.100.77")), ip("198.51.100.0"));
        assert_eq!(canonical(ip("::ffff:198.51.100.77")), ip("198.51.100.77"));
    }

    #[test]
    fn the_subnet_limit_counts_every_address_in_it_and_per_ip_zero_turns_all_off() {
        let limits = SubscribeLimits::new(2, 3);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(limits.check(ip("192.0.2.1")).is_ok());
        assert!(limits.check(ip("192.0.2.2")).is_ok());
        assert!(limits.check(ip("::ffff:192.0.2.3")).is_ok());
        assert!(limits.check(ip("192.0.2.4")).is_err(), "a fourth address in the same /24");
        assert!(limits.check(ip("192.0.3.4")).is_ok(), "another /24");
        let raised = SubscribeLimits::new(50, 3);
        for _ in 0..50 {
            assert!(raised.check(ip("198.51.100.1")).is_ok(), "never capped below the per-address limit");
        }
        assert!(raised.check(ip("198.51.100.2")).is_err());
        let off = SubscribeLimits::new(0, 3);
        for _ in 0..100 {
            assert!(off.check(ip("192.0.2.1")).is_ok());
        }
    }

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
