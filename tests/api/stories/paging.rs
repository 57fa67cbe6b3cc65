//! Paging: an alert pages the on-call engineer, who acknowledges and resolves it or passes it on
//! with ESC; an alert nobody acknowledges is escalated when its timer fires, also after a restart,
//! and one acknowledged in time is not.

use super::support::*;
use crate::common::*;
use serde_json::{json, Value};

/// Fires the pending timers of `flow` (every page also has a delivery check pending); the status
/// and the answer of the last.
async fn fire_timers_of(app: &TestApp, flow: &str) -> (u16, Value) {
    let mut answer = (404, Value::Null);
    for id in timer_ids(app, flow).await {
        answer = fire_timer(app, &id).await;
    }
    answer
}

#[actix_web::test]
async fn an_alert_pages_the_oncall_engineer_who_acknowledges_and_resolves_it() {
    let (graph, dir, app) = start().await;
    let answer = alert(&app, json!({ "severity": "warning", "service": "api-server", "message": "High latency detected (>500ms)",
                        "runbook_url": "https://runbooks.example.com/api-latency" })).await;
    assert_eq!(
        answer["alert_id"], "ALT-0001",
        "the 202 names the created alert: {answer}"
    );
    assert!(
        answer["run_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("run_")),
        "{answer}"
    );
    let page = nth_send(&graph, ALICE, 1).await;
    assert_eq!(page.body["template"]["name"], "ops_alert");
    assert_eq!(
        params(&page)[..3],
        ["WARNING", "api-server", "High latency detected (>500ms)"]
    );

    let info = {
        app.say(ALICE, "INFO").await;
        received(
            &graph,
            ALICE,
            "Runbook: https://runbooks.example.com/api-latency",
        )
        .await
    };
    assert!(info.contains("• Alice at"), "{info}");

    app.say(ALICE, "ACK").await;
    received(&graph, ALICE, "You're now the incident commander").await;
    received(&graph, BOB, "✅ Alert acknowledged by Alice").await;

    app.say(ALICE, "RESOLVE").await;
    received(&graph, BOB, "✅ Resolved by Alice").await;
    let store = store(dir.path()).await;
    let alert = store
        .get_alert("ALT-0001")
        .await
        .unwrap()
        .expect("the alert is stored");
    assert_eq!(alert.state.as_str(), "resolved");
    let states: Vec<&str> = alert.transitions.iter().map(|t| t.state.as_str()).collect();
    assert_eq!(states, ["firing", "acknowledged", "resolved"]);
}

#[actix_web::test]
async fn a_critical_alert_nobody_acknowledges_is_escalated_also_after_a_restart() {
    let (graph, dir, app) = start().await;
    alert(
        &app,
        json!({ "severity": "critical", "service": "payments", "message": "5xx above 5%" }),
    )
    .await;
    nth_send(&graph, ALICE, 1).await;
    let (status, _) = app.get("/admin/timers").await;
    assert_eq!(status, 401, "the admin endpoint needs the token");
    // The flow schedules the escalation after paging: wait until the timer is stored.
    eventually_async(WAIT, || async {
        let list = timers(&app).await;
        let scheduled = list
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["flow"] == "auto-escalate-flow"));
        scheduled.then_some(())
    })
    .await
    .expect("no escalation timer was scheduled");
    app.stop();

    let app = spawn(&graph, dir.path()).await;
    let (status, fired) = fire_timers_of(&app, "auto-escalate-flow").await;
    assert_eq!(
        (status, fired["fired"].as_u64()),
        (200, Some(1)),
        "the 300 s timer survived the restart"
    );
    let escalation = received(&graph, BOB, "ops_alert(ESCALATED|payments|5xx above 5%").await;
    assert!(escalation.starts_with("ops_alert"), "{escalation}");
    received(
        &graph,
        ALICE,
        "⬆️ Not acknowledged in time, escalated to Bob",
    )
    .await;

    // Bob takes it: his ACK finds the alert he was escalated.
    app.say(BOB, "ACK").await;
    received(&graph, BOB, "You're now the incident commander").await;
}

#[actix_web::test]
async fn an_acknowledged_alert_is_not_escalated_when_the_timer_fires() {
    let (graph, dir, app) = start().await;
    alert(
        &app,
        json!({ "severity": "critical", "service": "db", "message": "replica lag" }),
    )
    .await;
    nth_send(&graph, ALICE, 1).await;
    app.say(ALICE, "ACK").await;
    received(&graph, ALICE, "You're now the incident commander").await;
    let (_, fired) = fire_timers_of(&app, "auto-escalate-flow").await;
    assert_eq!(fired["fired"], 1);
    eventually_async(WAIT, || async {
        let ran = !finished_runs(dir.path(), "auto-escalate").await.is_empty();
        ran.then_some(())
    })
    .await
    .expect("the auto-escalation never ran");
    assert_eq!(
        finished_runs(dir.path(), "auto-escalate").await,
        ["completed"]
    );
    assert!(
        !texts(&graph, BOB).iter().any(|t| t.contains("ESCALATED")),
        "{:?}",
        texts(&graph, BOB)
    );
}

#[actix_web::test]
async fn esc_pages_the_next_oncall_engineer() {
    let (graph, _dir, app) = start().await;
    alert(
        &app,
        json!({ "severity": "warning", "service": "web", "message": "p99 over 2s" }),
    )
    .await;
    nth_send(&graph, ALICE, 1).await;
    app.say(ALICE, "ESC").await;
    received(&graph, BOB, "ops_alert(ESCALATED|web|p99 over 2s").await;
    received(&graph, ALICE, "📤 Alert escalated to Bob").await;
}

#[actix_web::test]
async fn without_a_team_group_ack_and_resolve_still_confirm_to_the_engineer() {
    // The tutorial's config as printed sets no `oncall.team_group`, which its flows read.
    let (graph, dir) = (FakeGraph::start(), temp());
    let text = config_yaml(&graph.address, dir.path(), &options(&graph.address))
        .replace("      team_group: \"sre-team\"\n", "");
    assert!(!text.contains("team_group"), "{text}");
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, text).unwrap();
    let config = aof::config::load(&file).expect("a config without a team group loads");
    let app = TestApp::start(dir.path(), config)
        .await
        .expect("the bot starts");

    alert(
        &app,
        json!({ "severity": "critical", "service": "api-server", "message": "High latency" }),
    )
    .await;
    nth_send(&graph, ALICE, 1).await;
    app.say(ALICE, "ACK").await;
    let confirmed = received(&graph, ALICE, "✅ Alert acknowledged").await;
    assert!(
        confirmed.contains("You're now the incident commander"),
        "{confirmed}"
    );
    app.say(ALICE, "RESOLVE").await;
    received(&graph, ALICE, "Resolved").await;
    for text in texts(&graph, ALICE) {
        assert!(
            !text.contains("⚠️"),
            "no error reaches the engineer: {text}"
        );
    }
    assert!(
        graph.sends_to(BOB).is_empty(),
        "no team message without a team: {:?}",
        texts(&graph, BOB)
    );
    assert_eq!(
        finished_runs(dir.path(), "acknowledge-alert").await,
        ["completed"]
    );
}
