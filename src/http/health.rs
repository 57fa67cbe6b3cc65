//! Liveness, readiness and Prometheus metrics.

use super::AppState;
use actix_web::{web, HttpResponse};

/// `GET /healthz`: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// `GET /readyz`: the store takes writes and flows are loaded; also how many conversations are live and
/// how many messages wait, for a quick look.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = state.store.writable().await;
    let flows = state.engine.flows().len();
    let sessions = state.handle.sessions().await;
    let queue = state.handle.queue_stats().await;
    let body = serde_json::json!({
        "store": store, "flows": flows, "sessions": sessions,
        "queued": queue.queued, "in_flight": queue.in_flight,
    });
    if store && flows > 0 {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let stats = state.handle.queue_stats().await;
    metrics::gauge!("aof_queue_depth").set(stats.queued as f64);
    metrics::gauge!("aof_sends_in_flight").set(stats.in_flight as f64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
