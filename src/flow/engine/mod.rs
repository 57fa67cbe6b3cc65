//! The flow engine: implements the actors' `FlowRunner` port. A run resolves its flow, builds the
//! input, runs the steps (see `steps`), registers the flow's `on_response` expectations with
//! the people it asked, and records the run (store, metrics, one `flow_run` span).

mod steps;

use super::expr::Expressions;
use super::input::complete_and_check;
use super::load::{FlowSet, LoadedFlow};
use super::routes::Builtin;
use crate::agents::war_room;
use crate::agents::{AgentError, Person, Registry, RunContext, Services};
use crate::live::LiveEvent;
use crate::store::RunStart;
use aof_actors::model::{now_ms, ContextEntry, Expectation};
use aof_actors::ports::{FlowOutcome, FlowRun, FlowRunner};
use futures_util::future::LocalBoxFuture;
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use steps::{reply, run_steps, RunState, StepsOutcome, SOMETHING_WENT_WRONG};
use tracing::Instrument;

/// What an answer to an unsupported message type says.
const UNSUPPORTED_REPLY: &str =
    "I can only read text messages. Send HELP to see the commands I understand.";

pub(crate) struct Inner {
    pub(crate) flows: RwLock<Arc<FlowSet>>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) expressions: Arc<Expressions>,
    pub(crate) services: Arc<Services>,
    /// `config` in expressions: the WhatsApp platform config without its secrets, converted for
    /// minijinja once rather than in every run.
    pub(crate) config_view: minijinja::Value,
    pub(crate) on_response_ttl: Duration,
    /// Runs allowed at once, across all conversations.
    runs: Arc<tokio::sync::Semaphore>,
}

/// Most flow runs at once. A run holds its context (trigger, steps, the config view: ~10 KB) while
/// it lives; in a burst of ten thousand new conversations, ten thousand runs at once held 200 MB at
/// the peak, which the allocator then kept. The rest wait their turn in their sessions, in order.
const MAX_RUNS_AT_ONCE: usize = 256;

/// Runs AgentFlows; cheap to clone.
#[derive(Clone)]
pub struct FlowEngine {
    inner: Arc<Inner>,
}

impl FlowEngine {
    /// An engine over a loaded flow set.
    pub fn new(
        flows: Arc<FlowSet>,
        registry: Arc<Registry>,
        expressions: Arc<Expressions>,
        services: Arc<Services>,
    ) -> Self {
        let config_view = minijinja::Value::from_serialize(services.config.expression_view());
        let on_response_ttl = services.config.flows.on_response_ttl;
        FlowEngine {
            inner: Arc::new(Inner {
                flows: RwLock::new(flows),
                registry,
                expressions,
                services,
                config_view,
                on_response_ttl,
                runs: Arc::new(tokio::sync::Semaphore::new(MAX_RUNS_AT_ONCE)),
            }),
        }
    }

    /// The flows now in use.
    pub fn flows(&self) -> Arc<FlowSet> {
        self.inner
            .flows
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Swaps in a reloaded flow set; runs in progress finish on the old one.
    pub fn set_flows(&self, flows: Arc<FlowSet>) {
        *self.inner.flows.write().unwrap_or_else(|e| e.into_inner()) = flows;
    }
}

impl FlowRunner for FlowEngine {
    fn run(&self, run: FlowRun) -> LocalBoxFuture<'static, FlowOutcome> {
        let inner = self.inner.clone();
        let span = tracing::info_span!("flow_run", flow = %run.flow, run_id = %run.run_id);
        Box::pin(
            async move {
                // Never closed, so the permit always comes.
                let _turn = inner.runs.clone().acquire_owned().await;
                let live = inner.services.live.clone();
                let message_id = run.trigger.as_ref().map(|m| m.id.0.clone());
                let run_id = run.run_id.0.clone();
                let outcome = execute(inner, run).await;
                if let Some(live) = live {
                    live.publish(LiveEvent::Handled {
                        message_id,
                        run_id,
                        at: crate::live::now(),
                    });
                }
                outcome
            }
            .instrument(span),
        )
    }
}

/// Messages the bot answers itself, without a flow file: unsupported types and war-room traffic.
async fn builtin(run: &FlowRun, ctx: &RunContext) -> Option<FlowOutcome> {
    let builtin = Builtin::of(&run.flow)?;
    // One step of its own, so that its sends are keyed like a flow step's: a relay handed over
    // again after a crash reaches each member once.
    *ctx.step.borrow_mut() = Some("builtin".to_owned());
    let captures = run
        .route
        .as_ref()
        .map(|r| r.captures.as_slice())
        .unwrap_or_default();
    let result = match builtin {
        Builtin::Unsupported => Ok(Some(UNSUPPORTED_REPLY.to_owned())),
        Builtin::RoomCommand => war_room::command(ctx, captures).await.map(Some),
        Builtin::Relay => match captures {
            [room, text, ..] => war_room::relay(ctx, room, text).await.map(|_| None),
            _ => Ok(None),
        },
    };
    match result {
        Ok(Some(text)) => reply(ctx, &text).await,
        Ok(None) => {}
        Err(AgentError::Answer(text)) => reply(ctx, &text).await,
        Err(e) => {
            tracing::error!(error = %e, "war-room command failed");
            reply(ctx, SOMETHING_WENT_WRONG).await;
        }
    }
    Some(FlowOutcome::Completed)
}

/// `trigger` in expressions. `user.name` is the name the people directory (or the rota) knows the
/// person by, else their WhatsApp profile name; `user.email` and `user.slack_id` come from the
/// directory (the tutorial's `on_error.fallback` uses them).
fn trigger_json(run: &FlowRun, config: &crate::config::Config) -> Value {
    match &run.trigger {
        Some(m) => json!({
            "type": "message",
            "platform": "whatsapp",
            "user": user_json(&m.from, m.name.as_deref(), m.username.as_deref(), config),
            "message": { "text": m.text, "id": m.id, "type": m.kind.label(), "timestamp": m.timestamp,
                         "context_id": m.context_id },
        }),
        None => json!({ "type": "webhook", "user": {}, "message": {} }),
    }
}

fn user_json(
    who: &aof_actors::WaId,
    profile: Option<&str>,
    username: Option<&str>,
    config: &crate::config::Config,
) -> Value {
    let whatsapp = &config.platforms.whatsapp;
    let person = whatsapp.person(&who.e164());
    let name = whatsapp
        .name_of(who)
        .or_else(|| profile.map(str::to_owned))
        .or_else(|| username.map(|u| format!("@{}", u.trim_start_matches('@'))))
        .unwrap_or_default();
    json!({
        "phone": who.e164(), "wa_id": who.as_str(), "name": name, "profile_name": profile,
        "username": username, "user_id": who.is_user_id().then(|| who.as_str()),
        "email": person.and_then(|p| p.email.clone()), "slack_id": person.and_then(|p| p.slack_id.clone()),
    })
}

async fn execute(inner: Arc<Inner>, run: FlowRun) -> FlowOutcome {
    let started = std::time::Instant::now();
    let user = run.trigger.as_ref().map(|m| Person {
        wa: m.from.clone(),
        name: m.name.clone(),
    });
    let ctx = RunContext {
        run_id: run.run_id.clone(),
        flow: run.flow.clone(),
        user,
        message_id: run.trigger.as_ref().map(|m| m.id.clone()),
        target: run.trigger.as_ref().and_then(|m| m.target.clone()),
        notes: Default::default(),
        parallel: false,
        services: inner.services.clone(),
        asked: RefCell::new(Vec::new()),
        context: std::rc::Rc::new(run.context.clone()),
        about: RefCell::new(None),
        input: RefCell::new(Value::Null),
        records: run.records.clone(),
        session: run.session.clone(),
        step: RefCell::new(None),
        place_prefix: String::new(),
        sent_keys: Default::default(),
    };
    if let Some(outcome) = builtin(&run, &ctx).await {
        return outcome;
    }
    let flows = inner
        .flows
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let Some(flow) = flows.get(&run.flow).cloned() else {
        tracing::error!(
            "routing names flow `{}` but no such flow is loaded",
            run.flow
        );
        reply(&ctx, "⚠️ That command is not set up on this bot yet.").await;
        record(&inner, &run, "missing", json!([]), started).await;
        return FlowOutcome::Failed(format!("no flow {}", run.flow));
    };
    let mut state = RunState {
        trigger: trigger_json(&run, &inner.services.config),
        input: Value::Object(Map::new()),
        steps: Map::new(),
        matches: run
            .route
            .as_ref()
            .map(|r| json!(r.captures))
            .unwrap_or_else(|| json!([])),
        config: inner.config_view.clone(),
        context: json!(lookback_of(&flow, &run.context)),
        summary: Vec::new(),
        journal: Default::default(),
        views: Default::default(),
    };
    let store = &inner.services.store;
    match store
        .record_run_start(&run.run_id.0, flow.name(), state.trigger.clone())
        .await
    {
        Ok(RunStart::New) => {}
        // It ended before a restart that came before its event was marked handled: done.
        Ok(RunStart::Finished { outcome }) => {
            tracing::info!(%outcome, "a run handed over again had ended before the restart");
            return FlowOutcome::of_label(&outcome);
        }
        // Started another flow before the restart (flows reloaded since): its journal is not
        // this flow's, so this one runs whole.
        Ok(RunStart::Unfinished { flow: started }) if started != flow.name() => {
            tracing::warn!(
                started,
                "a run handed over again now routes to another flow; running it from its start"
            );
        }
        // Started before a restart: skip the steps it completed.
        Ok(RunStart::Unfinished { .. }) => match store.journal(&run.run_id.0).await {
            Ok(done) => {
                tracing::info!(
                    steps = done.len(),
                    "resuming a run after its last completed step"
                );
                state.journal = std::rc::Rc::new(done.into_iter().collect());
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the run's journal; running it whole")
            }
        },
        Err(e) => tracing::warn!(error = %e, "could not record the run start"),
    }
    if let Some(live) = &inner.services.live {
        live.publish(LiveEvent::RunStarted {
            run_id: run.run_id.0.clone(),
            flow: run.flow.clone(),
            from: run.trigger.as_ref().map(|m| m.from.e164()),
            at: crate::live::now(),
        });
    }
    if let Err(problems) = build_input(&inner, &flow, &run, &mut state) {
        tracing::error!(%problems, "flow input refused");
        reply(&ctx, SOMETHING_WENT_WRONG).await;
        record(&inner, &run, "bad_input", json!([]), started).await;
        return FlowOutcome::Failed(problems);
    }
    *ctx.input.borrow_mut() = state.input.clone();
    let outcome = run_steps(&inner, &flow, &ctx, &mut state).await;
    register_expectations(&inner, &flow, &ctx, &state, &outcome);
    let (label, result) = match outcome {
        StepsOutcome::Completed => ("completed", FlowOutcome::Completed),
        StepsOutcome::Empty => ("empty", FlowOutcome::Empty),
        StepsOutcome::Answered => ("answered", FlowOutcome::Answered),
        StepsOutcome::Failed(e) => ("failed", FlowOutcome::Failed(e)),
    };
    tracing::info!(outcome = label, "flow run finished");
    if let Some(records) = &ctx.records {
        records.tell(ctx.about.borrow().clone().unwrap_or_else(|| json!({})));
    }
    record(
        &inner,
        &run,
        label,
        Value::Array(std::mem::take(&mut state.summary)),
        started,
    )
    .await;
    result
}

/// The part of the conversation a flow asked for (`context.lookback`; all that is kept without one).
fn lookback_of<'a>(flow: &LoadedFlow, context: &'a [ContextEntry]) -> &'a [ContextEntry] {
    match flow.lookback() {
        0 => context,
        n => &context[context.len().saturating_sub(n)..],
    }
}

async fn record(
    inner: &Inner,
    run: &FlowRun,
    outcome: &'static str,
    steps: Value,
    started: std::time::Instant,
) {
    if let Some(live) = &inner.services.live {
        live.publish(LiveEvent::RunFinished {
            run_id: run.run_id.0.clone(),
            flow: run.flow.clone(),
            outcome: outcome.to_owned(),
            ms: started.elapsed().as_millis() as u64,
            at: crate::live::now(),
        });
    }
    metrics::counter!("aof_flow_runs_total", "flow" => run.flow.clone(), "outcome" => outcome)
        .increment(1);
    if let Err(e) = inner
        .services
        .store
        .record_run_end(&run.run_id.0, outcome, steps)
        .await
    {
        tracing::warn!(error = %e, "could not record the run end");
    }
}

/// Input from the run (webhook body, timer), a pending response's templates, `source:` fields, and
/// defaults; checked against the schema.
fn build_input(
    inner: &Inner,
    flow: &LoadedFlow,
    run: &FlowRun,
    state: &mut RunState,
) -> Result<(), String> {
    let mut input = run.input.as_object().cloned().unwrap_or_default();
    if let Some(expectation) = &run.expectation {
        let payload = &expectation.payload;
        let waiting = json!({
            "trigger": state.trigger, "steps": payload["steps"], "input": payload["input"],
            "config": state.config, "match": state.matches,
        });
        let ctx = minijinja::Value::from_serialize(&waiting);
        if let Some(templates) = payload["input_templates"].as_object() {
            for (key, template) in templates {
                let value = inner
                    .expressions
                    .render_value(template, &ctx)
                    .map_err(|e| e.to_string())?;
                input.insert(key.clone(), value);
            }
        }
    }
    if let Some(spec) = &flow.flow.input {
        let ctx = state.expression_context(None);
        for (name, field) in &spec.schema {
            if input.contains_key(name) {
                continue;
            }
            if let Some(source) = &field.source {
                let value = inner
                    .expressions
                    .eval_str(&format!("{{{{ {source} }}}}"), &ctx)
                    .map_err(|e| e.to_string())?;
                input.insert(name.clone(), value);
            }
        }
    }
    let errors = complete_and_check(flow.flow.input.as_ref(), &mut input);
    state.set_input(Value::Object(input));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors
            .iter()
            .map(|e| format!("`{}` {}", e.field, e.reason))
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// Runs `name` as a step of the parent run. A sub-flow that fails has already told the person
/// (its own `on_error`), so the parent step gets its outcome instead of failing a second time.
pub(crate) fn run_subflow<'a>(
    inner: &'a Inner,
    name: String,
    input: Value,
    parent: &'a RunContext,
    parent_state: &'a RunState,
) -> LocalBoxFuture<'a, Result<Value, AgentError>> {
    Box::pin(async move {
        let flows = inner
            .flows
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let flow = flows
            .get(&name)
            .cloned()
            .ok_or_else(|| AgentError::Failed(format!("no flow `{name}`")))?;
        let mut fields = input.as_object().cloned().unwrap_or_default();
        let errors = complete_and_check(flow.flow.input.as_ref(), &mut fields);
        if !errors.is_empty() {
            let list: Vec<String> = errors
                .iter()
                .map(|e| format!("`{}` {}", e.field, e.reason))
                .collect();
            return Err(AgentError::Failed(format!(
                "flow `{name}`: {}",
                list.join("; ")
            )));
        }
        let mut ctx = parent.for_step(false);
        ctx.flow = flow.name().to_owned();
        ctx.place_prefix = format!("{}.", parent.step.borrow().clone().unwrap_or_default());
        *ctx.input.borrow_mut() = Value::Object(fields.clone());
        let mut state = RunState {
            trigger: parent_state.trigger.clone(),
            input: Value::Object(fields),
            steps: Map::new(),
            matches: json!([]),
            config: parent_state.config.clone(),
            context: parent_state.context.clone(),
            summary: Vec::new(),
            journal: parent_state.journal.clone(),
            views: Default::default(),
        };
        let outcome = run_steps(inner, &flow, &ctx, &mut state).await;
        register_expectations(inner, &flow, &ctx, &state, &outcome);
        let (label, error) = match outcome {
            StepsOutcome::Completed => ("completed", None),
            StepsOutcome::Empty => ("empty", None),
            StepsOutcome::Answered => ("answered", None),
            StepsOutcome::Failed(e) => ("failed", Some(e)),
        };
        Ok(json!({ "flow": flow.name(), "outcome": label, "error": error, "steps": state.steps }))
    })
}

/// After a run, the flow waits for the people it asked (template or buttons), or else for the
/// person who started it, to answer with one of its `on_response` patterns. People who were asked
/// are waited for even when a later step failed: the question reached them.
fn register_expectations(
    inner: &Inner,
    flow: &LoadedFlow,
    ctx: &RunContext,
    state: &RunState,
    outcome: &StepsOutcome,
) {
    if flow.flow.on_response.is_empty()
        || (*outcome != StepsOutcome::Completed && ctx.asked.borrow().is_empty())
    {
        return;
    }
    let mut people = ctx.asked.borrow().clone();
    people.sort();
    people.dedup();
    if people.is_empty() {
        people.extend(ctx.user.as_ref().map(|p| p.wa.clone()));
    }
    let expires_at_ms = now_ms() + inner.on_response_ttl.as_millis() as i64;
    for person in people {
        for r in &flow.flow.on_response {
            let payload = json!({
                "from_flow": flow.name(), "run_id": ctx.run_id, "steps": state.steps,
                "input": state.input, "input_templates": r.input,
            });
            let expectation = Expectation {
                run: ctx.run_id.0.clone(),
                pattern: r.pattern.clone(),
                flow: r.flow.clone(),
                payload,
                expires_at_ms,
                about: ctx.about.borrow().clone(),
            };
            ctx.expect(person.clone(), expectation);
        }
    }
}
