//! The conversation's lookback: what a flow sees, across a restart, and what is left out.

use crate::common::chat::*;
use crate::common::*;
use aof_actors::model::Direction;
use aof_actors::ports::Store as _;
use aof_actors::WaId;

const NOTE: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: note-taker
triggers:
  - platform: whatsapp
    type: message
    pattern: "^note (.*)$"
steps:
  - name: ack-note
    agent: whatsapp
    action: reply
    input:
      text: "noted {{ match.1 }}"
"#;

const CONTEXT_ECHO: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: context-echo
triggers:
  - platform: whatsapp
    type: message
    pattern: "^CTX$"
context:
  source: conversation
  lookback: 5
steps:
  - name: show-context
    agent: whatsapp
    action: reply
    input:
      text: "count={{ context | length }} {% for m in context %}[{{ m.direction }}:{{ m.text[:7] }}]{% endfor %}"
"#;

#[actix_web::test]
async fn the_session_keeps_the_last_five_messages_both_ways_and_they_survive_a_restart() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_dir(&[
        ("note-taker.yaml", NOTE),
        ("context-echo.yaml", CONTEXT_ECHO),
    ]);
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    for note in ["a", "b", "c"] {
        assert_eq!(
            ask(&app, &graph, ALICE, &format!("note {note}")).await,
            format!("noted {note}")
        );
    }
    assert_eq!(
        ask(&app, &graph, ALICE, "CTX").await,
        "count=5 [in:note b][out:noted b][in:note c][out:noted c][in:CTX]",
        "the oldest exchange fell out of the lookback"
    );

    // The answer to CTX is part of the conversation too; wait until it is stored, then crash.
    let store = store(&app.dir).await;
    let alice = WaId::parse(ALICE).unwrap();
    let saved = eventually_async(WAIT, || async {
        let conversation = store.load_conversation(alice.clone()).await.unwrap();
        conversation
            .entries
            .last()
            .filter(|e| e.direction == Direction::Out && e.text.starts_with("count=5"))
            .map(|_| conversation.entries.len())
    })
    .await;
    assert_eq!(saved, Some(5), "the stored conversation keeps 5 entries");
    all_sends_recorded(&app, &graph).await;
    app.stop();

    let app = start(&graph, dir.path(), Some(flows.path())).await;
    assert_eq!(
        ask(&app, &graph, ALICE, "CTX").await,
        "count=5 [in:note c][out:noted c][in:CTX][out:count=5][in:CTX]",
        "the context came back from the store"
    );
}

#[actix_web::test]
async fn a_flow_sees_no_more_messages_than_its_own_lookback() {
    // context-echo asks for 5, so the session keeps 5; short-context asks for 2 and sees 2.
    let short = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: short-context
triggers:
  - platform: whatsapp
    type: message
    pattern: "^SHORT$"
context:
  source: conversation
  lookback: 2
steps:
  - name: show-context
    agent: whatsapp
    action: reply
    input:
      text: "count={{ context | length }} {% for m in context %}[{{ m.direction }}:{{ m.text[:7] }}]{% endfor %}"
"#;
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_dir(&[
        ("note-taker.yaml", NOTE),
        ("context-echo.yaml", CONTEXT_ECHO),
        ("short-context.yaml", short),
    ]);
    let app = start(&graph, dir.path(), Some(flows.path())).await;

    for note in ["a", "b"] {
        ask(&app, &graph, ALICE, &format!("note {note}")).await;
    }
    assert_eq!(
        ask(&app, &graph, ALICE, "SHORT").await,
        "count=2 [out:noted b][in:SHORT]"
    );
    assert_eq!(
        ask(&app, &graph, ALICE, "CTX").await,
        "count=5 [in:note b][out:noted b][in:SHORT][out:count=2][in:CTX]",
        "the session itself still keeps 5"
    );
}

#[actix_web::test]
async fn a_message_the_rate_limiter_refused_is_not_in_the_conversation() {
    let template = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: notify-me
triggers:
  - platform: whatsapp
    type: message
    pattern: "^notify me$"
steps:
  - name: notice
    agent: whatsapp
    action: reply
    input:
      template: "ops_notification"
      parameters: ["Notice", "hello"]
"#;
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = flows_dir(&[
        ("notify-me.yaml", template),
        ("context-echo.yaml", CONTEXT_ECHO),
    ]);
    let options = Options {
        flows_dir: Some(flows.path().to_owned()),
        templates_per_day: 1,
        ..Options::default()
    };
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("the server starts");

    assert_eq!(
        ask(&app, &graph, ALICE, "notify me").await,
        "ops_notification"
    );
    let refused = ask(&app, &graph, ALICE, "notify me").await;
    assert!(
        refused.contains("quota of 1 WhatsApp templates is used up"),
        "{refused}"
    );
    assert_eq!(
        graph
            .sends_to(ALICE)
            .iter()
            .filter(|s| s.text() == "ops_notification")
            .count(),
        1
    );

    let context = ask(&app, &graph, ALICE, "CTX").await;
    assert_eq!(
        context.matches("[out:ℹ").count(),
        1,
        "only the template that was sent is in the context: {context}"
    );
}
