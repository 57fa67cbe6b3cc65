//! The time as the outbound queue sees it. The bot reads the monotonic clock; the queue's tests move
//! a `FakeClock` by hand, so pacing is checked to the millisecond without waiting. governor's token
//! bucket reads the same clock through [`Governed`].

use std::time::Instant;

/// A source of the current instant.
pub trait Clock: Clone + Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Instant;
}

/// The monotonic clock of the machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// One of our clocks, as governor's bucket wants it.
#[derive(Debug, Clone)]
pub struct Governed<C>(pub C);

impl<C: Clock> governor::clock::Clock for Governed<C> {
    type Instant = Instant;

    fn now(&self) -> Instant {
        self.0.now()
    }
}

#[cfg(test)]
pub use fake::FakeClock;

#[cfg(test)]
mod fake {
    use super::Clock;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    /// A clock that stands still until a test moves it.
    #[derive(Debug, Clone)]
    pub struct FakeClock(Arc<Mutex<Instant>>);

    impl FakeClock {
        /// A clock showing the real time of its creation.
        pub fn new() -> Self {
            FakeClock(Arc::new(Mutex::new(Instant::now())))
        }

        /// Moves the clock forward by `by`.
        pub fn advance(&self, by: Duration) {
            *self.0.lock().expect("fake clock") += by;
        }

        /// Moves the clock to `at` (never backwards).
        pub fn set(&self, at: Instant) {
            let mut now = self.0.lock().expect("fake clock");
            *now = (*now).max(at);
        }
    }

    impl Default for FakeClock {
        fn default() -> Self {
            FakeClock::new()
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            *self.0.lock().expect("fake clock")
        }
    }
}
