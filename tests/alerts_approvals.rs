//! The `alert-manager` and `approval-manager` agents through the real server: alerts created by a
//! webhook flow (deduplicated by fingerprint), `ACK` finding the alert the conversation is about,
//! acknowledge and resolve recorded with actor and time; approvers from config per environment and
//! service, non-approvers refused, the first of two racing decisions winning, expired requests
//! refused, and an approver's open requests listed.
//!
//! The flows are written here, into a temporary flows directory of their own, so that these tests
//! depend on the two agents and the engine only.

mod common;

use common::*;
use serde_json::{json, Value};
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// Carol: in the people directory, not in allowed_numbers.
const CAROL: &str = "15550001234";

/// The people directory and the approvers (Alice's number in another notation on purpose).
const PEOPLE: &str = r#"    people:
      - name: Alice
        phone: "+1 555 123 4567"
      - name: Bob
        phone: "+15557654321"
      - name: Carol
        phone: "+15550001234"
    approvals:
      environments:
        production:
          approvers: [Alice, Bob]
          services:
            billing: [Alice]
        "*":
          services:
            web: [Carol]
"#;

/// Routing targets of the test config, so that the flows directory loads.
const STUBS: [(&str, &str); 2] = [
    (
        "whatsapp-help-flow.yaml",
        r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: whatsapp-help
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "help"
"#,
    ),
    (
        "status-check-flow.yaml",
        r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: status-check
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "status"
"#,
    ),
];

/// Records an alert and pages the on-call person, unless it is a repeat of an open alert. The
/// fingerprint is not passed to the step: the agent reads it from the webhook body.
const PAGE: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-page
triggers:
  - type: webhook
    path: "/test/page"
    method: POST
input:
  required: [severity, service, message, oncall]
  schema:
    severity:
      type: string
      enum: ["critical", "warning", "info"]
    service:
      type: string
    message:
      type: string
    oncall:
      type: string
    fingerprint:
      type: string
steps:
  - name: create-alert-record
    agent: alert-manager
    action: create
    input:
      severity: "{{ input.severity }}"
      service: "{{ input.service }}"
      message: "{{ input.message }}"
      oncall_user: "{{ input.oncall }}"
  - name: page
    agent: whatsapp
    action: send_template
    condition: "{{ not steps.create-alert-record.output.duplicate }}"
    input:
      to: "{{ input.oncall }}"
      template: "ops_alert"
      parameters:
        - "{{ input.severity | upper }}"
        - "{{ input.service }}"
        - "{{ steps.create-alert-record.output.alert_id }}: {{ input.message }}"
        - "{{ now() | format_time }}"
"#;

/// Records an alert for someone without sending them anything.
const PAGE_SILENTLY: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-page-silently
triggers:
  - type: webhook
    path: "/test/page-silently"
    method: POST
steps:
  - name: create-alert-record
    agent: alert-manager
    action: create
    input:
      severity: "{{ input.severity }}"
      service: "{{ input.service }}"
      message: "{{ input.message }}"
      oncall_user: "{{ input.oncall }}"
"#;

/// Reminds someone of an alert: the message is about that alert.
const REMIND: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-remind
triggers:
  - type: webhook
    path: "/test/remind"
    method: POST
steps:
  - name: alert
    agent: alert-manager
    action: get
    input:
      alert_id: "{{ input.alert_id }}"
  - name: remind
    agent: whatsapp
    action: send_template
    input:
      to: "{{ input.to }}"
      template: "ops_alert"
      parameters:
        - "REMINDER"
        - "{{ steps.alert.output.service }}"
        - "{{ steps.alert.output.alert_id }}: {{ steps.alert.output.message }}"
        - "{{ now() | format_time }}"
"#;

/// The tutorial's acknowledge flow, answering in text.
const ACK: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-ack
triggers:
  - platform: whatsapp
    type: message
    pattern: "^ACK$"
context:
  source: conversation
  lookback: 5
steps:
  - name: find-active-alert
    agent: alert-manager
    action: find_pending
    input:
      user_phone: "{{ trigger.user.phone }}"
      status: "firing"
    on_empty:
      response:
        text: "No pending alerts to acknowledge"
  - name: acknowledge-alert
    agent: alert-manager
    action: acknowledge
    input:
      alert_id: "{{ steps.find-active-alert.output.alert_id }}"
      acknowledged_by: "{{ trigger.user.phone }}"
      acknowledged_at: "{{ now() }}"
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "Acknowledged {{ steps.acknowledge-alert.output.alert_id }} by {{ steps.acknowledge-alert.output.acknowledged_by_name }}: {{ steps.find-active-alert.output.title }}"
"#;

/// Resolves the alert the person is on.
const RESOLVE: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-resolve
triggers:
  - platform: whatsapp
    type: message
    pattern: "^RESOLVE$"
steps:
  - name: get-current-alert
    agent: alert-manager
    action: get_active
    input:
      user_phone: "{{ trigger.user.phone }}"
  - name: resolve-alert
    agent: alert-manager
    action: resolve
    input:
      alert_id: "{{ steps.get-current-alert.output.alert_id }}"
      resolved_by: "{{ trigger.user.phone }}"
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "Resolved {{ steps.resolve-alert.output.alert_id }} ({{ steps.resolve-alert.output.state }}, PagerDuty: {{ steps.get-current-alert.output.pagerduty_incident_id or 'none' }})"
"#;

/// The tutorial's deployment-approval flow, with an optional `expires_at` and text answers.
const REQUEST: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-request-approval
triggers:
  - type: webhook
    path: "/test/request-approval"
    method: POST
input:
  required: [service, version, environment, requester]
steps:
  - name: get-approvers
    agent: approval-manager
    action: get_approvers
    input:
      environment: "{{ input.environment }}"
      service: "{{ input.service }}"
  - name: create-approval-request
    agent: approval-manager
    action: create
    input:
      type: "deployment"
      service: "{{ input.service }}"
      version: "{{ input.version }}"
      environment: "{{ input.environment }}"
      requester: "{{ input.requester }}"
      approvers: "{{ steps.get-approvers.output.users }}"
      expires_at: "{{ input.expires_at or (now() | add_hours(4)) }}"
      changes_url: "https://example.com/compare"
  - name: send-approval-requests
    agent: whatsapp
    action: send_template
    foreach: "{{ steps.get-approvers.output.users }}"
    input:
      to: "{{ item.phone }}"
      template: "deployment_approval"
      parameters:
        - "{{ input.service }}"
        - "{{ input.version }}"
        - "{{ input.environment }}"
        - "{{ input.requester }}"
on_response:
  - pattern: "^APPROVE$"
    flow: "test-decide"
    input:
      request_id: "{{ steps.create-approval-request.output.request_id }}"
      action: "approve"
      approver_phone: "{{ trigger.user.phone }}"
  - pattern: "^REJECT$"
    flow: "test-decide"
    input:
      request_id: "{{ steps.create-approval-request.output.request_id }}"
      action: "reject"
      approver_phone: "{{ trigger.user.phone }}"
"#;

/// The tutorial's process-approval flow without its own expiry check: the agent must refuse.
const DECIDE: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-decide
input:
  required: [request_id, action, approver_phone]
steps:
  - name: validate-approver
    agent: approval-manager
    action: validate_approver
    input:
      request_id: "{{ input.request_id }}"
      approver_phone: "{{ input.approver_phone }}"
    on_error:
      response:
        text: "❌ You are not authorized to approve this request."
  - name: get-request
    agent: approval-manager
    action: get
    input:
      request_id: "{{ input.request_id }}"
  - name: process-approval
    agent: approval-manager
    action: "{{ input.action }}"
    input:
      request_id: "{{ input.request_id }}"
      approver: "{{ input.approver_phone }}"
      timestamp: "{{ now() }}"
  - name: respond-to-approver
    agent: whatsapp
    action: reply
    input:
      text: "{{ steps.process-approval.output.request_id }} {{ steps.process-approval.output.state }} by {{ steps.validate-approver.output.approver_name }} ({{ steps.get-request.output.service }} {{ steps.get-request.output.version }} to {{ steps.get-request.output.environment }})"
"#;

/// `APPROVE APR-0001` typed with the request's id, without a pending response.
const DECIDE_BY_ID: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-decide-by-id
triggers:
  - platform: whatsapp
    type: message
    pattern: "^(APPROVE|REJECT) (APR-\\d+)$"
input:
  schema:
    verb:
      type: string
      source: "match.1"
    request_id:
      type: string
      source: "match.2"
steps:
  - name: validate-approver
    agent: approval-manager
    action: validate_approver
    input:
      request_id: "{{ input.request_id }}"
      approver_phone: "{{ trigger.user.phone }}"
    on_error:
      response:
        text: "❌ You are not authorized to approve this request."
  - name: process-approval
    agent: approval-manager
    action: "{{ input.verb | lower }}"
    input:
      request_id: "{{ input.request_id }}"
      approver: "{{ trigger.user.phone }}"
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "{{ steps.process-approval.output.request_id }} {{ steps.process-approval.output.state }} by {{ steps.validate-approver.output.approver_name }}"
"#;

/// Lists the requests the writer may decide.
const PENDING: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: test-pending
triggers:
  - platform: whatsapp
    type: message
    pattern: "^PENDING$"
steps:
  - name: pending
    agent: approval-manager
    action: pending_for
    input:
      approver_phone: "{{ trigger.user.phone }}"
    on_empty:
      response:
        text: "No open approval requests"
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "Open:{% for r in steps.pending.output %} {{ r.request_id }} {{ r.service }}@{{ r.environment }};{% endfor %}"
"#;

/// A flows directory with the stubs and every test flow above.
fn flows_dir() -> tempfile::TempDir {
    let dir = temp();
    let flows = STUBS.iter().copied().chain([
        ("test-page.yaml", PAGE),
        ("test-page-silently.yaml", PAGE_SILENTLY),
        ("test-remind.yaml", REMIND),
        ("test-ack.yaml", ACK),
        ("test-resolve.yaml", RESOLVE),
        ("test-request-approval.yaml", REQUEST),
        ("test-decide.yaml", DECIDE),
        ("test-decide-by-id.yaml", DECIDE_BY_ID),
        ("test-pending.yaml", PENDING),
    ]);
    for (name, yaml) in flows {
        std::fs::write(dir.path().join(name), yaml).expect("write a test flow");
    }
    dir
}

/// The server with the test flows and the people directory, storing under `dir`.
async fn start(graph: &FakeGraph, dir: &Path, flows: &Path) -> TestApp {
    let options = Options {
        flows_dir: Some(flows.to_owned()),
        whatsapp_extra: PEOPLE.to_owned(),
        ..Options::default()
    };
    TestApp::spawn_in(dir, graph, &options)
        .await
        .expect("the server starts")
}

/// Waits until `who` has been sent at least `n` messages, and returns them all.
async fn sent_to(graph: &FakeGraph, who: &str, n: usize) -> Vec<Recorded> {
    eventually(WAIT, || Some(graph.sends_to(who)).filter(|s| s.len() >= n))
        .await
        .unwrap_or_else(|| {
            panic!(
                "{who} was sent {} messages, expected {n}: {:#?}",
                graph.sends_to(who).len(),
                texts_to(graph, who)
            )
        })
}

/// What `who` was sent so far: texts, and templates as `name: parameters`.
fn texts_to(graph: &FakeGraph, who: &str) -> Vec<String> {
    graph.sends_to(who).iter().map(shown).collect()
}

/// A send as text: a text's body, or a template's name and parameters.
fn shown(send: &Recorded) -> String {
    if send.body["type"] == "template" {
        let params: Vec<&str> = send.body["template"]["components"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["parameters"].as_array().into_iter().flatten())
            .filter_map(|p| p["text"].as_str())
            .collect();
        format!("{}: {}", send.text(), params.join(" | "))
    } else {
        send.text().to_owned()
    }
}

/// `who` says `text`; the next message `who` is sent, as [`shown`].
async fn ask(app: &TestApp, graph: &FakeGraph, who: &str, text: &str) -> String {
    let before = graph.sends_to(who).len();
    assert_eq!(app.say(who, text).await, 200, "the webhook takes {text:?}");
    shown(&sent_to(graph, who, before + 1).await[before])
}

/// Polls an async check until it returns `Some` or `timeout` passes.
async fn eventually_async<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// POSTs a flow webhook and waits for the run to end; its record.
async fn run_webhook(app: &TestApp, path: &str, body: Value) -> aof::store::RunRecord {
    let (status, answer) = app.post_json(path, &body, Some(WEBHOOK_TOKEN)).await;
    assert_eq!(status, 202, "{path}: {answer}");
    let run_id = answer["run_id"].as_str().expect("a run id").to_owned();
    finished_run(app, &run_id).await
}

/// Waits until run `run_id` has ended; its record.
async fn finished_run(app: &TestApp, run_id: &str) -> aof::store::RunRecord {
    let store = store(&app.dir).await;
    eventually_async(WAIT, || async {
        store
            .run(run_id)
            .await
            .unwrap()
            .filter(|r| r.outcome.is_some())
    })
    .await
    .unwrap_or_else(|| panic!("run {run_id} did not finish"))
}

fn page(message: &str, oncall: &str, fingerprint: Option<&str>) -> Value {
    let mut body =
        json!({ "severity": "critical", "service": "api", "message": message, "oncall": oncall });
    if let Some(fingerprint) = fingerprint {
        body["fingerprint"] = json!(fingerprint);
    }
    body
}

fn deployment(service: &str, environment: &str) -> Value {
    json!({ "service": service, "version": "v2.1.0", "environment": environment,
            "requester": "dave@example.com" })
}

fn e164(digits: &str) -> String {
    format!("+{digits}")
}

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
    let pages = texts_to(&graph, ALICE);
    assert_eq!(pages.len(), 2, "one page per alert: {pages:?}");
    assert!(pages[0].starts_with("ops_alert: CRITICAL | api | ALT-0001: High latency"));
    assert!(pages[1].starts_with("ops_alert: CRITICAL | api | ALT-0002: Disk full"));
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

    // Both alerts are hers; the newest she was paged about is ALT-0002.
    assert_eq!(
        ask(&app, &graph, ALICE, "ACK").await,
        "Acknowledged ALT-0002 by Alice: [CRITICAL] api: Error rate"
    );
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
        ask(&app, &graph, ALICE, "ACK").await,
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
    assert!(refused.contains("no active alert for you"), "{refused}");
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

#[actix_web::test]
async fn approvers_come_from_the_service_then_the_environment_then_the_star_entry() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let app = start(&graph, dir.path(), flows.path()).await;
    let store = store(dir.path()).await;

    let cases = [
        ("api", "production", "APR-0001", vec!["Alice", "Bob"]),
        ("billing", "production", "APR-0002", vec!["Alice"]),
        ("web", "staging", "APR-0003", vec!["Carol"]),
    ];
    for (service, environment, id, names) in &cases {
        let run = run_webhook(
            &app,
            "/test/request-approval",
            deployment(service, environment),
        )
        .await;
        assert_eq!(run.outcome.as_deref(), Some("completed"), "{run:?}");
        let request = store.get_approval(id).await.unwrap().expect("recorded");
        let listed: Vec<&str> = request.approvers.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(&listed, names, "{service} in {environment}");
        assert_eq!(request.body["changes_url"], "https://example.com/compare");
    }
    assert_eq!(
        store
            .get_approval("APR-0001")
            .await
            .unwrap()
            .unwrap()
            .approvers[0]
            .phone,
        "+15551234567",
        "numbers are E.164 whatever the directory's notation"
    );
    sent_to(&graph, CAROL, 1).await;
    assert_eq!(sent_to(&graph, ALICE, 2).await.len(), 2);
    assert_eq!(
        sent_to(&graph, BOB, 1).await.len(),
        1,
        "Bob approves production's api only"
    );
    assert!(texts_to(&graph, CAROL)[0]
        .starts_with("deployment_approval: web | v2.1.0 | staging | dave@example.com"));

    // Nobody approves the api in staging: the run fails naming the key to set.
    let run = run_webhook(&app, "/test/request-approval", deployment("api", "staging")).await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let steps = run.steps.expect("the steps").to_string();
    assert!(
        steps.contains("platforms.whatsapp.approvals.environments.staging.approvers"),
        "{steps}"
    );
    assert!(store.get_approval("APR-0004").await.unwrap().is_none());
}

#[actix_web::test]
async fn a_non_approver_is_refused_and_the_request_stays_pending_for_its_approver() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let app = start(&graph, dir.path(), flows.path()).await;

    run_webhook(
        &app,
        "/test/request-approval",
        deployment("billing", "production"),
    )
    .await;
    sent_to(&graph, ALICE, 1).await;
    assert_eq!(
        ask(&app, &graph, BOB, "APPROVE APR-0001").await,
        "❌ You are not authorized to approve this request."
    );
    let store = store(dir.path()).await;
    let request = store.get_approval("APR-0001").await.unwrap().unwrap();
    assert_eq!(request.state, aof::store::ApprovalState::Pending);
    assert_eq!(request.decided_by, None);

    assert_eq!(
        ask(&app, &graph, ALICE, "APPROVE").await,
        "APR-0001 approved by Alice (billing v2.1.0 to production)"
    );
}

#[actix_web::test]
async fn when_two_approvers_race_the_first_decision_wins_and_the_second_is_told_who_decided() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let app = start(&graph, dir.path(), flows.path()).await;

    run_webhook(
        &app,
        "/test/request-approval",
        deployment("api", "production"),
    )
    .await;
    sent_to(&graph, ALICE, 1).await;
    sent_to(&graph, BOB, 1).await;

    let (alice, bob) =
        futures_util::future::join(app.say(ALICE, "APPROVE"), app.say(BOB, "REJECT")).await;
    assert_eq!((alice, bob), (200, 200));
    let alice = shown(&sent_to(&graph, ALICE, 2).await[1]);
    let bob = shown(&sent_to(&graph, BOB, 2).await[1]);

    let request = store(dir.path())
        .await
        .get_approval("APR-0001")
        .await
        .unwrap()
        .unwrap();
    let (winner, loser, won, by) = match request.state {
        aof::store::ApprovalState::Approved => (&alice, &bob, "approved by Alice", ALICE),
        aof::store::ApprovalState::Rejected => (&bob, &alice, "rejected by Bob", BOB),
        pending => panic!("one decision is recorded, not {pending:?}: {alice} / {bob}"),
    };
    assert!(winner.starts_with(&format!("APR-0001 {won}")), "{winner}");
    assert!(
        loser.contains(&format!("APR-0001 was already {won} at ")),
        "{loser}"
    );
    assert_eq!(request.decided_by, Some(e164(by)));
    assert_eq!(graph.sends_to(ALICE).len(), 2, "one answer each");
    assert_eq!(graph.sends_to(BOB).len(), 2, "one answer each");
}

#[actix_web::test]
async fn an_expired_request_cannot_be_approved() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let app = start(&graph, dir.path(), flows.path()).await;

    let mut body = deployment("api", "production");
    body["expires_at"] = json!("2020-01-01T00:00:00Z");
    run_webhook(&app, "/test/request-approval", body).await;
    sent_to(&graph, ALICE, 1).await;

    let answer = ask(&app, &graph, ALICE, "APPROVE").await;
    assert!(
        answer.contains(
            "APR-0001 expired at 2020-01-01 00:00 UTC; ask dave@example.com for a new request"
        ),
        "{answer}"
    );
    let request = store(dir.path())
        .await
        .get_approval("APR-0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.state, aof::store::ApprovalState::Pending);
    assert_eq!(request.decided_by, None);
    assert_eq!(request.expires_at, "2020-01-01T00:00:00Z");
}

#[actix_web::test]
async fn pending_for_lists_the_open_requests_an_approver_may_decide_newest_first() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let app = start(&graph, dir.path(), flows.path()).await;

    let mut expired = deployment("api", "production");
    expired["expires_at"] = json!("2020-01-01T00:00:00Z");
    for body in [
        deployment("api", "production"),
        deployment("billing", "production"),
        expired,
        deployment("web", "staging"),
    ] {
        let run = run_webhook(&app, "/test/request-approval", body).await;
        assert_eq!(run.outcome.as_deref(), Some("completed"), "{run:?}");
    }
    sent_to(&graph, ALICE, 3).await;
    sent_to(&graph, BOB, 2).await;

    assert_eq!(
        ask(&app, &graph, ALICE, "PENDING").await,
        "Open: APR-0002 billing@production; APR-0001 api@production;"
    );
    assert_eq!(
        ask(&app, &graph, BOB, "PENDING").await,
        "Open: APR-0001 api@production;"
    );
    assert_eq!(
        ask(&app, &graph, BOB, "APPROVE APR-0001").await,
        "APR-0001 approved by Bob"
    );
    assert_eq!(
        ask(&app, &graph, ALICE, "PENDING").await,
        "Open: APR-0002 billing@production;"
    );
    assert_eq!(
        ask(&app, &graph, BOB, "PENDING").await,
        "No open approval requests"
    );
}
