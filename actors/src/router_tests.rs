//! The Router alone: a route table that sends every text to `echo`, a flow runner that records
//! what it was asked to run, and a stand-in for the rate limiter; sessions run on the test's
//! system (no arbiters).

use super::*;
use crate::ids::JobId;
use crate::memory_store::MemoryStore;
use crate::model::{Lane, Route, RouteReason};
use crate::ports::FlowOutcome;
use crate::rate_limiter::Enqueue;
use futures_util::future::LocalBoxFuture;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct EverythingToEcho;

impl RouteTable for EverythingToEcho {
    fn route(&self, _: &WaId, _: &str) -> Option<Route> {
        Some(Route {
            flow: "echo".into(),
            reason: RouteReason::Default,
            captures: vec![],
        })
    }

    fn route_unsupported(&self, _: &str) -> Option<Route> {
        None
    }
}

/// What a run was: its flow, who started it (if anyone), their text, and whether it has a session.
type Ran = (String, Option<String>, Option<String>, bool);

struct RecordingRunner(Arc<Mutex<Vec<Ran>>>);

impl FlowRunner for RecordingRunner {
    fn run(&self, run: FlowRun) -> LocalBoxFuture<'static, FlowOutcome> {
        let trigger = run.trigger.as_ref();
        self.0.lock().unwrap().push((
            run.flow.clone(),
            trigger.map(|m| m.from.e164()),
            trigger.and_then(|m| m.text.clone()),
            run.session.is_some(),
        ));
        Box::pin(async { FlowOutcome::Completed })
    }
}

/// Stands in for the rate limiter: records who each queued message is for.
struct RecordingQueue(Arc<Mutex<Vec<String>>>);

impl Actor for RecordingQueue {
    type Context = Context<Self>;
}

impl Handler<Enqueue> for RecordingQueue {
    type Result = Queued;

    fn handle(&mut self, Enqueue(message): Enqueue, _: &mut Context<Self>) -> Queued {
        let mut queued = self.0.lock().unwrap();
        queued.push(message.to.e164());
        Ok(JobId(format!("job_{}", queued.len())))
    }
}

fn inbound(n: u32, from: &WaId, text: &str) -> RouteInbound {
    RouteInbound(InboundMessage::text(
        &format!("wamid.in.{n}"),
        from.clone(),
        text,
    ))
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        actix::clock::sleep(Duration::from_millis(5)).await;
    }
}

#[actix::test]
async fn one_session_per_person_runs_their_messages_in_order_and_goes_when_idle() {
    let (ran, queued) = (Arc::default(), Arc::default());
    let runner: Arc<dyn FlowRunner> = Arc::new(RecordingRunner(Arc::clone(&ran)));
    let deps = SessionDeps {
        runner: runner.clone(),
        store: Arc::new(MemoryStore::new()),
        limiter: RecordingQueue(Arc::clone(&queued)).start().recipient(),
        lookback: 5,
        idle_timeout: Duration::from_millis(200),
    };
    let router = Router::new(Arc::new(EverythingToEcho), runner, deps, vec![]).start();
    let alice = WaId::parse("15551234567").unwrap();
    let bob = WaId::parse("15557654321").unwrap();
    let carol = WaId::parse("15550001234").unwrap();

    router.do_send(inbound(1, &alice, "one"));
    router.do_send(inbound(2, &bob, "two"));
    router.do_send(inbound(3, &alice, "three"));
    router.do_send(RunFlow {
        run_id: RunId::new(),
        flow: "tick".into(),
        input: serde_json::Value::Null,
        records: None,
        origin: None,
    });
    let to_carol = OutboundMessage::text(carol.clone(), "for Carol", Lane::Alert);
    router
        .send(SendTo(to_carol))
        .await
        .unwrap()
        .expect("queued");
    assert_eq!(
        router.send(SessionCount).await.unwrap(),
        3,
        "Alice, Bob, Carol"
    );

    until("every run started", || ran.lock().unwrap().len() == 4).await;
    let ran = ran.lock().unwrap().clone();
    let of = |who: &WaId| -> Vec<String> {
        let who = Some(who.e164());
        ran.iter()
            .filter(|r| r.1 == who)
            .filter_map(|r| r.2.clone())
            .collect()
    };
    assert_eq!(of(&alice), ["one", "three"], "a person's messages in order");
    assert_eq!(of(&bob), ["two"]);
    assert!(
        ran.iter().filter(|r| r.1.is_some()).all(|r| r.3),
        "a person's run has their session"
    );
    let tick = ran
        .iter()
        .find(|r| r.0 == "tick")
        .expect("the timer's flow ran");
    assert!(
        tick.1.is_none() && !tick.3,
        "a run nobody started has no session"
    );
    assert_eq!(*queued.lock().unwrap(), [carol.e164()]);

    let deadline = Instant::now() + Duration::from_secs(5);
    while router.send(SessionCount).await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "idle sessions never stopped");
        actix::clock::sleep(Duration::from_millis(20)).await;
    }
}
