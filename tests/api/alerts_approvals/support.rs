//! What the alert and approval tests share: the people directory and approvers, the server started
//! on the test flows, and ways to drive it: run a webhook flow to its end, say something and read
//! the answer, and the bodies of a page and of a deployment request.

pub use crate::common::chat::sent_to;
use crate::common::*;
use serde_json::{json, Value};

use std::path::Path;

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

/// The server with the test flows and the people directory, storing under `dir`.
pub async fn start(graph: &FakeGraph, dir: &Path, flows: &Path) -> TestApp {
    let options = Options {
        flows_dir: Some(flows.to_owned()),
        whatsapp_extra: PEOPLE.to_owned(),
        ..Options::default()
    };
    TestApp::spawn_in(dir, graph, &options)
        .await
        .expect("the server starts")
}

/// What `who` was sent so far: texts, and templates as `name: parameters`.
pub fn texts_to(graph: &FakeGraph, who: &str) -> Vec<String> {
    graph.sends_to(who).iter().map(shown).collect()
}

/// A send as text: a text's body, or a template's name and parameters.
pub fn shown(send: &Recorded) -> String {
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
pub async fn ask(app: &TestApp, graph: &FakeGraph, who: &str, text: &str) -> String {
    let before = graph.sends_to(who).len();
    assert_eq!(app.say(who, text).await, 200, "the webhook takes {text:?}");
    shown(&sent_to(graph, who, before + 1).await[before])
}

/// POSTs a flow webhook and waits for the run to end; its record.
pub async fn run_webhook(app: &TestApp, path: &str, body: Value) -> aof::store::RunRecord {
    let (status, answer) = app.post_json(path, &body, Some(WEBHOOK_TOKEN)).await;
    assert_eq!(status, 202, "{path}: {answer}");
    let run_id = answer["run_id"].as_str().expect("a run id").to_owned();
    app.finished_run(&run_id).await
}

pub fn page(message: &str, oncall: &str, fingerprint: Option<&str>) -> Value {
    let mut body =
        json!({ "severity": "critical", "service": "api", "message": message, "oncall": oncall });
    if let Some(fingerprint) = fingerprint {
        body["fingerprint"] = json!(fingerprint);
    }
    body
}

pub fn deployment(service: &str, environment: &str) -> Value {
    json!({ "service": service, "version": "v2.1.0", "environment": environment,
            "requester": "dave@example.com" })
}

pub fn e164(digits: &str) -> String {
    format!("+{digits}")
}
