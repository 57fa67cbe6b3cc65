//! Alerts from Alertmanager, Datadog and PagerDuty on their way in: mapped to the paging flow's
//! input, deduplicated against open alerts (fingerprint, PagerDuty incident id), resolved when the
//! source says so, and whoever was paged told. Answers at once; flows run on the actors.

use super::auth::webhook_token_ok;
use super::AppState;
use crate::alert_intake::{self, Severity};
use crate::flow::input::complete_and_check;
use crate::flow::LoadedFlow;
use crate::store::{AlertRecord, AlertState, TransitionOutcome};
use crate::wire::{alertmanager, pagerduty};
use actix_web::{web, HttpRequest, HttpResponse};
use aof_actors::model::{Lane, OutboundMessage};
use aof_actors::{WaId, Wamid};
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn invalid(field: &str, reason: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest()
        .json(json!({ "error": "invalid_field", "field": field, "reason": reason.to_string() }))
}

/// Sends a line to everyone who was paged about `alert`.
async fn tell_paged(state: &AppState, alert: &AlertRecord, text: String) {
    for phone in &alert.paged {
        let Some(to) = WaId::parse(phone) else {
            continue;
        };
        let message = OutboundMessage::text(to, text.clone(), Lane::Alert)
            .about(Some(json!({ "alert_id": alert.id })))
            .flow(format!("{}-sync", alert.source.as_str()));
        if let Err(e) = state.handle.send(message).await {
            tracing::error!(alert = %alert.id, error = %e, "could not tell a paged person");
        }
    }
}

/// Moves an open alert to `to` because its source said so, and tells whoever was paged.
async fn settle(state: &AppState, alert: AlertRecord, to: AlertState, actor: &str) -> bool {
    match state.store.transition(&alert.id, to, Some(actor)).await {
        Ok(TransitionOutcome::Moved(alert)) => {
            let verb = if to == AlertState::Resolved {
                "✅ Resolved"
            } else {
                "👀 Acknowledged"
            };
            tell_paged(
                state,
                &alert,
                format!("{verb} by {actor}\n\n{}", alert.title()),
            )
            .await;
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::error!(alert = %alert.id, error = %e, "could not update an alert from its source");
            false
        }
    }
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
        match (alert.status.as_str(), open) {
            ("resolved", Some(open)) => {
                let id = open.id.clone();
                settle(state, open, AlertState::Resolved, "Alertmanager").await;
                resolved.push(id);
            }
            ("resolved", None) => {}
            (_, Some(open)) => duplicates.push(open.id),
            (_, None) => match start(state, flow, alert_intake::from_alertmanager(alert)) {
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
    match (severity, open) {
        (Severity::Resolved, Some(open)) => {
            let id = open.id.clone();
            settle(state, open, AlertState::Resolved, "Datadog").await;
            HttpResponse::Accepted().json(json!({ "flow": flow.name(), "resolved": [id] }))
        }
        (Severity::Resolved, None) => {
            HttpResponse::Accepted().json(json!({ "flow": flow.name(), "resolved": [] }))
        }
        (_, Some(open)) => {
            HttpResponse::Accepted().json(json!({ "flow": flow.name(), "duplicates": [open.id] }))
        }
        (_, None) => match start(state, flow, input) {
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
            Some(flow) => {
                let severity = if incident.urgency.as_deref() == Some("low") {
                    "warning"
                } else {
                    "critical"
                };
                let service = incident
                    .service
                    .as_ref()
                    .map(|s| s.summary.clone())
                    .unwrap_or_else(|| "pagerduty".into());
                let mut input = Map::new();
                input.insert("severity".into(), json!(severity));
                input.insert("service".into(), json!(service));
                input.insert("message".into(), json!(incident.title));
                input.insert("pagerduty_incident_id".into(), json!(incident.id));
                input.insert("source".into(), json!("pagerduty"));
                if let Some(url) = &incident.html_url {
                    input.insert("runbook_url".into(), json!(url));
                }
                match start(&state, &flow, input) {
                    Ok(run) => json!({ "run_id": run }),
                    Err(fields) => {
                        return HttpResponse::BadRequest()
                            .json(json!({ "error": "invalid_input", "fields": fields }))
                    }
                }
            }
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
            tell_paged(
                &state,
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
