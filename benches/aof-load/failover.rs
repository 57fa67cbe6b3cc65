//! Failover (issue 16): three replicas of the bot on one PostgreSQL database behind a stand-in load
//! balancer (a random live replica per request, another one after a failure), and the leader
//! killed with SIGKILL while it sends at its full rate, in the middle of a storm of alerts to the
//! on-call engineer and HELPs from many numbers. The fake Graph API answers every send and posts a
//! signed `sent` status for it to a random live replica, as Meta does.
//!
//! Measured: how long until a survivor's `/healthz` says it leads, how long sending paused, how
//! long until every alert was named and every HELP answered, what was lost or came twice (counted
//! at the fake: the ground truth), and the most sends in any one second over the whole run and
//! around each handover, against the configured limit. A fresh replica is started after each kill,
//! as systemd would restart it, so that three stay up. Without a PostgreSQL server the scenario is
//! skipped, and says where it looked.

mod count;
mod replicas;

use crate::chaos::resent_in_logs;
use crate::client;
use crate::fake::FakeGraph;
use crate::setup::{self, Extras, Scratch, WEBHOOK_TOKEN};
use anyhow::Context as _;
use replicas::{balanced, Balanced, Live, Post, Replicas, Template};
use serde::Serialize;
use serde_json::json;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Replicas kept running.
const REPLICAS: usize = 3;
/// `unconfirmed_send_grace_secs`: how long a new leader waits for the statuses of the sends that
/// were in flight at the kill before sending them again.
const GRACE_S: u64 = 3;
/// `rate_limits.window_margin_ms`, as the replicas' process test has it: three bots, PostgreSQL and
/// the load generator share two cores, so sends jitter more on their way to the fake.
const MARGIN_MS: u64 = 150;
/// Where PostgreSQL is looked for, unless `AOF_TEST_POSTGRES` says otherwise (as for the tests).
const DEFAULT_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How big the scenario is.
pub struct Sizes {
    /// Alerts posted to the on-call webhook.
    pub alerts: usize,
    /// HELPs, each from a number of its own.
    pub helps: usize,
    /// `rate_limits.messages_per_second`.
    pub per_second: u32,
    /// Events posted per second (alerts and HELPs interleaved), above the send rate so that the
    /// leader always has a backlog.
    pub posts_per_second: f64,
    /// Leaders killed, one after the other.
    pub kills: usize,
}

/// The scenario's result: its figures, or why it did not run.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    /// It ran.
    Ran(Box<Failover>),
    /// It did not: `skipped: no PostgreSQL at …`.
    Skipped {
        /// Why.
        skipped: String,
    },
}

/// The failover figures.
#[derive(Debug, Serialize)]
pub struct Failover {
    /// Replicas kept running.
    pub replicas: usize,
    /// Alerts in the storm.
    pub alerts: usize,
    /// HELPs in the storm, each from another number.
    pub helps: usize,
    /// Events posted per second through the balancer.
    pub posts_per_second: f64,
    /// The configured send rate (`messages_per_second`): no second may hold more sends.
    pub limit: usize,
    /// `window_margin_ms` of the config.
    pub window_margin_ms: u64,
    /// `unconfirmed_send_grace_secs` of the config.
    pub grace_s: u64,
    /// Leaders killed.
    pub kills: usize,
    /// The longest kill → a survivor's `/healthz` saying `leader` (polled every 25 ms), ms.
    pub takeover_ms: f64,
    /// The longest pause in sending around a kill: the last send before it to the first after, ms.
    pub send_gap_ms: f64,
    /// Each kill.
    pub cycles: Vec<Cycle>,
    /// From the last kill until every alert was named and every HELP answered, s.
    pub done_after_kill_s: f64,
    /// From the storm's first POST until every alert was named and every HELP answered, s.
    pub drained_s: f64,
    /// What `drained_s` would be with no kill: the time the storm took to post, or its sends at
    /// the rate the window lets through (`limit` per 1 s + `window_margin_ms`), whichever is
    /// longer, s.
    pub ideal_s: f64,
    /// Alerts never named plus HELPs never answered.
    pub lost: usize,
    /// Alerts named more than once plus HELPs answered more than once.
    pub duplicated: usize,
    /// The most sends that arrived at the fake within any one second of the run.
    pub max_per_second: usize,
    /// The same, from 1 s before each kill to 3 s after the new leader was seen leading (the
    /// highest of the kills).
    pub max_per_second_handover: usize,
    /// Sends the fake received.
    pub sends: usize,
    /// Sends that were neither a page, a digest nor a help reply.
    pub other_sends: usize,
    /// Outbox rows `sending` right after the kills (in flight, their fate unknown to the bot).
    pub in_flight_at_kills: i64,
    /// Sends the new leaders sent again after the grace (their "sending them again" log lines).
    pub resent: u64,
    /// Statuses a replica answered 2xx.
    pub statuses_delivered: u64,
    /// Status POSTs not answered 2xx (the replica picked was killed, or busy), each retried.
    pub status_retries: u64,
    /// Events posted (each answered 2xx once).
    pub posts: usize,
    /// Requests the balancer tried again on another replica (no answer, or not 2xx).
    pub retried: usize,
    /// Alerts a follower answered `queued` (kept for the leader).
    pub queued_by_followers: usize,
    /// Events answered as a duplicate (a retry of one a replica had kept).
    pub duplicate_answers: usize,
    /// Events no replica answered 2xx within a minute.
    pub given_up: usize,
    /// What was lost (at most 20).
    pub lost_detail: Vec<String>,
    /// What came twice (at most 20).
    pub duplicated_detail: Vec<String>,
}

/// One kill of the leader.
#[derive(Debug, Serialize)]
pub struct Cycle {
    /// `as a send reached the fake` (killed by the fake before it answered: a send at "Meta" that
    /// the bot never heard back from) or `at a random instant`.
    pub how: &'static str,
    /// Seconds into the storm.
    pub at_s: f64,
    /// Sends that arrived in the second before the kill.
    pub sends_in_second_before: usize,
    /// Outbox rows `sending` right after it.
    pub left_sending: i64,
    /// Kill → a survivor's `/healthz` says `leader`, ms.
    pub takeover_ms: f64,
    /// The new leader's epoch.
    pub epoch: i64,
    /// The last send before the kill to the first after it, ms.
    pub send_gap_ms: f64,
    /// The most sends within any one second from 1 s before the kill to 3 s after the takeover.
    pub max_per_second: usize,
}

impl Outcome {
    /// What the run must not show, one line each; empty when it passed (or was skipped).
    pub fn failures(&self) -> Vec<String> {
        let Outcome::Ran(f) = self else {
            return Vec::new();
        };
        let mut failures = Vec::new();
        if f.lost > 0 {
            let detail = f.lost_detail.join("; ");
            failures.push(format!("failover: {} lost: {detail}", f.lost));
        }
        if f.duplicated > 0 {
            let detail = f.duplicated_detail.join("; ");
            failures.push(format!("failover: {} duplicated: {detail}", f.duplicated));
        }
        if f.max_per_second > f.limit || f.max_per_second_handover > f.limit {
            failures.push(format!(
                "failover: {} sends within one second ({} around a handover), limit {}",
                f.max_per_second, f.max_per_second_handover, f.limit
            ));
        }
        if f.given_up > 0 {
            failures.push(format!(
                "failover: {} events no replica answered 2xx within a minute",
                f.given_up
            ));
        }
        failures
    }
}

/// Runs the scenario on a fresh database of the PostgreSQL server, or says it was skipped.
pub async fn run(sizes: &Sizes) -> anyhow::Result<Outcome> {
    let admin = std::env::var("AOF_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_ADMIN.to_owned());
    let skipped = |reason: String| Outcome::Skipped {
        skipped: format!(
            "no PostgreSQL at {}: {reason}",
            aof::store::postgres::redacted(&admin)
        ),
    };
    let probe = async {
        use sqlx::Connection as _;
        let conn = sqlx::PgConnection::connect(&admin).await?;
        conn.close().await
    };
    match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Ok(skipped(e.to_string())),
        Err(_) => return Ok(skipped("no answer within 3 s".into())),
    }
    let Some(db) = aof::store::postgres::testing::fresh_database().await else {
        return Ok(skipped("no database could be made".into()));
    };
    let figures = storm(sizes, &db.url).await;
    // The database is dropped (WITH FORCE) here, after every replica stopped.
    drop(db);
    Ok(Outcome::Ran(Box::new(figures?)))
}

/// What the posting tasks share.
struct Load {
    http: awc::Client,
    live: Live,
    tally: RefCell<Balanced>,
    /// Events handed to a task so far.
    dispatched: Cell<usize>,
}

/// The storm's events, alerts spread evenly among the HELPs.
fn events(alerts: usize, helps: usize) -> Vec<Post> {
    let total = alerts + helps;
    let (mut a, mut h) = (0, 0);
    let mut out = Vec::with_capacity(total);
    for k in 0..total {
        if (k + 1) * alerts / total > k * alerts / total {
            let body = json!({ "severity": "critical", "service": "api",
                               "message": count::alert_message(a) });
            out.push(Post {
                path: "/webhooks/alert/oncall".into(),
                body: body.to_string().into_bytes(),
                headers: vec![
                    ("authorization", format!("Bearer {WEBHOOK_TOKEN}")),
                    ("idempotency-key", format!("failover-alert-{a}")),
                ],
            });
            a += 1;
        } else {
            let wamid = format!("wamid.load.failover.help.{h}");
            let signed = setup::text_notification(&count::asker(h), &wamid, "HELP");
            out.push(Post {
                path: "/webhooks/whatsapp".into(),
                body: signed.body,
                headers: vec![("x-hub-signature-256", signed.signature)],
            });
            h += 1;
        }
    }
    out
}

/// Posts every event at `per_second`, each through the balancer in a task of its own (a slow
/// answer does not hold the pace), and waits for all of them.
async fn post_all(load: Rc<Load>, events: Vec<Post>, per_second: f64, started: Instant) {
    let mut tasks = Vec::new();
    for (k, post) in events.into_iter().enumerate() {
        let at = started + Duration::from_secs_f64(k as f64 / per_second);
        actix_web::rt::time::sleep_until(at.into()).await;
        load.dispatched.set(k + 1);
        let load = load.clone();
        tasks.push(actix_web::rt::spawn(async move {
            balanced(&load.http, &load.live, &post, &load.tally).await;
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// The alerts the bot recorded: id number → message.
async fn alert_ids(pool: &PgPool) -> anyhow::Result<HashMap<u64, String>> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, message FROM alerts")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, message)| Some((id.strip_prefix("ALT-")?.parse().ok()?, message)))
        .collect())
}

/// Outbox rows `sending` now.
async fn sending(pool: &PgPool) -> anyhow::Result<i64> {
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'sending'")
        .fetch_one(pool)
        .await?;
    Ok(n)
}

/// Seconds, to a tenth of a millisecond.
fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10_000.0
}

/// Kills the replica that leads now, as a send reaches the fake (`at_a_send`) or at once; how,
/// and the instant.
async fn kill_leader(
    fake: &FakeGraph,
    replicas: &mut Replicas<'_>,
    http: &awc::Client,
    at_a_send: bool,
) -> anyhow::Result<(&'static str, Instant)> {
    let (index, _) = replicas.leader(http).await.context("no replica leads")?;
    let pid = replicas.running[index].id();
    let mut how = "at a random instant";
    let mut killed_at = None;
    if at_a_send {
        fake.kill_at_next_send(pid);
        client::until(Duration::from_secs(2), || async { !fake.armed() }).await;
        if fake.disarm() {
            how = "as a send reached the fake";
            killed_at = fake.killed_at();
        }
    }
    let killed_at = killed_at.unwrap_or_else(Instant::now);
    replicas.take(index).crash()?;
    Ok((how, killed_at))
}

/// The scenario on the database at `url`.
async fn storm(sizes: &Sizes, url: &str) -> anyhow::Result<Failover> {
    let fake = FakeGraph::start()?;
    let scratch = Scratch::new("failover")?;
    let dir = scratch.path();
    // Critical alerts start escalation timers (the new leader resumes them); none is due in a run.
    let flows = setup::flows_edited(
        dir,
        &[(
            "send-oncall-alert-flow.yaml",
            "delay: 300  # 5 minutes",
            "delay: 3600",
        )],
    )?;
    let whatsapp = format!("    unconfirmed_send_grace_secs: {GRACE_S}\n");
    let extras = Extras {
        whatsapp: &whatsapp,
        storage_url: Some(url),
        window_margin_ms: Some(MARGIN_MS),
        ..Extras::default()
    };
    let template = Template {
        graph: &fake.address,
        flows: &flows,
        per_second: sizes.per_second,
        extras: &extras,
    };
    let mut replicas = Replicas::new(dir, template);
    fake.send_statuses_to_any(replicas.live.clone(), "/webhooks/whatsapp");
    for _ in 0..REPLICAS {
        replicas.start_one().await?;
    }
    let (_, _, mut led_at) = replicas.wait_for_leader(Duration::from_secs(30)).await?;
    let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
    let health = awc::Client::builder()
        .timeout(Duration::from_millis(500))
        .finish();

    let load = Rc::new(Load {
        http: awc::Client::builder()
            .connector(awc::Connector::new().limit(64))
            .timeout(Duration::from_secs(10))
            .finish(),
        live: replicas.live.clone(),
        tally: RefCell::new(Balanced::default()),
        dispatched: Cell::new(0),
    });
    let (alerts, helps) = (sizes.alerts, sizes.helps);
    let total = alerts + helps;
    let started = Instant::now();
    let poster = actix_web::rt::spawn(post_all(
        load.clone(),
        events(alerts, helps),
        sizes.posts_per_second,
        started,
    ));

    // "Full rate": three quarters of the limit within the last second (the margin holds a steady
    // rate to limit / 1.15 s).
    let full = (sizes.per_second as usize * 3).div_ceil(4);
    let mut cycles = Vec::new();
    let mut handovers = Vec::new();
    for c in 0..sizes.kills {
        let due = total * (c + 1) / (sizes.kills + 1);
        let busy = client::until(Duration::from_secs(60), || async {
            load.dispatched.get() >= due
                && led_at.elapsed() >= Duration::from_secs(1)
                && count::in_last_second(&fake.sends(), Instant::now()) >= full
        })
        .await;
        if !busy {
            eprintln!("failover: kill {c}: the leader was not sending {full}/s; killing it anyway");
        }
        let before = count::in_last_second(&fake.sends(), Instant::now());
        let (how, killed_at) = kill_leader(&fake, &mut replicas, &health, c % 2 == 0).await?;
        let left_sending = sending(&pool).await?;
        let (_, epoch, seen) = replicas.wait_for_leader(Duration::from_secs(30)).await?;
        led_at = seen;
        let takeover = seen - killed_at;
        eprintln!(
            "failover: kill {c} {how}, {:.1} s into the storm ({before} sends in the second before, {left_sending} left sending): a survivor led after {} ms (epoch {epoch})",
            (killed_at - started).as_secs_f64(),
            takeover.as_millis()
        );
        // As systemd would restart it: three replicas again.
        replicas.start_one().await?;
        handovers.push((killed_at, seen));
        cycles.push(Cycle {
            how,
            at_s: secs(killed_at - started),
            sends_in_second_before: before,
            left_sending,
            takeover_ms: client::ms(takeover),
            epoch,
            send_gap_ms: 0.0,
            max_per_second: 0,
        });
    }
    let _ = poster.await;

    // Everything named and answered; then the grace and more, for a late resend to show.
    let budget =
        Duration::from_secs(120) + Duration::from_secs(total as u64 / sizes.per_second as u64);
    let deadline = Instant::now() + budget;
    let done_at = loop {
        let ids = alert_ids(&pool).await?;
        if count::told(&fake.sends(), alerts, helps, &ids).lost() == 0 {
            break Instant::now();
        }
        if Instant::now() > deadline {
            eprintln!("failover: not everything was named or answered within {budget:?}");
            break Instant::now();
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    let quiet_from = Instant::now();
    let (mut count, mut changed) = (fake.count(), Instant::now());
    while quiet_from.elapsed() < Duration::from_secs(GRACE_S + 3)
        || changed.elapsed() < Duration::from_secs(2)
    {
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
        if fake.count() != count {
            (count, changed) = (fake.count(), Instant::now());
        }
        if quiet_from.elapsed() > Duration::from_secs(60) {
            break;
        }
    }

    let sends = fake.sends();
    let ids = alert_ids(&pool).await?;
    let told = count::told(&sends, alerts, helps, &ids);
    let (lost_detail, duplicated_detail) = told.detail();
    for (cycle, (killed_at, seen)) in cycles.iter_mut().zip(&handovers) {
        let from = killed_at
            .checked_sub(Duration::from_secs(1))
            .unwrap_or(started);
        cycle.max_per_second =
            count::most_in_one_second(&sends, from, *seen + Duration::from_secs(3));
        cycle.send_gap_ms = count::gap_around(&sends, *killed_at).map_or(f64::NAN, client::ms);
    }
    let last_kill = handovers.last().map_or(started, |(k, _)| *k);
    let tally = load.tally.take();
    let (statuses_delivered, status_retries) = fake.statuses();
    replicas.stop()?;
    pool.close().await;
    let most = |f: fn(&Cycle) -> f64| cycles.iter().map(f).fold(0.0, f64::max);
    Ok(Failover {
        replicas: REPLICAS,
        alerts,
        helps,
        posts_per_second: sizes.posts_per_second,
        limit: sizes.per_second as usize,
        window_margin_ms: MARGIN_MS,
        grace_s: GRACE_S,
        kills: cycles.len(),
        takeover_ms: most(|c| c.takeover_ms),
        send_gap_ms: most(|c| c.send_gap_ms),
        done_after_kill_s: secs(done_at.saturating_duration_since(last_kill)),
        drained_s: secs(done_at - started),
        ideal_s: {
            let window = 1.0 + MARGIN_MS as f64 / 1000.0;
            let sending = sends.len() as f64 * window / f64::from(sizes.per_second);
            secs(Duration::from_secs_f64(
                sending.max(total as f64 / sizes.posts_per_second),
            ))
        },
        lost: told.lost(),
        duplicated: told.duplicated(),
        max_per_second: count::most_in_one_second(&sends, started, Instant::now()),
        max_per_second_handover: cycles.iter().map(|c| c.max_per_second).max().unwrap_or(0),
        sends: sends.len(),
        other_sends: told.other,
        in_flight_at_kills: cycles.iter().map(|c| c.left_sending).sum(),
        resent: resent_in_logs(dir),
        statuses_delivered,
        status_retries,
        posts: total,
        retried: tally.retried,
        queued_by_followers: tally.queued,
        duplicate_answers: tally.duplicates,
        given_up: tally.given_up,
        lost_detail,
        duplicated_detail,
        cycles,
    })
}
