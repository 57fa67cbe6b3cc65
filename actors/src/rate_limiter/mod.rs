//! The RateLimiter actor: owns the outbound queue. Messages wait in priority lanes (replies, then
//! alerts, then broadcasts) and leave at most `messages_per_second` per second: governor's token
//! bucket spaces them evenly (with a burst of two) and a sliding window guarantees
//! the limit in every one-second window, retries included. It also enforces the daily template
//! quota, batches broadcasts, slows down when Meta signals throttling (`pace`), says how a
//! backlog drains (`progress`), and reloads the durable queue after a restart.

mod pace;
mod progress;
mod window;

use crate::failed_send::report_failure;
use crate::ids::{new_id, JobId};
use crate::model::{now_ms, Lane, OutboundBody, OutboundMessage, QueuedJob};
use crate::ports::{EnqueueError, Queued, Store};
use crate::sender::SendJob;
use actix::prelude::*;
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota};
use pace::Pace;
use progress::Progress;
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};
use window::SlidingWindow;

/// Queue a message; answers its job id once it is stored, or why it was refused.
#[derive(Message, Debug)]
#[rtype(result = "Queued")]
pub struct Enqueue(pub OutboundMessage);

/// The Sender's verdict on one attempt.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SendFinished {
    /// The job, with its attempt count (and a fallback body when one replaced the original).
    pub job: QueuedJob,
    /// What happens next.
    pub outcome: SendOutcome,
}

/// What happens to a job after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// Meta accepted it; done.
    Sent,
    /// Try again after `after`; when `throttled`, the limiter also lowers its rate.
    Retry {
        /// How long this job waits.
        after: Duration,
        /// Whether Meta said the number or app is over its throughput.
        throttled: bool,
    },
    /// The body became the template fallback: it needs template quota, then goes again at once.
    Fallback,
    /// Meta refused the credentials: keep the job and pause every lane for `pause`.
    Halted {
        /// How long nothing is sent.
        pause: Duration,
    },
    /// Given up and reported; done.
    Failed,
}

/// How many messages wait in the queue (all lanes, retries included) and are in flight.
#[derive(Message, Debug)]
#[rtype(result = "QueueStats")]
pub struct GetQueueStats;

/// A snapshot of the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    /// Waiting to be sent.
    pub queued: usize,
    /// Handed to the sender, not finished.
    pub in_flight: usize,
}

/// The limits, from `rate_limits` and `queue`.
#[derive(Debug, Clone)]
pub struct RateSettings {
    /// Sends per second, never exceeded in any one-second window.
    pub per_second: NonZeroU32,
    /// Added to the one-second window so that network jitter cannot push Meta's count over.
    pub window_margin: Duration,
    /// Template messages allowed per UTC day.
    pub templates_per_day: u32,
    /// Most sends in flight at once.
    pub max_in_flight: usize,
    /// Broadcasts leave in batches of this many...
    pub broadcast_batch: Option<usize>,
    /// ...with this pause between batches.
    pub broadcast_batch_delay: Duration,
}

/// The outbound queue and its pacing.
pub struct RateLimiter {
    settings: RateSettings,
    store: Arc<dyn Store>,
    sender: Recipient<SendJob>,
    /// Send what the store still has queued at start, as a restart must.
    resume: bool,
    lanes: [VecDeque<QueuedJob>; 4],
    delayed: Vec<(Instant, QueuedJob)>,
    bucket: DefaultDirectRateLimiter,
    window: SlidingWindow,
    pace: Pace,
    in_flight: usize,
    paused_until: Option<Instant>,
    wake_at: Option<Instant>,
    batch_sent: usize,
    batch_resumes_at: Option<Instant>,
    progress: Progress,
}

impl RateLimiter {
    /// A limiter handing jobs to `sender`.
    pub fn new(
        settings: RateSettings,
        store: Arc<dyn Store>,
        sender: Recipient<SendJob>,
        resume: bool,
    ) -> Self {
        let bucket = governor::RateLimiter::direct(
            Quota::per_second(settings.per_second).allow_burst(BURST),
        );
        let window = SlidingWindow::new(
            settings.per_second.get() as usize,
            Duration::from_secs(1) + settings.window_margin,
        );
        let pace = Pace::new(settings.per_second.get());
        RateLimiter {
            settings,
            store,
            sender,
            resume,
            lanes: Default::default(),
            delayed: Vec::new(),
            bucket,
            window,
            pace,
            in_flight: 0,
            paused_until: None,
            wake_at: None,
            batch_sent: 0,
            batch_resumes_at: None,
            progress: Progress::default(),
        }
    }

    fn queued(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum::<usize>() + self.delayed.len()
    }

    fn report_depth(&mut self) {
        let queued = self.queued();
        metrics::gauge!("aof_queue_depth").set(queued as f64);
        let rate = self.pace.current();
        self.progress
            .tick(Instant::now(), queued, self.in_flight, rate);
    }

    /// Moves retries whose time has come to the front of their lane; the soonest one left, if any.
    fn release_delayed(&mut self, now: Instant) -> Option<Instant> {
        let mut i = 0;
        while i < self.delayed.len() {
            if self.delayed[i].0 <= now {
                let (_, job) = self.delayed.swap_remove(i);
                self.lanes[job.message.lane as usize].push_front(job);
            } else {
                i += 1;
            }
        }
        self.delayed.iter().map(|(at, _)| *at).min()
    }

    /// The lane to take from next, honouring broadcast batches.
    fn next_lane(&mut self, now: Instant) -> Result<Option<usize>, Instant> {
        for lane in Lane::ALL {
            if self.lanes[lane as usize].is_empty() {
                continue;
            }
            if lane == Lane::Broadcast {
                if let Some(resume) = self.batch_resumes_at {
                    if resume > now {
                        return Err(resume);
                    }
                    self.batch_resumes_at = None;
                    self.batch_sent = 0;
                }
            }
            return Ok(Some(lane as usize));
        }
        Ok(None)
    }

    fn wake(&mut self, at: Instant, ctx: &mut Context<Self>) {
        if matches!(self.wake_at, Some(t) if t <= at) {
            return;
        }
        self.wake_at = Some(at);
        ctx.run_later(at.saturating_duration_since(Instant::now()), |act, ctx| {
            act.wake_at = None;
            act.pump(ctx);
        });
    }

    /// Hands as many jobs to the sender as the limits allow now, and arranges to be woken for the rest.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        loop {
            let now = Instant::now();
            if let Some(next_retry) = self.release_delayed(now) {
                self.wake(next_retry, ctx);
            }
            if let Some(until) = self.paused_until {
                if until > now {
                    self.wake(until, ctx);
                    break;
                }
                self.paused_until = None;
            }
            if self.in_flight >= self.settings.max_in_flight {
                break;
            }
            let lane = match self.next_lane(now) {
                Ok(Some(lane)) => lane,
                Ok(None) => break,
                Err(resume) => {
                    self.wake(resume, ctx);
                    break;
                }
            };
            if let Err(wait) = self.window.peek(now) {
                self.wake(now + wait, ctx);
                break;
            }
            if let Err(not_until) = self.bucket.check() {
                // The bucket's own clock: building a new one calibrates the TSC (cpuid) every time.
                let wait = not_until.wait_time_from(self.bucket.clock().now());
                self.wake(now + wait, ctx);
                break;
            }
            self.window.record(now);
            if let Some(rate) = self.pace.tick(now) {
                tracing::info!(
                    per_second = rate,
                    "no throttling for a second: rate raised to {rate}/s"
                );
                self.set_rate(rate);
            }
            let Some(mut job) = self.lanes[lane].pop_front() else {
                break;
            };
            if lane == Lane::Broadcast as usize {
                self.note_broadcast(now);
            }
            job.attempts += 1;
            self.in_flight += 1;
            self.sender.do_send(SendJob(job));
        }
        self.report_depth();
    }

    fn note_broadcast(&mut self, now: Instant) {
        if let Some(batch) = self.settings.broadcast_batch {
            self.batch_sent += 1;
            if self.batch_sent >= batch {
                self.batch_resumes_at = Some(now + self.settings.broadcast_batch_delay);
            }
        }
    }
}

impl Actor for RateLimiter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1 << 16);
        if !self.resume {
            return;
        }
        let pending = self.store.pending_jobs();
        ctx.wait(pending.into_actor(self).map(|loaded, act, ctx| {
            match loaded {
                Ok(jobs) => {
                    if !jobs.is_empty() {
                        tracing::info!(
                            count = jobs.len(),
                            "resuming queued messages from the store"
                        );
                    }
                    for job in jobs {
                        act.lanes[job.message.lane as usize].push_back(job);
                    }
                }
                Err(e) => tracing::error!(error = %e, "loading the outbound queue failed"),
            }
            act.pump(ctx);
        }));
    }
}

/// Today's key for the template quota: the UTC day number.
fn utc_day() -> String {
    format!("utc-day-{}", now_ms().div_euclid(86_400_000))
}

impl Handler<Enqueue> for RateLimiter {
    // The store work runs as a task of its own, not in this actor's context: a context polls every
    // future it holds on each wake, which made a queue of thousands of enqueues quadratic.
    type Result = ResponseFuture<Queued>;

    fn handle(&mut self, Enqueue(message): Enqueue, ctx: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        let limit = self.settings.templates_per_day;
        let me = ctx.address();
        let job = QueuedJob {
            id: JobId(new_id("job")),
            message,
            attempts: 0,
            enqueued_at_ms: now_ms(),
        };
        Box::pin(async move {
            if let OutboundBody::Template { name, .. } = &job.message.body {
                let taken = store
                    .take_template_quota(utc_day(), limit)
                    .await
                    .map_err(|e| EnqueueError::Store(e.to_string()))?;
                if !taken {
                    return Err(EnqueueError::TemplateQuotaExceeded {
                        limit,
                        template: name.clone(),
                        to: job.message.to.masked(),
                    });
                }
            }
            store
                .enqueue(job.clone())
                .await
                .map_err(|e| EnqueueError::Store(e.to_string()))?;
            let id = job.id.clone();
            me.do_send(Admit(job));
            Ok(id)
        })
    }
}

/// A job the store now holds, into its lane.
#[derive(Message)]
#[rtype(result = "()")]
struct Admit(QueuedJob);

impl Handler<Admit> for RateLimiter {
    type Result = ();

    fn handle(&mut self, Admit(job): Admit, ctx: &mut Context<Self>) {
        self.lanes[job.message.lane as usize].push_back(job);
        self.pump(ctx);
    }
}

impl Handler<SendFinished> for RateLimiter {
    type Result = ();

    fn handle(&mut self, msg: SendFinished, ctx: &mut Context<Self>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let now = Instant::now();
        match msg.outcome {
            SendOutcome::Retry { after, throttled } => {
                if throttled {
                    if let Some(rate) = self.pace.throttled(now) {
                        tracing::warn!(
                            per_second = rate,
                            "Meta is throttling sends (130429): rate lowered to {rate}/s"
                        );
                        self.set_rate(rate);
                    }
                }
                self.delayed.push((now + after, msg.job));
            }
            SendOutcome::Halted { pause } => {
                self.pause(now + pause);
                self.delayed.push((now + pause, msg.job));
            }
            SendOutcome::Fallback => self.take_quota_then_requeue(msg.job, ctx),
            SendOutcome::Sent => self.progress.sent(),
            SendOutcome::Failed => self.progress.failed(),
        }
        self.pump(ctx);
    }
}

/// The bucket's burst: two sends. A bucket of one loses the time by which each timer wakes late
/// (about 1 ms of every 20 at 50/s, 5 % of the rate); two tokens absorb it. More would let sends
/// start together, and the transit jitter between them could then put more than the limit into
/// one second at Meta's end (seen with five: 51 in a second at the receiving fake).
const BURST: NonZeroU32 = NonZeroU32::new(2).unwrap();

impl RateLimiter {
    /// Applies a new rate to the bucket (keeping its clock) and to the window.
    fn set_rate(&mut self, per_second: u32) {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(rate).allow_burst(BURST);
        let clock = self.bucket.clock().clone();
        self.bucket = governor::RateLimiter::direct_with_clock(quota, clock);
        self.window.set_limit(rate.get() as usize);
        metrics::gauge!("aof_send_rate").set(f64::from(rate.get()));
    }

    fn pause(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    /// A fallback template counts against the daily quota like any other template.
    fn take_quota_then_requeue(&mut self, job: QueuedJob, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let limit = self.settings.templates_per_day;
        let take = store.take_template_quota(utc_day(), limit);
        ctx.spawn(take.into_actor(self).map(move |taken, act, ctx| {
            match taken {
                Ok(true) => act.lanes[job.message.lane as usize].push_front(job),
                Ok(false) => {
                    let template = match &job.message.body {
                        OutboundBody::Template { name, .. } => name.clone(),
                        _ => String::new(),
                    };
                    let reason = EnqueueError::TemplateQuotaExceeded { limit, template, to: job.message.to.masked() };
                    report_failure(&*act.store, &job, None, reason.to_string());
                }
                Err(e) => {
                    tracing::error!(error = %e, "template quota check failed; sending the fallback anyway");
                    act.lanes[job.message.lane as usize].push_front(job);
                }
            }
            act.pump(ctx);
        }));
    }
}

impl Handler<GetQueueStats> for RateLimiter {
    type Result = MessageResult<GetQueueStats>;

    fn handle(&mut self, _: GetQueueStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(QueueStats {
            queued: self.queued(),
            in_flight: self.in_flight,
        })
    }
}
