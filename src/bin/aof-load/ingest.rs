//! Ingest: signed WhatsApp notifications posted to the bot as fast as it answers, at two
//! concurrency levels, with the flows they start (HELP and STATUS) running; then the same load
//! against a bare actix-web handler that only answers 200. The ratio of the two is how close the
//! bot's intake comes to the framework's floor on this machine.

use crate::child::{free_port, Server};
use crate::client::{self, Summary};
use crate::fake::FakeGraph;
use crate::setup::{self, BotConfig, Scratch, Signed};
use serde::Serialize;
use std::time::Duration;

/// One concurrency level.
#[derive(Debug, Serialize)]
pub struct Level {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The bot.
    pub ours: Summary,
    /// The bare handler.
    pub bare: Summary,
    /// `ours.per_second / bare.per_second`.
    pub ratio: f64,
    /// Notifications fully handled per second: from the first POST until the flow of every message
    /// has run (HELP and STATUS; each run's reply then waits in the send queue at the configured
    /// rate). Below `ours.per_second` when the bot answers faster than it works through a backlog.
    pub handled_per_second: f64,
}

/// `count` notifications from 500 senders, alternately `HELP` and `STATUS`.
fn bodies(tag: &str, count: usize) -> Vec<Signed> {
    (0..count)
        .map(|i| {
            let from = setup::sender(100, (i % 500) as u32);
            let text = if i % 2 == 0 { "HELP" } else { "STATUS" };
            setup::text_notification(&from, &format!("wamid.load.{tag}.{i}"), text)
        })
        .collect()
}

async fn ours(
    fake: &FakeGraph,
    concurrency: usize,
    requests: usize,
    warmup: usize,
) -> anyhow::Result<(Summary, f64)> {
    let scratch = Scratch::new("ingest")?;
    let port = free_port()?;
    let flows = setup::shipped_flows();
    let config = setup::write_config(
        scratch.path(),
        &BotConfig {
            port,
            graph: &fake.address,
            per_second: 50,
            default_flow: "whatsapp-help-flow",
            flows: &flows,
        },
    )?;
    let mut bot = Server::bot(&config, port, &scratch.path().join("bot.log"))?;
    bot.ready("/readyz", Duration::from_secs(30)).await?;
    let url = format!("{}/webhooks/whatsapp", bot.address);
    let tag = format!("c{concurrency}");
    client::post_signed(&url, bodies(&format!("{tag}w"), warmup), concurrency).await;
    let http = client::client(1);
    let warm = client::until(Duration::from_secs(300), || async {
        client::counter(&http, &bot.address, "aof_flow_runs_total")
            .await
            .is_some_and(|n| n >= warmup as f64)
    })
    .await;
    if !warm {
        anyhow::bail!(
            "the bot did not run the flows of the {warmup} warm-up messages in 5 minutes"
        );
    }
    let before = warmup as f64;
    let started = std::time::Instant::now();
    let summary = client::post_signed(&url, bodies(&tag, requests), concurrency).await;
    let target = before + requests as f64;
    let handled = client::until(Duration::from_secs(600), || async {
        client::counter(&http, &bot.address, "aof_flow_runs_total")
            .await
            .is_some_and(|n| n >= target)
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    bot.stop()?;
    if !handled {
        anyhow::bail!("the bot did not run the flows of {requests} messages within 10 minutes");
    }
    Ok((summary, (requests as f64 / elapsed).round()))
}

async fn bare(concurrency: usize, requests: usize, warmup: usize) -> anyhow::Result<Summary> {
    let scratch = Scratch::new("bare")?;
    let port = free_port()?;
    let mut server = Server::bare(port, &scratch.path().join("bare.log"))?;
    server.ready("/", Duration::from_secs(10)).await?;
    let url = format!("{}/webhooks/whatsapp", server.address);
    client::post_signed(&url, bodies("bw", warmup), concurrency).await;
    let summary = client::post_signed(&url, bodies("b", requests), concurrency).await;
    server.stop()?;
    Ok(summary)
}

/// Runs every level: the bot first, then the bare handler, each on a fresh process.
pub async fn run(levels: &[usize], requests: usize, warmup: usize) -> anyhow::Result<Vec<Level>> {
    let fake = FakeGraph::start()?;
    let mut out = Vec::new();
    for &concurrency in levels {
        let (ours, handled_per_second) = ours(&fake, concurrency, requests, warmup).await?;
        let bare = bare(concurrency, requests, warmup).await?;
        let ratio = if bare.per_second > 0.0 {
            ours.per_second / bare.per_second
        } else {
            0.0
        };
        out.push(Level {
            concurrency,
            ours,
            bare,
            ratio: (ratio * 1000.0).round() / 1000.0,
            handled_per_second,
        });
    }
    Ok(out)
}
