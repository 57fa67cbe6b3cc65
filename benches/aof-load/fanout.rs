//! Fan-out: the worst day. First, alerts posted one at a time on an idle bot, each timed from its
//! POST to the first Graph API call that carries it. Then a war room of `members` people is set up
//! (an outage report, then `JOIN`s), and the storm: `alerts` alerts to the on-call engineer and one
//! update in the war room (a relay to every other member), all at once, at
//! `messages_per_second: 50`. What arrives at the fake Graph API is checked against what was asked.

use crate::child::Server;
use crate::client::{self, ms, quantile_ms};
use crate::fake::{FakeGraph, Send};
use crate::setup::{self, Scratch, ONCALL, PER_SECOND};
use crate::storm::alerts_told;
use anyhow::{bail, Context as _};
use aof_actors::testing::most_in_any_window;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The fan-out figures.
#[derive(Debug, Serialize)]
pub struct Fanout {
    /// Alerts in the storm.
    pub alerts: usize,
    /// War-room members (the relay reaches all but its author).
    pub room_members: usize,
    /// `messages_per_second`.
    pub configured_per_second: u32,
    /// Deliveries the storm asked for (alerts + relays; alerts waiting for the engineer may be
    /// folded into digests, so there can be fewer sends).
    pub storm_sends: usize,
    /// Sends per second from the storm's first send to its last.
    pub achieved_per_second: f64,
    /// `achieved_per_second / configured_per_second`.
    pub rate_ratio: f64,
    /// The most sends the fake received in any one-second window, over the whole run.
    pub max_in_one_second: usize,
    /// Asked-for deliveries that never arrived.
    pub lost: usize,
    /// Deliveries that arrived more than once.
    pub duplicates: usize,
    /// Seconds from the storm's start to its last delivery.
    pub drain_s: f64,
    /// Alert POST answers during the storm: median, ms.
    pub storm_post_p50_ms: f64,
    /// Alert POST answers during the storm: 99th percentile, ms.
    pub storm_post_p99_ms: f64,
    /// Alerts timed one at a time on the idle bot.
    pub probes: usize,
    /// From an alert's POST to the first Graph API call for it: median, ms.
    pub alert_to_first_send_p50_ms: f64,
    /// The same, 99th percentile, ms.
    pub alert_to_first_send_p99_ms: f64,
    /// The same, slowest, ms.
    pub alert_to_first_send_max_ms: f64,
}

/// Deliveries expected: (recipient, a text the send must contain).
type Expected = Vec<(String, String)>;

/// How many expected deliveries arrived (accepted) zero times, and how many more than once.
pub fn lost_and_duplicated(sends: &[Send], expected: &Expected) -> (usize, usize) {
    let mut by_recipient: HashMap<&str, Vec<&str>> = HashMap::new();
    for send in sends.iter().filter(|s| s.accepted) {
        by_recipient.entry(&send.to).or_default().push(&send.what);
    }
    let (mut lost, mut duplicates) = (0, 0);
    for (to, needle) in expected {
        let n = by_recipient.get(to.as_str()).map_or(0, |texts| {
            texts.iter().filter(|t| t.contains(needle.as_str())).count()
        });
        match n {
            0 => lost += 1,
            1 => {}
            more => duplicates += more - 1,
        }
    }
    (lost, duplicates)
}

/// A bot on the shipped flows against `fake`.
pub async fn start_bot(fake: &FakeGraph, scratch: &Scratch) -> anyhow::Result<Server> {
    let flows = setup::shipped_flows();
    let started =
        setup::start_bot(scratch.path(), &fake.address, "whatsapp-help-flow", &flows).await?;
    Ok(started.bot)
}

/// An alert for the on-call engineer whose message is `message`.
pub fn alert(severity: &str, message: &str) -> serde_json::Value {
    json!({ "severity": severity, "service": "edge", "message": message })
}

/// Times `probes` alerts, one every 100 ms, from POST to the first send that carries each.
async fn probe(fake: &FakeGraph, bot: &Server, probes: usize) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    let http = client::client(2);
    for i in 0..probes {
        let needle = format!("|probe-{i}|");
        let posted = Instant::now();
        let (base, http) = (bot.address.clone(), http.clone());
        let post = actix_web::rt::spawn(async move {
            client::post_flow(
                &http,
                &base,
                "/alert/oncall",
                &alert("critical", &format!("probe-{i}")),
            )
            .await
        });
        let send = loop {
            if let Some(send) = fake.first_containing(&needle) {
                break send;
            }
            if posted.elapsed() > Duration::from_secs(10) {
                bail!("alert probe-{i} reached no send within 10 s");
            }
            actix_web::rt::time::sleep(Duration::from_micros(500)).await;
        };
        latencies.push(send.at.saturating_duration_since(posted));
        if !post.await.unwrap_or(false) {
            bail!("POST /alert/oncall for probe-{i} was refused");
        }
        actix_web::rt::time::sleep(Duration::from_millis(100).saturating_sub(posted.elapsed()))
            .await;
    }
    latencies.sort();
    Ok(latencies)
}

/// Opens an incident's war room with `members` people; their numbers, the reporter first.
pub async fn war_room(
    fake: &FakeGraph,
    bot: &Server,
    members: usize,
) -> anyhow::Result<Vec<String>> {
    let http = client::client(16);
    let reporter = setup::sender(200, 0);
    if !client::say(
        &http,
        &bot.address,
        &reporter,
        "wamid.load.room.open",
        "the edge is down",
    )
    .await
    {
        bail!("the outage report was refused");
    }
    let opened = client::until(Duration::from_secs(30), || async {
        fake.first_containing("Incident INC-").is_some()
    })
    .await;
    let text = fake
        .first_containing("Incident INC-")
        .filter(|_| opened)
        .context("the outage report opened no incident within 30 s")?
        .what;
    let incident: String = text
        .split_whitespace()
        .find(|w| w.starts_with("INC-"))
        .context("an incident id in the reply")?
        .to_owned();
    // The reporter and the on-call engineer are in; the rest join.
    let joiners: Vec<String> = (1..members.saturating_sub(1) as u32)
        .map(|i| setup::sender(200, i))
        .collect();
    let bodies = joiners
        .iter()
        .enumerate()
        .map(|(i, who)| {
            setup::text_notification(
                who,
                &format!("wamid.load.join.{i}"),
                &format!("JOIN {incident}"),
            )
        })
        .collect();
    let joined =
        client::post_signed(&format!("{}/webhooks/whatsapp", bot.address), bodies, 16).await;
    if joined.errors > 0 {
        bail!("{} JOIN messages were refused", joined.errors);
    }
    let all_welcomed = client::until(Duration::from_secs(120), || async {
        let sends = fake.sends();
        joiners
            .iter()
            .all(|j| sends.iter().any(|s| s.accepted && &s.to == j))
    })
    .await;
    if !all_welcomed {
        bail!("not every member was welcomed to {incident} within 120 s");
    }
    let mut people = vec![reporter, ONCALL.to_owned()];
    people.extend(joiners);
    Ok(people)
}

/// Runs the scenario on a fresh bot.
pub async fn run(alerts: usize, members: usize, probes: usize) -> anyhow::Result<Fanout> {
    let fake = FakeGraph::start()?;
    let scratch = Scratch::new("fanout")?;
    let bot = start_bot(&fake, &scratch).await?;
    let latencies = probe(&fake, &bot, probes).await?;
    let people = war_room(&fake, &bot, members).await?;
    // The storm starts on an empty queue (the room's join notices and welcomes sent).
    let http = client::client(1);
    let idle = client::until(Duration::from_secs(120), || async {
        client::readyz(&http, &bot.address)
            .await
            .is_some_and(|r| r["queued"] == 0 && r["in_flight"] == 0)
    })
    .await;
    if !idle {
        bail!("the queue did not drain within 120 s after the war room was set up");
    }
    let before = fake.count();

    // The relay to every other member; the alerts are counted apart, since those waiting for the
    // engineer are folded into digests that name them by id (`storm::alerts_told`).
    let update = "storm update from the edge";
    let expected: Expected = people[1..]
        .iter()
        .map(|p| (p.clone(), update.to_owned()))
        .collect();
    let started = Instant::now();
    let http = client::client(1);
    let (reporter, base) = (people[0].clone(), bot.address.clone());
    let relay = actix_web::rt::spawn(async move {
        client::say(&http, &base, &reporter, "wamid.load.room.update", update).await
    });
    let bodies = (0..alerts)
        .map(|i| alert("critical", &format!("storm-{i}")))
        .collect();
    let posts = client::post_flows(&bot.address, "/alert/oncall", bodies, 16).await;
    if !relay.await.unwrap_or(false) || posts.errors > 0 {
        bail!("the storm was refused: {} alert POSTs failed", posts.errors);
    }
    let asked = alerts + expected.len();
    let budget = Duration::from_secs_f64(asked as f64 / PER_SECOND as f64 * 2.0 + 30.0);
    client::until(budget, || async {
        let sends = fake.sends();
        lost_and_duplicated(&sends, &expected).0 == 0 && alerts_told(&sends, before, alerts).0 == 0
    })
    .await;
    let drain = started.elapsed();
    bot.stop()?;

    let sends = fake.sends();
    let storm: Vec<Instant> = sends[before..].iter().map(|s| s.at).collect();
    let (room_lost, room_duplicates) = lost_and_duplicated(&sends, &expected);
    let (alerts_lost, alerts_duplicated) = alerts_told(&sends, before, alerts);
    let (lost, duplicates) = (room_lost + alerts_lost, room_duplicates + alerts_duplicated);
    let span = match (storm.first(), storm.last()) {
        (Some(first), Some(last)) => last.saturating_duration_since(*first),
        _ => Duration::ZERO,
    };
    let achieved = if span.is_zero() {
        0.0
    } else {
        (storm.len() - 1) as f64 / span.as_secs_f64()
    };
    let all: Vec<Instant> = sends.iter().map(|s| s.at).collect();
    Ok(Fanout {
        alerts,
        room_members: people.len(),
        configured_per_second: PER_SECOND,
        storm_sends: asked,
        achieved_per_second: (achieved * 100.0).round() / 100.0,
        rate_ratio: (achieved / PER_SECOND as f64 * 1000.0).round() / 1000.0,
        max_in_one_second: most_in_any_window(&all, Duration::from_secs(1)),
        lost,
        duplicates,
        drain_s: (drain.as_secs_f64() * 1000.0).round() / 1000.0,
        storm_post_p50_ms: posts.p50_ms,
        storm_post_p99_ms: posts.p99_ms,
        probes,
        alert_to_first_send_p50_ms: quantile_ms(&latencies, 0.50),
        alert_to_first_send_p99_ms: quantile_ms(&latencies, 0.99),
        alert_to_first_send_max_ms: latencies.last().copied().map_or(0.0, ms),
    })
}
