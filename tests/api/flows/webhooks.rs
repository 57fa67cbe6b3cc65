//! Flow webhooks: 202 with a run id, 400 naming each bad field, 401 without the bearer token.

use crate::common::chat::*;
use crate::common::*;
use serde_json::{json, Value};

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
        let run = app.finished_run(run_id).await;
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
