//! One message of a notification: the shapes Meta writes (text, buttons, interactive replies,
//! reactions, system notices, …) and how each becomes the actors' [`InboundMessage`]: who wrote it
//! (a number or a business-scoped user id), its kind and the text routing sees. A message that
//! cannot be read is an error naming its field; the notification's other messages are read anyway.

use super::notification::timestamp;
use super::WireError;
use aof_actors::model::{InboundKind, InboundMessage};
use aof_actors::{WaId, Wamid};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

/// Who wrote: a phone number (`wa_id`), a business-scoped user id (`user_id`), or both.
#[derive(Deserialize)]
pub(super) struct Contact {
    pub(super) wa_id: Option<String>,
    pub(super) user_id: Option<String>,
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    name: Option<String>,
    username: Option<String>,
}

/// One message as Meta writes it; every field may be missing (see [`read_message`]).
#[derive(Deserialize)]
pub(super) struct Message {
    id: Option<String>,
    /// The sender's phone number; absent for a person who hides it behind a username.
    from: Option<String>,
    /// The sender's business-scoped user id (`US.…`).
    from_user_id: Option<String>,
    #[serde(default)]
    timestamp: Value,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<TextBody>,
    button: Option<ButtonBody>,
    interactive: Option<Interactive>,
    context: Option<Context>,
    reaction: Option<Reaction>,
    system: Option<System>,
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

/// An emoji on a message; an empty emoji takes it away.
#[derive(Deserialize)]
struct Reaction {
    message_id: Option<String>,
    emoji: Option<String>,
}

/// A notice from WhatsApp itself (a number or identity changed). Its `body` names phone
/// numbers, so only its `type` is kept.
#[derive(Deserialize)]
struct System {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// One message as the actors see it, or why it cannot be read (`place` names it in the body).
pub(super) fn read_message(
    mut message: Message,
    senders: &HashMap<&str, &Contact>,
    place: &dyn Fn() -> String,
) -> Result<InboundMessage, WireError> {
    let missing =
        |field: &str, reason: &str| WireError::new(format!("{}.{field}", place()), reason);
    let id = message.id.take().ok_or_else(|| missing("id", "missing"))?;
    let from = sender(&message, senders).map_err(|reason| missing("from", reason))?;
    let Some(kind) = message.kind.take() else {
        return Err(missing("type", "missing"));
    };
    let contact = [&message.from, &message.from_user_id]
        .into_iter()
        .flatten()
        .find_map(|key| senders.get(key.as_str()));
    let profile = contact.and_then(|c| c.profile.as_ref());
    let name = profile.and_then(|p| p.name.clone());
    let username = profile.and_then(|p| p.username.clone());
    let mut context_id = message.context.take().and_then(|c| c.id).map(Wamid);
    let (kind, text) = kind_and_text(&kind, &mut message, &mut context_id);
    Ok(InboundMessage {
        id: Wamid(id),
        from,
        name,
        username,
        timestamp: timestamp(&message.timestamp, format_args!("{}", place())),
        kind,
        text,
        context_id,
        target: None,
        inbox: None,
    })
}

/// Who wrote a message: their phone number (`from`, else their contact's `wa_id`), else their
/// business-scoped user id (`from_user_id`); why not when neither can be read.
fn sender(message: &Message, senders: &HashMap<&str, &Contact>) -> Result<WaId, &'static str> {
    if let Some(from) = &message.from {
        return WaId::parse(from)
            .filter(|wa| !wa.is_user_id())
            .ok_or("not a phone number");
    }
    let Some(user_id) = &message.from_user_id else {
        return Err("missing, and no `from_user_id` either");
    };
    let phone = senders
        .get(user_id.as_str())
        .and_then(|c| c.wa_id.as_deref())
        .and_then(WaId::parse)
        .filter(|wa| !wa.is_user_id());
    phone
        .or_else(|| WaId::parse(user_id).filter(WaId::is_user_id))
        .ok_or("missing, and `from_user_id` is not a user id")
}

/// Kinds that are WhatsApp telling the bot something rather than a person talking to it.
const NOTICES: [&str; 8] = [
    "system",
    "edit",
    "revoke",
    "unsupported",
    "request_welcome",
    "order",
    "ephemeral",
    "errors",
];

/// Interactive kinds that answer something the bot never sent (a WhatsApp Flow, a call
/// permission request): notices too.
const INTERACTIVE_NOTICES: [&str; 2] = ["nfm_reply", "call_permission_reply"];

/// The routing kind and the text routing sees: typed text, a button's payload, a reply's id, a
/// reaction's emoji (its message becomes the context), a system notice's type (taken out of the
/// message).
fn kind_and_text(
    kind: &str,
    message: &mut Message,
    context_id: &mut Option<Wamid>,
) -> (InboundKind, Option<String>) {
    match kind {
        "text" => (InboundKind::Text, message.text.take().map(|t| t.body)),
        "button" => {
            let button = message.button.take();
            (
                InboundKind::Button,
                button.and_then(|b| b.payload.or(b.text)),
            )
        }
        "interactive" => match message.interactive.take() {
            Some(i) => match (i.kind.as_str(), i.button_reply, i.list_reply) {
                ("button_reply", Some(r), _) | ("list_reply", _, Some(r)) => {
                    (InboundKind::Interactive, Some(r.id))
                }
                (notice, _, _) if INTERACTIVE_NOTICES.contains(&notice) => {
                    (InboundKind::Notice(notice.to_owned()), None)
                }
                (other, _, _) => (InboundKind::Other(format!("interactive_{other}")), None),
            },
            None => (InboundKind::Other("interactive".into()), None),
        },
        "reaction" => {
            let reaction = message.reaction.take();
            let (about, emoji) = reaction
                .map(|r| (r.message_id, r.emoji))
                .unwrap_or_default();
            if let Some(about) = about {
                *context_id = Some(Wamid(about));
            }
            (InboundKind::Reaction, Some(emoji.unwrap_or_default()))
        }
        "system" => (
            InboundKind::Notice("system".into()),
            message.system.take().and_then(|s| s.kind),
        ),
        notice if NOTICES.contains(&notice) => (InboundKind::Notice(notice.to_owned()), None),
        other => (InboundKind::Other(other.to_string()), None),
    }
}
