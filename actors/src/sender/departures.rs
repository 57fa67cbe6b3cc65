//! The last gate before a request leaves: at most `limit` departures in any window, counted when
//! they actually leave. The rate limiter spaces jobs when it hands them over, but each job then
//! waits for its `sending` mark in the store; on a shared database under load that wait varies
//! by a few hundred milliseconds, enough for the spacing to bunch up on the way to Meta.

use crate::rate_limiter::window::SlidingWindow;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Shared by the sender's attempts in flight (all on the sender's thread).
#[derive(Clone, Debug)]
pub struct Departures(Rc<RefCell<SlidingWindow>>);

impl Departures {
    /// At most `limit` departures in any `window`.
    pub fn new(limit: usize, window: Duration) -> Self {
        Departures(Rc::new(RefCell::new(SlidingWindow::new(limit, window))))
    }

    /// Waits until a request may leave, and counts it as leaving.
    pub async fn leave(&self) {
        loop {
            let now = Instant::now();
            let wait = {
                let mut window = self.0.borrow_mut();
                match window.peek(now) {
                    Ok(()) => {
                        window.record(now);
                        return;
                    }
                    Err(wait) => wait,
                }
            };
            actix::clock::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix::test]
    async fn departures_beyond_the_limit_wait_for_the_window() {
        let gate = Departures::new(3, Duration::from_millis(200));
        let start = Instant::now();
        let mut left = Vec::new();
        for _ in 0..6 {
            gate.leave().await;
            left.push(start.elapsed());
        }
        assert!(left[2] < Duration::from_millis(50), "{left:?}");
        assert!(left[3] >= Duration::from_millis(200), "{left:?}");
        assert!(left[5] < Duration::from_millis(300), "{left:?}");
    }
}
