//! Sessions: an idle conversation's actor stops after `sessions.idle_timeout_secs` and comes back
//! from the store with its context when the person writes again.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

const CONTEXT_FLOW: &str = r#"apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: context-echo
triggers:
  - platform: whatsapp
    type: message
    pattern: "^CTX$"
context:
  lookback: 5
steps:
  - name: respond
    agent: whatsapp
    action: reply
    input:
      text: "{% for e in context %}{{ e.direction }}:{{ e.text }};{% endfor %}"
"#;

async fn live_sessions(app: &TestApp) -> u64 {
    let (_, body) = app.get("/readyz").await;
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["sessions"].as_u64())
        .unwrap_or(u64::MAX)
}

#[actix_web::test]
async fn an_idle_session_stops_and_comes_back_from_the_store_with_its_context() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), temp());
    std::fs::write(flows.path().join("context-echo.yaml"), CONTEXT_FLOW).unwrap();
    std::fs::copy(
        repo().join("flows/whatsapp/whatsapp-help-flow.yaml"),
        flows.path().join("whatsapp-help-flow.yaml"),
    )
    .unwrap();
    let options = Options {
        flows_dir: Some(flows.path().to_owned()),
        idle_timeout_secs: 1,
        ..Options::default()
    };
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .unwrap();

    app.say(ALICE, "first words").await;
    eventually(Duration::from_secs(10), || {
        graph.sends_to(ALICE).first().cloned()
    })
    .await
    .expect("a reply");
    assert_eq!(live_sessions(&app).await, 1);
    let stopped = eventually_async(Duration::from_secs(10), || async {
        (live_sessions(&app).await == 0).then_some(())
    })
    .await;
    assert!(stopped.is_some(), "the idle session never stopped");

    app.say(ALICE, "CTX").await;
    let echo = eventually(Duration::from_secs(10), || {
        graph.sends_to(ALICE).get(1).cloned()
    })
    .await
    .expect("the context reply");
    let text = echo.text();
    assert!(
        text.starts_with("in:first words;out:"),
        "the context came back from the store: {text}"
    );
    assert!(text.ends_with("in:CTX;"), "{text}");
    assert_eq!(live_sessions(&app).await, 1, "the session is back");
}
