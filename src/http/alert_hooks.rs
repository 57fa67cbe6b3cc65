//! Alerts from Alertmanager, Datadog and PagerDuty on their way in: authenticated, parsed, mapped
//! (`ops::intake`) and handed to the rules of `ops::alerts` (page, repeat, settle). Answers at
//! once; flows run on the actors.

use super::auth::webhook_token_ok;
use super::AppState;
use crate::flow::input::complete_and_check;
use crate::flow::LoadedFlow;
use crate::ops::alerts::{self, Arrival};
use crate::ops::intake::{self, Severity};
use crate::store::{AlertRecord, AlertState};
use crate::wire::{alertmanager, pagerduty};
use actix_web::{web, HttpRequest, HttpResponse};
use aof_actors::Wamid;
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn invalid(field: &str, reason: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest()
        .json(json!({ "error": "invalid_field", "field": field, "reason": reason.to_string() }))
}

/// [`alerts::settle`] with the app's store and actors.
async fn settle(state: &AppState, alert: AlertRecord, to: AlertState, actor: &str) -> bool {
    alerts::settle(state.store.as_ref(), &state.handle, alert, to, actor).await
}

/// Starts the paging flow for one alert after checking its input; the run id, or the bad fields.
fn start(
    state: &AppState,
    flow: &LoadedFlow,
    mut input: Map<String, Value>,
) -> Result<String, Value> {
    let errors = complete_and_check(flow.flow.input.as_ref(), &mut input);
    if !errors.is_empty() {
        return Err(json!(errors));
    }
    let run_id = aof_actors::RunId::new();
    state
        .handle
        .run_flow(run_id.clone(), flow.stem.clone(), Value::Object(input));
    Ok(run_id.0)
}

/// An Alertmanager notification on a flow with a `type: alertmanager` trigger: one page per new
/// fingerprint, none for one already open, and `resolved` alerts resolved.
pub async fn alertmanager(state: &AppState, flow: &LoadedFlow, body: &[u8]) -> HttpResponse {
    let notification: alertmanager::Notification = match serde_json::from_slice(body) {
        Ok(n) => n,
        Err(e) => return invalid("body", format!("not an Alertmanager notification: {e}")),
    };
    let (mut runs, mut resolved, mut duplicates, mut errors) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for alert in &notification.alerts {
        let open = match state.store.find_by_fingerprint(&alert.fingerprint).await {
            Ok(open) => open,
            Err(_) => return HttpResponse::ServiceUnavailable().finish(),
        };
        match Arrival::of(alert.status == "resolved", open) {
            Arrival::Resolve(open) => {
                let id = open.id.clone();
                settle(state, open, AlertState::Resolved, "Alertmanager").await;
                resolved.push(id);
            }
            Arrival::Nothing => {}
            Arrival::Repeat(open) => duplicates.push(open.id),
            Arrival::Page => match start(state, flow, intake::from_alertmanager(alert)) {
                Ok(run) => runs.push(run),
                Err(e) => errors.push(json!({ "fingerprint": alert.fingerprint, "fields": e })),
            },
        }
    }
    tracing::info!(
        runs = runs.len(),
        resolved = resolved.len(),
        duplicates = duplicates.len(),
        "Alertmanager notification"
    );
    HttpResponse::Accepted().json(json!({
        "flow": flow.name(), "runs": runs, "resolved": resolved, "duplicates": duplicates, "errors": errors,
        "truncated_alerts": notification.truncated_alerts,
    }))
}

/// A Datadog alert (status words instead of severities): pages once per service until it recovers.
pub async fn datadog(
    state: &AppState,
    flow: &LoadedFlow,
    severity: Severity,
    input: Map<String, Value>,
) -> HttpResponse {
    let fingerprint = input
        .get("fingerprint")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let open = match state.store.find_by_fingerprint(&fingerprint).await {
        Ok(open) => open,
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    };
    match Arrival::of(severity == Severity::Resolved, open) {
        Arrival::Resolve(open) => {
            let id = open.id.clone();
            settle(state, open, AlertState::Resolved, "Datadog").await;
            HttpResponse::Accepted().json(json!({ "flow": flow.name(), "resolved": [id] }))
        }
        Arrival::Nothing => {
            HttpResponse::Accepted().json(json!({ "flow": flow.name(), "resolved": [] }))
        }
        Arrival::Repeat(open) => {
            HttpResponse::Accepted().json(json!({ "flow": flow.name(), "duplicates": [open.id] }))
        }
        Arrival::Page => match start(state, flow, input) {
            Ok(run) => HttpResponse::Accepted().json(json!({ "run_id": run, "flow": flow.name() })),
            Err(fields) => HttpResponse::BadRequest()
                .json(json!({ "error": "invalid_input", "fields": fields })),
        },
    }
}

/// The flow that pages for alerts from other systems: the first with a `type: alertmanager` trigger.
fn paging_flow(state: &AppState) -> Option<Arc<LoadedFlow>> {
    state
        .engine
        .flows()
        .iter()
        .find(|f| f.takes_alertmanager())
        .cloned()
}

/// `POST /whatsapp/pagerduty`: PagerDuty's V3 webhook. Keeps the alert record in step with the
/// incident; never calls PagerDuty back, so nothing echoes.
pub async fn pagerduty(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    if !webhook_token_ok(&req, &state) {
        return HttpResponse::Unauthorized().finish();
    }
    if let Some(secret) = &state
        .config
        .platforms
        .whatsapp
        .oncall
        .pagerduty_webhook_secret
    {
        let header = req
            .headers()
            .get("x-pagerduty-signature")
            .and_then(|h| h.to_str().ok());
        if !pagerduty::verify_signature(secret.expose().as_bytes(), &body, header) {
            tracing::warn!("PagerDuty webhook with a missing or wrong signature refused");
            return HttpResponse::Unauthorized().finish();
        }
    }
    let delivery: pagerduty::Delivery = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(e) => return invalid("event", format!("not a PagerDuty V3 webhook: {e}")),
    };
    let event = delivery.event;
    // PagerDuty delivers at least once: its event ids share the dedup table with Meta's message ids.
    match state
        .store
        .first_seen(vec![Wamid(format!("pagerduty:{}", event.id))])
        .await
    {
        Ok(seen) if seen.first() == Some(&false) => {
            return HttpResponse::Ok().json(json!({ "duplicate": true }))
        }
        Ok(_) => {}
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    }
    let incident = &event.data;
    let open = match state.store.find_by_pagerduty(&incident.id).await {
        Ok(open) => open,
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    };
    let actor = event
        .agent
        .as_ref()
        .map(|a| format!("{} (PagerDuty)", a.summary))
        .unwrap_or_else(|| "PagerDuty".into());
    let outcome = match (event.event_type.as_str(), open) {
        ("incident.triggered", None) => match paging_flow(&state) {
            Some(flow) => match start(&state, &flow, intake::from_pagerduty(incident)) {
                Ok(run) => json!({ "run_id": run }),
                Err(fields) => {
                    return HttpResponse::BadRequest()
                        .json(json!({ "error": "invalid_input", "fields": fields }))
                }
            },
            None => json!({ "ignored": "no flow has a type: alertmanager trigger to page with" }),
        },
        ("incident.acknowledged", Some(open)) => {
            json!({ "acknowledged": settle(&state, open, AlertState::Acknowledged, &actor).await })
        }
        ("incident.resolved", Some(open)) => {
            json!({ "resolved": settle(&state, open, AlertState::Resolved, &actor).await })
        }
        ("incident.escalated" | "incident.reassigned", Some(open)) => {
            let to: Vec<&str> = incident
                .assignees
                .iter()
                .map(|a| a.summary.as_str())
                .collect();
            alerts::tell_paged(
                &state.handle,
                &open,
                format!(
                    "⬆️ Escalated in PagerDuty (now with {})\n\n{}",
                    to.join(", "),
                    open.title()
                ),
            )
            .await;
            json!({ "escalated": open.id })
        }
        (other, _) => json!({ "ignored": other }),
    };
    tracing::info!(event = %event.event_type, incident = %incident.id, "PagerDuty webhook");
    HttpResponse::Ok().json(outcome)
}
