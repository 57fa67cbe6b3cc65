//! Three replicas; the leader is killed with SIGKILL in the middle of an alert storm, of people
//! asking for HELP and of a war room's talk: nothing lost, nothing twice, no second over the limit.

use super::*;
use std::collections::{BTreeMap, HashMap};

/// The number of the `i`th person asking for HELP while Alice, on call, is paged.
fn asking(i: usize) -> String {
    format!("1555300{i:04}")
}

/// Raises alert `i` of the storm through the load balancer.
async fn raise(live: &Live, i: usize) {
    let body =
        json!({ "severity": "critical", "service": "api-server", "message": format!("storm {i}") });
    assert!(post_alert(live, &body).await, "no replica kept alert {i}");
}

/// `who` asks for HELP (message id `id`) through the load balancer.
async fn ask(live: &Live, who: &str, id: &str) {
    say(live, who, "HELP", id).await;
}

/// The `k`th line Bob writes in the war room.
fn relayed(k: usize) -> String {
    format!("note {k:03} from the room")
}

/// The room lines `who` received, by number, in the order they reached them.
fn room_lines_of(graph: &FakeGraph, who: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    for send in graph.sends_to(who) {
        let text = text_of(&send);
        for part in text.split("note ").skip(1) {
            if let Some((number, _)) = part.split_once(" from the room") {
                lines.extend(number.parse::<usize>());
            }
        }
    }
    lines
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
            for id in named_in(&text) {
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
    for who in [ALICE, CAROL] {
        let lines = room_lines_of(&graph, who);
        let mut sorted = lines.clone();
        sorted.sort_unstable();
        assert_eq!(
            lines, sorted,
            "{who} read the room in the order Bob wrote it"
        );
    }
    let times: Vec<Instant> = graph.sends().iter().map(|s| s.at).collect();
    let most = aof_actors::testing::most_in_any_window(&times, Duration::from_secs(1));
    let offsets: Vec<u128> = times.iter().map(|t| (*t - times[0]).as_millis()).collect();
    assert!(
        most <= RATE,
        "{most} sends in one second across the handover (limit {RATE}); sends at {offsets:?} ms; kill at {} ms",
        (kill - times[0]).as_millis()
    );
}
