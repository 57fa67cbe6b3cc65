//! Replicas of `aofctl trigger serve` on one PostgreSQL database (a fresh one per test), behind a
//! stand-in load balancer that sends each request to a random live replica and tries another when
//! one does not answer. The fake Graph API answers every send and, as Meta does, reports it in a
//! signed status notification to a random replica.
//!
//! - Three replicas; the leader is killed with SIGKILL in the middle of an alert storm, of people
//!   asking for HELP and of a war room's talk. A follower leads within seconds; in the end every
//!   alert was named to the engineer once, every HELP answered once, every line written in the
//!   room reached each other member once, and no second held more sends than the limit.
//! - Three replicas; the leader that stored an escalation timer dies before it is due: the timer
//!   fires once, on the new leader.
//! - A leader that is paused while the network drops its database sessions comes back stale:
//!   another replica leads with a newer epoch, and the old one cannot keep anything and stops.
//!
//! Both say "skipped: no PostgreSQL at …" without a server, unless `AOF_REQUIRE_POSTGRES=1`.

use super::process::Bot;
use crate::common::*;
use aof::store::postgres::testing::fresh_database;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Sends per second the replicas may make.
const RATE: usize = 10;

/// The number of the `i`th person asking for HELP while Alice, on call, is paged.
fn asking(i: usize) -> String {
    format!("1555300{i:04}")
}

/// The replicas, by address; the killed ones are taken out.
type Live = Rc<RefCell<Vec<String>>>;

/// Writes the replicas' config: the fake Graph API, the shared database, `RATE` sends a second,
/// and a short wait for statuses of sends in flight at a kill.
fn config(dir: &std::path::Path, graph: &FakeGraph, url: &str) -> std::path::PathBuf {
    let options = Options {
        storage_url: Some(url.to_owned()),
        per_second: RATE as u32,
        whatsapp_extra: "    unconfirmed_send_grace_secs: 3\n".to_owned(),
        oncall_extra: "      static_oncall:\n        - { name: \"Alice\", phone: \"+15551234567\" }\n        - { name: \"Bob\", phone: \"+15557654321\" }".to_owned(),
        ..Options::default()
    };
    // Anyone may ask for HELP (many people, so that replies wait for the rate, not per person),
    // and the window allows for the heavier jitter of three bots and a database on two cores.
    let text = config_yaml(&graph.address, dir, &options)
        .replace(
            "    allowed_numbers:\n      - \"+1 555-123-4567\"\n      - \"+1 (555) 765-4321\"\n      - \"+15550001234\"\n",
            "    allowed_numbers: []\n",
        )
        .replace(
            "      per_person_interval_ms:",
            "      window_margin_ms: 150\n      per_person_interval_ms:",
        );
    assert!(text.contains("allowed_numbers: []") && text.contains("window_margin_ms"));
    let file = dir.join("replica.yaml");
    std::fs::write(&file, text).expect("writes");
    file
}

/// Answers every send with a wamid of its own and reports each, with its outbox id, in a signed
/// `sent` status to a random live replica (another one if that fails), as Meta does.
fn report_statuses(graph: &FakeGraph, live: Live) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String, String)>();
    let mut n = 0;
    graph.script(move |body| {
        n += 1;
        let wamid = format!("wamid.ha.{n}");
        let to = body["to"].as_str().unwrap_or_default().to_owned();
        let callback = body["biz_opaque_callback_data"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let _ = tx.send((wamid.clone(), to, callback));
        Some((
            200,
            json!({ "messaging_product": "whatsapp", "messages": [{ "id": wamid }] }),
        ))
    });
    actix_web::rt::spawn(async move {
        while let Some((wamid, to, callback)) = rx.recv().await {
            let status = json!({ "id": wamid, "status": "sent", "recipient_id": to,
                "timestamp": now_stamp(), "biz_opaque_callback_data": callback });
            let body = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "1",
                "changes": [{ "field": "messages", "value": { "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "15550001111",
                                  "phone_number_id": "106540352242922" },
                    "statuses": [status] } }] }] });
            let body = body.to_string();
            let signature = aof::wire::whatsapp::sign(APP_SECRET.as_bytes(), body.as_bytes());
            let sent = balanced(&live, "/webhooks/whatsapp", body, |r| {
                r.insert_header(("x-hub-signature-256", signature.clone()))
            })
            .await;
            assert!(sent.is_some(), "no replica took the status of {wamid}");
        }
    });
}

/// Posts `body` to `path` on a random live replica, trying the others (for 30 s) while none
/// answers 2xx: what a load balancer in front of them does. The answer's status and body.
async fn balanced(
    live: &Live,
    path: &str,
    body: String,
    headers: impl Fn(awc::ClientRequest) -> awc::ClientRequest,
) -> Option<(u16, Value)> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let replicas = live.borrow().clone();
        let address = &replicas[rand::random_range(0..replicas.len())];
        let request = client
            .post(format!("{address}{path}"))
            .insert_header(("content-type", "application/json"));
        if let Ok(mut response) = headers(request).send_body(body.clone()).await {
            let status = response.status().as_u16();
            if response.status().is_success() {
                let answer = response.json::<Value>().await.unwrap_or(Value::Null);
                return Some((status, answer));
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Posts `body` as a plain alert through the load balancer; whether a replica kept it.
async fn post_alert(live: &Live, body: &Value) -> bool {
    let kept = balanced(
        live,
        "/webhooks/whatsapp/alert/oncall",
        body.to_string(),
        |r| r.insert_header(("authorization", format!("Bearer {WEBHOOK_TOKEN}"))),
    )
    .await;
    kept.is_some()
}

/// Raises alert `i` of the storm through the load balancer.
async fn raise(live: &Live, i: usize) {
    let body =
        json!({ "severity": "critical", "service": "api-server", "message": format!("storm {i}") });
    assert!(post_alert(live, &body).await, "no replica kept alert {i}");
}

/// Waits until Alice was paged about `what`; whether she was.
async fn paged_about(graph: &FakeGraph, what: &str) -> bool {
    let paged = eventually(Duration::from_secs(15), || {
        let pages: Vec<String> = graph.sends_to(ALICE).iter().map(text_of).collect();
        pages.iter().any(|t| t.contains(what)).then_some(())
    })
    .await;
    paged.is_some()
}

/// `who` asks for HELP (message id `id`) through the load balancer.
async fn ask(live: &Live, who: &str, id: &str) {
    say(live, who, "HELP", id).await;
}

/// `who` writes `text` (message id `id`) through the load balancer.
async fn say(live: &Live, who: &str, text: &str, id: &str) {
    let body = text_notification(who, "Someone", text, id).to_string();
    let signature = aof::wire::whatsapp::sign(APP_SECRET.as_bytes(), body.as_bytes());
    let kept = balanced(live, "/webhooks/whatsapp", body, |r| {
        r.insert_header(("x-hub-signature-256", signature.clone()))
    })
    .await;
    assert!(kept.is_some(), "no replica kept {id}");
}

/// The `k`th line Bob writes in the war room.
fn relayed(k: usize) -> String {
    format!("note {k:03} from the room")
}

/// How many times each of the first `n` room lines reached Alice or Carol (each should twice).
fn relays_seen(graph: &FakeGraph, n: usize) -> BTreeMap<usize, usize> {
    let texts: Vec<String> = [ALICE, CAROL]
        .iter()
        .flat_map(|who| graph.sends_to(who))
        .map(|s| text_of(&s))
        .collect();
    (0..n)
        .map(|k| {
            let line = relayed(k);
            (k, texts.iter().map(|t| t.matches(&line).count()).sum())
        })
        .collect()
}

/// Which replica leads, by `/healthz`.
async fn leader(replicas: &[String]) -> Option<usize> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(2))
        .finish();
    for (i, address) in replicas.iter().enumerate() {
        let Ok(mut response) = client.get(format!("{address}/healthz")).send().await else {
            continue;
        };
        let health = response.json::<Value>().await.unwrap_or(Value::Null);
        if health["role"] == "leader" {
            return Some(i);
        }
    }
    None
}

/// Every replica is ready (a follower takes webhooks too), and each says who leads: `/readyz`
/// and `/healthz` by role, `/metrics` by `aof_leader`, all with the leader's epoch.
async fn says_who_leads(replicas: &[String], leader: usize) {
    let client = awc::Client::new();
    // A follower learns who leads when it next asks for the lease (every 500 ms).
    let seen = eventually_async(Duration::from_secs(10), || async {
        for address in replicas {
            let mut health = client.get(format!("{address}/healthz")).send().await.ok()?;
            let health: Value = health.json().await.ok()?;
            health["leader"]["epoch"].as_i64()?;
        }
        Some(())
    })
    .await;
    assert!(seen.is_some(), "every replica names the leader");
    for (i, address) in replicas.iter().enumerate() {
        let role = if i == leader { "leader" } else { "follower" };
        let mut ready = client
            .get(format!("{address}/readyz"))
            .send()
            .await
            .expect("answers");
        let readiness: Value = ready.json().await.expect("JSON");
        assert_eq!(ready.status(), 200, "{address}: {readiness}");
        assert_eq!(readiness["role"], role, "{readiness}");
        let health: Value = client
            .get(format!("{address}/healthz"))
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(health["role"], role, "{health}");
        assert_eq!(health["leader"]["epoch"], 1, "{health}");
        let mut metrics = client
            .get(format!("{address}/metrics"))
            .send()
            .await
            .expect("answers");
        let text = String::from_utf8(metrics.body().await.expect("a body").to_vec()).expect("text");
        let gauge = |name: &str| -> Option<f64> {
            let line = text.lines().find(|l| l.starts_with(&format!("{name} ")))?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        let expected = if i == leader { 1.0 } else { 0.0 };
        assert_eq!(gauge("aof_leader"), Some(expected), "{address}:\n{text}");
        assert_eq!(gauge("aof_leader_epoch"), Some(1.0), "{address}:\n{text}");
    }
}

/// Waits until one of `replicas` leads; which, and how long it took.
async fn wait_for_leader(replicas: &[String], within: Duration) -> (usize, Duration) {
    let started = Instant::now();
    loop {
        if let Some(i) = leader(replicas).await {
            return (i, started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "no replica led within {within:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A send's text: the text body, or the template's name and parameters.
fn text_of(send: &Recorded) -> String {
    if let Some(text) = send.body["text"]["body"].as_str() {
        return text.to_owned();
    }
    let template = &send.body["template"];
    let parameters: Vec<&str> = template["components"][0]["parameters"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["text"].as_str()).collect())
        .unwrap_or_default();
    format!(
        "{}({})",
        template["name"].as_str().unwrap_or_default(),
        parameters.join("|")
    )
}

/// How many times each storm alert was named to Alice (alone in a page, or in a digest), by its
/// message; `alerts` maps the ids the bot gave to those messages.
fn storm_told(graph: &FakeGraph, alerts: &HashMap<u64, String>) -> BTreeMap<String, usize> {
    let mut told = everything_told(graph, alerts);
    told.retain(|message, _| message.starts_with("storm "));
    told
}

/// How many times each alert was named to Alice, by its message.
fn everything_told(graph: &FakeGraph, alerts: &HashMap<u64, String>) -> BTreeMap<String, usize> {
    let mut told = BTreeMap::new();
    for send in graph.sends_to(ALICE) {
        let text = text_of(&send);
        // ops_alert(severity|service|message|time)
        if let Some(message) = text.split('|').nth(2) {
            if text.starts_with("ops_alert(") {
                *told.entry(message.to_owned()).or_default() += 1;
                continue;
            }
        }
        if text.contains("alerts firing") {
            let mut ids = named_in(&text);
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                let message = alerts.get(&id).cloned().unwrap_or(format!("ALT-{id}?"));
                *told.entry(message).or_default() += 1;
            }
        }
    }
    told
}

/// The alerts the bot recorded: id number → message.
async fn alerts_in(url: &str) -> HashMap<u64, String> {
    let pool = sqlx::PgPool::connect(url).await.expect("connects");
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, message FROM alerts")
        .fetch_all(&pool)
        .await
        .expect("reads");
    pool.close().await;
    rows.into_iter()
        .filter_map(|(id, message)| Some((id.strip_prefix("ALT-")?.parse().ok()?, message)))
        .collect()
}

#[actix_web::test]
async fn three_replicas_lose_and_repeat_nothing_when_the_leader_is_killed_mid_storm() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let (graph, dir) = (FakeGraph::start(), temp());
    let file = config(dir.path(), &graph, &db.url);
    let mut bots: Vec<Option<Bot>> = (0..3).map(|_| Some(Bot::serve(&file))).collect();
    let addresses: Vec<String> = bots.iter().flatten().map(|b| b.address.clone()).collect();
    let live: Live = Rc::new(RefCell::new(addresses.clone()));
    report_statuses(&graph, live.clone());
    let (first, _) = wait_for_leader(&addresses, Duration::from_secs(30)).await;

    // A war room: Bob reports an outage (he and Alice, on call, are in its room) and Carol joins.
    say(&live, BOB, "the api is down", "wamid.room.open").await;
    let incident = eventually(Duration::from_secs(30), || {
        let texts: Vec<String> = graph.sends_to(BOB).iter().map(text_of).collect();
        texts.iter().find_map(|t| {
            let at = t.find("INC-")?;
            Some(t[at..at + 8].to_owned())
        })
    })
    .await
    .expect("the incident is opened");
    say(&live, CAROL, &format!("JOIN {incident}"), "wamid.room.join").await;
    let joined = eventually(Duration::from_secs(30), || {
        (!graph.sends_to(CAROL).is_empty()).then_some(())
    })
    .await;
    assert!(joined.is_some(), "Carol joined the room");

    const ALERTS: usize = 60;
    const HELPS: usize = 60;
    const RELAYS: usize = 20;
    for i in 0..ALERTS / 2 {
        raise(&live, i).await;
    }
    for i in 0..HELPS * 2 / 3 {
        ask(&live, &asking(i), &format!("wamid.help.{i}")).await;
        if i % 4 == 0 && i / 4 < RELAYS / 2 {
            let k = i / 4;
            say(&live, BOB, &relayed(k), &format!("wamid.relay.{k}")).await;
        }
    }
    // Mid-storm: the leader sends at the full rate, with replies still waiting for their turn.
    let sending = eventually(Duration::from_secs(30), || {
        (graph.sends().len() >= 2 * RATE).then_some(())
    })
    .await;
    assert!(sending.is_some(), "the leader did not start sending");
    let killed = bots[first].take().expect("running").kill9();
    let kill = Instant::now();
    live.borrow_mut().retain(|a| *a != addresses[first]);
    let survivors = live.borrow().clone();
    // The rest of the storm arrives while the followers find out; some of it before one leads.
    let rest = async {
        for i in ALERTS / 2..ALERTS {
            raise(&live, i).await;
        }
        for i in HELPS * 2 / 3..HELPS {
            ask(&live, &asking(i), &format!("wamid.help.{i}")).await;
        }
        for k in RELAYS / 2..RELAYS {
            say(&live, BOB, &relayed(k), &format!("wamid.relay.{k}")).await;
        }
    };
    let ((), (_, takeover)) =
        tokio::join!(rest, wait_for_leader(&survivors, Duration::from_secs(30)));
    assert!(
        takeover < Duration::from_secs(10),
        "a follower led {takeover:?} after the kill"
    );

    let helped = |graph: &FakeGraph| -> usize {
        let sends = graph.sends();
        let replies = sends.iter().filter(|s| s.to().starts_with("1555300"));
        replies
            .filter(|s| text_of(s).contains("I'm the ops bot"))
            .count()
    };
    let done = eventually_async(Duration::from_secs(90), || async {
        let alerts = alerts_in(&db.url).await;
        let told = storm_told(&graph, &alerts);
        let relayed = relays_seen(&graph, RELAYS);
        let all_relayed = relayed.values().all(|n| *n >= 2);
        (told.len() >= ALERTS && helped(&graph) >= HELPS && all_relayed).then_some(())
    })
    .await;
    // What may still be on its way when everything was named: a repeat would show within this.
    actix_web::rt::time::sleep(Duration::from_secs(4)).await;
    let alerts = alerts_in(&db.url).await;
    let told = storm_told(&graph, &alerts);
    let log = || {
        let logs: Vec<String> = bots.iter().flatten().map(Bot::log).collect();
        format!(
            "killed leader:\n{killed}\nsurvivors:\n{}",
            logs.join("\n---\n")
        )
    };
    let missing: Vec<String> = (0..ALERTS)
        .map(|i| format!("storm {i}"))
        .filter(|m| !told.contains_key(m))
        .collect();
    assert!(
        done.is_some(),
        "not everything was told; missing {missing:?}, {} HELPs answered; Alice got {:#?}\n{}",
        helped(&graph),
        graph
            .sends_to(ALICE)
            .iter()
            .map(text_of)
            .collect::<Vec<_>>(),
        log()
    );
    let expected: BTreeMap<String, usize> =
        (0..ALERTS).map(|i| (format!("storm {i}"), 1)).collect();
    assert_eq!(
        told,
        expected,
        "every alert named once, none lost\n{}",
        log()
    );
    assert_eq!(helped(&graph), HELPS, "every HELP answered once");
    let relayed = relays_seen(&graph, RELAYS);
    assert!(
        relayed.values().all(|n| *n == 2),
        "every line Bob wrote in the room reached Alice and Carol once: {relayed:?}"
    );
    let times: Vec<Instant> = graph.sends().iter().map(|s| s.at).collect();
    let most = aof_actors::testing::most_in_any_window(&times, Duration::from_secs(1));
    let offsets: Vec<u128> = times.iter().map(|t| (*t - times[0]).as_millis()).collect();
    assert!(
        most <= RATE,
        "{most} sends in one second across the handover (limit {RATE}); sends at {offsets:?} ms; kill at {} ms",
        (kill - times[0]).as_millis()
    );
}

#[actix_web::test]
async fn a_stale_leader_that_comes_back_cannot_keep_anything_and_stops() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let (graph, dir) = (FakeGraph::start(), temp());
    let file = config(dir.path(), &graph, &db.url);
    let mut bots: Vec<Option<Bot>> = (0..2).map(|_| Some(Bot::serve(&file))).collect();
    let addresses: Vec<String> = bots.iter().flatten().map(|b| b.address.clone()).collect();
    let (first, _) = wait_for_leader(&addresses, Duration::from_secs(30)).await;
    let stale = bots[first].as_ref().expect("running");
    let pid = stale.pid().to_string();
    let signal = |name: &str| {
        let sent = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    };
    // The leader freezes (a long pause, a VM stalled), and its network drops its database
    // sessions: the lease with them.
    signal("-STOP");
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connects");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)",
    )
    .execute(&pool)
    .await
    .expect("ends the leader's sessions");
    let other = 1 - first;
    let (now, _) = wait_for_leader(&addresses[other..=other], Duration::from_secs(15)).await;
    assert_eq!(now, 0, "the other replica leads");
    let epoch: i64 = sqlx::query_scalar("SELECT epoch FROM leadership")
        .fetch_one(&pool)
        .await
        .expect("reads");
    assert_eq!(epoch, 2, "the takeover took a newer epoch");

    // It comes back believing it leads: what it is asked to keep now is refused, not lost.
    signal("-CONT");
    let body = json!({ "severity": "critical", "service": "db", "message": "disk full" });
    let answer = awc::Client::new()
        .post(format!(
            "{}/webhooks/whatsapp/alert/oncall",
            addresses[first]
        ))
        .insert_header(("authorization", format!("Bearer {WEBHOOK_TOKEN}")))
        .send_json(&body)
        .await;
    if let Ok(response) = answer {
        assert!(
            !response.status().is_success(),
            "the stale leader acknowledged an alert: {}",
            response.status()
        );
    }
    let stopped = eventually(Duration::from_secs(15), || {
        let bot = bots[first].as_mut().expect("running");
        bot.exited()
    })
    .await;
    let log = bots[first].as_ref().expect("kept").log();
    assert!(stopped.is_some(), "the stale leader did not stop:\n{log}");
    assert!(
        log.contains("this replica stops so that it restarts as a follower"),
        "{log}"
    );
    // The alert, sent again to the replica that leads, pages once.
    let live: Live = Rc::new(RefCell::new(vec![addresses[other].clone()]));
    assert!(post_alert(&live, &body).await);
    let paged = paged_about(&graph, "disk full").await;
    assert!(paged, "the new leader paged: {:?}", graph.sends());
    pool.close().await;
}

/// The shipped flows with the escalation timer cut from five minutes to `secs` seconds.
fn flows_escalating_after(dir: &std::path::Path, secs: u64) -> std::path::PathBuf {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).expect("creates");
    for entry in std::fs::read_dir(repo().join("flows/whatsapp")).expect("the flows") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("reads");
        let text = text.replace("delay: 300  # 5 minutes", &format!("delay: {secs}"));
        std::fs::write(flows.join(path.file_name().expect("a name")), text).expect("writes");
    }
    flows
}

#[actix_web::test]
async fn an_escalation_timer_fires_once_across_replicas_even_when_its_leader_dies_first() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_escalating_after(dir.path(), 4);
    let file = config(dir.path(), &graph, &db.url);
    let text = std::fs::read_to_string(&file).expect("reads");
    let shipped = format!("directory: \"{}\"", repo().join("flows/whatsapp").display());
    assert!(text.contains(&shipped));
    std::fs::write(
        &file,
        text.replace(&shipped, &format!("directory: \"{}\"", flows.display())),
    )
    .expect("writes");
    let mut bots: Vec<Option<Bot>> = (0..3).map(|_| Some(Bot::serve(&file))).collect();
    let addresses: Vec<String> = bots.iter().flatten().map(|b| b.address.clone()).collect();
    let live: Live = Rc::new(RefCell::new(addresses.clone()));
    let (first, _) = wait_for_leader(&addresses, Duration::from_secs(30)).await;
    says_who_leads(&addresses, first).await;
    let body = json!({ "severity": "critical", "service": "db", "message": "replica lag" });
    assert!(post_alert(&live, &body).await);
    let paged = paged_about(&graph, "replica lag").await;
    assert!(paged, "Alice was paged: {:?}", graph.sends());
    // The leader that stored the timer dies before it is due; of the two left, one leads.
    bots[first].take().expect("running").kill9();
    live.borrow_mut().retain(|a| *a != addresses[first]);
    let escalated = |graph: &FakeGraph| -> usize {
        let pages: Vec<String> = graph.sends_to(BOB).iter().map(text_of).collect();
        let escalations = pages
            .iter()
            .filter(|t| t.starts_with("ops_alert(ESCALATED"));
        escalations.filter(|t| t.contains("replica lag")).count()
    };
    let fired = eventually(Duration::from_secs(30), || {
        (escalated(&graph) > 0).then_some(())
    })
    .await;
    let logs = || -> String {
        let logs: Vec<String> = bots.iter().flatten().map(Bot::log).collect();
        logs.join("\n---\n")
    };
    assert!(fired.is_some(), "the escalation fired\n{}", logs());
    // Long enough for a second replica's scheduler, had it one, to fire it too.
    actix_web::rt::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(escalated(&graph), 1, "escalated once\n{}", logs());
}
