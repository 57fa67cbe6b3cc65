//! A failing step: on_error with retries and a response, the run's record of it, and the
//! answer when there is no on_error.

use crate::common::chat::*;
use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};

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
    let failed = ask_reply(&app, &graph, ALICE, "check bad").await;
    assert_eq!(failed.text(), "❌ check failed for bad");
    // Three attempts wait at least 100 ms + 200 ms between them (exponential from 200 ms, jittered
    // down to half at most); one attempt answers at once.
    let took = failed.at - asked;
    assert!(
        took >= Duration::from_millis(300),
        "three attempts take their backoff, answered after {took:?}"
    );

    assert_eq!(
        ask_reply(&app, &graph, ALICE, "check ok").await.text(),
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
    let run = app.finished_run(answer["run_id"].as_str().unwrap()).await;
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
    let run = app.finished_run(answer["run_id"].as_str().unwrap()).await;
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
async fn a_step_failure_without_on_error_gets_a_short_apology_and_the_run_keeps_the_details() {
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

    let reply = ask_reply(&app, &graph, ALICE, "strict").await;
    let text = reply.text();
    assert!(text.contains("something went wrong"), "{text}");
    for internal in ["must-pass", "condition", "unguarded", "step"] {
        assert!(
            !text.contains(internal),
            "no internals for a person: {text}"
        );
    }
    // The details are in the run record (and the log).
    let store = store(dir.path()).await;
    let run = eventually_async(WAIT, || async {
        let runs = store.runs_of("unguarded", 5).await.ok()?;
        runs.into_iter().find(|r| r.outcome.is_some())
    })
    .await
    .expect("the run is recorded");
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let steps = run.steps.clone().unwrap_or_default().to_string();
    assert!(steps.contains("the condition is false"), "{steps}");
    // Once a later message is answered, "never" has had every chance to come.
    assert!(ask_reply(&app, &graph, ALICE, "HELP")
        .await
        .text()
        .contains("ops bot"));
    assert!(!texts_to(&graph, ALICE).contains(&"never".to_owned()));
}
