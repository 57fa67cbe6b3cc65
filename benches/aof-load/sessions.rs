//! Sessions: `senders` distinct people write one message each. Each message runs a flow that only
//! logs it (no reply, so the 80 messages/s send limit does not bound the scenario), and each person's
//! conversation is then held by an idle session actor. The bot's resident memory before and after
//! gives the cost of one idle conversation. Then the bot restarts on the same store and each person
//! writes again: the time until every conversation is back (loaded from SQLite) is the restore time.

use crate::child::Server;
use crate::client::{self, ms};
use crate::fake::FakeGraph;
use crate::setup::{self, Scratch, Signed};
use anyhow::bail;
use serde::Serialize;
use std::time::{Duration, Instant};

/// The flow every message of this scenario runs.
const NOTE_FLOW: &str = r#"apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: load-note-flow
  description: "Load generator: keeps the message in the conversation and answers nothing"
triggers:
  - platform: whatsapp
    type: message
steps:
  - name: note
    agent: logger
    action: log
    input:
      level: debug
      message: "noted"
"#;

/// The session figures.
#[derive(Debug, Serialize)]
pub struct Sessions {
    /// Distinct senders, one message each.
    pub senders: usize,
    /// Live conversations after the first pass (`/readyz` sessions).
    pub live_sessions: u64,
    /// Resident memory before the first pass, KiB (after start-up and a warm-up).
    pub rss_before_kib: u64,
    /// Resident memory once every conversation is idle, KiB.
    pub rss_after_kib: u64,
    /// `(rss_after - rss_before) / senders`, bytes.
    pub bytes_per_conversation: u64,
    /// Seconds from the first message to the last flow run of the first pass.
    pub first_pass_s: f64,
    /// Restart: from process start to `/readyz` 200, with every conversation in the store.
    pub restart_to_ready_ms: f64,
    /// Seconds from the first message of the second pass until every conversation has been
    /// restored from the store and its message handled.
    pub restore_s: f64,
    /// 503 answers over both passes (each retried 20 ms later, as Meta would).
    pub busy_answers: usize,
}

fn messages(pass: u32, senders: usize) -> Vec<Signed> {
    (0..senders)
        .map(|i| {
            let from = setup::sender(300, i as u32);
            setup::text_notification(
                &from,
                &format!("wamid.load.s{pass}.{i}"),
                &format!("note {pass}"),
            )
        })
        .collect()
}

/// Posts `bodies` and waits until the bot has finished `runs` flow runs in all; seconds taken and
/// how many answers were 503 (retried).
async fn pass(bot: &Server, bodies: Vec<Signed>, runs: usize) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let posted =
        client::post_signed(&format!("{}/webhooks/whatsapp", bot.address), bodies, 32).await;
    if posted.errors > 0 {
        bail!("{} notifications were refused", posted.errors);
    }
    let http = client::client(1);
    let done = client::until(Duration::from_secs(1800), || async {
        client::counter(&http, &bot.address, "aof_flow_runs_total")
            .await
            .is_some_and(|n| n >= runs as f64)
    })
    .await;
    if !done {
        bail!("the bot did not finish {runs} flow runs within 30 minutes");
    }
    Ok((started.elapsed().as_secs_f64(), posted.busy))
}

/// Runs the scenario on a fresh bot.
pub async fn run(senders: usize) -> anyhow::Result<Sessions> {
    let fake = FakeGraph::start()?;
    let scratch = Scratch::new("sessions")?;
    let flows = setup::flows_with(scratch.path(), &[("load-note-flow.yaml", NOTE_FLOW)])?;
    let started = setup::start_bot(scratch.path(), &fake.address, "load-note-flow", &flows).await?;
    let (bot, config, port) = (started.bot, started.config, started.port);
    let log = scratch.path().join("bot.log");
    let warmup: Vec<Signed> = (0..1000)
        .map(|i| {
            setup::text_notification(
                &setup::sender(301, i),
                &format!("wamid.load.sw.{i}"),
                "note",
            )
        })
        .collect();
    pass(&bot, warmup, 1000).await?;
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let rss_before = bot.rss_kib()?;

    let (first_pass, busy_first) = pass(&bot, messages(1, senders), 1000 + senders).await?;
    // The bot gives freed memory back every 10 s: what stays is what idle conversations hold.
    actix_web::rt::time::sleep(Duration::from_secs(12)).await;
    let rss_after = bot.rss_kib()?;
    let http = client::client(1);
    let live = client::readyz(&http, &bot.address)
        .await
        .and_then(|r| r["sessions"].as_u64())
        .unwrap_or(0);
    bot.stop()?;

    let mut bot = Server::bot(&config, port, &log)?;
    let restart = bot.ready("/readyz", Duration::from_secs(120)).await?;
    let (restore, busy_restore) = pass(&bot, messages(2, senders), senders).await?;
    bot.stop()?;

    let delta = rss_after.saturating_sub(rss_before);
    Ok(Sessions {
        senders,
        live_sessions: live,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        bytes_per_conversation: delta * 1024 / senders.max(1) as u64,
        first_pass_s: (first_pass * 1000.0).round() / 1000.0,
        restart_to_ready_ms: ms(restart),
        restore_s: (restore * 1000.0).round() / 1000.0,
        busy_answers: busy_first + busy_restore,
    })
}

/// Cold start: process start to `/readyz` 200 with the shipped flows and a new store, `runs` times.
#[derive(Debug, Serialize)]
pub struct ColdStart {
    /// Starts measured.
    pub runs: usize,
    /// Median, ms.
    pub median_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

/// Starts the bot `runs` times on a fresh directory each time.
pub async fn cold_start(runs: usize) -> anyhow::Result<ColdStart> {
    let fake = FakeGraph::start()?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let scratch = Scratch::new("cold")?;
        let flows = setup::shipped_flows();
        let started =
            setup::start_bot(scratch.path(), &fake.address, "whatsapp-help-flow", &flows).await?;
        times.push(started.ready_after);
        started.bot.stop()?;
    }
    times.sort();
    Ok(ColdStart {
        runs,
        median_ms: client::quantile_ms(&times, 0.5),
        max_ms: times.last().copied().map_or(0.0, ms),
    })
}
