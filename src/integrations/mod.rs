//! Clients of the ops services the agents talk to besides WhatsApp. Each is built from the loaded
//! config where it is used and speaks the service's own API; agents turn its answers into flow
//! outputs.
//!
//! - [`pagerduty`]: PagerDuty's REST API v2 (incident writes, on-call lookups).

pub mod pagerduty;
