//! Liveness, readiness and Prometheus metrics; on replicas, who leads.

use super::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// `GET /healthz`: the process answers; says whether this replica leads and who does.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let role = if state.role.leading().is_some() {
        "leader"
    } else {
        "follower"
    };
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "role": role,
        "leader": state.role.leader(),
    }))
}

/// `GET /readyz`: the store takes writes and flows are loaded, so this replica can take webhooks
/// (a follower too: it keeps them for the leader); also, on the leader, how many conversations
/// are live and how many messages wait, for a quick look.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = state.store.writable().await;
    let flows = state.routes.flows().len();
    let mut body = json!({ "store": store, "flows": flows });
    match state.leading() {
        Some(leading) => {
            let queue = leading.handle.queue_stats().await;
            body["role"] = json!("leader");
            body["sessions"] = json!(leading.handle.sessions().await);
            body["queued"] = json!(queue.queued);
            body["in_flight"] = json!(queue.in_flight);
        }
        None => body["role"] = json!("follower"),
    }
    if store && flows > 0 {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Some(leading) = state.leading() {
        let stats = leading.handle.queue_stats().await;
        metrics::gauge!("aof_queue_depth").set(stats.queued as f64);
        metrics::gauge!("aof_sends_in_flight").set(stats.in_flight as f64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
