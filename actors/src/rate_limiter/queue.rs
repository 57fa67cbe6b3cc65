//! The outbound queue as a plain value: the priority lanes, the retries waiting for their time, and
//! every limit that decides when the next job may leave (the token bucket, the sliding window, the
//! throttling pace, the in-flight cap, a credentials pause, broadcast batches). The actor feeds it
//! and does what [`Queue::next`] says; the tests drive it with a `FakeClock`.
//!
//! Within a lane each person has their own line, and people take turns. A person has at most one
//! job out per lane (in flight, waiting for its retry, or waiting for template quota): their later
//! messages wait behind it, so a retried message is never overtaken, and nobody else waits for it.
//! When a person's turn comes with several jobs waiting (held back by their pace, or behind a
//! backlog), the application's [`Fold`] may say them in one message.

use super::clock::{Clock, Governed};
use super::pace::Pace;
use super::pair::PairPaces;
use super::window::SlidingWindow;
use super::RateSettings;
use crate::ids::WaId;
use crate::ids::{new_id, JobId};
use crate::model::{Lane, QueuedJob};
use crate::ports::{Fold, Folded};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::Quota;
use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most waiting jobs of one person one fold looks at: a digest names at most a few hundred, and
/// the rest wait for the next turn.
const FOLD_WINDOW: usize = 1000;

/// The bucket's burst: two sends. A bucket of one loses the time by which each timer wakes late
/// (about 1 ms of every 20 at 50/s, 5 % of the rate); two tokens absorb it. More would let sends
/// start together, and the transit jitter between them could then put more than the limit into
/// one second at Meta's end (seen with five: 51 in a second at the receiving fake).
const BURST: NonZeroU32 = NonZeroU32::new(2).unwrap();

type Bucket<C> =
    governor::RateLimiter<NotKeyed, InMemoryState, Governed<C>, NoOpMiddleware<Instant>>;

/// What the queue says to do next.
// Returned and matched at once, never stored: boxing the job would only add an allocation a send.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Next {
    /// Send this job now (its attempt is counted and it is in flight).
    Send(QueuedJob),
    /// Nothing may leave before this instant; ask again then.
    WaitUntil(Instant),
    /// Nothing to send until a job arrives or one in flight finishes.
    Idle,
}

/// One lane: each person's jobs in order, and the order people take turns in.
#[derive(Default)]
struct LaneQueue {
    /// People with a job that may leave now, in turn order.
    ready: VecDeque<WaId>,
    /// Each person's waiting jobs, in order; a person is here while they have jobs or one out.
    jobs: HashMap<WaId, VecDeque<QueuedJob>>,
    /// People with a job out: their later jobs wait for it.
    out: HashSet<WaId>,
    /// Jobs waiting in this lane.
    len: usize,
}

impl LaneQueue {
    /// A new job, behind its person's others.
    fn push_back(&mut self, job: QueuedJob) {
        let to = job.message.to.clone();
        let line = self.jobs.entry(to.clone()).or_default();
        line.push_back(job);
        self.len += 1;
        if line.len() == 1 && !self.out.contains(&to) {
            self.ready.push_back(to);
        }
    }

    /// A job that was out comes back first in its person's line, and its person first in turn
    /// (a person with a job out is never in `ready`, so they are not there twice).
    fn return_front(&mut self, job: QueuedJob) {
        let to = job.message.to.clone();
        self.out.remove(&to);
        self.jobs.entry(to.clone()).or_default().push_front(job);
        self.len += 1;
        debug_assert!(
            !self.ready.contains(&to),
            "a person with a job out was ready"
        );
        self.ready.push_front(to);
    }

    /// The place in `ready` of the first person who may receive now, or, when nobody may, the
    /// soonest instant someone may (`None` when nobody waits).
    fn first_ready(&self, pairs: &PairPaces, now: Instant) -> Result<usize, Option<Instant>> {
        let mut soonest: Option<Instant> = None;
        for (i, to) in self.ready.iter().enumerate() {
            let at = pairs.ready_at(to, now);
            if at <= now {
                return Ok(i);
            }
            soonest = Some(soonest.map_or(at, |s| s.min(at)));
        }
        Err(soonest)
    }

    /// The first job of the person at place `i` of `ready`, or a digest of their first jobs when
    /// `fold` says them in one; they have a job out until [`LaneQueue::done`]. People before them
    /// keep their turn.
    fn pop_at(&mut self, i: usize, fold: Option<&dyn Fold>) -> Option<QueuedJob> {
        let to = self.ready.remove(i)?;
        let line = self.jobs.get_mut(&to)?;
        let (job, taken) = match fold.and_then(|fold| fold_front(fold, line)) {
            Some(folded) => folded,
            None => (line.pop_front()?, 1),
        };
        self.len -= taken;
        self.out.insert(to);
        Some(job)
    }

    /// `to`'s job is no longer out: their next job takes its turn after the others'.
    fn done(&mut self, to: &WaId) {
        if !self.out.remove(to) {
            return;
        }
        match self.jobs.get(to) {
            Some(line) if !line.is_empty() => self.ready.push_back(to.clone()),
            _ => {
                self.jobs.remove(to);
            }
        }
    }
}

/// A digest of the first jobs of `line` and how many it took off, when `fold` says two or more in
/// one. Only jobs not tried yet fold (a retried one goes as itself, so a message Meta may have seen
/// is never said again in other words), and a digest is not folded again.
fn fold_front(fold: &dyn Fold, line: &mut VecDeque<QueuedJob>) -> Option<(QueuedJob, usize)> {
    let fresh: Vec<&QueuedJob> = line
        .iter()
        .take(FOLD_WINDOW)
        .take_while(|j| j.attempts == 0 && j.folds.is_empty())
        .collect();
    if fresh.len() < 2 {
        return None;
    }
    let Folded { message, count } = fold.fold(&fresh)?;
    let count = count.min(fresh.len());
    if count < 2 {
        return None;
    }
    let enqueued_at_ms = fresh[0].enqueued_at_ms;
    let folds: Vec<JobId> = line.drain(..count).map(|j| j.id).collect();
    metrics::counter!("aof_messages_folded_total", "lane" => message.lane.as_str())
        .increment(count as u64);
    tracing::debug!(
        folded = count,
        wa = %message.to.masked(),
        "messages waiting for one person said in one"
    );
    let digest = QueuedJob {
        id: JobId(new_id("fold")),
        message,
        attempts: 0,
        enqueued_at_ms,
        folds,
    };
    Some((digest, count))
}

/// The lanes and the limits.
pub struct Queue<C: Clock> {
    clock: C,
    max_in_flight: usize,
    broadcast_batch: Option<usize>,
    broadcast_batch_delay: Duration,
    lanes: [LaneQueue; 4],
    delayed: Vec<(Instant, QueuedJob)>,
    bucket: Bucket<C>,
    window: SlidingWindow,
    pace: Pace,
    /// Each recipient's own pace (WhatsApp's pair rate).
    pairs: PairPaces,
    /// Says what waits for one person in one message, when the application gives one.
    fold: Option<Arc<dyn Fold>>,
    in_flight: usize,
    /// Jobs set aside (a fallback waiting for template quota).
    aside: usize,
    paused_until: Option<Instant>,
    batch_sent: usize,
    batch_resumes_at: Option<Instant>,
}

fn bucket<C: Clock>(per_second: NonZeroU32, clock: &C) -> Bucket<C> {
    let quota = Quota::per_second(per_second).allow_burst(BURST);
    governor::RateLimiter::direct_with_clock(quota, Governed(clock.clone()))
}

impl<C: Clock> Queue<C> {
    /// An empty queue with `settings`' limits, reading the time from `clock`.
    pub fn new(settings: &RateSettings, clock: C) -> Self {
        Queue {
            max_in_flight: settings.max_in_flight.max(1),
            broadcast_batch: settings.broadcast_batch,
            broadcast_batch_delay: settings.broadcast_batch_delay,
            lanes: Default::default(),
            delayed: Vec::new(),
            bucket: bucket(settings.per_second, &clock),
            window: SlidingWindow::new(
                settings.per_second.get() as usize,
                Duration::from_secs(1) + settings.window_margin,
            ),
            pace: Pace::new(settings.per_second.get()),
            pairs: PairPaces::new(settings.pair),
            fold: None,
            in_flight: 0,
            aside: 0,
            paused_until: None,
            batch_sent: 0,
            batch_resumes_at: None,
            clock,
        }
    }

    /// From now on, what waits for one person when their turn comes is said in one message by
    /// `fold`.
    pub fn fold_with(&mut self, fold: Arc<dyn Fold>) {
        self.fold = Some(fold);
    }

    /// Jobs waiting, retries and fallbacks waiting for quota included.
    pub fn queued(&self) -> usize {
        self.lanes.iter().map(|l| l.len).sum::<usize>() + self.delayed.len() + self.aside
    }

    /// Jobs handed out by [`Queue::next`] and not finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Sends per second now (lower than configured while Meta throttles).
    pub fn rate(&self) -> u32 {
        self.pace.current()
    }

    /// A new job, behind the others of its person in its lane.
    pub fn push(&mut self, job: QueuedJob) {
        self.lanes[job.message.lane as usize].push_back(job);
    }

    /// An attempt ended and `job` is done (sent or given up): its person's next job may go.
    pub fn finished(&mut self, job: &QueuedJob) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.lanes[job.message.lane as usize].done(&job.message.to);
    }

    /// An attempt ended and the job waits outside the queue (a fallback taking template quota);
    /// its person's later jobs wait too, until [`Queue::put_back`] or [`Queue::drop_aside`].
    pub fn set_aside(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.aside += 1;
    }

    /// A job set aside goes first in its person's line.
    pub fn put_back(&mut self, job: QueuedJob) {
        self.aside = self.aside.saturating_sub(1);
        self.lanes[job.message.lane as usize].return_front(job);
    }

    /// A job set aside is given up: its person's next job may go.
    pub fn drop_aside(&mut self, job: &QueuedJob) {
        self.aside = self.aside.saturating_sub(1);
        self.lanes[job.message.lane as usize].done(&job.message.to);
    }

    /// An attempt ended and the job goes again after `after`, first in its person's line (whose
    /// later jobs wait for it). When Meta said `throttled`, the rate is cut too; the new rate
    /// when it changed.
    pub fn retry(&mut self, job: QueuedJob, after: Duration, throttled: bool) -> Option<u32> {
        self.in_flight = self.in_flight.saturating_sub(1);
        let now = self.clock.now();
        self.delayed.push((now + after, job));
        if !throttled {
            return None;
        }
        let cut = self.pace.throttled(now)?;
        self.set_rate(cut);
        Some(cut)
    }

    /// WhatsApp said `to` gets too many messages (131056): nothing more leaves for them, in any
    /// lane, before `after` from now; everyone else goes on.
    pub fn hold_person(&mut self, to: &WaId, after: Duration) {
        let until = self.clock.now() + after;
        self.pairs.hold(to, until);
    }

    /// An attempt ended with the credentials refused: nothing leaves for `pause`, then the job goes
    /// again.
    pub fn halt(&mut self, job: QueuedJob, pause: Duration) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let until = self.clock.now() + pause;
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
        self.delayed.push((until, job));
    }

    /// Counts sends that another process made (the replica that led before, or this one before a
    /// restart) as if this queue had made them at `sends`' instants, oldest first: the sliding
    /// window, the token bucket and each person's pace start from them.
    pub fn seed(&mut self, sends: &[(WaId, Instant)]) {
        let now = self.clock.now();
        let window = self.window.span();
        for (to, at) in sends {
            self.pairs.sent(to, *at);
            if *at + window > now {
                self.window.record(*at);
                let _ = self.bucket.check();
            }
        }
    }

    /// The next job that may leave now, or when to ask again.
    pub fn next(&mut self) -> Next {
        let now = self.clock.now();
        let next_retry = self.release_delayed(now);
        let wait = |at: Instant| Next::WaitUntil(next_retry.map_or(at, |r| r.min(at)));
        let idle = || next_retry.map_or(Next::Idle, Next::WaitUntil);
        if let Some(until) = self.paused_until {
            if until > now {
                return wait(until);
            }
            self.paused_until = None;
        }
        if self.in_flight >= self.max_in_flight {
            return idle();
        }
        let (lane, place) = match self.next_lane(now) {
            Ok(Some(choice)) => choice,
            Ok(None) => return idle(),
            Err(resume) => return wait(resume),
        };
        if let Err(after) = self.window.peek(now) {
            return wait(now + after);
        }
        if let Err(not_until) = self.bucket.check() {
            return wait(now + not_until.wait_time_from(now));
        }
        self.window.record(now);
        if let Some(rate) = self.pace.tick(now) {
            tracing::info!(
                per_second = rate,
                "no throttling for a second: rate raised to {rate}/s"
            );
            self.set_rate(rate);
        }
        let Some(mut job) = self.lanes[lane as usize].pop_at(place, self.fold.as_deref()) else {
            return idle();
        };
        self.pairs.sent(&job.message.to, now);
        if lane == Lane::Broadcast {
            self.note_broadcast(now);
        }
        job.attempts += 1;
        self.in_flight += 1;
        Next::Send(job)
    }

    /// Moves retries whose time has come to the front of their person's line; the soonest one
    /// left, if any.
    fn release_delayed(&mut self, now: Instant) -> Option<Instant> {
        let mut i = 0;
        while i < self.delayed.len() {
            if self.delayed[i].0 <= now {
                let (_, job) = self.delayed.swap_remove(i);
                self.lanes[job.message.lane as usize].return_front(job);
            } else {
                i += 1;
            }
        }
        self.delayed.iter().map(|(at, _)| *at).min()
    }

    /// The lane to take from next and the place of the person in it, honouring broadcast
    /// batches and each person's pace: a lane whose waiting people are all held back gives way to
    /// the next lane. `Err`: nothing may leave before that instant.
    fn next_lane(&mut self, now: Instant) -> Result<Option<(Lane, usize)>, Instant> {
        let mut soonest: Option<Instant> = None;
        for lane in Lane::ALL {
            if self.lanes[lane as usize].ready.is_empty() {
                continue;
            }
            if lane == Lane::Broadcast {
                if let Some(resume) = self.batch_resumes_at {
                    if resume > now {
                        return Err(soonest.map_or(resume, |s| s.min(resume)));
                    }
                    self.batch_resumes_at = None;
                    self.batch_sent = 0;
                }
            }
            match self.lanes[lane as usize].first_ready(&self.pairs, now) {
                Ok(place) => return Ok(Some((lane, place))),
                Err(Some(at)) => soonest = Some(soonest.map_or(at, |s| s.min(at))),
                Err(None) => {}
            }
        }
        soonest.map_or(Ok(None), Err)
    }

    fn note_broadcast(&mut self, now: Instant) {
        if let Some(batch) = self.broadcast_batch {
            self.batch_sent += 1;
            if self.batch_sent >= batch {
                self.batch_resumes_at = Some(now + self.broadcast_batch_delay);
            }
        }
    }

    /// Applies a new rate to the bucket and the window; the window keeps its recorded starts.
    fn set_rate(&mut self, per_second: u32) {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        self.bucket = bucket(rate, &self.clock);
        self.window.set_limit(rate.get() as usize);
        metrics::gauge!("aof_send_rate").set(f64::from(rate.get()));
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
