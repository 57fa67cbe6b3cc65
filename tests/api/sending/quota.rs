//! The daily template quota: once used up, further templates fail with a clear error, in the same
//! run and in later ones, and the 24-hour window's fallback template counts against it too.

use crate::common::sending::*;
use crate::common::*;
use serde_json::json;

#[actix_web::test]
async fn the_daily_template_quota_stops_further_templates_with_a_clear_error() {
    let (graph, dir, app) = start(|o| Options {
        templates_per_day: 2,
        ..o
    })
    .await;
    let to = recipients(3);
    let run_id = start_flow(&app, "bulk-template", json!({ "recipients": to })).await;

    let store = store(dir.path()).await;
    let run = finished_run(&store, &run_id)
        .await
        .expect("the run finishes");
    assert_eq!(run.outcome.as_deref(), Some("failed"), "{run:?}");
    let steps = run.steps.clone().unwrap_or_default().to_string();
    assert!(
        steps.contains("template quota of 2 per day is used up"),
        "the run says why: {steps}"
    );

    outbox_settles_at(&store, (0, 2, 0)).await;
    let sends = graph.sends();
    let templates = template_recipients(&sends);
    assert_eq!(templates, [to[0].as_str(), to[1].as_str()], "{sends:#?}");
    assert_eq!(sends.len(), 2, "nothing else went out: {sends:#?}");
    assert!(graph.sends_to(&to[2]).is_empty());

    // The quota is per day, not per run: a new run cannot send one either.
    let again = start_flow(&app, "bulk-template", json!({ "recipients": [to[2]] })).await;
    let run = finished_run(&store, &again)
        .await
        .expect("the second run finishes");
    assert_eq!(run.outcome.as_deref(), Some("failed"), "{run:?}");
    assert_eq!(store.outbox_counts().await.unwrap(), (0, 2, 0));
    assert_eq!(graph.sends().len(), 2);
}

#[actix_web::test]
async fn the_fallback_template_is_held_to_the_daily_template_quota() {
    let (graph, dir, app) = start(|o| Options {
        templates_per_day: 1,
        ..o
    })
    .await;
    let to = recipients(2);
    start_flow(&app, "bulk-template", json!({ "recipients": [to[0]] })).await;
    let store = store(dir.path()).await;
    outbox_settles_at(&store, (0, 1, 0)).await;

    graph.respond_next(vec![(400, fixture_json("whatsapp/error-131047.json"))]);
    start_flow(&app, "bulk-text", json!({ "recipients": [to[1]] })).await;
    let done = outbox_drains(&store, 2, WAIT).await;
    assert!(done.is_some(), "the text was neither sent nor given up");
    let templates = template_recipients(&graph.sends());
    assert_eq!(
        templates,
        [to[0].clone()],
        "templates_per_day is 1, yet the fallback went out as a second template"
    );
}
