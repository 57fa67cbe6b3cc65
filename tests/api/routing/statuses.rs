//! Delivery statuses, recorded against the sent message and never going back.

use crate::common::chat::*;
use crate::common::*;
use aof_actors::model::DeliveryState;
use serde_json::{json, Value};

/// A status notification: the fixture with `statuses[0].id` replaced by `wamid`.
fn status_for(fixture_name: &str, wamid: &str) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture(fixture_name)).expect("fixture JSON");
    body["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = json!(wamid);
    body.to_string().into_bytes()
}

/// Waits until the store knows `wamid` in `state`.
async fn status_becomes(app: &TestApp, wamid: &str, state: DeliveryState) {
    let store = store(&app.dir).await;
    let reached = eventually_async(WAIT, || async {
        store
            .message_status(wamid)
            .await
            .unwrap()
            .filter(|s| s.state == state)
    })
    .await;
    assert!(
        reached.is_some(),
        "{wamid} never became {state:?}; it is {:?}",
        store.message_status(wamid).await.unwrap()
    );
}

#[actix_web::test]
async fn delivery_statuses_are_recorded_against_the_sent_message_and_never_go_back() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = start(&graph, dir.path(), None).await;

    ask(&app, &graph, ALICE, "HELP").await;
    assert_eq!(graph.sends().len(), 1);
    // The fake numbers its answers: the first send was accepted as wamid.fake.1.
    let first = "wamid.fake.1";
    status_becomes(&app, first, DeliveryState::Accepted).await;
    let store = store(&app.dir).await;
    let outbound = store
        .outbound_message(first)
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(outbound.to.as_str(), ALICE);
    assert_eq!(outbound.kind, "text");

    for (name, state) in [
        ("whatsapp/status-sent.json", DeliveryState::Sent),
        ("whatsapp/status-delivered.json", DeliveryState::Delivered),
        ("whatsapp/status-read.json", DeliveryState::Read),
    ] {
        assert_eq!(app.post_signed(&status_for(name, first)).await, 200);
        status_becomes(&app, first, state).await;
    }
    // A late `delivered` must not move `read` back.
    assert_eq!(
        app.post_signed(&status_for("whatsapp/status-delivered.json", first))
            .await,
        200
    );

    ask(&app, &graph, ALICE, "HELP").await;
    let second = "wamid.fake.2";
    status_becomes(&app, second, DeliveryState::Accepted).await;
    assert_eq!(
        app.post_signed(&status_for("whatsapp/status-failed-131047.json", second))
            .await,
        200
    );
    status_becomes(&app, second, DeliveryState::Failed).await;
    let failed = store.message_status(second).await.unwrap().unwrap();
    assert_eq!(failed.error_code, Some(131047));
    assert_eq!(failed.error_title.as_deref(), Some("Re-engagement message"));

    let read = store.message_status(first).await.unwrap().unwrap();
    assert_eq!(
        read.state,
        DeliveryState::Read,
        "read then delivered stays read"
    );
    assert_eq!(
        read.timestamp, 1718900160,
        "the read status's own timestamp"
    );
}
