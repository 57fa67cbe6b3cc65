//! Deployment approvals: the approvers of production get the request and the requester hears on
//! Slack; an approval deploys and tells the requester; two approvers racing get one decision.

use super::support::*;
use crate::common::*;
use serde_json::json;

/// Asks for approval to deploy api v2.1.0 to production for alice@example.com; answered 202.
async fn request_deploy(app: &TestApp) {
    let body = json!({ "service": "api", "version": "v2.1.0", "environment": "production",
                       "requester": "alice@example.com",
                       "changes_url": "https://github.com/org/api/compare/v2.0.0...v2.1.0" });
    let (status, answer) = app
        .post_json("/deploy/request-approval", &body, Some(WEBHOOK_TOKEN))
        .await;
    assert_eq!(status, 202, "{answer}");
}

#[actix_web::test]
async fn an_approved_deployment_is_deployed_and_the_requester_told() {
    let (graph, _dir, app) = start().await;
    request_deploy(&app).await;
    received(
        &graph,
        CAROL,
        "deployment_approval(api|v2.1.0|production|alice@example.com)",
    )
    .await;
    received(
        &graph,
        BOB,
        "deployment_approval(api|v2.1.0|production|alice@example.com)",
    )
    .await;
    let slack = eventually(WAIT, || {
        requests_to(&graph, "/slack/alice").first().cloned()
    })
    .await
    .expect("Alice told on Slack");
    assert!(
        slack.body["text"]
            .as_str()
            .unwrap()
            .contains("Waiting for: Carol, Bob"),
        "{}",
        slack.body
    );

    app.say(CAROL, "APPROVE").await;
    let deploy = eventually(WAIT, || requests_to(&graph, "/deploy").first().cloned())
        .await
        .expect("the deploy is called");
    assert_eq!(deploy.body["service"], "api");
    assert_eq!(deploy.body["version"], "v2.1.0");
    assert_eq!(deploy.body["environment"], "production");
    assert_eq!(deploy.body["approved_by"], "+15550001234");
    received(&graph, ALICE, "✅ Deployment approved!").await;
    received(&graph, CAROL, "is now deploying to production").await;

    // Alice is no approver: nothing waits for her, nothing more is deployed.
    app.say(ALICE, "APPROVE").await;
    received(&graph, ALICE, "No approval request is waiting for you").await;
    assert_eq!(requests_to(&graph, "/deploy").len(), 1);
}

#[actix_web::test]
async fn when_two_approvers_race_one_decision_wins_and_the_other_is_told_who_decided() {
    let (graph, dir, app) = start().await;
    request_deploy(&app).await;
    received(&graph, CAROL, "deployment_approval").await;
    received(&graph, BOB, "deployment_approval").await;
    let (carol, bob) =
        futures_util::future::join(app.say(CAROL, "APPROVE"), app.say(BOB, "REJECT")).await;
    assert_eq!((carol, bob), (200, 200));
    let loser = eventually(WAIT, || {
        [CAROL, BOB]
            .into_iter()
            .find_map(|who| first_containing(&graph, who, "was already").map(|t| (who, t)))
    })
    .await
    .expect("the second decision is told who decided");
    let winner = if loser.0 == CAROL { "Bob" } else { "Carol" };
    assert!(loser.1.contains(&format!("by {winner}")), "{loser:?}");
    for internal in ["could not finish", "step `", "process-approval"] {
        assert!(
            !loser.1.contains(internal),
            "a person reads a sentence: {loser:?}"
        );
    }
    let deploys = requests_to(&graph, "/deploy").len();
    assert!(deploys <= 1, "one decision, at most one deploy: {deploys}");

    // An expected outcome is a normal end of the run, not a failure.
    let store = store(dir.path()).await;
    let runs = eventually_async(WAIT, || async {
        let runs = store.runs_of("process-approval", 10).await.ok()?;
        let ended = runs.iter().filter(|r| r.outcome.is_some()).count();
        (ended == 2).then_some(runs)
    })
    .await
    .expect("both decisions' runs end");
    let mut outcomes: Vec<_> = runs.iter().filter_map(|r| r.outcome.clone()).collect();
    outcomes.sort();
    assert_eq!(outcomes, ["answered", "completed"]);
}
