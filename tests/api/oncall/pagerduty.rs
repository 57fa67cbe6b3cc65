//! PagerDuty: on-calls looked up and mapped to people, retries and the fall back to the static
//! rota, escalation and acknowledgement written to the incident, refusals reported without the
//! token, and steps skipped without a token or an incident id.

use super::fake_pagerduty::{pagerduty_that_works, FakePagerDuty, PdRequest};
use super::support::*;
use crate::common::*;
use serde_json::json;

fn rota_with_alice_on() -> Vec<(&'static str, String, String, &'static str)> {
    vec![("Alice", ALICE.into(), on_now(), "UTC")]
}

/// A working PagerDuty, and the bot using it with Alice on the static rota and a fallback number.
async fn with_working_pagerduty() -> (FakePagerDuty, World) {
    let pd = FakePagerDuty::start();
    pagerduty_that_works(&pd);
    let world = start(OnCallSetup {
        rota: rota_with_alice_on(),
        pagerduty: Some(pd.address.clone()),
        fallback: true,
    })
    .await;
    (pd, world)
}

#[actix_web::test]
async fn pagerduty_on_calls_are_paged_when_configured_and_mapped_to_people() {
    let (pd, world) = with_working_pagerduty().await;

    world.page("payments").await;
    // Priya (level 1) by name, Marco (level 2) by email; Dana has no number and is left out.
    assert_eq!(
        world.sent_to(BOB, 1).await,
        ["PAGE payments to Priya Raman level=1 source=pagerduty on_call=Priya Raman,Marco"]
    );
    assert!(
        world.texts_to(ALICE).is_empty(),
        "the static rota is not used"
    );

    let requests = pd.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let lookup = &requests[0];
    assert_eq!(
        (lookup.method.as_str(), lookup.path.as_str()),
        ("GET", "/oncalls")
    );
    let query: Vec<(String, String)> = lookup
        .query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.replace("%5B", "[").replace("%5D", "]"), v.to_owned())
        })
        .collect();
    assert!(
        query.contains(&("schedule_ids[]".into(), "PSCHED1".into())),
        "{query:?}"
    );
    assert!(
        query.contains(&("earliest".into(), "true".into())),
        "{query:?}"
    );
    assert_eq!(
        lookup.header("authorization"),
        Some(format!("Token token={PD_TOKEN}").as_str())
    );
    assert_eq!(
        lookup.header("accept"),
        Some("application/vnd.pagerduty+json;version=2")
    );
}

#[actix_web::test]
async fn pagerduty_down_falls_back_to_the_static_rota_after_two_retries() {
    let pd = FakePagerDuty::start();
    pd.script(|_| {
        (
            503,
            json!({ "error": { "message": "Service Unavailable", "code": 5000 } }),
        )
    });
    let world = start(OnCallSetup {
        rota: rota_with_alice_on(),
        pagerduty: Some(pd.address.clone()),
        fallback: true,
    })
    .await;

    world.page("api").await;
    assert_eq!(
        world.sent_to(ALICE, 1).await,
        ["PAGE api to Alice level=1 source=static on_call=Alice"]
    );
    let lookups: Vec<String> = pd.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        lookups,
        ["/oncalls", "/oncalls", "/oncalls"],
        "a try and two retries"
    );
}

#[actix_web::test]
async fn pagerduty_naming_nobody_known_falls_back_to_the_static_rota() {
    let pd = FakePagerDuty::start();
    pd.script(|_| {
        (
            200,
            json!({ "oncalls": [{ "user": { "id": "PX", "summary": "Stranger Danger" },
                "escalation_level": 1, "start": null, "end": null }], "more": false }),
        )
    });
    let world = start(OnCallSetup {
        rota: rota_with_alice_on(),
        pagerduty: Some(pd.address.clone()),
        fallback: true,
    })
    .await;
    world.page("api").await;
    assert_eq!(
        world.sent_to(ALICE, 1).await,
        ["PAGE api to Alice level=1 source=static on_call=Alice"]
    );
    assert_eq!(pd.requests().len(), 1, "a 200 is not retried");
}

#[actix_web::test]
async fn escalation_goes_to_the_next_pagerduty_level_and_escalates_the_incident() {
    let (pd, world) = with_working_pagerduty().await;

    // Priya (Bob's number here) is level 1; the next level is Marco, Carol's number.
    let run = world
        .fire(
            "/test/escalate",
            json!({ "current_user": format!("+{BOB}"), "incident_id": "PINC42" }),
        )
        .await;
    completed(&run);
    assert_eq!(
        world.sent_to(CAROL, 1).await,
        ["ESCALATED to Marco level=2 source=pagerduty pagerduty=triggered"]
    );

    let writes: Vec<PdRequest> = pd
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    let put = &writes[0];
    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        ("PUT", "/incidents/PINC42")
    );
    assert_eq!(
        put.body,
        json!({ "incident": { "type": "incident_reference", "escalation_level": 2 } })
    );
    assert_eq!(
        put.header("authorization"),
        Some(format!("Token token={PD_TOKEN}").as_str())
    );
    assert_eq!(put.header("from"), Some(PD_FROM));
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(
        put.header("accept"),
        Some("application/vnd.pagerduty+json;version=2")
    );
}

#[actix_web::test]
async fn pagerduty_acknowledge_sends_the_put_with_token_from_and_body() {
    let (pd, world) = with_working_pagerduty().await;

    completed(
        &world
            .fire("/test/pd-ack", json!({ "incident_id": "PT4KHLK" }))
            .await,
    );
    assert_eq!(
        world.sent_to(ALICE, 1).await,
        ["ACK PT4KHLK status=acknowledged skipped="]
    );
    let requests = pd.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let put = &requests[0];
    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        ("PUT", "/incidents/PT4KHLK")
    );
    assert_eq!(
        put.body,
        json!({ "incident": { "type": "incident_reference", "status": "acknowledged" } })
    );
    assert_eq!(
        put.header("authorization"),
        Some(format!("Token token={PD_TOKEN}").as_str())
    );
    assert_eq!(put.header("from"), Some(PD_FROM));
    assert_eq!(put.header("content-type"), Some("application/json"));
}

#[actix_web::test]
async fn a_pagerduty_refusal_fails_the_step_with_pagerdutys_message_and_no_token() {
    let pd = FakePagerDuty::start();
    pd.script(|_| {
        (
            404,
            json!({ "error": { "message": "Incident Not Found", "code": 2100, "errors": ["No incident PNOPE"] } }),
        )
    });
    let world = start(OnCallSetup {
        rota: rota_with_alice_on(),
        pagerduty: Some(pd.address.clone()),
        fallback: true,
    })
    .await;

    let run = world
        .fire("/test/pd-ack", json!({ "incident_id": "PNOPE" }))
        .await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let steps = run.steps.expect("the steps' record");
    let error = steps[0]["error"].as_str().expect("an error text");
    assert_eq!(
        error,
        "PagerDuty answered 404 to PUT /incidents/PNOPE: Incident Not Found (code 2100): No incident PNOPE"
    );
    assert!(!error.contains(PD_TOKEN));
    assert_eq!(pd.requests().len(), 1, "a 404 is final");
    assert!(world.graph.sends().is_empty());
}

#[actix_web::test]
async fn without_a_token_pagerduty_steps_are_skipped_and_the_flow_completes() {
    let pd = FakePagerDuty::start();
    pagerduty_that_works(&pd);
    let world = start(OnCallSetup {
        rota: rota_with_alice_on(),
        pagerduty: None,
        fallback: true,
    })
    .await;

    let run = world
        .fire("/test/pd-ack", json!({ "incident_id": "PT4KHLK" }))
        .await;
    completed(&run);
    assert_eq!(world.sent_to(ALICE, 1).await, ["ACK  status= skipped=True"]);
    let steps = run.steps.unwrap();
    assert_eq!(steps[0]["step"], "ack");
    assert_eq!(steps[0]["outcome"], "ok");
    assert!(pd.requests().is_empty());
}

#[actix_web::test]
async fn without_an_incident_id_the_pagerduty_step_is_skipped() {
    let (pd, world) = with_working_pagerduty().await;
    completed(
        &world
            .fire(
                "/test/escalate",
                json!({ "current_user": format!("+{BOB}") }),
            )
            .await,
    );
    assert_eq!(
        world.sent_to(CAROL, 1).await,
        ["ESCALATED to Marco level=2 source=pagerduty pagerduty=no incident_id: the alert is not a PagerDuty incident"]
    );
    assert!(pd.requests().iter().all(|r| r.method == "GET"));
}
