//! The health, readiness and metrics endpoints.

use crate::common::chat::*;
use crate::common::*;
use serde_json::Value;

#[actix_web::test]
async fn healthz_and_readyz_answer_200_when_the_store_and_flows_are_there() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    assert_eq!(app.get("/healthz").await.0, 200);
    let mut root = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status().as_u16(), 200);
    let _ = root.body().await;

    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(ready["store"], true, "{ready}");
    let shipped = std::fs::read_dir(repo().join("flows/whatsapp"))
        .unwrap()
        .count();
    assert_eq!(
        ready["flows"], shipped as u64,
        "every shipped flow: {ready}"
    );
}

/// The sum of a metric's series (`name{…} v` and `name v`) in Prometheus text.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[actix_web::test]
async fn metrics_count_inbound_messages_runs_and_sends_and_show_the_queue() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    // The recorder is shared by every test of this binary: compare before and after.
    let (status, before) = app.get("/metrics").await;
    assert_eq!(status, 200);
    ask_reply(&app, &graph, ALICE, "HELP").await;

    let counted = [
        "aof_inbound_messages_total",
        "aof_flow_runs_total",
        "aof_outbound_sends_total",
        "aof_send_latency_seconds_count",
    ];
    let after = eventually_async(WAIT, || async {
        let (_, after) = app.get("/metrics").await;
        counted
            .iter()
            .all(|m| metric_sum(&after, m) >= metric_sum(&before, m) + 1.0)
            .then_some(after)
    })
    .await
    .unwrap_or_else(|| {
        panic!("every counter grew by one message, one run and one send; before:\n{before}")
    });
    for name in [
        "aof_inbound_messages_total{",
        "aof_flow_runs_total{",
        "aof_outbound_sends_total",
        "aof_queue_depth",
        "aof_send_latency_seconds_bucket{",
    ] {
        assert!(after.contains(name), "{name} in:\n{after}");
    }
}
