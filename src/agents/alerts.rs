//! The `alert-manager` agent: alerts for flows (`create`, `find_pending`, `get_active`,
//! `acknowledge`, `resolve`, `get`, `add_paged`, and ACK ALL's `acknowledge_all`, in `ack_all`). Which alert a person means and what
//! acknowledging and resolving do are [`crate::ops::alerts`]' rules; the agent reads the steps'
//! inputs (and the conversation: `run.recent_about("alert_id")`) and shapes outputs as flows read
//! them ([`alert_output`]): always with `alert_id`, `title` and `pagerduty_incident_id` (null when
//! none).

use super::{str_field, text_of, Agent, AgentError, AgentResult, RunContext};
use crate::ops::alerts::{self as rules, existing};
use crate::store::{AlertRecord, AlertSource, AlertState, NewAlert};
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
        "check_delivery" => check_delivery,
        "acknowledge_all" => super::ack_all::acknowledge_all,
    ],
};

/// `get`: one alert by `alert_id`.
async fn get(input: &Value, run: &RunContext) -> AgentResult {
    let store = run.services.store.as_ref();
    let alert = existing(store, str_field(input, "alert_id")?).await?;
    Ok(alert_output(&alert, run))
}

/// `add_paged`: records that `phone` was paged about `alert_id`.
async fn add_paged(input: &Value, run: &RunContext) -> AgentResult {
    let id = str_field(input, "alert_id")?;
    let who =
        phone(input, "phone")?.ok_or_else(|| AgentError::input("phone", "is missing or empty"))?;
    let store = &run.services.store;
    let alert = store.add_paged(id, &who).await.map_err(AgentError::store)?;
    let alert = alert.ok_or_else(|| rules::unknown(id))?;
    Ok(alert_output(&alert, run))
}

/// `check_delivery`: whether the page to `to` about `alert_id` (queued as `job_id`) got through.
/// When it did not and the alert still waits for them, the alert's timeline says why and the
/// output has `escalate: true` with the `reason`; otherwise `escalate: false`.
async fn check_delivery(input: &Value, run: &RunContext) -> AgentResult {
    let store = run.services.store.as_ref();
    let alert = existing(store, str_field(input, "alert_id")?).await?;
    let to = phone(input, "to")?.ok_or_else(|| AgentError::input("to", "is missing or empty"))?;
    let delivery = match present(input.get("job_id")) {
        Some(job) => store.delivery(&job).await.map_err(AgentError::store)?,
        None => None,
    };
    let waited = run
        .services
        .config
        .platforms
        .whatsapp
        .oncall
        .page_delivery_timeout;
    let reason = rules::undelivered(&alert, &to, delivery.as_ref(), waited);
    let alert = match &reason {
        Some(reason) => {
            let name = label(run, Some(&to.e164()));
            let note = format!("The page to {name} did not get through: {reason}.");
            tracing::warn!(alert = %alert.id, wa = %to.masked(), "{reason}; paging the next person");
            store
                .add_alert_note(&alert.id, &note)
                .await
                .map_err(AgentError::store)?
                .unwrap_or(alert)
        }
        None => alert,
    };
    let mut output = alert_output(&alert, run);
    output["escalate"] = json!(reason.is_some());
    output["reason"] = json!(reason);
    output["to_name"] = json!(label(run, Some(&to.e164())));
    Ok(output)
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
    // The same step run again after a crash finds the alert it recorded, not a second one.
    let created_by = format!(
        "{}/{}/{service}/{}",
        run.run_id.0,
        run.step.borrow().clone().unwrap_or_default(),
        fingerprint.as_deref().unwrap_or_default()
    );
    let new = NewAlert {
        severity,
        service,
        message,
        runbook_url: runbook_url.as_deref(),
        source,
        fingerprint: fingerprint.as_deref(),
        pagerduty_incident_id: pagerduty_incident_id.as_deref(),
        paged: paged.as_ref(),
        created_by: Some(&created_by),
    };
    let created = run
        .services
        .store
        .create_alert(&new)
        .await
        .map_err(AgentError::store)?;
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

/// The alert `who` means among those in `states`: the one their message names or quotes
/// ([`rules::targeted`]), else the one [`rules::meant`] finds from their conversation, with a note
/// for their reply when they have others open.
async fn meant(
    run: &RunContext,
    who: &WaId,
    states: &[AlertState],
) -> Result<Option<AlertRecord>, AgentError> {
    let store = run.services.store.as_ref();
    if let Some(id) = targeted_alert(run).await? {
        let wa = &run.services.config.platforms.whatsapp;
        let alert = rules::targeted(store, wa, &id, states).await?;
        if let Some(note) = digest_note(run, &alert.id) {
            run.notes.borrow_mut().push(note);
        }
        return Ok(Some(alert));
    }
    let named = run.recent_about("alert_id");
    let chosen = rules::meant(store, named, who, states).await?;
    if let Some(alert) = &chosen {
        let open = store
            .find_open_for(who, states)
            .await
            .map_err(AgentError::store)?;
        if let Some(note) = rules::others_note(&command_word(run), alert, &open) {
            run.notes.borrow_mut().push(note);
        }
    }
    Ok(chosen)
}

/// The alert a reply names: its `alert_id`, or the alert of the incident it names (`ACK INC-0002`,
/// or quoting that war room's message); `None` when it names neither.
async fn targeted_alert(run: &RunContext) -> Result<Option<String>, AgentError> {
    let Some(target) = &run.target else {
        return Ok(None);
    };
    if let Some(id) = target.get("alert_id").and_then(Value::as_str) {
        return Ok(Some(id.to_owned()));
    }
    if let Some(ids) = target.get("alert_ids").and_then(Value::as_array) {
        return one_of_a_digest(run, ids);
    }
    let Some(incident) = target.get("incident_id").and_then(Value::as_str) else {
        return Ok(None);
    };
    let store = run.services.store.as_ref();
    if let Some(room) = store.room(incident).await.map_err(AgentError::store)? {
        if let Some(alert) = room.alert_id {
            return Ok(Some(alert));
        }
    }
    let known = store
        .get_incident(incident)
        .await
        .map_err(AgentError::store)?;
    Err(AgentError::Answer(match known {
        Some(_) => format!("ℹ️ {incident} has no alert to act on."),
        None => format!("I know no incident {incident}; incident ids look like INC-0001."),
    }))
}

/// The alert a reply quoting a digest means: its only alert, or for INFO the first (the answer
/// lists the others); any other command is asked to name one.
fn one_of_a_digest(run: &RunContext, ids: &[Value]) -> Result<Option<String>, AgentError> {
    let ids: Vec<&str> = ids.iter().filter_map(Value::as_str).collect();
    let command = command_word(run).to_uppercase();
    match ids.as_slice() {
        [] => Ok(None),
        [only] => Ok(Some((*only).to_owned())),
        [first, ..] if command == "INFO" => Ok(Some((*first).to_owned())),
        [first, ..] => Err(AgentError::Answer(format!(
            "ℹ️ That message names {} alerts ({}). Write `{command} {first}` for one of them, or ACK ALL to acknowledge them all.",
            ids.len(),
            crate::ops::digest::ranges(&ids)
        ))),
    }
}

/// For a reply quoting a digest, the other alerts it names and how to act on them.
fn digest_note(run: &RunContext, chosen: &str) -> Option<String> {
    let ids = run.target.as_ref()?.get("alert_ids")?.as_array()?;
    let others: Vec<&str> = ids
        .iter()
        .filter_map(Value::as_str)
        .filter(|id| *id != chosen)
        .collect();
    let first = others.first()?;
    Some(format!(
        "ℹ️ That message also names {}. Write INFO {first} for another, or ACK ALL to acknowledge them all.",
        crate::ops::digest::ranges(&others)
    ))
}

/// The command the person typed (the first word of their last message), for a note.
fn command_word(run: &RunContext) -> String {
    run.context
        .iter()
        .rev()
        .find(|e| e.direction == aof_actors::model::Direction::In)
        .and_then(|e| e.text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "ACK".to_owned())
}

/// `acknowledge`: firing -> acknowledged by `acknowledged_by` (default: who wrote), with
/// `changed`; refused (with who and when) when someone else acknowledged it first or it is resolved.
async fn acknowledge(input: &Value, run: &RunContext) -> AgentResult {
    let id = str_field(input, "alert_id")?;
    let actor = actor(input, "acknowledged_by", run);
    let (store, wa) = (
        run.services.store.as_ref(),
        &run.services.config.platforms.whatsapp,
    );
    let (alert, moved) = rules::acknowledge(store, wa, id, actor.as_deref()).await?;
    Ok(changed(alert_output(&alert, run), moved))
}

/// `resolve`: -> resolved by `resolved_by` (default: who wrote, or nobody for a webhook), with
/// `changed` (false when it was resolved already).
async fn resolve(input: &Value, run: &RunContext) -> AgentResult {
    let id = str_field(input, "alert_id")?;
    let actor = actor(input, "resolved_by", run);
    let store = run.services.store.as_ref();
    let (alert, moved) = rules::resolve(store, id, actor.as_deref()).await?;
    Ok(changed(alert_output(&alert, run), moved))
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
    let notes: Vec<Value> = alert
        .notes
        .iter()
        .map(|n| json!({ "text": n.text, "at_ms": n.at_ms, "at": rfc3339(n.at_ms) }))
        .collect();
    let extra = json!({
        "alert_id": alert.id,
        "notes": notes,
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

/// How people know an actor ([`crate::config::WhatsAppConfig::label`]).
pub(super) fn label(run: &RunContext, actor: Option<&str>) -> String {
    run.services.config.platforms.whatsapp.label(actor)
}

/// Unix milliseconds as RFC 3339 in UTC, as `now()` writes times.
pub(super) fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
