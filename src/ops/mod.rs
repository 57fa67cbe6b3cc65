//! The ops domain, apart from how its events arrive (`http`) and how flows ask for it (`agents`):
//! what an alert from another system means for the open ones and which alert a person means
//! ([`alerts`]), how those systems' payloads map to a page ([`intake`], Datadog's in [`datadog`]), who is on call
//! ([`oncall`]), who approves what and how a decision is taken ([`approvals`]), incidents and
//! their timelines ([`incidents`]), and war rooms ([`war_room`]); what WHO says outside a room ([`who`]); what waits for one person, said in one message
//! ([`digest`]).
//!
//! A rule that does not do what was asked says why in a [`Refused`]: an expected outcome the
//! person is told in a sentence, or the store failing.

pub mod alerts;
pub mod approvals;
pub mod cover;
pub mod datadog;
pub mod digest;
pub mod incidents;
pub mod intake;
pub mod oncall;
pub mod replies;
pub mod silence;
pub mod war_room;
pub mod who;

use aof_actors::ports::StoreError;

/// Why a rule did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// An expected outcome (already decided, unknown id, nothing to acknowledge), said as the
    /// sentence the person gets.
    #[error("{0}")]
    Answer(String),
    /// The store failed; nothing was decided.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something else failed on the way (a message could not be queued, a record is missing).
    #[error("{0}")]
    Failed(String),
}

/// Unix milliseconds as people read them, as `format_time` writes (`2026-11-26 17:02 UTC`).
pub fn when(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "an unknown time".to_owned())
}
