//! The durable queue: a message Meta has not accepted yet is still sent, once, after a restart.

use crate::common::sending::*;
use crate::common::*;
use serde_json::json;

#[actix_web::test]
async fn a_queued_message_survives_a_restart_until_meta_accepts_it() {
    let (graph, dir) = (FakeGraph::start(), temp());
    // The stop below is a crash: it may cut an attempt off while the row says `sending`, which
    // then waits this grace for a status before it goes again.
    let opts = Options {
        max_send_attempts: 50,
        whatsapp_extra: "    unconfirmed_send_grace_secs: 1\n".into(),
        ..options(dir.path())
    };
    graph.script(|_| Some((503, json!({}))));
    let app = TestApp::spawn_in(dir.path(), &graph, &opts).await.unwrap();
    let to = recipients(1);
    start_flow(&app, "bulk-text", json!({ "recipients": to })).await;
    eventually(WAIT, || {
        Some(()).filter(|_| graph.sends_to(&to[0]).len() >= 2)
    })
    .await
    .expect("the message is tried and retried while Meta is down");
    app.stop();

    let before = graph.sends_to(&to[0]);
    assert!(before.iter().all(|s| s.status == 503));
    accept_with_known_wamids(&graph);
    let app = TestApp::spawn_in(dir.path(), &graph, &opts).await.unwrap();

    let store = store(dir.path()).await;
    outbox_settles_at(&store, (0, 1, 0)).await;
    let sends = graph.sends_to(&to[0]);
    let accepted = sends.iter().filter(|s| s.status == 200).count();
    assert_eq!(
        accepted, 1,
        "delivered exactly once after the restart: {sends:#?}"
    );
    assert_eq!(
        sends.last().map(|s| s.status),
        Some(200),
        "nothing after the accepted send"
    );
    assert!(sends.windows(2).all(|w| w[0].body == w[1].body));
    // The attempt count written before the crash may miss the last attempt; it never counts more.
    let job = recorded_as_sent(&store, &to[0]).await;
    let after_restart = sends.len() - before.len();
    assert!(
        (after_restart..=sends.len()).contains(&(job.attempts as usize)),
        "attempts {} for {} requests, {after_restart} after the restart",
        job.attempts,
        sends.len()
    );
    drop(app);
}
