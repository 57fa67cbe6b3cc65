//! Throttling: the fake Graph API answers `130429` (throughput exceeded) to every fifth send, and
//! `messages` alerts are posted at once. Each must still reach the fake exactly once; the time it
//! takes is compared with the ideal at the configured rate.

use crate::client;
use crate::fake::FakeGraph;
use crate::fanout::{self, lost_and_duplicated};
use crate::setup::{Scratch, ONCALL, PER_SECOND};
use anyhow::bail;
use aof_actors::testing::most_in_any_window;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Every n-th send is throttled: 20 %.
const THROTTLE_EVERY: u64 = 5;

/// The throttling figures.
#[derive(Debug, Serialize)]
pub struct Throttling {
    /// Alerts posted (one send each).
    pub messages: usize,
    /// Share of sends the fake answered 130429.
    pub throttled_share: f64,
    /// Send requests the fake received in all (accepted and throttled).
    pub requests: usize,
    /// Alerts that never arrived.
    pub lost: usize,
    /// Alerts that arrived more than once.
    pub duplicates: usize,
    /// Seconds from the first POST to the last accepted send.
    pub total_s: f64,
    /// `messages / messages_per_second`: the time with no throttling at all.
    pub ideal_s: f64,
    /// `total_s / ideal_s`.
    pub vs_ideal: f64,
    /// The most send requests in any one-second window.
    pub max_in_one_second: usize,
}

/// Runs the scenario on a fresh bot.
pub async fn run(messages: usize) -> anyhow::Result<Throttling> {
    let fake = FakeGraph::start()?;
    fake.throttle_every(THROTTLE_EVERY);
    let scratch = Scratch::new("throttle")?;
    let bot = fanout::start_bot(&fake, &scratch).await?;
    let expected: Vec<(String, String)> = (0..messages)
        .map(|i| (ONCALL.to_owned(), format!("|throttled-{i}|")))
        .collect();
    let started = Instant::now();
    let bodies = (0..messages)
        .map(|i| fanout::alert("warning", &format!("throttled-{i}")))
        .collect();
    let posts = client::post_flows(&bot.address, "/alert/oncall", bodies, 16).await;
    if posts.errors > 0 {
        bail!("{} alert POSTs were refused", posts.errors);
    }
    let budget = Duration::from_secs_f64(messages as f64 / PER_SECOND as f64 * 10.0 + 60.0);
    client::until(budget, || async {
        lost_and_duplicated(&fake.sends(), &expected).0 == 0
    })
    .await;
    bot.stop()?;
    let sends = fake.sends();
    let last = sends
        .iter()
        .filter(|s| s.accepted)
        .map(|s| s.at)
        .max()
        .unwrap_or(started);
    let total = last.saturating_duration_since(started);
    let (lost, duplicates) = lost_and_duplicated(&sends, &expected);
    let ideal = messages as f64 / PER_SECOND as f64;
    let times: Vec<Instant> = sends.iter().map(|s| s.at).collect();
    Ok(Throttling {
        messages,
        throttled_share: 1.0 / THROTTLE_EVERY as f64,
        requests: sends.len(),
        lost,
        duplicates,
        total_s: (total.as_secs_f64() * 1000.0).round() / 1000.0,
        ideal_s: ideal,
        vs_ideal: ((total.as_secs_f64() / ideal) * 1000.0).round() / 1000.0,
        max_in_one_second: most_in_any_window(&times, Duration::from_secs(1)),
    })
}
