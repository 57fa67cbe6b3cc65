//! What the deployment and notification tests share: the people directory, the server started on
//! the test flows with extra config, running a flow to its end, and reading a step's error or the
//! output the flow reported to Bob.

use super::flows::flows_dir;
use crate::common::*;
use aof::fake_http::{FakeHttp, Response};
use serde_json::{json, Value};

use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(20);

/// A fake of the webhooks these agents post to (a person's or the default Slack incoming webhook,
/// the deploy webhook): records every request and answers 200 `"ok"` as Slack does, unless a test
/// scripts it.
pub fn fake_webhooks() -> FakeHttp {
    FakeHttp::builder()
        .default_answer(|_| Response::json(200, json!("ok")))
        .start()
        .expect("the fake webhooks start")
}

/// The people directory: Alice with her own Slack webhook and id, Bob without.
pub fn people(slack: &FakeHttp) -> String {
    format!(
        r#"    people:
      - name: Alice
        phone: "+15551234567"
        email: alice@example.com
        slack_webhook: "{slack}/slack/alice"
        slack_id: U0ALICE
      - name: Bob
        phone: "+15557654321"
"#,
        slack = slack.address
    )
}

/// A server, its graph, its store directory and flows, with `extra` under `platforms.whatsapp`.
pub struct Setup {
    pub app: TestApp,
    pub graph: FakeGraph,
    _dir: tempfile::TempDir,
    _flows: tempfile::TempDir,
}

pub async fn start(extra: String) -> Setup {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let options = Options {
        flows_dir: Some(flows.path().to_owned()),
        whatsapp_extra: extra,
        ..Options::default()
    };
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("the server starts");
    Setup {
        app,
        graph,
        _dir: dir,
        _flows: flows,
    }
}

/// Starts `path`'s flow with `body`; waits for the run to end and returns its record.
pub async fn run_flow(app: &TestApp, path: &str, body: Value) -> aof::store::RunRecord {
    let (status, answer) = app.post_json(path, &body, Some(WEBHOOK_TOKEN)).await;
    assert_eq!(status, 202, "{answer}");
    let run_id = answer["run_id"].as_str().expect("a run id").to_owned();
    let store = store(&app.dir).await;
    eventually_async(WAIT, || async {
        store
            .run(&run_id)
            .await
            .unwrap()
            .filter(|r| r.outcome.is_some())
    })
    .await
    .unwrap_or_else(|| panic!("run {run_id} did not finish"))
}

/// The error of the run's step `name`.
pub fn step_error(run: &aof::store::RunRecord, name: &str) -> String {
    let steps = run.steps.as_ref().expect("the steps' record");
    let step = steps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {steps}"));
    assert_eq!(step["outcome"], "error", "{step}");
    step["error"].as_str().unwrap_or_default().to_owned()
}

/// The step output the flow reported to Bob.
pub async fn report(graph: &FakeGraph) -> Value {
    let text = eventually(WAIT, || {
        graph
            .sends_to(BOB)
            .iter()
            .find_map(|s| s.text().strip_prefix("REPORT ").map(str::to_owned))
    })
    .await
    .expect("the flow reported its output to Bob");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("REPORT {text}: {e}"))
}

pub fn notify_body(channels: Value, user: &str, message: &str) -> Value {
    json!({ "channels": channels, "user": user, "message": message })
}
