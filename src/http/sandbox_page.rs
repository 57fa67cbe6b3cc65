//! The sandbox chat page (only with `transport: sandbox`): a chat app in the browser where a newcomer
//! types as any person of the config and sees the bot answer live, fires the tutorial's scenarios,
//! and watches flow runs, the send queue and pending timers.
//!
//! The page is three static files embedded in the binary (no CDN, no front-end build). It reads
//! [`setup`] once, then follows [`events`], a server-sent-event stream of the [`Live`] hub: the
//! recent history first, then every event as it happens. What it does goes through the real
//! endpoints: `sandbox/inbound` for typing, the flow webhooks with the bearer token for scenarios,
//! `admin/timers/fire` for fast-forwarding.

use super::AppState;
use crate::config::WhatsAppConfig;
use crate::live::{Live, Numbered};
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use aof_actors::WaId;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

const INDEX: &str = include_str!("../../assets/sandbox/index.html");

/// The page's other files, by name, with their content type.
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/sandbox/app.js"),
    ),
    (
        "panel.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/sandbox/panel.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/sandbox/app.css"),
    ),
];

/// A comment line sent when nothing happened for this long, so proxies keep the stream open.
const KEEPALIVE: Duration = Duration::from_secs(15);

fn embedded(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// `GET /sandbox/`: the page.
pub async fn index(state: web::Data<AppState>) -> HttpResponse {
    match state.live {
        Some(_) => embedded("text/html; charset=utf-8", INDEX),
        None => not_sandbox(),
    }
}

/// `GET /sandbox/{file}`: the page's scripts and style sheet.
pub async fn asset(file: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    if state.live.is_none() {
        return not_sandbox();
    }
    match ASSETS.iter().find(|(name, _, _)| *name == file.as_str()) {
        Some((_, content_type, body)) => embedded(content_type, body),
        None => HttpResponse::NotFound().json(json!({ "error": "not_found", "file": *file })),
    }
}

/// `GET /` and `GET /sandbox`: to the page, when there is one.
pub async fn to_page(state: web::Data<AppState>) -> HttpResponse {
    if state.live.is_none() {
        return HttpResponse::NotFound().json(json!({ "error": "not_found", "path": "/" }));
    }
    let location = format!("{}/sandbox/", state.config.server.base_path);
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .finish()
}

fn not_sandbox() -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": "not_found",
        "reason": "the sandbox page exists only with platforms.whatsapp.transport: sandbox",
    }))
}

/// One person of the page's people list.
#[derive(Debug, Serialize, PartialEq)]
pub struct PagePerson {
    /// `+` and digits.
    pub phone: String,
    /// The name the config gives them.
    pub name: String,
    /// What they are in the config: on call (with hours), approver, group member.
    pub roles: Vec<String>,
}

/// Everyone the config names with a number: the people directory, the on-call rota, the fallback
/// number, group members; each once, with what they are.
pub fn people(whatsapp: &WhatsAppConfig) -> Vec<PagePerson> {
    let mut found: BTreeMap<String, PagePerson> = BTreeMap::new();
    let mut order = Vec::new();
    let mut add = |phone: &str, name: Option<&str>, role: Option<String>| {
        let Some(wa) = WaId::parse(phone) else {
            return;
        };
        let phone = wa.e164();
        let person = found.entry(phone.clone()).or_insert_with(|| {
            order.push(phone.clone());
            PagePerson {
                name: whatsapp.name_of(&wa).unwrap_or_else(|| phone.clone()),
                phone,
                roles: Vec::new(),
            }
        });
        if let Some(name) = name.filter(|_| person.name == person.phone) {
            person.name = name.to_owned();
        }
        if let Some(role) = role.filter(|r| !person.roles.contains(r)) {
            person.roles.push(role);
        }
    };
    for p in &whatsapp.people {
        if let Some(phone) = &p.phone {
            add(phone, Some(&p.name), None);
        }
    }
    for entry in &whatsapp.oncall.static_oncall {
        let hours = match (&entry.hours, &entry.timezone) {
            (Some(h), Some(tz)) => format!("on call {h} {tz}"),
            (Some(h), None) => format!("on call {h} UTC"),
            _ => "on call".to_owned(),
        };
        add(&entry.phone, Some(&entry.name), Some(hours));
    }
    if let Some(fallback) = &whatsapp.oncall.fallback_number {
        add(fallback, None, Some("paged when nobody is on call".into()));
    }
    for (environment, rule) in &whatsapp.approvals.environments {
        let names = rule
            .approvers
            .iter()
            .chain(rule.services.values().flatten());
        for name in names {
            if let Some(phone) = whatsapp.person(name).and_then(|p| p.phone.as_deref()) {
                let scope = if environment == "*" {
                    "approves deployments".to_owned()
                } else {
                    format!("approves {environment}")
                };
                add(phone, None, Some(scope));
            }
        }
    }
    for (group, members) in &whatsapp.groups {
        for member in members {
            add(member, None, Some(group.clone()));
        }
    }
    order
        .into_iter()
        .filter_map(|phone| found.remove(&phone))
        .collect()
}

/// `GET /sandbox/setup`: who is in the config, the groups, the scenarios and the webhook token.
/// The token is shown because the scenarios call the real endpoints with it; the page exists only
/// on the sandbox transport.
pub async fn setup(state: web::Data<AppState>) -> HttpResponse {
    if state.live.is_none() {
        return not_sandbox();
    }
    let config = &state.config;
    let whatsapp = &config.platforms.whatsapp;
    let groups: Vec<Value> = whatsapp
        .groups
        .iter()
        .map(|(name, members)| {
            let members: Vec<String> = members
                .iter()
                .filter_map(|m| WaId::parse(m).map(|w| w.e164()))
                .collect();
            json!({ "name": name, "members": members })
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "bot": "aof",
        "base_path": config.server.base_path,
        "token": config.server.webhook_token.as_ref().map(|t| t.expose()),
        "people": people(whatsapp),
        "groups": groups,
        "scenarios": scenarios(&state),
    }))
}

/// The tutorial's scenarios, for the flows this config has: a critical alert for whoever is on
/// call, the same through Alertmanager's webhook, a deployment approval request.
fn scenarios(state: &AppState) -> Vec<Value> {
    let flows = state.routes.flows();
    let base = &state.config.server.base_path;
    let path_of = |name: &str| {
        let flow = flows.get(name)?;
        let path = flow.webhook_paths().next()?;
        Some(format!("{base}/whatsapp{path}"))
    };
    let now = chrono::Utc::now();
    let mut list = Vec::new();
    if let Some(path) = path_of("send-oncall-alert-flow") {
        list.push(json!({
            "id": "critical-alert", "label": "Critical alert",
            "description": "The tutorial's test alert: the on-call engineer gets ops_alert; unacknowledged, it escalates after 300 s.",
            "method": "POST", "path": path,
            "body": { "severity": "critical", "service": "api-server",
                "message": "High latency detected (>500ms)",
                "runbook_url": "https://runbooks.example.com/api-latency" },
        }));
        list.push(json!({
            "id": "alertmanager", "label": "Alertmanager notification",
            "description": "A firing alert as Prometheus Alertmanager posts it (webhook v4); a new fingerprint per page load.",
            "method": "POST", "path": path,
            "body": alertmanager_body(now),
        }));
    }
    if let Some(path) = path_of("deployment-approval-flow") {
        list.push(json!({
            "id": "deploy-approval", "label": "Deployment approval",
            "description": "api v2.1.0 to production: the approvers are asked; APPROVE runs the deployment.",
            "method": "POST", "path": path,
            "body": { "service": "api", "version": "v2.1.0", "environment": "production",
                "requester": "alice@example.com",
                "changes_url": "https://github.com/org/api/compare/v2.0.0...v2.1.0" },
        }));
    }
    list
}

fn alertmanager_body(now: chrono::DateTime<chrono::Utc>) -> Value {
    let fingerprint = format!("{:016x}", now.timestamp_micros());
    let labels = json!({ "alertname": "HighErrorRate", "service": "payments-api",
        "severity": "critical", "cluster": "prod-eu-west-1", "instance": "10.2.3.14:9102" });
    json!({
        "version": "4", "status": "firing", "receiver": "whatsapp-oncall",
        "groupKey": "{}:{alertname=\"HighErrorRate\"}", "truncatedAlerts": 0,
        "groupLabels": { "alertname": "HighErrorRate" },
        "commonLabels": labels, "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": [{
            "status": "firing", "labels": labels,
            "annotations": { "summary": "5xx ratio above 5% on payments-api",
                "description": "10.2.3.14:9102 served 5.2% 5xx over the last 5m",
                "runbook_url": "https://runbooks.example.com/payments/high-error-rate" },
            "startsAt": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.com:9090/graph",
            "fingerprint": fingerprint,
        }],
    })
}

/// `GET /sandbox/state`: the send queue, live sessions and pending timers, read when events say
/// something changed.
pub async fn state(state: web::Data<AppState>) -> HttpResponse {
    if state.live.is_none() {
        return not_sandbox();
    }
    let Some(leading) = state.leading() else {
        return super::admin::not_leader(&state);
    };
    let now = aof_actors::model::now_ms();
    let (queue, sessions, timers, covers, silences) = tokio::join!(
        leading.handle.queue_stats(),
        leading.handle.sessions(),
        leading.handle.timers(),
        state.store.covers_at(now),
        state.store.silences_at(now)
    );
    // What COVER and SILENCE set, as the side panel shows them (empty when the store cannot say).
    let covers: Vec<_> = covers
        .unwrap_or_default()
        .into_iter()
        .map(|c| json!({ "name": c.name, "until_ms": c.until_ms }))
        .collect();
    let silences: Vec<_> = silences
        .unwrap_or_default()
        .into_iter()
        .map(|s| json!({ "service": s.service, "until_ms": s.until_ms, "held": s.held }))
        .collect();
    HttpResponse::Ok().json(
        json!({ "queue": queue, "sessions": sessions, "timers": timers,
        "covers": covers, "silences": silences }),
    )
}

/// `GET /sandbox/events`: a `hello` naming the last event's number, the recent history after the
/// request's `Last-Event-ID` (all of it without one), then every event as it happens, as
/// server-sent events (`id: <number>`, `event: <type>`, `data: <json>`). Numbers go on across
/// restarts, so a page that reconnects is sent only what it has not seen; a `hello` whose number is
/// below the page's last tells it the history was lost. A subscriber that falls too far behind is
/// closed; the browser reconnects and asks for what it missed.
pub async fn events(req: actix_web::HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(live) = &state.live else {
        return not_sandbox();
    };
    let seen = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(event_stream(live, seen))
}

fn event_stream(
    live: &Live,
    seen: u64,
) -> impl Stream<Item = Result<web::Bytes, actix_web::Error>> {
    let (history, rx) = live.subscribe();
    let last = history.last().map_or(0, |n| n.seq);
    let hello = serde_json::json!({ "type": "hello", "last_seq": last });
    let mut replay = format!("retry: 1000\n\nevent: hello\ndata: {hello}\n\n");
    // A page that saw more than this hub knows was fed by a store since lost: it gets everything.
    let after = if seen > last { 0 } else { seen };
    for numbered in history.iter().filter(|n| n.seq > after) {
        replay.push_str(&frame(numbered));
    }
    let first = stream::once(async move { Ok(web::Bytes::from(replay)) });
    let rest = stream::unfold(rx, |mut rx| async move {
        let bytes = match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
            Err(_elapsed) => web::Bytes::from_static(b": keepalive\n\n"),
            Ok(Ok(numbered)) => web::Bytes::from(frame(&numbered)),
            Ok(Err(RecvError::Lagged(missed))) => {
                tracing::debug!(missed, "a sandbox page fell behind; closing its stream");
                return None;
            }
            Ok(Err(RecvError::Closed)) => return None,
        };
        Some((Ok(bytes), rx))
    });
    first.chain(rest)
}

/// One server-sent event: its number as the id, its type as the event name, the whole event as
/// JSON data (with `seq`).
fn frame(numbered: &Numbered) -> String {
    let mut data = serde_json::to_value(&numbered.event).unwrap_or_default();
    data["seq"] = numbered.seq.into();
    let name = data["type"].as_str().unwrap_or("message").to_owned();
    format!("id: {}\nevent: {name}\ndata: {data}\n\n", numbered.seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LiveEvent;

    #[test]
    fn a_frame_names_the_event_and_carries_it_on_one_line() {
        let event = LiveEvent::Status {
            wamid: "wamid.1".into(),
            status: "read".into(),
            at: "2026-11-26T22:00:00.000Z".into(),
        };
        let text = frame(&Numbered { seq: 7, event });
        assert!(text.starts_with("id: 7\nevent: status\ndata: {"), "{text}");
        assert!(text.contains("\"seq\":7"), "{text}");
        assert!(text.ends_with("}\n\n"), "{text}");
        assert_eq!(text.lines().count(), 4, "{text}");
    }
}
