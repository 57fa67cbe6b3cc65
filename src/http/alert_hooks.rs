//! Alerts from Alertmanager, Datadog and PagerDuty on their way in: authenticated, parsed, mapped
//! (`ops::intake`), kept in the inbox and handled by [`inbox::handle`] (page, repeat, settle).
//! Answers once kept (503 when the store could not keep them); flows run on the actors.

use super::auth::webhook_token_ok;
use super::inbox::{self, Event, Handled};
use super::AppState;
use crate::flow::input::complete_and_check;
use crate::flow::LoadedFlow;
use crate::ops::datadog;
use crate::ops::intake::{self, Severity};
use crate::role::Leading;
use crate::wire::{alertmanager, pagerduty};
use actix_web::{web, HttpRequest, HttpResponse};
use aof_actors::InboxSeq;
use serde_json::{json, Map, Value};

fn invalid(field: &str, reason: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest()
        .json(json!({ "error": "invalid_field", "field": field, "reason": reason.to_string() }))
}

/// Handles an event just kept; `None` when the store did not answer: it stays kept and is
/// retried, and the answer says so. On a follower, [`Handled::Queued`]: the leader handles it.
async fn handled(leading: Option<&Leading>, seq: InboxSeq, event: Event) -> Option<Handled> {
    let Some(leading) = leading else {
        return Some(Handled::Queued);
    };
    match inbox::handle(leading, seq, &event).await {
        Ok(outcome) => Some(outcome),
        Err(e) => {
            tracing::warn!(error = %e, "a kept event cannot be handled yet; retrying");
            inbox::handle_later(leading.clone(), seq, event);
            None
        }
    }
}

/// An Alertmanager notification on a flow with a `type: alertmanager` trigger: one page per new
/// fingerprint, none for one already open (or being paged right now), and `resolved` alerts
/// resolved. Every alert is kept before the 202.
pub async fn alertmanager(
    state: &web::Data<AppState>,
    flow: &LoadedFlow,
    body: &[u8],
) -> HttpResponse {
    let notification: alertmanager::Notification = match serde_json::from_slice(body) {
        Ok(n) => n,
        Err(e) => return invalid("body", format!("not an Alertmanager notification: {e}")),
    };
    let (mut events, mut errors) = (Vec::new(), Vec::new());
    for alert in &notification.alerts {
        let mut input = intake::from_alertmanager(alert);
        let fields = complete_and_check(flow.flow.input.as_ref(), &mut input);
        if alert.status != "resolved" && !fields.is_empty() {
            errors.push(json!({ "fingerprint": alert.fingerprint, "fields": fields }));
            continue;
        }
        let key = format!("alertmanager:{}:{}", alert.fingerprint, alert.status);
        let event = Event::Alertmanager {
            flow: flow.stem.clone(),
            alert: alert.clone(),
        };
        events.push((event, key));
    }
    let entries = events
        .iter()
        .map(|(e, key)| e.entry(None, Some(key.clone())))
        .collect();
    let leading = state.leading();
    let kept = match inbox::keep(state.store_for(leading.as_ref()), entries).await {
        Ok(kept) => kept,
        Err(e) => return super::not_kept(e),
    };
    let (mut runs, mut resolved, mut duplicates, mut retrying, mut queued) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((event, _), seq) in events.into_iter().zip(kept) {
        let Event::Alertmanager { alert, .. } = &event else {
            continue;
        };
        let fingerprint = alert.fingerprint.clone();
        let Some(seq) = seq else {
            // The same alert is being handled right now (a second delivery of one group).
            duplicates.push(json!(fingerprint));
            continue;
        };
        match handled(leading.as_ref(), seq, event).await {
            Some(Handled::Started(run)) => runs.push(json!(run)),
            Some(Handled::Resolved(id)) => resolved.push(json!(id)),
            Some(Handled::Repeat(id)) => duplicates.push(json!(id)),
            Some(Handled::Queued) => queued.push(json!(fingerprint)),
            Some(Handled::Nothing | Handled::Answer(_)) => {}
            None => retrying.push(json!(fingerprint)),
        }
    }
    tracing::info!(
        runs = runs.len(),
        resolved = resolved.len(),
        duplicates = duplicates.len(),
        "Alertmanager notification"
    );
    let mut answer = json!({
        "flow": flow.name(), "runs": runs, "resolved": resolved, "duplicates": duplicates, "errors": errors,
        "truncated_alerts": notification.truncated_alerts,
    });
    if !retrying.is_empty() {
        answer["retrying"] = json!(retrying);
    }
    if !queued.is_empty() {
        // Kept by a replica that does not lead: the leader pages from the shared inbox.
        answer["queued"] = json!(queued);
    }
    HttpResponse::Accepted().json(answer)
}

/// `POST /whatsapp/datadog`: Datadog's webhook, whatever its payload template. Datadog does not
/// retry a 4xx, so an authenticated body is never refused: what the mapping cannot read (even a
/// body that is not JSON) pages as a warning saying so ([`datadog::read`]).
pub async fn datadog_webhook(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    if !webhook_token_ok(&req, &state) {
        return HttpResponse::Unauthorized().finish();
    }
    let Some(flow) = state.routes.flows().paging() else {
        tracing::error!(
            "a Datadog alert arrived and no flow takes alerts (a trigger of type alertmanager)"
        );
        return HttpResponse::ServiceUnavailable().json(
            json!({ "error": "no_paging_flow", "reason": "no flow has an alertmanager trigger" }),
        );
    };
    let fields = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        other => {
            let text = String::from_utf8_lossy(&body);
            let what = if other.is_ok() {
                "not a JSON object"
            } else {
                "not JSON"
            };
            let mut map = Map::new();
            map.insert(
                "message".into(),
                json!(text.chars().take(500).collect::<String>()),
            );
            map.insert(
                "alert_status".into(),
                json!(format!("(the body is {what})")),
            );
            map
        }
    };
    let reading = datadog::read(&fields);
    datadog(&state, &flow, reading.severity, reading.input).await
}

/// A Datadog alert (status words instead of severities): pages once per service until it
/// recovers. Kept before the 202.
pub async fn datadog(
    state: &web::Data<AppState>,
    flow: &LoadedFlow,
    severity: Severity,
    mut input: Map<String, Value>,
) -> HttpResponse {
    let resolves = severity == Severity::Resolved;
    let mut fields = complete_and_check(flow.flow.input.as_ref(), &mut input);
    if !resolves && !fields.is_empty() {
        // Datadog does not retry a 4xx: a field the flow cannot take is left out and the page
        // says so, rather than the alert being lost.
        let dropped: Vec<String> = fields.iter().map(|f| f.field.clone()).collect();
        for field in &dropped {
            input.remove(field);
        }
        let note = format!(
            "\n(left out, not what the flow takes: {})",
            dropped.join(", ")
        );
        if let Some(Value::String(message)) = input.get_mut("message") {
            message.push_str(&note);
        }
        tracing::warn!(fields = ?dropped, "Datadog fields the paging flow does not take were left out");
        fields = complete_and_check(flow.flow.input.as_ref(), &mut input);
    }
    if !resolves && !fields.is_empty() {
        return HttpResponse::BadRequest()
            .json(json!({ "error": "invalid_input", "fields": fields }));
    }
    let fingerprint = input
        .get("fingerprint")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let event = Event::Datadog {
        flow: flow.stem.clone(),
        resolves,
        input,
    };
    let key = format!("datadog:{fingerprint}:{resolves}");
    let leading = state.leading();
    let store = state.store_for(leading.as_ref());
    let seq = match inbox::keep(store, vec![event.entry(None, Some(key))]).await {
        Ok(kept) => kept.into_iter().next().flatten(),
        Err(e) => return super::not_kept(e),
    };
    let Some(seq) = seq else {
        return HttpResponse::Accepted()
            .json(json!({ "flow": flow.name(), "duplicates": [fingerprint] }));
    };
    let flow = flow.name();
    let answer = match handled(leading.as_ref(), seq, event).await {
        Some(Handled::Started(run)) => json!({ "run_id": run, "flow": flow }),
        Some(Handled::Queued) => json!({ "flow": flow, "queued": [fingerprint] }),
        Some(Handled::Resolved(id)) => json!({ "flow": flow, "resolved": [id] }),
        Some(Handled::Repeat(id)) => json!({ "flow": flow, "duplicates": [id] }),
        Some(Handled::Nothing | Handled::Answer(_)) => json!({ "flow": flow, "resolved": [] }),
        None => json!({ "flow": flow, "retrying": true }),
    };
    HttpResponse::Accepted().json(answer)
}

/// `POST /whatsapp/pagerduty`: PagerDuty's V3 webhook, authenticated, kept (its event id is the
/// dedup key: PagerDuty delivers at least once) and handled ([`inbox::handle`]).
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
    tracing::info!(event = %event.event_type, incident = %event.data.id, "PagerDuty webhook");
    let once = format!("pagerduty:{}", event.id);
    let event = Event::Pagerduty { event };
    let leading = state.leading();
    let store = state.store_for(leading.as_ref());
    let seq = match inbox::keep(store, vec![event.entry(Some(once), None)]).await {
        Ok(kept) => kept.into_iter().next().flatten(),
        Err(e) => return super::not_kept(e),
    };
    match seq {
        Some(seq) => HttpResponse::Ok().json(match handled(leading.as_ref(), seq, event).await {
            Some(Handled::Started(run)) => json!({ "run_id": run }),
            Some(Handled::Queued) => json!({ "queued": true }),
            Some(Handled::Answer(outcome)) => outcome,
            Some(_) => json!({}),
            None => json!({ "retrying": true }),
        }),
        None => HttpResponse::Ok().json(json!({ "duplicate": true })),
    }
}
