//! The AgentFlow document as the tutorial writes it (`apiVersion: aof.sh/v1alpha1`, `kind: AgentFlow`).
//! Strict: an unknown key is a load error naming the file and key, never silently ignored.

use serde::Deserialize;
use std::collections::BTreeMap;

/// One AgentFlow file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFlow {
    /// Must be `aof.sh/v1alpha1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Must be `AgentFlow`.
    pub kind: String,
    /// Name and description.
    pub metadata: Metadata,
    /// What starts the flow besides routing (message patterns, webhook paths, alertmanager).
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    /// How much conversation the flow looks at.
    #[serde(default)]
    pub context: Option<ContextSpec>,
    /// The flow's input: required fields and their schema.
    #[serde(default)]
    pub input: Option<InputSpec>,
    /// The steps, run in order.
    pub steps: Vec<Step>,
    /// Replies the flow waits for once it has run (`APPROVE` / `REJECT` after an approval request).
    #[serde(default)]
    pub on_response: Vec<OnResponse>,
}

/// `metadata`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The flow's name (routing may also use the file's stem).
    pub name: String,
    /// What it does, shown by `flows list` and HELP.
    #[serde(default)]
    pub description: Option<String>,
    /// Free labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One entry of `triggers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// `whatsapp` for message triggers.
    #[serde(default)]
    pub platform: Option<String>,
    /// `message`, `webhook` or `alertmanager`.
    #[serde(rename = "type")]
    pub kind: TriggerKind,
    /// For `message`: a regex the whole message must match; its groups feed `match.N`.
    #[serde(default)]
    pub pattern: Option<String>,
    /// For `webhook`: the path (served under `{base_path}/whatsapp` and as written).
    #[serde(default)]
    pub path: Option<String>,
    /// For `webhook`: the HTTP method (POST).
    #[serde(default)]
    pub method: Option<String>,
}

/// Kinds of trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A WhatsApp message matching `pattern`.
    Message,
    /// An authenticated HTTP POST whose JSON body is the input.
    Webhook,
    /// Prometheus Alertmanager's webhook payload.
    Alertmanager,
}

/// `context`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextSpec {
    /// Where the context comes from (`conversation`).
    #[serde(default)]
    pub source: Option<String>,
    /// How many past messages the flow sees.
    #[serde(default)]
    pub lookback: Option<usize>,
}

/// `input`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Fields that must be present.
    #[serde(default)]
    pub required: Vec<String>,
    /// Field definitions.
    #[serde(default)]
    pub schema: BTreeMap<String, FieldSpec>,
}

/// One field of the input schema.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// `string`, `number`, `integer`, `boolean`, `array` or `object`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Allowed values.
    #[serde(rename = "enum", default)]
    pub allowed: Option<Vec<serde_json::Value>>,
    /// Value when absent.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// Where a message-triggered run takes the value from (`match.1`).
    #[serde(default)]
    pub source: Option<String>,
    /// What it is.
    #[serde(default)]
    pub description: Option<String>,
}

/// One step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The step id (`steps.<name>.output`); may contain hyphens.
    pub name: String,
    /// The agent to call.
    pub agent: String,
    /// The action (may be an expression such as `{{ input.action }}`).
    pub action: String,
    /// The action's input; string values are expressions.
    #[serde(default)]
    pub input: serde_json::Value,
    /// Runs the step only when this expression is true.
    #[serde(default)]
    pub condition: Option<String>,
    /// Runs the step once per item of this list (`item` in expressions); outputs form a list.
    #[serde(default)]
    pub foreach: Option<String>,
    /// Runs the `foreach` items (or the agent's own sub-tasks) concurrently.
    #[serde(default)]
    pub parallel: bool,
    /// What to answer, and stop, when the step finds nothing.
    #[serde(default)]
    pub on_empty: Option<OnEmpty>,
    /// Retries, fallback channels and the answer when the step fails.
    #[serde(default)]
    pub on_error: Option<OnError>,
}

/// `on_empty`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnEmpty {
    /// The answer to the person.
    pub response: Response,
}

/// `on_error`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnError {
    /// The answer to the person when the step still fails.
    #[serde(default)]
    pub response: Option<Response>,
    /// Retries of the step.
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    /// Other channels to tell when the step still fails.
    #[serde(default)]
    pub fallback: Vec<FallbackSpec>,
}

/// `on_error.retry`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// `exponential` (default) or `fixed`.
    #[serde(default)]
    pub backoff: Option<String>,
}

/// One fallback channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackSpec {
    /// `slack`, `email` or `whatsapp`.
    pub channel: String,
    /// Who (an expression).
    #[serde(default)]
    pub user: Option<String>,
    /// An address (an expression).
    #[serde(default)]
    pub address: Option<String>,
}

/// A canned answer: free text or a template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// Free-form text (an expression).
    #[serde(default)]
    pub text: Option<String>,
    /// A template name.
    #[serde(default)]
    pub template: Option<String>,
    /// The template's parameters (expressions).
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// One entry of `on_response`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnResponse {
    /// A regex the whole reply must match (case-insensitive).
    pub pattern: String,
    /// The flow to run.
    pub flow: String,
    /// Its input (expressions over this run's steps and the replying person's `trigger`).
    #[serde(default)]
    pub input: serde_json::Map<String, serde_json::Value>,
}

/// The agent name of a step that runs another flow inline (`agent: flow`, `action: run`,
/// `input: {flow, input}`): same person, same conversation, its own steps and `on_response`.
pub const SUBFLOW_AGENT: &str = "flow";
