//! What the stories share: the config naming people, approvers and the fakes' paths, starting the
//! bot, waiting for what a person receives, and raising an alert.

use crate::common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// How long a story waits for anything the bot does.
pub const WAIT: Duration = Duration::from_secs(15);

/// The stories' config: people, production's approvers, the deploy webhook, Slack and PagerDuty,
/// the outside ones all on the fake at `fake`.
pub fn options(fake: &str) -> Options {
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

/// Starts the bot against `graph`, storing under `dir`, with `extra` added to the `oncall` section
/// (`coverers: [Alice]`).
pub async fn spawn_with_oncall(graph: &FakeGraph, dir: &Path, extra: &str) -> TestApp {
    let mut options = options(&graph.address);
    options.oncall_extra.push_str(&format!("\n      {extra}"));
    TestApp::spawn_in(dir, graph, &options)
        .await
        .expect("the bot starts")
}

/// Starts the bot against `graph`, storing under `dir`.
pub async fn spawn(graph: &FakeGraph, dir: &Path) -> TestApp {
    TestApp::spawn_in(dir, graph, &options(&graph.address))
        .await
        .expect("the bot starts")
}

/// The `n`-th send (1-based) to `who`, waiting for it.
pub async fn nth_send(graph: &FakeGraph, who: &str, n: usize) -> Recorded {
    eventually(WAIT, || graph.sends_to(who).get(n - 1).cloned())
        .await
        .unwrap_or_else(|| panic!("send #{n} to {who} never came; got {:?}", texts(graph, who)))
}

/// What `who` received: texts, and templates as `name(params)`.
pub fn texts(graph: &FakeGraph, who: &str) -> Vec<String> {
    graph.sends_to(who).iter().map(describe).collect()
}

/// A message as the tests read it: its text, or a template as `name(param|param…)`.
pub fn describe(r: &Recorded) -> String {
    match r.body["type"].as_str() {
        Some("template") => format!(
            "{}({})",
            r.body["template"]["name"].as_str().unwrap_or_default(),
            params(r).join("|")
        ),
        _ => r.text().to_owned(),
    }
}

/// The body parameters of a template message.
pub fn params(r: &Recorded) -> Vec<String> {
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
pub async fn received(graph: &FakeGraph, who: &str, needle: &str) -> String {
    eventually(WAIT, || first_containing(graph, who, needle))
        .await
        .unwrap_or_else(|| panic!("{who} never got `{needle}`; got {:?}", texts(graph, who)))
}

/// Requests the fake received on `path`.
pub fn requests_to(graph: &FakeGraph, path: &str) -> Vec<Recorded> {
    graph
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

/// POSTs `body` to the on-call alert webhook with the token; the answer (a 202).
pub async fn alert(app: &TestApp, body: Value) -> Value {
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

/// A fake serving every outside API, a temp dir, and the bot on the shipped flows. Bind them in
/// this order, so the bot stops before its dir and the fake go.
pub async fn start() -> (FakeGraph, tempfile::TempDir, TestApp) {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn(&graph, dir.path()).await;
    (graph, dir, app)
}

/// The first message `who` received that contains `needle`, as [`describe`] tells it.
pub fn first_containing(graph: &FakeGraph, who: &str, needle: &str) -> Option<String> {
    graph
        .sends_to(who)
        .iter()
        .map(describe)
        .find(|t| t.contains(needle))
}

/// Answers every template sent with a wamid naming it, the first of `services` among its
/// parameters, and its recipient (`wamid.ops_alert.checkout.15551234567`), so that a test can
/// quote a page or report its status; other sends get the default answer.
pub fn name_wamids(graph: &FakeGraph, services: &'static [&'static str]) {
    graph.script(move |body| {
        let template = body["template"]["name"].as_str()?;
        let params = body["template"]["components"][0]["parameters"].as_array()?;
        let service = params
            .iter()
            .filter_map(|p| p["text"].as_str())
            .find(|t| services.contains(t))?;
        let to = body["to"].as_str().unwrap_or_default();
        Some((
            200,
            serde_json::json!({ "messaging_product": "whatsapp",
                    "messages": [{ "id": format!("wamid.{template}.{service}.{to}") }] }),
        ))
    });
}

/// The pending timers, through the admin endpoint.
pub async fn timers(app: &TestApp) -> Value {
    let mut res = app
        .client
        .get(app.url("/admin/timers"))
        .insert_header(("authorization", format!("Bearer {WEBHOOK_TOKEN}")))
        .send()
        .await
        .expect("the server answers");
    serde_json::from_slice(&res.body().await.unwrap_or_default()).unwrap_or(Value::Null)
}

/// The ids of the pending timers of `flow` (a page has its escalation and its delivery check).
pub async fn timer_ids(app: &TestApp, flow: &str) -> Vec<String> {
    let list = timers(app).await;
    list.as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["flow"] == flow)
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect()
}

/// Fires timer `id` now through the admin endpoint; the status and the answer.
pub async fn fire_timer(app: &TestApp, id: &str) -> (u16, Value) {
    app.post_json(
        "/webhooks/admin/timers/fire",
        &serde_json::json!({ "id": id }),
        Some(WEBHOOK_TOKEN),
    )
    .await
}

/// Outcomes of the finished runs of a flow (by its `metadata.name`), read from the store.
pub async fn finished_runs(dir: &Path, flow: &str) -> Vec<String> {
    let runs = store(dir).await.runs_of(flow, 100).await;
    let runs = runs.expect("the runs read back");
    runs.into_iter().filter_map(|r| r.outcome).collect()
}

/// A notification from `from` quoting (or tapping a button of) the message `quoted`.
pub fn quoting(from: &str, text: &str, quoted: &str, button: bool) -> Value {
    let mut message = if button {
        json!({ "type": "button", "button": { "payload": text, "text": text } })
    } else {
        json!({ "type": "text", "text": { "body": text } })
    };
    message["from"] = json!(from);
    message["id"] = json!(format!("wamid.{}", unique_id()));
    message["timestamp"] = json!(now_stamp());
    message["context"] = json!({ "from": "15550001111", "id": quoted });
    notification(vec![(from, "Someone", message)])
}
