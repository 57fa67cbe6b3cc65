//! Chaos: a mixed load while the bot is killed with SIGKILL at random instants and restarted on the
//! same store, several times; then every delivery that the acknowledged events must cause is
//! counted at the fake Graph API. The load, spread over each cycle at seeded random offsets:
//! HELP and STATUS from allowed numbers, alerts (the generic webhook with an `Idempotency-Key`, and
//! Alertmanager notifications) paging the on-call engineer, critical ones escalating on 2-second
//! timers (Sam, Tara, then back to Olivia, with a note to the team each time), updates written in a
//! war room and relayed to its other members, and deployment approval requests answered `APPROVE`
//! once the approver has the request. Every event is delivered as its sender would: retried, with
//! the same id, until answered 2xx.
//!
//! Run twice on the same seed: once with the fake sending Meta's `sent` statuses back (naming the
//! send's `biz_opaque_callback_data`), where nothing may arrive twice; once without, where a send
//! in flight at a kill is sent again after `unconfirmed_send_grace_secs`, so duplicates are allowed
//! up to the sends left `sending` at the kills. Nothing acknowledged may be lost in either. About
//! half the kills (drawn from the seed too) are made by the fake itself as a send reaches it,
//! before it answers: the bot dies with that request at Meta, the case statuses are there for.

mod load;

use crate::child::Server;
use crate::client;
use crate::fake::{FakeGraph, Send};
use crate::fanout;
use crate::setup::{self, Extras, Scratch, ONCALL, WEBHOOK_TOKEN};
use anyhow::{bail, Context as _};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use load::{Delivery, Event, Post, ESCALATE_AFTER_S, GRACE_S, ROOM_MEMBERS};

/// Events are posted within this many ms of a cycle's start; the kill comes within 300-2000 ms.
const SPREAD_MS: u64 = 1200;
/// How long an event is redelivered before it is given up.
const DELIVER_WITHIN: Duration = Duration::from_secs(60);

/// The chaos figures: the same seed, with and without statuses.
#[derive(Debug, Serialize)]
pub struct Chaos {
    /// The seed of the kill instants and of the load (`--seed` replays them).
    pub seed: u64,
    /// Kills (and restarts) per variant.
    pub cycles: usize,
    /// The fake sends `sent` statuses: duplicates must be 0.
    pub with_statuses: Variant,
    /// No statuses: duplicates allowed up to `in_flight_at_kills`.
    pub without_statuses: Variant,
}

/// One variant's figures.
#[derive(Debug, Serialize)]
pub struct Variant {
    /// Whether the fake sent statuses.
    pub statuses: bool,
    /// Events posted (approvals' `APPROVE`s included).
    pub events: usize,
    /// Events answered 2xx (the others were given up after a minute of redelivery).
    pub acknowledged: usize,
    /// POSTs not answered (the bot was down or died) or answered 5xx, and sent again.
    pub redelivered: usize,
    /// Deliveries the acknowledged events must cause.
    pub expected: usize,
    /// Expected deliveries that never arrived.
    pub lost: usize,
    /// Extra arrivals of expected deliveries.
    pub duplicated: usize,
    /// Send attempts left `sending` at the kills (an outbox row still `sending` from an earlier
    /// kill counted once, a resend in flight at a later kill again): the bound on duplicates
    /// without statuses.
    pub in_flight_at_kills: usize,
    /// Kills made by the fake as a send reached it, before answering (the others: at the instant
    /// drawn, or when no send came within 2 s of it).
    pub kills_at_sends: usize,
    /// Sends the restarted bots sent again (their "sending them again" log lines).
    pub resent: u64,
    /// Statuses the bot took (answered 2xx).
    pub statuses_delivered: u64,
    /// Outbox rows `failed` at the end.
    pub failed_sends: i64,
    /// Seconds from the last restart until everything had arrived and the bot was quiet.
    pub settle_s: f64,
    /// What was lost: the event, the delivery, what the recipient received (at most 20).
    pub lost_detail: Vec<String>,
    /// What arrived more than once (at most 20).
    pub duplicated_detail: Vec<String>,
}

impl Chaos {
    /// What the run must not show, one line each; empty when it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for v in [&self.with_statuses, &self.without_statuses] {
            let name = if v.statuses { "with" } else { "without" };
            if v.lost > 0 {
                failures.push(format!(
                    "chaos (seed {}, {name} statuses): {} deliveries lost: {}",
                    self.seed,
                    v.lost,
                    v.lost_detail.join("; ")
                ));
            }
            let allowed = if v.statuses { 0 } else { v.in_flight_at_kills };
            if v.duplicated > allowed {
                failures.push(format!(
                    "chaos (seed {}, {name} statuses): {} duplicated, more than {allowed}: {}",
                    self.seed,
                    v.duplicated,
                    v.duplicated_detail.join("; ")
                ));
            }
        }
        failures
    }
}

/// What happened to the events of a run.
#[derive(Default)]
struct Tally {
    posted: usize,
    acknowledged: Vec<(String, Vec<Delivery>)>,
    given_up: Vec<String>,
    redelivered: usize,
}

/// What the event tasks share.
struct Shared {
    http: awc::Client,
    base: String,
    fake: Rc<FakeGraph>,
    tally: RefCell<Tally>,
}

/// Posts `event` until it is answered 2xx (redelivering with the same id when there is no answer
/// or a 5xx); false when it was refused or not answered within [`DELIVER_WITHIN`].
async fn deliver(shared: &Shared, event: &Event) -> bool {
    let text = match &event.post {
        Post::Text { from, text } => Some(setup::text_notification(from, &event.id, text)),
        Post::Flow { .. } => None,
    };
    let deadline = Instant::now() + DELIVER_WITHIN;
    shared.tally.borrow_mut().posted += 1;
    loop {
        let answer = match (&event.post, &text) {
            (_, Some(signed)) => {
                shared
                    .http
                    .post(format!("{}/webhooks/whatsapp", shared.base))
                    .insert_header(("content-type", "application/json"))
                    .insert_header(("x-hub-signature-256", signed.signature.clone()))
                    .send_body(signed.body.clone())
                    .await
            }
            (Post::Flow { path, key, body }, None) => {
                let mut request = shared
                    .http
                    .post(format!("{}/webhooks{path}", shared.base))
                    .insert_header(("authorization", format!("Bearer {WEBHOOK_TOKEN}")));
                if let Some(key) = key {
                    request = request.insert_header(("idempotency-key", key.as_str()));
                }
                request.send_json(body).await
            }
            (Post::Text { .. }, None) => unreachable!("a text is signed above"),
        };
        let status = match answer {
            Ok(mut response) => {
                let _ = response.body().await;
                Some(response.status().as_u16())
            }
            Err(_) => None,
        };
        match status {
            Some(200..=299) => return true,
            Some(code) if code < 500 && code != 408 && code != 429 => {
                eprintln!("chaos: {} refused with {code}", event.label);
                return false;
            }
            _ if Instant::now() > deadline => return false,
            _ => {
                shared.tally.borrow_mut().redelivered += 1;
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Delivers `event` after `after`, records it, then its follow-up once that may go.
async fn run_event(shared: Rc<Shared>, event: Event, after: Duration) {
    actix_web::rt::time::sleep(after).await;
    let mut event = event;
    loop {
        if !deliver(&shared, &event).await {
            shared.tally.borrow_mut().given_up.push(event.label);
            return;
        }
        let then = event.then.take();
        shared
            .tally
            .borrow_mut()
            .acknowledged
            .push((event.label, event.expects));
        let Some((wait_for, next)) = then else {
            return;
        };
        let arrived = client::until(Duration::from_secs(120), || async {
            shared.fake.sends().iter().any(|s| wait_for.matches(s))
        })
        .await;
        if !arrived {
            // Lost, and counted as such: the request's delivery is expected already.
            return;
        }
        event = *next;
    }
}

/// The send attempts left `sending` in the store of a killed bot, as `id@updated_ms`: a row still
/// `sending` from an earlier kill (its grace not over) is the same attempt, a resend that was
/// itself in flight at this kill a new one.
async fn left_sending(db: &Path) -> anyhow::Result<Vec<String>> {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await?;
    let ids =
        sqlx::query_scalar("SELECT id || '@' || updated_ms FROM outbox WHERE state = 'sending'")
            .fetch_all(&mut conn)
            .await?;
    conn.close().await?;
    Ok(ids)
}

/// How many outbox rows are `failed`.
async fn failed_sends(db: &Path) -> anyhow::Result<i64> {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await?;
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'failed'")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(n)
}

/// The sends the bots' logs say were sent again (`resent=N` of each "sending them again" line).
pub fn resent_in_logs(dir: &Path) -> u64 {
    let logs = std::fs::read_dir(dir).into_iter().flatten().flatten();
    logs.filter(|e| e.file_name().to_string_lossy().starts_with("bot"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .flat_map(|text| {
            text.lines()
                .filter(|l| l.contains("sending them again"))
                .filter_map(|l| l.split("resent=").nth(1)?.split(' ').next()?.parse().ok())
                .collect::<Vec<u64>>()
        })
        .sum()
}

/// Lost and duplicated deliveries, with a line on each (the first 20).
struct Check {
    expected: usize,
    lost: usize,
    duplicated: usize,
    lost_detail: Vec<String>,
    duplicated_detail: Vec<String>,
}

/// Counts, for every delivery the acknowledged events expect, the sends that match it.
fn check(sends: &[Send], acknowledged: &[(String, Vec<Delivery>)]) -> Check {
    let mut by_to: HashMap<&str, Vec<&Send>> = HashMap::new();
    for send in sends.iter().filter(|s| s.accepted) {
        by_to.entry(&send.to).or_default().push(send);
    }
    let mut wanted: HashMap<&Delivery, Vec<&str>> = HashMap::new();
    for (label, expects) in acknowledged {
        for delivery in expects {
            wanted.entry(delivery).or_default().push(label);
        }
    }
    let mut c = Check {
        expected: wanted.values().map(Vec::len).sum(),
        lost: 0,
        duplicated: 0,
        lost_detail: Vec::new(),
        duplicated_detail: Vec::new(),
    };
    let mut wanted: Vec<_> = wanted.into_iter().collect();
    wanted.sort_by(|a, b| a.1.cmp(&b.1));
    for (delivery, labels) in wanted {
        let received = by_to.get(delivery.to.as_str()).cloned().unwrap_or_default();
        let got = received.iter().filter(|s| delivery.matches(s)).count();
        // What the recipient did receive that looks like it: sends with any of the needles.
        let texts = || {
            let near: Vec<String> = received
                .iter()
                .filter(|s| delivery.needles.iter().any(|n| s.what.contains(n)))
                .take(10)
                .map(|s| {
                    s.what
                        .chars()
                        .take(90)
                        .collect::<String>()
                        .replace('\n', " ")
                })
                .collect();
            format!(
                "{} received {} sends, these with any of the texts: {near:?}",
                delivery.to,
                received.len()
            )
        };
        if got < labels.len() {
            c.lost += labels.len() - got;
            if c.lost_detail.len() < 20 {
                c.lost_detail.push(format!(
                    "{}: {:?} to {} missing; {}",
                    labels.join(", "),
                    delivery.needles,
                    delivery.to,
                    texts()
                ));
            }
        } else if got > labels.len() {
            c.duplicated += got - labels.len();
            if c.duplicated_detail.len() < 20 {
                let copies: Vec<String> = received
                    .iter()
                    .filter(|s| delivery.matches(s))
                    .map(|s| s.what.replace('\n', " "))
                    .collect();
                c.duplicated_detail.push(format!(
                    "{}: {:?} to {} arrived {got} times: {copies:?}",
                    labels.join(", "),
                    delivery.needles,
                    delivery.to
                ));
            }
        }
    }
    c
}

/// Every send and deployment the fake received.
fn received(fake: &FakeGraph) -> Vec<Send> {
    let mut all = fake.sends();
    all.extend(fake.deployments());
    all
}

/// Starts the bot again on its config and store, its log in `bot-{n}.log`.
async fn restart(config: &Path, port: u16, dir: &Path, n: usize) -> anyhow::Result<Server> {
    let mut last = None;
    for _ in 0..5 {
        let mut bot = Server::bot(config, port, &dir.join(format!("bot-{n}.log")))?;
        match bot.ready("/readyz", Duration::from_secs(30)).await {
            Ok(_) => return Ok(bot),
            Err(e) => last = Some(e),
        }
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last.expect("tried")).context(format!("restart {n}"))
}

/// Waits until every expected delivery arrived, the queue is empty, no timer is due within a
/// minute, the grace period since the last restart is over and no send came for two seconds.
async fn settle(fake: &FakeGraph, bot: &Server, tally: &Tally, restarted: Instant) {
    let expected: usize = tally.acknowledged.iter().map(|(_, e)| e.len()).sum();
    let budget = Duration::from_secs(120 + expected as u64 / 10);
    client::until(budget, || async {
        check(&received(fake), &tally.acknowledged).lost == 0
    })
    .await;
    let http = client::client(2);
    let (mut count, mut changed) = (fake.count(), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
        if fake.count() != count {
            (count, changed) = (fake.count(), Instant::now());
            continue;
        }
        let idle = client::readyz(&http, &bot.address)
            .await
            .is_some_and(|r| r["queued"] == 0 && r["in_flight"] == 0);
        let soon = aof_actors::model::now_ms() + 60_000;
        let timers = async {
            let mut answer = http
                .get(format!("{}/webhooks/admin/timers", bot.address))
                .insert_header(("authorization", format!("Bearer {WEBHOOK_TOKEN}")))
                .send()
                .await
                .ok()?;
            let timers: Value = answer.json().await.ok()?;
            let due = timers
                .as_array()?
                .iter()
                .any(|t| t["fire_at_ms"].as_i64().is_some_and(|at| at < soon));
            Some(!due)
        };
        let no_timer_due = timers.await.unwrap_or(false);
        let graced = restarted.elapsed() > Duration::from_secs(GRACE_S + 1);
        if idle && no_timer_due && graced && changed.elapsed() > Duration::from_secs(2) {
            return;
        }
    }
    eprintln!("chaos: the bot did not settle within 120 s; counting what arrived");
}

/// One variant: a fresh fake, store and bot; `cycles` kills on the load drawn from `seed`.
async fn variant(statuses: bool, cycles: usize, seed: u64) -> anyhow::Result<Variant> {
    let fake = Rc::new(FakeGraph::start()?);
    let scratch = Scratch::new(if statuses { "chaos-statuses" } else { "chaos" })?;
    let dir = scratch.path().to_owned();
    let every = format!("delay: {ESCALATE_AFTER_S}");
    let flows = setup::flows_edited(
        &dir,
        &[
            (
                "send-oncall-alert-flow.yaml",
                "delay: 300  # 5 minutes",
                every.as_str(),
            ),
            ("auto-escalate-flow.yaml", "delay: 300", every.as_str()),
        ],
    )?;
    let whatsapp = load::whatsapp_extra(&fake.address, cycles);
    let rota = [("Sam", load::sam()), ("Tara", load::tara())];
    let rota: Vec<(&str, &str)> = rota.iter().map(|(n, p)| (*n, p.as_str())).collect();
    let extras = Extras {
        rota: &rota,
        whatsapp: &whatsapp,
        ..Extras::default()
    };
    let started =
        setup::start_bot_with(&dir, &fake.address, "whatsapp-help-flow", &flows, &extras).await?;
    let (config, port, db) = (started.config, started.port, dir.join("aof.db"));
    let mut bot = started.bot;
    if statuses {
        fake.send_statuses_to(&format!("{}/webhooks/whatsapp", bot.address))?;
    }
    let room = fanout::war_room(&fake, &bot, ROOM_MEMBERS).await?;
    if room.len() != ROOM_MEMBERS || room[1] != ONCALL {
        bail!("the war room is not the expected one: {room:?}");
    }
    let shared = Rc::new(Shared {
        http: awc::Client::builder()
            .connector(awc::Connector::new().limit(128))
            .timeout(Duration::from_secs(10))
            .finish(),
        base: bot.address.clone(),
        fake: fake.clone(),
        tally: RefCell::new(Tally::default()),
    });
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut tasks, mut sending) = (Vec::new(), HashSet::new());
    let (mut restarted, mut kills_at_sends) = (Instant::now(), 0);
    for c in 0..cycles {
        for event in load::cycle_events(c, &mut rng, &room) {
            let after = Duration::from_millis(rng.random_range(0..SPREAD_MS));
            tasks.push(actix_web::rt::spawn(run_event(
                shared.clone(),
                event,
                after,
            )));
        }
        let kill_at = Duration::from_millis(rng.random_range(300..2000));
        let at_a_send = rng.random_bool(0.5);
        actix_web::rt::time::sleep(kill_at).await;
        let mut how = "at a random instant";
        if at_a_send {
            // The next send to arrive at the fake kills the bot before it is answered.
            fake.kill_at_next_send(bot.id());
            client::until(Duration::from_secs(2), || async { !fake.armed() }).await;
            if fake.disarm() {
                how = "as a send reached the fake";
                kills_at_sends += 1;
            }
        }
        bot.crash()?;
        let left = left_sending(&db).await?;
        eprintln!(
            "chaos: cycle {c}: killed {how} ({} ms into the cycle), {} sends left sending",
            kill_at.as_millis(),
            left.len()
        );
        sending.extend(left);
        bot = restart(&config, port, &dir, c + 1).await?;
        restarted = Instant::now();
    }
    for task in tasks {
        let _ = task.await;
    }
    let tally = shared.tally.take();
    settle(&fake, &bot, &tally, restarted).await;
    let settle_s = (restarted.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    bot.stop()?;
    for label in &tally.given_up {
        eprintln!("chaos: given up (never answered 2xx): {label}");
    }
    let c = check(&received(&fake), &tally.acknowledged);
    Ok(Variant {
        statuses,
        events: tally.posted,
        acknowledged: tally.acknowledged.len(),
        redelivered: tally.redelivered,
        expected: c.expected,
        lost: c.lost,
        duplicated: c.duplicated,
        in_flight_at_kills: sending.len(),
        kills_at_sends,
        resent: resent_in_logs(&dir),
        statuses_delivered: fake.statuses().0,
        failed_sends: failed_sends(&db).await?,
        settle_s,
        lost_detail: c.lost_detail,
        duplicated_detail: c.duplicated_detail,
    })
}

/// Runs both variants on `seed` (a new one from the clock when `None`).
pub async fn run(cycles: usize, seed: Option<u64>) -> anyhow::Result<Chaos> {
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("chaos: seed {seed} (--seed {seed} replays the kill instants and the load)");
    eprintln!("chaos: with statuses…");
    let with_statuses = variant(true, cycles, seed).await?;
    eprintln!("chaos: without statuses…");
    let without_statuses = variant(false, cycles, seed).await?;
    Ok(Chaos {
        seed,
        cycles,
        with_statuses,
        without_statuses,
    })
}
