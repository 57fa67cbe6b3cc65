//! The `approval-manager` agent: approval requests for flows (`get_approvers`, `create`, `get`,
//! `validate_approver`, `approve`, `reject`, `pending_for`). It reads the steps' inputs and shapes
//! the outputs; who approves what and how a decision is taken are [`crate::ops::approvals`]'.

use super::alerts::{present, rfc3339};
use super::{str_field, text_of, Agent, AgentError, AgentResult, RunContext};
use crate::ops::approvals::{self as rules, decider, existing, not_an_approver};
use crate::store::{ApprovalRecord, ApprovalState, Approver, NewApproval, Verdict};
use aof_actors::model::now_ms;
use aof_actors::WaId;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// Keeps approval requests.
pub static AGENT: Agent = Agent {
    name: "approval-manager",
    actions: crate::actions![
        "get_approvers" => get_approvers,
        "create" => create,
        "get" => get,
        "validate_approver" => validate_approver,
        "approve" => approve,
        "reject" => reject,
        "pending_for" => pending_for,
    ],
};

/// Input fields of `create` that are columns; the rest is kept in the request's body.
const CREATE_FIELDS: [&str; 7] = [
    "type",
    "service",
    "version",
    "environment",
    "requester",
    "approvers",
    "expires_at",
];

/// `get_approvers`: who approves `service` in `environment`.
async fn get_approvers(input: &Value, run: &RunContext) -> AgentResult {
    let environment = str_field(input, "environment")?;
    let service = present(input.get("service")).unwrap_or_default();
    let users = approvers_for(run, environment, &service)?;
    Ok(json!({ "users": users, "environment": environment, "service": service }))
}

/// `get`: one request by `request_id`.
async fn get(input: &Value, run: &RunContext) -> AgentResult {
    let store = run.services.store.as_ref();
    let request = existing(store, str_field(input, "request_id")?).await?;
    Ok(request_output(&request, run))
}

/// `validate_approver`: whether `approver_phone` may decide `request_id`.
async fn validate_approver(input: &Value, run: &RunContext) -> AgentResult {
    let store = run.services.store.as_ref();
    let request = existing(store, str_field(input, "request_id")?).await?;
    let who = approver_number(input, "approver_phone", run)?;
    match request.approver(&who) {
        Some(approver) => Ok(json!({
            "valid": true,
            "request_id": request.id,
            "approver_name": approver.name,
            "approver_phone": approver.phone,
        })),
        None => Err(not_an_approver(wa(run), &who, &request).into()),
    }
}

/// `approve`.
async fn approve(input: &Value, run: &RunContext) -> AgentResult {
    decide(input, run, Verdict::Approve).await
}

/// `reject`.
async fn reject(input: &Value, run: &RunContext) -> AgentResult {
    decide(input, run, Verdict::Reject).await
}

/// `pending_for`: the open requests `approver_phone` may decide, newest first.
async fn pending_for(input: &Value, run: &RunContext) -> AgentResult {
    let who = approver_number(input, "approver_phone", run)?;
    let store = &run.services.store;
    let mut open = store.pending_for(&who).await.map_err(AgentError::store)?;
    // A reply that names or quotes a request (`APPROVE APR-0001`) is about that one only.
    let target = run.target.as_ref().and_then(|t| t.get("request_id"));
    if let Some(id) = target.and_then(Value::as_str) {
        open.retain(|r| r.id == id);
        if open.is_empty() {
            return Err(AgentError::Answer(
                not_waiting(store.as_ref(), id, run).await?,
            ));
        }
    }
    Ok(Value::Array(
        open.iter().map(|r| request_output(r, run)).collect(),
    ))
}

/// Why request `id` is not waiting for this approver's decision, as they are told.
async fn not_waiting(
    store: &dyn crate::store::Repositories,
    id: &str,
    run: &RunContext,
) -> Result<String, AgentError> {
    let request = store.get_approval(id).await.map_err(AgentError::store)?;
    Ok(match request {
        None => format!("I know no approval request {id}; request ids look like APR-0001."),
        Some(r) if r.state != crate::store::ApprovalState::Pending => format!(
            "ℹ️ {id} was already {} by {}.",
            r.state.as_str(),
            wa(run).label(r.decided_by.as_deref())
        ),
        Some(_) => format!("ℹ️ {id} is not waiting for your decision."),
    })
}

/// The configured approvers of `service` in `environment`, failing with the config key to set when
/// there are none.
fn approvers_for(
    run: &RunContext,
    environment: &str,
    service: &str,
) -> Result<Vec<Approver>, AgentError> {
    let people = rules::approvers_for(wa(run), environment, service);
    if people.is_empty() {
        let file = run.services.config.file.display().to_string();
        return Err(AgentError::Failed(rules::no_approvers(
            &file,
            environment,
            service,
        )));
    }
    Ok(people)
}

fn wa(run: &RunContext) -> &crate::config::WhatsAppConfig {
    &run.services.config.platforms.whatsapp
}

/// `create`: a pending request with its approvers (the step's list, else the config's) and expiry
/// (`expires_at`, else now + `approvals.expiry_hours`). The request keeps the other fields of the
/// step's input and of the run's input (`changes_url`, `summary`) for DETAILS.
async fn create(input: &Value, run: &RunContext) -> AgentResult {
    let service = str_field(input, "service")?;
    let environment = str_field(input, "environment")?;
    let requester = present(input.get("requester"))
        .or_else(|| run.user.as_ref().map(|p| p.wa.e164()))
        .ok_or_else(|| AgentError::input("requester", "is missing or empty"))?;
    let kind = present(input.get("type")).unwrap_or_else(|| "deployment".to_owned());
    let version = present(input.get("version")).unwrap_or_default();
    let approvers = match input
        .get("approvers")
        .filter(|v| present(Some(v)).is_some())
    {
        Some(given) => given_approvers(run, given)?,
        None => approvers_for(run, environment, service)?,
    };
    let expires_at = match present(input.get("expires_at")) {
        Some(text) => DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                AgentError::input(
                    "expires_at",
                    format!("`{text}` is not an RFC 3339 time ({e}); write it as {{{{ now() | add_hours(4) }}}}"),
                )
            })?,
        None => rules::default_expiry(wa(run)),
    };
    if expires_at.timestamp_millis() <= now_ms() {
        tracing::warn!(expires_at = %expires_at.to_rfc3339(), "approval request created already expired");
    }
    let mut body: Map<String, Value> = input
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !CREATE_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    // What the requester sent that the step does not pass on: the tutorial's flow drops
    // `changes_url`, which DETAILS shows.
    if let Some(sent) = run.input.borrow().as_object() {
        for (key, value) in sent {
            if !CREATE_FIELDS.contains(&key.as_str()) && !body.contains_key(key) {
                body.insert(key.clone(), value.clone());
            }
        }
    }
    let new = NewApproval {
        kind: &kind,
        service,
        version: &version,
        environment,
        requester: &requester,
        approvers: &approvers,
        expires_at,
        body: Value::Object(body),
    };
    let store = &run.services.store;
    let request = store
        .create_approval(&new)
        .await
        .map_err(AgentError::store)?;
    Ok(request_output(&request, run))
}

/// Approvers as a step gives them: a list (or its JSON text) of `{name, phone}`, or of names or
/// numbers looked up in the people directory.
fn given_approvers(run: &RunContext, given: &Value) -> Result<Vec<Approver>, AgentError> {
    let bad = |reason: String| AgentError::input("approvers", reason);
    let list = match given {
        Value::Array(items) => items.clone(),
        Value::String(text) => serde_json::from_str::<Vec<Value>>(text).map_err(|_| {
            bad(format!(
                "`{text}` is not a list of {{name, phone}}; pass {{{{ steps.get-approvers.output.users }}}}"
            ))
        })?,
        other => return Err(bad(format!("expected a list of {{name, phone}}, got {other}"))),
    };
    let mut approvers: Vec<Approver> = Vec::new();
    for item in &list {
        let (name, number) = match item {
            Value::Object(o) => (
                o.get("name").and_then(|v| present(Some(v))),
                o.get("phone").and_then(|v| present(Some(v))),
            ),
            other => (Some(text_of(other)), None),
        };
        let found = rules::named_approver(wa(run), name.as_deref(), number.as_deref()).ok_or_else(
            || {
                bad(format!(
                    "{item} has no phone and is not in platforms.whatsapp.people with one"
                ))
            },
        )?;
        if !approvers.iter().any(|a| a.phone == found.phone) {
            approvers.push(found);
        }
    }
    if approvers.is_empty() {
        return Err(bad("is empty: nobody could approve the request".into()));
    }
    Ok(approvers)
}

/// `approve` / `reject`: the first decision wins.
async fn decide(input: &Value, run: &RunContext, verdict: Verdict) -> AgentResult {
    let id = str_field(input, "request_id")?;
    let who = approver_number(input, "approver", run)?;
    let store = run.services.store.as_ref();
    let request = rules::decide(store, wa(run), id, verdict, &who).await?;
    Ok(request_output(&request, run))
}

/// A request as step output: the record plus `request_id`, `open`, `expired`, approver names, who
/// decided (by name) and when (`decided_at`, RFC 3339); body fields (`changes_url`, `replicas`) at the top level
/// too, where they do not shadow a column.
pub fn request_output(request: &ApprovalRecord, run: &RunContext) -> Value {
    let now = now_ms();
    let mut output = serde_json::to_value(request).unwrap_or_else(|_| json!({}));
    let extra = json!({
        "request_id": request.id,
        "open": request.is_open(now),
        "expired": request.state == ApprovalState::Pending && request.expires_ms <= now,
        "approver_names": request.approvers.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        "decided_by_name": request.decided_by.as_ref().map(|_| decider(wa(run), request)),
        "decided_at": request.decided_at_ms.and_then(rfc3339),
    });
    if let Some(out) = output.as_object_mut() {
        if let Value::Object(body) = &request.body {
            for (k, v) in body {
                out.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        if let Value::Object(extra) = extra {
            out.extend(extra);
        }
    }
    output
}

/// The number in `field` (a number, or a name of the people directory), else whoever wrote.
fn approver_number(input: &Value, field: &str, run: &RunContext) -> Result<WaId, AgentError> {
    match present(input.get(field)) {
        Some(text) => WaId::parse(&text)
            .or_else(|| {
                let wa = &run.services.config.platforms.whatsapp;
                Some(wa.canonical(wa.person(&text)?.wa()?))
            })
            .ok_or_else(|| {
                AgentError::input(
                    field,
                    format!("`{text}` is neither a phone number nor a person with one"),
                )
            }),
        None => run.user.as_ref().map(|p| p.wa.clone()).ok_or_else(|| {
            AgentError::input(
                field,
                "is missing, and no person started this run to default to",
            )
        }),
    }
}
