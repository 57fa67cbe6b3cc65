//! The Sender actor: makes one attempt per job through the [`Transport`] port and decides what
//! follows: done, retry later (through the rate limiter again, so retries count against the rate),
//! resend as the template fallback, or give up and report with Meta's code and message.

pub mod backoff;
mod departures;

use crate::failed_send::{report_failure, spawn_logged};
use crate::ids::Wamid;
use crate::model::QueuedJob;
use crate::ports::{SendError, SendErrorKind, Store, Transport};
use actix::prelude::*;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One send for the Sender to attempt.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SendJob(pub QueuedJob);

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
    /// Try again after `after`; when `throttled`, the limiter also lowers its rate; when
    /// `person`, nothing else goes to that person meanwhile either (131056).
    Retry {
        /// How long this job waits.
        after: Duration,
        /// Whether Meta said the number or app is over its throughput.
        throttled: bool,
        /// Whether Meta said this person gets too many messages (the pair rate).
        person: bool,
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

/// Retry policy.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// Attempts per message before it is reported as failed.
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt.
    pub base_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// How long every send pauses when Meta refuses the token or the account.
    pub halt_pause: Duration,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Send the same job again after the delay.
    Retry {
        /// How long to wait.
        after: Duration,
        /// Whether Meta throttled the number (the limiter lowers its rate).
        throttled: bool,
        /// Whether Meta said the person gets too many messages (131056: the limiter holds them).
        person: bool,
    },
    /// Replace the body with the template fallback and send again now.
    UseFallback,
    /// The token or the account is unusable: keep the message, pause every send, alert.
    Halt,
    /// Give up.
    Fail,
}

/// Decides what a failed attempt leads to; a plain function so that it is tested without actors.
pub fn decide(job: &QueuedJob, error: &SendError, settings: &SenderSettings) -> Decision {
    let exhausted = job.attempts >= settings.max_attempts;
    let backoff = || {
        error.retry_after.unwrap_or_else(|| {
            backoff::exponential(job.attempts, settings.base_backoff, settings.max_backoff)
        })
    };
    match error.kind {
        SendErrorKind::Transient if !exhausted => Decision::Retry {
            after: backoff(),
            throttled: false,
            person: false,
        },
        // Throttling is about the rate, not the message: it is retried whatever the attempt count.
        // The attempt still counts (its waits grow), so a later ordinary error may be the last.
        SendErrorKind::Throttled => Decision::Retry {
            after: backoff(),
            throttled: true,
            person: false,
        },
        SendErrorKind::PairRateLimited if !exhausted => Decision::Retry {
            after: backoff::pair_rate(job.attempts, settings.max_backoff),
            throttled: false,
            person: true,
        },
        SendErrorKind::ReEngagementRequired if job.message.fallback.is_some() => {
            Decision::UseFallback
        }
        SendErrorKind::Fatal => Decision::Halt,
        _ => Decision::Fail,
    }
}

/// Sends queued jobs over the transport.
pub struct Sender {
    transport: Rc<dyn Transport>,
    store: Arc<dyn Store>,
    limiter: Recipient<SendFinished>,
    settings: SenderSettings,
    /// The gate at departure, when the rate is limited ([`Sender::departing`]).
    departures: Option<departures::Departures>,
}

impl Sender {
    /// A sender reporting to `limiter`. The transport is not `Send`: build the sender on its arbiter.
    pub fn new(
        transport: Rc<dyn Transport>,
        store: Arc<dyn Store>,
        limiter: Recipient<SendFinished>,
        settings: SenderSettings,
    ) -> Self {
        Sender {
            transport,
            store,
            limiter,
            settings,
            departures: None,
        }
    }

    /// Lets at most `limit` requests leave in any `window`, counted as they leave (after their
    /// `sending` mark), whatever the wait for the mark did to the limiter's spacing.
    pub fn departing(mut self, limit: usize, window: Duration) -> Self {
        self.departures = Some(departures::Departures::new(limit, window));
        self
    }

    fn finish(&self, job: QueuedJob, result: Result<Wamid, SendError>, started: Instant) {
        let lane = job.message.lane.as_str();
        match result {
            Ok(wamid) => {
                metrics::histogram!("aof_send_latency_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::counter!("aof_outbound_sends_total", "result" => "sent", "lane" => lane)
                    .increment(1);
                tracing::debug!(wamid = %wamid, attempt = job.attempts, lane, "sent");
                spawn_logged(
                    self.store.job_sent(job.clone(), wamid),
                    "recording a sent message",
                );
                self.limiter.do_send(SendFinished {
                    job,
                    outcome: SendOutcome::Sent,
                });
            }
            Err(error) => self.failed(job, error),
        }
    }

    fn failed(&self, mut job: QueuedJob, error: SendError) {
        let lane = job.message.lane.as_str();
        let outcome = match decide(&job, &error, &self.settings) {
            Decision::Retry {
                after,
                throttled,
                person,
            } => {
                metrics::counter!("aof_outbound_sends_total", "result" => "retry", "lane" => lane)
                    .increment(1);
                tracing::warn!(code = ?error.code, attempt = job.attempts, retry_in_ms = after.as_millis() as u64,
                    wa = %job.message.to.masked(), "send failed; will retry: {}", error.message);
                spawn_logged(
                    self.store.update_job(job.clone()),
                    "updating a queued message",
                );
                SendOutcome::Retry {
                    after,
                    throttled,
                    person,
                }
            }
            Decision::UseFallback => {
                tracing::warn!(wa = %job.message.to.masked(),
                    "free-form message refused outside the 24-hour window (131047); sending the template instead");
                if let Some(fallback) = job.message.fallback.take() {
                    job.message.body = fallback;
                }
                spawn_logged(
                    self.store.update_job(job.clone()),
                    "updating a queued message",
                );
                SendOutcome::Fallback
            }
            Decision::Halt => {
                metrics::counter!("aof_outbound_sends_total", "result" => "halted", "lane" => lane)
                    .increment(1);
                tracing::error!(code = ?error.code, pause_secs = self.settings.halt_pause.as_secs(),
                    "Meta refused the credentials or the account; every send is paused and the queue kept. \
                     Fix platforms.whatsapp.access_token or the account, then restart: {}", error.message);
                // This attempt does not count: the message did nothing wrong.
                job.attempts = job.attempts.saturating_sub(1);
                SendOutcome::Halted {
                    pause: self.settings.halt_pause,
                }
            }
            Decision::Fail => {
                report_failure(&*self.store, &job, error.code, error.message);
                SendOutcome::Failed
            }
        };
        self.limiter.do_send(SendFinished { job, outcome });
    }
}

impl Actor for Sender {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1 << 16);
    }
}

impl Handler<SendJob> for Sender {
    type Result = ();

    /// The job is recorded as `sending` before the request leaves; a job that cannot be recorded
    /// is not sent (a transient failure: it is retried).
    fn handle(&mut self, SendJob(job): SendJob, ctx: &mut Context<Self>) {
        let started = Instant::now();
        let marked = if job.folds.is_empty() {
            self.store.job_sending(job.id.clone())
        } else {
            self.store.job_folding(job.clone())
        };
        let transport = self.transport.clone();
        let departures = self.departures.clone();
        let (id, message) = (job.id.clone(), job.message.clone());
        let attempt = async move {
            if let Err(e) = marked.await {
                return Err(SendError {
                    kind: SendErrorKind::Transient,
                    code: None,
                    message: format!("not sent: the store could not record it as sending ({e})"),
                    retry_after: None,
                });
            }
            if let Some(departures) = departures {
                departures.leave().await;
            }
            let sent = crate::guard::caught("send", transport.send(&id, &message)).await;
            sent.unwrap_or_else(|panic| {
                Err(SendError {
                    kind: SendErrorKind::Transient,
                    code: None,
                    message: format!("the send panicked: {panic}"),
                    retry_after: None,
                })
            })
        };
        ctx.spawn(
            attempt
                .into_actor(self)
                .map(move |result, act, _| act.finish(job, result, started)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{JobId, WaId};
    use crate::model::{Lane, OutboundBody, OutboundMessage};

    fn job(attempts: u32, fallback: bool) -> QueuedJob {
        let template = OutboundBody::Template {
            name: "ops_notification".into(),
            language: "en_US".into(),
            parameters: vec![],
        };
        QueuedJob {
            id: JobId("job_1".into()),
            message: OutboundMessage::text(
                WaId::parse("15551234567").expect("a valid number"),
                "hi",
                Lane::Reply,
            )
            .fallback(fallback.then_some(template)),
            attempts,
            enqueued_at_ms: 0,
            folds: Vec::new(),
        }
    }

    fn error(kind: SendErrorKind) -> SendError {
        SendError {
            kind,
            code: Some(1),
            message: "x".into(),
            retry_after: None,
        }
    }

    fn settings() -> SenderSettings {
        SenderSettings {
            max_attempts: 3,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            halt_pause: Duration::from_secs(60),
        }
    }

    #[test]
    fn transient_errors_retry_until_attempts_run_out() {
        assert!(matches!(
            decide(
                &job(1, false),
                &error(SendErrorKind::Transient),
                &settings()
            ),
            Decision::Retry {
                throttled: false,
                ..
            }
        ));
        assert_eq!(
            decide(
                &job(3, false),
                &error(SendErrorKind::Transient),
                &settings()
            ),
            Decision::Fail
        );
    }

    #[test]
    fn throttling_is_retried_even_after_the_last_attempt() {
        assert!(matches!(
            decide(
                &job(9, false),
                &error(SendErrorKind::Throttled),
                &settings()
            ),
            Decision::Retry {
                throttled: true,
                ..
            }
        ));
    }

    #[test]
    fn the_24_hour_window_uses_the_fallback_once_then_fails() {
        assert_eq!(
            decide(
                &job(1, true),
                &error(SendErrorKind::ReEngagementRequired),
                &settings()
            ),
            Decision::UseFallback
        );
        assert_eq!(
            decide(
                &job(1, false),
                &error(SendErrorKind::ReEngagementRequired),
                &settings()
            ),
            Decision::Fail
        );
    }

    #[test]
    fn fatal_errors_halt_sending_instead_of_dropping_the_message() {
        assert_eq!(
            decide(&job(1, true), &error(SendErrorKind::Fatal), &settings()),
            Decision::Halt
        );
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        assert_eq!(
            decide(&job(1, true), &error(SendErrorKind::Permanent), &settings()),
            Decision::Fail
        );
    }

    /// Stands in for Meta: answers each send with the next scripted result.
    struct ScriptedTransport(std::cell::RefCell<Vec<Result<Wamid, SendError>>>);

    impl Transport for ScriptedTransport {
        fn send(
            &self,
            _: &JobId,
            _: &OutboundMessage,
        ) -> futures_util::future::LocalBoxFuture<'static, Result<Wamid, SendError>> {
            let next = self.0.borrow_mut().remove(0);
            Box::pin(async move { next })
        }
    }

    #[actix::test]
    async fn the_sender_reports_each_attempts_verdict_and_records_the_result() {
        use crate::memory_store::MemoryStore;
        let store = MemoryStore::new();
        let (limiter, finished) = crate::testing::Recorder::<SendFinished>::new();
        let asked_to_wait = SendError {
            retry_after: Some(Duration::from_millis(100)),
            ..error(SendErrorKind::Transient)
        };
        let transport = ScriptedTransport(std::cell::RefCell::new(vec![
            Err(asked_to_wait),
            Err(error(SendErrorKind::ReEngagementRequired)),
            Ok(Wamid("wamid.out.1".into())),
            Err(error(SendErrorKind::Permanent)),
        ]));
        let sender = Sender::new(
            Rc::new(transport),
            Arc::new(store.clone()),
            limiter.start().recipient(),
            settings(),
        )
        .start();
        for attempts in [1, 2, 3, 1] {
            sender.send(SendJob(job(attempts, true))).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while finished.lock().unwrap().len() < 4 && Instant::now() < deadline {
            actix::clock::sleep(Duration::from_millis(5)).await;
        }
        let verdicts: Vec<(u32, SendOutcome)> = finished
            .lock()
            .unwrap()
            .iter()
            .map(|f| (f.job.attempts, f.outcome.clone()))
            .collect();
        assert_eq!(
            verdicts,
            [
                (
                    1,
                    SendOutcome::Retry {
                        after: Duration::from_millis(100),
                        throttled: false,
                        person: false,
                    }
                ),
                (2, SendOutcome::Fallback),
                (3, SendOutcome::Sent),
                (1, SendOutcome::Failed),
            ]
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        let recorded =
            |c: &crate::memory_store::Contents| !c.sent.is_empty() && !c.failed.is_empty();
        while !recorded(&store.snapshot()) && Instant::now() < deadline {
            actix::clock::sleep(Duration::from_millis(5)).await;
        }
        let kept = store.snapshot();
        assert_eq!(
            kept.sent.len(),
            1,
            "the sent message is recorded with its wamid"
        );
        assert_eq!(kept.sent[0].1, Wamid("wamid.out.1".into()));
        assert_eq!(kept.failed.len(), 1, "the permanent failure is reported");
    }
}
