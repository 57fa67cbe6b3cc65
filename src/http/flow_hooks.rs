//! Flows started over HTTP: a flow's `triggers: - type: webhook, path: P` is served at
//! `{base_path}/whatsapp{P}` and at `P` itself (the tutorial uses both). The JSON body is the flow's
//! input, checked against its schema and kept in the inbox before anything runs; the answer is 202
//! with the run id (503 when it could not be kept; 200 `duplicate` for a repeated
//! `Idempotency-Key`).
//! A flow with a `type: alertmanager` trigger also takes Alertmanager's and Datadog's payloads on
//! the same endpoint ([`super::alert_hooks`]).

use super::alert_hooks;
use super::auth::webhook_token_ok;
use super::inbox::{self, Event};
use super::sandbox::Watch;
use super::AppState;
use crate::flow::input::complete_and_check;
use crate::ops::datadog;
use crate::wire::alertmanager;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

/// How long a webhook's answer waits for the ids of the records its run creates.
const RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The flow whose webhook trigger serves `path`, if any.
fn flow_for(state: &AppState, path: &str) -> Option<std::sync::Arc<crate::flow::LoadedFlow>> {
    let base = &state.config.server.base_path;
    let prefixed = format!("{base}/whatsapp");
    let candidates = [
        Some(path),
        path.strip_prefix(prefixed.as_str()),
        path.strip_prefix(base.as_str()),
    ];
    let flows = state.routes.flows();
    let found = flows
        .iter()
        .find(|f| f.webhook_paths().any(|p| candidates.contains(&Some(p))))
        .cloned();
    found
}

/// Every request no other route took: a flow webhook, or 404.
pub async fn dispatch(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(flow) = flow_for(&state, req.path()) else {
        return HttpResponse::NotFound().json(json!({ "error": "not_found", "path": req.path() }));
    };
    if req.method() != Method::POST {
        return HttpResponse::MethodNotAllowed()
            .json(json!({ "error": "method_not_allowed", "allowed": "POST" }));
    }
    if !webhook_token_ok(&req, &state) {
        return HttpResponse::Unauthorized().finish();
    }
    let mut input = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return bad(vec![
                json!({ "field": "body", "reason": "expected a JSON object" }),
            ])
        }
        Err(e) => {
            return bad(vec![
                json!({ "field": "body", "reason": format!("not valid JSON: {e}") }),
            ])
        }
    };
    if flow.takes_alertmanager() {
        if alertmanager::is_notification(&Value::Object(input.clone())) {
            return alert_hooks::alertmanager(&state, &flow, &body).await;
        }
        let plain = matches!(
            input.get("severity").and_then(Value::as_str),
            Some("critical" | "warning" | "info")
        );
        // Datadog's bodies (its words, tags or default keys) are read leniently; anything else
        // keeps the tutorial's strict schema.
        if !plain && datadog::looks_like_datadog(&input) {
            let reading = datadog::read(&input);
            return alert_hooks::datadog(&state, &flow, reading.severity, reading.input).await;
        }
    }
    let errors = complete_and_check(flow.flow.input.as_ref(), &mut input);
    if !errors.is_empty() {
        return bad(errors
            .into_iter()
            .map(|e| json!({ "field": e.field, "reason": e.reason }))
            .collect());
    }
    let run_id = aof_actors::RunId::new();
    // A caller that retries with the same `Idempotency-Key` starts the flow once.
    let once = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|key| format!("flow:{}:{key}", flow.stem));
    let event = Event::Flow {
        flow: flow.stem.clone(),
        run_id: run_id.0.clone(),
        input: input.clone(),
    };
    let leading = state.leading();
    let store = state.store_for(leading.as_ref());
    let seq = match inbox::keep(store, vec![event.entry(once, None)]).await {
        Ok(kept) => kept.into_iter().next().flatten(),
        Err(e) => return super::not_kept(e),
    };
    let Some(seq) = seq else {
        return HttpResponse::Ok().json(json!({ "flow": flow.name(), "duplicate": true }));
    };
    let Some(leading) = leading else {
        // The leader takes the kept row from the inbox and runs it with this run id.
        tracing::info!(flow = flow.name(), run_id = %run_id, "flow kept for the leader to start");
        return HttpResponse::Accepted()
            .json(json!({ "run_id": run_id, "flow": flow.name(), "queued": true }));
    };
    tracing::info!(flow = flow.name(), run_id = %run_id, "flow started by webhook");
    // In the sandbox, `?wait=SECONDS` answers once the run ended and its sends are out.
    let watch = Watch::requested(&req, &state);
    let records = leading.handle.run_flow_reporting(
        run_id.clone(),
        flow.stem.clone(),
        Value::Object(input),
        Some(seq),
    );
    // The answer names what the run created (alert_id, request_id) when that comes quickly; a slow
    // step (a health check, PagerDuty) does not hold the caller longer than this.
    let wait_until = match &watch {
        Some((_, deadline)) => *deadline,
        None => tokio::time::Instant::now() + RECORD_WAIT,
    };
    let created = tokio::time::timeout_at(wait_until, records)
        .await
        .ok()
        .and_then(Result::ok);
    let ended = created.is_some();
    let mut answer = json!({ "run_id": run_id, "flow": flow.name() });
    if let (Some(Value::Object(ids)), Some(out)) = (created, answer.as_object_mut()) {
        out.extend(ids);
    }
    if let Some((watch, deadline)) = watch {
        let (settled, sent) = watch.until(&state, deadline, None).await;
        answer["done"] = json!(ended && settled);
        answer["sent"] = json!(sent);
    }
    HttpResponse::Accepted().json(answer)
}

fn bad(errors: Vec<Value>) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": "invalid_input", "fields": errors }))
}
