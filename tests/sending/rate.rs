//! The global rate: never more than `messages_per_second` in any one-second window, nothing lost or
//! repeated, and a reply to a person who wrote goes ahead of the broadcasts already queued.

use crate::common::*;
use crate::support::*;
use aof_actors::window::most_in_any_window;
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn rate_is_never_exceeded_and_nothing_is_lost() {
    let (graph, dir, app) = start(|o| Options {
        per_second: 50,
        ..o
    })
    .await;
    let to = recipients(500);
    let started = Instant::now();
    start_flow(&app, "bulk-text", json!({ "recipients": to })).await;

    let store = store(dir.path()).await;
    let all_sent = outbox_drains(&store, 500, Duration::from_secs(30)).await;
    let sends = graph.sends();
    assert!(
        all_sent.is_some(),
        "not all 500 sent within 30 s: the fake got {} ({:?} since the flow started)",
        sends.len(),
        started.elapsed()
    );
    assert_eq!(store.outbox_counts().await.unwrap(), (0, 500, 0));

    assert_eq!(
        sends.len(),
        500,
        "one request per message, none lost or repeated"
    );
    let distinct: HashSet<&str> = sends.iter().map(|s| s.to()).collect();
    let expected: HashSet<&str> = to.iter().map(String::as_str).collect();
    assert_eq!(distinct, expected, "each recipient exactly once");
    assert!(sends.iter().all(|s| s.status == 200));

    let times: Vec<Instant> = sends.iter().map(|s| s.at).collect();
    let most = most_in_any_window(&times, Duration::from_secs(1));
    assert!(
        most <= 50,
        "{most} sends arrived within one second; the limit is 50"
    );
    let first = *times.iter().min().unwrap();
    let last = *times.iter().max().unwrap();
    assert!(
        last - first < Duration::from_secs(30),
        "500 sends at 50/s took {:?}",
        last - first
    );
}

#[actix_web::test]
async fn replies_to_a_person_who_wrote_go_before_queued_broadcasts() {
    let (graph, dir, app) = start(|o| Options { per_second: 5, ..o }).await;
    let alerts = recipients(30);
    let run_id = start_flow(&app, "bulk-text", json!({ "recipients": alerts })).await;
    let store = store(dir.path()).await;
    let run = finished_run(&store, &run_id)
        .await
        .expect("the alerts are queued");
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{run:?}");

    let asked = Instant::now();
    assert_eq!(app.say(ALICE, "HELP").await, 200);
    let reply = eventually(WAIT, || graph.sends_to(ALICE).into_iter().next())
        .await
        .expect("Alice gets her answer");
    assert!(
        reply.text().contains("HELP"),
        "the help text: {}",
        reply.text()
    );
    outbox_settles_at(&store, (0, 31, 0)).await;

    let sends = graph.sends();
    let after_asking: Vec<&Recorded> = sends.iter().filter(|s| s.at >= asked).collect();
    let position = after_asking
        .iter()
        .position(|s| s.to() == ALICE)
        .expect("the reply is among the sends");
    let alerts_after_asking = after_asking.len() - 1;
    assert!(
        alerts_after_asking >= 10,
        "the queue was not loaded when Alice wrote: only {alerts_after_asking} alerts went out after"
    );
    assert!(
        position < 3,
        "{position} of the {alerts_after_asking} alerts queued when Alice wrote went before her answer"
    );
}

#[actix_web::test]
async fn under_throttling_every_message_arrives_once_and_no_window_is_over_the_limit() {
    let (graph, dir, app) = start(|o| Options {
        per_second: 50,
        ..o
    })
    .await;
    let throttled = fixture_json("whatsapp/error-130429.json");
    let mut n = 0u32;
    graph.script(move |_| {
        n += 1;
        n.is_multiple_of(5).then(|| (400, throttled.clone()))
    });
    let to = recipients(150);
    start_flow(&app, "bulk-text", json!({ "recipients": to })).await;

    let store = store(dir.path()).await;
    let all_sent = outbox_drains(&store, 150, Duration::from_secs(60)).await;
    assert!(all_sent.is_some(), "not all 150 sent within 60 s");
    let sends = graph.sends();
    let accepted: Vec<&str> = sends
        .iter()
        .filter(|s| s.status == 200)
        .map(|s| s.to())
        .collect();
    let distinct: HashSet<&str> = accepted.iter().copied().collect();
    assert_eq!(accepted.len(), 150, "each message accepted exactly once");
    assert_eq!(distinct.len(), 150, "every recipient reached");
    assert!(
        sends.iter().any(|s| s.status == 400),
        "the fake throttled some sends"
    );
    let times: Vec<Instant> = sends.iter().map(|s| s.at).collect();
    let most = most_in_any_window(&times, Duration::from_secs(1));
    assert!(
        most <= 50,
        "{most} send requests (retries included) within one second; the limit is 50"
    );
}
