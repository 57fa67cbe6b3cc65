//! The `notifier` agent on Slack and WhatsApp: the person's own webhook with a mention or the
//! default one, the tutorial's channel list, retries, one channel failing, unknown people, and
//! Slack without any webhook.

use super::support::*;
use crate::common::*;
use aof::fake_http::{FakeHttp, Response};
use serde_json::json;

fn slack_default(slack: &FakeHttp) -> String {
    format!(
        r#"    notifier:
      slack:
        webhook_url: "{}/slack/default"
"#,
        slack.address
    )
}

#[actix_web::test]
async fn notify_on_slack_posts_the_text_to_the_persons_webhook_with_a_mention() {
    let slack = fake_webhooks();
    let s = start(people(&slack) + &slack_default(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack"]), "alice", "deploy api 2.1 requested"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.steps);
    let posts = slack.requests();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].path, "/slack/alice");
    assert_eq!(
        posts[0].body,
        json!({ "text": "<@U0ALICE> deploy api 2.1 requested" })
    );
    let output = report(&s.graph).await;
    assert_eq!(output["results"][0]["channel"], "slack");
    assert_eq!(output["results"][0]["ok"], true);
    assert!(
        !output.to_string().contains(&slack.address),
        "no webhook URL in the output: {output}"
    );

    // Bob has no webhook of his own: the default one, without a mention.
    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack"]), "Bob", "hello"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("completed"));
    let posts = slack.requests();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].path, "/slack/default");
    assert_eq!(posts[1].body, json!({ "text": "hello" }));
}

#[actix_web::test]
async fn the_tutorials_channel_list_sends_on_slack_and_whatsapp() {
    let slack = fake_webhooks();
    let s = start(people(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/approved",
        json!({ "requester": "alice@example.com", "service": "api" }),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.steps);
    let posts = slack.requests();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].path, "/slack/alice");
    let text = posts[0].body["text"].as_str().unwrap();
    assert!(
        text.starts_with("<@U0ALICE> ✅ Deployment approved!") && text.contains("Service: api"),
        "{text}"
    );
    let sent = eventually(WAIT, || {
        Some(s.graph.sends_to(ALICE)).filter(|v| !v.is_empty())
    })
    .await
    .expect("Alice got the WhatsApp message");
    assert_eq!(sent[0].body["type"], "text");
    assert!(
        sent[0].text().contains("Deployment approved"),
        "{}",
        sent[0].text()
    );
}

#[actix_web::test]
async fn a_slack_webhook_answering_500_twice_is_retried_until_it_accepts() {
    let slack = fake_webhooks();
    slack.respond_next([
        Response::json(500, json!("rollup_error")),
        Response::json(500, json!("rollup_error")),
    ]);
    let s = start(people(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack"]), "Alice", "third time lucky"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.steps);
    let statuses: Vec<u16> = slack.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200]);
    assert!(slack.requests().iter().all(|r| r.path == "/slack/alice"));
}

#[actix_web::test]
async fn a_slack_webhook_failing_every_attempt_fails_the_step_after_three() {
    let slack = fake_webhooks();
    slack.script(|_| Some(Response::json(503, json!("unavailable"))));
    let s = start(people(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack"]), "Alice", "nobody home"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let error = step_error(&run, "notify");
    assert!(
        error.contains("slack: Slack answered HTTP 503") && error.contains("3 attempts"),
        "{error}"
    );
    assert!(!error.contains(&slack.address), "{error}");
    assert_eq!(slack.requests().len(), 3);
}

#[actix_web::test]
async fn one_channel_failing_leaves_the_step_successful_with_each_channels_result() {
    let slack = fake_webhooks();
    slack.script(|_| Some(Response::json(404, json!("channel_not_found"))));
    let s = start(people(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack", "whatsapp"]), "Alice", "half of it"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.steps);
    assert_eq!(slack.requests().len(), 1, "a 404 is not retried");
    let output = report(&s.graph).await;
    let results = output["results"].as_array().unwrap();
    assert_eq!(results[0]["channel"], "slack");
    assert_eq!(results[0]["ok"], false);
    assert!(
        results[0]["detail"]
            .as_str()
            .unwrap()
            .contains("HTTP 404: \"channel_not_found\""),
        "{output}"
    );
    assert_eq!(results[1]["channel"], "whatsapp");
    assert_eq!(results[1]["ok"], true);
    assert_eq!(s.graph.sends_to(ALICE).len(), 1);
}

#[actix_web::test]
async fn notify_for_an_unknown_person_fails_naming_them_and_every_channel() {
    let slack = fake_webhooks();
    let s = start(people(&slack) + &slack_default(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack", "whatsapp"]), "carol", "anyone?"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let error = step_error(&run, "notify");
    assert!(
        error.contains("slack: `carol` is not in platforms.whatsapp.people")
            && error.contains("whatsapp: `carol` is not in platforms.whatsapp.people"),
        "{error}"
    );
    assert!(slack.requests().is_empty());
}

#[actix_web::test]
async fn slack_without_any_webhook_fails_saying_what_to_configure() {
    let slack = fake_webhooks();
    let s = start(people(&slack)).await;

    let run = run_flow(
        &s.app,
        "/test/notify",
        notify_body(json!(["slack"]), "Bob", "hello"),
    )
    .await;
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    let error = step_error(&run, "notify");
    assert!(
        error.contains("Slack is not configured for Bob")
            && error.contains("platforms.whatsapp.notifier.slack.webhook_url"),
        "{error}"
    );
}
