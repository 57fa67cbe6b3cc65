//! The RateLimiter actor: owns the outbound queue. Messages wait in priority lanes (replies, then
//! alerts, then broadcasts) and leave at most `messages_per_second` per second: governor's token
//! bucket spaces them evenly (with a burst of two) and a sliding window guarantees
//! the limit in every one-second window, retries included. It also enforces the daily template
//! quota, batches broadcasts, slows down when Meta signals throttling (`pace`), says how a
//! backlog drains (`progress`), and reloads the durable queue after a restart. The lanes and limits
//! are a plain value (`queue`, on a `clock::Clock`) that the actor feeds and obeys.

mod clock;
mod pace;
mod pair;
mod progress;
mod queue;
pub(crate) mod window;

use crate::failed_send::report_failure;
use crate::ids::{new_id, JobId, WaId};
use crate::model::{now_ms, OutboundBody, OutboundMessage, QueuedJob};
use crate::ports::{EnqueueError, Fold, Queued, Store};
use crate::sender::{SendFinished, SendJob, SendOutcome};
use actix::prelude::*;
use clock::SystemClock;
pub use pair::PairPace;
use progress::Progress;
use queue::{Next, Queue};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Queue a message; answers its job id once it is stored, or why it was refused.
#[derive(Message, Debug)]
#[rtype(result = "Queued")]
pub struct Enqueue(pub OutboundMessage);

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
    /// How long a message left `sending` by a crash waits for a status naming it before it is
    /// sent again.
    pub unconfirmed_grace: Duration,
    /// How fast one person may receive messages; `None`: as fast as the lane goes.
    pub pair: Option<PairPace>,
}

/// The outbound queue and its pacing.
pub struct RateLimiter {
    settings: RateSettings,
    store: Arc<dyn Store>,
    sender: Recipient<SendJob>,
    /// Send what the store still has queued at start, as a restart must.
    resume: bool,
    queue: Queue<SystemClock>,
    wake_at: Option<Instant>,
    progress: Progress,
    /// Stopping: nothing more leaves; what is queued stays in the store for the next start.
    draining: bool,
}

/// The bot is stopping: hand no more jobs to the sender. The answer is how many are still in
/// flight; ask again until none are.
#[derive(Message, Debug)]
#[rtype(result = "usize")]
pub struct Drain;

impl RateLimiter {
    /// A limiter handing jobs to `sender`.
    pub fn new(
        settings: RateSettings,
        store: Arc<dyn Store>,
        sender: Recipient<SendJob>,
        resume: bool,
    ) -> Self {
        RateLimiter {
            queue: Queue::new(&settings, SystemClock),
            settings,
            store,
            sender,
            resume,
            wake_at: None,
            progress: Progress::default(),
            draining: false,
        }
    }

    /// Says what waits for one person in one message with `fold` (see [`Fold`]).
    pub fn folding(mut self, fold: Option<Arc<dyn Fold>>) -> Self {
        if let Some(fold) = fold {
            self.queue.fold_with(fold);
        }
        self
    }

    fn report_depth(&mut self) {
        let queued = self.queue.queued();
        metrics::gauge!("aof_queue_depth").set(queued as f64);
        let (in_flight, rate) = (self.queue.in_flight(), self.queue.rate());
        self.progress.tick(Instant::now(), queued, in_flight, rate);
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
        while !self.draining {
            match self.queue.next() {
                Next::Send(job) => self.sender.do_send(SendJob(job)),
                Next::WaitUntil(at) => {
                    self.wake(at, ctx);
                    break;
                }
                Next::Idle => break,
            }
        }
        self.report_depth();
    }
}

impl Actor for RateLimiter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1 << 16);
        if !self.resume {
            return;
        }
        // The sends of the process that ran before count first: its last second's sends against
        // the window, each person's recent ones against their pace.
        let recent = self.store.recent_sends(now_ms() - self.remembered_ms());
        let pending = self.store.pending_jobs();
        let loads = async move { (recent.await, pending.await) };
        ctx.wait(loads.into_actor(self).map(|(recent, loaded), act, ctx| {
            match recent {
                Ok(sends) => act.seed(sends),
                Err(e) => {
                    tracing::error!(error = %e, "loading the last sends failed; the rate limits start from none")
                }
            }
            match loaded {
                Ok(jobs) => {
                    if !jobs.is_empty() {
                        tracing::info!(
                            count = jobs.len(),
                            "resuming queued messages from the store"
                        );
                    }
                    for job in jobs {
                        act.queue.push(job);
                    }
                }
                Err(e) => tracing::error!(error = %e, "loading the outbound queue failed"),
            }
            act.pump(ctx);
        }));
        let unconfirmed = self.store.unconfirmed_jobs();
        ctx.spawn(unconfirmed.into_actor(self).map(|loaded, act, ctx| match loaded {
            Ok(jobs) if !jobs.is_empty() => {
                tracing::info!(
                    count = jobs.len(),
                    wait_secs = act.settings.unconfirmed_grace.as_secs(),
                    "messages were leaving when the bot stopped; waiting for Meta's statuses before sending any again"
                );
                let grace = act.settings.unconfirmed_grace;
                ctx.run_later(grace, move |act, ctx| act.reconcile(jobs, ctx));
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "loading the messages left sending failed"),
        }));
    }
}

impl RateLimiter {
    /// How far back sends still count against a limit: the sliding window, or a person's pace.
    fn remembered_ms(&self) -> i64 {
        let window = Duration::from_secs(1) + self.settings.window_margin;
        let pair = self
            .settings
            .pair
            .map_or(Duration::ZERO, |p| p.every * p.burst.get());
        i64::try_from(window.max(pair).as_millis()).unwrap_or(i64::MAX)
    }

    /// Counts sends made before this limiter started (epoch ms) as its own.
    fn seed(&mut self, sends: Vec<(WaId, i64)>) {
        if sends.is_empty() {
            return;
        }
        let (now, now_ms) = (Instant::now(), now_ms());
        let at = |ms: i64| {
            let ago = Duration::from_millis(u64::try_from(now_ms - ms).unwrap_or(0));
            now.checked_sub(ago).unwrap_or(now)
        };
        let sends: Vec<(WaId, Instant)> = sends.into_iter().map(|(to, ms)| (to, at(ms))).collect();
        tracing::info!(
            sends = sends.len(),
            "counting the sends made just before this start against the rate limits"
        );
        self.queue.seed(&sends);
    }

    /// After the grace period: a message a status named reached Meta (the store marked it sent);
    /// the others are sent again, and counted.
    fn reconcile(&mut self, jobs: Vec<QueuedJob>, ctx: &mut Context<Self>) {
        let ids = jobs.iter().map(|j| j.id.clone()).collect();
        let check = self.store.still_sending(ids);
        ctx.spawn(check.into_actor(self).map(move |still, act, ctx| {
            let still = match still {
                Ok(still) => still,
                Err(e) => {
                    // Sending twice is better than not at all.
                    tracing::error!(error = %e, "could not check the messages left sending; sending them again");
                    vec![true; jobs.len()]
                }
            };
            let mut resent = 0;
            for (job, again) in jobs.into_iter().zip(still) {
                if again {
                    resent += 1;
                    act.queue.push(job);
                }
            }
            if resent > 0 {
                tracing::warn!(resent, "no status named these messages; sending them again");
                metrics::counter!("aof_sends_resent_total").increment(resent);
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
        let id = match &message.key {
            Some(key) => JobId(key.clone()),
            None => JobId(new_id("job")),
        };
        let job = QueuedJob {
            id,
            message,
            attempts: 0,
            enqueued_at_ms: now_ms(),
            folds: Vec::new(),
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
            let new = store
                .enqueue(job.clone())
                .await
                .map_err(|e| EnqueueError::Store(e.to_string()))?;
            let id = job.id.clone();
            if new {
                me.do_send(Admit(job));
            } else {
                // A step run again after a crash: the first copy is queued or sent already.
                tracing::info!(job = %id.0, "a message queued again under the same key is not sent twice");
                metrics::counter!("aof_sends_deduplicated_total").increment(1);
            }
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
        self.queue.push(job);
        self.pump(ctx);
    }
}

impl Handler<SendFinished> for RateLimiter {
    type Result = ();

    fn handle(&mut self, msg: SendFinished, ctx: &mut Context<Self>) {
        match msg.outcome {
            SendOutcome::Retry {
                after,
                throttled,
                person,
            } => {
                if person {
                    self.queue.hold_person(&msg.job.message.to, after);
                }
                if let Some(rate) = self.queue.retry(msg.job, after, throttled) {
                    tracing::warn!(
                        per_second = rate,
                        "Meta is throttling sends (130429): rate lowered to {rate}/s"
                    );
                }
            }
            SendOutcome::Halted { pause } => self.queue.halt(msg.job, pause),
            SendOutcome::Fallback => {
                self.queue.set_aside();
                self.take_quota_then_requeue(msg.job, ctx);
            }
            SendOutcome::Sent => {
                self.queue.finished(&msg.job);
                self.progress.sent();
            }
            SendOutcome::Failed => {
                self.queue.finished(&msg.job);
                self.progress.failed();
            }
        }
        self.pump(ctx);
    }
}

impl RateLimiter {
    /// A fallback template counts against the daily quota like any other template.
    fn take_quota_then_requeue(&mut self, job: QueuedJob, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let limit = self.settings.templates_per_day;
        let take = store.take_template_quota(utc_day(), limit);
        ctx.spawn(take.into_actor(self).map(move |taken, act, ctx| {
            match taken {
                Ok(true) => act.queue.put_back(job),
                Ok(false) => {
                    let template = match &job.message.body {
                        OutboundBody::Template { name, .. } => name.clone(),
                        _ => String::new(),
                    };
                    let reason = EnqueueError::TemplateQuotaExceeded { limit, template, to: job.message.to.masked() };
                    report_failure(&*act.store, &job, None, reason.to_string());
                    act.queue.drop_aside(&job);
                }
                Err(e) => {
                    tracing::error!(error = %e, "template quota check failed; sending the fallback anyway");
                    act.queue.put_back(job);
                }
            }
            act.pump(ctx);
        }));
    }
}

impl Handler<Drain> for RateLimiter {
    type Result = usize;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> usize {
        self.draining = true;
        self.queue.in_flight()
    }
}

impl Handler<GetQueueStats> for RateLimiter {
    type Result = MessageResult<GetQueueStats>;

    fn handle(&mut self, _: GetQueueStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(QueueStats {
            queued: self.queue.queued(),
            in_flight: self.queue.in_flight(),
        })
    }
}

#[cfg(test)]
#[path = "actor_tests.rs"]
mod actor_tests;
