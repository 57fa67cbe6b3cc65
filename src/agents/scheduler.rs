//! The `scheduler` agent: runs a flow later (`delay` seconds), durably: the timer is in the store
//! before the step returns, so a restart does not lose an auto-escalation.

use super::{str_field, Agent, AgentError, AgentResult, RunContext};
use serde_json::{json, Value};
use std::time::Duration;

/// Schedules flows: `schedule`.
pub static AGENT: Agent = Agent {
    name: "scheduler",
    actions: crate::actions![
        "schedule" => schedule,
    ],
};

/// `schedule`: runs `flow` with `input` after `delay` seconds, from a durable timer.
async fn schedule(input: &Value, run: &RunContext) -> AgentResult {
    let flow = str_field(input, "flow")?.to_owned();
    let delay = match input.get("delay") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|d| d.is_finite() && *d >= 0.0)
    .ok_or_else(|| AgentError::input("delay", "expected a number of seconds"))?;
    let flow_input = input.get("input").cloned().unwrap_or_else(|| json!({}));
    // Keyed like a send (by what it is for, not its content): the step run again after a crash
    // schedules the same timer, not a second, also when its input changed meanwhile.
    let id = run
        .key_of(&[b"timer:", flow.as_bytes()])
        .map(|key| timer_id(&key));
    let id = run
        .services
        .handle
        .schedule(id, flow.clone(), flow_input, Duration::from_secs_f64(delay))
        .await
        .map_err(|e| AgentError::Failed(format!("could not store the timer: {e}")))?;
    Ok(json!({ "timer_id": id, "flow": flow, "delay": delay }))
}

/// A timer id (`tmr_` and 24 hex digits, as fresh ones are) from a step's key.
fn timer_id(key: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!("tmr_{}", hex::encode(&digest[..12]))
}
