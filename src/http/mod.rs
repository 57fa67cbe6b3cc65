//! The HTTP surface (actix-web), everything under `server.base_path`:
//! - [`webhook`]: Meta's verification handshake and signed notifications;
//! - [`flow_hooks`]: flows with `type: webhook` triggers, behind the bearer token;
//! - [`alert_hooks`]: Alertmanager, Datadog and PagerDuty alerts, deduplicated and kept in step;
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`;
//! - [`sandbox`]: the sandbox transport's inbound, status and outbox endpoints;
//! - [`sandbox_page`]: the sandbox chat page and its live event stream;
//! - [`admin`]: pending timers, and firing them early (bearer token).
//!
//! Handlers verify and parse, hand the work to the actors, and answer at once; they never call
//! Meta or PagerDuty themselves.

pub mod admin;
pub mod alert_hooks;
pub mod auth;
pub mod body_timeout;
pub mod flow_hooks;
pub mod health;
pub mod inbox;
pub mod quotes;
pub mod sandbox;
pub mod sandbox_page;
pub mod webhook;

use crate::config::Config;
use crate::role::{Leading, Role};
use crate::store::Repositories;
use crate::transport::SandboxOutbox;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// What every handler can reach.
pub struct AppState {
    /// The loaded config.
    pub config: Arc<Config>,
    /// Whether this replica leads (runs the actors) or only keeps what arrives.
    pub role: Arc<Role>,
    /// Durable state as a follower writes it (readiness, keeping); a leader writes through
    /// [`Leading::store`].
    pub store: Arc<dyn Repositories>,
    /// Where messages go (what a reply's command routes to), and the flows now loaded.
    pub routes: std::sync::Arc<crate::flow::Routes>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// What the sandbox sent, when the transport is the sandbox.
    pub outbox: Option<SandboxOutbox>,
    /// What happens as it happens, for the sandbox page (sandbox transport only).
    pub live: Option<crate::live::Live>,
}

impl AppState {
    /// What this replica leads with, when it leads; a handler reads it once, so that a takeover
    /// in the middle of a request does not change how that request is kept and handled.
    pub fn leading(&self) -> Option<Leading> {
        self.role.leading().cloned()
    }

    /// The store `leading` keeps with: the leader's own, or the follower's.
    pub fn store_for<'a>(&'a self, leading: Option<&'a Leading>) -> &'a Arc<dyn Repositories> {
        leading.map_or(&self.store, |l| &l.store)
    }
}

/// 503 with `Retry-After`: the request's work could not be stored, so nothing was accepted and the
/// sender must send it again (Meta, Alertmanager and PagerDuty do).
pub fn not_kept(reason: impl std::fmt::Display) -> actix_web::HttpResponse {
    actix_web::HttpResponse::ServiceUnavailable()
        .insert_header(("Retry-After", "5"))
        .json(serde_json::json!({ "error": "not_kept", "reason": reason.to_string() }))
}

/// Registers every route under `base_path`.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig, base_path: &str) {
    use actix_web::web;
    cfg.service(
        web::scope(base_path)
            .route("/whatsapp", web::get().to(webhook::verify))
            .route("/whatsapp", web::post().to(webhook::notification))
            .route(
                "/whatsapp/pagerduty",
                web::post().to(alert_hooks::pagerduty),
            )
            .route(
                "/whatsapp/datadog",
                web::post().to(alert_hooks::datadog_webhook),
            )
            .route("/sandbox", web::get().to(sandbox_page::to_page))
            .route("/sandbox/", web::get().to(sandbox_page::index))
            .route("/sandbox/setup", web::get().to(sandbox_page::setup))
            .route("/sandbox/state", web::get().to(sandbox_page::state))
            .route("/sandbox/events", web::get().to(sandbox_page::events))
            .route("/sandbox/outbox", web::get().to(sandbox::outbox))
            .route("/sandbox/status", web::post().to(sandbox::status))
            .route("/sandbox/inbound", web::post().to(sandbox::inbound))
            .route("/sandbox/slack", web::post().to(sandbox::slack))
            // Last: a path that matches no route above is one of the page's files.
            .route("/sandbox/{file}", web::get().to(sandbox_page::asset))
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .route("/metrics", web::get().to(health::metrics))
            .route("/admin/timers", web::get().to(admin::timers))
            .route("/admin/timers/fire", web::post().to(admin::fire)),
    );
    if !base_path.is_empty() {
        cfg.route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .route("/metrics", web::get().to(health::metrics));
    }
    if !base_path.is_empty() {
        cfg.route("/", web::get().to(sandbox_page::to_page));
    }
    cfg.default_service(web::to(flow_hooks::dispatch));
}
