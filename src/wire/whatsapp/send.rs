//! The Graph API side of sending: the request body built from an [`OutboundMessage`], and the
//! response read into a wamid or a classified [`SendError`].

use super::null_default;
use aof_actors::model::{OutboundBody, OutboundMessage};
use aof_actors::ports::{SendError, SendErrorKind};
use aof_actors::Wamid;
use serde::Deserialize;
use serde_json::{json, Value};

/// The Graph API `POST /{phone-number-id}/messages` body for a message.
pub fn send_body(message: &OutboundMessage) -> Value {
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": message.body.kind(),
    });
    // A person known only by their business-scoped user id is addressed as `recipient`.
    let address = if message.to.is_user_id() {
        "recipient"
    } else {
        "to"
    };
    body[address] = json!(message.to.as_str());
    match &message.body {
        OutboundBody::Text { body: text } => {
            body["text"] = json!({"body": text, "preview_url": false});
        }
        OutboundBody::Template {
            name,
            language,
            parameters,
        } => {
            let mut template = json!({"name": name, "language": {"code": language}});
            if !parameters.is_empty() {
                let parameters: Vec<Value> = parameters
                    .iter()
                    .map(|p| json!({"type": "text", "text": p}))
                    .collect();
                template["components"] = json!([{"type": "body", "parameters": parameters}]);
            }
            body["template"] = template;
        }
        OutboundBody::Interactive {
            body: text,
            buttons,
        } => {
            let buttons: Vec<Value> = buttons
                .iter()
                .map(|b| json!({"type": "reply", "reply": {"id": b.id, "title": b.title}}))
                .collect();
            body["interactive"] = json!({
                "type": "button",
                "body": {"text": text},
                "action": {"buttons": buttons},
            });
        }
    }
    if let Some(reply_to) = &message.reply_to {
        body["context"] = json!({"message_id": reply_to.as_str()});
    }
    body
}

#[derive(Deserialize)]
struct SendOk {
    #[serde(default, deserialize_with = "null_default")]
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    message: Option<String>,
    code: i64,
    error_data: Option<ErrorData>,
    fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorData {
    details: Option<String>,
}

/// Meta's refusal of a message to a business-scoped user id (some template kinds). The bot writes
/// to a person's number whenever the directory knows it, so this is reported, not retried.
const BSUID_NOT_SUPPORTED: i64 = 131062;

/// How to treat a Graph API `error.code` (`protocols.md` §2.1). Unknown codes are permanent: a
/// retry loop on a code nobody understood helps no one.
pub fn classify(code: i64) -> SendErrorKind {
    match code {
        1 | 2 | 131016 | 133004 | 131057 => SendErrorKind::Transient,
        4 | 80007 | 130429 => SendErrorKind::Throttled,
        131056 => SendErrorKind::PairRateLimited,
        131047 => SendErrorKind::ReEngagementRequired,
        190 | 10 | 200..=299 | 368 | 131031 => SendErrorKind::Fatal,
        _ => SendErrorKind::Permanent,
    }
}

/// Reads the Graph API's answer to a send: the wamid, or a classified [`SendError`]. Meta's
/// `error.code` decides, not the HTTP status (throttling comes as a 400).
pub fn parse_send_response(status: u16, body: &[u8]) -> Result<Wamid, SendError> {
    if (200..300).contains(&status) {
        if let Ok(ok) = serde_json::from_slice::<SendOk>(body) {
            if let Some(sent) = ok.messages.into_iter().next() {
                return Ok(Wamid(sent.id));
            }
        }
        // Meta may have accepted it; a duplicate page beats a lost one, so let the sender retry.
        return Err(error(
            SendErrorKind::Transient,
            Some(status.into()),
            format!("HTTP {status} without messages[0].id: {}", snippet(body)),
        ));
    }
    if let Ok(ErrorEnvelope { error: e }) = serde_json::from_slice::<ErrorEnvelope>(body) {
        let mut message = e.message.unwrap_or_else(|| format!("HTTP {status}"));
        if let Some(details) = e.error_data.and_then(|d| d.details) {
            message = format!("{message}: {details}");
        }
        if let Some(trace) = e.fbtrace_id {
            message = format!("{message} (fbtrace_id {trace})");
        }
        if e.code == BSUID_NOT_SUPPORTED {
            message = format!(
                "{message}; this kind of message cannot go to a person known only by their user id: \
                 add their phone number beside `user_id` in `platforms.whatsapp.people`"
            );
        }
        return Err(error(classify(e.code), Some(e.code), message));
    }
    let kind = match status {
        429 => SendErrorKind::Throttled,
        500..=599 => SendErrorKind::Transient,
        _ => SendErrorKind::Permanent,
    };
    let message = match snippet(body) {
        s if s.is_empty() => format!("HTTP {status} without an error body"),
        s => format!("HTTP {status}: {s}"),
    };
    Err(error(kind, Some(status.into()), message))
}

fn error(kind: SendErrorKind, code: Option<i64>, message: String) -> SendError {
    SendError {
        kind,
        code,
        message,
        retry_after: None,
    }
}

/// The start of an unexpected body, for the error message.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .trim()
        .chars()
        .take(200)
        .collect()
}
