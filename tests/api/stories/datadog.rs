//! Datadog as Datadog really sends: the tutorial's payload template filled with Datadog's real
//! values (`$ALERT_STATUS` is a sentence, `$EVENT_TITLE` starts with `[Triggered]`), priorities
//! P1-P5, and the Datadog endpoint, which pages whatever it cannot read instead of refusing it
//! (Datadog does not retry a 4xx). Bodies written from Datadog's documented variables.

use super::support::*;
use crate::common::*;
use serde_json::{json, Value};

/// The tutorial's template (`severity: $ALERT_STATUS`, `service: $EVENT_TITLE`, `message:
/// $EVENT_MSG`, `runbook_url: $RUNBOOK_URL`) as Datadog fills it.
fn tutorial_template(status: &str, title: &str) -> Value {
    json!({
        "severity": status,
        "service": title,
        "message": "%%%\n5xx ratio on payments-api is above 5%.\n\n[[Monitor Status](https://app.datadoghq.com/monitors/81234567)]\n%%%",
        "runbook_url": "https://runbooks.example.com/payments/high-error-rate",
    })
}

/// POSTs `body` to the Datadog endpoint with the token; the status and the answer.
async fn datadog(app: &TestApp, body: &[u8]) -> (u16, Value) {
    let mut answer = app
        .client
        .post(app.url("/whatsapp/datadog"))
        .insert_header(("authorization", format!("Bearer {WEBHOOK_TOKEN}")))
        .insert_header(("content-type", "application/json"))
        .send_body(body.to_vec())
        .await
        .expect("the bot answers");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn the_tutorials_template_filled_by_datadog_pages_and_recovers() {
    let (graph, _dir, app) = start().await;
    let triggered = tutorial_template(
        "job:request_errors:ratio5m over service:payments-api,env:prod was > 0.05 on average during the last 5m.",
        "[Triggered on {service:payments-api,env:prod}] payments-api 5xx ratio high",
    );
    alert(&app, triggered).await;
    let page = received(&graph, ALICE, "ops_alert(CRITICAL|payments-api|").await;
    assert!(page.contains("above 5%"), "{page}");
    let recovered = tutorial_template(
        "job:request_errors:ratio5m over service:payments-api,env:prod was <= 0.05 on average during the last 5m.",
        "[Recovered on {service:payments-api,env:prod}] payments-api 5xx ratio high",
    );
    alert(&app, recovered).await;
    received(&graph, ALICE, "✅ Resolved by Datadog").await;
}

#[actix_web::test]
async fn a_datadog_priority_decides_the_severity() {
    let (graph, _dir, app) = start().await;
    let p3 = tutorial_template(
        "p99 latency was > 800 ms during the last 10m.",
        "[P3] [Triggered on {service:search}] search latency high",
    );
    alert(&app, p3).await;
    received(&graph, ALICE, "ops_alert(WARNING|search|").await;
}

#[actix_web::test]
async fn the_datadog_endpoint_pages_what_it_cannot_read_as_a_warning() {
    let (graph, _dir, app) = start().await;
    let (status, answer) =
        datadog(&app, br#"{"monitor": 81234567, "note": "custom template"}"#).await;
    assert_eq!(status, 202, "{answer}");
    let page = received(&graph, ALICE, "ops_alert(WARNING|datadog|").await;
    assert!(page.contains("could not read"), "{page}");
    // Datadog's default payload on the same endpoint reads as it should.
    let default = json!({
        "title": "[Triggered on {service:checkout,env:prod}] checkout error rate high",
        "body": "%%%\nerror rate above 2%\n%%%", "event_type": "query_alert_monitor",
        "id": "7612345678901234567",
    });
    let (status, _) = datadog(&app, default.to_string().as_bytes()).await;
    assert_eq!(status, 202);
    received(
        &graph,
        ALICE,
        "ops_alert(CRITICAL|checkout|error rate above 2%",
    )
    .await;
    let (status, _) = app
        .post_json("/webhooks/whatsapp/datadog", &json!({}), Some("wrong"))
        .await;
    assert_eq!(status, 401);
}
