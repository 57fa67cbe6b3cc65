//! Flows through the real server: the shipped status check, step features (condition, foreach,
//! on_empty, on_error with retries), the scheduler agent (also across a restart), flow webhooks,
//! and the health, readiness and metrics endpoints.

mod common;

use chrono::{NaiveDateTime, Utc};
use common::*;
use serde_json::{json, Value};
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// A flows directory with the repository's flows (so that every routing target exists) and `extra`
/// (file name, YAML).
fn flows_dir(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = temp();
    for entry in std::fs::read_dir(repo().join("flows/whatsapp")).expect("the repo's flows") {
        let path = entry.expect("a flow file").path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).expect("copy a flow");
    }
    for (name, yaml) in extra {
        std::fs::write(dir.path().join(name), yaml).expect("write a test flow");
    }
    dir
}

/// Starts the server storing under `dir`, with the flows of `flows` (the repository's when `None`).
async fn start(graph: &FakeGraph, dir: &Path, flows: Option<&Path>) -> TestApp {
    let options = Options {
        flows_dir: flows.map(Path::to_owned),
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
                graph
                    .sends_to(who)
                    .iter()
                    .map(|r| r.text())
                    .collect::<Vec<_>>()
            )
        })
}

/// `who` says `text`; returns the next message `who` is sent.
async fn ask(app: &TestApp, graph: &FakeGraph, who: &str, text: &str) -> Recorded {
    let before = graph.sends_to(who).len();
    assert_eq!(
        app.say(who, text).await,
        200,
        "the webhook accepts {text:?}"
    );
    sent_to(graph, who, before + 1).await[before].clone()
}

/// The texts `who` was sent so far.
fn texts_to(graph: &FakeGraph, who: &str) -> Vec<String> {
    graph
        .sends_to(who)
        .iter()
        .map(|s| s.text().to_owned())
        .collect()
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

/// Waits until every message the fake accepted (`wamid.fake.1` ..) is recorded as sent, so that a
/// crash-like stop cannot fall between Meta's answer and the store's record (the queue would send
/// it again after the restart, which is the outbox's at-least-once delivery, not what is tested).
async fn all_sends_recorded(app: &TestApp, graph: &FakeGraph) {
    let store = store(&app.dir).await;
    let accepted = graph.sends().iter().filter(|s| s.status == 200).count();
    for n in 1..=accepted {
        let wamid = format!("wamid.fake.{n}");
        let recorded = eventually_async(WAIT, || async {
            store.message_status(&wamid).await.unwrap()
        })
        .await;
        assert!(recorded.is_some(), "{wamid} was never recorded as sent");
    }
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

/// A time as `format_time` writes it (`2026-11-26 17:02 UTC`), checked to be `hours` from now.
fn assert_time_from_now(text: &str, hours: i64) {
    let at = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M UTC")
        .unwrap_or_else(|e| panic!("`{text}` is not a format_time time: {e}"));
    let expected = Utc::now().naive_utc() + chrono::Duration::hours(hours);
    let off = (at - expected).num_seconds().abs();
    assert!(off <= 120, "`{text}` is {off}s away from now + {hours}h");
}

#[actix_web::test]
async fn the_shipped_status_check_flow_renders_the_tutorials_status_text() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    let reply = ask(&app, &graph, ALICE, "STATUS").await;
    assert_eq!(reply.body["type"], "text");
    let text = reply.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "📊 *System Status*", "{text}");
    let latency = regex::Regex::new(r"^  ⏱ \d+ms$").unwrap();
    for svc in ["api", "web"] {
        let at = lines
            .iter()
            .position(|l| *l == format!("✅ *{svc}*: healthy"))
            .unwrap_or_else(|| panic!("{svc} healthy: {text}"));
        assert!(
            latency.is_match(lines[at + 1]),
            "{svc}'s latency under it: {text}"
        );
    }
    for svc in ["workers", "database", "cache"] {
        assert!(
            lines.contains(&format!("❌ *{svc}*: not configured").as_str()),
            "{svc}: {text}"
        );
    }
    assert!(lines.contains(&"✨ No active incidents"), "{text}");
    assert!(!text.contains("Active Incidents"), "{text}");
    let last = lines.last().unwrap();
    let time = last
        .strip_prefix('_')
        .and_then(|l| l.strip_suffix('_'))
        .unwrap_or_else(|| panic!("the time in italics last: {text}"));
    assert_time_from_now(time, 0);

    // With an open incident, the incident section replaces "No active incidents".
    let store = store(dir.path()).await;
    let incident = store
        .create_incident("Checkout latency", "critical", "api")
        .await
        .unwrap();
    let text = ask(&app, &graph, ALICE, "STATUS api")
        .await
        .text()
        .to_owned();
    assert!(
        text.contains("━━━━━━━━━━━━\n🚨 *Active Incidents*"),
        "{text}"
    );
    assert!(
        text.contains(&format!("• {}: Checkout latency [critical]", incident.id)),
        "{text}"
    );
    assert!(!text.contains("No active incidents"), "{text}");
}

#[actix_web::test]
async fn a_step_whose_condition_is_false_is_skipped_and_the_flow_goes_on() {
    let flow = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: conditional
triggers:
  - platform: whatsapp
    type: message
    pattern: "^cond (yes|no)$"
steps:
  - name: maybe-say
    agent: whatsapp
    action: reply
    condition: "{{ match.1 == 'yes' }}"
    input:
      text: "conditional step ran"
  - name: report
    agent: whatsapp
    action: reply
    input:
      text: "done {{ match.1 }}"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("conditional.yaml", flow)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    assert_eq!(ask(&app, &graph, ALICE, "cond no").await.text(), "done no");
    app.say(ALICE, "cond yes").await;
    sent_to(&graph, ALICE, 3).await;
    assert_eq!(
        texts_to(&graph, ALICE),
        ["done no", "conditional step ran", "done yes"]
    );
}

#[actix_web::test]
async fn foreach_runs_the_step_once_per_item_with_item_in_its_input() {
    let flow = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: fan-out
triggers:
  - platform: whatsapp
    type: message
    pattern: "^fanout$"
input:
  schema:
    people:
      type: array
      default:
        - { name: Alice, phone: "+15551234567" }
        - { name: Bob, phone: "+15557654321" }
steps:
  - name: send-each
    agent: whatsapp
    action: send_text
    foreach: "{{ input.people }}"
    parallel: true
    input:
      to: "{{ item.phone }}"
      text: "hello {{ item.name | upper }}"
  - name: summary
    agent: whatsapp
    action: reply
    input:
      text: "sent {{ steps.send-each.output | length }} to {{ input.people | map('name') | join(', ') }}; expires {{ now() | add_hours(4) | format_time }}"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("fan-out.yaml", flow)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    assert_eq!(app.say(ALICE, "fanout").await, 200);
    sent_to(&graph, ALICE, 2).await;
    let bob = sent_to(&graph, BOB, 1).await;
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].text(), "hello BOB");
    let alice = texts_to(&graph, ALICE);
    assert_eq!(alice.len(), 2, "{alice:?}");
    assert!(alice.contains(&"hello ALICE".to_owned()), "{alice:?}");
    let summary = alice
        .iter()
        .find_map(|t| t.strip_prefix("sent 2 to Alice, Bob; expires "))
        .unwrap_or_else(|| panic!("the summary: {alice:?}"));
    assert_time_from_now(summary, 4);
}

#[actix_web::test]
async fn map_with_an_attribute_takes_that_attribute_even_when_a_filter_has_its_name() {
    // Incidents and alerts have a `title`; `title` is also a filter, which must not win over an
    // explicit `attribute=`.
    let flow = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: titles
triggers:
  - platform: whatsapp
    type: message
    pattern: "^titles$"
input:
  schema:
    items:
      type: array
      default:
        - { name: "db-1", title: "DB failover" }
        - { name: "api-2", title: "api slow" }
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "{{ input.items | map('name') | join(', ') }} / {{ input.items | map(attribute='title') | join(', ') }}"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("titles.yaml", flow)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    assert_eq!(
        ask(&app, &graph, ALICE, "titles").await.text(),
        "db-1, api-2 / DB failover, api slow"
    );
}

#[actix_web::test]
async fn on_empty_answers_with_its_response_and_stops_the_flow() {
    let flow = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: open-incidents
triggers:
  - platform: whatsapp
    type: message
    pattern: "^incidents$"
steps:
  - name: find-open
    agent: incident-manager
    action: list
    input:
      status: "open"
      limit: 3
    on_empty:
      response:
        template: "ops_notification"
        parameters:
          - "Info"
          - "No open incidents for {{ trigger.user.phone }}"
  - name: list-them
    agent: whatsapp
    action: reply
    input:
      text: "open: {{ steps.find-open.output | length }}, first {{ steps.find-open.output[0].title }}"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("open-incidents.yaml", flow)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let empty = ask(&app, &graph, ALICE, "incidents").await;
    assert_eq!(empty.body["template"]["name"], "ops_notification");
    let params = &empty.body["template"]["components"][0]["parameters"];
    assert_eq!(params[0]["text"], "Info");
    assert_eq!(params[1]["text"], "No open incidents for +15551234567");

    store(dir.path())
        .await
        .create_incident("DB failover", "warning", "database")
        .await
        .unwrap();
    assert_eq!(
        ask(&app, &graph, ALICE, "incidents").await.text(),
        "open: 1, first DB failover"
    );
    // Flows of one person run in order: had the first run gone on, "open: 0, …" would be second.
    assert_eq!(
        texts_to(&graph, ALICE),
        ["ops_notification", "open: 1, first DB failover"]
    );
}

const GUARDED: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: guarded
triggers:
  - platform: whatsapp
    type: message
    pattern: "^check (\\w+)$"
steps:
  - name: must-pass
    agent: validator
    action: check
    input:
      condition: "{{ match.1 == 'ok' }}"
    on_error:
      retry:
        max_attempts: 3
        backoff: exponential
      response:
        text: "❌ check failed for {{ match.1 }}"
  - name: confirm
    agent: whatsapp
    action: reply
    input:
      text: "check passed"
"#;

#[actix_web::test]
async fn on_error_response_answers_when_a_step_still_fails_after_its_retries() {
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("guarded.yaml", GUARDED)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let asked = Instant::now();
    let failed = ask(&app, &graph, ALICE, "check bad").await;
    assert_eq!(failed.text(), "❌ check failed for bad");
    // Three attempts wait at least 100 ms + 200 ms between them (exponential from 200 ms, jittered
    // down to half at most); one attempt answers at once.
    let took = failed.at - asked;
    assert!(
        took >= Duration::from_millis(300),
        "three attempts take their backoff, answered after {took:?}"
    );

    assert_eq!(
        ask(&app, &graph, ALICE, "check ok").await.text(),
        "check passed"
    );
    assert_eq!(
        texts_to(&graph, ALICE),
        ["❌ check failed for bad", "check passed"],
        "the failed run stopped at its failing step"
    );
}

#[actix_web::test]
async fn a_failed_run_is_recorded_with_its_failing_step_after_every_attempt() {
    let flow = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: guarded-hook
triggers:
  - type: webhook
    path: "/test/guarded"
    method: POST
input:
  required: [value]
  schema:
    value: { type: string }
steps:
  - name: must-pass
    agent: validator
    action: check
    input:
      condition: "{{ input.value == 'ok' }}"
    on_error:
      retry:
        max_attempts: 3
  - name: after-check
    agent: logger
    action: log
    input:
      message: "passed"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("guarded-hook.yaml", flow)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let (status, answer) = app
        .post_json(
            "/test/guarded",
            &json!({ "value": "bad" }),
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let run = finished_run(&app, answer["run_id"].as_str().unwrap()).await;
    assert_eq!(run.flow, "guarded-hook");
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let steps = run.steps.expect("the steps' record");
    let steps = steps.as_array().unwrap();
    assert_eq!(
        steps.len(),
        1,
        "nothing ran after the failing step: {steps:?}"
    );
    assert_eq!(steps[0]["step"], "must-pass");
    assert_eq!(steps[0]["outcome"], "error");
    assert_eq!(steps[0]["error"], "the condition is false");
    assert!(
        steps[0]["ms"].as_u64().unwrap() >= 300,
        "three attempts with backoff: {}",
        steps[0]
    );

    let (status, answer) = app
        .post_json(
            "/test/guarded",
            &json!({ "value": "ok" }),
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let run = finished_run(&app, answer["run_id"].as_str().unwrap()).await;
    assert_eq!(run.outcome.as_deref(), Some("completed"));
    let outcomes: Vec<(&str, &str)> = run
        .steps
        .as_ref()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, [("must-pass", "ok"), ("after-check", "ok")]);
}

#[actix_web::test]
async fn a_step_failure_without_on_error_answers_with_a_message_naming_the_step() {
    let flow = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: unguarded
triggers:
  - platform: whatsapp
    type: message
    pattern: "^strict$"
steps:
  - name: must-pass
    agent: validator
    action: check
    input:
      condition: "{{ 1 > 2 }}"
  - name: never
    agent: whatsapp
    action: reply
    input:
      text: "never"
"#;
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("unguarded.yaml", flow)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let reply = ask(&app, &graph, ALICE, "strict").await;
    let text = reply.text();
    assert!(text.contains("step `must-pass`"), "{text}");
    assert!(text.contains("the condition is false"), "{text}");
    assert!(text.contains("unguarded"), "names the flow: {text}");
    // Once a later message is answered, "never" has had every chance to come.
    assert!(ask(&app, &graph, ALICE, "HELP")
        .await
        .text()
        .contains("ops bot"));
    assert!(!texts_to(&graph, ALICE).contains(&"never".to_owned()));
}

/// A flow that schedules `reminder` after `delay` seconds, answering "scheduled".
fn schedule_flow(delay: u32) -> String {
    format!(
        r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: remind-{delay}
triggers:
  - platform: whatsapp
    type: message
    pattern: "^later {delay}$"
steps:
  - name: plan-it
    agent: scheduler
    action: schedule
    input:
      delay: {delay}
      flow: "reminder"
      input:
        to: "{{{{ trigger.user.phone }}}}"
        note: "timer {delay}"
  - name: confirm
    agent: whatsapp
    action: reply
    input:
      text: "scheduled {{{{ steps.plan-it.output.flow }}}}"
"#
    )
}

const REMINDER: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: reminder
input:
  required: [to, note]
steps:
  - name: remind
    agent: whatsapp
    action: send_text
    input:
      to: "{{ input.to }}"
      text: "⏰ {{ input.note }}"
"#;

#[actix_web::test]
async fn the_scheduler_agent_runs_a_flow_after_its_delay() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let later = schedule_flow(1);
    let flows = flows_dir(&[("remind-1.yaml", &later), ("reminder.yaml", REMINDER)]);
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let asked = Instant::now();
    assert_eq!(
        ask(&app, &graph, ALICE, "later 1").await.text(),
        "scheduled reminder"
    );
    let fired = sent_to(&graph, ALICE, 2).await[1].clone();
    assert_eq!(fired.text(), "⏰ timer 1");
    let after = fired.at - asked;
    assert!(after >= Duration::from_secs(1), "fired after {after:?}");
}

#[actix_web::test]
async fn a_scheduled_flow_still_runs_after_a_restart() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let later = schedule_flow(2);
    let flows = flows_dir(&[("remind-2.yaml", &later), ("reminder.yaml", REMINDER)]);
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let asked = Instant::now();
    assert_eq!(
        ask(&app, &graph, ALICE, "later 2").await.text(),
        "scheduled reminder"
    );
    all_sends_recorded(&app, &graph).await;
    app.stop();
    assert_eq!(
        graph.sends_to(ALICE).len(),
        1,
        "the timer had not fired before the stop"
    );

    let _app = start(&graph, dir.path(), Some(flows.path())).await;
    let fired = sent_to(&graph, ALICE, 2).await[1].clone();
    assert_eq!(fired.text(), "⏰ timer 2");
    assert!(fired.at - asked >= Duration::from_secs(2));
    assert_eq!(
        texts_to(&graph, ALICE),
        ["scheduled reminder", "⏰ timer 2"],
        "fired once, and nothing was sent twice"
    );
}

const PAGE: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: page-oncall
triggers:
  - type: webhook
    path: "/test/page"
    method: POST
input:
  required: [severity, service]
  schema:
    severity:
      type: string
      enum: ["critical", "warning", "info"]
    service:
      type: string
    to:
      type: string
      default: "+15551234567"
steps:
  - name: page
    agent: whatsapp
    action: send_text
    input:
      to: "{{ input.to }}"
      text: "{{ input.severity | upper }}: {{ input.service }}"
"#;

#[actix_web::test]
async fn a_webhook_flow_answers_202_with_a_run_id_and_runs_with_the_body_as_input() {
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("page.yaml", PAGE)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let mut runs = Vec::new();
    for (path, severity) in [
        ("/webhooks/whatsapp/test/page", "critical"),
        ("/test/page", "warning"),
    ] {
        let body = json!({ "severity": severity, "service": "api", "runbook_url": "https://r" });
        let (status, answer) = app.post_json(path, &body, Some(WEBHOOK_TOKEN)).await;
        assert_eq!(status, 202, "{path}: {answer}");
        let run_id = answer["run_id"].as_str().expect("a run id").to_owned();
        assert!(!run_id.is_empty());
        runs.push(run_id);
    }
    assert_ne!(runs[0], runs[1]);
    for run_id in &runs {
        let run = finished_run(&app, run_id).await;
        assert_eq!(run.flow, "page-oncall");
        assert_eq!(run.outcome.as_deref(), Some("completed"), "{run_id}");
    }
    sent_to(&graph, ALICE, 2).await;
    let mut texts = texts_to(&graph, ALICE);
    texts.sort();
    assert_eq!(texts, ["CRITICAL: api", "WARNING: api"]);
}

#[actix_web::test]
async fn a_webhook_flow_refuses_bad_input_with_400_naming_each_field() {
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("page.yaml", PAGE)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    let fields = |answer: &Value| -> Vec<(String, String)> {
        answer["fields"]
            .as_array()
            .unwrap_or_else(|| panic!("a list of fields: {answer}"))
            .iter()
            .map(|f| {
                (
                    f["field"].as_str().unwrap().to_owned(),
                    f["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };

    let (status, answer) = app
        .post_json("/test/page", &json!({}), Some(WEBHOOK_TOKEN))
        .await;
    assert_eq!(status, 400, "{answer}");
    let mut missing = fields(&answer);
    missing.sort();
    assert_eq!(
        missing,
        [
            ("service".to_owned(), "is required".to_owned()),
            ("severity".to_owned(), "is required".to_owned())
        ]
    );

    let (status, answer) = app
        .post_json(
            "/webhooks/whatsapp/test/page",
            &json!({ "severity": "urgent", "service": "api" }),
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let bad = fields(&answer);
    assert_eq!(bad.len(), 1, "{answer}");
    assert_eq!(bad[0].0, "severity");
    assert!(bad[0].1.contains("critical, warning, info"), "{answer}");

    let (status, answer) = app
        .post_json(
            "/test/page",
            &json!({ "severity": "info", "service": 42 }),
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let bad = fields(&answer);
    assert_eq!(bad.len(), 1, "{answer}");
    assert_eq!(bad[0].0, "service");
    assert!(bad[0].1.contains("string"), "{answer}");

    // Nothing ran: the next good request is the only page Alice gets.
    let (status, _) = app
        .post_json(
            "/test/page",
            &json!({ "severity": "info", "service": "web" }),
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(status, 202);
    sent_to(&graph, ALICE, 1).await;
    assert_eq!(texts_to(&graph, ALICE), ["INFO: web"]);
}

#[actix_web::test]
async fn a_webhook_flow_refuses_a_missing_or_wrong_bearer_token_with_401() {
    let (graph, dir, flows) = (
        FakeGraph::start(),
        temp(),
        flows_dir(&[("page.yaml", PAGE)]),
    );
    let app = start(&graph, dir.path(), Some(flows.path())).await;
    let body = json!({ "severity": "critical", "service": "api" });

    for path in ["/test/page", "/webhooks/whatsapp/test/page"] {
        assert_eq!(app.post_json(path, &body, None).await.0, 401, "{path}");
        assert_eq!(
            app.post_json(path, &body, Some("nope")).await.0,
            401,
            "{path}"
        );
        assert_eq!(
            app.post_json(path, &body, Some(&format!("{WEBHOOK_TOKEN}x")))
                .await
                .0,
            401,
            "{path}"
        );
    }
    // Not even bad input is looked at without the token.
    assert_eq!(app.post_json("/test/page", &json!({}), None).await.0, 401);

    assert_eq!(
        app.post_json(
            "/test/page",
            &json!({ "severity": "info", "service": "web" }),
            Some(WEBHOOK_TOKEN)
        )
        .await
        .0,
        202
    );
    sent_to(&graph, ALICE, 1).await;
    assert_eq!(
        texts_to(&graph, ALICE),
        ["INFO: web"],
        "the refused calls ran nothing"
    );
}

#[actix_web::test]
async fn healthz_and_readyz_answer_200_when_the_store_and_flows_are_there() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    assert_eq!(app.get("/healthz").await.0, 200);
    let mut root = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status().as_u16(), 200);
    let _ = root.body().await;

    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(ready["store"], true, "{ready}");
    let shipped = std::fs::read_dir(repo().join("flows/whatsapp"))
        .unwrap()
        .count();
    assert_eq!(
        ready["flows"], shipped as u64,
        "every shipped flow: {ready}"
    );
}

/// The sum of a metric's series (`name{…} v` and `name v`) in Prometheus text.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[actix_web::test]
async fn metrics_count_inbound_messages_runs_and_sends_and_show_the_queue() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    // The recorder is shared by every test of this binary: compare before and after.
    let (status, before) = app.get("/metrics").await;
    assert_eq!(status, 200);
    ask(&app, &graph, ALICE, "HELP").await;

    let counted = [
        "aof_inbound_messages_total",
        "aof_flow_runs_total",
        "aof_outbound_sends_total",
        "aof_send_latency_seconds_count",
    ];
    let after = eventually_async(WAIT, || async {
        let (_, after) = app.get("/metrics").await;
        counted
            .iter()
            .all(|m| metric_sum(&after, m) >= metric_sum(&before, m) + 1.0)
            .then_some(after)
    })
    .await
    .unwrap_or_else(|| {
        panic!("every counter grew by one message, one run and one send; before:\n{before}")
    });
    for name in [
        "aof_inbound_messages_total{",
        "aof_flow_runs_total{",
        "aof_outbound_sends_total",
        "aof_queue_depth",
        "aof_send_latency_seconds_bucket{",
    ] {
        assert!(after.contains(name), "{name} in:\n{after}");
    }
}
