//! The `logger` and `validator` agents: a flow's own log line, and a guard that stops the flow when
//! its condition is false (the step's `on_error` answers).

use super::{text_of, Agent, AgentError, AgentResult, RunContext};
use serde_json::{json, Value};

/// `logger.log`: writes `message` with `metadata` at `level` (`error`, `warn`, `info`, `debug`,
/// `trace`); any other word, such as the alert severity the tutorial passes, logs at INFO with it as
/// `severity`.
pub static LOGGER: Agent = Agent {
    name: "logger",
    actions: crate::actions!["log" => log],
};

async fn log(input: &Value, run: &RunContext) -> AgentResult {
    let level = input
        .get("level")
        .map(text_of)
        .unwrap_or_else(|| "info".into())
        .to_lowercase();
    let message = input.get("message").map(text_of).unwrap_or_default();
    let metadata = input.get("metadata").cloned().unwrap_or(Value::Null);
    let flow = run.flow.as_str();
    // `error`, `warn`, `debug` and `trace` are log levels. Anything else is what the message is
    // about, not how bad logging it is: the tutorial passes an alert's severity, and a page
    // sent for a critical alert is good news, logged at INFO with the severity beside it.
    match level.as_str() {
        "error" => tracing::error!(flow, run = %run.run_id, %metadata, "{message}"),
        "warn" => tracing::warn!(flow, run = %run.run_id, %metadata, "{message}"),
        "debug" => tracing::debug!(flow, run = %run.run_id, %metadata, "{message}"),
        "trace" => tracing::trace!(flow, run = %run.run_id, %metadata, "{message}"),
        "info" => tracing::info!(flow, run = %run.run_id, %metadata, "{message}"),
        severity => tracing::info!(flow, run = %run.run_id, severity, %metadata, "{message}"),
    }
    Ok(json!({ "logged": true, "level": level }))
}

/// `validator.check`: succeeds when `condition` rendered true, fails otherwise.
pub static VALIDATOR: Agent = Agent {
    name: "validator",
    actions: crate::actions!["check" => check],
};

async fn check(input: &Value, _: &RunContext) -> AgentResult {
    match input.get("condition") {
        None => Err(AgentError::input("condition", "is missing")),
        Some(c) if super::is_truthy(c) => Ok(json!({ "valid": true })),
        Some(_) => Err(AgentError::Failed("the condition is false".into())),
    }
}
