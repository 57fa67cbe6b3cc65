//! The RateLimiter actor alone: an in-memory store, and a stand-in for the Sender that records each
//! job it is handed and answers with the outcome a test scripts.

use super::*;
use crate::ids::WaId;
use crate::memory_store::MemoryStore;
use crate::model::Lane;
use std::collections::HashMap;
use std::sync::Mutex;

/// Stands in for the Sender: records `(job id, attempt)` and answers each attempt from `script`.
struct RecordingSender {
    limiter: Addr<RateLimiter>,
    attempts: Arc<Mutex<Vec<(String, u32)>>>,
    script: HashMap<(String, u32), SendOutcome>,
}

impl Actor for RecordingSender {
    type Context = Context<Self>;
}

impl Handler<SendJob> for RecordingSender {
    type Result = ();

    fn handle(&mut self, SendJob(job): SendJob, _: &mut Context<Self>) {
        let key = (job.message.preview.clone(), job.attempts);
        self.attempts.lock().unwrap().push(key.clone());
        let outcome = self.script.remove(&key).unwrap_or(SendOutcome::Sent);
        self.limiter.do_send(SendFinished { job, outcome });
    }
}

fn settings(templates_per_day: u32) -> RateSettings {
    RateSettings {
        per_second: NonZeroU32::new(1000).unwrap(),
        window_margin: Duration::ZERO,
        templates_per_day,
        max_in_flight: 16,
        broadcast_batch: None,
        broadcast_batch_delay: Duration::ZERO,
        unconfirmed_grace: Duration::from_secs(30),
        pair: None,
    }
}

type Attempts = Arc<Mutex<Vec<(String, u32)>>>;

fn start(
    store: &MemoryStore,
    script: Vec<((&str, u32), SendOutcome)>,
    templates_per_day: u32,
    resume: bool,
) -> (Addr<RateLimiter>, Attempts) {
    let attempts = Attempts::default();
    let recorded = attempts.clone();
    let store: Arc<dyn Store> = Arc::new(store.clone());
    let script = script
        .into_iter()
        .map(|((text, attempt), outcome)| ((text.to_owned(), attempt), outcome))
        .collect();
    let limiter = RateLimiter::create(move |ctx| {
        let sender = RecordingSender {
            limiter: ctx.address(),
            attempts: recorded,
            script,
        }
        .start();
        RateLimiter::new(
            settings(templates_per_day),
            store,
            sender.recipient(),
            resume,
        )
    });
    (limiter, attempts)
}

fn text(body: &str) -> OutboundMessage {
    OutboundMessage::text(WaId::parse("15551234567").unwrap(), body, Lane::Alert)
}

/// Waits until the queue is empty and nothing is in flight.
async fn settled(limiter: &Addr<RateLimiter>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = limiter.send(GetQueueStats).await.unwrap();
        if stats == QueueStats::default() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the queue never drained: {stats:?}"
        );
        actix::clock::sleep(Duration::from_millis(5)).await;
    }
}

#[actix::test]
async fn a_job_is_stored_before_it_is_accepted_and_a_retry_goes_again() {
    let store = MemoryStore::new();
    let retry = SendOutcome::Retry {
        after: Duration::from_millis(30),
        throttled: false,
        person: false,
    };
    let (limiter, attempts) = start(&store, vec![(("one", 1), retry)], 10, true);
    for body in ["one", "two"] {
        limiter
            .send(Enqueue(text(body)))
            .await
            .unwrap()
            .expect("queued");
        let kept = store.snapshot().queue;
        assert!(
            kept.iter().any(|j| j.message.preview == body),
            "stored before the answer"
        );
    }
    settled(&limiter).await;
    let attempts = attempts.lock().unwrap().clone();
    // Both are for the same person: "two" waits for "one"'s retry, so it cannot overtake it.
    let expected = [("one", 1), ("one", 2), ("two", 1)].map(|(t, n)| (t.to_owned(), n));
    assert_eq!(attempts, expected);
}

#[actix::test]
async fn a_template_beyond_the_days_quota_is_refused_and_never_sent() {
    let store = MemoryStore::new();
    let (limiter, attempts) = start(&store, vec![], 1, true);
    let template = |name: &str| {
        let body = OutboundBody::Template {
            name: name.into(),
            language: "en_US".into(),
            parameters: vec![],
        };
        OutboundMessage::new(
            WaId::parse("15551234567").unwrap(),
            body,
            name.into(),
            Lane::Alert,
        )
    };
    limiter
        .send(Enqueue(template("first")))
        .await
        .unwrap()
        .expect("within quota");
    let refused = limiter.send(Enqueue(template("second"))).await.unwrap();
    assert!(matches!(
        refused,
        Err(EnqueueError::TemplateQuotaExceeded { limit: 1, .. })
    ));
    settled(&limiter).await;
    assert_eq!(*attempts.lock().unwrap(), [("first".to_owned(), 1)]);
}

#[actix::test]
async fn what_the_store_still_holds_is_sent_on_start_only_when_resuming() {
    for resume in [true, false] {
        let store = MemoryStore::new();
        let job = QueuedJob {
            id: JobId("job-left".into()),
            message: text("left over"),
            attempts: 0,
            enqueued_at_ms: 0,
            folds: Vec::new(),
        };
        store.enqueue(job).await.unwrap();
        let (limiter, attempts) = start(&store, vec![], 10, resume);
        limiter
            .send(Enqueue(text("new")))
            .await
            .unwrap()
            .expect("queued");
        settled(&limiter).await;
        let sent: Vec<String> = attempts
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _)| t.clone())
            .collect();
        let expected: &[&str] = if resume {
            &["left over", "new"]
        } else {
            &["new"]
        };
        assert_eq!(sent, expected, "resume = {resume}");
    }
}
