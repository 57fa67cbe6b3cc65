//! Wire formats: the exact bodies other systems send us and we send them, as serde types, plus
//! their signatures. Nothing here does I/O; the HTTP layer hands in raw bytes and the transport
//! sends what these functions build.
//!
//! - [`whatsapp`]: Meta's webhook notifications, the `X-Hub-Signature-256` check, Graph API send
//!   bodies and responses, and the one classification of Meta's error codes.
//! - [`alertmanager`]: Prometheus Alertmanager's webhook payload.
//! - [`pagerduty`]: PagerDuty's V3 webhook envelope and its signature.

pub mod alertmanager;
pub mod pagerduty;
pub mod whatsapp;

pub use whatsapp::{
    classify, parse_notification, parse_send_response, send_body, sign, verify_signature,
    Notification, WireError,
};
