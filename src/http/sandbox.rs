//! The sandbox transport's endpoints (only with `transport: sandbox`): type as a person, report a
//! message delivered or read as their phone would, and see what the bot sent. Inbound text is
//! wrapped in a Meta-shaped notification and goes through the same parser and actors as a signed
//! delivery from Meta. With `?wait=SECONDS` the answer comes once the bot has answered, and
//! carries what it sent ([`Watch`]): a pasted script of `curl`s then runs in order.

use super::webhook::accept;
use super::AppState;
use crate::live::{self, Live, LiveEvent};
use crate::transport::OutboxItem;
use actix_web::{web, HttpResponse};
use aof_actors::ids::new_id;
use aof_actors::model::now_ms;
use aof_actors::WaId;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

/// The longest `?wait=` honoured, in seconds.
const MAX_WAIT_SECS: f64 = 60.0;

/// `?wait=SECONDS`: answer once the bot is done (at most that long), with what it sent.
#[derive(Deserialize, Default)]
struct WaitQuery {
    wait: Option<f64>,
}

impl WaitQuery {
    /// The query of `req`; no wait when it has none (or a malformed one).
    fn of(query: &str) -> WaitQuery {
        web::Query::<WaitQuery>::from_query(query)
            .map(web::Query::into_inner)
            .unwrap_or_default()
    }

    /// Until when to wait, when asked to.
    fn deadline(&self) -> Option<Instant> {
        let secs = self.wait?.clamp(0.0, MAX_WAIT_SECS);
        Some(Instant::now() + Duration::from_secs_f64(secs))
    }
}

/// Collects what the bot sends from the moment it is started, until the bot is done: the awaited
/// event came (or none was awaited) and the send queue is empty.
pub struct Watch {
    rx: broadcast::Receiver<live::Numbered>,
    sent: Vec<OutboxItem>,
}

impl Watch {
    /// Starts collecting, with the deadline, when `req` asks to wait (`?wait=SECONDS`) and the
    /// transport is the sandbox; start before the work that is watched.
    pub fn requested(req: &actix_web::HttpRequest, state: &AppState) -> Option<(Watch, Instant)> {
        let deadline = WaitQuery::of(req.query_string()).deadline()?;
        Some((Watch::start(state.live.as_ref()?), deadline))
    }

    fn start(live: &Live) -> Watch {
        Watch {
            rx: live.subscribe().1,
            sent: Vec::new(),
        }
    }

    /// Waits until `done` accepts an event (skipped when `done` is `None`), then until nothing is
    /// queued or in flight; what was sent meanwhile, and whether it all happened before `deadline`.
    pub async fn until(
        mut self,
        state: &AppState,
        deadline: Instant,
        mut done: Option<&mut dyn FnMut(&LiveEvent) -> bool>,
    ) -> (bool, Vec<OutboxItem>) {
        while let Some(check) = done.as_mut() {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_elapsed) => return (false, self.sent),
                Ok(Err(RecvError::Closed)) => return (false, self.sent),
                Ok(Err(RecvError::Lagged(_))) => continue,
                Ok(Ok(numbered)) => {
                    let finished = check(&numbered.event);
                    self.keep(numbered.event);
                    if finished {
                        done = None;
                    }
                }
            }
        }
        // Idle twice in a row: a run's last send may still be between the actors the first time.
        let mut idle = 0;
        let settled = loop {
            let stats = match state.leading() {
                Some(leading) => leading.handle.queue_stats().await,
                None => Default::default(),
            };
            idle = if stats.queued + stats.in_flight == 0 {
                idle + 1
            } else {
                0
            };
            if idle == 2 {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        while let Ok(numbered) = self.rx.try_recv() {
            self.keep(numbered.event);
        }
        (settled, self.sent)
    }

    fn keep(&mut self, event: LiveEvent) {
        if let LiveEvent::Outbound(item) = event {
            self.sent.push(item);
        }
    }
}

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
    /// The tapped button's title (what WhatsApp shows in the chat); the id when absent.
    #[serde(default)]
    button_title: Option<String>,
    /// The wamid of the message answered (the one whose button was tapped), Meta's `context.id`.
    #[serde(default)]
    reply_to: Option<String>,
}

fn invalid(field: &str, reason: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .json(json!({ "error": "invalid_field", "field": field, "reason": reason }))
}

/// Feeds a typed message (or a button tap) through the webhook path. With `?wait=SECONDS`, answers
/// once the run it started has ended and its sends are out, with `sent`: every message the bot
/// sent meanwhile.
pub async fn inbound(
    req: actix_web::HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(outbox) = &state.outbox else {
        return HttpResponse::NotFound().finish();
    };
    let message: SandboxMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return invalid("body", &e.to_string()),
    };
    let Some(from) = WaId::parse(&message.from) else {
        return invalid("from", "expected a phone number such as +15551234567");
    };
    let id = new_id("wamid.sandbox.in");
    let timestamp = (now_ms() / 1000).to_string();
    let answered = message
        .reply_to
        .as_deref()
        .map(|w| (w, outbox.get(w).map(|item| item.kind)));
    if let Some((_, None)) = answered {
        return invalid("reply_to", "the sandbox sent no message with this id");
    }
    let (mut body, shown) = match (&message.button_id, &message.text) {
        // A template's quick reply arrives as Meta's `button` message, an interactive message's
        // reply button as `interactive.button_reply`.
        (Some(button), _) => {
            let title = message.button_title.as_deref().unwrap_or(button);
            let body = match &answered {
                Some((_, Some(kind))) if kind == "template" => {
                    json!({ "from": from.as_str(), "id": id, "timestamp": timestamp, "type": "button",
                    "button": { "payload": button, "text": title } })
                }
                _ => {
                    json!({ "from": from.as_str(), "id": id, "timestamp": timestamp, "type": "interactive",
                    "interactive": { "type": "button_reply", "button_reply": { "id": button, "title": title } } })
                }
            };
            (body, title.to_owned())
        }
        (None, Some(text)) if !text.trim().is_empty() => {
            let body = json!({ "from": from.as_str(), "id": id, "timestamp": timestamp, "type": "text", "text": { "body": text } });
            (body, text.clone())
        }
        _ => return invalid("text", "is missing or empty"),
    };
    if let Some((wamid, _)) = answered {
        body["context"] = json!({ "from": "sandbox", "id": wamid });
    }
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
    let watch = Watch::requested(&req, &state);
    let response = accept(notification.to_string().as_bytes(), &state).await;
    if !response.status().is_success() {
        return response;
    }
    if let Some(live) = &state.live {
        live.publish(LiveEvent::Inbound {
            from: from.e164(),
            text: shown,
            button_id: message.button_id,
            id: id.clone(),
            at: live::now(),
        });
    }
    let Some((watch, deadline)) = watch else {
        return HttpResponse::Ok().json(json!({ "id": id }));
    };
    let mut handled = |event: &LiveEvent| matches!(event, LiveEvent::Handled { message_id: Some(m), .. } if *m == id);
    let (done, sent) = watch.until(&state, deadline, Some(&mut handled)).await;
    HttpResponse::Ok().json(json!({ "id": id, "done": done, "sent": sent }))
}

/// `POST /sandbox/status`: what a phone reports about a message the bot sent to it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    wamid: String,
    status: String,
}

/// A phone (the sandbox page) reports a message `delivered` or `read`: the report goes through the
/// webhook path as Meta's status notification would, and the page's ticks follow it.
pub async fn status(body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let (Some(outbox), Some(live)) = (&state.outbox, &state.live) else {
        return HttpResponse::NotFound().finish();
    };
    let report: StatusReport = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return invalid("body", &e.to_string()),
    };
    if !matches!(report.status.as_str(), "delivered" | "read") {
        return invalid("status", "expected `delivered` or `read`");
    }
    let Some(to) = outbox.get(&report.wamid).map(|item| item.to) else {
        return invalid("wamid", "the sandbox sent no message with this id");
    };
    if to == "slack" {
        return invalid("wamid", "a Slack message has no delivery status");
    }
    let recipient = to.trim_start_matches('+');
    let notification = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "sandbox", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "sandbox", "phone_number_id": "sandbox" },
            "statuses": [{ "id": report.wamid, "status": report.status,
                "timestamp": (now_ms() / 1000).to_string(), "recipient_id": recipient }],
        }}]}],
    });
    let response = accept(notification.to_string().as_bytes(), &state).await;
    if !response.status().is_success() {
        return response;
    }
    live.publish(LiveEvent::Status {
        wamid: report.wamid,
        status: report.status,
        at: live::now(),
    });
    HttpResponse::Ok().json(json!({ "ok": true }))
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
