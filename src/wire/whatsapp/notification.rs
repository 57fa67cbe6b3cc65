//! The notification POST Meta sends to the webhook: entries, changes, messages, contacts and
//! statuses, turned into the actors' [`InboundMessage`] and [`StatusUpdate`].

use super::message::{read_message, Contact, Message};
use super::{null_default, Notification, WireError, OBJECT};
use aof_actors::model::{DeliveryState, StatusUpdate};
use aof_actors::{WaId, Wamid};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// The body, with its changes read as `C`: [`TypedChange`] on the fast path, [`Change`] when an
/// error needs its path.
#[derive(Deserialize)]
#[serde(bound(deserialize = "C: Deserialize<'de>"))]
struct Envelope<C> {
    object: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    entry: Vec<Entry<C>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "C: Deserialize<'de>"))]
struct Entry<C> {
    #[serde(default, deserialize_with = "null_default")]
    changes: Vec<C>,
}

/// `value` stays untyped until `field` says it is a `messages` change: other fields (account
/// updates, template reviews) have other shapes and must not fail the whole body.
#[derive(Deserialize)]
struct Change {
    field: String,
    #[serde(default)]
    value: Value,
}

/// A change read in one pass, for the fast path. When `field` comes first, `value` is typed as it
/// is read (`messages`) or skipped (anything else); when `value` comes first it is read as JSON and
/// typed once `field` is known. Whatever [`Change`] and [`MessagesValue`] reject fails here too,
/// so that [`parse_notification`] can fall back to them for the error.
struct TypedChange {
    /// The `messages` value; `None` for other fields.
    value: Option<MessagesValue>,
    field: String,
}

/// A change's keys; others are ignored.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum ChangeKey {
    Field,
    Value,
    #[serde(other)]
    Other,
}

/// A change's `value` as far as it has been read.
enum Pending {
    Typed(MessagesValue),
    Skipped,
    Untyped(Value),
}

impl<'de> Deserialize<'de> for TypedChange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TypedChangeVisitor)
    }
}

struct TypedChangeVisitor;

impl<'de> Visitor<'de> for TypedChangeVisitor {
    type Value = TypedChange;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a change object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TypedChange, A::Error> {
        let mut field: Option<String> = None;
        let mut value: Option<Pending> = None;
        while let Some(key) = map.next_key()? {
            match key {
                ChangeKey::Field if field.is_some() => {
                    return Err(de::Error::duplicate_field("field"))
                }
                ChangeKey::Value if value.is_some() => {
                    return Err(de::Error::duplicate_field("value"))
                }
                ChangeKey::Field => field = Some(map.next_value()?),
                ChangeKey::Value => {
                    value = Some(match field.as_deref() {
                        Some("messages") => Pending::Typed(map.next_value()?),
                        Some(_) => {
                            map.next_value::<IgnoredAny>()?;
                            Pending::Skipped
                        }
                        None => Pending::Untyped(map.next_value()?),
                    })
                }
                ChangeKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let field = field.ok_or_else(|| de::Error::missing_field("field"))?;
        let value = match value {
            _ if field != "messages" => None,
            Some(Pending::Typed(value)) => Some(value),
            Some(Pending::Untyped(value)) => {
                Some(MessagesValue::deserialize(value).map_err(de::Error::custom)?)
            }
            Some(Pending::Skipped) | None => {
                return Err(de::Error::custom("a messages change without a value"))
            }
        };
        Ok(TypedChange { value, field })
    }
}

#[derive(Deserialize)]
struct MessagesValue {
    #[serde(default)]
    metadata: Option<Lenient<Metadata>>,
    #[serde(default, deserialize_with = "null_default")]
    contacts: Vec<Lenient<Contact>>,
    #[serde(default, deserialize_with = "null_default")]
    messages: Vec<Lenient<Message>>,
    #[serde(default, deserialize_with = "null_default")]
    statuses: Vec<Lenient<Status>>,
    #[serde(default, deserialize_with = "null_default")]
    errors: Vec<Lenient<ErrorItem>>,
}

/// One item of a batch, read on its own: an item the bot cannot read is reported with its reason
/// and must not fail the others (Meta would retry the whole body for days).
enum Lenient<T> {
    Read(T),
    /// The path inside the item (empty for the item itself) and what is wrong there.
    Unreadable(String, String),
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Ok(match serde_path_to_error::deserialize(value) {
            Ok(item) => Lenient::Read(item),
            Err(e) => {
                let path = e.path().to_string();
                let path = if path == "." { String::new() } else { path };
                Lenient::Unreadable(path, e.into_inner().to_string())
            }
        })
    }
}

/// Which business number a change was addressed to.
#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    phone_number_id: Option<Value>,
}

#[derive(Deserialize)]
struct Status {
    id: String,
    status: String,
    #[serde(default)]
    timestamp: Value,
    recipient_id: Option<String>,
    /// The recipient's business-scoped user id, when the message went to one.
    recipient_user_id: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    errors: Vec<ErrorItem>,
    /// What our send carried as `biz_opaque_callback_data`: its outbox id.
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
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

/// Where a change sits in the body, written out only when a log line or an error needs it.
#[derive(Clone, Copy)]
struct At {
    entry: usize,
    change: usize,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "entry[{}].changes[{}].value", self.entry, self.change)
    }
}

/// Unix seconds from Meta's string (or, leniently, a number); 0 when unreadable.
pub(super) fn timestamp(raw: &Value, field: fmt::Arguments) -> i64 {
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

/// Parses a notification POST body (already signature-checked), whichever business number it
/// was addressed to; see [`parse_notification_for`].
pub fn parse_notification(body: &[u8]) -> Result<Notification, WireError> {
    parse_notification_for(body, None)
}

/// Parses a notification POST body (already signature-checked): every entry, change, message and
/// status. Changes addressed to another business number than `ours` (`metadata.phone_number_id`)
/// are counted in [`Notification::foreign`] and not read. A message or status that cannot be read
/// is listed in [`Notification::unreadable`] and the rest are read; only a body that is not a
/// WhatsApp notification at all is an error. Statuses with an unknown word are skipped.
///
/// The body is read once, straight into typed structs; only a body that fails is read again with
/// its paths tracked, to name the field at fault.
pub fn parse_notification_for(body: &[u8], ours: Option<&str>) -> Result<Notification, WireError> {
    let Some(envelope) = read_fast(body) else {
        return parse_with_paths(body, ours);
    };
    check_object(envelope.object.as_deref())?;
    let mut out = Notification::default();
    for (e, entry) in envelope.entry.into_iter().enumerate() {
        for (c, change) in entry.changes.into_iter().enumerate() {
            let at = At {
                entry: e,
                change: c,
            };
            match change.value {
                Some(value) => read_change(value, at, ours, &mut out),
                None => ignore(&change.field, at),
            }
        }
    }
    Ok(out)
}

/// The fast path of [`parse_notification`]: plain serde_json, no paths, `None` on any error. UTF-8
/// is checked once for the whole body rather than string by string.
fn read_fast(body: &[u8]) -> Option<Envelope<TypedChange>> {
    let text = std::str::from_utf8(body).ok()?;
    serde_json::from_str(text).ok()
}

/// The slow path of [`parse_notification`], which names the field at fault: `value` is read
/// untyped first, then typed, both with serde_path_to_error.
fn parse_with_paths(body: &[u8], ours: Option<&str>) -> Result<Notification, WireError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let envelope: Envelope<Change> =
        serde_path_to_error::deserialize(&mut de).map_err(|e| wire_error("", e))?;
    de.end()
        .map_err(|e| WireError::new("body", e.to_string()))?;
    check_object(envelope.object.as_deref())?;

    let mut out = Notification::default();
    for (e, entry) in envelope.entry.into_iter().enumerate() {
        for (c, change) in entry.changes.into_iter().enumerate() {
            let at = At {
                entry: e,
                change: c,
            };
            if change.field != "messages" {
                ignore(&change.field, at);
                continue;
            }
            let value: MessagesValue = serde_path_to_error::deserialize(change.value)
                .map_err(|err| wire_error(&at.to_string(), err))?;
            read_change(value, at, ours, &mut out);
        }
    }
    Ok(out)
}

/// Only WhatsApp Business notifications are read.
fn check_object(object: Option<&str>) -> Result<(), WireError> {
    match object {
        Some(OBJECT) => Ok(()),
        Some(other) => Err(WireError::new(
            "object",
            format!("expected \"{OBJECT}\", got \"{other}\""),
        )),
        None => Err(WireError::new(
            "object",
            format!("missing; expected \"{OBJECT}\""),
        )),
    }
}

/// Account updates, template reviews and the like carry nothing the bot acts on.
fn ignore(field: &str, at: At) {
    tracing::debug!(field = %field, at = %at, "ignoring a change that is not `messages`");
}

/// Whether a change is addressed to `ours`: yes when either side does not say.
fn addressed_to(metadata: Option<&Lenient<Metadata>>, ours: Option<&str>) -> bool {
    let (
        Some(ours),
        Some(Lenient::Read(Metadata {
            phone_number_id: Some(id),
        })),
    ) = (ours, metadata)
    else {
        return true;
    };
    match id {
        Value::String(id) => id.trim() == ours,
        Value::Number(id) => id.to_string() == ours,
        _ => true,
    }
}

/// A `messages` change's messages, statuses and errors, appended to `out`.
fn read_change(value: MessagesValue, at: At, ours: Option<&str>, out: &mut Notification) {
    let MessagesValue {
        metadata,
        contacts,
        messages,
        statuses,
        errors,
    } = value;
    if !addressed_to(metadata.as_ref(), ours) {
        tracing::info!(at = %at, "a notification for another business number; not ours to answer");
        out.foreign += 1;
        return;
    }
    // The first contact entry of each sender, by number and by user id: a batch has one per message.
    let mut senders: HashMap<&str, &Contact> = HashMap::with_capacity(contacts.len());
    for contact in &contacts {
        if let Lenient::Read(contact) = contact {
            for key in [&contact.wa_id, &contact.user_id].into_iter().flatten() {
                senders.entry(key.as_str()).or_insert(contact);
            }
        }
    }
    for (m, message) in messages.into_iter().enumerate() {
        let place = || format!("{at}.messages[{m}]");
        match message {
            Lenient::Read(message) => match read_message(message, &senders, &place) {
                Ok(message) => out.messages.push(message),
                Err(e) => out.unreadable.push(e),
            },
            Lenient::Unreadable(path, reason) => out
                .unreadable
                .push(WireError::new(inside(&place(), &path), reason)),
        }
    }
    for (s, status) in statuses.into_iter().enumerate() {
        let status = match status {
            Lenient::Read(status) => status,
            Lenient::Unreadable(path, reason) => {
                let field = inside(&format!("{at}.statuses[{s}]"), &path);
                out.unreadable.push(WireError::new(field, reason));
                continue;
            }
        };
        let Some(state) = DeliveryState::parse(&status.status) else {
            tracing::debug!(status = %status.status, at = %format_args!("{at}.statuses[{s}]"), "skipping an unknown status");
            continue;
        };
        out.statuses.push(StatusUpdate {
            timestamp: timestamp(&status.timestamp, format_args!("{at}.statuses[{s}]")),
            id: Wamid(status.id),
            state,
            recipient: [&status.recipient_id, &status.recipient_user_id]
                .into_iter()
                .flatten()
                .find_map(|id| WaId::parse(id)),
            error: status.errors.iter().find_map(ErrorItem::pair),
            callback: status.biz_opaque_callback_data,
        });
    }
    out.errors.extend(errors.iter().filter_map(|e| match e {
        Lenient::Read(e) => e.pair(),
        Lenient::Unreadable(..) => None,
    }));
}

/// The path of a field inside the item at `place`.
fn inside(place: &str, path: &str) -> String {
    match path.chars().next() {
        None => place.to_owned(),
        Some('[') => format!("{place}{path}"),
        Some(_) => format!("{place}.{path}"),
    }
}

#[cfg(test)]
#[path = "notification_tests.rs"]
mod tests;
