//! An alert storm to one engineer, paced as WhatsApp paces one person: the first page goes at
//! once, what waits behind the pace is folded into digests that name every alert, nothing is
//! named twice, escalation timers still run, and ACK ALL (or ACK quoting a digest) acknowledges
//! what the digests named.

use super::support::*;
use crate::common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

/// The stories' bot with one message a second per person, no burst.
async fn paced(graph: &FakeGraph, dir: &std::path::Path) -> TestApp {
    let options = Options {
        per_person_interval_ms: 1000,
        per_person_burst: 1,
        ..options(&graph.address)
    };
    TestApp::spawn_in(dir, graph, &options)
        .await
        .expect("the bot starts")
}

/// Answers each digest with a wamid of its own (`wamid.digest.1`, …), so that a test can quote it.
fn name_digests(graph: &FakeGraph) {
    let mut n = 0;
    graph.script(move |body| {
        let text = body["text"]["body"].as_str()?;
        text.contains("alerts firing").then(|| {
            n += 1;
            (
                200,
                json!({ "messaging_product": "whatsapp",
                        "messages": [{ "id": format!("wamid.digest.{n}") }] }),
            )
        })
    });
}

async fn raise(app: &TestApp, n: usize) {
    for i in 1..=n {
        let service = if i % 4 == 0 { "db" } else { "api-server" };
        alert(
            app,
            json!({ "severity": "critical", "service": service, "message": format!("storm {i}") }),
        )
        .await;
    }
}

/// What Alice has been told of the storm: the pages sent alone (ops_alert templates, by their
/// message) and the alert ids the digests named, each digest's ids deduplicated.
fn told(graph: &FakeGraph) -> (Vec<String>, Vec<u64>) {
    let mut pages = Vec::new();
    let mut named = Vec::new();
    for text in texts(graph, ALICE) {
        if text.starts_with("ops_alert(") {
            pages.push(text);
        } else if text.contains("alerts firing") {
            let ids = named_in(&text);
            named.extend(ids);
        }
    }
    (pages, named)
}

async fn state_of(dir: &std::path::Path, id: &str) -> String {
    let alert = store(dir)
        .await
        .get_alert(id)
        .await
        .unwrap()
        .expect("stored");
    alert.state.as_str().to_owned()
}

#[actix_web::test]
async fn a_storm_reaches_the_engineer_as_a_few_digests_naming_every_alert_once() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = paced(&graph, dir.path()).await;
    const STORM: usize = 40;
    raise(&app, STORM).await;
    let all_told = eventually(Duration::from_secs(30), || {
        let (pages, named) = told(&graph);
        (pages.len() + named.len() >= STORM).then_some((pages, named))
    })
    .await;
    let (pages, named) = all_told.unwrap_or_else(|| panic!("Alice got {:?}", texts(&graph, ALICE)));
    // Nothing lost, nothing twice: the pages sent alone plus the ids the digests named are the
    // storm, each once.
    let distinct: BTreeSet<u64> = named.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        named.len(),
        "an alert named twice: {named:?}"
    );
    assert_eq!(pages.len() + named.len(), STORM, "{pages:?} {named:?}");
    assert!(!pages.is_empty(), "the first page went at once, alone");
    let sends = graph.sends_to(ALICE);
    assert!(
        sends.len() <= 8,
        "{} messages for {STORM} alerts: {:?}",
        sends.len(),
        texts(&graph, ALICE)
    );
    // Never faster than her pace (less a little jitter on the way to the fake).
    for pair in sends.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(900),
            "{gap:?} between two messages"
        );
    }
    let digest = texts(&graph, ALICE)
        .into_iter()
        .find(|t| t.contains("alerts firing"))
        .expect("a digest");
    assert!(digest.contains("api-server ×"), "{digest}");
    assert!(digest.contains("ACK ALL"), "{digest}");
    // Every alert in a digest still escalates if nobody acknowledges it.
    assert_eq!(timer_ids(&app, "auto-escalate-flow").await.len(), STORM);

    app.say(ALICE, "ACK ALL").await;
    let answer = received(&graph, ALICE, "alerts acknowledged").await;
    assert!(
        answer.contains(&format!("{STORM} alerts acknowledged")),
        "{answer}"
    );
    received(
        &graph,
        BOB,
        &format!("{STORM} alerts acknowledged by Alice"),
    )
    .await;
    for n in 1..=STORM {
        assert_eq!(
            state_of(dir.path(), &format!("ALT-{n:04}")).await,
            "acknowledged"
        );
    }
}

#[actix_web::test]
async fn ack_quoting_a_digest_acknowledges_the_alerts_it_names_and_no_other() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = paced(&graph, dir.path()).await;
    name_digests(&graph);
    raise(&app, 6).await;
    let digest = received(&graph, ALICE, "alerts firing").await;
    let named = named_in(&digest);
    assert!(named.len() >= 2, "{digest}");
    // ESC quoting it asks which alert; INFO quoting it takes the first and lists the others.
    let esc = quoting(ALICE, "ESC", "wamid.digest.1", false);
    assert_eq!(app.post_signed(esc.to_string().as_bytes()).await, 200);
    received(
        &graph,
        ALICE,
        &format!("That message names {} alerts", named.len()),
    )
    .await;
    let info = quoting(ALICE, "INFO", "wamid.digest.1", false);
    assert_eq!(app.post_signed(info.to_string().as_bytes()).await, 200);
    let first = named.iter().next().expect("named");
    let details = received(&graph, ALICE, &format!("Alert: ALT-{first:04}")).await;
    let last = named.iter().last().expect("named");
    assert!(
        details.contains(&format!("ALT-{last:04}")),
        "the others are listed: {details}"
    );
    // A later alert, not in the digest.
    raise_one(&app).await;
    let notification = quoting(ALICE, "ACK", "wamid.digest.1", false);
    assert_eq!(
        app.post_signed(notification.to_string().as_bytes()).await,
        200
    );
    received(
        &graph,
        ALICE,
        &format!("{} alerts acknowledged", named.len()),
    )
    .await;
    for n in named {
        assert_eq!(
            state_of(dir.path(), &format!("ALT-{n:04}")).await,
            "acknowledged"
        );
    }
    assert_eq!(
        state_of(dir.path(), "ALT-0001").await,
        "firing",
        "the first page was not in it"
    );
    assert_eq!(
        state_of(dir.path(), "ALT-0007").await,
        "firing",
        "nor the later alert"
    );
}

async fn raise_one(app: &TestApp) {
    alert(
        app,
        json!({ "severity": "warning", "service": "web", "message": "after the digest" }),
    )
    .await;
}
