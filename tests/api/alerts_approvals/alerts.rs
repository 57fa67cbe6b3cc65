//! Alerts through the `alert-manager` agent: a repeat of an open alert updates it and pages once,
//! `ACK` finds the alert the conversation is about, and acknowledge and resolve are recorded with
//! their actor and time.

use super::flows::flows_dir;
use super::support::*;
use crate::common::*;
use serde_json::json;

#[actix_web::test]
async fn an_alert_firing_again_with_the_same_fingerprint_updates_the_open_alert_and_pages_once() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let app = start(&graph, dir.path(), flows.path()).await;

    // Alertmanager repeats a group notification: both deliveries arrive together.
    let first = page("High latency", &e164(ALICE), Some("fp-1"));
    let again = page("High latency (still)", &e164(ALICE), Some("fp-1"));
    let (a, b) = futures_util::future::join(
        run_webhook(&app, "/test/page", first),
        run_webhook(&app, "/webhooks/whatsapp/test/page", again),
    )
    .await;
    for run in [&a, &b] {
        assert_eq!(run.outcome.as_deref(), Some("completed"), "{run:?}");
    }
    let store = store(dir.path()).await;
    let alert = store
        .get_alert("ALT-0001")
        .await
        .unwrap()
        .expect("one alert");
    assert_eq!(alert.fire_count, 2);
    assert_eq!(alert.fingerprint.as_deref(), Some("fp-1"));
    assert_eq!(alert.source, aof::store::AlertSource::Alertmanager);
    assert_eq!(alert.paged, [e164(ALICE)]);
    assert!(store.get_alert("ALT-0002").await.unwrap().is_none());
    sent_to(&graph, ALICE, 1).await;

    // Another fingerprint is another alert, paged on its own.
    let other = run_webhook(
        &app,
        "/test/page",
        page("Disk full", &e164(ALICE), Some("fp-2")),
    )
    .await;
    assert_eq!(other.outcome.as_deref(), Some("completed"));
    // The run ends once its page is queued; the send itself follows.
    sent_to(&graph, ALICE, 2).await;
    let pages = texts_to(&graph, ALICE);
    assert_eq!(pages.len(), 2, "one page per alert: {pages:?}");
    assert!(pages[0].starts_with("ops_alert: CRITICAL | api | ALT-0001: High latency"));
    assert!(pages[1].starts_with("ops_alert: CRITICAL | api | ALT-0002: Disk full"));
}

/// An answer and the note after it (empty when none).
fn with_note(text: String) -> (String, String) {
    match text.split_once("\n\nℹ️") {
        Some((answer, note)) => (answer.to_owned(), note.to_owned()),
        None => (text, String::new()),
    }
}

#[actix_web::test]
async fn ack_acknowledges_the_alert_the_conversation_is_about_before_the_newest_one() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let app = start(&graph, dir.path(), flows.path()).await;

    for message in ["High latency", "Error rate"] {
        let run = run_webhook(&app, "/test/page", page(message, &e164(ALICE), None)).await;
        assert_eq!(run.outcome.as_deref(), Some("completed"));
    }
    // Bob is paged about a third, newer alert: not Alice's.
    run_webhook(&app, "/test/page", page("Queue backlog", &e164(BOB), None)).await;
    sent_to(&graph, ALICE, 2).await;

    // Both alerts are hers; the newest she was paged about is ALT-0002, and the answer says how
    // to pick the other.
    let (answer, note) = with_note(ask(&app, &graph, ALICE, "ACK").await);
    assert_eq!(
        answer,
        "Acknowledged ALT-0002 by Alice: [CRITICAL] api: Error rate"
    );
    assert!(note.contains("write `ACK ALT-0001`"), "{note}");
    // ALT-0004 is hers and newer still, but no message named it; a reminder about ALT-0001 makes
    // that the one her next ACK means.
    run_webhook(
        &app,
        "/test/page-silently",
        json!({ "severity": "warning", "service": "db", "message": "Replica lag",
                "oncall": e164(ALICE) }),
    )
    .await;
    run_webhook(
        &app,
        "/test/remind",
        json!({ "alert_id": "ALT-0001", "to": e164(ALICE) }),
    )
    .await;
    sent_to(&graph, ALICE, 4).await;
    assert_eq!(
        with_note(ask(&app, &graph, ALICE, "ACK").await).0,
        "Acknowledged ALT-0001 by Alice: [CRITICAL] api: High latency"
    );
    // Every alert her conversation names is acknowledged: her number finds ALT-0004.
    assert_eq!(
        ask(&app, &graph, ALICE, "ACK").await,
        "Acknowledged ALT-0004 by Alice: [WARNING] db: Replica lag"
    );
    assert_eq!(
        ask(&app, &graph, ALICE, "ACK").await,
        "No pending alerts to acknowledge"
    );
    let store = store(dir.path()).await;
    let bobs = store.get_alert("ALT-0003").await.unwrap().unwrap();
    assert_eq!(
        bobs.state,
        aof::store::AlertState::Firing,
        "Bob's is untouched"
    );
}

#[actix_web::test]
async fn acknowledge_then_resolve_records_each_transition_with_its_actor_and_time() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let app = start(&graph, dir.path(), flows.path()).await;
    let started = aof_actors::model::now_ms();

    run_webhook(&app, "/test/page", page("High latency", &e164(ALICE), None)).await;
    sent_to(&graph, ALICE, 1).await;
    assert!(ask(&app, &graph, ALICE, "ACK")
        .await
        .starts_with("Acknowledged ALT-0001"));
    // Bob was never paged about it: nothing is active for him.
    let refused = ask(&app, &graph, BOB, "RESOLVE").await;
    assert!(refused.contains("You have no active alert"), "{refused}");
    assert_eq!(
        ask(&app, &graph, ALICE, "RESOLVE").await,
        "Resolved ALT-0001 (resolved, PagerDuty: none)"
    );
    let ended = aof_actors::model::now_ms();

    let alert = store(dir.path())
        .await
        .get_alert("ALT-0001")
        .await
        .unwrap()
        .expect("the alert");
    assert_eq!(alert.state, aof::store::AlertState::Resolved);
    assert_eq!(alert.acknowledged_by.as_deref(), Some("+15551234567"));
    assert_eq!(alert.resolved_by.as_deref(), Some("+15551234567"));
    let moves: Vec<(&str, Option<&str>)> = alert
        .transitions
        .iter()
        .map(|t| (t.state.as_str(), t.actor.as_deref()))
        .collect();
    assert_eq!(
        moves,
        [
            ("firing", Some("webhook")),
            ("acknowledged", Some("+15551234567")),
            ("resolved", Some("+15551234567")),
        ]
    );
    let times: Vec<i64> = alert.transitions.iter().map(|t| t.at_ms).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "in order: {times:?}"
    );
    assert!(
        times.iter().all(|t| (started..=ended).contains(t)),
        "{times:?} within {started}..={ended}"
    );
    assert_eq!(alert.acknowledged_ms, Some(times[1]));
    assert_eq!(alert.resolved_ms, Some(times[2]));
    assert_eq!(
        ask(&app, &graph, ALICE, "ACK").await,
        "No pending alerts to acknowledge"
    );
}
