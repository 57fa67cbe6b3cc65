//! SILENCE from the chat: a silenced service's pages are held (on the alert's timeline and in the
//! silence's list), critical ones break through, the list is told when the silence is lifted, and
//! a restart keeps the silence. Only `oncall.silencers` may silence.

use super::support::*;
use crate::common::*;
use serde_json::json;

/// The stories' config with Alice allowed to silence.
async fn start_with_silencers(graph: &FakeGraph, dir: &std::path::Path) -> TestApp {
    spawn_with_oncall(graph, dir, "silencers: [\"Alice\"]").await
}

#[actix_web::test]
async fn a_silenced_services_pages_are_held_listed_and_critical_ones_break_through() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start_with_silencers(&graph, dir.path()).await;
    app.say(CAROL, "SILENCE search 1h").await;
    received(&graph, CAROL, "Only the people in oncall.silencers").await;

    app.say(ALICE, "SILENCE search 1h").await;
    received(&graph, ALICE, "🔕 search is silenced until").await;
    received(&graph, BOB, "🔕 search is silenced until").await;

    let held = alert(
        &app,
        json!({ "severity": "warning", "service": "search", "message": "slow" }),
    )
    .await;
    let held_id = held["alert_id"].as_str().expect("an alert id").to_owned();
    // A restart keeps the silence.
    app.stop();
    let app = start_with_silencers(&graph, dir.path()).await;
    alert(
        &app,
        json!({ "severity": "warning", "service": "search", "message": "slower" }),
    )
    .await;
    alert(
        &app,
        json!({ "severity": "critical", "service": "search", "message": "down" }),
    )
    .await;
    received(&graph, ALICE, "ops_alert(CRITICAL|search|down").await;
    assert!(
        !texts(&graph, ALICE)
            .iter()
            .any(|t| t.starts_with("ops_alert(WARNING")),
        "the warnings were held: {:?}",
        texts(&graph, ALICE)
    );
    app.say(CAROL, "WHO").await;
    let who = received(&graph, CAROL, "🔕 *Silenced*").await;
    assert!(who.contains("• search until"), "{who}");
    app.say(CAROL, "STATUS").await;
    let status = received(&graph, CAROL, "System Status").await;
    assert!(
        status.contains("🔕 *Silenced*\n• search until"),
        "STATUS shows the silence: {status}"
    );

    app.say(ALICE, "UNSILENCE search").await;
    let lifted = received(&graph, ALICE, "🔔 search pages again").await;
    assert!(lifted.contains(&held_id), "{lifted}");
    received(&graph, BOB, "🔔 search is no longer silenced").await;
    let store = store(dir.path()).await;
    let alert = store.get_alert(&held_id).await.unwrap().expect("stored");
    assert!(
        alert
            .notes
            .iter()
            .any(|n| n.text.contains("was held: search is silenced")),
        "{:?}",
        alert.notes
    );
}

#[actix_web::test]
async fn a_silence_that_runs_out_tells_the_team_what_it_held() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start_with_silencers(&graph, dir.path()).await;
    app.say(ALICE, "SILENCE queue 2h").await;
    received(&graph, ALICE, "🔕 queue is silenced until").await;
    let held = alert(
        &app,
        json!({ "severity": "info", "service": "queue", "message": "deep" }),
    )
    .await;
    let held_id = held["alert_id"].as_str().expect("an alert id").to_owned();
    // Its end: the timer the silence set, fired now (through the admin endpoint, which needs the
    // token).
    assert_eq!(
        app.get("/admin/timers").await.0,
        401,
        "the admin endpoint needs the token"
    );
    let ends = timer_ids(&app, "unsilence-flow").await;
    assert_eq!(ends.len(), 1, "{ends:?}");
    let (status, fired) = fire_timer(&app, &ends[0]).await;
    assert_eq!(status, 200, "{fired}");
    let told = received(&graph, BOB, "🔔 queue is no longer silenced").await;
    assert!(told.contains(&held_id), "{told}");
}
