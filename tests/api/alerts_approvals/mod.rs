//! The `alert-manager` and `approval-manager` agents through the real server: alerts created by a
//! webhook flow (deduplicated by fingerprint), `ACK` finding the alert the conversation is about,
//! acknowledge and resolve recorded with actor and time; approvers from config per environment and
//! service, non-approvers refused, the first of two racing decisions winning, expired requests
//! refused, and an approver's open requests listed.
//!
//! The flows are written here, into a temporary flows directory of their own, so that these tests
//! depend on the two agents and the engine only.
//!
//! - `flows`: the test flows and the directory they are written to.
//! - `support`: the people directory and approvers, starting the server, and driving it (run a
//!   webhook flow, say something and read the answer).
//! - `alerts`: alerts created, deduplicated, acknowledged and resolved.
//! - `approvals`: approvers per environment and service, refusals, races, expiry, pending lists.

mod alerts;
mod approvals;
mod flows;
mod support;
