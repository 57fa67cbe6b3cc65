//! Whole stories of the tutorial through the HTTP surface, on the shipped flows, against fakes of
//! the Graph API, PagerDuty, Slack and the deployment endpoint (one recording fake serves them all
//! on different paths). Timers are fired through the admin endpoint instead of waiting 300 s.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn options(fake: &str) -> Options {
    Options {
        whatsapp_extra: format!(
            r#"    people:
      - {{ name: "Alice", phone: "+15551234567", email: "alice@example.com", slack_webhook: "{fake}/slack/alice" }}
      - {{ name: "Bob", phone: "+15557654321", email: "bob@example.com" }}
      - {{ name: "Carol", phone: "+15550001234", email: "carol@example.com" }}
    approvals:
      environments:
        production: {{ approvers: ["Carol", "Bob"] }}
    deployments:
      webhook_url: "{fake}/deploy"
    notifier:
      slack: {{ webhook_url: "{fake}/slack/default" }}
"#
        ),
        oncall_extra: format!(
            r#"      static_oncall:
        - {{ name: "Alice", phone: "+15551234567" }}
        - {{ name: "Bob", phone: "+15557654321" }}
      fallback_number: "+15550001234"
      pagerduty_token: "pd-token"
      pagerduty_api_url: "{fake}/pd"
      pagerduty_from: "ops@example.com""#
        ),
        ..Options::default()
    }
}

async fn spawn(graph: &FakeGraph, dir: &Path) -> TestApp {
    TestApp::spawn_in(dir, graph, &options(&graph.address))
        .await
        .expect("the bot starts")
}

/// The `n`-th send (1-based) to `who`, waiting for it.
async fn nth_send(graph: &FakeGraph, who: &str, n: usize) -> Recorded {
    eventually(WAIT, || graph.sends_to(who).get(n - 1).cloned())
        .await
        .unwrap_or_else(|| panic!("send #{n} to {who} never came; got {:?}", texts(graph, who)))
}

/// What `who` received: texts, and templates as `name(params)`.
fn texts(graph: &FakeGraph, who: &str) -> Vec<String> {
    graph.sends_to(who).iter().map(describe).collect()
}

fn describe(r: &Recorded) -> String {
    match r.body["type"].as_str() {
        Some("template") => format!(
            "{}({})",
            r.body["template"]["name"].as_str().unwrap_or_default(),
            params(r).join("|")
        ),
        _ => r.text().to_owned(),
    }
}

fn params(r: &Recorded) -> Vec<String> {
    r.body["template"]["components"][0]["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| p["text"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `who` got a message containing `needle`; its text.
async fn received(graph: &FakeGraph, who: &str, needle: &str) -> String {
    eventually(WAIT, || {
        graph
            .sends_to(who)
            .iter()
            .map(describe)
            .find(|t| t.contains(needle))
    })
    .await
    .unwrap_or_else(|| panic!("{who} never got `{needle}`; got {:?}", texts(graph, who)))
}

/// Requests the fake received on `path`.
fn requests_to(graph: &FakeGraph, path: &str) -> Vec<Recorded> {
    graph
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

async fn alert(app: &TestApp, body: Value) -> Value {
    let (status, answer) = app
        .post_json(
            "/webhooks/whatsapp/alert/oncall",
            &body,
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    answer
}

#[actix_web::test]
async fn an_alert_pages_the_oncall_engineer_who_acknowledges_and_resolves_it() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn(&graph, dir.path()).await;
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
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn(&graph, dir.path()).await;
    alert(
        &app,
        json!({ "severity": "critical", "service": "payments", "message": "5xx above 5%" }),
    )
    .await;
    nth_send(&graph, ALICE, 1).await;
    let (status, _) = app.get("/admin/timers").await;
    assert_eq!(status, 401, "the admin endpoint needs the token");
    // The flow schedules the escalation after paging: wait until the timer is stored.
    let deadline = std::time::Instant::now() + WAIT;
    while timers(&app).await.as_array().is_none_or(Vec::is_empty) {
        assert!(
            std::time::Instant::now() < deadline,
            "no escalation timer was scheduled"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(timers(&app).await[0]["flow"], "auto-escalate-flow");
    app.stop();

    let app = spawn(&graph, dir.path()).await;
    let (status, fired) = app
        .post_json(
            "/webhooks/admin/timers/fire",
            &json!({}),
            Some(WEBHOOK_TOKEN),
        )
        .await;
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
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn(&graph, dir.path()).await;
    alert(
        &app,
        json!({ "severity": "critical", "service": "db", "message": "replica lag" }),
    )
    .await;
    nth_send(&graph, ALICE, 1).await;
    app.say(ALICE, "ACK").await;
    received(&graph, ALICE, "You're now the incident commander").await;
    let (_, fired) = app
        .post_json(
            "/webhooks/admin/timers/fire",
            &json!({}),
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(fired["fired"], 1);
    let deadline = std::time::Instant::now() + WAIT;
    while finished_runs(dir.path(), "auto-escalate").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the auto-escalation never ran"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
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

/// The pending timers, through the admin endpoint.
async fn timers(app: &TestApp) -> Value {
    let mut res = app
        .client
        .get(app.url("/admin/timers"))
        .insert_header(("authorization", format!("Bearer {WEBHOOK_TOKEN}")))
        .send()
        .await
        .expect("the server answers");
    serde_json::from_slice(&res.body().await.unwrap_or_default()).unwrap_or(Value::Null)
}

/// Outcomes of the finished runs of a flow, read from the store's run records.
async fn finished_runs(dir: &Path, flow: &str) -> Vec<String> {
    let url = format!("sqlite://{}", dir.join("aof.db").display());
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("the store opens");
    let outcomes = sqlx::query_scalar::<_, String>(
        "SELECT outcome FROM runs WHERE flow = ?1 AND outcome IS NOT NULL",
    )
    .bind(flow)
    .fetch_all(&pool)
    .await
    .expect("the runs table answers");
    pool.close().await;
    outcomes
}

#[actix_web::test]
async fn esc_pages_the_next_oncall_engineer() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn(&graph, dir.path()).await;
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

async fn request_deploy(app: &TestApp) {
    let body = json!({ "service": "api", "version": "v2.1.0", "environment": "production",
                       "requester": "alice@example.com",
                       "changes_url": "https://github.com/org/api/compare/v2.0.0...v2.1.0" });
    let (status, answer) = app
        .post_json("/deploy/request-approval", &body, Some(WEBHOOK_TOKEN))
        .await;
    assert_eq!(status, 202, "{answer}");
}

#[actix_web::test]
async fn an_approved_deployment_is_deployed_and_the_requester_told() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn(&graph, dir.path()).await;
    request_deploy(&app).await;
    received(
        &graph,
        CAROL,
        "deployment_approval(api|v2.1.0|production|alice@example.com)",
    )
    .await;
    received(
        &graph,
        BOB,
        "deployment_approval(api|v2.1.0|production|alice@example.com)",
    )
    .await;
    let slack = eventually(WAIT, || {
        requests_to(&graph, "/slack/alice").first().cloned()
    })
    .await
    .expect("Alice told on Slack");
    assert!(
        slack.body["text"]
            .as_str()
            .unwrap()
            .contains("Waiting for: Carol, Bob"),
        "{}",
        slack.body
    );

    app.say(CAROL, "APPROVE").await;
    let deploy = eventually(WAIT, || requests_to(&graph, "/deploy").first().cloned())
        .await
        .expect("the deploy is called");
    assert_eq!(deploy.body["service"], "api");
    assert_eq!(deploy.body["version"], "v2.1.0");
    assert_eq!(deploy.body["environment"], "production");
    assert_eq!(deploy.body["approved_by"], "+15550001234");
    received(&graph, ALICE, "✅ Deployment approved!").await;
    received(&graph, CAROL, "is now deploying to production").await;

    // Alice is no approver: nothing waits for her, nothing more is deployed.
    app.say(ALICE, "APPROVE").await;
    received(&graph, ALICE, "No approval request is waiting for you").await;
    assert_eq!(requests_to(&graph, "/deploy").len(), 1);
}

#[actix_web::test]
async fn when_two_approvers_race_one_decision_wins_and_the_other_is_told_who_decided() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn(&graph, dir.path()).await;
    request_deploy(&app).await;
    received(&graph, CAROL, "deployment_approval").await;
    received(&graph, BOB, "deployment_approval").await;
    let (carol, bob) =
        futures_util::future::join(app.say(CAROL, "APPROVE"), app.say(BOB, "REJECT")).await;
    assert_eq!((carol, bob), (200, 200));
    let loser = eventually(WAIT, || {
        [CAROL, BOB].into_iter().find_map(|who| {
            graph
                .sends_to(who)
                .iter()
                .map(describe)
                .find(|t| t.contains("was already"))
                .map(|t| (who, t))
        })
    })
    .await
    .expect("the second decision is told who decided");
    let winner = if loser.0 == CAROL { "Bob" } else { "Carol" };
    assert!(loser.1.contains(&format!("by {winner}")), "{loser:?}");
    let deploys = requests_to(&graph, "/deploy").len();
    assert!(deploys <= 1, "one decision, at most one deploy: {deploys}");
}

#[actix_web::test]
async fn a_war_room_relays_in_order_to_every_other_member_and_closes_with_a_summary() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn(&graph, dir.path()).await;
    app.say(BOB, "the api is down").await;
    let page = received(
        &graph,
        ALICE,
        "ops_alert(CRITICAL|api|INC-0001: the api is down",
    )
    .await;
    assert!(page.starts_with("ops_alert"));
    received(&graph, ALICE, "War room INC-0001").await;
    received(&graph, BOB, "Incident INC-0001 opened").await;

    app.say(CAROL, "JOIN INC-0001").await;
    received(&graph, CAROL, "You joined the war room of INC-0001").await;
    received(&graph, BOB, "➕ Carol joined INC-0001").await;

    for i in 1..=5 {
        app.say(BOB, &format!("update {i}")).await;
    }
    for who in [ALICE, CAROL] {
        received(&graph, who, "update 5").await;
        let order: Vec<String> = texts(&graph, who)
            .into_iter()
            .filter(|t| t.contains("*Bob* [INC-0001]: update"))
            .collect();
        let expected: Vec<String> = (1..=5)
            .map(|i| format!("💬 *Bob* [INC-0001]: update {i}"))
            .collect();
        assert_eq!(order, expected, "{who} got Bob's updates in order");
    }
    assert!(
        !texts(&graph, BOB)
            .iter()
            .any(|t| t.contains("*Bob* [INC-0001]")),
        "no echo to the sender"
    );

    app.say(CAROL, "WHO").await;
    let who = received(&graph, CAROL, "members").await;
    assert!(
        who.contains("• Bob") && who.contains("On call now: Alice"),
        "{who}"
    );
    app.say(CAROL, "LEAVE").await;
    received(&graph, CAROL, "You left the war room of INC-0001").await;
    app.say(BOB, "after carol left").await;
    received(&graph, ALICE, "after carol left").await;
    assert!(!texts(&graph, CAROL)
        .iter()
        .any(|t| t.contains("after carol left")));

    app.say(ALICE, "RESOLVE").await;
    let summary = received(&graph, BOB, "INC-0001 resolved").await;
    assert!(summary.contains("Updates in the room: 6"), "{summary}");
    let store = store(dir.path()).await;
    assert_eq!(
        store
            .get_incident("INC-0001")
            .await
            .unwrap()
            .unwrap()
            .status,
        "resolved"
    );
}

#[actix_web::test]
async fn alertmanager_pages_once_per_fingerprint_and_resolves_what_it_resolves() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn(&graph, dir.path()).await;
    let firing: Value =
        serde_json::from_slice(&fixture("alertmanager/firing-two-alerts.json")).unwrap();
    let answer = alert(&app, firing.clone()).await;
    assert_eq!(answer["runs"].as_array().map(Vec::len), Some(2), "{answer}");
    nth_send(&graph, ALICE, 2).await;
    assert_eq!(
        params(&graph.sends_to(ALICE)[0])[..2],
        ["CRITICAL", "payments-api"]
    );

    let again = alert(&app, firing).await;
    assert_eq!(
        again["duplicates"].as_array().map(Vec::len),
        Some(2),
        "{again}"
    );
    let resolved: Value = serde_json::from_slice(&fixture("alertmanager/resolved.json")).unwrap();
    let answer = alert(&app, resolved).await;
    assert!(
        !answer["resolved"].as_array().unwrap().is_empty(),
        "{answer}"
    );
    received(&graph, ALICE, "✅ Resolved by Alertmanager").await;
    let pages = graph
        .sends_to(ALICE)
        .iter()
        .filter(|r| r.body["type"] == "template")
        .count();
    assert_eq!(
        pages,
        2,
        "one page per fingerprint: {:?}",
        texts(&graph, ALICE)
    );
}

#[actix_web::test]
async fn pagerduty_and_the_bot_keep_each_other_in_step_without_echoes() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn(&graph, dir.path()).await;
    let triggered: Value =
        serde_json::from_slice(&fixture("pagerduty/v3-incident-triggered.json")).unwrap();
    let (status, _) = app
        .post_json("/webhooks/whatsapp/pagerduty", &triggered, None)
        .await;
    assert_eq!(status, 401, "the PagerDuty webhook needs the token too");
    let (status, answer) = app
        .post_json(
            "/webhooks/whatsapp/pagerduty",
            &triggered,
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    received(&graph, ALICE, "[FIRING:2] HighErrorRate payments-api").await;
    let (_, again) = app
        .post_json(
            "/webhooks/whatsapp/pagerduty",
            &triggered,
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(again["duplicate"], true, "redelivered events are ignored");

    app.say(ALICE, "ACK").await;
    let put = eventually(WAIT, || {
        requests_to(&graph, "/pd/incidents/Q1W2E3R4T5Y6U7")
            .first()
            .cloned()
    })
    .await
    .expect("the ACK reaches PagerDuty");
    assert_eq!(put.body["incident"]["status"], "acknowledged");
    assert_eq!(put.authorization.as_deref(), Some("Token token=pd-token"));

    // PagerDuty tells us back: the alert is already acknowledged, so nobody hears about it again.
    let before = graph.sends_to(ALICE).len();
    let acked: Value =
        serde_json::from_slice(&fixture("pagerduty/v3-incident-acknowledged.json")).unwrap();
    let (status, answer) = app
        .post_json("/webhooks/whatsapp/pagerduty", &acked, Some(WEBHOOK_TOKEN))
        .await;
    assert_eq!(
        (status, &answer["acknowledged"]),
        (200, &json!(false)),
        "{answer}"
    );
    assert_eq!(
        requests_to(&graph, "/pd/incidents/Q1W2E3R4T5Y6U7").len(),
        1,
        "no echo back to PagerDuty"
    );

    let mut resolved = acked.clone();
    resolved["event"]["id"] = json!("01EVTRESOLVED");
    resolved["event"]["event_type"] = json!("incident.resolved");
    let (_, answer) = app
        .post_json(
            "/webhooks/whatsapp/pagerduty",
            &resolved,
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(answer["resolved"], true, "{answer}");
    received(&graph, ALICE, "✅ Resolved by Priya Raman (PagerDuty)").await;
    assert!(graph.sends_to(ALICE).len() > before);
}

#[actix_web::test]
async fn datadog_status_words_page_and_recover() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn(&graph, dir.path()).await;
    let triggered = json!({ "severity": "Triggered", "service": "checkout", "message": "error rate high", "runbook_url": "" });
    alert(&app, triggered.clone()).await;
    received(&graph, ALICE, "ops_alert(CRITICAL|checkout|error rate high").await;
    let again = alert(&app, triggered).await;
    assert!(again["duplicates"].is_array(), "{again}");
    alert(
        &app,
        json!({ "severity": "Recovered", "service": "checkout", "message": "ok" }),
    )
    .await;
    received(&graph, ALICE, "✅ Resolved by Datadog").await;
}

#[actix_web::test]
async fn bad_alert_bodies_get_a_400_naming_each_field_and_page_nobody() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn(&graph, dir.path()).await;
    let (status, answer) = app
        .post_json(
            "/webhooks/whatsapp/alert/oncall",
            &json!({ "severity": "sev1", "message": "x" }),
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let fields: Vec<&str> = answer["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"service") && fields.contains(&"severity"),
        "{answer}"
    );
    let (status, _) = app
        .post_json("/webhooks/whatsapp/alert/oncall", &json!({}), Some("wrong"))
        .await;
    assert_eq!(status, 401);
    app.say(ALICE, "HELP").await;
    nth_send(&graph, ALICE, 1).await;
    assert!(
        graph.sends().iter().all(|r| r.body["type"] != "template"),
        "nobody was paged"
    );
}

#[actix_web::test]
async fn a_200_member_war_room_relays_every_message_in_order_to_every_other_member() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), temp());
    for entry in std::fs::read_dir(repo().join("flows/whatsapp")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, flows.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        flows.path().join("open-room.yaml"),
        r#"apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: open-room
triggers:
  - type: webhook
    path: "/test/open-room"
    method: POST
input:
  required: [members]
steps:
  - name: open-incident
    agent: incident-manager
    action: create
    input:
      title: "storm"
      severity: "critical"
      service: "edge"
  - name: open-war-room
    agent: war-room
    action: open
    input:
      incident_id: "{{ steps.open-incident.output.incident_id }}"
      members: "{{ input.members }}"
"#,
    )
    .unwrap();
    let mut options = options(&graph.address);
    options.flows_dir = Some(flows.path().to_owned());
    options.per_second = 80;
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("the bot starts");
    let others: Vec<String> = (0..199).map(|i| format!("+1555200{i:04}")).collect();
    let mut members = vec![format!("+{ALICE}")];
    members.extend(others.iter().cloned());
    let (status, answer) = app
        .post_json(
            "/test/open-room",
            &json!({ "members": members }),
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    eventually(Duration::from_secs(30), || {
        (graph.sends().len() >= 200).then_some(())
    })
    .await
    .expect("200 welcomes");

    for i in 1..=3 {
        app.say(ALICE, &format!("update {i} from the edge")).await;
    }
    let relays = |who: &str| -> Vec<String> {
        graph
            .sends_to(who)
            .iter()
            .map(describe)
            .filter(|t| t.contains("from the edge"))
            .collect()
    };
    let expected: Vec<String> = (1..=3)
        .map(|i| format!("💬 *Alice* [INC-0001]: update {i} from the edge"))
        .collect();
    let done = eventually(Duration::from_secs(60), || {
        others
            .iter()
            .all(|o| relays(o.trim_start_matches('+')).len() == 3)
            .then_some(())
    })
    .await;
    let missing: Vec<&String> = others
        .iter()
        .filter(|o| relays(o.trim_start_matches('+')).len() != 3)
        .collect();
    assert!(
        done.is_some(),
        "{} members did not get all three: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    for other in &others {
        assert_eq!(
            relays(other.trim_start_matches('+')),
            expected,
            "{other} got them in order"
        );
    }
    assert!(relays(ALICE).is_empty(), "no echo to the sender");
}
