//! A progress line while a long queue drains (an alert storm, a war-room broadcast): how many were
//! sent, how many wait, how many failed, every few seconds, and a last line when the queue is empty.
//! Short queues (under a second of sending) stay quiet.

use std::time::{Duration, Instant};

/// How often a draining queue reports.
const EVERY: Duration = Duration::from_secs(5);

/// Counts and the state of the current drain.
#[derive(Debug, Default)]
pub struct Progress {
    sent: u64,
    failed: u64,
    drain: Option<Drain>,
}

#[derive(Debug)]
struct Drain {
    started: Instant,
    last_line: Instant,
    sent_before: u64,
    failed_before: u64,
}

impl Progress {
    /// One message accepted by Meta.
    pub fn sent(&mut self) {
        self.sent += 1;
    }

    /// One message given up on.
    pub fn failed(&mut self) {
        self.failed += 1;
    }

    /// Reports if it is time: `queued` waiting, `in_flight` being sent, `per_second` the rate.
    pub fn tick(&mut self, now: Instant, queued: usize, in_flight: usize, per_second: u32) {
        match &mut self.drain {
            None if queued > per_second as usize => {
                tracing::info!(
                    queued,
                    "sending a backlog of {queued} messages at {per_second}/s"
                );
                self.drain = Some(Drain {
                    started: now,
                    last_line: now,
                    sent_before: self.sent,
                    failed_before: self.failed,
                });
            }
            Some(drain) if queued == 0 && in_flight == 0 => {
                let (sent, failed) = (
                    self.sent - drain.sent_before,
                    self.failed - drain.failed_before,
                );
                let secs = now.saturating_duration_since(drain.started).as_secs_f64();
                tracing::info!(
                    sent,
                    failed,
                    "backlog sent: {sent} sent, {failed} failed in {secs:.1} s"
                );
                self.drain = None;
            }
            Some(drain) if now.saturating_duration_since(drain.last_line) >= EVERY => {
                drain.last_line = now;
                let (sent, failed) = (
                    self.sent - drain.sent_before,
                    self.failed - drain.failed_before,
                );
                tracing::info!(
                    sent,
                    queued,
                    failed,
                    "sending: {sent} sent, {queued} queued, {failed} failed"
                );
            }
            _ => {}
        }
    }

    /// Whether a drain is being reported.
    #[cfg(test)]
    fn draining(&self) -> bool {
        self.drain.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_backlog_longer_than_a_second_is_reported_until_it_is_empty() {
        let t0 = Instant::now();
        let mut p = Progress::default();
        p.tick(t0, 50, 0, 50);
        assert!(!p.draining(), "a second of sending is not a backlog");
        p.tick(t0, 51, 0, 50);
        assert!(p.draining());
        p.sent();
        p.tick(t0 + Duration::from_secs(6), 10, 1, 50);
        assert!(p.draining());
        p.tick(t0 + Duration::from_secs(7), 0, 1, 50);
        assert!(p.draining(), "one still in flight");
        p.tick(t0 + Duration::from_secs(8), 0, 0, 50);
        assert!(!p.draining());
    }
}
