//! The Session actor: one per conversation. It keeps the conversation's last messages (both
//! directions, with what each outbound message was about) and the replies that flows wait for, runs
//! one flow at a time for its person, and mirrors its state to the store so that a restart or an idle
//! stop loses nothing.

use crate::ids::{InboxSeq, RunId, WaId};
use crate::model::{
    now_ms, same_subject, ContextEntry, Conversation, Direction, Expectation, InboundMessage,
    OutboundMessage, Route,
};
use crate::ports::{EnqueueError, FlowOutcome, FlowRun, FlowRunner, Queued, SessionLink, Store};
use crate::rate_limiter::Enqueue;
use actix::prelude::*;
use actix::WeakAddr;
use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A message from this session's person, with where static routing sends it.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Deliver {
    /// The message.
    pub message: InboundMessage,
    /// The static route (commands, keywords, default); a pending expectation overrides it.
    pub route: Option<Route>,
}

/// A message to this session's person: recorded in the context, then queued.
#[derive(Message, Debug)]
#[rtype(result = "Queued")]
pub struct SendOutbound {
    /// The message.
    pub message: OutboundMessage,
    /// Whether the Router forwarded it (it counts those, to release an idle session safely);
    /// `false` when a run of this session sent it through its `Link`.
    pub forwarded: bool,
}

/// A reply a flow now waits for from this session's person.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct AddExpectation {
    /// What is expected.
    pub expectation: Expectation,
    /// Whether the Router forwarded it (see [`SendOutbound::forwarded`]).
    pub forwarded: bool,
}

/// This session as the [`SessionLink`] of the runs it starts: their replies and expectations skip
/// the Router. It holds the session weakly: a run lives inside its session, so the session is
/// there while the run can send. (A strong address here cost 1.4 KB more per idle conversation at
/// 100,000 of them, measured with `aof-load --only sessions`.)
struct Link {
    who: WaId,
    session: WeakAddr<Session>,
}

impl SessionLink for Link {
    fn person(&self) -> &WaId {
        &self.who
    }

    fn send(&self, message: OutboundMessage) -> BoxFuture<'static, Queued> {
        let Some(session) = self.session.upgrade() else {
            return Box::pin(async { Err(EnqueueError::Stopped) });
        };
        let queued = session.send(SendOutbound {
            message,
            forwarded: false,
        });
        Box::pin(async move { queued.await.unwrap_or(Err(EnqueueError::Stopped)) })
    }

    fn expect(&self, expectation: Expectation) {
        if let Some(session) = self.session.upgrade() {
            session.do_send(AddExpectation {
                expectation,
                forwarded: false,
            });
        }
    }
}

/// An idle session asks to stop; the router agrees only if it forwarded nothing the session has
/// not handled, so that no message is lost to a stopping session.
#[derive(Message, Debug)]
#[rtype(result = "bool")]
pub struct ReleaseSession {
    /// The session's person.
    pub who: WaId,
    /// How many forwarded messages the session handled.
    pub handled: u64,
}

/// What every session shares.
#[derive(Clone)]
pub struct SessionDeps {
    /// Runs flows.
    pub runner: Arc<dyn FlowRunner>,
    /// Keeps the conversation.
    pub store: Arc<dyn Store>,
    /// Queues outbound messages.
    pub limiter: Recipient<Enqueue>,
    /// How many messages of context to keep.
    pub lookback: usize,
    /// How long a session lives without activity.
    pub idle_timeout: Duration,
}

/// Most expectations one person can have at once; the oldest go first.
const MAX_EXPECTATIONS: usize = 32;

/// One conversation.
pub struct Session {
    who: WaId,
    deps: SessionDeps,
    router: Recipient<ReleaseSession>,
    conversation: Conversation,
    waiting: VecDeque<Deliver>,
    busy: bool,
    /// The conversation changed during the run and is written when it ends.
    unsaved: bool,
    handled: u64,
    last_active: Instant,
    releasing: bool,
}

impl Session {
    /// A session for `who`; its state is loaded from the store when it starts.
    pub fn new(who: WaId, deps: SessionDeps, router: Recipient<ReleaseSession>) -> Self {
        Session {
            who,
            deps,
            router,
            conversation: Conversation::default(),
            waiting: VecDeque::new(),
            busy: false,
            unsaved: false,
            handled: 0,
            last_active: Instant::now(),
            releasing: false,
        }
    }

    /// Notes activity; `forwarded` messages (the Router counts those) count as handled.
    fn touch(&mut self, forwarded: bool) {
        if forwarded {
            self.handled += 1;
        }
        self.last_active = Instant::now();
    }

    fn push_entry(&mut self, entry: ContextEntry) {
        self.conversation.entries.push(entry);
        let excess = self
            .conversation
            .entries
            .len()
            .saturating_sub(self.deps.lookback.max(1));
        self.conversation.entries.drain(..excess);
    }

    /// Writes the conversation, or during a run notes that it changed: the run's end writes it
    /// once, the message and the replies together.
    fn save(&mut self) {
        if self.busy {
            self.unsaved = true;
        } else {
            self.write();
        }
    }

    /// Writes what changed since the last write, before the inbox row of the message is closed
    /// (same queue, so in that order): a crash in between hands the message over again with a
    /// conversation that does not have it yet.
    fn write_unsaved(&mut self) {
        if self.unsaved {
            self.write();
        }
    }

    /// Writes the conversation; versions keep a late write from overwriting a newer one.
    fn write(&mut self) {
        self.unsaved = false;
        self.conversation.version += 1;
        let write = self
            .deps
            .store
            .save_conversation(self.who.clone(), self.conversation.clone());
        actix::spawn(async move {
            if let Err(e) = write.await {
                tracing::error!(error = %e, "saving a conversation failed");
            }
        });
    }

    /// Takes the newest unexpired expectation whose pattern matches the whole reply: asked twice
    /// (two deployment requests), a bare APPROVE answers the question asked last, the one at the
    /// bottom of the chat. A reply that quotes or names what it answers (`target`) answers only a
    /// question about that; none when no question is (the flows' own routes then say why).
    fn take_expectation(&mut self, text: &str, target: Option<&Value>) -> Option<Expectation> {
        let now = now_ms();
        let before = self.conversation.expectations.len();
        self.conversation
            .expectations
            .retain(|e| e.expires_at_ms > now);
        let meant = |e: &Expectation| match (target, &e.about) {
            (None, _) => true,
            (Some(target), Some(about)) => same_subject(about, target),
            (Some(_), None) => false,
        };
        let index = self
            .conversation
            .expectations
            .iter()
            .rposition(|e| e.answers(text, now) && meant(e));
        let taken = index.map(|i| self.conversation.expectations.remove(i));
        if let Some(answered) = &taken {
            self.conversation
                .expectations
                .retain(|e| answered.run.is_empty() || e.run != answered.run);
        }
        if taken.is_some() || before != self.conversation.expectations.len() {
            // Written once the message is handled (its run ended, or it had none).
            self.unsaved = true;
        }
        taken
    }

    /// Starts the next waiting message's flow unless one is running: a person's flows run in order.
    fn start_next(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        let Some(Deliver { message, route }) = self.waiting.pop_front() else {
            // Idle: give back what a burst grew, since an idle conversation may stay for hours.
            self.waiting.shrink_to_fit();
            self.conversation.entries.shrink_to_fit();
            return;
        };
        let expectation = message
            .text
            .as_deref()
            .and_then(|t| self.take_expectation(t, message.target.as_ref()));
        let route = match &expectation {
            Some(e) => Some(Route::pending(
                e,
                message.text.as_deref().unwrap_or_default(),
            )),
            None => route,
        };
        let inbox = message.inbox;
        let Some(route) = route else {
            tracing::debug!(wa = %self.who.masked(), "no route and no default flow; message ignored");
            self.write_unsaved();
            self.handled(inbox, "no_route");
            return self.start_next(ctx);
        };
        let run = FlowRun {
            run_id: inbox.map_or_else(RunId::new, RunId::of_inbox),
            flow: route.flow.clone(),
            route: Some(route),
            trigger: Some(message),
            input: serde_json::Value::Null,
            expectation,
            context: self.conversation.entries.clone(),
            records: None,
            session: Some(Arc::new(Link {
                who: self.who.clone(),
                session: ctx.address().downgrade(),
            })),
        };
        self.busy = true;
        let running = crate::guard::caught("flow run", self.deps.runner.run(run)).map(|ended| {
            ended.unwrap_or_else(|panic| FlowOutcome::Failed(format!("panicked: {panic}")))
        });
        ctx.spawn(running.into_actor(self).map(move |outcome, act, ctx| {
            act.busy = false;
            act.write_unsaved();
            act.handled(inbox, outcome.label());
            act.last_active = Instant::now();
            act.start_next(ctx);
        }));
    }

    /// Closes a message's inbox row once its run ended: from then on a restart does not run it
    /// again.
    fn handled(&self, inbox: Option<InboxSeq>, outcome: &str) {
        let Some(seq) = inbox else { return };
        let done = self.deps.store.inbox_done(seq, outcome.to_owned());
        actix::spawn(async move {
            if let Err(e) = done.await {
                tracing::error!(error = %e, "closing an inbox row failed; the message runs again after a restart");
            }
        });
    }

    /// One timer per session, due when it would have been idle long enough: an idle conversation
    /// costs one wake per `idle_timeout`, not one per interval.
    fn arm_idle_check(&mut self, after: Duration, ctx: &mut Context<Self>) {
        ctx.run_later(after.max(Duration::from_millis(20)), Self::check_idle);
    }

    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        let idle = self.last_active.elapsed();
        if self.busy || self.releasing || !self.waiting.is_empty() {
            return self.arm_idle_check(self.deps.idle_timeout, ctx);
        }
        if idle < self.deps.idle_timeout {
            return self.arm_idle_check(self.deps.idle_timeout - idle, ctx);
        }
        self.releasing = true;
        let ask = self.router.send(ReleaseSession {
            who: self.who.clone(),
            handled: self.handled,
        });
        ctx.spawn(ask.into_actor(self).map(|released, act, ctx| {
            act.releasing = false;
            if released.unwrap_or(true) {
                ctx.stop();
            } else {
                act.arm_idle_check(act.deps.idle_timeout, ctx);
            }
        }));
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Nothing is handled until the saved conversation is back: `wait` holds the mailbox.
        let load = self.deps.store.load_conversation(self.who.clone());
        ctx.wait(load.into_actor(self).map(|loaded, act, _| match loaded {
            Ok(conversation) => act.conversation = conversation,
            Err(e) => tracing::error!(error = %e, "loading a conversation failed; starting empty"),
        }));
        self.arm_idle_check(self.deps.idle_timeout, ctx);
    }
}

impl Handler<Deliver> for Session {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        self.touch(true);
        let text = match &msg.message.text {
            Some(text) => text.clone(),
            None => format!("[{}]", msg.message.kind.label()),
        };
        let now = now_ms();
        self.push_entry(ContextEntry {
            direction: Direction::In,
            text,
            id: Some(msg.message.id.0.clone()),
            about: None,
            flow: None,
            at_ms: now,
        });
        self.conversation.last_inbound_ms = Some(now);
        // Written with the run's replies when it ends (or at once when no run started).
        self.unsaved = true;
        self.waiting.push_back(msg);
        self.start_next(ctx);
        if !self.busy {
            self.write_unsaved();
        }
    }
}

impl Handler<SendOutbound> for Session {
    type Result = ResponseActFuture<Self, Queued>;

    /// The message enters the conversation once the queue has it: a refused one (template quota)
    /// was never said.
    fn handle(
        &mut self,
        SendOutbound { message, forwarded }: SendOutbound,
        _: &mut Context<Self>,
    ) -> Self::Result {
        self.touch(forwarded);
        let entry = ContextEntry {
            direction: Direction::Out,
            text: message.preview.clone(),
            id: None,
            about: message.about.clone(),
            flow: message.flow.clone(),
            at_ms: now_ms(),
        };
        let queued = self.deps.limiter.send(Enqueue(message));
        let queued = async move { queued.await.unwrap_or(Err(EnqueueError::Stopped)) };
        Box::pin(queued.into_actor(self).map(move |result, act, _| {
            if let Ok(job) = &result {
                act.push_entry(ContextEntry {
                    id: Some(job.0.clone()),
                    ..entry
                });
                act.save();
            }
            result
        }))
    }
}

impl Handler<AddExpectation> for Session {
    type Result = ();

    fn handle(
        &mut self,
        AddExpectation {
            expectation,
            forwarded,
        }: AddExpectation,
        _: &mut Context<Self>,
    ) {
        self.touch(forwarded);
        let expectations = &mut self.conversation.expectations;
        expectations.push(expectation);
        let excess = expectations.len().saturating_sub(MAX_EXPECTATIONS);
        expectations.drain(..excess);
        self.save();
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
