//! Identifier newtypes, so that a phone number, a message id and a queue id cannot be confused.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A WhatsApp user id: the phone number as digits only (`15551234567`), as Meta sends it in `from`.
///
/// Configs write numbers for people (`+1 555-123-4567`); [`WaId::parse`] keeps the digits so that the
/// two compare equal.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WaId(String);

impl WaId {
    /// Keeps the digits of a phone number written any way; `None` when it holds fewer than 5 digits
    /// or letters, which no phone number does.
    pub fn parse(raw: &str) -> Option<WaId> {
        let mut digits = String::with_capacity(raw.len());
        for c in raw.chars() {
            match c {
                '0'..='9' => digits.push(c),
                '+' | ' ' | '-' | '(' | ')' | '.' => {}
                _ => return None,
            }
        }
        (digits.len() >= 5).then_some(WaId(digits))
    }

    /// The digits, as the Graph API wants them in `to`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as people write it, with a leading `+` (what flows see as `trigger.user.phone`).
    pub fn e164(&self) -> String {
        format!("+{}", self.0)
    }

    /// The number with all but its last four digits hidden, for logs.
    pub fn masked(&self) -> String {
        let keep = self.0.len().saturating_sub(4);
        format!("+{}{}", "*".repeat(keep), &self.0[keep..])
    }
}

impl fmt::Debug for WaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WaId({})", self.masked())
    }
}

/// A WhatsApp message id (`wamid.…`): the key of dedup, statuses and replies in a thread.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Wamid(pub String);

impl Wamid {
    /// The id as Meta wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Wamid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a message in the outbound queue; stable across restarts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

/// The id of one flow run, for logs, the run record and the HTTP 202 answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

/// A short random id with a prefix (`job_3f9a…`), unique enough for queue entries, runs and timers.
pub fn new_id(prefix: &str) -> String {
    use rand::Rng;
    let n: u128 = rand::rng().random();
    format!("{prefix}_{:024x}", n & ((1u128 << 96) - 1))
}

impl RunId {
    /// A fresh run id (`run_…`).
    pub fn new() -> RunId {
        RunId(new_id("run"))
    }

    /// The run of an inbox row: the same after a restart, so the resumed run finds its journal
    /// and the sends it already queued.
    pub fn of_inbox(seq: InboxSeq) -> RunId {
        RunId(format!("run_inbox_{}", seq.0))
    }

    /// The run of a timer, the same way.
    pub fn of_timer(timer_id: &str) -> RunId {
        RunId(format!("run_{timer_id}"))
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_written_differently_compare_by_digits() {
        assert_eq!(WaId::parse("+1 555-123-4567"), WaId::parse("15551234567"));
        assert_eq!(
            WaId::parse("+1 (555) 123.4567").unwrap().as_str(),
            "15551234567"
        );
        assert!(WaId::parse("alice").is_none());
        assert!(WaId::parse("+12").is_none());
    }

    #[test]
    fn masked_numbers_show_only_the_last_four_digits() {
        assert_eq!(WaId::parse("15551234567").unwrap().masked(), "+*******4567");
    }
}

/// An event's row in the store's inbox. The row is kept from before the event was acknowledged
/// until it was handled, so that a crash in between hands it over again instead of losing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InboxSeq(pub i64);
