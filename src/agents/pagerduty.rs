//! The `pagerduty` agent: `acknowledge`, `resolve` and `escalate` a PagerDuty incident through the
//! REST API ([`crate::integrations::pagerduty`]).
//!
//! PagerDuty is optional: without `oncall.pagerduty_token`, or when the alert is not a PagerDuty
//! incident (no `incident_id`), the step is skipped with an info line and outputs
//! `{skipped: true, reason}`, so the tutorial's flows run the same with or without it. A call
//! PagerDuty refuses fails the step with PagerDuty's message. In a dry run (`aofctl simulate`) the
//! request is recorded instead of sent and the output, marked `"simulated": true`, is the incident
//! in the state asked for.

use super::{text_of, Agent, AgentError, AgentResult, RunContext};
use crate::integrations::pagerduty::{
    IncidentState, IncidentWrite, PagerDuty as Client, PagerDutyError,
};
use serde_json::{json, Value};

/// Writes incident state to PagerDuty: `acknowledge`, `resolve`, `escalate`.
pub static AGENT: Agent = Agent {
    name: "pagerduty",
    actions: crate::actions![
        "acknowledge" => acknowledge,
        "resolve" => resolve,
        "escalate" => escalate,
    ],
};

/// `acknowledge`: the incident's status (or each of `incident_ids`').
async fn acknowledge(input: &Value, run: &RunContext) -> AgentResult {
    each_incident(Asked::Acknowledge, input, run).await
}

/// `resolve`: the incident's status (or each of `incident_ids`').
async fn resolve(input: &Value, run: &RunContext) -> AgentResult {
    each_incident(Asked::Resolve, input, run).await
}

/// With `incident_ids` (ACK ALL), the write for each of them; one PagerDuty refuses is logged and
/// listed with its error, and the others still go. Otherwise the write for `incident_id`.
async fn each_incident(asked: Asked, input: &Value, run: &RunContext) -> AgentResult {
    let Some(Value::Array(ids)) = input.get("incident_ids") else {
        return write_incident(asked, input, run).await;
    };
    let mut incidents = Vec::with_capacity(ids.len());
    for id in ids {
        let mut one = input.clone();
        one["incident_id"] = id.clone();
        incidents.push(match write_incident(asked, &one, run).await {
            Ok(done) => done,
            Err(e) => json!({ "incident_id": id, "error": e.to_string() }),
        });
    }
    Ok(json!({ "count": incidents.len(), "incidents": incidents }))
}

/// `escalate`: to `escalation_level`.
async fn escalate(input: &Value, run: &RunContext) -> AgentResult {
    write_incident(Asked::Escalate, input, run).await
}

/// Which of the three actions.
#[derive(Clone, Copy)]
enum Asked {
    Acknowledge,
    Resolve,
    Escalate,
}

/// Every action: the same client and checks, then the one write asked for.
async fn write_incident(asked: Asked, input: &Value, run: &RunContext) -> AgentResult {
    let action = match asked {
        Asked::Acknowledge => "acknowledge",
        Asked::Resolve => "resolve",
        Asked::Escalate => "escalate",
    };
    let oncall = &run.services.config.platforms.whatsapp.oncall;
    let skipped = |reason: &str| {
        tracing::info!(flow = %run.flow, run = %run.run_id, action, "PagerDuty step skipped: {reason}");
        Ok(json!({ "skipped": true, "reason": reason }))
    };
    let Some(client) = Client::from_config(oncall) else {
        return skipped("platforms.whatsapp.oncall.pagerduty_token is not set");
    };
    let Some(incident) = present(input.get("incident_id")) else {
        return skipped("no incident_id: the alert is not a PagerDuty incident");
    };
    let write = match asked {
        Asked::Acknowledge => IncidentWrite::Acknowledge,
        Asked::Resolve => IncidentWrite::Resolve,
        Asked::Escalate => {
            let Some(level) = escalation_level(input.get("escalation_level"))? else {
                return skipped(
                    "no escalation_level: the escalation target is not on a PagerDuty level",
                );
            };
            IncidentWrite::Escalate(level)
        }
    };
    let level = match write {
        IncidentWrite::Escalate(level) => Some(level),
        _ => None,
    };
    let result = match &run.services.dry_run {
        Some(dry) => client
            .planned_write(&incident, write)
            .map(|(target, detail)| {
                dry.record(run, "pagerduty", target, detail);
                simulated_state(&incident, write)
            }),
        None => client.write(&incident, write).await,
    };
    let simulated = run.services.dry_run.is_some();
    match result {
        Ok(state) => {
            tracing::info!(flow = %run.flow, run = %run.run_id, action, incident = %state.id,
                status = %state.status, level, "PagerDuty incident updated");
            let mut out = json!({ "incident_id": state.id, "status": state.status });
            if let Some(level) = level {
                out["escalation_level"] = json!(level);
            }
            if simulated {
                out["simulated"] = json!(true);
            }
            Ok(out)
        }
        Err(PagerDutyError::BadId(id)) => Err(AgentError::input(
            "incident_id",
            format!("`{id}` is not a PagerDuty incident id (letters and digits, like PT4KHLK)"),
        )),
        Err(e) => {
            tracing::warn!(flow = %run.flow, run = %run.run_id, action, incident = %incident, error = %e,
                "PagerDuty refused the incident update");
            Err(AgentError::Failed(e.to_string()))
        }
    }
}

/// What PagerDuty would have answered to `write` (a dry run): the incident in its new state; an
/// escalated incident is triggered again at its new level.
fn simulated_state(incident: &str, write: IncidentWrite) -> IncidentState {
    let status = match write {
        IncidentWrite::Acknowledge => "acknowledged",
        IncidentWrite::Resolve => "resolved",
        IncidentWrite::Escalate(_) => "triggered",
    };
    IncidentState {
        id: incident.trim().to_owned(),
        status: status.to_owned(),
    }
}

/// A text field's value, or `None` when absent, null, blank, or the `none` an absent value renders
/// to inside a longer template.
fn present(value: Option<&Value>) -> Option<String> {
    let text = text_of(value?);
    let text = text.trim();
    (!text.is_empty() && !text.eq_ignore_ascii_case("none") && !text.eq_ignore_ascii_case("null"))
        .then(|| text.to_owned())
}

/// `escalation_level` as a number from 1; flows render it as text (`"2"`) as often as a number.
fn escalation_level(value: Option<&Value>) -> Result<Option<u32>, AgentError> {
    let Some(text) = present(value) else {
        return Ok(None);
    };
    let level = text
        .parse::<u32>()
        .ok()
        .or_else(|| {
            text.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && *f >= 1.0 && *f <= u32::MAX as f64)
                .map(|f| f as u32)
        })
        .filter(|&l| l >= 1);
    match level {
        Some(level) => Ok(Some(level)),
        None => Err(AgentError::input(
            "escalation_level",
            format!("expected a level number from 1, got `{text}`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalation_levels_come_as_numbers_or_text() {
        assert_eq!(escalation_level(Some(&json!(2))).unwrap(), Some(2));
        assert_eq!(escalation_level(Some(&json!("3"))).unwrap(), Some(3));
        assert_eq!(escalation_level(Some(&json!(" 2 "))).unwrap(), Some(2));
        assert_eq!(escalation_level(Some(&json!(2.0))).unwrap(), Some(2));
        assert_eq!(escalation_level(Some(&Value::Null)).unwrap(), None);
        assert_eq!(escalation_level(Some(&json!(""))).unwrap(), None);
        assert_eq!(escalation_level(None).unwrap(), None);
        for bad in [json!("two"), json!(0), json!(-1), json!(1.5)] {
            assert!(escalation_level(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn blank_and_rendered_none_incident_ids_are_absent() {
        assert_eq!(present(Some(&json!("PT4KHLK"))).as_deref(), Some("PT4KHLK"));
        assert_eq!(present(Some(&json!("  "))), None);
        assert_eq!(present(Some(&json!("none"))), None);
        assert_eq!(present(Some(&Value::Null)), None);
        assert_eq!(present(None), None);
    }
}
