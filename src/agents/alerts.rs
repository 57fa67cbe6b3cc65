//! The `alert-manager` agent: alerts in the store (`create`, `find_pending`, `get_active`,
//! `acknowledge`, `resolve`, `get`, `add_paged`).
//!
//! Which alert a person means by `ACK` or `ESC` is read from their conversation first: the newest
//! message the bot sent them that named an alert (`run.recent_about("alert_id")`, set by the
//! send that paged them or escalated to them); only when the conversation names none does it fall
//! back to the newest alert they were paged about. Outputs are the alert as flows read it
//! ([`alert_output`]): always with `alert_id`, `title` and `pagerduty_incident_id` (null when none).

use super::{str_field, text_of, Agent, AgentError, AgentResult, RunContext};
use crate::store::{AlertRecord, AlertSource, AlertState, NewAlert, TransitionOutcome};
use aof_actors::WaId;
use serde_json::{json, Value};

/// Keeps alerts.
pub static AGENT: Agent = Agent {
    name: "alert-manager",
    actions: crate::actions![
        "create" => create,
        "find_pending" => find_pending,
        "get_active" => get_active,
        "acknowledge" => acknowledge,
        "resolve" => resolve,
        "get" => get,
        "add_paged" => add_paged,
    ],
};

/// `get`: one alert by `alert_id`.
async fn get(input: &Value, run: &RunContext) -> AgentResult {
    let alert = existing(run, str_field(input, "alert_id")?).await?;
    Ok(alert_output(&alert, run))
}

/// `add_paged`: records that `phone` was paged about `alert_id`.
async fn add_paged(input: &Value, run: &RunContext) -> AgentResult {
    let id = str_field(input, "alert_id")?;
    let who =
        phone(input, "phone")?.ok_or_else(|| AgentError::input("phone", "is missing or empty"))?;
    let store = &run.services.store;
    let alert = store.add_paged(id, &who).await.map_err(failed)?;
    let alert = alert.ok_or_else(|| unknown(id))?;
    Ok(alert_output(&alert, run))
}

/// `create`: records the alert (or updates the open one with the same fingerprint or PagerDuty
/// incident: `duplicate: true`). `runbook_url`, `fingerprint`, `pagerduty_incident_id` and `source`
/// come from the step's input, else from the run's input (the webhook body), since the tutorial's
/// step passes only severity, service and message.
async fn create(input: &Value, run: &RunContext) -> AgentResult {
    let run_input = run.input.borrow().clone();
    let field = |name: &str| present(input.get(name)).or_else(|| present(run_input.get(name)));
    let severity = str_field(input, "severity")?;
    let service = str_field(input, "service")?;
    let message = str_field(input, "message")?;
    let paged = phone(input, "oncall_user")?;
    let (runbook_url, fingerprint, pagerduty_incident_id) = (
        field("runbook_url"),
        field("fingerprint"),
        field("pagerduty_incident_id"),
    );
    let source = match field("source") {
        Some(word) => AlertSource::parse(&word).ok_or_else(|| {
            AgentError::input(
                "source",
                format!("`{word}` is not one of webhook, alertmanager, pagerduty, datadog"),
            )
        })?,
        None if fingerprint.is_some() => AlertSource::Alertmanager,
        None if pagerduty_incident_id.is_some() => AlertSource::Pagerduty,
        None => AlertSource::Webhook,
    };
    let new = NewAlert {
        severity,
        service,
        message,
        runbook_url: runbook_url.as_deref(),
        source,
        fingerprint: fingerprint.as_deref(),
        pagerduty_incident_id: pagerduty_incident_id.as_deref(),
        paged: paged.as_ref(),
    };
    let created = run
        .services
        .store
        .create_alert(&new)
        .await
        .map_err(failed)?;
    let mut output = alert_output(&created.alert, run);
    output["duplicate"] = json!(created.duplicate);
    Ok(output)
}

/// `find_pending`: the alert in `status` (default `firing`) that the person means: the newest one
/// their conversation names, else the newest they were paged about; `null` when none (the flow's
/// `on_empty` answers).
async fn find_pending(input: &Value, run: &RunContext) -> AgentResult {
    let who = person(input, "user_phone", run)?;
    let state = match present(input.get("status")) {
        Some(word) => AlertState::parse(&word).ok_or_else(|| {
            AgentError::input(
                "status",
                format!("`{word}` is not one of firing, acknowledged, resolved"),
            )
        })?,
        None => AlertState::Firing,
    };
    Ok(match meant(run, &who, &[state]).await? {
        Some(alert) => alert_output(&alert, run),
        None => Value::Null,
    })
}

/// `get_active`: the not-resolved alert the person means (as `find_pending`); failing when none,
/// since escalating nothing is a mistake worth telling.
async fn get_active(input: &Value, run: &RunContext) -> AgentResult {
    let who = person(input, "user_phone", run)?;
    let open = [AlertState::Firing, AlertState::Acknowledged];
    match meant(run, &who, &open).await? {
        Some(alert) => Ok(alert_output(&alert, run)),
        None => Err(AgentError::Answer(
            "ℹ️ You have no active alert: nothing you were paged about is firing or acknowledged."
                .into(),
        )),
    }
}

/// The alert `who` means among those in `states`: conversation first, then what they were paged
/// about or acknowledged.
async fn meant(
    run: &RunContext,
    who: &WaId,
    states: &[AlertState],
) -> Result<Option<AlertRecord>, AgentError> {
    let store = &run.services.store;
    let mut seen = Vec::new();
    for id in run.recent_about("alert_id") {
        if seen.contains(&id) {
            continue;
        }
        if let Some(alert) = store.get_alert(&id).await.map_err(failed)? {
            if states.contains(&alert.state) {
                tracing::debug!(alert = %alert.id, "the conversation names the alert");
                return Ok(Some(alert));
            }
        }
        seen.push(id);
    }
    let mine = store.find_open_for(who, states).await.map_err(failed)?;
    Ok(mine.into_iter().next())
}

/// `acknowledge`: firing -> acknowledged by `acknowledged_by` (default: who wrote). Someone else
/// having acknowledged it first, or it being resolved, fails with who and when.
async fn acknowledge(input: &Value, run: &RunContext) -> AgentResult {
    let id = str_field(input, "alert_id")?;
    let actor = actor(input, "acknowledged_by", run);
    let outcome = run
        .services
        .store
        .transition(id, AlertState::Acknowledged, actor.as_deref())
        .await
        .map_err(failed)?;
    match outcome {
        TransitionOutcome::Moved(alert) => Ok(changed(alert_output(&alert, run), true)),
        TransitionOutcome::Unchanged(alert) if alert.acknowledged_by == actor => {
            Ok(changed(alert_output(&alert, run), false))
        }
        TransitionOutcome::Unchanged(alert) if alert.state == AlertState::Acknowledged => {
            Err(AgentError::Answer(format!(
                "ℹ️ {} was already acknowledged by {} at {}.",
                alert.id,
                label(run, alert.acknowledged_by.as_deref()),
                when(alert.acknowledged_ms),
            )))
        }
        TransitionOutcome::Unchanged(alert) | TransitionOutcome::Refused(alert) => {
            Err(AgentError::Answer(format!(
                "ℹ️ {} is already resolved (by {} at {}); nothing to acknowledge.",
                alert.id,
                label(run, alert.resolved_by.as_deref()),
                when(alert.resolved_ms),
            )))
        }
        TransitionOutcome::Unknown => Err(unknown(id)),
    }
}

/// `resolve`: -> resolved by `resolved_by` (default: who wrote, or nobody for a webhook).
/// Resolving a resolved alert is not an error (Alertmanager repeats itself): `changed: false`.
async fn resolve(input: &Value, run: &RunContext) -> AgentResult {
    let id = str_field(input, "alert_id")?;
    let actor = actor(input, "resolved_by", run);
    let outcome = run
        .services
        .store
        .transition(id, AlertState::Resolved, actor.as_deref())
        .await
        .map_err(failed)?;
    match outcome {
        TransitionOutcome::Moved(alert) => Ok(changed(alert_output(&alert, run), true)),
        TransitionOutcome::Unchanged(alert) | TransitionOutcome::Refused(alert) => {
            Ok(changed(alert_output(&alert, run), false))
        }
        TransitionOutcome::Unknown => Err(unknown(id)),
    }
}

/// An alert as step output: the record, plus `alert_id`, `title`, the names of the people paged
/// and of who acknowledged or resolved it, and RFC 3339 times (`created_at`, `pages[].at`, …) that
/// `format_time` turns into text.
pub fn alert_output(alert: &AlertRecord, run: &RunContext) -> Value {
    let mut output = serde_json::to_value(alert).unwrap_or_else(|_| json!({}));
    let pages: Vec<Value> = alert
        .pages
        .iter()
        .map(|p| json!({ "phone": p.phone, "name": label(run, Some(&p.phone)), "at_ms": p.at_ms, "at": rfc3339(p.at_ms) }))
        .collect();
    let extra = json!({
        "alert_id": alert.id,
        "title": alert.title(),
        "pages": pages,
        "paged_names": alert.paged.iter().map(|p| label(run, Some(p))).collect::<Vec<_>>(),
        "acknowledged_by_name": alert.acknowledged_by.as_deref().map(|a| label(run, Some(a))),
        "resolved_by_name": alert.resolved_by.as_deref().map(|a| label(run, Some(a))),
        "created_at": rfc3339(alert.created_ms),
        "acknowledged_at": alert.acknowledged_ms.and_then(rfc3339),
        "resolved_at": alert.resolved_ms.and_then(rfc3339),
        "duplicate": false,
    });
    if let (Some(out), Value::Object(extra)) = (output.as_object_mut(), extra) {
        out.extend(extra);
    }
    output
}

fn changed(mut output: Value, changed: bool) -> Value {
    output["changed"] = json!(changed);
    output
}

/// The alert with this id, or a failure naming it.
async fn existing(run: &RunContext, id: &str) -> Result<AlertRecord, AgentError> {
    let store = &run.services.store;
    store
        .get_alert(id)
        .await
        .map_err(failed)?
        .ok_or_else(|| unknown(id))
}

fn unknown(id: &str) -> AgentError {
    AgentError::Answer(format!(
        "I know no alert {id}; alert ids look like ALT-0001."
    ))
}

fn failed(e: aof_actors::ports::StoreError) -> AgentError {
    AgentError::Failed(e.to_string())
}

/// A text field's value, or `None` when absent, null, blank, or the `none` an absent value renders
/// to inside a longer template.
pub(super) fn present(value: Option<&Value>) -> Option<String> {
    let text = text_of(value?);
    let text = text.trim();
    (!text.is_empty() && !text.eq_ignore_ascii_case("none") && !text.eq_ignore_ascii_case("null"))
        .then(|| text.to_owned())
}

/// An optional phone number field; a value that is not a number is a bad input.
pub(super) fn phone(input: &Value, field: &str) -> Result<Option<WaId>, AgentError> {
    match present(input.get(field)) {
        None => Ok(None),
        Some(text) => WaId::parse(&text)
            .map(Some)
            .ok_or_else(|| AgentError::input(field, format!("`{text}` is not a phone number"))),
    }
}

/// The person a step is about: the number in `field`, else whoever wrote.
pub(super) fn person(input: &Value, field: &str, run: &RunContext) -> Result<WaId, AgentError> {
    match phone(input, field)? {
        Some(who) => Ok(who),
        None => run.user.as_ref().map(|p| p.wa.clone()).ok_or_else(|| {
            AgentError::input(
                field,
                "is missing, and no person started this run to default to",
            )
        }),
    }
}

/// Who did something, as recorded: a number written as E.164, other text (a name, `pagerduty`) as
/// given, else the person who wrote.
pub(super) fn actor(input: &Value, field: &str, run: &RunContext) -> Option<String> {
    match present(input.get(field)) {
        Some(text) => Some(WaId::parse(&text).map_or(text, |wa| wa.e164())),
        None => run.user.as_ref().map(|p| p.wa.e164()),
    }
}

/// How people know an actor: the directory's or rota's name for a number, else the text itself.
pub(super) fn label(run: &RunContext, actor: Option<&str>) -> String {
    let Some(actor) = actor else {
        return "someone".to_owned();
    };
    WaId::parse(actor)
        .and_then(|wa| run.services.config.platforms.whatsapp.name_of(&wa))
        .unwrap_or_else(|| actor.to_owned())
}

/// Unix milliseconds as people read them, as `format_time` writes (`2026-11-26 17:02 UTC`).
pub(super) fn when(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "an unknown time".to_owned())
}

/// Unix milliseconds as RFC 3339 in UTC, as `now()` writes times.
pub(super) fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
