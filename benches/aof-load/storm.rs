//! Storm: the fan-out against a fake that enforces WhatsApp's pair rate (one message every 6 s to
//! the same person, 3 borrowed; 131056 beyond), with the bot's defaults (paced per person, what
//! waits folded). `alerts` alerts to the one on-call engineer, and a busy war room of `members`
//! people (`updates` relays in a row), at once. What counts is what a person gets: every alert
//! named in a page or a digest within a minute, no 131056, a handful of messages a minute; every
//! relay line reaching every other member once, in as few messages.

use crate::client::{self, ms};
use crate::digests::named_in;
use crate::fake::{FakeGraph, Send};
use crate::fanout::{alert, war_room};
use crate::setup::{self, Extras, Scratch, ONCALL};
use anyhow::bail;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// WhatsApp's pair rate, as the fake enforces it and the bot paces to it.
const EVERY: Duration = Duration::from_secs(6);
const BURST: u32 = 3;
const MINUTE: Duration = Duration::from_secs(60);

/// The storm figures.
#[derive(Debug, Serialize)]
pub struct Storm {
    /// Alerts to the on-call engineer.
    pub alerts: usize,
    /// War-room members.
    pub room_members: usize,
    /// Relays written in a row to the room.
    pub room_updates: usize,
    /// From the storm's first POST to the engineer's first page, ms.
    pub first_page_ms: f64,
    /// Seconds until every alert was named to the engineer (a page or a digest).
    pub all_named_s: f64,
    /// Alerts not named within a minute.
    pub lost: usize,
    /// Alerts named more than once.
    pub duplicated: usize,
    /// Sends the fake answered 131056 (pair rate exceeded), over the whole run.
    pub answered_131056: usize,
    /// WhatsApp messages the engineer received in the storm's first minute.
    pub engineer_messages_first_minute: usize,
    /// Relay lines (member × update) that never arrived.
    pub room_lines_lost: usize,
    /// Relay lines that arrived more than once.
    pub room_lines_duplicated: usize,
    /// Most messages one member received for the updates.
    pub room_messages_per_member_max: usize,
    /// Seconds until every member had every update.
    pub room_drain_s: f64,
}

/// What the engineer has been told since `from`: pages sent alone, and every id the digests named
/// (an id in two digests twice).
fn told(sends: &[Send], from: usize) -> (usize, Vec<u64>) {
    let mut pages = 0;
    let mut ids = Vec::new();
    for send in sends[from..]
        .iter()
        .filter(|s| s.accepted && s.to == ONCALL)
    {
        if send.what.contains("|storm-") {
            pages += 1;
        } else if send.what.contains("alerts firing") {
            ids.extend(named_in(&send.what));
        }
    }
    (pages, ids)
}

/// Of `alerts` alerts to the engineer since send `from`, how many were not named (a page or a
/// digest) and how many were named more than once.
pub fn alerts_told(sends: &[Send], from: usize, alerts: usize) -> (usize, usize) {
    let (pages, ids) = told(sends, from);
    let distinct: BTreeSet<u64> = ids.iter().copied().collect();
    let named = pages + distinct.len();
    (
        alerts.saturating_sub(named),
        (ids.len() - distinct.len()) + named.saturating_sub(alerts),
    )
}

/// Per member, how many times each update line arrived, and how many messages carried them.
fn relayed(sends: &[Send], from: usize, updates: usize) -> HashMap<&str, (Vec<usize>, usize)> {
    let mut seen: HashMap<&str, (Vec<usize>, usize)> = HashMap::new();
    for send in sends[from..].iter().filter(|s| s.accepted) {
        let lines: Vec<usize> = (0..updates)
            .filter(|i| send.what.contains(&format!("room update {i} ")))
            .collect();
        if lines.is_empty() {
            continue;
        }
        let entry = seen
            .entry(send.to.as_str())
            .or_insert_with(|| (vec![0; updates], 0));
        entry.1 += 1;
        for i in lines {
            entry.0[i] += 1;
        }
    }
    seen
}

/// Runs the scenario on a fresh bot.
pub async fn run(alerts: usize, members: usize, updates: usize) -> anyhow::Result<Storm> {
    let fake = FakeGraph::start()?;
    fake.enforce_pair_rate(EVERY, BURST);
    let scratch = Scratch::new("storm")?;
    let extras = Extras {
        pair: Some((EVERY.as_millis() as u64, BURST)),
        ..Extras::default()
    };
    let flows = setup::shipped_flows();
    let started = setup::start_bot_with(
        scratch.path(),
        &fake.address,
        "whatsapp-help-flow",
        &flows,
        &extras,
    )
    .await?;
    let bot = started.bot;
    let people = war_room(&fake, &bot, members).await?;
    let http = client::client(1);
    let idle = client::until(Duration::from_secs(300), || async {
        client::readyz(&http, &bot.address)
            .await
            .is_some_and(|r| r["queued"] == 0 && r["in_flight"] == 0)
    })
    .await;
    if !idle {
        bail!("the queue did not drain within 300 s after the war room was set up");
    }
    // Everyone's pace back to rest, as on a quiet night before the storm.
    actix_web::rt::time::sleep(EVERY * BURST).await;
    let before = fake.count();
    let started = Instant::now();

    let (reporter, base) = (people[0].clone(), bot.address.clone());
    let room = actix_web::rt::spawn(async move {
        let http = client::client(1);
        let mut ok = true;
        for i in 0..updates {
            let (wamid, text) = (
                format!("wamid.load.storm.room.{i}"),
                format!("room update {i} from the edge"),
            );
            ok &= client::say(&http, &base, &reporter, &wamid, &text).await;
        }
        ok
    });
    let bodies = (0..alerts)
        .map(|i| alert("critical", &format!("storm-{i}")))
        .collect();
    let posts = client::post_flows(&bot.address, "/alert/oncall", bodies, 16).await;
    if !room.await.unwrap_or(false) || posts.errors > 0 {
        bail!("the storm was refused: {} alert POSTs failed", posts.errors);
    }

    let (mut first_page, mut all_named, mut room_done) = (None, None, None);
    let others: Vec<&String> = people[1..].iter().collect();
    // The whole first minute: what the engineer gets in it is the figure.
    while started.elapsed() < MINUTE {
        let sends = fake.sends();
        let (pages, ids) = told(&sends, before);
        if first_page.is_none() && (pages > 0 || !ids.is_empty()) {
            let at = sends[before..]
                .iter()
                .find(|s| s.accepted && s.to == ONCALL)
                .map(|s| s.at.saturating_duration_since(started));
            first_page = at;
        }
        if all_named.is_none() && alerts_told(&sends, before, alerts).0 == 0 {
            all_named = Some(started.elapsed());
        }
        let seen = relayed(&sends, before, updates);
        if room_done.is_none()
            && others.iter().all(|o| {
                seen.get(o.as_str())
                    .is_some_and(|(n, _)| n.iter().all(|c| *c >= 1))
            })
        {
            room_done = Some(started.elapsed());
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    bot.stop()?;

    let sends = fake.sends();
    let (lost, duplicated) = alerts_told(&sends, before, alerts);
    let window = all_named.unwrap_or(MINUTE);
    let engineer_messages = sends[before..]
        .iter()
        .filter(|s| {
            s.accepted && s.to == ONCALL && s.at.saturating_duration_since(started) <= MINUTE
        })
        .count();
    let seen = relayed(&sends, before, updates);
    let (mut lines_lost, mut lines_twice, mut most) = (0, 0, 0);
    for other in &others {
        match seen.get(other.as_str()) {
            Some((counts, messages)) => {
                lines_lost += counts.iter().filter(|c| **c == 0).count();
                lines_twice += counts.iter().map(|c| c.saturating_sub(1)).sum::<usize>();
                most = most.max(*messages);
            }
            None => lines_lost += updates,
        }
    }
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Ok(Storm {
        alerts,
        room_members: people.len(),
        room_updates: updates,
        first_page_ms: first_page.map_or(f64::NAN, ms),
        all_named_s: round(window.as_secs_f64()),
        lost,
        duplicated,
        answered_131056: sends.iter().filter(|s| !s.accepted).count(),
        engineer_messages_first_minute: engineer_messages,
        room_lines_lost: lines_lost,
        room_lines_duplicated: lines_twice,
        room_messages_per_member_max: most,
        room_drain_s: round(room_done.unwrap_or(MINUTE).as_secs_f64()),
    })
}
