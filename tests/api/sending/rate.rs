//! A reply to a person who wrote goes ahead of the broadcasts already queued. (The global rate in
//! every one-second window is measured in its own test binary, `tests/rate_window.rs`.)

use crate::common::sending::*;
use crate::common::*;
use serde_json::json;
use std::time::Instant;

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
