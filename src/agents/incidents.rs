//! The `incident-manager` agent: incidents for flows (`list`, `get`, `create`, `update`,
//! `resolve`), each with a timeline of who did and said what; the rules are
//! [`crate::ops::incidents`]'.
//!
//! Outputs carry `incident_id` (besides the record's `id`), so the run's later messages are about
//! the incident and a reply finds it. `get` adds the timeline; `list` leaves it out (the status
//! flow lists three incidents, not their war-room chatter).

use super::alerts::{actor, present, rfc3339};
use super::{str_field, text_of, Agent, AgentError, AgentResult, RunContext};
use crate::ops::incidents as rules;
use crate::store::{IncidentRecord, IncidentStage, IncidentUpdate};
use serde_json::{json, Value};

/// Keeps incidents: `list`, `get`, `create`, `update`, `resolve`.
pub static AGENT: Agent = Agent {
    name: "incident-manager",
    actions: crate::actions![
        "list" => list,
        "get" => get,
        "create" => create,
        "update" => update,
        "resolve" => resolve,
    ],
};

/// `list`: the newest incidents, of one `status` or all. Asked by a person for the open ones
/// (STATUS: what is going on now), their answer also gets the covers and silences in force, as a
/// note below it: the tutorial's STATUS text has no place for them.
async fn list(input: &Value, run: &RunContext) -> AgentResult {
    let store = run.services.store.as_ref();
    let status = input
        .get("status")
        .map(text_of)
        .filter(|s| !s.is_empty() && s != "all");
    let limit = input
        .get("limit")
        .and_then(|v| text_of(v).parse::<i64>().ok());
    let list = rules::list(store, status.as_deref(), limit).await?;
    if run.user.is_some() && status.as_deref() == Some("open") {
        let now = chrono::Utc::now().timestamp_millis();
        let covers = store.covers_at(now).await.map_err(AgentError::store)?;
        let silences = store.silences_at(now).await.map_err(AgentError::store)?;
        let wa = &run.services.config.platforms.whatsapp;
        if let Some(note) = crate::ops::who::overrides(&covers, &silences, wa) {
            run.notes.borrow_mut().push(note);
        }
    }
    Ok(Value::Array(list.iter().map(output).collect()))
}

/// `get`: one incident with its timeline.
async fn get(input: &Value, run: &RunContext) -> AgentResult {
    let store = run.services.store.as_ref();
    let id = str_field(input, "incident_id")?;
    let incident = rules::existing(store, id).await?;
    let timeline = store
        .incident_timeline(id)
        .await
        .map_err(AgentError::store)?
        .unwrap_or_default();
    let wa = &run.services.config.platforms.whatsapp;
    let timeline: Vec<Value> = timeline
        .iter()
        .map(|e| {
            json!({
                "at_ms": e.at_ms,
                "at": rfc3339(e.at_ms),
                "actor": e.actor,
                "actor_name": e.actor.as_deref().map(|a| wa.label(Some(a))),
                "text": e.text,
                "status": e.status,
            })
        })
        .collect();
    let mut out = output(&incident);
    out["timeline"] = Value::Array(timeline);
    Ok(out)
}

/// `create`: opens an incident.
async fn create(input: &Value, run: &RunContext) -> AgentResult {
    let store = run.services.store.as_ref();
    let title = str_field(input, "title")?;
    let severity = present(input.get("severity"));
    let service = present(input.get("service")).unwrap_or_default();
    let by = actor(input, "actor", run);
    let created = rules::open(store, title, severity.as_deref(), &service, by.as_deref()).await?;
    Ok(output(&created))
}

/// `update`: changes its status, severity or title, or adds a note.
async fn update(input: &Value, run: &RunContext) -> AgentResult {
    let id = str_field(input, "incident_id")?;
    let stage = match present(input.get("status")) {
        None => None,
        Some(word) => Some(IncidentStage::parse(&word).ok_or_else(|| {
            AgentError::input(
                "status",
                format!("`{word}` is not one of {}", IncidentStage::WORDS.join(", ")),
            )
        })?),
    };
    let (severity, title, note) = (
        present(input.get("severity")).map(|s| s.to_lowercase()),
        present(input.get("title")),
        present(input.get("note")),
    );
    if stage.is_none() && severity.is_none() && title.is_none() && note.is_none() {
        return Err(AgentError::input(
            "status",
            "nothing to update: give status, note, severity or title",
        ));
    }
    let update = IncidentUpdate {
        stage,
        severity: severity.as_deref(),
        title: title.as_deref(),
        note: note.as_deref(),
    };
    let by = actor(input, "actor", run);
    let store = run.services.store.as_ref();
    let incident = rules::change(store, id, &update, by.as_deref()).await?;
    Ok(output(&incident))
}

/// `resolve`: resolves it, with a note.
async fn resolve(input: &Value, run: &RunContext) -> AgentResult {
    let id = str_field(input, "incident_id")?;
    let note = present(input.get("note"));
    let update = IncidentUpdate {
        stage: Some(IncidentStage::Resolved),
        note: note.as_deref(),
        ..IncidentUpdate::default()
    };
    let field = match present(input.get("actor")) {
        Some(_) => "actor",
        None => "resolved_by",
    };
    let by = actor(input, field, run);
    let store = run.services.store.as_ref();
    let incident = rules::change(store, id, &update, by.as_deref()).await?;
    Ok(output(&incident))
}

/// An incident as step output: the record plus `incident_id`.
fn output(incident: &IncidentRecord) -> Value {
    let mut out = serde_json::to_value(incident).unwrap_or_else(|_| json!({}));
    out["incident_id"] = json!(incident.id);
    out
}
