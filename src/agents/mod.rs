//! Built-in agents: what a flow step's `agent` + `action` calls. Each agent is a file; the registry
//! lists them so that flows are validated at load (unknown agent or action) and run by name.
//!
//! An agent gets its rendered `input` (JSON) and the [`RunContext`] (who triggered the run, the
//! running actors, the store, the config) and returns its output (JSON), reachable from later steps
//! as `steps.<id>.output`.

mod ack_all;
pub mod alerts;
pub mod approvals;
pub mod basic;
pub mod cover;
pub mod deploy;
pub mod dry_run;
pub mod health;
pub mod incidents;
pub mod notifier;
pub mod oncall;
pub mod pagerduty;
pub mod scheduler;
pub mod silence;
pub mod war_room;
pub mod whatsapp;

pub use dry_run::DryRun;

use crate::config::Config;
use crate::store::Repositories;
use aof_actors::model::{ContextEntry, Expectation, OutboundMessage};
use aof_actors::ports::{Queued, SessionLink};
use aof_actors::{Handle, RunId, WaId, Wamid};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

/// Why an agent call failed; the flow's `on_error` decides what happens next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AgentError {
    /// The input is missing a field or has a wrong value.
    #[error("input `{field}`: {reason}")]
    Input {
        /// The field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The action ran and failed.
    #[error("{0}")]
    Failed(String),
    /// A limit the config sets was reached (the daily template quota): the run fails with
    /// `detail`, and the person who wrote reads `told`, not that something broke.
    #[error("{detail}")]
    Limit {
        /// What was refused and how to change it, for the log and the run record.
        detail: String,
        /// A sentence for the person.
        told: String,
    },
    /// Not a failure: an expected outcome that ends the run (the request was already decided,
    /// there is nothing to acknowledge, no such id). The text is a sentence for the person who
    /// wrote; the run is recorded as `answered`.
    #[error("{0}")]
    Answer(String),
}

impl AgentError {
    /// A bad input field.
    pub fn input(field: &str, reason: impl Into<String>) -> Self {
        AgentError::Input {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The store failed under an action.
    pub fn store(e: aof_actors::ports::StoreError) -> Self {
        AgentError::Failed(e.to_string())
    }
}

/// An ops rule's refusal ends the run with its sentence; a store failure fails the step.
impl From<crate::ops::Refused> for AgentError {
    fn from(refused: crate::ops::Refused) -> Self {
        match refused {
            crate::ops::Refused::Answer(text) => AgentError::Answer(text),
            crate::ops::Refused::Store(e) => AgentError::store(e),
            crate::ops::Refused::Failed(reason) => AgentError::Failed(reason),
        }
    }
}

/// The result of an agent call.
pub type AgentResult = Result<Value, AgentError>;

/// Application-wide things agents use.
pub struct Services {
    /// The running actors.
    pub handle: Handle,
    /// Durable state.
    pub store: Arc<dyn Repositories>,
    /// The loaded config.
    pub config: Arc<Config>,
    /// The agents, for built-ins that call one (WHO asks `oncall-manager`).
    pub registry: Arc<Registry>,
    /// Who is in which war room, as the route table knows it (the war-room rules keep it told).
    pub rooms: Arc<dyn crate::ops::war_room::Membership>,
    /// Which flows are loaded now: a page's delivery check is scheduled only when its flow is.
    pub flows: Arc<dyn FlowNames>,
    /// Where runs and steps are published as they happen (sandbox and `simulate` only).
    pub live: Option<crate::live::Live>,
    /// Set by `aofctl simulate`: the agents record their calls to the outside world (deployments,
    /// Slack, email, PagerDuty, health checks) here instead of making them.
    pub dry_run: Option<DryRun>,
}

/// Which flows are loaded (the route table knows; it follows hot reloads).
pub trait FlowNames: Send + Sync {
    /// Whether a flow of that name (or file stem) is loaded.
    fn has_flow(&self, name: &str) -> bool;
}

/// The person who triggered a run.
#[derive(Debug, Clone)]
pub struct Person {
    /// Their number.
    pub wa: WaId,
    /// Their WhatsApp profile name.
    pub name: Option<String>,
}

/// What an agent knows about the run it serves.
pub struct RunContext {
    /// The run.
    pub run_id: RunId,
    /// The flow's name.
    pub flow: String,
    /// Who triggered it, when a person did.
    pub user: Option<Person>,
    /// The message that triggered it.
    pub message_id: Option<Wamid>,
    /// What that message means its command to act on (`{"alert_id": "ALT-0003"}`, from an id it
    /// wrote or a message it quoted; see `ops::replies`): the record agents take instead of the
    /// most recent.
    pub target: Option<Value>,
    /// Lines for the person who started the run, added to the next reply to them (a bare ACK
    /// with several open alerts says how to pick another).
    pub notes: Rc<RefCell<Vec<String>>>,
    /// Whether the step asked for concurrency (`parallel: true`).
    pub parallel: bool,
    /// Shared services.
    pub services: Arc<Services>,
    /// People this run sent a template or buttons to: they may answer (`on_response`).
    pub asked: RefCell<Vec<WaId>>,
    /// The triggering person's conversation, oldest first (empty without a person).
    pub context: Rc<Vec<ContextEntry>>,
    /// What the run is about so far (`alert_id`, `request_id`, `incident_id` of earlier steps'
    /// outputs); messages it sends carry it, so a later reply can find the alert.
    pub about: RefCell<Option<Value>>,
    /// The run's input once built (an alert's `runbook_url`, `fingerprint`, `source`).
    pub input: RefCell<Value>,
    /// Told the ids of the first records the run creates (a webhook's HTTP answer waits for it).
    pub records: Option<aof_actors::ports::RecordsNotifier>,
    /// The session of the person who started the run: messages to them and answers awaited from
    /// them go straight to it.
    pub session: Option<Arc<dyn SessionLink>>,
    /// Where the run is in its flow: `2` while its third step runs, `2.1` inside a subflow that
    /// step started; `None` before the first step. With a message's content it makes the
    /// message's idempotency key ([`RunContext::send`]).
    pub step: RefCell<Option<String>>,
    /// What the places of this context's steps start with: `2.` in a subflow started by step 2.
    pub place_prefix: String,
    /// How many messages the run has sent under each key so far, shared by all its contexts.
    pub sent_keys: Rc<RefCell<HashMap<String, u32>>>,
}

impl RunContext {
    /// A context for one step: the same run, its own `asked` list and concurrency flag.
    pub fn for_step(&self, parallel: bool) -> RunContext {
        RunContext {
            run_id: self.run_id.clone(),
            flow: self.flow.clone(),
            user: self.user.clone(),
            message_id: self.message_id.clone(),
            target: self.target.clone(),
            notes: self.notes.clone(),
            parallel,
            services: self.services.clone(),
            asked: RefCell::new(Vec::new()),
            context: self.context.clone(),
            about: RefCell::new(self.about.borrow().clone()),
            input: RefCell::new(self.input.borrow().clone()),
            records: self.records.clone(),
            session: self.session.clone(),
            step: RefCell::new(self.step.borrow().clone()),
            place_prefix: self.place_prefix.clone(),
            sent_keys: self.sent_keys.clone(),
        }
    }

    /// The idempotency key of a message sent now: the run, the step, the recipient, and how many
    /// messages the step sent that recipient before. A step run again after a crash sends the same
    /// people the same number of messages under the same keys, so the queue takes each once; by
    /// recipient rather than by position, so that a `parallel` step's sends, in whatever order
    /// they come, keep their keys. Not by content: a re-run step whose text changed meanwhile (a
    /// STATUS with newer counts) would otherwise send a second answer; the first, already queued,
    /// is the one that goes.
    fn key_for(&self, message: &OutboundMessage) -> Option<String> {
        self.key_of(&[message.to.as_str().as_bytes()])
    }

    /// The key of what the current step does with `parts` (see [`RunContext::key_for`]); `None`
    /// outside a step.
    pub(crate) fn key_of(&self, parts: &[&[u8]]) -> Option<String> {
        use sha2::Digest as _;
        let step = self.step.borrow().clone()?;
        let mut digest = sha2::Sha256::new();
        for part in parts {
            digest.update(part);
        }
        let digest = hex::encode(&digest.finalize()[..8]);
        let base = format!("{}/{step}/{digest}", self.run_id.0);
        let mut sent = self.sent_keys.borrow_mut();
        let count = sent.entry(base.clone()).or_insert(0);
        let key = format!("{base}/{count}");
        *count += 1;
        Some(key)
    }

    /// Queues a message: through the run's own session when it is for the person who started the
    /// run (a reply), else through the Router to the recipient's session.
    pub async fn send(&self, mut message: OutboundMessage) -> Queued {
        if message.key.is_none() {
            message.key = self.key_for(&message);
        }
        match self.session.as_ref().filter(|s| *s.person() == message.to) {
            Some(session) => session.send(message).await,
            None => self.services.handle.send(message).await,
        }
    }

    /// Registers an answer a flow waits for from `who`, the same way as [`RunContext::send`].
    pub fn expect(&self, who: WaId, expectation: Expectation) {
        match self.session.as_ref().filter(|s| *s.person() == who) {
            Some(session) => session.expect(expectation),
            None => self.services.handle.expect(who, expectation),
        }
    }

    /// Writes an audit line of `kind` by the person who started the run; a failed write is logged,
    /// since what was done is done.
    pub async fn audit(&self, kind: &str, detail: Value) {
        let entry = aof_actors::model::AuditEntry {
            kind: kind.into(),
            who: self.user.as_ref().map(|p| p.wa.masked()),
            detail,
        };
        if let Err(e) = self.services.store.audit(entry).await {
            tracing::error!(error = %e, "audit log write failed");
        }
    }

    /// The most recent thing this person's conversation was about with `key` (`alert_id`), newest first.
    pub fn recent_about(&self, key: &str) -> Vec<String> {
        self.context
            .iter()
            .rev()
            .filter_map(|e| e.about.as_ref()?.get(key)?.as_str().map(str::to_owned))
            .collect()
    }
}

/// What an action runs: its rendered input and the run, to its output.
pub type ActionFn = for<'a> fn(&'a Value, &'a RunContext) -> LocalBoxFuture<'a, AgentResult>;

/// One action of a built-in agent: a step's `action:`.
pub struct Action {
    /// The name steps use in `action:`.
    pub name: &'static str,
    /// What it runs.
    pub run: ActionFn,
}

/// A built-in agent: a step's `agent:`, and its table of actions (written with [`crate::actions!`]).
pub struct Agent {
    /// The name steps use in `agent:`.
    pub name: &'static str,
    /// What it can do.
    pub actions: &'static [Action],
}

impl Agent {
    /// Whether it has the action `name`.
    pub fn has(&self, name: &str) -> bool {
        self.actions.iter().any(|a| a.name == name)
    }

    /// The names of its actions, in table order.
    pub fn action_names(&self) -> Vec<&'static str> {
        self.actions.iter().map(|a| a.name).collect()
    }

    /// The action `name`, or the error a step that names another gets.
    pub fn action(&self, name: &str) -> Result<&'static Action, AgentError> {
        let actions: &'static [Action] = self.actions;
        actions.iter().find(|a| a.name == name).ok_or_else(|| {
            AgentError::Failed(format!(
                "agent `{}` has no action `{name}` (it has {})",
                self.name,
                self.action_names().join(", ")
            ))
        })
    }

    /// Runs an action.
    pub async fn call(&self, action: &str, input: Value, run: &RunContext) -> AgentResult {
        (self.action(action)?.run)(&input, run).await
    }
}

/// An agent's table of actions: `actions!["get" => get, "create" => create]`, each an
/// `async fn(&Value, &RunContext) -> AgentResult`.
#[macro_export]
macro_rules! actions {
    ($($name:literal => $run:path),* $(,)?) => {
        &[$($crate::agents::Action {
            name: $name,
            run: |input, run| Box::pin($run(input, run)),
        }),*]
    };
}

/// All agents, by name.
pub struct Registry {
    agents: BTreeMap<&'static str, &'static Agent>,
}

impl Registry {
    /// The built-in agents.
    pub fn builtin() -> Self {
        let list: [&'static Agent; 13] = [
            &whatsapp::AGENT,
            &basic::LOGGER,
            &basic::VALIDATOR,
            &health::AGENT,
            &scheduler::AGENT,
            &incidents::AGENT,
            &alerts::AGENT,
            &approvals::AGENT,
            &oncall::AGENT,
            &pagerduty::AGENT,
            &deploy::AGENT,
            &notifier::AGENT,
            &war_room::AGENT,
        ];
        Registry {
            agents: list.into_iter().map(|a| (a.name, a)).collect(),
        }
    }

    /// An agent by name.
    pub fn get(&self, name: &str) -> Option<&'static Agent> {
        self.agents.get(name).copied()
    }

    /// The names, for "known agents" in errors.
    pub fn names(&self) -> Vec<&'static str> {
        self.agents.keys().copied().collect()
    }
}

/// The HTTP client of this thread for the agents' outbound calls (health checks, Slack, deploy
/// webhooks). Building a client builds its TLS configuration, and a client kept alive keeps its
/// connections: a STATUS used to open a new connection per service. Timeouts are set per request.
pub fn http_client() -> awc::Client {
    thread_local! {
        static CLIENT: awc::Client = awc::Client::builder().disable_timeout().finish();
    }
    CLIENT.with(Clone::clone)
}

/// A string field of an input object.
pub fn str_field<'a>(input: &'a Value, field: &str) -> Result<&'a str, AgentError> {
    match input.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(AgentError::input(field, "is missing or empty"))
        }
        Some(other) => Err(AgentError::input(
            field,
            format!("expected text, got {other}"),
        )),
    }
}

/// A field read as text whatever its JSON type (numbers written without quotes).
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Whether a value counts as true: in a step's `condition` and in the `validate` action.
pub fn is_truthy(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        serde_json::Value::String(s) => {
            let s = s.trim();
            !(s.is_empty()
                || s.eq_ignore_ascii_case("false")
                || s == "0"
                || s.eq_ignore_ascii_case("none"))
        }
        serde_json::Value::Array(a) => !a.is_empty(),
        serde_json::Value::Object(o) => !o.is_empty(),
    }
}
