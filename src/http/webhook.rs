//! Meta's webhook: the verification handshake (GET) and signed notifications (POST).

use super::{quotes, AppState};
use crate::config::TransportKind;
use crate::wire::whatsapp::{parse_notification_for, verify_signature};
use actix_web::{web, HttpRequest, HttpResponse};
use aof_actors::model::DeliveryState;
use aof_actors::webhook::Inbound;
use serde::Deserialize;

/// The query of Meta's verification request.
#[derive(Deserialize)]
pub struct VerifyQuery {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET /whatsapp`: answers the challenge when the mode is `subscribe` and the token is ours.
pub async fn verify(query: web::Query<VerifyQuery>, state: web::Data<AppState>) -> HttpResponse {
    let expected = state.config.platforms.whatsapp.verify_token.expose();
    let ok = query.mode.as_deref() == Some("subscribe")
        && !expected.is_empty()
        && query.token.as_deref() == Some(expected);
    match (&query.challenge, ok) {
        (Some(challenge), true) => {
            tracing::info!("Meta webhook verification accepted");
            HttpResponse::Ok()
                .content_type("text/plain")
                .body(challenge.clone())
        }
        _ => {
            tracing::warn!("Meta webhook verification refused: wrong mode or verify token");
            HttpResponse::Forbidden().finish()
        }
    }
}

/// `POST /whatsapp`: checks `X-Hub-Signature-256` on the raw body, parses, hands over, answers 200.
pub async fn notification(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let whatsapp = &state.config.platforms.whatsapp;
    if whatsapp.security.verify_signatures {
        let header = req
            .headers()
            .get("x-hub-signature-256")
            .and_then(|h| h.to_str().ok());
        if !verify_signature(whatsapp.app_secret.expose().as_bytes(), &body, header) {
            metrics::counter!("aof_webhook_rejected_total", "reason" => "signature").increment(1);
            tracing::warn!("notification with a missing or wrong X-Hub-Signature-256 refused");
            return HttpResponse::Unauthorized().finish();
        }
    }
    accept(&body, &state).await
}

/// A page WhatsApp reports `failed` need not wait for its delivery check: the check's timer (known
/// from the page's job) fires now. Best effort, after the 200: the timer itself is durable and
/// fires at its time anyway.
fn check_failed_pages_now(state: &AppState, failed: Vec<String>) {
    // A follower leaves it to the timer, on the leader.
    let Some(leading) = state.leading() else {
        return;
    };
    if failed.is_empty() {
        return;
    }
    let (store, handle) = (leading.store, leading.handle);
    actix_web::rt::spawn(async move {
        for wamid in failed {
            let Ok(Some(sent)) = store.outbound_message(&wamid).await else {
                continue;
            };
            // A digest that failed failed each page it said.
            let pages = match store.job(&sent.job_id.0).await {
                Ok(Some((_, digest, _, _))) if !digest.folds.is_empty() => digest.folds,
                _ => vec![sent.job_id],
            };
            for page in pages {
                let timer = crate::agents::whatsapp::delivery_timer_id(&page);
                if handle.fire_timers(Some(timer)).await > 0 {
                    tracing::info!(wamid = %wamid, "a page failed; its delivery check runs now");
                }
            }
        }
    });
}

/// Parses a notification and hands it to the webhook actor, answering 200 once it is kept (503 when
/// it could not be): the same path for Meta and the sandbox. A message that cannot be read is
/// logged and counted and the rest are handled; changes for another business number are counted
/// and left alone; only a body that is not a notification at all is refused (400).
pub async fn accept(body: &[u8], state: &AppState) -> HttpResponse {
    let whatsapp = &state.config.platforms.whatsapp;
    // The sandbox has no business number of its own: it takes Meta-shaped bodies for any.
    let ours =
        (whatsapp.transport == TransportKind::CloudApi).then_some(&*whatsapp.phone_number_id);
    let notification = match parse_notification_for(body, ours) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(field = %e.field, "unreadable notification: {}", e.reason);
            return HttpResponse::BadRequest().json(e.to_json());
        }
    };
    for e in &notification.unreadable {
        tracing::warn!(field = %e.field, reason = %e.reason, "skipping a message or status that cannot be read; the rest of the notification is handled");
    }
    if !notification.unreadable.is_empty() {
        metrics::counter!("aof_webhook_unreadable_total")
            .increment(notification.unreadable.len() as u64);
    }
    if notification.foreign > 0 {
        metrics::counter!("aof_webhook_foreign_total").increment(notification.foreign as u64);
    }
    for (code, title) in &notification.errors {
        tracing::warn!(code, "Meta reported an error in a notification: {title}");
    }
    // A person the directory knows by user id and number is one person, whichever Meta sent.
    let mut messages = notification.messages;
    for message in &mut messages {
        if message.from.is_user_id() {
            message.from = whatsapp.canonical(message.from.clone());
        }
    }
    quotes::settle(state, &mut messages).await;
    let failed: Vec<String> = notification
        .statuses
        .iter()
        .filter(|s| s.state == DeliveryState::Failed)
        .map(|s| s.id.0.clone())
        .collect();
    let inbound = Inbound {
        messages,
        statuses: notification.statuses,
    };
    match state.role.keeper().inbound(inbound).await {
        Ok(()) => {
            check_failed_pages_now(state, failed);
            HttpResponse::Ok()
                .content_type("text/plain")
                .body("EVENT_RECEIVED")
        }
        Err(not_kept) => {
            tracing::warn!("notification not kept ({not_kept}); asking Meta to retry");
            super::not_kept(not_kept)
        }
    }
}
