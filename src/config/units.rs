//! Durations in the config. YAML gives whole numbers and the key names the unit (`send_timeout_ms`,
//! `idle_timeout_secs`, `expiry_hours`); the fields are [`Duration`]s, so the unit is read in one
//! place and the code never multiplies by hand.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// A whole number of milliseconds.
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// A whole number of seconds.
pub fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// A whole number of hours.
pub fn hours<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(|h| Duration::from_secs(h.saturating_mul(3600)))
}
