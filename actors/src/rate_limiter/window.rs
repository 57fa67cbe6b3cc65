//! A sliding one-second window in front of the token bucket.
//!
//! governor's bucket spaces sends evenly, but a bucket plus its refill can let more than `n` through
//! in some one-second window (after a pause the bucket is full). Meta counts at its end, so we keep the
//! start times of the last `n` sends and never start one before the oldest is a full window old.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Start times of the most recent sends, at most `limit` of them.
#[derive(Debug)]
pub struct SlidingWindow {
    limit: usize,
    window: Duration,
    starts: VecDeque<Instant>,
}

impl SlidingWindow {
    /// A window that lets `limit` sends start in any `window`.
    pub fn new(limit: usize, window: Duration) -> Self {
        SlidingWindow {
            limit: limit.max(1),
            window,
            starts: VecDeque::with_capacity(limit),
        }
    }

    /// How long a send counts against the limit.
    pub fn span(&self) -> Duration {
        self.window
    }

    /// Changes the limit (the pace under throttling); the recorded starts stay.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// Whether a send may start at `now`; if not, how long until a slot frees.
    pub fn peek(&self, now: Instant) -> Result<(), Duration> {
        match self.starts.front() {
            Some(&oldest) if self.starts.len() >= self.limit && oldest + self.window > now => {
                Err(oldest + self.window - now)
            }
            _ => Ok(()),
        }
    }

    /// Records a send that starts at `now` (after [`SlidingWindow::peek`] allowed it).
    pub fn record(&mut self, now: Instant) {
        while self.starts.len() >= self.limit {
            self.starts.pop_front();
        }
        self.starts.push_back(now);
    }

    /// Takes a slot at `now`, or says how long until one frees.
    #[cfg(test)]
    fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
        self.peek(now)?;
        self.record(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_the_limit_in_any_window() {
        let mut w = SlidingWindow::new(3, Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(w.try_acquire(t0 + Duration::from_millis(i)).is_ok());
        }
        let wait = w.try_acquire(t0 + Duration::from_millis(500)).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(w.try_acquire(t0 + Duration::from_millis(1000)).is_ok());
        assert!(w.try_acquire(t0 + Duration::from_millis(1000)).is_err());
    }
}
