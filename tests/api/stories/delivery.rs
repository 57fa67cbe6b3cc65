//! Pages that get through: a page WhatsApp reports `failed`, or that is not `delivered` in time,
//! goes to the next person on call and to the notifier's fallback channel, and the alert's
//! timeline (INFO) says so; a delivered page, or an acknowledged alert, is left alone.

use super::support::*;
use crate::common::*;
use serde_json::{json, Value};

/// The check's flow, as the scheduler names it.
const CHECK: &str = "page-delivery-check-flow";

/// The services the stories page about: their pages' wamids name them.
const SERVICES: &[&str] = &["checkout", "search", "billing", "queue"];

/// The wamid the fake gave Alice's page about `service`.
fn page_to_alice(service: &str) -> String {
    format!("wamid.ops_alert.{service}.{ALICE}")
}

/// A status notification for `wamid` sent to Alice.
fn status(wamid: &str, state: &str, error: Option<(i64, &str)>) -> Value {
    let mut status = json!({ "id": wamid, "status": state, "timestamp": now_stamp(),
                             "recipient_id": ALICE });
    if let Some((code, title)) = error {
        status["errors"] = json!([{ "code": code, "title": title }]);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": "106540352242922" },
            "statuses": [status] } }] }]
    })
}

/// The ids of the pending delivery checks.
async fn checks(app: &TestApp) -> Vec<String> {
    timer_ids(app, CHECK).await
}

/// Fires timer `id` now.
async fn fire(app: &TestApp, id: &str) {
    let (status, answer) = fire_timer(app, id).await;
    assert_eq!(status, 200, "{answer}");
}

/// Waits until `n` delivery checks have run to their end.
async fn checks_ran(dir: &std::path::Path, n: usize) {
    let done = eventually_async(WAIT, || async {
        let ran = finished_runs(dir, "page-delivery-check").await;
        (ran.len() >= n).then_some(())
    })
    .await;
    assert!(done.is_some(), "{n} delivery checks never finished");
}

/// Raises a warning for `service` (no escalation timer) and waits for Alice's page.
async fn page_alice(graph: &FakeGraph, app: &TestApp, service: &str) {
    let body = json!({ "severity": "warning", "service": service, "message": format!("{service} is slow") });
    alert(app, body).await;
    received(graph, ALICE, &format!("ops_alert(WARNING|{service}|")).await;
}

#[actix_web::test]
async fn a_page_whatsapp_reports_failed_goes_to_the_next_person_and_the_fallback_channel() {
    let (graph, _dir, app) = start().await;
    name_wamids(&graph, SERVICES);
    page_alice(&graph, &app, "checkout").await;
    eventually(WAIT, || (graph.sends_to(ALICE).len() == 1).then_some(())).await;
    let failed = status(
        &page_to_alice("checkout"),
        "failed",
        Some((131026, "Message undeliverable")),
    );
    assert_eq!(app.post_signed(failed.to_string().as_bytes()).await, 200);

    let escalated = received(&graph, BOB, "ops_alert(ESCALATED|checkout|").await;
    assert!(escalated.contains("checkout is slow"), "{escalated}");
    received(
        &graph,
        BOB,
        "⚠️ The page to Alice did not get through (WhatsApp reported it failed (131026: Message undeliverable)); paged Bob instead",
    )
    .await;
    let slack = eventually(WAIT, || {
        requests_to(&graph, "/slack/default").first().cloned()
    })
    .await
    .expect("the fallback channel is told");
    let text = slack.body["text"].as_str().unwrap_or_default().to_owned();
    assert!(text.contains("did not get through on WhatsApp"), "{text}");
    assert!(text.contains("ALT-0001"), "{text}");

    app.say(BOB, "INFO").await;
    let info = received(&graph, BOB, "*Timeline*").await;
    assert!(
        info.contains("The page to Alice did not get through: WhatsApp reported it failed"),
        "{info}"
    );
}

#[actix_web::test]
async fn an_undelivered_page_is_passed_on_at_its_time_and_a_delivered_one_is_not() {
    let (graph, dir, app) = start().await;
    name_wamids(&graph, SERVICES);
    page_alice(&graph, &app, "search").await;
    let delivered = status(&page_to_alice("search"), "delivered", None);
    assert_eq!(app.post_signed(delivered.to_string().as_bytes()).await, 200);
    let first = checks(&app).await;
    assert_eq!(first.len(), 1, "one check per page: {first:?}");
    fire(&app, &first[0]).await;
    checks_ran(dir.path(), 1).await;

    // The second page gets no status at all.
    page_alice(&graph, &app, "billing").await;
    let second: Vec<String> = checks(&app).await;
    assert_eq!(second.len(), 1, "{second:?}");
    fire(&app, &second[0]).await;
    let escalated = received(&graph, BOB, "ops_alert(ESCALATED|billing|").await;
    assert!(escalated.contains("billing is slow"), "{escalated}");
    assert!(
        !texts(&graph, BOB).iter().any(|t| t.contains("search")),
        "the delivered page was not passed on: {:?}",
        texts(&graph, BOB)
    );
}

#[actix_web::test]
async fn an_acknowledged_alert_is_not_passed_on_when_its_check_fires() {
    let (graph, dir, app) = start().await;
    name_wamids(&graph, SERVICES);
    page_alice(&graph, &app, "queue").await;
    app.say(ALICE, "ACK").await;
    received(&graph, ALICE, "You're now the incident commander").await;
    let ids = checks(&app).await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    fire(&app, &ids[0]).await;
    checks_ran(dir.path(), 1).await;
    assert!(
        !texts(&graph, BOB).iter().any(|t| t.contains("ESCALATED")),
        "{:?}",
        texts(&graph, BOB)
    );
}
