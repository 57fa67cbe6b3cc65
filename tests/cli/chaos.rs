//! The quick chaos scenario: a mixed load (people asking for HELP, alerts paging the on-call
//! engineer) while the bot is killed with SIGKILL at a random instant, three times, each time
//! restarted on the same store. Everything answered 2xx must be delivered in the end (lost: 0),
//! and nothing more than once beyond the sends in flight at each kill (the sandbox sends no
//! statuses, so those are sent again after `unconfirmed_send_grace_secs`).

use super::process::{open_to_everyone, Bot};
use crate::common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A small xorshift generator: the kill instants vary from run to run, and the seed in a failure
/// message replays them.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What the store says was sent: per (person, what it was about), how many messages; a digest
/// counts for each alert it names.
async fn deliveries(db: &std::path::Path) -> HashMap<(String, String), i64> {
    let url = format!("sqlite://{}", db.display());
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("the database opens");
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT to_wa, COALESCE(json_extract(about, '$.alert_id'), d.value, ''), COUNT(*)
         FROM outbound_messages LEFT JOIN json_each(about, '$.alert_ids') d GROUP BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .expect("reads");
    pool.close().await;
    rows.into_iter()
        .map(|(to, about, n)| ((to, about), n))
        .collect()
}

/// The alert ids the bot recorded for each service.
async fn alerts_by_service(db: &std::path::Path) -> HashMap<String, Vec<String>> {
    let url = format!("sqlite://{}", db.display());
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("the database opens");
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT service, id FROM alerts")
        .fetch_all(&pool)
        .await
        .expect("reads");
    pool.close().await;
    let mut by_service: HashMap<String, Vec<String>> = HashMap::new();
    for (service, id) in rows {
        by_service.entry(service).or_default().push(id);
    }
    by_service
}

/// One cycle's load: HELP from `people`, an alert for each of `services`; what was answered 2xx.
async fn load(bot: &Bot, people: &[String], services: &[String]) -> (Vec<String>, Vec<String>) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let helps = people.iter().map(|who| {
        let id = format!("wamid.chaos.{who}");
        let body = text_notification(who, "Tester", "HELP", &id).to_string();
        let signature = aof::wire::whatsapp::sign(b"sandbox-secret", body.as_bytes());
        let request = client
            .post(format!("{}/webhooks/whatsapp", bot.address))
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-hub-signature-256", signature));
        async move { (who.clone(), request.send_body(body).await) }
    });
    let alerts = services.iter().map(|service| {
        let body =
            serde_json::json!({ "severity": "warning", "service": service, "message": "chaos" });
        let request = client
            .post(format!("{}/webhooks/whatsapp/alert/oncall", bot.address))
            .insert_header(("authorization", "Bearer sandbox-token"));
        async move { (service.clone(), request.send_json(&body).await) }
    });
    let (helps, alerts) = futures_util::future::join(
        futures_util::future::join_all(helps),
        futures_util::future::join_all(alerts),
    )
    .await;
    let ok =
        |r: &Result<awc::ClientResponse<_>, _>| r.as_ref().is_ok_and(|r| r.status().is_success());
    (
        helps
            .into_iter()
            .filter(|(_, r)| ok(r))
            .map(|(w, _)| w)
            .collect(),
        alerts
            .into_iter()
            .filter(|(_, r)| ok(r))
            .map(|(s, _)| s)
            .collect(),
    )
}

#[actix_web::test]
async fn kill_9_at_random_instants_under_a_mixed_load_loses_nothing() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = Rng(seed);
    let dir = temp();
    let db = dir.path().join("sandbox.db");
    let (mut asked, mut paged) = (Vec::new(), Vec::new());
    for cycle in 0..3 {
        let bot = Bot::start_with(dir.path(), open_to_everyone);
        let people: Vec<String> = (0..20).map(|i| format!("1555{cycle}01{i:04}")).collect();
        let services: Vec<String> = (0..5).map(|i| format!("chaos-{cycle}-{i}")).collect();
        let (helps, alerts) = load(&bot, &people, &services).await;
        // Somewhere between the last 2xx and most of the work being done.
        actix_web::rt::time::sleep(Duration::from_millis(rng.below(150))).await;
        bot.kill9();
        asked.extend(helps);
        paged.extend(alerts);
    }
    let bot = Bot::start_with(dir.path(), open_to_everyone);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut lost, mut duplicated, mut twice);
    loop {
        let sent = deliveries(&db).await;
        let alert_ids = alerts_by_service(&db).await;
        let to = |who: &str, about: &str| sent.get(&(who.to_owned(), about.to_owned())).copied();
        let mut missing: Vec<&String> = asked.iter().filter(|who| to(who, "").is_none()).collect();
        missing.extend(paged.iter().filter(|service| {
            let ids = alert_ids
                .get(*service)
                .map(Vec::as_slice)
                .unwrap_or_default();
            !sent.keys().any(|(_, about)| ids.contains(about))
        }));
        lost = format!("{} {missing:?}", missing.len());
        twice = alert_ids.values().filter(|ids| ids.len() > 1).count();
        duplicated = sent.values().map(|n| n - 1).sum::<i64>();
        if lost.starts_with("0 ") || Instant::now() > deadline {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    let log = bot.stop("TERM");
    assert!(
        lost.starts_with("0 "),
        "seed {seed}: {} HELPs and {} alerts answered 2xx; lost {lost}, duplicated {duplicated}\n{log}",
        asked.len(),
        paged.len()
    );
    assert_eq!(
        twice, 0,
        "seed {seed}: a step run again recorded a second alert for a service"
    );
    // Each kill may leave the sends in flight at that instant to be sent again.
    assert!(
        duplicated <= 3 * 8,
        "seed {seed}: {duplicated} messages sent twice, more than were in flight at the kills"
    );
    eprintln!(
        "chaos: seed {seed}, {} HELPs and {} alerts kept, 3 kills, lost {lost}, duplicated {duplicated}",
        asked.len(),
        paged.len()
    );
}
