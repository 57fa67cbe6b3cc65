//! Flows through the real server: the shipped status check, step features (condition, foreach,
//! on_empty, on_error with retries), the scheduler agent (also across a restart), flow webhooks,
//! and the health, readiness and metrics endpoints.

mod channels;
mod health;
mod scheduler;
mod status_check;
mod step_errors;
mod steps;
mod webhooks;

use chrono::{NaiveDateTime, Utc};

/// A time as `format_time` writes it (`2026-11-26 17:02 UTC`), checked to be `hours` from now.
fn assert_time_from_now(text: &str, hours: i64) {
    let at = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M UTC")
        .unwrap_or_else(|e| panic!("`{text}` is not a format_time time: {e}"));
    let expected = Utc::now().naive_utc() + chrono::Duration::hours(hours);
    let off = (at - expected).num_seconds().abs();
    assert!(off <= 120, "`{text}` is {off}s away from now + {hours}h");
}
