//! What the tests and the load generator measure the bot with, at the receiving end: not used by
//! the runtime itself.

use std::time::{Duration, Instant};

/// The largest number of `times` that fall within any `window` (sliding): what Meta's count would
/// see. The tests and the load generator check the limit with it at the receiving end.
pub fn most_in_any_window(times: &[Instant], window: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    let (mut most, mut first) = (0, 0);
    for last in 0..sorted.len() {
        while sorted[last] - sorted[first] >= window {
            first += 1;
        }
        most = most.max(last - first + 1);
    }
    most
}

/// Stands in for an actor in a test: keeps every message of type `M` it is sent, in order.
#[cfg(test)]
pub(crate) struct Recorder<M>(pub std::sync::Arc<std::sync::Mutex<Vec<M>>>);

#[cfg(test)]
impl<M: actix::Message<Result = ()> + Unpin + 'static> Recorder<M> {
    /// A recorder and the list it fills.
    pub(crate) fn new() -> (Self, std::sync::Arc<std::sync::Mutex<Vec<M>>>) {
        let kept = std::sync::Arc::default();
        (Recorder(std::sync::Arc::clone(&kept)), kept)
    }
}

#[cfg(test)]
impl<M: actix::Message<Result = ()> + Unpin + 'static> actix::Actor for Recorder<M> {
    type Context = actix::Context<Self>;
}

#[cfg(test)]
impl<M: actix::Message<Result = ()> + Unpin + 'static> actix::Handler<M> for Recorder<M> {
    type Result = ();

    fn handle(&mut self, message: M, _: &mut actix::Context<Self>) {
        self.0.lock().expect("recorder").push(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_in_any_window_slides() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let times = [at(0), at(900), at(950), at(999), at(1000), at(1999)];
        // 0..999 holds four; 1000 is a full second after 0, so it starts a new count.
        assert_eq!(most_in_any_window(&times, Duration::from_secs(1)), 4);
        assert_eq!(most_in_any_window(&[], Duration::from_secs(1)), 0);
    }
}
