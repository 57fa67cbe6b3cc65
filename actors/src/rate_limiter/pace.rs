//! The send rate under throttling. Meta answers `130429` when a number's throughput is exceeded
//! (its inbound messages count too), and asks senders to retry and lower their global rate. The
//! limiter then cuts its rate by a fifth, at most once a second and never below half the configured
//! rate, and wins it back a twentieth of the configured rate per second once a second passes
//! without throttling (additive increase, multiplicative decrease).

use std::time::{Duration, Instant};

/// How often the rate may be cut or raised.
const STEP: Duration = Duration::from_secs(1);

/// The current send rate and when it last changed.
#[derive(Debug)]
pub struct Pace {
    configured: u32,
    current: u32,
    last_change: Option<Instant>,
    last_throttle: Option<Instant>,
}

impl Pace {
    /// Starts at the configured rate.
    pub fn new(configured: u32) -> Pace {
        let configured = configured.max(1);
        Pace {
            configured,
            current: configured,
            last_change: None,
            last_throttle: None,
        }
    }

    /// Sends per second now.
    pub fn current(&self) -> u32 {
        self.current
    }

    fn floor(&self) -> u32 {
        self.configured.div_ceil(2)
    }

    fn may_change(&self, now: Instant) -> bool {
        self.last_change
            .is_none_or(|at| now.saturating_duration_since(at) >= STEP)
    }

    /// Meta throttled a send at `now`; the new rate when it changed.
    pub fn throttled(&mut self, now: Instant) -> Option<u32> {
        self.last_throttle = Some(now);
        let cut = (self.current * 4 / 5).max(self.floor());
        if cut == self.current || !self.may_change(now) {
            return None;
        }
        self.current = cut;
        self.last_change = Some(now);
        Some(cut)
    }

    /// Called as sends go out; the new rate when a throttle-free second has earned a raise.
    pub fn tick(&mut self, now: Instant) -> Option<u32> {
        let calm = self
            .last_throttle
            .is_none_or(|at| now.saturating_duration_since(at) >= STEP);
        if self.current >= self.configured || !calm || !self.may_change(now) {
            return None;
        }
        let step = (self.configured / 20).max(1);
        self.current = (self.current + step).min(self.configured);
        self.last_change = Some(now);
        Some(self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_throttle_cuts_the_rate_at_most_once_a_second_and_never_below_half() {
        let t0 = Instant::now();
        let mut pace = Pace::new(50);
        assert_eq!(pace.throttled(t0), Some(40));
        assert_eq!(pace.throttled(at(t0, 500)), None, "once a second");
        assert_eq!(pace.throttled(at(t0, 1000)), Some(32));
        assert_eq!(pace.throttled(at(t0, 2000)), Some(25));
        assert_eq!(pace.throttled(at(t0, 3000)), None, "half is the floor");
        assert_eq!(pace.current(), 25);
    }

    #[test]
    fn a_calm_second_wins_back_a_twentieth_up_to_the_configured_rate() {
        let t0 = Instant::now();
        let mut pace = Pace::new(50);
        pace.throttled(t0);
        assert_eq!(pace.tick(at(t0, 900)), None, "not calm for a second yet");
        assert_eq!(pace.tick(at(t0, 1000)), Some(42));
        assert_eq!(pace.tick(at(t0, 1500)), None, "once a second");
        assert_eq!(pace.tick(at(t0, 2000)), Some(44));
        for s in 3..10 {
            pace.tick(at(t0, s * 1000));
        }
        assert_eq!(pace.current(), 50);
        assert_eq!(pace.tick(at(t0, 20_000)), None);
    }
}
