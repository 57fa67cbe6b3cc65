//! The notification POST Meta sends to the webhook: entries, changes, messages, contacts and
//! statuses, turned into the actors' [`InboundMessage`] and [`StatusUpdate`].

use super::{null_default, Notification, WireError, OBJECT};
use aof_actors::model::{DeliveryState, InboundKind, InboundMessage, StatusUpdate};
use aof_actors::{WaId, Wamid};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Envelope {
    object: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default, deserialize_with = "null_default")]
    changes: Vec<Change>,
}

/// `value` stays untyped until `field` says it is a `messages` change: other fields (account
/// updates, template reviews) have other shapes and must not fail the whole body.
#[derive(Deserialize)]
struct Change {
    field: String,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
struct MessagesValue {
    #[serde(default, deserialize_with = "null_default")]
    contacts: Vec<Contact>,
    #[serde(default, deserialize_with = "null_default")]
    messages: Vec<Message>,
    #[serde(default, deserialize_with = "null_default")]
    statuses: Vec<Status>,
    #[serde(default, deserialize_with = "null_default")]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct Contact {
    wa_id: Option<String>,
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    from: String,
    id: String,
    #[serde(default)]
    timestamp: Value,
    #[serde(rename = "type")]
    kind: String,
    text: Option<TextBody>,
    button: Option<ButtonBody>,
    interactive: Option<Interactive>,
    context: Option<Context>,
}

#[derive(Deserialize)]
struct TextBody {
    body: String,
}

#[derive(Deserialize)]
struct ButtonBody {
    payload: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct Interactive {
    #[serde(rename = "type")]
    kind: String,
    button_reply: Option<Reply>,
    list_reply: Option<Reply>,
}

#[derive(Deserialize)]
struct Reply {
    id: String,
}

#[derive(Deserialize)]
struct Context {
    id: Option<String>,
}

#[derive(Deserialize)]
struct Status {
    id: String,
    status: String,
    #[serde(default)]
    timestamp: Value,
    recipient_id: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    code: Option<i64>,
    title: Option<String>,
    message: Option<String>,
}

impl ErrorItem {
    fn pair(&self) -> Option<(i64, String)> {
        let text = self.title.as_ref().or(self.message.as_ref());
        Some((self.code?, text.cloned().unwrap_or_default()))
    }
}

/// Turns a serde error with its path into a [`WireError`]; a missing field is named in the path.
fn wire_error(prefix: &str, err: serde_path_to_error::Error<serde_json::Error>) -> WireError {
    let mut path = err.path().to_string();
    if path == "." {
        path.clear();
    }
    let inner = err.into_inner();
    let mut reason = inner.to_string();
    if inner.line() != 0 {
        if let Some((head, _)) = reason.rsplit_once(" at line ") {
            reason = head.to_string();
        }
    }
    if let Some(name) = reason
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        path = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
    }
    let field = match (prefix.is_empty(), path.is_empty()) {
        (true, true) => "body".to_string(),
        (true, false) => path,
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}.{path}"),
    };
    WireError::new(field, reason)
}

/// Unix seconds from Meta's string (or, leniently, a number); 0 when unreadable.
fn timestamp(raw: &Value, field: &str) -> i64 {
    let parsed = match raw {
        Value::String(s) => s.trim().parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    parsed.unwrap_or_else(|| {
        tracing::debug!(field, "unreadable timestamp; using 0");
        0
    })
}

/// Parses a notification POST body (already signature-checked): every entry, change, message and
/// status. Messages whose sender is not a number and statuses with an unknown word are skipped.
pub fn parse_notification(body: &[u8]) -> Result<Notification, WireError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let envelope: Envelope =
        serde_path_to_error::deserialize(&mut de).map_err(|e| wire_error("", e))?;
    de.end()
        .map_err(|e| WireError::new("body", e.to_string()))?;
    match envelope.object.as_deref() {
        Some(OBJECT) => {}
        Some(other) => {
            return Err(WireError::new(
                "object",
                format!("expected \"{OBJECT}\", got \"{other}\""),
            ))
        }
        None => {
            return Err(WireError::new(
                "object",
                format!("missing; expected \"{OBJECT}\""),
            ))
        }
    }

    let mut out = Notification::default();
    for (e, entry) in envelope.entry.into_iter().enumerate() {
        for (c, change) in entry.changes.into_iter().enumerate() {
            let prefix = format!("entry[{e}].changes[{c}].value");
            if change.field != "messages" {
                tracing::debug!(field = %change.field, at = %prefix, "ignoring a change that is not `messages`");
                continue;
            }
            let value: MessagesValue = serde_path_to_error::deserialize(change.value)
                .map_err(|err| wire_error(&prefix, err))?;
            read_change(value, &prefix, &mut out);
        }
    }
    Ok(out)
}

fn read_change(value: MessagesValue, prefix: &str, out: &mut Notification) {
    for (m, message) in value.messages.into_iter().enumerate() {
        let field = format!("{prefix}.messages[{m}]");
        let Some(from) = WaId::parse(&message.from) else {
            tracing::warn!(at = %field, "skipping a message whose `from` is not a phone number");
            continue;
        };
        let name = value
            .contacts
            .iter()
            .find(|c| c.wa_id.as_deref() == Some(message.from.as_str()))
            .and_then(|c| c.profile.as_ref()?.name.clone());
        let (kind, text) = kind_and_text(&message);
        out.messages.push(InboundMessage {
            id: Wamid(message.id),
            from,
            name,
            timestamp: timestamp(&message.timestamp, &field),
            kind,
            text,
            context_id: message.context.and_then(|c| c.id).map(Wamid),
        });
    }
    for (s, status) in value.statuses.into_iter().enumerate() {
        let field = format!("{prefix}.statuses[{s}]");
        let Some(state) = DeliveryState::parse(&status.status) else {
            tracing::debug!(status = %status.status, at = %field, "skipping an unknown status");
            continue;
        };
        out.statuses.push(StatusUpdate {
            timestamp: timestamp(&status.timestamp, &field),
            id: Wamid(status.id),
            state,
            recipient: status.recipient_id.as_deref().and_then(WaId::parse),
            error: status.errors.iter().find_map(ErrorItem::pair),
        });
    }
    out.errors
        .extend(value.errors.iter().filter_map(ErrorItem::pair));
}

/// The routing kind and the text routing sees: typed text, a button's payload, a reply's id.
fn kind_and_text(message: &Message) -> (InboundKind, Option<String>) {
    match message.kind.as_str() {
        "text" => (
            InboundKind::Text,
            message.text.as_ref().map(|t| t.body.clone()),
        ),
        "button" => {
            let button = message.button.as_ref();
            let text = button.and_then(|b| b.payload.clone().or_else(|| b.text.clone()));
            (InboundKind::Button, text)
        }
        "interactive" => match &message.interactive {
            Some(i) => match (i.kind.as_str(), &i.button_reply, &i.list_reply) {
                ("button_reply", Some(r), _) | ("list_reply", _, Some(r)) => {
                    (InboundKind::Interactive, Some(r.id.clone()))
                }
                (other, _, _) => (InboundKind::Other(format!("interactive_{other}")), None),
            },
            None => (InboundKind::Other("interactive".into()), None),
        },
        other => (InboundKind::Other(other.to_string()), None),
    }
}
