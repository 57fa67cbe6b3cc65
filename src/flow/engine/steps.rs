//! Running a flow's steps: `condition`, `foreach` (with `parallel`), the agent call with
//! `on_error.retry`, `on_empty` and `on_error` answers and fallback channels. Each step's output is
//! kept as `steps.<id>.output` for the steps after it.

use super::{run_subflow, Inner};
use crate::agents::whatsapp;
use crate::agents::{AgentError, RunContext};
use crate::flow::load::LoadedFlow;
use crate::flow::model::{OnError, Response, Step, SUBFLOW_AGENT};
use crate::live::LiveEvent;
use aof_actors::sender::backoff;
use futures_util::future::join_all;
use serde_json::{json, Map, Value};
use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// First delay of `on_error.retry` (`backoff: fixed` keeps it; `exponential`, the default, doubles it).
const STEP_RETRY_BASE: Duration = Duration::from_millis(200);

/// The data a run's expressions see.
pub(crate) struct RunState {
    pub(crate) trigger: Value,
    pub(crate) input: Value,
    pub(crate) steps: Map<String, Value>,
    pub(crate) matches: Value,
    /// The config's view for expressions, converted once (see `Inner::config_view`).
    pub(crate) config: minijinja::Value,
    pub(crate) context: Value,
    /// One entry per step: outcome and duration, for the run record.
    pub(crate) summary: Vec<Value>,
    /// The steps a resumed run completed before the restart, by place (see [`journal`]).
    pub(crate) journal: Rc<HashMap<String, Value>>,
    /// The same data as minijinja values, each converted once (see [`Views`]).
    pub(crate) views: Views,
}

/// A run's data converted for minijinja when an expression first needs it, and again only when it
/// changes: the trigger, the match and the context once per run, the input when it is set, each
/// step's output once, when it is recorded. Converting all of it for every expression was a large
/// part of a short flow's time under load.
#[derive(Default)]
pub(crate) struct Views {
    trigger: OnceCell<minijinja::Value>,
    matches: OnceCell<minijinja::Value>,
    context: OnceCell<minijinja::Value>,
    input: RefCell<Option<minijinja::Value>>,
    /// Converted outputs of the steps in `RunState::steps`, by step name.
    steps: RefCell<BTreeMap<String, minijinja::Value>>,
}

impl RunState {
    /// The minijinja context, with `item` inside a `foreach`.
    pub(crate) fn expression_context(&self, item: Option<&Value>) -> minijinja::Value {
        use minijinja::Value as V;
        let views = &self.views;
        let input = views
            .input
            .borrow_mut()
            .get_or_insert_with(|| V::from_serialize(&self.input))
            .clone();
        let steps = {
            let mut converted = views.steps.borrow_mut();
            for (name, value) in &self.steps {
                if !converted.contains_key(name) {
                    converted.insert(name.clone(), V::from_serialize(value));
                }
            }
            V::from_iter(converted.iter().map(|(k, v)| (k.clone(), v.clone())))
        };
        let mut root = vec![
            (
                "trigger",
                views
                    .trigger
                    .get_or_init(|| V::from_serialize(&self.trigger))
                    .clone(),
            ),
            ("input", input),
            ("steps", steps),
            (
                "match",
                views
                    .matches
                    .get_or_init(|| V::from_serialize(&self.matches))
                    .clone(),
            ),
            // Converted once for every run, shared (a minijinja value is reference-counted).
            ("config", self.config.clone()),
            (
                "context",
                views
                    .context
                    .get_or_init(|| V::from_serialize(&self.context))
                    .clone(),
            ),
        ];
        if let Some(item) = item {
            root.push(("item", V::from_serialize(item)));
        }
        V::from_iter(root)
    }

    /// Sets the run's input (its conversion for expressions is made again when next needed).
    pub(crate) fn set_input(&mut self, input: Value) {
        self.input = input;
        self.views.input.take();
    }

    /// Records a step's result for the steps after it.
    pub(crate) fn record_step(&mut self, name: &str, result: Value) {
        self.views.steps.borrow_mut().remove(name);
        self.steps.insert(name.to_owned(), result);
    }
}

/// How the steps ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StepsOutcome {
    Completed,
    Empty,
    /// A step's agent ended the run with an expected answer ([`AgentError::Answer`]).
    Answered,
    Failed(String),
}

/// What a person reads when a run fails unexpectedly: no step names, no internal errors (those go
/// to the log and the runs panel).
pub(crate) const SOMETHING_WENT_WRONG: &str =
    "⚠️ Sorry, something went wrong and I could not finish that. \
The team that runs this bot has the details in its log.";

/// Sends text to the person who started the run; logs it when nobody did.
pub(crate) async fn reply(ctx: &RunContext, text: &str) {
    respond(ctx, json!({ "text": text })).await;
}

async fn respond(ctx: &RunContext, input: Value) {
    if ctx.user.is_none() {
        tracing::warn!(response = %input, "the flow answered, but no person started this run");
        return;
    }
    if let Err(e) = whatsapp::AGENT.call("reply", input, ctx).await {
        tracing::error!(error = %e, "could not send the answer");
    }
}

/// Keys of step outputs that say what a run is about; messages sent later carry them.
const ABOUT_KEYS: [&str; 3] = ["alert_id", "request_id", "incident_id"];

/// Remembers the ids an output names (`alert_id`, …) as what the run's messages are about.
fn note_about(ctx: &RunContext, output: &Value) {
    let Some(fields) = output.as_object() else {
        return;
    };
    let mut about = ctx.about.borrow_mut();
    for key in ABOUT_KEYS {
        if let Some(id) = fields.get(key).filter(|v| v.is_string()) {
            about.get_or_insert_with(|| json!({}))[key] = id.clone();
        }
    }
    // What a digest says of an alert, should the message wait to be folded with others.
    if fields.get("alert_id").is_some_and(Value::is_string) {
        for key in ALERT_DETAILS {
            if let Some(value) = fields.get(key).filter(|v| v.is_string()) {
                about.get_or_insert_with(|| json!({}))[key] = value.clone();
            }
        }
    }
}

/// Of an output naming an alert, what its messages carry beside the id ([`crate::ops::digest`]).
const ALERT_DETAILS: [&str; 3] = ["service", "state", "title"];

/// Whether a step's output counts as "found nothing" for `on_empty`.
fn is_empty_output(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty() || o.get("found") == Some(&Value::Bool(false)),
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// Takes a step the run completed before a restart from the journal instead of running it again:
/// its output for the steps after it, what it was about, and whom it asked.
fn resume_step(ctx: &RunContext, state: &mut RunState, step: &Step, entry: &Value) {
    let kept = entry.get("step").cloned().unwrap_or(Value::Null);
    if let Some(output) = kept.get("output") {
        note_about(ctx, output);
    }
    let asked = entry.get("asked").and_then(Value::as_array);
    let asked = asked.into_iter().flatten().filter_map(Value::as_str);
    ctx.asked
        .borrow_mut()
        .extend(asked.filter_map(aof_actors::WaId::parse));
    state.record_step(&step.name, kept);
    state
        .summary
        .push(json!({ "step": step.name, "outcome": "resumed", "ms": 0 }));
}

/// Commits a completed step before the next one starts, so that a run resumed after a crash skips
/// it. Not the last step: the run's end, written next, says as much (a crash in between runs it
/// again, as it would any step between its end and its journal line; its sends and timers are
/// keyed, so nothing goes out twice). A failed write is logged and the run goes on (a page matters
/// more than its journal).
async fn journal(
    inner: &Inner,
    ctx: &RunContext,
    place: &str,
    step: &Value,
    asked: &[aof_actors::WaId],
) {
    let asked: Vec<&str> = asked.iter().map(aof_actors::WaId::as_str).collect();
    let entry = json!({ "step": step, "asked": asked });
    let store = &inner.services.store;
    if let Err(e) = store.journal_step(&ctx.run_id.0, place, entry).await {
        tracing::warn!(error = %e, place, "could not journal a step; after a crash it runs again");
    }
}

pub(crate) async fn run_steps(
    inner: &Inner,
    flow: &LoadedFlow,
    ctx: &RunContext,
    state: &mut RunState,
) -> StepsOutcome {
    for (index, step) in flow.flow.steps.iter().enumerate() {
        let place = format!("{}{index}", ctx.place_prefix);
        *ctx.step.borrow_mut() = Some(place.clone());
        if let Some(entry) = state.journal.get(&place).cloned() {
            resume_step(ctx, state, step, &entry);
            continue;
        }
        let asked_before = ctx.asked.borrow().len();
        let started = Instant::now();
        let span = tracing::debug_span!("step", step = %step.name, agent = %step.agent);
        let _entered = span.enter();
        let mut input = Value::Null;
        let result = run_one(inner, step, ctx, state, &mut input).await;
        let ms = started.elapsed().as_millis() as u64;
        let mut output = match (&ctx.services.live, &result) {
            (Some(_), Ok(Some(output))) => output.clone(),
            _ => Value::Null,
        };
        let mut note = |outcome: &str, error: Option<String>| {
            if let Some(live) = &ctx.services.live {
                live.publish(LiveEvent::Step {
                    run_id: ctx.run_id.0.clone(),
                    flow: flow.name().to_owned(),
                    step: step.name.clone(),
                    outcome: outcome.to_owned(),
                    ms,
                    error: error.clone(),
                    input: std::mem::take(&mut input),
                    output: std::mem::take(&mut output),
                });
            }
            state
                .summary
                .push(json!({ "step": step.name, "outcome": outcome, "ms": ms, "error": error }));
        };
        match result {
            Ok(None) => {
                note("skipped", None);
                state.record_step(&step.name, json!({ "output": null, "skipped": true }));
            }
            Ok(Some(output)) => {
                let empty = step.on_empty.is_some() && is_empty_output(&output);
                note(if empty { "empty" } else { "ok" }, None);
                state.record_step(&step.name, json!({ "output": output }));
                if let (true, Some(on_empty)) = (empty, &step.on_empty) {
                    send_response(inner, ctx, state, &on_empty.response).await;
                    return StepsOutcome::Empty;
                }
            }
            Err(AgentError::Answer(text)) => {
                note("answered", Some(text.clone()));
                tracing::info!(step = %step.name, "the step ended the run with an answer to the person");
                match step.on_error.as_ref().and_then(|e| e.response.as_ref()) {
                    Some(response) => send_response(inner, ctx, state, response).await,
                    None => reply(ctx, &text).await,
                }
                return StepsOutcome::Answered;
            }
            Err(error) => {
                let message = format!("step `{}`: {error}", step.name);
                note("error", Some(error.to_string()));
                handle_error(inner, ctx, state, step, &error).await;
                return StepsOutcome::Failed(message);
            }
        }
        if index + 1 < flow.flow.steps.len() {
            let asked = ctx.asked.borrow()[asked_before..].to_vec();
            let done = state.steps.get(&step.name).cloned().unwrap_or(Value::Null);
            journal(inner, ctx, &place, &done, &asked).await;
        }
    }
    StepsOutcome::Completed
}

/// Runs one step: `None` when its condition is false.
async fn run_one(
    inner: &Inner,
    step: &Step,
    ctx: &RunContext,
    state: &RunState,
    rendered: &mut Value,
) -> Result<Option<Value>, AgentError> {
    let live = ctx.services.live.is_some();
    let exprs = &inner.expressions;
    let root = state.expression_context(None);
    let failed = |e: crate::flow::expr::ExprError| AgentError::Failed(e.to_string());
    if let Some(condition) = &step.condition {
        if !exprs.truthy(condition, &root).map_err(failed)? {
            return Ok(None);
        }
    }
    let action = exprs.render(&step.action, &root).map_err(failed)?;
    if step.agent == SUBFLOW_AGENT {
        let input = exprs.render_value(&step.input, &root).map_err(failed)?;
        if live {
            *rendered = input.clone();
        }
        let name = input
            .get("flow")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let output = run_subflow(
            inner,
            name,
            input.get("input").cloned().unwrap_or(Value::Null),
            ctx,
            state,
        )
        .await?;
        note_about(ctx, &output);
        return Ok(Some(output));
    }
    let agent = inner
        .registry
        .get(&step.agent)
        .ok_or_else(|| AgentError::Failed(format!("unknown agent `{}`", step.agent)))?;
    let found = agent.action(&action)?;
    let step_ctx = ctx.for_step(step.parallel);
    let retry = step.on_error.as_ref().and_then(|e| e.retry.as_ref());
    let attempts = retry.map_or(1, |r| r.max_attempts.max(1));
    let fixed = retry.and_then(|r| r.backoff.as_deref()) == Some("fixed");
    let call = |input: Value| {
        let step_ctx = &step_ctx;
        async move {
            let mut attempt = 1;
            loop {
                match (found.run)(&input, step_ctx).await {
                    Ok(v) => return Ok(v),
                    // Only a failure may go away on its own: an answer, a limit or bad input
                    // would come back the same.
                    Err(e @ AgentError::Failed(_)) if attempt < attempts => {
                        let wait = if fixed {
                            STEP_RETRY_BASE
                        } else {
                            backoff::exponential(attempt, STEP_RETRY_BASE, Duration::from_secs(10))
                        };
                        tracing::warn!(attempt, error = %e, "step failed; retrying in {} ms", wait.as_millis());
                        actix_web::rt::time::sleep(wait).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    };
    let output = match &step.foreach {
        None => {
            let input = exprs.render_value(&step.input, &root).map_err(failed)?;
            if live {
                *rendered = input.clone();
            }
            call(input).await?
        }
        Some(foreach) => {
            let items = match exprs.eval_str(foreach, &root).map_err(failed)? {
                Value::Array(items) => items,
                Value::String(s) => serde_json::from_str::<Vec<Value>>(&s).unwrap_or_default(),
                Value::Null => Vec::new(),
                other => vec![other],
            };
            let inputs = items
                .iter()
                .map(|item| {
                    exprs
                        .render_value(&step.input, &state.expression_context(Some(item)))
                        .map_err(failed)
                })
                .collect::<Result<Vec<_>, _>>()?;
            if live {
                *rendered = Value::Array(inputs.clone());
            }
            let outputs = if step.parallel {
                join_all(inputs.into_iter().map(call))
                    .await
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                let mut outputs = Vec::with_capacity(inputs.len());
                for input in inputs {
                    outputs.push(call(input).await?);
                }
                outputs
            };
            Value::Array(outputs)
        }
    };
    ctx.asked.borrow_mut().extend(step_ctx.asked.into_inner());
    note_about(ctx, &output);
    Ok(Some(output))
}

async fn send_response(inner: &Inner, ctx: &RunContext, state: &RunState, response: &Response) {
    let root = state.expression_context(None);
    let rendered = match (&response.template, &response.text) {
        (Some(template), _) => response
            .parameters
            .iter()
            .map(|p| inner.expressions.render(p, &root))
            .collect::<Result<Vec<_>, _>>()
            .map(|parameters| json!({ "template": template, "parameters": parameters })),
        (None, Some(text)) => inner
            .expressions
            .render(text, &root)
            .map(|text| json!({ "text": text })),
        (None, None) => return,
    };
    match rendered {
        Ok(input) => respond(ctx, input).await,
        Err(e) => tracing::error!(error = %e, "could not render the flow's answer"),
    }
}

async fn handle_error(
    inner: &Inner,
    ctx: &RunContext,
    state: &RunState,
    step: &Step,
    error: &AgentError,
) {
    let on_error = step.on_error.clone().unwrap_or_default();
    notify_fallbacks(inner, ctx, state, &on_error, step, error).await;
    match &on_error.response {
        Some(response) => {
            tracing::warn!(step = %step.name, %error, "step failed; the flow's on_error answers");
            send_response(inner, ctx, state, response).await
        }
        None => match error {
            AgentError::Limit { told, .. } => {
                tracing::warn!(flow = %ctx.flow, step = %step.name, %error, "flow run stopped at a limit");
                reply(ctx, told).await
            }
            _ => {
                tracing::error!(flow = %ctx.flow, step = %step.name, %error, "flow run failed");
                reply(ctx, SOMETHING_WENT_WRONG).await
            }
        },
    }
}

/// `on_error.fallback`: tells other channels through the `notifier` agent when one is registered.
async fn notify_fallbacks(
    inner: &Inner,
    ctx: &RunContext,
    state: &RunState,
    on_error: &OnError,
    step: &Step,
    error: &AgentError,
) {
    if on_error.fallback.is_empty() {
        return;
    }
    let root = state.expression_context(None);
    let Some(notifier) = inner.registry.get("notifier") else {
        tracing::warn!(step = %step.name, "on_error.fallback needs the notifier agent, which this build does not have");
        return;
    };
    for fallback in &on_error.fallback {
        let render = |v: &Option<String>| {
            v.as_ref()
                .and_then(|t| inner.expressions.render(t, &root).ok())
        };
        let input = json!({
            "channel": fallback.channel, "user": render(&fallback.user), "address": render(&fallback.address),
            "message": format!("{} failed at step `{}`: {error}", ctx.flow, step.name),
        });
        if let Err(e) = notifier.call("notify", input, ctx).await {
            tracing::error!(channel = %fallback.channel, error = %e, "fallback notification failed");
        }
    }
}
