//! Queueing many messages, for the sending tests (`tests/api/sending`) and the rate window
//! (`tests/rate_window.rs`): the bulk test flows, starting the server on them, starting a flow by its
//! webhook, and waiting on the store.
//!
//! Not glob-re-exported from `common` (its `start` and `WAIT` differ from `chat`'s): import with
//! `use common::sending::*;`.

use crate::common::*;
use aof::store::{Deliveries, JobState, RunRecord, Runs, SqliteStore};
use aof_actors::model::{DeliveryState, QueuedJob};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a test waits for the server and the store.
pub const WAIT: Duration = Duration::from_secs(15);

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

/// The default options, on the test flows written into `dir`.
pub fn options(dir: &Path) -> Options {
    Options {
        flows_dir: Some(flows_in(dir)),
        ..Options::default()
    }
}

/// `n` distinct numbers that are nobody in the config.
pub fn recipients(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("1555000{i:04}")).collect()
}

/// Starts `flow` (`bulk-text` or `bulk-template`) by its webhook; the run id.
pub async fn start_flow(app: &TestApp, flow: &str, input: Value) -> String {
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

/// Waits until the outbox holds exactly (queued, sent, failed).
pub async fn outbox_settles_at(store: &SqliteStore, expected: (u64, u64, u64)) {
    let last = std::cell::Cell::new((0, 0, 0));
    let settled = eventually_async(WAIT, || async {
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
pub fn accept_with_known_wamids(graph: &FakeGraph) {
    graph.script(|body| {
        let to = body["to"].as_str().unwrap_or_default().to_owned();
        Some((
            200,
            json!({ "messaging_product": "whatsapp", "contacts": [{ "input": to, "wa_id": to }],
                    "messages": [{ "id": format!("wamid.ok.{to}") }] }),
        ))
    });
}

/// A JSON fixture.
pub fn fixture_json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).expect("a JSON fixture")
}

/// Checks that the message Meta accepted for `to` (answered `wamid.ok.<to>`) is recorded as sent,
/// with its outbound record and an `accepted` status; its job.
pub async fn recorded_as_sent(store: &SqliteStore, to: &str) -> QueuedJob {
    let wamid = format!("wamid.ok.{to}");
    let outbound = eventually_async(WAIT, || async {
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

/// A fake Graph API, a temp dir, and the server on the test flows in it, with `tweak` applied to
/// the options. Bind them in this order, so the server stops before its dir and the fake go.
pub async fn start(
    tweak: impl FnOnce(Options) -> Options,
) -> (FakeGraph, tempfile::TempDir, TestApp) {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = TestApp::spawn_in(dir.path(), &graph, &tweak(options(dir.path())))
        .await
        .unwrap();
    (graph, dir, app)
}

/// Waits up to `timeout` until the outbox holds nothing queued and `total` sent or failed.
pub async fn outbox_drains(store: &SqliteStore, total: u64, timeout: Duration) -> Option<()> {
    eventually_async(timeout, || async {
        let (queued, sent, failed) = store.outbox_counts().await.expect("outbox counts");
        (queued == 0 && sent + failed == total).then_some(())
    })
    .await
}

/// Waits until the run `run_id` has an outcome; `None` when it has none after [`WAIT`].
pub async fn finished_run(store: &SqliteStore, run_id: &str) -> Option<RunRecord> {
    eventually_async(WAIT, || async {
        store
            .run(run_id)
            .await
            .expect("reads")
            .filter(|r| r.outcome.is_some())
    })
    .await
}

/// The recipients of the templates among `sends`, in order.
pub fn template_recipients(sends: &[Recorded]) -> Vec<String> {
    sends
        .iter()
        .filter(|s| s.body["type"] == "template")
        .map(|s| s.to().to_owned())
        .collect()
}
