//! What Meta answers decides what happens next: transient failures and throttling are retried until
//! accepted, a permanent error is reported with Meta's code and not retried, and free-form text
//! refused for the 24-hour window is resent as the fallback template.

use crate::common::sending::*;
use crate::common::*;
use aof::store::JobState;
use serde_json::{json, Value};
use std::time::Duration;

/// A Meta error answer with `code`.
fn meta_error(code: i64, message: &str) -> Value {
    json!({ "error": { "message": format!("(#{code}) {message}"), "type": "OAuthException", "code": code,
        "error_data": { "messaging_product": "whatsapp", "details": message },
        "fbtrace_id": "AbCdEf1234GhIjKl5678MnO" } })
}

#[actix_web::test]
async fn transient_failures_are_retried_until_meta_accepts() {
    let (graph, dir, app) = start(|o| o).await;
    accept_with_known_wamids(&graph);
    graph.respond_next(vec![
        (500, json!({})),
        (500, meta_error(2, "Service temporarily unavailable")),
    ]);
    let to = recipients(1);
    start_flow(&app, "bulk-text", json!({ "recipients": to })).await;

    let store = store(dir.path()).await;
    outbox_settles_at(&store, (0, 1, 0)).await;
    let sends = graph.sends_to(&to[0]);
    let statuses: Vec<u16> = sends.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [500, 500, 200], "two failures, then accepted");
    assert!(
        sends.windows(2).all(|w| w[0].body == w[1].body),
        "retries resend the same body"
    );
    assert_eq!(graph.sends().len(), 3);
    let job = recorded_as_sent(&store, &to[0]).await;
    assert_eq!(job.attempts, 3, "attempts recorded on the job");
}

#[actix_web::test]
async fn throttling_130429_is_retried_and_still_delivered_once_accepted() {
    let (graph, dir, app) = start(|o| o).await;
    accept_with_known_wamids(&graph);
    let throttled = fixture_json("whatsapp/error-130429.json");
    graph.respond_next(vec![(400, throttled.clone()); 3]);
    let to = recipients(1);
    start_flow(&app, "bulk-text", json!({ "recipients": to })).await;

    let store = store(dir.path()).await;
    outbox_settles_at(&store, (0, 1, 0)).await;
    let sends = graph.sends_to(&to[0]);
    let statuses: Vec<u16> = sends.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [400, 400, 400, 200],
        "throttled three times, then accepted"
    );
    let gaps: Vec<Duration> = sends.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps.iter().all(|gap| *gap >= Duration::from_millis(200)),
        "a throttled send came back at once: {gaps:?}"
    );
    assert!(
        gaps[2] >= gaps[0] * 2,
        "the waits after throttling do not grow: {gaps:?}"
    );
    let job = recorded_as_sent(&store, &to[0]).await;
    assert_eq!(job.attempts, 4, "attempts recorded on the job");
}

#[actix_web::test]
async fn a_permanent_error_is_not_retried_and_is_reported_with_metas_code() {
    let (graph, dir, app) = start(|o| o).await;
    graph.respond_next(vec![(400, meta_error(131026, "Message undeliverable"))]);
    let to = recipients(1);
    start_flow(&app, "bulk-text", json!({ "recipients": to })).await;

    let store = store(dir.path()).await;
    outbox_settles_at(&store, (0, 0, 1)).await;
    let failed = eventually_async(WAIT, || async {
        let log = store.audit_log(50).await.expect("reads");
        log.into_iter().find(|r| r.kind == "send_failed")
    })
    .await
    .expect("a send_failed audit entry");
    assert_eq!(failed.detail["code"], 131026, "{:?}", failed.detail);
    assert_eq!(failed.detail["attempts"], 1, "{:?}", failed.detail);
    let who = failed.who.clone().unwrap_or_default();
    assert!(
        who.ends_with(&to[0][to[0].len() - 4..]) && !who.contains(&to[0][..7]),
        "the audit names the recipient masked: {who}"
    );
    let job_id = failed.detail["job"]
        .as_str()
        .unwrap_or_else(|| panic!("no job id in {:?}", failed.detail));
    let (state, job, code, error) = store
        .job(job_id)
        .await
        .expect("reads")
        .expect("the failed job is kept");
    assert_eq!(state, JobState::Failed);
    assert_eq!(code, Some(131026));
    let error = error.unwrap_or_default();
    assert!(
        error.contains("undeliverable"),
        "the job keeps Meta's message: {error}"
    );
    assert_eq!(job.attempts, 1);
    assert_eq!(job.message.to.as_str(), to[0]);

    let sends = graph.sends_to(&to[0]);
    assert_eq!(sends.len(), 1, "a permanent error is not retried");
    assert_eq!(graph.sends().len(), 1);
}

#[actix_web::test]
async fn free_form_text_refused_for_the_24_hour_window_is_resent_as_the_fallback_template() {
    let (graph, dir, app) = start(|o| o).await;
    accept_with_known_wamids(&graph);
    graph.respond_next(vec![(400, fixture_json("whatsapp/error-131047.json"))]);
    let to = recipients(1);
    let text = "Disk usage above 95% on db-1";
    start_flow(&app, "bulk-text", json!({ "recipients": to, "text": text })).await;

    let store = store(dir.path()).await;
    outbox_settles_at(&store, (0, 1, 0)).await;
    let sends = graph.sends_to(&to[0]);
    assert_eq!(sends.len(), 2, "{sends:#?}");
    assert_eq!(sends[0].body["type"], "text");
    assert_eq!(sends[0].body["text"]["body"], text);
    assert_eq!(sends[0].status, 400);

    let fallback = &sends[1].body;
    assert_eq!(fallback["type"], "template", "{fallback}");
    assert_eq!(fallback["template"]["name"], "ops_notification");
    assert_eq!(fallback["template"]["language"]["code"], "en_US");
    let parameters = fallback["template"]["components"][0]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("no body parameters in {fallback}"));
    assert_eq!(parameters.len(), 2, "ops_notification takes 2: {fallback}");
    assert!(
        parameters.iter().any(|p| p["text"] == text),
        "the text travels as a parameter: {fallback}"
    );
    assert_eq!(sends[1].status, 200);
    let job = recorded_as_sent(&store, &to[0]).await;
    assert_eq!(job.attempts, 2, "attempts recorded on the job");
    let sent = store
        .outbound_message(&format!("wamid.ok.{}", to[0]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.kind, "template", "what was delivered is the template");
}
