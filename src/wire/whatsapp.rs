//! Meta's WhatsApp Cloud API bodies, nothing else: the webhook signature, the notification POST
//! (messages and statuses, turned into the actors' [`InboundMessage`] and [`StatusUpdate`]), the
//! Graph API send body built from an [`OutboundMessage`](aof_actors::model::OutboundMessage), and the send response, whose error codes
//! are classified here once (see `protocols.md` §1, §2 and §2.1).
//!
//! Data enters as raw bytes from the HTTP layer and from the transport; it leaves as the actors'
//! plain types. The wire types are lenient on purpose: Meta adds fields without notice, so unknown
//! fields are ignored and optional arrays may be absent or `null`.
//!
//! - `notification`: the webhook POST body ([`parse_notification`]); `message`: one message in it.
//! - `send`: the send request ([`send_body`]) and its answer ([`parse_send_response`], [`classify`]).

use aof_actors::model::{InboundMessage, StatusUpdate};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use sha2::Sha256;

mod message;
mod notification;
mod send;
#[cfg(test)]
mod tests;

pub use notification::{parse_notification, parse_notification_for};
pub use send::{classify, parse_send_response, send_body};

/// The `object` of every WhatsApp Business notification.
const OBJECT: &str = "whatsapp_business_account";

/// A notification body that is not what Meta sends, naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct WireError {
    /// The path of the field (`entry[0].changes[0].value.messages[1].type`), or `body`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl WireError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The 4xx body: `{"error":"invalid_field","field":"…","reason":"…"}`.
    pub fn to_json(&self) -> Value {
        json!({"error": "invalid_field", "field": self.field, "reason": self.reason})
    }
}

/// What one notification POST carried, in the order Meta listed it.
#[derive(Clone, Debug, Default)]
pub struct Notification {
    /// Messages people sent, each with its sender's profile name when Meta gave one.
    pub messages: Vec<InboundMessage>,
    /// Delivery statuses of messages the bot sent.
    pub statuses: Vec<StatusUpdate>,
    /// Errors Meta reported for the whole change (`value.errors[]`): code and title.
    pub errors: Vec<(i64, String)>,
    /// Messages and statuses that could not be read, each naming its field and why; the others
    /// were read.
    pub unreadable: Vec<WireError>,
    /// Changes addressed to another business number (`metadata.phone_number_id`), not read.
    pub foreign: usize,
}

// ---- signature -------------------------------------------------------------------------------

/// Checks `X-Hub-Signature-256` (`sha256=<64 hex>`) against the raw body, in constant time.
/// A missing or malformed header is a mismatch.
pub fn verify_signature(app_secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_digest) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    if hex_digest.len() != 64 {
        return false;
    }
    let Ok(tag) = hex::decode(hex_digest) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

/// The `X-Hub-Signature-256` value Meta would send for `body` (for tests, the sandbox and the
/// load generator).
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Treats `null` like an absent field.
fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
