//! A per-host request-rate limit shared by all download threads: polite to one host, while
//! thousands of other hosts proceed in parallel (img2dataset does no per-host limiting; web hosts
//! then answer 429 or ban the crawler).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Spaces the starts of requests to the same host by at least `1 / per_second`.
#[derive(Debug)]
pub struct HostRateLimiter {
    interval: Option<Duration>,
    next_slot: Mutex<HashMap<String, Instant>>,
}

impl HostRateLimiter {
    /// `per_second <= 0` disables the limit.
    pub fn new(per_second: f64) -> Self {
        let interval = (per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / per_second));
        HostRateLimiter {
            interval,
            next_slot: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves the next slot for `host` and sleeps until it starts.
    pub fn wait(&self, host: &str) {
        let Some(interval) = self.interval else {
            return;
        };
        let start = {
            let mut slots = match self.next_slot.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let now = Instant::now();
            let slot = slots.get(host).copied().unwrap_or(now).max(now);
            slots.insert(host.to_string(), slot + interval);
            slot
        };
        let now = Instant::now();
        if start > now {
            std::thread::sleep(start - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_host_is_spaced_other_hosts_are_not() {
        let limiter = HostRateLimiter::new(20.0); // 50 ms apart
        let t0 = Instant::now();
        for _ in 0..4 {
            limiter.wait("a");
        }
        // Starts at 0, 50, 100, 150 ms.
        assert!(t0.elapsed() >= Duration::from_millis(150));
        let t1 = Instant::now();
        limiter.wait("b");
        assert!(t1.elapsed() < Duration::from_millis(40));
    }
}
