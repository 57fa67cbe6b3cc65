//! Replies mean what they quote: an engineer paged twice acts on the page they quote, the page
//! whose button they tap, or the id they write (`ACK ALT-0001`); a bare ACK takes the most recent
//! and says how to pick another. An approver asked twice approves the request they quote or name.

use super::support::*;
use crate::common::*;
use serde_json::json;

/// The services of the stories' pages and requests: their wamids name them.
const SERVICES: &[&str] = &["payments-api", "checkout", "api", "web"];

/// Pages Alice about payments-api (ALT-0001), then checkout (ALT-0002).
async fn two_pages(graph: &FakeGraph, app: &TestApp) {
    for service in ["payments-api", "checkout"] {
        alert(app, json!({ "severity": "critical", "service": service, "message": format!("{service} is failing") })).await;
    }
    nth_send(graph, ALICE, 2).await;
}

async fn state_of(dir: &std::path::Path, id: &str) -> String {
    let store = store(dir).await;
    let alert = store.get_alert(id).await.unwrap().expect("stored");
    alert.state.as_str().to_owned()
}

#[actix_web::test]
async fn ack_quoting_the_first_page_acknowledges_the_first_alert() {
    let (graph, dir, app) = start().await;
    name_wamids(&graph, SERVICES);
    two_pages(&graph, &app).await;
    let first_page = format!("wamid.ops_alert.payments-api.{ALICE}");
    let body = quoting(ALICE, "ACK", &first_page, false);
    assert_eq!(app.post_signed(body.to_string().as_bytes()).await, 200);
    received(&graph, BOB, "✅ Alert acknowledged by Alice").await;
    assert_eq!(state_of(dir.path(), "ALT-0001").await, "acknowledged");
    assert_eq!(state_of(dir.path(), "ALT-0002").await, "firing");

    // Quoting the same page again: it is acknowledged already, and the answer says by whom; the
    // other alert is left alone.
    let body = quoting(ALICE, "ACK", &first_page, false);
    assert_eq!(app.post_signed(body.to_string().as_bytes()).await, 200);
    received(&graph, ALICE, "ALT-0001 (").await;
    received(&graph, ALICE, "already acknowledged by Alice").await;
    assert_eq!(state_of(dir.path(), "ALT-0002").await, "firing");
}

#[actix_web::test]
async fn a_tap_on_the_first_pages_button_and_an_explicit_id_act_on_their_alerts() {
    let (graph, dir, app) = start().await;
    name_wamids(&graph, SERVICES);
    two_pages(&graph, &app).await;
    let first_page = format!("wamid.ops_alert.payments-api.{ALICE}");
    let tap = quoting(ALICE, "ACK", &first_page, true);
    assert_eq!(app.post_signed(tap.to_string().as_bytes()).await, 200);
    received(&graph, BOB, "✅ Alert acknowledged by Alice").await;
    assert_eq!(state_of(dir.path(), "ALT-0001").await, "acknowledged");
    assert_eq!(state_of(dir.path(), "ALT-0002").await, "firing");

    // RESOLVE with an id, in any case: the first alert, not the most recent.
    app.say(ALICE, "resolve alt-1").await;
    received(&graph, BOB, "✅ Resolved by Alice").await;
    assert_eq!(state_of(dir.path(), "ALT-0001").await, "resolved");
    assert_eq!(state_of(dir.path(), "ALT-0002").await, "firing");
}

#[actix_web::test]
async fn a_bare_ack_with_two_open_alerts_takes_the_newest_and_says_how_to_pick_the_other() {
    let (graph, dir, app) = start().await;
    two_pages(&graph, &app).await;
    app.say(ALICE, "ACK").await;
    let reply = received(&graph, ALICE, "You're now the incident commander").await;
    assert!(reply.contains("checkout"), "{reply}");
    assert!(reply.contains("That was ALT-0002"), "{reply}");
    assert!(reply.contains("ACK ALT-0001"), "{reply}");
    assert_eq!(state_of(dir.path(), "ALT-0002").await, "acknowledged");
    assert_eq!(state_of(dir.path(), "ALT-0001").await, "firing");
}

/// Asks for approval to deploy `service` to production; answered 202.
async fn request_deploy(app: &TestApp, service: &str) {
    let body = json!({ "service": service, "version": "v2.1.0", "environment": "production",
                       "requester": "alice@example.com" });
    let (status, answer) = app
        .post_json("/deploy/request-approval", &body, Some(WEBHOOK_TOKEN))
        .await;
    assert_eq!(status, 202, "{answer}");
}

#[actix_web::test]
async fn an_approver_asked_twice_approves_the_request_they_quote_or_name() {
    let (graph, _dir, app) = start().await;
    name_wamids(&graph, SERVICES);
    request_deploy(&app, "api").await;
    received(&graph, CAROL, "deployment_approval(api|").await;
    request_deploy(&app, "web").await;
    received(&graph, CAROL, "deployment_approval(web|").await;

    // Quoting the first request approves it, though the second was asked last.
    let first = format!("wamid.deployment_approval.api.{CAROL}");
    let body = quoting(CAROL, "APPROVE", &first, false);
    assert_eq!(app.post_signed(body.to_string().as_bytes()).await, 200);
    let deploy = eventually(WAIT, || requests_to(&graph, "/deploy").first().cloned())
        .await
        .expect("a deploy is called");
    assert_eq!(deploy.body["service"], "api");

    // Naming the second by id.
    app.say(CAROL, "REJECT APR-0002").await;
    received(&graph, CAROL, "❌ Deployment rejected").await;
    // Naming the first again: it was decided already.
    app.say(CAROL, "APPROVE APR-0001").await;
    received(&graph, CAROL, "APR-0001 was already approved by Carol").await;
    assert_eq!(
        requests_to(&graph, "/deploy").len(),
        1,
        "web was not deployed"
    );
}

#[actix_web::test]
async fn info_and_esc_quoting_the_first_page_are_about_the_first_alert() {
    let (graph, dir, app) = start().await;
    name_wamids(&graph, SERVICES);
    two_pages(&graph, &app).await;
    let first_page = format!("wamid.ops_alert.payments-api.{ALICE}");
    let info = quoting(ALICE, "INFO", &first_page, false);
    assert_eq!(app.post_signed(info.to_string().as_bytes()).await, 200);
    let reply = received(&graph, ALICE, "*Paged*").await;
    assert!(reply.contains("Alert: ALT-0001"), "{reply}");
    assert!(!reply.contains("checkout"), "{reply}");

    let esc = quoting(ALICE, "ESC", &first_page, false);
    assert_eq!(app.post_signed(esc.to_string().as_bytes()).await, 200);
    let escalated = received(&graph, BOB, "ops_alert(").await;
    assert!(escalated.contains("payments-api"), "{escalated}");
    assert_eq!(state_of(dir.path(), "ALT-0002").await, "firing");
}
