//! The Session alone: stand-ins for the rate limiter and the Router, flow runners that record or
//! misbehave, and the in-memory store.

use super::*;
use crate::ids::JobId;
use crate::memory_store::MemoryStore;
use crate::model::{Lane, RouteReason};
use crate::ports::FlowOutcome;
use crate::rate_limiter::Enqueue;
use futures_util::future::LocalBoxFuture;
use std::sync::Mutex;

/// Stands in for the rate limiter: records what it was asked to queue.
#[derive(Default)]
struct Queue(Arc<Mutex<Vec<OutboundMessage>>>);

impl Actor for Queue {
    type Context = Context<Self>;
}

impl Handler<Enqueue> for Queue {
    type Result = Queued;

    fn handle(&mut self, Enqueue(message): Enqueue, _: &mut Context<Self>) -> Queued {
        let mut queued = self.0.lock().unwrap();
        queued.push(message);
        Ok(JobId(format!("job_{}", queued.len())))
    }
}

/// Stands in for the Router: only ever asked to release the session.
struct NoRouter;

impl Actor for NoRouter {
    type Context = Context<Self>;
}

impl Handler<ReleaseSession> for NoRouter {
    type Result = bool;

    fn handle(&mut self, _: ReleaseSession, _: &mut Context<Self>) -> bool {
        true
    }
}

/// Alice's session running `runner`, on a memory store, queueing into a recording queue.
fn alices_session(
    runner: impl FlowRunner,
) -> (
    Addr<Session>,
    WaId,
    MemoryStore,
    Arc<Mutex<Vec<OutboundMessage>>>,
) {
    let queued = Arc::new(Mutex::new(Vec::new()));
    let store = MemoryStore::new();
    let deps = SessionDeps {
        runner: Arc::new(runner),
        store: Arc::new(store.clone()),
        limiter: Queue(queued.clone()).start().recipient(),
        lookback: 5,
        idle_timeout: Duration::from_secs(60),
    };
    let alice = WaId::parse("15551234567").unwrap();
    let session = Session::new(alice.clone(), deps, NoRouter.start().recipient()).start();
    (session, alice, store, queued)
}

/// A flow that answers its person and waits for a YES, through the run's session link.
struct AnswerAndAsk;

impl FlowRunner for AnswerAndAsk {
    fn run(&self, run: FlowRun) -> LocalBoxFuture<'static, FlowOutcome> {
        Box::pin(async move {
            let link = run.session.expect("a run a person started has its session");
            let who = link.person().clone();
            let reply = OutboundMessage::text(who, "got it", Lane::Reply);
            link.send(reply).await.expect("queued");
            link.expect(Expectation {
                about: None,
                run: run.run_id.0.clone(),
                pattern: "^YES$".into(),
                flow: "confirm".into(),
                payload: serde_json::Value::Null,
                expires_at_ms: now_ms() + 60_000,
            });
            FlowOutcome::Completed
        })
    }
}

#[actix::test]
async fn a_runs_reply_and_question_go_from_the_session_straight_to_the_queue() {
    let (session, alice, store, queued) = alices_session(AnswerAndAsk);
    session.do_send(Deliver {
        message: InboundMessage::text("wamid.in.1", alice.clone(), "hello"),
        route: Some(Route {
            flow: "answer".into(),
            reason: RouteReason::Default,
            captures: vec![],
        }),
    });

    let deadline = Instant::now() + Duration::from_secs(5);
    let saved = loop {
        let conversation = store.snapshot().conversations.get(&alice).cloned();
        if let Some(c) = conversation.filter(|c| !c.expectations.is_empty()) {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "the question was never registered"
        );
        actix::clock::sleep(Duration::from_millis(10)).await;
    };
    let sent: Vec<String> = queued
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.preview.clone())
        .collect();
    assert_eq!(sent, ["got it"], "queued with no Router in between");
    let texts: Vec<&str> = saved.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        texts,
        ["hello", "got it"],
        "both directions are in the context"
    );
    assert_eq!(saved.expectations[0].pattern, "^YES$");
}

/// A flow that panics on "boom" and answers anything else.
struct PanicsOnBoom;

impl FlowRunner for PanicsOnBoom {
    fn run(&self, run: FlowRun) -> LocalBoxFuture<'static, FlowOutcome> {
        Box::pin(async move {
            let text = run.trigger.as_ref().and_then(|m| m.text.clone());
            assert_ne!(text.as_deref(), Some("boom"), "a bug in an agent");
            let link = run.session.expect("its session");
            let reply = OutboundMessage::text(link.person().clone(), "fine", Lane::Reply);
            link.send(reply).await.expect("queued");
            FlowOutcome::Completed
        })
    }
}

#[actix::test]
async fn a_run_that_panics_fails_alone_and_the_session_goes_on() {
    let (session, alice, store, queued) = alices_session(PanicsOnBoom);
    let message = |id: &str, text: &str| InboundMessage::text(id, alice.clone(), text);
    let kept = store
        .accept(
            vec![message("wamid.1", "boom"), message("wamid.2", "hello")],
            vec![],
            crate::ports::AuditInbound::No,
        )
        .await
        .unwrap();
    for (id, text, seq) in [("wamid.1", "boom", kept[0]), ("wamid.2", "hello", kept[1])] {
        let mut message = message(id, text);
        message.inbox = seq;
        let route = Some(Route {
            flow: "answer".into(),
            reason: RouteReason::Default,
            captures: vec![],
        });
        session.do_send(Deliver { message, route });
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.snapshot().inbox.iter().any(|row| row.1.is_none()) {
        assert!(Instant::now() < deadline, "{:?}", store.snapshot().inbox);
        actix::clock::sleep(Duration::from_millis(10)).await;
    }
    let outcomes: Vec<Option<String>> = store
        .snapshot()
        .inbox
        .into_iter()
        .map(|row| row.1)
        .collect();
    assert_eq!(
        outcomes,
        [Some("failed".to_owned()), Some("completed".to_owned())],
        "the panic failed its own run; the next message ran"
    );
    let previews: Vec<String> = queued
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.preview.clone())
        .collect();
    assert_eq!(previews, ["fine"]);
    assert!(session.connected(), "the session is still there");
}

/// Asks for a YES on any message but YES; a YES run waits for `open` before it ends.
struct AskThenWait {
    open: Arc<tokio::sync::Notify>,
}

impl FlowRunner for AskThenWait {
    fn run(&self, run: FlowRun) -> LocalBoxFuture<'static, FlowOutcome> {
        let open = self.open.clone();
        Box::pin(async move {
            if run.expectation.is_some() {
                open.notified().await;
                return FlowOutcome::Completed;
            }
            AnswerAndAsk.run(run).await
        })
    }
}

/// The answer a person gives to a question is taken from the conversation in the store only when
/// its run ended: a crash during the run hands the answer over again, and it finds the question
/// it answers (not the static route, which would run another flow).
#[actix::test]
async fn an_answer_is_taken_from_the_stored_conversation_only_when_its_run_ended() {
    let open = Arc::new(tokio::sync::Notify::new());
    let (session, alice, store, _queued) = alices_session(AskThenWait { open: open.clone() });
    let stored_questions = |store: &MemoryStore| {
        store
            .snapshot()
            .conversations
            .get(&alice)
            .map_or(0, |c| c.expectations.len())
    };
    let deliver = |id: &str, text: &str| Deliver {
        message: InboundMessage::text(id, alice.clone(), text),
        route: Some(Route {
            flow: "answer".into(),
            reason: RouteReason::Default,
            captures: vec![],
        }),
    };
    session.do_send(deliver("wamid.in.1", "hello"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while stored_questions(&store) == 0 {
        assert!(Instant::now() < deadline, "the question was never stored");
        actix::clock::sleep(Duration::from_millis(10)).await;
    }

    session.do_send(deliver("wamid.in.2", "YES"));
    actix::clock::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        stored_questions(&store),
        1,
        "while the answer's run goes on, the stored question is still open"
    );
    open.notify_one();
    while stored_questions(&store) != 0 {
        assert!(
            Instant::now() < deadline,
            "the answered question stayed in the store after its run"
        );
        actix::clock::sleep(Duration::from_millis(10)).await;
    }
}
