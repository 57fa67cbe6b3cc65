//! Sending, through the real server against the fake Graph API: the global rate in every one-second
//! window, retries of transient failures and throttling, permanent errors reported with Meta's code,
//! the template fallback outside the 24-hour window, the daily template quota, the durable queue
//! across a restart, and the reply lane ahead of queued alerts.
//!
//! Messages are queued by test flows written into a temp flows directory at run time: a webhook
//! trigger whose JSON body lists the recipients, and a `foreach` step sending to each.

mod common;

use aof::store::{JobState, SqliteStore};
use aof_actors::model::{DeliveryState, QueuedJob};
use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// One text to each of `input.recipients`, on the alert lane.
const BULK_TEXT: &str = r#"apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: bulk-text
  description: Sends one text to each recipient
triggers:
  - type: webhook
    path: /test/bulk-text
    method: POST
input:
  required: [recipients]
  schema:
    recipients:
      type: array
    text:
      type: string
      default: "Disk usage above 90% on db-1"
steps:
  - name: send-each
    agent: whatsapp
    action: send_text
    foreach: "{{ input.recipients }}"
    input:
      to: "{{ item }}"
      text: "{{ input.text }}"
"#;

/// One `ops_notification` template to each of `input.recipients`.
const BULK_TEMPLATE: &str = r#"apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: bulk-template
  description: Sends one template to each recipient
triggers:
  - type: webhook
    path: /test/bulk-template
    method: POST
input:
  required: [recipients]
  schema:
    recipients:
      type: array
steps:
  - name: notify-each
    agent: whatsapp
    action: send_template
    foreach: "{{ input.recipients }}"
    input:
      to: "{{ item }}"
      template: ops_notification
      parameters: ["Maintenance", "Database failover at 02:00 UTC"]
"#;

/// The test flows, and the repository's HELP flow (routing's default and `HELP` command).
fn flows_in(dir: &Path) -> PathBuf {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).expect("a flows dir");
    std::fs::write(flows.join("bulk-text.yaml"), BULK_TEXT).expect("flow written");
    std::fs::write(flows.join("bulk-template.yaml"), BULK_TEMPLATE).expect("flow written");
    std::fs::copy(
        repo().join("flows/whatsapp/whatsapp-help-flow.yaml"),
        flows.join("whatsapp-help-flow.yaml"),
    )
    .expect("help flow copied");
    flows
}

fn options(dir: &Path) -> Options {
    Options {
        flows_dir: Some(flows_in(dir)),
        ..Options::default()
    }
}

/// `n` distinct numbers that are nobody in the config.
fn recipients(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("1555000{i:04}")).collect()
}

/// Starts `flow` (`bulk-text` or `bulk-template`) by its webhook; the run id.
async fn start_flow(app: &TestApp, flow: &str, input: Value) -> String {
    let (status, body) = app
        .post_json(
            &format!("/webhooks/whatsapp/test/{flow}"),
            &input,
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(status, 202, "the flow webhook answered {body}");
    body["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run_id in {body}"))
        .to_owned()
}

/// Polls an async `check` until it returns `Some` or `timeout` passes.
async fn until<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
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

/// Waits until the outbox holds exactly (queued, sent, failed).
async fn outbox_settles_at(store: &SqliteStore, expected: (u64, u64, u64)) {
    let last = std::cell::Cell::new((0, 0, 0));
    let settled = until(WAIT, || async {
        last.set(store.outbox_counts().await.expect("outbox counts"));
        (last.get() == expected).then_some(())
    })
    .await;
    let last = last.get();
    assert!(
        settled.is_some(),
        "outbox (queued, sent, failed) is {last:?}, expected {expected:?}"
    );
}

/// Answers every send with success and the wamid `wamid.ok.<to>`, so that a test can look the
/// message up in the store.
fn accept_with_known_wamids(graph: &FakeGraph) {
    graph.script(|body| {
        let to = body["to"].as_str().unwrap_or_default().to_owned();
        Some((
            200,
            json!({ "messaging_product": "whatsapp", "contacts": [{ "input": to, "wa_id": to }],
                    "messages": [{ "id": format!("wamid.ok.{to}") }] }),
        ))
    });
}

/// The largest number of instants that fall within any `window` (sliding, by arrival).
fn most_in_any_window(times: &[Instant], window: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mut most = 0;
    let mut first = 0;
    for last in 0..sorted.len() {
        while sorted[last] - sorted[first] >= window {
            first += 1;
        }
        most = most.max(last - first + 1);
    }
    most
}

/// A Meta error answer with `code`.
fn meta_error(code: i64, message: &str) -> Value {
    json!({ "error": { "message": format!("(#{code}) {message}"), "type": "OAuthException", "code": code,
        "error_data": { "messaging_product": "whatsapp", "details": message },
        "fbtrace_id": "AbCdEf1234GhIjKl5678MnO" } })
}

fn fixture_json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).expect("a JSON fixture")
}

/// Checks that the message Meta accepted for `to` (answered `wamid.ok.<to>`) is recorded as sent,
/// with its outbound record and an `accepted` status; its job.
async fn recorded_as_sent(store: &SqliteStore, to: &str) -> QueuedJob {
    let wamid = format!("wamid.ok.{to}");
    let outbound = until(WAIT, || async {
        store.outbound_message(&wamid).await.expect("reads")
    })
    .await
    .unwrap_or_else(|| panic!("no outbound record for {wamid}"));
    assert_eq!(outbound.to.as_str(), to);
    let (state, job, code, error) = store
        .job(&outbound.job_id.0)
        .await
        .expect("reads")
        .expect("the job of a sent message exists");
    assert_eq!(state, JobState::Sent, "job {job:?}");
    assert_eq!((code, error), (None, None));
    let status = store
        .message_status(&wamid)
        .await
        .expect("reads")
        .expect("a status row for the accepted message");
    assert_eq!(status.state, DeliveryState::Accepted, "{status:?}");
    job
}

#[actix_web::test]
async fn rate_is_never_exceeded_and_nothing_is_lost() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(
        dir.path(),
        &graph,
        &Options {
            per_second: 50,
            ..options(dir.path())
        },
    )
    .await
    .unwrap();
    let to = recipients(500);
    let started = Instant::now();
    start_flow(&app, "bulk-text", json!({ "recipients": to })).await;

    let store = store(dir.path()).await;
    let all_sent = until(Duration::from_secs(30), || async {
        let (queued, sent, failed) = store.outbox_counts().await.expect("outbox counts");
        (sent + failed == 500 && queued == 0).then_some(())
    })
    .await;
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
async fn transient_failures_are_retried_until_meta_accepts() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &options(dir.path()))
        .await
        .unwrap();
    accept_with_known_wamids(&graph);
    graph.respond_next(vec![
        (500, json!({})),
        (500, meta_error(2, "Service temporarily unavailable")),
    ]);
    let to = recipients(1);
    start_flow(&app, "bulk-text", json!({ "recipients": to })).await;

    let store = store(dir.path()).await;
    outbox_settles_at(&store, (0, 1, 0)).await;
    let sends = graph.sends_to(&to[0]);
    let statuses: Vec<u16> = sends.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [500, 500, 200], "two failures, then accepted");
    assert!(
        sends.windows(2).all(|w| w[0].body == w[1].body),
        "retries resend the same body"
    );
    assert_eq!(graph.sends().len(), 3);
    let job = recorded_as_sent(&store, &to[0]).await;
    assert_eq!(job.attempts, 3, "attempts recorded on the job");
}

#[actix_web::test]
async fn throttling_130429_is_retried_and_still_delivered_once_accepted() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &options(dir.path()))
        .await
        .unwrap();
    accept_with_known_wamids(&graph);
    let throttled = fixture_json("whatsapp/error-130429.json");
    graph.respond_next(vec![(400, throttled.clone()); 3]);
    let to = recipients(1);
    start_flow(&app, "bulk-text", json!({ "recipients": to })).await;

    let store = store(dir.path()).await;
    outbox_settles_at(&store, (0, 1, 0)).await;
    let sends = graph.sends_to(&to[0]);
    let statuses: Vec<u16> = sends.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [400, 400, 400, 200],
        "throttled three times, then accepted"
    );
    let gaps: Vec<Duration> = sends.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps.iter().all(|gap| *gap >= Duration::from_millis(200)),
        "a throttled send came back at once: {gaps:?}"
    );
    assert!(
        gaps[2] >= gaps[0] * 2,
        "the waits after throttling do not grow: {gaps:?}"
    );
    let job = recorded_as_sent(&store, &to[0]).await;
    assert_eq!(job.attempts, 4, "attempts recorded on the job");
}

#[actix_web::test]
async fn a_permanent_error_is_not_retried_and_is_reported_with_metas_code() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &options(dir.path()))
        .await
        .unwrap();
    graph.respond_next(vec![(400, meta_error(131026, "Message undeliverable"))]);
    let to = recipients(1);
    start_flow(&app, "bulk-text", json!({ "recipients": to })).await;

    let store = store(dir.path()).await;
    outbox_settles_at(&store, (0, 0, 1)).await;
    let failed = until(WAIT, || async {
        let log = store.audit_log(50).await.expect("reads");
        log.into_iter().find(|r| r.kind == "send_failed")
    })
    .await
    .expect("a send_failed audit entry");
    assert_eq!(failed.detail["code"], 131026, "{:?}", failed.detail);
    assert_eq!(failed.detail["attempts"], 1, "{:?}", failed.detail);
    let who = failed.who.clone().unwrap_or_default();
    assert!(
        who.ends_with(&to[0][to[0].len() - 4..]) && !who.contains(&to[0][..7]),
        "the audit names the recipient masked: {who}"
    );
    let job_id = failed.detail["job"]
        .as_str()
        .unwrap_or_else(|| panic!("no job id in {:?}", failed.detail));
    let (state, job, code, error) = store
        .job(job_id)
        .await
        .expect("reads")
        .expect("the failed job is kept");
    assert_eq!(state, JobState::Failed);
    assert_eq!(code, Some(131026));
    let error = error.unwrap_or_default();
    assert!(
        error.contains("undeliverable"),
        "the job keeps Meta's message: {error}"
    );
    assert_eq!(job.attempts, 1);
    assert_eq!(job.message.to.as_str(), to[0]);

    let sends = graph.sends_to(&to[0]);
    assert_eq!(sends.len(), 1, "a permanent error is not retried");
    assert_eq!(graph.sends().len(), 1);
}

#[actix_web::test]
async fn free_form_text_refused_for_the_24_hour_window_is_resent_as_the_fallback_template() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &options(dir.path()))
        .await
        .unwrap();
    accept_with_known_wamids(&graph);
    graph.respond_next(vec![(400, fixture_json("whatsapp/error-131047.json"))]);
    let to = recipients(1);
    let text = "Disk usage above 95% on db-1";
    start_flow(&app, "bulk-text", json!({ "recipients": to, "text": text })).await;

    let store = store(dir.path()).await;
    outbox_settles_at(&store, (0, 1, 0)).await;
    let sends = graph.sends_to(&to[0]);
    assert_eq!(sends.len(), 2, "{sends:#?}");
    assert_eq!(sends[0].body["type"], "text");
    assert_eq!(sends[0].body["text"]["body"], text);
    assert_eq!(sends[0].status, 400);

    let fallback = &sends[1].body;
    assert_eq!(fallback["type"], "template", "{fallback}");
    assert_eq!(fallback["template"]["name"], "ops_notification");
    assert_eq!(fallback["template"]["language"]["code"], "en_US");
    let parameters = fallback["template"]["components"][0]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("no body parameters in {fallback}"));
    assert_eq!(parameters.len(), 2, "ops_notification takes 2: {fallback}");
    assert!(
        parameters.iter().any(|p| p["text"] == text),
        "the text travels as a parameter: {fallback}"
    );
    assert_eq!(sends[1].status, 200);
    let job = recorded_as_sent(&store, &to[0]).await;
    assert_eq!(job.attempts, 2, "attempts recorded on the job");
    let sent = store
        .outbound_message(&format!("wamid.ok.{}", to[0]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.kind, "template", "what was delivered is the template");
}

#[actix_web::test]
async fn the_daily_template_quota_stops_further_templates_with_a_clear_error() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(
        dir.path(),
        &graph,
        &Options {
            templates_per_day: 2,
            ..options(dir.path())
        },
    )
    .await
    .unwrap();
    let to = recipients(3);
    let run_id = start_flow(&app, "bulk-template", json!({ "recipients": to })).await;

    let store = store(dir.path()).await;
    let run = until(WAIT, || async {
        store
            .run(&run_id)
            .await
            .expect("reads")
            .filter(|r| r.outcome.is_some())
    })
    .await
    .expect("the run finishes");
    assert_eq!(run.outcome.as_deref(), Some("failed"), "{run:?}");
    let steps = run.steps.clone().unwrap_or_default().to_string();
    assert!(
        steps.contains("template quota of 2 per day is used up"),
        "the run says why: {steps}"
    );

    outbox_settles_at(&store, (0, 2, 0)).await;
    let sends = graph.sends();
    let templates: Vec<&str> = sends
        .iter()
        .filter(|s| s.body["type"] == "template")
        .map(|s| s.to())
        .collect();
    assert_eq!(templates, [to[0].as_str(), to[1].as_str()], "{sends:#?}");
    assert_eq!(sends.len(), 2, "nothing else went out: {sends:#?}");
    assert!(graph.sends_to(&to[2]).is_empty());

    // The quota is per day, not per run: a new run cannot send one either.
    let again = start_flow(&app, "bulk-template", json!({ "recipients": [to[2]] })).await;
    let run = until(WAIT, || async {
        store
            .run(&again)
            .await
            .expect("reads")
            .filter(|r| r.outcome.is_some())
    })
    .await
    .expect("the second run finishes");
    assert_eq!(run.outcome.as_deref(), Some("failed"), "{run:?}");
    assert_eq!(store.outbox_counts().await.unwrap(), (0, 2, 0));
    assert_eq!(graph.sends().len(), 2);
}

#[actix_web::test]
async fn a_queued_message_survives_a_restart_until_meta_accepts_it() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let opts = Options {
        max_send_attempts: 50,
        ..options(dir.path())
    };
    graph.script(|_| Some((503, json!({}))));
    let app = TestApp::spawn_in(dir.path(), &graph, &opts).await.unwrap();
    let to = recipients(1);
    start_flow(&app, "bulk-text", json!({ "recipients": to })).await;
    eventually(WAIT, || {
        Some(()).filter(|_| graph.sends_to(&to[0]).len() >= 2)
    })
    .await
    .expect("the message is tried and retried while Meta is down");
    app.stop();

    let before = graph.sends_to(&to[0]);
    assert!(before.iter().all(|s| s.status == 503));
    accept_with_known_wamids(&graph);
    let app = TestApp::spawn_in(dir.path(), &graph, &opts).await.unwrap();

    let store = store(dir.path()).await;
    outbox_settles_at(&store, (0, 1, 0)).await;
    let sends = graph.sends_to(&to[0]);
    let accepted = sends.iter().filter(|s| s.status == 200).count();
    assert_eq!(
        accepted, 1,
        "delivered exactly once after the restart: {sends:#?}"
    );
    assert_eq!(
        sends.last().map(|s| s.status),
        Some(200),
        "nothing after the accepted send"
    );
    assert!(sends.windows(2).all(|w| w[0].body == w[1].body));
    // The attempt count written before the crash may miss the last attempt; it never counts more.
    let job = recorded_as_sent(&store, &to[0]).await;
    let after_restart = sends.len() - before.len();
    assert!(
        (after_restart..=sends.len()).contains(&(job.attempts as usize)),
        "attempts {} for {} requests, {after_restart} after the restart",
        job.attempts,
        sends.len()
    );
    drop(app);
}

#[actix_web::test]
async fn replies_to_a_person_who_wrote_go_before_queued_broadcasts() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(
        dir.path(),
        &graph,
        &Options {
            per_second: 5,
            ..options(dir.path())
        },
    )
    .await
    .unwrap();
    let alerts = recipients(30);
    let run_id = start_flow(&app, "bulk-text", json!({ "recipients": alerts })).await;
    let store = store(dir.path()).await;
    let run = until(WAIT, || async {
        store
            .run(&run_id)
            .await
            .expect("reads")
            .filter(|r| r.outcome.is_some())
    })
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
async fn the_fallback_template_is_held_to_the_daily_template_quota() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(
        dir.path(),
        &graph,
        &Options {
            templates_per_day: 1,
            ..options(dir.path())
        },
    )
    .await
    .unwrap();
    let to = recipients(2);
    start_flow(&app, "bulk-template", json!({ "recipients": [to[0]] })).await;
    let store = store(dir.path()).await;
    outbox_settles_at(&store, (0, 1, 0)).await;

    graph.respond_next(vec![(400, fixture_json("whatsapp/error-131047.json"))]);
    start_flow(&app, "bulk-text", json!({ "recipients": [to[1]] })).await;
    let done = until(WAIT, || async {
        let (queued, sent, failed) = store.outbox_counts().await.expect("outbox counts");
        (queued == 0 && sent + failed == 2).then_some(())
    })
    .await;
    assert!(done.is_some(), "the text was neither sent nor given up");
    let templates: Vec<String> = graph
        .sends()
        .iter()
        .filter(|s| s.body["type"] == "template")
        .map(|s| s.to().to_owned())
        .collect();
    assert_eq!(
        templates,
        [to[0].clone()],
        "templates_per_day is 1, yet the fallback went out as a second template"
    );
}
