//! Identifier newtypes, so that a phone number, a message id and a queue id cannot be confused.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A person on WhatsApp: their phone number as digits only (`15551234567`), as Meta sends it in
/// `from`, or, for a person who adopted a username and hides their number, their business-scoped
/// user id (`US.13491208655302741918`, a parent id `US.ENT.…`), as Meta sends it in
/// `from_user_id`.
///
/// Configs write numbers for people (`+1 555-123-4567`); [`WaId::parse`] keeps the digits so that the
/// two compare equal.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WaId(String);

impl WaId {
    /// Keeps the digits of a phone number written any way, or takes a business-scoped user id as
    /// it is; `None` for anything else (fewer than 5 digits, letters, a name).
    pub fn parse(raw: &str) -> Option<WaId> {
        let raw = raw.trim();
        if is_user_id(raw) {
            return Some(WaId(raw.to_owned()));
        }
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

    /// Whether this is a business-scoped user id rather than a phone number: sends go to it as
    /// `recipient`, not `to`, and there is no number to show.
    pub fn is_user_id(&self) -> bool {
        is_user_id(&self.0)
    }

    /// The digits, as the Graph API wants them in `to`, or the user id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as people write it, with a leading `+` (what flows see as
    /// `trigger.user.phone`); a user id as it is, since there is no number to show.
    pub fn e164(&self) -> String {
        if self.is_user_id() {
            self.0.clone()
        } else {
            format!("+{}", self.0)
        }
    }

    /// The number (or the user id's digits) with all but the last four hidden, for logs.
    pub fn masked(&self) -> String {
        let (prefix, rest) = if self.is_user_id() {
            let cut = self.0.rfind('.').map_or(0, |i| i + 1);
            self.0.split_at(cut)
        } else {
            ("+", self.0.as_str())
        };
        let keep = rest.len().saturating_sub(4);
        format!("{prefix}{}{}", "*".repeat(keep), &rest[keep..])
    }
}

/// `CC.DIGITS` or `CC.ENT.DIGITS`: a two-letter country code, then alphanumerics (Meta's
/// business-scoped user ids and their parents).
fn is_user_id(raw: &str) -> bool {
    let mut parts = raw.split('.');
    let (Some(country), Some(mut id)) = (parts.next(), parts.next()) else {
        return false;
    };
    if id == "ENT" {
        match parts.next() {
            Some(rest) => id = rest,
            None => return false,
        }
    }
    parts.next().is_none()
        && country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
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
        assert_eq!(
            WaId::parse("US.13491208655302741918").unwrap().masked(),
            "US.****************1918"
        );
    }

    #[test]
    fn business_scoped_user_ids_are_people_too() {
        for id in [
            "US.13491208655302741918",
            "US.ENT.11815799212886844830",
            "BR.abc123",
        ] {
            let wa = WaId::parse(id).unwrap_or_else(|| panic!("{id}"));
            assert!(wa.is_user_id(), "{id}");
            assert_eq!((wa.as_str(), wa.e164()), (id, id.to_owned()));
        }
        for not in [
            "us.123", "USA.123", "US.", "US.ENT", "US.12.34", "U1.123", "Alice",
        ] {
            assert!(WaId::parse(not).is_none(), "{not}");
        }
        assert!(!WaId::parse("+1 555 123 4567").unwrap().is_user_id());
    }
}

/// An event's row in the store's inbox. The row is kept from before the event was acknowledged
/// until it was handled, so that a crash in between hands it over again instead of losing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InboxSeq(pub i64);
