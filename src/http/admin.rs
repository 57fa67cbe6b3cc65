//! Operator endpoints behind the webhook bearer token: the pending timers (auto-escalations,
//! approval expiries), and firing them now instead of at their time (a drill, the sandbox, tests
//! that must not wait five minutes).

use super::auth::webhook_token_ok;
use super::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

/// `GET /admin/timers`: timers not fired yet, soonest first.
pub async fn timers(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !webhook_token_ok(&req, &state) {
        return HttpResponse::Unauthorized().finish();
    }
    HttpResponse::Ok().json(state.handle.timers().await)
}

/// The body of `POST /admin/timers/fire`: one timer, or all when `id` is absent.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Fire {
    #[serde(default)]
    id: Option<String>,
}

/// `POST /admin/timers/fire`: runs pending timers' flows now; answers how many fired.
pub async fn fire(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if !webhook_token_ok(&req, &state) {
        return HttpResponse::Unauthorized().finish();
    }
    let fire: Fire =
        if body.is_empty() {
            Fire::default()
        } else {
            match serde_json::from_slice(&body) {
                Ok(f) => f,
                Err(e) => return HttpResponse::BadRequest().json(
                    json!({ "error": "invalid_field", "field": "body", "reason": e.to_string() }),
                ),
            }
        };
    let fired = state.handle.fire_timers(fire.id).await;
    tracing::info!(fired, "timers fired early by an operator");
    HttpResponse::Ok().json(json!({ "fired": fired }))
}
