//! Alerts from monitoring: Alertmanager pages once per fingerprint and resolves, PagerDuty and the
//! bot keep each other in step without echoes, Datadog's status words page and recover, and a bad
//! alert body is refused field by field.

use super::support::*;
use crate::common::sending::fixture_json;
use crate::common::*;
use serde_json::{json, Value};

/// POSTs a PagerDuty v3 webhook event with the webhook token; the status and the answer.
async fn pagerduty(app: &TestApp, event: &Value) -> (u16, Value) {
    app.post_json("/webhooks/whatsapp/pagerduty", event, Some(WEBHOOK_TOKEN))
        .await
}

#[actix_web::test]
async fn alertmanager_pages_once_per_fingerprint_and_resolves_what_it_resolves() {
    let (graph, _dir, app) = start().await;
    let firing = fixture_json("alertmanager/firing-two-alerts.json");
    let answer = alert(&app, firing.clone()).await;
    assert_eq!(answer["runs"].as_array().map(Vec::len), Some(2), "{answer}");
    nth_send(&graph, ALICE, 2).await;
    assert_eq!(
        params(&graph.sends_to(ALICE)[0])[..2],
        ["CRITICAL", "payments-api"]
    );

    let again = alert(&app, firing).await;
    assert_eq!(
        again["duplicates"].as_array().map(Vec::len),
        Some(2),
        "{again}"
    );
    let resolved = fixture_json("alertmanager/resolved.json");
    let answer = alert(&app, resolved).await;
    assert!(
        !answer["resolved"].as_array().unwrap().is_empty(),
        "{answer}"
    );
    received(&graph, ALICE, "✅ Resolved by Alertmanager").await;
    let pages = graph
        .sends_to(ALICE)
        .iter()
        .filter(|r| r.body["type"] == "template")
        .count();
    assert_eq!(
        pages,
        2,
        "one page per fingerprint: {:?}",
        texts(&graph, ALICE)
    );
}

#[actix_web::test]
async fn pagerduty_and_the_bot_keep_each_other_in_step_without_echoes() {
    let (graph, _dir, app) = start().await;
    let triggered = fixture_json("pagerduty/v3-incident-triggered.json");
    let (status, _) = app
        .post_json("/webhooks/whatsapp/pagerduty", &triggered, None)
        .await;
    assert_eq!(status, 401, "the PagerDuty webhook needs the token too");
    let (status, answer) = pagerduty(&app, &triggered).await;
    assert_eq!(status, 200, "{answer}");
    received(&graph, ALICE, "[FIRING:2] HighErrorRate payments-api").await;
    let (_, again) = pagerduty(&app, &triggered).await;
    assert_eq!(again["duplicate"], true, "redelivered events are ignored");

    app.say(ALICE, "ACK").await;
    let put = eventually(WAIT, || {
        requests_to(&graph, "/pd/incidents/Q1W2E3R4T5Y6U7")
            .first()
            .cloned()
    })
    .await
    .expect("the ACK reaches PagerDuty");
    assert_eq!(put.body["incident"]["status"], "acknowledged");
    assert_eq!(put.header("authorization"), Some("Token token=pd-token"));

    // PagerDuty tells us back: the alert is already acknowledged, so nobody hears about it again.
    let before = graph.sends_to(ALICE).len();
    let acked = fixture_json("pagerduty/v3-incident-acknowledged.json");
    let (status, answer) = pagerduty(&app, &acked).await;
    assert_eq!(
        (status, &answer["acknowledged"]),
        (200, &json!(false)),
        "{answer}"
    );
    assert_eq!(
        requests_to(&graph, "/pd/incidents/Q1W2E3R4T5Y6U7").len(),
        1,
        "no echo back to PagerDuty"
    );

    let mut resolved = acked.clone();
    resolved["event"]["id"] = json!("01EVTRESOLVED");
    resolved["event"]["event_type"] = json!("incident.resolved");
    let (_, answer) = pagerduty(&app, &resolved).await;
    assert_eq!(answer["resolved"], true, "{answer}");
    received(&graph, ALICE, "✅ Resolved by Priya Raman (PagerDuty)").await;
    assert!(graph.sends_to(ALICE).len() > before);
}

#[actix_web::test]
async fn datadog_status_words_page_and_recover() {
    let (graph, _dir, app) = start().await;
    let triggered = json!({ "severity": "Triggered", "service": "checkout", "message": "error rate high", "runbook_url": "" });
    alert(&app, triggered.clone()).await;
    received(&graph, ALICE, "ops_alert(CRITICAL|checkout|error rate high").await;
    let again = alert(&app, triggered).await;
    assert!(again["duplicates"].is_array(), "{again}");
    alert(
        &app,
        json!({ "severity": "Recovered", "service": "checkout", "message": "ok" }),
    )
    .await;
    received(&graph, ALICE, "✅ Resolved by Datadog").await;
}

#[actix_web::test]
async fn bad_alert_bodies_get_a_400_naming_each_field_and_page_nobody() {
    let (graph, _dir, app) = start().await;
    let (status, answer) = app
        .post_json(
            "/webhooks/whatsapp/alert/oncall",
            &json!({ "severity": "sev1", "message": "x" }),
            Some(WEBHOOK_TOKEN),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let fields: Vec<&str> = answer["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"service") && fields.contains(&"severity"),
        "{answer}"
    );
    let (status, _) = app
        .post_json("/webhooks/whatsapp/alert/oncall", &json!({}), Some("wrong"))
        .await;
    assert_eq!(status, 401);
    app.say(ALICE, "HELP").await;
    nth_send(&graph, ALICE, 1).await;
    assert!(
        graph.sends().iter().all(|r| r.body["type"] != "template"),
        "nobody was paged"
    );
}
