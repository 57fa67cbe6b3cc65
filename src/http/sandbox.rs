//! The sandbox transport's endpoints (only with `transport: sandbox`): type as a person, and see
//! what the bot sent. Inbound text is wrapped in a Meta-shaped notification and goes through the same
//! parser and actors as a signed delivery from Meta.

use super::webhook::accept;
use super::AppState;
use actix_web::{web, HttpResponse};
use aof_actors::ids::new_id;
use aof_actors::model::now_ms;
use aof_actors::WaId;
use serde::Deserialize;
use serde_json::json;

/// `POST /sandbox/inbound`: a message as if `from` had typed it in WhatsApp.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxMessage {
    from: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    text: Option<String>,
    /// A tap on an interactive reply button: its id.
    #[serde(default)]
    button_id: Option<String>,
}

fn invalid(field: &str, reason: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .json(json!({ "error": "invalid_field", "field": field, "reason": reason }))
}

/// Feeds a typed message (or a button tap) through the webhook path.
pub async fn inbound(body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if state.outbox.is_none() {
        return HttpResponse::NotFound().finish();
    }
    let message: SandboxMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return invalid("body", &e.to_string()),
    };
    let Some(from) = WaId::parse(&message.from) else {
        return invalid("from", "expected a phone number such as +15551234567");
    };
    let id = new_id("wamid.sandbox.in");
    let timestamp = (now_ms() / 1000).to_string();
    let body = match (&message.button_id, &message.text) {
        (Some(button), _) => {
            json!({ "from": from.as_str(), "id": id, "timestamp": timestamp, "type": "interactive",
            "interactive": { "type": "button_reply", "button_reply": { "id": button, "title": button } } })
        }
        (None, Some(text)) if !text.trim().is_empty() => {
            json!({ "from": from.as_str(), "id": id, "timestamp": timestamp, "type": "text", "text": { "body": text } })
        }
        _ => return invalid("text", "is missing or empty"),
    };
    let name = message.name.unwrap_or_else(|| from.e164());
    let notification = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "sandbox", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "sandbox", "phone_number_id": "sandbox" },
            "contacts": [{ "profile": { "name": name }, "wa_id": from.as_str() }],
            "messages": [body],
        }}]}],
    });
    let response = accept(notification.to_string().as_bytes(), &state);
    if response.status().is_success() {
        HttpResponse::Ok().json(json!({ "id": id }))
    } else {
        response
    }
}

/// `GET /sandbox/outbox`: what the bot sent, oldest first.
pub async fn outbox(state: web::Data<AppState>) -> HttpResponse {
    match &state.outbox {
        Some(outbox) => HttpResponse::Ok().json(outbox.list()),
        None => HttpResponse::NotFound().finish(),
    }
}

/// `POST /sandbox/slack`: a stand-in for a Slack incoming webhook (`{"text": …}`), answered `ok`
/// as Slack does; the message shows in the outbox.
pub async fn slack(body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let Some(outbox) = &state.outbox else {
        return HttpResponse::NotFound().finish();
    };
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) if v.get("text").and_then(|t| t.as_str()).is_some() => {
            outbox.record_slack(v["text"].as_str().unwrap_or_default());
            HttpResponse::Ok().content_type("text/plain").body("ok")
        }
        _ => HttpResponse::BadRequest()
            .content_type("text/plain")
            .body("no_text"),
    }
}
