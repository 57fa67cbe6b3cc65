//! Operator endpoints behind the webhook bearer token: the pending timers (auto-escalations,
//! approval expiries), and firing them now instead of at their time (a drill, the sandbox, tests
//! that must not wait five minutes).

use super::auth::webhook_token_ok;
use super::sandbox::Watch;
use super::AppState;
use crate::live::LiveEvent;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

/// `GET /admin/timers`: timers not fired yet, soonest first.
pub async fn timers(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !webhook_token_ok(&req, &state) {
        return HttpResponse::Unauthorized().finish();
    }
    match state.leading() {
        Some(leading) => HttpResponse::Ok().json(leading.handle.timers().await),
        // A follower has no scheduler; the store has the same timers.
        None => match state.store.pending_timers().await {
            Ok(mut timers) => {
                timers.sort_by_key(|t| t.fire_at_ms);
                HttpResponse::Ok().json(timers)
            }
            Err(e) => super::not_kept(e),
        },
    }
}

/// 409 on a replica that does not lead, for what only the leader can do; names the leader.
pub fn not_leader(state: &AppState) -> HttpResponse {
    HttpResponse::Conflict().json(json!({
        "error": "not_leader",
        "reason": "this replica does not run the actors; ask the one that leads",
        "leader": state.role.leader(),
    }))
}

/// The body of `POST /admin/timers/fire`: one timer, or all when `id` is absent.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Fire {
    #[serde(default)]
    id: Option<String>,
}

/// `POST /admin/timers/fire`: runs pending timers' flows now; answers how many fired. In the
/// sandbox, `?wait=SECONDS` answers once their runs ended and their sends are out, with `sent`.
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
    let Some(leading) = state.leading() else {
        return not_leader(&state);
    };
    let watch = Watch::requested(&req, &state);
    let fired = leading.handle.fire_timers(fire.id).await;
    tracing::info!(fired, "timers fired early by an operator");
    let Some((watch, deadline)) = watch else {
        return HttpResponse::Ok().json(json!({ "fired": fired }));
    };
    // Each fired timer starts one run; wait for that many webhook-or-timer runs to end.
    let mut left = fired;
    let mut ended = |event: &LiveEvent| {
        if matches!(
            event,
            LiveEvent::Handled {
                message_id: None,
                ..
            }
        ) {
            left = left.saturating_sub(1);
        }
        left == 0
    };
    let awaited: Option<&mut dyn FnMut(&LiveEvent) -> bool> = (fired > 0).then_some(&mut ended);
    let (done, sent) = watch.until(&state, deadline, awaited).await;
    HttpResponse::Ok().json(json!({ "fired": fired, "done": done, "sent": sent }))
}
