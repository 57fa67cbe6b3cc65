//! Deployment approvals through the `approval-manager` agent: approvers from config per service and
//! environment, non-approvers refused, the first of two racing decisions winning, expired requests
//! refused, and an approver's open requests listed.

use super::flows::flows_dir;
use super::support::*;
use crate::common::*;
use serde_json::json;

#[actix_web::test]
async fn approvers_come_from_the_service_then_the_environment_then_the_star_entry() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let app = start(&graph, dir.path(), flows.path()).await;
    let store = store(dir.path()).await;

    let cases = [
        ("api", "production", "APR-0001", vec!["Alice", "Bob"]),
        ("billing", "production", "APR-0002", vec!["Alice"]),
        ("web", "staging", "APR-0003", vec!["Carol"]),
    ];
    for (service, environment, id, names) in &cases {
        let run = run_webhook(
            &app,
            "/test/request-approval",
            deployment(service, environment),
        )
        .await;
        assert_eq!(run.outcome.as_deref(), Some("completed"), "{run:?}");
        let request = store.get_approval(id).await.unwrap().expect("recorded");
        let listed: Vec<&str> = request.approvers.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(&listed, names, "{service} in {environment}");
        assert_eq!(request.body["changes_url"], "https://example.com/compare");
    }
    assert_eq!(
        store
            .get_approval("APR-0001")
            .await
            .unwrap()
            .unwrap()
            .approvers[0]
            .phone,
        "+15551234567",
        "numbers are E.164 whatever the directory's notation"
    );
    sent_to(&graph, CAROL, 1).await;
    assert_eq!(sent_to(&graph, ALICE, 2).await.len(), 2);
    assert_eq!(
        sent_to(&graph, BOB, 1).await.len(),
        1,
        "Bob approves production's api only"
    );
    assert!(texts_to(&graph, CAROL)[0]
        .starts_with("deployment_approval: web | v2.1.0 | staging | dave@example.com"));

    // Nobody approves the api in staging: the run fails naming the key to set.
    let run = run_webhook(&app, "/test/request-approval", deployment("api", "staging")).await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let steps = run.steps.expect("the steps").to_string();
    assert!(
        steps.contains("platforms.whatsapp.approvals.environments.staging.approvers"),
        "{steps}"
    );
    assert!(store.get_approval("APR-0004").await.unwrap().is_none());
}

#[actix_web::test]
async fn a_non_approver_is_refused_and_the_request_stays_pending_for_its_approver() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let app = start(&graph, dir.path(), flows.path()).await;

    run_webhook(
        &app,
        "/test/request-approval",
        deployment("billing", "production"),
    )
    .await;
    sent_to(&graph, ALICE, 1).await;
    assert_eq!(
        ask(&app, &graph, BOB, "APPROVE APR-0001").await,
        "❌ You are not authorized to approve this request."
    );
    let store = store(dir.path()).await;
    let request = store.get_approval("APR-0001").await.unwrap().unwrap();
    assert_eq!(request.state, aof::store::ApprovalState::Pending);
    assert_eq!(request.decided_by, None);

    assert_eq!(
        ask(&app, &graph, ALICE, "APPROVE").await,
        "APR-0001 approved by Alice (billing v2.1.0 to production)"
    );
}

#[actix_web::test]
async fn when_two_approvers_race_the_first_decision_wins_and_the_second_is_told_who_decided() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let app = start(&graph, dir.path(), flows.path()).await;

    run_webhook(
        &app,
        "/test/request-approval",
        deployment("api", "production"),
    )
    .await;
    sent_to(&graph, ALICE, 1).await;
    sent_to(&graph, BOB, 1).await;

    let (alice, bob) =
        futures_util::future::join(app.say(ALICE, "APPROVE"), app.say(BOB, "REJECT")).await;
    assert_eq!((alice, bob), (200, 200));
    let alice = shown(&sent_to(&graph, ALICE, 2).await[1]);
    let bob = shown(&sent_to(&graph, BOB, 2).await[1]);

    let request = store(dir.path())
        .await
        .get_approval("APR-0001")
        .await
        .unwrap()
        .unwrap();
    let (winner, loser, won, by) = match request.state {
        aof::store::ApprovalState::Approved => (&alice, &bob, "approved by Alice", ALICE),
        aof::store::ApprovalState::Rejected => (&bob, &alice, "rejected by Bob", BOB),
        pending => panic!("one decision is recorded, not {pending:?}: {alice} / {bob}"),
    };
    assert!(winner.starts_with(&format!("APR-0001 {won}")), "{winner}");
    assert!(
        loser.contains(&format!("APR-0001 was already {won} at ")),
        "{loser}"
    );
    assert_eq!(request.decided_by, Some(e164(by)));
    assert_eq!(graph.sends_to(ALICE).len(), 2, "one answer each");
    assert_eq!(graph.sends_to(BOB).len(), 2, "one answer each");
}

#[actix_web::test]
async fn an_expired_request_cannot_be_approved() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let app = start(&graph, dir.path(), flows.path()).await;

    let mut body = deployment("api", "production");
    body["expires_at"] = json!("2020-01-01T00:00:00Z");
    run_webhook(&app, "/test/request-approval", body).await;
    sent_to(&graph, ALICE, 1).await;

    let answer = ask(&app, &graph, ALICE, "APPROVE").await;
    assert!(
        answer.contains(
            "APR-0001 expired at 2020-01-01 00:00 UTC; ask dave@example.com for a new request"
        ),
        "{answer}"
    );
    let request = store(dir.path())
        .await
        .get_approval("APR-0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.state, aof::store::ApprovalState::Pending);
    assert_eq!(request.decided_by, None);
    assert_eq!(request.expires_at, "2020-01-01T00:00:00Z");
}

#[actix_web::test]
async fn pending_for_lists_the_open_requests_an_approver_may_decide_newest_first() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), flows_dir());
    let app = start(&graph, dir.path(), flows.path()).await;

    let mut expired = deployment("api", "production");
    expired["expires_at"] = json!("2020-01-01T00:00:00Z");
    for body in [
        deployment("api", "production"),
        deployment("billing", "production"),
        expired,
        deployment("web", "staging"),
    ] {
        let run = run_webhook(&app, "/test/request-approval", body).await;
        assert_eq!(run.outcome.as_deref(), Some("completed"), "{run:?}");
    }
    sent_to(&graph, ALICE, 3).await;
    sent_to(&graph, BOB, 2).await;

    assert_eq!(
        ask(&app, &graph, ALICE, "PENDING").await,
        "Open: APR-0002 billing@production; APR-0001 api@production;"
    );
    assert_eq!(
        ask(&app, &graph, BOB, "PENDING").await,
        "Open: APR-0001 api@production;"
    );
    assert_eq!(
        ask(&app, &graph, BOB, "APPROVE APR-0001").await,
        "APR-0001 approved by Bob"
    );
    assert_eq!(
        ask(&app, &graph, ALICE, "PENDING").await,
        "Open: APR-0002 billing@production;"
    );
    assert_eq!(
        ask(&app, &graph, BOB, "PENDING").await,
        "No open approval requests"
    );
}
