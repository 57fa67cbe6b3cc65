//! Pending `on_response` replies: run once, only for the person asked, before the commands.

use super::HELP_MARK;
use crate::common::chat::*;
use crate::common::*;
use serde_json::{json, Value};

const APPROVAL_REQUEST: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: approval-request
triggers:
  - type: webhook
    path: "/test/request-approval"
    method: POST
input:
  required: [service, version]
  schema:
    service: { type: string }
    version: { type: string }
steps:
  - name: ask-bob
    agent: whatsapp
    action: send_template
    input:
      to: "+15557654321"
      template: "deployment_approval"
      parameters:
        - "{{ input.service }}"
        - "{{ input.version }}"
        - "production"
        - "ci"
on_response:
  - pattern: "^APPROVE$"
    flow: approved-flow
    input:
      request: "{{ steps.ask-bob.output.job_id }}"
      who: "{{ trigger.user.phone }}"
      service: "{{ input.service }}"
"#;

const APPROVED: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: approved-flow
input:
  required: [request, who, service]
steps:
  - name: confirm
    agent: whatsapp
    action: reply
    input:
      text: "approved {{ input.service }} ({{ input.request }}) by {{ input.who }}"
"#;

/// Posts to a flow webhook and waits until its run finished; returns the run id.
async fn run_webhook(app: &TestApp, path: &str, body: Value) -> String {
    let (status, answer) = app.post_json(path, &body, Some(WEBHOOK_TOKEN)).await;
    assert_eq!(status, 202, "{answer}");
    let run_id = answer["run_id"].as_str().expect("a run id").to_owned();
    let store = store(&app.dir).await;
    let outcome = eventually_async(WAIT, || async {
        store.run(&run_id).await.unwrap().and_then(|r| r.outcome)
    })
    .await;
    assert_eq!(outcome.as_deref(), Some("completed"), "run {run_id}");
    run_id
}

#[actix_web::test]
async fn a_pending_on_response_runs_its_flow_once_and_only_for_the_person_asked() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_dir(&[
        ("approval-request.yaml", APPROVAL_REQUEST),
        ("approved-flow.yaml", APPROVED),
    ]);
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    run_webhook(
        &app,
        "/webhooks/whatsapp/test/request-approval",
        json!({ "service": "api", "version": "v2.1.0" }),
    )
    .await;
    let template = &sent_to(&graph, BOB, 1).await[0];
    assert_eq!(template.body["template"]["name"], "deployment_approval");
    let params: Vec<&str> = template.body["template"]["components"][0]["parameters"]
        .as_array()
        .expect("template parameters")
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["api", "v2.1.0", "production", "ci"]);

    // Alice was not asked: her APPROVE goes to approval-handler-flow (no request waits for her)
    // and consumes nothing.
    let alice = ask(&app, &graph, ALICE, "APPROVE").await;
    assert!(
        alice.contains("No approval request is waiting for you"),
        "{alice}"
    );

    let bob = ask(&app, &graph, BOB, "approve").await;
    let re = regex::Regex::new(r"^approved api \((\S+)\) by \+15557654321$").unwrap();
    let request = re
        .captures(&bob)
        .unwrap_or_else(|| panic!("Bob's approval runs approved-flow: {bob}"))[1]
        .to_owned();
    assert!(!request.is_empty());

    // Consumed: a second APPROVE is no longer the pending answer; approval-handler-flow finds
    // no open request of Bob's in the approval store (this test's flow made none).
    let again = ask(&app, &graph, BOB, "APPROVE").await;
    assert!(
        again.contains("No approval request is waiting for you"),
        "{again}"
    );
    assert!(graph
        .sends_to(ALICE)
        .iter()
        .all(|s| !s.text().starts_with("approved")));
}

#[actix_web::test]
async fn a_pending_on_response_comes_before_the_commands() {
    let question = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: ask-alice
triggers:
  - type: webhook
    path: "/test/ask-alice"
    method: POST
steps:
  - name: ask
    agent: whatsapp
    action: send_template
    input:
      to: "+15551234567"
      template: "ops_notification"
      parameters: ["Question", "Reply HELP to confirm"]
on_response:
  - pattern: "^HELP$"
    flow: pending-answer
    input:
      who: "{{ trigger.user.phone }}"
"#;
    let answer = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: pending-answer
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "pending answer from {{ input.who }}"
"#;
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_dir(&[
        ("ask-alice.yaml", question),
        ("pending-answer.yaml", answer),
    ]);
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    run_webhook(&app, "/test/ask-alice", json!({})).await;
    assert_eq!(
        sent_to(&graph, ALICE, 1).await[0].text(),
        "ops_notification"
    );

    assert_eq!(
        ask(&app, &graph, ALICE, " help ").await,
        "pending answer from +15551234567"
    );
    let command = ask(&app, &graph, ALICE, "HELP").await;
    assert!(command.contains(HELP_MARK), "{command}");
}
