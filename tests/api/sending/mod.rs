//! Sending, through the real server against the fake Graph API: retries of transient failures and throttling, permanent errors reported with Meta's code,
//! the template fallback outside the 24-hour window, the daily template quota, the durable queue
//! across a restart, and the reply lane ahead of queued alerts.
//!
//! Messages are queued by test flows written into a temp flows directory at run time: a webhook
//! trigger whose JSON body lists the recipients, and a `foreach` step sending to each
//! (`common::sending`, shared with `tests/rate_window.rs`).
//!
//! - `rate`: replies ahead of queued broadcasts (the rate in every window: `tests/rate_window.rs`).
//! - `retries`: transient failures, throttling, permanent errors, the 24-hour window's fallback.
//! - `quota`: the daily template quota, for templates and for the fallback.
//! - `restart`: a queued message across a restart.

mod quota;
mod rate;
mod restart;
mod retries;
