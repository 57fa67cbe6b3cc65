//! Ingest: signed WhatsApp notifications posted to the bot as fast as it answers, at two
//! concurrency levels, with the flows they start (HELP and STATUS) running; then the same load
//! against a bare actix-web handler that only answers 200. The ratio of the two is how close the
//! bot's intake comes to the framework's floor on this machine.

use crate::child::{free_port, Server};
use crate::client::{self, Summary};
use crate::fake::FakeGraph;
use crate::setup::{self, Scratch, Signed};
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

/// Posts `bodies` to the bot and waits until their flows have run (`runs` in all since start);
/// the HTTP summary and the messages handled per second.
async fn ours(
    bot: &Server,
    bodies: Vec<Signed>,
    runs: usize,
    concurrency: usize,
) -> anyhow::Result<(Summary, f64)> {
    let count = bodies.len();
    let url = format!("{}/webhooks/whatsapp", bot.address);
    let http = client::client(1);
    let started = std::time::Instant::now();
    let summary = client::post_signed(&url, bodies, concurrency).await;
    let handled = client::until(Duration::from_secs(600), || async {
        client::counter(&http, &bot.address, "aof_flow_runs_total")
            .await
            .is_some_and(|n| n >= runs as f64)
    })
    .await;
    if !handled {
        anyhow::bail!("the bot did not run the flows of {count} messages within 10 minutes");
    }
    Ok((
        summary,
        (count as f64 / started.elapsed().as_secs_f64()).round(),
    ))
}

/// The round whose throughput is the median.
fn median(mut rounds: Vec<Summary>) -> Summary {
    rounds.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    rounds.swap_remove(rounds.len() / 2)
}

/// Each level on a fresh bot and a fresh bare server: a warm-up, then `rounds` rounds of `requests`
/// notifications to each in turn (so that both see the same moments of a noisy machine); the
/// median round of each. The bot's store is SQLite beside it, or `storage_url` (PostgreSQL).
pub async fn run(
    levels: &[usize],
    requests: usize,
    warmup: usize,
    rounds: usize,
    storage_url: Option<&str>,
) -> anyhow::Result<Vec<Level>> {
    let fake = FakeGraph::start()?;
    let mut out = Vec::new();
    for &concurrency in levels {
        let scratch = Scratch::new("ingest")?;
        let flows = setup::shipped_flows();
        let extras = setup::Extras {
            storage_url,
            ..setup::Extras::default()
        };
        let bot = setup::start_bot_with(
            scratch.path(),
            &fake.address,
            "whatsapp-help-flow",
            &flows,
            &extras,
        )
        .await?
        .bot;
        let port = free_port()?;
        let mut bare = Server::bare(port, &scratch.path().join("bare.log"))?;
        bare.ready("/", Duration::from_secs(10)).await?;
        let bare_url = format!("{}/webhooks/whatsapp", bare.address);
        let tag = format!("c{concurrency}");
        ours(
            &bot,
            bodies(&format!("{tag}w"), warmup),
            warmup,
            concurrency,
        )
        .await?;
        client::post_signed(&bare_url, bodies("bw", warmup), concurrency).await;
        let (mut mine, mut theirs, mut handled) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let runs = warmup + (round + 1) * requests;
            let (summary, rate) = ours(
                &bot,
                bodies(&format!("{tag}r{round}"), requests),
                runs,
                concurrency,
            )
            .await?;
            mine.push(summary);
            handled.push(rate);
            theirs.push(client::post_signed(&bare_url, bodies("b", requests), concurrency).await);
        }
        bot.stop()?;
        bare.stop()?;
        handled.sort_by(f64::total_cmp);
        let (ours, bare) = (median(mine), median(theirs));
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
            handled_per_second: handled[handled.len() / 2],
        });
    }
    Ok(out)
}
