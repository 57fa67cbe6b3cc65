//! The Router actor: owns the registry of sessions (one per person, spread over an arbiter pool),
//! asks the application's route table where each inbound message goes, forwards messages and
//! expectations for other people to their session, and starts flows that no person triggered
//! (webhooks, timers).

use crate::ids::{InboxSeq, RunId, WaId};
use crate::model::{Expectation, InboundMessage, OutboundMessage};
use crate::ports::{
    EnqueueError, FlowOutcome, FlowRun, FlowRunner, Queued, RecordsNotifier, RouteTable, Store,
};
use crate::session::{AddExpectation, Deliver, ReleaseSession, SendOutbound, Session, SessionDeps};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// A new message from a person, deduplicated and allowed.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RouteInbound(pub InboundMessage);

/// A message for a person; it goes through their session so that it lands in their context.
#[derive(Message, Debug)]
#[rtype(result = "Queued")]
pub struct SendTo(pub OutboundMessage);

/// A reply a flow waits for from `who`.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Expect {
    /// The person expected to answer.
    pub who: WaId,
    /// What is expected.
    pub expectation: Expectation,
}

/// Runs a flow that no person triggered (a webhook, a timer).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RunFlow {
    /// The run's id, known to the caller (the HTTP answer carries it).
    pub run_id: RunId,
    /// The flow.
    pub flow: String,
    /// Its input.
    pub input: serde_json::Value,
    /// Told the ids of the records the run creates.
    pub records: Option<RecordsNotifier>,
    /// What to close once the run ended; until then a restart starts it again.
    pub origin: Option<Origin>,
}

/// What started a run that no person started. It stays open in the store until the run ended, so
/// that a crash in between starts the run again instead of losing it.
#[derive(Clone, Debug)]
pub enum Origin {
    /// A webhook's inbox row: closed with the run's outcome.
    Inbox(InboxSeq),
    /// A stored timer: forgotten.
    Timer(String),
}

impl Origin {
    /// Closes the origin after its run ended with `outcome`.
    async fn close(self, store: Arc<dyn Store>, outcome: FlowOutcome) {
        let (done, what) = match self {
            Origin::Inbox(seq) => (
                store.inbox_done(seq, outcome.label().into()),
                "an inbox row",
            ),
            Origin::Timer(id) => (store.finish_timer(id), "a fired timer"),
        };
        if let Err(e) = done.await {
            tracing::error!(error = %e, "closing {what} failed; its run starts again after a restart");
        }
    }
}

/// How many sessions are alive (for metrics and tests).
#[derive(Message, Debug)]
#[rtype(result = "usize")]
pub struct SessionCount;

struct SessionEntry {
    addr: Addr<Session>,
    forwarded: u64,
}

/// Routes messages and owns the session registry.
pub struct Router {
    routes: Arc<dyn RouteTable>,
    runner: Arc<dyn FlowRunner>,
    deps: SessionDeps,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: usize,
    sessions: HashMap<WaId, SessionEntry>,
}

impl Router {
    /// A router starting sessions on `arbiters` (round-robin) with `deps`.
    pub fn new(
        routes: Arc<dyn RouteTable>,
        runner: Arc<dyn FlowRunner>,
        deps: SessionDeps,
        arbiters: Vec<ArbiterHandle>,
    ) -> Self {
        Router {
            routes,
            runner,
            deps,
            arbiters,
            next_arbiter: 0,
            sessions: HashMap::new(),
        }
    }

    fn next_arbiter(&mut self) -> Option<ArbiterHandle> {
        if self.arbiters.is_empty() {
            return None;
        }
        self.next_arbiter = (self.next_arbiter + 1) % self.arbiters.len();
        Some(self.arbiters[self.next_arbiter].clone())
    }

    /// The session of `who`, started if needed; counts the message about to be forwarded.
    fn session(&mut self, who: &WaId, ctx: &mut Context<Self>) -> Addr<Session> {
        if let Some(entry) = self.sessions.get_mut(who) {
            if entry.addr.connected() {
                entry.forwarded += 1;
                return entry.addr.clone();
            }
        }
        let deps = self.deps.clone();
        let router = ctx.address().recipient();
        let person = who.clone();
        let addr = match self.next_arbiter() {
            Some(arbiter) => {
                Session::start_in_arbiter(&arbiter, move |_| Session::new(person, deps, router))
            }
            None => Session::new(person, deps, router).start(),
        };
        metrics::gauge!("aof_sessions").increment(1.0);
        self.sessions.insert(
            who.clone(),
            SessionEntry {
                addr: addr.clone(),
                forwarded: 1,
            },
        );
        addr
    }
}

impl Actor for Router {
    type Context = Context<Self>;
}

impl Handler<RouteInbound> for Router {
    type Result = ();

    fn handle(&mut self, RouteInbound(message): RouteInbound, ctx: &mut Context<Self>) {
        let route = match &message.text {
            Some(text) => self.routes.route(&message.from, text),
            None => self.routes.route_unsupported(message.kind.label()),
        };
        if let Some(route) = &route {
            tracing::debug!(flow = %route.flow, reason = ?route.reason, "routed");
        }
        let session = self.session(&message.from, ctx);
        session.do_send(Deliver { message, route });
    }
}

impl Handler<SendTo> for Router {
    type Result = ResponseFuture<Queued>;

    fn handle(&mut self, SendTo(message): SendTo, ctx: &mut Context<Self>) -> Self::Result {
        let session = self.session(&message.to, ctx);
        Box::pin(async move {
            session
                .send(SendOutbound {
                    message,
                    forwarded: true,
                })
                .await
                .unwrap_or(Err(EnqueueError::Stopped))
        })
    }
}

impl Handler<Expect> for Router {
    type Result = ();

    fn handle(&mut self, msg: Expect, ctx: &mut Context<Self>) {
        self.session(&msg.who, ctx).do_send(AddExpectation {
            expectation: msg.expectation,
            forwarded: true,
        });
    }
}

impl Handler<RunFlow> for Router {
    type Result = ();

    fn handle(&mut self, msg: RunFlow, _: &mut Context<Self>) {
        let run = FlowRun {
            run_id: msg.run_id,
            route: None,
            flow: msg.flow,
            trigger: None,
            input: msg.input,
            expectation: None,
            context: Vec::new(),
            records: msg.records,
            session: None,
        };
        let runner = self.runner.clone();
        let (store, origin) = (self.deps.store.clone(), msg.origin);
        // Made on the thread that runs it: a flow's future is not `Send`.
        let run = move || {
            actix::spawn(async move {
                let outcome = crate::guard::caught("flow run", runner.run(run))
                    .await
                    .unwrap_or_else(|panic| FlowOutcome::Failed(format!("panicked: {panic}")));
                if let Some(origin) = origin {
                    origin.close(store, outcome).await;
                }
            });
        };
        match self.next_arbiter() {
            Some(arbiter) => {
                arbiter.spawn_fn(run);
            }
            None => run(),
        }
    }
}

impl Handler<ReleaseSession> for Router {
    type Result = bool;

    fn handle(&mut self, msg: ReleaseSession, _: &mut Context<Self>) -> bool {
        match self.sessions.get(&msg.who) {
            Some(entry) if entry.forwarded == msg.handled => {
                self.sessions.remove(&msg.who);
                metrics::gauge!("aof_sessions").decrement(1.0);
                true
            }
            Some(_) => false,
            None => true,
        }
    }
}

impl Handler<SessionCount> for Router {
    type Result = usize;

    fn handle(&mut self, _: SessionCount, _: &mut Context<Self>) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
